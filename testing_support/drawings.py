"""Real drawings for tests: pen-set digits rendered as a canvas would, and
MNIST test digits upscaled to canvas size."""
from __future__ import annotations

import base64
import io
from functools import lru_cache

import numpy as np
from PIL import Image

from digit_recognition.datasets import load_pen_digits
from digit_recognition.strokes import CanvasParams, render_ink_mask, render_strokes, to_png_bytes


@lru_cache(maxsize=2)
def pen_digits(path: str):
    return load_pen_digits(path)


def first_pen_digit(path: str, label: int, group: str = "syn"):
    return next(d for d in pen_digits(path) if d.label == label and d.writer_group == group)


def canvas_png(strokes, canvas_px=280, height=0.7, dx=0.0, dy=0.0, width=0.06,
               style="white_on_transparent") -> bytes:
    return to_png_bytes(render_strokes(strokes, CanvasParams(canvas_px, height, dx, dy, width, style)))


def coloured_png(strokes, ink_rgba, background_rgba, canvas_px=280, height=0.7, width=0.06) -> bytes:
    """Strokes in any ink colour on any background (alpha included)."""
    mask = render_ink_mask(strokes, CanvasParams(canvas_px, height, 0.0, 0.0, width, "black_on_white"))
    background = Image.new("RGBA", mask.size, background_rgba)
    ink = Image.new("RGBA", mask.size, ink_rgba)
    return to_png_bytes(Image.composite(ink, background, mask))


def mnist_as_canvas(digit_28: np.ndarray, canvas_px: int = 280, style: str = "black_on_white") -> bytes:
    """An MNIST digit (float [0,1], ink=1) upscaled to a canvas-sized PNG."""
    ink = Image.fromarray((digit_28 * 255).astype(np.uint8), mode="L").resize(
        (canvas_px, canvas_px), Image.Resampling.BILINEAR)
    if style == "black_on_white":
        image = Image.merge("RGBA", [Image.eval(ink, lambda v: 255 - v)] * 3 + [Image.new("L", ink.size, 255)])
    elif style == "white_on_transparent":
        image = Image.merge("RGBA", [Image.new("L", ink.size, 255)] * 3 + [ink])
    else:
        raise ValueError(style)
    return to_png_bytes(image)


def data_url(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def png_of(image: Image.Image, **save_args) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", **save_args)
    return buffer.getvalue()
