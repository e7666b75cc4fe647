"""course_utils.tiling: blockwise attention with a running max and sum, exact against SDPA."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from course_utils import reference, tiling


def _qkv(shape, n_k=None, d_v=None, seed=0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    *batch, n, d = shape
    n_k = n if n_k is None else n_k
    d_v = d if d_v is None else d_v
    q = torch.randn(*batch, n, d, generator=g, dtype=dtype)
    k = torch.randn(*batch, n_k, d, generator=g, dtype=dtype)
    v = torch.randn(*batch, n_k, d_v, generator=g, dtype=dtype)
    return q, k, v


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("n, block_q, block_k", [(1, 4, 4), (97, 16, 24), (64, 64, 64), (33, 1, 7), (20, 100, 100)])
def test_tiled_equals_sdpa_float64(n, block_q, block_k, causal):
    q, k, v = _qkv((2, 3, n, 40), seed=n)
    got = tiling.tiled_attention(q, k, v, causal=causal, block_q=block_q, block_k=block_k)
    want = F.scaled_dot_product_attention(q, k, v, is_causal=causal)
    assert got.shape == want.shape == (2, 3, n, 40)
    assert torch.allclose(got, want, atol=1e-12, rtol=0)


def test_tiled_rectangular_and_other_value_width():
    """N_q != N_k (causal is top-left aligned, as SDPA) and d_v != d."""
    q, k, v = _qkv((5, 8), n_k=11, d_v=3, seed=1)
    for causal in (False, True):
        got = tiling.tiled_attention(q, k, v, causal=causal, block_k=4)
        assert torch.allclose(got, F.scaled_dot_product_attention(q, k, v, is_causal=causal), atol=1e-12, rtol=0)


def test_tiled_float32_and_scale():
    q, k, v = _qkv((1, 2, 50, 16), seed=2, dtype=torch.float32)
    got = tiling.tiled_attention(q, k, v, scale=1.0, block_q=8, block_k=8)
    assert torch.allclose(got, F.scaled_dot_product_attention(q, k, v, scale=1.0), atol=1e-5, rtol=0)


def test_tiled_matches_numpy_reference_in_the_column_convention():
    """The PyTorch tiling (rows) is the transpose of reference.online_softmax_attention (columns)."""
    q, k, v = _qkv((30, 8), d_v=5, seed=3)
    rows = tiling.tiled_attention(q, k, v, causal=True, block_k=7)
    cols = reference.online_softmax_attention(q.T.numpy(), k.T.numpy(), v.T.numpy(), block=7, causal=True)
    assert np.allclose(rows.numpy().T, cols, atol=1e-12, rtol=0)


def test_online_softmax_step_shapes_and_first_block():
    m = torch.full((3,), float("-inf"), dtype=torch.float64)
    l, acc = torch.zeros(3, dtype=torch.float64), torch.zeros(3, 2, dtype=torch.float64)
    s = torch.tensor([[0.0, 1.0], [2.0, -1.0], [float("-inf"), float("-inf")]], dtype=torch.float64)
    v = torch.tensor([[1.0, 0.0], [0.0, 1.0]], dtype=torch.float64)
    m, l, acc = tiling.online_softmax_step(m, l, acc, s, v)
    assert m.shape == l.shape == (3,) and acc.shape == (3, 2)
    assert torch.allclose(m[:2], torch.tensor([1.0, 2.0], dtype=torch.float64))
    assert torch.allclose(acc[0] / l[0], torch.softmax(s[0], 0), atol=1e-15)
    assert l[2] == 0 and torch.all(acc[2] == 0) and m[2] == float("-inf")  # a row with no key yet


def test_merge_states_equals_one_pass():
    g = torch.Generator().manual_seed(4)
    s = torch.randn(4, 10, generator=g, dtype=torch.float64) * 3
    v = torch.randn(10, 3, generator=g, dtype=torch.float64)
    states = []
    for cols in (slice(0, 6), slice(6, 10)):
        m = s[:, cols].amax(-1)
        p = torch.exp(s[:, cols] - m[:, None])
        states.append((m, p.sum(-1), p @ v[cols]))
    m, l, acc = tiling.merge_states(*states[0], *states[1])
    assert torch.allclose(acc / l[:, None], torch.softmax(s, -1) @ v, atol=1e-12, rtol=0)
    assert torch.equal(m, s.amax(-1))


def test_one_key_many_queries_causal():
    """Top-left causal with a single key: every query sees only key 0, so every output row is v[0]."""
    q, k, v = _qkv((4, 8), n_k=1, seed=5)
    out = tiling.tiled_attention(q, k, v, causal=True, block_q=3)
    assert torch.allclose(out, v.expand(4, 8), atol=1e-15, rtol=0)


def test_memory_counts():
    assert tiling.score_matrix_bytes(1, 8, 131072, 2) == 8 * 131072**2 * 2
    assert tiling.score_matrix_bytes(2, 4, 2048, 2) == 4 * tiling.score_matrix_bytes(2, 4, 1024, 2)  # N^2
    assert tiling.flash_state_bytes(2, 4, 2048) == 2 * tiling.flash_state_bytes(2, 4, 1024)  # N
    assert tiling.flash_state_bytes(1, 1, 10) == 40


@pytest.mark.parametrize("causal", [False, True])
def test_stats_record_the_tiles_actually_built(causal):
    """return_stats gives the output unchanged, the largest score tile built and the number of blocks."""
    q, k, v = _qkv((2, 3, 97, 40), seed=8)
    out, stats = tiling.tiled_attention(q, k, v, causal=causal, block_q=32, block_k=16, return_stats=True)
    assert torch.equal(out, tiling.tiled_attention(q, k, v, causal=causal, block_q=32, block_k=16))
    assert stats.largest_tile == (32, 16) and stats.largest_tile_scores == 512
    # query blocks of 32 rows (the last has 1): 7 key blocks each, or (causal) only up to the diagonal
    assert stats.score_blocks == (2 + 4 + 6 + 7 if causal else 4 * 7)
    _, small = tiling.tiled_attention(q[..., :5, :], k[..., :5, :], v[..., :5, :], return_stats=True)
    assert small.largest_tile == (5, 5) and small.score_blocks == 1  # blocks larger than the sequence: one tile


def test_causal_computes_about_half_the_blocks():
    q, k, v = _qkv((1, 1, 1024, 8), seed=9)
    _, full = tiling.tiled_attention(q, k, v, block_q=64, block_k=64, return_stats=True)
    _, causal = tiling.tiled_attention(q, k, v, causal=True, block_q=64, block_k=64, return_stats=True)
    assert (full.score_blocks, causal.score_blocks) == (16 * 16, 16 * 17 // 2)


@pytest.mark.parametrize(
    "call, error, words",
    [
        (lambda q, k, v: tiling.tiled_attention(q.numpy(), k, v), TypeError, "q must be a torch.Tensor, got ndarray"),
        (lambda q, k, v: tiling.tiled_attention(q[..., :4], k, v), ValueError, r"share the last dimension d: got q \(2, 6, 4\)"),
        (lambda q, k, v: tiling.tiled_attention(q, k, v[:, :3]), ValueError, r"same number of keys N_k: got k \(2, 6, 8\), v \(2, 3, 8\)"),
        (lambda q, k, v: tiling.tiled_attention(q, k, v, block_k=0), ValueError, "block_k must be a positive int"),
        (lambda q, k, v: tiling.tiled_attention(q, k, v, block_q=2.5), TypeError, "block_q must be a positive int"),
        (lambda q, k, v: tiling.tiled_attention(q, k, v, scale=-1.0), ValueError, "scale must be a finite positive"),
        (lambda q, k, v: tiling.tiled_attention(q, k, v, causal="yes"), TypeError, "causal must be a bool"),
        (lambda q, k, v: tiling.tiled_attention(q, k, v, return_stats=1), TypeError, "return_stats must be a bool"),
        (lambda q, k, v: tiling.tiled_attention(q.long(), k, v), TypeError, "floating-point"),
        (lambda q, k, v: tiling.tiled_attention(q[0, 0], k, v), ValueError, r"q must have shape \(\.\.\., N, d\) with at least 2 dimensions, got shape \(8,\)"),
        (lambda q, k, v: tiling.score_matrix_bytes(1, 1, 0, 2), ValueError, "N must be a positive int"),
    ],
)
def test_validation(call, error, words):
    q, k, v = _qkv((2, 6, 8), seed=6)
    with pytest.raises(error, match=words):
        call(q, k, v)


def test_lessons_one_query_online_softmax_matches_the_package():
    """Lesson 07 derives the update for one query in NumPy; it must agree with tiling.tiled_attention."""
    from nbtools import notebook_definitions

    ns = notebook_definitions("notebooks/07_self_attention_on_a_gpu.ipynb")
    g = torch.Generator().manual_seed(7)
    q, k, v = torch.randn(1, 6, generator=g, dtype=torch.float64), torch.randn(13, 6, generator=g, dtype=torch.float64), \
        torch.randn(13, 3, generator=g, dtype=torch.float64)
    s = (q @ k.T / 6**0.5)[0].numpy()  # (13,) scores of the one query
    out, trace = ns["online_softmax_one_query"](s, v.numpy(), block=4)
    assert len(trace) == 4  # ceil(13 / 4) blocks
    assert np.allclose(out, tiling.tiled_attention(q, k, v, block_k=4)[0].numpy(), atol=1e-12, rtol=0)


# Flash-attention's rule on unequal lengths: error vs float64 <= 2x plain PyTorch's in fp16 (naive, all fp16).
# With its state (m, l, acc) in fp16 the tiling failed the first two (2.4x and 2.4x).
RULE_CASES = [(17, 257, 32, True), (128, 217, 16, False), (512, 256, 40, False), (113, 203, 64, True),
              (3, 1, 80, False), (1, 3, 128, True), (217, 128, 16, True)]


@pytest.mark.parametrize("n_q, n_k, d, causal", RULE_CASES)
def test_fp16_error_at_most_twice_plain_pytorchs(n_q, n_k, d, causal):
    from course_utils.bench import naive_attention

    g = torch.Generator().manual_seed(n_q + n_k + d)
    q = torch.randn(1, 2, n_q, d, generator=g)
    k, v = (torch.randn(1, 2, n_k, d, generator=g) for _ in range(2))
    exact = F.scaled_dot_product_attention(q.double(), k.double(), v.double(), is_causal=causal)
    qh, kh, vh = q.half(), k.half(), v.half()
    ours = tiling.tiled_attention(qh, kh, vh, causal=causal)
    assert ours.dtype == torch.float16
    err_ours = (ours.double() - exact).abs().max().item()
    err_plain = (naive_attention(qh, kh, vh, causal).double() - exact).abs().max().item()
    assert err_ours <= 2 * err_plain + 1e-4, f"ours {err_ours:.2e}, plain PyTorch {err_plain:.2e}"


@pytest.mark.parametrize("d", [16, 32, 64, 128])
@pytest.mark.parametrize("logit", [1e2, 1e3, 1e4])
@pytest.mark.parametrize("dtype", [torch.float16, torch.float32])
def test_large_logits_finite_and_exact(d, logit, dtype):
    """Scaled logits up to 1e4: q k^T is past fp16's 65504 at d >= 64; the tiles' scores are float32."""
    from test_attention import large_logit_inputs

    q, k, v = large_logit_inputs(d, logit, dtype)
    for causal in (False, True):
        exact = F.scaled_dot_product_attention(q.double(), k.double(), v.double(), is_causal=causal)
        ours = tiling.tiled_attention(q, k, v, causal=causal, block_q=2, block_k=2)
        assert ours.dtype == dtype and torch.isfinite(ours).all()
        assert (ours.double() - exact).abs().max().item() <= 2e-3


def test_float32_state_stays_float32_arithmetic():
    """float32/float64 inputs: the same operations as before (the lessons' stored outputs do not move)."""
    q, k, v = _qkv((2, 9, 4), dtype=torch.float32)
    m = torch.full((2, 9), float("-inf"))
    l, acc = torch.zeros(2, 9), torch.zeros(2, 9, 4)
    m, l, acc = tiling.online_softmax_step(m, l, acc, (q @ k.transpose(-2, -1)) * 0.5, v)
    assert torch.equal(tiling.tiled_attention(q, k, v, block_q=9, block_k=9), acc / l[..., None])
