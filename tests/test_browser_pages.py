"""The pages in a real browser: headless Chromium drives the real app on a
loopback server, with real mouse and touch input, under the app's
Content-Security-Policy.

Every test fails if the page logs a console error, throws, or violates the CSP.
"""
from __future__ import annotations

import json

import pytest
from PIL import Image
from playwright.sync_api import sync_playwright

from digit_recognition.datasets import load_pen_digits
from flask_app.config import DEFAULT_MODEL_PATH, defaults
from flask_app.recognizer import load_recognizer

from testing_support import browser as bs
from testing_support.browser import by_testid


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as playwright:
        chromium = bs.launch_chromium(playwright)
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def pen_strokes(pen_digits_path):
    """The first pen digit of each label, whatever the model makes of it."""
    first = {}
    for digit in load_pen_digits(pen_digits_path):
        first.setdefault(digit.label, digit.strokes)
    return first


@pytest.fixture(scope="module")
def clear_digits(pen_digits_path):
    """One digit per label that the shipped model reads right offline."""
    recognizer = load_recognizer(str(DEFAULT_MODEL_PATH), defaults()["MAX_IMAGE_PIXELS"])
    return bs.pick_clear_digits(pen_digits_path, recognizer)


def clear_digit(clear_digits, label):
    if label not in clear_digits:
        pytest.fail(f"the shipped model reads none of the first pen digits labelled {label} "
                    "confidently; is the trained model in flask_app/model/?")
    return clear_digits[label]


@pytest.fixture
def open_page(browser, live_server):
    """Open a page of the live server in a fresh browser context; at teardown,
    fail on any console error, uncaught exception or CSP violation."""
    opened = []

    def open_(path, device=bs.DESKTOP, color_scheme="light"):
        context = browser.new_context(color_scheme=color_scheme, **device)
        page = context.new_page()
        problems = bs.PageProblems()
        problems.attach(page)
        bs.enforce_csp(page)
        page.goto(live_server.url + path)
        opened.append((context, page, problems))
        return page

    yield open_
    found = []
    for context, page, problems in opened:
        found += [f"{page.url}: {problem}" for problem in problems.check(page)]
        context.close()
    assert not found, "the page reported problems:\n" + "\n".join(found)


# --- the drawing page --------------------------------------------------------

def test_mouse_drawn_digits_are_recognised(open_page, clear_digits):
    page = open_page("/")
    canvas = by_testid(page, "canvas")
    answers = {}
    for label in range(10):
        bs.draw_with_mouse(page, canvas, clear_digit(clear_digits, label))
        answers[label] = bs.wait_for_answer(page)
        shown = bs.probabilities_shown(page)
        assert None not in shown and abs(sum(shown) - 1) < 0.01
        assert max(range(10), key=lambda d: shown[d]) == int(answers[label])
        by_testid(page, "clear").click()
        bs.wait_until_settled(page)
    wrong = {label: answer for label, answer in answers.items() if answer != str(label)}
    assert not wrong, f"drawn digit -> page's answer, where wrong: {wrong}"


def test_answer_shows_preview_and_bars_for_all_digits(open_page, pen_strokes):
    page = open_page("/")
    bs.draw_with_mouse(page, by_testid(page, "canvas"), pen_strokes[2])
    digit = bs.wait_for_answer(page)
    assert digit in list("0123456789")
    preview = by_testid(page, "preview")
    assert preview.is_visible()
    assert preview.get_attribute("src").startswith("data:image/png;base64,")
    assert page.evaluate("document.querySelector('[data-testid=\"preview\"]').naturalWidth") == 28
    assert preview.evaluate("img => getComputedStyle(img).imageRendering") == "pixelated"
    assert by_testid(page, "probabilities").locator("li").count() == 10
    # The answer is announced: the live region names the digit.
    assert digit in by_testid(page, "announcer").text_content()


def test_prediction_arrives_while_the_pen_is_still_down(open_page, pen_strokes):
    page = open_page("/")
    # Draw the whole digit but keep the button pressed: only the debounced
    # live prediction can answer.
    bs.draw_with_mouse(page, by_testid(page, "canvas"), pen_strokes[7], release_last=False)
    assert bs.wait_for_answer(page) != ""
    assert by_testid(page, "canvas").get_attribute("data-strokes") == str(len(pen_strokes[7]))
    page.mouse.up()
    bs.wait_for_answer(page)


