"""The checkers of lessons 02-04: each named mistake is diagnosed on a learner-style wrong function, and the
correct solution passes. The wrong functions are written the way a learner would, not copied from the checkers."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from checker_asserts import assert_diagnosed, assert_passes, unanswered

from course_utils.exercises import lesson02, lesson03, lesson04


@pytest.mark.parametrize(
    "check",
    [
        lesson02.check_softmax,
        lesson02.check_dot_product_scores,
        lesson02.check_additive_scores,
        lesson03.check_output_for_query,
        lesson03.check_all_outputs,
        lesson04.check_self_attention_matrix,
        lesson04.check_row_attention,
        lesson04.check_masked_attention,
    ],
)
def testunanswered_prints_a_hint_and_does_not_fail(check, capsys):
    feedback = check(unanswered)
    printed = capsys.readouterr().out
    assert not feedback.passed and not feedback.answered
    assert "not answered yet" in printed and "Hint:" in printed


# ---------------------------------------------------------------------------------------------------------
# lesson 02
# ---------------------------------------------------------------------------------------------------------


def softmax_ok(x):
    e = np.exp(x - x.max(axis=0, keepdims=True))
    return e / e.sum(axis=0, keepdims=True)


def softmax_rows(x):
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def softmax_naive(x):
    return np.exp(x) / np.sum(np.exp(x), axis=0)


def softmax_global(x):
    e = np.exp(x - np.max(x))
    return e / np.sum(e)


def test_softmax_checker(capsys):
    assert_passes(lesson02.check_softmax(softmax_ok), capsys)
    assert_diagnosed(lesson02.check_softmax(softmax_rows), "softmax over the wrong axis", capsys)
    assert_diagnosed(lesson02.check_softmax(softmax_global), "normalised over the whole matrix", capsys)


def test_naive_softmax_is_diagnosed_without_warnings(capsys, recwarn):
    assert_diagnosed(lesson02.check_softmax(softmax_naive), "not numerically stable", capsys)
    assert not [w for w in recwarn if issubclass(w.category, RuntimeWarning)]  # the checker keeps stderr clean


def dot_ok(I, Wq, Wk):
    return (Wk @ I).T @ (Wq @ I)


def dot_wq_keys(I, Wq, Wk):
    Q = Wq @ I
    return Q.T @ Q


def dot_swapped(I, Wq, Wk):
    return (Wq @ I).T @ (Wk @ I)


def dot_transposed_weights(I, Wq, Wk):
    return (Wk.T @ I).T @ (Wq.T @ I)


def dot_scaled(I, Wq, Wk):
    return (Wk @ I).T @ (Wq @ I) / np.sqrt(Wq.shape[0])


def dot_softmaxed(I, Wq, Wk):
    return softmax_ok((Wk @ I).T @ (Wq @ I))


def dot_loop(I, Wq, Wk):
    N = I.shape[1]
    return np.array([[(Wk @ I[:, i]) @ (Wq @ I[:, j]) for j in range(N)] for i in range(N)])


@pytest.mark.parametrize(
    "fn, mistake",
    [
        (dot_wq_keys, "used W^q for the keys"),
        (dot_swapped, "rows and columns swapped"),
        (dot_transposed_weights, "transposed weight matrices"),
        (dot_scaled, "scaled by 1/sqrt(d_k)"),
        (dot_softmaxed, "returned the softmax, not the scores"),
    ],
)
def test_dot_product_checker_names_the_mistake(fn, mistake, capsys):
    assert_diagnosed(lesson02.check_dot_product_scores(fn), mistake, capsys)


@pytest.mark.parametrize("fn", [dot_ok, dot_loop])
def test_dot_product_checker_accepts_solutions(fn, capsys):
    assert_passes(lesson02.check_dot_product_scores(fn), capsys)


def additive_ok(I, Wq, Wk, w):
    Q, K = Wq @ I, Wk @ I
    N = I.shape[1]
    return np.array([[w @ np.tanh(Q[:, j] + K[:, i]) for j in range(N)] for i in range(N)])


def additive_no_tanh(I, Wq, Wk, w):
    Q, K = Wq @ I, Wk @ I
    return np.einsum("d,dij->ij", w, Q[:, None, :] + K[:, :, None])


def additive_wq_keys(I, Wq, Wk, w):
    return additive_ok(I, Wq, Wq, w)


def additive_swapped(I, Wq, Wk, w):
    return additive_ok(I, Wq, Wk, w).T


def additive_transposed_weights(I, Wq, Wk, w):
    return additive_ok(I, Wq.T, Wk.T, w)


@pytest.mark.parametrize(
    "fn, mistake",
    [
        (additive_no_tanh, "tanh is missing"),
        (additive_wq_keys, "used W^q for the keys"),
        (additive_swapped, "rows and columns swapped"),
        (additive_transposed_weights, "transposed weight matrices"),
    ],
)
def test_additive_checker(fn, mistake, capsys):
    assert_passes(lesson02.check_additive_scores(additive_ok), capsys)
    assert_diagnosed(lesson02.check_additive_scores(fn), mistake, capsys)


def test_a_wrong_shape_is_reported_with_the_shapes(capsys):
    feedback = lesson02.check_dot_product_scores(lambda I, Wq, Wk: Wq @ I)
    assert not feedback.passed and feedback.mistake is None
    assert "returned shape (4, 5), expected (5, 5)" in capsys.readouterr().out


# ---------------------------------------------------------------------------------------------------------
# lesson 03
# ---------------------------------------------------------------------------------------------------------


def output_ok(I, Wq, Wk, Wv, j):
    N = I.shape[1]
    q = Wq @ I[:, j]
    alpha = np.array([q @ (Wk @ I[:, i]) for i in range(N)])
    alpha_prime = softmax_ok(alpha)
    return sum(alpha_prime[i] * (Wv @ I[:, i]) for i in range(N))


def _output_variant(keys=None, values=None, normalise=True, axis=0, transpose=False):
    def fn(I, Wq, Wk, Wv, j):
        T = (lambda W: W.T) if transpose else (lambda W: W)
        Q, K, V = T(Wq) @ I, T(Wq if keys == "q" else Wk) @ I, T(Wk if values == "k" else Wv) @ I
        A = K.T @ Q
        if normalise:
            A = softmax_ok(A) if axis == 0 else softmax_rows(A)
        return V @ A[:, j]

    return fn


LESSON03_MISTAKES = [
    (dict(values="k"), "weighted the keys instead of the values"),
    (dict(normalise=False), "the softmax is missing"),
    (dict(keys="q"), "used W^q for the keys"),
    (dict(axis=1), "softmax over the wrong axis"),
    (dict(transpose=True), "transposed weight matrices"),
]


@pytest.mark.parametrize("change, mistake", LESSON03_MISTAKES)
def test_output_for_query_checker(change, mistake, capsys):
    assert_passes(lesson03.check_output_for_query(output_ok), capsys)
    assert_passes(lesson03.check_output_for_query(_output_variant()), capsys)
    assert_diagnosed(lesson03.check_output_for_query(_output_variant(**change)), mistake, capsys)


def _all_from(one):
    return lambda I, Wq, Wk, Wv: np.stack([one(I, Wq, Wk, Wv, j) for j in range(I.shape[1])], axis=1)


@pytest.mark.parametrize("change, mistake", LESSON03_MISTAKES)
def test_all_outputs_checker(change, mistake, capsys):
    assert_passes(lesson03.check_all_outputs(_all_from(output_ok)), capsys)
    assert_diagnosed(lesson03.check_all_outputs(_all_from(_output_variant(**change))), mistake, capsys)


def test_all_outputs_checker_names_a_transposed_result(capsys):
    transposed = _all_from(output_ok)
    assert_diagnosed(lesson03.check_all_outputs(lambda *a: transposed(*a).T), "returned O transposed", capsys)


# ---------------------------------------------------------------------------------------------------------
# lesson 04
# ---------------------------------------------------------------------------------------------------------


def matrix_variant(scale="sqrt", axis=0, transpose=False, keys=None, qk=False):
    def fn(I, Wq, Wk, Wv):
        T = (lambda W: W.T) if transpose else (lambda W: W)
        Q, K, V = T(Wq) @ I, T(Wq if keys == "q" else Wk) @ I, T(Wv) @ I
        d_k = Q.shape[0]
        A = Q.T @ K if qk else K.T @ Q
        A = A * {"sqrt": 1 / np.sqrt(d_k), "none": 1.0, "d": 1 / d_k}[scale]
        return V @ (softmax_ok(A) if axis == 0 else softmax_rows(A))

    return fn


@pytest.mark.parametrize(
    "change, mistake",
    [
        (dict(scale="none"), "forgot the scale"),
        (dict(axis=1), "softmax over the wrong axis"),
        (dict(transpose=True), "transposed weight matrices"),
        (dict(keys="q"), "used W^q for the keys"),
        (dict(qk=True), "A = Q^T K instead of K^T Q"),
        (dict(scale="d"), "divided by d_k instead of sqrt(d_k)"),
    ],
)
def test_self_attention_matrix_checker(change, mistake, capsys):
    assert_passes(lesson04.check_self_attention_matrix(matrix_variant()), capsys)
    assert_diagnosed(lesson04.check_self_attention_matrix(matrix_variant(**change)), mistake, capsys)


def rows_variant(scale=True, axis=-1, transpose=False, keys=None, column_form=False):
    def fn(X, Wq, Wk, Wv):
        X = torch.as_tensor(X)  # a learner may well answer in torch
        Wq, Wk, Wv = (torch.as_tensor(W) for W in (Wq, Wk, Wv))
        T = (lambda W: W) if transpose else (lambda W: W.T)
        q, k, v = X @ T(Wq), X @ T(Wq if keys == "q" else Wk), X @ T(Wv)
        scores = q @ k.T / (q.shape[-1] ** 0.5 if scale else 1.0)
        out = torch.softmax(scores, dim=axis) @ v
        return out.T if column_form else out

    return fn


@pytest.mark.parametrize(
    "change, mistake",
    [
        (dict(transpose=True), "transposed weight matrices"),
        (dict(axis=0), "softmax over the wrong axis"),
        (dict(scale=False), "forgot the scale"),
        (dict(keys="q"), "used W^q for the keys"),
        (dict(column_form=True), "returned the column form"),
    ],
)
def test_row_attention_checker(change, mistake, capsys):
    assert_passes(lesson04.check_row_attention(rows_variant()), capsys)
    assert_diagnosed(lesson04.check_row_attention(rows_variant(**change)), mistake, capsys)


def masked_variant(where="before", fill=float("-inf"), invert=False, scale=True, zero_empty_rows=True):
    def fn(q, k, v, mask):
        scores = q @ k.T / (q.shape[-1] ** 0.5 if scale else 1.0)
        if where == "after":
            weights = torch.softmax(scores, dim=-1) * mask
        else:
            weights = torch.softmax(scores.masked_fill(mask if invert else ~mask, fill), dim=-1)
            if zero_empty_rows:
                weights = torch.nan_to_num(weights, nan=0.0)
        return weights @ v

    return fn


@pytest.mark.parametrize(
    "change, mistake",
    [
        (dict(where="after"), "masked after the softmax"),
        (dict(invert=True), "mask polarity inverted"),
        (dict(fill=0.0), "masked scores set to 0, not -inf"),
        (dict(scale=False), "forgot the scale"),
        (dict(zero_empty_rows=False), "NaN on a fully masked row"),
        (dict(invert=True, zero_empty_rows=False), "mask polarity inverted"),
        (dict(fill=0.0, zero_empty_rows=False), "masked scores set to 0, not -inf"),
        (dict(scale=False, zero_empty_rows=False), "forgot the scale"),
    ],
)
def test_masked_attention_checker(change, mistake, capsys):
    assert_passes(lesson04.check_masked_attention(masked_variant()), capsys)
    assert_diagnosed(lesson04.check_masked_attention(masked_variant(**change)), mistake, capsys)


def test_masked_attention_cases_cover_partial_and_empty_rows():
    cases = lesson04.MASKED_ATTENTION.cases(np.random.default_rng(lesson04.MASKED_ATTENTION.seed))
    first_mask = cases[0][3]
    assert first_mask.any(-1).all() and not first_mask.all()  # every query sees some keys, not all
    assert any(not mask.any(-1).all() for *_, mask in cases)  # some case has a fully masked row
    assert any(q.shape[0] != k.shape[0] for q, k, *_ in cases)  # N_q != N_k


def test_every_mistake_differs_from_the_reference_on_some_case():
    """A mistake that equals the right answer on every case could never be named (nor caught)."""
    for exercise in (
        lesson02.SOFTMAX, lesson02.DOT_PRODUCT_SCORES, lesson02.ADDITIVE_SCORES, lesson03.OUTPUT_FOR_QUERY,
        lesson03.ALL_OUTPUTS, lesson04.SELF_ATTENTION_MATRIX, lesson04.ROW_ATTENTION, lesson04.MASKED_ATTENTION,
    ):
        cases = exercise.cases(np.random.default_rng(exercise.seed))
        for mistake in exercise.mistakes:
            differs = False
            with np.errstate(all="ignore"):
                for args in cases:
                    expected = np.asarray(exercise.reference(*args), dtype=np.float64)
                    try:
                        wrong = mistake.wrong(*args)
                    except Exception:
                        continue
                    wrong = wrong.numpy() if isinstance(wrong, torch.Tensor) else np.asarray(wrong)
                    differs |= wrong.shape != expected.shape or not np.allclose(wrong, expected)
            assert differs, f"{exercise.name}: {mistake.name} equals the reference on every case"
