"""Cold start and memory of the service as the Docker image runs it.

Cold start: from the moment the Dockerfile's CMD is started (gunicorn via
/bin/sh, from a folder holding exactly the files the image's COPY lines take,
only the image's packages importable) to the first 200 from GET /readyz (the
model runs and the labels folder is writable). The request is sent as soon as
the port accepts connections; gunicorn's master binds the port before the
workers are ready, so the request waits in the listen queue and is answered by
the first worker ready: no polling interval is counted. Target: <= 1.0 s, and
<= 0.3x the baseline.

Baseline, measured in the same run, alternating with the runs above: a fresh
interpreter doing nothing but `import tensorflow` (the floor of any server
that imports TensorFlow, as this one did before it served with LiteRT).
`--compare-no-preload` adds the same CMD with gunicorn's preload switched off
(each worker builds the app after the fork), to show what preloading buys.

Wall-clock times depend on what else the machine runs; beside each one is the
CPU time behind it (user + system, from /proc and getrusage), which does not:
for the server, the master's plus that of the worker that answered. On an idle
machine with a core per worker the wall-clock time comes close to it.

Memory: each worker's resident memory after warm-up and after a load of 8
concurrent clients, from /proc: VmRSS (resident now), VmHWM (peak), RssAnon
(the worker's own heap: what one more worker costs) and Pss (shared pages
divided among the processes sharing them; the master's included in the total).

    python benchmarks/cold_start.py [--runs 5] [--load-seconds 10] [--compare-no-preload]
"""
from __future__ import annotations

import argparse
import http.client
import json
import os
import resource
import shutil
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
TARGET_S = 1.0
TARGET_RATIO = 0.3


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


def answering_worker_cpu(container, path: str = "/readyz") -> float:
    """CPU seconds of the master plus the worker that logged the first `path`."""
    for line in container.log_lines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if entry.get("logger") == "flask_app.request" and entry.get("path") == path:
            return cpu_seconds(container.process.pid) + cpu_seconds(entry["pid"])
    raise RuntimeError(f"no {path} line in the log")


def first_ready(port: int, process, started: float, timeout: float = 120.0) -> float:
    """Seconds from `started` to the first 200 from /readyz."""
    while time.perf_counter() - started < timeout:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited with status {process.returncode}")
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
        try:
            connection.request("GET", "/readyz")
            response = connection.getresponse()
            response.read()
            if response.status == 200:
                return time.perf_counter() - started
            raise RuntimeError(f"/readyz answered {response.status}")
        except ConnectionRefusedError:
            time.sleep(0.005)  # the master has not bound the port yet
        finally:
            connection.close()
    raise TimeoutError(f"no answer from /readyz within {timeout} s")


def memory_line(label: str, workers: list[dict], master: dict) -> str:
    def mib(kib):
        return f"{kib / 1024:.0f}"
    per_worker = "; ".join(f"RSS {mib(m['VmRSS'])}, peak {mib(m['VmHWM'])}, own {mib(m['RssAnon'])}"
                           for m in workers)
    total_pss = sum(m["Pss"] for m in workers) + master["Pss"]
    return (f"{label:<22} per worker MiB: {per_worker}\n{'':<22} master RSS {mib(master['VmRSS'])} MiB; "
            f"all processes PSS {mib(total_pss)} MiB")


