"""The labelled-drawings store: the dataset people build by drawing.

Layout (shared with the fine-tuning code, which reads it through this module)::

    <root>/<digit>/<id>.png    the drawing, decoded and re-encoded here (never the client's bytes)
    <root>/<digit>/<id>.json   its metadata: id, label, created_at (UTC ISO 8601), prediction,
                               confidence, model_version, width, height, sha256 (of the PNG)
    <root>/.lock               serialises relabel, delete and the start-up sweep across processes

Crash safety rests on three rules:

1. Every file is written atomically: a temp file in the same directory (hidden name
   ``.<id>.<ext>.<random>.tmp``), written, flushed, fsynced, renamed over its final
   name, then the directory fsynced. A file under its final name is therefore whole.
2. A sample is committed by its JSON: the PNG is written first and the JSON last,
   so a sample exists iff its JSON exists (and then its PNG is whole). A crash
   mid-save leaves at most a temp file or a PNG without JSON (an orphan); listing
   ignores both and `sweep()` deletes them once they are older than a grace period
   (so a sweep in one worker never races a save in progress in another).
3. Delete removes the JSON first (the commit point: the sample is gone), then the PNG.

Relabel moves a sample from digit A to digit B with a single commit point, the
rename of the JSON from A/ to B/ (one atomic rename within the store's file
system), so a crash never leaves it listed twice or not at all:

    step 1  copy A/<id>.png to B/<id>.png (atomically)   crash: B/<id>.png is an orphan, swept;
                                                          the sample is still A, once
    step 2  rewrite A/<id>.json with label B (atomically) crash: listed once, label B, PNG in A;
                                                          the sweep rolls the move forward
    step 3  rename A/<id>.json -> B/<id>.json (commit)    crash: listed once under B;
                                                          A/<id>.png is an orphan, swept
    step 4  remove A/<id>.png

Writing B/<id>.json as a new file before removing A/<id>.json would instead leave
a window with the sample listed twice; removing A's JSON first, a window with it
listed nowhere.

The store holds no state besides the directory, so any number of processes may
use it at once: saves never collide (fresh uuid4 ids), and the rarer mutations
take an flock on ``<root>/.lock`` (plus a thread lock; best effort where the file
system has no locks, as on a Cloud Storage FUSE mount).
"""
from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import hashlib
import io
import json
import logging
import os
import re
import threading
import time
import uuid
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Iterator, Mapping

from PIL import Image

from .atomic_files import atomic_write_bytes, fsync_directory
from .imaging import DEFAULT_MAX_PIXELS, image_to_rgba, open_image

log = logging.getLogger(__name__)

DIGITS = tuple(range(10))
ID_PATTERN = re.compile(r"[0-9a-f]{32}")  # uuid4().hex
_SAMPLE_FILE = re.compile(r"([0-9a-f]{32})\.(png|json)")
_TEMP_FILE = re.compile(r"\..*\.tmp")
DEFAULT_SWEEP_GRACE_SECONDS = 30.0  # a save takes milliseconds; this is a wide margin
EXPORT_FORMAT = "digit-labels/1"
_LOCK_NAME = ".lock"
# Metadata keys every sidecar has; anything else is carried along untouched.
_CORE_KEYS = ("id", "label", "created_at", "prediction", "confidence", "model_version",
              "width", "height")


def is_valid_id(sample_id: object) -> bool:
    return isinstance(sample_id, str) and ID_PATTERN.fullmatch(sample_id) is not None


def validate_label(label: object) -> int:
    """The label as an int 0-9, or ValueError. Booleans are not labels."""
    if isinstance(label, bool) or not isinstance(label, int) or label not in DIGITS:
        raise ValueError(f"label must be an integer 0-9, got {label!r}")
    return label


def utc_now_iso() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="microseconds")


