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
from .calibration import answer_figures, choose_not_digit_threshold, fit_temperature
from .conversion import convert_checked, write_tflite_beside
from .evaluation import accuracy_of, predict_digits, predict_probabilities
from .model import DigitClassifier, average_of, build_augmenter, build_model, compile_model, with_not_digit_output
from .model_files import metadata_path_for, read_metadata, tflite_path_for  # noqa: F401  (metadata_path_for: re-exported)
from .non_digits import (
    DIGIT_LOOKALIKES, NOT_A_DIGIT_CHARS, PEN_CHARS_PATH_ENV, SYNTHETIC_SHAPES, load_pen_chars,
    synthetic_non_digits,
)
from .reading import NOT_A_DIGIT_CLASS, ReadingPolicy, apply_temperature, split_scores
from .stroke_distortion import distort
from .stroke_variants import VARIANTS, vary
from .strokes import CanvasParams, training_canvas_params

# Pen writer groups never trained on, so accuracy on them is an honest
# "new writers" figure (the pen set is split by writer group, never by sample).
DEFAULT_HOLDOUT_GROUPS = datasets.HELD_OUT_WRITER_GROUPS
# A third group whose digits the network never trains on either: the confidence
# calibration and the not-a-digit threshold are fitted on them, so the held-out
# figures above measure those too, on writers neither step has seen. Its letters
# and symbols are trained on (train_on_calibration_chars): the threshold is chosen
# on digits alone, and with one more writer group for "not a digit" held-out
# characters were called not a digit 1.6-2 points more often with digits read as
# well (README, v6; most of it because the threshold no longer needed raising).
DEFAULT_CALIBRATION_GROUPS = ("apa",)
NOT_A_DIGIT_LABEL = NOT_A_DIGIT_CLASS
# Of the real digits of the calibration writers, at most this share may be
# called "not a digit" by the chosen threshold. Not less: a small digit drawn
# with a fat brush is a filled blob, the same pixels as a click once its size is
# normalised away, and for those the page's "draw it a bit larger" is the right
# answer; a letter called a digit is the failure people notice.
MAX_DIGITS_CALLED_NOT_A_DIGIT = 0.02


@dataclass
class TrainingConfig:
    mnist_path: str | None = None  # None: $MNIST_PATH, else the Keras download
    pen_digits_path: str | None = None  # None: $PEN_DIGITS_PATH, else MNIST only
    pen_chars_path: str | None = None  # None: $PEN_CHARS_PATH, else synthetic non-digits only
    holdout_groups: tuple[str, ...] = DEFAULT_HOLDOUT_GROUPS
    calibration_groups: tuple[str, ...] = DEFAULT_CALIBRATION_GROUPS
    renders_per_pen_digit: int = 3
    renders_per_pen_char: int = 2
    synthetic_non_digits: int = 12_000  # scribbles, shapes, dots... (non_digits.SYNTHETIC_SHAPES)
    epochs: int = 6
    batch_size: int = 128
    learning_rate: float = 2e-3
    mnist_train_limit: int | None = None  # tiny runs in tests
    mnist_test_limit: int | None = None  # tiny runs in tests; None: the whole test set
    pen_digit_limit: int | None = None
    pen_char_limit: int | None = None
    validation_fraction: float = 0.04
    # Augmentation beyond rotation, zoom and shift (model.RandomBend): a smooth random bend
    # (pixels, s.d.) and a slant (x shift per row). Measured, and off: see the README.
    warp: float = 0.0
    shear: float = 0.0
    # Stroke-level change of hand (stroke_distortion.distort) for training's pen
    # digits and characters: 0 is off, 1 its stated sizes.
    stroke_distortion: float = 0.0
    init_model_path: str | None = None  # continue from this model's weights (a 10-class one gains the 11th)
    # Train on the calibration writers' letters and symbols too (their digits stay
    # held back for the temperature and the threshold): more writers for "not a digit".
    train_on_calibration_chars: bool = True
    render_processes: int = 2
    # Render only what is held back (calibration and measuring writers) and
    # skip MNIST's training digits: for calibrating and measuring models
    # trained elsewhere (an average of trained models), in a fraction of the time.
    held_back_only: bool = False
    seed: int = 0


