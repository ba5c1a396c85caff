"""Numbers written on the page's canvas, composed from single pen digits.

The pen set has isolated digits only. A person writing a number on the canvas
writes a line: digits of about one height (each a little bigger or smaller),
on a baseline that wanders, with gaps from wide to none at all (a digit's
stroke overlapping its neighbour's box). `render_number` lays pen digits out
like that on a wide canvas and draws them with the page's brush, for the
number-reading benchmark and tests; it also returns where each digit is.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

from digit_recognition.strokes import SUPERSAMPLE, draw_pen_paths, style_ink_mask

PAGE_BRUSH_FRAC = 0.065  # the page's brush width, as a share of the canvas height
CANVAS_ASPECT = 2.5  # the number canvas: wider than tall
CANVAS_HEIGHT_PX = (280, 400)  # so up to 1000 px wide
DIGIT_HEIGHT_FRAC = (0.45, 0.75)  # of the canvas height, before fitting the line in
SIZE_JITTER = 0.12  # each digit's height differs from the line's by up to this share
BASELINE_JITTER = 0.06  # each digit's bottom moves up or down by up to this share of the height
LINE_SLOPE = 0.05  # the whole line rises or falls by up to this (dy/dx)
MARGIN_FRAC = 0.03  # the line keeps at least this share of the canvas width from each edge
CLEAR_GAPS = (0.12, 0.6)  # between digits' ink boxes, as a share of the digit height
TOUCHING_GAPS = (-0.1, 0.02)  # boxes overlapping a little, up to just meeting


@dataclass(frozen=True)
class NumberDrawing:
    image: Image.Image  # RGBA canvas
    text: str
    boxes: list[tuple[int, int, int, int]]  # each digit's ink box: x, y, w, h in canvas pixels
    gaps: list[float]  # between neighbouring digits' boxes, as a share of the digit height


def _extent(strokes):
    points = np.concatenate([np.asarray(s, dtype=np.float64).reshape(-1, 2) for s in strokes])
    return points, points.min(axis=0), points.max(axis=0)


def render_number(digits, rng: np.random.Generator, gaps: tuple[float, float] = CLEAR_GAPS,
                  canvas_height: int | None = None, style: str = "black_on_white") -> NumberDrawing:
    """Draw `digits` (objects with .label and .strokes, e.g. PenDigit) as one line of a number.

    `gaps` is the range each gap between neighbouring digits' ink boxes is
    drawn from, in digit heights (negative: the boxes overlap).
    """
    height_px = canvas_height or int(rng.integers(CANVAS_HEIGHT_PX[0], CANVAS_HEIGHT_PX[1] + 1))
    width_px = int(round(CANVAS_ASPECT * height_px))
    brush = PAGE_BRUSH_FRAC * height_px
    line_height = rng.uniform(*DIGIT_HEIGHT_FRAC) * height_px
    # Lay the line out in pixels, then shrink it if it does not fit (people write
    # smaller when they run out of room; the brush stays the brush).
    heights = line_height * (1 + rng.uniform(-SIZE_JITTER, SIZE_JITTER, len(digits)))
    shapes = []  # (lowest point, scale to canvas pixels, pen path extent in pixels)
    for digit, height in zip(digits, heights, strict=False):
        points, low, high = _extent(digit.strokes)
        extent = np.maximum(high - low, 1.0)
        scale = max(height - brush, 1.0) / extent[1]
        shapes.append((low, scale, extent * scale))
    gap_values = [float(g) for g in rng.uniform(*gaps, len(digits) - 1)]
    stretch = sum(e[0] for _, _, e in shapes) + sum(gap_values) * line_height
    room = (1 - 2 * MARGIN_FRAC) * width_px - len(digits) * brush
    fit = min(1.0, room / stretch, (0.8 * height_px - brush) / max(e[1] for _, _, e in shapes))
    total = stretch * fit + len(digits) * brush
    x = rng.uniform(MARGIN_FRAC * width_px, max(MARGIN_FRAC * width_px, width_px * (1 - MARGIN_FRAC) - total))
    slope = rng.uniform(-LINE_SLOPE, LINE_SLOPE)
    baseline = height_px / 2 + fit * line_height / 2 + rng.uniform(-0.08, 0.08) * height_px
    mapped_all, boxes = [], []
    for index, (digit, (low, scale, extent)) in enumerate(zip(digits, shapes, strict=False)):
        scale = scale * fit
        box_w, box_h = extent * fit + brush
        bottom = baseline + slope * (x + box_w / 2 - width_px / 2) \
            + rng.uniform(-BASELINE_JITTER, BASELINE_JITTER) * fit * line_height
        bottom = float(np.clip(bottom, box_h + 1, height_px - 1))
        # Pen-path points in canvas pixels; the brush adds half its width all round.
        offset = np.array([x + brush / 2, bottom - box_h + brush / 2]) - low * scale
        mapped = [np.asarray(s, dtype=np.float64).reshape(-1, 2) * scale + offset for s in digit.strokes]
        mapped_all += mapped
        boxes.append((int(np.floor(x)), int(np.floor(bottom - box_h)),
                      int(np.ceil(box_w)), int(np.ceil(box_h))))
        if index < len(gap_values):
            x += box_w + gap_values[index] * fit * line_height
    mask = Image.new("L", (width_px * SUPERSAMPLE, height_px * SUPERSAMPLE), 0)
    draw_pen_paths(mask, [m * SUPERSAMPLE for m in mapped_all], brush * SUPERSAMPLE)
    mask = mask.resize((width_px, height_px), Image.Resampling.BOX)
    return NumberDrawing(style_ink_mask(mask, style), "".join(str(d.label) for d in digits),
                         boxes, gap_values)


def add_mark(drawing: NumberDrawing, after: int, mark: str) -> NumberDrawing:
    """The drawing with a "." (on the baseline) or a "-" (mid-height) drawn with
    the page's brush in the gap after digit `after` ("3.5", "1-2").

    The gap should be clear (about half a digit height) to leave room for it.
    """
    image = drawing.image.copy()
    brush = PAGE_BRUSH_FRAC * image.height
    (x0, y0, w0, h0), (x1, y1, _, h1) = drawing.boxes[after], drawing.boxes[after + 1]
    cx = (x0 + w0 + x1) / 2
    draw = ImageDraw.Draw(image)
    if mark == ".":
        radius = brush / 2
        cy = max(y0 + h0, y1 + h1) - radius
        box = (cx - radius, cy - radius, cx + radius, cy + radius)
        draw.ellipse(box, fill=(0, 0, 0, 255))
    elif mark == "-":
        half = 0.15 * (h0 + h1) / 2
        cy = (y0 + h0 / 2 + y1 + h1 / 2) / 2
        draw.line((cx - half, cy, cx + half, cy), fill=(0, 0, 0, 255), width=int(round(brush)))
        box = (cx - half, cy - brush / 2, cx + half, cy + brush / 2)
    else:
        raise ValueError(f"unknown mark {mark!r}")
    left, top = int(np.floor(box[0])), int(np.floor(box[1]))
    mark_box = (left, top, int(np.ceil(box[2])) - left, int(np.ceil(box[3])) - top)
    text = drawing.text[:after + 1] + mark + drawing.text[after + 1:]
    return NumberDrawing(image, text, drawing.boxes[:after + 1] + [mark_box] + drawing.boxes[after + 1:],
                         drawing.gaps)
