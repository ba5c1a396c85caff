"""Driving the pages in a real headless Chromium: launching it, drawing digits
with real mouse and touch input, and watching for console errors and CSP
violations.

Digits come from the pen set as stroke lists (pen trajectories in a 0..1000
box) and are drawn point by point, so the page's Pointer Events, smoothing,
export and the server all take part, as they do for a person.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from digit_recognition.datasets import load_pen_digits
from digit_recognition.strokes import CanvasParams, render_strokes, to_png_bytes

CHROMIUM_PATH = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

# The policy the app sends (issue 7). Pages are tested under it even while the
# server does not send it yet: `enforce_csp` adds it to every page response.
CONTENT_SECURITY_POLICY = ("default-src 'self'; script-src 'self'; style-src 'self'; "
                           "img-src 'self' data:; frame-ancestors 'none'")

DESKTOP = {"viewport": {"width": 1280, "height": 800}}
PHONE = {"viewport": {"width": 390, "height": 844}, "device_scale_factor": 3,
         "has_touch": True, "is_mobile": True}

# How big a test digit is drawn: its height as a fraction of the canvas, as a
# person fills a drawing box.
DIGIT_HEIGHT_FRACTION = 0.6
MAX_DIGIT_WIDTH_FRACTION = 0.8

REPO_ROOT = Path(__file__).resolve().parent.parent
SCREENSHOT_DIR = REPO_ROOT / "artifacts" / "screenshots"


def launch_chromium(playwright):
    if not Path(CHROMIUM_PATH).exists():
        raise RuntimeError(f"Chromium not found at {CHROMIUM_PATH}; install it (Debian: apt-get install "
                           "chromium) or set CHROMIUM_PATH")
    return playwright.chromium.launch(executable_path=CHROMIUM_PATH, headless=True, args=CHROMIUM_ARGS)


# --- console errors and CSP --------------------------------------------------

_RECORD_CSP_VIOLATIONS = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (event) => {
  window.__cspViolations.push(`${event.violatedDirective} blocked ${event.blockedURI || "inline"}`);
});
"""


@dataclass
class PageProblems:
    """Everything a page complained about: console errors, uncaught exceptions."""
    errors: list[str] = field(default_factory=list)

    def attach(self, page) -> None:
        page.on("console", lambda message: message.type == "error" and self.errors.append(
            f"console.error: {message.text}"))
        page.on("pageerror", lambda error: self.errors.append(f"uncaught: {error}"))
        page.add_init_script(_RECORD_CSP_VIOLATIONS)

    def check(self, page) -> list[str]:
        """All problems so far, CSP violations recorded by the page included."""
        problems = list(self.errors)
        if not page.is_closed():
            try:
                problems += [f"CSP violation: {v}" for v in page.evaluate("window.__cspViolations || []")]
            except Exception as exc:  # the page navigated away mid-check; nothing to read
                problems.append(f"could not read CSP violations: {exc}")
        return problems


def enforce_csp(page) -> None:
    """Serve every HTML page with the app's Content-Security-Policy."""
    def add_policy(route):
        if route.request.resource_type != "document":
            route.continue_()
            return
        response = route.fetch()
        headers = dict(response.headers)
        headers.setdefault("content-security-policy", CONTENT_SECURITY_POLICY)
        route.fulfill(response=response, headers=headers)

    page.route("**/*", add_policy)


# --- test digits -------------------------------------------------------------

def stroke_bounds(strokes):
    xs = [x for stroke in strokes for x, _ in stroke]
    ys = [y for stroke in strokes for _, y in stroke]
    return min(xs), min(ys), max(xs), max(ys)


def fit_strokes(strokes, box, height_fraction=DIGIT_HEIGHT_FRACTION):
    """Map pen strokes onto a canvas' bounding box (page coordinates), the digit
    `height_fraction` of the canvas tall and centred."""
    x0, y0, x1, y1 = stroke_bounds(strokes)
    size = min(box["width"], box["height"])
    scale = height_fraction * size / max(y1 - y0, 1)
    scale = min(scale, MAX_DIGIT_WIDTH_FRACTION * size / max(x1 - x0, 1))
    centre_x = box["x"] + box["width"] / 2
    centre_y = box["y"] + box["height"] / 2
    mid_x, mid_y = (x0 + x1) / 2, (y0 + y1) / 2
    return [[(centre_x + (x - mid_x) * scale, centre_y + (y - mid_y) * scale) for x, y in stroke]
            for stroke in strokes]


