"""Positional encodings (lesson 06), in PyTorch's row convention.

Self-attention alone is permutation-equivariant: it cannot tell "A B" from "B A". Two families fix that:

* **Absolute, added to the input**: a vector e^i is added to each a^i before the first block.
  `sinusoidal_encoding` / `SinusoidalPositionalEncoding` (hand-crafted) and `LearnedPositionalEncoding`.
* **Relative, inside the attention scores**: attention modules with the `MultiHeadSelfAttention` interface
  ((B, N, D) -> (B, N, D), keyword arguments `attn_mask`, `is_causal`, and `attention_weights`), so they plug
  into `models.Block`: `RelativeBiasAttention` (a learned bias per head and offset), `RoPEAttention` (q and k
  rotated, pairs (2i, 2i+1)), `ALiBiAttention` (a fixed linear penalty on distance).

Row convention: `sinusoidal_encoding(n, d)` is (n, d) and equals `reference.sinusoidal_encoding(d, n).T`.
Offsets are key minus query: offset[i, j] = j - i (positive: the key lies to the right of the query).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn

from ._validate import (
    check_floating_dtype,
    check_int,
    check_mask,
    check_number,
    check_positive_int,
    check_same_device,
    check_tensor,
    shape_of,
)
from .attention import MultiHeadSelfAttention, attention_weights, causal_mask, scaled_dot_product_attention

__all__ = [
    "sinusoidal_encoding",
    "SinusoidalPositionalEncoding",
    "LearnedPositionalEncoding",
    "relative_offsets",
    "RelativeBiasAttention",
    "rope_angles",
    "apply_rope",
    "RoPEAttention",
    "alibi_slopes",
    "alibi_bias",
    "ALiBiAttention",
    "ENCODINGS",
    "make_encoder",
    "rnn_encoding",
]


def _check_x(x, d_model: int) -> None:
    """x (B, N, d_model): a finite floating-point tensor (finiteness checked on the CPU only)."""
    check_tensor(x, "x", min_ndim=3)
    if x.ndim != 3 or x.shape[-1] != d_model:
        raise ValueError(f"x must have shape (B, N, d_model={d_model}), got {shape_of(x)}")


# ---------------------------------------------------------------------------------------------------------
# Absolute encodings, added to the input
# ---------------------------------------------------------------------------------------------------------


def sinusoidal_encoding(
    n_positions: int, d_model: int, base: float = 10000.0, dtype: torch.dtype = torch.float32, device=None
) -> torch.Tensor:
    """(n_positions, d_model): row p is e^p; column 2i is sin(p / base^(2i/d_model)), column 2i+1 its cos."""
    n_positions = check_positive_int(n_positions, "n_positions")
    d_model = check_positive_int(d_model, "d_model")
    base = check_number(base, "base")
    dtype = check_floating_dtype(dtype)  # an integer table would hold only the sines' 0s and 1s
    pos = torch.arange(n_positions, dtype=torch.float64, device=device)[:, None]  # (N, 1)
    two_i = torch.arange(0, d_model, 2, dtype=torch.float64, device=device)  # (ceil(D/2),)
    angle = pos / base ** (two_i / d_model)  # (N, 1) / (ceil(D/2),) -> (N, ceil(D/2))
    E = torch.zeros(n_positions, d_model, dtype=torch.float64, device=device)
    E[:, 0::2] = torch.sin(angle)
    E[:, 1::2] = torch.cos(angle[:, : d_model // 2])
    return E.to(dtype)


class SinusoidalPositionalEncoding(nn.Module):
    """x (B, N, D) -> x + E[:N] with the fixed sinusoidal E; nothing learned, any length N."""

    def __init__(self, d_model: int, base: float = 10000.0):
        super().__init__()
        self.d_model = check_positive_int(d_model, "d_model")
        self.base = check_number(base, "base")

    def encoding(self, n: int, dtype=torch.float32, device=None) -> torch.Tensor:
        """The (n, D) table of e^0 .. e^{n-1}."""
        return sinusoidal_encoding(n, self.d_model, self.base, dtype=dtype, device=device)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_x(x, self.d_model)
        return x + self.encoding(x.shape[1], x.dtype, x.device)  # (B, N, D) + (N, D) -> (B, N, D)


class LearnedPositionalEncoding(nn.Module):
    """x (B, N, D) -> x + P[:N] with a learned table P of shape (max_len, D); N > max_len is an error."""

    def __init__(self, d_model: int, max_len: int, init_std: float = 0.02):
        super().__init__()
        self.d_model = check_positive_int(d_model, "d_model")
        self.max_len = check_positive_int(max_len, "max_len")
        self.table = nn.Parameter(torch.randn(max_len, d_model) * init_std)  # (max_len, D)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_x(x, self.d_model)
        if x.shape[1] > self.max_len:
            raise ValueError(
                f"x has N={x.shape[1]} tokens (shape {shape_of(x)}) but the learned table has only "
                f"max_len={self.max_len} positions: a learned encoding knows no position beyond its table"
            )
        return x + self.table[: x.shape[1]]  # (B, N, D) + (N, D) -> (B, N, D)


# ---------------------------------------------------------------------------------------------------------
# Relative encodings, inside the attention scores
# ---------------------------------------------------------------------------------------------------------


def relative_offsets(n_q: int, n_k: int | None = None, device=None) -> torch.Tensor:
    """(n_q, n_k) long, offset[i, j] = j - i: where key j lies relative to query i."""
    n_q = check_positive_int(n_q, "n_q")
    n_k = n_q if n_k is None else check_positive_int(n_k, "n_k")
    return torch.arange(n_k, device=device)[None, :] - torch.arange(n_q, device=device)[:, None]


def _with_bias(bias: torch.Tensor, attn_mask, is_causal: bool, n: int) -> torch.Tensor:
    """One float mask: the position bias (H, N, N) plus the caller's mask (SDPA polarity), -inf where forbidden."""
    if is_causal:
        if attn_mask is not None:
            raise ValueError("pass either attn_mask or is_causal=True, not both (as torch's SDPA)")
        attn_mask = causal_mask(n, device=bias.device)
    if check_mask(attn_mask) is None:
        return bias
    check_same_device(attn_mask=attn_mask, x=bias)
    if attn_mask.dtype == torch.bool:
        return bias.masked_fill(~attn_mask, float("-inf"))  # broadcasts to (B, H, N, N)
    return bias + attn_mask.to(bias.dtype)


