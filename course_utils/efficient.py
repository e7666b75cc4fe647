"""Efficient self-attention (lessons 09 and 11): variants that trade exactness for time and memory.

Row convention, as `course_utils.attention`: q (..., N_q, d), k (..., N_k, d), v (..., N_k, d_v), any
leading dimensions (usually (B, H)). Exact attention builds an (N_q, N_k) score matrix: O(N^2) time and
memory. Each variant here avoids it in its own way:

- **local / truncated** (`local_attention`): each query sees only the keys within `window` positions;
  computed in blocks of `window` queries against three blocks of keys, O(N w) memory. Equals exact
  attention when window >= N - 1.
- **block-sparse** (`block_sparse_attention`): keys in the query's block and its two neighbour blocks,
  plus a few global tokens that see and are seen by every token (Longformer / BigBird without random
  links). O(N (3 b + g)) memory. Equals exact attention when one block covers the sequence.
- **low-rank** (`low_rank_attention`): Linformer projects keys and values along N with E, F (r, N):
  softmax(q (E k)^T) (F v), O(N r). Equals exact attention with E = F = identity (r = N).
- **kernel / linear** (`linear_attention`, `linear_attention_recurrent`): softmax(q k^T) replaced by
  phi(q) phi(k)^T, so (phi(q) phi(k)^T) v = phi(q) (phi(k)^T v): O(N d d_v), never N x N. phi is elu + 1
  ("Transformers are RNNs") or Performer's positive random features, whose inner product approximates
  exp(q k^T / sqrt(d)). Causal linear attention is an RNN with a (d, d_v) state.
- **exact** (`exact_attention`): softmax attention itself, with its N x N scores; **flash**
  (`flash_attention`, through `course_utils.gpu.attention`) computes the same numbers blockwise without
  storing them (lesson 07).

`Variant` names one variant and its settings, `attend` runs it, `effective_weights` builds the dense matrix it
implies and `attention_pattern` the (N, N) picture; `EfficientSelfAttention` wraps any variant as a multi-head
module for `course_utils.models`; `measure` counts matmul FLOPs and the largest tensor as torch runs;
`scaling_benchmark` measures time and memory against N (`python -m course_utils.efficient` prints it);
`train_variants` trains one tiny model per variant on a task.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

from ._validate import (
    check_flag,
    check_generator,
    check_int,
    check_qkv,
    check_scale,
    check_tensor,
    shape_of,
)
from .attention import HALF_DTYPES, MultiHeadSelfAttention, scaled_dot_product_attention, window_mask

__all__ = [
    "FEATURE_MAPS",
    "elu_features",
    "performer_projection",
    "performer_features",
    "linear_attention",
    "linear_attention_recurrent",
    "local_attention",
    "block_sparse_mask",
    "block_sparse_attention",
    "low_rank_projection",
    "low_rank_attention",
    "exact_attention",
    "flash_attention",
    "VARIANTS",
    "Variant",
    "attend",
    "effective_weights",
    "attention_pattern",
    "EfficientSelfAttention",
    "make_attention",
    "measure",
    "attention_bytes",
    "ScalingResult",
    "scaling_benchmark",
    "train_variants",
]

FEATURE_MAPS = ("elu", "performer")


# ---------------------------------------------------------------------------------------------------------
# Input checks
# ---------------------------------------------------------------------------------------------------------


def _check_qkv(q, k, v, same_length: bool = False, causal=False) -> None:
    """q (..., N_q, d), k (..., N_k, d), v (..., N_k, d_v): same dtype and device, broadcastable leading dims."""
    check_qkv(q, k, v)
    check_flag(causal, "causal")
    if same_length and q.shape[-2] != k.shape[-2]:
        raise ValueError(
            f"q and k must have the same length N (self-attention) here: got q {shape_of(q)}, k {shape_of(k)}"
        )


def _safe_divide(numerator: torch.Tensor, denominator: torch.Tensor) -> torch.Tensor:
    """numerator / denominator, with 0 where the denominator is 0 (a query that sees nothing gives zeros)."""
    return numerator / torch.where(denominator > 0, denominator, torch.ones_like(denominator))


# ---------------------------------------------------------------------------------------------------------
# Kernel / linear attention
# ---------------------------------------------------------------------------------------------------------


def elu_features(x: torch.Tensor) -> torch.Tensor:
    """phi(x) = elu(x) + 1, positive everywhere ("Transformers are RNNs"); shape unchanged (..., N, d)."""
    return nn.functional.elu(x) + 1.0


def performer_projection(
    d: int,
    num_features: int | None = None,
    seed: int | None = 0,
    generator: torch.Generator | None = None,
    orthogonal: bool = True,
    dtype: torch.dtype = torch.float32,
    device=None,
) -> torch.Tensor:
    """Performer's random projection W, shape (m, d), rows w_i ~ N(0, I_d); fixed by `seed` or `generator`.

    orthogonal=True draws the rows in orthogonal blocks of d (lower variance), each row rescaled to the norm
    of a Gaussian vector so that the marginals stay N(0, I_d). num_features m defaults to 4 d.
    """
    d = check_int(d, "d")
    m = 4 * d if num_features is None else check_int(num_features, "num_features")
    if generator is None:
        if seed is None:
            raise ValueError("pass a seed or a generator: the random projection must be reproducible")
        generator = torch.Generator().manual_seed(check_int(seed, "seed", minimum=0))
    else:
        check_generator(generator)
    if not orthogonal:
        w = torch.randn(m, d, generator=generator, dtype=torch.float64)
    else:
        blocks = []
        for _ in range(-(-m // d)):
            gaussian = torch.randn(d, d, generator=generator, dtype=torch.float64)
            q_mat, r_mat = torch.linalg.qr(gaussian)  # (d, d) with orthonormal columns
            q_mat = q_mat * torch.sign(torch.diagonal(r_mat))  # the sign fix that makes Q uniformly random
            blocks.append(q_mat.T)  # rows orthonormal
        w = torch.cat(blocks)[:m]  # (m, d)
        norms = torch.randn(m, d, generator=generator, dtype=torch.float64).norm(dim=1, keepdim=True)  # chi(d)
        w = w * norms
    return w.to(dtype=dtype, device=device)


def _performer_logits(x: torch.Tensor, projection: torch.Tensor, scale: float) -> torch.Tensor:
    """log of the unnormalised positive random features: w_i . x' - |x'|^2 / 2 with x' = x sqrt(scale)."""
    x = x * math.sqrt(scale)  # so that phi(q) . phi(k) estimates exp(scale q . k)
    return x @ projection.to(x.dtype).T - 0.5 * (x * x).sum(-1, keepdim=True)  # (..., N, d) @ (d, m) -> (..., N, m)


