"""The labelled-drawings store: the dataset people build by drawing.

Two parts, each doing what it is good at:

- **Images are files** under ``<root>/images/<first two hex digits of id>/<id>.png``
  (``root`` is LABELS_DIR, a Cloud Storage volume on Cloud Run), each one
  decoded, shrunk to at most 512 px a side and re-encoded here (never the
  client's bytes), written atomically and fsynced.
- **Metadata is a database row** (`label_database`: SQLite by default,
  PostgreSQL by LABELS_DATABASE_URL). Listing, filters, counts and pagination
  are indexed queries, so none of them grows with the store.

Crash safety rests on one rule: **the row is the commit point.** A save
writes the image first and commits its row second, so every row names a whole
image; a crash in between leaves only an image no row names (an orphan). A
delete commits the row's removal first and unlinks the image second; a crash
in between leaves, again, only an orphan. Relabel touches only the row (the
image path does not depend on the label), so it is one transaction. Orphans
and temp files older than a grace period are removed by `sweep()`, which the
web app runs in the background and `python -m digit_recognition labels sweep`
runs on demand; nothing proportional to the store happens at start-up.

Exact duplicates (the same stored image bytes under the same label) are kept
once: a unique index on (sha256, label) decides, also between processes, and
a second save answers the first sample (``duplicate=True``).
"""
from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import errno
import hashlib
import io
import json
import logging
import os
import re
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Iterable, Iterator, Mapping

from PIL import Image
from sqlalchemy import delete, func, insert, select, tuple_, update
from sqlalchemy.exc import DBAPIError, IntegrityError

from . import label_database as db
from .atomic_files import atomic_write_bytes, fsync_directory
from .errors import DrawingError
from .imaging import DEFAULT_MAX_PIXELS, MAX_WORKING_SIDE, image_to_rgba, open_image, shrink_to_working_size
# Re-exported: the store's callers import these names from here.
from .label_records import (DIGITS, EXPORT_FORMAT, ID_PATTERN, DuplicateSampleError, LabelStorageError,  # noqa: F401
                            SampleRecord, StoreFullError, is_valid_id, iso, utc_now, utc_now_iso, validate_label)
from .paths import DEFAULT_DATABASE_NAME

log = logging.getLogger(__name__)

IMAGES_DIR = "images"
_SHARD = re.compile(r"[0-9a-f]{2}")
_IMAGE_FILE = re.compile(r"([0-9a-f]{32})\.png")
_TEMP_FILE = re.compile(r"\..*\.tmp")
# A save writes its image, then waits at most the database's busy timeout
# (30 s) to commit its row; an image this much older with no row is an orphan.
DEFAULT_SWEEP_GRACE_SECONDS = 600.0
MAX_STORED_SIDE = MAX_WORKING_SIDE  # the model reads drawings at most this size; more is waste
_BATCH = 500


def _naive_utc(moment: dt.datetime) -> dt.datetime:
    """What the database stores: UTC without a zone (SQLite has no zones)."""
    if moment.tzinfo is not None:
        moment = moment.astimezone(dt.timezone.utc).replace(tzinfo=None)
    return moment


@dataclass(frozen=True)
class SweepReport:
    temp_files_removed: int = 0
    orphan_images_removed: int = 0


@dataclass(frozen=True)
class NewSample:
    """A sample to add with its identity already decided (import keeps ids and dates)."""

    png: bytes  # as received; re-encoded on the way in
    label: int
    sample_id: str
    created_at: dt.datetime
    prediction: int | None = None
    confidence: float | None = None
    model_version: str | None = None
    model_verdict: str | None = None
    previous_label: int | None = None
    relabeled_at: dt.datetime | None = None
    extra: Mapping = field(default_factory=dict)


@dataclass
class ImportReport:
    imported: int = 0
    already_present: int = 0  # same id already in the store: an import run again
    duplicates: int = 0  # same image and label as a stored sample
    invalid: dict[str, int] = field(default_factory=dict)  # reason -> count

    def count_invalid(self, reason: str) -> None:
        self.invalid[reason] = self.invalid.get(reason, 0) + 1


