"""What a stored label is, without the storage: ids, labels, times, records, errors.

Apart from `label_store` so that code which only names these (the web app's
label views, answering before any store is opened) does not import SQLAlchemy
and Alembic: those cost a third of a worker's start, and a prediction never
needs them. `label_store` re-exports every name here.
"""
from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

DIGITS = tuple(range(10))
ID_PATTERN = re.compile(r"[0-9a-f]{32}")  # uuid4().hex
EXPORT_FORMAT = "digit-labels/1"


def is_valid_id(sample_id: object) -> bool:
    return isinstance(sample_id, str) and ID_PATTERN.fullmatch(sample_id) is not None


def validate_label(label: object) -> int:
    """The label as an int 0-9, or ValueError. Booleans are not labels."""
    if isinstance(label, bool) or not isinstance(label, int) or label not in DIGITS:
        raise ValueError(f"label must be an integer 0-9, got {label!r}")
    return label


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def utc_now_iso() -> str:
    return iso(utc_now())


def iso(moment: dt.datetime) -> str:
    """UTC ISO 8601 with microseconds and +00:00 (naive values are UTC)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.timezone.utc)
    return moment.astimezone(dt.timezone.utc).isoformat(timespec="microseconds")


class StoreFullError(Exception):
    """The store holds LABELS_MAX_SAMPLES samples already."""


class DuplicateSampleError(Exception):
    """A relabel would make a sample an exact copy of another under that label."""

    def __init__(self, message: str, existing_id: str):
        super().__init__(message)
        self.existing_id = existing_id


class LabelStorageError(OSError):
    """The metadata database refused or failed (an OSError, like a refused file write)."""


@dataclass(frozen=True)
class SampleRecord:
    """One stored sample: its metadata and where its PNG is."""

    id: str
    label: int
    created_at: str  # UTC ISO 8601
    prediction: int | None
    confidence: float | None
    model_version: str | None
    width: int
    height: int
    png_path: Path
    sha256: str | None = None
    model_verdict: str | None = None
    previous_label: int | None = None
    relabeled_at: str | None = None
    extra: Mapping = field(default_factory=dict, compare=False, repr=False)
    # True when a save found this exact drawing already stored under this label.
    duplicate: bool = field(default=False, compare=False)

    @property
    def disagreed(self) -> bool:
        """The model's prediction at submit time differs from the label."""
        return self.prediction is not None and self.prediction != self.label

    def metadata(self) -> dict:
        """The sample's metadata as the export's sidecar JSON holds it."""
        data = {key: getattr(self, key) for key in
                ("id", "label", "created_at", "prediction", "confidence", "model_version",
                 "width", "height", "sha256")}
        for optional in ("model_verdict", "previous_label", "relabeled_at"):
            if getattr(self, optional) is not None:
                data[optional] = getattr(self, optional)
        data.update({k: v for k, v in self.extra.items() if k not in data})
        return data
