"""Closing the loop: collected drawings -> a dataset file -> a fine-tuned model.

Two steps, each one function that the notebooks and the command line share:

- `prepare_collected_dataset` reads the label store through its API, keeps only
  samples that are whole and consistent, drops exact duplicates, preprocesses
  each drawing with the one shared `preprocess_drawing`, splits train and
  validation deterministically, and writes one .npz atomically.
- `finetune` continues training the served model on those drawings mixed with
  MNIST (so it does not forget), measures before and after on the held-out
  drawings and on the MNIST test set, and saves the new model with metadata
  only if it passes an acceptance gate.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import io
import json
import platform
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import datasets
from .atomic_files import atomic_write_bytes
from .errors import DrawingError, EmptyDrawingError
from .label_store import LabelStore
from .paths import (ARTIFACTS_DIR, DEFAULT_DATASET_PATH, DEFAULT_FINETUNED_MODEL_PATH,  # noqa: F401
                    DEFAULT_LABELS_DIR, REPO_ROOT, labels_dir_from_environment, served_model_path)
from .paths import DEFAULT_MODEL_PATH as DEFAULT_SERVED_MODEL_PATH  # noqa: F401
from .preprocessing import MNIST_SIZE, preprocess_drawing
from .model_files import metadata_path_for, read_metadata, tflite_path_for

# `training` and `evaluation` import TensorFlow (~4 s): they are imported inside
# the functions that touch a model, so `prepare` and `--help` start at once.

DATASET_FORMAT = "collected-digits/1"

class CollectedDataError(ValueError):
    """The collected drawings cannot be used as asked: an empty label store, a
    file that is not a prepared dataset, nothing to train or validate on."""


# Two drawings whose 28x28 model inputs differ by less than this RMS (ink in
# [0, 1]) count as the same drawing sent again (moved, recoloured, from a
# resized canvas). Measured on pen digits: the same strokes moved and
# recoloured differ by < 0.004; on another canvas size by 0.007 (median) and
# 0.014 (90th percentile), though a one-pixel change in the fitted size throws
# ~5% of those past 0.03; the closest distinct digit of one writer group lies
# 0.028-0.035 away. Grouping two distinct digits costs nothing but a coarser
# split, so the threshold sits at that edge.
NEAR_DUPLICATE_RMS = 0.03


# --------------------------------------------------------------------------
# prepare
# --------------------------------------------------------------------------

@dataclass
class PreparedDataset:
    """The collected drawings as arrays, as written to and read from the .npz."""

    x_train: np.ndarray  # (N, 28, 28) float32 in [0, 1], exactly what the server feeds the model
    y_train: np.ndarray  # (N,) int64
    ids_train: np.ndarray  # (N,) str: label-store ids, for tracing a sample back
    x_validation: np.ndarray
    y_validation: np.ndarray
    ids_validation: np.ndarray
    metadata: dict = field(default_factory=dict)

    def counts_per_digit(self) -> dict[int, dict[str, int]]:
        train = np.bincount(self.y_train, minlength=10)
        validation = np.bincount(self.y_validation, minlength=10)
        return {digit: {"train": int(train[digit]), "validation": int(validation[digit])}
                for digit in range(10)}


@dataclass
class PrepareReport:
    dataset_path: str
    sha256: str
    samples_read: int
    invalid: dict[str, int]  # reason -> how many samples were skipped for it
    duplicates_dropped: int  # exact copies of a kept sample
    conflicting_dropped: int  # exact copies that disagree on the label: all copies dropped
    counts: dict[int, dict[str, int]]  # digit -> {"train": n, "validation": n}

    @property
    def train_size(self) -> int:
        return sum(c["train"] for c in self.counts.values())

    @property
    def validation_size(self) -> int:
        return sum(c["validation"] for c in self.counts.values())

    def summary(self) -> str:
        lines = [f"{self.samples_read} samples read from the label store",
                 f"{sum(self.invalid.values())} invalid, skipped"
                 + "".join(f"\n  {count:>5}  {reason}" for reason, count in sorted(self.invalid.items())),
                 f"{self.duplicates_dropped} exact duplicates dropped",
                 f"{self.conflicting_dropped} duplicates with conflicting labels dropped",
                 f"{'digit':>5} {'train':>7} {'validation':>11}"]
        lines += [f"{digit:>5} {c['train']:>7} {c['validation']:>11}" for digit, c in self.counts.items()]
        lines.append(f"{'all':>5} {self.train_size:>7} {self.validation_size:>11}")
        lines.append(f"wrote {self.dataset_path} (sha256 {self.sha256[:12]}...)")
        return "\n".join(lines)


@dataclass
class _Candidate:
    id: str
    label: int
    created_at: str
    image: np.ndarray


def _validate(store: LabelStore, record) -> tuple[_Candidate | None, str | None]:
    """One label-store record -> (candidate, None) or (None, why it is unusable)."""
    label = record.label
    if isinstance(label, bool) or not isinstance(label, (int, np.integer)) or not 0 <= label <= 9:
        return None, "label is not a digit 0-9"
    try:
        png_bytes = store.read_png(record)
    except OSError:
        return None, "image file missing or unreadable"  # e.g. deleted while we read
    if record.sha256 is not None and hashlib.sha256(png_bytes).hexdigest() != record.sha256:
        return None, "image does not match the checksum in its metadata"
    try:
        image = preprocess_drawing(png_bytes)  # the server's own path: decode, check, preprocess
    except EmptyDrawingError:
        return None, "drawing is empty"
    except DrawingError:
        return None, "image does not decode"
    # A PNG that decodes has its size in the IHDR chunk, bytes 16-24.
    width, height = int.from_bytes(png_bytes[16:20], "big"), int.from_bytes(png_bytes[20:24], "big")
    if (record.width, record.height) != (width, height):
        return None, "image size disagrees with its metadata"
    return _Candidate(str(record.id), int(label), str(record.created_at), image), None


def _image_key(image: np.ndarray) -> bytes:
    """Exact-duplicate key: the model input at 8-bit precision.

    Hashing the 28x28 rather than the PNG bytes also catches the same drawing
    re-encoded, re-submitted from another canvas size, or in another colour.
    """
    return hashlib.sha256(np.rint(image * 255.0).astype(np.uint8).tobytes()).digest()


def near_duplicate_groups(images: np.ndarray, threshold: float = NEAR_DUPLICATE_RMS) -> np.ndarray:
    """Group index per image: images closer than `threshold` (RMS) share a group.

    Connected components (union-find) of the "nearly the same drawing" graph,
    so a chain of near-copies ends up on one side of the split.
    """
    n = len(images)
    flat = images.reshape(n, -1).astype(np.float32)
    squared = (flat ** 2).sum(axis=1)
    limit = threshold ** 2 * flat.shape[1]
    parent = np.arange(n)

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    chunk = 1024  # bounds memory at chunk x n distances
    for start in range(0, n, chunk):
        block = squared[start:start + chunk, None] + squared[None, :] - 2.0 * flat[start:start + chunk] @ flat.T
        rows, cols = np.nonzero(block < limit)
        for i, j in zip(rows + start, cols, strict=True):
            if i < j:
                a, b = root(int(i)), root(int(j))
                if a != b:
                    parent[max(a, b)] = min(a, b)
    return np.array([root(i) for i in range(n)])


def _goes_to_validation(anchor_id: str, seed: int, validation_fraction: float) -> bool:
    """A fixed pseudo-random draw per sample id.

    Hashing the id (rather than shuffling the list) keeps each sample on the
    same side as the store grows: a drawing once used for validation never
    becomes training data for a later model, so later figures stay honest.
    """
    digest = hashlib.sha256(f"{seed}:{anchor_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2 ** 64 < validation_fraction


def _npz_bytes(arrays: dict) -> bytes:
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    return buffer.getvalue()


def prepare_collected_dataset(store: LabelStore | str | Path, output_path: str | Path, *,
                              validation_fraction: float = 0.2, seed: int = 0,
                              log=print) -> PrepareReport:
    """Label store -> validated, de-duplicated, preprocessed, split .npz file.

    `store` is a LabelStore (as `python -m digit_recognition prepare` opens it
    from the app's settings) or a LABELS_DIR holding the default SQLite store.
    Samples are read through the store's API only: its listing and its images.
    """
    if not 0.0 <= validation_fraction < 1.0:
        raise ValueError("validation_fraction must be in [0, 1)")
    if not isinstance(store, LabelStore):
        if not Path(store).is_dir():
            raise FileNotFoundError(f"labels directory {store} does not exist")
        store = LabelStore(store)

    invalid: dict[str, int] = {}
    candidates: list[_Candidate] = []
    samples_read = 0
    for record in store.iter_samples():
        samples_read += 1
        candidate, reason = _validate(store, record)
        if reason:
            invalid[reason] = invalid.get(reason, 0) + 1
        else:
            candidates.append(candidate)

    # Exact duplicates: keep the first submitted copy. Copies that disagree on
    # the label are all dropped: the drawing is ambiguous or one is a mistake,
    # and guessing which would put a wrong label into training.
    candidates.sort(key=lambda c: (c.created_at, c.id))
    by_key: dict[bytes, list[_Candidate]] = {}
    for candidate in candidates:
        by_key.setdefault(_image_key(candidate.image), []).append(candidate)
    kept, duplicates, conflicting = [], 0, 0
    for copies in by_key.values():
        if len({c.label for c in copies}) > 1:
            conflicting += len(copies)
        else:
            kept.append(copies[0])
            duplicates += len(copies) - 1
    kept.sort(key=lambda c: (c.created_at, c.id))
    if not kept:
        # An empty dataset file would only fail later, in finetune, far from the cause.
        found = f"{samples_read} sample(s) found"
        if invalid:
            found += ", none usable: " + ", ".join(f"{n} {why}" for why, n in sorted(invalid.items()))
        elif conflicting:
            found += f", {conflicting} dropped as copies with conflicting labels"
        raise CollectedDataError(f"no usable labelled drawings in the label store at {store.root} ({found}); "
                                 "collect some on the /labeling page first. Nothing written.")

    # Split whole near-duplicate groups, each by its earliest sample's id.
    images = (np.stack([c.image for c in kept]) if kept
              else np.zeros((0, MNIST_SIZE, MNIST_SIZE), np.float32))
    groups = near_duplicate_groups(images) if kept else np.zeros(0, np.int64)
    in_validation = np.array([_goes_to_validation(kept[g].id, seed, validation_fraction)
                              for g in groups], dtype=bool)
    labels = np.array([c.label for c in kept], dtype=np.int64)
    ids = np.array([c.id for c in kept], dtype=str)

    metadata = {
        "format": DATASET_FORMAT,
        "created_at": dt.datetime.now(dt.timezone.utc).replace(microsecond=0).isoformat(),
        "validation_fraction": validation_fraction,
        "seed": seed,
        "near_duplicate_rms": NEAR_DUPLICATE_RMS,
        "samples_read": samples_read,
        "invalid": invalid,
        "duplicates_dropped": duplicates,
        "conflicting_dropped": conflicting,
        "near_duplicate_groups": int(len(np.unique(groups))),
    }
    arrays = {
        "x_train": images[~in_validation].astype(np.float32),
        "y_train": labels[~in_validation],
        "ids_train": ids[~in_validation],
        "x_validation": images[in_validation].astype(np.float32),
        "y_validation": labels[in_validation],
        "ids_validation": ids[in_validation],
        # A 0-d string array: read back without pickle.
        "metadata": np.array(json.dumps(metadata)),
    }
    payload = _npz_bytes(arrays)
    atomic_write_bytes(output_path, payload)
    dataset = PreparedDataset(arrays["x_train"], arrays["y_train"], arrays["ids_train"],
                              arrays["x_validation"], arrays["y_validation"], arrays["ids_validation"],
                              metadata)
    report = PrepareReport(str(output_path), hashlib.sha256(payload).hexdigest(), samples_read,
                           invalid, duplicates, conflicting, dataset.counts_per_digit())
    log(report.summary())
    return report


def load_prepared_dataset(path: str | Path) -> PreparedDataset:
    """The dataset `prepare_collected_dataset` wrote; FileNotFoundError if there is
    no such file, CollectedDataError if the file is something else."""
    try:
        with np.load(path, allow_pickle=False) as data:
            metadata = json.loads(str(data["metadata"]))
            if metadata.get("format") != DATASET_FORMAT:
                raise CollectedDataError(f"{path} is not a prepared collected-digits dataset "
                                         f"(format {metadata.get('format')!r}, expected {DATASET_FORMAT!r})")
            return PreparedDataset(data["x_train"], data["y_train"].astype(np.int64), data["ids_train"],
                                   data["x_validation"], data["y_validation"].astype(np.int64),
                                   data["ids_validation"], metadata)
    except (KeyError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        if isinstance(exc, CollectedDataError):
            raise
        raise CollectedDataError(f"{path} is not a prepared collected-digits dataset "
                                 f"({type(exc).__name__}: {exc})") from exc


# --------------------------------------------------------------------------
# finetune
# --------------------------------------------------------------------------

@dataclass
class FinetuneConfig:
    base_model_path: str  # the model to start from: normally the served one (MODEL_PATH)
    dataset_path: str  # written by prepare_collected_dataset
    mnist_path: str | None = None  # None: $MNIST_PATH, else the Keras download
    # The recipe. Each epoch shows every collected drawing `collected_repeats`
    # times among `mnist_samples` MNIST digits, so the new writers count without
    # the model drifting away from everything else it knows.
    # Tuned with benchmarks/finetune_loop.py: 500 drawings of one writer group,
    # MNIST test accuracy kept within 0.3 points, a few minutes on 2 CPU cores.
    epochs: int = 6
    learning_rate: float = 1e-3  # half of training from scratch's, cosine-decayed to ~0
    mnist_samples: int = 6000
    collected_repeats: int = 8
    batch_size: int = 64
    # Batch norm keeps its statistics from full training: a few thousand mixed
    # samples are a worse estimate of them than 60,000 were.
    freeze_batch_norm: bool = True
    mnist_test_limit: int | None = None  # tiny runs in tests; None: all 10,000
    # Acceptance gate: save only a model no worse on MNIST (beyond this many
    # accuracy points, as a fraction) and no worse on the held-out drawings.
    max_mnist_drop: float = 0.003
    check_acceptance: bool = True
    seed: int = 0


@dataclass
class FinetuneResult:
    model: object
    history: object
    metadata: dict
    before: dict[str, float]  # {"collected_validation": acc, "mnist_test": acc}
    after: dict[str, float]
    accepted: bool
    rejection_reasons: list[str]
    saved_path: str | None

    def summary(self) -> str:
        lines = [f"{'':<24}{'before':>9}{'after':>9}"]
        for key in self.before:
            lines.append(f"{key:<24}{_percent(self.before[key]):>9}{_percent(self.after[key]):>9}")
        lines.append("accepted" if self.accepted else "REJECTED: " + "; ".join(self.rejection_reasons))
        return "\n".join(lines)


def _percent(value: float) -> str:
    """An accuracy for people: "n/a" for an empty set rather than "nan%"."""
    return "n/a" if np.isnan(value) else f"{value:.2%}"


def _evaluate(classifier, collected_x, collected_y, mnist_x, mnist_y) -> dict[str, float]:
    from .evaluation import accuracy_of, predict_digits

    return {"collected_validation": accuracy_of(predict_digits(classifier, collected_x), collected_y),
            "mnist_test": accuracy_of(predict_digits(classifier, mnist_x), mnist_y)}


def mix_training_data(collected_x, collected_y, mnist_x, mnist_y, *, mnist_samples: int,
                      collected_repeats: int, rng: np.random.Generator):
    """Collected drawings repeated, plus a random MNIST sample, shuffled together."""
    pick = rng.choice(len(mnist_x), size=min(mnist_samples, len(mnist_x)), replace=False)
    x = np.concatenate([np.repeat(collected_x, collected_repeats, axis=0), mnist_x[pick]])
    y = np.concatenate([np.repeat(collected_y, collected_repeats), mnist_y[pick]])
    order = rng.permutation(len(x))
    return x[order].astype(np.float32), y[order].astype(np.int64)


def finetune(config: FinetuneConfig, output_path: str | Path | None = None, log=print) -> FinetuneResult:
    """Fine-tune the base model on the prepared drawings; save it if it is better.

    Returns a FinetuneResult; `saved_path` is None when nothing was written
    (no output asked for, or the acceptance gate refused the model).
    """
    rng = np.random.default_rng(config.seed)
    collected = load_prepared_dataset(config.dataset_path)
    if len(collected.x_train) == 0:
        raise CollectedDataError(f"{config.dataset_path} holds no training drawings: collect some first")
    if config.check_acceptance and len(collected.x_validation) == 0:
        # The gate compares accuracy on held-out drawings; with none, "no worse"
        # would be judged on nothing and any model would pass.
        raise CollectedDataError(
            f"{config.dataset_path} holds no held-out drawings to validate on "
            f"({len(collected.x_train)} training drawings; prepare sends about "
            f"{collected.metadata.get('validation_fraction', 0.2):.0%} of them to validation): collect more "
            "drawings and prepare again, or turn the acceptance check off to fine-tune unchecked")

    import keras
    import tensorflow as tf

    from .model import DigitClassifier
    from .training import fit, model_version, resolve_path, save_model

    mnist_path = resolve_path(config.mnist_path, datasets.MNIST_PATH_ENV)
    (mnist_x, mnist_y), (mnist_test_x, mnist_test_y) = datasets.load_mnist(mnist_path)
    if config.mnist_test_limit:
        mnist_test_x, mnist_test_y = mnist_test_x[:config.mnist_test_limit], mnist_test_y[:config.mnist_test_limit]

    base_metadata = read_metadata(config.base_model_path)
    model = keras.models.load_model(config.base_model_path, compile=False)
    before = _evaluate(DigitClassifier(model), collected.x_validation, collected.y_validation,
                       mnist_test_x, mnist_test_y)
    log(f"before: collected validation {before['collected_validation']:.2%} "
        f"({len(collected.x_validation)} drawings), MNIST test {before['mnist_test']:.2%}")

    if config.freeze_batch_norm:
        for layer in model.layers:
            if isinstance(layer, keras.layers.BatchNormalization):
                layer.trainable = False  # Keras 3: also runs it in inference mode
    x, y = mix_training_data(collected.x_train, collected.y_train, mnist_x, mnist_y,
                             mnist_samples=config.mnist_samples,
                             collected_repeats=config.collected_repeats, rng=rng)
    log(f"fine-tuning on {len(collected.x_train)} collected drawings x{config.collected_repeats} "
        f"+ {min(config.mnist_samples, len(mnist_x))} MNIST digits = {len(x)} per epoch")
    history = fit(model, x, y, collected.x_validation, collected.y_validation,
                  epochs=config.epochs, batch_size=config.batch_size,
                  learning_rate=config.learning_rate, seed=config.seed)

    after = _evaluate(DigitClassifier(model), collected.x_validation, collected.y_validation,
                      mnist_test_x, mnist_test_y)
    log(f"after:  collected validation {after['collected_validation']:.2%}, "
        f"MNIST test {after['mnist_test']:.2%}")

    reasons = []
    if config.check_acceptance:
        if after["mnist_test"] < before["mnist_test"] - config.max_mnist_drop:
            reasons.append(f"MNIST test accuracy fell from {before['mnist_test']:.2%} to "
                           f"{after['mnist_test']:.2%} (allowed: {config.max_mnist_drop:.2%})")
        if (len(collected.y_validation)
                and after["collected_validation"] < before["collected_validation"]):
            reasons.append(f"collected validation accuracy fell from {before['collected_validation']:.2%}"
                           f" to {after['collected_validation']:.2%}")

    created_at = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    recipe = dataclasses.asdict(config)
    for machine_specific in ("base_model_path", "dataset_path", "mnist_path"):
        recipe.pop(machine_specific)  # the sha256 values below identify the files
    metadata = {
        "model_version": model_version(model, created_at),
        "created_at": created_at.isoformat(),
        # Same key as a model trained from scratch, so the app reads both alike.
        "mnist_test_accuracy": round(after["mnist_test"], 5),
        "collected_validation_accuracy": _rounded(after["collected_validation"]),
        "base_model": {"model_version": base_metadata.get("model_version"),
                       "file": Path(config.base_model_path).name,
                       "sha256": datasets.sha256_of(config.base_model_path)},
        "evaluation": {"before": {k: _rounded(v) for k, v in before.items()},
                       "after": {k: _rounded(v) for k, v in after.items()},
                       "collected_validation_samples": int(len(collected.y_validation)),
                       "mnist_test_samples": int(len(mnist_test_y))},
        "fine_tuning": {**recipe,
                        "collected_train_samples": int(len(collected.y_train)),
                        "samples_per_epoch": int(len(x)),
                        "tensorflow": tf.__version__,
                        "python": platform.python_version()},
        "data": [{"name": "collected_drawings", "file": Path(config.dataset_path).name,
                  "sha256": datasets.sha256_of(config.dataset_path),
                  "train": int(len(collected.y_train)), "validation": int(len(collected.y_validation))},
                 {"name": "mnist", "file": Path(mnist_path).name if mnist_path else "keras download",
                  "sha256": datasets.sha256_of(mnist_path) if mnist_path else None,
                  "samples": int(min(config.mnist_samples, len(mnist_x)))}],
        # Earlier data the base model learned from, so the lineage stays whole.
        "base_data": base_metadata.get("data", []),
    }

    saved_path = None
    if reasons:
        log("not saved: " + "; ".join(reasons))
    elif output_path is not None:
        # The served form (.tflite) is checked on the digits just measured.
        metadata = save_model(model, output_path, metadata,
                              np.concatenate([mnist_test_x, collected.x_validation]),
                              f"MNIST test {len(mnist_test_x)} + collected validation "
                              f"{len(collected.x_validation)}")
        saved_path = str(output_path)
        log(f"saved {output_path}, {tflite_path_for(output_path)} and {metadata_path_for(output_path)}")
    return FinetuneResult(model, history, metadata, before, after, not reasons, reasons, saved_path)


def _rounded(value: float) -> float | None:
    return None if np.isnan(value) else round(float(value), 5)