def encode_png(png_bytes: bytes, max_pixels: int = DEFAULT_MAX_PIXELS,
               max_side: int = MAX_STORED_SIDE) -> tuple[bytes, int, int]:
    """Decode untrusted PNG bytes and re-encode them as a clean RGBA PNG.

    Only pixels survive: no ancillary chunks, no odd bit depths or palettes from
    the client. A drawing larger than `max_side` is box-averaged down first,
    exactly as the model's preprocessing does, so the stored image gives the
    model the same input as the original. 16-bit greyscale goes through
    `image_to_rgba`, which scales it the way preprocessing does (Pillow's
    convert() would clip it). Returns (png, width, height); raises DrawingError
    subclasses on bad input.
    """
    image = shrink_to_working_size(open_image(png_bytes, max_pixels=max_pixels), max_side)
    if image.mode in ("I", "I;16", "I;16B", "I;16L", "I;16N", "F"):
        rgba = (image_to_rgba(image) * 255.0 + 0.5).astype("uint8")
        image = Image.fromarray(rgba, mode="RGBA")
    elif image.mode != "RGBA":
        image = image.convert("RGBA")
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue(), image.width, image.height


@contextlib.contextmanager
def _database_errors():
    """Database failures as OSError (ENOSPC when it is full), so callers
    handle a refused row as they handle a refused file write."""
    try:
        yield
    except IntegrityError:
        raise
    except DBAPIError as error:
        reason = str(error.orig)
        full = "full" in reason.lower() or getattr(error.orig, "sqlstate", None) == "53100"
        raise LabelStorageError(errno.ENOSPC if full else errno.EIO, f"label database: {reason}") from error


