"""Checkers for lesson 04 (the matrix form, the scale, masks), in PyTorch's row convention for masks.

    check_scaled_variance(predicted, measured)  Var(q . k / sqrt(d_k)) when q and k have entries of variance 4
    check_causal_window_mask(fn)    fn(n, w) -> (n, n) bool, True where query i may attend key j: i - w <= j <= i
    check_masked_attention(fn)      fn(q (N_q, d), k (N_k, d), v (N_k, d_v), mask (N_q, N_k) bool) -> (N_q, d_v)
"""

from __future__ import annotations

import numpy as np
import torch

from .. import attention as att
from .base import Exercise, Feedback, Lesson, Mistake, Prediction, run_guarded

__all__ = [
    "SCALED_VARIANCE",
    "CAUSAL_WINDOW_MASK",
    "MASKED_ATTENTION",
    "LESSON",
    "hint",
    "solution",
    "check_scaled_variance",
    "check_causal_window_mask",
    "check_masked_attention",
]


# ---------------------------------------------------------------------------------------------------------
# a prediction: what the 1/sqrt(d_k) scale does not fix
# ---------------------------------------------------------------------------------------------------------

SCALED_VARIANCE = Prediction(
    name="Var(q . k / sqrt(d_k)) when the entries of q and k have variance 4",
    kind="float",
    rel_tol=0.1,
    hints=(
        "Start from one term q_d k_d of the dot product: q_d and k_d are independent with mean 0. What is the "
        "variance of their product?",
        "For independent mean-0 factors, Var(q_d k_d) = Var(q_d) Var(k_d). Then the dot product adds d_k such "
        "terms, and the scale divides the variance by (sqrt(d_k))^2 = d_k.",
        "Var(q_d k_d) = 4 * 4; the sum of d_k of them has d_k times that; dividing by sqrt(d_k) divides the "
        "variance by d_k. d_k itself cancels.",
    ),
    solution="my_variance = 16.0  # Var(q_d k_d) = 4 * 4 = 16; d_k terms, divided by d_k: 16, whatever d_k",
    explanation="Each term q_d k_d has variance 4 x 4 = 16; d_k of them sum to variance 16 d_k, and the scale "
    "1/sqrt(d_k) divides that by d_k: 16, whatever d_k. The scale removes the growth with the width, not the size "
    "of the inputs: scores of variance 16 are as spread as the unscaled scores at d_k = 16 in section 3, where the "
    "top weight of 16 keys was already about 0.68.",
)


def check_scaled_variance(predicted, measured) -> Feedback:
    """Compare the predicted Var(q . k / sqrt(d_k)) (a float) for entries of variance 4 with the measured one."""
    return SCALED_VARIANCE.check(predicted, measured)


# ---------------------------------------------------------------------------------------------------------
# a mask: causal and truncated (streaming speech)
# ---------------------------------------------------------------------------------------------------------


def _band(n, w, lo, hi):
    """(n, n) bool, True where lo(w) <= i - j <= hi(w): query i (row), key j (column)."""
    i = torch.arange(n)[:, None]
    j = torch.arange(n)[None, :]
    return (i - j >= lo(w)) & (i - j <= hi(w))


def _causal_window(n, w):
    return att.window_mask(n, w, causal=True)  # True where 0 <= i - j <= w


CAUSAL_WINDOW_MASK = Exercise(
    name="causal window mask",
    reference=_causal_window,
    cases=lambda rng: [(5, 2), (7, 1), (4, 0), (6, 9), (1, 3)],
    output="bool_mask",
    mistakes=(
        Mistake(
            "sees the future: a two-sided window",
            lambda n, w: att.window_mask(n, w),
            "|i - j| <= w lets query i see w keys *after* it, which a streaming model has not heard yet. Keep only "
            "the keys j <= i.",
        ),
        Mistake(
            "rows and columns swapped: queries see the future",
            lambda n, w: _causal_window(n, w).T,
            "Rows are queries i and columns are keys j (SDPA's layout): True where i - w <= j <= i, so the True "
            "entries lie on and below the diagonal.",
        ),
        Mistake(
            "a token does not see itself",
            lambda n, w: _band(n, w, lambda w: 1, lambda w: w),
            "The window includes the query's own position: j = i is allowed (a token also attends to itself).",
        ),
        Mistake(
            "the window is one key short",
            lambda n, w: _band(n, w, lambda w: 0, lambda w: w - 1),
            "w is the number of *past* keys a token sees besides itself: i - w <= j, so w + 1 keys in all.",
        ),
        Mistake(
            "the window is one key too long",
            lambda n, w: _band(n, w, lambda w: 0, lambda w: w + 1),
            "Query i sees keys i - w ... i: w past keys plus itself, not w + 1 past keys.",
        ),
        Mistake(
            "causal, but not truncated",
            lambda n, w: att.causal_mask(n),
            "Every query sees its whole past here; truncation also drops the keys more than w steps back: i - w <= j.",
        ),
    ),
    hints=(
        "Row i is query i, column j is key j. Two conditions must hold together: the key is not in the future, and "
        "it is at most w steps in the past.",
        "Build index grids i (as a column) and j (as a row) with torch.arange and broadcast; compare i - j with 0 "
        "and with w.",
        "i = torch.arange(n)[:, None]; j = torch.arange(n)[None, :]; return (j <= i) & (i - j <= w).",
    ),
    solution='''def my_causal_window_mask(n, w):
    i = torch.arange(n)[:, None]  # (n, 1): queries
    j = torch.arange(n)[None, :]  # (1, n): keys
    return (j <= i) & (i - j <= w)  # (n, n) bool: the past w keys and the token itself''',
)


