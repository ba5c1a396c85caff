"""Property tests (hypothesis): preprocessing never crashes on any image.

Whatever the size (1 to 300 px a side), mode, bit depth, filter bytes or
content, `preprocess_drawing` either returns a 28x28 float32 array in [0, 1]
or raises a DrawingError subclass (which the app turns into a 4xx). Anything
else would be a 500 in production.

Hypothesis picks the structure (mode, size, content kind) and a seed; numpy
fills in the pixels from the seed, which keeps each example cheap.
"""
from __future__ import annotations

import io
import struct
import zlib

import numpy as np
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from PIL import Image, ImageDraw

from digit_recognition.errors import DrawingError
from digit_recognition.imaging import decode_drawing_image, image_to_rgba, shrink_to_working_size
from digit_recognition.preprocessing import (
    BBOX_THRESHOLD, MNIST_SIZE, drawing_ink, ink_region, preprocess_drawing, preprocess_image, preprocess_rgba,
    working_ink_region,
)

SETTINGS = settings(max_examples=60, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])

SIDES = st.integers(min_value=1, max_value=300)
SEEDS = st.integers(min_value=0, max_value=2**32 - 1)
CONTENT = st.sampled_from(["strokes", "noise", "constant", "sparse", "gradient"])
# Pillow modes it can write as PNG, and (below) the ones it can only hold in memory.
PNG_MODES = ["1", "L", "LA", "P", "RGB", "RGBA", "I;16"]
MEMORY_ONLY_MODES = ["I", "F", "PA", "CMYK", "RGBa", "YCbCr"]


def assert_digit_or_drawing_error(make_digit) -> None:
    try:
        digit = make_digit()
    except DrawingError as exc:
        event(f"refused: {type(exc).__name__}")  # see --hypothesis-show-statistics
        return
    event("28x28 digit")
    assert isinstance(digit, np.ndarray)
    assert digit.shape == (MNIST_SIZE, MNIST_SIZE)
    assert digit.dtype == np.float32
    assert np.isfinite(digit).all()
    assert digit.min() >= 0.0 and digit.max() <= 1.0


