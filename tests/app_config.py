"""The app configuration every test starts from: labels in the test's own tmp_path,
a known admin token and session key, no rate limit."""
from __future__ import annotations

from pathlib import Path

# The admin token every test app accepts (tests that log in or send it import this).
ADMIN_TOKEN = "test-admin-token"


def base_test_config(tmp_path: Path, **overrides) -> dict:
    config = {
        "TESTING": True,
        "LABELS_DIR": str(tmp_path / "labels"),
        "ADMIN_TOKEN": ADMIN_TOKEN,
        "SECRET_KEY": "test-secret",
        "LABELS_RATE_LIMIT": "off",
        "PREDICT_RATE_LIMIT": "off",
    }
    config.update(overrides)
    return config
