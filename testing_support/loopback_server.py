"""Serve the real app on a loopback port in this process, for tests and benchmarks.

(`testing_support/container_command.py` runs the Dockerfile's CMD instead.)
"""
from __future__ import annotations

import contextlib
import logging
import tempfile
import threading

from werkzeug.serving import make_server


def start_live_server(flask_app):
    """Serve `flask_app` on 127.0.0.1 on a free port in a background thread.

    Returns (server, thread); stop with server.shutdown(). The tests' live
    server fixture uses this too.
    """
    server = make_server("127.0.0.1", 0, flask_app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    return server, thread


@contextlib.contextmanager
def serve_app(**config):
    """Yield the base URL of the real app served on 127.0.0.1 in this process."""
    from flask_app import create_app

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no line per request
    with tempfile.TemporaryDirectory() as labels_dir:
        app = create_app({"LABELS_DIR": labels_dir, "LABELS_RATE_LIMIT": "off", "PREDICT_RATE_LIMIT": "off",
                          "LOG_LEVEL": "WARNING",
                          **config})
        server, thread = start_live_server(app)
        try:
            yield f"http://127.0.0.1:{server.server_port}", app
        finally:
            server.shutdown()
            thread.join(timeout=5)

