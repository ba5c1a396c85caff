"""The label store on real files and real databases (SQLite, and PostgreSQL
where installed; always in CI): layout, atomicity, crash leftovers, duplicates,
the cap, relabel, delete, listing, migrations and export."""
from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import threading
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, PngImagePlugin
from sqlalchemy import delete, func, select

from digit_recognition import label_database as db
from digit_recognition.errors import InvalidImageError, UnsupportedImageError
from digit_recognition.label_export import ExportStream
from digit_recognition.label_store import (DuplicateSampleError, LabelStore, StoreFullError, encode_png,
                                           is_valid_id)
from digit_recognition.preprocessing import preprocess_drawing
from testing_support.drawings import digit_png
from tests.store_files import image_files, sample_files, snapshot


@pytest.fixture
def store(tmp_path, label_database_url):
    store = LabelStore(tmp_path / "labels", label_database_url)
    yield store
    store.close()


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


def _rows(store) -> int:
    with store.engine.connect() as connection:
        return connection.execute(select(func.count()).select_from(db.samples)).scalar_one()


# -- save -----------------------------------------------------------------------

def test_save_writes_the_image_then_the_row(store):
    record = store.save(digit_png(4), 4, prediction=9, confidence=0.75, model_version="m-1")
    assert is_valid_id(record.id) and not record.duplicate
    assert record.png_path == store.root / "images" / record.id[:2] / f"{record.id}.png"
    stored = store.get(record.id)
    assert stored == record
    assert (stored.label, stored.prediction, stored.confidence, stored.model_version) == (4, 9, 0.75, "m-1")
    assert stored.created_at.endswith("+00:00") and stored.disagreed
    _assert_whole(record)
    assert [Path(p).name for p in sample_files(store.root)["png"]] == [f"{record.id}.png"]
    assert store.count() == 1 and _rows(store) == 1


def test_a_null_prediction_and_a_verdict_are_stored(store):
    record = store.save(digit_png(5), 5, prediction=None, confidence=None, model_verdict="not_a_digit")
    stored = store.get(record.id)
    assert stored.prediction is None and stored.confidence is None and not stored.disagreed
    assert stored.model_verdict == "not_a_digit" and stored.metadata()["model_verdict"] == "not_a_digit"
    assert store.list(disagreed=False)[0] == 1


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


def test_large_drawings_are_stored_at_most_512_px_a_side_and_mean_the_same_to_the_model(store):
    big = digit_png(8, seed=2, canvas_px=(1800, 2000))
    with Image.open(io.BytesIO(big)) as image:
        assert max(image.size) > 1500
    record = store.save(big, 8)
    assert max(record.width, record.height) <= 512
    stored = record.png_path.read_bytes()
    assert len(stored) < len(big)
    np.testing.assert_allclose(preprocess_drawing(stored), preprocess_drawing(big), atol=1 / 255)


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
    saved, errors = [], []

    def submit(worker):
        try:
            for i in range(10):
                label = (worker + i) % 10
                saved.append(store.save(digit_png(label, seed=worker * 10 + i), label))
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
    assert total == 80 == store.count() and {r.id for r in listed} == {r.id for r in saved}
    files = sample_files(store.root)
    assert len(files["png"]) == 80 and files["temp"] == []


# -- duplicates and the cap -----------------------------------------------------------

