"""The security headers every response carries, as data.

Apart from flask_app/security.py, which adds them to the app's responses,
gunicorn.conf.py puts them on the error pages gunicorn writes itself (for a
request too broken to reach the app), so this module imports nothing.
"""

CONTENT_SECURITY_POLICY = "; ".join([
    "default-src 'self'",
    "script-src 'self'",  # no inline script, no eval
    "style-src 'self'",
    "img-src 'self' data: blob:",  # previews are data URLs
    "connect-src 'self'",
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'",
])

SECURITY_HEADERS = (
    ("Content-Security-Policy", CONTENT_SECURITY_POLICY),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "no-referrer"),
    ("X-Frame-Options", "DENY"),  # frame-ancestors for browsers that predate CSP 2
    ("Cross-Origin-Opener-Policy", "same-origin"),
    ("Cross-Origin-Resource-Policy", "same-origin"),
    # The app needs none of the powerful features; no embedded script gets them either.
    ("Permissions-Policy", "camera=(), microphone=(), geolocation=(), payment=(), usb=()"),
)
# Sent only over HTTPS (browsers ignore it over HTTP, and it would pin a
# local http://localhost to HTTPS for a year if they did not).
STRICT_TRANSPORT_SECURITY = "max-age=31536000; includeSubDomains"
