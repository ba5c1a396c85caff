"""The label store at scale, through gunicorn with two workers (the image's CMD).

1. Start-up: from starting gunicorn to both workers answering (each request
   log line names its worker's pid; 4 clients poll GET /), with N imported
   samples, beside the same for an empty store.
2. Listing: p50 of GET /labels?limit=50 and ?label=3&disagreed=1&limit=50 on
   the N-sample store, beside GET /healthz (the request floor) and the same
   listings on the empty store.
3. Export: time to the first byte and to the last of GET /labels/export, and
   the exporting worker's RSS growth (VmRSS polled every 50 ms), beside the
   RSS before.
4. 50 clients x 20 distinct submissions each on a fresh store, on SQLite and on
   PostgreSQL: exactly 1000 samples stored; submissions/s beside POST /predict
   with the same drawings (the model's own cost).
5. SIGKILL of gunicorn while 12 clients submit, on both databases: every
   acknowledged sample present, no row without its image, no image left
   unreferenced after `labels sweep`.

The N samples are tiny PNGs written in the old folder layout in bulk, then
imported with `import_folder` (what `python -m digit_recognition labels import`
runs), which is timed too.

    nice -n 10 python benchmarks/label_store_scale.py [--samples 100000] [--skip-postgres]
"""
from __future__ import annotations

import argparse
import hashlib
import http.client
import io
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from digit_recognition.label_import import import_folder  # noqa: E402
from digit_recognition.label_store import LabelStore  # noqa: E402
from testing_support.container_command import (  # noqa: E402
    child_pids, free_port, kill_process_group, stop_process_group,
)
from testing_support.drawings import data_url, digit_png  # noqa: E402
from testing_support.postgres_server import find_postgres_bin, running_postgres  # noqa: E402

TOKEN = "bench-admin-token-long-enough"  # the app refuses admin tokens under 16 characters
AUTH = {"Authorization": f"Bearer {TOKEN}"}


# -- the N-sample store ------------------------------------------------------------

def write_old_layout(root: Path, count: int) -> None:
    """`count` distinct tiny drawings (16x16, the index in the pixels) as the folder store wrote them."""
    rng = np.random.default_rng(0)
    base = (rng.random((10, 16, 16)) > 0.6).astype(np.uint8) * 255
    for digit in range(10):
        (root / str(digit)).mkdir(parents=True, exist_ok=True)
    start = time.time() - count  # one second apart, oldest first
    for i in range(count):
        label = i % 10
        pixels = np.zeros((16, 16, 4), np.uint8)
        pixels[..., 3] = base[label]
        pixels[15, :, 3] = [255 if (i >> bit) & 1 else 0 for bit in range(16)]  # unique per sample
        pixels[14, :2, 3] = [255 if (i >> bit) & 1 else 0 for bit in (16, 17)]
        buffer = io.BytesIO()
        Image.fromarray(pixels, "RGBA").save(buffer, format="PNG", compress_level=1)
        png = buffer.getvalue()
        sample_id = hashlib.md5(str(i).encode()).hexdigest()
        created = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(start + i)) + ".000000+00:00"
        metadata = {"id": sample_id, "label": label, "created_at": created,
                    "prediction": label if i % 5 else (label + 1) % 10, "confidence": 0.9,
                    "model_version": "bench", "width": 16, "height": 16,
                    "sha256": hashlib.sha256(png).hexdigest()}
        (root / str(label) / f"{sample_id}.png").write_bytes(png)
        (root / str(label) / f"{sample_id}.json").write_text(json.dumps(metadata))


# -- gunicorn -------------------------------------------------------------------------

