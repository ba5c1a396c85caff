"""Accuracy on real pen drawings, through the real server, beside a naive baseline.

Renders every digit of the pen set (default: the writer groups the shipped
model never trained on) as a browser canvas would - canvas 280-504 px, digit
height 30-85% of it, centre up to 15% off, round-capped strokes 3.5-9% of the
canvas wide - in four styles, posts each PNG to /predict of the real app on
loopback, and prints accuracy overall, per style, per digit and per writer
group. The baseline column is what the same model gets from the same PNG when
the drawing is only resized to 28x28 (the app this project follows), computed
in the same run.

    python benchmarks/pen_accuracy.py [--pen-digits-path P] [--groups ced,imp] [--url URL]
        [--backend auto|litert|keras]

`--backend` serves the model through that inference backend (INFERENCE_BACKEND),
so the figures can be compared between LiteRT and Keras.
"""
from __future__ import annotations

import argparse
import base64
import io
import json
import os
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import requests
from PIL import Image

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from testing_support.loopback_server import serve_app  # noqa: E402
from digit_recognition.datasets import load_pen_digits  # noqa: E402
from digit_recognition.model import DigitClassifier  # noqa: E402
from digit_recognition.strokes import STYLES, random_canvas_params, render_strokes, to_png_bytes  # noqa: E402
from flask_app.config import DEFAULT_MODEL_PATH  # noqa: E402
from digit_recognition.model_files import metadata_path_for  # noqa: E402


def naive_resize(png: bytes) -> np.ndarray:
    """The baseline: greyscale, resize to 28x28, scale to [0, 1]. Nothing more."""
    image = Image.open(io.BytesIO(png)).convert("L").resize((28, 28), Image.Resampling.BILINEAR)
    return np.asarray(image, dtype=np.float32) / 255.0


def table(title, rows, keys):
    print(f"\n{title}")
    print(f"  {'':<22}{'n':>6}{'app':>9}{'baseline':>10}")
    for key in keys:
        n, ok, base = rows[key]
        if n:
            name = key[1] if isinstance(key, tuple) else key
            print(f"  {str(name):<22}{n:>6}{ok / n:>9.2%}{base / n:>10.2%}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pen-digits-path", default=os.environ.get(
        "PEN_DIGITS_PATH", str(REPO_ROOT.parent / "shared" / "data" / "pen_digits_dev.jsonl.gz")))
    parser.add_argument("--model-path", default=os.environ.get("MODEL_PATH", str(DEFAULT_MODEL_PATH)))
    parser.add_argument("--groups", help="comma-separated writer groups (default: the model's held-out groups)")
    parser.add_argument("--url", help="measure a server already running here instead of starting one")
    parser.add_argument("--limit", type=int, help="at most this many digits (quick runs)")
    parser.add_argument("--seed", type=int, default=12345)
    parser.add_argument("--backend", default="auto", choices=("auto", "litert", "keras"),
                        help="INFERENCE_BACKEND of the server started here (default: %(default)s)")
    args = parser.parse_args()

    metadata_file = metadata_path_for(args.model_path)
    metadata = json.loads(metadata_file.read_text()) if metadata_file.exists() else {}
    trained_groups = set()
    for source in metadata.get("data", []):
        if source.get("name") == "pen_digits":
            trained_groups = {"syn", "app", "apa", "ced", "imp"} - set(source.get("holdout_groups", []))
    digits = load_pen_digits(args.pen_digits_path)
    if args.groups:
        groups = set(args.groups.split(","))
    else:
        groups = {d.writer_group for d in digits} - trained_groups
    digits = [d for d in digits if d.writer_group in groups]
    if args.limit:
        digits = digits[:args.limit]
    leaked = groups & trained_groups
    print(f"model: {args.model_path} ({metadata.get('model_version', '?')})")
    print(f"writer groups measured: {sorted(groups)}"
          + (f"  WARNING: the model trained on {sorted(leaked)}" if leaked else "  (none trained on)"))
    print(f"digits: {len(digits)} x {len(STYLES)} styles = {len(digits) * len(STYLES)} drawings")

    classifier = DigitClassifier.load(args.model_path)
    rng = np.random.default_rng(args.seed)
    by = defaultdict(lambda: [0, 0, 0])  # key -> [n, app correct, baseline correct]
    mistakes = defaultdict(int)
    started = time.perf_counter()

    def run(url):
        session = requests.Session()
        for digit in digits:
            for style in STYLES:
                png = to_png_bytes(render_strokes(digit.strokes, random_canvas_params(rng, style=style)))
                response = session.post(f"{url}/predict",
                                        json={"image": "data:image/png;base64," + base64.b64encode(png).decode()})
                response.raise_for_status()
                predicted = response.json()["digit"]
                baseline = int(classifier.predict_probabilities(naive_resize(png)[None]).argmax())
                for key in ("overall", ("style", style), ("digit", digit.label), ("group", digit.writer_group)):
                    row = by[key]
                    row[0] += 1
                    row[1] += predicted == digit.label
                    row[2] += baseline == digit.label
                if predicted != digit.label:
                    mistakes[(digit.label, predicted)] += 1

    if args.url:
        run(args.url.rstrip("/"))
    else:
        with serve_app(MODEL_PATH=args.model_path, INFERENCE_BACKEND=args.backend) as (url, app):
            print(f"served through: {app.extensions['recognizer'].classifier.backend}")
            run(url)
    elapsed = time.perf_counter() - started

    table("accuracy (app = POST /predict; baseline = plain resize to 28x28, same model)",
          by, ["overall"])
    table("per style", by, [("style", s) for s in STYLES])
    table("per digit", by, [("digit", d) for d in range(10)])
    table("per writer group", by, [("group", g) for g in sorted(groups)])
    worst = sorted(mistakes.items(), key=lambda kv: -kv[1])[:8]
    print("\nmost frequent mistakes (true -> predicted: count): "
          + ", ".join(f"{t}->{p}: {c}" for (t, p), c in worst))
    n = by["overall"][0]
    print(f"\n{n} drawings in {elapsed:.0f} s")
    per_style = min(by[("style", s)][1] / by[("style", s)][0] for s in STYLES)
    per_digit = min(by[("digit", d)][1] / by[("digit", d)][0] for d in range(10) if by[("digit", d)][0])
    print(f"overall {by['overall'][1] / n:.2%}; worst style {per_style:.2%}; worst digit {per_digit:.2%}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
