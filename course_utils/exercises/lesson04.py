"""Checkers for lesson 04 (the matrix form), with the 1/sqrt(d_k) scale.

    check_self_attention_matrix(fn)  column convention: fn(I, Wq, Wk, Wv) -> O = V softmax(K^T Q / sqrt(d_k)), (d_v, N)
    check_row_attention(fn)          row convention: fn(X (N, d_in), Wq, Wk, Wv) -> (N, d_v); W as nn.Linear.weight
    check_masked_attention(fn)       fn(q (N_q, d), k (N_k, d), v (N_k, d_v), mask (N_q, N_k) bool) -> (N_q, d_v)
"""

from __future__ import annotations

import numpy as np
import torch

from .. import attention as att
from .. import reference as ref
from .base import Exercise, Feedback, Mistake

__all__ = [
    "SELF_ATTENTION_MATRIX",
    "ROW_ATTENTION",
    "MASKED_ATTENTION",
    "check_self_attention_matrix",
    "check_row_attention",
    "check_masked_attention",
]


def _weights_cases(rng: np.random.Generator) -> list[tuple]:
    cases = []
    for d_in, d_k, d_v, n in ((4, 4, 4, 5), (6, 3, 2, 7), (3, 5, 4, 1)):  # square weights first
        I = rng.normal(size=(d_in, n))  # (d_in, N)
        cases.append((I, rng.normal(size=(d_k, d_in)), rng.normal(size=(d_k, d_in)), rng.normal(size=(d_v, d_in))))
    return cases


def _columns(I, Wq, Wk, Wv, scale=None, keys=None, axis=0, transposed_scores=False):
    """O (d_v, N) with one deliberate change."""
    Q = Wq @ I  # (d_k, d_in) @ (d_in, N) -> (d_k, N)
    K = (Wk if keys is None else keys) @ I  # (d_k, N)
    V = Wv @ I  # (d_v, N)
    s = 1.0 / np.sqrt(Wq.shape[0]) if scale is None else scale
    A = s * (Q.T @ K if transposed_scores else K.T @ Q)  # (N, N)
    return V @ ref.softmax(A, axis=axis)  # (d_v, N)


_SCALE = (
    "forgot the scale",
    "Divide the scores by sqrt(d_k) before the softmax (d_k = Wq.shape[0]): without it the variance of q . k "
    "grows with d_k and the softmax saturates.",
)
_WQ_KEYS = ("used W^q for the keys", "Keys have their own matrix: k^i = W^k a^i.")

SELF_ATTENTION_MATRIX = Exercise(
    name="self-attention, matrix form",
    reference=lambda I, Wq, Wk, Wv: ref.self_attention_matrix(I, Wq, Wk, Wv),
    cases=_weights_cases,
    mistakes=(
        Mistake(_SCALE[0], lambda I, Wq, Wk, Wv: _columns(I, Wq, Wk, Wv, scale=1.0), _SCALE[1]),
        Mistake(
            "softmax over the wrong axis",
            lambda I, Wq, Wk, Wv: _columns(I, Wq, Wk, Wv, axis=1),
            "In the column convention A = K^T Q holds query j in column j: normalise over axis=0.",
        ),
        Mistake(
            "transposed weight matrices",
            lambda I, Wq, Wk, Wv: _columns(I, Wq.T, Wk.T, Wv.T),
            "Each W has shape (d_out, d_in): Q = Wq @ I, not Wq.T @ I.",
        ),
        Mistake(_WQ_KEYS[0], lambda I, Wq, Wk, Wv: _columns(I, Wq, Wk, Wv, keys=Wq), _WQ_KEYS[1]),
        Mistake(
            "A = Q^T K instead of K^T Q",
            lambda I, Wq, Wk, Wv: _columns(I, Wq, Wk, Wv, transposed_scores=True),
            "A[i, j] = k^i . q^j (column j = query j), so A = K.T @ Q.",
        ),
        Mistake(
            "divided by d_k instead of sqrt(d_k)",
            lambda I, Wq, Wk, Wv: _columns(I, Wq, Wk, Wv, scale=1.0 / Wq.shape[0]),
            "The scale is 1/sqrt(d_k): it brings the variance of q . k back to about 1.",
        ),
    ),
    hint="Q, K, V = Wq @ I, Wk @ I, Wv @ I; A = K.T @ Q / sqrt(d_k); A' = softmax over axis=0; O = V @ A'.",
)