class Server:
    """gunicorn as the Dockerfile runs it (2 workers x 4 threads), logs to a file."""

    def __init__(self, labels_dir: Path, log_path: Path, database_url: str | None = None):
        self.port = free_port()
        self.log_path = log_path
        self.env = {**os.environ, "LABELS_DIR": str(labels_dir), "ADMIN_TOKEN": TOKEN, "SECRET_KEY": "bench",
                    "LABELS_RATE_LIMIT": "off", "PYTHONUNBUFFERED": "1", "LOG_LEVEL": "INFO"}
        if database_url:
            self.env["LABELS_DATABASE_URL"] = database_url
        self.process = None

    def start(self) -> float:
        """Start; returns seconds until both workers have answered a request."""
        self.log_path.write_bytes(b"")
        log = open(self.log_path, "ab")
        started = time.perf_counter()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "--config", "gunicorn.conf.py", "--bind", f"127.0.0.1:{self.port}",
             "--workers", "2", "--threads", "4", "--timeout", "0", "flask_app.app:app"],
            cwd=REPO_ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        stop = threading.Event()

        def poll():
            while not stop.is_set():
                try:
                    connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
                    connection.request("GET", "/")
                    connection.getresponse().read()
                    connection.close()
                except OSError:
                    time.sleep(0.05)

        pollers = [threading.Thread(target=poll, daemon=True) for _ in range(4)]
        for thread in pollers:
            thread.start()
        try:
            while time.perf_counter() - started < 180:
                if self.process.poll() is not None:
                    raise RuntimeError(self.log_path.read_text()[-3000:])
                if len(self.answering_pids()) >= 2:
                    return time.perf_counter() - started
                time.sleep(0.05)
            raise RuntimeError("workers did not come up")
        finally:
            stop.set()
            for thread in pollers:
                thread.join()

    def answering_pids(self) -> set[int]:
        return {int(p) for p in re.findall(rb'"GET / 200".*?"pid": (\d+)', self.log_path.read_bytes())}

    def worker_pids(self) -> list[int]:
        return child_pids(self.process.pid)

    def kill(self) -> None:
        kill_process_group(self.process)

    def stop(self) -> None:
        stop_process_group(self.process)


def get(port: int, path: str, headers=AUTH) -> tuple[int, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    connection.request("GET", path, headers=headers)
    response = connection.getresponse()
    body = response.read()
    connection.close()
    return response.status, body


def p50_ms(port: int, path: str, runs: int = 40) -> float:
    times = []
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    for _ in range(runs + 3):
        started = time.perf_counter()
        connection.request("GET", path, headers=AUTH)
        response = connection.getresponse()
        response.read()
        assert response.status == 200, (path, response.status)
        times.append(time.perf_counter() - started)
    connection.close()
    return statistics.median(times[3:]) * 1000


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def measure_export(server: Server) -> dict:
    pids = server.worker_pids()
    before = {pid: rss_mib(pid) for pid in pids}
    peak = dict(before)
    done = threading.Event()

    def watch():
        while not done.is_set():
            for pid in pids:
                peak[pid] = max(peak[pid], rss_mib(pid))
            time.sleep(0.05)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    head_started = time.perf_counter()
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=600)
    connection.request("HEAD", "/labels/export", headers=AUTH)
    connection.getresponse().read()
    head_s = time.perf_counter() - head_started
    started = time.perf_counter()
    connection.request("GET", "/labels/export", headers=AUTH)
    response = connection.getresponse()
    first = response.read(1)
    first_byte_s = time.perf_counter() - started
    with tempfile.TemporaryFile() as archive:
        archive.write(first)
        while chunk := response.read(1 << 20):
            archive.write(chunk)
        total_s = time.perf_counter() - started
        done.set()
        watcher.join()
        size = archive.tell()
        archive.seek(0)
        with zipfile.ZipFile(archive) as zipped:
            manifest_count = json.loads(zipped.read("manifest.json"))["count"]
            entries = len(zipped.infolist())
    connection.close()
    growth = max(peak[pid] - before[pid] for pid in pids)
    return {"head_s": head_s, "first_byte_s": first_byte_s, "total_s": total_s, "mb": size / 1e6,
            "count": manifest_count, "entries": entries, "rss_before": max(before.values()), "rss_growth": growth}


# -- concurrent submissions and SIGKILL -----------------------------------------------------

