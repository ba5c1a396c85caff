"""Render pen trajectories as a browser canvas would draw them.

The pen set stores digits as strokes of (x, y) points in a 0..1000 box. The app
never sees strokes, only the PNG a canvas makes of them, so benchmarks and
training render each digit the way the page does: round-capped, round-joined,
anti-aliased lines at some size, position, width, colour and background.
"""
from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

# The four ways a canvas drawing reaches the server in practice.
STYLES = {
    # name: (ink RGB, background RGB or None for transparent)
    "white_on_transparent": ((255, 255, 255), None),
    "black_on_white": ((0, 0, 0), (255, 255, 255)),
    "white_on_black": ((255, 255, 255), (0, 0, 0)),
    "black_on_transparent": ((0, 0, 0), None),
}

# The ranges the accuracy benchmark draws from (see issue 2).
CANVAS_PX = (280, 504)
DIGIT_HEIGHT_FRAC = (0.30, 0.85)
CENTRE_OFFSET_FRAC = 0.15
STROKE_WIDTH_FRAC = (0.035, 0.09)
SUPERSAMPLE = 2  # canvases anti-alias; drawing at 2x then shrinking does too
# Training draws from wider ranges than the benchmark, so the model has seen
# thinner and fatter pens than the benchmark asks about (tune for drawings in
# general, not for one benchmark's settings).
TRAINING_DIGIT_HEIGHT_FRAC = (0.25, 0.90)
TRAINING_STROKE_WIDTH_FRAC = (0.02, 0.10)
# The page's brush is a fixed share of the canvas, so a digit written small is
# drawn with a brush that is fat for its size (a 15%-tall digit with a 6.5%
# brush). Training gives that case its own share of renders.
PAGE_BRUSH_FRAC = (0.035, 0.075)
SMALL_DIGIT_HEIGHT_FRAC = (0.12, 0.30)
SMALL_DIGIT_SHARE = 0.3


@dataclass(frozen=True)
class CanvasParams:
    canvas_px: int
    digit_height_frac: float
    offset_x_frac: float
    offset_y_frac: float
    stroke_width_frac: float
    style: str
    # False: the ink's own extent is scaled to digit_height_frac (a digit).
    # True: the pen set's whole 0..1000 box is, so a dot stays a dot and a
    # dash stays short (their true size is what makes them what they are).
    keep_box_scale: bool = False


def random_canvas_params(rng: np.random.Generator, style: str | None = None,
                         canvas_px: tuple[int, int] = CANVAS_PX,
                         digit_height_frac: tuple[float, float] = DIGIT_HEIGHT_FRAC,
                         stroke_width_frac: tuple[float, float] = STROKE_WIDTH_FRAC) -> CanvasParams:
    """Draw rendering parameters uniformly (by default from the benchmark's ranges)."""
    return CanvasParams(
        canvas_px=int(rng.integers(canvas_px[0], canvas_px[1] + 1)),
        digit_height_frac=float(rng.uniform(*digit_height_frac)),
        offset_x_frac=float(rng.uniform(-CENTRE_OFFSET_FRAC, CENTRE_OFFSET_FRAC)),
        offset_y_frac=float(rng.uniform(-CENTRE_OFFSET_FRAC, CENTRE_OFFSET_FRAC)),
        stroke_width_frac=float(rng.uniform(*stroke_width_frac)),
        style=style if style is not None else str(rng.choice(list(STYLES))),
    )


def training_canvas_params(rng: np.random.Generator, canvas_px: tuple[int, int] = (112, 224)) -> CanvasParams:
    """Rendering parameters for training: the benchmark's world and wider, plus small digits.

    Most renders draw size and pen width from the wide training ranges; a share
    are small drawings with the page's brush, on larger canvases so that the
    small digit still has the resolution a real canvas gives it.
    """
    if rng.random() < SMALL_DIGIT_SHARE:
        return random_canvas_params(rng, canvas_px=(max(canvas_px[0], 160), max(canvas_px[1], 320)),
                                    digit_height_frac=SMALL_DIGIT_HEIGHT_FRAC,
                                    stroke_width_frac=PAGE_BRUSH_FRAC)
    return random_canvas_params(rng, canvas_px=canvas_px, digit_height_frac=TRAINING_DIGIT_HEIGHT_FRAC,
                                stroke_width_frac=TRAINING_STROKE_WIDTH_FRAC)


