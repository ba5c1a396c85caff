"""The model as the web app uses it: loaded once per process, called per request.

The classifier comes from digit_recognition.inference: LiteRT running the
model's .tflite when it can (no TensorFlow imported), else Keras
(INFERENCE_BACKEND). Model files and metadata are found through
digit_recognition.model_files, which needs no training stack.
"""
from __future__ import annotations

import base64
import functools
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from digit_recognition.inference import load_classifier
from digit_recognition.model_files import read_metadata
from digit_recognition.preprocessing import MNIST_SIZE, preprocess_drawing


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

    Holds no per-request state: the classifier is safe to call from several
    threads at once (LiteRT: an interpreter per thread), so gunicorn's threads
    share it unlocked.
    """

    def __init__(self, model_path: str | Path, max_pixels: int, backend: str = "auto"):
        self.model_path = Path(model_path)
        self.max_pixels = max_pixels
        self.classifier = load_classifier(self.model_path, backend)
        self.metadata = read_metadata(self.model_path)
        self.model_version = str(self.metadata.get("model_version") or self.model_path.stem)

    def predict_digit_image(self, digit_image: np.ndarray) -> Prediction:
        probabilities = self.classifier.predict_probabilities(digit_image[None])[0].astype(np.float64)
        probabilities = probabilities / probabilities.sum()  # exact sum to 1 in float64
        return Prediction(int(probabilities.argmax()), [float(p) for p in probabilities], digit_image)

    def predict_png(self, png_bytes: bytes) -> Prediction:
        """PNG bytes -> Prediction. Raises DrawingError subclasses on bad input."""
        return self.predict_digit_image(preprocess_drawing(png_bytes, max_pixels=self.max_pixels))

    def self_test(self) -> bool:
        """Run the model on a blank input: proves the graph executes (readiness)."""
        probabilities = self.classifier.predict_probabilities(np.zeros((1, MNIST_SIZE, MNIST_SIZE), np.float32))
        return bool(probabilities.shape == (1, self.classifier.num_classes)
                    and np.isfinite(probabilities).all() and abs(float(probabilities.sum()) - 1.0) < 1e-3)


@functools.lru_cache(maxsize=4)
def load_recognizer(model_path: str, max_pixels: int, backend: str = "auto") -> Recognizer:
    """One Recognizer per model file per process, however many apps are built.

    Production builds one app per worker; tests build many, and the model
    should still be loaded only once.
    """
    return Recognizer(model_path, max_pixels, backend)
