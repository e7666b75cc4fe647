"""Checkers for lesson 09 (self-attention and RNN).

    LESSON.hint(key), LESSON.solution(key)   the next hint / a solution, for key "linear_rnn", "recall" or
                                            "causal_pairs"
    check_linear_attention_rnn(fn)  fn(q (N, d), k (N, d), v (N, d_v)) -> (N, d_v): causal linear attention
                                    as a recurrence over a state S (d, d_v) and a normaliser z (d)
    check_recall_batch(fn)          fn(batch_size, n_pairs, n_keys, n_values, generator) -> (x, y): the
                                    associative-recall batch of `course_utils.tasks.recall`
    check_causal_window_pairs(fn)   fn(n, w) -> the number of (query, key) pairs a causal window of w past
                                    frames allows, `window_mask(n, w, causal=True).sum()`

The linear-attention reference is `course_utils.efficient.linear_attention_recurrent` (feature map elu + 1).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from .. import efficient
from .._validate import shape_of
from ..attention import scaled_dot_product_attention, window_mask
from .base import Causal, Exercise, Feedback, Lesson, Mistake, _Hinted, run_guarded

__all__ = [
    "LESSON",
    "LINEAR_ATTENTION_RNN",
    "RECALL_BATCH",
    "CAUSAL_WINDOW_PAIRS",
    "check_linear_attention_rnn",
    "check_recall_batch",
    "check_causal_window_pairs",
    "recall_batch_problem",
    "hint",
    "solution",
]


# ---------------------------------------------------------------------------------------------------------
# 1. Causal linear attention as an RNN
# ---------------------------------------------------------------------------------------------------------


def _linear_cases(rng: np.random.Generator) -> list[tuple]:
    cases = []
    for n, d, d_v in ((5, 3, 2), (8, 4, 4), (1, 2, 3), (6, 2, 5)):
        g = torch.Generator().manual_seed(int(rng.integers(2**31)))
        q, k, v = (torch.randn(n, dim, generator=g, dtype=torch.float64) for dim in (d, d, d_v))  # (N, dim)
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


def _identity(x):
    return x


LINEAR_ATTENTION_RNN = Exercise(
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
    hints=(
        "An RNN carries a state from token to token. Here the state is S (d, d_v), the running sum of "
        "phi(k_j) v_j^T, and z (d), the running sum of phi(k_j); both start at zero, and phi = elu + 1.",
        "Visit the tokens in order. For token i, first add its key and value to S and z (causal attention "
        "includes j = i), then read output i from them: phi(q_i) S divided by phi(q_i) . z.",
        "S = S + torch.outer(phi(k[i]), v[i]); z = z + phi(k[i]); out_i = phi(q[i]) @ S / (phi(q[i]) @ z), "
        "with phi = efficient.elu_features; torch.stack the N outputs.",
    ),
    solution="""def my_linear_attention_rnn(q, k, v):
    phi = efficient.elu_features
    S = torch.zeros(q.shape[1], v.shape[1], dtype=q.dtype)  # (d, d_v)
    z = torch.zeros(q.shape[1], dtype=q.dtype)  # (d,)
    outputs = []
    for i in range(q.shape[0]):
        S = S + torch.outer(phi(k[i]), v[i])  # (d, 1) * (1, d_v) -> (d, d_v): token i joins the state first
        z = z + phi(k[i])
        outputs.append(phi(q[i]) @ S / (phi(q[i]) @ z))  # (d,) @ (d, d_v) -> (d_v,)
    return torch.stack(outputs)  # (N, d_v)""",
    causal=Causal(arg=(0, 1, 2), token_axis=-2, out_token_axis=-2),  # the future q, k and v may all change
)


def check_linear_attention_rnn(fn: Callable) -> Feedback:
    """Check fn(q (N, d), k (N, d), v (N, d_v)) -> (N, d_v), causal linear attention (elu + 1) as a loop."""
    return LINEAR_ATTENTION_RNN.check(fn)


# ---------------------------------------------------------------------------------------------------------
# 2. The associative-recall batch
# ---------------------------------------------------------------------------------------------------------

_RECALL_CASES = ((64, 4, 8, 3), (64, 6, 6, 5), (64, 1, 3, 2), (128, 8, 16, 4))  # (B, n_pairs, n_keys, n_values)


