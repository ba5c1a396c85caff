"""Run the real app on a loopback port for benchmarks and tests.

`serve_app` serves it in this process (werkzeug, threaded); `serve_with_dockerfile_command`
runs the exact command of the Dockerfile's CMD (gunicorn) as a subprocess.
"""
from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from werkzeug.serving import make_server

REPO_ROOT = Path(__file__).resolve().parent.parent


@contextlib.contextmanager
def serve_app(**config):
    """Yield the base URL of the real app served on 127.0.0.1 in this process."""
    from flask_app import create_app

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no line per request
    with tempfile.TemporaryDirectory() as labels_dir:
        app = create_app({"LABELS_DIR": labels_dir, "LABELS_RATE_LIMIT": "off", "LOG_LEVEL": "WARNING",
                          **config})
        server = make_server("127.0.0.1", 0, app, threaded=True)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield f"http://127.0.0.1:{server.server_port}", app
        finally:
            server.shutdown()
            thread.join(timeout=5)


def dockerfile_command(dockerfile: str | Path = REPO_ROOT / "Dockerfile") -> str:
    """The shell command of the Dockerfile's CMD (shell form), e.g.
    'exec gunicorn --bind :$PORT ... flask_app.app:app'."""
    for line in Path(dockerfile).read_text().splitlines():
        stripped = line.strip()
        if stripped.upper().startswith("CMD "):
            command = stripped[4:].strip()
            if command.startswith("["):
                import json
                command = " ".join(json.loads(command))
            return command
    raise ValueError(f"no CMD in {dockerfile}")


@contextlib.contextmanager
def serve_with_dockerfile_command(port: int, env: dict | None = None, dockerfile=None):
    """Run the Dockerfile's CMD here, from the repository root, on `port`.

    The venv's bin directory goes first on PATH so `gunicorn` is the pinned one.
    Yields the Popen; stops it with SIGTERM (as Cloud Run does) on exit.
    """
    command = dockerfile_command(dockerfile or REPO_ROOT / "Dockerfile")
    environment = {**os.environ, **(env or {}), "PORT": str(port)}
    environment["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{environment.get('PATH', '')}"
    process = subprocess.Popen(["/bin/sh", "-c", command], cwd=REPO_ROOT, env=environment,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        yield process
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def wait_until_ready(url: str, timeout: float = 60.0) -> float:
    """Poll /readyz until 200; returns the seconds waited."""
    import requests

    started = time.perf_counter()
    while time.perf_counter() - started < timeout:
        try:
            if requests.get(f"{url}/readyz", timeout=2).status_code == 200:
                return time.perf_counter() - started
        except requests.RequestException:
            pass
        time.sleep(0.05)
    raise TimeoutError(f"{url} not ready after {timeout} s")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
