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
from pathlib import Path

import numpy as np
from PIL import Image

from digit_recognition.inference import load_classifier
from digit_recognition.model_files import read_metadata
from digit_recognition.preprocessing import MNIST_SIZE, drawing_ink
from digit_recognition.reading import DigitReading, DrawingReading, ReadingPolicy, apply_temperature, read_scores
from digit_recognition.segmentation import split_into_parts


def preview_data_url(digit_image: np.ndarray) -> str:
    """The 28x28 model input as a PNG data URL (white ink on black, like MNIST)."""
    pixels = np.clip(np.rint(digit_image * 255.0), 0, 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels, mode="L").save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


class Recognizer:
    """Read a drawing: find its parts, preprocess each, classify, give the verdict.

    One instance per worker process. Holds no per-request state: the
    classifier is safe to call from several threads at once (LiteRT: an
    interpreter per thread), so gunicorn's threads share it unlocked.
    """

    def __init__(self, model_path: str | Path, max_pixels: int,
                 low_confidence: float | None = None, not_digit_threshold: float | None = None,
                 backend: str = "auto"):
        self.model_path = Path(model_path)
        self.max_pixels = max_pixels
        self.classifier = load_classifier(self.model_path, backend)
        self.metadata = read_metadata(self.model_path)
        self.model_version = str(self.metadata.get("model_version") or self.model_path.stem)
        self.policy = policy_for(self.metadata, low_confidence, not_digit_threshold)

    def read_digit_images(self, digit_images: np.ndarray, boxes: list | None = None) -> list[DigitReading]:
        """(N, 28, 28) model inputs -> one DigitReading each (N >= 1)."""
        probabilities = self.classifier.predict_probabilities(digit_images)
        return read_scores(probabilities, digit_images, self.policy, boxes)

    def calibrated_probabilities(self, digit_images: np.ndarray) -> np.ndarray:
        """(N, 28, 28) images -> the model's probabilities tempered by its calibration: segmentation's scorer."""
        probabilities = self.classifier.predict_probabilities(digit_images)
        return apply_temperature(probabilities, self.policy.temperature)

    def read_png(self, png_bytes: bytes) -> DrawingReading:
        """PNG bytes -> DrawingReading. Raises DrawingError subclasses on bad input."""
        drawing = drawing_ink(png_bytes, max_pixels=self.max_pixels)
        # Raises EmptyDrawingError (422) for a blank drawing.
        row, col = drawing.origin
        parts = split_into_parts(drawing.ink, scale=drawing.scale, origin=(col * drawing.scale, row * drawing.scale),
                                 score=self.calibrated_probabilities)
        images = np.stack([part.image for part in parts])
        return DrawingReading(self.read_digit_images(images, [part.box for part in parts]))

    def self_test(self) -> bool:
        """Run the model on a blank input: proves the graph executes (readiness)."""
        probabilities = self.classifier.predict_probabilities(np.zeros((1, MNIST_SIZE, MNIST_SIZE), np.float32))
        return bool(probabilities.shape == (1, self.classifier.num_classes)
                    and np.isfinite(probabilities).all() and abs(float(probabilities.sum()) - 1.0) < 1e-3)


def policy_for(metadata: dict, low_confidence: float | None, not_digit_threshold: float | None) -> ReadingPolicy:
    """The reading policy: the model's own calibration, the app's thresholds."""
    calibration = metadata.get("calibration") or {}
    defaults = ReadingPolicy()
    return ReadingPolicy(
        temperature=float(calibration.get("temperature", 1.0)),
        low_confidence=defaults.low_confidence if low_confidence is None else float(low_confidence),
        not_digit_threshold=(float(calibration.get("not_digit_threshold", defaults.not_digit_threshold))
                             if not_digit_threshold is None else float(not_digit_threshold)),
    )


@functools.lru_cache(maxsize=4)
def load_recognizer(model_path: str, max_pixels: int, low_confidence: float | None = None,
                    not_digit_threshold: float | None = None, backend: str = "auto") -> Recognizer:
    """One Recognizer per model file per process, however many apps are built.

    Production builds one app per worker; tests build many, and the model
    should still be loaded only once.
    """
    return Recognizer(model_path, max_pixels, low_confidence, not_digit_threshold, backend)
