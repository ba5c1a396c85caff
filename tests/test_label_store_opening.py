"""The label store opens on the first request that needs it, not at start-up.

Opening it imports SQLAlchemy and Alembic (a third of a worker's start), so a
worker that only predicts never pays for it. These run in a fresh interpreter:
this test process has imported SQLAlchemy long ago.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from flask_app import create_app
from tests.app_config import base_test_config

REPO_ROOT = Path(__file__).resolve().parent.parent

# Builds the app, predicts, then saves a label, reporting after each step
# whether SQLAlchemy has been imported and whether the store's database exists.
PROBE = """
import base64, io, json, sys
from pathlib import Path
from PIL import Image, ImageDraw
sys.path.insert(0, {repo!r})
from flask_app import create_app
from tests.app_config import base_test_config

def state(step):
    labels = Path({labels!r})
    print(json.dumps({{"step": step, "sqlalchemy": "sqlalchemy" in sys.modules,
                      "database": (labels / "labels.sqlite3").exists()}}))

image = Image.new("RGBA", (280, 280))
ImageDraw.Draw(image).line([(140, 40), (140, 240)], fill=(255, 255, 255, 255), width=14)
buffer = io.BytesIO(); image.save(buffer, "PNG")
body = {{"image": "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()}}
app = create_app(base_test_config(Path({tmp!r})))
state("created")
client = app.test_client()
assert client.post("/predict", json=body).status_code == 200
assert client.get("/readyz").status_code == 200
state("predicted")
assert client.post("/labels", json=dict(body, label=1)).status_code == 201
state("labelled")
"""


def test_a_worker_that_only_predicts_never_opens_the_label_store(tmp_path):
    probe = PROBE.format(repo=str(REPO_ROOT), tmp=str(tmp_path), labels=str(tmp_path / "labels"))
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120,
                            cwd=REPO_ROOT)
    assert result.returncode == 0, result.stderr[-2000:]
    states = {line["step"]: line for line in map(json.loads, (
        text for text in result.stdout.splitlines() if text.startswith('{"step"')))}
    assert states["created"] == {"step": "created", "sqlalchemy": False, "database": False}
    assert states["predicted"] == {"step": "predicted", "sqlalchemy": False, "database": False}
    assert states["labelled"] == {"step": "labelled", "sqlalchemy": True, "database": True}


def test_the_store_is_opened_once_and_kept(tmp_path):
    app = create_app(base_test_config(tmp_path))
    opener = app.extensions["label_store"]
    assert not opener.is_open
    store = opener.open()
    assert opener.is_open and opener.open() is store


@pytest.mark.parametrize("url", ["postgres//user@host/db", "mysql://user@host/db", "sqlite://", "labels.sqlite3"])
def test_a_mistyped_database_url_fails_at_start_not_at_the_first_label(tmp_path, url):
    with pytest.raises(ValueError, match="LABELS_DATABASE_URL"):
        create_app(base_test_config(tmp_path, LABELS_DATABASE_URL=url))


@pytest.mark.parametrize("url", ["sqlite:///{tmp}/meta.sqlite3", "postgresql://user:pw@localhost/labels",
                                 "postgresql+psycopg://user@localhost:5432/labels"])
def test_database_urls_the_store_supports_are_accepted_without_connecting(tmp_path, url):
    app = create_app(base_test_config(tmp_path, LABELS_DATABASE_URL=url.format(tmp=tmp_path)))
    assert not app.extensions["label_store"].is_open


def test_a_worker_sweeps_only_once_it_has_opened_its_store(tmp_path):
    app = create_app(base_test_config(tmp_path, LABELS_SWEEP_INTERVAL_SECONDS=3600))
    opener, sweeper = app.extensions["label_store"], app.extensions["label_sweeper"]
    # A leftover temp file of a crashed save, older than the grace period.
    leftover = tmp_path / "labels" / "images" / "ab" / ".crashed.tmp"
    leftover.parent.mkdir(parents=True)
    leftover.write_bytes(b"partial")
    old = leftover.stat().st_mtime - 2 * app.config["LABELS_SWEEP_GRACE_SECONDS"]
    os.utime(leftover, (old, old))
    assert not sweeper.sweep_once() and not opener.is_open and leftover.exists()
    opener.open()
    assert sweeper.sweep_once() and not leftover.exists()
