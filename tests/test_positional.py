"""course_utils.positional: each encoding's defining property, shapes, validation, and the modules plugging into
models.Block."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from course_utils import positional as pe
from course_utils import reference as ref
from course_utils.attention import MultiHeadSelfAttention, padding_mask
from course_utils.models import Block

# ---------------------------------------------------------------------------------------------------------
# sinusoidal
# ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("n, d", [(1, 2), (10, 8), (7, 5), (50, 64)])
def test_sinusoid_against_an_independent_formula(n, d):
    E = pe.sinusoidal_encoding(n, d, dtype=torch.float64)
    assert E.shape == (n, d)
    for p in range(n):
        for col in range(d):
            angle = p / 10000 ** ((col - col % 2) / d)
            want = math.sin(angle) if col % 2 == 0 else math.cos(angle)
            assert math.isclose(E[p, col].item(), want, abs_tol=1e-12)


@pytest.mark.parametrize("n, d", [(10, 8), (7, 5), (3, 1)])
def test_sinusoid_is_the_reference_transposed(n, d):
    assert np.allclose(pe.sinusoidal_encoding(n, d, dtype=torch.float64).numpy(), ref.sinusoidal_encoding(d, n).T)


def test_sinusoid_dot_product_depends_only_on_distance():
    E = pe.sinusoidal_encoding(40, 32, dtype=torch.float64)
    G = E @ E.T  # (N, d) @ (d, N) -> (N, N)
    assert torch.allclose(G[3:, 3:], G[:-3, :-3], atol=1e-10)
    assert torch.all(G[0, 1:] < G[0, 0])


def test_sinusoidal_module_adds_the_table_at_any_length():
    module = pe.SinusoidalPositionalEncoding(16)
    assert sum(p.numel() for p in module.parameters()) == 0
    for n in (1, 5, 300):
        x = torch.randn(2, n, 16)
        assert torch.allclose(module(x) - x, pe.sinusoidal_encoding(n, 16).expand(2, n, 16), atol=1e-6)
    assert module(torch.zeros(1, 3, 16, dtype=torch.float64)).dtype == torch.float64


# ---------------------------------------------------------------------------------------------------------
# learned absolute
# ---------------------------------------------------------------------------------------------------------


def test_learned_encoding_adds_rows_and_refuses_longer_inputs():
    module = pe.LearnedPositionalEncoding(8, max_len=5)
    assert module.table.shape == (5, 8) and module.table.requires_grad
    x = torch.randn(3, 4, 8)
    assert torch.allclose(module(x) - x, module.table[:4].detach().expand(3, 4, 8), atol=1e-6)
    with pytest.raises(ValueError, match=r"N=6.*\(2, 6, 8\).*max_len=5"):
        module(torch.randn(2, 6, 8))


def test_learned_encoding_gets_gradients():
    module = pe.LearnedPositionalEncoding(4, max_len=6)
    module(torch.randn(2, 3, 4)).sum().backward()
    assert module.table.grad[:3].abs().sum() > 0 and module.table.grad[3:].abs().sum() == 0


# ---------------------------------------------------------------------------------------------------------
# relative offsets and bias
# ---------------------------------------------------------------------------------------------------------


def test_relative_offsets():
    off = pe.relative_offsets(3, 4)
    assert off.shape == (3, 4)
    assert off.tolist() == [[0, 1, 2, 3], [-1, 0, 1, 2], [-2, -1, 0, 1]]


def _is_toeplitz(M: torch.Tensor) -> bool:
    """Every diagonal constant (M: (..., N, N)); -inf counts as equal to -inf."""
    n = M.shape[-1]
    off = pe.relative_offsets(n)
    for o in range(-n + 1, n):
        diag = M[..., off == o]
        if not torch.all((diag == diag[..., :1]) | (torch.isinf(diag) & torch.isinf(diag[..., :1]))):
            return False
    return True


def test_relative_bias_is_a_function_of_the_clipped_offset():
    attn = pe.RelativeBiasAttention(8, 2, max_distance=2)
    with torch.no_grad():
        attn.rel_bias.copy_(torch.arange(10.0).reshape(2, 5))  # offsets -2..2 -> 0..4, head 1: 5..9
    bias = attn.position_bias(6)
    assert bias.shape == (2, 6, 6) and _is_toeplitz(bias)
    off = pe.relative_offsets(6)
    assert torch.all(bias[0][off <= -2] == 0) and torch.all(bias[0][off >= 2] == 4)
    assert torch.all(bias[1][off == 0] == 7)


def test_relative_bias_with_zero_bias_equals_plain_attention():
    torch.manual_seed(0)
    attn = pe.RelativeBiasAttention(8, 2)
    plain = MultiHeadSelfAttention(8, 2)
    plain.load_state_dict({k: v for k, v in attn.state_dict().items() if k != "rel_bias"})
    x = torch.randn(2, 5, 8)
    assert torch.allclose(attn(x), plain(x), atol=1e-6)
    mask = padding_mask([5, 3], 5)
    assert torch.allclose(attn(x, attn_mask=mask), plain(x, attn_mask=mask), atol=1e-6)
    assert torch.allclose(attn(x, is_causal=True), plain(x, is_causal=True), atol=1e-6)


def test_relative_bias_is_added_to_the_scores():
    torch.manual_seed(1)
    attn = pe.RelativeBiasAttention(8, 2, max_distance=3)
    with torch.no_grad():
        attn.rel_bias.normal_()
    x = torch.randn(1, 6, 8)
    q, k, _ = attn.split_heads(x)
    scores = q @ k.transpose(-2, -1) / math.sqrt(attn.d_head) + attn.position_bias(6)
    assert torch.allclose(attn.attention_weights(x), torch.softmax(scores, dim=-1), atol=1e-6)


# ---------------------------------------------------------------------------------------------------------
# RoPE
# ---------------------------------------------------------------------------------------------------------


def test_rope_rotates_pairs_2i_2i1_by_position_times_frequency():
    x = torch.randn(5, 8, dtype=torch.float64)
    out = pe.apply_rope(x)
    for p in range(5):
        for i in range(4):
            a = p / 10000 ** (2 * i / 8)
            c, s = math.cos(a), math.sin(a)
            x0, x1 = x[p, 2 * i].item(), x[p, 2 * i + 1].item()
            assert math.isclose(out[p, 2 * i].item(), x0 * c - x1 * s, abs_tol=1e-12)
            assert math.isclose(out[p, 2 * i + 1].item(), x0 * s + x1 * c, abs_tol=1e-12)


@pytest.mark.parametrize("seed", range(5))
def test_rope_scores_depend_only_on_the_relative_offset(seed):
    gen = torch.Generator().manual_seed(seed)
    d = 2 * int(torch.randint(1, 17, (1,), generator=gen))
    q = torch.randn(d, dtype=torch.float64, generator=gen)
    k = torch.randn(d, dtype=torch.float64, generator=gen)
    n = 40
    Q = pe.apply_rope(q.expand(n, d).clone())  # the same query placed at every position 0..n-1
    K = pe.apply_rope(k.expand(n, d).clone())
    S = Q @ K.T  # S[m, n] = (R_m q) . (R_n k)
    assert _is_toeplitz_close(S)
    for shift in (1, 13, 1000):
        Qs = pe.apply_rope(q.expand(n, d).clone(), offset=shift)
        Ks = pe.apply_rope(k.expand(n, d).clone(), offset=shift)
        assert torch.allclose(Qs @ Ks.T, S, atol=1e-9)


def _is_toeplitz_close(S: torch.Tensor) -> bool:
    return torch.allclose(S[1:, 1:], S[:-1, :-1], atol=1e-9)


def test_rope_keeps_norms_and_position_zero():
    x = torch.randn(2, 3, 7, 16)
    out = pe.apply_rope(x)
    assert out.shape == x.shape
    assert torch.allclose(out.norm(dim=-1), x.norm(dim=-1), atol=1e-5)
    assert torch.equal(out[..., 0, :], x[..., 0, :])


def test_rope_angles_shape_and_values():
    a = pe.rope_angles(4, 6, base=100.0)
    assert a.shape == (4, 3)
    assert torch.allclose(a[3], torch.tensor([3.0, 3 / 100 ** (2 / 6), 3 / 100 ** (4 / 6)], dtype=torch.float64))


def test_rope_attention_equals_sdpa_on_rotated_q_k():
    torch.manual_seed(2)
    attn = pe.RoPEAttention(16, 2)
    x = torch.randn(2, 6, 16)
    q, k, v = MultiHeadSelfAttention.split_heads(attn, x)
    q, k = pe.apply_rope(q), pe.apply_rope(k)
    want = attn.out_proj(attn.merge_heads(torch.nn.functional.scaled_dot_product_attention(q, k, v)))
    assert torch.allclose(attn(x), want, atol=1e-6)


def test_rope_attention_without_content_depends_on_offsets_only():
    """Identical tokens: with RoPE every head's scores are constant along each diagonal (offset n - m)."""
    torch.manual_seed(3)
    attn = pe.RoPEAttention(16, 2, bias=False)
    x = torch.randn(1, 1, 16).expand(1, 9, 16).clone()
    q, k, _ = attn.split_heads(x)  # rotated: (1, H, N, d)
    S = (q @ k.transpose(-2, -1))[0]  # (H, N, N)
    assert torch.allclose(S[:, 1:, 1:], S[:, :-1, :-1], atol=1e-5)
    plain_q, plain_k, _ = MultiHeadSelfAttention.split_heads(attn, x)
    assert not torch.allclose(S, (plain_q @ plain_k.transpose(-2, -1))[0], atol=1e-3)  # RoPE changed them


