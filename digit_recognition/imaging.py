"""Decoding untrusted drawings into RGBA arrays.

Everything here treats its input as hostile: the data URL or base64 text is
validated strictly, the format is sniffed from magic bytes, and the declared
pixel count is checked *before* any pixel data is decoded, so a small file that
declares 20000x20000 pixels is refused without allocating it.
"""
from __future__ import annotations

import binascii
import io
import math
import warnings

import numpy as np
from PIL import Image

from .errors import ImageTooLargeError, InvalidImageError, UnsupportedImageError

# 4 megapixels covers a 2000x2000 canvas, the largest the app promises to read.
DEFAULT_MAX_PIXELS = 4_000_000
MIN_SIDE = 8  # smaller than this cannot hold a drawing worth reading
# Larger drawings are box-averaged down to at most this side before anything
# else: the digit ends up 20 px tall, and a 2000 px canvas as float RGBA would
# cost ~64 MB and ~0.4 s per request for no visible difference.
MAX_WORKING_SIDE = 512
ACCEPTED_FORMATS = ("PNG",)

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# Formats we recognise but refuse (415), so the client learns why.
_OTHER_SIGNATURES = {
    b"GIF87a": "GIF",
    b"GIF89a": "GIF",
    b"\xff\xd8\xff": "JPEG",
    b"BM": "BMP",
    b"II*\x00": "TIFF",
    b"MM\x00*": "TIFF",
}


def decode_base64_image(text: str) -> bytes:
    """Return the bytes of a PNG given as a data URL or bare base64 text."""
    if not isinstance(text, str):
        raise InvalidImageError("'image' must be a string: a PNG data URL or base64")
    payload = text.strip()
    if payload.startswith("data:"):
        header, sep, payload = payload.partition(",")
        if not sep or not header.endswith(";base64"):
            raise InvalidImageError("'image' data URL must be base64-encoded (data:image/png;base64,...)")
        media_type = header[len("data:"):-len(";base64")].lower()
        if media_type and media_type != "image/png":
            raise UnsupportedImageError(f"data URL media type {media_type!r} is not accepted; send image/png")
    if not payload:
        raise InvalidImageError("'image' is empty")
    try:
        return binascii.a2b_base64(payload.encode("ascii"), strict_mode=True)
    except (binascii.Error, UnicodeEncodeError, ValueError) as exc:
        raise InvalidImageError("'image' is not valid base64") from exc


def sniff_format(data: bytes) -> str | None:
    """Name the image format from its magic bytes, or None when unknown."""
    if data.startswith(_PNG_SIGNATURE):
        return "PNG"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    for signature, name in _OTHER_SIGNATURES.items():
        if data.startswith(signature):
            return name
    return None


def open_image(data: bytes, max_pixels: int = DEFAULT_MAX_PIXELS) -> Image.Image:
    """Open and fully decode a PNG, enforcing format, frame and size limits."""
    if not data:
        raise InvalidImageError("image is empty (0 bytes)")
    fmt = sniff_format(data)
    if fmt is None:
        raise InvalidImageError("data is not an image (expected PNG)")
    if fmt not in ACCEPTED_FORMATS:
        raise UnsupportedImageError(f"{fmt} images are not accepted; send a PNG")
    try:
        with warnings.catch_warnings():
            # Pillow warns, then errors, on bombs; we check the size ourselves first.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data), formats=list(ACCEPTED_FORMATS))
            width, height = image.size
            if width * height > max_pixels:
                raise ImageTooLargeError(
                    f"image is {width}x{height} pixels; the limit is {max_pixels} pixels")
            if min(width, height) < MIN_SIDE:
                raise InvalidImageError(
                    f"image is {width}x{height} pixels; at least {MIN_SIDE}x{MIN_SIDE} is needed")
            if getattr(image, "n_frames", 1) > 1:
                raise UnsupportedImageError("animated PNGs are not accepted; send a single frame")
            image.load()
    except (ImageTooLargeError, InvalidImageError, UnsupportedImageError):
        raise
    except Image.DecompressionBombError as exc:
        # Pillow refuses absurd sizes inside Image.open, before our own check
        # can read the size; answer with our limit, not Pillow's wording.
        raise ImageTooLargeError(
            f"image declares more pixels than the limit of {max_pixels} pixels") from exc
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        # Pillow reports truncated or corrupt data with these.
        raise InvalidImageError("image data is corrupt or truncated") from exc
    return image


def image_to_rgba(image: Image.Image) -> np.ndarray:
    """Any Pillow image as float32 RGBA in [0, 1], shape (H, W, 4).

    16-bit greyscale is scaled by its own range (Pillow's convert() would clip
    it to 8 bits); every other mode goes through Pillow's RGBA conversion, which
    honours palette transparency and grey+alpha.
    """
    if image.mode in ("I", "I;16", "I;16B", "I;16L", "I;16N", "F"):
        grey = np.asarray(image, dtype=np.float32)
        top = 65535.0 if image.mode != "F" and grey.max(initial=0) > 255 else 255.0
        if image.mode == "F":
            top = max(float(grey.max(initial=0)), 1.0)
        grey = np.clip(grey / top, 0.0, 1.0)
        rgba = np.empty(grey.shape + (4,), dtype=np.float32)
        rgba[..., :3] = grey[..., None]
        rgba[..., 3] = 1.0
        return rgba
    if image.mode != "RGBA":
        image = image.convert("RGBA")
    return np.asarray(image, dtype=np.float32) / 255.0


def working_scale(size: tuple[int, int], max_side: int = MAX_WORKING_SIDE) -> int:
    """The whole factor a drawing of `size` is shrunk by (1: kept as it is)."""
    return max(1, math.ceil(max(size) / max_side))


def shrink_to_working_size(image: Image.Image, max_side: int = MAX_WORKING_SIDE) -> Image.Image:
    """Box-average an image down by a whole factor so its longer side <= max_side."""
    factor = working_scale(image.size, max_side)
    if factor <= 1:
        return image
    if image.mode.startswith("I;16"):
        image = image.convert("I")
    elif image.mode in ("1", "P", "CMYK", "YCbCr", "LAB", "HSV"):
        image = image.convert("RGBA")  # reduce() has no kernel for these modes
    return image.reduce(factor)


def decode_drawing_image(data: bytes, max_pixels: int = DEFAULT_MAX_PIXELS) -> Image.Image:
    """PNG bytes -> a decoded Pillow image, at most MAX_WORKING_SIDE a side."""
    return shrink_to_working_size(open_image(data, max_pixels=max_pixels))


def decode_drawing(data: bytes, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """PNG bytes -> float32 RGBA array in [0, 1], at most MAX_WORKING_SIDE a side."""
    return image_to_rgba(decode_drawing_image(data, max_pixels=max_pixels))
