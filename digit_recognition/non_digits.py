"""What "not a digit" means: which pen characters count, and synthetic shapes.

The model learns an eleventh class from two sources, both drawn as strokes in
the pen set's 0..1000 box (y down) so they are rendered exactly as digits are:

- real letters and symbols from the pen characters file (`pen_chars_dev.jsonl.gz`,
  UNIPEN categories 1b-1d), restricted to NOT_A_DIGIT_CHARS. Characters a
  person could fairly read as a digit (O for 0, l for 1, S for 5...) are in
  DIGIT_LOOKALIKES and used nowhere: the model is neither taught that an O is
  not a 0 nor measured on it.
- synthetic shapes people draw on a digit canvas that no alphabet has:
  scribbles, zigzags, crossed circles, hearts, stars, spirals, smileys, a dot,
  a short dash, a check mark, several unrelated strokes.

Shapes that *are* digits are deliberately absent: a plain circle (0), a
vertical or slanted line (1).
"""
from __future__ import annotations

import gzip
import json
import os
from dataclasses import dataclass

import numpy as np

PEN_CHARS_PATH_ENV = "PEN_CHARS_PATH"

# The not-a-digit characters: letters and symbols no digit resembles (upper
# A C E F H K M N P R U V W X, lower c d e f h k m n p r t u v w x, symbols
# + * # @ $ % = ? < > ~ ^ { } and the dashes - _). The pen set's dots (. : ;)
# are left out: scaled up to fill the box they are blobs of no particular size,
# not the click or the dot a person makes; true-size dots are drawn instead
# (SYNTHETIC_SHAPES["dot"]).
NOT_A_DIGIT_CHARS = frozenset("ACEFHKMNPRUVWX" "cdefhkmnprtuvwx" "+*#@$%=?<>~^{}" "-_")
# Characters a fair reader could take for a digit; never used as not-a-digit
# examples (and not measured): O o Q D (0); I l i | / \ ! ( ) [ ] J j T ' ` ,
# (1, 7); Z z (2); S s (5); b G (6); B & (8); a g q y (9, 4); L Y (4, 1 with a foot).
# Neither list: the scaled-up dots . : ; (see above).
DIGIT_LOOKALIKES = frozenset("OoQDIli|/\\!()[]JjT'`,ZzSsbGB&agqyLY")


@dataclass(frozen=True)
class PenChar:
    char: str
    writer_group: str
    strokes: list


def load_pen_chars(path: str | os.PathLike | None = None, only_non_digits: bool = True) -> list[PenChar]:
    """The pen letters and symbols from `path` or $PEN_CHARS_PATH (by default only NOT_A_DIGIT_CHARS)."""
    path = path or os.environ.get(PEN_CHARS_PATH_ENV)
    if not path:
        raise FileNotFoundError(f"no pen characters file: pass a path or set ${PEN_CHARS_PATH_ENV}")
    opener = gzip.open if str(path).endswith(".gz") else open
    chars = []
    with opener(path, "rt", encoding="utf-8") as handle:
        for line in handle:
            if not line.strip():
                continue
            record = json.loads(line)
            if only_non_digits and record["char"] not in NOT_A_DIGIT_CHARS:
                continue
            chars.append(PenChar(str(record["char"]), str(record["writer_group"]), record["strokes"]))
    return chars


# --- synthetic shapes, in the pen set's 0..1000 box -------------------------------------

def _box(points: np.ndarray) -> list:
    return np.clip(np.rint(points), 0, 1000).astype(int).tolist()


def _ellipse(rng, centre, radius, start=0.0, sweep=2 * np.pi, n=40):
    t = start + np.linspace(0, sweep, n)
    wobble = 1 + rng.normal(0, 0.03, n)
    return np.stack([centre[0] + radius[0] * np.cos(t) * wobble, centre[1] + radius[1] * np.sin(t) * wobble], 1)


def _line(a, b, n=12):
    return np.linspace(a, b, n)


def scribble(rng):
    steps = int(rng.integers(25, 80))
    heading = rng.uniform(0, 2 * np.pi)
    position = rng.uniform(300, 700, 2)
    points = [position.copy()]
    for _ in range(steps):
        heading += rng.normal(0, 0.9)
        position = np.clip(position + 60 * np.array([np.cos(heading), np.sin(heading)]), 50, 950)
        points.append(position.copy())
    return [_box(np.array(points))]


def zigzag(rng):
    teeth = int(rng.integers(3, 8))
    xs = np.linspace(100, 900, teeth * 2 + 1)
    ys = np.where(np.arange(len(xs)) % 2 == 0, rng.uniform(300, 420), rng.uniform(580, 700))
    ys = ys + rng.normal(0, 25, len(xs))
    points = np.stack([xs, ys], 1)
    if rng.random() < 0.5:
        points = points[:, ::-1]  # a vertical zigzag
    return [_box(points)]


