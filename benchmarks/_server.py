"""Serve the real app on a loopback port in this process, for benchmarks.

(`benchmarks/container_command.py` runs the Dockerfile's CMD instead.)
"""
from __future__ import annotations

import contextlib
import logging
import tempfile
import threading

from werkzeug.serving import make_server


@contextlib.contextmanager
def serve_app(**config):
    """Yield the base URL of the real app served on 127.0.0.1 in this process."""
    from flask_app import create_app

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no line per request
    with tempfile.TemporaryDirectory() as labels_dir:
        app = create_app({"LABELS_DIR": labels_dir, "LABELS_RATE_LIMIT": "off", "LOG_LEVEL": "WARNING",
                          **config})
        server = make_server("127.0.0.1", 0, app, threaded=True)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield f"http://127.0.0.1:{server.server_port}", app
        finally:
            server.shutdown()
            thread.join(timeout=5)

