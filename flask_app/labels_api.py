"""Labelled drawings API (owned by the labels work, issue 3)."""
from flask import Blueprint

bp = Blueprint("labels", __name__)
