"""Hold under load and bad input (issue 7): the service as the Dockerfile runs it.

Starts the Dockerfile's CMD (gunicorn; testing_support/container_command.py lays
out the image's files and environment without Docker) with
LABELS_RATE_LIMIT=off and a temporary LABELS_DIR, then, against that one
server:

  1. the bad-input battery (testing_support/bad_inputs.py): every case must get
     its status, and the server must still answer /healthz;
  2. POST /predict with page-sized pen drawings: 1 client (the baseline), then
     8 and 32 concurrent clients, `--seconds` each: requests/s, p50/p99, and
     the errors (expected: none);
  3. 50 concurrent label submitters x 20 drawings each: every answer 201 and
     exactly 1000 whole samples on disk (PNG decodes, sidecar JSON matches,
     nothing else in the store: no temp files, no strays);
  4. the largest accepted drawings (2000x2000 canvases, the pixel limit) from
     as many clients as the server has threads: the worst case for memory.

After each stage it prints every worker's resident memory now (VmRSS) and
its peak so far (VmHWM).

    python benchmarks/load_test.py [--seconds 60] [--cmd "gunicorn ..."]
        [--pen-digits-path PATH]

`--cmd` replaces the Dockerfile's CMD (it must bind `--bind :$PORT`). The
load generator shares the machine's CPUs with the server; compare figures of
one run, on one machine.
"""
from __future__ import annotations

import argparse
import base64
import hashlib
import http.client
import io
import json
import re
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from PIL import Image  # noqa: E402

from testing_support.bad_inputs import battery  # noqa: E402
from benchmarks.choose_workers import warm_every_worker  # noqa: E402
from testing_support.container_command import (  # noqa: E402
    memory_kib, parse_dockerfile, pen_drawing_pngs, predict_body, run_container_command,
    stage_image_files, wait_for_status,
)
from benchmarks.http_load import post_load  # noqa: E402
from digit_recognition.label_store import LabelStore  # noqa: E402

DEFAULT_PEN = REPO_ROOT.parent / "shared" / "data" / "pen_digits_dev.jsonl.gz"
LARGEST_CANVAS = 2000  # 4 megapixels: the default MAX_IMAGE_PIXELS


def post(port: int, path: str, body: bytes, content_type: str = "application/json",
         connection: http.client.HTTPConnection | None = None) -> tuple[int, bytes]:
    own = connection is None
    connection = connection or http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    try:
        connection.request("POST", path, body=body, headers={"Content-Type": content_type})
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        if own:
            connection.close()


def get_status(port: int, path: str) -> int:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        response.read()
        return response.status
    finally:
        connection.close()


class MemoryLog:
    """VmRSS / VmHWM of each worker after each stage, printed as a table at the end."""

    def __init__(self, server):
        self.server = server
        self.rows: list[tuple[str, list[tuple[int, dict]]]] = []

    def record(self, stage: str) -> None:
        workers = [(pid, memory_kib(pid)) for pid in self.server.worker_pids()]
        self.rows.append((stage, workers))
        print(f"   memory after {stage}: " + ", ".join(
            f"worker {pid}: RSS {m['VmRSS'] / 1024:.0f} MiB, peak {m['VmHWM'] / 1024:.0f} MiB"
            for pid, m in workers))

    def table(self) -> str:
        lines = [f"{'after':28} {'worker':>8} {'VmRSS MiB':>10} {'VmHWM MiB':>10}"]
        for stage, workers in self.rows:
            for pid, m in workers:
                lines.append(f"{stage:28} {pid:>8} {m['VmRSS'] / 1024:>10.0f} {m['VmHWM'] / 1024:>10.0f}")
        return "\n".join(lines)


def run_battery(port: int) -> int:
    """Every bad-input case once; the number of wrong answers (status or a dead server)."""
    wrong = 0
    print(f"   {'endpoint':9} {'case':38} {'want':>4} {'got':>4} {'ms':>7}")
    for case in battery():
        payload = case.payload()
        started = time.perf_counter()
        try:
            status, _ = post(port, case.endpoint, payload.body, payload.content_type)
        except (OSError, http.client.HTTPException) as exc:
            status = f"{type(exc).__name__}"
        elapsed_ms = (time.perf_counter() - started) * 1000
        healthy = get_status(port, "/healthz") == 200
        ok = status == case.expected and healthy
        wrong += not ok
        print(f"   {case.endpoint:9} {case.name[:38]:38} {case.expected:>4} {status!s:>4} {elapsed_ms:7.1f}"
              + ("" if ok else "   <-- WRONG" + ("" if healthy else " (/healthz failed)")))
    return wrong


