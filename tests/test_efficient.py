"""course_utils.efficient: each variant against exact attention where it must match, shapes, masks, errors."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from course_utils import efficient as ef
from course_utils.attention import MultiHeadSelfAttention, window_mask
from course_utils.attention import scaled_dot_product_attention as sdpa
from course_utils.models import tiny_transformer
from course_utils.tasks.planted import PlantedTask
from course_utils.training import TrainConfig, count_parameters


def _qkv(*lead, n=13, d=8, d_v=None, seed=0, dtype=torch.float64, n_k=None):
    g = torch.Generator().manual_seed(seed)
    n_k = n if n_k is None else n_k
    q = torch.randn(*lead, n, d, generator=g, dtype=dtype)
    k = torch.randn(*lead, n_k, d, generator=g, dtype=dtype)
    v = torch.randn(*lead, n_k, d_v or d, generator=g, dtype=dtype)
    return q, k, v


def _dense_linear(q, k, v, phi_q, phi_k, causal):
    """The quadratic form of linear attention: normalise (phi(q) phi(k)^T), masked, times v."""
    w = phi_q @ phi_k.transpose(-2, -1)  # (..., N, m) @ (..., m, N) -> (..., N, N)
    if causal:
        w = w * torch.ones(w.shape[-2:], dtype=torch.bool).tril()
    return (w / w.sum(-1, keepdim=True)) @ v


# ---------------------------------------------------------------------------------------------------------
# Linear attention
# ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("feature_map", ["elu", "performer"])
@pytest.mark.parametrize("lead", [(), (3,), (2, 3)])
def test_causal_parallel_equals_recurrent(feature_map, lead):
    q, k, v = _qkv(*lead, n=19, d=8, d_v=5)
    parallel = ef.linear_attention(q, k, v, causal=True, feature_map=feature_map)
    recurrent = ef.linear_attention_recurrent(q, k, v, feature_map=feature_map)
    assert parallel.shape == recurrent.shape == (*lead, 19, 5)
    torch.testing.assert_close(parallel, recurrent, atol=1e-12, rtol=1e-10)


@pytest.mark.parametrize("causal", [False, True])
def test_elu_linear_attention_equals_its_quadratic_form(causal):
    q, k, v = _qkv(2, 2, n=11, d=4, d_v=3)
    expected = _dense_linear(q, k, v, ef.elu_features(q), ef.elu_features(k), causal)
    got = ef.linear_attention(q, k, v, causal=causal)
    torch.testing.assert_close(got, expected, atol=1e-12, rtol=1e-10)


@pytest.mark.parametrize("causal", [False, True])
def test_performer_linear_attention_equals_its_quadratic_form(causal):
    q, k, v = _qkv(2, n=11, d=4)
    P = ef.performer_projection(4, 32, seed=3, dtype=torch.float64)
    phi_q = ef.performer_features(q, P, is_query=True)
    phi_k = ef.performer_features(k, P, is_query=False)
    expected = _dense_linear(q, k, v, phi_q, phi_k, causal)
    got = ef.linear_attention(q, k, v, causal=causal, feature_map="performer", projection=P)
    torch.testing.assert_close(got, expected, atol=1e-12, rtol=1e-10)


def test_causal_output_ignores_the_future():
    q, k, v = _qkv(1, n=10, d=4)
    out = ef.linear_attention(q, k, v, causal=True)
    k2, v2 = k.clone(), v.clone()
    k2[..., 6:, :] += 5.0
    v2[..., 6:, :] -= 3.0
    out2 = ef.linear_attention(q, k2, v2, causal=True)
    torch.testing.assert_close(out[..., :6, :], out2[..., :6, :], atol=0, rtol=0)
    assert not torch.allclose(out[..., 6:, :], out2[..., 6:, :])


def test_non_causal_allows_different_query_and_key_lengths():
    q, k, v = _qkv(2, n=5, n_k=9, d=4, d_v=6)
    assert ef.linear_attention(q, k, v).shape == (2, 5, 6)
    with pytest.raises(ValueError, match="same length"):
        ef.linear_attention(q, k, v, causal=True)


def test_performer_features_estimate_the_softmax_kernel():
    """phi(q) . phi(k) (before the scale-down constants) averages to exp(q . k / sqrt(d))."""
    g = torch.Generator().manual_seed(0)
    q = 0.5 * torch.randn(4, 6, generator=g, dtype=torch.float64)
    k = 0.5 * torch.randn(5, 6, generator=g, dtype=torch.float64)
    P = ef.performer_projection(6, 60000, seed=1, dtype=torch.float64)
    logits_q = ef._performer_logits(q, P, 1 / math.sqrt(6))
    logits_k = ef._performer_logits(k, P, 1 / math.sqrt(6))
    estimate = (logits_q.exp() @ logits_k.exp().T) / P.shape[0]  # (4, m) @ (m, 5) -> (4, 5)
    exact = torch.exp(q @ k.T / math.sqrt(6))
    torch.testing.assert_close(estimate, exact, rtol=0.03, atol=0)


def test_performer_approaches_softmax_attention_as_features_grow():
    q, k, v = _qkv(1, 1, n=64, d=16)
    q, k = 0.5 * q, 0.5 * k
    exact = sdpa(q, k, v)
    errors = []
    for m in (16, 4096):
        P = ef.performer_projection(16, m, seed=1, dtype=torch.float64)
        errors.append((ef.linear_attention(q, k, v, feature_map="performer", projection=P) - exact).abs().max())
    assert errors[1] < 0.05
    assert errors[1] < errors[0] / 3


def test_performer_projection_is_reproducible_and_orthogonal():
    a = ef.performer_projection(8, 20, seed=5)
    b = ef.performer_projection(8, 20, generator=torch.Generator().manual_seed(5))
    c = ef.performer_projection(8, 20, seed=6)
    assert a.shape == (20, 8) and torch.equal(a, b) and not torch.equal(a, c)
    block = ef.performer_projection(8, 8, seed=0, dtype=torch.float64)
    gram = block @ block.T  # orthogonal rows: the Gram matrix is diagonal
    off = gram - torch.diag(torch.diagonal(gram))
    assert off.abs().max() < 1e-10
    assert ef.performer_projection(8, 12, seed=0).shape == (12, 8)
    assert ef.performer_projection(8, seed=0, orthogonal=False).shape == (32, 8)
    with pytest.raises(ValueError, match="seed or a generator"):
        ef.performer_projection(8, seed=None)


def test_linear_attention_default_projection_is_fixed():
    q, k, v = _qkv(2, n=7, d=4)
    a = ef.linear_attention(q, k, v, feature_map="performer")
    b = ef.linear_attention(q, k, v, feature_map="performer")
    assert torch.equal(a, b)


def test_performer_is_stable_for_large_inputs():
    q, k, v = _qkv(1, n=32, d=16, dtype=torch.float32)
    out = ef.linear_attention(40 * q, 40 * k, v, causal=True, feature_map="performer")
    rec = ef.linear_attention_recurrent(40 * q, 40 * k, v, feature_map="performer")
    assert torch.isfinite(out).all() and torch.isfinite(rec).all()


def test_linear_attention_backpropagates():
    q, k, v = (t.requires_grad_() for t in _qkv(2, n=6, d=4))
    for fm in ef.FEATURE_MAPS:
        ef.linear_attention(q, k, v, causal=True, feature_map=fm).sum().backward()
    assert all(t.grad is not None and torch.isfinite(t.grad).all() for t in (q, k, v))


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"feature_map": "relu"}, ValueError, "feature_map"),
        ({"projection": torch.randn(4, 3, dtype=torch.float64), "feature_map": "performer"}, ValueError, "projection"),
        ({"projection": torch.randn(4, 4, dtype=torch.float64)}, ValueError, "only used"),
        ({"scale": 0.5}, ValueError, "only used"),
        ({"scale": -1.0, "feature_map": "performer"}, ValueError, "scale must be"),
    ],
)
def test_linear_attention_rejects_bad_options(kwargs, error, match):
    q, k, v = _qkv(1, n=5, d=4)
    with pytest.raises(error, match=match):
        ef.linear_attention(q, k, v, **kwargs)


@pytest.mark.parametrize("fn", [ef.linear_attention, ef.linear_attention_recurrent])
def test_linear_attention_rejects_bad_inputs(fn):
    q, k, v = _qkv(2, n=5, d=4)
    with pytest.raises(TypeError, match="q must be a torch.Tensor"):
        fn(q.numpy(), k, v)
    with pytest.raises(ValueError, match=r"q and k must share the last dimension d: got q \(2, 5, 4\), k \(2, 5, 3\)"):
        fn(q, k[..., :3], v)
    with pytest.raises(ValueError, match="k and v must have the same number of keys"):
        fn(q, k, v[..., :4, :])
    with pytest.raises(ValueError, match="at least 2 dimensions"):
        fn(q[0, 0], k, v)
    with pytest.raises(TypeError, match="share a dtype"):
        fn(q.float(), k, v)
    with pytest.raises(ValueError, match="finite"):
        fn(q, k * float("nan"), v)
    with pytest.raises(ValueError, match="broadcast"):
        fn(q, torch.cat([k, k, k]), torch.cat([v, v, v]))


# ---------------------------------------------------------------------------------------------------------
# Local (sliding window)
# ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("n", [1, 2, 9, 16, 50])
@pytest.mark.parametrize("window", [0, 1, 3, 7, 60])
@pytest.mark.parametrize("causal", [False, True])
def test_local_equals_window_masked_attention(n, window, causal):
    q, k, v = _qkv(2, 2, n=n, d=4, d_v=3, seed=n + window)
    expected = sdpa(q, k, v, attn_mask=window_mask(n, window, causal=causal))
    got = ef.local_attention(q, k, v, window, causal=causal)
    assert got.shape == (2, 2, n, 3)
    torch.testing.assert_close(got, expected, atol=1e-12, rtol=1e-10)


@pytest.mark.parametrize("causal", [False, True])
def test_local_with_a_window_covering_the_sequence_is_exact(causal):
    q, k, v = _qkv(3, n=12, d=4)
    torch.testing.assert_close(ef.local_attention(q, k, v, 11, causal=causal), sdpa(q, k, v, is_causal=causal))


def test_local_output_does_not_depend_on_keys_outside_the_window():
    q, k, v = _qkv(1, n=40, d=4)
    out = ef.local_attention(q, k, v, 3)
    k2, v2 = k.clone(), v.clone()
    k2[..., 20:, :] += 4.0
    v2[..., 20:, :] += 4.0
    out2 = ef.local_attention(q, k2, v2, 3)
    torch.testing.assert_close(out[..., :17, :], out2[..., :17, :], atol=0, rtol=0)  # query 16 reaches key 19


def test_local_memory_grows_linearly_with_n():
    a = ef.measure(lambda: ef.local_attention(*_qkv(1, n=512, d=8, dtype=torch.float32), 4))[1]
    b = ef.measure(lambda: ef.local_attention(*_qkv(1, n=1024, d=8, dtype=torch.float32), 4))[1]
    assert b == 2 * a
    assert b < 1024 * 1024 * 4 / 10  # far below one N x N float32 matrix


# ---------------------------------------------------------------------------------------------------------
# Block-sparse
# ---------------------------------------------------------------------------------------------------------


def test_block_sparse_mask_pattern():
    m = ef.block_sparse_mask(8, 2, n_global=1)
    assert m.dtype == torch.bool and m.shape == (8, 8)
    assert m[0].all() and m[:, 0].all()  # the global token sees and is seen by all
    assert m[4, 2] and m[4, 7] and not m[4, 1] and not m[2, 6]  # blocks {2,3} | {4,5} | {6,7}
    assert torch.equal(m, m.T)
    assert torch.equal(ef.block_sparse_mask(8, 2, 1, causal=True), m & torch.ones(8, 8, dtype=torch.bool).tril())
    assert ef.block_sparse_mask(5, 5).all()


@pytest.mark.parametrize("n", [1, 5, 16, 37])
@pytest.mark.parametrize("block", [1, 4, 7])
@pytest.mark.parametrize("n_global", [0, 1, 3])
@pytest.mark.parametrize("causal", [False, True])
def test_block_sparse_equals_masked_attention(n, block, n_global, causal):
    if n_global > n:
        pytest.skip("more global tokens than tokens")
    q, k, v = _qkv(2, 2, n=n, d=4, d_v=5, seed=n * block + n_global)
    expected = sdpa(q, k, v, attn_mask=ef.block_sparse_mask(n, block, n_global, causal=causal))
    got = ef.block_sparse_attention(q, k, v, block, n_global, causal=causal)
    assert got.shape == (2, 2, n, 5)
    torch.testing.assert_close(got, expected, atol=1e-12, rtol=1e-10)


@pytest.mark.parametrize("causal", [False, True])
def test_block_sparse_with_one_block_is_exact(causal):
    q, k, v = _qkv(2, n=10, d=4)
    torch.testing.assert_close(
        ef.block_sparse_attention(q, k, v, 10, 2, causal=causal), sdpa(q, k, v, is_causal=causal)
    )
    torch.testing.assert_close(ef.block_sparse_attention(q, k, v, 64, causal=causal), sdpa(q, k, v, is_causal=causal))


def test_block_sparse_broadcasts_leading_dims():
    q, _, _ = _qkv(2, 3, n=9, d=4)
    _, k, v = _qkv(1, 3, n=9, d=4, seed=1)
    got = ef.block_sparse_attention(q, k, v, 2, 1)
    torch.testing.assert_close(got, sdpa(q, k, v, attn_mask=ef.block_sparse_mask(9, 2, 1)))


def test_block_sparse_rejects_too_many_global_tokens():
    q, k, v = _qkv(1, n=4, d=4)
    with pytest.raises(ValueError, match=r"n_global must be at most N=4 \(q \(1, 4, 4\)\), got 5"):
        ef.block_sparse_attention(q, k, v, 2, 5)
    with pytest.raises(ValueError, match="n_global must be at most n=4"):
        ef.block_sparse_mask(4, 2, 5)


# ---------------------------------------------------------------------------------------------------------
# Low-rank (Linformer)
# ---------------------------------------------------------------------------------------------------------


def test_low_rank_with_identity_projections_is_exact():
    q, k, v = _qkv(2, 2, n=11, d=4, d_v=6)
    eye = torch.eye(11, dtype=torch.float64)
    torch.testing.assert_close(ef.low_rank_attention(q, k, v, eye, eye), sdpa(q, k, v))
    torch.testing.assert_close(ef.low_rank_attention(q, k, v, eye), sdpa(q, k, v))


def test_low_rank_equals_attention_over_projected_keys():
    q, k, v = _qkv(2, n=10, d=4)
    E = ef.low_rank_projection(10, 3, seed=0, dtype=torch.float64)
    F = ef.low_rank_projection(10, 3, seed=1, dtype=torch.float64)
    scores = q @ (E @ k).transpose(-2, -1) / 2.0  # (2, 10, 3)
    expected = torch.softmax(scores, dim=-1) @ (F @ v)
    got = ef.low_rank_attention(q, k, v, E, F)
    assert got.shape == (2, 10, 4)
    torch.testing.assert_close(got, expected)


def test_low_rank_effective_weights_have_rank_r():
    q, k, _ = _qkv(n=24, d=8)
    w = ef.effective_weights(q, k, ef.Variant("low_rank", rank=5))
    assert w.shape == (24, 24) and torch.linalg.matrix_rank(w).item() == 5


def test_low_rank_projection_is_reproducible():
    assert torch.equal(ef.low_rank_projection(7, 3, seed=2), ef.low_rank_projection(7, 3, seed=2))
    assert ef.low_rank_projection(7, 3).shape == (3, 7)
    with pytest.raises(ValueError, match="seed or a generator"):
        ef.low_rank_projection(7, 3, seed=None)


def test_low_rank_rejects_bad_projections():
    q, k, v = _qkv(1, n=6, d=4)
    with pytest.raises(ValueError, match=r"E must have shape \(r, N_k=6\)"):
        ef.low_rank_attention(q, k, v, torch.randn(3, 5, dtype=torch.float64))
    with pytest.raises(ValueError, match="same rank"):
        ef.low_rank_attention(q, k, v, torch.randn(3, 6, dtype=torch.float64), torch.randn(2, 6, dtype=torch.float64))
    with pytest.raises(TypeError, match="E must be a torch.Tensor"):
        ef.low_rank_attention(q, k, v, [[1.0] * 6])
    with pytest.raises(ValueError, match="cannot be causal"):
        ef.attend(q, k, v, "low_rank", causal=True)


# ---------------------------------------------------------------------------------------------------------
# Exact and flash
# ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("causal", [False, True])
def test_flash_equals_exact(causal):
    q, k, v = _qkv(2, 3, n=33, d=8, dtype=torch.float32)
    torch.testing.assert_close(
        ef.flash_attention(q, k, v, causal=causal), ef.exact_attention(q, k, v, causal=causal), atol=1e-5, rtol=1e-5
    )
    q3, k3, v3 = _qkv(4, n=17, d=8, dtype=torch.float32)  # any leading dims
    torch.testing.assert_close(ef.flash_attention(q3, k3, v3), sdpa(q3, k3, v3), atol=1e-5, rtol=1e-5)


def test_flash_never_builds_the_score_matrix():
    q, k, v = _qkv(1, 2, n=512, d=16, dtype=torch.float32)
    exact_flops, exact_bytes = ef.measure(lambda: ef.exact_attention(q, k, v))
    flash_flops, flash_bytes = ef.measure(lambda: ef.flash_attention(q, k, v))
    assert exact_bytes == 2 * 512 * 512 * 4  # the (B, H, N, N) float32 scores
    assert flash_bytes < exact_bytes / 10
    assert flash_flops == exact_flops == 2 * 2 * 512 * 512 * (16 + 16)  # same work: q k^T and p v


# ---------------------------------------------------------------------------------------------------------
# Every variant through one name: attend, effective weights, patterns, the module
# ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ef.VARIANTS)
@pytest.mark.parametrize("causal", [False, True])
def test_effective_weights_reproduce_attend(kind, causal):
    if kind == "low_rank" and causal:
        pytest.skip("Linformer is not causal")
    q, k, v = _qkv(2, n=20, d=8)
    variant = ef.Variant(kind, window=3, block=4, n_global=2, rank=6)
    if kind == "flash":
        q, k, v = q.float(), k.float(), v.float()
    w = ef.effective_weights(q, k, variant, causal=causal)
    out = ef.attend(q, k, v, variant, causal=causal)
    assert w.shape == (2, 20, 20) and out.shape == (2, 20, 8)
    tol = 1e-5 if kind == "flash" else 1e-10
    torch.testing.assert_close(out, w @ v, atol=tol, rtol=tol)
    if causal:
        assert (w.triu(1) == 0).all()


@pytest.mark.parametrize("kind", ef.VARIANTS)
def test_attention_pattern(kind):
    p = ef.attention_pattern(ef.Variant(kind, window=2, block=4, n_global=1, rank=4), 16)
    assert p.shape == (16, 16) and p.min() >= 0 and p.max() <= 1 + 1e-12
    if kind in ("exact", "flash", "local", "block_sparse"):
        assert set(p.ravel().tolist()) <= {0.0, 1.0}
    if kind == "local":
        assert p.sum() == 16 * 5 - 2 * (2 + 1)  # 5 keys per query, fewer at the two ends
    if kind in ("low_rank", "linear", "performer", "exact"):
        assert (p > 0).all()  # every query still reaches every key
    causal = ef.attention_pattern(kind if kind != "low_rank" else "exact", 8, causal=True)
    assert (causal[torch.ones(8, 8, dtype=torch.bool).triu(1).numpy()] == 0).all()


@pytest.mark.parametrize("kind", ef.VARIANTS)
def test_attention_pattern_weights(kind):
    variant = ef.Variant(kind, window=2, block=4, n_global=1, rank=4)
    p = ef.attention_pattern(variant, 16, weights=True)
    assert p.shape == (16, 16) and p.min() >= 0 and np.allclose(p.max(-1), 1)  # each row scaled to max 1
    g = torch.Generator().manual_seed(0)
    q, k = (torch.randn(16, 16, generator=g, dtype=torch.float64) for _ in range(2))
    w = ef.effective_weights(q, k, variant).abs()  # (16, 16), the same seeded q, k
    assert np.allclose(p, (w / w.amax(-1, keepdim=True)).numpy())
    mask = ef.attention_pattern(variant, 16)
    assert ((p > 0) <= (mask > 0)).all()  # a weight only where the mask allows
    if kind in ("exact", "flash", "local", "block_sparse"):
        assert not np.allclose(p, mask)  # softmax weights, not the 0/1 mask


@pytest.mark.parametrize("seed", range(5))
def test_lesson11_weight_panels_hold_on_other_seeds(seed):
    """Lesson 11's gallery: elu + 1 weights are far flatter than softmax's; performer's are the closest to it."""
    kinds = {"exact": "exact", "low_rank": ef.Variant("low_rank", rank=4), "linear": "linear", "performer": "performer"}
    w = {name: ef.attention_pattern(v, 24, weights=True, seed=seed) for name, v in kinds.items()}
    flatness = {name: p.mean() for name, p in w.items()}
    gap = {name: np.abs(p - w["exact"]).mean() for name, p in w.items()}
    assert flatness["linear"] > 2 * flatness["exact"]
    assert gap["performer"] < min(gap["low_rank"], gap["linear"])


