"""Checkers for lesson 12 (a language model on real text): head scores, sampling, an ablation prediction.

from course_utils.exercises import lesson12 as ex
ex.check_previous_token_score(fn)   # fn(maps (H, N, N)) -> (H,)
ex.check_induction_score(fn)        # fn(maps (H, 2n, 2n)) -> (H,)
ex.check_sample_probs(fn)           # fn(logits (V,), temperature, top_k) -> (V,)
ex.check_layer_ablation(my_prediction, measured)
ex.hint("induction"), ex.solution("induction")
"""

from __future__ import annotations

import numpy as np

from .base import Exercise, Feedback, Lesson, Mistake, Prediction

__all__ = [
    "PREVIOUS_TOKEN",
    "INDUCTION",
    "SAMPLE_PROBS",
    "LAYER_ABLATION",
    "LESSON",
    "check_previous_token_score",
    "check_induction_score",
    "check_sample_probs",
    "check_layer_ablation",
    "hint",
    "solution",
]


def _causal_maps(rng: np.random.Generator, heads: int, n: int) -> np.ndarray:
    """Random causal attention (H, N, N): each row a softmax over the keys up to the query, zero after it."""
    scores = rng.standard_normal((heads, n, n)) * 2.0
    scores = np.where(np.tril(np.ones((n, n), dtype=bool)), scores, -np.inf)
    e = np.exp(scores - scores.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


# ----------------------------------------------------------------------------------------------- 1. previous token


def previous_token_score(maps: np.ndarray) -> np.ndarray:
    """maps (H, N, N) -> (H,): mean over queries i >= 1 of the weight on key i - 1."""
    n = maps.shape[-1]
    i = np.arange(1, n)
    return maps[:, i, i - 1].mean(axis=-1)


def _prev_on_diagonal(maps):
    n = maps.shape[-1]
    return maps[:, np.arange(n), np.arange(n)].mean(axis=-1)


def _prev_with_query_zero(maps):
    n = maps.shape[-1]
    i = np.arange(1, n)
    return maps[:, i, i - 1].sum(axis=-1) / n


def _prev_transposed(maps):
    return previous_token_score(np.swapaxes(maps, -1, -2))


def _prev_all_before(maps):
    n = maps.shape[-1]
    below = np.tril(np.ones((n, n)), -1)
    return (maps * below).sum(axis=-1)[:, 1:].mean(axis=-1)


PREVIOUS_TOKEN = Exercise(
    name="previous-token score",
    reference=previous_token_score,
    cases=lambda rng: [(_causal_maps(rng, h, n),) for h, n in ((4, 12), (2, 7), (1, 30))],
    mistakes=(
        Mistake(
            "the diagonal (each character's weight on itself)",
            _prev_on_diagonal,
            "A[i, i] is the weight on the character itself; the previous character is key i - 1, one below the "
            "diagonal: maps[:, i, i - 1].",
        ),
        Mistake(
            "divided by N instead of N - 1",
            _prev_with_query_zero,
            "Query 0 has no previous character: average over the N - 1 queries i = 1 .. N - 1, not over N.",
        ),
        Mistake(
            "queries and keys swapped",
            _prev_transposed,
            "Rows are queries, columns keys: maps[:, i, j] is query i's weight on key j. You read maps[:, i - 1, i], "
            "the weight of query i - 1 on a future key (zero under a causal mask).",
        ),
        Mistake(
            "all earlier characters, not only the previous one",
            _prev_all_before,
            "You summed the weight on every key before i; the score counts only key i - 1.",
        ),
    ),
    hints=(
        "Row i of a head's map holds query i's weights over the keys; the previous character of query i is key i - 1.",
        "Take the entries just below the diagonal, maps[h, i, i - 1] for i = 1 .. N - 1, and average them per head.",
        "i = np.arange(1, N); return maps[:, i, i - 1].mean(axis=-1)",
    ),
    solution="def previous_token_score(maps):\n    N = maps.shape[-1]\n    i = np.arange(1, N)\n"
    "    return maps[:, i, i - 1].mean(axis=-1)  # (H, N - 1) -> (H,)",
)


# ----------------------------------------------------------------------------------------------- 2. induction


def induction_score(maps: np.ndarray) -> np.ndarray:
    """maps (H, 2n, 2n) on [r, r] -> (H,): mean over t = 0..n-2 of the weight of query n + t on key t + 1."""
    n = maps.shape[-1] // 2
    t = np.arange(n - 1)
    return maps[:, n + t, t + 1].mean(axis=-1)


def _ind_same_token(maps):
    n = maps.shape[-1] // 2
    t = np.arange(n - 1)
    return maps[:, n + t, t].mean(axis=-1)


def _ind_previous_token(maps):
    n = maps.shape[-1] // 2
    t = np.arange(n - 1)
    return maps[:, n + t, n + t - 1].mean(axis=-1)


def _ind_first_half(maps):
    n = maps.shape[-1] // 2
    return maps[:, n:, :n].sum(axis=-1).mean(axis=-1)


INDUCTION = Exercise(
    name="induction score",
    reference=induction_score,
    cases=lambda rng: [(_causal_maps(rng, h, 2 * n),) for h, n in ((4, 10), (2, 6), (3, 16))],
    mistakes=(
        Mistake(
            "attention to the earlier copy of the same character",
            _ind_same_token,
            "Key t holds the same character as query n + t (that is a duplicate-token head). An induction head "
            "attends to what came NEXT the first time: key t + 1.",
        ),
        Mistake(
            "the previous-token score of the second half",
            _ind_previous_token,
            "Key n + t - 1 is the character just before the query; the induction target lies in the first copy, "
            "at t + 1.",
        ),
        Mistake(
            "all the weight on the first copy",
            _ind_first_half,
            "You summed the weight of each second-half query on every key of the first copy; the score reads one "
            "key per query, t + 1.",
        ),
    ),
    hints=(
        "In [r, r] the query at position n + t holds r_t, which first occurred at position t. What came after it?",
        "Read maps[h, n + t, t + 1] for t = 0 .. n - 2 (n = half the length) and average per head.",
        "n = maps.shape[-1] // 2; t = np.arange(n - 1); return maps[:, n + t, t + 1].mean(axis=-1)",
    ),
    solution="def induction_score(maps):\n    n = maps.shape[-1] // 2\n    t = np.arange(n - 1)\n"
    "    return maps[:, n + t, t + 1].mean(axis=-1)  # (H, n - 1) -> (H,)",
)


# ----------------------------------------------------------------------------------------------- 3. sampling


def sample_probs(logits: np.ndarray, temperature: float, top_k: int) -> np.ndarray:
    """logits (V,) -> (V,): softmax(logits / temperature) over the top_k largest logits, zero elsewhere."""
    z = np.asarray(logits, dtype=np.float64) / temperature
    keep = np.zeros(z.shape, dtype=bool)
    keep[np.argsort(-z, kind="stable")[:top_k]] = True
    z = np.where(keep, z, -np.inf)
    e = np.exp(z - z.max())
    return e / e.sum()


def _times_temperature(logits, temperature, top_k):
    return sample_probs(np.asarray(logits) * temperature**2, temperature, top_k)


def _smallest_k(logits, temperature, top_k):
    z = np.asarray(logits, dtype=np.float64) / temperature
    z = np.where(np.argsort(np.argsort(z, kind="stable"), kind="stable") < top_k, z, -np.inf)  # the k smallest stay
    e = np.exp(z - z.max())
    return e / e.sum()


def _no_renormalise(logits, temperature, top_k):
    z = np.asarray(logits, dtype=np.float64) / temperature
    p = np.exp(z - z.max())
    p = p / p.sum()
    keep = np.zeros(z.shape, dtype=bool)
    keep[np.argsort(-z, kind="stable")[:top_k]] = True
    return np.where(keep, p, 0.0)


def _no_top_k(logits, temperature, top_k):
    z = np.asarray(logits, dtype=np.float64) / temperature
    e = np.exp(z - z.max())
    return e / e.sum()


def _sample_cases(rng):
    return [
        (rng.standard_normal(12) * 3, 0.5, 3),
        (rng.standard_normal(30) * 2, 2.0, 5),
        (rng.standard_normal(8), 1.3, 8),
        (rng.standard_normal(20) * 4, 0.8, 1),
        (rng.standard_normal(10) * 50 + 800, 0.5, 4),  # large logits: exp overflows unless the max is subtracted
    ]


SAMPLE_PROBS = Exercise(
    name="sampling with temperature and top-k",
    reference=sample_probs,
    cases=_sample_cases,
    mistakes=(
        Mistake(
            "multiplied by the temperature",
            _times_temperature,
            "Divide the logits by the temperature: T < 1 sharpens the distribution, T > 1 flattens it.",
        ),
        Mistake(
            "kept the k smallest logits",
            _smallest_k,
            "Top-k keeps the k LARGEST logits (the most likely characters) and gives the rest probability 0.",
        ),
        Mistake(
            "not renormalised after top-k",
            _no_renormalise,
            "You took the softmax over all logits and then zeroed the rest: the kept probabilities no longer sum to "
            "1. Set the other logits to -inf first, then take the softmax.",
        ),
        Mistake(
            "top-k ignored",
            _no_top_k,
            "Every character still has a probability; only the top_k largest logits may keep one.",
        ),
    ),
    hints=(
        "Two steps: scale the logits by 1 / temperature, then forbid all but the top_k largest before the softmax.",
        "Forbid by setting those logits to -inf (np.argsort(-z)[:top_k] gives the indices to keep); then a stable "
        "softmax (subtract the max).",
        "z = logits / temperature; z[np.argsort(-z)[top_k:]] = -np.inf; e = np.exp(z - z.max()); return e / e.sum()",
    ),
    solution="def sample_probs(logits, temperature, top_k):\n    z = np.asarray(logits, dtype=float) / temperature\n"
    "    z[np.argsort(-z)[top_k:]] = -np.inf  # only the top_k largest stay\n    e = np.exp(z - z.max())\n"
    "    return e / e.sum()",
)


# ----------------------------------------------------------------------------------------------- 4. prediction

LAYER_ABLATION = Prediction(
    name="loss change when every head of layer 1 is switched off",
    kind="float",
    abs_tol=0.15,
    rel_tol=0.3,
    hints=(
        "Section 6 switched heads off one at a time. Is zeroing four heads at once the sum of four single ablations?",
        "Add up the four single-head costs of layer 1 in section 6. Heads that do separate work add up; heads that "
        "back each other up cost more together than apart. Guess in bits per character, a positive number.",
    ),
    solution="No formula: it is measured. A fair guess is the sum of the four single-head costs of layer 1 in "
    "section 6, a little higher if you expect the heads to back each other up.",
    explanation="Compare it with the sum of layer 1's four single-head costs in section 6: close to that sum means "
    "the heads do separate work; well above it, that they stand in for each other when one is missing.",
)

LESSON = Lesson(
    {
        "previous_token": PREVIOUS_TOKEN,
        "induction": INDUCTION,
        "sample_probs": SAMPLE_PROBS,
        "layer_ablation": LAYER_ABLATION,
    }
)
hint, solution = LESSON.hint, LESSON.solution


def check_previous_token_score(fn) -> Feedback:
    """Check fn(maps (H, N, N)) -> (H,), the mean weight on the previous character."""
    return PREVIOUS_TOKEN.check(fn)


def check_induction_score(fn) -> Feedback:
    """Check fn(maps (H, 2n, 2n)) -> (H,), the mean weight on the character after the earlier copy."""
    return INDUCTION.check(fn)


def check_sample_probs(fn) -> Feedback:
    """Check fn(logits (V,), temperature, top_k) -> (V,) probabilities."""
    return SAMPLE_PROBS.check(fn)


def check_layer_ablation(predicted, measured) -> Feedback:
    """Compare the stored prediction (bits per character) with the measured loss change."""
    return LAYER_ABLATION.check(predicted, measured)
