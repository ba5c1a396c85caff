"""Labelled drawings: anyone may submit one; only the admin may see or change them.

    POST   /labels              {"image", "label"} -> 201 {"id", "label", "prediction", ...}
    GET    /labels              ?limit=&offset=&label=&disagreed=  (admin)
    GET    /labels/<id>         one sample's metadata               (admin)
    GET    /labels/<id>.png     its drawing                         (admin)
    PATCH  /labels/<id>         {"label": n}                        (admin)
    DELETE /labels/<id>                                             (admin)
    GET    /labels/export       every sample as a zip               (admin)

The store (digit_recognition.label_store) is built when this blueprint is
registered, and swept there, so a crash's leftovers are gone before the first
request. Ids from URLs are checked against the uuid4-hex pattern before any
disk access; no path is ever built from user input.
"""
from __future__ import annotations

import datetime as dt
import errno
import tempfile

from flask import Blueprint, Response, current_app, jsonify, request, send_file, url_for

from digit_recognition.label_store import LabelStore, SampleRecord, is_valid_id

from .admin_auth import admin_required
from .request_parsing import BadRequest, image_bytes, json_body

bp = Blueprint("labels", __name__)

DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000
_FULL_DISK_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}
_TRUE, _FALSE = {"1", "true", "yes"}, {"0", "false", "no"}


@bp.record_once
def _create_store(state) -> None:
    app = state.app
    store = LabelStore(app.config["LABELS_DIR"], max_pixels=int(app.config["MAX_IMAGE_PIXELS"]),
                       sweep_grace_seconds=float(app.config.get("LABELS_SWEEP_GRACE_SECONDS", 30.0)))
    app.extensions["label_store"] = store
    try:
        store.sweep()
    except OSError as exc:  # e.g. a read-only volume: serve anyway; saves will answer 503
        app.logger.warning("label store: start-up sweep failed: %s", exc)


def label_store() -> LabelStore:
    return current_app.extensions["label_store"]


def parse_label(value: object) -> int:
    """An int 0-9, or a one-character string "0"-"9". Nothing else (not bools, floats or " 7")."""
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 9:
        return value
    if isinstance(value, str) and len(value) == 1 and value in "0123456789":
        return int(value)
    raise BadRequest("'label' must be an integer from 0 to 9")


def item(record: SampleRecord) -> dict:
    return {
        "id": record.id,
        "label": record.label,
        "created_at": record.created_at,
        "prediction": record.prediction,
        "confidence": record.confidence,
        "model_version": record.model_version,
        "width": record.width,
        "height": record.height,
        "disagreed": record.disagreed,
    }


def _storage_error(exc: OSError, outcome: str = "the drawing was not saved"):
    current_app.logger.error("label store: write failed: %s", exc)
    if exc.errno in _FULL_DISK_ERRNOS:
        message, status = f"label storage is full; {outcome}", 507
    else:
        message, status = f"label storage is unavailable; {outcome}", 503
    response = jsonify(error=message)
    response.status_code = status
    return response


def _not_found():
    response = jsonify(error="no such sample")
    response.status_code = 404
    return response


@bp.post("/labels")
def submit_label():
    body = json_body()
    if "label" not in body:
        raise BadRequest("missing field 'label': an integer from 0 to 9")
    label = parse_label(body["label"])
    png = image_bytes(body)
    recognizer = current_app.extensions["recognizer"]
    reading = recognizer.read_png(png)  # also refuses empty (422) and bad images
    if len(reading.parts) > 1:
        # One sample teaches one digit: a drawing of several would be stored under one label.
        raise BadRequest(f"draw one digit per sample: this drawing reads as {len(reading.parts)} "
                         "separate parts; clear it and draw a single digit", 422)
    part = reading.parts[0]
    # The store keeps the model's best digit even when its verdict was "not a
    # digit": a person insisting on a label is exactly what teaches the model.
    try:
        record = label_store().save(png, label, prediction=part.best_digit,
                                    confidence=part.probabilities[part.best_digit],
                                    model_version=recognizer.model_version)
    except OSError as exc:
        return _storage_error(exc)
    response = jsonify(id=record.id, label=record.label, prediction=record.prediction,
                       confidence=record.confidence, model_version=record.model_version)
    response.status_code = 201
    response.headers["Location"] = url_for("labels.get_label", sample_id=record.id)
    return response


def _int_arg(name: str, default: int, low: int, high: int) -> int:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    if not raw.isascii() or not raw.isdigit() or not low <= int(raw) <= high:
        raise BadRequest(f"'{name}' must be an integer from {low} to {high}")
    return int(raw)


@bp.get("/labels")
@admin_required
def list_labels():
    limit = _int_arg("limit", DEFAULT_PAGE_SIZE, 1, MAX_PAGE_SIZE)
    offset = _int_arg("offset", 0, 0, 10**9)
    label = request.args.get("label")
    label = None if label in (None, "") else parse_label(label)
    disagreed = request.args.get("disagreed", "").lower()
    if disagreed not in _TRUE | _FALSE | {""}:
        raise BadRequest("'disagreed' must be true or false")
    disagreed = None if disagreed == "" else disagreed in _TRUE
    total, records = label_store().list(label=label, disagreed=disagreed, limit=limit, offset=offset)
    response = jsonify(total=total, limit=limit, offset=offset, items=[item(r) for r in records])
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/labels/export")
@admin_required
def export_labels():
    # An anonymous temp file: no name to leak or collide, gone when the response closes.
    archive = tempfile.TemporaryFile(suffix=".zip")
    try:
        label_store().export_zip(archive)
        archive.seek(0)
    except BaseException:
        archive.close()
        raise
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    response = send_file(archive, mimetype="application/zip", as_attachment=True,
                         download_name=f"labels-{stamp}.zip", conditional=False, etag=False)
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/labels/<sample_id>.png")
@admin_required
def label_png(sample_id: str):
    if not is_valid_id(sample_id):
        return _not_found()
    path = label_store().png_path(sample_id)
    if path is None:
        return _not_found()
    try:
        data = path.read_bytes()
    except FileNotFoundError:  # deleted or relabelled a moment ago
        return _not_found()
    response = Response(data, mimetype="image/png")
    response.headers["Cache-Control"] = "private, no-cache"
    return response


@bp.get("/labels/<sample_id>")
@admin_required
def get_label(sample_id: str):
    record = label_store().get(sample_id) if is_valid_id(sample_id) else None
    if record is None:
        return _not_found()
    response = jsonify(item(record))
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.patch("/labels/<sample_id>")
@admin_required
def relabel(sample_id: str):
    if not is_valid_id(sample_id):
        return _not_found()
    body = json_body()
    if "label" not in body:
        raise BadRequest("missing field 'label': an integer from 0 to 9")
    label = parse_label(body["label"])
    try:
        record = label_store().relabel(sample_id, label)
    except OSError as exc:
        return _storage_error(exc, "the sample was not relabelled")
    if record is None:
        return _not_found()
    return jsonify(item(record))


@bp.delete("/labels/<sample_id>")
@admin_required
def delete_label(sample_id: str):
    if not is_valid_id(sample_id):
        return _not_found()
    try:
        deleted = label_store().delete(sample_id)
    except OSError as exc:
        return _storage_error(exc, "the sample was not deleted")
    if not deleted:
        return _not_found()
    return "", 204
