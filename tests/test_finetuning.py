"""Preparing collected drawings and fine-tuning on them, on real files.

The label store is filled through the real LabelStore with pen digits rendered
as canvas drawings; damaged samples are made the way damage happens (a
truncated or lost image file, a row edited by hand).
"""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from sqlalchemy import update

from digit_recognition.datasets import load_pen_digits, sha256_of
from digit_recognition.finetuning import (NEAR_DUPLICATE_RMS, FinetuneConfig, finetune,
                                          load_prepared_dataset, near_duplicate_groups,
                                          prepare_collected_dataset)
from digit_recognition.label_database import samples as samples_table
from digit_recognition.inference import load_classifier
from digit_recognition.label_store import LabelStore
from digit_recognition.model import DigitClassifier
from digit_recognition.model_files import metadata_path_for
from digit_recognition.preprocessing import preprocess_drawing
from digit_recognition.strokes import CanvasParams, render_strokes, to_png_bytes

REPO_ROOT = Path(__file__).resolve().parent.parent
SHIPPED_MODEL = REPO_ROOT / "flask_app" / "model" / "digit_cnn.keras"
PER_DIGIT = 4


def quiet(*_args):
    pass


@pytest.fixture(scope="module")
def pen_by_label(pen_digits_path):
    digits = load_pen_digits(pen_digits_path)
    return {label: [d for d in digits if d.label == label and d.writer_group == "ced"][:20]
            for label in range(10)}


def drawing(strokes, canvas_px=280, height=0.7, style="black_on_white", offset=0.0) -> bytes:
    return to_png_bytes(render_strokes(strokes, CanvasParams(canvas_px, height, offset, offset, 0.06, style)))


def fill_store(root: Path, pen_by_label, per_digit=PER_DIGIT, offset=0) -> dict[str, int]:
    """Save `per_digit` distinct drawings of each digit; returns {id: label}."""
    store = LabelStore(root)
    saved = {}
    for label, digits in pen_by_label.items():
        for digit in digits[offset:offset + per_digit]:
            saved[store.save(drawing(digit.strokes), label, prediction=label, confidence=0.9).id] = label
    return saved


def side_of_each_id(dataset) -> dict[str, str]:
    return {**{str(i): "train" for i in dataset.ids_train},
            **{str(i): "validation" for i in dataset.ids_validation}}


# -- prepare -----------------------------------------------------------------

def test_prepare_keeps_valid_samples_drops_duplicates_and_counts_invalid(tmp_path, pen_by_label):
    labels = tmp_path / "labels"
    valid = fill_store(labels, pen_by_label)
    store = LabelStore(labels)
    strokes_3, strokes_5 = pen_by_label[3][10].strokes, pen_by_label[5][10].strokes

    # Exact duplicates: the same drawing sent twice (the store keeps it once), and
    # again from a canvas with another colour scheme (other PNG bytes, the same
    # model input: prepare drops it).
    twice = drawing(strokes_3)
    first = store.save(twice, 3)
    assert store.save(twice, 3).duplicate
    store.save(drawing(strokes_3, style="white_on_transparent"), 3)
    # The same drawing under two labels: one of them is wrong, so both go.
    ambiguous = drawing(strokes_5)
    store.save(ambiguous, 5)
    store.save(ambiguous, 6)

    # Damage, one sample per kind, made the way it happens: a file truncated or
    # lost on the volume, a row edited by hand.
    store.save(to_png_bytes(Image.new("RGBA", (280, 280), (255, 255, 255, 255))), 1)
    truncated = store.save(drawing(pen_by_label[7][10].strokes), 7)
    truncated.png_path.write_bytes(truncated.png_path.read_bytes()[:200])
    lost = store.save(drawing(pen_by_label[7][11].strokes), 7)
    lost.png_path.unlink()
    resized = store.save(drawing(pen_by_label[8][10].strokes), 8)
    with store.engine.begin() as connection:
        connection.execute(update(samples_table).where(samples_table.c.id == resized.id).values(width=999))

    printed = []
    report = prepare_collected_dataset(labels, tmp_path / "collected.npz", log=printed.append)

    assert report.invalid == {
        "drawing is empty": 1,
        "image does not match the checksum in its metadata": 1,
        "image file missing or unreadable": 1,
        "image size disagrees with its metadata": 1,
    }
    assert report.duplicates_dropped == 1
    assert report.conflicting_dropped == 2
    assert report.samples_read == len(valid) + 2 + 2 + 4
    expected = {label: PER_DIGIT for label in range(10)}
    expected[3] += 1  # the duplicated drawing, once
    assert {d: c["train"] + c["validation"] for d, c in report.counts.items()} == expected
    assert "digit   train  validation" in printed[0] and "4 invalid, skipped" in printed[0]

    dataset = load_prepared_dataset(tmp_path / "collected.npz")
    kept = set(side_of_each_id(dataset))
    assert kept == set(valid) | {first.id}
    assert dataset.counts_per_digit() == report.counts
    assert dataset.x_train.shape[1:] == (28, 28) and dataset.x_train.dtype == np.float32
    # Each image is exactly what the server's preprocessing makes of the stored PNG.
    for sample_id, image in zip(dataset.ids_train, dataset.x_train, strict=True):
        np.testing.assert_array_equal(image, preprocess_drawing(store.get(str(sample_id)).png_path.read_bytes()))
    for ids, ys in ((dataset.ids_train, dataset.y_train), (dataset.ids_validation, dataset.y_validation)):
        assert [valid.get(str(i), 3) for i in ids] == ys.tolist()
    assert report.sha256 == sha256_of(tmp_path / "collected.npz")
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


