"""Checkers for lesson 11's exercises: the sliding-window mask, linear attention in linear memory, Linformer."""

from __future__ import annotations

import math

import numpy as np
import torch

from .. import efficient as ef
from ..attention import scaled_dot_product_attention, window_mask
from .base import Exercise, Feedback, Mistake

__all__ = ["check_window_mask", "check_linear_attention", "check_low_rank_attention"]


def _tensor(rng: np.random.Generator, *shape: int) -> torch.Tensor:
    return torch.from_numpy(rng.normal(size=shape))  # float64


# ---------------------------------------------------------------------------------------------------------
# 1. The sliding-window mask
# ---------------------------------------------------------------------------------------------------------


def _window_cases(rng: np.random.Generator) -> list[tuple]:
    return [(8, 2), (12, 4), (6, 1), (5, 0), (4, 9)]  # the first case tells every named mistake apart


WINDOW_MASK = Exercise(
    name="window_mask",
    reference=lambda n, w: window_mask(n, w),
    cases=_window_cases,
    mistakes=[
        Mistake(
            "the window is one too narrow",
            lambda n, w: (torch.arange(n)[:, None] - torch.arange(n)[None, :]).abs() < w,
            "Query i sees keys j with |i - j| <= w: use <=, not <, so w neighbours on each side are included.",
        ),
        Mistake(
            "only the past is visible",
            lambda n, w: window_mask(n, w, causal=True),
            "The window reaches w tokens on both sides: compare the absolute distance |i - j|, not i - j.",
        ),
        Mistake(
            "True marks the blocked pairs",
            lambda n, w: ~window_mask(n, w),
            "The course's masks follow SDPA: True means 'may attend'. Return True inside the window.",
        ),
    ],
    hint="i = torch.arange(n)[:, None] and j = torch.arange(n)[None, :] broadcast to (n, n); "
    "compare (i - j).abs() with w.",
    atol=0.0,
    rtol=0.0,
)


def check_window_mask(fn) -> bool:
    """Check window_mask(n, w) -> (n, n) bool, True where |i - j| <= w."""
    return WINDOW_MASK.check(fn)


# ---------------------------------------------------------------------------------------------------------
# 2. Linear attention in linear memory: regroup the product
# ---------------------------------------------------------------------------------------------------------


def _linear_cases(rng: np.random.Generator) -> list[tuple]:
    cases = [(_tensor(rng, 2, 9, 3), _tensor(rng, 2, 9, 3), _tensor(rng, 2, 9, 5))]  # d != d_v
    cases.append((_tensor(rng, 2, 2, 7, 4), _tensor(rng, 2, 2, 7, 4), _tensor(rng, 2, 2, 7, 4)))
    cases.append((_tensor(rng, 1, 3), _tensor(rng, 1, 3), _tensor(rng, 1, 2)))
    return cases


def _unnormalised(q, k, v):
    phi_q, phi_k = ef.elu_features(q), ef.elu_features(k)
    return phi_q @ (phi_k.transpose(-2, -1) @ v)


def _elu_without_one(q, k, v):
    phi_q, phi_k = torch.nn.functional.elu(q), torch.nn.functional.elu(k)
    return (phi_q @ (phi_k.transpose(-2, -1) @ v)) / (phi_q @ phi_k.sum(-2).unsqueeze(-1))


LINEAR = Exercise(
    name="linear_attention",
    reference=lambda q, k, v: ef.linear_attention(q, k, v),
    cases=_linear_cases,
    mistakes=[
        Mistake(
            "no normaliser",
            _unnormalised,
            "Divide phi(q_i)^T (phi(K)^T V) by phi(q_i)^T sum_j phi(k_j): it plays softmax's denominator.",
        ),
        Mistake(
            "the feature map is elu(x), not elu(x) + 1",
            _elu_without_one,
            "phi(x) = elu(x) + 1 keeps every feature positive, so every weight phi(q) . phi(k) is positive.",
        ),
        Mistake(
            "only the past is used",
            lambda q, k, v: ef.linear_attention(q, k, v, causal=True),
            "This is the non-causal form: every query sees every key, so phi(K)^T V sums over all N tokens.",
        ),
        Mistake(
            "softmax attention instead of linear attention",
            lambda q, k, v: scaled_dot_product_attention(q, k, v),
            "Replace exp(q . k) by phi(q) . phi(k): that is what lets the product be regrouped.",
        ),
    ],
    hint="phi = elu + 1; state = phi(k)^T @ v (d, d_v); z = phi(k).sum over tokens (d,); "
    "out = (phi(q) @ state) / (phi(q) @ z)[..., None].",
    atol=1e-9,
    rtol=1e-7,
)