def check_self_attention_matrix(fn) -> Feedback:
    """Check fn(I (d_in, N), Wq, Wk (d_k, d_in), Wv (d_v, d_in)) -> O (d_v, N), scaled by 1/sqrt(d_k)."""
    return SELF_ATTENTION_MATRIX.check(fn)


def _rows(X, Wq, Wk, Wv, scale=None, keys=None, axis=-1, transpose_weights=False):
    """The row convention's output (N, d_v) with one deliberate change."""
    T = (lambda W: W) if transpose_weights else (lambda W: W.T)
    q = X @ T(Wq)  # (N, d_in) @ (d_in, d_k) -> (N, d_k)
    k = X @ T(Wk if keys is None else keys)  # (N, d_k)
    v = X @ T(Wv)  # (N, d_v)
    s = 1.0 / np.sqrt(Wq.shape[0]) if scale is None else scale
    scores = s * (q @ k.T)  # (N, d_k) @ (d_k, N) -> (N, N), row i = query i
    return ref.softmax(scores, axis=axis) @ v  # (N, N) @ (N, d_v) -> (N, d_v)


def _row_cases(rng: np.random.Generator) -> list[tuple]:
    return [(I.T.copy(), Wq, Wk, Wv) for I, Wq, Wk, Wv in _weights_cases(rng)]  # X = I^T: (N, d_in)


ROW_ATTENTION = Exercise(
    name="self-attention, row convention",
    reference=lambda X, Wq, Wk, Wv: ref.self_attention_matrix(X.T, Wq, Wk, Wv).T,
    cases=_row_cases,
    mistakes=(
        Mistake(
            "transposed weight matrices",
            lambda X, Wq, Wk, Wv: _rows(X, Wq, Wk, Wv, transpose_weights=True),
            "The weights have nn.Linear's layout (d_out, d_in): with rows, q = X @ Wq.T.",
        ),
        Mistake(
            "softmax over the wrong axis",
            lambda X, Wq, Wk, Wv: _rows(X, Wq, Wk, Wv, axis=0),
            "In the row convention row i of the scores is query i: normalise over the last axis (axis=-1).",
        ),
        Mistake(_SCALE[0], lambda X, Wq, Wk, Wv: _rows(X, Wq, Wk, Wv, scale=1.0), _SCALE[1]),
        Mistake(_WQ_KEYS[0], lambda X, Wq, Wk, Wv: _rows(X, Wq, Wk, Wv, keys=Wq), _WQ_KEYS[1]),
        Mistake(
            "returned the column form",
            lambda X, Wq, Wk, Wv: ref.self_attention_matrix(X.T, Wq, Wk, Wv),
            "In the row convention output i is row i: return shape (N, d_v), the transpose of the lecture's O.",
        ),
    ),
    hint="q, k, v = X @ Wq.T, X @ Wk.T, X @ Wv.T; scores = q @ k.T / sqrt(d_k); softmax over axis=-1; @ v.",
)


def check_row_attention(fn) -> Feedback:
    """Check fn(X (N, d_in), Wq, Wk (d_k, d_in), Wv (d_v, d_in)) -> (N, d_v), scaled by 1/sqrt(d_k)."""
    return ROW_ATTENTION.check(fn)


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


def _masked(q, k, v, mask, fill=float("-inf"), invert=False, after_softmax=False, scale=None, zero_empty=True):
    s = 1.0 / np.sqrt(q.shape[-1]) if scale is None else scale
    scores = s * (q @ k.T)  # (N_q, d) @ (d, N_k) -> (N_q, N_k)
    if after_softmax:
        return (torch.softmax(scores, dim=-1) * mask) @ v  # (N_q, N_k) @ (N_k, d_v) -> (N_q, d_v)
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
        *_with_and_without_empty_rows(_SCALE[0], _SCALE[1], scale=1.0),
        Mistake(
            "NaN on a fully masked row",
            lambda q, k, v, mask: _masked(q, k, v, mask, zero_empty=False),
            "A query that may attend to nothing has a row of -inf scores and softmax gives 0/0 = NaN. Return a "
            "zero row there, as torch's CPU SDPA does (e.g. torch.nan_to_num on the weights).",
        ),
    ),
    hint="scores = q @ k.T / sqrt(d); scores.masked_fill(~mask, float('-inf')); softmax over dim=-1; fully "
    "masked rows -> 0; @ v.",
)


def check_masked_attention(fn) -> Feedback:
    """Check fn(q (N_q, d), k (N_k, d), v (N_k, d_v), mask (N_q, N_k) bool, True = may attend) -> (N_q, d_v)."""
    return MASKED_ATTENTION.check(fn)