# ---------------------------------------------------------------------------------------------------------
# ALiBi
# ---------------------------------------------------------------------------------------------------------


def test_alibi_slopes_follow_the_paper():
    assert torch.allclose(pe.alibi_slopes(8), torch.tensor([2.0 ** -(k + 1) for k in range(8)]))
    assert torch.allclose(pe.alibi_slopes(4), torch.tensor([2.0**-2, 2.0**-4, 2.0**-6, 2.0**-8]))
    six = pe.alibi_slopes(6)  # not a power of 2: the 4-head slopes, then every other 8-head slope
    assert torch.allclose(six, torch.tensor([2.0**-2, 2.0**-4, 2.0**-6, 2.0**-8, 2.0**-1, 2.0**-3]))


@pytest.mark.parametrize("mode", pe.ALIBI_MODES)
def test_alibi_bias_is_linear_in_distance(mode):
    H, n = 4, 7
    bias = pe.alibi_bias(H, n, mode)
    assert bias.shape == (H, n, n) and _is_toeplitz(bias)
    off = pe.relative_offsets(n).float()
    slopes = pe.alibi_slopes(H // 2).repeat(2) if mode == "split" else pe.alibi_slopes(H)
    finite = torch.isfinite(bias)
    want = -slopes[:, None, None] * off.abs()
    assert torch.allclose(bias[finite], want.expand(H, n, n)[finite])
    assert torch.all(torch.diagonal(bias, dim1=-2, dim2=-1) == 0)  # every head sees itself


def test_alibi_modes_look_where_they_say():
    off = pe.relative_offsets(5)
    causal = pe.alibi_bias(2, 5, "causal")
    assert torch.isinf(causal[:, off > 0]).all() and torch.isfinite(causal[:, off <= 0]).all()
    split = pe.alibi_bias(4, 5, "split")
    assert torch.isinf(split[:2][:, off > 0]).all() and torch.isinf(split[2:][:, off < 0]).all()
    assert torch.isfinite(pe.alibi_bias(3, 5, "symmetric")).all()


def test_symmetric_alibi_cannot_tell_left_from_right():
    """With a symmetric bias, reversing the sequence reverses the outputs: 'A B' and 'B A' pool the same."""
    torch.manual_seed(4)
    attn = pe.ALiBiAttention(8, 2, mode="symmetric")
    x = torch.randn(1, 6, 8)
    assert torch.allclose(attn(x.flip(1)), attn(x).flip(1), atol=1e-6)
    split = pe.ALiBiAttention(8, 2, mode="split")
    split.load_state_dict(attn.state_dict())
    assert not torch.allclose(split(x.flip(1)), split(x).flip(1), atol=1e-3)


def test_alibi_attention_is_causal_alibi_when_asked():
    torch.manual_seed(5)
    attn = pe.ALiBiAttention(8, 2)
    x = torch.randn(2, 5, 8)
    q, k, v = attn.split_heads(x)
    mask = pe.alibi_bias(2, 5, "causal")
    want = attn.out_proj(attn.merge_heads(torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=mask)))
    assert torch.allclose(attn(x, is_causal=True), want, atol=1e-6)
    w = attn.attention_weights(x, is_causal=True)
    assert torch.all(w[..., pe.relative_offsets(5) > 0] == 0)