def test_split_is_deterministic_and_stable_as_the_store_grows(tmp_path, pen_by_label):
    labels = tmp_path / "labels"
    fill_store(labels, pen_by_label, per_digit=6)
    first = load_prepared_dataset(prepare_collected_dataset(labels, tmp_path / "a.npz", log=quiet).dataset_path)
    again = load_prepared_dataset(prepare_collected_dataset(labels, tmp_path / "b.npz", log=quiet).dataset_path)
    for name in ("x_train", "y_train", "ids_train", "x_validation", "y_validation", "ids_validation"):
        np.testing.assert_array_equal(getattr(first, name), getattr(again, name))
    sides = side_of_each_id(first)
    assert 3 <= len(first.ids_validation) <= 25  # 60 samples, 20% held out

    fill_store(labels, pen_by_label, per_digit=4, offset=6)
    grown = side_of_each_id(load_prepared_dataset(
        prepare_collected_dataset(labels, tmp_path / "c.npz", log=quiet).dataset_path))
    assert len(grown) == 100
    # A drawing held out once is never trained on later, and vice versa.
    assert {i: grown[i] for i in sides} == sides

    other_seed = side_of_each_id(load_prepared_dataset(
        prepare_collected_dataset(labels, tmp_path / "d.npz", seed=1, log=quiet).dataset_path))
    assert other_seed != grown

    everything = load_prepared_dataset(
        prepare_collected_dataset(labels, tmp_path / "e.npz", validation_fraction=0.0, log=quiet).dataset_path)
    assert len(everything.ids_validation) == 0 and len(everything.ids_train) == 100


def test_near_identical_drawings_stay_on_one_side_of_the_split(tmp_path, pen_by_label):
    """The same drawing sent again with a lighter pen (a near-identical model input,
    mostly not an exact copy): never one in training and the other held out.
    Split independently, 30-odd pairs would all land together with p ~ 2**-30."""
    store = LabelStore(tmp_path / "labels")
    pairs = []
    for label in range(10):
        for digit in pen_by_label[label][:4]:
            canvas = render_strokes(digit.strokes, CanvasParams(280, 0.7, 0.0, 0.0, 0.06, "white_on_transparent"))
            lighter = np.asarray(canvas).copy()
            lighter[..., 3] = np.rint(lighter[..., 3] * 0.6).astype(np.uint8)
            pairs.append((store.save(to_png_bytes(canvas), label).id,
                          store.save(to_png_bytes(Image.fromarray(lighter, "RGBA")), label).id))
    report = prepare_collected_dataset(tmp_path / "labels", tmp_path / "collected.npz",
                                       validation_fraction=0.5, log=quiet)
    sides = side_of_each_id(load_prepared_dataset(report.dataset_path))
    near_pairs = [(a, b) for a, b in pairs if a in sides and b in sides]
    assert len(near_pairs) == 40 - report.duplicates_dropped >= 25
    assert all(sides[a] == sides[b] for a, b in near_pairs)
    assert 0 < list(sides.values()).count("validation") < len(sides)  # and the split did split


def test_near_duplicate_groups_join_close_images_only(mnist_path):
    with np.load(mnist_path) as data:
        digits = data["x_test"][:60].astype(np.float32) / 255.0
    rng = np.random.default_rng(0)
    # Slightly fainter with faint noise: RMS ~0.01-0.02 from the original, far under the threshold.
    variants = np.clip(digits * 0.97 + rng.normal(0, 0.01, digits.shape), 0, 1).astype(np.float32)
    rms = np.sqrt(((digits - variants) ** 2).mean(axis=(1, 2)))
    assert rms.max() < NEAR_DUPLICATE_RMS
    groups = near_duplicate_groups(np.concatenate([digits, variants]))
    assert (groups[:60] == groups[60:]).all()  # each digit with its variant
    assert len(np.unique(groups)) == 60  # and distinct MNIST digits apart


