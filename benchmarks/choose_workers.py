"""Which gunicorn workers x threads (and worker class) to put in the Dockerfile's CMD.

Starts the Dockerfile's CMD (testing_support/container_command.py) once per
configuration, with only --workers and --threads changed (and --worker-class,
when a configuration names one: `2x4:gthread`; otherwise gunicorn.conf.py's),
and warms every worker. Then, in rounds, puts 8 concurrent clients on POST /predict of each
configuration in turn, with page-sized pen drawings (white ink on a
transparent 280 px canvas, as the page sends them). Interleaving the rounds
spreads whatever else the machine is doing over all configurations alike.

Prints per configuration: throughput, latency percentiles, errors, the
server's CPU time per request (user + system of all its processes: a figure
other load on the machine does not change, unlike the ones before it), and
each worker's memory. The baseline, measured in the same run, is 1 worker x 1
thread: one request at a time per instance.

    python benchmarks/choose_workers.py [--configs 1x1,1x4,1x8,2x2,2x4,2x8,3x4,2x4:gthread]
        [--clients 8] [--seconds 5] [--rounds 3] [--pen-digits-path PATH]

The load generator runs on the same machine and shares its CPUs, as every
configuration's does; compare rows of one run, not runs on other machines.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from testing_support.container_command import (  # noqa: E402
    cpu_seconds, memory_kib, parse_dockerfile, pen_drawing_pngs, predict_body, run_container_command,
    stage_image_files, wait_for_status,
)
from benchmarks.http_load import LoadResult, post_load  # noqa: E402

DEFAULT_PEN = REPO_ROOT.parent / "shared" / "data" / "pen_digits_dev.jsonl.gz"


def serving_pids(log_lines) -> set[int]:
    """The pids that have logged an answered /predict."""
    pids = set()
    for line in log_lines:
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if entry.get("logger") == "flask_app.request" and entry.get("path") == "/predict":
            pids.add(entry["pid"])
    return pids


def warm_every_worker(container, bodies, workers: int, clients: int, timeout: float = 300.0) -> None:
    """Send load until each worker has answered a /predict, then a little more."""
    started = time.perf_counter()
    while time.perf_counter() - started < timeout:
        post_load(container.port, "/predict", bodies, clients, 1.0)
        if len(serving_pids(container.log_lines()) & set(container.worker_pids())) >= workers:
            post_load(container.port, "/predict", bodies, clients, 2.0)  # past first-call costs
            return
    raise TimeoutError(f"not every one of {workers} workers answered within {timeout} s")


def parse_config(text: str) -> tuple[int, int, str | None]:
    """"2x4" -> (2, 4, None: gunicorn.conf.py's worker class); "2x4:gthread" -> (2, 4, "gthread")."""
    shape, _, worker_class = text.strip().partition(":")
    workers, threads = (int(n) for n in shape.split("x"))
    return workers, threads, worker_class or None


def name(config) -> str:
    workers, threads, worker_class = config
    return f"{workers} x {threads}" + (f" {worker_class}" if worker_class else "")


def server_cpu(container) -> float:
    return sum(cpu_seconds(pid) for pid in [container.process.pid, *container.worker_pids()])


def mib(kib: float) -> str:
    return f"{kib / 1024:.0f}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--configs", default="1x1,1x4,1x8,2x2,2x4,2x8,3x4",
                        help="WORKERSxTHREADS[:WORKER_CLASS], comma-separated; the first is the baseline")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=5.0, help="per configuration per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--pen-digits-path", default=os.environ.get("PEN_DIGITS_PATH", str(DEFAULT_PEN)))
    args = parser.parse_args()

    configs = [parse_config(c) for c in args.configs.split(",")]
    bodies = [predict_body(png) for _, png in pen_drawing_pngs(args.pen_digits_path, per_label=2)]
    spec = parse_dockerfile()
    print(f"CPUs: {os.cpu_count()}   clients: {args.clients}   {args.rounds} rounds x {args.seconds:.0f} s "
          f"per configuration   payload: {len(bodies)} drawings, mean "
          f"{statistics.mean(map(len, bodies)) / 1024:.1f} KiB")
    print(f"Dockerfile CMD: {spec.cmd}")
    with tempfile.TemporaryDirectory() as scratch_name, contextlib.ExitStack() as stack:
        scratch = Path(scratch_name)
        workdir = stage_image_files(scratch / "app", spec)
        servers = {}
        for config in configs:  # all started at once; only one is under load at a time
            workers, threads, worker_class = config
            tag = f"{workers}x{threads}-{worker_class or 'default'}"
            labels = scratch / f"labels-{tag}"
            labels.mkdir()
            servers[config] = stack.enter_context(run_container_command(
                workdir, scratch / f"log-{tag}.txt", spec=spec, workers=workers, threads=threads,
                worker_class=worker_class, LABELS_DIR=str(labels), PREDICT_RATE_LIMIT="off"))
        for (workers, _threads, _class), container in servers.items():
            wait_for_status(container.port, "/readyz", container.process, timeout=600)
            warm_every_worker(container, bodies, workers, args.clients)
        print(f"load average before: {os.getloadavg()[0]:.2f}\n")

        results = {config: LoadResult(args.clients, 0.0) for config in configs}
        cpu_used = {config: 0.0 for config in configs}
        rounds = {config: [] for config in configs}
        for _ in range(args.rounds):
            for config, container in servers.items():
                cpu_before = server_cpu(container)
                result = post_load(container.port, "/predict", bodies, args.clients, args.seconds)
                cpu_used[config] += server_cpu(container) - cpu_before
                total = results[config]
                total.latencies_s += result.latencies_s
                total.seconds += result.seconds
                total.connection_errors += result.connection_errors
                for status, n in result.statuses.items():
                    total.statuses[status] = total.statuses.get(status, 0) + n
                rounds[config].append(result.rps)
        load_after = os.getloadavg()[0]

        print(f"{'workers x threads':>25} {'req/s':>7} {'(per round)':>20} {'p50 ms':>7} {'p90 ms':>7} "
              f"{'p99 ms':>7} {'errors':>6} {'CPU ms/req':>10}   per worker MiB: RSS / peak / own (anon)")
        for config, container in servers.items():
            r = results[config]
            memory = [memory_kib(pid) for pid in container.worker_pids()]
            per_worker = ", ".join(f"{mib(m['VmRSS'])}/{mib(m['VmHWM'])}/{mib(m['RssAnon'])}" for m in memory)
            per_round = "/".join(f"{rps:.0f}" for rps in rounds[config])
            print(f"{name(config):>25} {r.rps:7.1f} {per_round:>20} {r.percentile_ms(50):7.1f} "
                  f"{r.percentile_ms(90):7.1f} {r.percentile_ms(99):7.1f} {r.errors:6d} "
                  f"{1000 * cpu_used[config] / max(1, r.requests):10.2f}   {per_worker}")
        print(f"load average after: {load_after:.2f}")
        baseline = results[configs[0]]
        print(f"\nbaseline {name(configs[0])}: {baseline.rps:.1f} req/s; "
              + "; ".join(f"{name(c)}: {results[c].rps / baseline.rps:.2f}x" for c in configs[1:]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
