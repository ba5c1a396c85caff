"""Review pages for the data owner (owned by the labels work, issue 3)."""
from flask import Blueprint

bp = Blueprint("review", __name__)