def check_causal_window_mask(fn) -> Feedback:
    """Check fn(n, w) -> (n, n) bool with True where key j may be seen by query i: i - w <= j <= i."""
    feedback = CAUSAL_WINDOW_MASK.check(fn, verbose=False)
    if not feedback.passed and feedback.answered and feedback.mistake is None:
        leak = _future_keys(fn)
        if leak is not None:
            feedback = Feedback(False, True, f"❌ {CAUSAL_WINDOW_MASK.name}: {leak}", "looks at future tokens")
    print(feedback.message)
    return feedback


def _future_keys(fn) -> str | None:
    """A message when the learner's mask allows some key j > i on one of the cases; None otherwise."""
    for n, w in CAUSAL_WINDOW_MASK.cases(np.random.default_rng(CAUSAL_WINDOW_MASK.seed)):
        try:
            value, error = run_guarded(fn, (n, w), CAUSAL_WINDOW_MASK.time_limit)
        except NotImplementedError:
            return None
        if error is not None or not isinstance(value, (torch.Tensor, np.ndarray)):
            continue
        if value.dtype not in (torch.bool, np.bool_):
            continue
        mask = torch.as_tensor(np.asarray(value.detach().cpu() if isinstance(value, torch.Tensor) else value))
        if tuple(mask.shape) != (n, n):
            continue
        future = torch.nonzero(torch.triu(mask, diagonal=1))
        if len(future):
            i, j = (int(x) for x in future[0])
            return (
                f"not causal: with n={n}, w={w} your mask lets query {i} attend key {j}, which comes after it "
                "(rows are queries, columns keys). Keep only the keys j <= i."
            )
    return None


# ---------------------------------------------------------------------------------------------------------
# masked attention
# ---------------------------------------------------------------------------------------------------------


def _masked_cases(rng: np.random.Generator) -> list[tuple]:
    cases = []
    for n_q, n_k, d, d_v, empty_row in ((5, 5, 4, 3, None), (4, 6, 3, 2, 2), (6, 3, 2, 4, 0)):
        gen = torch.Generator().manual_seed(int(rng.integers(2**31)))
        q = torch.randn(n_q, d, generator=gen, dtype=torch.float64)
        k = torch.randn(n_k, d, generator=gen, dtype=torch.float64)
        v = torch.randn(n_k, d_v, generator=gen, dtype=torch.float64)
        mask = torch.rand(n_q, n_k, generator=gen) < 0.6  # True = may attend
        mask[torch.arange(n_q), torch.arange(n_q) % n_k] = True  # every query sees at least one key ...
        if empty_row is not None:
            mask[empty_row] = False  # ... except this one: its output must be zeros
        cases.append((q, k, v, mask))
    return cases


def _masked(q, k, v, mask, fill=float("-inf"), invert=False, after_softmax=False, scale=None, zero_empty=True,
            added=False):
    s = 1.0 / np.sqrt(q.shape[-1]) if scale is None else scale
    scores = s * (q @ k.T)  # (N_q, d) @ (d, N_k) -> (N_q, N_k)
    if after_softmax:
        return (torch.softmax(scores, dim=-1) * mask) @ v  # (N_q, N_k) @ (N_k, d_v) -> (N_q, d_v)
    if added:  # the boolean mask used as a float one: +1 where allowed, +0 elsewhere
        return torch.softmax(scores + mask.to(scores.dtype), dim=-1) @ v
    weights = torch.softmax(scores.masked_fill(mask if invert else ~mask, fill), dim=-1)  # a -inf row: NaN
    if zero_empty:
        weights = torch.nan_to_num(weights, nan=0.0)
    return weights @ v  # (N_q, N_k) @ (N_k, d_v) -> (N_q, d_v)