def performer_features(
    x: torch.Tensor, projection: torch.Tensor, is_query: bool, scale: float | None = None
) -> torch.Tensor:
    """Performer's positive random features (..., N, d) -> (..., N, m): E[phi(q) . phi(k)] = exp(scale q . k).

    Each feature is exp(w_i . x' - |x'|^2/2) / sqrt(m), x' = x sqrt(scale), scaled down by a constant that
    cancels in attention's ratio: per query for queries, one per sequence (over all keys) for keys.
    """
    check_tensor(x, "x")
    _check_projection(projection, x.shape[-1])
    logits = _performer_logits(x, projection, check_scale(scale, x.shape[-1]))
    dims = (-1,) if is_query else (-2, -1)
    shift = logits.amax(dim=dims, keepdim=True).detach()  # a constant per query / per sequence: it cancels
    return torch.exp(logits - shift) / math.sqrt(projection.shape[0])


def _check_feature_map(feature_map) -> str:
    if feature_map not in FEATURE_MAPS:
        raise ValueError(f"feature_map must be one of {FEATURE_MAPS}, got {feature_map!r}")
    return feature_map


def _projection_for(q: torch.Tensor, feature_map: str, projection, scale=None) -> torch.Tensor | None:
    if feature_map != "performer":
        if projection is not None or scale is not None:
            raise ValueError("projection and scale are only used with feature_map='performer' (elu + 1 has neither)")
        return None
    if projection is None:
        return performer_projection(q.shape[-1], dtype=q.dtype, device=q.device)  # seed 0: reproducible
    _check_projection(projection, q.shape[-1])
    return projection.to(dtype=q.dtype, device=q.device)


def _check_projection(projection, d: int) -> None:
    """Performer's W: a finite floating-point tensor of shape (m, d)."""
    check_tensor(projection, "projection", min_ndim=2)
    if projection.ndim != 2 or projection.shape[1] != d:
        raise ValueError(f"projection must have shape (m, d={d}), got {shape_of(projection)}")


def linear_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    causal: bool = False,
    feature_map: str = "elu",
    projection: torch.Tensor | None = None,
    scale: float | None = None,
) -> torch.Tensor:
    """Linear attention, parallel form: out_i = phi(q_i) S / phi(q_i) . z; returns (..., N_q, d_v).

    Not causal: S = phi(k)^T v (..., m, d_v), z = sum_j phi(k_j) (..., m), the same for every query.
    Causal: S_i and z_i sum only over j <= i (cumulative sums; exact, no N x N matrix).
    feature_map "elu" (elu + 1) or "performer" (random features from `projection`, shape (m, d); default
    `performer_projection(d)` with seed 0; `scale` as in softmax attention, None = 1/sqrt(d)).
    """
    _check_qkv(q, k, v, same_length=causal, causal=causal)
    feature_map = _check_feature_map(feature_map)
    projection = _projection_for(q, feature_map, projection, scale)
    if feature_map == "elu":
        phi_q, phi_k = elu_features(q), elu_features(k)  # (..., N, m) with m = d
    else:
        assert projection is not None  # _projection_for gives one for "performer"
        phi_q = performer_features(q, projection, is_query=True, scale=scale)  # (..., N, m)
        phi_k = performer_features(k, projection, is_query=False, scale=scale)
    if not causal:
        state = phi_k.transpose(-2, -1) @ v  # (..., m, N) @ (..., N, d_v) -> (..., m, d_v)
        z = phi_k.sum(dim=-2)  # (..., m)
        numerator = phi_q @ state  # (..., N, m) @ (..., m, d_v) -> (..., N, d_v)
        denominator = (phi_q * z.unsqueeze(-2)).sum(-1, keepdim=True)  # (..., N, 1)
        return _safe_divide(numerator, denominator)
    states = torch.cumsum(phi_k.unsqueeze(-1) * v.unsqueeze(-2), dim=-3)  # (..., N, m, 1)*(..., N, 1, d_v) summed
    z = torch.cumsum(phi_k, dim=-2)  # (..., N, m)
    numerator = (phi_q.unsqueeze(-2) @ states).squeeze(-2)  # (..., N, 1, m) @ (..., N, m, d_v) -> (..., N, d_v)
    denominator = (phi_q * z).sum(-1, keepdim=True)  # (..., N, 1)
    return _safe_divide(numerator, denominator)


