"""Lesson 07 exercises: the online-softmax update step and merging two partial states.

Both exercises return a state (m, l, acc); the checker runs the learner's function inside a blockwise
attention and compares the final output acc / l with the exact one. Because the state is exact for *any*
consistent reference value m (softmax does not change when every score is shifted), the checker also
feeds blocks whose scores differ by more than exp can hold: an update that uses the wrong maximum
overflows there.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from ..tiling import merge_states, online_softmax_step
from .base import Exercise, Mistake

__all__ = ["online_softmax_step_exercise", "merge_states_exercise", "check_online_softmax_step", "check_merge_states"]

_BLOCK = 4  # keys per block in the checker's runs
_OVERFLOW = 1e300  # what a NaN/inf output is replaced with, so two overflowing answers compare equal


def _finite(x: torch.Tensor) -> np.ndarray:
    out = x.detach().double().numpy()
    return np.nan_to_num(out, nan=_OVERFLOW, posinf=_OVERFLOW, neginf=-_OVERFLOW)


def _unpack(result, what: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    if not isinstance(result, (tuple, list)) or len(result) != 3:
        raise TypeError(f"{what} must return a tuple (m, l, acc), got {type(result).__name__}")
    return tuple(torch.as_tensor(r, dtype=torch.float64) for r in result)


def _run_steps(step: Callable, s: torch.Tensor, v: torch.Tensor) -> np.ndarray:
    """Blockwise attention from scores s (N_q, N_k) and values v (N_k, d_v) with `step` for blocks 2, 3, ..."""
    first = s[:, :_BLOCK]  # block 1 sets the state: m = its row max
    m = first.amax(dim=-1)
    p = torch.exp(first - m[:, None])
    l, acc = p.sum(dim=-1), p @ v[:_BLOCK]  # (N_q, b) @ (b, d_v) -> (N_q, d_v)
    for j0 in range(_BLOCK, s.shape[1], _BLOCK):
        m, l, acc = _unpack(step(m, l, acc, s[:, j0 : j0 + _BLOCK], v[j0 : j0 + _BLOCK]), "your step")
    return _finite(acc / l[:, None])


def _step_cases(rng: np.random.Generator) -> list[tuple]:
    cases = []
    for n_q, n_k, d_v, jump in ((3, 12, 2, 3.0), (5, 16, 3, 6.0), (2, 12, 2, -1000.0), (2, 8, 2, 1000.0)):
        s = rng.normal(size=(n_q, n_k)) * min(abs(jump), 3.0)
        s[:, -_BLOCK:] += jump  # the last block's scores jump: the max moves (up), or must not move (down)
        cases.append((torch.tensor(s), torch.tensor(rng.normal(size=(n_k, d_v)))))
    return cases


def _wrong_step(kind: str) -> Callable:
    def step(m, l, acc, s, v):
        m_new = s.amax(dim=-1) if kind == "block max" else torch.maximum(m, s.amax(dim=-1))
        alpha = torch.exp(m_new - m) if kind == "inverted" else torch.exp(m - m_new)
        p = torch.exp(s - (m if kind == "old max" else m_new)[:, None])
        l_new = (l if kind == "no l rescale" else alpha * l) + p.sum(dim=-1)
        acc_new = (acc if kind == "no acc rescale" else alpha[:, None] * acc) + p @ v
        return m_new, l_new, acc_new

    return lambda s, v: _run_steps(step, s, v)


online_softmax_step_exercise = Exercise(
    name="online_softmax_step",
    reference=lambda s, v: _run_steps(online_softmax_step, s, v),
    cases=_step_cases,
    mistakes=(
        Mistake(
            "the accumulator was not rescaled",
            _wrong_step("no acc rescale"),
            "When the max grows from m to m', the old terms exp(s - m) v must become exp(s - m') v: "
            "multiply acc by alpha = exp(m - m') before adding the new block.",
        ),
        Mistake(
            "the running sum l was not rescaled",
            _wrong_step("no l rescale"),
            "l holds sum exp(s - m) with the old m: multiply it by alpha = exp(m - m') before adding p.sum(-1).",
        ),
        Mistake(
            "the correction factor is inverted",
            _wrong_step("inverted"),
            "The factor that moves old terms to the new max is exp(m - m') (at most 1), not exp(m' - m).",
        ),
        Mistake(
            "the new block was exponentiated with the old max",
            _wrong_step("old max"),
            "p = exp(s - m') with the *new* max m', so p and the rescaled sums share one reference value.",
        ),
        Mistake(
            "the block's own max replaced the running max",
            _wrong_step("block max"),
            "m' = max(m, rowmax(s)): a block with smaller scores must not lower the max, or exp(m - m') overflows.",
        ),
    ),
    hint="Find the new max m' (it can only move up), the factor exp(m - m') that moves the old l and acc "
    "to it, then add the new block's exp(s - m') and exp(s - m') @ v. Return (m', l, acc).",
    atol=1e-9,
    rtol=1e-7,
)


def _run_merge(merge: Callable, s: torch.Tensor, v: torch.Tensor) -> np.ndarray:
    """Split the keys in two halves, build each half's state, merge them, return acc / l."""
    half = s.shape[1] // 2
    states = []
    for cols in (slice(0, half), slice(half, None)):
        m = s[:, cols].amax(dim=-1)
        p = torch.exp(s[:, cols] - m[:, None])
        states.append((m, p.sum(dim=-1), p @ v[cols]))  # (N_q,), (N_q,), (N_q, d_v)
    (m1, l1, a1), (m2, l2, a2) = states
    m, l, acc = _unpack(merge(m1, l1, a1, m2, l2, a2), "your merge")
    return _finite(acc / l[:, None])


