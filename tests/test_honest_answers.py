"""The shipped model says "not a digit" when it isn't one, and reads every digit.

Drawings are rendered as the page draws them (round brush, 6.5% of the canvas)
and posted to /predict of the real app with the real model.
"""
from __future__ import annotations

import base64
import json

import numpy as np
import pytest

from digit_recognition.datasets import load_pen_digits
from digit_recognition.non_digits import load_pen_chars, scribble
from digit_recognition.strokes import CanvasParams, render_strokes, to_png_bytes
from flask_app.config import DEFAULT_MODEL_PATH

PAGE_BRUSH = 0.065
# flask_app/static/js/reading.js SURE_CONFIDENCE: at or above it the page says "It's a 4.",
# below it "Probably a 4." (and "Not sure" below the server's LOW_CONFIDENCE).
PAGE_SURE_CONFIDENCE = 0.9


def ask(client, strokes, height=0.6, style="black_on_transparent", keep_box_scale=False, canvas=320):
    params = CanvasParams(canvas, height, 0.0, 0.0, PAGE_BRUSH, style, keep_box_scale=keep_box_scale)
    png = to_png_bytes(render_strokes(strokes, params))
    response = client.post("/predict", json={"image": "data:image/png;base64," + base64.b64encode(png).decode()})
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()


def held_out_groups() -> set[str]:
    metadata = json.loads(DEFAULT_MODEL_PATH.with_suffix(".json").read_text())
    return set(metadata["training"]["holdout_groups"])


def test_the_shipped_model_has_a_not_a_digit_class_and_a_calibration():
    metadata = json.loads(DEFAULT_MODEL_PATH.with_suffix(".json").read_text())
    assert metadata["classes"][-1] == "not_a_digit" and len(metadata["classes"]) == 11
    assert metadata["calibration"]["temperature"] > 0
    assert 0.5 <= metadata["calibration"]["not_digit_threshold"] < 1


@pytest.mark.parametrize("style", ["black_on_transparent", "black_on_white", "white_on_black"])
def test_a_click_is_not_a_digit(client, style):
    answer = ask(client, [[[500, 500]]], height=0.05, style=style, keep_box_scale=True)
    assert answer["verdict"] == "not_a_digit" and answer["digit"] is None and answer["number"] is None


@pytest.mark.parametrize("length", [0.15, 0.4, 0.8])
def test_a_horizontal_line_is_not_a_digit(client, length):
    answer = ask(client, [[[100, 500], [900, 500]]], height=length / 0.8, keep_box_scale=True)
    assert answer["verdict"] == "not_a_digit", answer["not_digit_score"]


def test_a_letter_a_is_not_a_digit(client):
    letter_a = [[[150, 950], [500, 50], [850, 950]], [[300, 600], [700, 600]]]
    answer = ask(client, letter_a)
    assert answer["verdict"] == "not_a_digit", answer


def test_a_scribble_is_not_a_digit(client):
    answer = ask(client, scribble(np.random.default_rng(3)))
    assert answer["verdict"] == "not_a_digit", answer


def test_letters_of_unseen_writers_are_mostly_not_digits(client, pen_chars_path):
    groups = held_out_groups()
    chars = [c for c in load_pen_chars(pen_chars_path) if c.writer_group in groups and c.char in "ACEFHKMNPRUVWX"]
    if len(chars) < 10:
        pytest.skip(f"only {len(chars)} such letters of unseen writers in {pen_chars_path}")
    sample = [chars[i] for i in np.random.default_rng(0).choice(len(chars), min(40, len(chars)), replace=False)]
    called = sum(ask(client, c.strokes)["verdict"] == "not_a_digit" for c in sample)
    # The benchmark measures 86% of unseen writers' characters; a drop below 85% here is a regression.
    assert called >= 0.85 * len(sample), f"{called}/{len(sample)} letters called not a digit"


@pytest.mark.parametrize("label", range(10))
def test_each_digit_of_unseen_writers_is_read(client, pen_digits_path, label):
    """Ten samples of each digit by writers the model never saw: at least nine
    read right, and the page never sure of a wrong digit: an ambiguous one may
    come back "Not sure" or "Probably", with the right digit as the runner-up."""
    groups = held_out_groups()
    # At most two strokes: a few pen samples are two symbols (a "7" then "="), which
    # the app rightly reads as two parts.
    digits = [d for d in load_pen_digits(pen_digits_path)
              if d.writer_group in groups and d.label == label and len(d.strokes) <= 2][:10]
    assert len(digits) == 10, f"only {len(digits)} held-out {label}s in {pen_digits_path}"
    answers = [ask(client, digit.strokes) for digit in digits]
    missed = [(answer["verdict"], answer["digit"], answer["confidence"], answer["runner_up"]) for answer in answers
              if answer["digit"] != label]
    assert len(missed) <= 1, missed
    assert all(verdict in ("digit", "unsure") and confidence < PAGE_SURE_CONFIDENCE and runner_up == label
               for verdict, _, confidence, runner_up in missed), missed