class _BiasedAttention(MultiHeadSelfAttention):
    """MultiHeadSelfAttention whose scores get a per-head position bias (H, N, N) before the softmax.

    Subclasses define `position_bias(n, device, dtype) -> (H, n, n)`.
    """

    def position_bias(self, n: int, device=None, dtype=torch.float32) -> torch.Tensor:
        """(H, n, n): the bias added to every head's scores."""
        raise NotImplementedError

    def _mask(self, x, attn_mask, is_causal):
        bias = self.position_bias(x.shape[1], device=x.device, dtype=x.dtype)  # (H, N, N)
        return _with_bias(bias, attn_mask, is_causal, x.shape[1])

    def forward(self, x, attn_mask=None, is_causal: bool = False) -> torch.Tensor:
        """x (B, N, D) -> (B, N, D); the bias is added to every head's scores."""
        q, k, v = self.split_heads(x)  # 3 x (B, H, N, d)
        heads = scaled_dot_product_attention(q, k, v, attn_mask=self._mask(x, attn_mask, is_causal))
        return self.out_proj(self.merge_heads(heads))  # (B, N, D) @ (D, D) -> (B, N, D)

    def attention_weights(self, x, attn_mask=None, is_causal: bool = False) -> torch.Tensor:
        """Each head's attention matrix, (B, H, N, N)."""
        q, k, _ = self.split_heads(x)
        return attention_weights(q, k, attn_mask=self._mask(x, attn_mask, is_causal))


