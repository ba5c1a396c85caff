"""Shared fixtures: the real app with the real model, a real server on loopback,
and real files under pytest's tmp_path."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pytest

from benchmarks._server import start_live_server
from flask_app import create_app

REPO_ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"
MNIST_PATH = os.environ.get("MNIST_PATH") or str(SHARED_DATA / "mnist.npz")
PEN_DIGITS_PATH = os.environ.get("PEN_DIGITS_PATH") or str(SHARED_DATA / "pen_digits_dev.jsonl.gz")
PEN_CHARS_PATH = os.environ.get("PEN_CHARS_PATH") or str(SHARED_DATA / "pen_chars_dev.jsonl.gz")


def base_test_config(tmp_path: Path, **overrides) -> dict:
    config = {
        "TESTING": True,
        "LABELS_DIR": str(tmp_path / "labels"),
        "ADMIN_TOKEN": "test-admin-token",
        "SECRET_KEY": "test-secret",
        "LABELS_RATE_LIMIT": "off",
    }
    config.update(overrides)
    return config


@pytest.fixture
def app(tmp_path):
    return create_app(base_test_config(tmp_path))


@pytest.fixture
def client(app):
    return app.test_client()


@dataclass
class LiveServer:
    url: str
    app: object

    @property
    def labels_dir(self) -> Path:
        return Path(self.app.config["LABELS_DIR"])


@pytest.fixture
def live_server(app):
    server, thread = start_live_server(app)
    try:
        yield LiveServer(f"http://127.0.0.1:{server.server_port}", app)
    finally:
        server.shutdown()
        thread.join(timeout=5)


@pytest.fixture(scope="session")
def mnist_path():
    if not Path(MNIST_PATH).exists():
        pytest.fail(f"MNIST not found at {MNIST_PATH}; set MNIST_PATH")
    return MNIST_PATH


@pytest.fixture(scope="session")
def pen_digits_path():
    if not Path(PEN_DIGITS_PATH).exists():
        pytest.fail(f"pen digits not found at {PEN_DIGITS_PATH}; set PEN_DIGITS_PATH")
    return PEN_DIGITS_PATH


@pytest.fixture(scope="session")
def pen_chars_path():
    if not Path(PEN_CHARS_PATH).exists():
        pytest.fail(f"pen characters not found at {PEN_CHARS_PATH}; set PEN_CHARS_PATH")
    return PEN_CHARS_PATH
