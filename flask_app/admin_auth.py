"""Who may review, relabel, delete and export the labelled drawings.

One secret, `ADMIN_TOKEN`, guards all of it. API clients send it on every request
as `Authorization: Bearer <token>`; the review page asks for it once and keeps,
in Flask's signed session cookie, an HMAC of it (never the token itself), the
login time and a session id that the server records (flask_app/admin_sessions.py):
logging out deletes the record, so a copy of the cookie stops working too.
Changing ADMIN_TOKEN or SECRET_KEY ends every session, and a session also ends
ADMIN_SESSION_MAX_AGE after login.

A token shorter than MIN_ADMIN_TOKEN_LENGTH characters is refused at start-up:
admin stays disabled and the log says why. Wrong tokens, by Bearer header or
login form, are counted per client address (ADMIN_AUTH_FAILURE_LIMIT, "20 per
minute" by default): past the limit that client's token-bearing requests are
answered 429 with Retry-After, right token or not, so guessing gains nothing
from speed. Each wrong token and the start of a throttle are logged as
security events (logger "flask_app.security", field "security_event").

The session cookie is HttpOnly, SameSite=Strict and Secure (config defaults).
Secure does not lock out local development: browsers treat http://localhost and
http://127.0.0.1 as secure contexts and keep Secure cookies from them (Chromium,
Firefox), and the Bearer header works everywhere. SESSION_COOKIE_SECURE=0 exists
for the odd plain-http host that is not localhost; never in production.

With no usable ADMIN_TOKEN every admin request is refused with 403: an
unconfigured deployment is closed, not open.
"""
from __future__ import annotations

import functools
import hashlib
import hmac
import logging
import math
import os
import time
from dataclasses import dataclass

import limits
import limits.storage
import limits.strategies
from flask import Flask, current_app, jsonify, request, session

from .admin_sessions import AdminSessions
from .rate_limit_storage import storage_uri
from .security import parse_rate_limit

ADMIN_SESSION_MAX_AGE = 8 * 3600  # seconds a review login lasts
# 16 characters of secrets.token_urlsafe() are 96 bits: beyond guessing even
# without the throttle. A short token is a mistake, not a choice.
MIN_ADMIN_TOKEN_LENGTH = 16
_SESSION_KEY = "review_admin"
_SESSION_LOGIN_AT = "review_login_at"
_SESSION_ID = "review_session"
REALM = "labels"

SECURITY_LOG = logging.getLogger("flask_app.security")


class TooManyFailures(Exception):
    """This client gave too many wrong tokens lately; try again in `retry_after` s."""

    def __init__(self, retry_after: int):
        super().__init__(f"too many wrong admin tokens from this address; try again in {retry_after} s")
        self.retry_after = retry_after


@dataclass
class AdminAuth:
    """The admin settings of one app, checked once at start-up."""
    token: str | None  # None: admin is disabled
    sessions: AdminSessions
    failure_limit: limits.RateLimitItem | None  # None: failures are not throttled
    failure_counter: limits.strategies.RateLimiter


def init_app(app: Flask) -> AdminAuth:
    """Check the admin settings and keep them in app.extensions["admin_auth"]."""
    token = app.config.get("ADMIN_TOKEN") or None
    if token is not None and len(token) < MIN_ADMIN_TOKEN_LENGTH:
        app.logger.error(
            "admin is disabled: ADMIN_TOKEN is %d characters long, and at least %d are needed "
            "(make one with: python -c 'import secrets; print(secrets.token_urlsafe(32))')",
            len(token), MIN_ADMIN_TOKEN_LENGTH)
        token = None
    rate = parse_rate_limit(app.config.get("ADMIN_AUTH_FAILURE_LIMIT"), "ADMIN_AUTH_FAILURE_LIMIT")
    storage = limits.storage.storage_from_string(storage_uri(app.config.get("RATELIMIT_STORAGE_URI")))
    sessions_dir = app.config.get("ADMIN_SESSIONS_DIR") or os.path.join(app.config["LABELS_DIR"],
                                                                        ".admin-sessions")
    state = AdminAuth(
        token=token,
        sessions=AdminSessions(sessions_dir, ADMIN_SESSION_MAX_AGE),
        failure_limit=limits.parse(rate) if rate else None,
        failure_counter=limits.strategies.MovingWindowRateLimiter(storage),
    )
    app.extensions["admin_auth"] = state
    return state


