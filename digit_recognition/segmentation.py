"""Split a drawing's ink into the digits a person would read, left to right.

A number is written as one line of digits; a digit is one or more pen strokes.
The steps, on the ink map (the model is asked only where geometry cannot decide):

1. **Connected ink**: pixels at least BBOX_THRESHOLD of the strongest ink,
   8-connected, found run by run (numpy only; no scipy in the image).
2. **Specks** much smaller than a pen dab are dropped (compression noise); a
   deliberate dot (one tap of the brush) is kept.
3. **Strokes that share columns belong together**: components whose horizontal
   extents overlap by at least half the narrower one's width are one digit.
   That is how a person groups a 4 or 5 lifted mid-way, a 7's crossbar, the
   slash of a 0, the dot in a dotted zero, and the two bars of "=" (one thing,
   not two digits). Neighbouring digits in a line overlap far less; nearly
   touching neighbours are joined only when the recognizer reads them as one
   digit clearly better than as two.
4. **Wide parts are cut** where a person would: a part at least half as wide
   as tall may hold touching or overlapping digits. Candidate cuts (between
   the part's strokes, through the valleys of its column ink profile, and
   evenly across it) are scored with the recognizer through a callback
   (`score`: 28x28 images -> the model's calibrated class probabilities, from
   which `digit_likeness` says how much each looks like one digit; a side the
   model calls not a digit scores near 0, so it is a bad cut), so this module
   does not depend on the model backend. All parts' candidates go in one batch.
   One unbroken stroke is never cut into two 1s: that is a U, V, v or ^.
   Without a callback only very wide parts are cut, at the deepest valley.

Each part's ink goes through `normalize_ink`, exactly like a single digit; a
drawing read as one part is normalised unmasked, so it gives the very same
28x28 as `preprocess_drawing`.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Callable

import numpy as np

from .preprocessing import BBOX_THRESHOLD, frame_inked_region, inked_region, normalize_ink

# (N, 28, 28) float32 -> (N, 10 or 11): the model's calibrated class probabilities
# (the ten digits, then "not a digit" when the model has that class).
Scorer = Callable[[np.ndarray], np.ndarray]

# Components whose x-extents overlap by this share of the narrower one's width
# are strokes of one digit (a digit's own strokes overlap ~100%, neighbours little).
MERGE_OVERLAP = 0.5
# Smaller than this share of a brush dab's area (stroke width squared) is a speck.
SPECK_AREA = 0.2
# Width / height of a part's stroke skeleton (its box less one stroke width)
# from which it may hold several digits (see TIE_ASPECT) ...
MAY_SPLIT_ASPECT = 0.9
# ... and above which it surely does (what is cut when there is no recognizer to ask).
MUST_SPLIT_ASPECT = 2.0
# A cut leaves each side at least this share of the part's height wide (a 1 is narrow).
MIN_SIDE_WIDTH = 0.12
# Both sides of a cut must be digit-tall (this share of the part's height) and
# read as digits (the product of their digit-likeness at least this; a side the
# model calls not a digit scores near 0, so a cut through a 0 into "(" and ")"
# or a letter into strokes fails here) ...
CUT_SIDE_HEIGHT = 0.7
SPLIT_MIN_SCORE = 0.9
# ... and then the two sides must read clearly better than the whole (x1.5),
# the part being wider than tall (a narrower U, V or A, not a digit whole,
# reads as "11" cut in two) ...
SPLIT_GAIN = 1.5
SPLIT_ASPECT = 1.0
# ... or, when both read about as well (a squeezed "88" still reads as an 8: the
# whole reads as a digit, TIE_WHOLE_SCORE), the part is about as wide as tall,
# both sides are taller (TIE_SIDE_HEIGHT; a wide 4 or 7 cut into a digit and a
# short stub is what a laxer rule gets wrong) and the cut crosses at most one
# stroke, where two touching digits meet. (Chosen on rendered held-out pen
# digits, singles vs touching pairs, and on letters.)
TIE_ASPECT = 0.9
TIE_SIDE_HEIGHT = 0.8
TIE_WHOLE_SCORE = 0.6
TIE_MARGIN = 0.02
CLEAN_CUT_CROSSINGS = 1
# One unbroken stroke (a single connected component) is never cut into two 1s:
# a 1 is one straight stroke, and two that meet make a U, V, v or ^. (On 2,500
# rendered letters of unseen writers this left 28 fewer cut into digits and
# changed none of 500 touching pairs. Also tried: keeping whole a stroke the
# model calls not a digit (>= 0.9) and narrower than 1.3x its height; it saved
# ~15 more letters but lost up to 6 touching pairs that were read right.)
DIGIT_ONE = 1
# Neighbouring parts closer than this share of the line height may be one digit
# whose strokes barely overlap (a 4 drawn as an "L" and a stem beside it): the
# recognizer is asked whether they read better as one digit or as two. (Digits
# of a number written with clear gaps are 0.12+ apart; a digit's strokes overlap.)
ASK_MERGE_GAP = 0.06
# Joined, two neighbours that would make a valid cut (digit-tall, both reading
# well) must read this many times better than apart: touching digits that each
# read well ("16") are not one digit because the model also reads the squeezed
# pair as a 6.
MERGE_GAIN = 2.0
# ... unless they overlap side by side by this share of the narrower one's
# width: digits of a number sit side by side, a digit's strokes overlap (a 4
# drawn as an "L" and a stem through its corner, whose "L" reads as a 1).
STROKES_OVERLAP = 0.25
MAX_CUT_DEPTH = 6
MAX_CANDIDATE_CUTS = 6
GRID_CUTS = 7
MAX_PARTS = 24  # a line on the canvas; beyond this it is scribbling, not a number


@dataclass(frozen=True)
class Part:
    """One digit-sized piece of a drawing."""

    box: tuple[int, int, int, int]  # x, y, w, h in the drawing's own pixels
    image: np.ndarray  # the 28x28 `normalize_ink` makes of the part's ink


def _likeness(score: Scorer, images: list[np.ndarray]) -> np.ndarray:
    return digit_likeness(score(np.stack(images)))


def digit_likeness(probabilities: np.ndarray) -> np.ndarray:
    """A classifier's (N, 10) or (N, 11) output -> (N,) how much each is one clear digit.

    The top digit probability (renormalised over the ten digits), times the
    chance it is a digit at all when the model has an 11th "not a digit" class.
    """
    probabilities = np.asarray(probabilities, dtype=np.float64)
    digits = probabilities[:, :10]
    top = digits.max(axis=1) / np.maximum(digits.sum(axis=1), 1e-12)
    if probabilities.shape[1] > 10:
        top = top * (1.0 - probabilities[:, 10])
    return top


@dataclass(frozen=True)
class Components:
    """8-connected components of a boolean image."""

    labels: np.ndarray  # (H, W) int32, -1 for background
    count: int
    area: np.ndarray  # per component: pixels
    x0: np.ndarray  # per component: box, x1 and y1 exclusive
    x1: np.ndarray
    y0: np.ndarray
    y1: np.ndarray


def label_components(mask: np.ndarray) -> Components:
    """8-connected components of a boolean image, labelled 0..count-1.

    Works on horizontal runs: runs on neighbouring rows that touch (diagonals
    included) are joined, then labels are settled by hooking roots and pointer
    jumping, all vectorised. A canvas line has a few thousand runs at most.
    """
    height, width = mask.shape
    run_rows, run_starts, run_ends, run_labels, total = _run_components(mask)
    labels = np.full((height, width), -1, dtype=np.int32)
    if total == 0:
        empty = np.zeros(0, dtype=np.int64)
        return Components(labels, 0, empty, empty, empty, empty, empty)
    # Paint runs: +label at each start, -label at each end, cumulative sum per row.
    paint = np.zeros((height, width + 1), dtype=np.int32)
    np.add.at(paint, (run_rows, run_starts), run_labels + 1)
    np.add.at(paint, (run_rows, run_ends), -(run_labels + 1))
    labels[:] = np.cumsum(paint, axis=1)[:, :width] - 1
    area = np.bincount(run_labels, weights=run_ends - run_starts, minlength=total).astype(np.int64)
    x0 = np.full(total, width)
    np.minimum.at(x0, run_labels, run_starts)
    x1 = np.zeros(total, dtype=np.int64)
    np.maximum.at(x1, run_labels, run_ends)
    y0 = np.full(total, height)
    np.minimum.at(y0, run_labels, run_rows)
    y1 = np.zeros(total, dtype=np.int64)
    np.maximum.at(y1, run_labels, run_rows + 1)
    return Components(labels, total, area, x0, x1, y0, y1)


def _run_components(mask: np.ndarray):
    """The horizontal runs of a boolean image and their components:
    (rows, starts, ends (exclusive), component of each run, component count)."""
    height, width = mask.shape
    # Each row padded with background on both sides, then read as one line:
    # the padding keeps runs from joining across rows, and one pass over the
    # flat line finds every run's start and end (a 2D nonzero per kind of edge
    # took most of this function's time). Starts and ends alternate.
    padded = np.zeros((height, width + 2), dtype=bool)
    padded[:, 1:-1] = mask
    line = padded.ravel()
    edges = np.flatnonzero(line[1:] != line[:-1]) + 1  # flat index of the pixel after each change
    run_rows, columns = np.divmod(edges[0::2], width + 2)
    run_starts = columns - 1                              # first column of each run
    run_ends = edges[1::2] - run_rows * (width + 2) - 1   # one past its last column
    count = len(run_rows)
    if count == 0:
        return run_rows, run_starts, run_ends, run_rows, 0
    # Runs sorted row-major; keys put every row in its own band of columns.
    band = width + 4
    start_keys = run_rows * band + run_starts
    end_keys = run_rows * band + run_ends
    # Runs on the row above that touch run b: end >= start_b and start <= end_b
    # (ends are exclusive, so this is 8-connectivity).
    above = (run_rows - 1) * band
    first = np.searchsorted(end_keys, above + run_starts, side="left")
    last = np.searchsorted(start_keys, above + run_ends, side="right")
    touching = np.maximum(last - first, 0)
    run_b = np.repeat(np.arange(count), touching)
    offsets = np.arange(touching.sum()) - np.repeat(np.cumsum(touching) - touching, touching)
    run_a = np.repeat(first, touching) + offsets
    parent = np.arange(count)
    while True:
        root_a, root_b = parent[run_a], parent[run_b]
        differ = root_a != root_b
        if not differ.any():
            break
        low = np.minimum(root_a[differ], root_b[differ])
        high = np.maximum(root_a[differ], root_b[differ])
        np.minimum.at(parent, high, low)
        while True:
            jumped = parent[parent]
            if np.array_equal(jumped, parent):
                break
            parent = jumped
    roots, run_labels = np.unique(parent, return_inverse=True)
    return run_rows, run_starts, run_ends, run_labels, len(roots)


def _stroke_width(mask: np.ndarray) -> float:
    """Twice the ink area over its outline length: a stroke's width."""
    interior = mask.copy()
    interior[1:, :] &= mask[:-1, :]
    interior[:-1, :] &= mask[1:, :]
    interior[:, 1:] &= mask[:, :-1]
    interior[:, :-1] &= mask[:, 1:]
    area = np.count_nonzero(mask)
    outline = area - np.count_nonzero(interior)
    return 2.0 * float(area) / max(outline, 1)


