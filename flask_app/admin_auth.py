"""Who may review, relabel, delete and export the labelled drawings.

One secret, `ADMIN_TOKEN`, guards all of it. API clients send it on every request
as `Authorization: Bearer <token>`; the review page asks for it once and keeps,
in Flask's signed session cookie, an HMAC of it (never the token itself) with the
login time. Changing ADMIN_TOKEN or SECRET_KEY therefore ends every session, and
a session also ends ADMIN_SESSION_MAX_AGE after login.

The session cookie is HttpOnly, SameSite=Strict and Secure (config defaults).
Secure does not lock out local development: browsers treat http://localhost and
http://127.0.0.1 as secure contexts and keep Secure cookies from them (Chromium,
Firefox), and the Bearer header works everywhere. SESSION_COOKIE_SECURE=0 exists
for the odd plain-http host that is not localhost; never in production.

With no ADMIN_TOKEN configured every admin request is refused with 403: an
unconfigured deployment is closed, not open.
"""
from __future__ import annotations

import functools
import hashlib
import hmac
import time

from flask import current_app, jsonify, request, session

ADMIN_SESSION_MAX_AGE = 8 * 3600  # seconds a review login lasts
_SESSION_KEY = "review_admin"
_SESSION_LOGIN_AT = "review_login_at"
REALM = "labels"


def admin_token() -> str | None:
    token = current_app.config.get("ADMIN_TOKEN")
    return token or None


def token_matches(candidate: str | None) -> bool:
    """Constant-time comparison with the configured token."""
    token = admin_token()
    if token is None or not candidate:
        return False
    return hmac.compare_digest(candidate.encode("utf-8"), token.encode("utf-8"))


def _session_proof(token: str) -> str:
    """What the session cookie holds in place of the token."""
    key = str(current_app.config["SECRET_KEY"]).encode("utf-8")
    return hmac.new(key, b"review-admin:" + token.encode("utf-8"), hashlib.sha256).hexdigest()


def bearer_token() -> str | None:
    """The token from `Authorization: Bearer <token>`, or None if absent/other scheme."""
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer":
        return None
    return value.strip() or None


def session_is_admin() -> bool:
    token = admin_token()
    proof = session.get(_SESSION_KEY)
    login_at = session.get(_SESSION_LOGIN_AT)
    if token is None or not isinstance(proof, str) or not isinstance(login_at, (int, float)):
        return False
    if not 0 <= time.time() - login_at < ADMIN_SESSION_MAX_AGE:
        return False
    return hmac.compare_digest(proof.encode("ascii", "replace"), _session_proof(token).encode("ascii"))


def log_in(candidate: str | None) -> bool:
    """Start a review session if `candidate` is the token."""
    if not token_matches(candidate):
        current_app.logger.warning("review login refused from %s", request.remote_addr)
        return False
    session.clear()  # a fresh session on privilege change
    session[_SESSION_KEY] = _session_proof(admin_token())
    session[_SESSION_LOGIN_AT] = time.time()
    return True


def log_out() -> None:
    session.clear()


def _refusal(message: str, status: int):
    response = jsonify(error=message)
    response.status_code = status
    if status == 401:
        response.headers["WWW-Authenticate"] = f'Bearer realm="{REALM}"'
    response.headers["Cache-Control"] = "no-store"
    return response


def admin_refusal():
    """None if the request is from the admin, else the response refusing it."""
    if admin_token() is None:
        return _refusal("the review API is disabled: the server has no ADMIN_TOKEN configured", 403)
    presented = bearer_token()
    if presented is not None:
        if token_matches(presented):
            return None
        return _refusal("the admin token is wrong", 401)
    if request.headers.get("Authorization"):
        return _refusal("use 'Authorization: Bearer <admin token>'", 401)
    if session_is_admin():
        return None
    return _refusal("this needs the admin token: send 'Authorization: Bearer <admin token>'", 401)


def admin_required(view):
    """Refuse the view to anyone without the admin token (or a review session)."""

    @functools.wraps(view)
    def guarded(*args, **kwargs):
        refusal = admin_refusal()
        if refusal is not None:
            return refusal
        return view(*args, **kwargs)

    return guarded
