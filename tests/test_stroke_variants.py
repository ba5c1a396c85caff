"""Writing styles added to real pen digits: each variant adds what such a writer
would draw and keeps the writer's own strokes."""
from __future__ import annotations

import numpy as np
import pytest

from digit_recognition.stroke_variants import VARIANTS, vary
from testing_support.drawings import pen_digits


def _array(stroke) -> np.ndarray:
    return np.asarray(stroke, dtype=np.float64).reshape(-1, 2)


@pytest.fixture(scope="module")
def digits(pen_digits_path):
    return pen_digits(pen_digits_path)


@pytest.mark.parametrize("label", sorted(VARIANTS))
def test_variants_keep_every_stroke_the_writer_drew(digits, label):
    rng = np.random.default_rng(label)
    samples = [d for d in digits if d.label == label][:20]
    assert samples
    for digit in samples:
        varied = vary(label, digit.strokes, rng)
        # Each original stroke is still there, whole and in order, inside some stroke of the variant.
        flat = [tuple(map(tuple, _array(s))) for s in varied]
        for stroke in digit.strokes:
            points = tuple(map(tuple, _array(stroke)))
            assert any(points == s[i:i + len(points)] for s in flat for i in range(len(s) - len(points) + 1))


def test_digits_without_variants_come_back_unchanged(digits):
    rng = np.random.default_rng(0)
    for digit in digits:
        if digit.label not in VARIANTS:
            assert vary(digit.label, digit.strokes, rng) is digit.strokes
