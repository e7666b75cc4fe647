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

from ._validate import check_qkv, check_tensor, shape_of

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


def _scores(q, k, attn_mask, is_causal, scale) -> torch.Tensor:
    """Masked, scaled scores (..., N_q, N_k) with -inf where attention is forbidden."""
    check_qkv(q, k, k)
    if scale is None:
        scale = 1.0 / math.sqrt(q.shape[-1])
    elif isinstance(scale, bool) or not isinstance(scale, (int, float, np.integer, np.floating)):
        raise TypeError(f"scale must be a number or None, got {type(scale).__name__}")
    elif not math.isfinite(scale):
        raise ValueError(f"scale must be a finite number or None, got {scale!r}")
    else:
        scale = float(scale)
    n_q, n_k = q.shape[-2], k.shape[-2]
    scores = (q @ k.transpose(-2, -1)) * scale  # (..., N_q, d) @ (..., d, N_k) -> (..., N_q, N_k)
    if is_causal:
        if attn_mask is not None:
            raise ValueError("pass either attn_mask or is_causal=True, not both (as torch's SDPA)")
        attn_mask = causal_mask(n_q, n_k, device=q.device)  # top-left aligned, as torch's SDPA
    if attn_mask is not None:
        if not isinstance(attn_mask, torch.Tensor):
            raise TypeError(f"attn_mask must be a torch.Tensor or None, got {type(attn_mask).__name__}")
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
        elif attn_mask.is_floating_point():
            scores = scores + attn_mask.to(scores.dtype)  # a float mask is added (it may hold -inf)
        else:
            raise TypeError(f"attn_mask must be bool (True = may attend) or float (added), got {attn_mask.dtype}")
    return scores


def _masked_softmax(scores: torch.Tensor) -> torch.Tensor:
    """Softmax over the last axis; a row that is entirely -inf gives zeros instead of NaN."""
    m = scores.amax(dim=-1, keepdim=True)
    m = torch.where(torch.isfinite(m), m, torch.zeros_like(m)).detach()
    e = torch.exp(scores - m)
    total = e.sum(dim=-1, keepdim=True)
    return e / torch.where(total > 0, total, torch.ones_like(total))


def attention_weights(q, k, attn_mask=None, is_causal: bool = False, scale: float | None = None) -> torch.Tensor:
    """The attention matrix softmax(q k^T * scale + mask), shape (..., N_q, N_k); rows sum to 1 (or 0)."""
    return _masked_softmax(_scores(q, k, attn_mask, is_causal, scale))


def scaled_dot_product_attention(
    q, k, v, attn_mask=None, is_causal: bool = False, scale: float | None = None
) -> torch.Tensor:
    """softmax(q k^T * scale + mask) v, with the semantics of torch's SDPA; returns (..., N_q, d_v).

    q: (..., N_q, d), k: (..., N_k, d), v: (..., N_k, d_v). scale=None means 1/sqrt(d).
    """
    check_qkv(q, k, v)
    weights = attention_weights(q, k, attn_mask=attn_mask, is_causal=is_causal, scale=scale)
    return weights @ v  # (..., N_q, N_k) @ (..., N_k, d_v) -> (..., N_q, d_v)


# ---------------------------------------------------------------------------------------------------------
# Masks (True = may attend)
# ---------------------------------------------------------------------------------------------------------


def _check_size(n, name: str) -> int:
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n <= 0:
        raise ValueError(f"{name} must be a positive int, got {n!r}")
    return int(n)


def causal_mask(n: int, n_k: int | None = None, device=None) -> torch.Tensor:
    """(n, n_k) bool, True where key j <= query i: each token sees itself and the past."""
    n = _check_size(n, "n")
    n_k = n if n_k is None else _check_size(n_k, "n_k")
    return torch.ones(n, n_k, dtype=torch.bool, device=device).tril()


def padding_mask(lengths, n: int) -> torch.Tensor:
    """(B, 1, 1, n) bool, True at real tokens (position < length): broadcasts over heads and queries."""
    n = _check_size(n, "n")
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
    n = _check_size(n, "n")
    if isinstance(w, bool) or not isinstance(w, (int, np.integer)) or w < 0:
        raise ValueError(f"w must be a non-negative int (neighbours on each side), got {w!r}")
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
    if self_loops:
        mask = mask | torch.eye(adj.shape[0], dtype=torch.bool, device=adj.device)
    return mask


# ---------------------------------------------------------------------------------------------------------
# Modules
# ---------------------------------------------------------------------------------------------------------


