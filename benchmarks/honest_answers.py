"""Honest answers on writers the model never saw: digits right, non-digits called so, calibrated.

Renders the pen digits and the not-a-digit pen characters (digit_recognition.non_digits'
list) of the writer groups the model never trained on or calibrated on, as page-like
canvas drawings, posts each PNG to /predict of the real app on loopback, and prints,
for the served model and a baseline model in the same run (default: v2, the last
ten-class model, read from git history):

- digits: accuracy (the answer's `digit` equals the label). Each digit is drawn
  three times: as on the page (15-85% of the canvas, any size the issue names,
  with the page's brush: 5% of the canvas height, 3.5-6.5% for other screens),
  which gives the overall, per-digit and per-group figures (and the overall one
  less the drawings listed as wrongly labelled, datasets.WRONGLY_LABELLED_PEN_DIGITS,
  which stay in every other figure); small (15-25% of the
  canvas, the same brush), reported on its own; and with thick pens (30-85%,
  brush 3.5-9%), wider than the page draws, reported on its own;
- non-digits: the share answered `not_a_digit`; and digits answered `not_a_digit`;
  synthetic shapes (scribbles, dots, dashes, ...) from a seed training never used;
- expected calibration error of the confidence the page shows for a digit;
- MNIST test accuracy (in process, the same reading rules);
- POST /predict latency, the two servers interleaved, one client.

    python benchmarks/honest_answers.py [--baseline-rev REV | --baseline-model PATH] [--limit N]
"""
from __future__ import annotations

import argparse
import base64
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import requests

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from testing_support.loopback_server import serve_app  # noqa: E402
from digit_recognition.calibration import expected_calibration_error  # noqa: E402
from digit_recognition.datasets import is_wrongly_labelled, load_mnist, load_pen_digits  # noqa: E402
from digit_recognition.non_digits import load_pen_chars, synthetic_non_digits  # noqa: E402
from digit_recognition.strokes import STYLES, CanvasParams, random_canvas_params, render_strokes, to_png_bytes  # noqa: E402
from flask_app.config import DEFAULT_MODEL_PATH  # noqa: E402

SHARED = REPO_ROOT.parent / "shared" / "data"
# The last ten-class model (v2), as shipped before the not-a-digit class.
DEFAULT_BASELINE_REV = "9ae05df"
# The page's brush is 5% of the canvas height (static/js/canvas.js); other
# screens and canvases give 3.5-6.5% of the square the digit is drawn in.
PAGE_BRUSH = (0.035, 0.065)
CONDITIONS = {
    "page": dict(digit_height_frac=(0.15, 0.85), stroke_width_frac=PAGE_BRUSH),
    "small": dict(digit_height_frac=(0.15, 0.25), stroke_width_frac=PAGE_BRUSH),
    "thick pens": dict(digit_height_frac=(0.30, 0.85), stroke_width_frac=(0.035, 0.09)),
}
SYNTHETIC_SEED = 987_654  # training drew its shapes from seed 0's stream


def baseline_model_file(rev: str, scratch: Path) -> Path:
    """The model (and its metadata) as committed at `rev`, written under `scratch`."""
    for suffix in (".keras", ".json"):
        blob = subprocess.run(["git", "-C", str(REPO_ROOT), "show", f"{rev}:flask_app/model/digit_cnn{suffix}"],
                              check=True, capture_output=True).stdout
        (scratch / f"baseline{suffix}").write_bytes(blob)
    return scratch / "baseline.keras"


def drawings(args, holdout_groups, rng):
    """[(kind, label, group, condition, listed_wrong, png)]: kind 'digit' | 'char' | 'shape'; label 10 =
    not a digit; listed_wrong: a pen digit listed in datasets.WRONGLY_LABELLED_PEN_DIGITS."""
    out = []
    styles = list(STYLES)
    digits = [d for d in load_pen_digits(args.pen_digits_path) if d.writer_group in holdout_groups]
    chars = [c for c in load_pen_chars(args.pen_chars_path) if c.writer_group in holdout_groups]
    if args.limit:
        digits = [digits[i] for i in rng.permutation(len(digits))[:args.limit]]
        chars = [chars[i] for i in rng.permutation(len(chars))[:args.limit]]
    for i, digit in enumerate(digits):
        for condition, ranges in CONDITIONS.items():
            params = random_canvas_params(rng, style=styles[i % 4], **ranges)
            out.append(("digit", digit.label, digit.writer_group, condition, is_wrongly_labelled(digit),
                        to_png_bytes(render_strokes(digit.strokes, params))))
    for i, char in enumerate(chars):
        params = random_canvas_params(rng, style=styles[i % 4], digit_height_frac=(0.15, 0.85),
                                      stroke_width_frac=(0.035, 0.09))
        out.append(("char", 10, char.writer_group, char.char, False,
                    to_png_bytes(render_strokes(char.strokes, params))))
    shape_rng = np.random.default_rng(SYNTHETIC_SEED)
    for i, (shape, strokes) in enumerate(synthetic_non_digits(shape_rng, args.shapes)):
        params = random_canvas_params(rng, style=styles[i % 4], digit_height_frac=(0.15, 0.85),
                                      stroke_width_frac=(0.035, 0.09))
        if shape in ("dot", "dash"):  # as small as a click or a dash really is
            params = CanvasParams(params.canvas_px, float(rng.uniform(0.05, 0.3)), params.offset_x_frac,
                                  params.offset_y_frac, params.stroke_width_frac, params.style, keep_box_scale=True)
        out.append(("shape", 10, "synthetic", shape, False, to_png_bytes(render_strokes(strokes, params))))
    return out


