"""The digit-recognition web app: application factory.

Configuration is layered as in Flask's tutorial: defaults, then environment
variables, then the overrides a test passes in.
"""
from __future__ import annotations

import os
import secrets
from pathlib import Path

from flask import Flask

from . import config as app_config


def create_app(test_config: dict | None = None) -> Flask:
    app = Flask(__name__, instance_relative_config=True)
    app.config.from_mapping(app_config.defaults())
    app.config.from_mapping(app_config.from_environment())
    if test_config:
        app.config.from_mapping(test_config)
    app.config["DEBUG"] = bool(test_config and test_config.get("DEBUG"))
    if not app.config["SECRET_KEY"]:
        # Only the admin session cookie uses it; set SECRET_KEY to share it across workers.
        app.config["SECRET_KEY"] = secrets.token_hex(32)
    if not app.config["LABELS_DIR"]:
        app.config["LABELS_DIR"] = os.path.join(app.instance_path, "labels")
    Path(app.config["LABELS_DIR"]).mkdir(parents=True, exist_ok=True)

    from .recognizer import load_recognizer
    app.extensions["recognizer"] = load_recognizer(
        str(app.config["MODEL_PATH"]), int(app.config["MAX_IMAGE_PIXELS"]),
        float(app.config["LOW_CONFIDENCE"]), app.config["NOT_DIGIT_THRESHOLD"],
        app.config["INFERENCE_BACKEND"])

    from digit_recognition.paths import check_database_url

    from .label_store_opener import LabelStoreOpener, open_label_store
    if app.config["LABELS_DATABASE_URL"]:
        check_database_url(app.config["LABELS_DATABASE_URL"])  # the store itself opens on first use
    app.extensions["label_store"] = LabelStoreOpener(lambda: open_label_store(app.config, app.logger))

    from .logging_setup import configure_logging
    configure_logging(app)

    from . import admin_auth
    admin_auth.init_app(app)  # after logging: a refused ADMIN_TOKEN is logged as JSON

    from .error_handlers import register_error_handlers
    register_error_handlers(app)

    from .chunked_bodies import register_chunked_bodies
    register_chunked_bodies(app)

    from . import health, labels_api, pages, predict_api, review
    app.register_blueprint(pages.bp)
    app.register_blueprint(predict_api.bp)
    app.register_blueprint(labels_api.bp)
    app.register_blueprint(review.bp)
    app.register_blueprint(health.bp)

    # Last: it wraps views registered above (rate limits) and every response (headers).
    from .security import register_security
    register_security(app)
    return app
