"""Keras model -> `.tflite` for the server's LiteRT runtime, checked before it is kept.

A conversion is accepted only if, on a set of real digits (the MNIST test set
and rendered pen drawings when they are available), LiteRT's probabilities
differ from Keras' by at most MAX_PROBABILITY_DIFFERENCE anywhere and every
answer (argmax) is the same. `save_model` (training, fine-tuning, notebooks)
and `python -m digit_recognition convert MODEL.keras` both go through here.
"""
from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from .atomic_files import atomic_write_bytes
from .evaluation import EVAL_BATCH
from .inference import LiteRTClassifier
from .model_files import files_entry, keras_path_for, metadata_path_for, read_metadata, tflite_path_for

MAX_PROBABILITY_DIFFERENCE = 1e-4
PROBE_SEED = 20240614
PROBE_COUNT = 64


class ConversionError(RuntimeError):
    """The .tflite does not answer like the Keras model; nothing was written."""


@dataclass(frozen=True)
class ConversionCheck:
    check_set: str  # what the images were
    samples: int
    max_abs_difference: float  # largest |p_litert - p_keras| over every sample and class
    different_answers: int  # samples whose argmax differs

    @property
    def passed(self) -> bool:
        return (self.samples > 0 and self.max_abs_difference <= MAX_PROBABILITY_DIFFERENCE
                and self.different_answers == 0)

    def summary(self) -> str:
        return (f"LiteRT vs Keras on {self.samples} digits ({self.check_set}): largest probability "
                f"difference {self.max_abs_difference:.2e} (limit {MAX_PROBABILITY_DIFFERENCE:.0e}), "
                f"{self.different_answers} different answers")

    def as_metadata(self) -> dict:
        return {**asdict(self), "max_abs_difference": float(f"{self.max_abs_difference:.3e}"),
                "limit": MAX_PROBABILITY_DIFFERENCE}


def to_tflite_bytes(model) -> bytes:
    """The Keras model as a float32 .tflite (no quantisation: same weights, same answers)."""
    import tensorflow as tf

    return tf.lite.TFLiteConverter.from_keras_model(model).convert()


def probe_digits(count: int = PROBE_COUNT, seed: int = PROBE_SEED) -> np.ndarray:
    """A fixed set of digit-like 28x28 inputs for when no data set is at hand:
    blank, noise and random thick strokes. Used only to check arithmetic."""
    from PIL import Image, ImageDraw

    rng = np.random.default_rng(seed)
    images = [np.zeros((28, 28), np.float32), rng.uniform(0, 1, (28, 28)).astype(np.float32)]
    while len(images) < count:
        canvas = Image.new("L", (28, 28), 0)
        points = [tuple(p) for p in rng.uniform(4, 24, (int(rng.integers(2, 6)), 2))]
        ImageDraw.Draw(canvas).line(points, fill=255, width=int(rng.integers(2, 4)), joint="curve")
        images.append(np.asarray(canvas, np.float32) / 255.0)
    return np.stack(images)


def check_conversion(model, tflite_bytes: bytes, images: np.ndarray, check_set: str = "given digits",
                     batch: int = EVAL_BATCH) -> ConversionCheck:
    """Run `images` through the Keras model and the .tflite and compare."""
    from .model import DigitClassifier

    keras_classifier = DigitClassifier(model)
    litert_classifier = LiteRTClassifier(tflite_bytes)
    largest, different = 0.0, 0
    for start in range(0, len(images), batch):
        chunk = images[start:start + batch]
        expected = keras_classifier.predict_probabilities(chunk)
        got = litert_classifier.predict_probabilities(chunk)
        if got.shape != expected.shape:
            raise ConversionError(f"LiteRT answers shape {got.shape}, Keras {expected.shape}")
        difference = np.abs(got - expected)
        # NaN compares false with everything: count a non-finite answer as infinitely off.
        largest = max(largest, float(difference.max()) if np.isfinite(difference).all() else float("inf"))
        different += int((got.argmax(axis=1) != expected.argmax(axis=1)).sum())
    return ConversionCheck(check_set, int(len(images)), largest, different)


def convert_checked(model, check_images: np.ndarray | None = None,
                    check_set: str = "given digits") -> tuple[bytes, ConversionCheck]:
    """Convert and check; raises ConversionError when the check fails."""
    if check_images is None or len(check_images) == 0:
        check_images, check_set = probe_digits(), f"{PROBE_COUNT} synthetic probe digits"
    tflite_bytes = to_tflite_bytes(model)
    check = check_conversion(model, tflite_bytes, np.asarray(check_images, np.float32), check_set)
    if not check.passed:
        raise ConversionError("conversion to .tflite refused: " + check.summary())
    return tflite_bytes, check


def conversion_check_set(mnist_path: str | None = None, pen_digits_path: str | None = None,
                         holdout_groups=None, seed: int = 0, log=print) -> tuple[np.ndarray, str]:
    """The digits a conversion is checked on: the MNIST test set and the held-out pen
    writers rendered as canvas drawings, whichever are available (files given or
    $MNIST_PATH / $PEN_DIGITS_PATH); the synthetic probe set when neither is."""
    from . import datasets
    from .training import DEFAULT_HOLDOUT_GROUPS

    holdout_groups = DEFAULT_HOLDOUT_GROUPS if holdout_groups is None else holdout_groups
    parts, names = [], []
    mnist_path = mnist_path or os.environ.get(datasets.MNIST_PATH_ENV)
    if mnist_path:
        _, (x_test, _) = datasets.load_mnist(mnist_path)
        parts.append(x_test)
        names.append(f"MNIST test {len(x_test)}")
    pen_digits_path = pen_digits_path or os.environ.get(datasets.PEN_DIGITS_PATH_ENV)
    if pen_digits_path:
        held_out = [d for d in datasets.load_pen_digits(pen_digits_path) if d.writer_group in holdout_groups]
        if held_out:
            x_pen, _ = datasets.render_pen_digits(held_out, np.random.default_rng(seed), 1)
            parts.append(x_pen)
            names.append(f"pen drawings {len(x_pen)}")
    if not parts:
        log("no MNIST or pen file given: checking the conversion on synthetic probe digits only")
        return probe_digits(), f"{PROBE_COUNT} synthetic probe digits"
    return np.concatenate(parts).astype(np.float32), " + ".join(names)


def write_tflite_beside(keras_path: str | os.PathLike, tflite_bytes: bytes, check: ConversionCheck,
                        metadata: dict) -> dict:
    """Write x.tflite beside x.keras, then x.json naming both (the commit point)."""
    keras_path = Path(keras_path)
    atomic_write_bytes(tflite_path_for(keras_path), tflite_bytes)
    metadata = {**metadata, "files": files_entry(keras_path, tflite_bytes), "conversion": check.as_metadata()}
    atomic_write_bytes(metadata_path_for(keras_path), (json.dumps(metadata, indent=2) + "\n").encode())
    return metadata


def convert_model_file(model_path: str | os.PathLike, check_images: np.ndarray | None = None,
                       check_set: str = "given digits", log=print) -> ConversionCheck:
    """Give an existing x.keras its x.tflite (and name it in x.json), checked first."""
    import keras

    keras_path = keras_path_for(model_path)
    model = keras.models.load_model(keras_path, compile=False)
    tflite_bytes, check = convert_checked(model, check_images, check_set)
    log(check.summary())
    write_tflite_beside(keras_path, tflite_bytes, check, read_metadata(keras_path))
    log(f"wrote {tflite_path_for(keras_path)} and {metadata_path_for(keras_path)}")
    return check