@dataclass
class _Piece:
    """A candidate part: some components, optionally limited to a column range."""

    ids: tuple[int, ...]
    x0: int
    x1: int  # exclusive
    y0: int = 0
    y1: int = 0
    joined: bool = False  # neighbours joined because they read better as one digit

    @property
    def width(self) -> int:
        return self.x1 - self.x0

    @property
    def height(self) -> int:
        return self.y1 - self.y0


class _Drawing:
    """The ink map with its components, and the pixels of any piece of it."""

    def __init__(self, ink: np.ndarray):
        self.ink = ink
        components = label_components(ink >= BBOX_THRESHOLD)
        self.labels, self.count, self.area = components.labels, components.count, components.area
        self.x0, self.x1, self.y0, self.y1 = components.x0, components.x1, components.y0, components.y1
        self.stroke_width = _stroke_width(self.labels >= 0)

    def piece(self, ids, x0=None, x1=None) -> _Piece:
        ids = tuple(sorted(int(i) for i in ids))
        lo = int(self.x0[list(ids)].min()) if x0 is None else x0
        hi = int(self.x1[list(ids)].max()) if x1 is None else x1
        top, mask = self.mask(ids, lo, hi)
        rows = np.flatnonzero(mask.any(axis=1))
        cols = np.flatnonzero(mask.any(axis=0))
        return _Piece(ids, lo + int(cols[0]), lo + int(cols[-1]) + 1,
                      top + int(rows[0]), top + int(rows[-1]) + 1)

    def mask(self, ids, x0: int, x1: int) -> tuple[int, np.ndarray]:
        """(first row, pixels of components `ids` in columns [x0, x1) from that row down)."""
        ids = list(ids)
        top, bottom = int(self.y0[ids].min()), int(self.y1[ids].max())
        member = np.zeros(self.count + 1, dtype=bool)  # index 0: background (label -1)
        member[np.asarray(ids) + 1] = True
        return top, member[self.labels[top:bottom, x0:x1] + 1]

    def piece_ink(self, piece: _Piece) -> np.ndarray:
        top, mask = self.mask(piece.ids, piece.x0, piece.x1)
        mask = mask[piece.y0 - top:piece.y1 - top]
        return np.where(mask, self.ink[piece.y0:piece.y1, piece.x0:piece.x1], 0.0)

    def image(self, piece: _Piece) -> np.ndarray:
        return normalize_ink(self.piece_ink(piece))


