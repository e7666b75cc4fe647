"""The NumPy reference against an independent, literal implementation of the lecture's formulas."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from course_utils import reference as ref


def _rand(rng, *shape):
    return rng.normal(size=shape)


def _weights(rng, d_in=4, d_k=3, d_v=5, N=6):
    return _rand(rng, d_in, N), _rand(rng, d_k, d_in), _rand(rng, d_k, d_in), _rand(rng, d_v, d_in)


def literal_attention(I, Wq, Wk, Wv, scale):
    """The lecture, one scalar at a time with Python floats: alpha = q.k, softmax over i, b = sum alpha' v."""
    d_in, N = len(I), len(I[0])
    col = lambda M, i: [sum(M[r][c] * I[c][i] for c in range(d_in)) for r in range(len(M))]
    q = [col(Wq, i) for i in range(N)]
    k = [col(Wk, i) for i in range(N)]
    v = [col(Wv, i) for i in range(N)]
    O = np.zeros((len(Wv), N))
    for j in range(N):
        alpha = [scale * sum(a * b for a, b in zip(q[j], k[i])) for i in range(N)]
        top = max(alpha)
        e = [math.exp(a - top) for a in alpha]
        alpha_prime = [x / sum(e) for x in e]
        for r in range(len(Wv)):
            O[r, j] = sum(alpha_prime[i] * v[i][r] for i in range(N))
    return O


@pytest.mark.parametrize("scale", [None, 1.0, 0.3])
def test_attention_matches_the_literal_lecture(scale):
    rng = np.random.default_rng(0)
    I, Wq, Wk, Wv = _weights(rng)
    expected = literal_attention(I.tolist(), Wq.tolist(), Wk.tolist(), Wv.tolist(), 1 / math.sqrt(3) if scale is None else scale)
    np.testing.assert_allclose(ref.self_attention_matrix(I, Wq, Wk, Wv, scale=scale), expected, atol=1e-12)
    np.testing.assert_allclose(ref.self_attention_loop(I, Wq, Wk, Wv, scale=scale), expected, atol=1e-12)


def test_scores_entry_is_key_i_dot_query_j():
    rng = np.random.default_rng(1)
    I, Wq, Wk, _ = _weights(rng)
    A = ref.dot_product_scores(I, Wq, Wk, scale=1.0)
    q, k = Wq @ I, Wk @ I
    for i in range(I.shape[1]):
        for j in range(I.shape[1]):
            assert A[i, j] == pytest.approx(float(np.dot(k[:, i], q[:, j])), abs=1e-12)
    np.testing.assert_allclose(ref.dot_product_scores(I, Wq, Wk), A / math.sqrt(3), atol=1e-12)


def test_additive_scores_literal():
    rng = np.random.default_rng(2)
    I, Wq, Wk, _ = _weights(rng)
    w = rng.normal(size=3)
    A = ref.additive_scores(I, Wq, Wk, w)
    q, k = Wq @ I, Wk @ I
    for i in range(I.shape[1]):
        for j in range(I.shape[1]):
            assert A[i, j] == pytest.approx(sum(w[d] * math.tanh(q[d, j] + k[d, i]) for d in range(3)), abs=1e-12)


def test_softmax_is_stable_and_handles_masks():
    x = np.array([[1000.0, -1000.0], [1001.0, -np.inf], [999.0, -np.inf]])
    s = ref.softmax(x, axis=0)
    assert np.isfinite(s).all()
    np.testing.assert_allclose(s[:, 0], np.exp([-1, 0, -2]) / np.exp([-1, 0, -2]).sum(), atol=1e-12)
    np.testing.assert_allclose(s[:, 1], [1, 0, 0])
    assert (ref.softmax(np.full((3, 2), -np.inf)) == 0).all()  # a fully masked column gives zeros
    np.testing.assert_allclose(ref.softmax(x[:, 0], axis=-1).sum(), 1.0)
    np.testing.assert_allclose(ref.softmax(x.T, axis=1), s.T)


@settings(max_examples=40, deadline=None)
@given(
    n=st.integers(1, 7), d_in=st.integers(1, 5), d_k=st.integers(1, 4), seed=st.integers(0, 10_000),
    big=st.floats(0.1, 30.0),
)
def test_columns_of_A_prime_sum_to_one(n, d_in, d_k, seed, big):
    rng = np.random.default_rng(seed)
    I = big * rng.normal(size=(d_in, n))
    A = ref.dot_product_scores(I, rng.normal(size=(d_k, d_in)), rng.normal(size=(d_k, d_in)))
    A_prime = ref.softmax(A, axis=0)
    np.testing.assert_allclose(A_prime.sum(axis=0), 1.0, atol=1e-12)
    assert (A_prime >= 0).all()


@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 8), seed=st.integers(0, 10_000))
def test_permuting_inputs_permutes_outputs(n, seed):
    rng = np.random.default_rng(seed)
    I, Wq, Wk, Wv = _weights(rng, N=n)
    perm = rng.permutation(n)
    O = ref.self_attention_matrix(I, Wq, Wk, Wv)
    np.testing.assert_allclose(ref.self_attention_matrix(I[:, perm], Wq, Wk, Wv), O[:, perm], atol=1e-10)


