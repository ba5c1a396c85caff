"""Training the shipped model: data assembly, fitting, honest evaluation, saving.

`train()` is what both `python -m digit_recognition train` and
`model_training.ipynb` call; it reads top to bottom like Keras' mnist_convnet
example: load data, print shapes, fit, evaluate once on the test set, save.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import os
import platform
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import datasets
from .atomic_files import atomic_write_bytes
from .conversion import convert_checked, write_tflite_beside
from .evaluation import accuracy_of, predict_digits
from .model import DigitClassifier, build_augmenter, build_model, compile_model
from .model_files import metadata_path_for, tflite_path_for  # noqa: F401  (metadata_path_for: re-exported)

# Pen writer groups never trained on, so accuracy on them is an honest
# "new writers" figure (the pen set is split by writer group, never by sample).
DEFAULT_HOLDOUT_GROUPS = ("ced", "imp")


@dataclass
class TrainingConfig:
    mnist_path: str | None = None  # None: $MNIST_PATH, else the Keras download
    pen_digits_path: str | None = None  # None: $PEN_DIGITS_PATH, else MNIST only
    holdout_groups: tuple[str, ...] = DEFAULT_HOLDOUT_GROUPS
    renders_per_pen_digit: int = 3
    epochs: int = 6
    batch_size: int = 128
    learning_rate: float = 2e-3
    mnist_train_limit: int | None = None  # tiny runs in tests
    mnist_test_limit: int | None = None  # tiny runs in tests; None: the whole test set
    pen_digit_limit: int | None = None
    validation_fraction: float = 0.04
    seed: int = 0


@dataclass
class TrainingData:
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    x_pen_holdout: np.ndarray | None
    y_pen_holdout: np.ndarray | None
    sources: list[dict] = field(default_factory=list)


def resolve_path(explicit: str | None, env_var: str) -> str | None:
    return explicit or os.environ.get(env_var) or None


def load_training_data(config: TrainingConfig, log=print) -> TrainingData:
    """MNIST, plus the pen set rendered as canvas drawings when it is available."""
    rng = np.random.default_rng(config.seed)
    mnist_path = resolve_path(config.mnist_path, datasets.MNIST_PATH_ENV)
    (x_mnist, y_mnist), (x_test, y_test) = datasets.load_mnist(mnist_path)
    sources = [{"name": "mnist", "file": Path(mnist_path).name if mnist_path else "keras download",
                "sha256": datasets.sha256_of(mnist_path) if mnist_path else None,
                "samples": int(len(x_mnist))}]
    if config.mnist_train_limit:
        x_mnist, y_mnist = x_mnist[:config.mnist_train_limit], y_mnist[:config.mnist_train_limit]
    if config.mnist_test_limit:
        x_test, y_test = x_test[:config.mnist_test_limit], y_test[:config.mnist_test_limit]
    parts_x, parts_y = [x_mnist], [y_mnist]
    x_hold = y_hold = None

    pen_path = resolve_path(config.pen_digits_path, datasets.PEN_DIGITS_PATH_ENV)
    if pen_path:
        pen = datasets.load_pen_digits(pen_path)
        if config.pen_digit_limit:
            pen = [pen[i] for i in rng.permutation(len(pen))[:config.pen_digit_limit]]
        train_digits = [d for d in pen if d.writer_group not in config.holdout_groups]
        holdout_digits = [d for d in pen if d.writer_group in config.holdout_groups]
        log(f"pen digits: {len(train_digits)} for training, {len(holdout_digits)} held out "
            f"(writer groups {', '.join(config.holdout_groups)})")
        x_pen, y_pen = datasets.render_pen_digits(train_digits, rng, config.renders_per_pen_digit)
        parts_x.append(x_pen)
        parts_y.append(y_pen)
        if holdout_digits:
            x_hold, y_hold = datasets.render_pen_digits(holdout_digits, rng, 1)
        sources.append({"name": "pen_digits", "file": Path(pen_path).name,
                        "sha256": datasets.sha256_of(pen_path),
                        "samples": int(len(train_digits)),
                        "renders_per_digit": config.renders_per_pen_digit,
                        "holdout_groups": list(config.holdout_groups)})
    else:
        log("no pen digits file given: training on MNIST alone")

    x_all = np.concatenate(parts_x)
    y_all = np.concatenate(parts_y)
    order = rng.permutation(len(x_all))
    x_all, y_all = x_all[order], y_all[order]
    n_val = int(len(x_all) * config.validation_fraction)
    return TrainingData(x_all[n_val:], y_all[n_val:], x_all[:n_val], y_all[:n_val],
                        x_test, y_test, x_hold, y_hold, sources)


def make_dataset(x: np.ndarray, y: np.ndarray, batch_size: int, seed: int, augment: bool):
    import tensorflow as tf

    ds = tf.data.Dataset.from_tensor_slices((x[..., None].astype(np.float32), y))
    if augment:
        augmenter = build_augmenter(seed)
        ds = ds.shuffle(min(len(x), 20_000), seed=seed, reshuffle_each_iteration=True)
        ds = ds.batch(batch_size).map(lambda images, labels: (augmenter(images, training=True), labels),
                                      num_parallel_calls=tf.data.AUTOTUNE)
    else:
        ds = ds.batch(batch_size)
    return ds.prefetch(tf.data.AUTOTUNE)


def fit(model, data_x, data_y, val_x, val_y, *, epochs: int, batch_size: int,
        learning_rate: float, seed: int, verbose: int = 2):
    """Fit with augmentation and a cosine-decayed learning rate; returns the History."""
    import keras

    steps = max(1, int(np.ceil(len(data_x) / batch_size))) * max(epochs, 1)
    schedule = keras.optimizers.schedules.CosineDecay(learning_rate, decay_steps=steps, alpha=0.02)
    compile_model(model, schedule)
    validation = make_dataset(val_x, val_y, 512, seed, augment=False) if len(val_x) else None
    return model.fit(make_dataset(data_x, data_y, batch_size, seed, augment=True),
                     validation_data=validation, epochs=epochs, verbose=verbose)


def weights_digest(model) -> str:
    digest = hashlib.sha256()
    for weight in model.get_weights():
        digest.update(np.ascontiguousarray(weight).tobytes())
    return digest.hexdigest()


def model_version(model, created_at: dt.datetime) -> str:
    return f"digit-cnn-{created_at:%Y%m%d}-{weights_digest(model)[:8]}"


def save_model(model, path: str | os.PathLike, metadata: dict, check_images: np.ndarray | None = None,
               check_set: str = "given digits") -> dict:
    """Save the model as x.keras, its LiteRT form as x.tflite and the metadata
    naming both as x.json, each atomically (the JSON last: it is the commit point).

    The .tflite is checked against the Keras model on `check_images` (a fixed
    synthetic probe set when None) before anything is written; a conversion
    that answers differently raises ConversionError. Returns the metadata as
    written (with "files" and "conversion" added).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    import keras

    tflite_bytes, check = convert_checked(model, check_images, check_set)
    # Save the weights without the optimizer's state: a third of the size, and
    # fine-tuning starts a fresh optimizer anyway.
    architecture = json.loads(model.to_json())
    architecture.pop("compile_config", None)  # rebuilt uncompiled: no optimizer attached
    servable = keras.models.model_from_json(json.dumps(architecture))
    servable.set_weights(model.get_weights())
    with tempfile.TemporaryDirectory(dir=path.parent) as scratch:
        scratch_file = Path(scratch) / path.name  # Keras insists on the .keras suffix
        servable.save(scratch_file)
        atomic_write_bytes(path, scratch_file.read_bytes())
    return write_tflite_beside(path, tflite_bytes, check, metadata)


