"""Checkers for lesson 05 (multi-head self-attention), in PyTorch's row convention.

check_split_heads(fn)           fn(x (B, N, D), num_heads) -> (B, H, N, d); head h owns features h*d .. (h+1)*d-1
check_merge_heads(fn)           fn(heads (B, H, N, d)) -> (B, N, H*d): [b^{i,1}; ...; b^{i,H}] per token
check_multi_head_attention(fn)  fn(X (N, D), Wq, Wk, Wv, Wo (D, D) as nn.Linear.weight, num_heads) -> (N, D)
"""

from __future__ import annotations

import numpy as np
import torch

from .. import reference as ref
from .base import Exercise, Feedback, Mistake

__all__ = [
    "SPLIT_HEADS",
    "MERGE_HEADS",
    "MULTI_HEAD_ATTENTION",
    "check_split_heads",
    "check_merge_heads",
    "check_multi_head_attention",
]

_SHAPES = ((2, 5, 12, 3), (1, 7, 8, 2), (3, 4, 20, 4))  # (B, N, D, H): N != H and d != H, so mistakes differ


def _split_cases(rng: np.random.Generator) -> list[tuple]:
    return [(torch.from_numpy(rng.normal(size=(B, N, D))), H) for B, N, D, H in _SHAPES]


def _split(x: torch.Tensor, num_heads: int) -> torch.Tensor:
    B, N, D = x.shape
    return x.reshape(B, N, num_heads, D // num_heads).transpose(1, 2)  # (B, N, H, d) -> (B, H, N, d)


SPLIT_HEADS = Exercise(
    name="split heads",
    reference=_split,
    cases=_split_cases,
    mistakes=(
        Mistake(
            "reshaped straight to (B, H, N, d)",
            lambda x, H: x.reshape(x.shape[0], H, x.shape[1], x.shape[2] // H),
            "A reshape keeps the memory order, so this mixes tokens across heads. Reshape to (B, N, H, d) first, "
            "then swap the N and H axes: x.reshape(B, N, H, d).transpose(1, 2).",
        ),
        Mistake(
            "heads interleaved",
            lambda x, H: x.reshape(x.shape[0], x.shape[1], x.shape[2] // H, H).permute(0, 3, 1, 2),
            "Head h owns a contiguous block of features, h*d to (h+1)*d - 1, not every H-th feature: reshape the "
            "last axis as (H, d), not (d, H).",
        ),
        Mistake(
            "forgot to move the head axis",
            lambda x, H: x.reshape(x.shape[0], x.shape[1], H, x.shape[2] // H),
            "(B, N, H, d) is one transpose away: attention runs per head, so the head axis must come before N.",
        ),
    ),
    hint="B, N, D = x.shape; d = D // num_heads; x.reshape(B, N, num_heads, d).transpose(1, 2).",
)


def check_split_heads(fn) -> Feedback:
    """Check fn(x (B, N, D), num_heads) -> (B, H, N, d)."""
    return SPLIT_HEADS.check(fn)


def _merge_cases(rng: np.random.Generator) -> list[tuple]:
    return [(torch.from_numpy(rng.normal(size=(B, H, N, D // H))),) for B, N, D, H in _SHAPES]


MERGE_HEADS = Exercise(
    name="merge heads",
    reference=lambda h: h.transpose(1, 2).reshape(h.shape[0], h.shape[2], h.shape[1] * h.shape[3]),
    cases=_merge_cases,
    mistakes=(
        Mistake(
            "reshaped without moving the head axis back",
            lambda h: h.reshape(h.shape[0], h.shape[2], h.shape[1] * h.shape[3]),
            "(B, H, N, d) must become (B, N, H, d) before the reshape, else tokens mix: heads.transpose(1, 2) first.",
        ),
        Mistake(
            "interleaved the heads' features",
            lambda h: h.permute(0, 2, 3, 1).reshape(h.shape[0], h.shape[2], h.shape[1] * h.shape[3]),
            "The concatenation [b^{i,1}; b^{i,2}; ...] puts head 1's d features first, then head 2's: "
            "transpose to (B, N, H, d), not (B, N, d, H).",
        ),
        Mistake(
            "summed the heads instead of concatenating",
            lambda h: h.sum(dim=1),
            "b^i = W^O [b^{i,1}; ...; b^{i,H}]: the heads are stacked into one vector of H*d features, not added.",
        ),
    ),
    hint="B, H, N, d = heads.shape; heads.transpose(1, 2).reshape(B, N, H * d).",
)


def check_merge_heads(fn) -> Feedback:
    """Check fn(heads (B, H, N, d)) -> (B, N, H*d)."""
    return MERGE_HEADS.check(fn)


def _mha(X, Wq, Wk, Wv, Wo, num_heads, scale_dim=None, axis=-1, out=True, heads=None):
    """Multi-head attention in the row convention (N, D), with one deliberate change."""
    H = num_heads if heads is None else heads
    N, D = X.shape
    d = D // H
    q = (X @ Wq.T).reshape(N, H, d).transpose(1, 0, 2)  # (N, D) @ (D, D) -> (N, D) -> (H, N, d)
    k = (X @ Wk.T).reshape(N, H, d).transpose(1, 0, 2)  # (H, N, d)
    v = (X @ Wv.T).reshape(N, H, d).transpose(1, 0, 2)  # (H, N, d)
    s = 1.0 / np.sqrt(d if scale_dim is None else scale_dim)
    scores = s * (q @ k.transpose(0, 2, 1))  # (H, N, d) @ (H, d, N) -> (H, N, N)
    heads_out = ref.softmax(scores, axis=axis) @ v  # (H, N, N) @ (H, N, d) -> (H, N, d)
    concat = heads_out.transpose(1, 0, 2).reshape(N, D)  # (N, H, d) -> (N, D)
    return concat @ Wo.T if out else concat  # (N, D) @ (D, D) -> (N, D)


def _mha_cases(rng: np.random.Generator) -> list[tuple]:
    cases = []
    for N, D, H in ((5, 8, 2), (6, 12, 3), (4, 16, 4)):
        W = [rng.normal(size=(D, D)) / np.sqrt(D) for _ in range(4)]
        cases.append((rng.normal(size=(N, D)) * 2.0, *W, H))
    return cases


def _mha_reference(X, Wq, Wk, Wv, Wo, num_heads):
    """The lecture's multi-head form (reference, column convention), transposed to rows."""
    d = X.shape[1] // num_heads
    rows = lambda W: [W[h * d : (h + 1) * d] for h in range(num_heads)]  # head h's rows of W: (d, D)
    return ref.multi_head_self_attention(X.T, rows(Wq), rows(Wk), rows(Wv), Wo).T


MULTI_HEAD_ATTENTION = Exercise(
    name="multi-head attention",
    reference=_mha_reference,
    cases=_mha_cases,
    mistakes=(
        Mistake(
            "scaled by 1/sqrt(D) instead of 1/sqrt(d)",
            lambda X, Wq, Wk, Wv, Wo, H: _mha(X, Wq, Wk, Wv, Wo, H, scale_dim=X.shape[1]),
            "Each head's scores are q . k over its own d = D / H features: divide by sqrt(d), the head dimension.",
        ),
        Mistake(
            "softmax over the wrong axis",
            lambda X, Wq, Wk, Wv, Wo, H: _mha(X, Wq, Wk, Wv, Wo, H, axis=-2),
            "Row i of a head's (N, N) scores belongs to query i: normalise over the last axis (the keys).",
        ),
        Mistake(
            "forgot W^O",
            lambda X, Wq, Wk, Wv, Wo, H: _mha(X, Wq, Wk, Wv, Wo, H, out=False),
            "b^i = W^O [b^{i,1}; ...; b^{i,H}]: after concatenating the heads, multiply by Wo.T (row convention).",
        ),
        Mistake(
            "one head over all D features",
            lambda X, Wq, Wk, Wv, Wo, H: _mha(X, Wq, Wk, Wv, Wo, H, heads=1),
            "Split q, k, v into num_heads blocks of d = D / H features and attend within each block separately.",
        ),
    ),
    hint="q = X @ Wq.T, reshaped (N, H, d) -> (H, N, d), likewise k, v; softmax(q k^T / sqrt(d)) v per head; "
    "merge to (N, D); multiply by Wo.T.",
)


def check_multi_head_attention(fn) -> Feedback:
    """Check fn(X (N, D), Wq, Wk, Wv, Wo (D, D), num_heads) -> (N, D)."""
    return MULTI_HEAD_ATTENTION.check(fn)
