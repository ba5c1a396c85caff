"""`python -m digit_recognition labels import|sweep|migrate` on real folders and databases:
a store in the old folder layout moves over whole, once, however often it runs."""
from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PIL import Image

from digit_recognition.label_import import import_folder
from digit_recognition.label_store import LabelStore
from testing_support.drawings import digit_png
from tests.store_files import sample_files

REPO_ROOT = Path(__file__).resolve().parent.parent


def write_old_sample(root: Path, folder_digit: int, png: bytes, sample_id: str, **overrides) -> dict:
    """One sample as the folder store wrote it: <digit>/<id>.png and <digit>/<id>.json."""
    label = folder_digit
    with Image.open(io.BytesIO(png)) as image:
        width, height = image.size
    metadata = {"id": sample_id, "label": label, "created_at": f"2026-01-0{label % 9 + 1}T10:00:00.000001+00:00",
                "prediction": (label + 1) % 10, "confidence": 0.5, "model_version": "old-model",
                "width": width, "height": height, "sha256": hashlib.sha256(png).hexdigest(), **overrides}
    folder = root / str(folder_digit)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{sample_id}.png").write_bytes(png)
    (folder / f"{sample_id}.json").write_text(json.dumps(metadata))
    return metadata


@pytest.fixture
def old_store(tmp_path):
    root = tmp_path / "old"
    samples = {}
    for i in range(12):
        sample_id = f"{i:032x}"
        samples[sample_id] = write_old_sample(root, i % 10, digit_png(i % 10, seed=i), sample_id)
    big_id = "b" * 32  # a full-resolution drawing from before the 512 px bound, relabelled once
    samples[big_id] = write_old_sample(root, 8, digit_png(8, seed=99, canvas_px=(1600, 1800)), big_id,
                                       previous_label=3, relabeled_at="2026-02-01T00:00:00+00:00",
                                       note="kept")
    # Not importable: each counted, none stored.
    write_old_sample(root, 4, digit_png(4, seed=50), "c" * 32, label=5)  # in the wrong folder
    (root / "4" / f"{'d' * 32}.json").write_text("{ not json")
    (root / "4" / f"{'d' * 32}.png").write_bytes(digit_png(4, seed=51))
    write_old_sample(root, 6, digit_png(6, seed=52), "e" * 32, sha256="0" * 64)  # image changed since
    (root / "6" / f"{'f' * 32}.png").write_bytes(digit_png(6, seed=53))  # an old orphan: not a sample
    # The same drawing and label as sample 0, under another id: kept once.
    write_old_sample(root, 0, digit_png(0, seed=0), "a" * 32)
    return root, samples


def test_import_keeps_ids_dates_and_metadata_and_bounds_the_images(tmp_path, old_store, label_database_url):
    root, samples = old_store
    store = LabelStore(tmp_path / "labels", label_database_url)
    report = import_folder(store, root)
    assert report.imported == len(samples) == store.count()
    assert report.duplicates == 1 and report.already_present == 0
    assert report.invalid == {"label disagrees with the sample's folder": 1, "metadata unreadable": 1,
                              "image does not match the checksum in its metadata": 1}
    for sample_id, old in samples.items():
        record = store.get(sample_id)
        assert (record.label, record.created_at, record.prediction, record.confidence, record.model_version) == (
            old["label"], old["created_at"], old["prediction"], old["confidence"], old["model_version"])
        with Image.open(record.png_path) as image:
            assert image.size == (record.width, record.height) and max(image.size) <= 512
    big = store.get("b" * 32)
    assert big.previous_label == 3 and big.extra == {"note": "kept"} and big.width < samples["b" * 32]["width"]

    again = import_folder(store, root)
    assert (again.imported, again.already_present) == (0, len(samples))
    assert store.count() == len(samples) and len(sample_files(store.root)["png"]) == len(samples)
    store.close()


def _command(*args: str, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "digit_recognition", "labels", *args], cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=300, env={**os.environ, **env})


def test_the_commands_use_the_apps_settings(tmp_path, old_store):
    root, samples = old_store
    env = {"LABELS_DIR": str(tmp_path / "labels")}
    migrated = _command("migrate", env=env)
    assert migrated.returncode == 0 and "migrated" in migrated.stdout, migrated.stderr[-2000:]
    first = _command("import", str(root), env=env)
    assert first.returncode == 0, first.stderr[-2000:]
    assert f"imported {len(samples)}, already present 0, duplicates skipped 1, invalid 3" in first.stdout
    second = _command("import", str(root), env=env)
    assert f"imported 0, already present {len(samples)}" in second.stdout

    store = LabelStore(tmp_path / "labels")
    leftover = store.image_path("9" * 32)
    leftover.parent.mkdir(parents=True, exist_ok=True)
    leftover.write_bytes(digit_png(9))
    assert "removed 0 temp files and 0 images" in _command("sweep", env=env).stdout  # young: spared
    old = time.time() - 3600
    os.utime(leftover, (old, old))
    swept = _command("sweep", env=env)
    assert "removed 0 temp files and 1 images no sample names" in swept.stdout
    assert not leftover.exists() and store.count() == len(samples)
    missing = _command("import", str(tmp_path / "nowhere"), env=env)
    assert missing.returncode != 0