def test_matches_torch_sdpa_in_row_convention():
    rng = np.random.default_rng(3)
    I, Wq, Wk, Wv = _weights(rng, d_v=3)
    t = lambda M: torch.tensor(M.T)[None]  # column convention (d, N) -> rows (1, N, d)
    out = torch.nn.functional.scaled_dot_product_attention(t(Wq @ I), t(Wk @ I), t(Wv @ I))
    np.testing.assert_allclose(out[0].numpy().T, ref.self_attention_matrix(I, Wq, Wk, Wv), atol=1e-12)


def test_multi_head_is_concatenated_heads_through_Wo():
    rng = np.random.default_rng(4)
    I = rng.normal(size=(6, 5))
    Wq = [rng.normal(size=(3, 6)), rng.normal(size=(2, 6))]  # heads may differ in d_k
    Wk = [rng.normal(size=(3, 6)), rng.normal(size=(2, 6))]
    Wv = [rng.normal(size=(4, 6)), rng.normal(size=(4, 6))]
    Wo = rng.normal(size=(7, 8))
    heads = [literal_attention(I.tolist(), Wq[h].tolist(), Wk[h].tolist(), Wv[h].tolist(), 1 / math.sqrt(Wq[h].shape[0])) for h in range(2)]
    np.testing.assert_allclose(ref.multi_head_self_attention(I, Wq, Wk, Wv, Wo), Wo @ np.vstack(heads), atol=1e-12)


def test_multi_head_folds_the_lectures_two_step_projection():
    """q^{i,h} = W^{q,h} q^i = (W^{q,h} W^q) a^i: one folded matrix per head gives the same output."""
    rng = np.random.default_rng(5)
    I = rng.normal(size=(4, 6))
    Wq, Wk, Wv = rng.normal(size=(4, 4)), rng.normal(size=(4, 4)), rng.normal(size=(4, 4))
    Wqh = [rng.normal(size=(2, 4)) for _ in range(2)]
    Wkh = [rng.normal(size=(2, 4)) for _ in range(2)]
    Wvh = [rng.normal(size=(2, 4)) for _ in range(2)]
    Wo = rng.normal(size=(4, 4))
    two_step = []
    for h in range(2):
        q, k, v = Wqh[h] @ (Wq @ I), Wkh[h] @ (Wk @ I), Wvh[h] @ (Wv @ I)
        two_step.append(v @ ref.softmax(k.T @ q / math.sqrt(2), axis=0))
    folded = ref.multi_head_self_attention(I, [m @ Wq for m in Wqh], [m @ Wk for m in Wkh], [m @ Wv for m in Wvh], Wo)
    np.testing.assert_allclose(folded, Wo @ np.vstack(two_step), atol=1e-12)


@pytest.mark.parametrize("d_model", [1, 2, 7, 16])
def test_sinusoidal_encoding_formula(d_model):
    E = ref.sinusoidal_encoding(d_model, 12)
    assert E.shape == (d_model, 12)
    for p in range(12):
        for r in range(d_model):
            i = r // 2
            angle = p / 10000 ** (2 * i / d_model)
            assert E[r, p] == pytest.approx(math.sin(angle) if r % 2 == 0 else math.cos(angle), abs=1e-12)


@pytest.mark.parametrize("block", [1, 3, 16, 100])
@pytest.mark.parametrize("causal", [False, True])
def test_online_softmax_is_exact(block, causal):
    rng = np.random.default_rng(6)
    Q, K, V = 4 * rng.normal(size=(5, 23)), 4 * rng.normal(size=(5, 23)), rng.normal(size=(3, 23))
    A = K.T @ Q / math.sqrt(5)
    if causal:
        A = np.where(np.arange(23)[:, None] <= np.arange(23)[None, :], A, -np.inf)
    expected = V @ ref.softmax(A, axis=0)
    np.testing.assert_allclose(ref.online_softmax_attention(Q, K, V, block=block, causal=causal), expected, atol=1e-12)


def test_online_softmax_with_fewer_keys_than_queries():
    rng = np.random.default_rng(7)
    Q, K, V = rng.normal(size=(4, 9)), rng.normal(size=(4, 3)), rng.normal(size=(2, 3))
    expected = V @ ref.softmax(K.T @ Q / 2.0, axis=0)
    np.testing.assert_allclose(ref.online_softmax_attention(Q, K, V, block=2), expected, atol=1e-12)