class RelativeBiasAttention(_BiasedAttention):
    """Multi-head attention plus a learned bias b[h, j - i] per head and offset (offsets clipped to ±max_distance)."""

    def __init__(self, d_model: int, num_heads: int, max_distance: int = 16, bias: bool = True):
        super().__init__(d_model, num_heads, bias=bias)
        self.max_distance = check_positive_int(max_distance, "max_distance")
        self.rel_bias = nn.Parameter(torch.zeros(num_heads, 2 * max_distance + 1))  # (H, 2K+1), offset -K..K

    def position_bias(self, n: int, device=None, dtype=torch.float32) -> torch.Tensor:
        """(H, n, n): entry [h, i, j] = b[h, clip(j - i, -K, K)]."""
        K = self.max_distance
        idx = relative_offsets(n, device=self.rel_bias.device).clamp(-K, K) + K  # (n, n) in 0..2K
        return self.rel_bias[:, idx].to(device=device, dtype=dtype)  # (H, 2K+1)[:, (n, n)] -> (H, n, n)


def alibi_slopes(num_heads: int) -> torch.Tensor:
    """(H,) the ALiBi paper's head slopes: 2^(-8/H), 2^(-16/H), ..., 2^(-8) (interpolated when H is no power of 2)."""
    num_heads = check_positive_int(num_heads, "num_heads")

    def power_of_two(n: int) -> list[float]:
        return [2.0 ** (-8.0 * (h + 1) / n) for h in range(n)]

    if math.log2(num_heads).is_integer():
        return torch.tensor(power_of_two(num_heads))
    below = 2 ** math.floor(math.log2(num_heads))
    extra = power_of_two(2 * below)[0::2][: num_heads - below]  # the paper's recipe for other head counts
    return torch.tensor(power_of_two(below) + extra)


ALIBI_MODES = ("split", "symmetric", "causal")


