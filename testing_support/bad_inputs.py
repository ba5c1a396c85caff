"""The bad-input battery: hostile and malformed requests, each with the status
the app must answer.

Shared by tests/test_bad_input_battery.py (against a real server in the test
process) and benchmarks/load_test.py (against gunicorn, before measuring a
worker's peak memory). Every image is built here, from scratch, so each case
is exactly what its name says.
"""
from __future__ import annotations

import base64
import io
import json
import struct
import zlib
from dataclasses import dataclass
from functools import lru_cache
from typing import Callable

import numpy as np
from PIL import Image, ImageDraw

CANVAS = 280
DRAWN_DIGIT = 7  # what the valid drawings below show
OVER_BODY_LIMIT = 3 * 1024 * 1024  # the app's default limit is 2 MB
BOMB_SIDE = 20_000


@dataclass(frozen=True)
class Payload:
    body: bytes
    content_type: str = "application/json"


@dataclass(frozen=True)
class Case:
    endpoint: str  # "/predict" or "/labels"
    name: str
    expected: int
    payload: Callable[[], Payload]

    @property
    def id(self) -> str:
        return f"{self.endpoint.strip('/')}-{self.name.replace(' ', '_')}"

    @property
    def stores_sample(self) -> bool:
        return self.endpoint == "/labels" and self.expected == 201


# --- images ------------------------------------------------------------------

def _png(image: Image.Image, **save_args) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", **save_args)
    return buffer.getvalue()


def _encoded(image: Image.Image, fmt: str, **save_args) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **save_args)
    return buffer.getvalue()


@lru_cache(maxsize=1)
def ink_mask() -> Image.Image:
    """A hand-drawn-looking 7: white strokes on black, 8-bit grey, canvas size."""
    mask = Image.new("L", (CANVAS, CANVAS), 0)
    draw = ImageDraw.Draw(mask)
    draw.line([(80, 70), (200, 70), (130, 220)], fill=255, width=18, joint="curve")
    draw.line([(110, 145), (180, 145)], fill=255, width=14)
    return mask


def canvas_rgba_png() -> bytes:
    """What the page's canvas exports: white ink on a transparent background."""
    mask = ink_mask()
    white = Image.new("L", mask.size, 255)
    return _png(Image.merge("RGBA", (white, white, white, mask)))


def grey16_png() -> bytes:
    """16-bit greyscale (Pillow mode I;16, PNG bit depth 16)."""
    pixels = np.asarray(ink_mask(), dtype=np.uint16) * 257
    data = _png(Image.fromarray(pixels))
    assert data[24] == 16, "expected a 16-bit PNG"
    return data


def palette_png() -> bytes:
    """Palette (indexed colour) with a transparent background entry."""
    mask = ink_mask()
    image = Image.new("P", mask.size, 0)
    image.putpalette([0, 0, 0, 20, 20, 200] + [0, 0, 0] * 254)
    image.paste(1, mask=mask.point(lambda v: 255 if v > 127 else 0))
    return _png(image, transparency=0)


def grey_alpha_png() -> bytes:
    """Grey + alpha (mode LA): dark ink whose shape lives in the alpha channel."""
    mask = ink_mask()
    return _png(Image.merge("LA", (Image.new("L", mask.size, 30), mask)))


def blank_png() -> bytes:
    return _png(Image.new("RGBA", (CANVAS, CANVAS), (0, 0, 0, 0)))


def one_pixel_png() -> bytes:
    return _png(Image.new("L", (1, 1), 255))


def truncated_png() -> bytes:
    whole = canvas_rgba_png()
    return whole[: len(whole) // 2]


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return (struct.pack(">I", len(data)) + kind + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))


@lru_cache(maxsize=1)
def png_bomb() -> bytes:
    """A valid PNG declaring 20000x20000 8-bit grey pixels (400 MB decoded), all
    black, compressed row by row so building it allocates nothing large: ~0.4 MB."""
    compressor = zlib.compressobj(9)
    row = b"\x00" * (BOMB_SIDE + 1)  # filter byte + pixels
    idat = b"".join(compressor.compress(row) for _ in range(BOMB_SIDE)) + compressor.flush()
    header = struct.pack(">IIBBBBB", BOMB_SIDE, BOMB_SIDE, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", header) + _png_chunk(b"IDAT", idat)
            + _png_chunk(b"IEND", b""))


@lru_cache(maxsize=1)
def text_chunk_bomb_png() -> bytes:
    """A small valid drawing carrying a zTXt chunk that inflates to 100 MB."""
    compressor = zlib.compressobj(9)
    zeros = b"\x00" * (1 << 20)
    text = b"".join(compressor.compress(zeros) for _ in range(100)) + compressor.flush()
    drawing = canvas_rgba_png()
    ihdr_end = 8 + 25  # signature + IHDR chunk
    return drawing[:ihdr_end] + _png_chunk(b"zTXt", b"Comment\x00\x00" + text) + drawing[ihdr_end:]


def animated_png() -> bytes:
    first = ink_mask()
    second = first.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    return _png(first, save_all=True, append_images=[second], duration=100, loop=0)


def cmyk_jpeg() -> bytes:
    return _encoded(ink_mask().convert("CMYK"), "JPEG")


def cmyk_tiff() -> bytes:
    return _encoded(ink_mask().convert("CMYK"), "TIFF")


def other_format(fmt: str) -> Callable[[], bytes]:
    return lambda: _encoded(ink_mask().convert("RGB"), fmt)