def _x_dtype_problem(x: torch.Tensor) -> tuple[str, str] | None:
    """x must be in the default float dtype (float32): what nn.Linear's weights are."""
    expected = torch.get_default_dtype()
    if x.dtype == expected:
        return None
    if x.dtype == torch.bool:
        why = "a bool tensor"
    elif x.is_complex():
        why = f"complex ({x.dtype})"
    elif not x.is_floating_point():
        why = f"an integer tensor ({x.dtype})"
    else:
        why = f"{x.dtype}, not {expected}"
    return (
        f"x is {why}",
        f"The models' nn.Linear layers hold {expected} weights and refuse {x.dtype} inputs "
        f'("mat1 and mat2 must have the same dtype"). Build x with torch.zeros(...), which gives {expected}, '
        "or convert it with x.float().",
    )


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
    dtype_problem = _x_dtype_problem(x)
    if dtype_problem is not None:
        return dtype_problem
    if tuple(y.shape) != (batch_size,) or y.is_floating_point() or y.is_complex() or y.dtype == torch.bool:
        return "y must be (batch_size,) integer class indices", f"got shape {tuple(y.shape)}, dtype {y.dtype}."
    x = x.detach().double()
    if not torch.isfinite(x).all():
        return "x holds NaN or inf", "Every entry of x is 0 or 1."
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


def _describe_pair(out) -> str:
    if isinstance(out, (tuple, list)):
        return "(" + ", ".join(shape_of(t) if hasattr(t, "shape") else type(t).__name__ for t in out) + ")"
    return type(out).__name__


class _RecallCheck(_Hinted):
    """The recall batch is checked by its properties (it is random): a custom checker with stepped hints."""

    time_limit: float = 10.0

    def check(self, fn: Callable, verbose: bool = True) -> Feedback:
        try:
            feedback = self._check(fn)
        except Exception as exc:  # a bug in the checker must not look like the learner's
            feedback = Feedback(
                False, True, f"⚠️  {self.name}: the checker itself failed ({type(exc).__name__}: {exc})."
            )
        if verbose:
            print(feedback.message)
        return feedback

    def _check(self, fn: Callable) -> Feedback:
        if not callable(fn):
            return Feedback(False, True, f"❌ {self.name}: expected a function, got {type(fn).__name__}.")
        for case in _RECALL_CASES:
            where = f"(your function received batch_size, n_pairs, n_keys, n_values = {case} and a generator)"
            outs = []
            for _ in range(2):  # the same seed twice: the same batch
                try:
                    out, error = run_guarded(fn, (*case, torch.Generator().manual_seed(0)), self.time_limit)
                except NotImplementedError:
                    return self._unanswered()
                if error is not None:
                    return Feedback(False, True, f"❌ {self.name}: {error}\n   {where}.")
                outs.append(out)
            out, again = (tuple(o) if isinstance(o, list) and len(o) == 2 else o for o in outs)
            if not (isinstance(out, (tuple, list)) and len(out) == 2):
                return Feedback(
                    False,
                    True,
                    f"❌ {self.name}: not a pair (x, y): return x and y together, got {_describe_pair(out)} {where}.",
                    "not a pair (x, y)",
                )
            with torch.no_grad():
                problem = recall_batch_problem(out[0], out[1], *case)
            if problem is not None:
                return Feedback(False, True, f"❌ {self.name}: {problem[0]}. {problem[1]}\n   {where}.", problem[0])
            if not all(torch.equal(a, b) for a, b in zip(out, again)):
                return Feedback(
                    False,
                    True,
                    f"❌ {self.name}: the generator is ignored. Pass generator=generator to every torch.rand/randint "
                    "call, so the same seed gives the same batch.",
                    "the generator is ignored",
                )
        return Feedback(True, True, f"✅ {self.name}: correct on all {len(_RECALL_CASES)} test cases.")


RECALL_BATCH = _RecallCheck(
    name="associative-recall batch",
    hints=(
        "Three random draws per batch, each with `generator`: which keys a sequence holds (distinct within it), "
        "which value each key gets, and which of its pairs the query asks about. Then write them as one-hot bits.",
        "Distinct keys: a random permutation of the n_keys keys per sequence, keeping the first n_pairs (argsort "
        "of uniform noise gives one permutation per row). Values may repeat. Start x from torch.zeros, which is "
        "float32 as nn.Linear wants, and set the bits.",
        "keys = torch.rand(B, n_keys, generator=g).argsort(1)[:, :n_pairs]; values = torch.randint(n_values, "
        "(B, n_pairs), generator=g); asked = torch.randint(n_pairs, (B,), generator=g); set x[b, i, keys[b, i]] "
        "and x[b, i, n_keys + values[b, i]]; the query row gets keys[b, asked[b]] and the flag; "
        "y = values[arange(B), asked].",
    ),
    solution="""def my_recall_batch(batch_size, n_pairs, n_keys, n_values, generator):
    keys = torch.rand(batch_size, n_keys, generator=generator).argsort(dim=1)[:, :n_pairs]  # (B, P) distinct
    values = torch.randint(n_values, (batch_size, n_pairs), generator=generator)  # (B, P)
    asked = torch.randint(n_pairs, (batch_size,), generator=generator)  # (B,) the pair the query asks for
    x = torch.zeros(batch_size, n_pairs + 1, n_keys + n_values + 1)  # float32, like nn.Linear's weights
    rows = torch.arange(batch_size)[:, None]  # (B, 1)
    pairs = torch.arange(n_pairs)[None, :]  # (1, P)
    x[rows, pairs, keys] = 1.0  # one key bit per pair token
    x[rows, pairs, n_keys + values] = 1.0  # one value bit per pair token
    x[torch.arange(batch_size), -1, keys[torch.arange(batch_size), asked]] = 1.0  # the query's key ...
    x[:, -1, -1] = 1.0  # ... and its flag
    y = values[torch.arange(batch_size), asked]  # (B,) int64
    return x, y""",
)