def _groups(drawing: _Drawing, kept: np.ndarray) -> list[list[int]]:
    """Components whose columns overlap enough, joined transitively, left to right."""
    order = [int(i) for i in kept[np.argsort(drawing.x0[kept])]]
    parent = {i: i for i in order}

    def root(i):
        while parent[i] != i:
            i = parent[i]
        return i

    for position, a in enumerate(order):
        for b in order[position + 1:]:
            if drawing.x0[b] >= drawing.x1[a]:
                break  # sorted by left edge: nothing further right overlaps a
            overlap = min(drawing.x1[a], drawing.x1[b]) - drawing.x0[b]
            narrower = min(drawing.x1[a] - drawing.x0[a], drawing.x1[b] - drawing.x0[b])
            if overlap >= MERGE_OVERLAP * narrower:
                parent[root(b)] = root(a)
    groups: dict[int, list[int]] = {}
    for i in order:
        groups.setdefault(root(i), []).append(i)
    return sorted(groups.values(), key=lambda ids: drawing.x0[ids].min())


def _merge_close(drawing: _Drawing, groups: list[_Piece], line_height: float,
                 score: Scorer) -> list[_Piece]:
    """Join neighbours that the recognizer reads better as one digit than as two."""
    while len(groups) > 1:
        candidates = []
        for index, (left, right) in enumerate(zip(groups, groups[1:], strict=False)):
            if right.x0 - left.x1 >= ASK_MERGE_GAP * line_height:
                continue
            joined = drawing.piece(left.ids + right.ids)
            if _aspect(joined, drawing.stroke_width, line_height) < MUST_SPLIT_ASPECT:
                candidates.append((index, joined))
        if not candidates:
            break
        images = []
        for index, joined in candidates:
            images += [drawing.image(joined), drawing.image(groups[index]), drawing.image(groups[index + 1])]
        scores = _likeness(score, images).reshape(-1, 3)
        # Neighbours that would make a valid cut (two digit-tall sides that
        # both read well) must read much better joined; others (the "L" of a
        # 4 beside its stem) only better.
        pairs = scores[:, 1] * scores[:, 2]
        tall = np.array([min(groups[index].height, groups[index + 1].height) >= CUT_SIDE_HEIGHT * joined.height
                         for index, joined in candidates])
        overlapping = np.array([_overlap(groups[index], groups[index + 1]) >= STROKES_OVERLAP
                                for index, _ in candidates])
        required = np.where(tall & (pairs >= SPLIT_MIN_SCORE) & ~overlapping, MERGE_GAIN, 1.0)
        gains = scores[:, 0] / np.maximum(pairs * required, 1e-12)
        best = int(np.argmax(gains))
        if gains[best] <= 1.0:
            break
        index, joined = candidates[best]
        # The recognizer has just preferred it whole: it is not cut again.
        groups = groups[:index] + [replace(joined, joined=True)] + groups[index + 2:]
    return groups