@pytest.mark.parametrize("first_seed", [0, 3, 6])
def test_performer_error_shrinks_like_one_over_sqrt_m(first_seed):
    """Lesson 11: 8x more random features cut the output error to about 1/sqrt(8) = 0.35 (asserted in (0.25, 0.5))."""
    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(2, 2, 24, 8, generator=g, dtype=torch.float64) for _ in range(3))
    q, k = 0.5 * q, 0.5 * k
    exact = ef.exact_attention(q, k, v)
    error = {}
    for m in (512, 4096):
        runs = []
        for seed in range(first_seed, first_seed + 3):
            P = ef.performer_projection(8, m, seed=seed, dtype=torch.float64)  # (m, d)
            runs.append((ef.linear_attention(q, k, v, feature_map="performer", projection=P) - exact).abs().mean())
        error[m] = float(sum(runs) / len(runs))
    assert 0.25 < error[4096] / error[512] < 0.5


def test_attention_pattern_bad_input():
    with pytest.raises(TypeError, match="weights"):
        ef.attention_pattern("exact", 8, weights=1)
    with pytest.raises(ValueError, match="n must"):
        ef.attention_pattern("exact", 0)
    with pytest.raises(ValueError, match="d must"):
        ef.attention_pattern("linear", 8, d=0)