def test_alibi_with_padding_mask_ignores_padded_keys():
    torch.manual_seed(6)
    attn = pe.ALiBiAttention(8, 2, mode="symmetric")
    x = torch.randn(2, 5, 8)
    w = attn.attention_weights(x, attn_mask=padding_mask([5, 3], 5))
    assert torch.all(w[1, :, :, 3:] == 0)
    assert torch.allclose(w.sum(-1), torch.ones(2, 2, 5))


# ---------------------------------------------------------------------------------------------------------
# plugging into models
# ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("cls", [pe.RelativeBiasAttention, pe.RoPEAttention, pe.ALiBiAttention])
def test_attention_modules_plug_into_a_block(cls):
    torch.manual_seed(7)
    block = Block(16, cls(16, 4))
    x = torch.randn(2, 6, 16)
    out = block(x)
    assert out.shape == x.shape
    out.sum().backward()
    assert block.attn.attention_weights(x).shape == (2, 4, 6, 6)
    assert block(x, is_causal=True).shape == x.shape


@pytest.mark.parametrize("encoding", pe.ENCODINGS)
def test_make_encoder_builds_every_encoding(encoding):
    torch.manual_seed(8)
    model = pe.make_encoder(encoding, vocab_size=10, n_classes=3, d_model=16, num_heads=2, max_len=8)
    x = torch.randint(0, 10, (2, 8))
    assert model(x).shape == (2, 8, 3)
    assert len(model.attention_maps(x)) == 1


