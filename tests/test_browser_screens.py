"""Every state of every page, on a desktop (1280x800) and a phone (390x844),
light and dark: no console error or CSP violation, WCAG AA text contrast in
each state, and a screenshot of each under artifacts/screenshots/ to look at
(named <page>-<state>-<device>-<scheme>.png).

Real drawings, real server and model for the states they can show (empty,
reading, a digit read, saved); routed /predict answers in the contract's shape
for the rest (probably, unsure, not a digit, a number, an error).
"""
from __future__ import annotations

import pytest

from testing_support import browser as bs
from testing_support.browser import by_testid
from tests.app_config import ADMIN_TOKEN
from tests.browser_fixtures import clear_digit

DEVICES = {"desktop": bs.DESKTOP, "phone": bs.PHONE}


def draw(page, device_name, strokes):
    canvas = by_testid(page, "canvas")
    if device_name == "phone":
        bs.draw_with_touch(page, canvas, strokes)
    else:
        bs.draw_with_mouse(page, canvas, strokes)


def capture(page, name, check_contrast=True):
    """Screenshot the page as it stands and return its contrast failures."""
    page.evaluate("window.scrollTo(0, 0)")
    bs.screenshot(page, name)
    if not check_contrast:
        return []
    result = page.evaluate(bs.TEXT_CONTRAST)
    return [f"{name}: {failure}" for failure in result["failures"]]


def boxes_of(page, digit_strokes):
    """Where fit_number puts each digit, in the canvas' own pixels, padded by the brush."""
    canvas_box = by_testid(page, "canvas").bounding_box()
    pad = bs.PAGE_LINE_WIDTH_FRACTION * canvas_box["height"] / 2
    boxes = []
    for digit in bs.fit_number(digit_strokes, canvas_box):
        xs = [x for stroke in digit for x, _ in stroke]
        ys = [y for stroke in digit for _, y in stroke]
        boxes.append((round(min(xs) - canvas_box["x"] - pad), round(min(ys) - canvas_box["y"] - pad),
                      round(max(xs) - min(xs) + 2 * pad), round(max(ys) - min(ys) + 2 * pad)))
    return boxes


def reread(page):
    """Have the same drawing read again: clear it, and undo the clear."""
    by_testid(page, "clear").click()
    by_testid(page, "undo").click()


@pytest.mark.parametrize("color_scheme", ["light", "dark"])
@pytest.mark.parametrize("device_name", ["desktop", "phone"])
def test_drawing_page_states(open_page, clear_digits, device_name, color_scheme):
    page = open_page("/", DEVICES[device_name], color_scheme, reduced_motion="reduce")
    bs.allow_console_errors(page, "Failed to load resource")  # the error state's 500
    suffix = f"{device_name}-{color_scheme}"
    failures = capture(page, f"draw-empty-{suffix}")

    release = bs.hold_predict(page)
    draw(page, device_name, clear_digit(clear_digits, 8))
    assert bs.answer_state(page) == "pending"
    failures += capture(page, f"draw-reading-{suffix}")
    release()
    bs.wait_for_answer(page)
    failures += capture(page, f"draw-sure-{suffix}")
    release = bs.hold_predict(page)
    draw(page, device_name, [[(10, 10), (40, 40)]])
    page.wait_for_timeout(300)  # the dimming waits 250 ms, so quick answers do not flicker
    assert by_testid(page, "answer").get_attribute("data-stale") == "true"
    failures += capture(page, f"draw-stale-{suffix}", check_contrast=False)  # dimmed on purpose
    release()
    bs.wait_for_answer(page)

    routed = {
        "probably": bs.contract_answer(bs.contract_part(8, 0.78, runner_up=3, runner_share=0.15)),
        "unsure": bs.contract_answer(bs.contract_part(4, 0.46, runner_up=9, runner_share=0.36)),
        "not-a-digit": bs.contract_answer(bs.contract_part(None, None, not_digit_score=0.96)),
    }
    for state, body in routed.items():
        bs.answer_predict_with(page, body)
        by_testid(page, "clear").click()
        draw(page, device_name, clear_digit(clear_digits, 4 if state != "probably" else 8))
        bs.wait_for_answer(page)
        failures += capture(page, f"draw-{state}-{suffix}")

    number = [clear_digit(clear_digits, d) for d in (2, 0, 2, 6)]
    by_testid(page, "clear").click()
    boxes = boxes_of(page, number)
    confidences = (0.99, 0.97, 0.98, 0.55)
    bs.answer_predict_with(page, bs.contract_answer(*[
        bs.contract_part(d, c, runner_up=5 if d == 6 else None, runner_share=0.3 if d == 6 else None, box=b)
        for d, c, b in zip((2, 0, 2, 6), confidences, boxes, strict=True)]))
    bs.draw_number_with_mouse(page, by_testid(page, "canvas"), number)
    assert bs.wait_for_answer(page) == "2026"
    failures += capture(page, f"draw-number-unsure-{suffix}")
    bs.answer_predict_with(page, bs.contract_answer(*[
        bs.contract_part(d, 0.99, box=b) for d, b in zip((2, 0, 2, 6), boxes, strict=True)]))
    reread(page)
    bs.wait_for_answer(page)
    failures += capture(page, f"draw-number-{suffix}")

    bs.answer_predict_with(page, {"error": "internal error"}, status=500)
    reread(page)
    page.wait_for_function("() => document.querySelector('[data-testid=\"answer\"]').dataset.state === 'error'")
    failures += capture(page, f"draw-error-{suffix}")
    assert not failures, failures


