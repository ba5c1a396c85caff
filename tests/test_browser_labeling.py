"""The labelling page's loop in a real browser: on a phone it fits one screen,
messages never go stale, Enter submits after a click, a drawing of several
digits is not stored under one label, and a drawing the model calls "not a
digit" is stored only after the person confirms it.

The real server and model answer, except where a test needs an answer the
model cannot be made to give at will (several parts, not a digit with the
shipped model): there /predict answers in the contract's shape through
Playwright's routing, and POST /labels still goes to the real server.
"""
from __future__ import annotations


from tests.store_files import stored_samples
from testing_support import browser as bs
from testing_support.browser import by_testid
from tests.browser_fixtures import clear_digit


def stored(labels_dir):
    return stored_samples(labels_dir)


def in_viewport(page, testid):
    box = by_testid(page, testid).bounding_box()
    height = page.viewport_size["height"]
    return box is not None and box["y"] >= 0 and box["y"] + box["height"] <= height


def wait_for_status(page, text):
    try:
        page.wait_for_function(
            "(text) => document.querySelector('[data-testid=\"status\"]').textContent.includes(text)",
            arg=text, timeout=10_000)
    except Exception:
        raise AssertionError(f"status {by_testid(page, 'status').text_content()!r}, "
                             f"agreement {by_testid(page, 'agreement').text_content()!r}; "
                             f"waited for {text!r}") from None


def test_the_phone_labelling_loop_fits_one_screen(open_page, live_server, clear_digits):
    """Draw with a finger, choose, submit, see it saved: all without scrolling."""
    page = open_page("/labeling", bs.PHONE)
    canvas = by_testid(page, "canvas")
    for round_, label in enumerate((1, 7)):
        bs.draw_with_touch(page, canvas, clear_digit(clear_digits, label))
        bs.wait_for_answer(page)
        # The model's guess, in a line beside the labels, is on screen too.
        assert f"The model sees a {label}" in by_testid(page, "agreement").text_content()
        for testid in ("canvas", "label-0", "label-9", "agreement", "submit"):
            assert in_viewport(page, testid), f"{testid} is off the screen"
        # A person's finger leaves the canvas well before it taps a label; a tap
        # within Chromium's double-tap window after the last stroke is taken as
        # part of a gesture and gets no click (seen on the second digit).
        page.wait_for_timeout(800)
        bs.touch_tap(page, by_testid(page, f"label-{label}"))
        # A tap's click can arrive a moment later on a busy machine: wait for it, not a fixed instant.
        try:
            page.wait_for_function(
                "(label) => document.querySelector(`[data-testid=\"label-${label}\"]`)"
                ".getAttribute('aria-pressed') === 'true'", arg=label, timeout=5_000)
        except Exception:
            pressed = [b.get_attribute("aria-pressed") for b in page.locator("[data-label]").all()]
            raise AssertionError((round_, by_testid(page, "status").text_content(), pressed)) from None
        bs.touch_tap(page, by_testid(page, "submit"))
        wait_for_status(page, f"Saved as {label}")
        assert in_viewport(page, "status"), "the confirmation is below the fold"
        assert page.evaluate("scrollY") == 0
        assert len(stored(live_server.labels_dir)) == round_ + 1


def test_messages_go_when_they_are_out_of_date_and_agreement_is_announced(open_page, live_server, clear_digits):
    page = open_page("/labeling")
    canvas = by_testid(page, "canvas")
    status = by_testid(page, "status")
    bs.draw_with_mouse(page, canvas, clear_digit(clear_digits, 4))
    bs.wait_for_answer(page)
    by_testid(page, "submit").click()
    assert "Choose which digit" in status.text_content()
    # Choosing a label answers the request: the red line goes.
    page.keyboard.press("4")
    assert status.text_content() == ""
    # The agreement is said to screen readers, not only shown.
    announced = by_testid(page, "agreement-announcer")
    assert announced.text_content() == "The model agrees: it sees a 4 too."
    assert announced.get_attribute("aria-live") == "polite"
    page.keyboard.press("1")
    assert announced.text_content().startswith("You chose 1; the model sees a 4.")
    page.keyboard.press("4")

    page.keyboard.press("Enter")
    wait_for_status(page, "Saved as 4")
    # The green "Saved" stays while nothing happens, and goes once the next digit is begun.
    bs.draw_with_mouse(page, canvas, clear_digit(clear_digits, 6))
    assert status.text_content() == ""
    bs.wait_for_answer(page)
    page.keyboard.press("6")
    assert status.text_content() == ""
    assert "agrees" in by_testid(page, "agreement").text_content()