@pytest.mark.parametrize("kind", ef.VARIANTS)
def test_efficient_module_trains_and_matches_its_variant(kind):
    torch.manual_seed(0)
    module = ef.EfficientSelfAttention(16, 2, ef.Variant(kind, window=2, block=4, rank=4), seq_len=12)
    x = torch.randn(3, 12, 16)
    out = module(x)
    assert out.shape == (3, 12, 16)
    q, k, v = module.split_heads(x)
    heads = ef.effective_weights(q, k, module.variant, **module._extras(12)) @ v  # (3, 2, 12, 8)
    torch.testing.assert_close(out, module.out_proj(module.merge_heads(heads)), atol=1e-5, rtol=1e-5)
    assert module.attention_weights(x).shape == (3, 2, 12, 12)
    out.sum().backward()
    assert module.in_proj.weight.grad is not None
    if kind == "low_rank":
        assert module.E.grad is not None and module(x[:, :7]).shape == (3, 7, 16)
        with pytest.raises(ValueError, match="seq_len=12, got N=13"):
            module(torch.randn(1, 13, 16))


def test_efficient_module_exact_equals_multi_head_self_attention():
    torch.manual_seed(0)
    module = ef.EfficientSelfAttention(16, 4, "exact")
    reference = MultiHeadSelfAttention(16, 4)
    reference.load_state_dict(module.state_dict())
    x = torch.randn(2, 9, 16)
    torch.testing.assert_close(module(x, is_causal=True), reference(x, is_causal=True))