def _state() -> AdminAuth:
    return current_app.extensions["admin_auth"]


def admin_token() -> str | None:
    """The configured token, or None when admin is disabled (unset or too short)."""
    return _state().token


def token_matches(candidate: str | None) -> bool:
    """Constant-time comparison with the configured token."""
    token = admin_token()
    if token is None or not candidate:
        return False
    return hmac.compare_digest(candidate.encode("utf-8"), token.encode("utf-8"))


# --- throttling wrong tokens ------------------------------------------------

def _client() -> str:
    return request.remote_addr or "unknown"  # the real client once ProxyFix has run


def _security_event(event: str, message: str, **fields) -> None:
    SECURITY_LOG.warning(message, extra={"fields": {"security_event": event, "client": _client(),
                                                    "path": request.path, **fields}})


def refuse_if_throttled() -> None:
    """TooManyFailures if this client is over its limit of wrong tokens."""
    state = _state()
    if state.failure_limit is None:
        return
    if not state.failure_counter.test(state.failure_limit, _client()):
        stats = state.failure_counter.get_window_stats(state.failure_limit, _client())
        raise TooManyFailures(max(1, math.ceil(stats.reset_time - time.time())))


def check_token(candidate: str | None) -> bool:
    """Whether `candidate` is the token; a wrong one is counted and logged.

    Raises TooManyFailures, before comparing, once this client is throttled.
    """
    refuse_if_throttled()
    if token_matches(candidate):
        return True
    state = _state()
    _security_event("admin_token_wrong", "wrong admin token")
    if state.failure_limit is not None:
        state.failure_counter.hit(state.failure_limit, _client())
        if not state.failure_counter.test(state.failure_limit, _client()):
            _security_event("admin_client_throttled",
                            "admin token attempts from this client throttled: too many wrong tokens",
                            limit=str(state.failure_limit))
    return False


# --- sessions ---------------------------------------------------------------

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
    if not hmac.compare_digest(proof.encode("ascii", "replace"), _session_proof(token).encode("ascii")):
        return False
    return _state().sessions.is_live(session.get(_SESSION_ID))


def log_in(candidate: str | None) -> bool:
    """Start a review session if `candidate` is the token (TooManyFailures when throttled)."""
    if not check_token(candidate):
        return False
    session.clear()  # a fresh session on privilege change
    session[_SESSION_KEY] = _session_proof(admin_token())
    session[_SESSION_LOGIN_AT] = time.time()
    session[_SESSION_ID] = _state().sessions.start()
    return True


def log_out() -> None:
    """End the session on the server as well: copies of the cookie stop working."""
    _state().sessions.end(session.get(_SESSION_ID))
    session.clear()


# --- guarding views ---------------------------------------------------------

def _refusal(message: str, status: int, retry_after: int | None = None):
    response = jsonify(error=message)
    response.status_code = status
    if status == 401:
        response.headers["WWW-Authenticate"] = f'Bearer realm="{REALM}"'
    if retry_after is not None:
        response.headers["Retry-After"] = str(retry_after)
    response.headers["Cache-Control"] = "no-store"
    return response


def admin_refusal():
    """None if the request is from the admin, else the response refusing it."""
    if admin_token() is None:
        return _refusal("the review API is disabled: the server has no usable ADMIN_TOKEN "
                        f"(unset, or shorter than {MIN_ADMIN_TOKEN_LENGTH} characters)", 403)
    presented = bearer_token()
    if presented is not None:
        try:
            if check_token(presented):
                return None
        except TooManyFailures as exc:
            return _refusal(str(exc), 429, exc.retry_after)
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
