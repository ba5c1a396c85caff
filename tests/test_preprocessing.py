"""The one preprocessing: the same digit gives (nearly) the same 28x28 whatever
the canvas size, position, scale, colours and background; empty input is refused."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from digit_recognition.errors import EmptyDrawingError
from digit_recognition.preprocessing import preprocess_drawing
from testing_support.drawings import canvas_png, coloured_png, first_pen_digit, mnist_as_canvas, png_of


@pytest.fixture(scope="module")
def strokes(pen_digits_path):
    return first_pen_digit(pen_digits_path, 5).strokes


@pytest.fixture(scope="module")
def reference(strokes):
    return preprocess_drawing(canvas_png(strokes))


def mean_abs_diff(a, b):
    return float(np.abs(a - b).mean())


def test_output_is_mnist_framed(reference):
    assert reference.shape == (28, 28) and reference.dtype == np.float32
    assert reference.min() >= 0.0 and 0.9 < reference.max() <= 1.0
    rows = np.flatnonzero(reference.max(axis=1) > 0.1)
    cols = np.flatnonzero(reference.max(axis=0) > 0.1)
    assert max(rows[-1] - rows[0], cols[-1] - cols[0]) + 1 <= 21  # fits MNIST's 20x20 box
    ys, xs = np.indices(reference.shape)
    com = (float((ys * reference).sum() / reference.sum()), float((xs * reference).sum() / reference.sum()))
    assert com == pytest.approx((13.5, 13.5), abs=0.75)


@pytest.mark.parametrize("dx, dy", [(-0.15, -0.15), (0.15, 0.0), (0.0, 0.15), (0.12, -0.1)])
def test_position_does_not_matter(strokes, reference, dx, dy):
    assert mean_abs_diff(preprocess_drawing(canvas_png(strokes, dx=dx, dy=dy)), reference) < 0.02


@pytest.mark.parametrize("height", [0.3, 0.5, 0.85])
def test_size_does_not_matter(strokes, reference, height):
    # A bigger digit drawn with a proportionally wider brush is the same digit.
    shifted = preprocess_drawing(canvas_png(strokes, height=height, width=0.06 * height / 0.7))
    assert mean_abs_diff(shifted, reference) < 0.03


@pytest.mark.parametrize("canvas_px", [28, 64, 280, 504, 1000, 2000])
def test_canvas_size_does_not_matter(strokes, reference, canvas_px):
    tolerance = 0.06 if canvas_px < 64 else 0.03  # 28 px has barely any pixels to work with
    assert mean_abs_diff(preprocess_drawing(canvas_png(strokes, canvas_px=canvas_px)), reference) < tolerance


@pytest.mark.parametrize("style", ["black_on_white", "white_on_black", "black_on_transparent",
                                   "white_on_transparent"])
def test_style_does_not_matter(strokes, reference, style):
    assert mean_abs_diff(preprocess_drawing(canvas_png(strokes, style=style)), reference) < 0.01


@pytest.mark.parametrize("ink, background", [
    ((200, 30, 30, 255), (255, 250, 205, 255)),  # red ink on a yellow page
    ((30, 60, 200, 255), (0, 0, 0, 0)),  # blue ink on transparent
    ((250, 250, 250, 255), (40, 40, 60, 255)),  # light ink on a dark theme
    ((0, 0, 0, 128), (0, 0, 0, 0)),  # half-transparent ink
])
def test_colours_do_not_matter(strokes, reference, ink, background):
    assert mean_abs_diff(preprocess_drawing(coloured_png(strokes, ink, background)), reference) < 0.02


def test_an_mnist_digit_upscaled_comes_back_as_itself(mnist_path):
    with np.load(mnist_path) as data:
        digits = data["x_test"][:20].astype(np.float32) / 255.0
    correlations = []
    for digit in digits:
        restored = preprocess_drawing(mnist_as_canvas(digit, 280))
        correlations.append(np.corrcoef(restored.ravel(), digit.ravel())[0, 1])
    # Not identical: MNIST's own anti-aliased edges spill past its 20x20 box,
    # and upscaling then shrinking blurs. But clearly the same image.
    assert np.mean(correlations) > 0.75 and min(correlations) > 0.5


@pytest.mark.parametrize("image", [
    Image.new("RGBA", (280, 280), (0, 0, 0, 0)),  # transparent canvas
    Image.new("RGBA", (280, 280), (255, 255, 255, 255)),  # white canvas
    Image.new("RGB", (280, 280), (0, 0, 0)),  # black canvas
    Image.new("RGB", (280, 280), (120, 20, 200)),  # any flat colour
], ids=["transparent", "white", "black", "purple"])
def test_empty_drawing_is_refused(image):
    with pytest.raises(EmptyDrawingError):
        preprocess_drawing(png_of(image))


def test_faint_noise_is_not_a_drawing():
    rng = np.random.default_rng(0)
    noise = (250 + rng.integers(0, 6, size=(280, 280, 3))).astype(np.uint8)  # off-white paper
    with pytest.raises(EmptyDrawingError):
        preprocess_drawing(png_of(Image.fromarray(noise, mode="RGB")))