def test_only_none_is_order_blind():
    torch.manual_seed(9)
    x = torch.randint(0, 10, (1, 6))
    for encoding in pe.ENCODINGS:
        model = pe.make_encoder(encoding, vocab_size=10, n_classes=3, d_model=16, num_heads=2, pool="mean").eval()
        with torch.no_grad():
            if encoding == "relative":
                model.blocks[0].attn.rel_bias.normal_()
            blind = torch.allclose(model(x), model(x.flip(1)), atol=1e-5)
        assert blind == (encoding == "none"), encoding


def test_split_masks_is_alibi_with_slope_zero():
    bias = pe.alibi_bias(4, 6, "split", slope_scale=0.0)
    scaled = pe.alibi_bias(4, 6, "split", slope_scale=2.0)
    full = pe.alibi_bias(4, 6, "split")
    assert torch.equal(torch.isinf(bias), torch.isinf(full))  # the same masks
    assert (bias[torch.isfinite(bias)] == 0).all()  # no distance penalty
    assert torch.allclose(scaled[torch.isfinite(scaled)], 2 * full[torch.isfinite(full)])
    model = pe.make_encoder("split_masks", vocab_size=10, n_classes=2, d_model=16, num_heads=2)
    attn = model.blocks[0].attn
    assert isinstance(attn, pe.ALiBiAttention) and attn.mode == "split" and attn.slope_scale == 0.0
    assert torch.equal(attn.position_bias(5), pe.alibi_bias(2, 5, "split", slope_scale=0.0))


def test_rnn_encoding_is_a_recurrence_that_settles():
    E = pe.rnn_encoding(40, 16, seed=1)
    assert E.shape == (40, 16) and E.dtype == torch.float32
    assert torch.equal(E, pe.rnn_encoding(40, 16, seed=1)) and not torch.equal(E, pe.rnn_encoding(40, 16, seed=2))
    assert torch.equal(pe.rnn_encoding(10, 16, seed=1), E[:10])  # each position made from the one before
    assert (E.abs() < 1).all()  # tanh
    steps = (E[1:] - E[:-1]).norm(dim=1)
    assert steps[-1] < 0.05 * steps[0]


