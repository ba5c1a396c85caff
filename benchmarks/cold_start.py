"""Cold start and memory of the service as the Docker image runs it.

Cold start: from the moment the Dockerfile's CMD is started (gunicorn via
/bin/sh, from a folder holding exactly the files the image's COPY lines take)
to the first 200 from POST /predict with a real drawing. The request is sent
as soon as the port accepts connections; gunicorn's master binds the port
before the workers load TensorFlow, so the request waits in the listen queue
and is answered by the first worker ready: no polling interval is counted.
Target: <= 6 s on the 2-core development machine.

Baseline, measured in the same run, alternating with the runs above: a fresh
interpreter doing nothing but `import tensorflow` (the floor no
configuration of this app can go under).

Wall-clock times depend on what else the machine runs; beside each one is the
CPU time behind it (user + system, from /proc and getrusage), which does not:
for the server, the master's plus that of the worker that answered. On an idle
machine with a core per worker the wall-clock time comes close to it.

Memory: each worker's resident memory after warm-up and after a load of 8
concurrent clients, from /proc: VmRSS (resident now), VmHWM (peak), RssAnon
(the worker's own heap: what one more worker costs) and Pss (shared pages
divided among the processes sharing them; the master's included in the total).

    python benchmarks/cold_start.py [--runs 5] [--load-seconds 10] [--pen-digits-path PATH]
"""
from __future__ import annotations

import argparse
import http.client
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from testing_support.container_command import (  # noqa: E402
    container_environment, cpu_seconds, memory_kib, parse_dockerfile, pen_drawing_pngs, predict_body,
    run_container_command, stage_image_files, write_import_guard,
)
from benchmarks.http_load import post_load  # noqa: E402

DEFAULT_PEN = REPO_ROOT.parent / "shared" / "data" / "pen_digits_dev.jsonl.gz"
TARGET_S = 6.0


def time_import_tensorflow(spec, import_guard: Path) -> tuple[float, float]:
    """(wall, CPU) seconds for a fresh interpreter, in the image's environment, to import TensorFlow."""
    env = container_environment(spec, 0, import_guard)
    cpu_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import tensorflow"], env=env, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wall = time.perf_counter() - started
    cpu_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (cpu_after.ru_utime + cpu_after.ru_stime) - (cpu_before.ru_utime + cpu_before.ru_stime)


def answering_worker_cpu(container) -> float:
    """CPU seconds of the master plus the worker that logged the first /predict."""
    for line in container.log_lines():
        entry = json.loads(line)
        if entry.get("logger") == "flask_app.request" and entry.get("path") == "/predict":
            return cpu_seconds(container.process.pid) + cpu_seconds(entry["pid"])
    raise RuntimeError("no /predict line in the log")


def first_predict(port: int, body: bytes, process, started: float, timeout: float = 120.0) -> float:
    """Seconds from `started` to the first 200 from /predict."""
    while time.perf_counter() - started < timeout:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited with status {process.returncode}")
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
        try:
            connection.request("POST", "/predict", body=body, headers={"Content-Type": "application/json"})
            response = connection.getresponse()
            response.read()
            if response.status == 200:
                return time.perf_counter() - started
            raise RuntimeError(f"/predict answered {response.status}")
        except ConnectionRefusedError:
            time.sleep(0.005)  # the master has not bound the port yet
        finally:
            connection.close()
    raise TimeoutError(f"no answer from /predict within {timeout} s")


def memory_line(label: str, workers: list[dict], master: dict) -> str:
    def mib(kib):
        return f"{kib / 1024:.0f}"
    per_worker = "; ".join(f"RSS {mib(m['VmRSS'])}, peak {mib(m['VmHWM'])}, own {mib(m['RssAnon'])}"
                           for m in workers)
    total_pss = sum(m["Pss"] for m in workers) + master["Pss"]
    return (f"{label:<22} per worker MiB: {per_worker}\n{'':<22} master RSS {mib(master['VmRSS'])} MiB; "
            f"all processes PSS {mib(total_pss)} MiB")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--load-seconds", type=float, default=10.0)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--pen-digits-path", default=os.environ.get("PEN_DIGITS_PATH", str(DEFAULT_PEN)))
    args = parser.parse_args()

    spec = parse_dockerfile()
    drawings = pen_drawing_pngs(args.pen_digits_path, per_label=2)
    bodies = [predict_body(png) for _, png in drawings]
    print(f"CPUs: {os.cpu_count()}   Dockerfile CMD: {spec.cmd}")
    print(f"{'run':>4} {'CMD to first /predict 200 (CPU)':>34} {'baseline: import tensorflow (CPU)':>36}"
          f" {'load average':>13}")
    cold, cold_cpu, baseline, baseline_cpu = [], [], [], []
    with tempfile.TemporaryDirectory() as scratch_name:
        scratch = Path(scratch_name)
        workdir = stage_image_files(scratch / "app", spec)
        guard = write_import_guard(scratch / "import-guard")
        for run in range(1, args.runs + 1):
            wall, cpu = time_import_tensorflow(spec, guard)
            baseline.append(wall)
            baseline_cpu.append(cpu)
            labels = scratch / f"labels-{run}"
            labels.mkdir()
            started = time.perf_counter()
            with run_container_command(workdir, scratch / f"log-{run}.txt", spec=spec,
                                       LABELS_DIR=str(labels)) as container:
                cold.append(first_predict(container.port, bodies[0], container.process, started))
                cold_cpu.append(answering_worker_cpu(container))
                print(f"{run:>4} {cold[-1]:>21.2f} s ({cold_cpu[-1]:5.2f} s) {baseline[-1]:>23.2f} s "
                      f"({baseline_cpu[-1]:5.2f} s) {os.getloadavg()[0]:>13.2f}", flush=True)
                if run == args.runs:  # memory, on the last run
                    # Warm-up: every worker loads its model at start; a few
                    # requests each take them past first-call costs.
                    post_load(container.port, "/predict", bodies, args.clients, 2.0)
                    warm = [memory_kib(pid) for pid in container.worker_pids()]
                    warm_master = memory_kib(container.process.pid)
                    result = post_load(container.port, "/predict", bodies, args.clients, args.load_seconds)
                    loaded = [memory_kib(pid) for pid in container.worker_pids()]
                    loaded_master = memory_kib(container.process.pid)
                exit_status = container.stop()
                if exit_status != 0:
                    print(f"     exit status after SIGTERM: {exit_status}")
    median, median_cpu = statistics.median(cold), statistics.median(cold_cpu)
    print(f"\nmedian cold start {median:.2f} s wall (min {min(cold):.2f}, max {max(cold):.2f}), "
          f"{median_cpu:.2f} s CPU; target <= {TARGET_S:.0f} s: wall {'met' if median <= TARGET_S else 'NOT met'}, "
          f"CPU {'met' if median_cpu <= TARGET_S else 'NOT met'}")
    print(f"median import tensorflow {statistics.median(baseline):.2f} s wall, "
          f"{statistics.median(baseline_cpu):.2f} s CPU; the app adds "
          f"{median_cpu - statistics.median(baseline_cpu):.2f} s CPU (gunicorn, model load, app, first request)")
    print()
    print(memory_line("after warm-up", warm, warm_master))
    print(memory_line(f"after {args.load_seconds:.0f} s x {args.clients} clients", loaded, loaded_master))
    print(f"{'':<22} ({result.requests} requests, {result.rps:.0f} req/s, errors {result.errors})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
