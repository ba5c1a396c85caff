"""Reading whole numbers, through the real server, beside a plain baseline.

Numbers are composed from the pen digits of the writer groups the model never
trained on (ced, imp) and written as one line on the page's wide canvas
(2.5:1, 280-400 px high so up to 1000 px wide, the page's brush of 6.5% of the
canvas height) by `testing_support.number_drawings.render_number`: digit
heights and baseline jittered like a line of handwriting, gaps drawn per pair.
Each drawing is posted to /predict of the real app on loopback.

Printed, each beside the baseline from the same drawings in the same run:

- exact whole-number accuracy: 2-4 digits with clear gaps (0.12-0.6 of the
  digit height), 5-6 digits with clear gaps, and 2-digit numbers whose digits
  touch or overlap (gap -0.10..+0.02 of the height);
- single digits split: every held-out digit written alone on the same canvas,
  and how many come back as more than one part (multi-stroke digits apart);
- /predict p50 and p90 for a 4-digit number and for a single digit,
  interleaved in the same run;
- in process, the CPU time of `split_into_parts` per drawing (1 and 4 digits),
  beside `normalize_ink` of the whole drawing (all a single digit needed before).

The baseline reads each connected blob of ink as a digit (no grouping of a
digit's strokes, no cuts through touching digits), through the same
preprocessing and model.

Drawings whose label is not what was drawn (a "7 =" labelled 7, a "%" labelled
8; `datasets.WRONGLY_LABELLED_PEN_DIGITS`) are left out of the numbers unless
--keep-wrong-labels: a number containing one has no right reading.

    python benchmarks/number_reading.py [--numbers 400] [--latency-requests 150] [--seed 12]
    python benchmarks/number_reading.py --cpu-only     # just the in-process segmentation timing
"""
from __future__ import annotations

import argparse
import base64
import os
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import requests

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from testing_support.loopback_server import serve_app  # noqa: E402
from digit_recognition.datasets import (  # noqa: E402
    HELD_OUT_WRITER_GROUPS, WRONGLY_LABELLED_PEN_DIGITS, is_wrongly_labelled, load_pen_digits,
)
from digit_recognition.model import DigitClassifier  # noqa: E402
from testing_support.number_drawings import CLEAR_GAPS, TOUCHING_GAPS, render_number  # noqa: E402
from digit_recognition.preprocessing import BBOX_THRESHOLD, drawing_ink, normalize_ink  # noqa: E402
from digit_recognition.segmentation import label_components, split_into_parts  # noqa: E402
from digit_recognition.strokes import to_png_bytes  # noqa: E402
from flask_app.config import DEFAULT_MODEL_PATH  # noqa: E402

# (name, digits per number, gaps between digits in digit heights)
CASES = [
    ("2-4 digits, clear gaps", (2, 4), CLEAR_GAPS),
    ("5-6 digits, clear gaps", (5, 6), CLEAR_GAPS),
    ("2 digits touching/overlapping", (2, 2), TOUCHING_GAPS),
]
SHORT_NAMES = {"2-4 digits, clear gaps": "2-4 digits", "5-6 digits, clear gaps": "5-6 digits",
               "2 digits touching/overlapping": "touching"}


def baseline_parts(png: bytes) -> list[np.ndarray]:
    """Plain connected components, left to right, each normalised as a digit."""
    ink = drawing_ink(png).ink
    ink = ink / max(float(ink.max()), 1e-6)
    components = label_components(ink >= BBOX_THRESHOLD)
    order = np.argsort(components.x0)
    return [normalize_ink(np.where(components.labels == i, ink, 0.0)) for i in order]


def baseline_read(classifier, png: bytes) -> tuple[str, int]:
    images = baseline_parts(png)
    probabilities = classifier.predict_probabilities(np.stack(images))
    return "".join(str(int(p[:10].argmax())) for p in probabilities), len(images)


def post(session, url, png) -> dict:
    response = session.post(f"{url}/predict",
                            json={"image": "data:image/png;base64," + base64.b64encode(png).decode()})
    response.raise_for_status()
    return response.json()


def read_text(body: dict) -> str:
    """The digits the server read ("?" for a part it calls not a digit)."""
    return "".join("?" if p["digit"] is None else str(p["digit"]) for p in body["digits"])


