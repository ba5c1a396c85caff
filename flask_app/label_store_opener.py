"""The app's label store, opened by the first request that needs it.

Opening it imports SQLAlchemy and Alembic and checks the database schema:
about 0.3 s of CPU, a third of what a worker spent starting (measured with
benchmarks/cold_start.py). Predictions and readiness probes never touch the
store, so a new worker answers them without paying for it; the first request
that stores, lists or sweeps labels opens it, once per process, under a lock.
A worker is a process of its own (gunicorn forks before building the app), so
nothing opened here is ever shared across a fork.
"""
from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Callable, Mapping

if TYPE_CHECKING:
    from digit_recognition.label_store import LabelStore


class LabelStoreOpener:
    """Holds the store once opened; `open()` is cheap after the first call."""

    def __init__(self, open_store: Callable[[], LabelStore]):
        self._open_store = open_store
        self._store: LabelStore | None = None
        self._lock = threading.Lock()

    @property
    def is_open(self) -> bool:
        return self._store is not None

    def open(self) -> LabelStore:
        store = self._store
        if store is None:
            with self._lock:
                if self._store is None:
                    self._store = self._open_store()
                store = self._store
        return store


def current_label_store() -> LabelStore:
    """The current app's label store, opened if this is the first request to need it."""
    from flask import current_app

    return current_app.extensions["label_store"].open()


def open_label_store(config: Mapping, logger) -> LabelStore:
    """The label store the app's configuration describes, its schema checked."""
    from digit_recognition.label_store import LabelStore

    max_samples = config.get("LABELS_MAX_SAMPLES")
    store = LabelStore(config["LABELS_DIR"], config.get("LABELS_DATABASE_URL"),
                       max_pixels=int(config["MAX_IMAGE_PIXELS"]),
                       max_samples=int(max_samples) if max_samples else None,
                       sweep_grace_seconds=float(config["LABELS_SWEEP_GRACE_SECONDS"]))
    try:
        store.ensure_schema()  # one query when current; migrations run once, under a lock
    except OSError as exc:  # e.g. a database down: the store retries on its next use
        logger.warning("label store: database not ready: %s", exc)
    return store
