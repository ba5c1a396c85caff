"""The review page in headless Chromium against the real server: sign in with
the token (the Secure session cookie must work over http://127.0.0.1), see the
thumbnails, filter, relabel, delete, export, sign out; no console error and no
CSP violation on the way."""
from __future__ import annotations

import io
import json
import zipfile

import pytest
from playwright.sync_api import expect

from testing_support.browser import PageProblems, by_testid
from testing_support.drawings import digit_png
from tests.app_config import ADMIN_TOKEN

TOKEN = ADMIN_TOKEN  # what base_test_config's apps accept


@pytest.fixture
def filled_store(live_server):
    """Six drawings: labels 1, 1, 4, 4, 7, 7; the model 'disagreed' with the 7s."""
    store = live_server.app.extensions["label_store"].open()
    return [store.save(digit_png(label, seed=i), label, prediction=label if label != 7 else 1,
                       confidence=0.9, model_version="test")
            for i, label in enumerate((1, 1, 4, 4, 7, 7))]


def cards(page):
    return by_testid(page, "sample")


def test_review_flow_in_a_browser(browser, live_server, filled_store, tmp_path):
    store = live_server.app.extensions["label_store"].open()
    context = browser.new_context(accept_downloads=True)
    page = context.new_page()
    problems = PageProblems()
    problems.attach(page)

    page.goto(f"{live_server.url}/review")
    by_testid(page, "token").fill("not-the-token")
    by_testid(page, "login").click()
    expect(by_testid(page, "login-error")).to_be_visible()
    by_testid(page, "token").fill(TOKEN)
    by_testid(page, "login").click()

    expect(cards(page)).to_have_count(6)
    expect(by_testid(page, "total")).to_have_text("6")
    cookie = next(c for c in context.cookies() if c["name"] == "session")
    assert cookie["httpOnly"] and cookie["secure"] and cookie["sameSite"] == "Strict"
    page.wait_for_function("""() => [...document.querySelectorAll('img.review-thumb')]
                                     .every(img => img.complete && img.naturalWidth > 0)""")

    # Relabel the newest 7 as a 1: the model said 1, so it no longer disagrees.
    newest = cards(page).first
    sample_id = newest.get_attribute("data-id")
    assert store.get(sample_id).label == 7
    newest.locator('[data-testid="relabel"]').select_option("1")
    expect(by_testid(page, "status")).to_have_text("Relabelled as 1.")
    expect(newest.locator('[data-testid="sample-label"]')).to_have_text("1")
    expect(newest).not_to_have_class("review-card--disagreed")
    assert store.get(sample_id).label == 1

    # One click takes the model's label where it disagreed (the remaining 7: the model said 1).
    seven_id = page.locator('[data-testid="sample"][data-label="7"]').first.get_attribute("data-id")
    seven = page.locator(f'[data-id="{seven_id}"]')
    seven.locator('[data-testid="accept"]').click()
    expect(by_testid(page, "status")).to_have_text("Relabelled as 1.")
    expect(seven.locator('[data-testid="accept"]')).to_have_count(0)
    expect(seven).not_to_have_class("review-card--disagreed")
    assert store.get(seven_id).label == 1

    # Delete the next one: gone at once, the count and the range follow, the
    # keyboard lands on the next drawing, and Undo brings it back.
    doomed = cards(page).nth(1)
    doomed_id = doomed.get_attribute("data-id")
    after_doomed = cards(page).nth(2).get_attribute("data-id")
    doomed.locator('[data-testid="delete"]').click()
    expect(by_testid(page, "status")).to_have_text(f"Deleted the drawing labelled {store.get(doomed_id).label}.")
    expect(by_testid(page, "summary")).to_have_text("5 matching, showing 1–5.")
    assert page.evaluate("document.activeElement.dataset.id") == after_doomed
    by_testid(page, "undo-delete").click()
    expect(by_testid(page, "summary")).to_have_text("6 matching, showing 1–6.")
    assert page.evaluate("document.activeElement.dataset.id") == doomed_id
    assert store.get(doomed_id) is not None

    # Deleted for good once another is deleted (or the page is left, or time passes).
    doomed.locator('[data-testid="delete"]').click()
    second = cards(page).nth(2)
    second_id = second.get_attribute("data-id")
    second.locator('[data-testid="delete"]').click()
    expect(by_testid(page, "summary")).to_have_text("4 matching, showing 1–4.")
    for _ in range(50):
        if store.get(doomed_id) is None:
            break
        page.wait_for_timeout(50)
    assert store.get(doomed_id) is None
    by_testid(page, "undo-delete").click()  # the second one is still undoable
    expect(by_testid(page, "summary")).to_have_text("5 matching, showing 1–5.")
    assert store.get(second_id) is not None
    assert store.count() == 5

    # Controls as big as the buttons beside them; the export button is a button, not a link.
    for select in (by_testid(page, "filter-label"), cards(page).first.locator('[data-testid="relabel"]')):
        assert select.bounding_box()["height"] >= 44
    assert by_testid(page, "export").evaluate("a => getComputedStyle(a).textDecorationLine") == "none"

    # Filters apply on change.
    by_testid(page, "filter-label").select_option("4")
    page.wait_for_url("**/review?label=4*")
    expect(cards(page)).to_have_count(2)
    assert {c.get_attribute("data-label") for c in cards(page).all()} == {"4"}
    by_testid(page, "filter-label").select_option("")
    page.wait_for_url("**/review?label=")
    by_testid(page, "filter-disagreed").check()
    page.wait_for_url("**disagreed=1*")
    remaining_sevens = {r.id for r in store.list(label=7)[1]}
    assert {c.get_attribute("data-id") for c in cards(page).all()} == remaining_sevens

    # Export downloads a zip of everything left.
    with page.expect_download() as download_info:
        by_testid(page, "export").click()
    archive_path = tmp_path / "export.zip"
    download_info.value.save_as(archive_path)
    with zipfile.ZipFile(io.BytesIO(archive_path.read_bytes())) as archive:
        assert json.loads(archive.read("manifest.json"))["count"] == 5

    by_testid(page, "logout").click()
    expect(by_testid(page, "login-form")).to_be_visible()
    assert problems.check(page) == []
    context.close()


def test_the_models_share_is_written_as_on_the_drawing_page(client, app):
    """">99%", never "100%" for a probability below 1; "<1%", never "0%" above 0."""
    store = app.extensions["label_store"].open()
    store.save(digit_png(3, seed=1), 3, prediction=3, confidence=0.996, model_version="test")
    store.save(digit_png(5, seed=2), 5, prediction=6, confidence=0.004, model_version="test")
    client.post("/review/login", data={"token": TOKEN}, headers={"Sec-Fetch-Site": "same-origin"})
    page = client.get("/review", base_url="https://localhost").get_data(as_text=True)
    assert "3 (&gt;99%)" in page and "6 (&lt;1%)" in page
    assert "100%" not in page and "(0%)" not in page
