"""Configuration: safe defaults, then environment variables, then test overrides.

Every setting the service reads is listed here (and in the README's table), so
an operator never has to read the code to deploy it.
"""
from __future__ import annotations

import os

from digit_recognition.paths import DEFAULT_LABELS_DIR, DEFAULT_MODEL_PATH


def _int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise RuntimeError(f"environment variable {name} must be an integer, got {raw!r}") from exc


def defaults() -> dict:
    return {
        "MODEL_PATH": str(DEFAULT_MODEL_PATH),
        # auto: LiteRT on the model's .tflite when it and the runtime are there,
        # else Keras/TensorFlow; litert or keras: that one or fail at start-up.
        "INFERENCE_BACKEND": "auto",
        "LABELS_DIR": str(DEFAULT_LABELS_DIR),  # shared with the commands (digit_recognition.paths)
        # None: an SQLite file inside LABELS_DIR; postgresql://... for several instances.
        "LABELS_DATABASE_URL": None,
        "LABELS_MAX_SAMPLES": 1_000_000,  # the store's cap: POST /labels answers 507 beyond it
        "MAX_CONTENT_LENGTH": 2 * 1024 * 1024,  # request body limit, bytes -> 413
        "MAX_IMAGE_PIXELS": 4_000_000,  # declared pixels, checked before decoding -> 413
        "ADMIN_TOKEN": None,  # None: review, relabel, delete and export are refused
        "SECRET_KEY": None,  # None: a random key per process (admin sessions don't survive restarts)
        "LOG_LEVEL": "INFO",
        "LABELS_RATE_LIMIT": "60 per minute",  # "off" disables
        # Per client on POST /predict: generous (a person drawing sends a few a
        # second at most), it stops one client from hogging the CPU. "off" disables.
        "PREDICT_RATE_LIMIT": "600 per minute",
        # Wrong admin tokens (Bearer or login form) per client before 429. "off" disables.
        "ADMIN_AUTH_FAILURE_LIMIT": "20 per minute",
        "ADMIN_SESSIONS_DIR": None,  # None: <LABELS_DIR>/.admin-sessions (admin_sessions.py)
        # /readyz answers 503 when LABELS_DIR has less free space than this.
        "READY_MIN_FREE_BYTES": 64 * 1024 * 1024,
        "RATELIMIT_STORAGE_URI": "memory://",
        "LOW_CONFIDENCE": 0.6,  # below this calibrated probability a digit's verdict is "unsure"
        # At or above this not-a-digit probability a part's verdict is "not_a_digit".
        # None: the threshold chosen with the model (its metadata), else 0.5.
        "NOT_DIGIT_THRESHOLD": None,
        "GOOGLE_CLOUD_PROJECT": None,  # set: request logs carry Cloud Trace ids (logging_setup)
        # Proxy hops in front of the app whose X-Forwarded-For/-Proto are believed
        # (Cloud Run: 1). 0 trusts none, so a client cannot spoof its address.
        "TRUSTED_PROXIES": 0,
        # The background sweep of crash leftovers in LABELS_DIR spares files younger
        # than this, which may belong to a save in progress in another worker.
        "LABELS_SWEEP_GRACE_SECONDS": 600.0,
        "LABELS_SWEEP_INTERVAL_SECONDS": 3600.0,  # 0: never in the background (use `labels sweep`)
        # The review login's session cookie: hidden from scripts, never sent
        # cross-site, https only (browsers count http://localhost as secure).
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Strict",
        "SESSION_COOKIE_SECURE": True,
    }


def from_environment() -> dict:
    """The settings present in the environment, parsed."""
    settings: dict = {}
    for name in ("MODEL_PATH", "INFERENCE_BACKEND", "LABELS_DIR", "LABELS_DATABASE_URL", "ADMIN_TOKEN",
                 "SECRET_KEY", "LOG_LEVEL",
                 "LABELS_RATE_LIMIT", "RATELIMIT_STORAGE_URI", "GOOGLE_CLOUD_PROJECT",
                 "PREDICT_RATE_LIMIT", "ADMIN_AUTH_FAILURE_LIMIT", "ADMIN_SESSIONS_DIR"):
        value = os.environ.get(name)
        if value is not None and value.strip() != "":
            settings[name] = value.strip()
    for name, default in (("MAX_CONTENT_LENGTH", defaults()["MAX_CONTENT_LENGTH"]),
                          ("MAX_IMAGE_PIXELS", defaults()["MAX_IMAGE_PIXELS"]),
                          ("TRUSTED_PROXIES", defaults()["TRUSTED_PROXIES"]),
                          ("READY_MIN_FREE_BYTES", defaults()["READY_MIN_FREE_BYTES"]),
                          ("LABELS_MAX_SAMPLES", defaults()["LABELS_MAX_SAMPLES"])):
        if os.environ.get(name):
            settings[name] = _int(name, default)
    for name in ("LOW_CONFIDENCE", "NOT_DIGIT_THRESHOLD"):
        if os.environ.get(name):
            settings[name] = float(os.environ[name])
    for name in ("LABELS_SWEEP_GRACE_SECONDS", "LABELS_SWEEP_INTERVAL_SECONDS"):
        if os.environ.get(name):
            settings[name] = float(os.environ[name])
    if os.environ.get("SESSION_COOKIE_SECURE"):  # "0" only for a plain-http host other than localhost
        settings["SESSION_COOKIE_SECURE"] = \
            os.environ["SESSION_COOKIE_SECURE"].strip().lower() not in ("0", "false", "no", "off")
    return settings