def test_prepare_refuses_a_missing_store(tmp_path):
    with pytest.raises(FileNotFoundError):
        prepare_collected_dataset(tmp_path / "nowhere", tmp_path / "collected.npz", log=quiet)
    assert not (tmp_path / "collected.npz").exists()


# -- finetune ----------------------------------------------------------------

@pytest.fixture(scope="module")
def prepared(tmp_path_factory, pen_by_label):
    root = tmp_path_factory.mktemp("prepared")
    fill_store(root / "labels", pen_by_label, per_digit=6)
    report = prepare_collected_dataset(root / "labels", root / "collected.npz", log=quiet)
    return Path(report.dataset_path)


def test_finetune_saves_a_loadable_model_with_its_lineage(tmp_path, prepared, mnist_path):
    output = tmp_path / "best_model_fine_tuning.keras"
    config = FinetuneConfig(base_model_path=str(SHIPPED_MODEL), dataset_path=str(prepared),
                            mnist_path=mnist_path, epochs=1, mnist_samples=300,
                            mnist_test_limit=300, check_acceptance=False)
    result = finetune(config, output_path=output, log=quiet)

    assert result.saved_path == str(output)
    classifier = DigitClassifier.load(output)
    probabilities = classifier.predict_probabilities(load_prepared_dataset(prepared).x_validation)
    # Ten digits and "not a digit", like the model it started from.
    assert probabilities.shape[1] == 11 and np.allclose(probabilities.sum(axis=1), 1.0, atol=1e-4)

    metadata = json.loads(metadata_path_for(output).read_text())
    shipped = json.loads(metadata_path_for(SHIPPED_MODEL).read_text())
    assert metadata["base_model"] == {"model_version": shipped["model_version"],
                                      "file": SHIPPED_MODEL.name, "sha256": sha256_of(SHIPPED_MODEL)}
    assert metadata["model_version"] != shipped["model_version"]
    collected_source = metadata["data"][0]
    assert collected_source["sha256"] == hashlib.sha256(prepared.read_bytes()).hexdigest()
    assert collected_source["train"] + collected_source["validation"] == 60
    assert metadata["evaluation"]["mnist_test_samples"] == 300
    for moment in ("before", "after"):
        assert set(metadata["evaluation"][moment]) == {"collected_validation", "mnist_test"}
    assert metadata["mnist_test_accuracy"] == metadata["evaluation"]["after"]["mnist_test"]
    assert metadata["fine_tuning"]["samples_per_epoch"] == collected_source["train"] * config.collected_repeats + 300
    assert metadata["base_data"] == shipped["data"]
    # The served form: the .tflite beside it, checked on the digits just measured.
    assert metadata["files"] == {"keras": output.name, "tflite": output.with_suffix(".tflite").name,
                                 "tflite_sha256": metadata["files"]["tflite_sha256"]}
    assert metadata["conversion"]["samples"] == 300 + collected_source["validation"]
    assert metadata["conversion"]["different_answers"] == 0
    served = load_classifier(output)
    assert served.backend == "litert"
    np.testing.assert_allclose(served.predict_probabilities(load_prepared_dataset(prepared).x_validation),
                               probabilities, atol=1e-4)


def test_finetune_command_refuses_a_model_that_fails_the_gate(tmp_path, prepared, mnist_path):
    """The scheduled-job path: a rejected model is not written and the exit status says so."""
    output = tmp_path / "rejected.keras"
    # A negative allowed drop demands MNIST accuracy rise by 100 points: no model can pass.
    command = [sys.executable, "-m", "digit_recognition", "finetune", "--base-model", str(SHIPPED_MODEL),
               "--dataset", str(prepared), "--output", str(output), "--mnist-path", mnist_path,
               "--epochs", "1", "--mnist-samples", "100", "--mnist-test-limit", "200",
               "--max-mnist-drop", "-1"]
    completed = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
    assert completed.returncode == 3, completed.stderr[-2000:]  # 3: not accepted (1 is a crash)
    assert "REJECTED: MNIST test accuracy fell" in completed.stdout
    assert not output.exists() and not metadata_path_for(output).exists()


def test_prepare_command_reads_labels_dir_from_the_environment(tmp_path, pen_by_label):
    fill_store(tmp_path / "labels", pen_by_label, per_digit=1)
    output = tmp_path / "collected.npz"
    completed = subprocess.run(
        [sys.executable, "-m", "digit_recognition", "prepare", "--output", str(output)],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=300,
        env={**os.environ, "LABELS_DIR": str(tmp_path / "labels")})
    assert completed.returncode == 0, completed.stderr[-2000:]
    assert "10 samples read from the label store" in completed.stdout
    assert len(side_of_each_id(load_prepared_dataset(output))) == 10
