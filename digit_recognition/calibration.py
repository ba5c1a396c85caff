"""Making the model's probabilities mean what they say, and checking that they do.

Fitted on writer groups the model never trained on (a network is most
overconfident on exactly the writers it has not seen):

- `fit_temperature`: one temperature T for all classes, minimising the negative
  log-likelihood of the true class (temperature scaling, Guo et al. 2017). It
  changes confidence, never which class is on top.
- `choose_not_digit_threshold`: the not-a-digit score above which a drawing is
  called not a digit, set so that only a small share of real digits are.
- `expected_calibration_error` and `reliability_bins`: the figure and the
  diagram the notebook shows.
"""
from __future__ import annotations

import numpy as np

from .reading import apply_temperature


def negative_log_likelihood(probabilities: np.ndarray, labels: np.ndarray) -> float:
    picked = np.asarray(probabilities)[np.arange(len(labels)), np.asarray(labels, dtype=np.int64)]
    return float(-np.log(np.clip(picked, 1e-12, None)).mean())


def fit_temperature(probabilities: np.ndarray, labels: np.ndarray,
                    low: float = 0.2, high: float = 8.0, iterations: int = 60) -> float:
    """The T in [low, high] minimising NLL(softmax(log p / T)); golden-section search on log T.

    The NLL of temperature scaling is unimodal in T, so a bracketing search
    finds the optimum without a gradient or an optimiser dependency.
    """
    if len(labels) == 0:
        return 1.0
    ratio = (np.sqrt(5) - 1) / 2
    a, b = np.log(low), np.log(high)

    def loss(log_t: float) -> float:
        return negative_log_likelihood(apply_temperature(probabilities, float(np.exp(log_t))), labels)

    c, d = b - ratio * (b - a), a + ratio * (b - a)
    fc, fd = loss(c), loss(d)
    for _ in range(iterations):
        if fc < fd:
            b, d, fd = d, c, fc
            c = b - ratio * (b - a)
            fc = loss(c)
        else:
            a, c, fc = c, d, fd
            d = a + ratio * (b - a)
            fd = loss(d)
    return float(np.exp((a + b) / 2))


def reliability_bins(confidences: np.ndarray, correct: np.ndarray, bins: int = 15):
    """Per confidence bin: (lower edge, upper edge, count, mean confidence, accuracy)."""
    confidences = np.asarray(confidences, dtype=np.float64)
    correct = np.asarray(correct, dtype=np.float64)
    edges = np.linspace(0.0, 1.0, bins + 1)
    index = np.clip(np.digitize(confidences, edges[1:-1], right=True), 0, bins - 1)
    rows = []
    for b in range(bins):
        mask = index == b
        count = int(mask.sum())
        rows.append((float(edges[b]), float(edges[b + 1]), count,
                     float(confidences[mask].mean()) if count else float("nan"),
                     float(correct[mask].mean()) if count else float("nan")))
    return rows


def expected_calibration_error(confidences: np.ndarray, correct: np.ndarray, bins: int = 15) -> float:
    """Sum over bins of |accuracy - mean confidence|, weighted by the bin's share."""
    total = len(confidences)
    if total == 0:
        return float("nan")
    return float(sum(count / total * abs(accuracy - confidence)
                     for _, _, count, confidence, accuracy in reliability_bins(confidences, correct, bins)
                     if count))


def choose_not_digit_threshold(digit_scores: np.ndarray, max_digit_share: float = 0.005,
                               floor: float = 0.5) -> float:
    """The lowest threshold that calls at most `max_digit_share` of real digits not a digit.

    Never below `floor`: a drawing is only called not a digit when that is the
    more likely reading.
    """
    scores = np.sort(np.asarray(digit_scores, dtype=np.float64))
    if len(scores) == 0:
        return floor
    allowed = int(np.floor(max_digit_share * len(scores)))
    # Scores strictly above the (allowed+1)-th largest are the ones let through as flagged.
    kth_largest = scores[len(scores) - allowed - 1]
    return float(max(floor, np.nextafter(kth_largest, np.inf)))


def answer_figures(raw_probabilities: np.ndarray, labels: np.ndarray, policy) -> dict:
    """How honest the answers are on labelled drawings (label 10 = not a digit).

    `raw_probabilities` are the model's outputs; `policy` (a reading.ReadingPolicy)
    applies the calibration and thresholds, exactly as the server does.
    """
    from .reading import NOT_A_DIGIT_CLASS, split_scores

    labels = np.asarray(labels, dtype=np.int64)
    digit_probs, not_digit = split_scores(apply_temperature(raw_probabilities, policy.temperature))
    flagged = not_digit >= policy.not_digit_threshold
    predicted = digit_probs.argmax(axis=1)
    is_digit = labels != NOT_A_DIGIT_CLASS
    right = is_digit & ~flagged & (predicted == labels)
    confidences = digit_probs[is_digit].max(axis=1)
    hits = predicted[is_digit] == labels[is_digit]
    figures = {
        "digits": int(is_digit.sum()),
        "digit_accuracy": float(right[is_digit].mean()) if is_digit.any() else float("nan"),
        "digits_called_not_a_digit": float(flagged[is_digit].mean()) if is_digit.any() else float("nan"),
        "non_digits": int((~is_digit).sum()),
        "non_digits_called_not_a_digit": float(flagged[~is_digit].mean()) if (~is_digit).any() else float("nan"),
        # Calibration of what the page shows for a digit: the named digit's probability.
        "digit_ece": expected_calibration_error(confidences, hits),
        # (lower, upper, count, mean confidence, accuracy) per bin: the reliability diagram.
        "reliability": [list(row) for row in reliability_bins(confidences, hits)],
        "per_digit_accuracy": {str(d): float(right[labels == d].mean()) for d in range(10) if (labels == d).any()},
    }
    return figures