class SelfAttention(nn.Module):
    """Single-head self-attention: x (B, N, d_in) -> (B, N, d_v). Only W_q, W_k, W_v are learned."""

    def __init__(self, d_in: int, d_k: int | None = None, d_v: int | None = None, bias: bool = False):
        super().__init__()
        d_in = _check_size(d_in, "d_in")
        d_k = d_in if d_k is None else _check_size(d_k, "d_k")
        d_v = d_in if d_v is None else _check_size(d_v, "d_v")
        self.W_q = nn.Linear(d_in, d_k, bias=bias)  # weight (d_k, d_in): the lecture's W^q
        self.W_k = nn.Linear(d_in, d_k, bias=bias)
        self.W_v = nn.Linear(d_in, d_v, bias=bias)

    def _qkv(self, x):
        check_tensor(x, "x", min_ndim=2)
        if x.shape[-1] != self.W_q.in_features:
            raise ValueError(f"x's last dimension must be d_in={self.W_q.in_features}, got shape {shape_of(x)}")
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
    out_proj: (D, D)), so `from_torch` / `to_torch` copy weights both ways. Masks follow SDPA's polarity.
    """

    def __init__(self, d_model: int, num_heads: int, bias: bool = True):
        super().__init__()
        d_model = _check_size(d_model, "d_model")
        num_heads = _check_size(num_heads, "num_heads")
        if d_model % num_heads:
            raise ValueError(f"d_model={d_model} must be divisible by num_heads={num_heads}")
        self.d_model, self.num_heads, self.d_head = d_model, num_heads, d_model // num_heads
        self.in_proj = nn.Linear(d_model, 3 * d_model, bias=bias)  # [W_q; W_k; W_v] stacked: (3D, D)
        self.out_proj = nn.Linear(d_model, d_model, bias=bias)  # W^O: (D, D)

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
        heads = scaled_dot_product_attention(q, k, v, attn_mask=attn_mask, is_causal=is_causal)  # (B, H, N, d)
        return self.out_proj(self.merge_heads(heads))  # (B, N, D) @ (D, D) -> (B, N, D)

    def attention_weights(self, x, attn_mask=None, is_causal: bool = False) -> torch.Tensor:
        """Each head's attention matrix, (B, H, N, N)."""
        q, k, _ = self.split_heads(x)
        return attention_weights(q, k, attn_mask=attn_mask, is_causal=is_causal)

    @classmethod
    def from_torch(cls, mha: nn.MultiheadAttention) -> MultiHeadSelfAttention:
        """A copy of a batch_first `nn.MultiheadAttention`'s weights (same q/k/v width, no bias_k/bias_v)."""
        if not isinstance(mha, nn.MultiheadAttention):
            raise TypeError(f"mha must be a torch.nn.MultiheadAttention, got {type(mha).__name__}")
        if not mha._qkv_same_embed_dim or mha.bias_k is not None or mha.add_zero_attn:
            raise ValueError("from_torch supports MultiheadAttention with kdim = vdim = embed_dim, no bias_k/bias_v")
        if not mha.batch_first:
            raise ValueError("from_torch expects batch_first=True (the course's (B, N, D) layout)")
        bias = mha.in_proj_bias is not None
        module = cls(mha.embed_dim, mha.num_heads, bias=bias)
        with torch.no_grad():
            module.in_proj.weight.copy_(mha.in_proj_weight)
            module.out_proj.weight.copy_(mha.out_proj.weight)
            if bias:
                module.in_proj.bias.copy_(mha.in_proj_bias)
                module.out_proj.bias.copy_(mha.out_proj.bias)
        return module.to(mha.in_proj_weight.device, mha.in_proj_weight.dtype)

    def to_torch(self) -> nn.MultiheadAttention:
        """A batch_first `nn.MultiheadAttention` with this module's weights.

        Its boolean masks mean the opposite of ours (True = *not* allowed): pass `~mask` to it.
        """
        bias = self.in_proj.bias is not None
        w = self.in_proj.weight
        mha = nn.MultiheadAttention(self.d_model, self.num_heads, bias=bias, batch_first=True)
        mha = mha.to(w.device, w.dtype)
        with torch.no_grad():
            mha.in_proj_weight.copy_(w)
            mha.out_proj.weight.copy_(self.out_proj.weight)
            if bias:
                mha.in_proj_bias.copy_(self.in_proj.bias)
                mha.out_proj.bias.copy_(self.out_proj.bias)
        return mha