class LabelStore:
    """Labelled drawings: images under `root`, metadata in a database. Thread- and process-safe.

    `database_url` None means an SQLite file inside `root`. `max_samples` None
    means no cap. Creating a store connects to nothing; the first operation
    brings the schema up to date (one small query when it already is).
    """

    def __init__(self, root: str | os.PathLike, database_url: str | None = None, *,
                 max_pixels: int = DEFAULT_MAX_PIXELS, max_samples: int | None = None,
                 sweep_grace_seconds: float = DEFAULT_SWEEP_GRACE_SECONDS):
        self.root = Path(root)
        self.images_dir = self.root / IMAGES_DIR
        self.max_pixels = max_pixels
        self.max_samples = max_samples
        self.sweep_grace_seconds = sweep_grace_seconds
        self._uses_default_database = database_url is None
        self.database_url = database_url or db.sqlite_url_for(self.root, DEFAULT_DATABASE_NAME)
        self.engine = db.create_database_engine(self.database_url)
        self._schema_ready = False
        self._schema_lock = threading.Lock()

    def __repr__(self) -> str:
        return f"LabelStore({str(self.root)!r}, {self.engine.url.render_as_string(hide_password=True)!r})"

    def close(self) -> None:
        self.engine.dispose()

    # -- plumbing ----------------------------------------------------------------

    def ensure_schema(self) -> bool:
        """Create or migrate the database schema, once per store object; True if a migration ran."""
        if self._schema_ready:
            return False
        with self._schema_lock:
            if self._schema_ready:
                return False
            if self._uses_default_database:
                self.root.mkdir(parents=True, exist_ok=True)
            with _database_errors():
                ran = db.migrate(self.engine)
            self._schema_ready = True
            return ran

    @contextlib.contextmanager
    def _reading(self):
        self.ensure_schema()
        with _database_errors(), self.engine.connect() as connection, connection.begin():
            yield connection

    @contextlib.contextmanager
    def _writing(self):
        self.ensure_schema()
        with _database_errors(), self.engine.connect() as connection:
            connection = connection.execution_options(**db.WRITE)
            with connection.begin():
                yield connection

    def image_path(self, sample_id: str) -> Path:
        if not is_valid_id(sample_id):
            raise ValueError("not a sample id")  # never build a path from anything else
        return self.images_dir / sample_id[:2] / f"{sample_id}.png"

    def _record(self, row) -> SampleRecord:
        return SampleRecord(
            id=row.id, label=int(row.label), created_at=iso(row.created_at),
            prediction=None if row.prediction is None else int(row.prediction),
            confidence=row.confidence, model_version=row.model_version,
            width=int(row.width), height=int(row.height), png_path=self.image_path(row.id),
            sha256=row.sha256, model_verdict=row.model_verdict,
            previous_label=None if row.previous_label is None else int(row.previous_label),
            relabeled_at=None if row.relabeled_at is None else iso(row.relabeled_at),
            extra=json.loads(row.extra) if row.extra else {})

    # -- reading -------------------------------------------------------------------

    def list(self, label: int | None = None, disagreed: bool | None = None,
             since: dt.datetime | None = None, until: dt.datetime | None = None,
             limit: int | None = None, offset: int = 0) -> tuple[int, list[SampleRecord]]:
        """(total matching, one page of them), newest first; `since` <= created_at < `until`."""
        samples = db.samples
        conditions = []
        if label is not None:
            conditions.append(samples.c.label == validate_label(label))
        if disagreed is not None:
            conditions.append(samples.c.disagreed == bool(disagreed))
        if since is not None:
            conditions.append(samples.c.created_at >= _naive_utc(since))
        if until is not None:
            conditions.append(samples.c.created_at < _naive_utc(until))
        page = (select(samples).where(*conditions)
                .order_by(samples.c.created_at.desc(), samples.c.id.desc()).offset(offset))
        if limit is not None:
            page = page.limit(limit)
        with self._reading() as connection:
            if conditions:
                total = connection.execute(select(func.count()).select_from(samples).where(*conditions)).scalar_one()
            else:
                total = self._total(connection)
            rows = connection.execute(page).all()
        return int(total), [self._record(row) for row in rows]

    @staticmethod
    def _total(connection) -> int:
        return int(connection.execute(select(db.store_totals.c.samples)
                                      .where(db.store_totals.c.id == 1)).scalar_one())

    def count(self) -> int:
        with self._reading() as connection:
            return self._total(connection)

    def iter_samples(self, batch_size: int = _BATCH) -> Iterator[SampleRecord]:
        """Every sample, by label then creation time, fetched a page at a time
        (keyset pagination: no long transaction, no memory growth)."""
        samples = db.samples
        order = (samples.c.label, samples.c.created_at, samples.c.id)
        after = None
        while True:
            query = select(samples).order_by(*order).limit(batch_size)
            if after is not None:
                query = query.where(tuple_(*order) > tuple_(*after))
            with self._reading() as connection:
                rows = connection.execute(query).all()
            for row in rows:
                yield self._record(row)
            if len(rows) < batch_size:
                return
            after = (rows[-1].label, rows[-1].created_at, rows[-1].id)

    def get(self, sample_id: str) -> SampleRecord | None:
        if not is_valid_id(sample_id):
            return None
        with self._reading() as connection:
            row = connection.execute(select(db.samples).where(db.samples.c.id == sample_id)).first()
        return None if row is None else self._record(row)

    def png_path(self, sample_id: str) -> Path | None:
        record = self.get(sample_id)
        return None if record is None else record.png_path

    def read_png(self, record: SampleRecord) -> bytes:
        """The stored image's bytes (FileNotFoundError if it was deleted meanwhile)."""
        return self.image_path(record.id).read_bytes()

    # -- writing -------------------------------------------------------------------

    def save(self, png_bytes: bytes, label: int, prediction: int | None = None,
             confidence: float | None = None, model_version: str | None = None,
             model_verdict: str | None = None) -> SampleRecord:
        """Store a drawing under `label`. Durable when this returns.

        Returns the new sample, or the stored one (``duplicate=True``) when the
        same drawing is already stored under this label. Raises ValueError for
        a bad label, DrawingError subclasses for a bad image (nothing is
        written in either case), StoreFullError at the cap, and OSError when
        the disk or the database refuses the write (nothing is left behind).
        """
        label = validate_label(label)
        clean_png, width, height = encode_png(png_bytes, self.max_pixels)
        sample = NewSample(clean_png, label, uuid.uuid4().hex, utc_now(), prediction=prediction,
                           confidence=confidence, model_version=model_version, model_verdict=model_verdict)
        return self._add(sample, clean_png, width, height)

    def _row(self, sample: NewSample, clean_png: bytes, width: int, height: int) -> dict:
        prediction = None if sample.prediction is None else int(sample.prediction)
        return {
            "id": sample.sample_id, "label": sample.label, "created_at": _naive_utc(sample.created_at),
            "prediction": prediction,
            "confidence": None if sample.confidence is None else float(sample.confidence),
            "model_version": sample.model_version, "model_verdict": sample.model_verdict,
            "disagreed": prediction is not None and prediction != sample.label,
            "width": width, "height": height, "byte_size": len(clean_png),
            "sha256": hashlib.sha256(clean_png).hexdigest(),
            "previous_label": sample.previous_label,
            "relabeled_at": None if sample.relabeled_at is None else _naive_utc(sample.relabeled_at),
            "extra": json.dumps(dict(sample.extra), sort_keys=True) if sample.extra else None,
        }

    def _find_copy(self, connection, sha256: str, label: int):
        return connection.execute(select(db.samples).where(db.samples.c.sha256 == sha256,
                                                           db.samples.c.label == label)).first()

    def _write_image(self, sample_id: str, clean_png: bytes, sync: bool = True) -> Path:
        path = self.image_path(sample_id)
        if not path.parent.is_dir():
            path.parent.mkdir(parents=True, exist_ok=True)
            if sync:
                fsync_directory(path.parent.parent)  # the new shard's entry must outlive a power cut too
        atomic_write_bytes(path, clean_png, sync=sync)
        return path

    def _full_message(self) -> str:
        return (f"the label store is full: it holds its limit of {self.max_samples} samples "
                "(LABELS_MAX_SAMPLES)")

    def _add(self, sample: NewSample, clean_png: bytes, width: int, height: int) -> SampleRecord:
        row = self._row(sample, clean_png, width, height)
        with self._reading() as connection:  # cheap refusals before any file is written
            copy = self._find_copy(connection, row["sha256"], row["label"])
            if copy is None and self.max_samples is not None and self._total(connection) >= self.max_samples:
                raise StoreFullError(self._full_message())
        if copy is not None:
            return dataclasses.replace(self._record(copy), duplicate=True)
        path = self._write_image(sample.sample_id, clean_png)
        try:
            with self._writing() as connection:
                self._insert(connection, [row])
        except IntegrityError:
            path.unlink(missing_ok=True)
            with self._reading() as connection:  # the same drawing, committed by another request meanwhile
                copy = self._find_copy(connection, row["sha256"], row["label"])
            if copy is None:
                raise
            return dataclasses.replace(self._record(copy), duplicate=True)
        except BaseException:
            path.unlink(missing_ok=True)
            raise
        return self._record(_Row(row))

    def _insert(self, connection, rows: list[dict]) -> None:
        """Insert rows and count them in store_totals, enforcing the cap (caller's transaction)."""
        totals = db.store_totals
        stored = connection.execute(select(totals.c.samples).where(totals.c.id == 1).with_for_update()).scalar_one()
        if self.max_samples is not None and stored + len(rows) > self.max_samples:
            raise StoreFullError(self._full_message())
        connection.execute(insert(db.samples), rows)
        connection.execute(update(totals).where(totals.c.id == 1).values(
            samples=totals.c.samples + len(rows), bytes=totals.c.bytes + sum(r["byte_size"] for r in rows)))

    def delete(self, sample_id: str) -> bool:
        """Remove a sample: the row first (the commit), then its image. False if absent."""
        if not is_valid_id(sample_id):
            return False
        samples, totals = db.samples, db.store_totals
        with self._writing() as connection:
            removed = connection.execute(delete(samples).where(samples.c.id == sample_id)
                                         .returning(samples.c.byte_size)).first()
            if removed is None:
                return False
            connection.execute(update(totals).where(totals.c.id == 1).values(
                samples=totals.c.samples - 1, bytes=totals.c.bytes - removed.byte_size))
        path = self.image_path(sample_id)
        path.unlink(missing_ok=True)  # a crash before this leaves an orphan, swept later
        fsync_directory(path.parent)
        return True

    def relabel(self, sample_id: str, label: int) -> SampleRecord | None:
        """Change a sample's label (one transaction). None if absent.

        Raises DuplicateSampleError when the same drawing is already stored
        under the new label.
        """
        label = validate_label(label)
        if not is_valid_id(sample_id):
            return None
        samples = db.samples
        try:
            with self._writing() as connection:
                row = connection.execute(select(samples).where(samples.c.id == sample_id).with_for_update()).first()
                if row is None:
                    return None
                if row.label == label:
                    return self._record(row)  # already so labelled: nothing to write
                connection.execute(update(samples).where(samples.c.id == sample_id).values(
                    label=label, previous_label=row.label, relabeled_at=_naive_utc(utc_now()),
                    disagreed=row.prediction is not None and row.prediction != label))
                updated = connection.execute(select(samples).where(samples.c.id == sample_id)).one()
        except IntegrityError:
            with self._reading() as connection:
                copy = self._find_copy(connection, row.sha256, label)
            if copy is None:
                raise
            raise DuplicateSampleError(f"the same drawing is already stored as a {label} "
                                       f"(sample {copy.id})", copy.id) from None
        return self._record(updated)

    def import_samples(self, samples: Iterable[NewSample], report: ImportReport | None = None,
                       batch_size: int = _BATCH) -> ImportReport:
        """Add samples whose id and dates are already decided; idempotent.

        A sample whose id is stored already, or whose image and label are, is
        skipped (and counted). Images are written first, rows committed per
        batch, so an interrupted import leaves whole samples and orphans only.
        """
        report = report or ImportReport()
        batch: list[NewSample] = []
        for sample in samples:
            batch.append(sample)
            if len(batch) >= batch_size:
                self._import_batch(batch, report)
                batch = []
        if batch:
            self._import_batch(batch, report)
        return report

    def _import_batch(self, batch: list[NewSample], report: ImportReport) -> None:
        samples = db.samples
        ids = [s.sample_id for s in batch]
        with self._reading() as connection:
            present = set(connection.execute(select(samples.c.id).where(samples.c.id.in_(ids))).scalars())
        rows, paths, seen = [], [], set()
        for sample in batch:
            if sample.sample_id in present:
                report.already_present += 1
                continue
            try:
                label = validate_label(sample.label)
            except ValueError:
                report.count_invalid("label is not a digit 0-9")
                continue
            try:
                clean_png, width, height = encode_png(sample.png, self.max_pixels)
            except DrawingError as exc:
                report.count_invalid(f"image refused: {exc}")
                continue
            row = self._row(dataclasses.replace(sample, label=label), clean_png, width, height)
            if (row["sha256"], label) in seen:
                report.duplicates += 1
                continue
            seen.add((row["sha256"], label))
            rows.append(row)
            paths.append((sample.sample_id, clean_png))
        if rows:
            with self._reading() as connection:
                copies = set(connection.execute(
                    select(samples.c.sha256, samples.c.label)
                    .where(samples.c.sha256.in_([r["sha256"] for r in rows]))).tuples())
            kept = [(r, p) for r, p in zip(rows, paths, strict=True) if (r["sha256"], r["label"]) not in copies]
            report.duplicates += len(rows) - len(kept)
            rows = [r for r, _ in kept]
            if not rows:
                return
            # One file-system sync for the batch instead of two fsyncs per image:
            # the images are still on disk before their rows commit.
            written = [self._write_image(sample_id, png, sync=False) for _, (sample_id, png) in kept]
            os.sync()
            try:
                with self._writing() as connection:
                    self._insert(connection, rows)
            except BaseException:
                for path in written:
                    path.unlink(missing_ok=True)
                raise
            report.imported += len(rows)

    # -- recovery ------------------------------------------------------------------

    def sweep(self, grace_seconds: float | None = None) -> SweepReport:
        """Remove crash leftovers: temp files, and images no row names, older than the grace period.

        Younger ones may belong to a save still running in another process.
        Never touches files it does not recognise. Runs in the background in
        the web app (never before or during a request) and as
        `python -m digit_recognition labels sweep`.
        """
        grace = self.sweep_grace_seconds if grace_seconds is None else grace_seconds
        if not self.images_dir.is_dir():
            return SweepReport()
        cutoff = time.time() - grace
        temp_removed = orphans_removed = 0
        for shard in sorted(os.scandir(self.images_dir), key=lambda e: e.name):
            if not (_SHARD.fullmatch(shard.name) and shard.is_dir()):
                continue
            candidates: dict[str, str] = {}
            removed_here = 0
            for entry in os.scandir(shard.path):
                try:
                    if entry.stat().st_mtime > cutoff:
                        continue
                    if _TEMP_FILE.fullmatch(entry.name):
                        os.unlink(entry.path)
                        temp_removed += 1
                        removed_here += 1
                        continue
                except FileNotFoundError:
                    continue
                match = _IMAGE_FILE.fullmatch(entry.name)
                if match:
                    candidates[match.group(1)] = entry.path
            ids = list(candidates)
            for start in range(0, len(ids), _BATCH):
                chunk = ids[start:start + _BATCH]
                with self._reading() as connection:
                    named = set(connection.execute(select(db.samples.c.id).where(db.samples.c.id.in_(chunk))).scalars())
                for sample_id in chunk:
                    if sample_id not in named:
                        with contextlib.suppress(FileNotFoundError):
                            os.unlink(candidates[sample_id])
                            orphans_removed += 1
                            removed_here += 1
            if removed_here:
                fsync_directory(shard.path)
        report = SweepReport(temp_removed, orphans_removed)
        if report != SweepReport():
            log.warning("label store: swept crash leftovers: %s", report)
        return report

    # -- export --------------------------------------------------------------------

    def export_zip(self, file: BinaryIO) -> int:
        """Write every sample to `file` as a zip (see label_export); returns how many."""
        from .label_export import write_export

        return write_export(self, file)


class _Row:
    """A dict seen as a result row, so a just-inserted row becomes a record the same way."""

    def __init__(self, values: dict):
        self.__dict__.update(values)


def open_store_from_environment(labels_dir: str | os.PathLike | None = None,
                                database_url: str | None = None) -> LabelStore:
    """The store the web app uses, as the environment configures it (for the commands)."""
    from . import paths

    max_samples = os.environ.get("LABELS_MAX_SAMPLES", "").strip()
    return LabelStore(labels_dir or paths.labels_dir_from_environment(),
                      database_url or paths.labels_database_url_from_environment(),
                      max_samples=int(max_samples) if max_samples else None)
