"""The label store on real files: layout, atomicity, crash leftovers, relabel,
delete, listing and export."""
from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import subprocess
import threading
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, PngImagePlugin

from digit_recognition.errors import InvalidImageError, UnsupportedImageError
from digit_recognition.label_store import LabelStore, encode_png, is_valid_id
from testing_support.drawings import digit_png
from tests.store_files import sample_files, snapshot


@pytest.fixture
def store(tmp_path):
    return LabelStore(tmp_path / "labels")


def _png_of(image: Image.Image, **save_args) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", **save_args)
    return buffer.getvalue()


def _age(path: Path, seconds: float = 3600) -> None:
    old = time.time() - seconds
    os.utime(path, (old, old))


def _assert_whole(record) -> None:
    data = record.png_path.read_bytes()
    assert hashlib.sha256(data).hexdigest() == record.sha256
    with Image.open(io.BytesIO(data)) as image:
        image.load()
        assert image.format == "PNG" and image.mode == "RGBA"
        assert image.size == (record.width, record.height)


# -- save -----------------------------------------------------------------------

def test_save_writes_png_and_sidecar_under_the_digit(store):
    record = store.save(digit_png(4), 4, prediction=9, confidence=0.75, model_version="m-1")
    assert is_valid_id(record.id)
    assert record.png_path == store.root / "4" / f"{record.id}.png"
    metadata = json.loads((store.root / "4" / f"{record.id}.json").read_text())
    assert metadata["id"] == record.id and metadata["label"] == 4
    assert metadata["prediction"] == 9 and metadata["confidence"] == 0.75
    assert metadata["model_version"] == "m-1"
    assert metadata["created_at"].endswith("+00:00")
    assert (metadata["width"], metadata["height"]) == (record.width, record.height)
    assert record.disagreed
    _assert_whole(record)
    assert sorted(p.name for p in (store.root / "4").iterdir()) == sorted(
        [f"{record.id}.png", f"{record.id}.json"])


def test_save_reencodes_instead_of_storing_the_clients_bytes(store):
    # A palette PNG carrying a text chunk: only its pixels may reach the disk.
    drawing = Image.open(io.BytesIO(digit_png(2, seed=3))).convert("RGB").convert("P")
    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", "<script>alert(1)</script>")
    client_png = _png_of(drawing, pnginfo=info)
    record = store.save(client_png, 2)
    stored = record.png_path.read_bytes()
    assert stored != client_png and b"alert" not in stored
    with Image.open(io.BytesIO(stored)) as image:
        assert image.mode == "RGBA" and not image.text
        assert np.array_equal(np.asarray(image.convert("RGB")), np.asarray(drawing.convert("RGB")))


def test_sixteen_bit_grey_is_scaled_not_clipped(store):
    grey = np.zeros((64, 64), dtype=np.uint16)
    grey[16:48, 30:34] = 65535
    record = store.save(_png_of(Image.fromarray(grey)), 1)  # a 16-bit greyscale PNG
    with Image.open(record.png_path) as image:
        pixels = np.asarray(image)
    assert pixels[20, 31, 0] == 255 and pixels[0, 0, 0] == 0 and pixels[0, 0, 3] == 255


@pytest.mark.parametrize("label", [-1, 10, 3.5, 7.0, "7", True, None, [7]])
def test_bad_label_writes_nothing(store, label):
    with pytest.raises(ValueError):
        store.save(digit_png(7), label)
    assert snapshot(store.root) == {}


@pytest.mark.parametrize("data, error", [
    (b"", InvalidImageError),
    (b"hello, not an image", InvalidImageError),
    (digit_png(5)[:200], InvalidImageError),
    (b"GIF89a" + b"\0" * 40, UnsupportedImageError),
])
def test_bad_image_writes_nothing(store, data, error):
    with pytest.raises(error):
        store.save(data, 5)
    assert snapshot(store.root) == {}


