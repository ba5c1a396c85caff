"""The pages in a real browser: headless Chromium drives the real app on a
loopback server, with real mouse and touch input, under the app's
Content-Security-Policy.

Every test fails if the page logs a console error, throws, or violates the CSP.
"""
from __future__ import annotations

import base64
import io
import json

import pytest
from PIL import Image

from tests.store_files import stored_samples
from testing_support import browser as bs
from testing_support.browser import by_testid
from tests.app_config import ADMIN_TOKEN
from tests.browser_fixtures import clear_digit


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
    # The three most likely digits, most likely first; the rest behind a toggle.
    rows = by_testid(page, "probabilities").locator("li")
    assert rows.count() == 10
    visible = [int(row.get_attribute("data-digit")) for row in rows.all() if row.is_visible()]
    shown = bs.probabilities_shown(page)
    hidden = set(range(10)) - set(visible)
    assert len(visible) == 3 and str(visible[0]) == digit
    assert [shown[d] for d in visible] == sorted((shown[d] for d in visible), reverse=True)
    assert min(shown[d] for d in visible) >= max(shown[d] for d in hidden)
    toggle = by_testid(page, "toggle-probabilities")
    assert toggle.get_attribute("aria-expanded") == "false"
    toggle.click()
    assert toggle.get_attribute("aria-expanded") == "true"
    assert sum(row.is_visible() for row in rows.all()) == 10
    toggle.click()
    assert sum(row.is_visible() for row in rows.all()) == 3
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
    # A short phone screen (a browser's bars take their share), so that the
    # page scrolls and a finger that scrolled it would show.
    page = open_page("/", {**bs.PHONE, "viewport": {"width": 390, "height": 560}})
    canvas = by_testid(page, "canvas")
    # Sharp on a 3x screen: one backing-store pixel per device pixel.
    css_width, backing_width = canvas.evaluate("c => [c.getBoundingClientRect().width, c.width]")
    assert backing_width == round(css_width * 3)

    # A zero: the finger moves up as well as down, and a finger moving up on
    # a page at the top would scroll it if the canvas let it.
    zero = clear_digit(clear_digits, 0)
    assert any(b[1] < a[1] - 100 for stroke in zero for a, b in zip(stroke, stroke[5:], strict=False))
    bs.draw_with_touch(page, canvas, zero)
    assert bs.wait_for_answer(page) == "0"
    assert page.evaluate("document.documentElement.scrollHeight > innerHeight"), \
        "the phone layout should be taller than the screen, or this test proves nothing"
    assert page.evaluate("scrollY") == 0

    # Control: the same kind of drag outside the canvas does scroll the page.
    cdp = page.context.new_cdp_session(page)
    panel = by_testid(page, "probabilities").bounding_box()
    start = (panel["x"] + panel["width"] / 2, min(panel["y"] + 40, 800))
    bs.touch_drag(cdp, bs.straight_line(start, (start[0], start[1] - 300)))
    cdp.detach()
    page.wait_for_function("scrollY > 0")


# --- the labelling page ------------------------------------------------------

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

    (sample,) = stored_samples(live_server.labels_dir)
    assert sample.label == 3
    assert sample.prediction == int(guess)
    with Image.open(sample.png_path) as image:
        image.verify()

    # Choose with a button, submit with Enter.
    bs.draw_with_mouse(page, canvas, pen_strokes[8])
    bs.wait_for_answer(page)
    by_testid(page, "label-8").click()
    # Focus stays on the button clicked; Enter submits all the same, as the hint says.
    assert page.evaluate("document.activeElement.dataset.testid") == "label-8"
    page.keyboard.press("Enter")
    page.wait_for_function(
        "() => document.querySelector('[data-testid=\"status\"]').textContent.includes('Saved as 8')")
    assert sorted(s.label for s in stored_samples(live_server.labels_dir)) == [3, 8]


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

@pytest.mark.parametrize("color_scheme", ["light", "dark"])
@pytest.mark.parametrize("path", ["/", "/labeling"])
def test_text_contrast_meets_wcag_aa(open_page, pen_strokes, path, color_scheme):
    page = open_page(path, color_scheme=color_scheme)
    bs.draw_with_mouse(page, by_testid(page, "canvas"), pen_strokes[0])
    bs.wait_for_answer(page)
    if path == "/labeling":
        page.keyboard.press("1")  # a pressed label button and the agreement note
    result = page.evaluate(bs.TEXT_CONTRAST)
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
    for control in ["Draw", "Label", "undo", "clear", "label-0", "label-9", "submit"]:
        assert control in reached, f"{control} is not reachable with Tab: {reached}"
    # Every button has an accessible name.
    names = page.locator("button").evaluate_all("bs => bs.map(b => b.textContent.trim())")
    assert all(names)
    # A focused label button is chosen with Space.
    page.locator('[data-testid="label-5"]').focus()
    page.keyboard.press("Space")
    assert by_testid(page, "label-5").get_attribute("aria-pressed") == "true"


