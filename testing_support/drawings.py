"""Drawings for tests and benchmarks: pen-set digits rendered as a canvas
would, MNIST test digits upscaled to canvas size, and hand-written strokes for
0-9 in a random size, place, pen width and style."""
from __future__ import annotations

import base64
import io
import math
from functools import lru_cache

import numpy as np
from PIL import Image

from digit_recognition.datasets import load_pen_digits
from digit_recognition.strokes import (
    CanvasParams, random_canvas_params, render_ink_mask, render_strokes, to_png_bytes,
)


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


def _ellipse(cx, cy, rx, ry, start=0.0, end=360.0, steps=24):
    return [(cx + rx * math.cos(math.radians(a)), cy + ry * math.sin(math.radians(a)))
            for a in np.linspace(start, end, steps)]


# Strokes in a 0..1000 box, y pointing down, as a person might draw each digit.
DIGIT_STROKES = {
    0: [_ellipse(500, 500, 260, 400)],
    1: [[(380, 230), (520, 100), (520, 900)]],
    2: [[(250, 300), (350, 150), (550, 100), (720, 200), (720, 380), (250, 900), (780, 900)]],
    3: [[(250, 150), (700, 150), (450, 450), (700, 600), (650, 850), (250, 880)]],
    4: [[(600, 900), (600, 100), (200, 650), (800, 650)]],
    5: [[(750, 100), (300, 100), (270, 450), (600, 420), (750, 600), (650, 850), (250, 880)]],
    6: [[(700, 100), (350, 400), (250, 700), (450, 900), (700, 750), (600, 500), (300, 600)]],
    7: [[(200, 100), (800, 100), (400, 900)]],
    8: [_ellipse(500, 280, 200, 180), _ellipse(500, 700, 250, 210)],
    9: [_ellipse(480, 300, 220, 200), [(700, 300), (650, 900)]],
}


def digit_png(label: int, seed: int = 0, canvas_px: tuple[int, int] = (140, 220)) -> bytes:
    """A canvas-like PNG of `label`, in a random size, place, pen width and style."""
    rng = np.random.default_rng(seed)
    return to_png_bytes(render_strokes(DIGIT_STROKES[label], random_canvas_params(rng, canvas_px=canvas_px)))
