"""Where a POST /predict's CPU goes, in process, stage by stage.

One-digit page drawings (white ink on a transparent 280 px canvas, as the page
sends them) through each stage of the request path on its own, then the whole
request through Flask's test client with the app as deployed (request lines
logged, the rate limiter checked). Beside the stages this work made cheaper,
their baselines, in the same run:

  - segmentation of a one-stroke digit with the shortcut off (every drawing
    labelled, as before);
  - the rate-limit check with `limits`' stock memory storage (a Timer thread
    per hit 10 ms after the last sweep) and, when Flask-Limiter is installed,
    through Flask-Limiter as the app used it before, all on a one-view app.

Then read_png on the page's wide number canvas (1 and 4 held-out digits,
transparent and opaque), beside the same code with the wide-canvas round's
changes undone (all four channels shrunk; every candidate cut read).

Then read_png on held-out digits about as wide as tall (the single digits
segmentation weighs cutting), alone on the square canvas, and on 4-digit
numbers, beside the same code finding each candidate cut's sides by scanning
their pixels (as before segmentation._Sides).

Figures are CPU time of this process (time.process_time: other load on the
machine inflates it far less than wall-clock time; the stock storage's timer
threads are in it), the minimum over rounds of per-call means.

    python benchmarks/request_path.py [--rounds 15] [--calls 40]
"""
from __future__ import annotations

import argparse
import contextlib
import io
import os
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

import limits.storage  # noqa: E402
import limits.strategies  # noqa: E402
import numpy as np  # noqa: E402
from flask import Flask  # noqa: E402

from testing_support.container_command import pen_drawing_pngs, predict_body  # noqa: E402
from digit_recognition import preprocessing, segmentation  # noqa: E402
from digit_recognition.datasets import HELD_OUT_WRITER_GROUPS, load_pen_digits  # noqa: E402
from digit_recognition.strokes import CanvasParams, render_strokes, to_png_bytes  # noqa: E402
from testing_support.number_drawings import render_number  # noqa: E402
from digit_recognition.imaging import open_image, shrink_to_working_size  # noqa: E402
from digit_recognition.preprocessing import drawing_ink, ink_region  # noqa: E402
from flask_app import create_app  # noqa: E402
from flask_app.recognizer import preview_data_url  # noqa: E402
from flask_app.security import RequestRateLimits, limit_request_rates  # noqa: E402

DEFAULT_PEN = REPO_ROOT.parent / "shared" / "data" / "pen_digits_dev.jsonl.gz"
HIGH_LIMIT = "1000000 per minute"  # checked on every request, never reached


def cpu_ms_per_call(fn, items, rounds: int, calls: int) -> float:
    best = float("inf")
    for _ in range(rounds):
        started = time.process_time()
        for i in range(calls):
            fn(items[i % len(items)])
        best = min(best, (time.process_time() - started) / calls)
    return best * 1000.0


def one_view_app(limiter: str) -> Flask:
    """A POST view doing nothing, rate-limited as `limiter` says."""
    app = Flask("one_view")
    app.add_url_rule("/predict", "predict.predict", lambda: "ok", methods=["POST"])
    if limiter == "this app's (swept memory)":
        app.config.update(PREDICT_RATE_LIMIT=HIGH_LIMIT, LABELS_RATE_LIMIT="off")
        limit_request_rates(app)
    elif limiter == "limits' stock memory storage":
        rate_limits = RequestRateLimits(None, {"predict.predict": (HIGH_LIMIT, "predictions")})
        rate_limits.limiter = limits.strategies.MovingWindowRateLimiter(limits.storage.MemoryStorage())
        app.before_request(rate_limits.check)
    elif limiter == "Flask-Limiter (before)":
        from flask_limiter import Limiter
        from flask_limiter.util import get_remote_address
        flask_limiter = Limiter(key_func=get_remote_address, app=app, storage_uri="memory://",
                                strategy="moving-window", headers_enabled=False)
        app.view_functions["predict.predict"] = flask_limiter.limit(HIGH_LIMIT, methods=["POST"])(
            app.view_functions["predict.predict"])
    return app