def post(connection, path: str, body: dict) -> tuple[int, dict]:
    connection.request("POST", path, body=json.dumps(body), headers={"Content-Type": "application/json"})
    response = connection.getresponse()
    return response.status, json.loads(response.read() or b"{}")


def submissions(port: int, drawings: list[str], clients: int, path: str = "/labels",
                stop: threading.Event | None = None, acknowledged: dict | None = None) -> tuple[float, dict, list]:
    """Each client sends its share of `drawings` back to back; returns (seconds, {id: label}, failures)."""
    acknowledged = {} if acknowledged is None else acknowledged
    failures = []
    barrier = threading.Barrier(clients)

    def client(number: int):
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        barrier.wait()
        for n in range(number, len(drawings), clients):
            if stop is not None and stop.is_set():
                return
            try:
                status, body = post(connection, path, {"image": drawings[n], "label": n % 10})
            except (OSError, http.client.HTTPException) as exc:
                failures.append(repr(exc))
                return
            if status == (201 if path == "/labels" else 200):
                if path == "/labels":
                    acknowledged[body["id"]] = n % 10
            else:
                failures.append(f"{status} {body}")

    threads = [threading.Thread(target=client, args=(c,)) for c in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return time.perf_counter() - started, acknowledged, failures


def store_consistency(labels_dir: Path, database_url: str | None) -> tuple[dict, int, int]:
    """({id: label} of whole samples, rows without a whole image, image files no row names)."""
    store = LabelStore(labels_dir, database_url)
    try:
        rows = {record.id: record for record in store.iter_samples()}
        broken = 0
        for record in rows.values():
            try:
                broken += hashlib.sha256(record.png_path.read_bytes()).hexdigest() != record.sha256
            except FileNotFoundError:
                broken += 1
        files = {p.stem for p in (labels_dir / "images").glob("*/*.png")}
        return {i: r.label for i, r in rows.items()}, broken, len(files - set(rows))
    finally:
        store.close()


def sweep_now(server: Server) -> None:
    subprocess.run([sys.executable, "-m", "digit_recognition", "labels", "sweep", "--grace-seconds", "0"],
                   cwd=REPO_ROOT, env=server.env, check=True, capture_output=True)


def concurrency_and_crash(name: str, scratch: Path, new_database, drawings: list[str]) -> None:
    """`new_database()` gives a fresh database's URL (None: SQLite in the labels dir) per run."""
    database_url = new_database()
    labels_dir = scratch / f"{name}-load"
    server = Server(labels_dir, scratch / f"{name}-load.log", database_url)
    server.start()
    try:
        predict_s, _, predict_failures = submissions(server.port, drawings, 50, path="/predict")
        seconds, acknowledged, failures = submissions(server.port, drawings, 50)
    finally:
        server.stop()
    stored, broken, unreferenced = store_consistency(labels_dir, database_url)
    exact = stored == acknowledged and len(stored) == len(drawings)
    print(f"{name:>10}: 50 clients x 20 submissions: {len(acknowledged)} acknowledged, {len(stored)} stored "
          f"({'exactly ' + str(len(drawings)) if exact else 'MISMATCH'}), {len(failures)} failures, "
          f"{broken} rows without a whole image; {len(drawings) / seconds:.0f} submissions/s "
          f"(baseline POST /predict, same drawings: {len(drawings) / predict_s:.0f}/s, "
          f"{len(predict_failures)} failures)")

    database_url = new_database()
    labels_dir = scratch / f"{name}-crash"
    server = Server(labels_dir, scratch / f"{name}-crash.log", database_url)
    server.start()
    acknowledged, stop = {}, threading.Event()
    loader = threading.Thread(target=submissions, args=(server.port, drawings, 12),
                              kwargs={"stop": stop, "acknowledged": acknowledged})
    loader.start()
    deadline = time.monotonic() + 120
    while len(acknowledged) < 200 and time.monotonic() < deadline:
        time.sleep(0.01)
    at_kill = len(acknowledged)
    server.kill()
    stop.set()
    loader.join()
    stored, broken, unreferenced = store_consistency(labels_dir, database_url)
    missing = [i for i in acknowledged if i not in stored]
    server.start()
    try:
        sweep_now(server)
        _, after_broken, after_unreferenced = store_consistency(labels_dir, database_url)
        listed = json.loads(get(server.port, "/labels?limit=1")[1])["total"]
    finally:
        server.stop()
    print(f"{name:>10}: SIGKILL after {at_kill} acknowledged ({len(acknowledged)} in all): "
          f"{len(missing)} acknowledged missing, {broken} rows without their image, {unreferenced} "
          f"unreferenced images before the sweep, {after_unreferenced} after; {listed} listed after restart "
          f"({after_broken} broken)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, default=100_000)
    parser.add_argument("--skip-postgres", action="store_true")
    parser.add_argument("--skip-scale", action="store_true", help="only the load and crash runs")
    parser.add_argument("--skip-load", action="store_true", help="only the N-sample runs")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="label-scale-") as scratch_name:
        scratch = Path(scratch_name)
        if not args.skip_scale:
            old = scratch / "old"
            started = time.perf_counter()
            write_old_layout(old, args.samples)
            generated_s = time.perf_counter() - started
            big = LabelStore(scratch / "big")
            started = time.perf_counter()
            report = import_folder(big, old)
            import_s = time.perf_counter() - started
            big.close()
            print(f"generated {args.samples} old-layout samples in {generated_s:.0f} s; imported {report.imported} "
                  f"in {import_s:.0f} s ({args.samples / import_s:.0f}/s)")

            results = {}
            for name, labels_dir in (("empty", scratch / "empty"), (f"{args.samples}", scratch / "big")):
                server = Server(labels_dir, scratch / f"{name}.log")
                try:
                    up_s = server.start()
                    results[name] = {
                        "up_s": up_s,
                        "healthz": p50_ms(server.port, "/healthz"),
                        "list": p50_ms(server.port, "/labels?limit=50"),
                        "filtered": p50_ms(server.port, "/labels?label=3&disagreed=1&limit=50"),
                        "deep": p50_ms(server.port, f"/labels?limit=50&offset={max(0, args.samples - 50)}", 10),
                    }
                    if name != "empty":
                        results[name]["export"] = measure_export(server)
                finally:
                    server.stop()
            empty, full = results["empty"], results[f"{args.samples}"]
            print(f"both workers serving: empty store {empty['up_s']:.1f} s, {args.samples} samples "
                  f"{full['up_s']:.1f} s (difference {full['up_s'] - empty['up_s']:+.1f} s)")
            for key, label in (("list", "GET /labels?limit=50"),
                               ("filtered", "GET /labels?label=3&disagreed=1&limit=50"),
                               ("deep", "GET /labels?limit=50 at the last page")):
                print(f"{label} p50: {full[key]:.1f} ms with {args.samples} samples "
                      f"(empty store {empty[key]:.1f} ms; GET /healthz {full['healthz']:.1f} ms)")
            export = full["export"]
            print(f"export of {export['count']} samples ({export['entries']} zip entries, {export['mb']:.0f} MB): "
                  f"first byte {export['first_byte_s'] * 1000:.0f} ms, whole {export['total_s']:.1f} s; "
                  f"worker RSS {export['rss_before']:.0f} MiB before, +{export['rss_growth']:.0f} MiB at most; "
                  f"HEAD {export['head_s'] * 1000:.0f} ms")

        if args.skip_load:
            return
        drawings = [data_url(digit_png(n % 10, seed=n)) for n in range(1000)]
        concurrency_and_crash("SQLite", scratch, lambda: None, drawings)
        if not args.skip_postgres:
            if find_postgres_bin() is None:
                print("PostgreSQL: not installed (apt-get install postgresql); skipped")
            else:
                with running_postgres(durable=True) as postgres:
                    concurrency_and_crash("PostgreSQL", scratch, lambda: postgres.create_database("bench"), drawings)


if __name__ == "__main__":
    main()