def _merge_cases(rng: np.random.Generator) -> list[tuple]:
    cases = []
    for n_q, n_k, d_v, shift in ((3, 8, 2, 2.0), (4, 10, 3, -3.0), (2, 6, 2, 900.0)):
        s = rng.normal(size=(n_q, n_k))
        s[:, n_k // 2 :] += shift  # the two halves have different maxima
        cases.append((torch.tensor(s), torch.tensor(rng.normal(size=(n_k, d_v)))))
    return cases


def _wrong_merge(kind: str) -> Callable:
    def merge(m1, l1, a1, m2, l2, a2):
        if kind == "no rescale":
            return torch.maximum(m1, m2), l1 + l2, a1 + a2
        if kind == "average":
            out = (a1 / l1[:, None] + a2 / l2[:, None]) / 2
            return torch.maximum(m1, m2), torch.ones_like(l1), out
        m = torch.maximum(m1, m2)
        if kind == "one side":
            w1 = torch.exp(m1 - m)
            return m, w1 * l1 + l2, w1[:, None] * a1 + a2
        w1, w2 = torch.exp(m - m1), torch.exp(m - m2)  # inverted
        return m, w1 * l1 + w2 * l2, w1[:, None] * a1 + w2[:, None] * a2

    return lambda s, v: _run_merge(merge, s, v)


merge_states_exercise = Exercise(
    name="merge_states",
    reference=lambda s, v: _run_merge(merge_states, s, v),
    cases=_merge_cases,
    mistakes=(
        Mistake(
            "the two states were added without rescaling",
            _wrong_merge("no rescale"),
            "Each half's sums are relative to its own max: bring both to m = max(m1, m2) with "
            "exp(m1 - m) and exp(m2 - m) before adding.",
        ),
        Mistake(
            "the two outputs were averaged",
            _wrong_merge("average"),
            "The halves hold different amounts of probability mass: weight each by its sum l, not by 1/2.",
        ),
        Mistake(
            "only one side was rescaled",
            _wrong_merge("one side"),
            "Both states need their factor exp(m_i - m); the side whose max is smaller gets a factor below 1.",
        ),
        Mistake(
            "the correction factors are inverted",
            _wrong_merge("inverted"),
            "The factor is exp(m_i - m) (at most 1), not exp(m - m_i).",
        ),
    ),
    hint="Bring both states to one common max m: each side's l and acc are measured from its own m_i, "
    "so multiply them by exp(m_i - m), then add.",
    atol=1e-9,
    rtol=1e-7,
)


def check_online_softmax_step(fn: Callable):
    """Check fn(m, l, acc, s_block, v_block) -> (m_new, l_new, acc_new), torch float64, row convention."""
    return online_softmax_step_exercise.check(lambda s, v: _run_steps(fn, s, v))


def check_merge_states(fn: Callable):
    """Check fn(m1, l1, acc1, m2, l2, acc2) -> (m, l, acc): two partial states over disjoint keys, merged."""
    return merge_states_exercise.check(lambda s, v: _run_merge(fn, s, v))
