"""Where things are when nothing else is said: one place for the web app and
the command-line tools (prepare, finetune, labels import/sweep), so both find
the same label store and the same served model.

In a checkout, Flask's instance folder for `flask_app` is <repo>/instance; what
the notebooks and commands produce goes to <repo>/artifacts/ (git-ignored).
The environment overrides each default exactly as the app reads it.
"""
from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS_DIR = REPO_ROOT / "artifacts"
DEFAULT_LABELS_DIR = REPO_ROOT / "instance" / "labels"
DEFAULT_MODEL_PATH = REPO_ROOT / "flask_app" / "model" / "digit_cnn.keras"
DEFAULT_DATASET_PATH = ARTIFACTS_DIR / "collected_digits.npz"
DEFAULT_FINETUNED_MODEL_PATH = ARTIFACTS_DIR / "best_model_fine_tuning.keras"
# The label store's metadata database when LABELS_DATABASE_URL is not set: an
# SQLite file inside LABELS_DIR (see digit_recognition.label_database).
DEFAULT_DATABASE_NAME = "labels.sqlite3"
# The kinds of LABELS_DATABASE_URL the label store works with (SQLite, and
# PostgreSQL through psycopg 3, the driver the requirements install).
DATABASE_URL_SCHEMES = ("sqlite", "postgresql", "postgresql+psycopg")


def _env(name: str) -> str | None:
    value = os.environ.get(name)
    return value.strip() if value is not None and value.strip() else None


def labels_dir_from_environment() -> Path:
    """$LABELS_DIR as the app reads it, else the app's default."""
    return Path(_env("LABELS_DIR") or DEFAULT_LABELS_DIR)


def labels_database_url_from_environment() -> str | None:
    """$LABELS_DATABASE_URL, or None for the SQLite file inside LABELS_DIR."""
    return _env("LABELS_DATABASE_URL")


def check_database_url(url: str) -> None:
    """ValueError unless `url` looks like a database URL the label store can use.

    The web app opens its store on first use (flask_app.label_store_opener),
    so a mistyped URL is caught here, at start-up, not by the first label saved.
    """
    scheme, separator, rest = url.partition("://")
    if not separator or not rest or scheme.lower() not in DATABASE_URL_SCHEMES:
        raise ValueError(f"LABELS_DATABASE_URL must be sqlite:///<file> or postgresql://user:password@host/database, "
                         f"got one starting {url[:12]!r}")


def served_model_path() -> Path:
    """$MODEL_PATH as the app reads it, else the shipped model."""
    return Path(_env("MODEL_PATH") or DEFAULT_MODEL_PATH)
