"""Latency of /predict over HTTP on loopback, and of inference in process.

Prints p50/p99 for:
  - POST /predict, one client, then 8 concurrent clients (closed loop, kept-alive
    connections), against the server started with the Dockerfile's CMD (gunicorn);
  - in-process: preprocessing alone; the compiled inference call the server
    uses (DigitClassifier); and `model.predict()` as the baseline, same model,
    same inputs, same run.

    python benchmarks/latency.py [--requests 500] [--seconds 15]
"""
from __future__ import annotations

import argparse
import base64
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from testing_support.container_command import (  # noqa: E402
    run_container_command, stage_image_files, wait_for_status,
)
from benchmarks.http_load import post_load  # noqa: E402
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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pen-digits-path", default=os.environ.get(
        "PEN_DIGITS_PATH", str(REPO_ROOT.parent / "shared" / "data" / "pen_digits_dev.jsonl.gz")))
    parser.add_argument("--model-path", default=os.environ.get("MODEL_PATH", str(DEFAULT_MODEL_PATH)))
    parser.add_argument("--requests", type=int, default=500, help="calls per in-process scenario")
    parser.add_argument("--seconds", type=float, default=15.0, help="duration of each HTTP scenario")
    args = parser.parse_args()

    pngs = sample_drawings(args.pen_digits_path)
    bodies = [json.dumps({"image": "data:image/png;base64," + base64.b64encode(p).decode()}).encode()
              for p in pngs]

    print("== in process ==")
    classifier = DigitClassifier.load(args.model_path)
    digit_images = [preprocess_drawing(p) for p in pngs]
    one = digit_images[0][None]
    for _ in range(20):
        classifier.predict_probabilities(one)
        classifier.model.predict(one[..., None], verbose=0)
    print(f"preprocess_drawing (280 px PNG)   {percentiles(timed(lambda: preprocess_drawing(pngs[0]), args.requests))}")
    compiled = timed(lambda: classifier.predict_probabilities(one), args.requests)
    print(f"compiled call (what /predict uses) {percentiles(compiled)}")
    baseline = timed(lambda: classifier.model.predict(one[..., None], verbose=0), max(50, args.requests // 5))
    print(f"model.predict() (baseline)         {percentiles(baseline)}")

    with tempfile.TemporaryDirectory() as scratch_dir:
        scratch = Path(scratch_dir)
        workdir = stage_image_files(scratch / "app")  # what the image's COPY lines take
        (scratch / "labels").mkdir()
        with run_container_command(workdir, scratch / "server.log",
                                   MODEL_PATH=str(Path(args.model_path).resolve()),
                                   LABELS_DIR=str(scratch / "labels"), LOG_LEVEL="WARNING",
                                   PREDICT_RATE_LIMIT="off") as server:
            wait_for_status(server.port, "/readyz", server.process)
            print(f"\n== HTTP: POST /predict, server: the Dockerfile's CMD on {server.url}, "
                  f"{args.seconds:.0f} s per row ==")
            post_load(server.port, "/predict", bodies, 4, 3.0)  # warm every worker and thread
            for clients in (1, 8):
                result = post_load(server.port, "/predict", bodies, clients, args.seconds)
                print(f"{clients} client{'s' if clients > 1 else ' '}   "
                      f"{percentiles(result.latencies_s)}   {result.rps:6.0f} req/s   errors {result.errors}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