_N_BIG = 1024  # the memory check's sequence length


def check_linear_attention(fn) -> Feedback:
    """Check linear_attention(q, k, v) -> (..., N, d_v), non-causal, elu + 1, and that it never builds N x N."""
    feedback = LINEAR.check(fn, verbose=False)
    if feedback:
        g = torch.Generator().manual_seed(0)
        q, k, v = (torch.randn(1, _N_BIG, 8, generator=g, dtype=torch.float64) for _ in range(3))
        _, largest = ef.measure(lambda: fn(q, k, v))
        if largest >= _N_BIG * _N_BIG * 8:
            feedback = Feedback(
                False,
                True,
                f"❌ {LINEAR.name}: right values, but at N = {_N_BIG} it built a tensor of {largest // 2**20} MiB, "
                f"an N x N matrix. Regroup the product: phi(Q) (phi(K)^T V) never forms phi(Q) phi(K)^T.",
                "built an N x N matrix",
            )
        else:
            feedback = Feedback(
                True,
                True,
                f"{feedback.message} Largest tensor at N = {_N_BIG}: {largest // 1024} KiB, no N x N matrix.",
            )
    print(feedback.message)
    return feedback


# ---------------------------------------------------------------------------------------------------------
# 3. Linformer's low-rank attention
# ---------------------------------------------------------------------------------------------------------


def _low_rank_cases(rng: np.random.Generator) -> list[tuple]:
    cases = []
    for lead, n, d, d_v, r in (((2,), 10, 4, 3, 3), ((), 6, 2, 5, 2), ((2, 2), 8, 3, 3, 8)):
        q, k, v = _tensor(rng, *lead, n, d), _tensor(rng, *lead, n, d), _tensor(rng, *lead, n, d_v)
        cases.append((q, k, v, _tensor(rng, r, n) / math.sqrt(n), _tensor(rng, r, n) / math.sqrt(n)))
    return cases


def _no_scale(q, k, v, E, F):
    return torch.softmax(q @ (E @ k).transpose(-2, -1), dim=-1) @ (F @ v)


def _softmax_over_queries(q, k, v, E, F):
    return torch.softmax(q @ (E @ k).transpose(-2, -1) / math.sqrt(q.shape[-1]), dim=-2) @ (F @ v)


LOW_RANK = Exercise(
    name="low_rank_attention",
    reference=lambda q, k, v, E, F: ef.low_rank_attention(q, k, v, E, F),
    cases=_low_rank_cases,
    mistakes=[
        Mistake(
            "E and F swapped",
            lambda q, k, v, E, F: ef.low_rank_attention(q, k, v, F, E),
            "E projects the keys, F the values: softmax(q (E k)^T / sqrt(d)) (F v).",
        ),
        Mistake(
            "missing scale",
            _no_scale,
            "Divide the scores q (E k)^T by sqrt(d), as exact attention does.",
        ),
        Mistake(
            "softmax over the wrong axis",
            _softmax_over_queries,
            "Each query's weights over the r projected keys sum to 1: softmax over the last axis.",
        ),
        Mistake(
            "the queries were projected too",
            lambda q, k, v, E, F: ef.low_rank_attention(E @ q, k, v, E, F),
            "Only keys and values are projected along N; every query keeps its own output, shape (N, d_v).",
        ),
    ],
    hint="k_low = E @ k (r, d), v_low = F @ v (r, d_v), then softmax(q @ k_low^T / sqrt(d), dim=-1) @ v_low.",
    atol=1e-9,
    rtol=1e-7,
)


def check_low_rank_attention(fn) -> bool:
    """Check low_rank_attention(q, k, v, E, F) -> (..., N, d_v): Linformer's projected keys and values."""
    return LOW_RANK.check(fn)
