"""Health checks: /healthz says the process is up, /readyz that it can serve.

Readiness runs the model on a blank digit and creates (then removes) a file in
the labels directory, so a worker whose TensorFlow runtime is broken, or whose
labels volume is missing, read-only or refused by the bucket's permissions,
fails its probe instead of answering 200 and losing the labels people submit.
A permission check (os.access) would not do: it passes for root whatever the
mode, and a Cloud Storage volume only refuses a write when one is tried.

Both stay cheap: /readyz costs one model call (about a millisecond) and one
empty-file create and delete. Point Cloud Run's startup probe at /readyz and
any liveness probe at /healthz.
"""
from __future__ import annotations

import os
import tempfile

from flask import Blueprint, current_app, jsonify

bp = Blueprint("health", __name__)

# A dotted name outside the <digit>/ folders, so the label store never lists it.
PROBE_PREFIX = ".readyz-"


@bp.get("/healthz")
def healthz():
    return jsonify(status="ok")


def labels_dir_writable(labels_dir: str) -> bool:
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
    checks["labels_dir_writable"] = labels_dir_writable(labels_dir)
    if not checks["labels_dir_writable"]:
        current_app.logger.error("readiness: labels directory %s is not writable", labels_dir)
    ready = all(checks.values())
    return jsonify(status="ready" if ready else "not ready", checks=checks,
                   model_version=recognizer.model_version), (200 if ready else 503)