def alibi_bias(num_heads: int, n: int, mode: str = "split", device=None, slope_scale: float = 1.0) -> torch.Tensor:
    """(H, n, n) float: the ALiBi penalty -s_h * |j - i|, -inf where a head may not look.

    mode "causal": every head sees only keys j <= i (the paper's language-model setting).
    mode "split": the first H/2 heads look left (j <= i), the others right (j >= i), each with the slopes
    of H/2 heads: a bidirectional encoder that still knows left from right (like a bidirectional RNN).
    mode "symmetric": every head sees both sides with the same penalty; it cannot tell left from right.
    slope_scale multiplies every slope s_h; 0 keeps only the masks (lesson 06's control: the split masks alone).
    """
    num_heads = check_positive_int(num_heads, "num_heads")
    n = check_positive_int(n, "n")
    slope_scale = check_number(slope_scale, "slope_scale", positive=False, minimum=0.0)
    if mode not in ALIBI_MODES:
        raise ValueError(f"mode must be one of {ALIBI_MODES}, got {mode!r}")
    offset = relative_offsets(n, device=device).to(torch.float32)  # (n, n), j - i
    if mode == "split":
        if num_heads % 2:
            raise ValueError(f"mode='split' needs an even num_heads (half look left, half right), got {num_heads}")
        slopes = alibi_slopes(num_heads // 2).repeat(2).to(device)  # (H,)
    else:
        slopes = alibi_slopes(num_heads).to(device)
    slopes = slopes * float(slope_scale)
    bias = -slopes[:, None, None] * offset.abs()  # (H, 1, 1) * (n, n) -> (H, n, n)
    if mode == "causal":
        return bias.masked_fill(offset > 0, float("-inf"))
    if mode == "split":
        half = num_heads // 2
        bias[:half] = bias[:half].masked_fill(offset > 0, float("-inf"))  # look left: keys j <= i
        bias[half:] = bias[half:].masked_fill(offset < 0, float("-inf"))  # look right: keys j >= i
    return bias


class ALiBiAttention(_BiasedAttention):
    """Multi-head attention with ALiBi: scores get -s_h * |j - i|; nothing learned, nothing added to the input.

    `mode` and `slope_scale` as in `alibi_bias` ("split" by default, for encoders; slope_scale=0 keeps the masks
    only). With is_causal=True every head looks left.
    """

    def __init__(self, d_model: int, num_heads: int, mode: str = "split", bias: bool = True, slope_scale: float = 1.0):
        super().__init__(d_model, num_heads, bias=bias)
        alibi_bias(num_heads, 1, mode, slope_scale=slope_scale)  # validates mode, num_heads and slope_scale
        self.mode = mode
        self.slope_scale = float(slope_scale)

    def position_bias(self, n: int, device=None, dtype=torch.float32) -> torch.Tensor:
        """(H, n, n) ALiBi penalties (-inf where a head may not look)."""
        return alibi_bias(self.num_heads, n, self.mode, device=device, slope_scale=self.slope_scale).to(dtype)

    def _mask(self, x, attn_mask, is_causal):
        if is_causal:  # the paper's setting: every head looks left, the causal mask included
            if attn_mask is not None:
                raise ValueError("pass either attn_mask or is_causal=True, not both (as torch's SDPA)")
            bias = alibi_bias(self.num_heads, x.shape[1], "causal", x.device, self.slope_scale).to(x.dtype)
            return _with_bias(bias, attn_mask, False, x.shape[1])
        return super()._mask(x, attn_mask, is_causal)


def rope_angles(n_positions: int, d_head: int, base: float = 10000.0, device=None) -> torch.Tensor:
    """(n_positions, d_head // 2): angle of pair i at position p, p * base^(-2i / d_head)."""
    n_positions = check_positive_int(n_positions, "n_positions")
    d_head = check_positive_int(d_head, "d_head")
    if d_head % 2:
        raise ValueError(f"d_head must be even (RoPE rotates pairs (2i, 2i+1)), got {d_head}")
    base = check_number(base, "base")
    theta = base ** (-torch.arange(0, d_head, 2, dtype=torch.float64, device=device) / d_head)  # (d/2,)
    pos = torch.arange(n_positions, dtype=torch.float64, device=device)
    return pos[:, None] * theta[None, :]  # (N, 1) * (1, d/2) -> (N, d/2)


def apply_rope(x: torch.Tensor, base: float = 10000.0, offset: int = 0) -> torch.Tensor:
    """Rotate each pair (x_{2i}, x_{2i+1}) of the token at position p by the angle (p + offset) * base^(-2i/d).

    x: (..., N, d) with d even; returns the same shape. Then (R_m q) . (R_n k) depends on n - m only.
    """
    check_tensor(x, "x")  # floating point (integers would rotate in integer arithmetic) and finite
    if x.shape[-1] % 2:
        raise ValueError(f"x must have shape (..., N, d) with N >= 1 and d even, got {shape_of(x)}")
    offset = check_int(offset, "offset", minimum=0)
    n, d = x.shape[-2], x.shape[-1]
    angle = rope_angles(n + offset, d, base, device=x.device)[offset:]  # (N, d/2)
    cos, sin = angle.cos().to(x.dtype), angle.sin().to(x.dtype)
    x_even, x_odd = x[..., 0::2], x[..., 1::2]  # (..., N, d/2) each
    out = torch.empty_like(x)
    out[..., 0::2] = x_even * cos - x_odd * sin
    out[..., 1::2] = x_even * sin + x_odd * cos
    return out


class RoPEAttention(MultiHeadSelfAttention):
    """Multi-head attention with rotary position embedding: q and k of each head rotated by their position."""

    def __init__(self, d_model: int, num_heads: int, base: float = 10000.0, bias: bool = True):
        super().__init__(d_model, num_heads, bias=bias)
        if self.d_head % 2:
            raise ValueError(f"RoPE needs an even head dimension, got d_model={d_model} / num_heads={num_heads}")
        self.base = check_number(base, "base")

    def split_heads(self, x) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """x (B, N, D) -> q, k, v (B, H, N, d), with q and k rotated by their position."""
        q, k, v = super().split_heads(x)
        return apply_rope(q, self.base), apply_rope(k, self.base), v


# ---------------------------------------------------------------------------------------------------------
# One encoder per encoding, everything else equal (lesson 06's comparison)
# ---------------------------------------------------------------------------------------------------------

ENCODINGS = ("none", "sinusoidal", "learned", "relative", "rope", "alibi", "split_masks")
# "split_masks": ALiBi's split left/right masks with slope 0, no distance penalty (the control for "alibi")


def make_encoder(
    encoding: str,
    vocab_size: int,
    n_classes: int,
    d_model: int = 32,
    num_heads: int = 4,
    n_layers: int = 1,
    max_len: int = 64,
    max_distance: int = 8,
    pool: str = "none",
):
    """A `models.tiny_transformer` with the named position encoding (one of ENCODINGS), all else equal.

    max_len: the learned table's length; max_distance: the relative bias's clipping distance.
    """
    from .models import tiny_transformer

    if encoding not in ENCODINGS:
        raise ValueError(f"encoding must be one of {ENCODINGS}, got {encoding!r}")
    position: nn.Module | None = None
    attention: Callable[[int, int], nn.Module] | None = None
    if encoding == "sinusoidal":
        position = SinusoidalPositionalEncoding(d_model)
    elif encoding == "learned":
        position = LearnedPositionalEncoding(d_model, max_len)
    elif encoding == "relative":
        attention = lambda d, h: RelativeBiasAttention(d, h, max_distance=max_distance)
    elif encoding == "rope":
        attention = RoPEAttention
    elif encoding == "alibi":
        attention = ALiBiAttention
    elif encoding == "split_masks":
        attention = lambda d, h: ALiBiAttention(d, h, mode="split", slope_scale=0.0)
    return tiny_transformer(
        vocab_size,
        n_classes,
        d_model=d_model,
        num_heads=num_heads,
        n_layers=n_layers,
        pool=pool,
        position=position,
        attention=attention,
    )


# ---------------------------------------------------------------------------------------------------------
# An RNN-based encoding, for lesson 06's picture of the four kinds (no model here uses it)
# ---------------------------------------------------------------------------------------------------------


@torch.no_grad()
def rnn_encoding(n_positions: int, d_model: int, seed: int = 0, gain: float = 1.0) -> torch.Tensor:
    """(n_positions, d_model): e^p is the hidden state of a random tanh RNN after p + 1 steps of the same input.

    The recurrence e^p = tanh(W e^(p-1) + u) makes each position from the one before (W orthogonal times gain,
    u random, seeded): positions come one after another, and the encoding goes on past any length.
    """
    n_positions = check_positive_int(n_positions, "n_positions")
    d_model = check_positive_int(d_model, "d_model")
    gain = check_number(gain, "gain")
    g = torch.Generator().manual_seed(check_int(seed, "seed", minimum=0))
    W = torch.linalg.qr(torch.randn(d_model, d_model, generator=g, dtype=torch.float64))[0] * gain  # (D, D)
    u = 0.5 * torch.randn(d_model, generator=g, dtype=torch.float64)  # (D,) the constant input, already projected
    e = torch.zeros(d_model, dtype=torch.float64)
    rows = []
    for _ in range(n_positions):
        e = torch.tanh(W @ e + u)  # (D, D) @ (D,) -> (D,)
        rows.append(e)
    return torch.stack(rows).to(torch.float32)  # (N, D)