def test_efficient_module_rejects_what_it_cannot_do():
    with pytest.raises(ValueError, match="needs seq_len"):
        ef.EfficientSelfAttention(16, 2, "low_rank")
    module = ef.EfficientSelfAttention(16, 2, "local")
    with pytest.raises(ValueError, match="no attn_mask"):
        module(torch.randn(1, 4, 16), attn_mask=torch.ones(4, 4, dtype=torch.bool))
    with pytest.raises(ValueError, match="kind must be one of"):
        ef.Variant("sparse")
    with pytest.raises(ValueError, match="window"):
        ef.Variant("local", window=-1)
    with pytest.raises(TypeError, match="variant must be"):
        ef.attend(*_qkv(n=3, d=2), 3)


def test_make_attention_builds_a_tiny_transformer():
    model = tiny_transformer(10, 3, d_model=16, num_heads=2, pool="first", attention=ef.make_attention("linear"))
    assert model(torch.randint(10, (2, 7))).shape == (2, 3)
    assert isinstance(model.blocks[0].attn, ef.EfficientSelfAttention)
    assert model.blocks[0].attn.variant.kind == "linear"


def test_variant_labels_are_distinct():
    labels = [ef.Variant(kind).label for kind in ef.VARIANTS]
    assert len(set(labels)) == len(labels)


