"""Labelled drawings: anyone may submit one; only the admin may see or change them.

    POST   /labels              {"image", "label"} -> 201 {"id", "label", "prediction", ...}
    GET    /labels              ?limit=&offset=&label=&disagreed=  (admin)
    GET    /labels/<id>         one sample's metadata               (admin)
    GET    /labels/<id>.png     its drawing                         (admin)
    PATCH  /labels/<id>         {"label": n}                        (admin)
    DELETE /labels/<id>                                             (admin)
    GET    /labels/export       every sample as a zip, streamed     (admin)
    HEAD   /labels/export       its headers only, nothing built     (admin)

The store (digit_recognition.label_store) is opened by the first request
that needs it (create_app wires a LabelStoreOpener; label_store_opener says
why); opening reads nothing proportional to the store (the schema check is
one query). Crash leftovers are swept by a background thread that each worker
starts after its first request and that sweeps once the worker has opened the
store (BackgroundSweeper says why), so a sweep never delays start-up or a
request. Ids from URLs are checked against the uuid4-hex pattern before any
disk access; no path is ever built from user input.
"""
from __future__ import annotations

import datetime as dt
import errno
import random
import threading

from flask import Blueprint, Response, current_app, jsonify, request, url_for

from digit_recognition.label_export import ExportStream
from digit_recognition.label_records import DuplicateSampleError, SampleRecord, StoreFullError, is_valid_id

from .admin_auth import admin_required
from .label_store_opener import LabelStoreOpener, current_label_store
from .request_parsing import BadRequest, image_bytes, json_body

bp = Blueprint("labels", __name__)

DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000
_FULL_DISK_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}
_TRUE, _FALSE = {"1", "true", "yes"}, {"0", "false", "no"}


@bp.record_once
def _schedule_sweeps(state) -> None:
    app = state.app
    interval = float(app.config.get("LABELS_SWEEP_INTERVAL_SECONDS") or 0)
    if interval > 0:
        sweeper = app.extensions["label_sweeper"] = BackgroundSweeper(app.extensions["label_store"], interval,
                                                                      app.logger)
        app.before_request(sweeper.start_once)


class BackgroundSweeper:
    """Sweeps crash leftovers off the request path: a daemon thread per worker,
    started by the worker's first request (gunicorn forks after the app is
    built, and threads do not survive a fork), first run after a random delay
    of up to a minute so workers and instances do not all sweep at once.

    Only a worker that has opened its store sweeps: opening it just to sweep
    would bring SQLAlchemy into every worker a minute after it starts (~0.3 s
    of a gevent worker's time and ~20 MiB), which opening on first use spares
    the workers that only predict. Leftovers come from saves, so the workers
    that save (and any later one that does) sweep them; `labels sweep` runs on
    demand."""

    def __init__(self, opener: LabelStoreOpener, interval: float, logger):
        self.opener, self.interval, self.logger = opener, interval, logger
        self._started = False
        self._lock = threading.Lock()

    def start_once(self) -> None:
        if self._started:
            return
        with self._lock:
            if not self._started:
                self._started = True
                threading.Thread(target=self._run, name="label-store-sweeper", daemon=True).start()

    def _run(self) -> None:
        delay = random.uniform(5.0, min(60.0, self.interval))
        while True:
            threading.Event().wait(delay)
            try:
                self.sweep_once()
            except Exception:  # logged and retried next round: a sweep is never urgent
                self.logger.exception("label store: background sweep failed")
            delay = self.interval

    def sweep_once(self) -> bool:
        """Sweep if this worker's store is open (see the class docstring); whether it did."""
        if not self.opener.is_open:
            return False
        self.opener.open().sweep()
        return True


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
        "model_verdict": record.model_verdict,
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


def _json_error(message: str, status: int):
    response = jsonify(error=message)
    response.status_code = status
    return response


def _not_found():
    return _json_error("no such sample", 404)


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
        record = current_label_store().save(png, label, prediction=part.best_digit,
                                    confidence=part.probabilities[part.best_digit],
                                    model_version=recognizer.model_version, model_verdict=part.verdict)
    except StoreFullError as exc:
        current_app.logger.error("label store: %s", exc)
        return _json_error(f"{exc}; the drawing was not saved", 507)
    except OSError as exc:
        return _storage_error(exc)
    # An exact copy of a stored sample answers that sample: the drawing is
    # stored (once), which is what the person submitting it needs to know.
    response = jsonify(id=record.id, label=record.label, prediction=record.prediction,
                       confidence=record.confidence, model_version=record.model_version,
                       duplicate=record.duplicate)
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


def _time_arg(name: str) -> dt.datetime | None:
    """An ISO 8601 date or date-time (UTC unless it says otherwise), or None."""
    raw = request.args.get(name, "")
    if raw == "":
        return None
    try:
        moment = dt.datetime.fromisoformat(raw) if raw.isascii() else None
    except ValueError:
        moment = None
    if moment is None:
        raise BadRequest(f"'{name}' must be an ISO 8601 date or date-time, e.g. 2026-01-31T12:00:00Z")
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.timezone.utc)


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
    since, until = _time_arg("since"), _time_arg("until")
    total, records = current_label_store().list(label=label, disagreed=disagreed, since=since, until=until,
                                        limit=limit, offset=offset)
    response = jsonify(total=total, limit=limit, offset=offset, items=[item(r) for r in records])
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.route("/labels/export", methods=["GET", "HEAD"])
@admin_required
def export_labels():
    # Streamed as it is built: the first bytes leave at once, memory stays
    # flat, and there is no length to announce (chunked transfer). A HEAD
    # gets the same headers and builds nothing.
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    body = [] if request.method == "HEAD" else ExportStream(current_label_store())
    response = Response(body, mimetype="application/zip")
    response.headers["Content-Disposition"] = f"attachment; filename=labels-{stamp}.zip"
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/labels/<sample_id>.png")
@admin_required
def label_png(sample_id: str):
    if not is_valid_id(sample_id):
        return _not_found()
    store = current_label_store()
    record = store.get(sample_id)
    if record is None:
        return _not_found()
    try:
        data = store.read_png(record)
    except FileNotFoundError:  # deleted a moment ago
        return _not_found()
    response = Response(data, mimetype="image/png")
    response.headers["Cache-Control"] = "private, no-cache"
    return response


@bp.get("/labels/<sample_id>")
@admin_required
def get_label(sample_id: str):
    record = current_label_store().get(sample_id) if is_valid_id(sample_id) else None
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
        record = current_label_store().relabel(sample_id, label)
    except DuplicateSampleError as exc:
        return _json_error(str(exc), 409)
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
        deleted = current_label_store().delete(sample_id)
    except OSError as exc:
        return _storage_error(exc, "the sample was not deleted")
    if not deleted:
        return _not_found()
    return "", 204
