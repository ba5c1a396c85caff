"""POST /predict with the real shipped model: right answers, and every error
case gets its own status with a JSON message (never a 500)."""
from __future__ import annotations

import base64
import io
import json

import numpy as np
import pytest
from PIL import Image

from testing_support.drawings import data_url, mnist_as_canvas, png_of


@pytest.fixture(scope="module")
def mnist_test(mnist_path):
    with np.load(mnist_path) as data:
        return data["x_test"].astype(np.float32) / 255.0, data["y_test"].astype(int)


def post_image(client, image_field):
    return client.post("/predict", json={"image": image_field})


def test_prediction_shape(client, mnist_test):
    x, _ = mnist_test
    response = post_image(client, data_url(mnist_as_canvas(x[0])))
    assert response.status_code == 200
    body = response.get_json()
    assert set(body) == {"verdict", "number", "digit", "confidence", "runner_up", "probabilities",
                         "not_digit_score", "preview", "model_version", "digits"}
    assert body["verdict"] == "digit"
    assert isinstance(body["digit"], int) and 0 <= body["digit"] <= 9
    assert body["number"] == str(body["digit"])
    assert body["confidence"] == pytest.approx(max(body["probabilities"]))
    assert body["runner_up"] != body["digit"] and 0 <= body["runner_up"] <= 9
    assert 0.0 <= body["not_digit_score"] < 0.5
    assert len(body["probabilities"]) == 10
    assert sum(body["probabilities"]) == pytest.approx(1.0, abs=1e-6)
    assert body["digit"] == int(np.argmax(body["probabilities"]))
    assert body["preview"].startswith("data:image/png;base64,")
    preview = Image.open(io.BytesIO(base64.b64decode(body["preview"].split(",", 1)[1])))
    assert preview.size == (28, 28)
    assert body["model_version"] == client.application.extensions["recognizer"].model_version
    # One digit drawn: one part, which says the same as the top-level fields.
    [part] = body["digits"]
    assert {k: part[k] for k in ("digit", "verdict", "confidence", "runner_up", "probabilities",
                                 "not_digit_score", "preview")} == \
        {k: body[k] for k in ("digit", "verdict", "confidence", "runner_up", "probabilities",
                              "not_digit_score", "preview")}
    x0, y0, w, h = part["box"]
    assert 0 <= x0 and 0 <= y0 and 0 < w <= 280 and 0 < h <= 280


def test_bare_base64_is_accepted(client, mnist_test):
    x, y = mnist_test
    bare = base64.b64encode(mnist_as_canvas(x[1])).decode()
    response = post_image(client, bare)
    assert response.status_code == 200 and response.get_json()["digit"] == y[1]


@pytest.mark.parametrize("style, canvas_px", [("black_on_white", 280), ("white_on_transparent", 400)])
def test_mnist_test_digits_drawn_on_a_canvas_come_back_right(client, mnist_test, style, canvas_px):
    x, y = mnist_test
    indices = np.random.default_rng(7).choice(len(x), 150, replace=False)
    right = sum(post_image(client, data_url(mnist_as_canvas(x[i], canvas_px, style))).get_json()["digit"] == y[i]
                for i in indices)
    assert right / len(indices) >= 0.97


def test_preview_is_what_the_model_saw(client, mnist_test):
    from digit_recognition.preprocessing import preprocess_drawing

    x, _ = mnist_test
    png = mnist_as_canvas(x[3])
    body = post_image(client, data_url(png)).get_json()
    preview = np.asarray(Image.open(io.BytesIO(base64.b64decode(body["preview"].split(",", 1)[1]))),
                         dtype=np.float32) / 255.0
    assert np.abs(preview - preprocess_drawing(png)).max() <= 1 / 255 + 1e-6


def _gif_bytes():
    buffer = io.BytesIO()
    Image.new("L", (50, 50), 255).save(buffer, format="GIF")
    return buffer.getvalue()


ERROR_CASES = [
    # (case, request kwargs, status)
    ("not JSON content type", dict(data="image=abc", content_type="application/x-www-form-urlencoded"), 415),
    ("malformed JSON", dict(data='{"image": ', content_type="application/json"), 400),
    ("JSON array, not object", dict(json=["image"]), 400),
    ("missing image field", dict(json={"picture": "x"}), 400),
    ("image not a string", dict(json={"image": 12}), 400),
    ("bad base64", dict(json={"image": "data:image/png;base64,@@@not base64@@@"}), 400),
    ("base64 of text", dict(json={"image": base64.b64encode(b"hello, world").decode()}), 400),
    ("GIF, not PNG", dict(json={"image": base64.b64encode(_gif_bytes()).decode()}), 415),
    ("empty drawing", dict(json={"image": data_url(png_of(Image.new("RGBA", (280, 280))))}), 422),
    ("white canvas", dict(json={"image": data_url(png_of(Image.new("RGB", (280, 280), "white")))}), 422),
    ("over the size limit", dict(data=json.dumps({"image": "A" * (3 * 1024 * 1024)}),
                                 content_type="application/json"), 413),
]


@pytest.mark.parametrize("case, kwargs, status", ERROR_CASES, ids=[c[0] for c in ERROR_CASES])
def test_errors_have_their_status(client, case, kwargs, status):
    response = client.post("/predict", **kwargs)
    assert response.status_code == status, response.get_data(as_text=True)
    body = response.get_json()
    assert isinstance(body, dict) and isinstance(body.get("error"), str) and body["error"]
    assert "Traceback" not in body["error"]


def test_wrong_method_is_a_json_405(client):
    response = client.get("/predict")
    assert response.status_code == 405
    assert "error" in response.get_json()


def test_pages_render(client):
    for path, hooks in (("/", ("canvas", "clear", "prediction", "probabilities")),
                        ("/labeling", ("canvas", "submit", "clear", "status", "label-0", "label-9"))):
        response = client.get(path)
        assert response.status_code == 200
        html = response.get_data(as_text=True)
        for hook in hooks:
            assert f'data-testid="{hook}"' in html, (path, hook)
