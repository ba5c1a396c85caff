"""Shared fixtures: the real app with the real model, a real server on loopback,
and real files under pytest's tmp_path."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pytest

from benchmarks._server import start_live_server
from flask_app import create_app
from tests.postgres_server import find_postgres_bin, running_postgres

REPO_ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"
MNIST_PATH = os.environ.get("MNIST_PATH") or str(SHARED_DATA / "mnist.npz")
PEN_DIGITS_PATH = os.environ.get("PEN_DIGITS_PATH") or str(SHARED_DATA / "pen_digits_dev.jsonl.gz")


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


def postgres_required() -> bool:
    """In CI (CI=true) PostgreSQL is installed by .ci/run, so its absence is a failure."""
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


@pytest.fixture(scope="session")
def postgres_server():
    """A private PostgreSQL server (Debian's package) on a unix socket, for the whole session."""
    if find_postgres_bin() is None:
        if postgres_required():
            pytest.fail("PostgreSQL is not installed; CI installs it (.ci/run: apt-get install postgresql)")
        pytest.skip("PostgreSQL is not installed (apt-get install postgresql); CI runs these tests")
    with running_postgres() as server:
        yield server


@pytest.fixture(params=["sqlite", "postgresql"])
def label_database_url(request):
    """The label store's database, once per kind: None (the SQLite default) or a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return None
    return request.getfixturevalue("postgres_server").create_database()