@contextlib.contextmanager
def replaced(module, name: str, value):
    original = getattr(module, name)
    setattr(module, name, value)
    try:
        yield
    finally:
        setattr(module, name, original)


def wide_canvases(digits, recognizer, measure) -> None:
    """read_png on the page's number canvas, beside the same code with each
    change of the wide-canvas round undone in turn, same drawings, same run."""
    rng = np.random.default_rng(0)

    def drawings(count: int, height: int, style: str) -> list[bytes]:
        return [to_png_bytes(render_number([digits[i] for i in rng.integers(0, len(digits), count)], rng,
                                           canvas_height=height, style=style).image) for _ in range(20)]

    cases = [(f"{int(2.5 * h)}x{h}, {n} digit{'s' if n > 1 else ''}, {style}", drawings(n, h, style))
             for h, style in ((280, "white_on_transparent"), (400, "white_on_transparent"),
                              (280, "black_on_white")) for n in (1, 4)]
    print("\nread_png on the wide number canvas (20 drawings each, held-out digits), CPU ms per call;\n"
          "beside it with all four channels shrunk / every candidate cut read, as before")
    whole_shrink = lambda image: ink_region(shrink_to_working_size(image))  # noqa: E731
    every_cut = lambda drawing, piece, line_height, candidates, whole: candidates  # noqa: E731
    for name, pngs in cases:
        now = measure(recognizer.read_png, pngs)
        with replaced(preprocessing, "working_ink_region", whole_shrink):
            shrunk_whole = measure(recognizer.read_png, pngs)
        with replaced(segmentation, "_winnable", every_cut):
            all_cuts = measure(recognizer.read_png, pngs)
        with replaced(preprocessing, "working_ink_region", whole_shrink), \
                replaced(segmentation, "_winnable", every_cut):
            before = measure(recognizer.read_png, pngs)
        print(f"  {name:<42} {now:6.2f} ms   four channels {shrunk_whole:6.2f}   every cut {all_cuts:6.2f}   "
              f"both (before) {before:6.2f} ms ({now / before:.2f}x)")


class ScannedSides:
    """Each side of a cut found from its pixels, as before segmentation._Sides."""

    def __init__(self, drawing, piece):
        self.drawing, self.piece = drawing, piece
        self.mask = drawing.mask(piece.ids, piece.x0, piece.x1)[1]

    def left(self, k):
        return segmentation._clipped(self.drawing, self.piece.ids, self.piece.x0, self.piece.x0 + k)

    def right(self, k):
        return segmentation._clipped(self.drawing, self.piece.ids, self.piece.x0 + k, self.piece.x1)


