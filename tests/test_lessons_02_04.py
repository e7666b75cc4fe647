"""Lessons 02-04 derive functions step by step; each is compared here with the package's version, on shapes the
lessons do not use. The solutions notebooks' answers pass their checkers; the lessons' stubs are unanswered."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from nbtools import notebook_definitions

from course_utils import reference as ref

L02 = "notebooks/02_attention_scores.ipynb"
L03 = "notebooks/03_extracting_information.ipynb"
L04 = "notebooks/04_matrix_form.ipynb"
SOLUTIONS = {
    L02: "notebooks/solutions/02_attention_scores_solutions.ipynb",
    L03: "notebooks/solutions/03_extracting_information_solutions.ipynb",
    L04: "notebooks/solutions/04_matrix_form_solutions.ipynb",
}
# The exercise functions of each lesson, with the checker that grades them.
EXERCISES = {
    L02: {"my_log_softmax": "check_log_softmax", "my_softmax_jacobian": "check_softmax_jacobian"},
    L03: {"my_new_input_output": "check_new_input"},
    L04: {"my_causal_window_mask": "check_causal_window_mask", "my_masked_attention": "check_masked_attention"},
}
SHAPES = [(4, 3, 3, 5), (6, 2, 5, 7), (3, 5, 4, 1), (8, 8, 8, 16)]  # (d_in, d_k, d_v, N)


@pytest.fixture(scope="module")
def l02():
    return notebook_definitions(L02)


@pytest.fixture(scope="module")
def l03():
    return notebook_definitions(L03)


@pytest.fixture(scope="module")
def l04():
    return notebook_definitions(L04)


def _weights(seed: int, d_in: int, d_k: int, d_v: int, n: int):
    rng = np.random.default_rng(seed)
    return (rng.normal(size=(d_in, n)), rng.normal(size=(d_k, d_in)), rng.normal(size=(d_k, d_in)),
            rng.normal(size=(d_v, d_in)), rng.normal(size=d_k))


@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_lesson02_scores_equal_the_reference(l02, shape):
    I, Wq, Wk, _, w = _weights(0, *shape)
    A = ref.dot_product_scores(I, Wq, Wk, scale=1.0)
    np.testing.assert_allclose(l02["dot_product_scores_loop"](I, Wq, Wk), A, atol=1e-12, rtol=0)
    np.testing.assert_allclose(l02["dot_product_scores_vectorised"](I, Wq, Wk), A, atol=1e-12, rtol=0)
    A_add = ref.additive_scores(I, Wq, Wk, w)
    np.testing.assert_allclose(l02["additive_scores_loop"](I, Wq, Wk, w), A_add, atol=1e-12, rtol=0)
    np.testing.assert_allclose(l02["additive_scores_vectorised"](I, Wq, Wk, w), A_add, atol=1e-12, rtol=0)
    q, k = Wq @ I[:, 0], Wk @ I[:, -1]
    assert l02["dot_product_score"](q, k) == pytest.approx(A[-1, 0], abs=1e-12)
    assert l02["additive_score"](q, k, w) == pytest.approx(A_add[-1, 0], abs=1e-12)


@pytest.mark.parametrize("axis", [0, 1, -1])
def test_lesson02_softmaxes(l02, axis):
    x = np.random.default_rng(1).normal(size=(5, 7)) * 3
    np.testing.assert_allclose(l02["softmax_stable"](x, axis=axis), ref.softmax(x, axis=axis), atol=1e-12, rtol=0)
    np.testing.assert_allclose(l02["softmax_naive"](x, axis=axis), ref.softmax(x, axis=axis), atol=1e-12, rtol=0)
    big = x + 1000.0
    np.testing.assert_allclose(l02["softmax_stable"](big, axis=axis), ref.softmax(x, axis=axis), atol=1e-12, rtol=0)
    with np.errstate(over="ignore", invalid="ignore"):
        assert np.isnan(l02["softmax_naive"](big, axis=axis)).all()  # the failure the lesson shows
    assert np.array_equal(l02["relu"](np.array([-1.0, 0.0, 2.0])), [0.0, 0.0, 2.0])


def test_lesson02_flop_count(l02):
    dot, additive = l02["score_flops"](10, 4)
    assert dot == 100 * 7 and additive == 100 * 15


@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_lesson03_outputs_equal_the_reference_loop(l03, shape):
    I, Wq, Wk, Wv, _ = _weights(2, *shape)
    O = ref.self_attention_loop(I, Wq, Wk, Wv, scale=1.0)
    np.testing.assert_allclose(l03["self_attention_outputs"](I, Wq, Wk, Wv), O, atol=1e-10, rtol=0)
    np.testing.assert_allclose(l03["output_for_query"](I, Wq, Wk, Wv, shape[-1] - 1), O[:, -1], atol=1e-10, rtol=0)


def test_lesson03_sensitivity_is_the_jacobian_norm(l03):
    rng = np.random.default_rng(3)
    W, I = rng.normal(size=(3, 4)), rng.normal(size=(4, 5))
    S = l03["sensitivity"](lambda X: W @ X, I)  # a per-vector linear map: d b^j / d a^i = W if i == j
    np.testing.assert_allclose(S, np.linalg.norm(W) * np.eye(5), atol=1e-6)


@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("scale", [1.0, None, 0.25])
def test_lesson04_both_conventions_equal_the_reference(l04, shape, scale):
    I, Wq, Wk, Wv, _ = _weights(4, *shape)
    s = 1.0 / np.sqrt(shape[1]) if scale is None else scale
    O = ref.self_attention_matrix(I, Wq, Wk, Wv, scale=scale)
    np.testing.assert_allclose(l04["self_attention_matrix"](I, Wq, Wk, Wv, scale=s), O, atol=1e-10, rtol=0)
    if scale is None:  # the lesson's default is the reference's and SDPA's: 1/sqrt(d_k)
        np.testing.assert_allclose(l04["self_attention_matrix"](I, Wq, Wk, Wv), O, atol=1e-10, rtol=0)
        np.testing.assert_allclose(l04["self_attention_rows"](I.T, Wq, Wk, Wv)[0], O.T, atol=1e-10, rtol=0)
    out, S, S_prime = l04["self_attention_rows"](I.T, Wq, Wk, Wv, scale=s)
    np.testing.assert_allclose(out, O.T, atol=1e-10, rtol=0)
    np.testing.assert_allclose(S, ref.dot_product_scores(I, Wq, Wk, scale=s).T, atol=1e-10, rtol=0)
    q, k, v = (torch.from_numpy(I.T @ W.T) for W in (Wq, Wk, Wv))
    torch.testing.assert_close(torch.from_numpy(out), F.scaled_dot_product_attention(q, k, v, scale=s), atol=1e-10, rtol=0)


def test_lesson04_score_statistics_shapes(l04):
    stats = l04["score_statistics"](np.array([4, 64]), n_samples=50, n_keys=4, seed=0)
    assert set(stats) == {"var_raw", "var_scaled", "top_raw", "top_scaled", "grad_raw", "grad_scaled"}
    assert all(v.shape == (2,) for v in stats.values())
    np.testing.assert_allclose(stats["var_scaled"] * np.array([4, 64]), stats["var_raw"], rtol=1e-12)


@pytest.mark.parametrize("lesson", [L02, L03, L04])
def test_lesson_stubs_are_unanswered(lesson, capsys):
    from course_utils.exercises import lesson02, lesson03, lesson04

    module = {L02: lesson02, L03: lesson03, L04: lesson04}[lesson]
    defs = notebook_definitions(lesson)
    for fn_name, check in EXERCISES[lesson].items():
        feedback = getattr(module, check)(defs[fn_name])
        assert not feedback.answered and not feedback.passed
    assert "not answered yet" in capsys.readouterr().out


@pytest.mark.parametrize("lesson", [L02, L03, L04])
def test_solutions_pass_their_checkers(lesson, capsys):
    from course_utils.exercises import lesson02, lesson03, lesson04

    module = {L02: lesson02, L03: lesson03, L04: lesson04}[lesson]
    defs = notebook_definitions(SOLUTIONS[lesson])
    for fn_name, check in EXERCISES[lesson].items():
        assert getattr(module, check)(defs[fn_name]).passed, fn_name
    assert capsys.readouterr().out.count("✅") == len(EXERCISES[lesson])


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1, 2, 3, 4])
def test_lesson04_scale_claims_hold_on_other_seeds(l04, seed):
    """The sqrt(d_k) measurement is random: the lesson's asserts must hold whatever the seed."""
    widths = np.array([4, 16, 64, 256, 1024])
    s = l04["score_statistics"](widths, seed=seed)
    assert np.allclose(s["var_raw"] / widths, 1.0, atol=0.15)
    assert np.allclose(s["var_scaled"], 1.0, atol=0.15)
    assert s["top_raw"][-1] > 0.9 and np.all(np.diff(s["top_raw"]) > 0)
    assert np.all(s["top_scaled"] < 0.5)
    assert 0.1 * s["grad_scaled"][-1] < s["grad_raw"][-1] < 0.25 * s["grad_scaled"][-1]  # "about 5x less"
    assert np.all(np.diff(s["grad_raw"] / s["grad_scaled"]) < 0)
