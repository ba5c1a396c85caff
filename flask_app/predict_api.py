"""POST /predict: a drawing in; what it reads as, and what the model saw, out.

The answer's fields and cases are documented in the README ("API") and built by
digit_recognition.reading.DrawingReading.to_json.
"""
from __future__ import annotations

from flask import Blueprint, current_app, jsonify

from .recognizer import preview_data_url
from .request_parsing import image_bytes, json_body

bp = Blueprint("predict", __name__)


@bp.post("/predict")
def predict():
    png = image_bytes(json_body())
    recognizer = current_app.extensions["recognizer"]
    reading = recognizer.read_png(png)
    return jsonify(**reading.to_json(preview_data_url), model_version=recognizer.model_version)
