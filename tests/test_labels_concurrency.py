"""Labelled drawings under concurrency and crashes, through real servers.

(a) 20 clients submit 25 drawings each at once to the app served on loopback:
    exactly 500 whole samples, each under its digit, and GET /labels lists them.
(b) gunicorn in a subprocess is killed with SIGKILL while submissions are in
    flight: no partial file, every acknowledged sample survives, and after a
    restart (whose start-up sweep clears the leftovers) every listed sample is
    whole and the API agrees with the disk.

Figures (counts, timings) are printed; run with -s to see them.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import requests
from PIL import Image

from testing_support.drawings import data_url, digit_png
from tests.store_files import sample_files

REPO_ROOT = Path(__file__).resolve().parent.parent

CLIENTS = 20
PER_CLIENT = 25
TOKEN = "test-admin-token"  # base_test_config's
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def check_store_on_disk(root: Path) -> dict[str, dict]:
    """Every sample on disk is whole: its JSON parses, sits under its label,
    and names a PNG that decodes and matches its recorded hash. Returns the
    metadata by id."""
    samples = {}
    files = sample_files(root)
    assert files["other"] == []
    for json_path in map(Path, files["json"]):
        metadata = json.loads(json_path.read_text())
        assert metadata["id"] == json_path.stem
        assert str(metadata["label"]) == json_path.parent.name
        png = json_path.with_suffix(".png").read_bytes()
        assert hashlib.sha256(png).hexdigest() == metadata["sha256"]
        with Image.open(io.BytesIO(png)) as image:
            image.load()
            assert image.format == "PNG" and image.size == (metadata["width"], metadata["height"])
        assert metadata["id"] not in samples, "a sample is stored twice"
        samples[metadata["id"]] = metadata
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
    drawings = {d: [data_url(digit_png(d, seed=s)) for s in range(3)] for d in range(10)}
    expected: dict[str, int] = {}
    failures: list[str] = []
    lock = threading.Lock()
    start = threading.Barrier(CLIENTS)

    def client(number: int) -> None:
        with requests.Session() as session:
            start.wait()
            for i in range(PER_CLIENT):
                label = (number * PER_CLIENT + i) % 10
                try:
                    response = session.post(f"{live_server.url}/labels", timeout=60,
                                            json={"image": drawings[label][i % 3], "label": label})
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
    on_disk = check_store_on_disk(live_server.labels_dir)
    assert {i: m["label"] for i, m in on_disk.items()} == expected
    for digit in range(10):
        assert len(list((live_server.labels_dir / str(digit)).glob("*.json"))) == 50
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

def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class GunicornServer:
    """gunicorn serving flask_app.app:app in its own process group."""

    def __init__(self, labels_dir: Path, log_path: Path):
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        self.env = {**os.environ, "LABELS_DIR": str(labels_dir), "ADMIN_TOKEN": TOKEN,
                    "SECRET_KEY": "crash-test", "LABELS_RATE_LIMIT": "off", "PREDICT_RATE_LIMIT": "off",
                    "MODEL_PATH": str(REPO_ROOT / "flask_app" / "model" / "digit_cnn.keras"),
                    # The old server is dead: nothing in the directory is still being written.
                    "LABELS_SWEEP_GRACE_SECONDS": "0", "PYTHONUNBUFFERED": "1"}
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
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()


def _submit_until_killed(url: str, drawings: dict, acknowledged: dict, stop: threading.Event,
                         worker: int) -> None:
    """Submit drawings back to back; every 201 is a promise the store must keep."""
    with requests.Session() as session:
        i = 0
        while not stop.is_set():
            label = (worker + i) % 10
            try:
                response = session.post(f"{url}/labels", json={"image": drawings[label], "label": label},
                                        timeout=30)
            except requests.RequestException:
                return  # the server is gone
            if response.status_code == 201:
                acknowledged[response.json()["id"]] = label
            i += 1


def test_sigkill_mid_flight_leaves_only_whole_samples(tmp_path):
    labels_dir = tmp_path / "labels"
    server = GunicornServer(labels_dir, tmp_path / "gunicorn.log")
    drawings = {d: data_url(digit_png(d, seed=d)) for d in range(10)}
    acknowledged: dict[str, int] = {}
    server.start()
    try:
        stop = threading.Event()
        threads = [threading.Thread(target=_submit_until_killed,
                                    args=(server.url, drawings, acknowledged, stop, w)) for w in range(12)]
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

    # What the kill left: whole samples, and at most temp files or orphan PNGs.
    left = sample_files(labels_dir)
    on_disk = check_store_on_disk(labels_dir)
    for png_path in map(Path, left["png"]):  # orphans too: renamed into place, so whole
        with Image.open(png_path) as image:
            image.load()
    orphans = [p for p in left["png"] if not Path(p).with_suffix(".json").exists()]
    for sample_id, label in acknowledged.items():  # a 201 means it was on disk, fsynced
        assert on_disk[sample_id]["label"] == label

    server.start()  # the restart sweeps the leftovers
    try:
        after = sample_files(labels_dir)
        assert after["temp"] == [] and after["other"] == []
        assert all(Path(p).with_suffix(".json").exists() for p in after["png"]), "orphans survived"
        survivors = check_store_on_disk(labels_dir)
        assert survivors == on_disk
        listed = list_all(server.url)
        assert {i["id"]: i["label"] for i in listed} == {i: m["label"] for i, m in survivors.items()}
        for item in listed[:: max(1, len(listed) // 20)]:
            png = requests.get(f"{server.url}/labels/{item['id']}.png", headers=AUTH, timeout=30)
            assert png.status_code == 200
            assert hashlib.sha256(png.content).hexdigest() == survivors[item["id"]]["sha256"]
        # The restarted server takes submissions again.
        response = requests.post(f"{server.url}/labels", json={"image": drawings[4], "label": 4}, timeout=30)
        assert response.status_code == 201
    finally:
        server.stop()
    print(f"\n[labels crash] SIGKILL after {acknowledged_before_kill} acknowledged submissions "
          f"({len(acknowledged)} acknowledged in all); on disk after the kill: {len(on_disk)} whole "
          f"samples, {len(left['temp'])} temp files, {len(orphans)} orphan PNGs, 0 partial files; "
          f"after restart: {len(survivors)} samples listed, all whole, leftovers swept")
