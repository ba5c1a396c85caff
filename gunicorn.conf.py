"""Gunicorn settings the Dockerfile's command loads with `--config gunicorn.conf.py`.

The settings an operator tunes per deployment (bind address, workers, threads,
timeout) are on the command line in the Dockerfile, where they are measured
and explained; this file holds what follows from running on Cloud Run.
"""
import os


def _model_runs_on_litert() -> bool:
    """Whether the app will serve with LiteRT (INFERENCE_BACKEND, MODEL_PATH as the app reads them)."""
    from digit_recognition.inference import choose_backend
    from flask_app.config import defaults, from_environment

    settings = {**defaults(), **from_environment()}
    try:
        return choose_backend(settings["MODEL_PATH"], settings["INFERENCE_BACKEND"])[0] == "litert"
    except ValueError:
        return False  # a bad INFERENCE_BACKEND: each worker reports it when it builds the app


# Preload with LiteRT: the master builds the app once and the workers are
# forks of it (each makes its own interpreters after the fork, see
# digit_recognition/inference.py), so a worker is ready as soon as it is
# forked. Never with TensorFlow, which is not fork-safe: then each worker
# builds the app and loads its own model (see flask_app/app.py).
preload_app = _model_runs_on_litert()

# Cloud Run sends SIGTERM, then SIGKILL 10 s later: let in-flight requests
# finish within that window instead of gunicorn's default 30 s.
graceful_timeout = 8

# X-Forwarded-For/-Proto are left to the app (TRUSTED_PROXIES, flask_app/
# security.py): gunicorn believes them only from loopback, its default.

# Each worker touches a heartbeat file on every loop. Under `docker run` the
# default temp dir is on the overlay filesystem, where those writes can stall a
# worker; /dev/shm is memory. (On Cloud Run the whole filesystem is memory.)
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None

# The run-time control socket (gunicornc) is not needed in a container, and
# would be one more thing listening, in a home directory that may be read-only.
control_socket_disable = True

# One JSON line per record on stdout (flask_app/logging_setup.py). Gunicorn's
# own messages (booting, worker exits) go through the same handler on the root
# logger; its access log is switched off because the app writes one line per
# request itself, with the fields Cloud Logging indexes.
_level = os.environ.get("LOG_LEVEL", "INFO").strip().upper() or "INFO"
loglevel = _level.lower()
logconfig_dict = {
    "version": 1,
    "disable_existing_loggers": False,
    "root": {"level": _level, "handlers": ["json_stdout"]},
    "loggers": {
        "gunicorn.error": {"level": _level, "handlers": [], "propagate": True},
        "gunicorn.access": {"level": "CRITICAL", "handlers": [], "propagate": False},
    },
    "handlers": {
        "json_stdout": {"class": "flask_app.logging_setup.JsonStdoutHandler"},
    },
    "formatters": {},
}

# One TensorFlow thread per worker: with one worker per core, TF's own thread
# pools only add hand-offs to a ~1 ms graph. Measured on the 2-core machine
# (POST /predict, Dockerfile CMD, 10 s per row): 1 client p50 8.47 -> 6.53 ms;
# 8 clients 260 -> 248 req/s (within run-to-run noise). The workers inherit
# these from the master; an operator's own setting wins.
os.environ.setdefault("TF_NUM_INTRAOP_THREADS", "1")
os.environ.setdefault("TF_NUM_INTEROP_THREADS", "1")
