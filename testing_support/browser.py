"""Driving the pages in a real headless Chromium: launching it, drawing digits
with real mouse and touch input, and watching for console errors and CSP
violations.

Digits come from the pen set as stroke lists (pen trajectories in a 0..1000
box) and are drawn point by point, so the page's Pointer Events, smoothing,
export and the server all take part, as they do for a person.
"""
from __future__ import annotations

import json
import os
import weakref
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

PHONE_320 = {"viewport": {"width": 320, "height": 640}, "device_scale_factor": 2,
             "has_touch": True, "is_mobile": True}

# How big a test digit is drawn: its height as a fraction of the canvas, as a
# person fills a drawing box.
DIGIT_HEIGHT_FRACTION = 0.6
MAX_DIGIT_WIDTH_FRACTION = 0.8

# The page's brush: a share of the canvas height (flask_app/static/js/canvas.js).
PAGE_LINE_WIDTH_FRACTION = 0.05

# The states the answer panel shows an answer in (prediction_view.js).
ANSWER_STATES = ("sure", "probably", "unsure", "not-digit")

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
    allowed: list[str] = field(default_factory=list)  # console errors a test causes on purpose

    def attach(self, page) -> None:
        _problems_of[page] = self
        page.on("console", lambda message: message.type == "error" and not any(
            text in message.text for text in self.allowed) and self.errors.append(
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


_problems_of: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def allow_console_errors(page, text):
    """A test that makes requests fail on purpose: the browser's own console
    line for each ("Failed to load resource: ...") is not a page problem."""
    _problems_of[page].allowed.append(text)


def enforce_csp(page) -> None:
    """Serve every HTML page with the app's Content-Security-Policy."""
    def add_policy(route):
        # Only page loads; a form's POST goes through untouched (re-sending it from
        # Playwright would lose the browser's Sec-Fetch-Site, and the server refuse it).
        if route.request.resource_type != "document" or route.request.method != "GET":
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
                          offset_y_frac=0.0, stroke_width_frac=PAGE_LINE_WIDTH_FRACTION,
                          style="white_on_transparent")
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


def fit_number(digit_strokes, box, height_fraction=0.55, gap_fraction=0.35):
    """Lay several pen digits out left to right on a canvas' bounding box, as a
    person writes a number: each `height_fraction` of the canvas tall, gaps of
    `gap_fraction` of that height between them, the line centred. One list of
    strokes (page coordinates) per digit."""
    height = height_fraction * box["height"]
    placed, x = [], 0.0
    for strokes in digit_strokes:
        x0, y0, x1, y1 = stroke_bounds(strokes)
        scale = height / max(y1 - y0, 1)
        placed.append([[(x + (px - x0) * scale, (py - y0) * scale) for px, py in stroke] for stroke in strokes])
        x += (x1 - x0) * scale + gap_fraction * height
    width = x - gap_fraction * height
    # A long number on a narrow canvas is written smaller, as a person would.
    shrink = min(1.0, 0.9 * box["width"] / width)
    left = box["x"] + (box["width"] - width * shrink) / 2
    top = box["y"] + (box["height"] - height * shrink) / 2
    return [[[(left + px * shrink, top + py * shrink) for px, py in stroke] for stroke in digit] for digit in placed]


def draw_number_with_mouse(page, canvas, digit_strokes):
    """Write several pen digits side by side with real mouse events."""
    for stroke in [stroke for digit in fit_number(digit_strokes, canvas.bounding_box()) for stroke in digit]:
        page.mouse.move(*stroke[0])
        page.mouse.down()
        for x, y in stroke[1:]:
            page.mouse.move(x, y)
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
    """Wait until the latest drawing has an answer on screen (any verdict), and
    return the large text: the digit or number read ("" when not a digit)."""
    page.wait_for_function(
        """(states) => {
          const answer = document.querySelector('[data-testid="answer"]');
          return answer.getAttribute('aria-busy') === 'false' && states.includes(answer.dataset.state);
        }""",
        arg=list(ANSWER_STATES), timeout=timeout)
    return by_testid(page, "prediction").text_content().strip()


def answer_state(page):
    return by_testid(page, "answer").get_attribute("data-state")


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
    """The probability each bar holds, by digit (None where the row is blank),
    whether or not the row is shown."""
    return page.evaluate("""() => {
      const rows = document.querySelectorAll('[data-testid="probabilities"] li[data-digit]');
      const byDigit = Array(rows.length).fill(null);
      for (const row of rows) {
        if (row.dataset.probability !== undefined) byDigit[Number(row.dataset.digit)] = Number(row.dataset.probability);
      }
      return byDigit;
    }""")


def no_horizontal_overflow(page):
    """The page is no wider than the viewport (nothing to scroll sideways)."""
    return page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")


# WCAG 2.x contrast of every visible piece of text against the background it
# is painted on; large text (24px, or 18.66px bold) needs 3:1, the rest 4.5:1.
TEXT_CONTRAST = """() => {
  const parse = (c) => (c.match(/[\\d.]+/g) || []).map(Number);
  const luminance = ([r, g, b]) => {
    const lin = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
    return 0.2126 * lin(r) + 0.7152 * lin(g) + 0.0722 * lin(b);
  };
  const background = (el) => {
    for (; el; el = el.parentElement) {
      const c = parse(getComputedStyle(el).backgroundColor);
      if (c.length === 3 || (c.length === 4 && c[3] > 0)) return c.slice(0, 3);
    }
    return parse(getComputedStyle(document.documentElement).backgroundColor).slice(0, 3);
  };
  const failures = [];
  let checked = 0;
  for (const el of document.querySelectorAll('body *')) {
    const text = Array.from(el.childNodes).filter((n) => n.nodeType === 3)
      .map((n) => n.textContent.trim()).join('');
    if (!text || el.closest('[hidden], .visually-hidden, button:disabled')) continue;
    if (!el.checkVisibility()) continue;
    const style = getComputedStyle(el);
    const fg = luminance(parse(style.color).slice(0, 3));
    const bg = luminance(background(el));
    const ratio = (Math.max(fg, bg) + 0.05) / (Math.min(fg, bg) + 0.05);
    const size = parseFloat(style.fontSize);
    const large = size >= 24 || (size >= 18.66 && Number(style.fontWeight) >= 700);
    checked++;
    if (ratio < (large ? 3 : 4.5)) failures.push(`${el.tagName} "${text.slice(0, 30)}": ${ratio.toFixed(2)}`);
  }
  return {checked, failures};
}"""



# --- /predict answers in the contract's shape, for states the real model
# cannot be made to show on demand (README, "POST /predict") ----------------

def _probabilities(digit, confidence, runner_up=None, runner_share=None):
    probabilities = [0.0] * 10
    probabilities[digit] = confidence
    rest = 1.0 - confidence
    if runner_up is not None:
        share = rest if runner_share is None else runner_share
        probabilities[runner_up] = share
        rest -= share
    others = [d for d in range(10) if d not in (digit, runner_up)]
    for d in others:
        probabilities[d] = rest / len(others)
    return probabilities


def contract_part(digit, confidence, verdict=None, runner_up=None, runner_share=None, box=(0, 0, 10, 10),
                  not_digit_score=0.01, preview=None):
    """One part of a /predict answer. `digit` None: not a digit."""
    if digit is None:
        return {"digit": None, "verdict": "not_a_digit", "confidence": None, "runner_up": None,
                "probabilities": [0.1] * 10, "not_digit_score": not_digit_score or 0.9, "box": list(box),
                "preview": preview or BLANK_PREVIEW}
    probabilities = _probabilities(digit, confidence, runner_up, runner_share)
    if runner_up is None:
        runner_up = max((d for d in range(10) if d != digit), key=lambda d: probabilities[d])
    return {"digit": digit, "verdict": verdict or ("digit" if confidence >= 0.6 else "unsure"),
            "confidence": confidence, "runner_up": runner_up, "probabilities": probabilities,
            "not_digit_score": not_digit_score, "box": list(box), "preview": preview or BLANK_PREVIEW}


def contract_answer(*parts, model_version="digit-cnn-test"):
    """A whole /predict answer made of `parts` (contract_part), as the server forms it."""
    verdicts = [p["verdict"] for p in parts]
    verdict = ("not_a_digit" if "not_a_digit" in verdicts else "unsure" if "unsure" in verdicts else "digit")
    one = len(parts) == 1
    confidence = None
    if verdict != "not_a_digit":
        confidence = 1.0
        for part in parts:
            confidence *= part["confidence"]
    return {
        "verdict": verdict,
        "number": None if verdict == "not_a_digit" else "".join(str(p["digit"]) for p in parts),
        "digit": parts[0]["digit"] if one and verdict != "not_a_digit" else None,
        "confidence": confidence,
        "runner_up": parts[0]["runner_up"] if one else None,
        "probabilities": parts[0]["probabilities"] if one else None,
        "not_digit_score": max(p["not_digit_score"] for p in parts),
        "preview": parts[0]["preview"] if one else None,
        "model_version": model_version,
        "digits": list(parts),
    }


# A 28x28 PNG with a white square in it, standing in for what the model saw.
def _preview_png():
    import base64
    import io

    from PIL import Image, ImageDraw
    image = Image.new("L", (28, 28), 0)
    ImageDraw.Draw(image).rectangle((9, 5, 18, 22), outline=255, width=3)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


BLANK_PREVIEW = _preview_png()


def answer_predict_with(page, body=None, status=200, delay_ms=0):
    """Make /predict answer `body` (JSON) with `status`, after `delay_ms`;
    body None with status 200: let the real server answer, after the delay."""
    def handle(route):
        if delay_ms:
            page.wait_for_timeout(delay_ms)
        if body is None and status == 200:
            route.continue_()
        else:
            route.fulfill(status=status, content_type="application/json",
                          body=json.dumps(body if body is not None else {"error": "boom"}))

    page.unroute("**/predict")
    page.route("**/predict", handle)


def hold_predict(page):
    """Hold every /predict request (the server's answer is on its way, slowly)
    until the returned function is called; then they go to the real server."""
    held = []
    page.unroute("**/predict")
    page.route("**/predict", lambda route: held.append(route))

    def release():
        page.unroute("**/predict")
        for route in held:
            route.continue_()
    return release


def screenshot(page, name):
    """Save a screenshot of the whole page under artifacts/screenshots/ to look at."""
    SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOT_DIR / f"{name}.png"), full_page=True)


def touch_tap(page, locator):
    """Tap `locator` with a finger through the same CDP touch input as draw_with_touch,
    so the browser sees one consistent touch stream (mixing it with Playwright's own
    tap after a CDP drag can leave a tap without its click)."""
    box = locator.bounding_box()
    cdp = page.context.new_cdp_session(page)
    try:
        touch_drag(cdp, [(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)])
    finally:
        cdp.detach()
