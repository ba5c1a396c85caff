"""Health checks: /healthz says the process is up, /readyz that it can serve.

Readiness runs the model on a blank digit and checks the labels directory is
writable, so a worker whose TensorFlow runtime hung or whose volume went away
stops receiving traffic instead of answering 200 to a shallow probe.
"""
from __future__ import annotations

import os

from flask import Blueprint, current_app, jsonify

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz():
    return jsonify(status="ok")


@bp.get("/readyz")
def readyz():
    checks = {}
    try:
        checks["model"] = current_app.extensions["recognizer"].self_test()
    except Exception:  # any failure means not ready; the reason goes to the log
        current_app.logger.exception("readiness: model self-test failed")
        checks["model"] = False
    labels_dir = current_app.config["LABELS_DIR"]
    checks["labels_dir_writable"] = os.path.isdir(labels_dir) and os.access(labels_dir, os.W_OK | os.X_OK)
    ready = all(checks.values())
    return jsonify(status="ready" if ready else "not ready", checks=checks,
                   model_version=current_app.extensions["recognizer"].model_version), (200 if ready else 503)
