"""POST /predict: a drawing in, the digit and what the model saw out."""
from __future__ import annotations

from flask import Blueprint, current_app, jsonify

from .recognizer import preview_data_url
from .request_parsing import image_bytes, json_body

bp = Blueprint("predict", __name__)


@bp.post("/predict")
def predict():
    png = image_bytes(json_body())
    recognizer = current_app.extensions["recognizer"]
    prediction = recognizer.predict_png(png)
    return jsonify(
        digit=prediction.digit,
        probabilities=prediction.probabilities,
        preview=preview_data_url(prediction.digit_image),
        model_version=recognizer.model_version,
    )