# ---------------------------------------------------------------------------------------------------------
# Cost measurements and the scaling benchmark
# ---------------------------------------------------------------------------------------------------------


def test_measure_counts_matmul_flops_and_the_largest_tensor():
    a = torch.zeros(3, 5)
    b = torch.zeros(5, 7)
    flops, largest = ef.measure(lambda: (a @ b).exp())
    assert flops == 2 * 3 * 5 * 7
    assert largest == 3 * 7 * 4


def test_attention_bytes_exact_is_quadratic_and_linear_is_linear():
    assert ef.attention_bytes("exact", 256, heads=2) == 2 * 256 * 256 * 4
    assert ef.attention_bytes("exact", 512, heads=2) == 4 * ef.attention_bytes("exact", 256, heads=2)
    for kind in ("local", "block_sparse", "low_rank", "linear", "performer", "flash"):
        assert ef.attention_bytes(kind, 1024) == 2 * ef.attention_bytes(kind, 512), kind


def test_scaling_benchmark_shows_linear_and_quadratic_costs():
    result = ef.scaling_benchmark(ns=(64, 128, 256), repeats=1, d=8, heads=1)
    labels = [ef.Variant(kind).label for kind in ef.VARIANTS]
    assert list(result.seconds) == labels
    for label in labels:
        assert len(result.seconds[label]) == 3 and all(t > 0 for t in result.seconds[label])
    assert result.slope("exact") == pytest.approx(2.0, abs=0.01)
    assert result.slope("exact", "bytes") == pytest.approx(2.0, abs=0.01)
    assert result.slope("flash (exact)") == pytest.approx(2.0, abs=0.01)
    assert result.slope("flash (exact)", "bytes") == pytest.approx(1.0, abs=0.01)
    for kind in ("local", "block_sparse", "low_rank", "linear", "performer"):
        label = ef.Variant(kind).label
        assert result.slope(label) == pytest.approx(1.0, abs=0.1), label
        assert result.slope(label, "bytes") == pytest.approx(1.0, abs=0.1), label
    table = result.table()
    assert table.splitlines()[0].startswith("variant") and len(table.splitlines()) == 1 + 3 * len(labels)


