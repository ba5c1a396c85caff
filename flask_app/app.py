"""WSGI entry point: `gunicorn flask_app.app:app` from the repository root.

Each gunicorn worker imports this module and so builds its own app and loads
its own model (TensorFlow must not be shared across fork).
"""
from flask_app import create_app

app = create_app()

if __name__ == "__main__":  # local development only: `python -m flask_app.app`
    import os

    app.run(host="127.0.0.1", port=int(os.environ.get("PORT", "8080")))