def crossed_circle(rng):
    r = rng.uniform(300, 420)
    circle = _ellipse(rng, (500, 500), (r, r * rng.uniform(0.85, 1.15)), rng.uniform(0, 6.3))
    d = r * 0.95
    if rng.random() < 0.5:  # an X inside
        arms = [_line((500 - d * 0.7, 500 - d * 0.7), (500 + d * 0.7, 500 + d * 0.7)),
                _line((500 + d * 0.7, 500 - d * 0.7), (500 - d * 0.7, 500 + d * 0.7))]
    else:  # a plus inside
        arms = [_line((500 - d, 500), (500 + d, 500)), _line((500, 500 - d), (500, 500 + d))]
    return [_box(circle)] + [_box(a) for a in arms]


def heart(rng):
    t = np.linspace(0, 2 * np.pi, 60)
    x = 16 * np.sin(t) ** 3
    y = -(13 * np.cos(t) - 5 * np.cos(2 * t) - 2 * np.cos(3 * t) - np.cos(4 * t))
    points = np.stack([x, y], 1) * rng.uniform(22, 28) + 500 + rng.normal(0, 6, (60, 2))
    return [_box(points)]


def star(rng):
    spikes = int(rng.choice([5, 5, 6]))
    turn = rng.uniform(0, 2 * np.pi)
    if spikes == 5 and rng.random() < 0.5:  # drawn in one go, the pentagram way
        order = [(i * 2) % 5 for i in range(6)]
        angles = turn + np.array(order) * 2 * np.pi / 5
        points = np.stack([500 + 420 * np.cos(angles), 500 + 420 * np.sin(angles)], 1)
    else:
        angles = turn + np.arange(spikes * 2 + 1) * np.pi / spikes
        radius = np.where(np.arange(len(angles)) % 2 == 0, 430, 180)
        points = np.stack([500 + radius * np.cos(angles), 500 + radius * np.sin(angles)], 1)
    return [_box(points + rng.normal(0, 10, points.shape))]


def spiral(rng):
    turns = rng.uniform(2, 4)
    t = np.linspace(0, turns * 2 * np.pi, 90)
    r = np.linspace(30, 450, 90)
    sign = rng.choice([-1, 1])
    return [_box(np.stack([500 + r * np.cos(sign * t), 500 + r * np.sin(sign * t)], 1))]


def smiley(rng):
    face = _ellipse(rng, (500, 500), (420, 420), rng.uniform(0, 6.3))
    eyes = [[[int(350 + rng.normal(0, 15)), int(380 + rng.normal(0, 15))]],
            [[int(650 + rng.normal(0, 15)), int(380 + rng.normal(0, 15))]]]
    mouth = _ellipse(rng, (500, 560), (180, 120), 0.3, np.pi - 0.6, 20)
    return [_box(face)] + eyes + [_box(mouth)]


def dot(rng):
    """A click or a tiny blob: one point, or a few within a few units."""
    centre = rng.uniform(400, 600, 2)
    n = int(rng.integers(1, 4))
    return [_box(centre + rng.normal(0, 3, (n, 2)))]


def dash(rng):
    """A short horizontal (or nearly) dash."""
    angle = rng.normal(0, 0.12)
    half = 400 * np.array([np.cos(angle), np.sin(angle)])
    return [_box(_line(np.array([500, 500]) - half, np.array([500, 500]) + half))]


def check_mark(rng):
    low = (rng.uniform(380, 460), rng.uniform(700, 800))
    points = np.array([(rng.uniform(120, 220), rng.uniform(450, 560)), low,
                       (rng.uniform(800, 900), rng.uniform(120, 250))])
    return [_box(np.concatenate([_line(points[0], points[1], 8), _line(points[1], points[2], 14)]))]


def unrelated_strokes(rng):
    strokes = []
    for _ in range(int(rng.integers(2, 5))):
        a = rng.uniform(80, 920, 2)
        b = np.clip(a + rng.normal(0, 260, 2), 0, 1000)
        mid = (a + b) / 2 + rng.normal(0, 80, 2)
        strokes.append(_box(np.concatenate([_line(a, mid, 6), _line(mid, b, 6)])))
    return strokes


def triangle(rng):
    angles = rng.uniform(0, 2 * np.pi) + np.array([0, 2.1, 4.2, 0]) + rng.normal(0, 0.1, 4)
    angles[3] = angles[0]
    corners = np.stack([500 + 420 * np.cos(angles), 500 + 420 * np.sin(angles)], 1)
    return [_box(np.concatenate([_line(corners[i], corners[i + 1], 8) for i in range(3)]))]


def wave(rng):
    x = np.linspace(80, 920, 50)
    y = 500 + rng.uniform(60, 160) * np.sin(np.linspace(0, rng.uniform(2, 5) * np.pi, 50))
    return [_box(np.stack([x, y], 1))]