def test_an_exact_duplicate_is_stored_once_even_when_sent_at_once(store):
    drawing = digit_png(6, seed=9)
    results, errors = [], []

    def submit():
        try:
            results.append(store.save(drawing, 6, prediction=6))
        except Exception as exc:
            errors.append(exc)

    threads = [threading.Thread(target=submit) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len({r.id for r in results}) == 1
    assert sum(not r.duplicate for r in results) == 1
    assert store.count() == 1 and len(sample_files(store.root)["png"]) == 1
    # The same drawing under another label is another sample (the people disagree).
    other = store.save(drawing, 5)
    assert not other.duplicate and store.count() == 2


def test_the_cap_refuses_with_a_clear_error_and_writes_nothing(tmp_path, label_database_url):
    store = LabelStore(tmp_path / "labels", label_database_url, max_samples=2)
    kept = [store.save(digit_png(d, seed=d), d) for d in (1, 2)]
    before = image_files(store.root)
    with pytest.raises(StoreFullError, match="LABELS_MAX_SAMPLES"):
        store.save(digit_png(3), 3)
    assert image_files(store.root) == before and store.count() == 2
    assert store.save(digit_png(1, seed=1), 1).id == kept[0].id  # a duplicate is still answered
    store.delete(kept[1].id)
    assert not store.save(digit_png(3), 3).duplicate
    store.close()


# -- listing ----------------------------------------------------------------------

def test_list_filters_pages_and_orders_newest_first(store):
    agreed = [store.save(digit_png(d, seed=s), d, prediction=d) for s, d in enumerate((1, 2, 2))]
    disagreed = [store.save(digit_png(d, seed=9), d, prediction=(d + 1) % 10) for d in (2, 3)]
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
    from datetime import datetime
    middle = datetime.fromisoformat(agreed[2].created_at)
    assert [r.id for r in store.list(since=middle)[1]] == [r.id for r in reversed(everything[2:])]
    assert [r.id for r in store.list(until=middle)[1]] == [r.id for r in reversed(everything[:2])]
    assert [r.id for r in store.iter_samples(batch_size=2)] == [
        r.id for r in sorted(everything, key=lambda r: (r.label, r.created_at, r.id))]


def test_listing_ignores_leftover_files(store):
    whole = store.save(digit_png(6), 6)
    shard = whole.png_path.parent
    (shard / f"{'a' * 32}.png").write_bytes(whole.png_path.read_bytes())  # a crash before the row
    (shard / f".{'b' * 32}.png.x1y2.tmp").write_bytes(b"\x89PNG half")  # a crash mid-write
    (store.root / "6").mkdir()  # the old folder layout, not imported
    (store.root / "6" / f"{'c' * 32}.json").write_text(json.dumps({"id": "c" * 32, "label": 6}))
    assert [r.id for r in store.list()[1]] == [whole.id]
    assert [r.id for r in store.iter_samples()] == [whole.id]
    assert store.get("a" * 32) is None and store.get("c" * 32) is None
    assert store.count() == 1


def test_listing_sees_what_another_process_changed(store):
    # Two stores on one database stand for two gunicorn workers.
    other_worker = LabelStore(store.root, store.database_url)
    first, second = store.save(digit_png(1), 1), store.save(digit_png(2), 2)
    assert store.list()[0] == 2
    other_worker.relabel(first.id, 3)
    other_worker.delete(second.id)
    third = other_worker.save(digit_png(5), 5)
    assert {(r.id, r.label) for r in store.list()[1]} == {(first.id, 3), (third.id, 5)}
    other_worker.relabel(first.id, 1)
    listed = {r.id: r for r in store.list()[1]}
    assert listed[first.id].label == 1 and listed[first.id].previous_label == 3
    assert store.list(label=3) == (0, [])
    other_worker.close()


@pytest.mark.parametrize("bad_id", ["../../etc/passwd", "..", "", "A" * 32, "a" * 31,
                                    "12345678-1234-1234-1234-123456789012", "a" * 32 + "/x", None])
def test_malformed_ids_touch_nothing(store, bad_id):
    record = store.save(digit_png(3), 3)
    before = image_files(store.root)
    assert store.get(bad_id) is None
    assert store.png_path(bad_id) is None
    assert store.delete(bad_id) is False
    assert store.relabel(bad_id, 4) is None
    assert image_files(store.root) == before
    assert store.get(record.id) == record


# -- sweep ------------------------------------------------------------------------

def test_sweep_removes_old_leftovers_and_spares_young_ones_and_strangers(store):
    whole = store.save(digit_png(8), 8)
    shard = whole.png_path.parent
    old_orphan, young_orphan = shard / f"{'a' * 32}.png", shard / f"{'b' * 32}.png"
    old_temp, young_temp = shard / ".x.png.old.tmp", shard / ".y.png.new.tmp"
    stranger = shard / "keep-me.txt"
    for path in (old_orphan, young_orphan):
        path.write_bytes(whole.png_path.read_bytes())
    for path in (old_temp, young_temp, stranger):
        path.write_bytes(b"partial")
    for path in (old_orphan, old_temp, stranger, whole.png_path):
        _age(path)
    report = store.sweep(grace_seconds=60)
    assert (report.temp_files_removed, report.orphan_images_removed) == (1, 1)
    assert not old_orphan.exists() and not old_temp.exists()
    assert young_orphan.exists() and young_temp.exists() and stranger.exists()
    assert store.get(whole.id) == whole
    store.sweep(grace_seconds=0)
    assert not young_orphan.exists() and not young_temp.exists() and stranger.exists()
    _assert_whole(store.get(whole.id))


def test_sweep_of_a_missing_directory_is_a_no_op(tmp_path):
    store = LabelStore(tmp_path / "absent")
    assert store.sweep().orphan_images_removed == 0
    assert not (tmp_path / "absent").exists()


# -- relabel and delete -------------------------------------------------------------

def test_relabel_changes_the_row_only_and_records_the_change(store):
    record = store.save(digit_png(1), 1, prediction=7)
    image = record.png_path.read_bytes()
    moved = store.relabel(record.id, 7)
    assert moved.label == 7 and moved.png_path == record.png_path and moved.png_path.read_bytes() == image
    assert moved.previous_label == 1 and moved.relabeled_at and not moved.disagreed
    assert store.get(record.id) == moved and store.list()[0] == 1
    assert store.list(label=1)[0] == 0 and store.list(label=7, disagreed=False)[0] == 1
    assert store.relabel(record.id, 7) == moved  # same label: nothing to do
    assert store.relabel("f" * 32, 3) is None
    with pytest.raises(ValueError):
        store.relabel(record.id, 10)


def test_relabel_onto_an_exact_copy_is_refused_and_changes_nothing(store):
    drawing = digit_png(4, seed=5)
    four, nine = store.save(drawing, 4), store.save(drawing, 9)
    with pytest.raises(DuplicateSampleError) as refused:
        store.relabel(nine.id, 4)
    assert refused.value.existing_id == four.id
    assert store.get(nine.id).label == 9 and store.count() == 2


def test_delete_removes_row_and_image(store):
    record = store.save(digit_png(9), 9)
    keep = store.save(digit_png(9, seed=1), 9)
    assert store.delete(record.id) is True
    assert not record.png_path.exists()
    assert store.get(record.id) is None and store.delete(record.id) is False
    assert [r.id for r in store.list()[1]] == [keep.id] and store.count() == 1


def test_a_delete_cut_short_leaves_an_orphan_the_sweep_removes(store):
    record = store.save(digit_png(0), 0)
    with store.engine.begin() as connection:  # the commit happened; the crash came before the unlink
        connection.execute(delete(db.samples).where(db.samples.c.id == record.id))
    _age(record.png_path)
    assert store.list()[1] == [] and store.get(record.id) is None
    assert store.sweep(grace_seconds=0).orphan_images_removed == 1
    assert sample_files(store.root)["png"] == []


# -- the schema ---------------------------------------------------------------------

def test_stores_starting_together_migrate_once(tmp_path, label_database_url):
    url = label_database_url or db.sqlite_url_for(tmp_path, "labels.sqlite3")
    stores = [LabelStore(tmp_path, url) for _ in range(6)]
    errors = []

    def start(store):
        try:
            store.ensure_schema()
        except Exception as exc:
            errors.append(exc)

    threads = [threading.Thread(target=start, args=(s,)) for s in stores]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    with stores[0].engine.connect() as connection:
        assert db.current_revision(connection) == db.head_revision()
    assert db.migrate(stores[0].engine) is False  # already current: nothing runs
    for store in stores:
        store.close()


# -- export -----------------------------------------------------------------------

def test_export_zip_has_every_sample_in_the_store_layout(store):
    records = [store.save(digit_png(d, seed=i), d, prediction=d, confidence=0.5)
               for i, d in enumerate((0, 3, 3, 9))]
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


def test_export_streams_the_first_sample_before_reading_the_rest(store):
    records = [store.save(digit_png(d, seed=d), d) for d in range(10)]
    stream = ExportStream(store)
    chunks = iter(stream)
    first = next(chunks)
    assert stream.count == 1 and first.startswith(b"PK")
    rest = b"".join(chunks)
    assert stream.count == 10
    with zipfile.ZipFile(io.BytesIO(first + rest)) as archive:
        assert archive.testzip() is None
        assert json.loads(archive.read("manifest.json"))["count"] == len(records)


def test_export_of_an_empty_store_is_a_valid_zip(store):
    buffer = io.BytesIO()
    assert store.export_zip(buffer) == 0
    with zipfile.ZipFile(buffer) as archive:
        assert archive.namelist() == ["manifest.json"]
        assert json.loads(archive.read("manifest.json"))["samples"] == []


# -- a disk that refuses the write ---------------------------------------------------

@pytest.fixture
def small_volume(tmp_path):
    """A 512 KiB tmpfs, so "disk full" is the kernel's own ENOSPC (needs root)."""
    mount_point = tmp_path / "volume"
    mount_point.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=512k", "tmpfs", str(mount_point)],
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


@pytest.mark.parametrize("png_fits", [False, True], ids=["image-fails", "row-fails"])
def test_a_full_disk_raises_and_leaves_nothing(small_volume, png_fits):
    store = LabelStore(small_volume / "labels")
    store.ensure_schema()
    (store.images_dir / "00").mkdir(parents=True)
    drawing = digit_png(3, seed=1)
    clean_size = len(encode_png(drawing)[0])
    block = os.statvfs(small_volume).f_frsize
    png_blocks = -(-clean_size // block)
    # Room for the image but not the row after it, or not even for the image.
    fill_leaving(small_volume, png_blocks * block if png_fits else (png_blocks - 1) * block)
    with pytest.raises(OSError) as failure:
        store.save(drawing, 3)
    assert failure.value.errno == 28  # ENOSPC
    assert sample_files(store.root) == {"png": [], "temp": [], "other": []}
    (small_volume / "filler").unlink()
    assert store.count() == 0 and store.list() == (0, [])
    store.close()


def test_a_read_only_directory_raises_and_leaves_nothing(tmp_path):
    root = tmp_path / "labels"
    root.mkdir()
    if os.geteuid() == 0:  # root ignores permission bits: make the file system itself read-only
        result = subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=64k", "tmpfs", str(root)],
                                capture_output=True, text=True)
        if result.returncode != 0:
            pytest.skip(f"cannot mount a read-only tmpfs here: {result.stderr.strip()}")
    else:
        root.chmod(0o555)
    try:
        with pytest.raises(OSError):
            LabelStore(root).save(digit_png(4), 4)
        assert snapshot(root) == {}
    finally:
        if os.geteuid() == 0:
            subprocess.run(["umount", "-l", str(root)], check=False)
        else:
            root.chmod(0o755)


def test_stores_migrated_at_once_in_one_process_each_get_their_own_schema(tmp_path):
    # The web app opens its store on first use, from whichever thread gets there,
    # and a process may hold several stores (tests do): Alembic's module-level
    # context allows one upgrade at a time per process.
    stores = [LabelStore(tmp_path / f"store-{index}") for index in range(6)]
    start = threading.Barrier(len(stores))
    failures = []

    def migrate(store):
        start.wait()
        try:
            store.ensure_schema()
        except Exception as exc:  # noqa: BLE001 - collected and reported below
            failures.append(repr(exc))

    threads = [threading.Thread(target=migrate, args=(store,)) for store in stores]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not failures
    for store in stores:
        assert store.count() == 0 and store.list() == (0, [])
        store.close()