def wide_digits(digits, recognizer, measure) -> None:
    """read_png on single digits as wide as tall (segmentation weighs cutting
    them) and on numbers, beside each cut's sides scanned from the pixels."""
    rng = np.random.default_rng(1)

    def aspect(strokes):
        points = np.concatenate([np.asarray(s, dtype=float).reshape(-1, 2) for s in strokes])
        extent = points.max(axis=0) - points.min(axis=0)
        return extent[0] / max(extent[1], 1.0)

    wide = [d for d in digits if aspect(d.strokes) >= 0.9]
    cases = [
        (f"one digit as wide as tall ({len(wide)} of {len(digits)}), 280 px", [
            to_png_bytes(render_strokes(wide[i].strokes, CanvasParams(280, 0.5, 0.0, 0.0, 0.05,
                                                                        "white_on_transparent")))
            for i in rng.choice(len(wide), 40, replace=False)]),
        ("4 digits, 700x280", [
            to_png_bytes(render_number([digits[i] for i in rng.integers(0, len(digits), 4)], rng,
                                       canvas_height=280, style="white_on_transparent").image)
            for _ in range(20)]),
    ]
    print("\nread_png on held-out digits as wide as tall and on numbers, CPU ms per call;\n"
          "beside it with each candidate cut's sides scanned from the pixels, as before")
    for name, pngs in cases:
        now = measure(recognizer.read_png, pngs)
        with replaced(segmentation, "_Sides", ScannedSides):
            before = measure(recognizer.read_png, pngs)
        print(f"  {name:<48} {now:6.2f} ms   sides scanned (before) {before:6.2f} ms ({now / before:.2f}x)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--calls", type=int, default=40, help="per round")
    parser.add_argument("--pen-digits-path", default=os.environ.get("PEN_DIGITS_PATH", str(DEFAULT_PEN)))
    args = parser.parse_args()

    pngs = [png for _, png in pen_drawing_pngs(args.pen_digits_path, per_label=2)]
    bodies = [predict_body(png) for png in pngs]
    with tempfile.TemporaryDirectory() as labels:
        app = create_app({"LABELS_DIR": labels, "PREDICT_RATE_LIMIT": HIGH_LIMIT, "LOG_LEVEL": "INFO"})
        recognizer = app.extensions["recognizer"]
        client = app.test_client()
        decoded = [shrink_to_working_size(open_image(png)) for png in pngs]
        inks = [drawing_ink(png) for png in pngs]
        cropped = [segmentation.inked_region(d.ink)[0] for d in inks]
        shortcut = sum(segmentation._one_digit_sized_stroke(ink) for ink in cropped)
        parts = [segmentation.split_into_parts(d.ink, score=recognizer.calibrated_probabilities) for d in inks]
        images = [np.stack([p.image for p in ps]) for ps in parts]
        readings = [recognizer.read_png(png) for png in pngs]

        def split(drawing):
            return segmentation.split_into_parts(drawing.ink, score=recognizer.calibrated_probabilities)

        def split_without_shortcut(drawing):
            with replaced(segmentation, "_one_digit_sized_stroke", lambda ink: False):
                return split(drawing)

        def predict(body):
            with contextlib.redirect_stdout(io.StringIO()):  # the request line, as on stdout
                response = client.post("/predict", data=body, content_type="application/json")
            assert response.status_code == 200

        def measure(fn, items):
            return cpu_ms_per_call(fn, items, args.rounds, args.calls)

        print(f"{len(pngs)} one-digit page drawings ({shortcut} one narrow stroke); CPU ms per call, "
              f"min of {args.rounds} rounds x {args.calls} (load average {os.getloadavg()[0]:.1f})")
        rows = [
            ("PNG decode (open_image)", measure(open_image, pngs), None),
            ("ink region (8-bit)", measure(ink_region, decoded), None),
            ("segmentation (split_into_parts)", measure(split, inks),
             ("without the one-stroke shortcut", measure(split_without_shortcut, inks))),
            ("model (LiteRT) + reading", measure(recognizer.read_digit_images, images), None),
            ("answer dict + preview PNG", measure(lambda r: r.to_json(preview_data_url), readings), None),
            ("read_png (decode to reading)", measure(recognizer.read_png, pngs), None),
            ("POST /predict, Flask test client", measure(predict, bodies), None),
        ]
        for name, figure, baseline in rows:
            line = f"{name:<36} {figure:6.3f} ms"
            if baseline:
                line += f"   {baseline[0]}: {baseline[1]:.3f} ms ({figure / baseline[1]:.2f}x)"
            print(line)

    held_out = [d for d in load_pen_digits(args.pen_digits_path) if d.writer_group in HELD_OUT_WRITER_GROUPS]
    wide_canvases(held_out, recognizer, measure)
    wide_digits(held_out, recognizer, measure)

    print("\nrate-limit check alone, on a one-view app (the difference to no limit is its cost):")
    variants = ["no limit", "this app's (swept memory)", "limits' stock memory storage"]
    try:
        import flask_limiter  # noqa: F401
        variants.append("Flask-Limiter (before)")
    except ImportError:
        print("  (Flask-Limiter not installed: its row is left out)")
    clients = {variant: one_view_app(variant).test_client() for variant in variants}

    def spaced_posts(variant):
        def post(_):
            clients[variant].post("/predict")
            time.sleep(0.0005)  # requests a little apart, as from people drawing
        return post

    figures = {variant: measure(spaced_posts(variant), [0]) for variant in variants}
    for variant, figure in figures.items():
        extra = "" if variant == "no limit" else f"   check: {figure - figures['no limit']:.3f} ms"
        print(f"  {variant:<32} {figure:6.3f} ms per request{extra}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