def ask(url: str, items, session) -> list[dict]:
    answers = []
    for *_, png in items:
        response = session.post(f"{url}/predict",
                                json={"image": "data:image/png;base64," + base64.b64encode(png).decode()})
        response.raise_for_status()
        answers.append(response.json())
    return answers


def figures(items, answers) -> dict:
    rows = defaultdict(lambda: [0, 0])  # key -> [n, hits]
    confidences, correct = [], []
    for (kind, label, group, condition, listed_wrong, _), answer in zip(items, answers, strict=True):
        called_not_digit = answer["verdict"] == "not_a_digit"
        if kind == "digit":
            hit = answer["digit"] == label
            rows[f"digits {condition}"][0] += 1
            rows[f"digits {condition}"][1] += hit
            if condition != "page":  # the overall figures are the page's
                continue
            keys = ("digits", f"digit {label}", f"group {group}")
            for key in keys if listed_wrong else (*keys, "digits labelled right"):
                rows[key][0] += 1
                rows[key][1] += hit
            rows["digits called not_a_digit"][0] += 1
            rows["digits called not_a_digit"][1] += called_not_digit
            if answer["probabilities"] is not None:
                probs = np.asarray(answer["probabilities"])
                confidences.append(probs.max())
                correct.append(int(probs.argmax()) == label)
        else:
            key = "non-digits (pen characters)" if kind == "char" else "non-digits (synthetic shapes)"
            for k in (key, f"{kind} {condition}"):
                rows[k][0] += 1
                rows[k][1] += called_not_digit
    result = {key: (hits / n, n) for key, (n, hits) in rows.items()}
    result["ece"] = (expected_calibration_error(np.asarray(confidences), np.asarray(correct)), len(confidences))
    return result


def mnist_figures(model_path: str, mnist_path: str) -> tuple[float, float]:
    """(argmax accuracy, answered-right accuracy) on the MNIST test set, read as the server reads."""
    from flask_app.recognizer import Recognizer

    recognizer = Recognizer(model_path, 4_000_000)
    (_, _), (x_test, y_test) = load_mnist(mnist_path)
    hits = argmax_hits = 0
    for start in range(0, len(x_test), 1000):
        batch = x_test[start:start + 1000]
        raw = recognizer.classifier.predict_probabilities(batch)
        argmax_hits += int((raw.argmax(axis=1) == y_test[start:start + 1000]).sum())
        for reading, label in zip(recognizer.read_digit_images(batch), y_test[start:start + 1000], strict=True):
            hits += reading.digit == label
    return argmax_hits / len(x_test), hits / len(x_test)