def pick_clear_digits(pen_digits_path, recognizer, min_confidence=0.9, candidates_per_label=40):
    """One clear digit per label: the first in the pen set whose rendering the
    model reads right and confidently, in the style the page exports (light
    ink on transparent, the page's stroke width).

    The browser tests check the page, not the model: a digit the model reads
    right when rendered offline must come out the same when drawn in the page.
    """
    params = CanvasParams(canvas_px=320, digit_height_frac=DIGIT_HEIGHT_FRACTION, offset_x_frac=0.0,
                          offset_y_frac=0.0, stroke_width_frac=0.065, style="white_on_transparent")
    by_label: dict[int, list] = {}
    for digit in load_pen_digits(pen_digits_path):
        by_label.setdefault(digit.label, []).append(digit)
    chosen = {}
    for label in range(10):
        for digit in by_label.get(label, [])[:candidates_per_label]:
            prediction = recognizer.read_png(to_png_bytes(render_strokes(digit.strokes, params))).parts[0]
            if prediction.digit == label and prediction.confidence >= min_confidence:
                chosen[label] = digit.strokes
                break
    return chosen


# --- drawing -----------------------------------------------------------------

def draw_with_mouse(page, canvas, strokes, release_last=True):
    """Draw pen strokes on `canvas` (a Locator) with real mouse events."""
    box = canvas.bounding_box()
    for index, stroke in enumerate(fit_strokes(strokes, box)):
        page.mouse.move(*stroke[0])
        page.mouse.down()
        for x, y in stroke[1:]:
            page.mouse.move(x, y)
        if release_last or index < len(strokes) - 1:
            page.mouse.up()


def draw_with_touch(page, canvas, strokes):
    """Draw pen strokes on `canvas` with a finger, as the browser's touch input
    pipeline sees it (CDP Input.dispatchTouchEvent: touch, pointer and gesture
    events, scrolling included, are all derived from it)."""
    cdp = page.context.new_cdp_session(page)
    try:
        for stroke in fit_strokes(strokes, canvas.bounding_box()):
            touch_drag(cdp, stroke)
    finally:
        cdp.detach()


def touch_drag(cdp, points):
    x, y = points[0]
    cdp.send("Input.dispatchTouchEvent", {"type": "touchStart", "touchPoints": [{"x": x, "y": y}]})
    for x, y in points[1:]:
        cdp.send("Input.dispatchTouchEvent", {"type": "touchMove", "touchPoints": [{"x": x, "y": y}]})
    cdp.send("Input.dispatchTouchEvent", {"type": "touchEnd", "touchPoints": []})


def straight_line(start, end, steps=20):
    return [(start[0] + (end[0] - start[0]) * i / steps, start[1] + (end[1] - start[1]) * i / steps)
            for i in range(steps + 1)]


# --- reading the page --------------------------------------------------------

def by_testid(page, testid):
    return page.locator(f'[data-testid="{testid}"]')


def wait_for_answer(page, timeout=10_000):
    """Wait until the latest drawing has an answer on screen, and return it."""
    page.wait_for_function(
        """() => {
          const answer = document.querySelector('[data-testid="answer"]');
          const digit = document.querySelector('[data-testid="prediction"]');
          return answer.getAttribute('aria-busy') === 'false' && digit.textContent.trim() !== '';
        }""",
        timeout=timeout)
    return by_testid(page, "prediction").text_content().strip()


def wait_until_settled(page, timeout=10_000):
    page.wait_for_function(
        "() => document.querySelector('[data-testid=\"answer\"]').getAttribute('aria-busy') === 'false'",
        timeout=timeout)


def canvas_ink(page):
    """The canvas' pixels as (inked pixel count, a digest of all pixel values)."""
    return tuple(page.evaluate("""() => {
      const canvas = document.querySelector('[data-testid="canvas"]');
      const data = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
      let inked = 0, digest = 0;
      for (let i = 3; i < data.length; i += 4) {
        if (data[i] > 0) inked++;
        digest = (digest * 31 + data[i]) >>> 0;
      }
      return [inked, digest];
    }"""))


def probabilities_shown(page):
    """The probability each bar shows, by digit (None where the row is blank)."""
    return page.evaluate("""() => Array.from(
      document.querySelectorAll('[data-testid="probabilities"] li[data-digit]'),
      (row) => row.dataset.probability === undefined ? null : Number(row.dataset.probability))""")
