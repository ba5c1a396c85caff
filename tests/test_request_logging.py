"""Structured logs from the real app: one JSON line per request on stdout, with
Cloud Logging's fields, never the drawing, never twice."""
from __future__ import annotations

import json

import pytest

from tests.app_config import base_test_config
from flask_app import create_app
from testing_support.drawings import canvas_png, data_url, first_pen_digit

TRACE_ID = "105445aa7843bc8bf206b12000100000"


def json_lines(captured: str) -> list[dict]:
    entries = []
    for line in captured.splitlines():
        if line.strip():
            entry = json.loads(line)  # a line that is not JSON fails the test here
            assert isinstance(entry, dict)
            entries.append(entry)
    return entries


def request_lines(entries, path):
    return [e for e in entries if e.get("logger") == "flask_app.request" and e.get("path") == path]


@pytest.fixture
def drawing(pen_digits_path):
    return data_url(canvas_png(first_pen_digit(pen_digits_path, 3).strokes))


def test_a_request_is_one_json_line_with_method_path_status_duration(client, capsys, drawing):
    capsys.readouterr()
    assert client.post("/predict", json={"image": drawing}).status_code == 200
    captured = capsys.readouterr()
    assert "/predict" not in captured.err  # Flask's own stderr handler would print it again
    entries = json_lines(captured.out)
    [line] = request_lines(entries, "/predict")  # exactly one: not doubled by Flask's handler
    assert line["severity"] == "INFO"
    assert (line["method"], line["status"]) == ("POST", 200)
    assert isinstance(line["duration_ms"], float) and line["duration_ms"] > 0
    assert line["message"] == "POST /predict 200"
    assert line["time"].endswith("Z") and "T" in line["time"]
    assert drawing.split(",", 1)[1][100:160] not in json.dumps(entries)


def test_client_errors_are_logged_without_the_body(client, capsys):
    capsys.readouterr()
    secret = "c2VjcmV0LWRyYXdpbmctZGF0YQ-not-base64!"
    response = client.post("/predict?token=query-secret", json={"image": secret})
    assert response.status_code == 400
    out = capsys.readouterr().out
    [line] = request_lines(json_lines(out), "/predict")
    assert line["status"] == 400 and line["severity"] == "INFO"
    assert secret not in out and "query-secret" not in out  # no body, no query string


def test_an_unhandled_error_is_one_json_line_with_its_traceback(tmp_path, capsys):
    app = create_app(base_test_config(tmp_path))

    @app.get("/explode")
    def explode():
        raise RuntimeError("kaboom")

    capsys.readouterr()
    assert app.test_client().get("/explode").status_code == 500
    entries = json_lines(capsys.readouterr().out)
    [error] = [e for e in entries if e["logger"] == "flask_app" and e["severity"] == "ERROR"]
    assert "Traceback" in error["message"] and "RuntimeError: kaboom" in error["message"]
    [line] = request_lines(entries, "/explode")
    assert line["status"] == 500 and line["severity"] == "ERROR"


def test_trace_id_on_request_lines_when_the_project_is_known(tmp_path, capsys):
    app = create_app(base_test_config(tmp_path, GOOGLE_CLOUD_PROJECT="my-project"))
    client = app.test_client()
    capsys.readouterr()
    client.get("/nowhere", headers={"X-Cloud-Trace-Context": f"{TRACE_ID}/1;o=1"})
    client.get("/nowhere", headers={"X-Cloud-Trace-Context": "not-a-trace/1"})
    traced, malformed = request_lines(json_lines(capsys.readouterr().out), "/nowhere")
    assert traced["status"] == 404
    assert traced["logging.googleapis.com/trace"] == f"projects/my-project/traces/{TRACE_ID}"
    assert "logging.googleapis.com/trace" not in malformed


def test_no_trace_without_a_project(client, capsys):
    capsys.readouterr()
    client.get("/nowhere", headers={"X-Cloud-Trace-Context": f"{TRACE_ID}/1;o=1"})
    [line] = request_lines(json_lines(capsys.readouterr().out), "/nowhere")
    assert "logging.googleapis.com/trace" not in line


def test_probes_log_at_debug_only(tmp_path, capsys):
    quiet = create_app(base_test_config(tmp_path / "a", LOG_LEVEL="INFO")).test_client()
    capsys.readouterr()
    quiet.get("/healthz")
    assert request_lines(json_lines(capsys.readouterr().out), "/healthz") == []

    verbose = create_app(base_test_config(tmp_path / "b", LOG_LEVEL="DEBUG")).test_client()
    capsys.readouterr()
    verbose.get("/healthz")
    [line] = request_lines(json_lines(capsys.readouterr().out), "/healthz")
    assert line["severity"] == "DEBUG"
    create_app(base_test_config(tmp_path / "c"))  # back to INFO for the tests after this one


def test_unknown_log_level_is_refused(tmp_path):
    with pytest.raises(RuntimeError, match="LOG_LEVEL"):
        create_app(base_test_config(tmp_path, LOG_LEVEL="LOUD"))