# --- layout and small things ---------------------------------------------------

def sign_in_to_review(page, live_server):
    page.goto(live_server.url + "/review")
    by_testid(page, "token").fill(ADMIN_TOKEN)
    by_testid(page, "login").click()
    page.wait_for_selector('[data-testid="summary"]')


@pytest.mark.parametrize("path", ["/", "/labeling", "/review"])
def test_nothing_overflows_sideways_at_320_px(open_page, live_server, pen_strokes, path):
    page = open_page("/", bs.PHONE_320)
    if path == "/review":
        live_server.app.extensions["label_store"].open().save(_tiny_png(), 3, prediction=5, confidence=0.8,
                                                       model_version="test")
        sign_in_to_review(page, live_server)  # the admin's header has the Review link too
    else:
        page.goto(live_server.url + path)
        bs.draw_with_touch(page, by_testid(page, "canvas"), pen_strokes[4])
        bs.wait_for_answer(page)
    assert bs.no_horizontal_overflow(page), page.evaluate("document.documentElement.scrollWidth")
    for link in page.locator(".nav-list a").all():
        box = link.bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= 320, link.text_content()


def _tiny_png():
    from testing_support.drawings import digit_png
    return digit_png(3)


def test_review_link_is_only_for_the_signed_in_admin(open_page, live_server):
    page = open_page("/")
    assert page.locator(".nav-list a", has_text="Review").count() == 0
    sign_in_to_review(page, live_server)
    page.goto(live_server.url + "/")
    assert page.locator(".nav-list a", has_text="Review").count() == 1


def test_hover_colours_only_where_there_is_hover(open_page):
    """A tapped button must not keep its hover colour on a touch screen."""
    page = open_page("/")
    outside = page.evaluate("""() => {
      const found = [];
      const walk = (rules, inHoverMedia) => {
        for (const rule of rules) {
          if (rule instanceof CSSMediaRule) {
            walk(rule.cssRules, inHoverMedia || rule.conditionText.includes('hover: hover'));
          } else if (rule.selectorText && rule.selectorText.includes(':hover') && !inHoverMedia) {
            found.push(rule.selectorText);
          }
        }
      };
      for (const sheet of document.styleSheets) walk(sheet.cssRules, false);
      return found;
    }""")
    assert outside == []


def test_empty_preview_is_an_empty_frame_not_a_black_square(open_page, pen_strokes):
    page = open_page("/")
    frame = page.locator(".preview-frame")
    background = frame.evaluate("el => getComputedStyle(el).backgroundColor")
    assert background in ("rgba(0, 0, 0, 0)", "transparent")
    assert frame.evaluate("el => getComputedStyle(el).borderTopStyle") == "dashed"
    bs.draw_with_mouse(page, by_testid(page, "canvas"), pen_strokes[5])
    bs.wait_for_answer(page)
    assert frame.evaluate("el => getComputedStyle(el).backgroundColor") == "rgb(0, 0, 0)"


@pytest.mark.parametrize("device", [bs.DESKTOP, bs.PHONE], ids=["desktop", "phone"])
def test_drawing_area_is_wide_and_the_brush_follows_its_height(open_page, device):
    """Wider than tall for numbers; the stroke (on screen and in the PNG sent)
    is the same share of the canvas height whatever the width."""
    page = open_page("/", device)
    canvas = by_testid(page, "canvas")
    box = canvas.bounding_box()
    ratio = box["width"] / box["height"]
    assert (2.2 <= ratio <= 2.8) if device is bs.DESKTOP else (1.3 <= ratio <= 1.7)
    assert box["height"] >= 200  # room for a finger
    sent = []
    page.on("request", lambda request: request.url.endswith("/predict") and sent.append(request))
    # A vertical line; its thickness in the PNG sent to /predict, in pixels.
    x = box["x"] + box["width"] / 2
    page.mouse.move(x, box["y"] + box["height"] * 0.2)
    page.mouse.down()
    page.mouse.move(x, box["y"] + box["height"] * 0.8, steps=10)
    page.mouse.up()
    bs.wait_until_settled(page)
    image_url = json.loads(sent[-1].post_data)["image"]
    with Image.open(io.BytesIO(base64.b64decode(image_url.split(",", 1)[1]))) as png:
        alpha = png.getchannel("A")
        width, height = png.size
        assert (width, height) == (round(box["width"]), round(box["height"]))
        row = [alpha.getpixel((column, height // 2)) for column in range(width)]
    thickness = sum(value / 255 for value in row)
    assert thickness == pytest.approx(0.05 * height, abs=1.5)
