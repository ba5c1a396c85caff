"""Which writers' drawings training sees: the split by writer group in
digit_recognition.training.load_training_data, on the committed pen samples."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from digit_recognition.datasets import load_pen_digits
from digit_recognition.non_digits import load_pen_chars
from digit_recognition.training import NOT_A_DIGIT_LABEL, TrainingConfig, load_training_data

FIXTURES = Path(__file__).resolve().parent / "fixtures"
DIGITS = FIXTURES / "pen_digits_sample.jsonl.gz"
CHARACTERS = FIXTURES / "pen_chars_sample.jsonl.gz"

SYNTHETIC = 40
CHAR_RENDERS = 2


@pytest.fixture(scope="module")
def calibration_writers():
    config = TrainingConfig()
    digits = sum(d.writer_group in config.calibration_groups for d in load_pen_digits(DIGITS))
    chars = sum(c.writer_group in config.calibration_groups for c in load_pen_chars(CHARACTERS))
    assert digits and chars
    return digits, chars


def data_with(mnist_path, train_on_calibration_chars: bool):
    config = TrainingConfig(mnist_path=mnist_path, pen_digits_path=str(DIGITS), pen_chars_path=str(CHARACTERS),
                            mnist_train_limit=20, mnist_test_limit=10, renders_per_pen_digit=1,
                            renders_per_pen_char=CHAR_RENDERS, synthetic_non_digits=SYNTHETIC,
                            train_on_calibration_chars=train_on_calibration_chars, seed=3)
    return load_training_data(config, log=lambda *_: None)


@pytest.mark.parametrize("trained_on", [True, False])
def test_calibration_writers_digits_stay_held_back_and_their_letters_when_asked(
        mnist_path, calibration_writers, trained_on):
    digits, chars = calibration_writers
    data = data_with(mnist_path, trained_on)
    # Their digits are always held back for the temperature and the threshold: two renders each.
    assert np.sum(data.y_calibration != NOT_A_DIGIT_LABEL) == 2 * digits
    # Not-a-digit drawings kept for calibration: their letters unless trained on, plus synthetic shapes.
    expected = SYNTHETIC // 10 + (0 if trained_on else chars)
    assert np.sum(data.y_calibration == NOT_A_DIGIT_LABEL) == expected
    pen_chars = next(source for source in data.sources if source["name"] == "pen_chars")
    assert pen_chars["calibration_groups_trained_on"] is trained_on


def test_training_on_calibration_letters_adds_exactly_their_renders(mnist_path, calibration_writers):
    _, chars = calibration_writers

    def trained_non_digits(data):
        return int(np.sum(np.concatenate([data.y_train, data.y_val]) == NOT_A_DIGIT_LABEL))

    added = trained_non_digits(data_with(mnist_path, True)) - trained_non_digits(data_with(mnist_path, False))
    assert added == CHAR_RENDERS * chars
