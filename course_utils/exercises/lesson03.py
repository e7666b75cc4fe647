"""Checkers for lesson 03 (extracting information), in the lecture's column convention, unscaled (scale=1.0).

    check_output_for_query(fn)  fn(I, Wq, Wk, Wv, j) -> b^j = sum_i alpha'_{j,i} v^i, shape (d_v,)
    check_all_outputs(fn)       fn(I, Wq, Wk, Wv) -> O = [b^1 ... b^N], shape (d_v, N)
"""

from __future__ import annotations

import numpy as np

from .. import reference as ref
from .base import Exercise, Feedback, Mistake

__all__ = ["OUTPUT_FOR_QUERY", "ALL_OUTPUTS", "check_output_for_query", "check_all_outputs"]


def _outputs(I, Wq, Wk, Wv, keys=None, values=None, axis=0, normalise=True):
    """O (d_v, N) with one deliberate change: another key matrix, other values, another softmax axis, or none."""
    Q = Wq @ I  # (d_k, N)
    K = (Wk if keys is None else keys) @ I  # (d_k, N)
    V = (Wv if values is None else values) @ I  # (d_v, N)
    A = K.T @ Q  # (N, N)
    A_prime = ref.softmax(A, axis=axis) if normalise else A
    return V @ A_prime  # (d_v, N)


def _cases(rng: np.random.Generator, with_j: bool) -> list[tuple]:
    cases = []
    for d_in, d_k, d_v, n, j in ((4, 4, 4, 5, 0), (4, 4, 4, 6, 3), (3, 2, 5, 4, 3)):  # square weights first
        I = rng.normal(size=(d_in, n))  # (d_in, N)
        args = (I, rng.normal(size=(d_k, d_in)), rng.normal(size=(d_k, d_in)), rng.normal(size=(d_v, d_in)))
        cases.append(args + ((j,) if with_j else ()))
    return cases


# Each known mistake as the O (d_v, N) it produces, and what to change.
_MISTAKES = (
    (
        "weighted the keys instead of the values",
        lambda I, Wq, Wk, Wv: _outputs(I, Wq, Wk, Wv, values=Wk),
        "b^j = sum_i alpha'_{j,i} v^i: the weights multiply the values v^i = W^v a^i, not the keys.",
    ),
    (
        "the softmax is missing",
        lambda I, Wq, Wk, Wv: _outputs(I, Wq, Wk, Wv, normalise=False),
        "Normalise the scores first: alpha'_{j,i} = softmax over i of alpha_{j,i}, so the weights sum to 1.",
    ),
    (
        "used W^q for the keys",
        lambda I, Wq, Wk, Wv: _outputs(I, Wq, Wk, Wv, keys=Wq),
        "Keys have their own matrix: k^i = W^k a^i.",
    ),
    (
        "softmax over the wrong axis",
        lambda I, Wq, Wk, Wv: _outputs(I, Wq, Wk, Wv, axis=1),
        "Query j's weights alpha'_{j,1..N} are column j of A = K^T Q: normalise over i (axis=0), so each "
        "column sums to 1.",
    ),
    (
        "transposed weight matrices",
        lambda I, Wq, Wk, Wv: _outputs(I, Wq.T, Wk.T, Wv.T),
        "Each W has shape (d_out, d_in) and v^i = W^v a^i: multiply Wv @ I[:, i], not Wv.T @ I[:, i].",
    ),
)


def _for_query(outputs):
    """A mistake's O (d_v, N) turned into its b^j (d_v,)."""
    return lambda I, Wq, Wk, Wv, j: outputs(I, Wq, Wk, Wv)[:, j]


OUTPUT_FOR_QUERY = Exercise(
    name="b^j for one query",
    reference=lambda I, Wq, Wk, Wv, j: ref.self_attention_loop(I, Wq, Wk, Wv, scale=1.0)[:, j],
    cases=lambda rng: _cases(rng, with_j=True),
    mistakes=tuple(Mistake(name, _for_query(wrong), why) for name, wrong, why in _MISTAKES),
    hint="q = Wq @ I[:, j]; alpha_i = q @ (Wk @ I[:, i]) for every i; alpha' = softmax(alpha); "
    "b = sum over i of alpha'[i] * (Wv @ I[:, i]).",
)


def check_output_for_query(fn) -> Feedback:
    """Check fn(I (d_in, N), Wq, Wk (d_k, d_in), Wv (d_v, d_in), j) -> b^j of shape (d_v,), unscaled."""
    return OUTPUT_FOR_QUERY.check(fn)


ALL_OUTPUTS = Exercise(
    name="all outputs b^1 ... b^N",
    reference=lambda I, Wq, Wk, Wv: ref.self_attention_loop(I, Wq, Wk, Wv, scale=1.0),
    cases=lambda rng: _cases(rng, with_j=False),
    mistakes=tuple(Mistake(name, wrong, why) for name, wrong, why in _MISTAKES)
    + (
        Mistake(
            "returned O transposed",
            lambda I, Wq, Wk, Wv: ref.self_attention_loop(I, Wq, Wk, Wv, scale=1.0).T,
            "In the lecture's convention b^j is column j of O: return shape (d_v, N).",
        ),
    ),
    hint="for each j, compute b^j as in the first exercise and store it in column j of O (shape (d_v, N)).",
)


def check_all_outputs(fn) -> Feedback:
    """Check fn(I (d_in, N), Wq, Wk (d_k, d_in), Wv (d_v, d_in)) -> O of shape (d_v, N), unscaled."""
    return ALL_OUTPUTS.check(fn)
