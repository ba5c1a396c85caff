"""/healthz and /readyz on the real app: readiness fails when labels could not
be saved, and the probe leaves nothing behind in the labels directory."""
from __future__ import annotations

import os
import shutil
import stat

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
    assert body["checks"] == {"model": True, "labels_dir_writable": True}
    assert body["model_version"] == app.extensions["recognizer"].model_version
    assert sorted(os.listdir(app.config["LABELS_DIR"])) == before


def test_readyz_is_503_when_the_labels_directory_is_gone(app, client):
    # A volume that went away: the process still answers, but must not take traffic.
    shutil.rmtree(app.config["LABELS_DIR"])
    status, body = readiness(client)
    assert status == 503
    assert body["status"] == "not ready"
    assert body["checks"] == {"model": True, "labels_dir_writable": False}
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
        assert status == 503 and body["checks"] == {"model": True, "labels_dir_writable": False}
    finally:
        os.chmod(labels, stat.S_IRWXU)
