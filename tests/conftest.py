"""Shared fixtures: the real app with the real model, a real server on loopback,
real files under pytest's tmp_path, and the data sets.

Data: MNIST and the pen sets come from $MNIST_PATH / $PEN_DIGITS_PATH /
$PEN_CHARS_PATH, else from ../shared/data. Where neither has them (a clone
elsewhere), MNIST comes from the public Keras download and the pen sets from the
small samples in tests/fixtures/; with no network the MNIST tests skip, saying
why. In CI (CI=true or REQUIRE_DATA=1) the full files are required: a missing
file fails the tests that need it instead of quietly testing less.
"""
from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from testing_support.loopback_server import start_live_server
from flask_app import create_app
from tests.app_config import base_test_config
from testing_support.postgres_server import find_postgres_bin, running_postgres
# The browser tests' fixtures (Chromium, pages checked for console errors, pen digits).
from tests.browser_fixtures import browser, clear_digits, open_page, pen_strokes  # noqa: F401

REPO_ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"
FIXTURES = Path(__file__).resolve().parent / "fixtures"
# Long enough for the 11 MB MNIST download; short enough that a machine whose
# firewall drops the connection skips after seconds, not minutes.
DOWNLOAD_SOCKET_TIMEOUT_S = 20


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


def data_required() -> bool:
    """CI must test on the full data sets, never on a fallback."""
    return os.environ.get("REQUIRE_DATA") == "1" or os.environ.get("CI", "").lower() == "true"


def full_data_file(env_name: str, shared_name: str) -> Path | None:
    """The full data file from $env_name, else ../shared/data; None when neither
    is there. A path named explicitly that does not exist is an error, not a
    reason to fall back."""
    named = os.environ.get(env_name)
    if named:
        if not Path(named).is_file():
            pytest.fail(f"{env_name}={named} does not exist")
        return Path(named)
    shared = SHARED_DATA / shared_name
    if shared.is_file():
        return shared
    if data_required():
        pytest.fail(f"{shared_name} not found at {shared} and {env_name} is not set "
                    "(CI=true / REQUIRE_DATA=1 require the full data sets)")
    return None


def download_mnist(destination: Path) -> Path:
    """MNIST from the public Keras download, saved as the same four arrays."""
    import keras  # deferred: only this fallback needs TensorFlow at collection time

    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(DOWNLOAD_SOCKET_TIMEOUT_S)
    try:
        (x_train, y_train), (x_test, y_test) = keras.datasets.mnist.load_data()
    except Exception as exc:  # Keras wraps every network failure in a bare Exception
        pytest.skip(f"MNIST: no ../shared/data/mnist.npz, no MNIST_PATH, and the Keras download "
                    f"failed ({str(exc)[:160]})")
    finally:
        socket.setdefaulttimeout(previous)
    np.savez(destination, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    return destination


@pytest.fixture(scope="session")
def mnist_path(tmp_path_factory):
    full = full_data_file("MNIST_PATH", "mnist.npz")
    if full is not None:
        return str(full)
    return str(download_mnist(tmp_path_factory.mktemp("mnist") / "mnist.npz"))


@pytest.fixture(scope="session")
def pen_digits_path():
    full = full_data_file("PEN_DIGITS_PATH", "pen_digits_dev.jsonl.gz")
    return str(full or FIXTURES / "pen_digits_sample.jsonl.gz")


@pytest.fixture(scope="session")
def pen_chars_path():
    full = full_data_file("PEN_CHARS_PATH", "pen_chars_dev.jsonl.gz")
    return str(full or FIXTURES / "pen_chars_sample.jsonl.gz")

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