@dataclass(frozen=True)
class SampleRecord:
    """One stored sample: its metadata and where its PNG is."""

    id: str
    label: int
    created_at: str
    prediction: int | None
    confidence: float | None
    model_version: str | None
    width: int
    height: int
    png_path: Path
    extra: Mapping = field(default_factory=dict, compare=False, repr=False)

    @property
    def disagreed(self) -> bool:
        """The model's prediction at submit time differs from the label."""
        return self.prediction is not None and self.prediction != self.label

    @property
    def sha256(self) -> str | None:
        return self.extra.get("sha256")

    def metadata(self) -> dict:
        """The sidecar JSON's content."""
        data = {key: getattr(self, key) for key in _CORE_KEYS}
        data.update({k: v for k, v in self.extra.items() if k not in data})
        return data

    @classmethod
    def from_metadata(cls, data: Mapping, png_path: Path) -> "SampleRecord":
        if not is_valid_id(data.get("id")):
            raise ValueError("metadata has no valid id")
        return cls(
            id=data["id"],
            label=validate_label(data.get("label")),
            created_at=str(data["created_at"]),
            prediction=data.get("prediction"),
            confidence=data.get("confidence"),
            model_version=data.get("model_version"),
            width=int(data["width"]),
            height=int(data["height"]),
            png_path=png_path,
            extra={k: v for k, v in data.items() if k not in _CORE_KEYS},
        )


@dataclass(frozen=True)
class SweepReport:
    temp_files_removed: int = 0
    orphan_pngs_removed: int = 0
    relabels_completed: int = 0


def encode_png(png_bytes: bytes, max_pixels: int = DEFAULT_MAX_PIXELS) -> tuple[bytes, int, int]:
    """Decode untrusted PNG bytes and re-encode them as a clean RGBA PNG.

    Only pixels survive: no ancillary chunks, no odd bit depths or palettes from
    the client. 16-bit greyscale goes through `image_to_rgba`, which scales it
    the way the model's preprocessing does (Pillow's convert() would clip it).
    Returns (png, width, height); raises DrawingError subclasses on bad input.
    """
    image = open_image(png_bytes, max_pixels=max_pixels)
    if image.mode in ("I", "I;16", "I;16B", "I;16L", "I;16N", "F"):
        rgba = (image_to_rgba(image) * 255.0 + 0.5).astype("uint8")
        image = Image.fromarray(rgba, mode="RGBA")
    elif image.mode != "RGBA":
        image = image.convert("RGBA")
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue(), image.width, image.height


def _metadata_bytes(data: Mapping) -> bytes:
    return (json.dumps(data, indent=2, sort_keys=True) + "\n").encode("utf-8")


