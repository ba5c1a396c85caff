"""Errors raised by the digit-recognition core.

Each carries the HTTP status a web layer should answer with, so the app maps
them to responses in one place instead of guessing per call site.
"""


class DrawingError(ValueError):
    """Base class: the input cannot be turned into a digit image."""

    http_status = 400


class InvalidImageError(DrawingError):
    """Not decodable: bad base64, not an image, truncated data."""

    http_status = 400


class UnsupportedImageError(DrawingError):
    """A real image, but in a format or shape the app does not accept."""

    http_status = 415


class ImageTooLargeError(DrawingError):
    """The image declares more pixels than the configured limit."""

    http_status = 413


class EmptyDrawingError(DrawingError):
    """The image decodes but nothing is drawn on it."""

    http_status = 422