def rgba_content(kind: str, width: int, height: int, seed: int) -> np.ndarray:
    """uint8 RGBA pixels of the given kind."""
    rng = np.random.default_rng(seed)
    if kind == "noise":
        return rng.integers(0, 256, (height, width, 4), dtype=np.uint8)
    if kind == "constant":
        return np.broadcast_to(rng.integers(0, 256, 4, dtype=np.uint8), (height, width, 4)).copy()
    if kind == "sparse":
        pixels = np.zeros((height, width, 4), np.uint8)
        count = int(rng.integers(1, 6))
        pixels[rng.integers(0, height, count), rng.integers(0, width, count)] = rng.integers(
            0, 256, (count, 4), dtype=np.uint8)
        return pixels
    if kind == "gradient":
        ramp = np.linspace(0, 255, width, dtype=np.float64)[None, :] * np.ones((height, 1))
        pixels = np.repeat(ramp[..., None], 4, axis=2)
        pixels[..., 3] = 255 if rng.random() < 0.5 else pixels[..., 3]
        return pixels.astype(np.uint8)
    # strokes: a few lines of some colour on some background, transparent or not
    background = tuple(int(v) for v in rng.integers(0, 256, 3)) + (int(rng.choice([0, 255])),)
    image = Image.new("RGBA", (width, height), background)
    draw = ImageDraw.Draw(image)
    for _ in range(int(rng.integers(1, 5))):
        points = [(float(rng.uniform(0, width)), float(rng.uniform(0, height))) for _ in range(3)]
        ink = tuple(int(v) for v in rng.integers(0, 256, 3)) + (255,)
        draw.line(points, fill=ink, width=max(1, int(rng.integers(1, max(2, min(width, height) // 8 + 2)))))
    return np.asarray(image)


def image_in_mode(mode: str, pixels: np.ndarray, seed: int) -> Image.Image:
    rgba = Image.fromarray(pixels)
    if mode == "I;16":
        grey = np.asarray(rgba.convert("L"), dtype=np.uint16)
        scale = int(np.random.default_rng(seed).choice([1, 16, 257]))  # low and full 16-bit range
        return Image.fromarray(grey * scale)
    if mode == "I":
        grey = np.asarray(rgba.convert("L"), dtype=np.int32)
        return Image.fromarray(grey * 1000 - 50_000)  # negative and beyond 16 bits too
    if mode == "F":
        grey = np.asarray(rgba.convert("L"), dtype=np.float32)
        return Image.fromarray(grey * np.float32(np.random.default_rng(seed).uniform(1e-3, 1e3)))
    return rgba.convert(mode)


def png_bytes(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


@SETTINGS
@given(mode=st.sampled_from(PNG_MODES), width=SIDES, height=SIDES, kind=CONTENT, seed=SEEDS)
def test_any_png_gives_a_digit_or_a_drawing_error(mode, width, height, kind, seed):
    image = image_in_mode(mode, rgba_content(kind, width, height, seed), seed)
    data = png_bytes(image)
    assert_digit_or_drawing_error(lambda: preprocess_drawing(data))


@SETTINGS
@given(mode=st.sampled_from(PNG_MODES + MEMORY_ONLY_MODES), width=SIDES, height=SIDES,
       kind=CONTENT, seed=SEEDS)
def test_any_decoded_image_gives_a_digit_or_a_drawing_error(mode, width, height, kind, seed):
    """Every mode Pillow can hand us, PNG-encodable or not, through image_to_rgba."""
    image = image_in_mode(mode, rgba_content(kind, width, height, seed), seed)
    assert_digit_or_drawing_error(lambda: preprocess_rgba(image_to_rgba(image)))


# PNG colour type -> bit depths the format allows, and samples per pixel.
PNG_COLOUR_TYPES = {0: ((1, 2, 4, 8, 16), 1), 2: ((8, 16), 3), 3: ((1, 2, 4, 8), 1),
                    4: ((8, 16), 2), 6: ((8, 16), 4)}


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


@st.composite
def hand_built_pngs(draw) -> bytes:
    """Valid PNG structure with every colour type and bit depth (16-bit RGB and
    RGBA included, which Pillow cannot write), random filter bytes and random
    pixel data; sometimes interlaced, sometimes with the data cut short."""
    colour_type = draw(st.sampled_from(sorted(PNG_COLOUR_TYPES)))
    depths, samples = PNG_COLOUR_TYPES[colour_type]
    depth = draw(st.sampled_from(depths))
    width, height = draw(SIDES), draw(SIDES)
    interlace = draw(st.sampled_from([0, 0, 0, 1]))
    rng = np.random.default_rng(draw(SEEDS))
    row_bytes = (width * samples * depth + 7) // 8
    rows = rng.integers(0, 256, (height, row_bytes + 1), dtype=np.uint8)
    rows[:, 0] = rng.integers(0, 5, height) if draw(st.booleans()) else 0  # filter types 0-4
    raw = rows.tobytes()
    if draw(st.sampled_from([False, False, False, True])) and len(raw) > 1:
        raw = raw[: int(rng.integers(1, len(raw)))]  # truncated pixel data
    header = struct.pack(">IIBBBBB", width, height, depth, colour_type, 0, 0, interlace)
    chunks = [_chunk(b"IHDR", header)]
    if colour_type == 3:
        entries = 1 << depth
        chunks.append(_chunk(b"PLTE", rng.integers(0, 256, entries * 3, dtype=np.uint8).tobytes()))
        if draw(st.booleans()):
            chunks.append(_chunk(b"tRNS", rng.integers(0, 256, entries, dtype=np.uint8).tobytes()))
    chunks.append(_chunk(b"IDAT", zlib.compress(raw)))
    chunks.append(_chunk(b"IEND", b""))
    return b"\x89PNG\r\n\x1a\n" + b"".join(chunks)


@SETTINGS
@given(data=hand_built_pngs())
def test_any_bit_depth_and_colour_type_gives_a_digit_or_a_drawing_error(data):
    assert_digit_or_drawing_error(lambda: preprocess_drawing(data))


@SETTINGS
@given(data=st.binary(min_size=0, max_size=200))
def test_arbitrary_bytes_after_a_png_signature_give_a_drawing_error(data):
    assert_digit_or_drawing_error(lambda: preprocess_drawing(b"\x89PNG\r\n\x1a\n" + data))


@SETTINGS
@given(width=SIDES, height=SIDES, kind=CONTENT, seed=SEEDS,
       dtype=st.sampled_from([np.float32, np.float64]))
def test_any_rgba_array_gives_a_digit_or_a_drawing_error(width, height, kind, seed, dtype):
    """Arrays straight into preprocess_rgba, as training on drawings calls it:
    NaN-free values in [0, 1], any shape from 1x1 up."""
    pixels = rgba_content(kind, width, height, seed).astype(dtype) / 255.0
    if kind == "noise":  # not only multiples of 1/255
        pixels = np.random.default_rng(seed).random((height, width, 4)).astype(dtype)
    assert_digit_or_drawing_error(lambda: preprocess_rgba(pixels))


def outcome(make_digit):
    """A digit array, or the DrawingError subclass raised."""
    try:
        return make_digit()
    except DrawingError as exc:
        return type(exc)


def assert_same_outcome(fast, reference) -> None:
    if isinstance(reference, np.ndarray):
        assert isinstance(fast, np.ndarray), fast
        np.testing.assert_allclose(fast, reference, atol=1e-5)
    else:
        assert fast is reference


@SETTINGS
@given(mode=st.sampled_from(PNG_MODES + MEMORY_ONLY_MODES), width=SIDES, height=SIDES,
       kind=CONTENT, seed=SEEDS)
def test_the_fast_path_gives_what_the_whole_canvas_float_path_gives(mode, width, height, kind, seed):
    """The server (preprocess_drawing) and training (render_pen_digits) find the
    ink on its 8-bit bounding box; the model was trained when the whole canvas
    was turned into float RGBA first. Both must give the same 28x28."""
    image = image_in_mode(mode, rgba_content(kind, width, height, seed), seed)
    assert_same_outcome(outcome(lambda: preprocess_image(image)),
                        outcome(lambda: preprocess_rgba(image_to_rgba(image))))


@SETTINGS
@given(data=hand_built_pngs())
def test_the_fast_path_agrees_on_every_bit_depth_and_colour_type(data):
    def reference():
        return preprocess_rgba(image_to_rgba(decode_drawing_image(data)))
    assert_same_outcome(outcome(lambda: preprocess_drawing(data)), outcome(reference))


@SETTINGS
@given(mode=st.sampled_from(PNG_MODES), width=st.integers(1, 2100), height=st.integers(1, 700),
       kind=CONTENT, seed=SEEDS, transparent=st.booleans())
def test_a_wide_drawing_shrunk_by_its_alpha_alone_gives_the_same_ink(mode, width, height, kind, seed, transparent):
    """drawing_ink shrinks only the alpha channel of a transparent RGBA canvas
    wider than the working size (the page's); the ink map and where it lies must
    be exactly what shrinking the whole image gives."""
    pixels = rgba_content(kind, width, height, seed)
    if transparent:  # the page's canvas: transparent but for the strokes
        pixels = pixels.copy()
        pixels[..., 3] = np.where(np.random.default_rng(seed).random((height, width)) < 0.8, 0, pixels[..., 3])
    image = Image.open(io.BytesIO(png_bytes(image_in_mode(mode, pixels, seed))))
    image.load()
    ink, origin = working_ink_region(image)
    reference, reference_origin = ink_region(shrink_to_working_size(image))
    assert origin == reference_origin
    assert ink.dtype == reference.dtype and np.array_equal(ink, reference)


@SETTINGS
@given(width=st.integers(16, 1200), height=st.integers(16, 1200), seed=SEEDS, transparent=st.booleans())
def test_drawing_ink_boxes_map_back_to_where_the_ink_is_in_the_drawing(width, height, seed, transparent):
    """drawing_ink holds only the box of the drawing with ink in it; a box in
    that map, given back in the drawing's pixels, must land on the ink."""
    rng = np.random.default_rng(seed)
    x0, y0 = int(rng.integers(0, width - 4)), int(rng.integers(0, height - 4))
    x1, y1 = int(rng.integers(x0 + 4, width + 1)), int(rng.integers(y0 + 4, height + 1))
    image = Image.new("RGBA", (width, height), (0, 0, 0, 0) if transparent else (255, 255, 255, 255))
    ImageDraw.Draw(image).rectangle([x0, y0, x1 - 1, y1 - 1], fill=(0, 0, 0, 255))
    drawing = drawing_ink(png_bytes(image))
    strongest = float(drawing.ink.max())
    rows = np.flatnonzero(drawing.ink.max(axis=1) >= BBOX_THRESHOLD * strongest)
    cols = np.flatnonzero(drawing.ink.max(axis=0) >= BBOX_THRESHOLD * strongest)
    x, y, w, h = drawing.box_in_drawing(int(rows[0]), int(cols[0]), int(rows[-1]) + 1, int(cols[-1]) + 1)
    tolerance = drawing.scale  # a shrunk drawing's pixel covers scale x scale of the drawing's
    assert abs(x - x0) < tolerance + 1 and abs(y - y0) < tolerance + 1
    assert abs(x + w - x1) < tolerance + 1 and abs(y + h - y1) < tolerance + 1