def stage_without_preload(workdir: Path, destination: Path) -> Path:
    """A copy of the staged image whose gunicorn.conf.py switches preload off."""
    shutil.copytree(workdir, destination)
    conf = destination / "gunicorn.conf.py"
    conf.write_text(conf.read_text(encoding="utf-8") + "\npreload_app = False  # benchmarks/cold_start.py\n",
                    encoding="utf-8")
    return destination


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--load-seconds", type=float, default=10.0)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--compare-no-preload", action="store_true")
    parser.add_argument("--pen-digits-path", default=os.environ.get("PEN_DIGITS_PATH", str(DEFAULT_PEN)))
    args = parser.parse_args()

    spec = parse_dockerfile()
    drawings = pen_drawing_pngs(args.pen_digits_path, per_label=2)
    bodies = [predict_body(png) for _, png in drawings]
    print(f"CPUs: {os.cpu_count()}   Dockerfile CMD: {spec.cmd}")
    variants = ["CMD"] + (["CMD, no preload"] if args.compare_no_preload else [])
    print(f"{'run':>4} " + " ".join(f"{v + ' to /readyz 200 (CPU)':>34}" for v in variants)
          + f" {'baseline: import tensorflow (CPU)':>36} {'load average':>13}")
    cold = {v: [] for v in variants}
    cold_cpu = {v: [] for v in variants}
    baseline, baseline_cpu = [], []
    with tempfile.TemporaryDirectory() as scratch_name:
        scratch = Path(scratch_name)
        workdirs = {"CMD": stage_image_files(scratch / "app", spec)}
        if args.compare_no_preload:
            workdirs["CMD, no preload"] = stage_without_preload(workdirs["CMD"], scratch / "app-no-preload")
        # The baseline's interpreter may import TensorFlow (requirements.txt); the server's may not.
        training_guard = write_import_guard(scratch / "training-guard", REPO_ROOT / "requirements.txt")
        for run in range(1, args.runs + 1):
            wall, cpu = time_import_tensorflow(spec, training_guard)
            baseline.append(wall)
            baseline_cpu.append(cpu)
            for variant in variants:
                labels = scratch / f"labels-{run}-{len(cold[variant])}-{variants.index(variant)}"
                labels.mkdir()
                started = time.perf_counter()
                with run_container_command(workdirs[variant], scratch / f"log-{run}-{variants.index(variant)}.txt",
                                           spec=spec, LABELS_DIR=str(labels),
                                           LOG_LEVEL="DEBUG", PREDICT_RATE_LIMIT="off") as container:  # /readyz: DEBUG
                    cold[variant].append(first_ready(container.port, container.process, started))
                    cold_cpu[variant].append(answering_worker_cpu(container))
                    if run == args.runs and variant == "CMD":  # memory, on the last run
                        # Warm-up: a few requests take every worker past first-call costs.
                        post_load(container.port, "/predict", bodies, args.clients, 2.0)
                        warm = [memory_kib(pid) for pid in container.worker_pids()]
                        warm_master = memory_kib(container.process.pid)
                        result = post_load(container.port, "/predict", bodies, args.clients, args.load_seconds)
                        loaded = [memory_kib(pid) for pid in container.worker_pids()]
                        loaded_master = memory_kib(container.process.pid)
                    exit_status = container.stop()
                    if exit_status != 0:
                        print(f"     exit status after SIGTERM: {exit_status}")
            print(f"{run:>4} " + " ".join(f"{cold[v][-1]:>21.2f} s ({cold_cpu[v][-1]:5.2f} s)" for v in variants)
                  + f" {baseline[-1]:>23.2f} s ({baseline_cpu[-1]:5.2f} s) {os.getloadavg()[0]:>13.2f}",
                  flush=True)
    base, base_cpu = statistics.median(baseline), statistics.median(baseline_cpu)
    print(f"\nmedian import tensorflow (baseline): {base:.2f} s wall, {base_cpu:.2f} s CPU")
    for variant in variants:
        median, median_cpu = statistics.median(cold[variant]), statistics.median(cold_cpu[variant])
        print(f"median cold start, {variant}: {median:.2f} s wall (min {min(cold[variant]):.2f}, "
              f"max {max(cold[variant]):.2f}), {median_cpu:.2f} s CPU; "
              f"{median / base:.2f}x the baseline's wall, {median_cpu / base_cpu:.2f}x its CPU")
    median, median_cpu = statistics.median(cold["CMD"]), statistics.median(cold_cpu["CMD"])
    print(f"targets (CMD): <= {TARGET_S:.1f} s: wall {'met' if median <= TARGET_S else 'NOT met'}, "
          f"CPU {'met' if median_cpu <= TARGET_S else 'NOT met'}; <= {TARGET_RATIO}x import tensorflow: "
          f"wall {'met' if median <= TARGET_RATIO * base else 'NOT met'}, "
          f"CPU {'met' if median_cpu <= TARGET_RATIO * base_cpu else 'NOT met'}")
    print()
    print(memory_line("after warm-up", warm, warm_master))
    print(memory_line(f"after {args.load_seconds:.0f} s x {args.clients} clients", loaded, loaded_master))
    print(f"{'':<22} ({result.requests} requests, {result.rps:.0f} req/s, errors {result.errors})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