def train(config: TrainingConfig, output_path: str | os.PathLike | None = None, log=print):
    """Train from scratch, evaluate once on the MNIST test set, save if asked.

    Returns (model, history, metadata).
    """
    data = load_training_data(config, log=log)
    log(f"x_train {data.x_train.shape}, x_val {data.x_val.shape}, x_test {data.x_test.shape}")
    model = build_model(config.seed)
    history = fit(model, data.x_train, data.y_train, data.x_val, data.y_val,
                  epochs=config.epochs, batch_size=config.batch_size,
                  learning_rate=config.learning_rate, seed=config.seed)
    classifier = DigitClassifier(model)
    created_at = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    metadata = {
        "model_version": model_version(model, created_at),
        "created_at": created_at.isoformat(),
        "mnist_test_accuracy": round(accuracy_of(predict_digits(classifier, data.x_test), data.y_test), 5),
        "training": {**dataclasses.asdict(config),
                     "train_samples": int(len(data.x_train)),
                     "tensorflow": __import__("tensorflow").__version__,
                     "python": platform.python_version()},
        "data": data.sources,
    }
    # Paths are machine-specific; the sha256 in `data` identifies the files.
    metadata["training"].pop("mnist_path")
    metadata["training"].pop("pen_digits_path")
    if data.x_pen_holdout is not None:
        metadata["pen_holdout_accuracy"] = round(
            accuracy_of(predict_digits(classifier, data.x_pen_holdout), data.y_pen_holdout), 5)
    log(f"MNIST test accuracy: {metadata['mnist_test_accuracy']:.4f}")
    if "pen_holdout_accuracy" in metadata:
        log(f"held-out pen writers accuracy: {metadata['pen_holdout_accuracy']:.4f}")
    if output_path is not None:
        # Checked on the same digits the accuracy figures come from.
        check_x = [data.x_test] + ([data.x_pen_holdout] if data.x_pen_holdout is not None else [])
        check_set = f"MNIST test {len(data.x_test)}" + (
            f" + held-out pen drawings {len(data.x_pen_holdout)}" if data.x_pen_holdout is not None else "")
        metadata = save_model(model, output_path, metadata, np.concatenate(check_x), check_set)
        log(f"LiteRT conversion checked on {check_set}: largest probability difference "
            f"{metadata['conversion']['max_abs_difference']:.1e}, no answer differs")
        log(f"saved {output_path}, {tflite_path_for(output_path)} and {metadata_path_for(output_path)}")
    return model, history, metadata
