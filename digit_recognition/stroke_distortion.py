"""Other hands for the same drawing: small changes to a pen drawing's strokes.

Two writers of the same digit differ less in how the whole image is turned or
scaled (the augmentation in model.RandomBend covers that) than in how its
strokes sit relative to each other: where a 4's stem crosses its bar, how far a
5's hat floats from its body, the angle of a 7's top against its stem, how
round a curve is. The training set has digits from two real writer groups, so
the model learns their habits; `distort` moves a drawing's strokes the way
another writer's would, before it is rendered:

- each stroke is turned, scaled and shifted a little about its own centre;
- each stroke bends: a smooth displacement along its length;
- the whole drawing is slanted and made wider or narrower.

Sizes are shares of the drawing's height, so they mean the same for a dot and
for a tall 1. At `strength` 1 the changes stay within what one digit still
looks like: tests/test_stroke_distortion.py has the shipped model read moved
digits about as well as the drawn ones. Measured in training and off by
default (README, "Another hand for the same strokes").
"""
from __future__ import annotations

import numpy as np

# At strength 1: standard deviations (angles in radians, sizes as shares of the
# drawing's height), each clipped at two of them.
STROKE_TURN = np.deg2rad(6.0)
STROKE_SCALE = 0.07
STROKE_SHIFT = 0.03
STROKE_BEND = 0.025
SLANT = 0.12
WIDTH_SCALE = 0.08


def _clipped_normal(rng: np.random.Generator, sd: float, size=None):
    return np.clip(rng.normal(0.0, sd, size), -2 * sd, 2 * sd)


def _bend(points: np.ndarray, height: float, strength: float, rng: np.random.Generator) -> np.ndarray:
    """A smooth displacement along the stroke: half a sine wave and a whole one, random phase."""
    if len(points) < 3:
        return points
    steps = np.linalg.norm(np.diff(points, axis=0), axis=1)
    along = np.concatenate([[0.0], np.cumsum(steps)])
    if along[-1] <= 0:
        return points
    t = along / along[-1]
    shift = np.zeros_like(points)
    for waves in (0.5, 1.0):
        amplitude = _clipped_normal(rng, STROKE_BEND * strength * height, 2)
        shift += np.sin(np.pi * 2 * waves * t + rng.uniform(0, 2 * np.pi))[:, None] * amplitude
    return points + shift


def distort(strokes, rng: np.random.Generator, strength: float = 1.0) -> list:
    """The drawing's strokes (lists of [x, y] in the pen set's box) as another hand might place them.

    Returns new strokes of the same count and points per stroke, as floats.
    Strength 0 (the training default) returns `strokes` itself and draws
    nothing from `rng`, so training's renders are what they were without it.
    """
    if strength <= 0 or not strokes:
        return strokes
    arrays = [np.asarray(s, dtype=np.float64).reshape(-1, 2) for s in strokes]
    everything = np.concatenate(arrays)
    low, high = everything.min(axis=0), everything.max(axis=0)
    # A flat dash has no height: size the changes by its length instead.
    height = max(high[1] - low[1], 0.3 * (high[0] - low[0]), 1.0)
    moved = []
    for points in arrays:
        centre = points.mean(axis=0)
        turn = _clipped_normal(rng, STROKE_TURN * strength)
        scale = 1.0 + _clipped_normal(rng, STROKE_SCALE * strength)
        cos, sin = np.cos(turn), np.sin(turn)
        rotation = np.array([[cos, -sin], [sin, cos]]) * scale
        shift = _clipped_normal(rng, STROKE_SHIFT * strength * height, 2)
        placed = (points - centre) @ rotation.T + centre + shift
        moved.append(_bend(placed, height, strength, rng))
    # The whole drawing: a slant about its middle row and a change of width.
    middle = (low + high) / 2
    slant = _clipped_normal(rng, SLANT * strength)
    width = 1.0 + _clipped_normal(rng, WIDTH_SCALE * strength)
    result = []
    for points in moved:
        x = middle[0] + (points[:, 0] - middle[0]) * width - slant * (points[:, 1] - middle[1])
        result.append(np.stack([x, points[:, 1]], axis=1).tolist())
    return result
