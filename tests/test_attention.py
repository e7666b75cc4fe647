"""course_utils.attention against torch's own scaled_dot_product_attention, in float64, with every kind of mask.

The MultiHeadSelfAttention class has its own tests; this file covers the functions, the mask helpers and
SelfAttention (lesson 04).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from course_utils import attention as att
from course_utils import reference as ref

TOL = 1e-12


def _qkv(gen: torch.Generator, batch: tuple, n_q: int, n_k: int, d: int, d_v: int):
    q = torch.randn(*batch, n_q, d, generator=gen, dtype=torch.float64)
    k = torch.randn(*batch, n_k, d, generator=gen, dtype=torch.float64)
    v = torch.randn(*batch, n_k, d_v, generator=gen, dtype=torch.float64)
    return q, k, v


def _random_shapes(seed: int):
    """A few random (batch, N_q, N_k, d, d_v): batch ranks 0 to 2, N_q != N_k included, N = 1 included."""
    rng = np.random.default_rng(seed)
    shapes = [((), 1, 1, 1, 1), ((2, 3), 7, 5, 4, 6), ((1,), 5, 9, 8, 3)]
    for _ in range(4):
        batch = tuple(int(b) for b in rng.integers(1, 4, size=rng.integers(0, 3)))
        shapes.append((batch, *(int(x) for x in rng.integers(1, 12, size=4))))
    return shapes


def _assert_same(ours: torch.Tensor, theirs: torch.Tensor) -> None:
    assert ours.shape == theirs.shape
    assert ours.dtype == theirs.dtype == torch.float64
    assert torch.isfinite(ours).all()
    torch.testing.assert_close(ours, theirs, atol=TOL, rtol=0)


def _bool_mask(gen, batch, n_q, n_k, p_keep=0.6):
    return torch.rand(*batch, n_q, n_k, generator=gen, dtype=torch.float64) < p_keep


SHAPES = _random_shapes(0)


@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("scale", [None, 1.0, 0.3])
def test_no_mask_equals_torch(shape, scale):
    gen = torch.Generator().manual_seed(1)
    q, k, v = _qkv(gen, *shape)
    _assert_same(att.scaled_dot_product_attention(q, k, v, scale=scale), F.scaled_dot_product_attention(q, k, v, scale=scale))


@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_bool_mask_equals_torch(shape):
    gen = torch.Generator().manual_seed(2)
    q, k, v = _qkv(gen, *shape)
    batch, n_q, n_k = shape[0], shape[1], shape[2]
    for mask in (_bool_mask(gen, batch, n_q, n_k), _bool_mask(gen, (), n_q, n_k), _bool_mask(gen, (), 1, n_k)):
        _assert_same(att.scaled_dot_product_attention(q, k, v, attn_mask=mask), F.scaled_dot_product_attention(q, k, v, attn_mask=mask))


@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_float_mask_with_minus_inf_equals_torch(shape):
    gen = torch.Generator().manual_seed(3)
    q, k, v = _qkv(gen, *shape)
    batch, n_q, n_k = shape[0], shape[1], shape[2]
    bias = torch.randn(*batch, n_q, n_k, generator=gen, dtype=torch.float64)  # a float mask is added
    allowed = _bool_mask(gen, batch, n_q, n_k)
    mask = torch.where(allowed, bias, torch.tensor(float("-inf"), dtype=torch.float64))
    _assert_same(att.scaled_dot_product_attention(q, k, v, attn_mask=mask), F.scaled_dot_product_attention(q, k, v, attn_mask=mask))
    _assert_same(att.scaled_dot_product_attention(q, k, v, attn_mask=bias), F.scaled_dot_product_attention(q, k, v, attn_mask=bias))


@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_causal_equals_torch_including_n_q_not_n_k(shape):
    gen = torch.Generator().manual_seed(4)
    q, k, v = _qkv(gen, *shape)
    ours = att.scaled_dot_product_attention(q, k, v, is_causal=True)
    _assert_same(ours, F.scaled_dot_product_attention(q, k, v, is_causal=True))
    mask = att.causal_mask(q.shape[-2], k.shape[-2])  # the same, as an explicit mask
    _assert_same(att.scaled_dot_product_attention(q, k, v, attn_mask=mask), ours)


def test_causal_with_more_queries_than_keys_is_top_left_aligned():
    gen = torch.Generator().manual_seed(5)
    q, k, v = _qkv(gen, (2,), 6, 3, 4, 5)
    w = att.attention_weights(q, k, is_causal=True)  # (2, 6, 3)
    assert w.shape == (2, 6, 3)
    assert torch.equal(w[..., 0, 1:], torch.zeros(2, 2, dtype=torch.float64))  # query 0 sees key 0 only
    torch.testing.assert_close(w[..., 0, 0], torch.ones(2, dtype=torch.float64), atol=TOL, rtol=0)
    torch.testing.assert_close(w.sum(-1), torch.ones(2, 6, dtype=torch.float64), atol=TOL, rtol=0)


def test_padding_mask_equals_torch_and_zero_length_gives_zero_rows():
    gen = torch.Generator().manual_seed(6)
    q, k, v = _qkv(gen, (3, 2), 5, 5, 4, 4)
    mask = att.padding_mask([5, 2, 0], 5)  # (3, 1, 1, 5); the last sequence is entirely padding
    ours = att.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    _assert_same(ours, F.scaled_dot_product_attention(q, k, v, attn_mask=mask))
    assert torch.equal(ours[2], torch.zeros(2, 5, 4, dtype=torch.float64))
    w = att.attention_weights(q, k, attn_mask=mask)
    assert torch.equal(w[1, ..., 2:], torch.zeros(2, 5, 3, dtype=torch.float64))  # padded keys get no weight


@pytest.mark.parametrize("w", [0, 1, 3, 20])
@pytest.mark.parametrize("causal", [False, True])
def test_window_mask_equals_torch(w, causal):
    gen = torch.Generator().manual_seed(7)
    q, k, v = _qkv(gen, (2,), 9, 9, 4, 3)
    mask = att.window_mask(9, w, causal=causal)
    _assert_same(att.scaled_dot_product_attention(q, k, v, attn_mask=mask), F.scaled_dot_product_attention(q, k, v, attn_mask=mask))


@pytest.mark.parametrize("self_loops", [True, False])
def test_graph_mask_equals_torch_with_an_isolated_node(self_loops):
    gen = torch.Generator().manual_seed(8)
    adj = np.zeros((5, 5), dtype=int)
    for i, j in [(0, 1), (1, 2), (2, 0), (3, 4)]:
        adj[i, j] = adj[j, i] = 1
    adj[4, 3] = 0  # directed: node 4 has no out-edge, so without self-loops it attends to nothing
    mask = att.graph_mask(adj, self_loops=self_loops)
    q, k, v = _qkv(gen, (2,), 5, 5, 3, 3)
    ours = att.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    _assert_same(ours, F.scaled_dot_product_attention(q, k, v, attn_mask=mask))
    if not self_loops:
        assert torch.equal(ours[:, 4], torch.zeros(2, 3, dtype=torch.float64))
    else:
        assert (ours[:, 4].abs() > 0).all()


@pytest.mark.parametrize("kind", ["bool", "float"])
def test_fully_masked_rows_give_zeros_as_torch_cpu(kind):
    gen = torch.Generator().manual_seed(9)
    q, k, v = _qkv(gen, (2,), 4, 6, 5, 3)
    allowed = torch.ones(4, 6, dtype=torch.bool)
    allowed[1] = False
    allowed[3, :2] = False
    mask = allowed if kind == "bool" else torch.zeros(4, 6, dtype=torch.float64).masked_fill(~allowed, float("-inf"))
    ours = att.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    theirs = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    assert torch.equal(theirs[:, 1], torch.zeros(2, 3, dtype=torch.float64))  # torch's CPU behaviour, pinned
    _assert_same(ours, theirs)
    w = att.attention_weights(q, k, attn_mask=mask)
    torch.testing.assert_close(w.sum(-1)[:, [0, 2, 3]], torch.ones(2, 3, dtype=torch.float64), atol=TOL, rtol=0)
    assert torch.equal(w[:, 1], torch.zeros(2, 6, dtype=torch.float64))


def test_fully_masked_rows_have_finite_zero_gradients():
    gen = torch.Generator().manual_seed(10)
    q, k, v = (t.requires_grad_() for t in _qkv(gen, (), 3, 4, 2, 2))
    mask = torch.ones(3, 4, dtype=torch.bool)
    mask[0] = False
    att.scaled_dot_product_attention(q, k, v, attn_mask=mask).sum().backward()
    for t in (q, k, v):
        assert torch.isfinite(t.grad).all()
    assert torch.equal(q.grad[0], torch.zeros(2, dtype=torch.float64))


def test_gradients_equal_torch():
    gen = torch.Generator().manual_seed(11)
    ours = [t.requires_grad_() for t in _qkv(gen, (2,), 5, 6, 3, 4)]
    theirs = [t.detach().clone().requires_grad_() for t in ours]
    mask = att.window_mask(6, 2)[:5]
    att.scaled_dot_product_attention(*ours, attn_mask=mask).square().sum().backward()
    F.scaled_dot_product_attention(*theirs, attn_mask=mask).square().sum().backward()
    for a, b in zip(ours, theirs):
        torch.testing.assert_close(a.grad, b.grad, atol=1e-10, rtol=0)


def test_attention_weights_rows_sum_to_one_and_match_the_reference():
    rng = np.random.default_rng(12)
    I = rng.normal(size=(4, 6))  # (d_in, N), the lecture's columns
    Wq, Wk = rng.normal(size=(3, 4)), rng.normal(size=(3, 4))
    X = torch.from_numpy(I.T)  # (N, d_in): rows
    q, k = X @ torch.from_numpy(Wq).T, X @ torch.from_numpy(Wk).T  # (N, d_in) @ (d_in, d_k) -> (N, d_k)
    w = att.attention_weights(q, k)  # (N, N), row i = query i
    A_prime = ref.softmax(ref.dot_product_scores(I, Wq, Wk), axis=0)  # (N, N), column j = query j
    np.testing.assert_allclose(w.numpy(), A_prime.T, atol=TOL, rtol=0)  # one is the other's transpose
    torch.testing.assert_close(w.sum(-1), torch.ones(6, dtype=torch.float64), atol=TOL, rtol=0)


def test_float32_matches_torch_with_explicit_tolerance():
    gen = torch.Generator().manual_seed(13)
    q, k, v = (t.float() for t in _qkv(gen, (2, 2), 16, 16, 8, 8))
    ours = att.scaled_dot_product_attention(q, k, v, is_causal=True)
    assert ours.dtype == torch.float32
    torch.testing.assert_close(ours, F.scaled_dot_product_attention(q, k, v, is_causal=True), atol=1e-5, rtol=1e-5)


# ---------------------------------------------------------------------------------------------------------
# Mask helpers: shapes and polarity (True = may attend)
# ---------------------------------------------------------------------------------------------------------


def test_causal_mask_shape_and_polarity():
    m = att.causal_mask(4)
    assert m.shape == (4, 4) and m.dtype == torch.bool
    assert m[2, 1] and m[2, 2] and not m[1, 2]  # query 2 sees the past and itself, not the future
    assert att.causal_mask(3, 5).shape == (3, 5)
    assert torch.equal(att.causal_mask(3, 5), torch.ones(3, 5, dtype=torch.bool).tril())


def test_padding_mask_shape_and_polarity():
    m = att.padding_mask([3, 1], 4)
    assert m.shape == (2, 1, 1, 4) and m.dtype == torch.bool
    assert m[0, 0, 0].tolist() == [True, True, True, False]  # True = a real token
    assert m[1, 0, 0].tolist() == [True, False, False, False]


def test_window_mask_shape_and_polarity():
    m = att.window_mask(6, 1)
    assert m.shape == (6, 6) and m.dtype == torch.bool
    i, j = np.indices((6, 6))
    assert np.array_equal(m.numpy(), np.abs(i - j) <= 1)
    assert np.array_equal(att.window_mask(6, 2, causal=True).numpy(), (np.abs(i - j) <= 2) & (j <= i))
    assert att.window_mask(6, 0).equal(torch.eye(6, dtype=torch.bool))


def test_graph_mask_shape_and_polarity():
    adj = np.array([[0, 1, 0], [0, 0, 1], [0, 0, 0]])
    m = att.graph_mask(adj, self_loops=False)
    assert m.shape == (3, 3) and m.dtype == torch.bool
    assert m[0, 1] and not m[1, 0]  # row = query node, column = the key node it may attend to
    assert att.graph_mask(adj).diagonal().all()
    assert not att.graph_mask(adj, self_loops=False)[2].any()  # node 2: no out-edge, no self-loop
    assert torch.equal(att.graph_mask(torch.tensor(adj)), att.graph_mask(adj))


# ---------------------------------------------------------------------------------------------------------
# SelfAttention
# ---------------------------------------------------------------------------------------------------------


def test_self_attention_module_equals_the_reference_and_sdpa():
    torch.manual_seed(14)
    module = att.SelfAttention(4, d_k=3, d_v=5).double()
    x = torch.randn(2, 6, 4, dtype=torch.float64)  # (B, N, d_in)
    out = module(x)
    assert out.shape == (2, 6, 5)
    Wq, Wk, Wv = (m.weight.detach().numpy() for m in (module.W_q, module.W_k, module.W_v))
    for b in range(2):
        O = ref.self_attention_matrix(x[b].numpy().T, Wq, Wk, Wv)  # (d_v, N), the column convention
        np.testing.assert_allclose(out[b].detach().numpy(), O.T, atol=TOL, rtol=0)
    q, k, v = module.W_q(x), module.W_k(x), module.W_v(x)
    _assert_same(module(x, is_causal=True).detach(), F.scaled_dot_product_attention(q, k, v, is_causal=True).detach())
    w = module.attention_weights(x)
    assert w.shape == (2, 6, 6)
    torch.testing.assert_close(w.sum(-1), torch.ones(2, 6, dtype=torch.float64), atol=TOL, rtol=0)


def test_self_attention_learns_only_three_matrices():
    module = att.SelfAttention(8, d_k=4, d_v=6)
    shapes = sorted(tuple(p.shape) for p in module.parameters())
    assert shapes == [(4, 8), (4, 8), (6, 8)]  # W^q, W^k (d_k, d_in) and W^v (d_v, d_in): nothing depends on N


def test_self_attention_accepts_a_mask_and_rejects_bad_input():
    module = att.SelfAttention(4).double()
    x = torch.randn(2, 5, 4, dtype=torch.float64)
    out = module(x, attn_mask=att.padding_mask([5, 3], 5)[:, 0])  # (B, 1, N) for 3-D input
    assert out.shape == (2, 5, 4)
    with pytest.raises(ValueError, match=r"x's last dimension must be d_in=4, got shape \(2, 5, 3\)"):
        module(torch.randn(2, 5, 3, dtype=torch.float64))
    with pytest.raises(ValueError, match=r"d_in must be a positive int, got 0"):
        att.SelfAttention(0)


# ---------------------------------------------------------------------------------------------------------
# Validation: errors name the argument and the shape
# ---------------------------------------------------------------------------------------------------------


def _t(*shape):
    return torch.zeros(*shape, dtype=torch.float64)


@pytest.mark.parametrize(
    "kwargs, error, pattern",
    [
        (dict(q=np.zeros((2, 3)), k=_t(2, 3), v=_t(2, 3)), TypeError, r"q must be a torch.Tensor, got ndarray"),
        (dict(q=_t(3), k=_t(2, 3), v=_t(2, 3)), ValueError, r"q must have shape \(\.\.\., N, d\) with at least 2 dimensions, got shape \(3,\)"),
        (dict(q=_t(2, 3), k=_t(2, 4), v=_t(2, 3)), ValueError, r"q and k must share the last dimension d: got q \(2, 3\), k \(2, 4\)"),
        (dict(q=_t(2, 3), k=_t(2, 3), v=_t(5, 3)), ValueError, r"k and v must have the same number of keys N_k: got k \(2, 3\), v \(5, 3\)"),
        (dict(q=_t(2, 2, 3), k=_t(3, 2, 3), v=_t(3, 2, 3)), ValueError, r"batch dimensions must broadcast: got q \(2, 2, 3\)"),
        (dict(q=_t(2, 3), k=_t(2, 3).float(), v=_t(2, 3)), TypeError, r"q, k, v must share a dtype"),
        (dict(q=torch.zeros(2, 3, dtype=torch.long), k=_t(2, 3), v=_t(2, 3)), TypeError, r"q must be a floating-point tensor"),
        (dict(q=_t(2, 3).fill_(float("nan")), k=_t(2, 3), v=_t(2, 3)), ValueError, r"q must hold finite values .* shape \(2, 3\)"),
        (dict(q=_t(2, 3), k=_t(2, 3), v=_t(2, 3), attn_mask=torch.ones(3, 3, dtype=torch.bool)), ValueError,
         r"attn_mask must broadcast to the scores' shape \(2, 2\), got \(3, 3\)"),
        (dict(q=_t(2, 5, 3), k=_t(2, 5, 3), v=_t(2, 5, 3), attn_mask=att.padding_mask([5, 2], 5)), ValueError,
         r"attn_mask must broadcast to the scores' shape \(2, 5, 5\), got \(2, 1, 1, 5\) \(for 3-D inputs"),
        (dict(q=_t(2, 3), k=_t(2, 3), v=_t(2, 3), attn_mask=torch.ones(2, 2, dtype=torch.long)), TypeError,
         r"attn_mask must be bool .* or float .*, got torch.int64"),
        (dict(q=_t(2, 3), k=_t(2, 3), v=_t(2, 3), attn_mask=np.ones((2, 2), bool)), TypeError,
         r"attn_mask must be a torch.Tensor or None, got ndarray"),
        (dict(q=_t(2, 3), k=_t(2, 3), v=_t(2, 3), attn_mask=torch.ones(2, 2, dtype=torch.bool), is_causal=True),
         ValueError, r"either attn_mask or is_causal"),
        (dict(q=_t(2, 3), k=_t(2, 3), v=_t(2, 3), scale=float("inf")), ValueError, r"scale must be a finite positive number"),
        (dict(q=_t(2, 3), k=_t(2, 3), v=_t(2, 3), scale="big"), TypeError, r"scale must be a number or None, got str"),
    ],
)
def test_sdpa_validation_names_the_argument_and_shape(kwargs, error, pattern):
    with pytest.raises(error, match=pattern):
        att.scaled_dot_product_attention(**kwargs)


def test_numpy_scalar_scale_is_accepted():
    gen = torch.Generator().manual_seed(15)
    q, k, v = _qkv(gen, (), 3, 3, 2, 2)
    _assert_same(att.scaled_dot_product_attention(q, k, v, scale=np.float32(0.5)), F.scaled_dot_product_attention(q, k, v, scale=0.5))


@pytest.mark.parametrize(
    "call, pattern",
    [
        (lambda: att.causal_mask(0), r"n must be a positive int, got 0"),
        (lambda: att.causal_mask(3, -1), r"n_k must be a positive int, got -1"),
        (lambda: att.padding_mask([[1, 2]], 3), r"lengths must be a 1-D sequence of ints, got shape \(1, 2\)"),
        (lambda: att.padding_mask([1.5], 3), r"lengths must be a 1-D sequence of ints, got shape \(1,\)"),
        (lambda: att.padding_mask([4], 3), r"lengths must lie in \[0, n=3\], got \[4\]"),
        (lambda: att.padding_mask([], 3), r"lengths must hold at least one"),
        (lambda: att.window_mask(4, -1), r"w \(neighbours on each side\) must be a non-negative int"),
        (lambda: att.graph_mask(np.zeros((2, 3))), r"adjacency must be a square \(n, n\) matrix, got shape \(2, 3\)"),
        (lambda: att.graph_mask(np.zeros((0, 0))), r"adjacency must have at least one node"),
    ],
)
def test_mask_helpers_validate(call, pattern):
    with pytest.raises(ValueError, match=pattern):
        call()


# ---------------------------------------------------------------------------------------------------------
# Half precision: scores in float32, as torch's SDPA (issue: q k^T overflowed fp16 before the scale)
# ---------------------------------------------------------------------------------------------------------


def large_logit_inputs(d: int, logit: float, dtype: torch.dtype, n_q: int = 3, n_k: int = 5):
    """q = a everywhere, key 1 = a everywhere (others small): the scaled logit q . k_1 / sqrt(d) is `logit`.

    The unscaled product a^2 d = logit sqrt(d) passes fp16's 65504 at d = 64 once logit > 8188.
    """
    g = torch.Generator().manual_seed(d)
    a = (logit / math.sqrt(d)) ** 0.5
    q = torch.full((1, 2, n_q, d), a)
    k = torch.randn(1, 2, n_k, d, generator=g)
    k[..., 1, :] = a
    v = torch.randn(1, 2, n_k, d, generator=g)
    return q.to(dtype), k.to(dtype), v.to(dtype)


HALF_CASES = [(d, logit, dt) for d in (16, 32, 64, 128) for logit in (1e2, 1e3, 1e4) for dt in (torch.float16, torch.float32)]


@pytest.mark.parametrize("d, logit, dtype", HALF_CASES, ids=[f"d{d}-{lg:.0e}-{str(dt)[6:]}" for d, lg, dt in HALF_CASES])
def test_large_logits_as_robust_as_torch_sdpa(d, logit, dtype):
    q, k, v = large_logit_inputs(d, logit, dtype)
    exact = F.scaled_dot_product_attention(q.double(), k.double(), v.double())
    torch_err = (F.scaled_dot_product_attention(q, k, v).double() - exact).abs().max().item()
    ours = att.scaled_dot_product_attention(q, k, v)
    assert ours.dtype == dtype and torch.isfinite(ours).all()
    assert (ours.double() - exact).abs().max().item() <= 2 * torch_err + 1e-3
    weights = att.attention_weights(q, k)
    assert weights.dtype == dtype and torch.isfinite(weights).all()
    exact_w = torch.softmax(q.double() @ k.double().transpose(-2, -1) / math.sqrt(d), dim=-1)
    assert (weights.double() - exact_w).abs().max().item() <= 1e-3
    module_out = att.attention_weights(q, k, attn_mask=torch.zeros(3, 5, dtype=dtype))  # float mask, same dtype
    assert torch.isfinite(module_out).all()


def test_half_results_keep_float32_arithmetic_for_float32_inputs():
    """float32 and float64 inputs run exactly as before (lessons' stored outputs): (q @ k^T) * scale in their dtype."""
    for dtype in (torch.float32, torch.float64):
        q, k, v = (t.to(dtype) for t in large_logit_inputs(8, 3.0, torch.float64))
        scores = (q @ k.transpose(-2, -1)) * (1 / math.sqrt(8))
        assert torch.equal(att.attention_weights(q, k), att._masked_softmax(scores))
        assert torch.equal(att.scaled_dot_product_attention(q, k, v), att._masked_softmax(scores) @ v)


def test_self_attention_module_in_fp16_is_finite_on_large_inputs():
    torch.manual_seed(0)
    m = att.MultiHeadSelfAttention(64, 1, bias=False).half()
    with torch.no_grad():
        m.in_proj.weight.copy_(torch.eye(64).repeat(3, 1))  # q = k = v = x
    x = torch.full((1, 3, 64), 12.0, dtype=torch.float16)
    x[0, 1] = 40.0  # q_1 . k_1 = 40^2 * 64 = 102400 unscaled: past fp16's 65504 before the scale
    assert torch.isfinite(m(x)).all() and torch.isfinite(m.attention_weights(x)).all()


def test_sdpa_refuses_tensors_on_two_devices():
    q = torch.randn(2, 3, 4)
    with pytest.raises(ValueError, match=r"q, k, v must be on one device: got q on cpu, k on meta, v on cpu"):
        att.scaled_dot_product_attention(q, q.to("meta"), q)
    with pytest.raises(ValueError, match=r"attn_mask on meta"):
        att.scaled_dot_product_attention(q, q, q, attn_mask=torch.ones(3, 3, dtype=torch.bool, device="meta"))


def test_is_causal_must_be_a_bool():
    q = torch.randn(2, 3, 4)
    with pytest.raises(TypeError, match=r"is_causal must be a bool, got str 'no'"):
        att.scaled_dot_product_attention(q, q, q, is_causal="no")
    with pytest.raises(TypeError, match=r"is_causal must be a bool"):
        att.attention_weights(q, q, is_causal=1)
    assert torch.equal(att.attention_weights(q, q, is_causal=np.bool_(True)), att.attention_weights(q, q, is_causal=True))


def test_one_scale_rule_and_numpy_scalars():
    q = torch.randn(2, 3, 4, dtype=torch.float64)
    for bad in (0, -0.5, float("nan")):
        with pytest.raises(ValueError, match=r"scale must be a finite positive number"):
            att.attention_weights(q, q, scale=bad)
    assert torch.equal(att.attention_weights(q, q, scale=np.float32(0.5)), att.attention_weights(q, q, scale=0.5))
    assert torch.equal(att.causal_mask(np.int64(4)), att.causal_mask(4))
    assert att.MultiHeadSelfAttention(np.int64(8), np.int32(2)).num_heads == 2
    with pytest.raises(TypeError, match=r"n must be a positive int, got bool True"):
        att.causal_mask(True)


def test_self_attention_names_a_dtype_mismatch():
    m = att.SelfAttention(4)
    with pytest.raises(TypeError, match=r"x has dtype torch.float64 but the weights are torch.float32"):
        m(torch.randn(1, 3, 4, dtype=torch.float64))