def test_scaling_benchmark_counts_a_kernel_torch_cannot_see(monkeypatch):
    """On a GPU, flash runs a Triton kernel that the dispatcher does not see: its FLOPs come from the formula."""
    monkeypatch.setattr(ef, "flash_attention", lambda q, k, v, causal=False: torch.zeros_like(v))
    result = ef.scaling_benchmark(["flash"], ns=(32, 64), repeats=1, d=8, heads=2)
    assert result.flops["flash (exact)"] == [2 * 2 * n * n * 16 for n in (32, 64)]


def test_low_rank_module_with_fixed_projections_has_no_projection_parameters():
    learned = ef.EfficientSelfAttention(16, 2, ef.Variant("low_rank", rank=4), seq_len=10)
    fixed = ef.EfficientSelfAttention(16, 2, ef.Variant("low_rank", rank=4, learn_projection=False), seq_len=10)
    assert count_parameters(learned) == count_parameters(fixed) + 2 * 4 * 10
    assert torch.equal(learned.E, fixed.E) and fixed.E.shape == (4, 10) and not fixed.E.requires_grad
    x = torch.randn(2, 10, 16)
    fixed.load_state_dict(learned.state_dict())
    torch.testing.assert_close(fixed(x), learned(x))


def test_train_variants_trains_one_model_per_variant():
    task = PlantedTask(seq_len=8, distance=3, n_classes=2, n_noise=2)
    config = TrainConfig(steps=2, batch_size=4, progress=False)
    acc, models = ef.train_variants(
        task, ["exact", ef.Variant("local", window=1)], config, test_size=16, return_models=True
    )
    assert list(acc) == list(models) == ["exact", "local w=1"]
    assert all(0.0 <= a <= 1.0 for a in acc.values())
    assert models["local w=1"].blocks[0].attn.variant.window == 1
    assert ef.train_variants(task, ["linear"], config, test_size=16).keys() == {"linear (elu+1)"}