# Why a whole number was read wrong, in the order they are checked: a number
# whose digits were not found right is a segmentation miss, whatever the model
# then said; only a number split right can blame the model.
MISS_CATEGORIES = (
    "segmentation: wrong number of parts",
    "segmentation: right count, wrong split",
    "model: a part called not a digit",
    "model: a part misread, unsure",
    "model: a part misread, sure",
)


def miss_category(parts: list[dict], drawing) -> str:
    """Which of MISS_CATEGORIES a misread number falls in.

    `parts`: the answer's `digits`; a part is where the digit was written when
    its box's centre lies within that digit's ink box, horizontally.
    """
    if len(parts) != len(drawing.boxes):
        return MISS_CATEGORIES[0]
    for part, (x, _, w, _) in zip(parts, drawing.boxes, strict=True):
        centre = part["box"][0] + part["box"][2] / 2
        if not x <= centre <= x + w:
            return MISS_CATEGORIES[1]
    wrong = [p for p, c in zip(parts, drawing.text, strict=True) if p["digit"] is None or str(p["digit"]) != c]
    if any(p["verdict"] == "not_a_digit" for p in wrong):
        return MISS_CATEGORIES[2]
    if any(p["verdict"] == "unsure" for p in wrong):
        return MISS_CATEGORIES[3]
    return MISS_CATEGORIES[4]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pen-digits-path", default=os.environ.get(
        "PEN_DIGITS_PATH", str(REPO_ROOT.parent / "shared" / "data" / "pen_digits_dev.jsonl.gz")))
    parser.add_argument("--model-path", default=os.environ.get("MODEL_PATH", str(DEFAULT_MODEL_PATH)))
    parser.add_argument("--numbers", type=int, default=400, help="drawings per number case")
    parser.add_argument("--singles", type=int, help="at most this many single digits (default: all held out)")
    parser.add_argument("--latency-requests", type=int, default=150)
    parser.add_argument("--seed", type=int, default=12)
    parser.add_argument("--keep-wrong-labels", action="store_true",
                        help="compose numbers from the drawings listed as wrongly labelled too "
                             "(datasets.WRONGLY_LABELLED_PEN_DIGITS: a '7 =', a '%%' labelled 8, ...)")
    parser.add_argument("--cpu-only", action="store_true", help="only the in-process segmentation timing")
    args = parser.parse_args()

    digits = [d for d in load_pen_digits(args.pen_digits_path) if d.writer_group in HELD_OUT_WRITER_GROUPS]
    wrong = [d for d in digits if is_wrongly_labelled(d)]
    if not args.keep_wrong_labels:
        digits = [d for d in digits if not is_wrongly_labelled(d)]
    singles = digits[:args.singles] if args.singles else digits
    classifier = DigitClassifier.load(args.model_path)
    rng = np.random.default_rng(args.seed)
    print(f"model: {args.model_path}; held-out writer groups {HELD_OUT_WRITER_GROUPS}: {len(digits)} pen digits")
    print(f"  listed as wrongly labelled: {len(wrong)} "
          f"({'kept' if args.keep_wrong_labels else 'left out; --keep-wrong-labels keeps them'}): "
          + "; ".join(f"line {d.line}: {WRONGLY_LABELLED_PEN_DIGITS[(d.line, d.label, d.writer_group)]}"
                      for d in wrong))
    if args.cpu_only:
        segmentation_cpu(digits, rng)
        return 0

    with serve_app(MODEL_PATH=args.model_path) as (url, _app):
        session = requests.Session()
        started = time.perf_counter()
        print(f"\nexact whole-number accuracy ({args.numbers} numbers per row)")
        print(f"  {'':<34}{'app':>9}{'baseline':>10}   parts right (app / baseline)")
        misreads = defaultdict(list)
        miss_counts = {}
        for name, (low, high), gaps in CASES:
            right = base_right = parts_right = base_parts_right = 0
            misses = miss_counts[name] = dict.fromkeys(MISS_CATEGORIES, 0)
            for _ in range(args.numbers):
                count = int(rng.integers(low, high + 1))
                chosen = [digits[i] for i in rng.integers(0, len(digits), count)]
                drawing = render_number(chosen, rng, gaps=gaps)
                png = to_png_bytes(drawing.image)
                body = post(session, url, png)
                text = read_text(body)
                base_text, base_count = baseline_read(classifier, png)
                right += text == drawing.text
                base_right += base_text == drawing.text
                parts_right += len(body["digits"]) == count
                base_parts_right += base_count == count
                if text != drawing.text:
                    category = miss_category(body["digits"], drawing)
                    misses[category] += 1
                    if len(misreads[name]) < 8:
                        misreads[name].append(f"{drawing.text}->{text}")
            n = args.numbers
            print(f"  {name:<34}{right / n:>9.2%}{base_right / n:>10.2%}   "
                  f"{parts_right / n:.2%} / {base_parts_right / n:.2%}")
        for name, examples in misreads.items():
            print(f"  misread ({name}): {', '.join(examples)}")
        print("\nwhere the app's misses come from (numbers per row)")
        print(f"  {'':<40}" + "".join(f"{SHORT_NAMES[name]:>12}" for name, _, _ in CASES))
        for category in MISS_CATEGORIES:
            print(f"  {category:<40}" + "".join(f"{miss_counts[name][category]:>12}" for name, _, _ in CASES))

        split = base_split = 0
        by_strokes = defaultdict(lambda: [0, 0])
        split_examples = []
        for digit in singles:
            drawing = render_number([digit], rng)
            png = to_png_bytes(drawing.image)
            parts = len(post(session, url, png)["digits"])
            split += parts > 1
            base_split += baseline_read(classifier, png)[1] > 1
            row = by_strokes["one stroke" if len(digit.strokes) == 1 else "several strokes"]
            row[0] += 1
            row[1] += parts > 1
            if parts > 1:
                split_examples.append(f"{digit.label} ({len(digit.strokes)} strokes, {digit.writer_group})")
        n = len(singles)
        print(f"\nsingle digits returned as more than one part ({n} held-out digits, each alone on the canvas)")
        print(f"  {'':<34}{'app':>9}{'baseline':>10}")
        print(f"  {'all':<34}{split / n:>9.2%}{base_split / n:>10.2%}   ({split} / {base_split})")
        for key, (total, count) in sorted(by_strokes.items()):
            print(f"  {key:<34}{count / total:>9.2%}{'':>10}   ({count} of {total})")
        if split_examples:
            print(f"  split: {', '.join(split_examples)}")

        # Latency: the same server, a 4-digit number and a single digit, interleaved.
        four = [to_png_bytes(render_number([digits[i] for i in rng.integers(0, len(digits), 4)], rng,
                                           canvas_height=400).image) for _ in range(20)]
        one = [to_png_bytes(render_number([digits[int(rng.integers(0, len(digits)))]], rng,
                                          canvas_height=400).image) for _ in range(20)]
        times = {"4-digit number": [], "single digit": []}
        for i in range(args.latency_requests):
            for key, pngs in (("4-digit number", four), ("single digit", one)):
                t0 = time.perf_counter()
                post(session, url, pngs[i % len(pngs)])
                times[key].append((time.perf_counter() - t0) * 1000)
        print(f"\nPOST /predict latency, 1000x400 canvas ({args.latency_requests} each, interleaved, loopback)")
        for key, values in times.items():
            values.sort()
            print(f"  {key:<34}p50 {statistics.median(values):6.1f} ms   p90 {values[int(0.9 * len(values))]:6.1f} ms")
        ratio = statistics.median(times["4-digit number"]) / statistics.median(times["single digit"])
        print(f"  4-digit p50 / single-digit p50: {ratio:.2f}x")
        print(f"\n{time.perf_counter() - started:.0f} s")
    segmentation_cpu(digits, rng)
    return 0


def segmentation_cpu(digits, rng, drawings: int = 40, rounds: int = 5) -> None:
    """CPU time (not wall: the machine is shared) of splitting a drawing, geometry only."""
    print("\nin process, CPU ms per drawing (1000x400 canvas, read at 500x200), best of "
          f"{rounds} rounds of {drawings}")
    for count in (1, 4):
        inks = [drawing_ink(to_png_bytes(render_number(
            [digits[i] for i in rng.integers(0, len(digits), count)], rng, canvas_height=400).image)).ink
            for _ in range(drawings)]
        timings = {}
        for name, work in (("split_into_parts", split_into_parts), ("normalize_ink, whole drawing", normalize_ink)):
            best = float("inf")
            for _ in range(rounds):
                t0 = time.process_time()
                for ink in inks:
                    work(ink)
                best = min(best, (time.process_time() - t0) / drawings * 1000)
            timings[name] = best
        print(f"  {count} digit{'s' if count > 1 else ''}: " + "; ".join(f"{k} {v:.2f} ms" for k, v in timings.items()))


if __name__ == "__main__":
    raise SystemExit(main())
