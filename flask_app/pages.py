"""The HTML pages."""
from __future__ import annotations

from flask import Blueprint, current_app, render_template

from . import admin_auth

bp = Blueprint("pages", __name__)


@bp.app_context_processor
def navigation():
    """What every page's header needs: the Review link is for the data owner
    only, so it shows once they have signed in to the review page."""
    return {"show_review_link": admin_auth.session_is_admin()}


@bp.get("/")
def draw():
    return render_template("index.html", low_confidence=current_app.config["LOW_CONFIDENCE"])


@bp.get("/labeling")
def labeling():
    return render_template("labeling.html", low_confidence=current_app.config["LOW_CONFIDENCE"])