@dataclass
class TrainingData:
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    x_pen_holdout: np.ndarray | None  # held-out writers: digits and non-digits (label 10)
    y_pen_holdout: np.ndarray | None
    x_calibration: np.ndarray | None = None  # calibration writers: digits and non-digits
    y_calibration: np.ndarray | None = None
    sources: list[dict] = field(default_factory=list)


def resolve_path(explicit: str | None, env_var: str) -> str | None:
    return explicit or os.environ.get(env_var) or None


def _non_digit_params(rng: np.random.Generator, shape: str) -> CanvasParams:
    params = training_canvas_params(rng)
    if shape in ("dot", "dash"):
        # A click or a dash is small on the canvas: keep its true size.
        return dataclasses.replace(params, keep_box_scale=True, digit_height_frac=float(rng.uniform(0.08, 0.5)))
    return params


class _JobList:
    """Drawings to render, with their labels and the split they belong to."""

    def __init__(self, skip_training: bool = False):
        self.jobs, self.labels, self.splits = [], [], []
        self.skip_training = skip_training

    def add(self, strokes, params, label: int, split: str):
        if split == "train" and self.skip_training:
            return
        self.jobs.append((strokes, params))
        self.labels.append(label)
        self.splits.append(split)

    def take(self, images: np.ndarray, split: str):
        mask = np.asarray(self.splits) == split
        return images[mask], np.asarray(self.labels, dtype=np.int64)[mask]


