"""Checkers for lesson 02 (attention scores), in the lecture's column convention.

Scores are unscaled here (`scale=1.0`, the slide's alpha = q . k); lesson 04 adds 1/sqrt(d_k).

    check_softmax(fn)            fn(A) -> A' with each column normalised (the lecture's softmax over i)
    check_dot_product_scores(fn) fn(I, Wq, Wk) -> A, A[i, j] = k^i . q^j
    check_additive_scores(fn)    fn(I, Wq, Wk, w) -> A, A[i, j] = w^T tanh(q^j + k^i)
"""

from __future__ import annotations

import numpy as np

from .. import reference as ref
from .base import Exercise, Feedback, Mistake

__all__ = [
    "SOFTMAX",
    "DOT_PRODUCT_SCORES",
    "ADDITIVE_SCORES",
    "check_softmax",
    "check_dot_product_scores",
    "check_additive_scores",
]


# ---------------------------------------------------------------------------------------------------------
# softmax over each column
# ---------------------------------------------------------------------------------------------------------


def _naive_softmax(x):
    e = np.exp(x)  # overflows to inf above ~709
    return e / e.sum(axis=0, keepdims=True)


def _softmax_cases(rng: np.random.Generator) -> list[tuple]:
    return [
        (rng.normal(size=(4, 4)),),  # square: every mistake applies
        (3.0 * rng.normal(size=(3, 5)),),  # 3 keys, 5 queries
        (800.0 + 10.0 * rng.normal(size=(4, 3)),),  # large scores: exp overflows without the max trick
    ]


SOFTMAX = Exercise(
    name="softmax over each column",
    reference=lambda x: ref.softmax(x, axis=0),
    cases=_softmax_cases,
    mistakes=(
        Mistake(
            "softmax over the wrong axis",
            lambda x: ref.softmax(x, axis=1),
            "In the lecture's convention column j of A holds query j's scores alpha_{j,1..N}: normalise each "
            "column (axis=0), so that every column sums to 1.",
        ),
        Mistake(
            "not numerically stable",
            _naive_softmax,
            "exp overflows for scores above about 709 and inf / inf gives NaN. Subtract each column's max "
            "before exp: softmax(x - c) = softmax(x) for any constant c.",
        ),
        Mistake(
            "normalised over the whole matrix",
            lambda x: np.exp(x - x.max()) / np.exp(x - x.max()).sum(),
            "Each query (each column) gets its own distribution: sum over axis=0 with keepdims=True.",
        ),
    ),
    hint="subtract each column's max (x.max(axis=0, keepdims=True)), exponentiate, divide by the column's sum.",
)


def check_softmax(fn) -> Feedback:
    """Check fn(A) -> softmax of each column of A, shape (N_k, N_q) -> (N_k, N_q)."""
    return SOFTMAX.check(fn)


# ---------------------------------------------------------------------------------------------------------
# dot-product and additive scores
# ---------------------------------------------------------------------------------------------------------


def _score_cases(rng: np.random.Generator, with_w: bool) -> list[tuple]:
    cases = []
    for d_in, d_k, n in ((4, 4, 5), (3, 2, 6), (5, 3, 1)):  # square weights first: every mistake applies
        args = (rng.normal(size=(d_in, n)), rng.normal(size=(d_k, d_in)), rng.normal(size=(d_k, d_in)))
        cases.append(args + ((rng.normal(size=d_k),) if with_w else ()))
    return cases


def _dot(I, Wq, Wk, scale=1.0, keys=None, transposed=False):
    Q = Wq @ I  # (d_k, N)
    K = (Wk if keys is None else keys) @ I  # (d_k, N)
    return scale * (Q.T @ K if transposed else K.T @ Q)  # (N, N)


