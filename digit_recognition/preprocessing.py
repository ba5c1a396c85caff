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

from dataclasses import dataclass

import numpy as np
from PIL import Image

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
    border = _border_pixels(rgba)
    alpha = rgba[..., 3]
    if np.median(border[:, 3]) < 0.5:
        return alpha.astype(np.float32, copy=True)
    opaque_border = border[border[:, 3] >= 0.5]
    background = np.median(opaque_border[:, :3], axis=0)
    composited = rgba[..., :3] * alpha[..., None] + background * (1.0 - alpha[..., None])
    distance = np.sqrt(np.sum((composited - background) ** 2, axis=-1))
    # Normalise so pure black on pure white (or the reverse) is 1.
    largest_possible = np.sqrt(np.sum(np.maximum(background, 1.0 - background) ** 2))
    return (distance / max(largest_possible, 1e-6)).astype(np.float32)


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
    total = float(digit.sum())
    rows, cols = np.indices(digit.shape)
    centre = (size - 1) / 2.0
    # Where the digit's top-left goes; clamped so the whole digit (one pixel
    # wider after a fractional shift) stays in frame even when lopsided.
    top = min(max(centre - float((rows * digit).sum() / total), 0.0), size - height - 1.0)
    left = min(max(centre - float((cols * digit).sum() / total), 0.0), size - width - 1.0)
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


@dataclass(frozen=True)
class DrawingInk:
    """A whole drawing's ink map and how its pixels map back to the drawing's.

    Large drawings are shrunk by a whole factor before the ink is found, so
    ink pixel (r, c) covers drawing pixels (r * scale, c * scale) onwards.
    """

    ink: np.ndarray  # (H, W) float32, 0 = background, unnormalised (see ink_map)
    scale: int  # drawing pixels per ink pixel, per side

    def box_in_drawing(self, top: int, left: int, bottom: int, right: int) -> tuple[int, int, int, int]:
        """An ink-map box (rows top..bottom, cols left..right, exclusive) as x, y, w, h in the drawing."""
        return (left * self.scale, top * self.scale,
                (right - left) * self.scale, (bottom - top) * self.scale)


def drawing_ink(png_bytes: bytes, max_pixels: int = DEFAULT_MAX_PIXELS) -> DrawingInk:
    """PNG bytes of a canvas drawing -> its ink map. Raises a DrawingError subclass on bad input."""
    image = open_image(png_bytes, max_pixels=max_pixels)
    return DrawingInk(ink_map(image_to_rgba(shrink_to_working_size(image))), working_scale(image.size))


def preprocess_drawing(png_bytes: bytes, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """PNG bytes of a canvas drawing -> 28x28 float32 in [0, 1], ink = 1.

    The one preprocessing used by the server, training on drawings, the
    notebooks and the tests. Raises a DrawingError subclass on bad input.
    """
    return normalize_ink(drawing_ink(png_bytes, max_pixels=max_pixels).ink)
