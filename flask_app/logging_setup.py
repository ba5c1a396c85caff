"""Structured logs: one JSON object per line on stdout, as Cloud Logging reads them.

Cloud Run sends each line a container writes to Cloud Logging and parses a
line that is a JSON object into a structured entry, taking its `severity`,
`message`, `time` and `logging.googleapis.com/trace` fields. So every record in
the process goes through one handler on the root logger: the app's, the
per-request line, Python warnings, and gunicorn's own (gunicorn.conf.py routes
gunicorn's loggers to the root and silences its access log, which would
duplicate the per-request line written here).

The per-request line carries method, path, status and duration only: never the
body, the query string (it can carry the admin token) or any drawing data.
"""
from __future__ import annotations

import datetime as dt
import json
import logging
import re
import sys
import time

from flask import Flask, g, has_request_context, request
from flask.logging import default_handler

REQUEST_LOGGER = logging.getLogger("flask_app.request")
# Probes hit these on a timer; at INFO they would drown the real traffic.
PROBE_PATHS = frozenset({"/healthz", "/readyz"})
LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
# X-Cloud-Trace-Context: TRACE_ID/SPAN_ID;o=OPTIONS, TRACE_ID 32 hex digits.
_TRACE_HEADER = re.compile(r"^([0-9a-fA-F]{32})(?:/|;|$)")


def _severity(levelno: int) -> str:
    """Cloud Logging's severity name for a Python level (custom levels round down)."""
    for name, number in (("CRITICAL", logging.CRITICAL), ("ERROR", logging.ERROR),
                         ("WARNING", logging.WARNING), ("INFO", logging.INFO),
                         ("DEBUG", logging.DEBUG)):
        if levelno >= number:
            return name
    return "DEFAULT"


class JsonFormatter(logging.Formatter):
    """A log record as one line of JSON (newlines in messages stay escaped)."""

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        if record.exc_info:
            # In the message, where Error Reporting looks for a stack trace.
            message = f"{message}\n{self.formatException(record.exc_info)}"
        if record.stack_info:
            message = f"{message}\n{self.formatStack(record.stack_info)}"
        entry = {
            "severity": _severity(record.levelno),
            "message": message,
            "time": dt.datetime.fromtimestamp(record.created, dt.timezone.utc)
                      .isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "logger": record.name,
            "pid": record.process,
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            entry.update(fields)
        trace = _current_trace()
        if trace:
            entry["logging.googleapis.com/trace"] = trace
        return json.dumps(entry, ensure_ascii=False, default=str)


def _current_trace() -> str | None:
    if not has_request_context():
        return None
    return g.get("log_trace")


class JsonStdoutHandler(logging.StreamHandler):
    """JSON lines to whatever `sys.stdout` is when a record is written.

    Looking stdout up per record (not once, as StreamHandler does) keeps the
    handler valid when a test runner swaps stdout between tests.
    """

    def __init__(self):
        super().__init__()
        self.setFormatter(JsonFormatter())

    @property
    def stream(self):
        return sys.stdout

    @stream.setter
    def stream(self, _value):  # StreamHandler.__init__ assigns it; stdout is looked up instead
        pass


def parse_level(value) -> str:
    name = str(value or "INFO").strip().upper()
    if name == "WARN":
        name = "WARNING"
    if name not in LEVELS:
        raise RuntimeError(f"LOG_LEVEL must be one of {', '.join(LEVELS)}; got {value!r}")
    return name


def install_json_logging(level: str = "INFO") -> None:
    """Make the root logger write JSON lines to stdout at `level`. Idempotent.

    Under gunicorn the handler is already there (gunicorn.conf.py installs it in
    the master, and workers inherit it), so nothing is added twice.
    """
    root = logging.getLogger()
    if not any(isinstance(handler, JsonStdoutHandler) for handler in root.handlers):
        root.addHandler(JsonStdoutHandler())
    root.setLevel(parse_level(level))
    logging.captureWarnings(True)  # warnings.warn() as JSON too, not bare stderr text


def _trace_from_header(project_id: str | None) -> str | None:
    if not project_id:
        return None
    match = _TRACE_HEADER.match(request.headers.get("X-Cloud-Trace-Context", ""))
    return f"projects/{project_id}/traces/{match.group(1).lower()}" if match else None


def configure_logging(app: Flask) -> None:
    level = parse_level(app.config.get("LOG_LEVEL"))
    install_json_logging(level)
    # Records reach the root handler by propagation; Flask's own stderr
    # handler would print each of them a second time, as plain text.
    app.logger.removeHandler(default_handler)
    project_id = app.config.get("GOOGLE_CLOUD_PROJECT")

    @app.before_request
    def start_request_timer():
        g.request_started = time.perf_counter()
        g.log_trace = _trace_from_header(project_id)

    @app.after_request
    def log_request(response):
        started = g.pop("request_started", None)
        fields = {
            "method": request.method,
            "path": request.path,
            "status": response.status_code,
            # None when an earlier before_request handler answered first.
            "duration_ms": round((time.perf_counter() - started) * 1000.0, 2) if started else None,
        }
        if response.status_code >= 500:
            level = logging.ERROR
        elif request.path in PROBE_PATHS and response.status_code < 400:
            level = logging.DEBUG
        else:
            level = logging.INFO
        REQUEST_LOGGER.log(level, "%s %s %s", fields["method"], fields["path"], fields["status"],
                           extra={"fields": fields})
        return response
