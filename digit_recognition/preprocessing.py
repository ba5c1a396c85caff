"""Turn any canvas drawing into what an MNIST digit looks like.

MNIST digits are white ink on black, size-normalised to fit a 20x20 box with
their aspect ratio kept, then placed in a 28x28 frame so that their centre of
mass is at the centre. A canvas drawing is none of that: any size, anywhere,
any colour, on a transparent or opaque background. `preprocess_drawing` is the
one function that bridges the two; the server, the notebooks, training on pen
data and the tests all call it, so what the model trained on and what it is
shown in production cannot drift apart.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageChops

from .errors import EmptyDrawingError
from .imaging import DEFAULT_MAX_PIXELS, image_to_rgba, open_image, shrink_to_working_size, working_scale

MNIST_SIZE = 28
DIGIT_BOX = 20  # MNIST fits each digit into 20x20 before centring it in 28x28
# Contrast between ink and background below which the canvas counts as empty.
MIN_INK_CONTRAST = 0.1
# Pixels fainter than this fraction of the strongest ink are anti-aliasing or
# noise, not part of the digit's bounding box.
BBOX_THRESHOLD = 0.1


def _border_pixels(rgba: np.ndarray) -> np.ndarray:
    return np.concatenate([rgba[0], rgba[-1], rgba[1:-1, 0], rgba[1:-1, -1]])


def _background(border: np.ndarray) -> np.ndarray | None:
    """The canvas' background colour (RGB in [0, 1]): what its border pixels
    (float RGBA in [0, 1], or uint8) mostly show; None when they are mostly transparent."""
    top = 255.0 if border.dtype == np.uint8 else 1.0
    if np.median(border[:, 3]) < 0.5 * top:
        return None
    opaque_border = border[border[:, 3] >= 0.5 * top]
    return np.median(opaque_border[:, :3], axis=0) / top


def _ink_against(rgba: np.ndarray, background: np.ndarray | None) -> np.ndarray:
    """Ink strength of float RGBA pixels against a background colour (None: transparent)."""
    alpha = rgba[..., 3]
    if background is None:
        return alpha.astype(np.float32, copy=True)
    background = np.asarray(background, dtype=np.float32)  # float32 throughout: half the memory traffic
    colour = rgba[..., :3]
    if alpha.min(initial=1.0) < 1.0:  # an opaque image (most are) is its own composite
        colour = colour * alpha[..., None] + background * (1.0 - alpha[..., None])
    distance = np.sqrt(np.sum((colour - background) ** 2, axis=-1))
    # Normalise so pure black on pure white (or the reverse) is 1.
    largest_possible = np.sqrt(np.sum(np.maximum(background, 1.0 - background) ** 2))
    return (distance / max(largest_possible, 1e-6)).astype(np.float32)


def ink_map(rgba: np.ndarray) -> np.ndarray:
    """Ink strength in [0, 1] per pixel, whatever the colours and background.

    The background is what the border of the canvas mostly shows. On a
    transparent background the ink is the alpha channel, whatever its colour.
    On an opaque one, the image is composited onto that background colour and
    the ink is the colour distance from it, which covers dark-on-light,
    light-on-dark and coloured strokes alike. Returned unnormalised: 1.0 means
    maximal contrast.
    """
    if rgba.ndim != 3 or rgba.shape[2] != 4:
        raise ValueError(f"expected an RGBA array (H, W, 4), got shape {rgba.shape}")
    return _ink_against(rgba, _background(_border_pixels(rgba)))


# Modes whose values do not fit 8 bits; image_to_rgba scales them itself.
_HIGH_DEPTH_MODES = ("I", "I;16", "I;16B", "I;16L", "I;16N", "F")
_SQRT3 = math.sqrt(3.0)


def _box_at_least(strength: np.ndarray, level: int) -> tuple[int, int, int, int] | None:
    """(left, top, right, bottom) of the pixels of 8-bit `strength` >= level, or None."""
    mask = strength >= level
    rows = np.flatnonzero(mask.any(axis=1))
    if len(rows) == 0:
        return None
    cols = np.flatnonzero(mask.any(axis=0))
    return int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1


def _transparent_border(alpha: np.ndarray) -> bool:
    """_background's test on the alpha channel (uint8) alone: a mostly
    transparent border (the page's canvas) needs no colour at all."""
    return bool(np.median(_border_pixels(alpha)) < 0.5 * 255)


def _alpha_ink_region(alpha: np.ndarray) -> tuple[np.ndarray, tuple[int, int]]:
    """ink_region of a canvas with a transparent border, from its alpha channel
    (uint8) alone: there the ink is the alpha channel, whatever its colour (_ink_against)."""
    # Every pixel normalize_ink keeps has at least this alpha; 3 levels spare the
    # box from 8-bit rounding, so it can only be larger.
    level = max(int(int(alpha.max()) * BBOX_THRESHOLD) - 3, 1)
    box = _box_at_least(alpha, level)
    if box is None:  # not one pixel has any ink
        return np.zeros((1, 1), np.float32), (0, 0)
    left, top, right, bottom = box
    return alpha[top:bottom, left:right].astype(np.float32) / np.float32(255.0), (left, top)


def working_ink_region(image: Image.Image) -> tuple[np.ndarray, tuple[int, int]]:
    """ink_region(shrink_to_working_size(image)), the same arrays, for less work
    on the page's canvas (RGBA, transparent): a drawing wider than
    MAX_WORKING_SIDE shrinks its alpha channel alone, where Pillow would shrink
    all four channels premultiplied (two whole-canvas conversions and a 4-band
    reduce: 0.9 of ~6 ms for a 700x280 drawing). Pillow's reduce averages the
    alpha band the same either way (tests/test_preprocessing_properties.py)."""
    factor = working_scale(image.size)
    if factor > 1 and image.mode == "RGBA":
        # Tested on the shrunk alpha, as ink_region would: exact, and on an opaque
        # canvas (the page never sends one) ~0.1 ms spent for nothing.
        alpha = np.asarray(image.getchannel("A").reduce(factor))
        if _transparent_border(alpha):
            return _alpha_ink_region(alpha)
    return ink_region(shrink_to_working_size(image))


def ink_region(image: Image.Image) -> tuple[np.ndarray, tuple[int, int]]:
    """The ink map of the box of `image` that holds its ink, and the box's (left, top).

    The values are ink_map's (image_to_rgba then ink_map) over that box, and
    the box holds every pixel normalize_ink keeps (at least BBOX_THRESHOLD of
    the strongest ink), so normalize_ink gives the same 28x28 from either. The
    difference is speed: the box is found in 8 bits (the alpha channel, or the
    largest channel difference from the background colour, which Pillow's C
    routines compute), and only the box is turned into floats, not the whole canvas.
    """
    if image.mode in _HIGH_DEPTH_MODES:  # rare: 16-bit or float greyscale
        return ink_map(image_to_rgba(image)), (0, 0)
    rgba_image = image if image.mode == "RGBA" else image.convert("RGBA")
    alpha = np.asarray(rgba_image.getchannel("A"))  # (H, W) uint8
    if _transparent_border(alpha):
        return _alpha_ink_region(alpha)
    pixels = np.asarray(rgba_image)  # (H, W, 4) uint8
    background = _background(_border_pixels(pixels))  # not None: the border is mostly opaque
    flat = Image.new("RGBA", rgba_image.size, tuple(int(round(v * 255)) for v in background) + (255,))
    opaque = int(alpha.min()) == 255
    composited = rgba_image if opaque else Image.alpha_composite(flat, rgba_image)
    channels = ImageChops.difference(composited, flat).split()
    strength = np.asarray(ImageChops.lighter(ImageChops.lighter(channels[0], channels[1]), channels[2]))
    strongest = int(strength.max())
    # Every pixel normalize_ink keeps differs from the background by at least
    # this much in some channel (a colour distance is at most sqrt(3) x its
    # largest channel difference); 3 levels allow for the 8-bit rounding of the
    # composite and of the background colour, so the box can only be larger.
    level = max(int(strongest * BBOX_THRESHOLD / _SQRT3) - 3, 1)
    box = _box_at_least(strength, level)
    if box is None:  # not one pixel differs from the background
        return np.zeros((1, 1), np.float32), (0, 0)
    left, top, right, bottom = box
    crop = pixels[top:bottom, left:right].astype(np.float32) / 255.0
    return _ink_against(crop, background), (left, top)


def _fit_into_box(ink: np.ndarray, box: int) -> np.ndarray:
    """Resize so the longer side is `box` pixels, keeping the aspect ratio."""
    height, width = ink.shape
    scale = box / max(height, width)
    new_h = max(1, int(round(height * scale)))
    new_w = max(1, int(round(width * scale)))
    # Pillow's resampling widens its filter when shrinking, so thin strokes on a
    # large canvas are averaged, not skipped (no aliasing).
    resized = Image.fromarray(ink, mode="F").resize((new_w, new_h), Image.Resampling.BILINEAR)
    return np.asarray(resized, dtype=np.float32)


def _place_by_centre_of_mass(digit: np.ndarray, size: int) -> np.ndarray:
    """Put `digit` in a size x size frame with its centre of mass at the centre.

    The shift is sub-pixel (a bilinear blend of the four neighbouring whole
    pixel shifts, which conserves the ink exactly): rounding it to whole pixels
    would let the same digit drawn half a pixel apart land a pixel apart.
    """
    height, width = digit.shape
    row_ink, col_ink = digit.sum(axis=1, dtype=np.float64), digit.sum(axis=0, dtype=np.float64)
    total = float(row_ink.sum())
    centre = (size - 1) / 2.0
    # Where the digit's top-left goes; clamped so the whole digit (one pixel
    # wider after a fractional shift) stays in frame even when lopsided.
    top = min(max(centre - float(np.arange(height) @ row_ink) / total, 0.0), size - height - 1.0)
    left = min(max(centre - float(np.arange(width) @ col_ink) / total, 0.0), size - width - 1.0)
    whole_top, whole_left = int(np.floor(top)), int(np.floor(left))
    frac_y, frac_x = top - whole_top, left - whole_left
    shifted = np.zeros((height + 1, width + 1), dtype=np.float32)
    shifted[:-1, :-1] += (1 - frac_y) * (1 - frac_x) * digit
    shifted[:-1, 1:] += (1 - frac_y) * frac_x * digit
    shifted[1:, :-1] += frac_y * (1 - frac_x) * digit
    shifted[1:, 1:] += frac_y * frac_x * digit
    frame = np.zeros((size, size), dtype=np.float32)
    frame[whole_top:whole_top + height + 1, whole_left:whole_left + width + 1] = shifted
    return np.clip(frame, 0.0, 1.0)


def inked_region(ink: np.ndarray) -> tuple[np.ndarray, int, int]:
    """An ink map scaled so its strongest ink is 1, cropped to its ink; and the crop's (top, left).

    Raises EmptyDrawingError when nothing is drawn.
    """
    strongest = float(ink.max(initial=0.0))
    if not np.isfinite(strongest) or strongest < MIN_INK_CONTRAST:
        raise EmptyDrawingError("the drawing is empty: draw a digit first")
    ink = ink / strongest
    rows = np.flatnonzero(ink.max(axis=1) >= BBOX_THRESHOLD)
    cols = np.flatnonzero(ink.max(axis=0) >= BBOX_THRESHOLD)
    return ink[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1], int(rows[0]), int(cols[0])


def normalize_ink(ink: np.ndarray) -> np.ndarray:
    """An ink map -> 28x28 float32 in [0, 1], MNIST's framing.

    Raises EmptyDrawingError when nothing is drawn.
    """
    cropped, _, _ = inked_region(ink)
    return frame_inked_region(cropped)


def frame_inked_region(cropped: np.ndarray) -> np.ndarray:
    """What normalize_ink does after inked_region: that region (its strongest
    ink 1, cropped to its ink) -> the 28x28. For a caller that already has it
    (normalize_ink of it would find the same region again)."""
    digit = _fit_into_box(cropped, DIGIT_BOX)
    digit = np.clip(digit, 0.0, None)
    # Shrinking a thin stroke spreads it into faint grey; MNIST strokes have a
    # saturated core, so bring the strongest pixel back to full ink.
    peak = float(digit.max(initial=0.0))
    if peak <= 0.0:
        raise EmptyDrawingError("the drawing is empty: draw a digit first")
    digit = np.clip(digit / peak, 0.0, 1.0)
    return _place_by_centre_of_mass(digit, MNIST_SIZE)


def preprocess_rgba(rgba: np.ndarray) -> np.ndarray:
    """RGBA float array in [0, 1] -> 28x28 float32 MNIST-like digit."""
    return normalize_ink(ink_map(rgba))


def preprocess_image(image: Image.Image) -> np.ndarray:
    """A decoded Pillow image -> 28x28 float32 MNIST-like digit (the fast path:
    same result as preprocess_rgba(image_to_rgba(image)))."""
    return normalize_ink(ink_region(image)[0])


@dataclass(frozen=True)
class DrawingInk:
    """A drawing's ink map and how its pixels map back to the drawing's.

    `ink` covers the box of the drawing that holds its ink (ink_region: every
    pixel with at least BBOX_THRESHOLD of the strongest ink is inside; outside
    is background or fainter), whose top-left is `origin` in the working-size
    drawing. Large drawings are shrunk by a whole factor before the ink is
    found, so ink pixel (r, c) covers drawing pixels
    ((r + origin_row) * scale, (c + origin_col) * scale) onwards.
    """

    ink: np.ndarray  # (H, W) float32, 0 = background, unnormalised (see ink_map)
    scale: int  # drawing pixels per ink pixel, per side
    origin: tuple[int, int] = (0, 0)  # (row, col) of ink[0, 0] in the working-size drawing

    def box_in_drawing(self, top: int, left: int, bottom: int, right: int) -> tuple[int, int, int, int]:
        """An ink-map box (rows top..bottom, cols left..right, exclusive) as x, y, w, h in the drawing."""
        row, col = self.origin
        return ((left + col) * self.scale, (top + row) * self.scale,
                (right - left) * self.scale, (bottom - top) * self.scale)


def drawing_ink(png_bytes: bytes, max_pixels: int = DEFAULT_MAX_PIXELS) -> DrawingInk:
    """PNG bytes of a canvas drawing -> its ink map. Raises a DrawingError subclass on bad input."""
    image = open_image(png_bytes, max_pixels=max_pixels)
    ink, (left, top) = working_ink_region(image)
    return DrawingInk(ink, working_scale(image.size), (top, left))


def preprocess_drawing(png_bytes: bytes, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """PNG bytes of a canvas drawing -> 28x28 float32 in [0, 1], ink = 1.

    The one preprocessing used by the server, training on drawings, the
    notebooks and the tests. Raises a DrawingError subclass on bad input.
    """
    return normalize_ink(drawing_ink(png_bytes, max_pixels=max_pixels).ink)
