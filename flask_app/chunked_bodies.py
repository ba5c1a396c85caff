"""Request bodies sent with `Transfer-Encoding: chunked`, read before the view.

A chunked body has no Content-Length, so two things went wrong with it:

- Werkzeug stops reading at MAX_CONTENT_LENGTH without saying the body was
  longer, so an oversized body reached the JSON parser cut short: 400 "not
  valid JSON" instead of 413.
- A malformed chunk (a bad size line, a missing CRLF) makes the server's input
  stream raise from inside the view (gunicorn: InvalidChunkSize and its
  kin), which came out as a 500 with an ERROR traceback in the log: anyone
  could fill the error reports.

So, before the view runs, the body is read here, as a buffering proxy would:
at most MAX_CONTENT_LENGTH + 1 bytes (one more than allowed proves it is too
long: 413), and a framing error is answered 400 with no traceback. What the
view then sees is an ordinary body with a Content-Length. Requests for a path
that does not exist are not read (they get their 404 without it).
"""
from __future__ import annotations

import io

from flask import Flask, current_app, request
from werkzeug.exceptions import BadRequest, RequestEntityTooLarge

try:  # gunicorn's errors for bad chunk framing; the Werkzeug dev server raises OSError/ValueError
    from gunicorn.http.errors import ParseException as _ServerFramingError
except ImportError:  # pragma: no cover - the app also runs under other WSGI servers
    _ServerFramingError = OSError

FRAMING_ERRORS = (OSError, ValueError, _ServerFramingError)
_READ_SIZE = 64 * 1024


def is_chunked(environ) -> bool:
    codings = environ.get("HTTP_TRANSFER_ENCODING", "")
    return "chunked" in codings.lower() and not environ.get("CONTENT_LENGTH")


def read_limited(stream, limit: int | None) -> bytes:
    """All of `stream`, or limit + 1 bytes if it holds more than `limit`."""
    parts, total = [], 0
    while limit is None or total <= limit:
        size = _READ_SIZE if limit is None else min(_READ_SIZE, limit + 1 - total)
        data = stream.read(size)
        if not data:
            break
        parts.append(data)
        total += len(data)
    return b"".join(parts)


def buffer_chunked_body() -> None:
    """Replace a chunked body with the same bytes and a Content-Length (or refuse it)."""
    environ = request.environ
    if not is_chunked(environ) or request.routing_exception is not None:
        return
    limit = current_app.config.get("MAX_CONTENT_LENGTH")
    try:
        body = read_limited(environ["wsgi.input"], limit)
    except FRAMING_ERRORS as exc:
        current_app.logger.warning("malformed chunked request body from %s: %s",
                                   request.remote_addr, exc)
        raise BadRequest("the request body's chunked encoding is malformed") from None
    if limit is not None and len(body) > limit:
        raise RequestEntityTooLarge()
    environ["wsgi.input"] = io.BytesIO(body)
    environ["CONTENT_LENGTH"] = str(len(body))
    # Decoded now, as a proxy would have done; Werkzeug ignores Content-Length
    # while the request still says it is chunked.
    del environ["HTTP_TRANSFER_ENCODING"]


def register_chunked_bodies(app: Flask) -> None:
    # First of the before-request hooks, so that none of them reads the body before it is whole.
    app.before_request_funcs.setdefault(None, []).insert(0, buffer_chunked_body)
