"""The model as the web app uses it: loaded once per process, called per request.

TensorFlow is not fork-safe, so the model is loaded by each gunicorn worker
(no --preload) when it builds the app. Inference goes through
`DigitClassifier`'s traced tf.function, not `model.predict()`.
"""
from __future__ import annotations

import base64
import functools
import io
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from digit_recognition.model import DigitClassifier
from digit_recognition.preprocessing import preprocess_drawing
from digit_recognition.training import metadata_path_for


@dataclass(frozen=True)
class Prediction:
    digit: int
    probabilities: list[float]
    digit_image: np.ndarray  # the 28x28 the model saw

    @property
    def confidence(self) -> float:
        return self.probabilities[self.digit]


def preview_data_url(digit_image: np.ndarray) -> str:
    """The 28x28 model input as a PNG data URL (white ink on black, like MNIST)."""
    pixels = np.clip(np.rint(digit_image * 255.0), 0, 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels, mode="L").save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


class Recognizer:
    """Preprocess a drawing and classify it. One instance per worker process.

    Holds no per-request state: the classifier's graph function is safe to call
    from several threads at once, so gunicorn's threads share it unlocked.
    """

    def __init__(self, model_path: str | Path, max_pixels: int):
        self.model_path = Path(model_path)
        self.max_pixels = max_pixels
        self.classifier = DigitClassifier.load(self.model_path)
        self.metadata = self._read_metadata()
        self.model_version = str(self.metadata.get("model_version") or self.model_path.stem)

    def _read_metadata(self) -> dict:
        path = metadata_path_for(self.model_path)
        if not path.exists():
            return {}
        return json.loads(path.read_text(encoding="utf-8"))

    def predict_digit_image(self, digit_image: np.ndarray) -> Prediction:
        probabilities = self.classifier.predict_probabilities(digit_image[None])[0].astype(np.float64)
        probabilities = probabilities / probabilities.sum()  # exact sum to 1 in float64
        return Prediction(int(probabilities.argmax()), [float(p) for p in probabilities], digit_image)

    def predict_png(self, png_bytes: bytes) -> Prediction:
        """PNG bytes -> Prediction. Raises DrawingError subclasses on bad input."""
        return self.predict_digit_image(preprocess_drawing(png_bytes, max_pixels=self.max_pixels))

    def self_test(self) -> bool:
        """Run the model on a blank input: proves the graph executes (readiness)."""
        probabilities = self.classifier.predict_probabilities(np.zeros((1, 28, 28), np.float32))
        return bool(np.isfinite(probabilities).all() and abs(float(probabilities.sum()) - 1.0) < 1e-3)


@functools.lru_cache(maxsize=4)
def load_recognizer(model_path: str, max_pixels: int) -> Recognizer:
    """One Recognizer per model file per process, however many apps are built.

    Production builds one app per worker; tests build many, and the model
    should still be loaded only once.
    """
    return Recognizer(model_path, max_pixels)
