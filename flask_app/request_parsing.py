"""Reading JSON request bodies with specific, client-facing errors."""
from __future__ import annotations

import json

from flask import request

from digit_recognition.imaging import decode_base64_image


class BadRequest(Exception):
    """A client error with a message safe to show and the status to answer with."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.message = message
        self.status = status


def json_body() -> dict:
    """The request's JSON object, or BadRequest (415 not JSON, 400 malformed)."""
    if not request.is_json:
        raise BadRequest("send the request as JSON (Content-Type: application/json)", 415)
    raw = request.get_data(cache=True)
    try:
        body = json.loads(raw)
    except RecursionError as exc:
        raise BadRequest("request body is nested too deeply") from exc
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadRequest("request body is not valid JSON") from exc
    if not isinstance(body, dict):
        raise BadRequest("request body must be a JSON object")
    return body


def image_bytes(body: dict) -> bytes:
    """The PNG bytes from the body's "image" field (data URL or bare base64)."""
    if "image" not in body:
        raise BadRequest("missing field 'image': a PNG as a data URL or base64")
    return decode_base64_image(body["image"])
