"""Checkers for lesson 11 (efficient self-attention).

LESSON.hint(key), LESSON.solution(key)   the next hint / a solution, for key "block_mask", "block_size",
                                        "causal_linear" or "linformer"
check_block_sparse_mask(fn)      fn(n, block, n_global) -> (n, n) bool, True = may attend: the query's block
                                 and its two neighbours, plus n_global global tokens
check_block_size(predicted, measured)   the smallest block (no global token) that reaches the planted signal
check_causal_linear_attention(fn)   fn(q (..., N, d), k, v (..., N, d_v)) -> (..., N, d_v): causal linear
                                 attention (elu + 1) in parallel form, checked for values, causality, no
                                 N x N matrix (torch or NumPy) and no loop over the tokens
check_low_rank_attention(fn)     fn(q, k, v, E (r, N), F (r, N)) -> (..., N, d_v): Linformer
"""

from __future__ import annotations

import math
import tracemalloc
from collections.abc import Callable

import numpy as np
import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

from .. import efficient as ef
from ..attention import scaled_dot_product_attention
from .base import (
    Causal,
    Exercise,
    Feedback,
    Lesson,
    Mistake,
    Prediction,
    as_answer_array,
    run_guarded,
    tolerance_for,
)

__all__ = [
    "LESSON",
    "BLOCK_MASK",
    "BLOCK_SIZE",
    "CAUSAL_LINEAR",
    "LOW_RANK",
    "check_block_sparse_mask",
    "check_block_size",
    "check_causal_linear_attention",
    "check_low_rank_attention",
    "hint",
    "solution",
]


def _tensor(rng: np.random.Generator, *shape: int) -> torch.Tensor:
    return torch.from_numpy(rng.normal(size=shape))  # float64


# ---------------------------------------------------------------------------------------------------------
# 1. The block-sparse mask
# ---------------------------------------------------------------------------------------------------------


def _block_cases(rng: np.random.Generator) -> list[tuple]:
    # (n, block, n_global): n not a multiple of block; no global token; a block longer than the sequence;
    # block 1 (a window of one neighbour); every token global
    return [(12, 4, 1), (10, 3, 0), (9, 4, 2), (5, 8, 0), (6, 1, 0), (4, 2, 4)]


