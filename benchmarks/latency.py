"""Latency of /predict over HTTP on loopback, and of inference in process.

Prints p50/p99 for:
  - in process: preprocessing (the 8-bit fast path the server uses, beside the
    whole-canvas float path it replaced); the model through LiteRT (what the
    server runs), through Keras' traced graph (what it ran before), and
    `model.predict()` as the baseline, same model, same inputs, same run;
  - POST /predict, one client, then 8 concurrent clients (closed loop, kept-alive
    connections), against the Dockerfile's CMD (LiteRT, only the image's
    packages importable) and two baselines: the same code with the Keras
    backend under the CMD the image ran before (TensorFlow, gthread 2 workers
    x 4 threads, requirements.txt's packages importable), and the server as
    it was when the LiteRT issue was filed (commit FILED_COMMIT: its own code,
    model, gunicorn.conf.py and CMD; --baseline-commit serves other commits
    the same way, e.g. the one before a change to the request path). All
    servers run as deployed (request lines logged, rate limiter checked) and
    run throughout; rounds alternate between them so other load on the
    machine hits all alike. Beside each
    row, the servers' own CPU time per request, which other load on the
    machine changes far less than the wall-clock figures.

    python benchmarks/latency.py [--requests 500] [--seconds 10] [--rounds 2] [--baseline-commit 9ae05df ...]
        [--canvas wide]   # one digit on the page's 700x280 number canvas (default: a 280 px square)
"""
from __future__ import annotations

import argparse
import base64
import contextlib
import io
import json
import os
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from testing_support.container_command import (  # noqa: E402
    cpu_seconds, parse_dockerfile, run_container_command, stage_image_files, wait_for_status,
)
from benchmarks.http_load import LoadResult, post_load  # noqa: E402
from digit_recognition.datasets import HELD_OUT_WRITER_GROUPS, load_pen_digits  # noqa: E402
from testing_support.number_drawings import render_number  # noqa: E402
from digit_recognition.imaging import decode_drawing  # noqa: E402
from digit_recognition.inference import KerasClassifier, LiteRTClassifier  # noqa: E402
from digit_recognition.model_files import tflite_path_for  # noqa: E402
from digit_recognition.preprocessing import preprocess_drawing, preprocess_rgba  # noqa: E402
from digit_recognition.strokes import CanvasParams, render_strokes, to_png_bytes  # noqa: E402
from flask_app.config import DEFAULT_MODEL_PATH  # noqa: E402


# The last commit before LiteRT serving (c7f4736): the server the issue's
# "today's Keras-served" figures describe.
FILED_COMMIT = "9ae05df"
WIDE_CANVAS_HEIGHT = 280  # x 2.5: the number canvas on a desktop page
NOW = "LiteRT (Dockerfile CMD)"
SAME_CODE_KERAS = "Keras backend, this code, gthread 2x4"


def as_at(commit: str) -> str:
    return f"Keras-served when filed ({commit})" if commit == FILED_COMMIT else f"as at {commit}"


def percentiles(samples_s):
    ms = np.asarray(samples_s) * 1000.0
    return f"p50 {np.percentile(ms, 50):7.2f} ms   p99 {np.percentile(ms, 99):7.2f} ms   (n={len(ms)})"


def timed(fn, repeat):
    out = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        out.append(time.perf_counter() - started)
    return out


def sample_drawings(pen_path: str, count: int = 20, params: CanvasParams | None = None):
    """Typical page drawings: white ink on a transparent 280 px canvas (or as `params` says)."""
    digits = load_pen_digits(pen_path)[:count]
    params = params or CanvasParams(280, 0.7, 0.0, 0.0, 0.065, "white_on_transparent")
    return [to_png_bytes(render_strokes(d.strokes, params)) for d in digits]


def wide_canvas_drawings(pen_path: str, count: int = 40, height: int = WIDE_CANVAS_HEIGHT):
    """One digit each as today's page sends it: written on the wide number canvas
    (2.5:1, here 700x280), white ink on transparent, the page's brush; the pen
    digits of the writers training never saw, in the file's order, so some are
    several strokes and some as wide as tall (the share real drawings have)."""
    rng = np.random.default_rng(0)
    digits = [d for d in load_pen_digits(pen_path) if d.writer_group in HELD_OUT_WRITER_GROUPS][:count]
    return [to_png_bytes(render_number([d], rng, canvas_height=height, style="white_on_transparent").image)
            for d in digits]