# --- payloads ----------------------------------------------------------------

def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def data_url(png: bytes) -> str:
    return "data:image/png;base64," + b64(png)


def as_json(**fields) -> Payload:
    # Raw UTF-8, not \u escapes: "1 MB of unicode" should be 1 MB on the wire.
    return Payload(json.dumps(fields, ensure_ascii=False).encode("utf-8"))


def image_payload(endpoint: str, image: str, **extra) -> Payload:
    """The request body for `endpoint` with this "image"; /labels gets a valid label."""
    if endpoint == "/labels":
        extra.setdefault("label", DRAWN_DIGIT)
    return as_json(image=image, **extra)


def image_payload_raw(endpoint: str, image) -> Payload:
    fields = {"image": image}
    if endpoint == "/labels":
        fields["label"] = DRAWN_DIGIT
    return as_json(**fields)


def _image_cases(endpoint: str) -> list[Case]:
    ok = 201 if endpoint == "/labels" else 200

    def png_case(name: str, expected: int, build: Callable[[], bytes]) -> Case:
        return Case(endpoint, name, expected, lambda: image_payload(endpoint, data_url(build())))

    def raw(name: str, expected: int, body: Callable[[], bytes], content_type="application/json"):
        return Case(endpoint, name, expected, lambda: Payload(body(), content_type))

    return [
        png_case("valid canvas drawing (control)", ok, canvas_rgba_png),
        raw("not JSON", 400, lambda: b"image=iVBORw0KGgo"),
        raw("JSON but text/plain", 415, lambda: image_payload(endpoint, data_url(canvas_rgba_png())).body,
            "text/plain"),
        raw("form-encoded", 415, lambda: b"image=abc&label=7", "application/x-www-form-urlencoded"),
        raw("invalid UTF-8 body", 400, lambda: b'{"image": "\xff\xfe"}'),
        raw("JSON array, not object", 400, lambda: b"[1, 2, 3]"),
        raw("body over the 2 MB limit", 413,
            lambda: image_payload(endpoint, "A" * OVER_BODY_LIMIT).body),
        Case(endpoint, "missing image", 400,
             lambda: as_json(label=DRAWN_DIGIT) if endpoint == "/labels" else as_json()),
        Case(endpoint, "image is a number", 400, lambda: image_payload_raw(endpoint, 12345)),
        Case(endpoint, "invalid base64", 400, lambda: image_payload(endpoint, "data:image/png;base64,%%%notbase64")),
        Case(endpoint, "base64 of text", 400,
             lambda: image_payload(endpoint, b64(b"hello, this is not an image at all"))),
        Case(endpoint, "data URL not base64", 400,
             lambda: image_payload(endpoint, "data:image/png,rawbytes")),
        Case(endpoint, "data URL says image/jpeg", 415,
             lambda: image_payload(endpoint, "data:image/jpeg;base64," + b64(canvas_rgba_png()))),
        Case(endpoint, "zero-byte image", 400, lambda: image_payload(endpoint, "")),
        Case(endpoint, "zero-byte data URL", 400, lambda: image_payload(endpoint, "data:image/png;base64,")),
        png_case("truncated PNG", 400, truncated_png),
        png_case("1x1 image", 400, one_pixel_png),
        png_case("20000x20000 PNG bomb", 413, png_bomb),
        png_case("zTXt chunk inflating to 100 MB", 400, text_chunk_bomb_png),
        png_case("16-bit greyscale", ok, grey16_png),
        png_case("palette with transparency", ok, palette_png),
        png_case("grey+alpha", ok, grey_alpha_png),
        png_case("blank canvas", 422, blank_png),
        png_case("CMYK JPEG", 415, cmyk_jpeg),
        png_case("CMYK TIFF", 415, cmyk_tiff),
        png_case("GIF", 415, other_format("GIF")),
        png_case("WEBP", 415, other_format("WEBP")),
        png_case("BMP", 415, other_format("BMP")),
        png_case("TIFF", 415, other_format("TIFF")),
        png_case("animated PNG", 415, animated_png),
        raw("JSON nested 10,000 deep", 400,
            lambda: b'{"image": ' + b"[" * 10_000 + b"]" * 10_000 + b"}"),
        Case(endpoint, "1 MB of unicode in image", 400,
             lambda: image_payload(endpoint, "\u00fc" * (512 * 1024))),
    ]


BAD_LABELS = [
    ("-1", -1), ("10", 10), ("3.5", 3.5), ('"seven"', "seven"), ('"7 " (trailing space)', "7 "),
    ("null", None), ("true", True), ("a list [7]", [7]), ('"../../etc/passwd"', "../../etc/passwd"),
    ("an object", {"digit": 7}), ('""', ""), ("1 MB of unicode", "\u00fc" * (512 * 1024)),
]


def _label_cases() -> list[Case]:
    cases = [Case("/labels", "label missing", 400, lambda: as_json(image=data_url(canvas_rgba_png())))]
    for name, label in BAD_LABELS:
        cases.append(Case("/labels", f"label {name}", 400,
                          lambda label=label: as_json(image=data_url(canvas_rgba_png()), label=label)))
    # The contract accepts a one-character digit string too.
    cases.append(Case("/labels", 'label "7" (string, control)', 201,
                      lambda: as_json(image=data_url(canvas_rgba_png()), label="7")))
    return cases


def battery() -> list[Case]:
    return _image_cases("/predict") + _image_cases("/labels") + _label_cases()
