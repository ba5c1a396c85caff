"""POST /predict reads a whole number; POST /labels keeps one digit per sample.

Real pen digits of writers the model never trained on, written as a line on the
page's wide canvas, through the real app and the shipped model.
"""
from __future__ import annotations

import math

import numpy as np
import pytest

from testing_support.number_drawings import add_mark, render_number
from digit_recognition.datasets import HELD_OUT_WRITER_GROUPS
from digit_recognition.preprocessing import preprocess_drawing
from digit_recognition.reading import VERDICTS
from digit_recognition.strokes import to_png_bytes
from testing_support.drawings import data_url, pen_digits

HELD_OUT = HELD_OUT_WRITER_GROUPS


@pytest.fixture(scope="module")
def held_out(pen_digits_path):
    return [d for d in pen_digits(pen_digits_path) if d.writer_group in HELD_OUT]


def number_drawing(held_out, text, seed=0, **kwargs):
    firsts = {}
    digits = []
    for c in text:  # a different writer's sample for each repeat of a digit
        nth = firsts.get(c, 0)
        firsts[c] = nth + 1
        # (At most two strokes: the pen set holds a few samples of a digit and
        # something else, e.g. a "7" followed by "=", labelled as the digit.)
        digits.append([d for d in held_out if d.label == int(c) and len(d.strokes) <= 2][nth])
    return render_number(digits, np.random.default_rng(seed), **kwargs)


def predict(client, png):
    response = client.post("/predict", json={"image": data_url(png)})
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()


@pytest.mark.parametrize("text, canvas_height", [("2024", 320), ("58", 400), ("3917", 480)])
def test_a_number_comes_back_with_one_entry_per_digit(client, held_out, text, canvas_height):
    drawing = number_drawing(held_out, text, seed=len(text), canvas_height=canvas_height)
    body = predict(client, to_png_bytes(drawing.image))
    assert body["number"] == text
    assert body["verdict"] in ("digit", "unsure")
    # Several parts: the single-digit fields are null, the whole number's confidence is the product.
    assert body["digit"] is None and body["runner_up"] is None
    assert body["probabilities"] is None and body["preview"] is None
    parts = body["digits"]
    assert [p["digit"] for p in parts] == [int(c) for c in text]
    assert body["confidence"] == pytest.approx(math.prod(p["confidence"] for p in parts))
    assert body["not_digit_score"] == pytest.approx(max(p["not_digit_score"] for p in parts))
    for part, expected_box in zip(parts, drawing.boxes, strict=False):
        assert part["verdict"] in VERDICTS
        assert len(part["probabilities"]) == 10
        assert sum(part["probabilities"]) == pytest.approx(1.0, abs=1e-6)
        assert part["confidence"] == pytest.approx(max(part["probabilities"]))
        assert part["preview"].startswith("data:image/png;base64,")
        # The box is in the drawing's own pixels, even when the server shrank a
        # large drawing first (480 px high is 1200 px wide: read at a third).
        # (To within the shrink factor, plus antialiasing.)
        shrink = math.ceil(drawing.image.width / 512)
        assert np.allclose(part["box"], expected_box, atol=2 + 2 * shrink), (part["box"], expected_box)


def test_one_digit_on_the_wide_canvas_answers_as_before(client, held_out):
    drawing = number_drawing(held_out, "6", seed=2)
    png = to_png_bytes(drawing.image)
    body = predict(client, png)
    assert body["number"] == "6" and body["digit"] == 6
    assert len(body["probabilities"]) == 10 and body["preview"] is not None
    [part] = body["digits"]
    assert part["digit"] == 6 and part["preview"] == body["preview"]
    assert np.allclose(part["box"], drawing.boxes[0], atol=3)
    # The model saw exactly the single-digit preprocessing of the whole drawing.
    from flask_app.recognizer import preview_data_url
    assert body["preview"] == preview_data_url(preprocess_drawing(png))


def test_labelling_a_drawing_of_several_digits_is_refused_and_stores_nothing(client, app, held_out):
    from pathlib import Path

    labels_dir = Path(app.config["LABELS_DIR"])
    before = sorted(labels_dir.rglob("*")) if labels_dir.exists() else []
    drawing = number_drawing(held_out, "42", seed=1)
    response = client.post("/labels", json={"image": data_url(to_png_bytes(drawing.image)), "label": 4})
    assert response.status_code == 422, response.get_data(as_text=True)
    assert "one digit per sample" in response.get_json()["error"]
    after = sorted(labels_dir.rglob("*")) if labels_dir.exists() else []
    assert [p for p in after if p.is_file()] == [p for p in before if p.is_file()]
    # The same page's single digit is stored as always.
    single = number_drawing(held_out, "4", seed=1)
    response = client.post("/labels", json={"image": data_url(to_png_bytes(single.image)), "label": 4})
    assert response.status_code == 201, response.get_data(as_text=True)


@pytest.mark.parametrize("text", ["3.5", "1-2", "0.7", "4-9"])
def test_a_dot_or_dash_between_digits_is_named_as_the_part_that_is_not_a_digit(client, held_out, text):
    """The app reads digits, not decimals or ranges: the mark is its own part, answered as
    not a digit (so the number is null), and the page can show which part that is."""
    digits = text[0] + text[2]
    drawing = add_mark(number_drawing(held_out, digits, seed=3, gaps=(0.5, 0.6)), 0, text[1])
    body = predict(client, to_png_bytes(drawing.image))
    assert body["verdict"] == "not_a_digit"
    assert body["number"] is None and body["digit"] is None and body["confidence"] is None
    assert [p["verdict"] for p in body["digits"]] == ["digit", "not_a_digit", "digit"]
    first, mark, last = body["digits"]
    assert (first["digit"], last["digit"]) == (int(text[0]), int(text[2]))
    assert mark["digit"] is None and mark["confidence"] is None and mark["not_digit_score"] >= 0.5
    # Its box is the mark's, between the digits.
    assert np.allclose(mark["box"], drawing.boxes[1], atol=3), (mark["box"], drawing.boxes[1])
