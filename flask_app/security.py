"""Security for every request and response.

Four concerns, registered last in `create_app` because two of them wrap what
the blueprints registered:

- The proxy hops to trust (`TRUSTED_PROXIES`), so the client address and
  scheme are the real ones behind Cloud Run's front end, and nobody else's
  `X-Forwarded-For` is believed.
- Cross-site request refusal: a browser tells us, in headers a page cannot
  forge, where a request comes from. A state-changing request that another
  site's page made is refused with 403. A request carrying neither header is
  not from a browser (curl, scripts, tests) and cannot ride a visitor's
  cookies, so the JSON API stays open to them. This is the scheme of Go's
  `http.CrossOriginProtection`: no tokens, nothing to keep in sync.
- Security headers on every response, including errors and static files.
- Per-client rate limits (the `limits` library) on label submissions, since each one
  is written to disk and ends up in the training set, and on predictions, so
  that one client cannot take the CPU everyone else's requests need.
"""
from __future__ import annotations

import math
import time
from urllib.parse import urlsplit

import limits
import limits.storage
import limits.strategies
from flask import Flask, jsonify, request
from werkzeug.exceptions import Forbidden
from werkzeug.middleware.proxy_fix import ProxyFix

from .rate_limit_storage import storage_uri
from .security_headers import SECURITY_HEADERS, STRICT_TRANSPORT_SECURITY

STATE_CHANGING_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# "none": the user did it (typed the URL, a bookmark); "same-origin": our page.
# "same-site" is refused too: a sibling subdomain is not us.
TRUSTED_FETCH_SITES = frozenset({"same-origin", "none"})

_DEFAULT_PORTS = {"http": 80, "https": 443}


def register_security(app: Flask) -> None:
    """Install all of the above on `app`. Call after every blueprint is registered."""
    app.wsgi_app = SecurityHeadersMiddleware(app.wsgi_app)
    trusted = int(app.config.get("TRUSTED_PROXIES") or 0)
    if trusted < 0:
        raise RuntimeError(f"TRUSTED_PROXIES must be 0 or more, got {trusted}")
    if trusted:
        # Around the headers middleware, which then sees the client's scheme (for HSTS).
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=trusted, x_proto=trusted)
    # Before the rate limiter's hook: a refused cross-site request costs the
    # visitor none of their label submissions.
    app.before_request(refuse_cross_site_requests)
    limit_request_rates(app)


# --- cross-site requests ----------------------------------------------------

def _origin_parts(url: str) -> tuple[str, str | None, int | None]:
    """(scheme, host, port) of a URL, the port filled in when it is the default."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    return scheme, parts.hostname, parts.port or _DEFAULT_PORTS.get(scheme)


def is_same_origin(origin: str) -> bool:
    """Whether an `Origin` header names this request's own scheme://host[:port]."""
    try:
        theirs = _origin_parts(origin.strip())
        ours = _origin_parts(f"{request.scheme}://{request.host}")
    except ValueError:  # a malformed origin or port
        return False
    # An opaque origin ("null": sandboxed frames, file://) has no host.
    return theirs[1] is not None and theirs == ours


def refuse_cross_site_requests() -> None:
    """403 for a state-changing request a browser says came from another site."""
    if request.method not in STATE_CHANGING_METHODS:
        return
    fetch_site = request.headers.get("Sec-Fetch-Site")
    if fetch_site is not None:
        # Browsers since 2020-2023 send it; it is authoritative when present.
        if fetch_site.strip().lower() not in TRUSTED_FETCH_SITES:
            raise Forbidden("cross-site request refused: it came from another site's page")
        return
    origin = request.headers.get("Origin")
    if origin is not None and not is_same_origin(origin):
        raise Forbidden("cross-site request refused: its Origin is not this site")


# --- security headers -------------------------------------------------------

class SecurityHeadersMiddleware:
    """Adds the security headers to every response the app sends.

    A WSGI wrapper rather than an `after_request` hook, so that no response
    escapes it: error pages, static files, and responses from handlers that
    ran after another hook failed. A header a view set itself is kept.
    """

    def __init__(self, wsgi_app):
        self.wsgi_app = wsgi_app

    def __call__(self, environ, start_response):
        https = environ.get("wsgi.url_scheme") == "https"
        authenticated = "HTTP_AUTHORIZATION" in environ

        def start_with_headers(status, headers, exc_info=None):
            present = {name.lower() for name, _ in headers}
            extra = [(name, value) for name, value in SECURITY_HEADERS if name.lower() not in present]
            if https and "strict-transport-security" not in present:
                extra.append(("Strict-Transport-Security", STRICT_TRANSPORT_SECURITY))
            if "cache-control" not in present:
                content_type = next((value for name, value in headers
                                     if name.lower() == "content-type"), "")
                # API answers are per-request (and some are private): never
                # store them in a browser or proxy cache.
                if content_type.startswith("application/json") or authenticated:
                    extra.append(("Cache-Control", "no-store"))
            return start_response(status, list(headers) + extra, exc_info)

        return self.wsgi_app(environ, start_with_headers)


