"""Checkers for lesson 02 (attention scores), in the lecture's column convention, unscaled (the slide's q . k).

    check_log_softmax(fn)                 fn(A) -> log A', each column of A' a softmax (the lecture's over i)
    check_softmax_jacobian(fn)            fn(alpha) -> J, J[i, m] = d alpha'_i / d alpha_m for one query's scores
    check_identical_inputs(predicted, measured)  a^1's weight on itself when every input equals a^1
"""

from __future__ import annotations

import numpy as np

from .. import reference as ref
from .base import Exercise, Feedback, Lesson, Mistake, Prediction

__all__ = [
    "LOG_SOFTMAX",
    "SOFTMAX_JACOBIAN",
    "IDENTICAL_INPUTS",
    "LESSON",
    "hint",
    "solution",
    "check_log_softmax",
    "check_softmax_jacobian",
    "check_identical_inputs",
]


# ---------------------------------------------------------------------------------------------------------
# log-softmax over each column
# ---------------------------------------------------------------------------------------------------------


def _log_softmax(x, axis=0, shift="max"):
    """x - c - log(sum(exp(x - c))) along `axis`; c is the max (stable), the min, the mean, or 0 (naive)."""
    c = {
        "max": lambda: x.max(axis=axis, keepdims=True),
        "min": lambda: x.min(axis=axis, keepdims=True),
        "mean": lambda: x.mean(axis=axis, keepdims=True),
        "none": lambda: 0.0,
    }[shift]()
    return x - c - np.log(np.exp(x - c).sum(axis=axis, keepdims=True))


def _log_softmax_cases(rng: np.random.Generator) -> list[tuple]:
    one_far = rng.normal(size=(5, 4))
    one_far[1:] -= 1000.0  # each column: one score near 0, four near -1000: max - mean > 709 and max - min > 709
    one_low = rng.normal(size=(5, 3))
    one_low[2] -= 800.0  # each column: four scores near 0, one near -800: max - min > 709, max - mean < 709
    return [
        (rng.normal(size=(4, 4)),),  # square: every mistake applies
        (3.0 * rng.normal(size=(3, 5)),),  # 3 keys, 5 queries
        (800.0 + 10.0 * rng.normal(size=(4, 3)),),  # large scores: exp overflows unless a shift brings them down
        (one_far,),
        (one_low,),
    ]


_STABLE = (
    "Subtract each column's max c: log softmax(x) = (x - c) - log(sum(exp(x - c))). Then the largest exponent is "
    "exp(0) = 1, nothing overflows, and the sum is at least 1, so its log is finite."
)

LOG_SOFTMAX = Exercise(
    name="log-softmax over each column",
    reference=lambda x: _log_softmax(x, axis=0),
    cases=_log_softmax_cases,
    mistakes=(
        Mistake(
            "log-softmax over the wrong axis",
            lambda x: _log_softmax(x, axis=1),
            "In the lecture's convention column j of A holds query j's scores alpha_{j,1..N}: normalise each "
            "column (axis=0), so that exp of every column sums to 1.",
        ),
        Mistake(
            "returned the softmax, not its log",
            lambda x: ref.softmax(x, axis=0),
            "The exercise asks for log A': the log of the weights, which is <= 0 and finite even where a weight is "
            "too small for a float.",
        ),
        Mistake(
            "not numerically stable",
            lambda x: _log_softmax(x, shift="none"),
            "exp overflows for scores above about 709, so log(sum(exp(x))) is inf. " + _STABLE,
        ),
        Mistake(
            "took the log of the softmax",
            lambda x: np.log(ref.softmax(x, axis=0)),
            "A weight below about 1e-308 underflows to 0 and log(0) = -inf, while log A' is a perfectly finite "
            "number (-1000 for a score 1000 below the max). Never form the weights: " + _STABLE,
        ),
        Mistake(
            "subtracted the min, not the max",
            lambda x: _log_softmax(x, shift="min"),
            "Any constant shift is exact in theory, but after subtracting the min the largest entry is "
            "max - min, and exp overflows when a column spreads over more than about 709. " + _STABLE,
        ),
        Mistake(
            "subtracted the mean, not the max",
            lambda x: _log_softmax(x, shift="mean"),
            "Any constant shift is exact in theory, but after subtracting the mean the largest entry is "
            "max - mean, and exp overflows when that exceeds about 709. " + _STABLE,
        ),
        Mistake(
            "normalised over the whole matrix",
            lambda x: x - x.max() - np.log(np.exp(x - x.max()).sum()),
            "Each query (each column) gets its own distribution: reduce over axis=0 with keepdims=True.",
        ),
    ),
    hints=(
        "log softmax(x)_i = x_i - log(sum_m exp(x_m)): no division is left, only a log of a sum. The danger is in "
        "that sum.",
        "Lesson 02's identity still holds in log space: shifting a column by a constant c changes nothing, and "
        "one choice of c makes the largest exponent exactly exp(0).",
        "c = A.max(axis=0, keepdims=True); return (A - c) - np.log(np.exp(A - c).sum(axis=0, keepdims=True)).",
    ),
    solution='''def my_log_softmax(A):
    c = A.max(axis=0, keepdims=True)  # (1, N_q): each column's max
    shifted = A - c  # the largest entry of each column becomes 0
    return shifted - np.log(np.exp(shifted).sum(axis=0, keepdims=True))  # (N_k, N_q)''',
)


def check_log_softmax(fn) -> Feedback:
    """Check fn(A (N_k, N_q)) -> log softmax of each column of A, shape (N_k, N_q)."""
    return LOG_SOFTMAX.check(fn)


