"""Logging setup (owned by the ops work, issue 6)."""


def configure_logging(app):
    app.logger.setLevel(app.config["LOG_LEVEL"])
