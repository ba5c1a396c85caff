"""/healthz and /readyz on the real app: readiness fails when labels could not
be saved, and the probe leaves nothing behind in the labels directory."""
from __future__ import annotations

import os
import shutil
import stat
import subprocess
import time

import pytest

from tests.app_config import base_test_config
from flask_app import create_app


def readiness(client):
    response = client.get("/readyz")
    return response.status_code, response.get_json()


def test_healthz_is_ok(client):
    response = client.get("/healthz")
    assert response.status_code == 200 and response.get_json() == {"status": "ok"}


def test_readyz_runs_the_model_and_leaves_no_probe_file(app, client):
    before = sorted(os.listdir(app.config["LABELS_DIR"]))
    status, body = readiness(client)
    assert status == 200
    assert body["checks"] == {"model": True, "labels_dir_writable": True, "labels_dir_free_space": True}
    assert body["model_version"] == app.extensions["recognizer"].model_version
    assert sorted(os.listdir(app.config["LABELS_DIR"])) == before


def test_readyz_is_503_when_the_labels_directory_is_gone(app, client):
    # A volume that went away: the process still answers, but must not take traffic.
    shutil.rmtree(app.config["LABELS_DIR"])
    status, body = readiness(client)
    assert status == 503
    assert body["status"] == "not ready"
    assert body["checks"]["model"] is True and body["checks"]["labels_dir_writable"] is False
    assert client.get("/healthz").status_code == 200  # alive, only not ready

    os.mkdir(app.config["LABELS_DIR"])  # the volume is back
    assert readiness(client)[0] == 200


def test_readyz_is_503_when_labels_dir_is_a_file(tmp_path):
    app = create_app(base_test_config(tmp_path))
    labels = app.config["LABELS_DIR"]
    shutil.rmtree(labels)
    with open(labels, "w") as handle:
        handle.write("not a directory")
    status, body = readiness(app.test_client())
    assert status == 503 and body["checks"]["labels_dir_writable"] is False


def test_readyz_is_503_when_labels_dir_is_read_only(tmp_path):
    app = create_app(base_test_config(tmp_path))
    labels = app.config["LABELS_DIR"]
    os.chmod(labels, stat.S_IRUSR | stat.S_IXUSR)
    try:
        try:  # root (or CAP_DAC_OVERRIDE) writes whatever the mode says
            with open(os.path.join(labels, "can-i-write"), "w"):
                pass
            os.unlink(os.path.join(labels, "can-i-write"))
            pytest.skip("this user can write to a read-only directory (root): the mode cannot "
                        "make it unwritable here; the missing-directory and file cases still run")
        except PermissionError:
            pass
        status, body = readiness(app.test_client())
        assert status == 503 and body["checks"]["model"] is True and body["checks"]["labels_dir_writable"] is False
    finally:
        os.chmod(labels, stat.S_IRWXU)


def test_readyz_is_503_when_free_space_is_below_the_threshold(tmp_path):
    # More than any disk holds: the check must fail on whatever this disk is.
    app = create_app(base_test_config(tmp_path, READY_MIN_FREE_BYTES=2**62))
    status, body = readiness(app.test_client())
    assert status == 503
    assert body["checks"] == {"model": True, "labels_dir_writable": True, "labels_dir_free_space": False}


@pytest.fixture
def small_tmpfs(tmp_path):
    """A 1 MiB tmpfs mounted at tmp_path/small (needs root, or the test is skipped)."""
    mount_point = tmp_path / "small"
    mount_point.mkdir()
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount_point)],
                            capture_output=True, text=True)
    if result.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {result.stderr.strip()}")
    try:
        yield mount_point
    finally:
        # Lazy: the app under test may still hold its label database open in the
        # mount (pooled connections live as long as the app object).
        subprocess.run(["umount", "--lazy", str(mount_point)], check=True)


def test_readyz_on_a_nearly_full_small_disk(small_tmpfs, tmp_path):
    # A real small file system: an empty probe file still fits on it once it is
    # nearly full, but a drawing does not, so "writable" alone said ready.
    labels = small_tmpfs / "labels"
    app = create_app(base_test_config(tmp_path, LABELS_DIR=str(labels), READY_MIN_FREE_BYTES=256 * 1024))
    client = app.test_client()
    assert readiness(client)[0] == 200  # 1 MiB free, 256 KiB needed
    (small_tmpfs / "filler").write_bytes(b"\0" * (900 * 1024))
    status, body = readiness(client)
    assert status == 503
    assert body["checks"] == {"model": True, "labels_dir_writable": True, "labels_dir_free_space": False}
    (small_tmpfs / "filler").unlink()
    assert readiness(client)[0] == 200


def test_readyz_writes_nothing_on_repeated_calls(app, client):
    labels = app.config["LABELS_DIR"]
    assert readiness(client)[0] == 200  # the first call tries one real write
    before, names = os.stat(labels).st_mtime_ns, sorted(os.listdir(labels))
    time.sleep(0.01)  # a create or delete would now move the directory's mtime
    for _ in range(20):
        assert readiness(client)[0] == 200
    assert os.stat(labels).st_mtime_ns == before
    assert sorted(os.listdir(labels)) == names