# ---------------------------------------------------------------------------------------------------------
# validation
# ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "call, error, pattern",
    [
        (lambda: pe.sinusoidal_encoding(0, 4), ValueError, "n_positions"),
        (lambda: pe.sinusoidal_encoding(4, 2.5), TypeError, "d_model"),
        (lambda: pe.sinusoidal_encoding(4, 4, base=-1.0), ValueError, "base"),
        (lambda: pe.SinusoidalPositionalEncoding(8)(torch.zeros(2, 3, 6)), ValueError, r"\(2, 3, 6\)"),
        (lambda: pe.SinusoidalPositionalEncoding(8)(np.zeros((2, 3, 8))), TypeError, "ndarray"),
        (lambda: pe.SinusoidalPositionalEncoding(8)(torch.zeros(3, 8)), ValueError, r"\(3, 8\)"),
        (lambda: pe.LearnedPositionalEncoding(8, 0), ValueError, "max_len"),
        (lambda: pe.relative_offsets(0), ValueError, "n_q"),
        (lambda: pe.RelativeBiasAttention(8, 2, max_distance=0), ValueError, "max_distance"),
        (lambda: pe.rope_angles(4, 5), ValueError, "d_head must be even"),
        (lambda: pe.apply_rope(torch.zeros(3, 5)), ValueError, r"\(3, 5\)"),
        (lambda: pe.apply_rope(torch.zeros(3, 4), offset=-1), ValueError, "offset"),
        (lambda: pe.apply_rope([[1.0, 2.0]]), TypeError, "list"),
        (lambda: pe.RoPEAttention(6, 2), ValueError, "even head dimension"),
        (lambda: pe.alibi_slopes(0), ValueError, "num_heads"),
        (lambda: pe.alibi_bias(3, 4, "split"), ValueError, "even num_heads"),
        (lambda: pe.alibi_bias(2, 4, "sideways"), ValueError, "mode"),
        (lambda: pe.ALiBiAttention(8, 2, mode="sideways"), ValueError, "mode"),
        (lambda: pe.alibi_bias(2, 4, slope_scale=-1.0), ValueError, "slope_scale"),
        (lambda: pe.alibi_bias(2, 4, slope_scale=float("inf")), ValueError, "slope_scale"),
        (lambda: pe.ALiBiAttention(8, 2, slope_scale="0"), TypeError, "slope_scale"),
        (lambda: pe.rnn_encoding(0, 4), ValueError, "n_positions"),
        (lambda: pe.rnn_encoding(4, 0), ValueError, "d_model"),
        (lambda: pe.rnn_encoding(4, 4, gain=0.0), ValueError, "gain"),
        (lambda: pe.ALiBiAttention(8, 2)(torch.zeros(1, 3, 8), attn_mask=[[True]]), TypeError, "attn_mask"),
        (
            lambda: pe.ALiBiAttention(8, 2)(torch.zeros(1, 3, 8), attn_mask=torch.ones(3, 3, dtype=torch.long)),
            TypeError,
            "bool",
        ),
        (
            lambda: pe.ALiBiAttention(8, 2)(
                torch.zeros(1, 3, 8), attn_mask=torch.ones(3, 3, dtype=torch.bool), is_causal=True
            ),
            ValueError,
            "either",
        ),
        (lambda: pe.RoPEAttention(8, 2)(torch.zeros(1, 3, 6)), ValueError, r"\(1, 3, 6\)"),
        (lambda: pe.make_encoder("wavelet", 10, 2), ValueError, "encoding"),
    ],
)
def test_validation_names_the_argument_and_shape(call, error, pattern):
    with pytest.raises(error, match=pattern):
        call()


def test_integer_inputs_are_refused_not_rounded():
    """apply_rope on int64 rotated in integer arithmetic; sinusoidal_encoding(dtype=long) gave 0s and 1s."""
    with pytest.raises(TypeError, match=r"x must be a floating-point tensor, got dtype torch.int64"):
        pe.apply_rope(torch.arange(8).reshape(1, 2, 4))
    with pytest.raises(TypeError, match=r"dtype must be a floating-point torch dtype"):
        pe.sinusoidal_encoding(4, 4, dtype=torch.long)
    with pytest.raises(TypeError, match=r"x must be a floating-point tensor"):
        pe.SinusoidalPositionalEncoding(4)(torch.ones(1, 3, 4, dtype=torch.long))


@pytest.mark.parametrize(
    "call",
    [
        lambda bad: pe.apply_rope(bad),
        lambda bad: pe.SinusoidalPositionalEncoding(4)(bad),
        lambda bad: pe.LearnedPositionalEncoding(4, 8)(bad),
    ],
    ids=["apply_rope", "sinusoidal", "learned"],
)
def test_non_finite_inputs_are_named(call):
    bad = torch.ones(2, 3, 4)
    bad[0, 1, 2] = float("nan")
    with pytest.raises(ValueError, match=r"x must hold finite values .* shape \(2, 3, 4\)"):
        call(bad)


def test_numpy_scalars_are_accepted_like_python_numbers():
    assert torch.equal(pe.sinusoidal_encoding(np.int64(5), np.int32(4), base=np.float32(100.0)),
                       pe.sinusoidal_encoding(5, 4, base=100.0))
    x = torch.randn(1, 3, 4)
    assert torch.equal(pe.apply_rope(x, offset=np.int64(2)), pe.apply_rope(x, offset=2))
    assert torch.equal(pe.alibi_bias(np.int64(2), 4, slope_scale=np.float64(0.5)), pe.alibi_bias(2, 4, slope_scale=0.5))
