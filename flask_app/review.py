"""The review page: the data owner looks through, relabels, deletes and exports drawings.

The list is rendered on the server (filters and pages are plain links and a GET
form); relabel and delete are done by static/js/review_page.js through the JSON
API, authorised by the session cookie that the login form sets.
"""
from __future__ import annotations

import math

from flask import Blueprint, current_app, redirect, render_template, request, url_for

from . import admin_auth
from .label_store_opener import current_label_store

bp = Blueprint("review", __name__)

PAGE_SIZE = 48


def _page_filters() -> tuple[int | None, bool, int]:
    """(label, disagreed only, page) from the query; anything odd means "no filter"."""
    raw_label = request.args.get("label", "")
    label = int(raw_label) if len(raw_label) == 1 and raw_label in "0123456789" else None
    disagreed = request.args.get("disagreed", "") in ("1", "true", "on")
    raw_page = request.args.get("page", "1")
    page = int(raw_page) if raw_page.isascii() and raw_page.isdigit() and 0 < int(raw_page) < 10**6 else 1
    return label, disagreed, page


def _render(state: str, status: int = 200, **context):
    response = current_app.make_response((render_template("review.html", state=state, **context), status))
    response.headers["Cache-Control"] = "no-store"  # admin content never goes to a shared cache
    return response


@bp.get("/review")
def review_page():
    if admin_auth.admin_token() is None:
        return _render("disabled", 403)
    if not admin_auth.session_is_admin():
        return _render("login")
    label, disagreed, page = _page_filters()
    store = current_label_store()
    total, records = store.list(label=label, disagreed=disagreed or None,
                                limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE)
    pages = max(1, math.ceil(total / PAGE_SIZE))
    if page > pages:
        return redirect(url_for("review.review_page", **_query(label, disagreed, pages)), 303)
    return _render("list", total=total, records=records, label=label, disagreed=disagreed,
                   page_number=page, page_count=pages, first=(page - 1) * PAGE_SIZE + 1 if records else 0,
                   last=(page - 1) * PAGE_SIZE + len(records),
                   prev_query=_query(label, disagreed, page - 1) if page > 1 else None,
                   next_query=_query(label, disagreed, page + 1) if page < pages else None)


def _query(label: int | None, disagreed: bool, page: int) -> dict:
    query: dict = {"page": page}
    if label is not None:
        query["label"] = label
    if disagreed:
        query["disagreed"] = 1
    return query


@bp.post("/review/login")
def login():
    if admin_auth.admin_token() is None:
        return _render("disabled", 403)
    try:
        logged_in = admin_auth.log_in(request.form.get("token", ""))
    except admin_auth.TooManyFailures as exc:
        response = _render("login", 429, error=f"Too many wrong tokens from your address: "
                                               f"try again in {exc.retry_after} s.")
        response.headers["Retry-After"] = str(exc.retry_after)
        return response
    if logged_in:
        return redirect(url_for("review.review_page"), 303)
    # 200, as login forms do: a 401 would need a WWW-Authenticate challenge the form cannot answer.
    return _render("login", error="That is not the admin token.")


@bp.post("/review/logout")
def logout():
    admin_auth.log_out()  # ends the session on the server too, not only in this browser
    return redirect(url_for("review.review_page"), 303)
