"""The pytest fixtures every browser test module shares (each imports them):
one Chromium per module, pages opened on the live server and checked for
console errors and CSP violations at teardown, and pen digits to draw."""
from __future__ import annotations

import pytest
from playwright.sync_api import sync_playwright

from digit_recognition.datasets import load_pen_digits
from flask_app.config import DEFAULT_MODEL_PATH, defaults
from flask_app.recognizer import load_recognizer
from testing_support.browser import DESKTOP, PageProblems, enforce_csp, launch_chromium, pick_clear_digits


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as playwright:
        chromium = launch_chromium(playwright)
        yield chromium
        chromium.close()


@pytest.fixture
def open_page(browser, live_server):
    """Open a page of the live server in a fresh browser context; at teardown,
    fail on any console error, uncaught exception or CSP violation."""
    opened = []

    def open_(path, device=DESKTOP, color_scheme="light", reduced_motion="no-preference"):
        context = browser.new_context(color_scheme=color_scheme, reduced_motion=reduced_motion, **device)
        page = context.new_page()
        problems = PageProblems()
        problems.attach(page)
        enforce_csp(page)
        page.goto(live_server.url + path)
        opened.append((context, page, problems))
        return page

    yield open_
    found = []
    for context, page, problems in opened:
        found += [f"{page.url}: {problem}" for problem in problems.check(page)]
        context.close()
    assert not found, "the page reported problems:\n" + "\n".join(found)


@pytest.fixture(scope="module")
def pen_strokes(pen_digits_path):
    """The first pen digit of each label, whatever the model makes of it."""
    first = {}
    for digit in load_pen_digits(pen_digits_path):
        first.setdefault(digit.label, digit.strokes)
    return first


def shipped_recognizer():
    """The recognizer of the model the app ships (loaded once per process)."""
    return load_recognizer(str(DEFAULT_MODEL_PATH), defaults()["MAX_IMAGE_PIXELS"])


@pytest.fixture(scope="module")
def clear_digits(pen_digits_path):
    """One digit per label that the shipped model reads right offline."""
    return pick_clear_digits(pen_digits_path, shipped_recognizer())


def clear_digit(clear_digits, label):
    if label not in clear_digits:
        pytest.fail(f"the shipped model reads none of the first pen digits labelled {label} "
                    "confidently; is the trained model in flask_app/model/?")
    return clear_digits[label]
