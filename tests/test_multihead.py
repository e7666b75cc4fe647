"""MultiHeadSelfAttention: parity with torch.nn.MultiheadAttention over random shapes and masks, weight copies
both ways, bias on/off, the lecture's per-head form (reference) and the shapes its comments claim."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from course_utils import reference as ref
from course_utils.attention import MultiHeadSelfAttention, causal_mask, padding_mask, scaled_dot_product_attention

ATOL = 1e-6  # float32, explicit


def _random_setup(seed: int, bias: bool):
    gen = torch.Generator().manual_seed(seed)
    H = int(torch.randint(1, 5, (1,), generator=gen))
    d = int(torch.randint(1, 9, (1,), generator=gen))
    B = int(torch.randint(1, 4, (1,), generator=gen))
    N = int(torch.randint(1, 12, (1,), generator=gen))
    torch.manual_seed(seed)
    mha = nn.MultiheadAttention(H * d, H, bias=bias, batch_first=True).eval()
    if bias:  # torch initialises biases to zero: make them matter
        with torch.no_grad():
            mha.in_proj_bias.normal_()
            mha.out_proj.bias.normal_()
    x = torch.randn(B, N, H * d, generator=gen)
    return mha, x, gen


def _assert_close(a, b):
    assert a.shape == b.shape
    assert torch.allclose(a, b, atol=ATOL, rtol=0), (a - b).abs().max()


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("seed", range(8))
def test_equals_torch_mha_without_mask(seed, bias):
    mha, x, _ = _random_setup(seed, bias)
    ours = MultiHeadSelfAttention.from_torch(mha)
    out, w = mha(x, x, x, need_weights=True, average_attn_weights=False)
    _assert_close(ours(x), out)
    _assert_close(ours.attention_weights(x), w)


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("seed", range(8))
def test_equals_torch_mha_with_a_random_bool_mask(seed, bias):
    """Our True = may attend; torch MHA's True = may NOT attend: the mask is inverted at that edge."""
    mha, x, gen = _random_setup(seed, bias)
    ours = MultiHeadSelfAttention.from_torch(mha)
    N = x.shape[1]
    allowed = (torch.rand(N, N, generator=gen) > 0.5) | torch.eye(N, dtype=torch.bool)  # no fully masked row
    _assert_close(ours(x, attn_mask=allowed), mha(x, x, x, attn_mask=~allowed, need_weights=False)[0])
    per_batch_head = (torch.rand(x.shape[0], mha.num_heads, N, N, generator=gen) > 0.5) | torch.eye(N, dtype=bool)
    torch_mask = (~per_batch_head).reshape(-1, N, N)  # torch takes (B*H, N, N)
    _assert_close(ours(x, attn_mask=per_batch_head), mha(x, x, x, attn_mask=torch_mask, need_weights=False)[0])


@pytest.mark.parametrize("seed", range(6))
def test_equals_torch_mha_with_a_float_mask(seed):
    mha, x, gen = _random_setup(seed, True)
    ours = MultiHeadSelfAttention.from_torch(mha)
    N = x.shape[1]
    additive = torch.randn(N, N, generator=gen)
    _assert_close(ours(x, attn_mask=additive), mha(x, x, x, attn_mask=additive, need_weights=False)[0])


@pytest.mark.parametrize("seed", range(6))
def test_equals_torch_mha_with_padding_and_causal_masks(seed):
    mha, x, gen = _random_setup(seed, True)
    ours = MultiHeadSelfAttention.from_torch(mha)
    B, N, _ = x.shape
    lengths = torch.randint(1, N + 1, (B,), generator=gen)
    real = padding_mask(lengths, N)  # (B, 1, 1, N)
    want = mha(x, x, x, key_padding_mask=~real[:, 0, 0], need_weights=False)[0]
    _assert_close(ours(x, attn_mask=real), want)
    _assert_close(ours(x, is_causal=True), mha(x, x, x, attn_mask=~causal_mask(N), need_weights=False)[0])


def test_forgetting_the_polarity_flip_gives_other_numbers():
    mha, x, _ = _random_setup(1, True)
    x = torch.randn(2, 6, mha.embed_dim)
    ours = MultiHeadSelfAttention.from_torch(mha)
    allowed = torch.eye(6, dtype=torch.bool) | torch.tril(torch.ones(6, 6, dtype=torch.bool), -2)
    assert not torch.allclose(ours(x, attn_mask=allowed), mha(x, x, x, attn_mask=allowed)[0], atol=1e-3)


