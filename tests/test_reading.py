"""The verdict rules and the answer's shape (digit_recognition.reading), on exact numbers."""
from __future__ import annotations

import numpy as np
import pytest

from digit_recognition.reading import (
    DrawingReading, ReadingPolicy, apply_temperature, read_scores, split_scores,
)

BLANK = np.zeros((28, 28), np.float32)


def one_hot_ish(index: int, top: float, classes: int = 11) -> np.ndarray:
    p = np.full(classes, (1.0 - top) / (classes - 1))
    p[index] = top
    return p


def read(probabilities, policy: ReadingPolicy | None = None):
    policy = policy or ReadingPolicy()
    probabilities = np.atleast_2d(probabilities)
    return read_scores(probabilities, np.stack([BLANK] * len(probabilities)), policy,
                       [(0, 0, 10, 10)] * len(probabilities))


def no_preview(_image):
    return "preview"


def test_temperature_one_is_identity_and_higher_softens():
    p = np.array([[0.9, 0.05, 0.05]])
    np.testing.assert_allclose(apply_temperature(p, 1.0), p)
    softer = apply_temperature(p, 2.0)
    assert softer[0, 0] < 0.9 and softer.sum() == pytest.approx(1.0)
    # Temperature scaling of softmax outputs equals scaling the logits.
    logits = np.log(p)
    expected = np.exp(logits / 2.0) / np.exp(logits / 2.0).sum()
    np.testing.assert_allclose(softer, expected)
    sharper = apply_temperature(p, 0.5)
    assert sharper[0, 0] > 0.9


def test_ten_class_models_never_say_not_a_digit():
    digits, not_digit = split_scores(one_hot_ish(3, 0.99, classes=10))
    assert not_digit.tolist() == [0.0]
    assert digits.sum() == pytest.approx(1.0)


def test_digit_probabilities_are_conditional_on_being_a_digit():
    p = np.zeros(11)
    p[7], p[1], p[10] = 0.3, 0.1, 0.6
    digits, not_digit = split_scores(p)
    assert not_digit[0] == pytest.approx(0.6)
    assert digits[0, 7] == pytest.approx(0.75) and digits[0, 1] == pytest.approx(0.25)


@pytest.mark.parametrize("probabilities, verdict, digit", [
    (one_hot_ish(4, 0.97), "digit", 4),
    (one_hot_ish(4, 0.55), "unsure", 4),  # 0.55 / (1 - 0.045) of the digit mass < 0.6
    (one_hot_ish(10, 0.9), "not_a_digit", None),
])
def test_verdicts(probabilities, verdict, digit):
    [part] = read(probabilities)
    assert part.verdict == verdict and part.digit == digit
    if verdict == "not_a_digit":
        assert part.confidence is None and part.runner_up is None
    else:
        assert part.confidence == pytest.approx(max(part.probabilities))
        assert part.runner_up is not None and part.runner_up != part.digit


def test_unsure_names_the_runner_up():
    p = np.zeros(11)
    p[4], p[9], p[10] = 0.5, 0.45, 0.05
    [part] = read(p)
    assert part.verdict == "unsure" and part.digit == 4 and part.runner_up == 9


def test_thresholds_come_from_the_policy():
    p = np.zeros(11)
    p[2], p[10] = 0.7, 0.3
    [default] = read(p)
    [strict] = read(p, ReadingPolicy(not_digit_threshold=0.25))
    assert default.verdict == "digit" and strict.verdict == "not_a_digit"


def test_one_part_answer_keeps_the_single_digit_fields():
    answer = DrawingReading(read(one_hot_ish(8, 0.95))).to_json(no_preview)
    assert answer["verdict"] == "digit" and answer["digit"] == 8 and answer["number"] == "8"
    assert answer["probabilities"] == answer["digits"][0]["probabilities"]
    assert answer["preview"] == "preview" and answer["digits"][0]["box"] == [0, 0, 10, 10]


def test_several_parts_read_as_a_number():
    parts = read(np.stack([one_hot_ish(4, 0.95), one_hot_ish(2, 0.9)]))
    answer = DrawingReading(parts).to_json(no_preview)
    assert answer["verdict"] == "digit" and answer["number"] == "42"
    assert answer["digit"] is None and answer["probabilities"] is None and answer["preview"] is None
    assert answer["confidence"] == pytest.approx(parts[0].confidence * parts[1].confidence)
    assert [d["digit"] for d in answer["digits"]] == [4, 2]


def test_a_number_with_a_part_that_is_not_a_digit_says_which():
    parts = read(np.stack([one_hot_ish(4, 0.95), one_hot_ish(10, 0.95), one_hot_ish(1, 0.4)]))
    answer = DrawingReading(parts).to_json(no_preview)
    assert answer["verdict"] == "not_a_digit" and answer["number"] is None
    assert [d["verdict"] for d in answer["digits"]] == ["digit", "not_a_digit", "unsure"]


def test_an_unsure_part_makes_the_whole_number_unsure():
    p = np.zeros(11)
    p[4], p[9] = 0.5, 0.5
    answer = DrawingReading(read(np.stack([one_hot_ish(1, 0.99), p]))).to_json(no_preview)
    assert answer["verdict"] == "unsure" and answer["number"] == "14"
