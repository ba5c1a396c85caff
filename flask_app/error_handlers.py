"""Every error becomes a JSON {"error": ...} with a specific status; never a trace."""
from __future__ import annotations

from flask import Flask, jsonify, request
from werkzeug.exceptions import HTTPException

from digit_recognition.errors import DrawingError

from .request_parsing import BadRequest


def _error(message: str, status: int):
    response = jsonify(error=message)
    response.status_code = status
    return response


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(BadRequest)
    def bad_request(exc: BadRequest):
        return _error(exc.message, exc.status)

    @app.errorhandler(DrawingError)
    def bad_drawing(exc: DrawingError):
        return _error(str(exc), exc.http_status)

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        if exc.code == 413:
            limit = app.config.get("MAX_CONTENT_LENGTH")
            return _error(f"request body is larger than the {limit}-byte limit", 413)
        response = _error(exc.description or exc.name, exc.code or 500)
        if exc.code == 405 and exc.valid_methods:
            response.headers["Allow"] = ", ".join(exc.valid_methods)
        headers = dict(exc.get_headers())
        for name in ("Retry-After", "WWW-Authenticate"):
            if name in headers:
                response.headers[name] = headers[name]
        return response

    @app.errorhandler(Exception)
    def unexpected(exc: Exception):
        app.logger.exception("unhandled error on %s %s", request.method, request.path)
        return _error("internal error; the request was not processed", 500)
