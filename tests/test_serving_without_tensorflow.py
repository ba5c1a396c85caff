"""The server in a virtual environment holding only requirements-serve.txt.

test_container_command.py hides TensorFlow from the server's imports; this
goes further and builds what the image installs for real: a fresh venv from
requirements-serve.txt alone (built once and kept in pytest's cache folder,
keyed by the file's content, so later runs reuse it). The Dockerfile's CMD
then runs with that venv's gunicorn and must start, pass /readyz and read real
drawings, with TensorFlow absent from the environment, not merely hidden.
"""
from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path

import pytest

from testing_support.container_command import (
    REPO_ROOT, build_venv, container_environment, http_request, parse_dockerfile, pen_drawing_pngs,
    predict_body, run_container_command, site_packages_bytes, stage_image_files, wait_for_status,
)

SERVE_REQUIREMENTS = REPO_ROOT / "requirements-serve.txt"
MAX_SERVING_PACKAGES_MB = 350  # the ceiling for the image's Python packages


@pytest.fixture(scope="session")
def serving_venv(request) -> Path:
    key = hashlib.sha256(SERVE_REQUIREMENTS.read_bytes()).hexdigest()[:12]
    try:
        return build_venv(Path(request.config.cache.mkdir(f"serving-venv-{key}")), SERVE_REQUIREMENTS)
    except RuntimeError as exc:
        pytest.fail(str(exc))


def test_the_serving_venv_has_no_tensorflow_and_stays_small(serving_venv):
    python = str(serving_venv / "bin" / "python")
    probe = ("import importlib.util as u; "
             "print([m for m in ('tensorflow', 'keras', 'ai_edge_litert') if u.find_spec(m)])")
    found = subprocess.run([python, "-c", probe], capture_output=True, text=True, timeout=60, check=True)
    assert found.stdout.strip() == "['ai_edge_litert']"
    assert site_packages_bytes(serving_venv) <= MAX_SERVING_PACKAGES_MB * 1024 * 1024


@pytest.fixture(scope="module")
def served_without_tensorflow(serving_venv, pen_digits_path, tmp_path_factory):
    spec = parse_dockerfile()
    scratch = tmp_path_factory.mktemp("serving-venv-run")
    workdir = stage_image_files(scratch / "app", spec)
    drawings = pen_drawing_pngs(pen_digits_path, per_label=1, writer_group="syn")
    record = {"answers": []}
    with run_container_command(workdir, scratch / "server.log", spec=spec, venv=serving_venv,
                               LABELS_DIR=str(scratch / "labels")) as server:
        try:
            wait_for_status(server.port, "/readyz", server.process, timeout=120)
        except (RuntimeError, TimeoutError) as exc:
            pytest.fail(f"{exc}; its log ends:\n" + "\n".join(server.log_lines()[-30:]))
        status, body = http_request(server.port, "GET", "/readyz")
        record["readyz"] = (status, json.loads(body))
        for label, png in drawings:
            status, body = http_request(server.port, "POST", "/predict", predict_body(png))
            assert status == 200, body[:300]
            record["answers"].append((label, json.loads(body)["digit"]))
        record["exit_status"] = server.stop(timeout=30)
        record["log_lines"] = server.log_lines()
    return record


def test_the_dockerfile_command_serves_from_the_serving_venv(served_without_tensorflow):
    status, body = served_without_tensorflow["readyz"]
    assert status == 200 and body["checks"]["model"] is True, body
    answers = served_without_tensorflow["answers"]
    assert sum(label == digit for label, digit in answers) >= 9, answers
    assert served_without_tensorflow["exit_status"] == 0
    for line in served_without_tensorflow["log_lines"]:
        assert json.loads(line)["severity"] in ("DEBUG", "INFO", "WARNING"), line


def test_asking_for_keras_there_fails_at_start_saying_why(serving_venv, tmp_path):
    workdir = stage_image_files(tmp_path / "app")
    env = container_environment(parse_dockerfile(), 0, venv=serving_venv, INFERENCE_BACKEND="keras",
                                LABELS_DIR=str(tmp_path / "labels"))
    result = subprocess.run([str(serving_venv / "bin" / "python"), "-c", "import flask_app.app"],
                            cwd=workdir, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode != 0
    assert "needs TensorFlow, which is not installed" in result.stderr
