"""Labelled drawings under concurrency and crashes, through real servers, on
each database (SQLite; PostgreSQL where installed, always in CI).

(a) 20 clients submit 25 distinct drawings each at once to the app served on
    loopback: exactly 500 whole samples, 50 per digit, and GET /labels lists them.
(b) gunicorn in a subprocess is killed with SIGKILL while submissions are in
    flight: every acknowledged sample survives, no row lacks its image, and
    after a restart and `labels sweep` no image is left that no row names;
    the API agrees with the store.

Figures (counts, timings) are printed; run with -s to see them.
"""
from __future__ import annotations

import hashlib
import io
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import requests
from PIL import Image

from digit_recognition.label_store import LabelStore
from flask_app import create_app
from testing_support.container_command import free_port, kill_process_group, stop_process_group
from testing_support.drawings import data_url, digit_png
from tests.app_config import ADMIN_TOKEN, base_test_config
from tests.store_files import sample_files

REPO_ROOT = Path(__file__).resolve().parent.parent

CLIENTS = 20
PER_CLIENT = 25
TOKEN = ADMIN_TOKEN  # what base_test_config's apps accept
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def app(tmp_path, label_database_url):
    """The real app on each database (overrides conftest's SQLite-only app)."""
    return create_app(base_test_config(tmp_path, LABELS_DATABASE_URL=label_database_url))


def check_store(labels_dir: Path, database_url: str | None) -> dict[str, dict]:
    """Every sample the store lists is whole: its image exists, decodes, and
    matches its recorded hash and size; no sample twice. Returns the
    metadata by id."""
    store = LabelStore(labels_dir, database_url)
    samples = {}
    try:
        for record in store.iter_samples():
            png = record.png_path.read_bytes()  # FileNotFoundError: a row without its image
            assert hashlib.sha256(png).hexdigest() == record.sha256
            with Image.open(io.BytesIO(png)) as image:
                image.load()
                assert image.format == "PNG" and image.size == (record.width, record.height)
            assert record.id not in samples, "a sample is stored twice"
            samples[record.id] = record.metadata()
        assert store.count() == len(samples)
    finally:
        store.close()
    return samples


def list_all(base_url: str) -> list[dict]:
    """Every item GET /labels reports, fetched page by page."""
    items, offset = [], 0
    while True:
        page = requests.get(f"{base_url}/labels", params={"limit": 200, "offset": offset},
                            headers=AUTH, timeout=30)
        assert page.status_code == 200
        body = page.json()
        items += body["items"]
        offset += 200
        if offset >= body["total"]:
            assert len(items) == body["total"]
            return items


# -- (a) many clients at once ----------------------------------------------------

def test_twenty_clients_submitting_at_once_store_exactly_500_whole_samples(live_server):
    drawings = [data_url(digit_png(n % 10, seed=n)) for n in range(CLIENTS * PER_CLIENT)]
    expected: dict[str, int] = {}
    failures: list[str] = []
    lock = threading.Lock()
    start = threading.Barrier(CLIENTS)

    def client(number: int) -> None:
        with requests.Session() as session:
            start.wait()
            for i in range(PER_CLIENT):
                n = number * PER_CLIENT + i
                label = n % 10
                try:
                    response = session.post(f"{live_server.url}/labels", timeout=60,
                                            json={"image": drawings[n], "label": label})
                except requests.RequestException as exc:
                    failures.append(f"client {number}: {exc!r}")
                    continue
                with lock:
                    if response.status_code != 201:
                        failures.append(f"client {number}: {response.status_code} {response.text}")
                    else:
                        expected[response.json()["id"]] = label

    began = time.perf_counter()
    threads = [threading.Thread(target=client, args=(n,)) for n in range(CLIENTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - began

    assert failures == []
    assert len(expected) == CLIENTS * PER_CLIENT == 500
    database_url = live_server.app.config["LABELS_DATABASE_URL"]
    stored = check_store(live_server.labels_dir, database_url)
    assert {i: m["label"] for i, m in stored.items()} == expected
    store = live_server.app.extensions["label_store"].open()
    for digit in range(10):
        assert store.list(label=digit)[0] == 50
    files = sample_files(live_server.labels_dir)
    assert len(files["png"]) == 500 and files["temp"] == []

    listed_at = time.perf_counter()
    one_page = requests.get(f"{live_server.url}/labels", params={"limit": 1000}, headers=AUTH, timeout=30)
    list_seconds = time.perf_counter() - listed_at
    assert one_page.json()["total"] == 500
    assert {i["id"]: i["label"] for i in one_page.json()["items"]} == expected
    assert {i["id"] for i in list_all(live_server.url)} == set(expected)
    print(f"\n[labels concurrency] {CLIENTS} clients x {PER_CLIENT} = {len(expected)} samples stored "
          f"in {elapsed:.1f} s ({len(expected) / elapsed:.0f} submissions/s); "
          f"GET /labels?limit=1000 of 500 took {list_seconds * 1000:.0f} ms")


# -- (b) SIGKILL mid-flight ------------------------------------------------------

class GunicornServer:
    """gunicorn serving flask_app.app:app in its own process group."""

    def __init__(self, labels_dir: Path, log_path: Path, database_url: str | None = None):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        self.env = {**os.environ, "LABELS_DIR": str(labels_dir), "ADMIN_TOKEN": TOKEN,
                    "SECRET_KEY": "crash-test", "LABELS_RATE_LIMIT": "off", "PREDICT_RATE_LIMIT": "off",
                    **({"LABELS_DATABASE_URL": database_url} if database_url else {}),
                    "MODEL_PATH": str(REPO_ROOT / "flask_app" / "model" / "digit_cnn.keras"),
                    "PYTHONUNBUFFERED": "1"}
        self.process: subprocess.Popen | None = None

    def start(self, timeout: float = 120) -> None:
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{self.port}",
                 "-w", "1", "--threads", "8", "--timeout", "60", "flask_app.app:app"],
                cwd=REPO_ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"gunicorn exited early:\n{self.log_path.read_text()[-3000:]}")
            try:
                if requests.get(f"{self.url}/healthz", timeout=2).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.2)
        self.stop()
        pytest.fail(f"gunicorn did not come up:\n{self.log_path.read_text()[-3000:]}")

    def kill(self) -> None:
        """SIGKILL the master and its workers at once, as an OOM kill or power cut would."""
        kill_process_group(self.process)

    def stop(self) -> None:
        stop_process_group(self.process)