@pytest.mark.parametrize("color_scheme", ["light", "dark"])
@pytest.mark.parametrize("device_name", ["desktop", "phone"])
def test_labelling_page_states(open_page, clear_digits, device_name, color_scheme):
    page = open_page("/labeling", DEVICES[device_name], color_scheme, reduced_motion="reduce")
    suffix = f"{device_name}-{color_scheme}"
    failures = capture(page, f"label-empty-{suffix}")
    draw(page, device_name, clear_digit(clear_digits, 7))
    bs.wait_for_answer(page)
    page.keyboard.press("1")
    failures += capture(page, f"label-disagrees-{suffix}")
    page.keyboard.press("7")
    by_testid(page, "submit").click()
    page.wait_for_function("() => document.querySelector('[data-testid=\"status\"]').textContent.includes('Saved')")
    failures += capture(page, f"label-saved-{suffix}")

    bs.answer_predict_with(page, bs.contract_answer(bs.contract_part(None, None, not_digit_score=0.9)))
    draw(page, device_name, clear_digit(clear_digits, 1))
    bs.wait_for_answer(page)
    page.keyboard.press("1")
    by_testid(page, "submit").click()
    failures += capture(page, f"label-not-a-digit-confirm-{suffix}")

    by_testid(page, "clear").click()
    bs.answer_predict_with(page, bs.contract_answer(bs.contract_part(4, 0.98, box=(40, 60, 80, 160)),
                                                    bs.contract_part(2, 0.97, box=(160, 60, 80, 160))))
    draw(page, device_name, clear_digit(clear_digits, 4))
    bs.wait_for_answer(page)
    page.keyboard.press("4")
    by_testid(page, "submit").click()
    failures += capture(page, f"label-several-digits-{suffix}")
    assert not failures, failures


@pytest.mark.parametrize("color_scheme", ["light", "dark"])
@pytest.mark.parametrize("device_name", ["desktop", "phone"])
def test_review_page_states(open_page, live_server, device_name, color_scheme):
    from testing_support.drawings import digit_png
    store = live_server.app.extensions["label_store"].open()
    for i, (label, prediction, confidence) in enumerate([(1, 1, 0.996), (4, 9, 0.62), (7, 1, 0.9), (0, 0, 0.97)]):
        store.save(digit_png(label, seed=i), label, prediction=prediction, confidence=confidence,
                   model_version="test")
    page = open_page("/review", DEVICES[device_name], color_scheme, reduced_motion="reduce")
    suffix = f"{device_name}-{color_scheme}"
    failures = capture(page, f"review-login-{suffix}")
    by_testid(page, "token").fill(ADMIN_TOKEN)
    by_testid(page, "login").click()
    page.wait_for_selector('[data-testid="summary"]')
    page.wait_for_function("""() => [...document.querySelectorAll('img.review-thumb')]
                                     .every(img => img.complete && img.naturalWidth > 0)""")
    failures += capture(page, f"review-list-{suffix}")
    by_testid(page, "sample").nth(1).locator('[data-testid="delete"]').click()
    failures += capture(page, f"review-deleted-undo-{suffix}")
    by_testid(page, "undo-delete").click()
    assert not failures, failures
