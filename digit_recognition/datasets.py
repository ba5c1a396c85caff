"""Loading the data the model learns from and is measured on.

Paths come from arguments or environment variables, never from the code:
`MNIST_PATH` (an .npz with the four Keras arrays) and `PEN_DIGITS_PATH` (the
UNIPEN-derived pen trajectories, JSON lines, gzip). Without MNIST_PATH the
normal Keras download is used, as on a user's machine.
"""
from __future__ import annotations

import gzip
import hashlib
import json
import os
from dataclasses import dataclass

import numpy as np

from .preprocessing import preprocess_image
from .strokes import (
    TRAINING_DIGIT_HEIGHT_FRAC, TRAINING_STROKE_WIDTH_FRAC, CanvasParams, random_canvas_params,
    render_strokes,
)

MNIST_PATH_ENV = "MNIST_PATH"
PEN_DIGITS_PATH_ENV = "PEN_DIGITS_PATH"
# Pen writer groups never trained on (training.DEFAULT_HOLDOUT_GROUPS): the
# benchmarks and tests draw "writers the model never saw" from them.
HELD_OUT_WRITER_GROUPS = ("ced", "imp")


def sha256_of(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def load_mnist(path: str | os.PathLike | None = None):
    """MNIST as ((x_train, y_train), (x_test, y_test)), x float32 in [0, 1].

    `path` or $MNIST_PATH names a local .npz; otherwise Keras downloads it.
    """
    path = path or os.environ.get(MNIST_PATH_ENV)
    if path:
        with np.load(path) as data:
            arrays = (data["x_train"], data["y_train"], data["x_test"], data["y_test"])
    else:
        import keras  # deferred: only this fallback needs it
        (x_tr, y_tr), (x_te, y_te) = keras.datasets.mnist.load_data()
        arrays = (x_tr, y_tr, x_te, y_te)
    x_train, y_train, x_test, y_test = arrays
    return ((x_train.astype(np.float32) / 255.0, y_train.astype(np.int64)),
            (x_test.astype(np.float32) / 255.0, y_test.astype(np.int64)))


@dataclass(frozen=True)
class PenDigit:
    label: int
    writer_group: str
    strokes: list
    line: int = 0  # 1-based line of the file it was read from


# Held-out pen digits whose label is not what was drawn, found by looking at
# every held-out drawing the models missed (README, "Honest answers"), keyed by
# (line of pen_digits_dev.jsonl.gz, label, writer group) so another file's
# lines never match. They stay in the digit measurements, as the issue asks (not
# chased); the number benchmark leaves them out of the numbers it composes, where a
# "7 =" written inside a number is two symbols, not a digit (--keep-wrong-labels).
WRONGLY_LABELLED_PEN_DIGITS = {
    (1751, 7, "ced"): "a 7 followed by '='",
    (1828, 8, "ced"): "an 8 drawn as 'o/o'",
    (1829, 2, "ced"): "a 2 that is a lone ')'",
    (2001, 0, "ced"): "a 0 that is a lone '('",
}


def is_wrongly_labelled(digit: PenDigit) -> bool:
    """True for the drawings listed in WRONGLY_LABELLED_PEN_DIGITS."""
    return (digit.line, digit.label, digit.writer_group) in WRONGLY_LABELLED_PEN_DIGITS


def load_pen_digits(path: str | os.PathLike | None = None) -> list[PenDigit]:
    """The pen-trajectory digits from `path` or $PEN_DIGITS_PATH."""
    path = path or os.environ.get(PEN_DIGITS_PATH_ENV)
    if not path:
        raise FileNotFoundError(
            f"no pen digits file: pass a path or set ${PEN_DIGITS_PATH_ENV}")
    opener = gzip.open if str(path).endswith(".gz") else open
    digits = []
    with opener(path, "rt", encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if line.strip():
                record = json.loads(line)
                digits.append(PenDigit(int(record["label"]), str(record["writer_group"]),
                                       record["strokes"], number))
    return digits


def render_pen_digits(digits, rng: np.random.Generator, renders_per_digit: int = 1,
                      canvas_px: tuple[int, int] = (112, 224)):
    """Render each pen digit as canvas drawings and preprocess them.

    Returns (x, y): x float32 (N, 28, 28) exactly as the server would see the
    drawings. Canvases are smaller than the page's by default because the
    preprocessing is size-invariant (tested) and small canvases render faster.
    """
    images, labels = [], []
    for digit in digits:
        for _ in range(renders_per_digit):
            params = random_canvas_params(rng, canvas_px=canvas_px,
                                          digit_height_frac=TRAINING_DIGIT_HEIGHT_FRAC,
                                          stroke_width_frac=TRAINING_STROKE_WIDTH_FRAC)
            images.append(render_as_model_input(digit.strokes, params))
            labels.append(digit.label)
    return np.stack(images).astype(np.float32), np.asarray(labels, dtype=np.int64)


def render_as_model_input(strokes, params: CanvasParams) -> np.ndarray:
    """Strokes drawn on a canvas as `params` says, then preprocessed: the 28x28 the server would see."""
    # The server's own path from a decoded image (preprocess_drawing minus the
    # PNG round trip, which is lossless): the same 28x28 as the whole canvas
    # in floats through preprocess_rgba (tests/test_preprocessing_properties.py), faster.
    return preprocess_image(render_strokes(strokes, params))


def _render_chunk(jobs) -> np.ndarray:
    return np.stack([render_as_model_input(strokes, params) for strokes, params in jobs]).astype(np.float32)


def render_jobs(jobs: list, processes: int = 1, chunk: int = 500) -> np.ndarray:
    """[(strokes, CanvasParams)] -> (N, 28, 28) model inputs, in order, on `processes` processes.

    Rendering and preprocessing tens of thousands of drawings is the slow part
    of assembling training data; it parallelises perfectly. Processes are
    spawned (not forked): the parent may hold TensorFlow, which is not fork-safe.
    """
    if not jobs:
        return np.zeros((0, 28, 28), np.float32)
    chunks = [jobs[i:i + chunk] for i in range(0, len(jobs), chunk)]
    if processes <= 1 or len(chunks) == 1:
        return np.concatenate([_render_chunk(c) for c in chunks])
    import concurrent.futures
    import multiprocessing

    with concurrent.futures.ProcessPoolExecutor(processes, mp_context=multiprocessing.get_context("spawn")) as pool:
        return np.concatenate(list(pool.map(_render_chunk, chunks)))
