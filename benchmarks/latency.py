"""Latency of /predict over HTTP on loopback, and of inference in process.

Prints p50/p99 for:
  - POST /predict, one client, then 8 concurrent clients, against the server
    started with the Dockerfile's CMD (gunicorn) - or `--url` of a running one;
  - in-process: preprocessing alone; the compiled inference call the server
    uses (DigitClassifier); and `model.predict()` as the baseline, same model,
    same inputs, same run.

    python benchmarks/latency.py [--requests 500] [--url URL]
"""
from __future__ import annotations

import argparse
import base64
import contextlib
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import requests

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from benchmarks.container_command import (  # noqa: E402
    run_container_command, stage_image_files, wait_for_status,
)
from digit_recognition.datasets import load_pen_digits  # noqa: E402
from digit_recognition.model import DigitClassifier  # noqa: E402
from digit_recognition.preprocessing import preprocess_drawing  # noqa: E402
from digit_recognition.strokes import CanvasParams, render_strokes, to_png_bytes  # noqa: E402
from flask_app.config import DEFAULT_MODEL_PATH  # noqa: E402


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


def sample_drawings(pen_path: str, count: int = 20):
    """Typical page drawings: white ink on a transparent 280 px canvas."""
    digits = load_pen_digits(pen_path)[:count]
    params = CanvasParams(280, 0.7, 0.0, 0.0, 0.065, "white_on_transparent")
    return [to_png_bytes(render_strokes(d.strokes, params)) for d in digits]


def http_latency(url, payloads, clients, requests_per_client):
    results, errors = [], []
    lock = threading.Lock()

    def client(index):
        session = requests.Session()
        local = []
        for i in range(requests_per_client):
            body = payloads[(index + i) % len(payloads)]
            started = time.perf_counter()
            response = session.post(f"{url}/predict", json=body)
            local.append(time.perf_counter() - started)
            if response.status_code != 200:
                errors.append(response.status_code)
        with lock:
            results.extend(local)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - started
    return results, errors, len(results) / wall


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pen-digits-path", default=os.environ.get(
        "PEN_DIGITS_PATH", str(REPO_ROOT.parent / "shared" / "data" / "pen_digits_dev.jsonl.gz")))
    parser.add_argument("--model-path", default=os.environ.get("MODEL_PATH", str(DEFAULT_MODEL_PATH)))
    parser.add_argument("--requests", type=int, default=500, help="requests per scenario")
    parser.add_argument("--url", help="measure a server already running here")
    args = parser.parse_args()

    pngs = sample_drawings(args.pen_digits_path)
    payloads = [{"image": "data:image/png;base64," + base64.b64encode(p).decode()} for p in pngs]

    print("== in process ==")
    classifier = DigitClassifier.load(args.model_path)
    digit_images = [preprocess_drawing(p) for p in pngs]
    one = digit_images[0][None]
    for _ in range(20):
        classifier.predict_probabilities(one)
        classifier.model.predict(one[..., None], verbose=0)
    print(f"preprocess_drawing (280 px PNG)   {percentiles(timed(lambda: preprocess_drawing(pngs[0]), args.requests))}")
    print(f"compiled call (what /predict uses) {percentiles(timed(lambda: classifier.predict_probabilities(one), args.requests))}")
    print(f"model.predict() (baseline)         {percentiles(timed(lambda: classifier.model.predict(one[..., None], verbose=0), max(50, args.requests // 5)))}")

    with contextlib.ExitStack() as stack:
        url = args.url
        if not url:
            scratch = Path(stack.enter_context(tempfile.TemporaryDirectory()))
            workdir = stage_image_files(scratch / "app")  # what the image's COPY lines take
            (scratch / "labels").mkdir()
            container = stack.enter_context(run_container_command(
                workdir, scratch / "server.log", MODEL_PATH=str(Path(args.model_path).resolve()),
                LABELS_DIR=str(scratch / "labels"), LOG_LEVEL="WARNING"))
            wait_for_status(container.port, "/readyz", container.process)
            url = container.url
            print(f"\n== HTTP, server: the Dockerfile's CMD on {url} ==")
        else:
            print(f"\n== HTTP, server: {url} ==")
        http_latency(url, payloads, 2, 20)  # warm every worker
        for clients in (1, 8):
            per_client = max(1, args.requests // clients)
            samples, errors, rps = http_latency(url, payloads, clients, per_client)
            print(f"POST /predict, {clients} client{'s' if clients > 1 else ' '}   {percentiles(samples)}   "
                  f"{rps:6.0f} req/s   errors {len(errors)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