def _overlap(left: _Piece, right: _Piece) -> float:
    """How far two pieces' columns overlap, as a share of the narrower one's width."""
    return (min(left.x1, right.x1) - right.x0) / max(min(left.width, right.width), 1)


def _aspect(piece: _Piece, stroke_width: float, line_height: float) -> float:
    """Width over height of the piece's pen path (its box less one stroke width).

    The height never counts as less than half the line's: a dash is short, not wide.
    """
    height = max(piece.height, 0.5 * line_height) - stroke_width
    return (piece.width - stroke_width) / max(height, 1.0)


class _Sides:
    """The two sides of any vertical cut through a piece, in O(1) per cut.

    Cutting is tried at a dozen columns and between components; finding each
    side's components and box from the pixels every time cost about 3 ms for a
    digit as wide as tall. One pass over the piece's columns gives, for every
    column, the box of the ink left of it and right of it (running minima and
    maxima), and each component's first and last column.
    """

    def __init__(self, drawing: _Drawing, piece: _Piece):
        self.piece = piece
        self.top, self.mask = drawing.mask(piece.ids, piece.x0, piece.x1)
        labels = drawing.labels[self.top:self.top + self.mask.shape[0], piece.x0:piece.x1]
        inked = self.mask.any(axis=0)
        rows = self.mask.shape[0]
        first_row = np.where(inked, self.mask.argmax(axis=0), rows)
        last_row = np.where(inked, rows - 1 - self.mask[::-1].argmax(axis=0), -1)
        width = len(inked)
        ink_columns = np.arange(width)
        first_col, last_col = np.where(inked, ink_columns, width), np.where(inked, ink_columns, -1)

        def from_left(values, reduce, empty):  # index k: over columns [0, k)
            return np.concatenate([[empty], reduce.accumulate(values)])

        def from_right(values, reduce, empty):  # index k: over columns [k, width)
            return np.concatenate([reduce.accumulate(values[::-1])[::-1], [empty]])

        self.left_box = (from_left(first_col, np.minimum, width), from_left(last_col, np.maximum, -1),
                         from_left(first_row, np.minimum, rows), from_left(last_row, np.maximum, -1))
        self.right_box = (from_right(first_col, np.minimum, width), from_right(last_col, np.maximum, -1),
                          from_right(first_row, np.minimum, rows), from_right(last_row, np.maximum, -1))
        # Each component's first and last column within the piece.
        self.id_cols = {}
        for i in piece.ids:
            cols = np.flatnonzero((labels == i).any(axis=0))
            if len(cols):
                self.id_cols[i] = (int(cols[0]), int(cols[-1]))

    def left(self, k: int) -> _Piece | None:
        """The ink in the piece's columns [0, k), or None if there is none."""
        return self._side(k, self.left_box, tuple(i for i, (first, _) in self.id_cols.items() if first < k))

    def right(self, k: int) -> _Piece | None:
        """The ink in the piece's columns [k, width), or None if there is none."""
        return self._side(k, self.right_box, tuple(i for i, (_, last) in self.id_cols.items() if last >= k))

    def _side(self, k: int, box, ids) -> _Piece | None:
        first_col, last_col, top_row, bottom_row = (int(values[k]) for values in box)
        if last_col < 0:
            return None
        x0, top = self.piece.x0, self.top
        return _Piece(tuple(sorted(ids)), x0 + first_col, x0 + last_col + 1, top + top_row, top + bottom_row + 1)