@pytest.mark.parametrize("bias", [True, False])
def test_round_trips_are_exact(bias):
    torch.manual_seed(0)
    ours = MultiHeadSelfAttention(12, 3, bias=bias)
    if bias:
        with torch.no_grad():
            ours.in_proj.bias.normal_()
            ours.out_proj.bias.normal_()
    theirs = ours.to_torch()
    assert isinstance(theirs, nn.MultiheadAttention) and theirs.batch_first and theirs.num_heads == 3
    assert (theirs.in_proj_bias is not None) == bias
    back = MultiHeadSelfAttention.from_torch(theirs)
    for (name, a), (_, b) in zip(ours.state_dict().items(), back.state_dict().items()):
        assert torch.equal(a, b), name
    x = torch.randn(2, 5, 12)
    _assert_close(theirs.eval()(x, x, x, need_weights=False)[0], ours(x))


def test_from_torch_keeps_dtype_and_copies_not_shares():
    mha = nn.MultiheadAttention(8, 2, batch_first=True).double()
    ours = MultiHeadSelfAttention.from_torch(mha)
    assert ours.in_proj.weight.dtype == torch.float64
    with torch.no_grad():
        ours.in_proj.weight.zero_()
    assert mha.in_proj_weight.abs().sum() > 0


@pytest.mark.parametrize(
    "make, pattern",
    [
        (lambda: nn.MultiheadAttention(8, 2), "batch_first"),
        (lambda: nn.MultiheadAttention(8, 2, batch_first=True, kdim=4, vdim=4), "kdim"),
        (lambda: nn.MultiheadAttention(8, 2, batch_first=True, add_bias_kv=True), "bias_k"),
    ],
)
def test_from_torch_refuses_what_it_cannot_copy(make, pattern):
    with pytest.raises(ValueError, match=pattern):
        MultiHeadSelfAttention.from_torch(make())
    with pytest.raises(TypeError, match="MultiheadAttention"):
        MultiHeadSelfAttention.from_torch(nn.Linear(8, 8))


@pytest.mark.parametrize("seed", range(4))
def test_equals_the_lectures_per_head_form(seed):
    """The fused module (float64) equals reference.multi_head_self_attention with each head's rows of W."""
    rng = np.random.default_rng(seed)
    H, d, N = 1 + seed % 3, 2 + seed, 3 + seed
    D = H * d
    W = [rng.normal(size=(D, D)) for _ in range(4)]
    I = rng.normal(size=(D, N))
    heads = lambda M: [M[h * d : (h + 1) * d] for h in range(H)]  # head h's (d, D) rows
    want = ref.multi_head_self_attention(I, heads(W[0]), heads(W[1]), heads(W[2]), W[3])  # (D, N)
    module = MultiHeadSelfAttention(D, H, bias=False).double()
    with torch.no_grad():
        module.in_proj.weight.copy_(torch.from_numpy(np.concatenate(W[:3])))
        module.out_proj.weight.copy_(torch.from_numpy(W[3]))
    got = module(torch.from_numpy(I.T.copy())[None])[0].detach().numpy().T
    assert np.allclose(got, want, atol=1e-10)


def test_shapes_the_comments_claim():
    module = MultiHeadSelfAttention(12, 3)
    x = torch.randn(2, 5, 12)
    q, k, v = module.split_heads(x)
    assert q.shape == k.shape == v.shape == (2, 3, 5, 4)  # (B, H, N, d)
    assert module.merge_heads(q).shape == (2, 5, 12)  # (B, N, D)
    assert module.attention_weights(x).shape == (2, 3, 5, 5)  # (B, H, N, N)
    assert module(x).shape == (2, 5, 12)
    # head h's q is x @ W_q[h*d:(h+1)*d].T + b: a contiguous block of features
    W_q = module.in_proj.weight[:12]
    b_q = module.in_proj.bias[:12]
    assert torch.allclose(q[:, 1], x @ W_q[4:8].T + b_q[4:8], atol=1e-6)
    assert torch.equal(module.merge_heads(module.split_heads(x)[2]), module.in_proj(x)[..., 24:])


def test_each_head_is_a_separate_attention():
    torch.manual_seed(1)
    module = MultiHeadSelfAttention(8, 2)
    x = torch.randn(1, 4, 8)
    q, k, v = module.split_heads(x)
    per_head = [scaled_dot_product_attention(q[:, h], k[:, h], v[:, h]) for h in range(2)]  # (B, N, d) each
    want = module.out_proj(torch.cat(per_head, dim=-1))  # [b^{i,1}; b^{i,2}] then W^O
    _assert_close(module(x), want)


def test_fully_masked_rows_give_zero_head_outputs():
    module = MultiHeadSelfAttention(8, 2, bias=False)
    x = torch.randn(1, 3, 8)
    mask = torch.tensor([[True, True, True], [False, False, False], [True, False, True]])
    w = module.attention_weights(x, attn_mask=mask)
    assert torch.all(w[:, :, 1] == 0) and torch.all(module(x, attn_mask=mask)[:, 1] == 0)