@pytest.mark.parametrize("d", [16, 32, 64, 128])
@pytest.mark.parametrize("logit", [1e2, 1e3, 1e4])
@pytest.mark.parametrize("dtype", [torch.float16, torch.float32])
def test_exact_and_masked_variants_survive_large_fp16_logits(d, logit, dtype):
    """Scaled logits up to 1e4: q k^T passes fp16's 65504 at d >= 64 unless the scores are float32 (as SDPA's)."""
    from test_attention import large_logit_inputs

    q, k, v = large_logit_inputs(d, logit, dtype, n_q=7, n_k=7)
    qd, kd, vd = q.double(), k.double(), v.double()
    runs = {
        "exact": (ef.exact_attention(q, k, v), sdpa(qd, kd, vd)),
        "local": (ef.local_attention(q, k, v, window=1), sdpa(qd, kd, vd, attn_mask=window_mask(7, 1))),
        "block_sparse": (ef.block_sparse_attention(q, k, v, block=2), sdpa(qd, kd, vd, attn_mask=ef.block_sparse_mask(7, 2))),
    }
    for name, (ours, exact) in runs.items():
        assert ours.dtype == dtype and torch.isfinite(ours).all(), name
        assert (ours.double() - exact).abs().max().item() <= 2e-3, name
    w = ef.effective_weights(q, k, "exact")
    assert w.dtype == dtype and torch.isfinite(w).all()


def test_low_rank_projections_must_be_finite():
    q, k, v = _qkv(1, n=6, d=4)
    E = torch.randn(3, 6, dtype=torch.float64)
    bad = E.clone()
    bad[1, 2] = float("inf")
    for kwargs, name in (({"E": bad}, "E"), ({"E": E, "F": bad}, "F")):
        with pytest.raises(ValueError, match=rf"{name} must hold finite values .* shape \(3, 6\)"):
            ef.low_rank_attention(q, k, v, **kwargs)


def test_efficient_flags_and_numpy_sizes():
    q, k, v = _qkv(1, n=6, d=4)
    with pytest.raises(TypeError, match=r"causal must be a bool, got str 'no'"):
        ef.local_attention(q, k, v, window=1, causal="no")
    with pytest.raises(TypeError, match=r"causal must be a bool"):
        ef.exact_attention(q, k, v, causal="no")
    assert torch.equal(ef.local_attention(q, k, v, window=np.int64(1)), ef.local_attention(q, k, v, window=1))
    with pytest.raises(ValueError, match=r"scale must be a finite positive number"):
        ef.local_attention(q, k, v, window=1, scale=0.0)