def test_click_a_label_then_enter_submits(open_page, live_server, clear_digits):
    page = open_page("/labeling")
    bs.draw_with_mouse(page, by_testid(page, "canvas"), clear_digit(clear_digits, 2))
    bs.wait_for_answer(page)
    by_testid(page, "label-2").click()
    assert page.evaluate("document.activeElement.dataset.testid") == "label-2"
    page.keyboard.press("Enter")
    wait_for_status(page, "Saved as 2")
    assert [s.label for s in stored(live_server.labels_dir)] == [2]


def test_several_digits_are_not_stored_under_one_label(open_page, live_server, clear_digits):
    page = open_page("/labeling")
    posted = []
    page.on("request", lambda request: request.url.endswith("/labels") and request.method == "POST"
            and posted.append(request))
    bs.answer_predict_with(page, bs.contract_answer(bs.contract_part(4, 0.98, box=(20, 30, 60, 120)),
                                                    bs.contract_part(2, 0.97, box=(120, 30, 60, 120))))
    bs.draw_with_mouse(page, by_testid(page, "canvas"), clear_digit(clear_digits, 4))
    bs.wait_for_answer(page)
    agreement = by_testid(page, "agreement").text_content()
    assert agreement.startswith("That looks like 2 digits. Label one digit at a time")
    page.keyboard.press("4")
    by_testid(page, "submit").click()
    assert by_testid(page, "status").text_content() == "Not saved: one digit per drawing."
    page.keyboard.press("Enter")
    page.wait_for_timeout(300)
    assert posted == [] and stored(live_server.labels_dir) == []


def test_a_drawing_that_is_not_a_digit_is_stored_only_when_the_person_insists(open_page, live_server, clear_digits):
    page = open_page("/labeling")
    bs.answer_predict_with(page, bs.contract_answer(bs.contract_part(None, None, not_digit_score=0.93)))
    canvas = by_testid(page, "canvas")
    bs.draw_with_mouse(page, canvas, clear_digit(clear_digits, 1))
    bs.wait_for_answer(page)
    assert by_testid(page, "verdict").text_content() == "That doesn't look like a digit."
    assert by_testid(page, "confidence").text_content() == "Draw one digit, a bit larger."
    page.keyboard.press("1")
    assert "you can still submit it" in by_testid(page, "agreement").text_content()

    submit = by_testid(page, "submit")
    submit.click()
    assert by_testid(page, "status").text_content() == "Sure it is a 1? Press “Submit anyway as 1” to save it."
    assert submit.text_content() == "Submit anyway as 1"
    assert stored(live_server.labels_dir) == []
    # A changed drawing withdraws the question: undo the stroke and draw it again.
    page.keyboard.press("Control+z")
    assert submit.text_content() == "Submit drawing"
    bs.draw_with_mouse(page, canvas, clear_digit(clear_digits, 1))
    bs.wait_for_answer(page)
    submit.click()
    submit.click()  # confirmed
    wait_for_status(page, "Saved as 1")
    (sample,) = stored(live_server.labels_dir)
    assert sample.label == 1
    assert submit.text_content() == "Submit drawing"


def _point(canvas, fx, fy):
    box = canvas.bounding_box()
    return box["x"] + box["width"] * fx, box["y"] + box["height"] * fy