def _submit_until_killed(url: str, drawings: list, acknowledged: dict, stop: threading.Event,
                         worker: int) -> None:
    """Submit distinct drawings back to back; every 201 is a promise the store must keep."""
    with requests.Session() as session:
        for i in range(len(drawings) // KILL_CLIENTS):
            if stop.is_set():
                return
            n = i * KILL_CLIENTS + worker
            label = n % 10
            try:
                response = session.post(f"{url}/labels", json={"image": drawings[n], "label": label},
                                        timeout=30)
            except requests.RequestException:
                return  # the server is gone
            if response.status_code == 201:
                acknowledged[response.json()["id"]] = label


KILL_CLIENTS = 12


def test_sigkill_mid_flight_leaves_only_whole_samples(tmp_path, label_database_url):
    labels_dir = tmp_path / "labels"
    server = GunicornServer(labels_dir, tmp_path / "gunicorn.log", label_database_url)
    drawings = [data_url(digit_png(n % 10, seed=n)) for n in range(KILL_CLIENTS * 40)]
    acknowledged: dict[str, int] = {}
    server.start()
    try:
        stop = threading.Event()
        threads = [threading.Thread(target=_submit_until_killed,
                                    args=(server.url, drawings, acknowledged, stop, w))
                   for w in range(KILL_CLIENTS)]
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + 60
        while len(acknowledged) < 60 and time.monotonic() < deadline:
            time.sleep(0.01)
        acknowledged_before_kill = len(acknowledged)
        server.kill()  # 12 clients still submitting: writes are in flight
        stop.set()
        for thread in threads:
            thread.join(timeout=30)
    finally:
        server.stop()
    assert acknowledged_before_kill >= 60, "the server answered too few submissions to test anything"

    # What the kill left: whole samples (no row without its image), and at most
    # temp files or images no row names.
    left = sample_files(labels_dir)
    stored = check_store(labels_dir, label_database_url)
    for png_path in map(Path, left["png"]):  # orphans too: renamed into place, so whole
        with Image.open(png_path) as image:
            image.load()
    orphans = [p for p in left["png"] if Path(p).stem not in stored]
    for sample_id, label in acknowledged.items():  # a 201 means it was committed, after its image
        assert stored[sample_id]["label"] == label

    server.start()
    try:
        # Nothing writes now: the sweep may take even the youngest leftovers.
        sweep = subprocess.run([sys.executable, "-m", "digit_recognition", "labels", "sweep",
                                "--grace-seconds", "0"], cwd=REPO_ROOT, env=server.env,
                               capture_output=True, text=True, timeout=300)
        assert sweep.returncode == 0, sweep.stderr[-2000:]
        after = sample_files(labels_dir)
        assert after["temp"] == [] and after["other"] == []
        survivors = check_store(labels_dir, label_database_url)
        assert sorted(Path(p).stem for p in after["png"]) == sorted(survivors), "an unreferenced image survived"
        assert survivors == stored
        listed = list_all(server.url)
        assert {i["id"]: i["label"] for i in listed} == {i: m["label"] for i, m in survivors.items()}
        for item in listed[:: max(1, len(listed) // 20)]:
            png = requests.get(f"{server.url}/labels/{item['id']}.png", headers=AUTH, timeout=30)
            assert png.status_code == 200
            assert hashlib.sha256(png.content).hexdigest() == survivors[item["id"]]["sha256"]
        # The restarted server takes submissions again.
        response = requests.post(f"{server.url}/labels", json={"image": drawings[-1], "label": 9}, timeout=30)
        assert response.status_code == 201
    finally:
        server.stop()
    print(f"\n[labels crash] SIGKILL after {acknowledged_before_kill} acknowledged submissions "
          f"({len(acknowledged)} acknowledged in all); after the kill: {len(stored)} whole "
          f"samples, {len(left['temp'])} temp files, {len(orphans)} unreferenced images; "
          f"after restart and sweep: {len(survivors)} samples listed, all whole, no leftovers")