def test_concurrent_saves_from_threads_each_land_whole(store):
    drawings = [digit_png(d, seed=d) for d in range(10)]
    saved, errors = [], []

    def submit(worker):
        try:
            for i in range(10):
                saved.append(store.save(drawings[(worker + i) % 10], (worker + i) % 10))
        except Exception as exc:  # collected: a thread's exception would be lost
            errors.append(exc)

    threads = [threading.Thread(target=submit, args=(w,)) for w in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len({r.id for r in saved}) == 80
    total, listed = store.list(limit=None)
    assert total == 80 and {r.id for r in listed} == {r.id for r in saved}
    assert sample_files(store.root)["temp"] == []


# -- listing ----------------------------------------------------------------------

def test_list_filters_pages_and_orders_newest_first(store):
    agreed = [store.save(digit_png(d), d, prediction=d) for d in (1, 2, 2)]
    disagreed = [store.save(digit_png(d), d, prediction=(d + 1) % 10) for d in (2, 3)]
    everything = agreed + disagreed
    total, page = store.list()
    assert total == 5
    assert [r.id for r in page] == [r.id for r in reversed(everything)]
    assert store.list(label=2)[0] == 3
    assert {r.id for r in store.list(label=2)[1]} == {agreed[1].id, agreed[2].id, disagreed[0].id}
    assert {r.id for r in store.list(disagreed=True)[1]} == {r.id for r in disagreed}
    assert {r.id for r in store.list(disagreed=False)[1]} == {r.id for r in agreed}
    assert [r.id for r in store.list(label=2, disagreed=True)[1]] == [disagreed[0].id]
    total, second_page = store.list(limit=2, offset=2)
    assert total == 5 and [r.id for r in second_page] == [r.id for r in page[2:4]]
    assert store.list(offset=10) == (5, [])


def test_listing_ignores_temp_files_orphans_and_strangers(store):
    whole = store.save(digit_png(6), 6)
    digit_dir = store.root / "6"
    orphan_png = digit_dir / f"{'a' * 32}.png"
    shutil.copy(whole.png_path, orphan_png)  # a crash between the PNG and its JSON
    (digit_dir / f".{'b' * 32}.png.x1y2.tmp").write_bytes(b"\x89PNG half")  # a crash mid-write
    (digit_dir / f"{'c' * 32}.json").write_text(json.dumps({"id": "c" * 32}))  # JSON, no PNG
    (digit_dir / "notes.txt").write_text("an operator's file")
    (digit_dir / f"{'d' * 32}.json").write_text("{ not json")
    shutil.copy(whole.png_path, digit_dir / f"{'d' * 32}.png")
    assert [r.id for r in store.list()[1]] == [whole.id]
    assert [r.id for r in store.iter_samples()] == [whole.id]
    assert store.get("a" * 32) is None and store.get("c" * 32) is None
    assert store.count() == 1


def test_listing_sees_what_another_process_changed(store):
    # Two stores on one directory stand for two gunicorn workers; each caches
    # what it parsed, and must still see every change the other makes.
    other_worker = LabelStore(store.root)
    first, second = store.save(digit_png(1), 1), store.save(digit_png(2), 2)
    assert store.list()[0] == 2
    other_worker.relabel(first.id, 3)
    other_worker.delete(second.id)
    third = other_worker.save(digit_png(5), 5)
    assert {(r.id, r.label) for r in store.list()[1]} == {(first.id, 3), (third.id, 5)}
    other_worker.relabel(first.id, 1)  # back where it was: same path, new content
    listed = {r.id: r for r in store.list()[1]}
    assert listed[first.id].label == 1 and listed[first.id].extra["previous_label"] == 3
    assert store.list(label=3) == (0, [])


@pytest.mark.parametrize("bad_id", ["../../etc/passwd", "..", "", "A" * 32, "a" * 31,
                                    "12345678-1234-1234-1234-123456789012", "a" * 32 + "/x", None])
def test_malformed_ids_touch_nothing(store, bad_id):
    record = store.save(digit_png(3), 3)
    before = snapshot(store.root)
    assert store.get(bad_id) is None
    assert store.png_path(bad_id) is None
    assert store.delete(bad_id) is False
    assert store.relabel(bad_id, 4) is None
    assert snapshot(store.root) == before
    assert store.get(record.id) == record


# -- sweep ------------------------------------------------------------------------

def test_sweep_removes_old_leftovers_and_spares_young_ones_and_strangers(store):
    whole = store.save(digit_png(8), 8)
    digit_dir = store.root / "8"
    old_orphan, young_orphan = digit_dir / f"{'a' * 32}.png", digit_dir / f"{'b' * 32}.png"
    old_temp, young_temp = digit_dir / ".x.png.old.tmp", digit_dir / ".y.json.new.tmp"
    stranger = digit_dir / "keep-me.txt"
    for path in (old_orphan, young_orphan):
        shutil.copy(whole.png_path, path)
    for path in (old_temp, young_temp, stranger):
        path.write_bytes(b"partial")
    for path in (old_orphan, old_temp, stranger):
        _age(path)
    _age(whole.png_path)
    report = store.sweep(grace_seconds=60)
    assert (report.temp_files_removed, report.orphan_pngs_removed) == (1, 1)
    assert not old_orphan.exists() and not old_temp.exists()
    assert young_orphan.exists() and young_temp.exists() and stranger.exists()
    assert store.get(whole.id) == whole
    store.sweep(grace_seconds=0)
    assert not young_orphan.exists() and not young_temp.exists() and stranger.exists()
    _assert_whole(store.get(whole.id))


def test_sweep_of_a_missing_directory_is_a_no_op(tmp_path):
    assert LabelStore(tmp_path / "absent").sweep().orphan_pngs_removed == 0
    assert not (tmp_path / "absent").exists()


# -- relabel and delete -------------------------------------------------------------

def test_relabel_moves_the_sample_and_records_the_change(store):
    record = store.save(digit_png(1), 1, prediction=7)
    moved = store.relabel(record.id, 7)
    assert moved.label == 7 and moved.png_path == store.root / "7" / f"{record.id}.png"
    assert moved.extra["previous_label"] == 1 and "relabeled_at" in moved.extra
    assert not moved.disagreed
    assert list((store.root / "1").iterdir()) == []
    assert store.get(record.id) == moved and store.list()[0] == 1
    assert json.loads((store.root / "7" / f"{record.id}.json").read_text())["label"] == 7
    _assert_whole(moved)
    assert store.relabel(record.id, 7) == moved  # same label: nothing to do
    assert store.relabel("f" * 32, 3) is None
    with pytest.raises(ValueError):
        store.relabel(record.id, 10)


def _interrupted_relabel(store, record, to_label: int, steps: int):
    """Reproduce the files a crash leaves after `steps` of relabel's 4 steps."""
    source, target = record.png_path.parent, store.root / str(to_label)
    target.mkdir(exist_ok=True)
    if steps >= 1:
        shutil.copy(record.png_path, target / record.png_path.name)
    if steps >= 2:
        metadata = record.metadata() | {"label": to_label, "previous_label": record.label}
        (source / f"{record.id}.json").write_text(json.dumps(metadata))
    if steps >= 3:
        os.rename(source / f"{record.id}.json", target / f"{record.id}.json")
    for path in list(source.iterdir()) + list(target.iterdir()):
        _age(path)


@pytest.mark.parametrize("steps, listed_label", [(1, 2), (2, 5), (3, 5)])
def test_a_relabel_cut_short_is_listed_once_and_the_sweep_settles_it(store, steps, listed_label):
    record = store.save(digit_png(2), 2)
    other = store.save(digit_png(5), 5)
    _interrupted_relabel(store, record, 5, steps)
    ids = [r.id for r in store.list()[1]]
    assert sorted(ids) == sorted([record.id, other.id])  # never twice, never missing
    assert store.get(record.id).label == listed_label
    report = store.sweep(grace_seconds=0)
    assert report.relabels_completed == (1 if steps == 2 else 0)
    settled = store.get(record.id)
    assert settled.label == listed_label
    assert settled.png_path.parent.name == str(listed_label)
    files = sample_files(store.root)
    assert len(files["json"]) == len(files["png"]) == 2 and files["temp"] == []
    _assert_whole(settled)


def test_delete_removes_both_files(store):
    record = store.save(digit_png(9), 9)
    keep = store.save(digit_png(9, seed=1), 9)
    assert store.delete(record.id) is True
    assert not record.png_path.exists()
    assert not record.png_path.with_suffix(".json").exists()
    assert store.get(record.id) is None and store.delete(record.id) is False
    assert [r.id for r in store.list()[1]] == [keep.id]


def test_a_delete_cut_short_leaves_an_orphan_the_sweep_removes(store):
    record = store.save(digit_png(0), 0)
    record.png_path.with_suffix(".json").unlink()  # the commit happened; the crash came next
    _age(record.png_path)
    assert store.list() == (0, [])
    assert store.sweep(grace_seconds=0).orphan_pngs_removed == 1
    assert snapshot(store.root / "0") == {}


# -- export -----------------------------------------------------------------------

def test_export_zip_has_every_sample_in_the_store_layout(store):
    records = [store.save(digit_png(d, seed=d), d, prediction=d, confidence=0.5) for d in (0, 3, 3, 9)]
    buffer = io.BytesIO()
    assert store.export_zip(buffer) == 4
    with zipfile.ZipFile(io.BytesIO(buffer.getvalue())) as archive:
        assert archive.testzip() is None
        names = set(archive.namelist())
        manifest = json.loads(archive.read("manifest.json"))
        assert manifest["count"] == 4 and manifest["format"] == "digit-labels/1"
        assert names == {"manifest.json"} | {f"{r.label}/{r.id}.{ext}" for r in records
                                            for ext in ("png", "json")}
        for record in records:
            png = archive.read(f"{record.label}/{record.id}.png")
            assert png == record.png_path.read_bytes()
            assert json.loads(archive.read(f"{record.label}/{record.id}.json")) == record.metadata()
        assert {(s["id"], s["sha256"]) for s in manifest["samples"]} == {
            (r.id, r.sha256) for r in records}


def test_export_of_an_empty_store_is_a_valid_zip(store):
    buffer = io.BytesIO()
    assert store.export_zip(buffer) == 0
    with zipfile.ZipFile(buffer) as archive:
        assert archive.namelist() == ["manifest.json"]


# -- a disk that refuses the write ---------------------------------------------------

@pytest.fixture
def small_volume(tmp_path):
    """A 256 KiB tmpfs, so "disk full" is the kernel's own ENOSPC (needs root)."""
    mount_point = tmp_path / "volume"
    mount_point.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mount_point)],
                            capture_output=True, text=True)
    if result.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {result.stderr.strip()}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)