def linear_attention_recurrent(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    feature_map: str = "elu",
    projection: torch.Tensor | None = None,
    scale: float | None = None,
) -> torch.Tensor:
    """Causal linear attention as an RNN, one token at a time ("Transformers are RNNs"); returns (..., N, d_v).

    State S = sum_{j<=i} phi(k_j) v_j^T (..., m, d_v) and z = sum_{j<=i} phi(k_j) (..., m), updated by
    S += phi(k_i) v_i^T, z += phi(k_i), then out_i = phi(q_i) S / phi(q_i) . z. Equals
    `linear_attention(..., causal=True)`. With Performer features the keys' scale-down constant is a running
    maximum, and the state is rescaled when it grows (as online softmax does), so no future key is read.
    """
    _check_qkv(q, k, v, same_length=True)
    feature_map = _check_feature_map(feature_map)
    projection = _projection_for(q, feature_map, projection, scale)
    lead = torch.broadcast_shapes(q.shape[:-2], k.shape[:-2], v.shape[:-2])
    n, d_v = q.shape[-2], v.shape[-1]
    if feature_map == "elu":
        m = q.shape[-1]
    else:
        assert projection is not None  # _projection_for gives one for "performer"
        m = projection.shape[0]
    state = q.new_zeros(*lead, m, d_v)  # S: (..., m, d_v)
    z = q.new_zeros(*lead, m)  # (..., m)
    shift = q.new_full((*lead, 1), float("-inf"))  # running max of the keys' log-features (performer)
    s = check_scale(scale, q.shape[-1])
    if projection is not None:  # performer
        phi_q_all = performer_features(q, projection, is_query=True, scale=s)  # per-query: uses only q_i
    outputs = []
    for i in range(n):
        q_i, k_i, v_i = q[..., i, :], k[..., i, :], v[..., i, :]  # (..., d), (..., d), (..., d_v)
        if projection is None:  # elu + 1
            phi_q, phi_k = elu_features(q_i), elu_features(k_i)  # (..., m)
        else:
            phi_q = phi_q_all[..., i, :]
            logits = _performer_logits(k_i.unsqueeze(-2), projection, s).squeeze(-2)  # (..., m)
            new_shift = torch.maximum(shift, logits.amax(-1, keepdim=True)).detach()  # (..., 1)
            rescale = torch.exp(shift - new_shift)  # exp(-inf) = 0 on the first step, when the state is empty
            state = state * rescale.unsqueeze(-1)
            z = z * rescale
            shift = new_shift
            phi_k = torch.exp(logits - shift) / math.sqrt(m)  # (..., m)
        state = state + phi_k.unsqueeze(-1) * v_i.unsqueeze(-2)  # (..., m, 1) * (..., 1, d_v) -> (..., m, d_v)
        z = z + phi_k
        numerator = (phi_q.unsqueeze(-2) @ state).squeeze(-2)  # (..., 1, m) @ (..., m, d_v) -> (..., d_v)
        denominator = (phi_q * z).sum(-1, keepdim=True)  # (..., 1)
        outputs.append(_safe_divide(numerator, denominator))
    return torch.stack(outputs, dim=-2)  # (..., N, d_v)


# ---------------------------------------------------------------------------------------------------------
# Softmax variants: local, block-sparse, low-rank, exact, flash
# ---------------------------------------------------------------------------------------------------------


def _softmax_where(scores: torch.Tensor, allowed: torch.Tensor) -> torch.Tensor:
    """Softmax over the last axis of `scores` where `allowed` (bool, broadcastable); a row with none gives 0."""
    scores = scores.masked_fill(~allowed, float("-inf"))
    m = scores.amax(dim=-1, keepdim=True)
    m = torch.where(torch.isfinite(m), m, torch.zeros_like(m)).detach()
    e = torch.exp(scores - m)
    return _safe_divide(e, e.sum(dim=-1, keepdim=True))


def _neighbour_blocks(q, k, v, b: int):
    """Queries in blocks of b and, per block, the keys and values of the previous, own and next block.

    Returns q_blocks (..., nb, b, d), k_near (..., nb, 3b, d), v_near (..., nb, 3b, d_v), query_pos (nb, b)
    and key_pos (nb, 3b), the positions in the sequence (padding lies outside [0, N)).
    """
    n = q.shape[-2]
    nb = -(-n // b)  # number of blocks
    pad = nb * b - n
    q_blocks = nn.functional.pad(q, (0, 0, 0, pad)).unflatten(-2, (nb, b))  # (..., N, d) -> (..., nb, b, d)
    k_pad = nn.functional.pad(k, (0, 0, b, pad + b)).unflatten(-2, (nb + 2, b))  # (..., nb + 2, b, d)
    v_pad = nn.functional.pad(v, (0, 0, b, pad + b)).unflatten(-2, (nb + 2, b))  # (..., nb + 2, b, d_v)
    k_near = torch.cat(
        [k_pad[..., :-2, :, :], k_pad[..., 1:-1, :, :], k_pad[..., 2:, :, :]], dim=-2
    )  # (..., nb, 3b, d)
    v_near = torch.cat([v_pad[..., :-2, :, :], v_pad[..., 1:-1, :, :], v_pad[..., 2:, :, :]], dim=-2)
    starts = torch.arange(nb, device=q.device)[:, None] * b  # (nb, 1)
    query_pos = starts + torch.arange(b, device=q.device)  # (nb, b)
    key_pos = starts - b + torch.arange(3 * b, device=q.device)  # (nb, 3b)
    return q_blocks, k_near, v_near, query_pos, key_pos


def local_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    window: int,
    causal: bool = False,
    scale: float | None = None,
) -> torch.Tensor:
    """Sliding-window (truncated) attention: query i sees keys j with |i - j| <= window; returns (..., N, d_v).

    Computed in blocks of `window` queries against their three neighbouring blocks of keys (which hold every
    key within the window), O(N window) memory, never N x N. Equals softmax attention masked with
    `attention.window_mask(N, window, causal)`, and exact attention when window >= N - 1.
    """
    _check_qkv(q, k, v, same_length=True, causal=causal)
    window = check_int(window, "window", minimum=0)
    scale = check_scale(scale, q.shape[-1])
    if q.dtype in HALF_DTYPES:  # scores and softmax in float32 (q k^T can overflow fp16), output cast back
        return local_attention(q.float(), k.float(), v.float(), window, causal, scale).to(q.dtype)
    n = q.shape[-2]
    b = max(window, 1)  # blocks at least as long as the window
    if 3 * b >= n:  # three blocks would cover the sequence: the masked dense form is cheaper, same numbers
        allowed = window_mask(n, min(window, n - 1), causal=causal).to(q.device)  # (N, N)
        scores = q @ k.transpose(-2, -1) * scale  # (..., N, d) @ (..., d, N) -> (..., N, N)
        return _softmax_where(scores, allowed) @ v  # (..., N, N) @ (..., N, d_v) -> (..., N, d_v)
    q_blocks, k_near, v_near, query_pos, key_pos = _neighbour_blocks(q, k, v, b)
    offset = query_pos[:, :, None] - key_pos[:, None, :]  # (nb, b, 3b): i - j
    allowed = (offset.abs() <= window) & (key_pos[:, None, :] >= 0) & (key_pos[:, None, :] < n)
    if causal:
        allowed = allowed & (offset >= 0)
    scores = q_blocks @ k_near.transpose(-2, -1) * scale  # (..., nb, b, d) @ (..., nb, d, 3b) -> (..., nb, b, 3b)
    out = _softmax_where(scores, allowed) @ v_near  # (..., nb, b, 3b) @ (..., nb, 3b, d_v) -> (..., nb, b, d_v)
    return out.flatten(-3, -2)[..., :n, :]  # (..., nb * b, d_v) -> (..., N, d_v)


