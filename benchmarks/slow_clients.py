"""Normal /predict latency while slow clients hold connections open.

A slow-header ("slowloris") client opens a connection, sends the start of a
request, then one more header line every few seconds, never finishing it. A
server that gives each connection a thread from the moment it arrives runs out
of threads after a handful of them, and every normal request waits.

Runs the Dockerfile's CMD (testing_support/container_command.py) once per worker
arrangement: first the baseline, gunicorn's threaded worker (`--worker-class
gthread`, what the CMD ran before), then the CMD as it stands. For each:
normal /predict latency with no slow clients, then with `--slow` slow-header
connections open (each reopened as soon as the server closes it, as an
attacker would). A request unanswered after `--request-timeout` seconds counts
as a failure and as that timeout in the percentiles.

    python benchmarks/slow_clients.py [--slow 20] [--clients 2] [--seconds 4] [--rounds 2]
        [--line-interval 5] [--request-timeout 5] [--pen-digits-path PATH]
"""
from __future__ import annotations

import argparse
import contextlib
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from testing_support.slow_clients import SlowHeaderClients, timed_predicts  # noqa: E402
from testing_support.container_command import (  # noqa: E402
    cpu_seconds, parse_dockerfile, pen_drawing_pngs, predict_body, run_container_command, stage_image_files,
    wait_for_status,
)

DEFAULT_PEN = REPO_ROOT.parent / "shared" / "data" / "pen_digits_dev.jsonl.gz"
BASELINE_WORKER_CLASS = "gthread"


def summary(latencies: list[float], failures: int) -> str:
    ms = np.asarray(latencies) * 1000.0
    return (f"{len(ms):5d} req  {failures:4d} failed  p50 {np.percentile(ms, 50):7.0f} ms  "
            f"p99 {np.percentile(ms, 99):7.0f} ms")


def command_with(spec, extra_args: str):
    """The spec with `extra_args` before the app (command-line settings win over gunicorn.conf.py)."""
    if not extra_args:
        return spec
    return type(spec)(**{**spec.__dict__,
                         "cmd": spec.cmd.replace(" flask_app.app:app", f" {extra_args} flask_app.app:app")})


def server_cpu(container) -> float:
    """CPU seconds used so far by the server's master and workers."""
    return sum(cpu_seconds(pid) for pid in [container.process.pid, *container.worker_pids()])


def measure_rounds(servers: dict, bodies: list[bytes], args) -> None:
    """Both arrangements run at once; rounds alternate between them, so that
    whatever else the machine does falls on both alike."""
    rows: dict = {(name, kind): ([], 0) for name in servers for kind in ("quiet", "slow")}
    cpu = {name: 0.0 for name in servers}  # server CPU seconds during its no-slow-clients rounds

    def add(key, result):
        latencies, failures = rows[key]
        rows[key] = (latencies + result[0], failures + result[1])

    for _ in range(args.rounds):
        for name, container in servers.items():
            before = server_cpu(container)
            add((name, "quiet"), timed_predicts(container.port, bodies, args.clients, args.seconds,
                                                args.request_timeout))
            cpu[name] += server_cpu(container) - before
        for name, container in servers.items():
            with SlowHeaderClients(container.port, args.slow, args.line_interval):
                time.sleep(1.0)  # let them connect and take what they can
                add((name, "slow"), timed_predicts(container.port, bodies, args.clients, args.seconds,
                                                   args.request_timeout))
    for name in servers:
        latencies, failures = rows[(name, "quiet")]
        print(f"{name:28s} no slow clients:        {summary(latencies, failures)}  "
              f"server CPU {1000.0 * cpu[name] / max(1, len(latencies)):.1f} ms/req")
        print(f"{name:28s} {args.slow} slow-header clients: {summary(*rows[(name, 'slow')])}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--slow", type=int, default=20)
    parser.add_argument("--clients", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--line-interval", type=float, default=5.0)
    parser.add_argument("--request-timeout", type=float, default=5.0)
    parser.add_argument("--pen-digits-path", default=str(DEFAULT_PEN))
    args = parser.parse_args()

    spec = parse_dockerfile()
    bodies = [predict_body(png) for _, png in pen_drawing_pngs(args.pen_digits_path, per_label=1)]
    print(f"CMD: {spec.cmd}")
    arrangements = {f"baseline ({BASELINE_WORKER_CLASS})": f"--worker-class {BASELINE_WORKER_CLASS}",
                    "Dockerfile CMD as it stands": ""}
    with tempfile.TemporaryDirectory() as tmp, contextlib.ExitStack() as stack:
        scratch = Path(tmp)
        workdir = stage_image_files(scratch / "app", spec)
        servers = {}
        for index, (name, extra_args) in enumerate(arrangements.items()):
            servers[name] = stack.enter_context(run_container_command(
                workdir, scratch / f"server{index}.log", spec=command_with(spec, extra_args),
                LABELS_DIR=str(scratch / f"labels{index}"), LOG_LEVEL="WARNING", PREDICT_RATE_LIMIT="off"))
        for container in servers.values():
            wait_for_status(container.port, "/readyz", container.process, timeout=300)
            timed_predicts(container.port, bodies, args.clients, 2.0, 30.0)  # warm every worker
        measure_rounds(servers, bodies, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