def load_training_data(config: TrainingConfig, log=print) -> TrainingData:
    """MNIST, plus pen digits and not-a-digit drawings rendered as canvas drawings when available.

    Pen data are split by writer group: `holdout_groups` and `calibration_groups`
    are never trained on. Every pen drawing is rendered as a canvas would draw
    it and pushed through the server's own preprocessing.
    """
    rng = np.random.default_rng(config.seed)
    mnist_path = resolve_path(config.mnist_path, datasets.MNIST_PATH_ENV)
    (x_mnist, y_mnist), (x_test, y_test) = datasets.load_mnist(mnist_path)
    sources = [{"name": "mnist", "file": Path(mnist_path).name if mnist_path else "keras download",
                "sha256": datasets.sha256_of(mnist_path) if mnist_path else None,
                "samples": int(len(x_mnist))}]
    if config.mnist_train_limit:
        x_mnist, y_mnist = x_mnist[:config.mnist_train_limit], y_mnist[:config.mnist_train_limit]
    if config.held_back_only:
        x_mnist, y_mnist = x_mnist[:0], y_mnist[:0]
    if config.mnist_test_limit:
        x_test, y_test = x_test[:config.mnist_test_limit], y_test[:config.mnist_test_limit]
    held_back = set(config.holdout_groups) | set(config.calibration_groups)

    def split_of(group: str) -> str:
        if group in config.holdout_groups:
            return "holdout"
        return "calibration" if group in config.calibration_groups else "train"

    jobs = _JobList(skip_training=config.held_back_only)
    pen_path = resolve_path(config.pen_digits_path, datasets.PEN_DIGITS_PATH_ENV)
    if pen_path:
        pen = datasets.load_pen_digits(pen_path)
        if config.pen_digit_limit:
            pen = [pen[i] for i in rng.permutation(len(pen))[:config.pen_digit_limit]]
        for digit in pen:
            split = split_of(digit.writer_group)
            renders = {"train": config.renders_per_pen_digit, "calibration": 2, "holdout": 1}[split]
            for _ in range(renders):
                # Writing styles MNIST lacks, added to training renders only.
                strokes = digit.strokes
                if split == "train":
                    strokes = distort(vary(digit.label, strokes, rng), rng, config.stroke_distortion)
                jobs.add(strokes, training_canvas_params(rng), digit.label, split)
        log(f"pen digits: {sum(d.writer_group not in held_back for d in pen)} for training; held out: "
            f"groups {', '.join(config.holdout_groups)} (measuring), {', '.join(config.calibration_groups)} "
            f"(calibration)")
        sources.append({"name": "pen_digits", "file": Path(pen_path).name,
                        "sha256": datasets.sha256_of(pen_path),
                        "samples": int(sum(d.writer_group not in held_back for d in pen)),
                        "renders_per_digit": config.renders_per_pen_digit,
                        "style_variants": {str(k): [f.__name__ for f, _ in v] for k, v in VARIANTS.items()},
                        "holdout_groups": list(config.holdout_groups),
                        "calibration_groups": list(config.calibration_groups)})
    else:
        log("no pen digits file given: training on MNIST alone")

    chars_path = resolve_path(config.pen_chars_path, PEN_CHARS_PATH_ENV)
    if chars_path:
        chars = load_pen_chars(chars_path)
        if config.pen_char_limit:
            chars = [chars[i] for i in rng.permutation(len(chars))[:config.pen_char_limit]]
        trained_chars = 0
        for char in chars:
            split = split_of(char.writer_group)
            if split == "calibration" and config.train_on_calibration_chars:
                split = "train"
            trained_chars += split == "train"
            for _ in range(config.renders_per_pen_char if split == "train" else 1):
                strokes = distort(char.strokes, rng, config.stroke_distortion) if split == "train" else char.strokes
                jobs.add(strokes, training_canvas_params(rng), NOT_A_DIGIT_LABEL, split)
        sources.append({"name": "pen_chars", "file": Path(chars_path).name,
                        "sha256": datasets.sha256_of(chars_path),
                        "samples": trained_chars,
                        "calibration_groups_trained_on": config.train_on_calibration_chars,
                        "renders_per_char": config.renders_per_pen_char,
                        "not_a_digit_chars": "".join(sorted(NOT_A_DIGIT_CHARS)),
                        "excluded_lookalikes": "".join(sorted(DIGIT_LOOKALIKES))})
    for split, count in (("train", config.synthetic_non_digits),
                         ("calibration", config.synthetic_non_digits // 10 if pen_path else 0)):
        for shape, strokes in synthetic_non_digits(rng, count):
            jobs.add(strokes, _non_digit_params(rng, shape), NOT_A_DIGIT_LABEL, split)
    if config.synthetic_non_digits:
        sources.append({"name": "synthetic_non_digits", "samples": config.synthetic_non_digits,
                        "shapes": sorted(SYNTHETIC_SHAPES)})

    log(f"rendering {len(jobs.jobs)} drawings on {config.render_processes} processes")
    images = datasets.render_jobs(jobs.jobs, processes=config.render_processes)
    x_train_pen, y_train_pen = jobs.take(images, "train")
    x_cal, y_cal = jobs.take(images, "calibration")
    x_hold, y_hold = jobs.take(images, "holdout")

    x_all = np.concatenate([x_mnist, x_train_pen])
    y_all = np.concatenate([y_mnist, y_train_pen])
    order = rng.permutation(len(x_all))
    x_all, y_all = x_all[order], y_all[order]
    n_val = int(len(x_all) * config.validation_fraction)
    return TrainingData(x_all[n_val:], y_all[n_val:], x_all[:n_val], y_all[:n_val], x_test, y_test,
                        x_hold if len(x_hold) else None, y_hold if len(y_hold) else None,
                        x_cal if len(x_cal) else None, y_cal if len(y_cal) else None, sources)


def make_dataset(x: np.ndarray, y: np.ndarray, batch_size: int, seed: int, augment: bool,
                 warp: float = 0.0, shear: float = 0.0):
    import tensorflow as tf

    ds = tf.data.Dataset.from_tensor_slices((x[..., None].astype(np.float32), y))
    if augment:
        augmenter = build_augmenter(seed, warp=warp, shear=shear)
        ds = ds.shuffle(min(len(x), 20_000), seed=seed, reshuffle_each_iteration=True)
        ds = ds.batch(batch_size).map(lambda images, labels: (augmenter(images, training=True), labels),
                                      num_parallel_calls=tf.data.AUTOTUNE)
    else:
        ds = ds.batch(batch_size)
    return ds.prefetch(tf.data.AUTOTUNE)


def fit(model, data_x, data_y, val_x, val_y, *, epochs: int, batch_size: int,
        learning_rate: float, seed: int, verbose: int = 2, warp: float = 0.0, shear: float = 0.0):
    """Fit with augmentation and a cosine-decayed learning rate; returns the History."""
    import keras

    steps = max(1, int(np.ceil(len(data_x) / batch_size))) * max(epochs, 1)
    schedule = keras.optimizers.schedules.CosineDecay(learning_rate, decay_steps=steps, alpha=0.02)
    compile_model(model, schedule)
    validation = make_dataset(val_x, val_y, 512, seed, augment=False) if len(val_x) else None
    return model.fit(make_dataset(data_x, data_y, batch_size, seed, augment=True, warp=warp, shear=shear),
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


def _rounded(value, digits: int = 5):
    """Floats rounded for the metadata file, through dicts and lists; NaN as null."""
    if isinstance(value, float):
        return None if value != value else round(value, digits)
    if isinstance(value, dict):
        return {k: _rounded(v, digits) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_rounded(v, digits) for v in value]
    return value


def calibrate(classifier, x_calibration, y_calibration, log=print) -> dict:
    """Fit the temperature and the not-a-digit threshold on the calibration writers."""
    if x_calibration is None or not len(x_calibration):
        log("no calibration writers: temperature 1, not-a-digit threshold 0.5")
        return {"temperature": 1.0, "not_digit_threshold": ReadingPolicy().not_digit_threshold}
    raw = predict_probabilities(classifier, x_calibration)
    temperature = fit_temperature(raw, y_calibration)
    _, not_digit = split_scores(apply_temperature(raw, temperature))
    threshold = choose_not_digit_threshold(not_digit[y_calibration != NOT_A_DIGIT_LABEL],
                                           MAX_DIGITS_CALLED_NOT_A_DIGIT)
    log(f"calibration: temperature {temperature:.3f}, not-a-digit threshold {threshold:.3f} "
        f"({len(y_calibration)} drawings)")
    return {"temperature": round(temperature, 4), "not_digit_threshold": round(threshold, 4),
            "samples": int(len(y_calibration))}


def train(config: TrainingConfig, output_path: str | os.PathLike | None = None, log=print):
    """Train, calibrate on unseen writers, evaluate once on the test sets, save if asked.

    Returns (model, history, metadata).
    """
    data = load_training_data(config, log=log)
    log(f"x_train {data.x_train.shape}, x_val {data.x_val.shape}, x_test {data.x_test.shape}, "
        f"not-a-digit share {float((data.y_train == NOT_A_DIGIT_LABEL).mean()):.1%}")
    if config.init_model_path:
        import keras

        model = with_not_digit_output(keras.models.load_model(config.init_model_path, compile=False), config.seed)
        log(f"continuing from {config.init_model_path}")
    else:
        model = build_model(config.seed)
    history = fit(model, data.x_train, data.y_train, data.x_val, data.y_val,
                  epochs=config.epochs, batch_size=config.batch_size,
                  learning_rate=config.learning_rate, seed=config.seed, warp=config.warp, shear=config.shear)
    training = {**dataclasses.asdict(config), "train_samples": int(len(data.x_train))}
    if config.init_model_path:
        training["init_model_version"] = _version_of(config.init_model_path)
    metadata = calibrate_measure_save(model, data, config, training, output_path, log=log)
    return model, history, metadata


def train_average(member_paths: list[str], config: TrainingConfig,
                  output_path: str | os.PathLike | None = None, log=print):
    """The average of trained models as one model: calibrated, measured and saved as `train` does.

    Only the held-back writers are rendered (config.held_back_only is implied):
    the members are already trained. Returns (model, metadata).
    """
    import keras

    config = dataclasses.replace(config, held_back_only=True)
    members = [keras.models.load_model(path, compile=False) for path in member_paths]
    model = average_of(members)
    log(f"average of {len(members)} models: {', '.join(member_paths)}")
    data = load_training_data(config, log=log)
    training = {**dataclasses.asdict(config), "average_of": [_member_record(path) for path in member_paths]}
    return model, calibrate_measure_save(model, data, config, training, output_path, log=log)


def _version_of(model_path: str) -> str:
    metadata = read_metadata(model_path)
    return metadata.get("model_version") if metadata else Path(model_path).name


def _member_record(model_path: str) -> dict:
    """What identifies a member of an average: its version and how it was trained."""
    metadata = read_metadata(model_path)
    if not metadata:
        return {"model_version": Path(model_path).name}
    return {key: metadata.get(key) for key in ("model_version", "mnist_test_accuracy", "pen_holdout_accuracy",
                                               "training")}


def calibrate_measure_save(model, data: TrainingData, config: TrainingConfig, training: dict,
                           output_path: str | os.PathLike | None = None, log=print) -> dict:
    """Calibrate on the calibration writers, measure once on MNIST test and the
    held-out writers, save with the metadata if asked. Returns the metadata."""
    classifier = DigitClassifier(model)
    calibration = calibrate(classifier, data.x_calibration, data.y_calibration, log=log)
    policy = ReadingPolicy(temperature=calibration["temperature"],
                           not_digit_threshold=calibration["not_digit_threshold"])
    created_at = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    metadata = {
        "model_version": model_version(model, created_at),
        "created_at": created_at.isoformat(),
        "classes": [str(d) for d in range(10)] + ["not_a_digit"],
        "mnist_test_accuracy": round(accuracy_of(predict_digits(classifier, data.x_test), data.y_test), 5),
        "calibration": {**calibration, "fitted_on_groups": list(config.calibration_groups)},
        "training": {**training,
                     "tensorflow": __import__("tensorflow").__version__,
                     "python": platform.python_version()},
        "data": data.sources,
    }
    # Paths are machine-specific; the sha256 in `data` identifies the files, and
    # the starting model's version identifies it.
    for key in ("mnist_path", "pen_digits_path", "pen_chars_path", "init_model_path"):
        metadata["training"].pop(key, None)
    if data.x_pen_holdout is not None:
        raw = predict_probabilities(classifier, data.x_pen_holdout)
        figures = answer_figures(raw, data.y_pen_holdout, policy)
        uncalibrated = answer_figures(raw, data.y_pen_holdout, dataclasses.replace(policy, temperature=1.0))
        metadata["pen_holdout_accuracy"] = round(figures["digit_accuracy"], 5)
        metadata["holdout"] = {"groups": list(config.holdout_groups), **_rounded(figures),
                               "digit_ece_uncalibrated": round(uncalibrated["digit_ece"], 5),
                               "reliability_uncalibrated": _rounded(uncalibrated["reliability"])}
    log(f"MNIST test accuracy: {metadata['mnist_test_accuracy']:.4f}")
    if "holdout" in metadata:
        h = metadata["holdout"]

        def share(key: str) -> str:  # None: no drawings of that kind were held out
            return "n/a" if h.get(key) is None else f"{h[key]:.4f}"

        log(f"held-out pen writers: digits {share('digit_accuracy')} right, "
            f"{share('digits_called_not_a_digit')} called not a digit; non-digits "
            f"{share('non_digits_called_not_a_digit')} called not a digit; digit ECE {share('digit_ece')}")
    if output_path is not None:
        # Checked on the same digits the accuracy figures come from.
        check_x = [data.x_test] + ([data.x_pen_holdout] if data.x_pen_holdout is not None else [])
        check_set = f"MNIST test {len(data.x_test)}" + (
            f" + held-out pen drawings {len(data.x_pen_holdout)}" if data.x_pen_holdout is not None else "")
        metadata = save_model(model, output_path, metadata, np.concatenate(check_x), check_set)
        log(f"LiteRT conversion checked on {check_set}: largest probability difference "
            f"{metadata['conversion']['max_abs_difference']:.1e}, no answer differs")
        log(f"saved {output_path}, {tflite_path_for(output_path)} and {metadata_path_for(output_path)}")
    return metadata