BAD_CALLS = [
    (lambda: ref.self_attention_matrix(np.ones(4), np.ones((3, 4)), np.ones((3, 4)), np.ones((3, 4))), ValueError, "I must have 2"),
    (lambda: ref.self_attention_matrix(np.ones((4, 5)), np.ones((3, 5)), np.ones((3, 4)), np.ones((3, 4))), ValueError, "Wq (3, 5), I (4, 5)"),
    (lambda: ref.self_attention_matrix(np.ones((4, 5)), np.ones((3, 4)), np.ones((2, 4)), np.ones((3, 4))), ValueError, "Wq (3, 4), Wk (2, 4)"),
    (lambda: ref.self_attention_matrix(np.ones((4, 5)), np.ones((3, 4)), np.ones((3, 4)), np.ones((3, 2))), ValueError, "Wv (3, 2)"),
    (lambda: ref.self_attention_loop(np.full((4, 5), np.nan), np.ones((3, 4)), np.ones((3, 4)), np.ones((3, 4))), ValueError, "finite"),
    (lambda: ref.self_attention_matrix(np.ones((4, 0)), np.ones((3, 4)), np.ones((3, 4)), np.ones((3, 4))), ValueError, "empty"),
    (lambda: ref.dot_product_scores("abc", np.ones((3, 4)), np.ones((3, 4))), TypeError, "I must be"),
    (lambda: ref.dot_product_scores(np.ones((4, 5)), np.ones((3, 4)), np.ones((3, 4)), scale=-1.0), ValueError, "scale"),
    (lambda: ref.additive_scores(np.ones((4, 5)), np.ones((3, 4)), np.ones((3, 4)), np.ones(2)), ValueError, "w (2,)"),
    (lambda: ref.softmax(np.array([1.0, np.nan])), ValueError, "NaN"),
    (lambda: ref.softmax(np.ones((2, 2)), axis=2), ValueError, "axis=2"),
    (lambda: ref.multi_head_self_attention(np.ones((4, 5)), np.ones((3, 4)), [np.ones((3, 4))], [np.ones((3, 4))], np.ones((3, 3))), TypeError, "one matrix per head"),
    (lambda: ref.multi_head_self_attention(np.ones((4, 5)), [np.ones((3, 4))], [np.ones((3, 4))], [np.ones((3, 4))], np.ones((3, 4))), ValueError, "Wo (3, 4)"),
    (lambda: ref.sinusoidal_encoding(0, 5), ValueError, "d_model"),
    (lambda: ref.sinusoidal_encoding(4, 2.5), TypeError, "n_positions"),
    (lambda: ref.online_softmax_attention(np.ones((3, 4)), np.ones((3, 5)), np.ones((2, 4))), ValueError, "V (2, 4)"),
    (lambda: ref.online_softmax_attention(np.ones((3, 4)), np.ones((3, 4)), np.ones((2, 4)), block=0), ValueError, "block"),
]


@pytest.mark.parametrize("call,error,words", BAD_CALLS, ids=[w for _, _, w in BAD_CALLS])
def test_bad_inputs_raise_clear_errors(call, error, words):
    with pytest.raises(error, match=None) as info:
        call()
    assert words in str(info.value)


@pytest.mark.parametrize("fn", [ref.self_attention_matrix, ref.self_attention_loop])
def test_overflowing_scores_name_the_callers_inputs(fn):
    """I * 1e200 overflows K^T Q: the error used to blame an internal `x` of shape (5, 5)."""
    I = np.eye(5) * 1e200
    with pytest.raises(ValueError, match=r"scores overflow float64 .* I \(5, 5\) \(max \|\.\| 1e\+200\), Wq \(5, 5\)"):
        fn(I, np.eye(5), np.eye(5), np.eye(5))
    with pytest.raises(ValueError, match=r"scores overflow float64 .* Q \(5, 5\)"):
        ref.online_softmax_attention(I, I, np.eye(5))


def test_numpy_scalars_and_flags():
    I = np.random.default_rng(0).normal(size=(4, 6))
    W = np.eye(4)
    assert np.array_equal(ref.self_attention_matrix(I, W, W, W, scale=np.float32(0.5)),
                          ref.self_attention_matrix(I, W, W, W, scale=0.5))
    assert np.array_equal(ref.sinusoidal_encoding(np.int64(4), np.int64(3)), ref.sinusoidal_encoding(4, 3))
    with pytest.raises(TypeError, match=r"causal must be a bool"):
        ref.online_softmax_attention(I, I, I, causal="no")


def test_one_set_of_checks_no_private_copies():
    """course_utils._validate is the only place that spells out "a positive int" (six private copies went)."""
    import pathlib

    import course_utils

    root = pathlib.Path(course_utils.__file__).parent
    mine = ["attention", "tiling", "efficient", "positional", "models", "training", "vision", "graphs", "recurrent",
            "reference", "data", "runtime", "tasks/delay", "tasks/digits", "tasks/listops", "tasks/order",
            "tasks/planted", "tasks/recall", "tasks/two_relations"]
    for name in mine:
        src = (root / f"{name}.py").read_text()
        for copy in ("must be a positive int", "def _positive_int", "def _check_int", "def _check_size",
                     "isinstance(value, bool)", "not isinstance(causal, bool)"):
            assert copy not in src, f"{name}.py still has its own check: {copy!r}"