def block_sparse_mask(n: int, block: int, n_global: int = 0, causal: bool = False) -> torch.Tensor:
    """(n, n) bool, True = may attend: keys in the query's block of `block` tokens or a neighbour block, plus
    the first `n_global` tokens, which attend to and are attended by every token (only the past if causal)."""
    n = check_int(n, "n")
    block = check_int(block, "block")
    n_global = check_int(n_global, "n_global", minimum=0)
    causal = check_flag(causal, "causal")
    if n_global > n:
        raise ValueError(f"n_global must be at most n={n}, got {n_global}")
    i = torch.arange(n)[:, None]
    j = torch.arange(n)[None, :]
    mask = ((i // block) - (j // block)).abs() <= 1
    mask = mask | (i < n_global) | (j < n_global)
    return mask & (j <= i) if causal else mask


def block_sparse_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    block: int,
    n_global: int = 0,
    causal: bool = False,
    scale: float | None = None,
) -> torch.Tensor:
    """Block-sparse attention with the pattern of `block_sparse_mask`, computed block by block; (..., N, d_v).

    Each block of `block` queries scores only its 3 blocks of keys plus the global ones: O(N (3 block +
    n_global)) memory; the n_global global queries attend to all N keys. Equals exact attention when
    block >= N (one block holds the sequence).
    """
    _check_qkv(q, k, v, same_length=True, causal=causal)
    block = check_int(block, "block")
    n_global = check_int(n_global, "n_global", minimum=0)
    scale = check_scale(scale, q.shape[-1])
    if q.dtype in HALF_DTYPES:  # scores and softmax in float32 (q k^T can overflow fp16), output cast back
        return block_sparse_attention(q.float(), k.float(), v.float(), block, n_global, causal, scale).to(q.dtype)
    n = q.shape[-2]
    if n_global > n:
        raise ValueError(f"n_global must be at most N={n} (q {shape_of(q)}), got {n_global}")
    q_blocks, k_near, v_near, query_pos, key_pos = _neighbour_blocks(q, k, v, min(block, n))
    nb = q_blocks.shape[-3]
    key_ok = (key_pos >= n_global) & (key_pos < n)  # (nb, 3b); global keys come once, below
    if n_global:
        k_glob = k[..., :n_global, :].unsqueeze(-3).expand(*k.shape[:-2], nb, n_global, k.shape[-1])
        v_glob = v[..., :n_global, :].unsqueeze(-3).expand(*v.shape[:-2], nb, n_global, v.shape[-1])
        k_near = torch.cat([k_near, k_glob], dim=-2)  # (..., nb, 3b + g, d)
        v_near = torch.cat([v_near, v_glob], dim=-2)  # (..., nb, 3b + g, d_v)
        glob_pos = torch.arange(n_global, device=q.device).expand(nb, n_global)  # (nb, g)
        key_pos = torch.cat([key_pos, glob_pos], dim=-1)  # (nb, K) with K = 3b + g
        key_ok = torch.cat([key_ok, torch.ones_like(glob_pos, dtype=torch.bool)], dim=-1)
    allowed = key_ok[:, None, :]  # (nb, 1, K)
    if causal:
        allowed = allowed & (key_pos[:, None, :] <= query_pos[:, :, None])  # (nb, b, K)
    scores = q_blocks @ k_near.transpose(-2, -1) * scale  # (..., nb, b, d) @ (..., nb, d, K) -> (..., nb, b, K)
    out = _softmax_where(scores, allowed) @ v_near  # (..., nb, b, K) @ (..., nb, K, d_v) -> (..., nb, b, d_v)
    out = out.flatten(-3, -2)[..., :n, :]  # (..., nb * b, d_v) -> (..., N, d_v)
    if n_global:  # global queries see every key (the past only, if causal)
        mask = torch.ones(n_global, n, dtype=torch.bool, device=q.device)
        if causal:
            mask = mask.tril()
        scores_g = q[..., :n_global, :] @ k.transpose(-2, -1) * scale  # (..., g, d) @ (..., d, N) -> (..., g, N)
        out_g = _softmax_where(scores_g, mask) @ v  # (..., g, N) @ (..., N, d_v) -> (..., g, d_v)
        rest = out[..., n_global:, :]
        out = torch.cat([out_g, rest.expand(*out_g.shape[:-2], *rest.shape[-2:])], dim=-2)  # (..., N, d_v)
    return out


def low_rank_projection(
    n: int, rank: int, seed: int | None = 0, generator: torch.Generator | None = None, dtype=torch.float32
) -> torch.Tensor:
    """A fixed random Linformer projection E (rank, n), entries N(0, 1/n), reproducible by seed or generator."""
    n = check_int(n, "n")
    rank = check_int(rank, "rank")
    if generator is None:
        if seed is None:
            raise ValueError("pass a seed or a generator: the random projection must be reproducible")
        generator = torch.Generator().manual_seed(check_int(seed, "seed", minimum=0))
    return (torch.randn(rank, n, generator=generator, dtype=torch.float64) / math.sqrt(n)).to(dtype)


def low_rank_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    E: torch.Tensor,
    F: torch.Tensor | None = None,
    scale: float | None = None,
) -> torch.Tensor:
    """Linformer: softmax(q (E k)^T scale) (F v), keys and values projected along N; returns (..., N_q, d_v).

    E, F: (r, N_k) (F defaults to E). Scores are (N_q, r), not (N_q, N_k): O(N r). Equals exact attention
    when E = F = identity (r = N_k). Not causal: each projected key mixes all positions.
    """
    _check_qkv(q, k, v)
    F = E if F is None else F
    n_k = k.shape[-2]
    for name, P in (("E", E), ("F", F)):
        if not isinstance(P, torch.Tensor):
            raise TypeError(f"{name} must be a torch.Tensor of shape (r, N_k={n_k}), got {type(P).__name__}")
        if P.ndim < 2 or P.shape[-1] != n_k:
            raise ValueError(f"{name} must have shape (r, N_k={n_k}) (k {shape_of(k)}), got {shape_of(P)}")
        check_tensor(P, name)  # floating point and finite
    if E.shape[-2] != F.shape[-2]:
        raise ValueError(f"E and F must have the same rank r: got E {shape_of(E)}, F {shape_of(F)}")
    k_low = E.to(k.dtype) @ k  # (r, N) @ (..., N, d) -> (..., r, d)
    v_low = F.to(v.dtype) @ v  # (r, N) @ (..., N, d_v) -> (..., r, d_v)
    return scaled_dot_product_attention(q, k_low, v_low, scale=check_scale(scale, q.shape[-1]))


