"""Checkers for lesson 09 (self-attention and RNN).

    check_linear_attention_rnn(fn)  fn(q (N, d), k (N, d), v (N, d_v)) -> (N, d_v): causal linear attention
                                    as a recurrence over a state S (d, d_v) and a normaliser z (d)
    check_recall_batch(fn)          fn(batch_size, n_pairs, n_keys, n_values, generator) -> (x, y): the
                                    associative-recall batch of `course_utils.tasks.recall`
    check_window_pairs(fn)          fn(n, w) -> the number of (query, key) pairs a window of +-w frames allows

The linear-attention reference is `course_utils.efficient.linear_attention_recurrent` (feature map elu + 1).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from .. import efficient
from ..attention import scaled_dot_product_attention, window_mask
from .base import Exercise, Feedback, Mistake

__all__ = [
    "LINEAR_ATTENTION_RNN",
    "WINDOW_PAIRS",
    "check_linear_attention_rnn",
    "check_recall_batch",
    "check_window_pairs",
    "recall_batch_problem",
]


class _Exercise(Exercise):
    """An Exercise that also keeps autograd quiet (the base matches NaN with NaN: a 0 / 0 is part of a mistake)."""

    def _check(self, fn) -> Feedback:
        with np.errstate(all="ignore"), torch.no_grad():
            return super()._check(fn)


# ---------------------------------------------------------------------------------------------------------
# Causal linear attention as an RNN
# ---------------------------------------------------------------------------------------------------------


def _linear_cases(rng: np.random.Generator) -> list[tuple]:
    cases = []
    for n, d, d_v in ((5, 3, 2), (8, 4, 4), (1, 2, 3), (6, 2, 5)):
        g = torch.Generator().manual_seed(int(rng.integers(2**31)))
        q, k, v = (torch.randn(n, dim, generator=g, dtype=torch.float64) for dim in (d, d, d_v))
        cases.append((q, k, v))
    return cases


def _recurrence(q, k, v, phi_q=efficient.elu_features, phi_k=efficient.elu_features, normalise=True, late=False):
    """A linear-attention loop (N, d_v) with one deliberate change: what each named mistake computes."""
    state = q.new_zeros(q.shape[-1], v.shape[-1])  # S: (d, d_v)
    z = q.new_zeros(q.shape[-1])  # (d,)
    outputs = []
    for i in range(q.shape[0]):
        if late:  # reads the state before adding token i: token i does not see itself
            out = phi_q(q[i]) @ state / (phi_q(q[i]) @ z)  # (d,) @ (d, d_v) -> (d_v,); 0 / 0 at i = 0
        state = state + torch.outer(phi_k(k[i]), v[i])  # (d, 1) * (1, d_v) -> (d, d_v)
        z = z + phi_k(k[i])
        if not late:
            out = phi_q(q[i]) @ state  # (d,) @ (d, d_v) -> (d_v,)
            if normalise:
                out = out / (phi_q(q[i]) @ z)
        outputs.append(out)
    return torch.stack(outputs)  # (N, d_v)


_identity = lambda x: x

LINEAR_ATTENTION_RNN = _Exercise(
    name="causal linear attention as an RNN",
    reference=lambda q, k, v: efficient.linear_attention_recurrent(q, k, v, feature_map="elu"),
    cases=_linear_cases,
    mistakes=(
        Mistake(
            "no normaliser",
            lambda q, k, v: _recurrence(q, k, v, normalise=False),
            "Divide by phi(q_i) . z_i, where z_i = sum of phi(k_j) over j <= i: it plays the softmax "
            "denominator's role, so the weights on the values sum to 1.",
        ),
        Mistake(
            "not causal: every output uses the whole sequence",
            lambda q, k, v: efficient.linear_attention(q, k, v, causal=False, feature_map="elu"),
            "Output i may only use tokens j <= i: update S and z with token i, then read them, inside the loop.",
        ),
        Mistake(
            "token i does not see itself",
            lambda q, k, v: _recurrence(q, k, v, late=True),
            "Add phi(k_i) v_i^T to S (and phi(k_i) to z) before computing output i: causal attention includes j = i.",
        ),
        Mistake(
            "no feature map",
            lambda q, k, v: _recurrence(q, k, v, phi_q=_identity, phi_k=_identity),
            "Apply phi(x) = elu(x) + 1 to queries and keys: similarities phi(q) . phi(k) must be positive, "
            "or the normaliser can be zero or negative.",
        ),
        Mistake(
            "elu without + 1",
            lambda q, k, v: _recurrence(q, k, v, phi_q=torch.nn.functional.elu, phi_k=torch.nn.functional.elu),
            "phi(x) = elu(x) + 1: elu alone is negative for x < 0, so phi(q) . phi(k) can be negative.",
        ),
        Mistake(
            "feature map on the keys only",
            lambda q, k, v: _recurrence(q, k, v, phi_q=_identity),
            "Apply phi to the query too: out_i = phi(q_i) S_i / phi(q_i) . z_i.",
        ),
        Mistake(
            "softmax attention instead of linear attention",
            lambda q, k, v: scaled_dot_product_attention(q, k, v, is_causal=True),
            "Linear attention replaces exp(q . k) by phi(q) . phi(k); that is what lets it run as an RNN.",
        ),
    ),
    hint="S = zeros(d, d_v), z = zeros(d); for each i: S += outer(phi(k_i), v_i); z += phi(k_i); "
    "out_i = phi(q_i) @ S / (phi(q_i) @ z), with phi = elu + 1 (course_utils.efficient.elu_features).",
    atol=1e-8,
    rtol=1e-6,
)


def check_linear_attention_rnn(fn: Callable) -> Feedback:
    """Check fn(q (N, d), k (N, d), v (N, d_v)) -> (N, d_v), causal linear attention (elu + 1) as a loop."""
    return LINEAR_ATTENTION_RNN.check(fn)


# ---------------------------------------------------------------------------------------------------------
# The associative-recall batch
# ---------------------------------------------------------------------------------------------------------

_RECALL_CASES = ((64, 4, 8, 3), (64, 6, 6, 5), (64, 1, 3, 2), (128, 8, 16, 4))  # (B, n_pairs, n_keys, n_values)


def recall_batch_problem(x, y, batch_size: int, n_pairs: int, n_keys: int, n_values: int) -> tuple[str, str] | None:
    """The first thing wrong with a recall batch (x, y), as (name, what to change); None when it is right."""
    d_in = n_keys + n_values + 1
    if not isinstance(x, torch.Tensor) or not isinstance(y, torch.Tensor):
        return "x and y must be tensors", f"got {type(x).__name__} and {type(y).__name__}"
    if tuple(x.shape) != (batch_size, n_pairs + 1, d_in):
        return (
            "x has the wrong shape",
            f"got {tuple(x.shape)}, expected (batch_size, n_pairs + 1, n_keys + n_values + 1) = "
            f"{(batch_size, n_pairs + 1, d_in)}: n_pairs pair tokens, then the query token.",
        )
    if tuple(y.shape) != (batch_size,) or y.is_floating_point() or y.dtype == torch.bool:
        return "y must be (batch_size,) integer class indices", f"got shape {tuple(y.shape)}, dtype {y.dtype}."
    x = x.detach().double()
    key_bits, value_bits, flag = x[..., :n_keys], x[..., n_keys : n_keys + n_values], x[..., -1]
    binary = ((x == 0) | (x == 1)).all()
    query_last = bool((flag[:, -1] == 1).all()) and bool((flag[:, :-1] == 0).all())
    if not binary or not query_last:
        if binary and bool((flag.sum(1) == 1).all()):
            return "the query is not the last token", "Put the n_pairs pair tokens first and the query token last."
        return (
            "tokens are not one-hot",
            "Use 0/1 entries: [one-hot key | one-hot value | flag], flag 1 on the query only.",
        )
    pairs_ok = (key_bits[:, :-1].sum(-1) == 1).all() and (value_bits[:, :-1].sum(-1) == 1).all()
    if not pairs_ok:
        return "pair tokens need one key and one value", "Each pair token has exactly one key bit and one value bit."
    if (value_bits[:, -1] != 0).any():
        return (
            "the query token carries the answer",
            "Leave the query's value bits at zero: only its key (and the flag) are set, or the model reads the label.",
        )
    if not (key_bits[:, -1].sum(-1) == 1).all():
        return "the query needs exactly one key", "Set one key bit on the query token: the key it asks about."
    keys = key_bits[:, :-1].argmax(-1)  # (B, n_pairs)
    values = value_bits[:, :-1].argmax(-1)  # (B, n_pairs)
    query = key_bits[:, -1].argmax(-1)  # (B,)
    if any(len(set(row.tolist())) < n_pairs for row in keys):
        return (
            "keys repeat within a sequence",
            "Draw distinct keys per sequence (e.g. a random permutation of the keys, first n_pairs): a repeated "
            "key with two values makes the answer ambiguous.",
        )
    match = keys == query[:, None]  # (B, n_pairs)
    if not match.any(1).all():
        return (
            "the query key is not in the sequence",
            "Draw the query from the sequence's own keys (pick one of its pairs), not from the whole vocabulary.",
        )
    answer = values[match]  # (B,): one match per row, keys being distinct
    y = y.long()
    if not torch.equal(y, answer):
        if torch.equal(y, query):
            return "the label is the query key", "The label is the value paired with the query key, not the key."
        if torch.equal(y, values[:, -1]):
            return "the label is the last pair's value", "Take the value of the pair whose key equals the query key."
        return "the label is not the query's value", "y[b] must be the value of the pair whose key is the query key."
    asked = match.float().argmax(1)  # (B,) which pair the query asks for
    if n_pairs > 1 and len(set(asked.tolist())) == 1:
        return (
            "the query always asks for the same pair",
            "Pick the asked pair at random per sequence, or a model can learn the position and ignore the keys.",
        )
    return None


def check_recall_batch(fn: Callable, verbose: bool = True) -> Feedback:
    """Check fn(batch_size, n_pairs, n_keys, n_values, generator) -> (x, y) on several sizes; print the verdict."""
    feedback = _check_recall_batch(fn)
    if verbose:
        print(feedback.message)
    return feedback


def _check_recall_batch(fn: Callable) -> Feedback:
    name = "associative-recall batch"
    if not callable(fn):
        return Feedback(False, True, f"❌ {name}: expected a function, got {type(fn).__name__}.")
    for case in _RECALL_CASES:
        try:
            out = fn(*case, torch.Generator().manual_seed(0))
            again = fn(*case, torch.Generator().manual_seed(0))
        except NotImplementedError:
            hint = (
                "keys = torch.rand(B, n_keys, generator=g).argsort(1)[:, :n_pairs]; values = torch.randint(...); "
                "pick one pair per row to ask about; x = zeros(B, n_pairs + 1, n_keys + n_values + 1) and set bits."
            )
            return Feedback(False, False, f"✏️  {name}: not answered yet.\n   Hint: {hint}")
        except Exception as exc:
            return Feedback(False, True, f"❌ {name}: raised {type(exc).__name__}: {exc}\n   on arguments {case}.")
        if not (isinstance(out, tuple) and len(out) == 2):
            return Feedback(False, True, f"❌ {name}: return the pair (x, y), got {type(out).__name__}.")
        problem = recall_batch_problem(*out, *case)
        if problem is not None:
            return Feedback(False, True, f"❌ {name}: {problem[0]}. {problem[1]} (arguments {case})", problem[0])
        if not all(torch.equal(a, b) for a, b in zip(out, again)):
            return Feedback(
                False,
                True,
                f"❌ {name}: the generator is ignored. Pass generator=generator to every torch.rand/randint call, "
                "so the same seed gives the same batch.",
                "the generator is ignored",
            )
    return Feedback(True, True, f"✅ {name}: correct on all {len(_RECALL_CASES)} test cases.")


# ---------------------------------------------------------------------------------------------------------
# The cost of truncated attention
# ---------------------------------------------------------------------------------------------------------


def _window_cases(rng: np.random.Generator) -> list[tuple]:
    return [(100, 5), (37, 3), (10, 0), (6, 2), (4, 9), (5, 4)]  # the last two: the window covers everything


WINDOW_PAIRS = _Exercise(
    name="pairs in a window",
    reference=lambda n, w: int(window_mask(n, w).sum()),
    cases=_window_cases,
    mistakes=(
        Mistake(
            "full attention: n^2",
            lambda n, w: n * n,
            "A frame only attends to frames within w of it, not to every frame.",
        ),
        Mistake(
            "forgot the edges",
            lambda n, w: n * (2 * w + 1),
            "The first and last w frames have fewer neighbours: subtract the w (w + 1) pairs that fall off the ends.",
        ),
        Mistake(
            "forgot the frame itself",
            lambda n, w: n * (2 * w + 1) - w * (w + 1) - n,
            "Each frame also attends to itself (|i - j| = 0 <= w).",
        ),
        Mistake(
            "counted only one side",
            lambda n, w: int(window_mask(n, w, causal=True).sum()),
            "The window reaches w frames back and w frames ahead (a causal window would be one side).",
        ),
        Mistake(
            "the window is wider than the sequence",
            lambda n, w: n * (2 * w + 1) - w * (w + 1),
            "With w >= n - 1 every pair is inside the window: the answer is n^2. Clip w at n - 1.",
        ),
    ),
    hint="Count pairs (i, j) with |i - j| <= w: n (2w + 1) minus what falls off the two ends; clip w at n - 1.",
)


def check_window_pairs(fn: Callable) -> Feedback:
    """Check fn(n, w) -> the number of allowed (query, key) pairs of window_mask(n, w), an int."""
    return WINDOW_PAIRS.check(fn)