def check_recall_batch(fn: Callable, verbose: bool = True) -> Feedback:
    """Check fn(batch_size, n_pairs, n_keys, n_values, generator) -> (x, y) on several sizes; print the verdict."""
    return RECALL_BATCH.check(fn, verbose=verbose)


# ---------------------------------------------------------------------------------------------------------
# 3. The cost of a causal (streaming) window
# ---------------------------------------------------------------------------------------------------------


def _pairs_cases(rng: np.random.Generator) -> list[tuple]:
    return [(100, 5), (37, 3), (10, 0), (6, 2), (4, 9), (5, 4), (1, 0)]  # the last three: the window covers all


def _clip(n: int, w: int) -> int:
    return min(w, n - 1)


CAUSAL_WINDOW_PAIRS = Exercise(
    name="pairs in a causal window",
    reference=lambda n, w: int(window_mask(n, w, causal=True).sum()),
    cases=_pairs_cases,
    mistakes=(
        Mistake(
            "full attention: n^2",
            lambda n, w: n * n,
            "A frame attends only to itself and the w frames before it, not to every frame.",
        ),
        Mistake(
            "all of the past: n (n + 1) / 2",
            lambda n, w: n * (n + 1) // 2,
            "That is a causal mask with no window: here a frame sees at most w frames back.",
        ),
        Mistake(
            "counted both sides",
            lambda n, w: n * (2 * _clip(n, w) + 1) - _clip(n, w) * (_clip(n, w) + 1),
            "That is the two-sided window of the lesson; the causal window reaches w frames back and none ahead.",
        ),
        Mistake(
            "forgot the first frames",
            lambda n, w: n * (_clip(n, w) + 1),
            "Frame i has only i frames before it: the first w frames see fewer than w + 1 keys. Subtract "
            "the 1 + 2 + ... + w pairs that would reach before frame 0.",
        ),
        Mistake(
            "forgot the frame itself",
            lambda n, w: n * (_clip(n, w) + 1) - _clip(n, w) * (_clip(n, w) + 1) // 2 - n,
            "Each frame also attends to itself (i - j = 0 <= w).",
        ),
        Mistake(
            "the window is wider than the sequence",
            lambda n, w: n * (w + 1) - w * (w + 1) // 2,
            "With w >= n - 1 every frame sees its whole past and the answer is n (n + 1) / 2: clip w at n - 1.",
        ),
    ),
    hints=(
        "Count per query frame i: it sees itself and up to w frames before it, but only i frames exist before it.",
        "So frame i sees min(i, w) + 1 keys. Every frame from i = w on sees w + 1; the first w frames see fewer. "
        "A window with w >= n - 1 is the same as w = n - 1.",
        "Clip w at n - 1; then the total is n (w + 1) minus the 1 + 2 + ... + w = w (w + 1) / 2 missing pairs.",
    ),
    solution="""def my_causal_window_pairs(n, w):
    w = min(w, n - 1)  # a window longer than the sequence sees all of the past
    return n * (w + 1) - w * (w + 1) // 2  # w + 1 per frame, minus the pairs before frame 0""",
    output="scalar",
)


def check_causal_window_pairs(fn: Callable) -> Feedback:
    """Check fn(n, w) -> the number of allowed (query, key) pairs of window_mask(n, w, causal=True), an int."""
    return CAUSAL_WINDOW_PAIRS.check(fn)


LESSON = Lesson({"linear_rnn": LINEAR_ATTENTION_RNN, "recall": RECALL_BATCH, "causal_pairs": CAUSAL_WINDOW_PAIRS})
hint, solution = LESSON.hint, LESSON.solution