def report_load(name: str, result) -> None:
    statuses = ", ".join(f"{status}: {n}" for status, n in sorted(result.statuses.items()))
    print(f"   {name:22} {result.requests:6d} requests in {result.seconds:5.1f} s = {result.rps:6.1f} req/s"
          f"   p50 {result.percentile_ms(50):7.1f} ms   p99 {result.percentile_ms(99):7.1f} ms"
          f"   errors {result.errors} ({statuses}; connection errors {result.connection_errors})")


def submit_labels(port: int, drawings: list[tuple[int, bytes]], submitters: int, each: int):
    """`submitters` threads x `each` POST /labels at once; [(status, label, id or None)]."""
    outcomes: list[tuple[int, int, str | None]] = []
    lock = threading.Lock()
    start = threading.Barrier(submitters)

    def submitter(index: int) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        mine = []
        start.wait()
        for k in range(each):
            label, png = drawings[(index * each + k) % len(drawings)]
            body = json.dumps({"image": "data:image/png;base64," + base64.b64encode(png).decode("ascii"),
                               "label": label}).encode()
            try:
                status, answer = post(port, "/labels", body, connection=connection)
                sample_id = json.loads(answer).get("id") if status == 201 else None
            except (OSError, http.client.HTTPException):
                status, sample_id = 0, None
                connection.close()
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
            mine.append((status, label, sample_id))
        connection.close()
        with lock:
            outcomes.extend(mine)

    threads = [threading.Thread(target=submitter, args=(i,)) for i in range(submitters)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return outcomes


def verify_store(labels_dir: Path, expected: dict[str, int]) -> list[str]:
    """Problems with the store, given {id: label} of every sample it must hold."""
    problems = []
    store = LabelStore(labels_dir)
    try:
        records = {record.id: record for record in store.iter_samples()}
    finally:
        store.close()
    if set(records) != set(expected):
        problems.append(f"{len(set(expected) - set(records))} submitted samples missing, "
                        f"{len(set(records) - set(expected))} unexpected samples")
    for path in sorted((labels_dir / "images").glob("*/*")):
        if path.stem not in records:
            problems.append(f"stray file {path.relative_to(labels_dir).as_posix()}")
    for sample_id, label in expected.items():
        record = records.get(sample_id)
        if record is None:
            continue
        try:
            png = record.png_path.read_bytes()
            with Image.open(io.BytesIO(png)) as image:
                image.load()
                size = image.size
        except (OSError, ValueError) as exc:
            problems.append(f"{sample_id}: not whole ({exc})")
            continue
        if record.label != label:
            problems.append(f"{sample_id}: stored with label {record.label}, submitted as {label}")
        if (record.width, record.height) != size or hashlib.sha256(png).hexdigest() != record.sha256:
            problems.append(f"{sample_id}: metadata size or checksum differs from the PNG's")
    return problems


def largest_drawings(drawings: list[tuple[int, bytes]], count: int = 4) -> list[bytes]:
    """Page drawings scaled up to the largest canvas the server accepts."""
    bodies = []
    for _, png in drawings[:count]:
        with Image.open(io.BytesIO(png)) as image:
            big = image.resize((LARGEST_CANVAS, LARGEST_CANVAS), Image.Resampling.BILINEAR)
        buffer = io.BytesIO()
        big.save(buffer, format="PNG")
        bodies.append(predict_body(buffer.getvalue()))
    return bodies


def server_threads(cmd: str) -> int:
    workers = re.search(r"--workers[ =](\d+)", cmd)
    threads = re.search(r"--threads[ =](\d+)", cmd)
    return (int(workers.group(1)) if workers else 1) * (int(threads.group(1)) if threads else 1)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=60.0, help="per /predict load stage")
    parser.add_argument("--cmd", help="run this instead of the Dockerfile's CMD")
    parser.add_argument("--pen-digits-path", default=str(DEFAULT_PEN))
    parser.add_argument("--submitters", type=int, default=50)
    parser.add_argument("--per-submitter", type=int, default=20)
    parser.add_argument("--large-seconds", type=float, default=15.0)
    args = parser.parse_args()

    spec = parse_dockerfile()
    if args.cmd:
        spec.cmd = args.cmd
    if not spec.cmd:
        parser.error("the Dockerfile has no CMD; pass --cmd")
    drawings = pen_drawing_pngs(args.pen_digits_path, per_label=10)
    bodies = [predict_body(png) for _, png in drawings]
    failures: list[str] = []

    with tempfile.TemporaryDirectory() as scratch_name:
        scratch = Path(scratch_name)
        workdir = stage_image_files(scratch / "app", spec)
        labels_dir = scratch / "labels"
        labels_dir.mkdir()
        with run_container_command(workdir, scratch / "server.log", spec=spec,
                                   LABELS_RATE_LIMIT="off", PREDICT_RATE_LIMIT="off",
                                   LABELS_DIR=str(labels_dir)) as server:
            print(f"server: {spec.cmd}")
            wait_for_status(server.port, "/readyz", server.process)
            workers = len(server.worker_pids())
            warm_every_worker(server, bodies, workers, clients=8)
            memory = MemoryLog(server)
            memory.record("start and warm-up")

            print("\n1. bad-input battery")
            wrong = run_battery(server.port)
            print(f"   {wrong} wrong answers")
            if wrong:
                failures.append(f"battery: {wrong} wrong answers")
            memory.record("the battery")

            print(f"\n2. POST /predict, page-sized pen drawings, {args.seconds:.0f} s per stage")
            for clients in (1, 8, 32):
                result = post_load(server.port, "/predict", bodies, clients, args.seconds)
                report_load(f"{clients} client{'s' if clients > 1 else ''}"
                            + (" (baseline)" if clients == 1 else ""), result)
                if result.errors:
                    failures.append(f"/predict with {clients} clients: {result.errors} errors")
            memory.record("the /predict load")

            print(f"\n3. {args.submitters} label submitters x {args.per_submitter} each, at once")
            store = LabelStore(labels_dir)
            earlier = {r.id: r.label for r in store.iter_samples()}  # the battery's valid submissions
            store.close()
            started = time.perf_counter()
            outcomes = submit_labels(server.port, drawings, args.submitters, args.per_submitter)
            elapsed = time.perf_counter() - started
            statuses: dict[int, int] = {}
            for status, _, _ in outcomes:
                statuses[status] = statuses.get(status, 0) + 1
            submitted = {sample_id: label for status, label, sample_id in outcomes if status == 201}
            # The battery's valid submissions are in the store too; they must stay whole as well.
            problems = verify_store(labels_dir, {**earlier, **submitted})
            total = args.submitters * args.per_submitter
            # The same drawing under the same label is stored once (the store's duplicate rule).
            distinct = len({drawings[i % len(drawings)] for i in range(total)})
            print(f"   {len(outcomes)} answers in {elapsed:.1f} s ({len(outcomes) / elapsed:.1f}/s): {statuses}")
            print(f"   whole samples stored: {len(set(submitted) - set(earlier))} new for {distinct} distinct "
                  f"drawings in {total} submissions (plus {len(earlier)} from the battery); "
                  f"problems: {len(problems)}")
            for problem in problems[:10]:
                print(f"     {problem}")
            if statuses != {201: total} or len(submitted) != distinct or problems:
                failures.append("label submissions: not exactly every sample stored whole")
            memory.record("the label submissions")

            threads = server_threads(spec.cmd)
            print(f"\n4. largest drawings ({LARGEST_CANVAS}x{LARGEST_CANVAS}), {threads} clients "
                  f"(the server's workers x threads), {args.large_seconds:.0f} s")
            result = post_load(server.port, "/predict", largest_drawings(drawings), threads,
                               args.large_seconds)
            report_load(f"{threads} clients", result)
            if result.errors:
                failures.append(f"largest drawings: {result.errors} errors")
            memory.record("the largest drawings")

            print("\nworker memory")
            print(memory.table())
            exit_status = server.stop()
            print(f"\nserver stopped with SIGTERM: exit status {exit_status}")

    print("\nRESULT: " + ("all held" if not failures else "FAILED: " + "; ".join(failures)))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
