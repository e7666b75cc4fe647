"""Checkers for lesson 03 (extracting information), in the lecture's column convention, unscaled (scale=1.0).

    check_new_input(fn)                 fn(I, Wq, Wk, Wv, x) -> b^{N+1}, the output of x appended to the inputs
    check_duplicate(predicted, measured)  the total weight a^1 puts on a^2 once a copy of a^2 is appended
"""

from __future__ import annotations

import numpy as np

from .. import reference as ref
from .base import Exercise, Feedback, Lesson, Mistake, Prediction

__all__ = [
    "NEW_INPUT",
    "DUPLICATE",
    "LESSON",
    "hint",
    "solution",
    "check_new_input",
    "check_duplicate",
]


def _new_output(I, Wq, Wk, Wv, x, keys=None, values=None, scale=1.0, with_self=True, swapped=False, normalise=True,
                transposed=False):
    """b^{N+1} (d_v,) of x appended to I, with one deliberate change."""
    T = (lambda W: W.T) if transposed else (lambda W: W)
    Wq, Wk, Wv = T(Wq), T(Wk if keys is None else keys), T(Wv if values is None else values)
    J = np.column_stack([I, x]) if with_self else I  # (d_in, N + 1): x is a^{N+1}
    K, V = Wk @ J, Wv @ J  # (d_k, N + 1), (d_v, N + 1)
    if swapped:  # x's key against every query: row N + 1 of A instead of column N + 1
        alpha = (Wk @ x) @ (Wq @ J)  # (d_k,) @ (d_k, N + 1) -> (N + 1,)
    else:
        alpha = (Wq @ x) @ K  # (d_k,) @ (d_k, N + 1) -> (N + 1,): alpha_i = q^{N+1} . k^i
    alpha = scale * alpha
    weights = ref.softmax(alpha) if normalise else alpha  # (N + 1,)
    return V @ weights  # (d_v, N + 1) @ (N + 1,) -> (d_v,)


def _new_input_cases(rng: np.random.Generator) -> list[tuple]:
    cases = []
    for d_in, d_k, d_v, n in ((4, 4, 4, 5), (3, 3, 3, 1), (5, 2, 3, 6), (3, 4, 2, 3)):  # square weights first
        I = rng.normal(size=(d_in, n))  # (d_in, N)
        W = (rng.normal(size=(d_k, d_in)), rng.normal(size=(d_k, d_in)), rng.normal(size=(d_v, d_in)))
        cases.append((I, *W, rng.normal(size=d_in)))
    return cases