def exact_attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, causal: bool = False, scale: float | None = None
) -> torch.Tensor:
    """Softmax attention that builds the (..., N_q, N_k) score matrix (course_utils.attention); (..., N_q, d_v)."""
    _check_qkv(q, k, v, same_length=causal, causal=causal)
    return scaled_dot_product_attention(q, k, v, is_causal=causal, scale=scale)


def flash_attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, causal: bool = False, scale: float | None = None
) -> torch.Tensor:
    """Exact attention without an N x N matrix, through `course_utils.gpu.attention`; returns (..., N_q, d_v).

    On a CUDA GPU that is the course's Triton flash kernel (backend "auto"); on a CPU it asks for torch's SDPA
    (backend "sdpa"), whose CPU kernel is itself a blockwise flash attention. Same numbers as exact attention.
    """
    _check_qkv(q, k, v, same_length=causal, causal=causal)
    from . import gpu  # imported here: `import course_utils` must not import the Triton module

    lead = torch.broadcast_shapes(q.shape[:-2], k.shape[:-2], v.shape[:-2])
    q4, k4, v4 = (t.expand(*lead, *t.shape[-2:]).reshape(-1, 1, *t.shape[-2:]) for t in (q, k, v))  # (B, 1, N, d)
    backend = "auto" if q.device.type == "cuda" else "sdpa"
    out = gpu.attention(q4, k4, v4, causal=causal, backend=backend, scale=scale)  # (B, 1, N_q, d_v)
    return out.reshape(*lead, *out.shape[-2:])  # (..., N_q, d_v)


# ---------------------------------------------------------------------------------------------------------
# One name per variant: settings, dispatch, effective weights, pictures
# ---------------------------------------------------------------------------------------------------------

VARIANTS = ("exact", "flash", "local", "block_sparse", "low_rank", "linear", "performer")


@dataclass(frozen=True)
class Variant:
    kind: str = "exact"  # one of VARIANTS
    window: int = 4  # local: neighbours on each side
    block: int = 8  # block_sparse: tokens per block
    n_global: int = 1  # block_sparse: leading tokens that see and are seen by all
    rank: int = 8  # low_rank: r, the projected length of keys and values
    learn_projection: bool = True  # low_rank: E, F learned (Linformer) or fixed random
    num_features: int | None = None  # performer: random features m (None: 4 d)
    seed: int = 0  # fixes the random projections (low_rank when not learned, performer)

    def __post_init__(self):
        if self.kind not in VARIANTS:
            raise ValueError(f"kind must be one of {VARIANTS}, got {self.kind!r}")
        check_int(self.window, "window", minimum=0)
        check_int(self.block, "block")
        check_int(self.n_global, "n_global", minimum=0)
        check_int(self.rank, "rank")
        if self.num_features is not None:
            check_int(self.num_features, "num_features")
        check_int(self.seed, "seed", minimum=0)

    @property
    def label(self) -> str:
        """A short name for charts, e.g. 'local w=4'."""
        return {
            "exact": "exact",
            "flash": "flash (exact)",
            "local": f"local w={self.window}",
            "block_sparse": f"block b={self.block} g={self.n_global}",
            "low_rank": f"low-rank r={self.rank}",
            "linear": "linear (elu+1)",
            "performer": f"performer m={self.num_features or '4d'}",
        }[self.kind]