# --- per-client rate limits -------------------------------------------------

# (endpoint, setting, what the 429 says there are too many of), agreed with the blueprints.
RATE_LIMITED_ENDPOINTS = (
    ("labels.submit_label", "LABELS_RATE_LIMIT", "label submissions"),
    ("predict.predict", "PREDICT_RATE_LIMIT", "predictions"),
)


def parse_rate_limit(value, setting: str = "LABELS_RATE_LIMIT") -> str | None:
    """A configured rate limit (the value of `setting`) checked, or None when it is "off"."""
    text = str(value if value is not None else "off").strip()
    if text.lower() in ("off", ""):
        return None
    try:
        limits.parse_many(text)
    except ValueError as exc:
        raise RuntimeError(f"{setting} {text!r} is not a rate limit such as "
                           f"'60 per minute' or '10/second;500/day' (or 'off')") from exc
    return text


class RequestRateLimits:
    """Per-client limits on some POST endpoints, checked before their views run.

    With the `limits` library directly (as admin_auth does), in one
    before-request hook: a lookup and one storage hit per limited request.
    (Flask-Limiter, used before, evaluated each request's limits twice, in its
    own hook and in a wrapper around the view: 0.18 ms of CPU per request against
    0.02 ms now, benchmarks/request_path.py.)
    """

    def __init__(self, storage_uri_setting: str | None, rates: dict[str, tuple[str, str]]):
        storage = limits.storage.storage_from_string(storage_uri(storage_uri_setting))
        # A moving window: a client cannot send twice the limit across a window boundary.
        self.limiter = limits.strategies.MovingWindowRateLimiter(storage)
        # endpoint -> (its limits, strictest window first, and what the 429 says there are too many of)
        self.rates = {endpoint: (sorted(limits.parse_many(rate), key=lambda item: item.get_expiry()), what)
                      for endpoint, (rate, what) in rates.items()}

    def check(self):
        """Before-request hook: None, or the 429 answer for a client over a limit."""
        if request.method != "POST" or request.endpoint not in self.rates:
            return None
        items, what = self.rates[request.endpoint]
        # The client, once ProxyFix has read the trusted hop; each endpoint is its
        # own scope, so predictions never use up label submissions.
        key = (request.endpoint, request.remote_addr or "unknown")
        for item in items:
            if not self.limiter.hit(item, *key):
                return self.too_many(item, key, what)
        return None

    def too_many(self, item: limits.RateLimitItem, key: tuple[str, str], what: str):
        reset_at = self.limiter.get_window_stats(item, *key).reset_time
        # The storage rounds the window's end up to a whole second, so the wait can
        # come out one second longer than the window itself: never say more than it.
        wait = min(max(1, math.ceil(reset_at - time.time())), int(item.get_expiry()))
        response = jsonify(error=f"too many {what} (limit: {item}); try again in {wait} s")
        response.status_code = 429
        response.headers["Retry-After"] = str(wait)
        return response


def limit_request_rates(app: Flask) -> RequestRateLimits | None:
    """Rate-limit the POST endpoints in RATE_LIMITED_ENDPOINTS per client
    address, each by its own setting; the limits, or None when all are off.

    Storage is `RATELIMIT_STORAGE_URI`: "memory://" counts per worker process
    (without a thread per request: rate_limit_storage.py), so N gunicorn
    workers allow up to N times the limit; point it at Redis or Memcached to
    share the count.
    """
    rates = {}
    for endpoint, setting, what in RATE_LIMITED_ENDPOINTS:
        rate = parse_rate_limit(app.config.get(setting), setting)
        if rate is None:
            continue
        if endpoint not in app.view_functions:
            app.logger.warning("no %s endpoint: %s is not applied", endpoint, setting)
            continue
        rates[endpoint] = (rate, what)
    if not rates:
        return None
    rate_limits = RequestRateLimits(app.config.get("RATELIMIT_STORAGE_URI"), rates)
    app.before_request(rate_limits.check)
    return rate_limits
