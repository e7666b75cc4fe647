"""Self-attention in PyTorch, in the row convention.

Vectors are rows: x has shape (B, N, D); per-head tensors have shape (B, H, N, d), as in
`torch.nn.functional.scaled_dot_product_attention` (SDPA). q = x W_q^T, scores = q k^T, softmax over the
last axis. The result is the transpose of the lecture's column form (lesson 04 checks the bridge).

Masks have one polarity everywhere, SDPA's: a boolean mask is True where attention is *allowed*; a float
mask is *added* to the scores (-inf forbids). A query whose keys are all masked gets a zero output row,
as torch's CPU SDPA gives.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from ._validate import (
    check_flag,
    check_int,
    check_mask,
    check_number,
    check_positive_int,
    check_qkv,
    check_same_device,
    check_scale,
    check_tensor,
    shape_of,
)

__all__ = [
    "scaled_dot_product_attention",
    "attention_weights",
    "causal_mask",
    "padding_mask",
    "window_mask",
    "graph_mask",
    "SelfAttention",
    "MultiHeadSelfAttention",
]


HALF_DTYPES = (torch.float16, torch.bfloat16)


def _upcast(t: torch.Tensor) -> torch.Tensor:
    """float16/bfloat16 -> float32 (where scores, softmax and running sums are computed); others unchanged."""
    return t.float() if t.dtype in HALF_DTYPES else t


def _scores(q, k, attn_mask, is_causal, scale) -> torch.Tensor:
    """Masked, scaled scores (..., N_q, N_k) with -inf where attention is forbidden.

    Half-precision inputs give float32 scores (as torch's SDPA and the Triton kernel accumulate them); float32
    and float64 inputs keep their dtype.
    """
    check_qkv(q, k, k)
    scale = 1.0 / math.sqrt(q.shape[-1]) if scale is None else check_scale(scale, q.shape[-1])
    is_causal = check_flag(is_causal, "is_causal")
    attn_mask = check_mask(attn_mask)
    check_same_device(q=q, k=k, attn_mask=attn_mask)
    n_q, n_k = q.shape[-2], k.shape[-2]
    q, k = _upcast(q), _upcast(k)  # half precision: q k^T alone can pass fp16's 65504 before the scale
    scores = (q @ k.transpose(-2, -1)) * scale  # (..., N_q, d) @ (..., d, N_k) -> (..., N_q, N_k)
    if is_causal:
        if attn_mask is not None:
            raise ValueError("pass either attn_mask or is_causal=True, not both (as torch's SDPA)")
        attn_mask = causal_mask(n_q, n_k, device=q.device)  # top-left aligned, as torch's SDPA
    if attn_mask is not None:
        try:
            fits = torch.broadcast_shapes(attn_mask.shape, scores.shape) == scores.shape
        except RuntimeError:
            fits = False
        if not fits:  # a mask may not add dimensions: torch's SDPA refuses it too
            hint = ""
            if attn_mask.ndim == 4:
                hint = " (for 3-D inputs (B, N, d) take padding_mask(...)[:, 0], shape (B, 1, n))"
            raise ValueError(
                f"attn_mask must broadcast to the scores' shape {shape_of(scores)}, got {shape_of(attn_mask)}{hint}"
            )
        if attn_mask.dtype == torch.bool:
            scores = scores.masked_fill(~attn_mask, float("-inf"))
        else:
            scores = scores + attn_mask.to(scores.dtype)  # a float mask is added (it may hold -inf)
    return scores


def _masked_softmax(scores: torch.Tensor) -> torch.Tensor:
    """Softmax over the last axis; a row that is entirely -inf gives zeros instead of NaN."""
    m = scores.amax(dim=-1, keepdim=True)
    m = torch.where(torch.isfinite(m), m, torch.zeros_like(m)).detach()
    e = torch.exp(scores - m)
    total = e.sum(dim=-1, keepdim=True)
    return e / torch.where(total > 0, total, torch.ones_like(total))


def attention_weights(q, k, attn_mask=None, is_causal: bool = False, scale: float | None = None) -> torch.Tensor:
    """The attention matrix softmax(q k^T * scale + mask), shape (..., N_q, N_k); rows sum to 1 (or 0).

    Computed in float32 for float16/bfloat16 inputs and returned in the inputs' dtype.
    """
    return _masked_softmax(_scores(q, k, attn_mask, is_causal, scale)).to(q.dtype)


def scaled_dot_product_attention(
    q, k, v, attn_mask=None, is_causal: bool = False, scale: float | None = None
) -> torch.Tensor:
    """softmax(q k^T * scale + mask) v, with the semantics of torch's SDPA; returns (..., N_q, d_v).

    q: (..., N_q, d), k: (..., N_k, d), v: (..., N_k, d_v). scale=None means 1/sqrt(d).
    """
    check_qkv(q, k, v)
    weights = _masked_softmax(_scores(q, k, attn_mask, is_causal, scale))  # float32 for half inputs
    return (weights @ _upcast(v)).to(q.dtype)  # (..., N_q, N_k) @ (..., N_k, d_v) -> (..., N_q, d_v)


# ---------------------------------------------------------------------------------------------------------
# Masks (True = may attend)
# ---------------------------------------------------------------------------------------------------------


def causal_mask(n: int, n_k: int | None = None, device=None) -> torch.Tensor:
    """(n, n_k) bool, True where key j <= query i: each token sees itself and the past."""
    n = check_positive_int(n, "n")
    n_k = n if n_k is None else check_positive_int(n_k, "n_k")
    return torch.ones(n, n_k, dtype=torch.bool, device=device).tril()


def padding_mask(lengths, n: int) -> torch.Tensor:
    """(B, 1, 1, n) bool, True at real tokens (position < length): broadcasts over heads and queries."""
    n = check_positive_int(n, "n")
    lengths = torch.as_tensor(lengths)
    if lengths.ndim == 1 and len(lengths) == 0:  # checked first: an empty list becomes a float tensor
        raise ValueError("lengths must hold at least one sequence length, got an empty sequence")
    if lengths.ndim != 1 or lengths.is_floating_point() or lengths.dtype == torch.bool:
        raise ValueError(f"lengths must be a 1-D sequence of ints, got shape {shape_of(lengths)} ({lengths.dtype})")
    if (lengths < 0).any() or (lengths > n).any():
        raise ValueError(f"lengths must lie in [0, n={n}], got {lengths.tolist()}")
    real = torch.arange(n)[None, :] < lengths[:, None]  # (B, n)
    return real[:, None, None, :]  # (B, 1, 1, n)


def window_mask(n: int, w: int, causal: bool = False) -> torch.Tensor:
    """(n, n) bool, True where |i - j| <= w: each query sees w neighbours on each side (only the past if causal)."""
    n = check_positive_int(n, "n")
    w = check_int(w, "w (neighbours on each side)", minimum=0)
    causal = check_flag(causal, "causal")
    i = torch.arange(n)[:, None]
    j = torch.arange(n)[None, :]
    mask = (i - j).abs() <= w
    return mask & (j <= i) if causal else mask


def graph_mask(adjacency, self_loops: bool = True) -> torch.Tensor:
    """(n, n) bool from an adjacency matrix: node i (query) may attend to node j (key) where adjacency[i, j] != 0.

    With self_loops=True every node also attends to itself. A node with no edge and no self-loop gets a
    fully masked row, hence a zero output.
    """
    if hasattr(adjacency, "toarray"):  # scipy sparse (networkx.to_scipy_sparse_array)
        adjacency = adjacency.toarray()
    adj = torch.as_tensor(np.asarray(adjacency) if not isinstance(adjacency, torch.Tensor) else adjacency)
    if adj.ndim != 2 or adj.shape[0] != adj.shape[1]:
        raise ValueError(f"adjacency must be a square (n, n) matrix, got shape {shape_of(adj)}")
    if adj.shape[0] == 0:
        raise ValueError("adjacency must have at least one node, got shape (0, 0)")
    mask = adj != 0
    if check_flag(self_loops, "self_loops"):
        mask = mask | torch.eye(adj.shape[0], dtype=torch.bool, device=adj.device)
    return mask


# ---------------------------------------------------------------------------------------------------------
# Modules
# ---------------------------------------------------------------------------------------------------------


class SelfAttention(nn.Module):
    """Single-head self-attention: x (B, N, d_in) -> (B, N, d_v). Only W_q, W_k, W_v are learned."""

    def __init__(self, d_in: int, d_k: int | None = None, d_v: int | None = None, bias: bool = False):
        super().__init__()
        d_in = check_positive_int(d_in, "d_in")
        d_k = d_in if d_k is None else check_positive_int(d_k, "d_k")
        d_v = d_in if d_v is None else check_positive_int(d_v, "d_v")
        bias = check_flag(bias, "bias")
        self.W_q = nn.Linear(d_in, d_k, bias=bias)  # weight (d_k, d_in): the lecture's W^q
        self.W_k = nn.Linear(d_in, d_k, bias=bias)
        self.W_v = nn.Linear(d_in, d_v, bias=bias)

    def _qkv(self, x):
        check_tensor(x, "x", min_ndim=2)
        if x.shape[-1] != self.W_q.in_features:
            raise ValueError(f"x's last dimension must be d_in={self.W_q.in_features}, got shape {shape_of(x)}")
        if x.dtype != self.W_q.weight.dtype:
            raise TypeError(f"x has dtype {x.dtype} but the weights are {self.W_q.weight.dtype}: convert one")
        return self.W_q(x), self.W_k(x), self.W_v(x)  # (B, N, d_k), (B, N, d_k), (B, N, d_v)

    def forward(self, x, attn_mask=None, is_causal: bool = False) -> torch.Tensor:
        q, k, v = self._qkv(x)
        return scaled_dot_product_attention(q, k, v, attn_mask=attn_mask, is_causal=is_causal)

    def attention_weights(self, x, attn_mask=None, is_causal: bool = False) -> torch.Tensor:
        """The (B, N, N) attention matrix; row i holds query i's weights over the keys."""
        q, k, _ = self._qkv(x)
        return attention_weights(q, k, attn_mask=attn_mask, is_causal=is_causal)


class MultiHeadSelfAttention(nn.Module):
    """Multi-head self-attention, fused: one projection, split into (B, H, N, d), attend, merge, W^O.

    Its parameters have the layout of a batch_first `torch.nn.MultiheadAttention` (in_proj: (3D, D),
    out_proj: (D, D)), so `from_torch` / `to_torch` copy weights (and dropout) both ways. Masks follow SDPA's
    polarity. dropout: the probability of zeroing an attention weight, in training only (as torch's MHA).
    """

    def __init__(
        self, d_model: int, num_heads: int, bias: bool = True, dropout: float = 0.0, device=None, dtype=None
    ):
        super().__init__()
        d_model = check_positive_int(d_model, "d_model")
        num_heads = check_positive_int(num_heads, "num_heads")
        bias = check_flag(bias, "bias")
        dropout = check_number(dropout, "dropout", positive=False, minimum=0.0)
        if dropout >= 1:
            raise ValueError(f"dropout must lie in [0, 1), got {dropout}")
        if d_model % num_heads:
            raise ValueError(f"d_model={d_model} must be divisible by num_heads={num_heads}")
        self.d_model, self.num_heads, self.d_head = d_model, num_heads, d_model // num_heads
        self.dropout = dropout
        factory = {"device": device, "dtype": dtype}
        self.in_proj = nn.Linear(d_model, 3 * d_model, bias=bias, **factory)  # [W_q; W_k; W_v] stacked: (3D, D)
        self.out_proj = nn.Linear(d_model, d_model, bias=bias, **factory)  # W^O: (D, D)

    def split_heads(self, x) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """x (B, N, D) -> q, k, v, each (B, H, N, d)."""
        check_tensor(x, "x", min_ndim=3)
        if x.ndim != 3 or x.shape[-1] != self.d_model:
            raise ValueError(f"x must have shape (B, N, d_model={self.d_model}), got {shape_of(x)}")
        if x.dtype != self.in_proj.weight.dtype:
            raise TypeError(f"x has dtype {x.dtype} but the weights are {self.in_proj.weight.dtype}: convert one")
        B, N, _ = x.shape
        qkv = self.in_proj(x)  # (B, N, D) @ (D, 3D) -> (B, N, 3D)
        qkv = qkv.view(B, N, 3, self.num_heads, self.d_head)  # (B, N, 3, H, d)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # 3 x (B, H, N, d)
        return q, k, v

    def merge_heads(self, heads) -> torch.Tensor:
        """heads (B, H, N, d) -> (B, N, D), the concatenation [b^{i,1}; ...; b^{i,H}] per token."""
        check_tensor(heads, "heads", min_ndim=4, finite=False)
        if heads.ndim != 4 or heads.shape[1] != self.num_heads or heads.shape[-1] != self.d_head:
            raise ValueError(
                f"heads must have shape (B, H={self.num_heads}, N, d={self.d_head}), got {shape_of(heads)}"
            )
        B, H, N, d = heads.shape
        return heads.transpose(1, 2).reshape(B, N, H * d)  # (B, H, N, d) -> (B, N, H, d) -> (B, N, D)

    def forward(self, x, attn_mask=None, is_causal: bool = False) -> torch.Tensor:
        """x (B, N, D) -> (B, N, D). attn_mask broadcasts to (B, H, N, N); True = may attend."""
        q, k, v = self.split_heads(x)
        if self.training and self.dropout > 0:  # dropout on the attention weights, as torch's MHA
            weights = attention_weights(q, k, attn_mask=attn_mask, is_causal=is_causal)  # (B, H, N, N)
            heads = nn.functional.dropout(weights, p=self.dropout, training=True) @ v  # (B, H, N, N) @ (B, H, N, d)
        else:
            heads = scaled_dot_product_attention(q, k, v, attn_mask=attn_mask, is_causal=is_causal)  # (B, H, N, d)
        return self.out_proj(self.merge_heads(heads))  # (B, N, D) @ (D, D) -> (B, N, D)

    def attention_weights(self, x, attn_mask=None, is_causal: bool = False) -> torch.Tensor:
        """Each head's attention matrix, (B, H, N, N)."""
        q, k, _ = self.split_heads(x)
        return attention_weights(q, k, attn_mask=attn_mask, is_causal=is_causal)

    @classmethod
    def from_torch(cls, mha: nn.MultiheadAttention) -> MultiHeadSelfAttention:
        """A copy of a batch_first `nn.MultiheadAttention`'s weights and dropout, in its dtype and on its device."""
        if not isinstance(mha, nn.MultiheadAttention):
            raise TypeError(f"mha must be a torch.nn.MultiheadAttention, got {type(mha).__name__}")
        if not mha._qkv_same_embed_dim or mha.bias_k is not None or mha.add_zero_attn:
            raise ValueError("from_torch supports MultiheadAttention with kdim = vdim = embed_dim, no bias_k/bias_v")
        if not mha.batch_first:
            raise ValueError("from_torch expects batch_first=True (the course's (B, N, D) layout)")
        bias = mha.in_proj_bias is not None
        w = mha.in_proj_weight
        module = cls(mha.embed_dim, mha.num_heads, bias=bias, dropout=mha.dropout, device=w.device, dtype=w.dtype)
        with torch.no_grad():  # built in the source's dtype: the copy is exact (no float32 round trip)
            module.in_proj.weight.copy_(w)
            module.out_proj.weight.copy_(mha.out_proj.weight)
            if bias:
                module.in_proj.bias.copy_(mha.in_proj_bias)
                module.out_proj.bias.copy_(mha.out_proj.bias)
        return module.train(mha.training)

    def to_torch(self) -> nn.MultiheadAttention:
        """A batch_first `nn.MultiheadAttention` with this module's weights.

        Its boolean masks mean the opposite of ours (True = *not* allowed): pass `~mask` to it.
        """
        bias = self.in_proj.bias is not None
        w = self.in_proj.weight
        factory = {"device": w.device, "dtype": w.dtype}
        mha = nn.MultiheadAttention(
            self.d_model, self.num_heads, dropout=self.dropout, bias=bias, batch_first=True, **factory
        )
        with torch.no_grad():
            mha.in_proj_weight.copy_(w)
            mha.out_proj.weight.copy_(self.out_proj.weight)
            if bias:
                mha.in_proj_bias.copy_(self.in_proj.bias)
                mha.out_proj.bias.copy_(self.out_proj.bias)
        return mha.train(self.training)