def _with_and_without_empty_rows(name: str, explanation: str, **change) -> tuple[Mistake, Mistake]:
    """The mistake made by a learner who zeroes fully masked rows, and by one who leaves them NaN."""
    return (
        Mistake(name, lambda q, k, v, mask: _masked(q, k, v, mask, **change), explanation),
        Mistake(name, lambda q, k, v, mask: _masked(q, k, v, mask, zero_empty=False, **change), explanation),
    )


_SCALE = (
    "forgot the scale",
    "Divide the scores by sqrt(d) before the softmax (d = q.shape[-1]), as SDPA does by default.",
)

MASKED_ATTENTION = Exercise(
    name="masked attention",
    reference=lambda q, k, v, mask: att.scaled_dot_product_attention(q, k, v, attn_mask=mask),
    cases=_masked_cases,
    mistakes=(
        Mistake(
            "masked after the softmax",
            lambda q, k, v, mask: _masked(q, k, v, mask, after_softmax=True),
            "Zeroing weights after the softmax leaves rows that no longer sum to 1 (the masked keys' share is "
            "lost). Set forbidden scores to -inf before the softmax.",
        ),
        Mistake(
            "added the boolean mask to the scores",
            lambda q, k, v, mask: _masked(q, k, v, mask, added=True),
            "A mask added to the scores must hold 0 and -inf: adding True/False as 1/0 shifts the allowed scores by "
            "1 and masks nothing. Use scores.masked_fill(~mask, float('-inf')).",
        ),
        *_with_and_without_empty_rows(
            "mask polarity inverted",
            "SDPA's polarity: True means may attend. Fill -inf where the mask is False (~mask).",
            invert=True,
        ),
        *_with_and_without_empty_rows(
            "masked scores set to 0, not -inf",
            "exp(0) = 1, so a zero score still gets weight. Use -inf: exp(-inf) = 0.",
            fill=0.0,
        ),
        Mistake(
            "a finite fill (-1e9 or finfo.min) on a fully masked row",
            lambda q, k, v, mask: _masked(q, k, v, mask, fill=-1e9, zero_empty=False),
            "A large negative fill works where a row keeps some key, but a query that may attend to nothing gets "
            "equal scores everywhere, hence uniform weights: it averages every value it was forbidden to see. Fill "
            "-inf, and give fully masked rows zero weights (torch.nan_to_num on the weights), as torch's CPU SDPA "
            "does.",
        ),
        *_with_and_without_empty_rows(*_SCALE, scale=1.0),
        Mistake(
            "NaN on a fully masked row",
            lambda q, k, v, mask: _masked(q, k, v, mask, zero_empty=False),
            "A query that may attend to nothing has a row of -inf scores and softmax gives 0/0 = NaN. Return a "
            "zero row there, as torch's CPU SDPA does (e.g. torch.nan_to_num on the weights).",
        ),
    ),
    hints=(
        "A forbidden key must get weight exactly 0 while the allowed weights of the row still sum to 1: change the "
        "scores before the softmax, not the weights after it.",
        "exp(-inf) = 0. A row where every key is forbidden is the special case: its softmax is 0/0, and the "
        "contract asks for a zero output there.",
        "scores = q @ k.T / sqrt(d); scores.masked_fill(~mask, float('-inf')); torch.softmax over dim=-1; "
        "torch.nan_to_num(weights, nan=0.0); @ v.",
    ),
    solution='''def my_masked_attention(q, k, v, mask):
    scores = q @ k.T / q.shape[-1] ** 0.5  # (N_q, d) @ (d, N_k) -> (N_q, N_k)
    scores = scores.masked_fill(~mask, float("-inf"))  # True = may attend: forbid the rest
    weights = torch.nan_to_num(torch.softmax(scores, dim=-1), nan=0.0)  # a fully masked row: 0/0 -> zeros
    return weights @ v  # (N_q, N_k) @ (N_k, d_v) -> (N_q, d_v)''',
)


def check_masked_attention(fn) -> Feedback:
    """Check fn(q (N_q, d), k (N_k, d), v (N_k, d_v), mask (N_q, N_k) bool, True = may attend) -> (N_q, d_v)."""
    return MASKED_ATTENTION.check(fn)


LESSON = Lesson(
    {"variance": SCALED_VARIANCE, "causal_window_mask": CAUSAL_WINDOW_MASK, "masked_attention": MASKED_ATTENTION}
)
hint, solution = LESSON.hint, LESSON.solution