@pytest.mark.parametrize(
    "call, error, pattern",
    [
        (lambda m: m(torch.randn(2, 5, 6)), ValueError, r"\(2, 5, 6\)"),
        (lambda m: m(torch.randn(5, 8)), ValueError, r"\(5, 8\)"),
        (lambda m: m(torch.randn(2, 5, 8, dtype=torch.float64)), TypeError, "float64"),
        (lambda m: m(torch.ones(2, 5, 8, dtype=torch.long)), TypeError, "floating-point"),
        (lambda m: m(np.zeros((2, 5, 8))), TypeError, "ndarray"),
        (lambda m: m.merge_heads(torch.randn(2, 3, 5, 4)), ValueError, r"\(2, 3, 5, 4\)"),
        (lambda m: m(torch.randn(1, 3, 8), attn_mask=torch.ones(4, 4, dtype=torch.bool)), ValueError, "attn_mask"),
    ],
)
def test_bad_input_is_named(call, error, pattern):
    with pytest.raises(error, match=pattern):
        call(MultiHeadSelfAttention(8, 2))


@pytest.mark.parametrize("args, pattern", [((7, 2), "divisible"), ((0, 1), "d_model"), ((8, 0), "num_heads")])
def test_bad_sizes_are_named(args, pattern):
    with pytest.raises(ValueError, match=pattern):
        MultiHeadSelfAttention(*args)


def test_lesson05_loop_equals_the_reference():
    """The lecture's two-step loop that lesson 05 writes equals the reference with the folded matrices."""
    from nbtools import notebook_definitions

    loop = notebook_definitions("notebooks/05_multi_head_self_attention.ipynb")["multi_head_loop"]
    rng = np.random.default_rng(7)
    d_in, N, H, d = 4, 6, 3, 2
    I = rng.normal(size=(d_in, N))
    Wq, Wk, Wv = (rng.normal(size=(5, d_in)) for _ in range(3))  # first projections (5, d_in)
    Wq_h, Wk_h, Wv_h = ([rng.normal(size=(d, 5)) for _ in range(H)] for _ in range(3))  # per head (d, 5)
    Wo = rng.normal(size=(3, H * d))
    folded = [[W_h[h] @ W for h in range(H)] for W_h, W in ((Wq_h, Wq), (Wk_h, Wk), (Wv_h, Wv))]
    want = ref.multi_head_self_attention(I, *folded, Wo)
    assert np.allclose(loop(I, Wq, Wk, Wv, Wq_h, Wk_h, Wv_h, Wo), want, atol=1e-12)


def test_from_torch_keeps_float64_exact_and_carries_dropout():
    torch.manual_seed(0)
    mha = nn.MultiheadAttention(8, 2, dropout=0.25, batch_first=True).double()
    ours = MultiHeadSelfAttention.from_torch(mha)
    assert ours.in_proj.weight.dtype == torch.float64 and ours.dropout == 0.25
    assert all(torch.equal(a, b) for a, b in zip(mha.state_dict().values(), ours.state_dict().values()))
    back = ours.to_torch()
    assert back.dropout == 0.25 and back.in_proj_weight.dtype == torch.float64
    x = torch.randn(2, 5, 8, dtype=torch.float64)
    mha.eval(), ours.eval()
    err = (ours(x) - mha(x, x, x, need_weights=False)[0]).abs().max().item()
    assert err < 1e-14  # a float32 round trip of the weights gave ~1e-7


def test_dropout_acts_on_attention_weights_in_training_only():
    torch.manual_seed(0)
    m = MultiHeadSelfAttention(8, 2, dropout=0.5)
    x = torch.randn(3, 6, 8)
    m.eval()
    plain = m(x)
    m.train()
    torch.manual_seed(1)
    trained = m(x)
    torch.manual_seed(1)
    q, k, v = m.split_heads(x)
    weights = nn.functional.dropout(m.attention_weights(x), p=0.5, training=True)  # (B, H, N, N)
    assert torch.allclose(trained, m.out_proj(m.merge_heads(weights @ v)), atol=1e-6)
    assert not torch.allclose(trained, plain, atol=1e-3)
    assert torch.equal(m.eval()(x), plain)  # eval: no dropout
    with pytest.raises(ValueError, match="dropout must lie in"):
        MultiHeadSelfAttention(8, 2, dropout=1.0)
    with pytest.raises(ValueError, match="dropout must be at least 0"):
        MultiHeadSelfAttention(8, 2, dropout=-0.1)
