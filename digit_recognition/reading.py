"""What the model's output means: calibration, the verdict, and the answer's shape.

The model scores each part of a drawing over eleven classes: the ten digits and
"not a digit" (a model trained before that class existed has ten outputs; its
not-a-digit score is 0). This module turns those raw scores into the answer a
person is given, in one place, so the API, the benchmarks and the notebooks
agree on what "sure", "not sure" and "not a digit" mean:

- calibration: softmax outputs are tempered (``p ** (1/T)``, renormalised, which
  is temperature scaling of the logits) with the temperature fitted on writers
  the model never trained on, so "90% sure" is right about 90% of the time;
- per part: "not_a_digit" when the not-a-digit probability reaches a threshold,
  otherwise the most likely digit (probabilities renormalised over the ten
  digits), "digit" when its probability reaches LOW_CONFIDENCE, else "unsure";
- per drawing: "not_a_digit" if any part is not a digit, else "unsure" if any
  part is unsure, else "digit"; the number is the digits read left to right.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

NUM_DIGITS = 10
NOT_A_DIGIT_CLASS = 10  # index of the "not a digit" output in an 11-class model

VERDICT_DIGIT = "digit"
VERDICT_UNSURE = "unsure"
VERDICT_NOT_A_DIGIT = "not_a_digit"
VERDICTS = (VERDICT_DIGIT, VERDICT_UNSURE, VERDICT_NOT_A_DIGIT)

DEFAULT_LOW_CONFIDENCE = 0.6
DEFAULT_NOT_DIGIT_THRESHOLD = 0.5


def apply_temperature(probabilities: np.ndarray, temperature: float) -> np.ndarray:
    """Temperature-scale softmax outputs: softmax(log(p) / T), row-wise.

    Equal to dividing the logits by T (log-softmax differs from the logits by a
    per-row constant). T > 1 softens overconfident outputs. Zeros stay zero.
    """
    p = np.asarray(probabilities, dtype=np.float64)
    if temperature == 1.0:
        return p / p.sum(axis=-1, keepdims=True)
    logits = np.log(np.clip(p, 1e-300, None)) / float(temperature)
    logits -= logits.max(axis=-1, keepdims=True)
    tempered = np.exp(logits)
    return tempered / tempered.sum(axis=-1, keepdims=True)


def split_scores(probabilities: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(N, 10 or 11) calibrated probabilities -> (digit probabilities (N, 10), not-digit (N,)).

    The digit probabilities are conditional on the drawing being a digit
    (renormalised over the ten), so they keep their meaning whatever the
    not-a-digit score is.
    """
    p = np.asarray(probabilities, dtype=np.float64)
    if p.ndim == 1:
        p = p[None]
    if p.shape[-1] == NUM_DIGITS:
        return p / p.sum(axis=-1, keepdims=True), np.zeros(len(p))
    if p.shape[-1] != NUM_DIGITS + 1:
        raise ValueError(f"expected 10 or 11 class probabilities, got {p.shape[-1]}")
    digits = p[:, :NUM_DIGITS]
    mass = digits.sum(axis=-1, keepdims=True)
    digits = np.where(mass > 0, digits / np.maximum(mass, 1e-300), 1.0 / NUM_DIGITS)
    return digits, p[:, NOT_A_DIGIT_CLASS].copy()


@dataclass(frozen=True)
class ReadingPolicy:
    """The thresholds that turn probabilities into verdicts, and the calibration."""

    temperature: float = 1.0
    low_confidence: float = DEFAULT_LOW_CONFIDENCE
    not_digit_threshold: float = DEFAULT_NOT_DIGIT_THRESHOLD


@dataclass(frozen=True)
class DigitReading:
    """One part of a drawing as the model read it."""

    verdict: str
    digit: int | None  # None when not a digit
    confidence: float | None  # the named digit's probability; None when not a digit
    runner_up: int | None
    probabilities: list[float]  # ten, conditional on being a digit, sum to 1
    not_digit_score: float
    digit_image: np.ndarray = field(repr=False)  # the 28x28 the model saw
    box: tuple[int, int, int, int] | None = None  # x, y, w, h in the drawing's pixels

    @property
    def best_digit(self) -> int:
        """The most likely digit even when the verdict is not a digit."""
        return int(np.argmax(self.probabilities))

    def to_json(self, preview: Callable[[np.ndarray], str]) -> dict:
        return {
            "digit": self.digit,
            "verdict": self.verdict,
            "confidence": self.confidence,
            "runner_up": self.runner_up,
            "probabilities": self.probabilities,
            "not_digit_score": self.not_digit_score,
            "box": list(self.box) if self.box is not None else None,
            "preview": preview(self.digit_image),
        }


def read_scores(probabilities: np.ndarray, digit_images: np.ndarray, policy: ReadingPolicy,
                boxes: list | None = None) -> list[DigitReading]:
    """Raw model outputs (N, C) for N parts -> N DigitReadings under `policy`."""
    calibrated = apply_temperature(probabilities, policy.temperature)
    digit_probs, not_digit = split_scores(calibrated)
    readings = []
    for i in range(len(digit_probs)):
        probs = digit_probs[i]
        order = np.argsort(-probs, kind="stable")
        score = float(not_digit[i])
        top = float(probs[order[0]])
        if score >= policy.not_digit_threshold:
            verdict, digit, confidence, runner_up = VERDICT_NOT_A_DIGIT, None, None, None
        else:
            verdict = VERDICT_DIGIT if top >= policy.low_confidence else VERDICT_UNSURE
            digit, confidence, runner_up = int(order[0]), top, int(order[1])
        box = tuple(int(v) for v in boxes[i]) if boxes is not None else None
        readings.append(DigitReading(verdict, digit, confidence, runner_up,
                                     [float(p) for p in probs], score, digit_images[i], box))
    return readings


@dataclass(frozen=True)
class DrawingReading:
    """A whole drawing: its parts, left to right, and what they add up to."""

    parts: list[DigitReading]

    @property
    def verdict(self) -> str:
        verdicts = {part.verdict for part in self.parts}
        for verdict in (VERDICT_NOT_A_DIGIT, VERDICT_UNSURE):
            if verdict in verdicts:
                return verdict
        return VERDICT_DIGIT

    @property
    def number(self) -> str | None:
        if self.verdict == VERDICT_NOT_A_DIGIT:
            return None
        return "".join(str(part.digit) for part in self.parts)

    @property
    def single(self) -> DigitReading | None:
        return self.parts[0] if len(self.parts) == 1 else None

    @property
    def confidence(self) -> float | None:
        """P(the whole reading is right): one part's confidence, or their product."""
        if self.verdict == VERDICT_NOT_A_DIGIT:
            return None
        return float(np.prod([part.confidence for part in self.parts]))

    def to_json(self, preview: Callable[[np.ndarray], str]) -> dict:
        single = self.single
        verdict = self.verdict
        return {
            "verdict": verdict,
            "number": self.number,
            "digit": single.digit if single is not None and verdict != VERDICT_NOT_A_DIGIT else None,
            "confidence": self.confidence,
            "runner_up": single.runner_up if single is not None else None,
            "probabilities": single.probabilities if single is not None else None,
            "not_digit_score": max(part.not_digit_score for part in self.parts),
            "preview": preview(single.digit_image) if single is not None else None,
            "digits": [part.to_json(preview) for part in self.parts],
        }