def latency(urls: dict, pngs: list[bytes], rounds: int) -> dict:
    """Median POST /predict time per server, the servers interleaved request by request."""
    sessions = {name: requests.Session() for name in urls}
    bodies = [json.dumps({"image": "data:image/png;base64," + base64.b64encode(p).decode()}) for p in pngs]
    times = defaultdict(list)
    for _ in range(rounds):
        for body in bodies:
            for name, url in urls.items():
                started = time.perf_counter()
                sessions[name].post(f"{url}/predict", data=body,
                                    headers={"Content-Type": "application/json"}).raise_for_status()
                times[name].append(time.perf_counter() - started)
    return {name: float(np.median(t) * 1000) for name, t in times.items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model-path", default=os.environ.get("MODEL_PATH", str(DEFAULT_MODEL_PATH)))
    parser.add_argument("--baseline-model", help="baseline model file (default: v2 from git, --baseline-rev)")
    parser.add_argument("--baseline-rev", default=DEFAULT_BASELINE_REV)
    parser.add_argument("--pen-digits-path", default=os.environ.get("PEN_DIGITS_PATH",
                                                                     str(SHARED / "pen_digits_dev.jsonl.gz")))
    parser.add_argument("--pen-chars-path", default=os.environ.get("PEN_CHARS_PATH",
                                                                    str(SHARED / "pen_chars_dev.jsonl.gz")))
    parser.add_argument("--mnist-path", default=os.environ.get("MNIST_PATH", str(SHARED / "mnist.npz")))
    parser.add_argument("--limit", type=int, help="at most N digits and N characters (quick runs)")
    parser.add_argument("--shapes", type=int, default=650, help="synthetic shapes to draw")
    parser.add_argument("--latency-rounds", type=int, default=10)
    parser.add_argument("--seed", type=int, default=2026)
    args = parser.parse_args()

    metadata = json.loads(Path(args.model_path).with_suffix(".json").read_text())
    holdout = set(metadata["training"]["holdout_groups"])
    unseen = holdout - set(metadata["training"].get("calibration_groups", []))
    with tempfile.TemporaryDirectory() as scratch:
        baseline = args.baseline_model or str(baseline_model_file(args.baseline_rev, Path(scratch)))
        models = {"served": args.model_path, "baseline": baseline}
        print(f"served model: {args.model_path} ({metadata['model_version']})")
        print(f"baseline model: {baseline}")
        print(f"writer groups measured (never trained on, never calibrated on): {sorted(unseen)}")
        items = drawings(args, unseen, np.random.default_rng(args.seed))
        print(f"drawings: {sum(i[0] == 'digit' for i in items)} digits, {sum(i[0] == 'char' for i in items)} "
              f"pen characters, {sum(i[0] == 'shape' for i in items)} synthetic shapes")
        results, urls, started = {}, {}, time.perf_counter()
        with serve_app(MODEL_PATH=models["served"]) as (served_url, _), \
                serve_app(MODEL_PATH=models["baseline"]) as (baseline_url, _):
            urls = {"served": served_url, "baseline": baseline_url}
            for name, url in urls.items():
                results[name] = figures(items, ask(url, items, requests.Session()))
            digit_pngs = [i[-1] for i in items if i[0] == "digit"][:20]
            timing = latency(urls, digit_pngs, args.latency_rounds)
        print(f"({time.perf_counter() - started:.0f} s)\n")
        mnist = {name: mnist_figures(path, args.mnist_path) for name, path in models.items()}

    keys = (["digits", "digits labelled right", "digits small", "digits thick pens"] + [f"digit {d}" for d in range(10)]
            + [f"group {g}" for g in sorted(unseen)]
            + ["digits called not_a_digit", "non-digits (pen characters)", "non-digits (synthetic shapes)"])
    shown = {"digits": "digits, as on the page (15-85%)",
             "digits labelled right": "  less the wrong labels listed",
             "digits small": "  small (15-25%, page's brush)",
             "digits thick pens": "  thick pens (30-85%, brush <=9%)"}
    print(f"{'':<34}{'n':>6}{'served':>10}{'baseline':>10}")
    for key in keys:
        if key in results["served"]:
            (value, n), (base, _) = results["served"][key], results["baseline"][key]
            print(f"{shown.get(key, key):<34}{n:>6}{value:>10.2%}{base:>10.2%}")
    print(f"{'expected calibration error (digits)':<34}{results['served']['ece'][1]:>6}"
          f"{results['served']['ece'][0]:>10.2%}{results['baseline']['ece'][0]:>10.2%}")
    print(f"{'MNIST test, argmax':<34}{10000:>6}{mnist['served'][0]:>10.2%}{mnist['baseline'][0]:>10.2%}")
    print(f"{'MNIST test, answered right':<34}{10000:>6}{mnist['served'][1]:>10.2%}{mnist['baseline'][1]:>10.2%}")
    print(f"{'POST /predict p50 (ms), interleaved':<34}{'':>6}{timing['served']:>10.2f}{timing['baseline']:>10.2f}")
    print("\nnot-a-digit share per shape (served): " + ", ".join(
        f"{k.split(' ', 1)[1]} {v[0]:.0%}" for k, v in sorted(results["served"].items()) if k.startswith("shape ")))
    chars = sorted(((v[0], k.split(" ", 1)[1], v[1]) for k, v in results["served"].items() if k.startswith("char ")))
    print("pen characters least often called not a digit (served): "
          + ", ".join(f"{c!r} {share:.0%} of {n}" for share, c, n in chars[:12]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
