"""An average of trained models: one model file, the mean of its members' answers,
calibrated and measured as a trained model is, served like any other."""
from __future__ import annotations

import json

import keras
import numpy as np
import pytest

from digit_recognition.model import average_of, build_model
from digit_recognition.training import TrainingConfig, train_average
from flask_app.recognizer import Recognizer
from testing_support.drawings import digit_png


@pytest.fixture(scope="module")
def members(tmp_path_factory):
    """Two differently initialised models of the shipped architecture, saved as files."""
    folder = tmp_path_factory.mktemp("members")
    paths = []
    for seed in (1, 2):
        path = folder / f"member_{seed}.keras"
        build_model(seed).save(path)
        paths.append(str(path))
    return paths


def test_the_average_answers_the_mean_of_its_members(members):
    loaded = [keras.models.load_model(path, compile=False) for path in members]
    images = np.random.default_rng(0).random((8, 28, 28, 1)).astype(np.float32)
    expected = np.mean([member(images, training=False).numpy() for member in loaded], axis=0)
    averaged = average_of(loaded)(images, training=False).numpy()
    np.testing.assert_allclose(averaged, expected, atol=1e-6)
    assert not np.allclose(expected, loaded[0](images, training=False).numpy(), atol=1e-3)  # members differ


def test_an_average_of_one_model_is_refused(members):
    with pytest.raises(ValueError, match="at least two"):
        average_of([keras.models.load_model(members[0], compile=False)])


def test_the_average_is_calibrated_measured_saved_and_served(tmp_path, members, mnist_path, pen_digits_path,
                                                               pen_chars_path):
    config = TrainingConfig(mnist_path=mnist_path, pen_digits_path=pen_digits_path, pen_chars_path=pen_chars_path,
                            pen_digit_limit=300, pen_char_limit=300, synthetic_non_digits=100,
                            mnist_test_limit=500)
    output = tmp_path / "model" / "digit_cnn.keras"
    _, metadata = train_average(members, config, output, log=lambda *_: None)

    written = json.loads(output.with_suffix(".json").read_text())
    assert written["model_version"] == metadata["model_version"]
    assert [m["model_version"] for m in written["training"]["average_of"]] == ["member_1.keras", "member_2.keras"]
    assert written["training"]["held_back_only"] is True  # the members were not retrained
    assert "temperature" in written["calibration"] and 0 <= written["mnist_test_accuracy"] <= 1
    assert output.with_suffix(".tflite").is_file()
    # The server reads it like any model: one drawing, one answer with 11 classes behind it.
    recognizer = Recognizer(output, 4_000_000, backend="litert")
    reading = recognizer.read_png(digit_png(3, seed=0)).to_json(lambda image: "")
    assert recognizer.metadata["model_version"] == metadata["model_version"]
    assert len(reading["digits"]) == 1 and 0.0 <= reading["not_digit_score"] <= 1.0