def _layout(strokes, params: CanvasParams, scale_up: int):
    """Map stroke points into canvas pixels (at `scale_up` times resolution)."""
    points = np.concatenate([np.asarray(s, dtype=np.float64).reshape(-1, 2) for s in strokes])
    low, high = points.min(axis=0), points.max(axis=0)
    extent = np.maximum(high - low, 1.0)
    size = params.canvas_px * scale_up
    width_px = params.stroke_width_frac * size
    # The digit's height (stroke included) is the requested fraction; a wide
    # digit is shrunk so it still fits on the canvas.
    target_h = max(params.digit_height_frac * size - width_px, 1.0)
    scale = target_h / extent[1]
    if params.keep_box_scale:
        scale = params.digit_height_frac * size / 1000.0
    max_w = 0.95 * size - width_px
    if extent[0] * scale > max_w:
        scale = max_w / extent[0]
    centre = np.array([size / 2 + params.offset_x_frac * size,
                       size / 2 + params.offset_y_frac * size])
    # A person drawing sees the canvas edge: keep the whole digit on the canvas.
    half = extent * scale / 2 + width_px / 2
    centre = np.clip(centre, half, size - half)
    mid = (low + high) / 2
    mapped = [(np.asarray(s, dtype=np.float64).reshape(-1, 2) - mid) * scale + centre for s in strokes]
    return mapped, width_px


def draw_pen_paths(mask: Image.Image, mapped, width_px: float) -> None:
    """Draw strokes (arrays of (x, y) in `mask`'s pixels) onto a mode "L" mask at full ink."""
    draw = ImageDraw.Draw(mask)
    radius = width_px / 2
    line_width = max(1, int(round(width_px)))
    for stroke in mapped:
        pts = [tuple(p) for p in stroke]
        if len(pts) > 1:
            draw.line(pts, fill=255, width=line_width, joint="curve")
        # Round caps and joins: a disc at every point, as lineCap="round" draws.
        for x, y in pts:
            draw.ellipse((x - radius, y - radius, x + radius, y + radius), fill=255)


def render_ink_mask(strokes, params: CanvasParams) -> Image.Image:
    """The ink coverage (mode "L", 0..255) of the strokes on the canvas."""
    size = params.canvas_px * SUPERSAMPLE
    mapped, width_px = _layout(strokes, params, SUPERSAMPLE)
    mask = Image.new("L", (size, size), 0)
    draw_pen_paths(mask, mapped, width_px)
    return mask.resize((params.canvas_px, params.canvas_px), Image.Resampling.BOX)


def style_ink_mask(mask: Image.Image, style: str) -> Image.Image:
    """An ink coverage mask as an RGBA canvas image in one of STYLES."""
    if style not in STYLES:
        raise ValueError(f"unknown style {style!r}; one of {sorted(STYLES)}")
    ink_rgb, background_rgb = STYLES[style]
    if background_rgb is None:
        image = Image.new("RGBA", mask.size, ink_rgb + (0,))
        image.putalpha(mask)
        return image
    background = Image.new("RGBA", mask.size, background_rgb + (255,))
    ink = Image.new("RGBA", mask.size, ink_rgb + (255,))
    return Image.composite(ink, background, mask)


def render_strokes(strokes, params: CanvasParams) -> Image.Image:
    """Render strokes as an RGBA canvas image in the given style."""
    if params.style not in STYLES:
        raise ValueError(f"unknown style {params.style!r}; one of {sorted(STYLES)}")
    return style_ink_mask(render_ink_mask(strokes, params), params.style)


def to_png_bytes(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()
