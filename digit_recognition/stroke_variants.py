"""Writing styles MNIST barely has, added to real pen digits at the stroke level.

MNIST's writers (US Census staff and students) rarely slash a zero, put a flag
and a foot on a one, or cross a seven; many people do. The pen set has some,
not enough. Each variant below takes a real pen digit's strokes (0..1000 box,
y down) and adds the strokes such a writer would, so the result is still that
writer's digit, drawn their way.
"""
from __future__ import annotations

import numpy as np


def _points(strokes) -> np.ndarray:
    return np.concatenate([np.asarray(s, dtype=np.float64).reshape(-1, 2) for s in strokes])


def _segment(a, b, n: int = 10) -> list:
    return np.rint(np.linspace(a, b, n)).astype(int).tolist()


def slashed_zero(strokes, rng):
    """A 0 with a slash through it, usually bottom-left to top-right, often past the oval."""
    pts = _points(strokes)
    (x0, y0), (x1, y1) = pts.min(axis=0), pts.max(axis=0)
    w, h = x1 - x0, y1 - y0
    overshoot = rng.uniform(-0.05, 0.15)
    a = (x0 + w * rng.uniform(0.0, 0.2) - w * overshoot, y1 - h * rng.uniform(0.0, 0.1) + h * overshoot)
    b = (x1 - w * rng.uniform(0.0, 0.2) + w * overshoot, y0 + h * rng.uniform(0.0, 0.1) - h * overshoot)
    if rng.random() < 0.2:  # some slash the other way
        a, b = (b[0], a[1]), (a[0], b[1])
    return list(strokes) + [_segment(a, b)]


def dotted_zero(strokes, rng):
    """A 0 with a dot in the middle."""
    pts = _points(strokes)
    centre = (pts.min(axis=0) + pts.max(axis=0)) / 2 + rng.normal(0, 20, 2)
    return list(strokes) + [[np.rint(centre).astype(int).tolist()]]


def flagged_one(strokes, rng):
    """A 1 with a flag at the top (if it has none) and often a foot."""
    pts = _points(strokes)
    (x0, y0), (x1, y1) = pts.min(axis=0), pts.max(axis=0)
    h = max(y1 - y0, 1.0)
    top = pts[np.argmin(pts[:, 1])]
    bottom = pts[np.argmax(pts[:, 1])]
    flag, foot = [], []
    if (x1 - x0) / h < 0.25:  # a bare stem: give it a flag, drawn first as people do
        flag_end = top + np.array([-h * rng.uniform(0.2, 0.4), h * rng.uniform(0.15, 0.35)])
        flag.append(_segment(flag_end, top))
    if rng.random() < 0.6:
        half = h * rng.uniform(0.15, 0.3)
        foot.append(_segment(bottom - (half, 0), bottom + (half, rng.normal(0, h * 0.02))))
    return flag + list(strokes) + foot


def crossed_seven(strokes, rng):
    """A 7 with a short bar across its stem, about halfway down."""
    pts = _points(strokes)
    y0, y1 = pts[:, 1].min(), pts[:, 1].max()
    h = max(y1 - y0, 1.0)
    level = y0 + h * rng.uniform(0.45, 0.6)
    near = pts[np.argsort(np.abs(pts[:, 1] - level))[:3]]
    x = float(near[:, 0].mean())
    half = h * rng.uniform(0.15, 0.25)
    return list(strokes) + [_segment((x - half, level), (x + half, level + rng.normal(0, h * 0.02)))]


# Per digit: (variant, probability it is applied to a training render).
VARIANTS = {
    0: ((slashed_zero, 0.25), (dotted_zero, 0.1)),
    1: ((flagged_one, 0.4),),
    7: ((crossed_seven, 0.3),),
}


def vary(label: int, strokes, rng: np.random.Generator):
    """Maybe apply one of the digit's variants (at most one), as VARIANTS says."""
    for variant, probability in VARIANTS.get(label, ()):
        if rng.random() < probability:
            return variant(strokes, rng)
    return strokes