def _as_variant(variant) -> Variant:
    if isinstance(variant, str):
        return Variant(kind=variant)
    if not isinstance(variant, Variant):
        raise TypeError(f"variant must be a Variant or one of {VARIANTS}, got {type(variant).__name__}")
    return variant


def attend(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    variant: Variant | str,
    causal: bool = False,
    E: torch.Tensor | None = None,
    F: torch.Tensor | None = None,
    projection: torch.Tensor | None = None,
) -> torch.Tensor:
    """Run one variant on (..., N, d) inputs; returns (..., N, d_v). low_rank needs E (r, N) (F defaults to E)."""
    variant = _as_variant(variant)
    kind = variant.kind
    if kind == "exact":
        return exact_attention(q, k, v, causal=causal)
    if kind == "flash":
        return flash_attention(q, k, v, causal=causal)
    if kind == "local":
        return local_attention(q, k, v, variant.window, causal=causal)
    if kind == "block_sparse":
        return block_sparse_attention(q, k, v, variant.block, min(variant.n_global, q.shape[-2]), causal=causal)
    if kind == "low_rank":
        if causal:
            raise ValueError("low_rank (Linformer) attention cannot be causal: each projected key mixes all positions")
        if E is None:
            E = low_rank_projection(k.shape[-2], variant.rank, seed=variant.seed, dtype=k.dtype)
        return low_rank_attention(q, k, v, E, F)
    if kind == "performer" and projection is None:
        projection = performer_projection(q.shape[-1], variant.num_features, seed=variant.seed, dtype=q.dtype)
    return linear_attention(
        q,
        k,
        v,
        causal=causal,
        feature_map="elu" if kind == "linear" else "performer",
        projection=projection if kind == "performer" else None,
    )


def effective_weights(
    q: torch.Tensor,
    k: torch.Tensor,
    variant: Variant | str,
    causal: bool = False,
    E: torch.Tensor | None = None,
    F: torch.Tensor | None = None,
    projection: torch.Tensor | None = None,
) -> torch.Tensor:
    """The dense (..., N, N) matrix W with attend(q, k, v, variant) = W v, built in full (for pictures/tests)."""
    variant = _as_variant(variant)
    _check_qkv(q, k, k, same_length=True, causal=causal)
    if q.dtype in HALF_DTYPES:  # built in float32 (q k^T can overflow fp16), returned in the inputs' dtype
        E, F, projection = (None if t is None else t.float() for t in (E, F, projection))
        return effective_weights(q.float(), k.float(), variant, causal, E, F, projection).to(q.dtype)
    n, kind = q.shape[-2], variant.kind
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])  # (..., N, d) @ (..., d, N) -> (..., N, N)
    allowed = torch.ones(n, n, dtype=torch.bool, device=q.device)
    if kind == "local":
        allowed = window_mask(n, variant.window, causal=causal).to(q.device)
    elif kind == "block_sparse":
        allowed = block_sparse_mask(n, variant.block, min(variant.n_global, n), causal=causal).to(q.device)
    elif causal:
        allowed = allowed.tril()
    if kind in ("exact", "flash", "local", "block_sparse"):
        return _softmax_where(scores, allowed)
    if kind == "low_rank":
        if causal:
            raise ValueError("low_rank (Linformer) attention cannot be causal")
        E = low_rank_projection(n, variant.rank, seed=variant.seed, dtype=k.dtype) if E is None else E
        F = E if F is None else F
        probs = nn.functional.softmax(q @ (E @ k).transpose(-2, -1) / math.sqrt(q.shape[-1]), dim=-1)  # (..., N, r)
        return probs @ F  # (..., N, r) @ (r, N) -> (..., N, N)
    if kind == "linear":
        phi_q, phi_k = elu_features(q), elu_features(k)
    else:
        if projection is None:
            projection = performer_projection(q.shape[-1], variant.num_features, seed=variant.seed, dtype=q.dtype)
        phi_q = performer_features(q, projection, is_query=True)
        phi_k = performer_features(k, projection, is_query=False)
    similarity = (phi_q @ phi_k.transpose(-2, -1)) * allowed  # (..., N, m) @ (..., m, N) -> (..., N, N)
    return _safe_divide(similarity, similarity.sum(-1, keepdim=True))


def attention_pattern(
    variant: Variant | str, n: int, causal: bool = False, d: int = 16, seed: int = 0, weights: bool = False
) -> np.ndarray:
    """Which keys (columns) each query (row) reaches, an (n, n) array in [0, 1] for the picture.

    Masked variants (exact, flash, local, block_sparse) give their mask as 0/1. low_rank, linear and
    performer reach every key: they give |effective weights| on random q, k (seeded, (n, d) each), each row
    scaled to a maximum of 1, which shows the structure that replaces the softmax. weights=True gives that
    row-scaled |weight| picture for every variant, masked ones included (exact: the softmax weights).
    """
    variant = _as_variant(variant)
    n = check_int(n, "n")
    weights = check_flag(weights, "weights")
    if not weights:
        if variant.kind in ("exact", "flash"):
            mask = torch.ones(n, n, dtype=torch.bool)
            return (mask.tril() if causal else mask).double().numpy()
        if variant.kind == "local":
            return window_mask(n, variant.window, causal=causal).double().numpy()
        if variant.kind == "block_sparse":
            return block_sparse_mask(n, variant.block, min(variant.n_global, n), causal=causal).double().numpy()
    g = torch.Generator().manual_seed(check_int(seed, "seed", minimum=0))
    d = check_int(d, "d")
    q, k = (torch.randn(n, d, generator=g, dtype=torch.float64) for _ in range(2))  # (n, d) each
    w = effective_weights(q, k, variant, causal=causal).abs()  # (n, n)
    return (w / w.amax(-1, keepdim=True)).numpy()