def server_cpu(server) -> float:
    """CPU seconds used so far by the server's processes (master and workers):
    unlike wall-clock figures, not changed by other load on the machine."""
    return sum(cpu_seconds(pid) for pid in [server.process.pid, *server.worker_pids()])


def merge(total: LoadResult, result: LoadResult) -> None:
    total.latencies_s += result.latencies_s
    total.seconds += result.seconds
    total.connection_errors += result.connection_errors
    for status, n in result.statuses.items():
        total.statuses[status] = total.statuses.get(status, 0) + n


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pen-digits-path", default=os.environ.get(
        "PEN_DIGITS_PATH", str(REPO_ROOT.parent / "shared" / "data" / "pen_digits_dev.jsonl.gz")))
    parser.add_argument("--model-path", default=os.environ.get("MODEL_PATH", str(DEFAULT_MODEL_PATH)))
    parser.add_argument("--requests", type=int, default=500, help="calls per in-process scenario")
    parser.add_argument("--seconds", type=float, default=10.0, help="per HTTP scenario per round")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--in-process-only", action="store_true", help="skip the HTTP part")
    parser.add_argument("--canvas", choices=("square", "wide"), default="square",
                        help="square: one narrow stroke on a 280 px canvas, as the page drew when the LiteRT "
                             "issue was filed; wide: one digit on today's 700x280 number canvas")
    parser.add_argument("--baseline-commit", action="append",
                        help=f"also serve this commit's code as it was deployed, with its own CMD and "
                             f"requirements.txt (repeatable; default {FILED_COMMIT}, the server when the "
                             f"LiteRT issue was filed; 'none': no such baseline)")
    args = parser.parse_args()

    pngs = sample_drawings(args.pen_digits_path) if args.canvas == "square" \
        else wide_canvas_drawings(args.pen_digits_path)
    print(f"drawings: {len(pngs)}, {args.canvas} canvas")
    bodies = [json.dumps({"image": "data:image/png;base64," + base64.b64encode(p).decode()}).encode()
              for p in pngs]

    print(f"== in process (load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs) ==")
    litert = LiteRTClassifier.load(tflite_path_for(args.model_path))
    keras_backend = KerasClassifier(args.model_path)
    digit_images = [preprocess_drawing(p) for p in pngs]
    one = digit_images[0][None]
    for _ in range(20):
        litert.predict_probabilities(one)
        keras_backend.predict_probabilities(one)
        keras_backend.model.predict(one[..., None], verbose=0)
    figures = {}
    opaque = sample_drawings(args.pen_digits_path, 1, CanvasParams(504, 0.7, 0.0, 0.0, 0.065, "black_on_white"))[0]
    for name, fn, repeat in (
            ("preprocess_drawing (280 px PNG)", lambda: preprocess_drawing(pngs[0]), args.requests),
            ("  before: whole canvas as floats", lambda: preprocess_rgba(decode_drawing(pngs[0])), args.requests),
            ("preprocess_drawing (504 px opaque)", lambda: preprocess_drawing(opaque), args.requests),
            ("  before: whole canvas as floats", lambda: preprocess_rgba(decode_drawing(opaque)), args.requests),
            ("LiteRT call (what /predict runs)", lambda: litert.predict_probabilities(one), args.requests),
            ("Keras traced graph (before)", lambda: keras_backend.predict_probabilities(one), args.requests),
            ("model.predict() (baseline)", lambda: keras_backend.model.predict(one[..., None], verbose=0),
             max(50, args.requests // 5))):
        samples = timed(fn, repeat)
        figures[name] = float(np.percentile(samples, 50))
        print(f"{name:<36} {percentiles(samples)}")

    if args.in_process_only:
        return 0
    with tempfile.TemporaryDirectory() as scratch_dir, contextlib.ExitStack() as stack:
        scratch = Path(scratch_dir)
        model_path = str(Path(args.model_path).resolve())
        # As deployed: request lines logged at INFO, the rate limiter checked on
        # every request (its limit set out of reach of a benchmark's one client).
        deployed = {"LOG_LEVEL": "INFO", "PREDICT_RATE_LIMIT": "1000000 per minute"}
        workdir = stage_image_files(scratch / "app")  # what the image's COPY lines take
        servers = {
            NOW: stack.enter_context(run_container_command(
                workdir, scratch / "litert.log", MODEL_PATH=model_path,
                LABELS_DIR=str(scratch / "labels-litert"), **deployed)),
            # The same code, only the backend changed: what LiteRT itself buys.
            SAME_CODE_KERAS: stack.enter_context(run_container_command(
                workdir, scratch / "keras.log", workers=2, threads=4, worker_class="gthread",
                requirements_file=REPO_ROOT / "requirements.txt", INFERENCE_BACKEND="keras",
                MODEL_PATH=model_path, LABELS_DIR=str(scratch / "labels-keras"), **deployed)),
        }
        for commit in args.baseline_commit or [FILED_COMMIT]:
            if commit == "none":
                continue
            # The server as it was at `commit`: its own code, model, gunicorn
            # settings and CMD (at FILED_COMMIT: Keras, gthread 2 x 4).
            context = checkout(commit, scratch / f"at-{commit}")
            spec = parse_dockerfile(context / "Dockerfile")
            servers[as_at(commit)] = stack.enter_context(run_container_command(
                stage_image_files(scratch / f"app-at-{commit}", spec, context), scratch / f"at-{commit}.log",
                spec=spec, requirements_file=context / "requirements.txt",
                LABELS_DIR=str(scratch / f"labels-at-{commit}"), **deployed))
        for server in servers.values():
            wait_for_status(server.port, "/readyz", server.process, timeout=300)
            post_load(server.port, "/predict", bodies, 8, 3.0)  # warm every worker and thread
        results = {(name, clients): LoadResult(clients, 0.0) for name in servers for clients in (1, 8)}
        cpu_used = {key: 0.0 for key in results}
        for _ in range(args.rounds):
            for clients in (1, 8):
                for name, server in servers.items():
                    cpu_before = server_cpu(server)
                    merge(results[(name, clients)], post_load(server.port, "/predict", bodies, clients,
                                                              args.seconds))
                    cpu_used[(name, clients)] += server_cpu(server) - cpu_before
        # Reported before the servers stop: a slow stop must not lose the figures.
        print(f"\n== HTTP: POST /predict, {args.rounds} rounds x {args.seconds:.0f} s per row, "
              f"alternating (load average {os.getloadavg()[0]:.1f}) ==")
        for (name, clients), result in results.items():
            print(f"{name:<34} {clients} client{'s' if clients > 1 else ' '}   {percentiles(result.latencies_s)}"
                  f"   {result.rps:6.0f} req/s   errors {result.errors}   server CPU "
                  f"{1000 * cpu_used[(name, clients)] / max(1, result.requests):.2f} ms/req")

        now_1, now_8 = results[(NOW, 1)], results[(NOW, 8)]
        p50 = float(np.percentile(now_1.latencies_s, 50))
        print("\n== against the targets ==")
        print(f"POST /predict 1 client p50 {p50 * 1000:.2f} ms = "
              f"{p50 / figures['model.predict() (baseline)']:.3f}x model.predict() p50 (target <= 0.05x)")
        for baseline in [name for name in servers if name != NOW]:
            base_1, base_8 = results[(baseline, 1)], results[(baseline, 8)]
            print(f"against {baseline}: 1 client p50 {p50 / float(np.percentile(base_1.latencies_s, 50)):.2f}x "
                  f"(target <= 0.5x); 8 clients {now_8.rps:.0f} req/s = {now_8.rps / base_8.rps:.2f}x its "
                  f"{base_8.rps:.0f} req/s (target >= 2x); p99 {now_8.percentile_ms(99):.1f} ms vs "
                  f"{base_8.percentile_ms(99):.1f} ms")
    return 0


def checkout(commit: str, destination: Path) -> Path:
    """The repository's files at `commit` (git archive), in `destination`."""
    destination.mkdir(parents=True)
    archive = subprocess.run(["git", "-C", str(REPO_ROOT), "archive", "--format=tar", commit],
                             check=True, capture_output=True).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(destination, filter="data")
    return destination

if __name__ == "__main__":
    raise SystemExit(main())
