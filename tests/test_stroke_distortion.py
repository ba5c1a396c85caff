"""Strokes placed as another hand would: the drawing changes a little, keeps its
strokes, and stays the digit it was."""
from __future__ import annotations

import numpy as np
import pytest

from digit_recognition.stroke_distortion import distort
from digit_recognition.strokes import random_canvas_params, render_strokes, to_png_bytes
from testing_support.drawings import pen_digits
from tests.browser_fixtures import shipped_recognizer


def _arrays(strokes) -> list[np.ndarray]:
    return [np.asarray(s, dtype=np.float64).reshape(-1, 2) for s in strokes]


@pytest.fixture(scope="module")
def digits(pen_digits_path):
    return pen_digits(pen_digits_path)[:300]


def test_strength_zero_changes_nothing_and_draws_nothing(digits):
    """Off (training's default), training renders exactly what it rendered before."""
    rng = np.random.default_rng(0)
    for digit in digits[:50]:
        assert distort(digit.strokes, rng, strength=0.0) is digit.strokes
    assert rng.random() == np.random.default_rng(0).random()


def test_every_stroke_and_point_is_kept_and_moved_a_little(digits):
    rng = np.random.default_rng(1)
    moved_any = 0
    for digit in digits:
        before = _arrays(digit.strokes)
        after = _arrays(distort(digit.strokes, rng))
        assert [len(a) for a in after] == [len(b) for b in before]
        everything = np.concatenate(before)
        height = max(np.ptp(everything[:, 1]), 0.3 * np.ptp(everything[:, 0]), 1.0)
        shift = np.abs(np.concatenate(after) - everything).max() / height
        # Every change is clipped at two standard deviations: however unlucky the
        # draw, no point travels more than a third of the drawing's height.
        assert shift < 0.34
        moved_any += shift > 0.01
    assert moved_any == len(digits)


def test_a_dot_stays_a_dot():
    dot = [[[500, 500]]]
    moved = distort(dot, np.random.default_rng(2))
    assert len(moved) == 1 and len(moved[0]) == 1


def test_the_distorted_digits_are_still_read_as_that_digit(digits):
    """The shipped model reads the moved drawings about as well as the drawings
    themselves: the distortion changes the hand, not the digit."""
    recognizer = shipped_recognizer()
    rng = np.random.default_rng(3)
    right = {"as drawn": 0, "distorted": 0}
    for digit in digits:
        params = random_canvas_params(rng, style="black_on_white")
        for kind, strokes in (("as drawn", digit.strokes), ("distorted", distort(digit.strokes, rng))):
            answer = recognizer.read_png(to_png_bytes(render_strokes(strokes, params))).to_json(lambda _: "")
            right[kind] += answer["digit"] == digit.label
    assert right["as drawn"] >= 0.95 * len(digits)
    assert right["distorted"] >= right["as drawn"] - 0.03 * len(digits), right
