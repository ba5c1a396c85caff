"""Moving a store in the old folder layout into the label store.

The old layout (before the database)::

    <dir>/<digit>/<id>.png    the drawing
    <dir>/<digit>/<id>.json   its metadata: id, label, created_at, prediction, confidence,
                              model_version, width, height, sha256, [previous_label, relabeled_at]

Each sample keeps its id, dates, prediction and any other keys its sidecar
had; its image goes through the same checks and re-encoding as a submission
(so it is stored at most 512 px a side). Running the import again skips what
is there already (same id, or same image and label), so it is safe to repeat
or to resume after an interruption. Temp files and images without a sidecar
(crash leftovers of the old store) are not samples and are left alone.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import re
from pathlib import Path
from typing import Iterator

from .label_store import DIGITS, ImportReport, LabelStore, NewSample

_SIDECAR = re.compile(r"([0-9a-f]{32})\.json")
# Keys the old sidecar held that the store keeps in columns (or recomputes).
_COLUMN_KEYS = {"id", "label", "created_at", "prediction", "confidence", "model_version", "model_verdict",
                "width", "height", "sha256", "previous_label", "relabeled_at"}


def _time(value: object) -> dt.datetime | None:
    if not isinstance(value, str):
        return None
    try:
        moment = dt.datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.timezone.utc)


def _digit_or_none(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value in DIGITS else None


def _number_or_none(value: object) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def iter_folder_samples(source: Path, report: ImportReport) -> Iterator[NewSample]:
    """Every readable sample under `source` in the old layout; the rest counted in `report`."""
    for digit in DIGITS:
        directory = source / str(digit)
        if not directory.is_dir():
            continue
        for name in sorted(os.listdir(directory)):
            match = _SIDECAR.fullmatch(name)
            if not match:
                continue
            sample_id = match.group(1)
            try:
                metadata = json.loads((directory / name).read_bytes())
                png = (directory / f"{sample_id}.png").read_bytes()
            except FileNotFoundError:
                report.count_invalid("image file missing")
                continue
            except (ValueError, OSError):
                report.count_invalid("metadata unreadable")
                continue
            if not isinstance(metadata, dict) or metadata.get("id") != sample_id:
                report.count_invalid("metadata does not name its file's id")
                continue
            if metadata.get("label") != digit or isinstance(metadata.get("label"), bool):
                report.count_invalid("label disagrees with the sample's folder")
                continue
            created_at = _time(metadata.get("created_at"))
            if created_at is None:
                report.count_invalid("created_at missing or not a date")
                continue
            checksum = metadata.get("sha256")
            if checksum is not None and hashlib.sha256(png).hexdigest() != checksum:
                report.count_invalid("image does not match the checksum in its metadata")
                continue
            yield NewSample(
                png, digit, sample_id, created_at,
                prediction=_digit_or_none(metadata.get("prediction")),
                confidence=_number_or_none(metadata.get("confidence")),
                model_version=metadata.get("model_version") if isinstance(metadata.get("model_version"), str) else None,
                model_verdict=metadata.get("model_verdict") if isinstance(metadata.get("model_verdict"), str) else None,
                previous_label=_digit_or_none(metadata.get("previous_label")),
                relabeled_at=_time(metadata.get("relabeled_at")),
                extra={k: v for k, v in metadata.items() if k not in _COLUMN_KEYS})


def import_folder(store: LabelStore, source: str | os.PathLike) -> ImportReport:
    """Import every sample of an old-layout folder into `store`; idempotent."""
    source = Path(source)
    if not source.is_dir():
        raise FileNotFoundError(f"{source} is not a directory")
    report = ImportReport()
    store.import_samples(iter_folder_samples(source, report), report)
    return report