def fill_leaving(volume: Path, free_bytes: int) -> None:
    stats = os.statvfs(volume)
    (volume / "filler").write_bytes(b"\0" * (stats.f_bavail * stats.f_frsize - free_bytes))


@pytest.mark.parametrize("png_fits", [False, True], ids=["png-fails", "json-fails"])
def test_a_full_disk_raises_and_leaves_nothing(small_volume, png_fits):
    store = LabelStore(small_volume / "labels")
    (store.root / "3").mkdir(parents=True)
    drawing = digit_png(3, seed=1)
    clean_size = len(encode_png(drawing)[0])
    block = os.statvfs(small_volume).f_frsize
    png_blocks = -(-clean_size // block)
    # Room for the PNG but not the JSON after it, or not even for the PNG.
    fill_leaving(small_volume, png_blocks * block if png_fits else (png_blocks - 1) * block)
    with pytest.raises(OSError) as failure:
        store.save(drawing, 3)
    assert failure.value.errno == 28  # ENOSPC
    assert snapshot(store.root) == {}


def test_a_read_only_directory_raises_and_leaves_nothing(tmp_path):
    root = tmp_path / "labels"
    (root / "4").mkdir(parents=True)
    if os.geteuid() == 0:  # root ignores permission bits: make the file system itself read-only
        result = subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=64k", "tmpfs", str(root / "4")],
                                capture_output=True, text=True)
        if result.returncode != 0:
            pytest.skip(f"cannot mount a read-only tmpfs here: {result.stderr.strip()}")
    else:
        (root / "4").chmod(0o555)
    try:
        with pytest.raises(OSError):
            LabelStore(root).save(digit_png(4), 4)
        assert snapshot(root) == {}
    finally:
        if os.geteuid() == 0:
            subprocess.run(["umount", "-l", str(root / "4")], check=False)
        else:
            (root / "4").chmod(0o755)