DOT_PRODUCT_SCORES = Exercise(
    name="dot-product scores",
    reference=lambda I, Wq, Wk: ref.dot_product_scores(I, Wq, Wk, scale=1.0),
    cases=lambda rng: _score_cases(rng, with_w=False),
    mistakes=(
        Mistake(
            "used W^q for the keys",
            lambda I, Wq, Wk: _dot(I, Wq, Wk, keys=Wq),
            "Keys have their own matrix: k^i = W^k a^i. With W^q for both, A is symmetric and a token's score "
            "with itself is a squared length.",
        ),
        Mistake(
            "rows and columns swapped",
            lambda I, Wq, Wk: _dot(I, Wq, Wk, transposed=True),
            "A[i, j] = k^i . q^j: row i is key i, column j is query j, so A = K^T Q (you returned Q^T K = A^T).",
        ),
        Mistake(
            "transposed weight matrices",
            lambda I, Wq, Wk: _dot(I, Wq.T, Wk.T),
            "Wq has shape (d_k, d_in) and q^i = W^q a^i: multiply Wq @ I, not Wq.T @ I.",
        ),
        Mistake(
            "scaled by 1/sqrt(d_k)",
            lambda I, Wq, Wk: _dot(I, Wq, Wk, scale=1.0 / np.sqrt(Wq.shape[0])),
            "This lesson uses the slide's unscaled alpha = q . k; lesson 04 adds the 1/sqrt(d_k) scale.",
        ),
        Mistake(
            "returned the softmax, not the scores",
            lambda I, Wq, Wk: ref.softmax(_dot(I, Wq, Wk), axis=0),
            "Return the raw relevance scores alpha; the softmax is the next step.",
        ),
    ),
    hint="Q = Wq @ I and K = Wk @ I have shape (d_k, N); then A = K.T @ Q.",
)


def check_dot_product_scores(fn) -> Feedback:
    """Check fn(I (d_in, N), Wq (d_k, d_in), Wk (d_k, d_in)) -> A (N, N) with A[i, j] = k^i . q^j."""
    return DOT_PRODUCT_SCORES.check(fn)


def _additive(I, Wq, Wk, w, keys=None, squash=np.tanh, transposed=False):
    Q = Wq @ I  # (d_k, N)
    K = (Wk if keys is None else keys) @ I  # (d_k, N)
    H = squash(Q[:, None, :] + K[:, :, None])  # (d_k, N_i, N_j)
    A = np.einsum("d,dij->ij", w, H)  # (N, N)
    return A.T if transposed else A


ADDITIVE_SCORES = Exercise(
    name="additive scores",
    reference=ref.additive_scores,
    cases=lambda rng: _score_cases(rng, with_w=True),
    mistakes=(
        Mistake(
            "tanh is missing",
            lambda I, Wq, Wk, w: _additive(I, Wq, Wk, w, squash=lambda x: x),
            "Without tanh, w^T (q^j + k^i) = w^T q^j + w^T k^i is a sum of two separate terms: no interaction "
            "between query and key. Apply tanh to q^j + k^i before the dot product with w.",
        ),
        Mistake(
            "used W^q for the keys",
            lambda I, Wq, Wk, w: _additive(I, Wq, Wk, w, keys=Wq),
            "Keys have their own matrix: k^i = W^k a^i.",
        ),
        Mistake(
            "rows and columns swapped",
            lambda I, Wq, Wk, w: _additive(I, Wq, Wk, w, transposed=True),
            "A[i, j] = w^T tanh(q^j + k^i): row i is key i, column j is query j.",
        ),
        Mistake(
            "transposed weight matrices",
            lambda I, Wq, Wk, w: _additive(I, Wq.T, Wk.T, w),
            "Wq has shape (d_k, d_in) and q^i = W^q a^i: multiply Wq @ I, not Wq.T @ I.",
        ),
    ),
    hint="Q[:, None, :] + K[:, :, None] has shape (d_k, N_i, N_j); apply tanh, then contract d_k with w "
    "(np.einsum('d,dij->ij', w, H)).",
)


def check_additive_scores(fn) -> Feedback:
    """Check fn(I (d_in, N), Wq, Wk (d_k, d_in), w (d_k,)) -> A (N, N) with A[i, j] = w^T tanh(q^j + k^i)."""
    return ADDITIVE_SCORES.check(fn)