# ---------------------------------------------------------------------------------------------------------
# the softmax's Jacobian for one query
# ---------------------------------------------------------------------------------------------------------


def _jacobian(alpha, part="both", of_scores=False):
    """J = diag(p) - p p^T with p = softmax(alpha) (or alpha itself); part: 'both', 'diag', 'outer' or 'flipped'."""
    p = alpha if of_scores else ref.softmax(alpha)  # (N,)
    diag, outer = np.diag(p), np.outer(p, p)  # (N, N) each
    parts = {"both": diag - outer, "diag": diag, "outer": -outer, "flipped": outer - diag, "own": np.diag(p - p * p)}
    return parts[part]


def _naive_jacobian(alpha):
    e = np.exp(alpha)  # overflows above ~709
    p = e / e.sum()
    return np.diag(p) - np.outer(p, p)


def _jacobian_cases(rng: np.random.Generator) -> list[tuple]:
    return [
        (rng.normal(size=4),),
        (3.0 * rng.normal(size=6),),
        (rng.normal(size=1),),  # one key: its weight is always 1, so J = [[0]]
        (750.0 + rng.normal(size=3),),  # large scores: a naive softmax overflows
    ]


JACOBIAN = (
    "d alpha'_i / d alpha_m = alpha'_i (delta_im - alpha'_m): raising one score raises its own weight by "
    "alpha'_i (1 - alpha'_i) and lowers every other weight by alpha'_i alpha'_m."
)

SOFTMAX_JACOBIAN = Exercise(
    name="the softmax's Jacobian",
    reference=lambda alpha: _jacobian(alpha),
    cases=_jacobian_cases,
    mistakes=(
        Mistake(
            "only the diagonal alpha'_i",
            lambda alpha: _jacobian(alpha, part="diag"),
            "You kept exp(alpha_i) / sum's derivative through the numerator only. The sum depends on every score "
            "too: " + JACOBIAN,
        ),
        Mistake(
            "the off-diagonal terms are missing",
            lambda alpha: _jacobian(alpha, part="own"),
            "Raising alpha_m changes every weight, not only alpha'_m: the weights share a total of 1. " + JACOBIAN,
        ),
        Mistake(
            "the diagonal term is missing",
            lambda alpha: _jacobian(alpha, part="outer"),
            "The numerator exp(alpha_i) depends on alpha_i itself: on the diagonal add alpha'_i. " + JACOBIAN,
        ),
        Mistake(
            "the sign is flipped",
            lambda alpha: _jacobian(alpha, part="flipped"),
            "Raising a score must raise its own weight, so the diagonal is positive. " + JACOBIAN,
        ),
        Mistake(
            "used the scores instead of the weights",
            lambda alpha: _jacobian(alpha, of_scores=True),
            "The formula uses the softmax weights alpha' = softmax(alpha), not the raw scores alpha.",
        ),
        Mistake(
            "not numerically stable",
            _naive_jacobian,
            "exp overflows for scores above about 709: compute the weights with the max subtracted first.",
        ),
    ),
    hints=(
        "Differentiate alpha'_i = exp(alpha_i) / S with S = sum_m exp(alpha_m): both the numerator (only when "
        "m = i) and the sum S (always) depend on alpha_m.",
        "The quotient rule gives alpha'_i for m = i, minus alpha'_i alpha'_m for every m: a diagonal matrix minus "
        "an outer product.",
        "p = stable softmax of alpha; return np.diag(p) - np.outer(p, p).",
    ),
    solution='''def my_softmax_jacobian(alpha):
    e = np.exp(alpha - alpha.max())
    p = e / e.sum()  # (N,): the weights alpha'
    return np.diag(p) - np.outer(p, p)  # (N, N): J[i, m] = p_i (delta_im - p_m)''',
)


def check_softmax_jacobian(fn) -> Feedback:
    """Check fn(alpha (N,)) -> J (N, N), J[i, m] = d softmax(alpha)_i / d alpha_m."""
    return SOFTMAX_JACOBIAN.check(fn)


# ---------------------------------------------------------------------------------------------------------
# a prediction: attention to oneself among identical inputs
# ---------------------------------------------------------------------------------------------------------


IDENTICAL_INPUTS = Prediction(
    name="a^1's weight on itself when all four inputs are a^1",
    kind="float",
    abs_tol=0.01,
    hints=(
        "Each weight comes from a score, and each score from a query and a key. What do the four keys look like "
        "when the four inputs are the same vector?",
        "k^i = W^k a^i: identical inputs give identical keys, so the four scores q^1 . k^i are one number repeated.",
        "What is the softmax of N equal numbers? Nothing in the score formula favours i = 1 over the other i.",
    ),
    solution="my_weight = 0.25  # four equal scores: the softmax gives each 1/N = 1/4, itself included",
    explanation="All four keys equal W^k a^1, so the four scores are the same number and the softmax of N equal "
    "scores is 1/N. a^1 gets no extra weight on itself: attending to oneself is not built into the formula, it "
    "happens only when q^1 . k^1 is large.",
)


def check_identical_inputs(predicted, measured) -> Feedback:
    """Compare the predicted weight alpha'_{1,1} (a float) with the measured one."""
    return IDENTICAL_INPUTS.check(predicted, measured)


LESSON = Lesson(
    {"log_softmax": LOG_SOFTMAX, "softmax_jacobian": SOFTMAX_JACOBIAN, "identical_inputs": IDENTICAL_INPUTS}
)
hint, solution = LESSON.hint, LESSON.solution
