"""Digit drawings for the label-store tests: hand-written strokes for 0-9,
rendered through the same canvas emulation the benchmarks use, and helpers
to look at everything a store directory holds."""
from __future__ import annotations

import base64
import math
from pathlib import Path

import numpy as np

from digit_recognition.strokes import random_canvas_params, render_strokes, to_png_bytes


def _ellipse(cx, cy, rx, ry, start=0.0, end=360.0, steps=24):
    return [(cx + rx * math.cos(math.radians(a)), cy + ry * math.sin(math.radians(a)))
            for a in np.linspace(start, end, steps)]


# Strokes in a 0..1000 box, y pointing down, as a person might draw each digit.
DIGIT_STROKES = {
    0: [_ellipse(500, 500, 260, 400)],
    1: [[(380, 230), (520, 100), (520, 900)]],
    2: [[(250, 300), (350, 150), (550, 100), (720, 200), (720, 380), (250, 900), (780, 900)]],
    3: [[(250, 150), (700, 150), (450, 450), (700, 600), (650, 850), (250, 880)]],
    4: [[(600, 900), (600, 100), (200, 650), (800, 650)]],
    5: [[(750, 100), (300, 100), (270, 450), (600, 420), (750, 600), (650, 850), (250, 880)]],
    6: [[(700, 100), (350, 400), (250, 700), (450, 900), (700, 750), (600, 500), (300, 600)]],
    7: [[(200, 100), (800, 100), (400, 900)]],
    8: [_ellipse(500, 280, 200, 180), _ellipse(500, 700, 250, 210)],
    9: [_ellipse(480, 300, 220, 200), [(700, 300), (650, 900)]],
}


def digit_png(label: int, seed: int = 0, canvas_px: tuple[int, int] = (140, 220)) -> bytes:
    """A canvas-like PNG of `label`, in a random size, place, pen width and style."""
    rng = np.random.default_rng(seed)
    return to_png_bytes(render_strokes(DIGIT_STROKES[label], random_canvas_params(rng, canvas_px=canvas_px)))


def data_url(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def snapshot(root: Path) -> dict[str, bytes]:
    """Every file under `root` (hidden ones too) with its content."""
    root = Path(root)
    if not root.exists():
        return {}
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def sample_files(root: Path) -> dict[str, list[str]]:
    """The store's image files by kind: png, temp (hidden .tmp) and other."""
    kinds: dict[str, list[str]] = {"png": [], "temp": [], "other": []}
    for path in sorted(Path(root).glob("images/*/*")):
        name = path.name
        if name.startswith(".") and name.endswith(".tmp"):
            kinds["temp"].append(str(path))
        elif name.endswith(".png") and path.parent.name == name[:2]:
            kinds["png"].append(str(path))
        else:
            kinds["other"].append(str(path))
    return kinds


def image_files(root: Path) -> dict[str, bytes]:
    """Every file under `root`/images with its content (what a refused write must not leave)."""
    return snapshot(Path(root) / "images")