class LabelStore:
    """Labelled drawings under one directory. Thread- and process-safe."""

    def __init__(self, root: str | os.PathLike, max_pixels: int = DEFAULT_MAX_PIXELS,
                 sweep_grace_seconds: float = DEFAULT_SWEEP_GRACE_SECONDS):
        self.root = Path(root)
        self.max_pixels = max_pixels
        self.sweep_grace_seconds = sweep_grace_seconds
        self._thread_lock = threading.Lock()
        # digit -> {id: (stat key of its JSON, record)}: listing re-reads only
        # what changed, which matters most on a network volume.
        self._records_cache: dict[int, dict[str, tuple[tuple, SampleRecord]]] = {}

    # -- paths ---------------------------------------------------------------

    def _digit_dir(self, label: int) -> Path:
        return self.root / str(validate_label(label))

    def _ensure_digit_dir(self, label: int) -> Path:
        directory = self._digit_dir(label)
        if not directory.is_dir():
            directory.mkdir(parents=True, exist_ok=True)
            fsync_directory(self.root)  # the new directory's entry must outlive a power cut too
        return directory

    def _existing_digit_dirs(self) -> Iterator[tuple[int, Path]]:
        for digit in DIGITS:
            directory = self.root / str(digit)
            if directory.is_dir():
                yield digit, directory

    def _locate(self, sample_id: str) -> tuple[int, Path] | None:
        """The digit directory holding the sample's JSON (None: no such sample)."""
        if not is_valid_id(sample_id):
            return None  # never build a path from anything but a well-formed id
        for digit, directory in self._existing_digit_dirs():
            if (directory / f"{sample_id}.json").is_file() and (directory / f"{sample_id}.png").is_file():
                return digit, directory
        return None

    @contextlib.contextmanager
    def _mutation_lock(self):
        """Serialise relabel, delete and sweep across threads and processes."""
        with self._thread_lock:
            self.root.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.root / _LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX)
                except OSError as exc:  # no locks on this file system: threads are still serialised
                    log.warning("label store: flock unavailable (%s); locking within this process only", exc)
                yield
            finally:
                os.close(fd)  # releases the flock

    # -- reading -------------------------------------------------------------

    def _read_record(self, directory: Path, sample_id: str) -> SampleRecord | None:
        try:
            data = json.loads((directory / f"{sample_id}.json").read_bytes())
            record = SampleRecord.from_metadata(data, directory / f"{sample_id}.png")
        except FileNotFoundError:
            return None  # deleted or moved since the directory was listed
        except (ValueError, KeyError, TypeError) as exc:
            log.warning("label store: skipping unreadable metadata %s/%s.json: %s",
                        directory.name, sample_id, exc)
            return None
        if record.id != sample_id:
            log.warning("label store: skipping %s/%s.json: it names id %s",
                        directory.name, sample_id, record.id)
            return None
        return record

    def _cached_record(self, directory: Path, sample_id: str, cached: dict, seen: dict) -> SampleRecord | None:
        """The sample's record, parsed again only if its JSON file changed.

        Every write replaces the JSON by rename, so a changed sidecar has a new
        inode, mtime or size. A file replaced between the stat and the read is
        cached under the old key, which no later stat matches: it is re-read.
        """
        try:
            stat = os.stat(os.path.join(directory, f"{sample_id}.json"))
        except FileNotFoundError:
            return None
        key = (stat.st_ino, stat.st_mtime_ns, stat.st_size)
        hit = cached.get(sample_id)
        record = hit[1] if hit is not None and hit[0] == key else self._read_record(directory, sample_id)
        if record is not None:
            seen[sample_id] = (key, record)
        return record

    def _scan(self, label: int | None = None) -> list[SampleRecord]:
        """Every committed sample (JSON and PNG both present), each once."""
        digits = DIGITS if label is None else (validate_label(label),)
        found: dict[str, SampleRecord] = {}
        for digit in digits:
            directory = self.root / str(digit)
            try:
                names = set(os.listdir(directory))
            except FileNotFoundError:
                self._records_cache.pop(digit, None)
                continue
            cached = self._records_cache.get(digit, {})
            seen: dict[str, tuple[tuple, SampleRecord]] = {}
            for name in names:
                match = _SAMPLE_FILE.fullmatch(name)
                if not match or match.group(2) != "json" or f"{match.group(1)}.png" not in names:
                    continue  # temp files, orphan PNGs, anything else
                record = self._cached_record(directory, match.group(1), cached, seen)
                if record is None:
                    continue
                # A sample seen twice is a relabel caught mid-rename by this scan:
                # keep the copy whose directory agrees with its label.
                previous = found.get(record.id)
                if previous is None or record.png_path.parent.name == str(record.label):
                    found[record.id] = record
            self._records_cache[digit] = seen  # forgets what is gone
        if label is not None:
            # A JSON left in the old directory mid-relabel says its new label.
            return [r for r in found.values() if r.label == label]
        return list(found.values())

    def list(self, label: int | None = None, disagreed: bool | None = None,
             limit: int | None = None, offset: int = 0) -> tuple[int, list[SampleRecord]]:
        """(total matching, one page of them), newest first."""
        records = self._scan(label)
        if disagreed is not None:
            records = [r for r in records if r.disagreed == disagreed]
        records.sort(key=lambda r: (r.created_at, r.id), reverse=True)
        end = None if limit is None else offset + limit
        return len(records), records[offset:end]

    def iter_samples(self) -> Iterator[SampleRecord]:
        """Every whole sample, ordered by label then creation time (for training and export)."""
        records = self._scan()
        records.sort(key=lambda r: (r.label, r.created_at, r.id))
        yield from records

    def count(self) -> int:
        return len(self._scan())

    def get(self, sample_id: str) -> SampleRecord | None:
        location = self._locate(sample_id)
        if location is None:
            return None
        return self._read_record(location[1], sample_id)

    def png_path(self, sample_id: str) -> Path | None:
        record = self.get(sample_id)
        return None if record is None else record.png_path

    # -- writing -------------------------------------------------------------

    def save(self, png_bytes: bytes, label: int, prediction: int | None = None,
             confidence: float | None = None, model_version: str | None = None) -> SampleRecord:
        """Store a drawing under `label`. Durable when this returns.

        Raises ValueError for a bad label, DrawingError subclasses for a bad
        image (nothing is written in either case) and OSError when the disk
        refuses the write (nothing is left behind: the PNG is removed if the
        JSON cannot be written).
        """
        label = validate_label(label)
        clean_png, width, height = encode_png(png_bytes, self.max_pixels)
        sample_id = uuid.uuid4().hex
        directory = self._ensure_digit_dir(label)
        metadata = {
            "id": sample_id,
            "label": label,
            "created_at": utc_now_iso(),
            "prediction": None if prediction is None else int(prediction),
            "confidence": None if confidence is None else float(confidence),
            "model_version": model_version,
            "width": width,
            "height": height,
            "sha256": hashlib.sha256(clean_png).hexdigest(),
        }
        png_path = directory / f"{sample_id}.png"
        atomic_write_bytes(png_path, clean_png)
        try:
            atomic_write_bytes(directory / f"{sample_id}.json", _metadata_bytes(metadata))
        except BaseException:
            with contextlib.suppress(OSError):
                png_path.unlink()
            raise
        return SampleRecord.from_metadata(metadata, png_path)

    def delete(self, sample_id: str) -> bool:
        """Remove a sample: JSON first (the commit), then its PNG. False if absent."""
        if not is_valid_id(sample_id):
            return False
        with self._mutation_lock():
            location = self._locate(sample_id)
            if location is None:
                return False
            directory = location[1]
            os.unlink(directory / f"{sample_id}.json")
            fsync_directory(directory)
            with contextlib.suppress(FileNotFoundError):
                os.unlink(directory / f"{sample_id}.png")
            fsync_directory(directory)
            return True

    def relabel(self, sample_id: str, label: int) -> SampleRecord | None:
        """Move a sample to another digit (see the module docstring). None if absent."""
        label = validate_label(label)
        if not is_valid_id(sample_id):
            return None
        with self._mutation_lock():
            location = self._locate(sample_id)
            if location is None:
                return None
            record = self._read_record(location[1], sample_id)
            if record is None:
                return None
            metadata = record.metadata()
            if record.label != label:
                metadata.update(label=label, relabeled_at=utc_now_iso(), previous_label=record.label)
            elif location[0] == label:
                return record  # already so labelled: nothing to write
            # else: an interrupted relabel to this very label; finishing it is the answer
            return self._move(location[1], sample_id, metadata)

    def _move(self, source_dir: Path, sample_id: str, metadata: dict) -> SampleRecord:
        """Steps 1-4 of a relabel; also how the sweep completes an interrupted one."""
        target_dir = self._ensure_digit_dir(metadata["label"])
        source_png = source_dir / f"{sample_id}.png"
        target_png = target_dir / f"{sample_id}.png"
        if source_dir != target_dir:
            atomic_write_bytes(target_png, source_png.read_bytes())                 # step 1
        atomic_write_bytes(source_dir / f"{sample_id}.json", _metadata_bytes(metadata))  # step 2
        if source_dir != target_dir:
            os.rename(source_dir / f"{sample_id}.json", target_dir / f"{sample_id}.json")  # step 3
            fsync_directory(target_dir)
            fsync_directory(source_dir)
            with contextlib.suppress(FileNotFoundError):
                source_png.unlink()                                            # step 4
            fsync_directory(source_dir)
        return SampleRecord.from_metadata(metadata, target_png)

    # -- recovery --------------------------------------------------------------

    def sweep(self, grace_seconds: float | None = None) -> SweepReport:
        """Finish what a crash interrupted; run at start-up.

        Completes relabels caught between steps 2 and 3, then removes temp files
        and orphan PNGs older than the grace period (younger ones may belong to a
        save still running in another process). Never touches files it does not
        recognise.
        """
        grace = self.sweep_grace_seconds if grace_seconds is None else grace_seconds
        if not self.root.is_dir():
            return SweepReport()
        cutoff = time.time() - grace
        temp_removed = orphans_removed = relabels_completed = 0
        with self._mutation_lock():
            for digit, directory in self._existing_digit_dirs():
                for name in os.listdir(directory):
                    match = _SAMPLE_FILE.fullmatch(name)
                    if not match or match.group(2) != "json":
                        continue
                    record = self._read_record(directory, match.group(1))
                    if record is not None and record.label != digit and \
                            (directory / f"{record.id}.png").is_file():
                        self._move(directory, record.id, record.metadata())
                        relabels_completed += 1
            for _digit, directory in self._existing_digit_dirs():
                names = set(os.listdir(directory))
                for name in names:
                    path = directory / name
                    match = _SAMPLE_FILE.fullmatch(name)
                    is_temp = _TEMP_FILE.fullmatch(name) is not None
                    is_orphan = bool(match) and match.group(2) == "png" and \
                        f"{match.group(1)}.json" not in names
                    if not (is_temp or is_orphan):
                        continue
                    try:
                        if path.stat().st_mtime > cutoff:
                            continue
                        path.unlink()
                    except FileNotFoundError:
                        continue
                    if is_temp:
                        temp_removed += 1
                    else:
                        orphans_removed += 1
                fsync_directory(directory)
        report = SweepReport(temp_removed, orphans_removed, relabels_completed)
        if report != SweepReport():
            log.warning("label store: swept crash leftovers: %s", report)
        return report

    # -- export ----------------------------------------------------------------

    def export_zip(self, file: BinaryIO) -> int:
        """Write every sample to `file` as a zip; returns how many.

        Layout: <digit>/<id>.png, <digit>/<id>.json and a manifest.json listing
        each sample with its PNG's sha256. A sample deleted while the export runs
        is left out (and so is absent from the manifest too).
        """
        exported = []
        with zipfile.ZipFile(file, "w") as archive:
            for record in self.iter_samples():
                try:
                    png = record.png_path.read_bytes()
                except FileNotFoundError:
                    continue
                stem = f"{record.label}/{record.id}"
                stamp = _zip_time(record.created_at)
                # PNGs are already compressed; storing them saves CPU for nothing lost.
                archive.writestr(zipfile.ZipInfo(f"{stem}.png", stamp), png, zipfile.ZIP_STORED)
                archive.writestr(zipfile.ZipInfo(f"{stem}.json", stamp),
                                 _metadata_bytes(record.metadata()), zipfile.ZIP_DEFLATED)
                exported.append({"id": record.id, "label": record.label, "png": f"{stem}.png",
                                 "json": f"{stem}.json", "sha256": hashlib.sha256(png).hexdigest()})
            manifest = {"format": EXPORT_FORMAT, "exported_at": utc_now_iso(),
                        "count": len(exported), "samples": exported}
            archive.writestr(zipfile.ZipInfo("manifest.json", _zip_time(manifest["exported_at"])),
                             _metadata_bytes(manifest), zipfile.ZIP_DEFLATED)
        return len(exported)


def _zip_time(iso: str) -> tuple:
    try:
        moment = dt.datetime.fromisoformat(iso)
    except ValueError:
        moment = dt.datetime.now(dt.timezone.utc)
    return (max(moment.year, 1980), moment.month, moment.day, moment.hour, moment.minute, moment.second)