def _blocks(n: int, block: int) -> torch.Tensor:
    """(n, n) block distance |i // block - j // block|."""
    i, j = torch.arange(n)[:, None], torch.arange(n)[None, :]  # (n, 1) queries, (1, n) keys
    return (i // block - j // block).abs()


def _globals(n: int, n_global: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(n, 1) global queries and (1, n) global keys."""
    return torch.arange(n)[:, None] < n_global, torch.arange(n)[None, :] < n_global


BLOCK_MASK = Exercise(
    name="block-sparse mask",
    reference=lambda n, block, n_global: ef.block_sparse_mask(n, block, n_global),
    cases=_block_cases,
    mistakes=(
        Mistake(
            "only the query's own block",
            lambda n, b, g: (_blocks(n, b) == 0) | _globals(n, g)[0] | _globals(n, g)[1],
            "A query also reaches the block before and the block after its own: block numbers differing by 1.",
        ),
        Mistake(
            "two neighbour blocks on each side",
            lambda n, b, g: (_blocks(n, b) <= 2) | _globals(n, g)[0] | _globals(n, g)[1],
            "One neighbour block on each side: |i // block - j // block| <= 1.",
        ),
        Mistake(
            "a sliding window instead of blocks",
            lambda n, b, g: (
                ((torch.arange(n)[:, None] - torch.arange(n)[None, :]).abs() <= b)
                | _globals(n, g)[0]
                | _globals(n, g)[1]
            ),
            "Compare block numbers (position // block), not the distance |i - j|: two tokens in neighbouring "
            "blocks may be up to 2 block - 1 apart.",
        ),
        Mistake(
            "global tokens only as keys",
            lambda n, b, g: (_blocks(n, b) <= 1) | _globals(n, g)[1],
            "A global token also attends to every key: its whole row is True, not only its column.",
        ),
        Mistake(
            "global tokens only as queries",
            lambda n, b, g: (_blocks(n, b) <= 1) | _globals(n, g)[0],
            "Every query also attends to the global tokens: their columns are True, not only their rows.",
        ),
        Mistake(
            "no global tokens",
            lambda n, b, g: _blocks(n, b) <= 1,
            "The first n_global tokens are global: True on their rows and on their columns.",
        ),
        Mistake(
            "global tokens counted from the end",
            lambda n, b, g: (
                (_blocks(n, b) <= 1) | (torch.arange(n)[:, None] >= n - g) | (torch.arange(n)[None, :] >= n - g)
            ),
            "The global tokens are the first n_global positions (the query of lesson 11's task sits at 0).",
        ),
    ),
    hints=(
        "Give every position a block number: which block of `block` tokens it falls in. A query may attend to a "
        "key when their block numbers differ by at most one; global tokens are an extra rule on top of that.",
        "Block number = position // block, for the queries as a column (n, 1) and the keys as a row (1, n), so "
        "the comparison broadcasts to (n, n). A global token (position < n_global) attends to every key, and "
        "every query attends to it: two more (n, n) conditions, joined with |.",
        "i = torch.arange(n)[:, None]; j = torch.arange(n)[None, :]; "
        "((i // block - j // block).abs() <= 1) | (i < n_global) | (j < n_global).",
    ),
    solution="""def my_block_sparse_mask(n, block, n_global):
    i = torch.arange(n)[:, None]  # (n, 1) queries
    j = torch.arange(n)[None, :]  # (1, n) keys
    near = (i // block - j // block).abs() <= 1  # (n, n): own block and the two next to it
    return near | (i < n_global) | (j < n_global)  # global rows and columns; True = may attend""",
    output="bool_mask",
)


def check_block_sparse_mask(fn: Callable) -> Feedback:
    """Check fn(n, block, n_global) -> (n, n) bool mask, True = may attend (lesson 11's block-sparse pattern)."""
    return BLOCK_MASK.check(fn)


# ---------------------------------------------------------------------------------------------------------
# 2. Predict, then measure: the smallest block that reaches the planted signal
# ---------------------------------------------------------------------------------------------------------

BLOCK_SIZE = Prediction(
    name="the smallest block that solves delay D = 24 without a global token",
    kind="int",
    hints=(
        "With n_global = 0 there is no hub: in one layer the query at position 0 reaches only the keys of its own "
        "block and of the next one (block 0 has no block before it).",
        "Block 0 holds positions 0 .. b - 1 and block 1 holds b .. 2b - 1. The signal sits at position D = 24.",
        "Find the smallest whole b with 2b - 1 >= 24.",
    ),
    solution="13: the query's two blocks cover positions 0 .. 2b - 1, and 2b - 1 >= 24 first holds at b = 13.",
    explanation="Blocks 0 and 1 cover positions 0 .. 2b - 1. At b = 12 they end at 23, one position short of the "
    "signal, and the model stays at chance as the window w = 23 did; at b = 13 they reach 25 and it solves the task.",
)


def check_block_size(predicted, measured) -> Feedback:
    """Compare the stored prediction (an int) with the measured smallest block size; print the verdict."""
    return BLOCK_SIZE.check(predicted, measured)


# ---------------------------------------------------------------------------------------------------------
# 3. Causal linear attention in parallel form, in linear memory
# ---------------------------------------------------------------------------------------------------------


def _linear_cases(rng: np.random.Generator) -> list[tuple]:
    cases = [(_tensor(rng, 2, 9, 3), _tensor(rng, 2, 9, 3), _tensor(rng, 2, 9, 5))]  # d != d_v
    cases.append((_tensor(rng, 2, 2, 7, 4), _tensor(rng, 2, 2, 7, 4), _tensor(rng, 2, 2, 7, 4)))  # (B, H, N, d)
    cases.append((_tensor(rng, 6, 2), _tensor(rng, 6, 2), _tensor(rng, 6, 3)))  # (N, d): no batch axis
    cases.append((_tensor(rng, 1, 3), _tensor(rng, 1, 3), _tensor(rng, 1, 2)))  # one token
    return cases


def _phi(x: torch.Tensor) -> torch.Tensor:
    return torch.nn.functional.elu(x) + 1


def _prefix(x: torch.Tensor, dim: int, kind: str) -> torch.Tensor:
    """Sums over the tokens along `dim`: "inclusive" (j <= i), "exclusive" (j < i), "suffix" (j >= i), "all"."""
    if kind == "inclusive":
        return torch.cumsum(x, dim)
    if kind == "exclusive":
        return torch.cumsum(x, dim) - x
    if kind == "suffix":
        return torch.flip(torch.cumsum(torch.flip(x, (dim,)), dim), (dim,))
    return x.sum(dim, keepdim=True).expand_as(x)


def _causal_linear(q, k, v, phi=_phi, states="inclusive", z_kind=None, normalise=True):
    """Linear attention with prefix sums over the tokens; one deliberate change is what each mistake computes."""
    phi_q, phi_k = phi(q), phi(k)  # (..., N, d)
    outer = phi_k.unsqueeze(-1) * v.unsqueeze(-2)  # (..., N, d, 1) * (..., N, 1, d_v) -> (..., N, d, d_v)
    S = _prefix(outer, -3, states)  # (..., N, d, d_v)
    numerator = (phi_q.unsqueeze(-2) @ S).squeeze(-2)  # (..., N, 1, d) @ (..., N, d, d_v) -> (..., N, d_v)
    if not normalise:
        return numerator
    z = _prefix(phi_k, -2, z_kind or states)  # (..., N, d)
    return numerator / (phi_q * z).sum(-1, keepdim=True)  # (..., N, d_v) / (..., N, 1)


CAUSAL_LINEAR = Exercise(
    name="causal linear attention in linear memory",
    reference=lambda q, k, v: ef.linear_attention(q, k, v, causal=True),
    cases=_linear_cases,
    mistakes=(
        Mistake(
            "no normaliser",
            lambda q, k, v: _causal_linear(q, k, v, normalise=False),
            "Divide phi(q_i)^T S_i by phi(q_i)^T z_i, with z_i = sum over j <= i of phi(k_j): softmax's denominator.",
        ),
        Mistake(
            "the feature map is elu(x), not elu(x) + 1",
            lambda q, k, v: _causal_linear(q, k, v, phi=torch.nn.functional.elu),
            "phi(x) = elu(x) + 1 keeps every feature positive, so every weight phi(q) . phi(k) is positive.",
        ),
        Mistake(
            "not causal: every query sees every key",
            lambda q, k, v: ef.linear_attention(q, k, v, causal=False),
            "That is section 2.4's form, phi(K)^T V summed over all N tokens. Causal output i sums over j <= i "
            "only: one prefix sum per query.",
        ),
        Mistake(
            "token i does not see itself",
            lambda q, k, v: _causal_linear(q, k, v, states="exclusive"),
            "Causal attention includes j = i: an inclusive prefix sum (torch.cumsum), not one that stops before i.",
        ),
        Mistake(
            "the normaliser sums over every key",
            lambda q, k, v: _causal_linear(q, k, v, z_kind="all"),
            "z_i must be a prefix sum too, over j <= i, like S_i: otherwise the weights of query i do not sum to 1.",
        ),
        Mistake(
            "summed over the future (j >= i)",
            lambda q, k, v: _causal_linear(q, k, v, states="suffix"),
            "The prefix runs from the first token up to i: torch.cumsum along the token axis, no flip.",
        ),
        Mistake(
            "softmax attention instead of linear attention",
            lambda q, k, v: scaled_dot_product_attention(q, k, v, is_causal=True),
            "Replace exp(q . k) by phi(q) . phi(k): that is what lets the sums be regrouped into prefix states.",
        ),
    ),
    hints=(
        "Causal output i uses S_i = sum over j <= i of phi(k_j) v_j^T and z_i = sum over j <= i of phi(k_j). "
        "All N prefix sums at once are a cumulative sum along the token axis: no loop, and no N x N matrix.",
        "Build the per-token outer products phi(k_j) v_j^T as one (..., N, d, d_v) tensor by broadcasting, "
        "cumsum it over the token axis (dim -3), cumsum phi(k) over its token axis (dim -2); then query i reads "
        "its own S_i and z_i.",
        "S = torch.cumsum(phi_k.unsqueeze(-1) * v.unsqueeze(-2), dim=-3); z = torch.cumsum(phi_k, dim=-2); "
        "out = (phi_q.unsqueeze(-2) @ S).squeeze(-2) / (phi_q * z).sum(-1, keepdim=True).",
    ),
    solution="""def my_causal_linear_attention(q, k, v):
    phi_q = torch.nn.functional.elu(q) + 1  # (..., N, d)
    phi_k = torch.nn.functional.elu(k) + 1
    outer = phi_k.unsqueeze(-1) * v.unsqueeze(-2)  # (..., N, d, 1) * (..., N, 1, d_v) -> (..., N, d, d_v)
    S = torch.cumsum(outer, dim=-3)  # (..., N, d, d_v): S_i sums j <= i
    z = torch.cumsum(phi_k, dim=-2)  # (..., N, d)
    numerator = (phi_q.unsqueeze(-2) @ S).squeeze(-2)  # (..., N, 1, d) @ (..., N, d, d_v) -> (..., N, d_v)
    return numerator / (phi_q * z).sum(-1, keepdim=True)  # (..., N, d_v) / (..., N, 1)""",
    causal=Causal(arg=(0, 1, 2), token_axis=-2, out_token_axis=-2),  # later q, k and v may all change
)

_N_BIG = 2048  # the cost check's sequence length
_D_BIG = 4  # its head dim: the prefix states (N, d, d_v) stay far below N x N


class _Cost(TorchDispatchMode):
    """Counts the torch operations a call runs and the elements of the largest tensor any of them creates."""

    def __init__(self) -> None:
        super().__init__()
        self.ops = 0
        self.largest = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        self.ops += 1
        for t in tree_flatten(out)[0]:
            if isinstance(t, torch.Tensor):
                self.largest = max(self.largest, t.numel())
        return out


def _cost_verdict(fn: Callable, passed: Feedback) -> Feedback:
    """After the value checks pass: run fn once at N = 2048 and check its values, memory and sequential steps."""
    name, n = CAUSAL_LINEAR.name, _N_BIG
    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(1, n, _D_BIG, generator=g, dtype=torch.float64) for _ in range(3))  # (1, N, d)
    where = f"at N = {n} (your function received {(1, n, _D_BIG)} for q, k and v)"
    meter = _Cost()
    try:

        def metered(*args):  # the meter sees the learner's operations, not run_guarded's copies of the inputs
            with meter:
                return fn(*args)

        value, error = run_guarded(metered, (q, k, v), CAUSAL_LINEAR.time_limit)  # also runs first-time imports
        numpy_peak = 0
        if error is None:
            tracemalloc.start()  # NumPy reports its arrays to tracemalloc; torch does not (the meter sees those)
            try:
                run_guarded(fn, (q, k, v), CAUSAL_LINEAR.time_limit)
                numpy_peak = tracemalloc.get_traced_memory()[1]
            finally:
                tracemalloc.stop()
    except NotImplementedError:
        value, error, numpy_peak = None, "raised NotImplementedError", 0
    if error is not None:
        return Feedback(
            False,
            True,
            f"❌ {name}: fails at N = {n}: right on the small cases, but {where} it {error}.",
            "fails at N = 2048",
        )
    got, problem = as_answer_array(value)
    expected = ef.linear_attention(q, k, v, causal=True).numpy()
    atol, rtol = tolerance_for(str(getattr(value, "dtype", "float64")))
    if got is None or got.shape != expected.shape or not np.allclose(got, expected, atol=atol, rtol=rtol):
        what = problem or (
            f"returned shape {got.shape}" if got is not None and got.shape != expected.shape else "wrong values"
        )
        return Feedback(
            False,
            True,
            f"❌ {name}: wrong at N = {n}: right on the small cases, but {where}: {what}.",
            "wrong at N = 2048",
        )
    if meter.largest >= n * n:
        return Feedback(
            False,
            True,
            f"❌ {name}: built an N x N matrix: right values, but {where} it created a tensor of {meter.largest:,} "
            f"elements (N x N = {n * n:,}). Use prefix sums of the (d, d_v) states, never phi(Q) phi(K)^T.",
            "built an N x N matrix",
        )
    if numpy_peak >= 2 * n * n:
        return Feedback(
            False,
            True,
            f"❌ {name}: built an N x N matrix: right values, but {where} NumPy held {numpy_peak / 2**20:.0f} MiB "
            f"at once, an N x N array (a bool N x N alone is {n * n / 2**20:.0f} MiB). Use prefix sums of the "
            "(d, d_v) states.",
            "built an N x N matrix",
        )
    if meter.ops > n // 2:
        return Feedback(
            False,
            True,
            f"❌ {name}: a loop over the tokens: right values in linear memory, but {where} it ran {meter.ops:,} "
            "torch operations one after another. That is the RNN form (lesson 09); here compute every prefix at "
            "once with torch.cumsum along the token axis.",
            "a loop over the tokens",
        )
    return Feedback(
        True,
        True,
        f"{passed.message} At N = {n}: no N x N matrix (largest torch tensor {meter.largest:,} elements, "
        f"N x N = {n * n:,}) and no loop over the tokens.",
    )


def check_causal_linear_attention(fn: Callable) -> Feedback:
    """Check fn(q, k (..., N, d), v (..., N, d_v)) -> (..., N, d_v): causal, elu + 1, no N x N, no token loop."""
    feedback = CAUSAL_LINEAR.check(fn, verbose=False)
    if feedback.passed:
        feedback = _cost_verdict(fn, feedback)
    print(feedback.message)
    return feedback


# ---------------------------------------------------------------------------------------------------------
# 4. Linformer's low-rank attention
# ---------------------------------------------------------------------------------------------------------


def _low_rank_cases(rng: np.random.Generator) -> list[tuple]:
    cases = []
    for lead, n, d, d_v, r in (((2,), 10, 4, 3, 3), ((), 6, 2, 5, 2), ((2, 2), 8, 3, 3, 8)):
        q, k, v = _tensor(rng, *lead, n, d), _tensor(rng, *lead, n, d), _tensor(rng, *lead, n, d_v)
        cases.append((q, k, v, _tensor(rng, r, n) / math.sqrt(n), _tensor(rng, r, n) / math.sqrt(n)))
    return cases


def _no_scale(q, k, v, E, F):
    return torch.softmax(q @ (E @ k).transpose(-2, -1), dim=-1) @ (F @ v)  # (..., N, r) @ (..., r, d_v)


def _softmax_over_queries(q, k, v, E, F):
    scores = q @ (E @ k).transpose(-2, -1) / math.sqrt(q.shape[-1])  # (..., N, d) @ (..., d, r) -> (..., N, r)
    return torch.softmax(scores, dim=-2) @ (F @ v)


LOW_RANK = Exercise(
    name="low_rank_attention",
    reference=lambda q, k, v, E, F: ef.low_rank_attention(q, k, v, E, F),
    cases=_low_rank_cases,
    mistakes=(
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
    ),
    hints=(
        "Linformer shortens the sequence of keys and values, not of queries: r mixtures of the N keys (E k) and "
        "of the N values (F v). Then it is ordinary scaled attention of the N queries over those r keys.",
        "E @ k has shape (..., r, d) and F @ v (..., r, d_v); the scores q (E k)^T are (..., N, r), divided by "
        "sqrt(d), with a softmax over the r keys, the last axis.",
        "torch.softmax(q @ (E @ k).transpose(-2, -1) / math.sqrt(q.shape[-1]), dim=-1) @ (F @ v).",
    ),
    solution="""def my_low_rank_attention(q, k, v, E, F):
    k_low = E @ k  # (r, N) @ (..., N, d) -> (..., r, d)
    v_low = F @ v  # (r, N) @ (..., N, d_v) -> (..., r, d_v)
    scores = q @ k_low.transpose(-2, -1) / math.sqrt(q.shape[-1])  # (..., N, d) @ (..., d, r) -> (..., N, r)
    return torch.softmax(scores, dim=-1) @ v_low  # (..., N, r) @ (..., r, d_v) -> (..., N, d_v)""",
)


def check_low_rank_attention(fn: Callable) -> Feedback:
    """Check low_rank_attention(q, k, v, E, F) -> (..., N, d_v): Linformer's projected keys and values."""
    return LOW_RANK.check(fn)


LESSON = Lesson(
    {"block_mask": BLOCK_MASK, "block_size": BLOCK_SIZE, "causal_linear": CAUSAL_LINEAR, "linformer": LOW_RANK}
)
hint, solution = LESSON.hint, LESSON.solution
