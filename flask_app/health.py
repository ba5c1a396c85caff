"""Health checks: /healthz says the process is up, /readyz that it can serve.

Readiness runs the model on a blank digit and checks the labels directory, so
a worker whose TensorFlow runtime is broken, or whose labels volume is
missing, read-only, full or refused by the bucket's permissions, fails its
probe instead of answering 200 and losing the labels people submit.

The directory checks on every call write nothing: it is a directory, this
process may write there (os.access), its file system is not mounted read-only,
and it has at least READY_MIN_FREE_BYTES free (shutil.disk_usage; a disk with
room for an empty file but not for a drawing used to pass). Those cannot see
everything: os.access passes for root whatever the mode, and a Cloud Storage
volume refuses a write only when one is tried. So a real write (an empty file
created and removed) is tried too, but only on the first call and then at
most once every WRITE_PROBE_INTERVAL seconds per worker while it succeeds: a
probe polling /readyz no longer makes a create and a delete per call, which
on a Cloud Storage volume is a paid write each time.

Point Cloud Run's startup probe at /readyz and any liveness probe at /healthz.
"""
from __future__ import annotations

import os
import shutil
import tempfile
import time

from flask import Blueprint, current_app, jsonify

bp = Blueprint("health", __name__)

# A dotted name outside the <digit>/ folders, so the label store never lists it.
PROBE_PREFIX = ".readyz-"


# While the write probe keeps succeeding, how often it is tried again.
WRITE_PROBE_INTERVAL = 300.0


@bp.record_once
def _install_write_probe(state) -> None:
    state.app.extensions["labels_dir_write_probe"] = LabelsDirWriteProbe()


@bp.get("/healthz")
def healthz():
    return jsonify(status="ok")


def try_write(labels_dir: str) -> bool:
    """Whether a file can really be created in `labels_dir` (and is removed again)."""
    try:
        fd, path = tempfile.mkstemp(dir=labels_dir, prefix=PROBE_PREFIX, suffix=".tmp")
    except OSError:
        return False
    try:
        os.close(fd)  # on a Cloud Storage volume the object is written on close
    except OSError:
        return False
    finally:
        try:
            os.unlink(path)
        except OSError:
            current_app.logger.warning("readiness: could not remove probe file %s", path)
    return True


def may_write(labels_dir: str) -> bool:
    """The checks that write nothing: a directory this process may write to,
    on a file system that is not mounted read-only."""
    try:
        read_only = os.statvfs(labels_dir).f_flag & os.ST_RDONLY
    except OSError:
        return False
    return os.path.isdir(labels_dir) and os.access(labels_dir, os.W_OK | os.X_OK) and not read_only


class LabelsDirWriteProbe:
    """The real write probe, rerun only when it is due (see the module docstring)."""

    def __init__(self, interval: float = WRITE_PROBE_INTERVAL):
        self.interval = interval
        self._last_success: float | None = None  # time.monotonic() of the last write that worked

    def writable(self, labels_dir: str) -> bool:
        if not may_write(labels_dir):
            self._last_success = None  # once it is back, write for real before saying so
            return False
        now = time.monotonic()
        if self._last_success is not None and now - self._last_success < self.interval:
            return True
        if not try_write(labels_dir):
            return False
        self._last_success = now
        return True


def has_free_space(labels_dir: str, min_free_bytes: int) -> bool:
    try:
        free = shutil.disk_usage(labels_dir).free
    except OSError:
        return False
    if free < min_free_bytes:
        current_app.logger.error("readiness: labels directory %s has %d bytes free, below "
                                 "READY_MIN_FREE_BYTES (%d)", labels_dir, free, min_free_bytes)
        return False
    return True


@bp.get("/readyz")
def readyz():
    checks = {}
    recognizer = current_app.extensions["recognizer"]
    try:
        checks["model"] = recognizer.self_test()
    except Exception:  # any failure means not ready; the reason goes to the log
        current_app.logger.exception("readiness: model self-test failed")
        checks["model"] = False
    labels_dir = current_app.config["LABELS_DIR"]
    checks["labels_dir_writable"] = current_app.extensions["labels_dir_write_probe"].writable(labels_dir)
    if not checks["labels_dir_writable"]:
        current_app.logger.error("readiness: labels directory %s is not writable", labels_dir)
    checks["labels_dir_free_space"] = has_free_space(labels_dir,
                                                     int(current_app.config["READY_MIN_FREE_BYTES"]))
    ready = all(checks.values())
    return jsonify(status="ready" if ready else "not ready", checks=checks,
                   model_version=recognizer.model_version), (200 if ready else 503)
