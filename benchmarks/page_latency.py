"""How fast the drawing page answers, seen from the browser.

Draws pen digits on GET / in headless Chromium with real mouse events and
measures, inside the page (performance.now()):
  - pause: the pen stops moving but stays down -> the answer is on screen
    (the debounced live prediction; target about 150 ms);
  - pen-up: the pen is lifted -> the answer is on screen;
and, as the baseline in the same run, a bare fetch() of POST /predict with the
same drawing from the same page (what the server and network cost alone).

    python benchmarks/page_latency.py [--digits 20]
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np
from playwright.sync_api import sync_playwright

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from testing_support.loopback_server import serve_app  # noqa: E402
from digit_recognition.datasets import load_pen_digits  # noqa: E402
from testing_support import browser as bs  # noqa: E402

# Timestamps of the last pen move, the pen-up and each answer shown.
_INSTRUMENT = """
window.__bench = {lastMove: 0, up: 0, answers: []};
addEventListener("pointermove", () => { __bench.lastMove = performance.now(); }, true);
addEventListener("pointerup", () => { __bench.up = performance.now(); }, true);
addEventListener("DOMContentLoaded", () => {
  const answer = document.querySelector('[data-testid="answer"]');
  new MutationObserver(() => {
    if (answer.getAttribute("aria-busy") === "false" && answer.dataset.state !== "empty") {
      __bench.answers.push(performance.now());
    }
  }).observe(answer, {attributes: true, attributeFilter: ["aria-busy"]});
});
"""

_BARE_FETCH = """async () => {
  const t0 = performance.now();
  const response = await fetch("/predict", {method: "POST",
    headers: {"Content-Type": "application/json"}, body: JSON.stringify({image: window.__lastImage})});
  await response.json();
  return performance.now() - t0;
}"""


def summary(name, samples_ms):
    ms = np.asarray(samples_ms)
    print(f"{name:<44} p50 {np.percentile(ms, 50):7.1f} ms   p95 {np.percentile(ms, 95):7.1f} ms   "
          f"max {ms.max():7.1f} ms   (n={len(ms)})")


def latency_after(page, event):
    """Milliseconds from the latest `event` ("lastMove" or "up") to the first
    answer shown after it."""
    first_after = f"__bench.answers.find((t) => t > __bench.{event})"
    page.wait_for_function(f"() => {first_after} !== undefined", timeout=10_000)
    return page.evaluate(f"{first_after} - __bench.{event}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--digits", type=int, default=20)
    parser.add_argument("--pen-digits", default=os.environ.get(
        "PEN_DIGITS_PATH", str(REPO_ROOT.parent / "shared" / "data" / "pen_digits_dev.jsonl.gz")))
    args = parser.parse_args()
    digits = load_pen_digits(args.pen_digits)[: args.digits]

    pause_ms, up_ms, bare_ms = [], [], []
    with serve_app() as (url, _app), sync_playwright() as playwright:
        browser = bs.launch_chromium(playwright)
        page = browser.new_page(**bs.DESKTOP)
        page.add_init_script(_INSTRUMENT)
        page.goto(url + "/")
        canvas = bs.by_testid(page, "canvas")
        for digit in digits:
            # Pause with the pen down: the live (throttled) prediction answers.
            bs.draw_with_mouse(page, canvas, digit.strokes, release_last=False)
            pause_ms.append(latency_after(page, "lastMove"))
            # Lift the pen: the immediate prediction answers.
            page.mouse.up()
            up_ms.append(latency_after(page, "up"))
            # Baseline: a drawing of the same size sent without the page around it.
            page.evaluate("""() => {
              const c = document.createElement('canvas');
              const src = document.querySelector('[data-testid="canvas"]');
              c.width = src.clientWidth; c.height = src.clientHeight;
              c.getContext('2d').drawImage(src, 0, 0, c.width, c.height);
              window.__lastImage = c.toDataURL('image/png');
            }""")
            bare_ms.append(page.evaluate(_BARE_FETCH))
            page.keyboard.press("Escape")
        browser.close()

    print(f"drawing page latency, {len(digits)} pen digits, headless Chromium, loopback server")
    summary("bare fetch POST /predict (baseline)", bare_ms)
    summary("pen pauses (still down) -> answer shown", pause_ms)
    summary("pen up -> answer shown", up_ms)


if __name__ == "__main__":
    main()