class EfficientSelfAttention(MultiHeadSelfAttention):
    """Multi-head self-attention whose per-head attention is one of VARIANTS; x (B, N, D) -> (B, N, D).

    The projections are MultiHeadSelfAttention's (in_proj, out_proj), so variants differ only in how heads
    attend. low_rank needs seq_len (its E, F are (rank, seq_len), shared by the heads; shorter inputs use
    their first columns). Masks other than is_causal are not supported by the efficient variants.
    """

    def __init__(self, d_model: int, num_heads: int, variant: Variant | str = "exact", seq_len: int | None = None):
        super().__init__(d_model, num_heads)
        self.variant = _as_variant(variant)
        if self.variant.kind == "low_rank":
            if seq_len is None:
                raise ValueError("low_rank attention needs seq_len (its projections E, F are (rank, seq_len))")
            seq_len = check_int(seq_len, "seq_len")
            g = torch.Generator().manual_seed(self.variant.seed)
            E = low_rank_projection(seq_len, self.variant.rank, generator=g)
            F = low_rank_projection(seq_len, self.variant.rank, generator=g)
            if self.variant.learn_projection:
                self.E, self.F = nn.Parameter(E), nn.Parameter(F)  # (r, seq_len) each
            else:
                self.register_buffer("E", E)
                self.register_buffer("F", F)
        if self.variant.kind == "performer":
            projection = performer_projection(self.d_head, self.variant.num_features, seed=self.variant.seed)
            self.register_buffer("projection", projection)  # (m, d), fixed

    def _extras(self, n: int) -> dict:
        if self.variant.kind == "low_rank":
            if n > self.E.shape[-1]:
                raise ValueError(f"low_rank attention was built for seq_len={self.E.shape[-1]}, got N={n}")
            return {"E": self.E[:, :n], "F": self.F[:, :n]}
        if self.variant.kind == "performer":
            return {"projection": self.projection}
        return {}

    def forward(self, x, attn_mask=None, is_causal: bool = False) -> torch.Tensor:
        """x (B, N, D) -> (B, N, D)."""
        if attn_mask is not None and self.variant.kind != "exact":
            raise ValueError(f"{self.variant.kind} attention takes no attn_mask (only is_causal); use 'exact'")
        q, k, v = self.split_heads(x)  # (B, H, N, d) each
        if self.variant.kind == "exact":
            heads = scaled_dot_product_attention(q, k, v, attn_mask=attn_mask, is_causal=is_causal)
        else:
            heads = attend(q, k, v, self.variant, causal=is_causal, **self._extras(q.shape[-2]))  # (B, H, N, d)
        return self.out_proj(self.merge_heads(heads))  # (B, N, D) @ (D, D) -> (B, N, D)

    def attention_weights(self, x, attn_mask=None, is_causal: bool = False) -> torch.Tensor:
        """Each head's effective (B, H, N, N) attention matrix (built in full, for pictures)."""
        if attn_mask is not None and self.variant.kind != "exact":
            raise ValueError(f"{self.variant.kind} attention takes no attn_mask (only is_causal)")
        q, k, _ = self.split_heads(x)
        if self.variant.kind == "exact" and attn_mask is not None:
            return super().attention_weights(x, attn_mask=attn_mask, is_causal=is_causal)
        return effective_weights(q, k, self.variant, causal=is_causal, **self._extras(q.shape[-2]))


def make_attention(variant: Variant | str, seq_len: int | None = None) -> Callable[[int, int], nn.Module]:
    """A builder (d_model, num_heads) -> EfficientSelfAttention, for `models.tiny_transformer(attention=...)`."""
    variant = _as_variant(variant)
    return lambda d_model, num_heads: EfficientSelfAttention(d_model, num_heads, variant, seq_len=seq_len)


# ---------------------------------------------------------------------------------------------------------
# Cost: matmul FLOPs and the largest intermediate tensor (measured by intercepting torch's operations), time
# ---------------------------------------------------------------------------------------------------------

_FLASH_OPS = ("_scaled_dot_product_flash_attention_for_cpu", "_scaled_dot_product_flash_attention")


def _matmul_flops(name: str, args) -> int:
    """2 m k n per product for torch's matrix-multiply operations (what `@` and nn.Linear dispatch to)."""
    if name in ("mm", "bmm"):
        a, b = args[0], args[1]  # (..., m, k), (..., k, n)
    elif name in ("addmm", "baddbmm"):
        a, b = args[1], args[2]  # the added input comes first
    elif name in _FLASH_OPS:
        q, k, v = args[:3]  # (B, H, N_q, d), (B, H, N_k, d), (B, H, N_k, d_v): q k^T, then p v
        return 2 * q.shape[:-1].numel() * k.shape[-2] * (q.shape[-1] + v.shape[-1])
    else:
        return 0
    return 2 * a.shape[:-1].numel() * a.shape[-1] * b.shape[-1]


class _Meter(TorchDispatchMode):
    """Counts matmul FLOPs and records the largest tensor any operation creates, as torch runs them."""

    def __init__(self):
        super().__init__()
        self.flops = 0
        self.largest_bytes = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        self.flops += _matmul_flops(func.__name__.split(".")[0], args)
        for t in tree_flatten(out)[0]:
            if isinstance(t, torch.Tensor):
                self.largest_bytes = max(self.largest_bytes, t.numel() * t.element_size())
        return out


def measure(fn: Callable[[], torch.Tensor]) -> tuple[int, int]:
    """(matmul FLOPs, bytes of the largest tensor created) of one call of `fn`, measured as it runs."""
    with torch.no_grad(), _Meter() as meter:
        fn()
    return meter.flops, meter.largest_bytes