def _candidate_splits(drawing: _Drawing, piece: _Piece, line_height: float):
    """Ways to cut a piece in two, as (left, right, strokes the cut crosses).

    Between its components (ordered by centre), and through the valleys of its
    column profile (where touching digits meet, the ink is one stroke thick).
    """
    min_side = max(MIN_SIDE_WIDTH * max(piece.height, 0.5 * line_height), drawing.stroke_width)
    candidates = []
    ids = sorted(piece.ids, key=lambda i: drawing.x0[i] + drawing.x1[i])
    for k in range(1, len(ids)):
        left = _clipped(drawing, ids[:k], piece.x0, piece.x1)
        right = _clipped(drawing, ids[k:], piece.x0, piece.x1)
        if left and right and left.width >= min_side and right.width >= min_side \
                and _overlap(left, right) < MERGE_OVERLAP:
            candidates.append((left, right, 0))
    sides = _Sides(drawing, piece)
    mask = sides.mask
    profile = mask.sum(axis=0).astype(float)
    radius = max(1, int(round(drawing.stroke_width / 2)))
    smooth = np.convolve(profile, np.ones(2 * radius + 1) / (2 * radius + 1), mode="same")
    lo, hi = int(np.ceil(min_side)), piece.width - int(np.ceil(min_side))
    if hi > lo:
        window = smooth[lo:hi]
        # Local minima over +-radius columns, the deepest first.
        padded = np.pad(smooth, radius, mode="edge")
        neighbourhood = np.lib.stride_tricks.sliding_window_view(padded, 2 * radius + 1)[lo:hi]
        valleys = np.flatnonzero(window <= neighbourhood.min(axis=1) + 1e-9) + lo
        # Plateaus give runs of equal minima: keep the middle of each run.
        cuts = []
        for run in np.split(valleys, np.flatnonzero(np.diff(valleys) > 1) + 1):
            if len(run):
                cuts.append(int(run[len(run) // 2]))
        cuts.sort(key=lambda c: smooth[c])
        cuts = cuts[:MAX_CANDIDATE_CUTS]
        # Where round digits overlap, their meeting is a ridge of the profile,
        # not a valley: also try cuts evenly spread across the part.
        cuts += [int(c) for c in np.linspace(lo, hi, GRID_CUTS + 2)[1:-1]]
        for cut in sorted(set(cuts)):
            left, right = sides.left(cut), sides.right(cut)
            if left is not None and right is not None:
                column = np.concatenate([[False], mask[:, cut], [False]])
                candidates.append((left, right, int(np.count_nonzero(column[1:] & ~column[:-1]))))
    return candidates


def _clipped(drawing: _Drawing, ids, x0: int, x1: int) -> _Piece | None:
    """The piece of components `ids` within columns [x0, x1), or None if no ink is there."""
    ids = [i for i in ids if drawing.mask([i], x0, x1)[1].any()]
    if not ids:
        return None
    return drawing.piece(ids, x0, x1)


def _may_hold_several(drawing: _Drawing, piece: _Piece, line_height: float) -> bool:
    # A part hardly taller than the pen is a dash or a dot, never digits side by side.
    return (not piece.joined and piece.height >= 2 * drawing.stroke_width
            and _aspect(piece, drawing.stroke_width, line_height) >= MAY_SPLIT_ASPECT)


def _cut_shapes(drawing: _Drawing, piece: _Piece, line_height: float, candidates, whole: float):
    """_choose_cut's rules that need no reading of the sides, per candidate:
    (may win as clearly better, may win as a tie)."""
    crossings = np.array([c for _, _, c in candidates])
    sides_tall = np.array([min(left.height, right.height) / piece.height for left, right, _ in candidates])
    aspect = _aspect(piece, drawing.stroke_width, line_height)
    tall = sides_tall >= CUT_SIDE_HEIGHT
    better = tall & (aspect >= SPLIT_ASPECT)
    tie = (tall & (sides_tall >= TIE_SIDE_HEIGHT) & (whole >= TIE_WHOLE_SCORE)
           & (crossings <= CLEAN_CUT_CROSSINGS) & (aspect >= TIE_ASPECT))
    return better, tie


def _winnable(drawing: _Drawing, piece: _Piece, line_height: float, candidates, whole: float) -> list:
    """The candidates _choose_cut could allow for some reading of their sides, in
    order: the others are not worth the recognizer's time (a side reads as a
    digit at most 1, so "clearly better" needs SPLIT_GAIN x whole below 1)."""
    better, tie = _cut_shapes(drawing, piece, line_height, candidates, whole)
    winnable = (better & (SPLIT_GAIN * whole < 1.0)) | tie
    return [candidate for candidate, keep in zip(candidates, winnable, strict=True) if keep]


def _choose_cut(drawing: _Drawing, piece: _Piece, line_height: float, candidates, whole: float,
                sides: np.ndarray, side_digits: np.ndarray):
    """The candidate (left, right, crossings) to cut `piece` at, or None to keep it whole.

    `whole`: the piece's digit-likeness; `sides`: each candidate's left's and
    right's, in turn; `side_digits`: the digit each side reads as, in the same order.
    """
    pairs = sides[0::2] * sides[1::2]
    better_shape, tie_shape = _cut_shapes(drawing, piece, line_height, candidates, whole)
    readable = pairs >= SPLIT_MIN_SCORE
    better = better_shape & readable & (pairs > SPLIT_GAIN * whole)
    tie = tie_shape & readable & (pairs >= whole - TIE_MARGIN)
    allowed = better | tie
    if len(piece.ids) == 1:  # one unbroken stroke: not two 1s (see DIGIT_ONE)
        allowed &= ~((side_digits[0::2] == DIGIT_ONE) & (side_digits[1::2] == DIGIT_ONE))
    if not allowed.any():
        return None
    return candidates[int(np.argmax(np.where(allowed, pairs, -1.0)))]


def _split_all(drawing: _Drawing, pieces: list[_Piece], line_height: float, score: Scorer | None,
               depth: int = 0) -> list[_Piece]:
    """Cut each piece that holds touching digits, left to right.

    The recognizer is asked in two batches per level of cutting, not per
    digit: first how well each piece reads whole, then the sides of the
    candidate cuts of the pieces a cut could still win.
    """
    may = [index for index, piece in enumerate(pieces)
           if depth < MAX_CUT_DEPTH and _may_hold_several(drawing, piece, line_height)]
    if not may:
        return pieces
    aspects = {index: _aspect(pieces[index], drawing.stroke_width, line_height) for index in may}
    cuts = {}
    if score is None:
        for index in may:
            candidates = _candidate_splits(drawing, pieces[index], line_height) \
                if aspects[index] >= MUST_SPLIT_ASPECT else []
            if candidates:
                cuts[index] = min(candidates, key=lambda c: (c[2], abs(c[0].width - c[1].width)))
    else:
        wholes = _likeness(score, [drawing.image(pieces[index]) for index in may])
        asks = []  # (index of the piece, its candidate cuts, how well it reads whole)
        for index, whole in zip(may, wholes, strict=True):
            # Narrower than SPLIT_ASPECT only a tie can cut, and only a piece that reads well whole.
            if whole >= TIE_WHOLE_SCORE or (aspects[index] >= SPLIT_ASPECT and whole * SPLIT_GAIN < 1.0):
                candidates = _candidate_splits(drawing, pieces[index], line_height)
                if candidates:
                    candidates = _winnable(drawing, pieces[index], line_height, candidates, float(whole))
                if candidates:
                    asks.append((index, candidates, float(whole)))
        if asks:
            images = [drawing.image(side) for _, candidates, _ in asks
                      for left, right, _ in candidates for side in (left, right)]
            side_probabilities = score(np.stack(images))
            sides = digit_likeness(side_probabilities)
            side_digits = np.asarray(side_probabilities)[:, :10].argmax(axis=1)
            offset = 0
            for index, candidates, whole in asks:
                count = 2 * len(candidates)
                chosen = _choose_cut(drawing, pieces[index], line_height, candidates, whole,
                                     sides[offset:offset + count], side_digits[offset:offset + count])
                offset += count
                if chosen is not None:
                    cuts[index] = chosen
    if not cuts:
        return pieces
    result = []
    for index, piece in enumerate(pieces):
        if index in cuts:
            left, right, _ = cuts[index]
            result += _split_all(drawing, [left, right], line_height, score, depth + 1)
        else:
            result.append(piece)
    return result


def split_into_parts(ink: np.ndarray, scale: float = 1.0, origin: tuple[float, float] = (0.0, 0.0),
                     score: Scorer | None = None) -> list[Part]:
    """A drawing's ink map -> its digits as Parts, left to right.

    `ink`: 2D float in [0, 1] (the drawing's pixels, or a shrunk copy);
    `scale`: drawing pixels per ink-map pixel and `origin`: where the ink map's
    (0, 0) lies in the drawing, so boxes come back in the drawing's pixels;
    `score`: the recognizer's calibrated class probabilities of 28x28 images,
    used to choose cuts through touching digits (see `Scorer`, `digit_likeness`).
    Raises EmptyDrawingError when nothing is drawn.
    """
    # Work on the inked rectangle only (a wide canvas is mostly empty).
    ink, top, left = inked_region(np.asarray(ink, dtype=np.float32))
    origin = (origin[0] + left * scale, origin[1] + top * scale)
    if _one_digit_sized_stroke(ink):
        # What the steps below come to for it, without labelling its pixels:
        # one part, the whole drawing, normalised as a single digit.
        return _as_parts([_Piece((0,), 0, ink.shape[1], 0, ink.shape[0])], [frame_inked_region(ink)],
                         origin, scale)
    drawing = _Drawing(ink)
    # Specks: compression noise or a brush barely touched down, far below a dab.
    kept = np.flatnonzero(drawing.area >= SPECK_AREA * drawing.stroke_width ** 2)
    if len(kept) == 0:
        kept = np.array([int(np.argmax(drawing.area))])
    groups = [drawing.piece(ids) for ids in _groups(drawing, kept)]
    line_height = max(g.height for g in groups)
    if score is not None:
        groups = _merge_close(drawing, groups, line_height, score)
    pieces = _split_all(drawing, groups, line_height, score)[:MAX_PARTS]
    if len(pieces) == 1 and len(kept) == drawing.count:
        # The whole drawing is one digit: normalise it exactly as a single digit.
        images = [frame_inked_region(ink)]
    else:
        images = [drawing.image(p) for p in pieces]
    return _as_parts(pieces, images, origin, scale)


def _one_digit_sized_stroke(ink: np.ndarray) -> bool:
    """Whether the (cropped) ink is one 8-connected stroke no wider than a
    digit: one component (so no specks, one group, nothing to merge), and an
    aspect `_split` never cuts. Most single digits are; this is the common case."""
    mask = ink >= BBOX_THRESHOLD
    if _run_components(mask)[-1] != 1:
        return False
    stroke_width = _stroke_width(mask)
    whole = _Piece((0,), 0, ink.shape[1], 0, ink.shape[0])
    return (_aspect(whole, stroke_width, whole.height) < MAY_SPLIT_ASPECT
            or whole.height < 2 * stroke_width)


def _as_parts(pieces: list[_Piece], images, origin: tuple[float, float], scale: float) -> list[Part]:
    """Pieces of the ink map and their 28x28s -> Parts, boxes in the drawing's pixels."""
    ox, oy = origin
    parts = []
    for piece, image in zip(pieces, images, strict=False):
        left, top = int(np.floor(ox + piece.x0 * scale)), int(np.floor(oy + piece.y0 * scale))
        right, bottom = int(np.ceil(ox + piece.x1 * scale)), int(np.ceil(oy + piece.y1 * scale))
        parts.append(Part((left, top, right - left, bottom - top), image))
    return parts
