"""The HTML pages."""
from __future__ import annotations

from flask import Blueprint, current_app, render_template

bp = Blueprint("pages", __name__)


@bp.get("/")
def draw():
    return render_template("index.html", low_confidence=current_app.config["LOW_CONFIDENCE"])


@bp.get("/labeling")
def labeling():
    return render_template("labeling.html", low_confidence=current_app.config["LOW_CONFIDENCE"])