def test_undo_removes_the_last_stroke(open_page):
    page = open_page("/")
    canvas = by_testid(page, "canvas")
    box = canvas.bounding_box()
    first = [(box["x"] + box["width"] * 0.5, box["y"] + box["height"] * f) for f in (0.2, 0.5, 0.8)]
    second = [(box["x"] + box["width"] * f, box["y"] + box["height"] * 0.3) for f in (0.3, 0.5, 0.7)]
    third = [(box["x"] + box["width"] * f, box["y"] + box["height"] * 0.7) for f in (0.3, 0.5, 0.7)]

    def stroke(points):
        page.mouse.move(*points[0])
        page.mouse.down()
        for point in points[1:]:
            page.mouse.move(*point, steps=8)
        page.mouse.up()

    stroke(first)
    answer_after_first = bs.wait_for_answer(page)
    probabilities_after_first = bs.probabilities_shown(page)
    ink_after_first = bs.canvas_ink(page)
    assert ink_after_first[0] > 0

    stroke(second)
    bs.wait_until_settled(page)
    assert bs.canvas_ink(page) != ink_after_first
    by_testid(page, "undo").click()
    bs.wait_until_settled(page)
    assert canvas.get_attribute("data-strokes") == "1"
    assert bs.canvas_ink(page) == ink_after_first
    assert bs.wait_for_answer(page) == answer_after_first
    assert bs.probabilities_shown(page) == probabilities_after_first

    stroke(third)
    bs.wait_until_settled(page)
    page.keyboard.press("Control+z")
    bs.wait_until_settled(page)
    assert canvas.get_attribute("data-strokes") == "1"
    assert bs.canvas_ink(page) == ink_after_first

    page.keyboard.press("Control+z")
    bs.wait_until_settled(page)
    assert bs.canvas_ink(page)[0] == 0
    assert by_testid(page, "prediction").text_content() == ""
    assert by_testid(page, "undo").is_disabled()


def test_clear_empties_the_canvas_and_the_answer(open_page, pen_strokes):
    page = open_page("/")
    canvas = by_testid(page, "canvas")
    for clear in (lambda: by_testid(page, "clear").click(), lambda: page.keyboard.press("Escape")):
        bs.draw_with_mouse(page, canvas, pen_strokes[5])
        bs.wait_for_answer(page)
        clear()
        bs.wait_until_settled(page)
        assert bs.canvas_ink(page)[0] == 0
        assert canvas.get_attribute("data-strokes") == "0"
        assert by_testid(page, "prediction").text_content() == ""
        assert bs.probabilities_shown(page) == [None] * 10
        assert not by_testid(page, "preview").is_visible()
        assert by_testid(page, "announcer").text_content() == ""
    # A slip is forgiven: undo brings a cleared drawing back.
    by_testid(page, "undo").click()
    assert canvas.get_attribute("data-strokes") == str(len(pen_strokes[5]))
    assert bs.wait_for_answer(page) != ""


def test_touch_drawing_on_a_phone_is_recognised_and_does_not_scroll(open_page, clear_digits):
    page = open_page("/", bs.PHONE)
    canvas = by_testid(page, "canvas")
    # Sharp on a 3x screen: one backing-store pixel per device pixel.
    css_width, backing_width = canvas.evaluate("c => [c.getBoundingClientRect().width, c.width]")
    assert backing_width == round(css_width * 3)
    assert page.evaluate("document.documentElement.scrollHeight > innerHeight"), \
        "the phone layout should be taller than the screen, or this test proves nothing"

    # A zero: the finger moves up as well as down, and a finger moving up on
    # a page at the top would scroll it if the canvas let it.
    zero = clear_digit(clear_digits, 0)
    assert any(b[1] < a[1] - 100 for stroke in zero for a, b in zip(stroke, stroke[5:], strict=False))
    bs.draw_with_touch(page, canvas, zero)
    assert bs.wait_for_answer(page) == "0"
    assert page.evaluate("scrollY") == 0

    # Control: the same kind of drag outside the canvas does scroll the page.
    cdp = page.context.new_cdp_session(page)
    panel = by_testid(page, "probabilities").bounding_box()
    start = (panel["x"] + panel["width"] / 2, min(panel["y"] + 40, 800))
    bs.touch_drag(cdp, bs.straight_line(start, (start[0], start[1] - 300)))
    cdp.detach()
    page.wait_for_function("scrollY > 0")


# --- the labelling page ------------------------------------------------------

def stored_samples(labels_dir):
    return sorted(labels_dir.glob("*/*.json"))


def test_labelling_stores_a_sample_and_gets_ready_for_the_next(open_page, live_server, pen_strokes):
    page = open_page("/labeling")
    canvas = by_testid(page, "canvas")

    # Choose with a key, submit with the button.
    bs.draw_with_mouse(page, canvas, pen_strokes[3])
    guess = bs.wait_for_answer(page)
    page.keyboard.press("3")
    assert by_testid(page, "label-3").get_attribute("aria-pressed") == "true"
    agreement = by_testid(page, "agreement").text_content()
    assert ("agrees" in agreement) == (guess == "3")
    by_testid(page, "submit").click()
    page.wait_for_function(
        "() => document.querySelector('[data-testid=\"status\"]').textContent.includes('Saved')")
    assert "Saved as 3" in by_testid(page, "status").text_content()

    # The page cleared itself and forgot the label.
    assert canvas.get_attribute("data-strokes") == "0"
    assert bs.canvas_ink(page)[0] == 0
    assert by_testid(page, "prediction").text_content() == ""
    assert page.locator('[data-label][aria-pressed="true"]').count() == 0

    (sidecar,) = stored_samples(live_server.labels_dir)
    assert sidecar.parent.name == "3"
    metadata = json.loads(sidecar.read_text())
    assert metadata["label"] == 3
    assert metadata["prediction"] == int(guess)
    with Image.open(sidecar.with_suffix(".png")) as image:
        image.verify()

    # Choose with a button, submit with Enter.
    bs.draw_with_mouse(page, canvas, pen_strokes[8])
    bs.wait_for_answer(page)
    by_testid(page, "label-8").click()
    page.locator("main").focus()
    page.keyboard.press("Enter")
    page.wait_for_function(
        "() => document.querySelector('[data-testid=\"status\"]').textContent.includes('Saved as 8')")
    assert sorted(p.parent.name for p in stored_samples(live_server.labels_dir)) == ["3", "8"]