NEW_INPUT = Exercise(
    name="the output of a new input",
    reference=lambda I, Wq, Wk, Wv, x: ref.self_attention_loop(np.column_stack([I, x]), Wq, Wk, Wv, scale=1.0)[:, -1],
    cases=_new_input_cases,
    mistakes=(
        Mistake(
            "left out i = j",
            lambda I, Wq, Wk, Wv, x: _new_output(I, Wq, Wk, Wv, x, with_self=False),
            "Once x is appended it is one of the inputs: its own key k^{N+1} and value v^{N+1} take part in the "
            "sum, as a^1 attends to itself in lesson 02. Sum over all N + 1 inputs.",
        ),
        Mistake(
            "rows and columns swapped",
            lambda I, Wq, Wk, Wv, x: _new_output(I, Wq, Wk, Wv, x, swapped=True),
            "You scored x's key against every query: that is row N + 1 of A = K^T Q. The new input's weights are its "
            "column: alpha_i = k^i . q^{N+1}, with x as the query.",
        ),
        Mistake(
            "scaled by 1/sqrt(d_k)",
            lambda I, Wq, Wk, Wv, x: _new_output(I, Wq, Wk, Wv, x, scale=1.0 / np.sqrt(Wq.shape[0])),
            "This lesson uses the slide's unscaled alpha = q . k; lesson 04 adds the 1/sqrt(d_k) scale.",
        ),
        Mistake(
            "weighted the keys instead of the values",
            lambda I, Wq, Wk, Wv, x: _new_output(I, Wq, Wk, Wv, x, values=Wk),
            "b = sum_i alpha'_i v^i: the weights multiply the values v^i = W^v a^i, not the keys.",
        ),
        Mistake(
            "the softmax is missing",
            lambda I, Wq, Wk, Wv, x: _new_output(I, Wq, Wk, Wv, x, normalise=False),
            "Normalise the scores first: alpha' = softmax(alpha) over i, so the weights sum to 1.",
        ),
        Mistake(
            "used W^q for the keys",
            lambda I, Wq, Wk, Wv, x: _new_output(I, Wq, Wk, Wv, x, keys=Wq),
            "Keys have their own matrix: k^i = W^k a^i.",
        ),
        Mistake(
            "transposed weight matrices",
            lambda I, Wq, Wk, Wv, x: _new_output(I, Wq, Wk, Wv, x, transposed=True),
            "Each W has shape (d_out, d_in) and v^i = W^v a^i: multiply Wv @ a, not Wv.T @ a.",
        ),
    ),
    hints=(
        "Appending x makes it input N + 1, an input like any other: which inputs does any a^j attend to in section 4?",
        "x asks its own query q^{N+1} = W^q x and attends to all N + 1 inputs, itself included: its weights are "
        "the softmax over i = 1 .. N + 1 of k^i . q^{N+1}; then take the weighted sum of the N + 1 values.",
        "J = np.column_stack([I, x]); alpha = (Wq @ x) @ (Wk @ J); w = softmax(alpha); return (Wv @ J) @ w.",
    ),
    solution='''def my_new_input_output(I, Wq, Wk, Wv, x):
    J = np.column_stack([I, x])  # (d_in, N + 1): x is the new input a^{N+1}
    alpha = (Wq @ x) @ (Wk @ J)  # (d_k,) @ (d_k, N + 1) -> (N + 1,): k^i . q^{N+1}, i = N + 1 included
    e = np.exp(alpha - alpha.max())
    return (Wv @ J) @ (e / e.sum())  # (d_v, N + 1) @ (N + 1,) -> (d_v,)''',
)


def check_new_input(fn) -> Feedback:
    """Check fn(I (d_in, N), Wq, Wk (d_k, d_in), Wv (d_v, d_in), x (d_in,)) -> b^{N+1} (d_v,), unscaled."""
    return NEW_INPUT.check(fn)


DUPLICATE = Prediction(
    name="a^1's total weight on a^2 and its copy",
    kind="float",
    abs_tol=0.01,
    hints=(
        "The copy a^5 = a^2 has the same key as a^2, so query a^1 gives both the same score. What does that do "
        "to the softmax's sum?",
        "Write p = alpha'_{1,2} before the copy. exp(alpha_{1,2}) now appears twice in the sum, once in each "
        "numerator.",
        "The two weights together are 2 exp(alpha_{1,2}) / (S + exp(alpha_{1,2})), with exp(alpha_{1,2}) = p S: "
        "simplify, then put in p = 0.8022.",
    ),
    solution="my_duplicate = 2 * 0.8022 / (1 + 0.8022)  # 2p / (1 + p), about 0.890: a copy adds weight",
    explanation="A copy of a^2 has a^2's score, so exp(alpha_{1,2}) enters the sum twice: the pair gets "
    "2p / (1 + p) of the weight, about 0.890 for p = 0.8022, more than a^2 alone had. Self-attention sees a multiset: "
    "repeating an input gives it more say in every output.",
)


def check_duplicate(predicted, measured) -> Feedback:
    """Compare the predicted total weight of a^2 and its copy (a float) with the measured one."""
    return DUPLICATE.check(predicted, measured)


LESSON = Lesson({"new_input": NEW_INPUT, "duplicate": DUPLICATE})
hint, solution = LESSON.hint, LESSON.solution