# Capital letters and signs as people print them with a ruler-straight hand:
# strokes between points of a unit box (x right, y down). Pen letters are
# mostly written faster and rounder; these make sure a block "A" is not a 4.
BLOCK_GLYPHS = {
    "A": [[(0.0, 1.0), (0.5, 0.0), (1.0, 1.0)], [(0.22, 0.6), (0.78, 0.6)]],
    "A2": [[(0.0, 1.0), (0.5, 0.0)], [(0.5, 0.0), (1.0, 1.0)], [(0.25, 0.55), (0.75, 0.55)]],
    "E": [[(1.0, 0.0), (0.0, 0.0), (0.0, 1.0), (1.0, 1.0)], [(0.0, 0.5), (0.8, 0.5)]],
    "F": [[(1.0, 0.0), (0.0, 0.0), (0.0, 1.0)], [(0.0, 0.5), (0.8, 0.5)]],
    "H": [[(0.0, 0.0), (0.0, 1.0)], [(1.0, 0.0), (1.0, 1.0)], [(0.0, 0.5), (1.0, 0.5)]],
    "K": [[(0.0, 0.0), (0.0, 1.0)], [(1.0, 0.0), (0.0, 0.55), (1.0, 1.0)]],
    "M": [[(0.0, 1.0), (0.0, 0.0), (0.5, 0.6), (1.0, 0.0), (1.0, 1.0)]],
    "N": [[(0.0, 1.0), (0.0, 0.0), (1.0, 1.0), (1.0, 0.0)]],
    "V": [[(0.0, 0.0), (0.5, 1.0), (1.0, 0.0)]],
    "W": [[(0.0, 0.0), (0.25, 1.0), (0.5, 0.35), (0.75, 1.0), (1.0, 0.0)]],
    "X": [[(0.0, 0.0), (1.0, 1.0)], [(1.0, 0.0), (0.0, 1.0)]],
    "R": [[(0.0, 1.0), (0.0, 0.0), (0.8, 0.0), (1.0, 0.25), (0.8, 0.5), (0.0, 0.5)], [(0.4, 0.5), (1.0, 1.0)]],
    "P": [[(0.0, 1.0), (0.0, 0.0), (0.8, 0.0), (1.0, 0.25), (0.8, 0.5), (0.0, 0.5)]],
    "U": [[(0.0, 0.0), (0.0, 0.8), (0.2, 1.0), (0.8, 1.0), (1.0, 0.8), (1.0, 0.0)]],
    "plus": [[(0.5, 0.0), (0.5, 1.0)], [(0.0, 0.5), (1.0, 0.5)]],
    "hash": [[(0.35, 0.0), (0.25, 1.0)], [(0.75, 0.0), (0.65, 1.0)], [(0.0, 0.35), (1.0, 0.35)],
             [(0.0, 0.7), (1.0, 0.7)]],
    "asterisk": [[(0.5, 0.0), (0.5, 1.0)], [(0.07, 0.25), (0.93, 0.75)], [(0.93, 0.25), (0.07, 0.75)]],
    "equals": [[(0.0, 0.35), (1.0, 0.35)], [(0.0, 0.65), (1.0, 0.65)]],
    "less": [[(1.0, 0.0), (0.0, 0.5), (1.0, 1.0)]],
    "greater": [[(0.0, 0.0), (1.0, 0.5), (0.0, 1.0)]],
}


def block_glyph(rng):
    """One BLOCK_GLYPHS glyph, with a random aspect, slant and wobble."""
    glyph = BLOCK_GLYPHS[list(BLOCK_GLYPHS)[int(rng.integers(len(BLOCK_GLYPHS)))]]
    width, height = rng.uniform(450, 900), rng.uniform(650, 950)
    slant = rng.uniform(-0.25, 0.25)
    strokes = []
    for stroke in glyph:
        corners = np.asarray(stroke, dtype=np.float64)
        points = np.concatenate([_line(corners[i], corners[i + 1], 8) for i in range(len(corners) - 1)])
        x = 500 + (points[:, 0] - 0.5) * width + (0.5 - points[:, 1]) * height * slant
        y = 500 + (points[:, 1] - 0.5) * height
        strokes.append(_box(np.stack([x, y], 1) + rng.normal(0, 8, (len(points), 2))))
    return strokes


SYNTHETIC_SHAPES = {
    "block_glyph": block_glyph, "block_glyph_2": block_glyph, "block_glyph_3": block_glyph,
    "scribble": scribble, "zigzag": zigzag, "crossed_circle": crossed_circle, "heart": heart,
    "star": star, "spiral": spiral, "smiley": smiley, "dot": dot, "dash": dash,
    "check_mark": check_mark, "unrelated_strokes": unrelated_strokes, "triangle": triangle, "wave": wave,
}


def synthetic_non_digits(rng: np.random.Generator, count: int) -> list[tuple[str, list]]:
    """`count` (shape name, strokes) pairs, the shapes in equal shares."""
    names = list(SYNTHETIC_SHAPES)
    return [(names[i % len(names)], SYNTHETIC_SHAPES[names[i % len(names)]](rng)) for i in range(count)]