def attention_bytes(variant: Variant | str, n: int, heads: int = 1, batch: int = 1, d: int = 16) -> int:
    """Bytes (float32) of the largest intermediate of `attend` for that variant at length n, measured."""
    variant = _as_variant(variant)
    n = check_int(n, "n")
    q = torch.zeros(batch, heads, n, d)
    return measure(lambda: attend(q, q, q, variant))[1]


@dataclass(frozen=True)
class ScalingResult:
    ns: tuple[int, ...]  # sequence lengths
    seconds: dict  # label -> best time per N (forward pass)
    flops: dict  # label -> matmul FLOPs per N
    bytes: dict  # label -> largest intermediate tensor per N, in bytes

    def slope(self, label: str, what: str = "flops") -> float:
        """The log-log slope of a cost against N between the two largest N (1: linear, 2: quadratic)."""
        values = {"flops": self.flops, "bytes": self.bytes, "seconds": self.seconds}[what][label]
        return float(np.log(values[-1] / values[-2]) / np.log(self.ns[-1] / self.ns[-2]))

    def table(self) -> str:
        """The measurements as aligned text, one row per (variant, N)."""
        rows = [f"{'variant':<22}{'N':>7}{'time (ms)':>11}{'MFLOP':>10}{'largest (KiB)':>15}"]
        for label in self.seconds:
            for i, n in enumerate(self.ns):
                rows.append(
                    f"{label:<22}{n:>7}{1e3 * self.seconds[label][i]:>11.3f}"
                    f"{self.flops[label][i] / 1e6:>10.2f}{self.bytes[label][i] / 1024:>15.1f}"
                )
        return "\n".join(rows)


def scaling_benchmark(
    variants: Sequence[Variant | str] = VARIANTS,
    ns: Sequence[int] = (256, 512, 1024, 2048),
    d: int = 16,
    heads: int = 2,
    batch: int = 1,
    repeats: int = 3,
    device=None,
    seed: int = 0,
) -> ScalingResult:
    """Time (best of `repeats`), matmul FLOPs and largest intermediate of each variant's forward pass vs N.

    q, k, v are (batch, heads, N, d) float32 on `device` (default: the CPU). The lesson runs it at small N;
    `python -m course_utils.efficient` prints the table for N up to 2048.
    """
    chosen = [_as_variant(v) for v in variants]
    ns = tuple(check_int(n, "n") for n in ns)
    repeats = check_int(repeats, "repeats")
    device = torch.device(device) if device is not None else torch.device("cpu")
    g = torch.Generator().manual_seed(seed)
    seconds: dict[str, list[float]] = {}
    flops: dict[str, list[int]] = {}
    nbytes: dict[str, list[int]] = {}
    for variant in chosen:
        label = variant.label
        seconds[label], flops[label], nbytes[label] = [], [], []
        for n in ns:
            q, k, v = (torch.randn(batch, heads, n, d, generator=g).to(device) for _ in range(3))
            extra: dict[str, Any] = {}  # keyword arguments of attend
            if variant.kind == "low_rank":
                extra["E"] = low_rank_projection(n, variant.rank, seed=variant.seed).to(device)
            run = lambda: attend(q, k, v, variant, **extra)  # noqa: B023 (called inside this iteration)
            f, b = measure(run)
            if variant.kind == "flash" and f == 0:  # a Triton kernel is invisible to torch's dispatcher: count it
                f = 2 * batch * heads * n * n * (d + d)  # q k^T, then p v
            best = float("inf")
            with torch.no_grad():
                run()  # warm-up
                for _ in range(repeats):
                    if device.type == "cuda":
                        torch.cuda.synchronize()
                    start = time.perf_counter()
                    run()
                    if device.type == "cuda":
                        torch.cuda.synchronize()
                    best = min(best, time.perf_counter() - start)
            seconds[label].append(best)
            flops[label].append(f)
            nbytes[label].append(b)
    return ScalingResult(ns, seconds, flops, nbytes)


if __name__ == "__main__":  # python -m course_utils.efficient: the scaling table
    print(scaling_benchmark().table())


# ---------------------------------------------------------------------------------------------------------
# Training each variant on a task (lesson 11's accuracy axis)
# ---------------------------------------------------------------------------------------------------------


def train_variants(
    task,
    variants: Sequence[Variant | str],
    config=None,
    d_model: int = 32,
    num_heads: int = 2,
    seed: int = 0,
    test_size: int = 512,
    return_models: bool = False,
) -> dict[str, float] | tuple[dict[str, float], dict[str, nn.Module]]:
    """Train one tiny one-layer transformer per variant on `task` (e.g. tasks.planted.PlantedTask); test accuracy.

    Every model starts from the same seed and sees the same batches (`config.seed`); only the attention
    differs. `task` needs .batch(batch_size, generator), .dataset(size, seed), .vocab_size, .n_classes and
    .seq_len. Returns label -> accuracy on `test_size` fresh examples (and label -> model if return_models).
    """
    from .models import tiny_transformer
    from .training import TrainConfig, accuracy, train_classifier

    config = TrainConfig(steps=60, batch_size=32, lr=1e-2, seed=seed) if config is None else config
    x_test, y_test = task.dataset(test_size, seed=10_000 + seed)  # (test_size, N), (test_size,)
    results: dict[str, float] = {}
    models: dict[str, nn.Module] = {}
    for variant in (_as_variant(v) for v in variants):
        torch.manual_seed(seed)
        model = tiny_transformer(
            task.vocab_size,
            task.n_classes,
            d_model=d_model,
            num_heads=num_heads,
            pool="first",
            attention=make_attention(variant, seq_len=task.seq_len),
        )
        train_classifier(model, task.batch, config, desc=variant.label)
        results[variant.label] = accuracy(model, x_test, y_test)
        models[variant.label] = model
    return (results, models) if return_models else results
