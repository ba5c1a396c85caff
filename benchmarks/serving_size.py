"""How big the serving image's Python packages are, beside the training stack's.

Measured the way it can be without Docker: a fresh virtual environment in a
temp folder, `pip install -r requirements-serve.txt` (what the Dockerfile
installs), then the bytes under its site-packages. Baseline, same run: the
bytes the distributions of requirements.txt (TensorFlow and Keras included:
what the image installed before) occupy in this interpreter's environment.
Also times, in the fresh venv, importing the runtime and the whole app.

    python benchmarks/serving_size.py
"""
from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from testing_support.container_command import (  # noqa: E402
    build_venv, image_requirements_file, installed_bytes, requirements_closure, site_packages_bytes,
)

TARGET_MB = 350


def main() -> int:
    serve_requirements = image_requirements_file()
    training_bytes = installed_bytes(requirements_closure(REPO_ROOT / "requirements.txt"))
    with tempfile.TemporaryDirectory() as scratch:
        started = time.perf_counter()
        venv = build_venv(Path(scratch) / "venv", serve_requirements)
        install_s = time.perf_counter() - started
        serving_bytes = site_packages_bytes(venv)
        python = str(venv / "bin" / "python")
        import_s = {}
        for what, code in (("import ai_edge_litert.interpreter", "import ai_edge_litert.interpreter"),
                           ("import flask_app.app (the whole app, model loaded)", "import flask_app.app")):
            started = time.perf_counter()
            subprocess.run([python, "-c", code], cwd=REPO_ROOT, check=True, capture_output=True,
                           env={"PATH": "/usr/bin:/bin", "LABELS_DIR": str(Path(scratch) / "labels")})
            import_s[what] = time.perf_counter() - started
    mb = 1024 * 1024
    print(f"fresh venv from {serve_requirements.name}: {serving_bytes / mb:.0f} MiB of packages "
          f"(installed in {install_s:.0f} s, pip's cache warm or not)")
    print(f"baseline, requirements.txt's distributions here: {training_bytes / mb:.0f} MiB")
    print(f"serving / baseline: {serving_bytes / training_bytes:.2f}x; target <= {TARGET_MB} MiB: "
          f"{'met' if serving_bytes <= TARGET_MB * mb else 'NOT met'}")
    for what, seconds in import_s.items():
        print(f"fresh interpreter, {what}: {seconds:.2f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