def test_labelling_asks_for_what_is_missing_and_stores_nothing(open_page, live_server, pen_strokes):
    page = open_page("/labeling")
    status = by_testid(page, "status")
    page.keyboard.press("6")
    by_testid(page, "submit").click()
    assert "Draw a digit first" in status.text_content()

    page.reload()
    bs.draw_with_mouse(page, by_testid(page, "canvas"), pen_strokes[6])
    bs.wait_for_answer(page)
    by_testid(page, "submit").click()
    assert "Choose which digit" in status.text_content()
    assert stored_samples(live_server.labels_dir) == []


# --- accessibility -----------------------------------------------------------

# WCAG 2.x contrast of every visible piece of text against the background it
# is painted on; large text (24px, or 18.66px bold) needs 3:1, the rest 4.5:1.
_TEXT_CONTRAST = """() => {
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


@pytest.mark.parametrize("color_scheme", ["light", "dark"])
@pytest.mark.parametrize("path", ["/", "/labeling"])
def test_text_contrast_meets_wcag_aa(open_page, pen_strokes, path, color_scheme):
    page = open_page(path, color_scheme=color_scheme)
    bs.draw_with_mouse(page, by_testid(page, "canvas"), pen_strokes[0])
    bs.wait_for_answer(page)
    if path == "/labeling":
        page.keyboard.press("1")  # a pressed label button and the agreement note
    result = page.evaluate(_TEXT_CONTRAST)
    assert result["checked"] > 20
    assert not result["failures"], result["failures"]


def test_everything_but_drawing_works_from_the_keyboard(open_page, pen_strokes):
    page = open_page("/labeling")
    bs.draw_with_mouse(page, by_testid(page, "canvas"), pen_strokes[1])
    bs.wait_for_answer(page)
    # Start from the top of the page, as a keyboard user arriving would.
    page.locator(".skip-link").focus()
    reached = ["skip-link"]
    for _ in range(30):
        page.keyboard.press("Tab")
        focused = page.evaluate("""() => {
          const el = document.activeElement;
          if (!el || el === document.body) return null;
          return {name: el.dataset.testid || el.textContent.trim(),
                  outline: getComputedStyle(el).outlineStyle};
        }""")
        if focused is None:
            break
        assert focused["outline"] != "none", f"no visible focus on {focused['name']}"
        reached.append(focused["name"])
        if focused["name"] == "submit":
            break
    for control in ["Draw", "Label", "Review", "undo", "clear", "label-0", "label-9", "submit"]:
        assert control in reached, f"{control} is not reachable with Tab: {reached}"
    # Every button has an accessible name.
    names = page.locator("button").evaluate_all("bs => bs.map(b => b.textContent.trim())")
    assert all(names)
    # A focused label button is chosen with Space.
    page.locator('[data-testid="label-5"]').focus()
    page.keyboard.press("Space")
    assert by_testid(page, "label-5").get_attribute("aria-pressed") == "true"


# --- no console errors; screenshots to look at -------------------------------

@pytest.mark.parametrize("color_scheme", ["light", "dark"])
@pytest.mark.parametrize("device_name", ["desktop", "phone"])
@pytest.mark.parametrize("path", ["/", "/labeling"])
def test_pages_draw_cleanly_and_are_screenshotted(open_page, pen_strokes, path, device_name, color_scheme):
    """Load, draw and answer with no console error or CSP violation (checked
    by `open_page`), and save a screenshot to look at."""
    device = bs.DESKTOP if device_name == "desktop" else bs.PHONE
    page = open_page(path, device, color_scheme)
    canvas = by_testid(page, "canvas")
    if device_name == "phone":
        bs.draw_with_touch(page, canvas, pen_strokes[2])
    else:
        bs.draw_with_mouse(page, canvas, pen_strokes[2])
    bs.wait_for_answer(page)
    if path == "/labeling":
        page.keyboard.press("2")
    page.evaluate("window.scrollTo(0, 0)")
    # The bars animate for 120 ms; capture them settled, not mid-transition.
    page.emulate_media(reduced_motion="reduce")
    page.wait_for_timeout(200)
    bs.SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
    name = "draw" if path == "/" else "labeling"
    page.screenshot(path=str(bs.SCREENSHOT_DIR / f"{name}-{device_name}-{color_scheme}.png"), full_page=True)
