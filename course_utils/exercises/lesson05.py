"""Lesson 05's exercises (multi-head self-attention), in PyTorch's row convention.

masked_mha  (build)    fn(X (N, D), Wq, Wk, Wv, Wo (D, D) as nn.Linear.weight, num_heads, mask (N, N) bool) -> (N, D):
                       multi-head attention in NumPy, True in `mask` = may attend; every case's mask is causal
                       (a sliding window over the past), so the checker also perturbs future tokens.
parameters  (predict)  how many parameters MultiHeadSelfAttention(32, num_heads=8, bias=False) has.
causal_order (predict) whether multi-head attention with a causal mask is still permutation-equivariant.

`ex.hint(key)` prints the next hint, `ex.solution(key)` a solution.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .. import reference as ref
from .base import Causal, Exercise, Feedback, Lesson, Mistake, Prediction

__all__ = [
    "MASKED_MHA",
    "PARAMETERS",
    "LESSON",
    "hint",
    "solution",
    "window_causal_mask",
    "check_masked_multi_head_attention",
    "check_parameter_count",
    "CAUSAL_ORDER",
    "check_causal_order",
]


def window_causal_mask(n: int, window: int) -> np.ndarray:
    """(n, n) bool, True where query i may attend key j: i - window < j <= i (a causal sliding window)."""
    i, j = np.arange(n)[:, None], np.arange(n)[None, :]
    return (j <= i) & (j > i - window)


def _mha(
    X,
    Wq,
    Wk,
    Wv,
    Wo,
    num_heads,
    mask,
    *,
    scale_dim: int | None = None,
    unscaled: bool = False,
    axis: int = -1,
    out: bool = True,
    heads: int | None = None,
    transposed: str = "",
    mask_use: str = "fill",
):
    """Masked multi-head attention, rows = tokens, with one deliberate change when a keyword says so.

    transposed: which weights are used as stored instead of transposed ("qkv", "o" or "qkvo").
    mask_use: "fill" (-inf where False: right), "inverted", "ignored", "causal" (np.tril instead of the mask),
    "multiplied" (scores * mask), "added" (scores + mask), "after_softmax" (weights * mask, not renormalised).
    """
    H = num_heads if heads is None else heads
    N, D = X.shape
    d = D // H

    def project(W, key):
        W_used = W if key in transposed else W.T
        return (X @ W_used).reshape(N, H, d).transpose(1, 0, 2)  # (N, D) @ (D, D) -> (N, D) -> (H, N, d)

    q, k, v = project(Wq, "q"), project(Wk, "k"), project(Wv, "v")
    s = 1.0 if unscaled else 1.0 / np.sqrt(d if scale_dim is None else scale_dim)
    scores = s * (q @ k.transpose(0, 2, 1))  # (H, N, d) @ (H, d, N) -> (H, N, N)
    allowed = {"inverted": ~mask, "causal": np.tril(np.ones_like(mask))}.get(mask_use, mask)
    if mask_use in ("fill", "inverted", "causal"):
        scores = np.where(allowed, scores, -np.inf)
    elif mask_use == "multiplied":
        scores = scores * mask
    elif mask_use == "added":
        scores = scores + mask
    weights = ref.softmax(scores, axis=axis)  # (H, N, N)
    if mask_use == "after_softmax":
        weights = weights * mask
    heads_out = weights @ v  # (H, N, N) @ (H, N, d) -> (H, N, d)
    concat = heads_out.transpose(1, 0, 2).reshape(N, H * d)  # (N, H, d) -> (N, D)
    return concat @ (Wo if "o" in transposed else Wo.T) if out else concat  # (N, D) @ (D, D) -> (N, D)


def _mha_cases(rng: np.random.Generator) -> list[tuple]:
    """Square weights that are not symmetric, N != D, and causal windows shorter than N (so no row of the
    inverted mask is empty); window 1 lets each token see only itself."""
    cases = []
    for N, D, H, window in ((5, 8, 2, 2), (6, 12, 3, 4), (7, 16, 4, 3), (4, 8, 2, 1)):
        W = [rng.normal(size=(D, D)) / np.sqrt(D) for _ in range(4)]
        X = rng.normal(size=(N, D)) * 2.0
        cases.append((X, *W, H, window_causal_mask(N, window)))
    return cases


def _mistake(name: str, explanation: str, **change) -> Mistake:
    return Mistake(name, lambda X, Wq, Wk, Wv, Wo, H, mask: _mha(X, Wq, Wk, Wv, Wo, H, mask, **change), explanation)


_TRANSPOSED = (
    "transposed weights",
    "nn.Linear stores its weight as (out_features, in_features) and computes x @ W.T: so q = X @ Wq.T, and the "
    "merged heads are multiplied by Wo.T. With X @ Wq the square matrix runs the wrong way round.",
)

MASKED_MHA = Exercise(
    name="masked multi-head attention",
    reference=_mha,
    cases=_mha_cases,
    mistakes=(
        _mistake(*_TRANSPOSED, transposed="qkvo"),
        _mistake(*_TRANSPOSED, transposed="qkv"),
        _mistake(*_TRANSPOSED, transposed="o"),
        _mistake(
            "mask polarity inverted",
            "Here, as in torch's SDPA, True means *may attend*: keep the scores where the mask is True and set the "
            "others to -inf (torch.nn.MultiheadAttention's boolean masks mean the opposite).",
            mask_use="inverted",
        ),
        _mistake(
            "ignored the mask",
            "Every query attended to every key. Set the scores where mask is False to -inf before the softmax.",
            mask_use="ignored",
        ),
        _mistake(
            "a causal mask instead of the given one",
            "The masks here are causal *windows* (each token sees only its last few tokens); use the mask you are "
            "given, not np.tril of your own.",
            mask_use="causal",
        ),
        _mistake(
            "multiplied the scores by the mask",
            "scores * mask turns a forbidden score into 0, and exp(0) = 1 still gets weight: set forbidden scores to "
            "-inf instead, so exp gives exactly 0.",
            mask_use="multiplied",
        ),
        _mistake(
            "added the boolean mask to the scores",
            "scores + mask adds 1 to the allowed scores and 0 to the others, which masks nothing (a float mask is "
            "added, a boolean one selects): use np.where(mask, scores, -np.inf).",
            mask_use="added",
        ),
        _mistake(
            "mask applied after the softmax",
            "Zeroing weights after the softmax leaves rows that no longer sum to 1. Mask the scores (-inf) before "
            "the softmax and it renormalises over the allowed keys by itself.",
            mask_use="after_softmax",
        ),
        Mistake(
            "scaled by 1/sqrt(D) instead of 1/sqrt(d)",
            lambda X, Wq, Wk, Wv, Wo, H, mask: _mha(X, Wq, Wk, Wv, Wo, H, mask, scale_dim=X.shape[1]),
            "Each head's scores are q . k over its own d = D / H features: divide by sqrt(d), the head dimension.",
        ),
        _mistake(
            "forgot the 1/sqrt(d) scale",
            "As in lesson 04, divide each head's scores by sqrt(d) (d = D / H) before the softmax.",
            unscaled=True,
        ),
        _mistake(
            "softmax over the wrong axis",
            "Row i of a head's (N, N) scores belongs to query i: normalise over the last axis (the keys).",
            axis=-2,
        ),
        _mistake(
            "forgot W^O",
            "b^i = W^O [b^{i,1}; ...; b^{i,H}]: after concatenating the heads, multiply by Wo.T (row convention).",
            out=False,
        ),
        _mistake(
            "one head over all D features",
            "Split q, k, v into num_heads blocks of d = D / H features and attend within each block separately.",
            heads=1,
        ),
    ),
    causal=Causal(arg=0, token_axis=-2, out_token_axis=-2),
    hints=(
        "Per head h: project X with the weights (nn.Linear's layout: a weight is (out, in)), keep head h's block of "
        "d = D / num_heads features, score every query against every key with that head's own scale, forbid what "
        "the mask forbids, softmax, sum the values. Then put the heads side by side and mix them with W^O.",
        "q = X @ Wq.T is (N, D); reshape it to (N, H, d) and move H first: (H, N, d). Scores (H, N, N) = q k^T / "
        "sqrt(d). Where mask is False (True = may attend) the score must count for nothing: -inf, before the "
        "softmax over the keys.",
        "scores = np.where(mask, q @ k.transpose(0, 2, 1) / np.sqrt(d), -np.inf); weights = softmax(scores) over "
        "axis -1; merged = (weights @ v).transpose(1, 0, 2).reshape(N, D); return merged @ Wo.T",
    ),
    solution="""def masked_multi_head_attention(X, Wq, Wk, Wv, Wo, num_heads, mask):
    N, D = X.shape
    d = D // num_heads

    def heads(W):
        return (X @ W.T).reshape(N, num_heads, d).transpose(1, 0, 2)  # (N, D) -> (N, H, d) -> (H, N, d)

    q, k, v = heads(Wq), heads(Wk), heads(Wv)
    scores = q @ k.transpose(0, 2, 1) / np.sqrt(d)  # (H, N, d) @ (H, d, N) -> (H, N, N)
    scores = np.where(mask, scores, -np.inf)  # True = may attend
    scores = scores - scores.max(axis=-1, keepdims=True)
    weights = np.exp(scores) / np.exp(scores).sum(axis=-1, keepdims=True)  # softmax over the keys
    merged = (weights @ v).transpose(1, 0, 2).reshape(N, D)  # (H, N, d) -> (N, H, d) -> (N, D)
    return merged @ Wo.T  # (N, D) @ (D, D) -> (N, D)""",
)


def check_masked_multi_head_attention(fn: Callable) -> Feedback:
    """Check fn(X (N, D), Wq, Wk, Wv, Wo (D, D), num_heads, mask (N, N) bool) -> (N, D)."""
    return MASKED_MHA.check(fn)


PARAMETERS = Prediction(
    name="parameters of MultiHeadSelfAttention(32, num_heads=8, bias=False)",
    kind="int",
    hints=(
        "Count the learned matrices. How many features does each head's q have, and how many heads are there?",
        "Head h's W^{q,h} is (d, D) with d = D / H; all H of them together are one (D, D) matrix (section 2's "
        "fused projection). The same holds for W^k and W^v. Then W^O.",
        "in_proj is (3D, D) and out_proj is (D, D): add them up for D = 32.",
    ),
    solution="my_parameter_count = 4 * 32 * 32  # 4096: W_q, W_k, W_v and W^O, each (D, D), for any number of heads",
    explanation=(
        "Heads split the D features, they do not add any: H heads of width D / H have H * (D / H) * D = D * D "
        "weights for each of q, k and v, and W^O is (D, D). So 4 D^2 = 4096 for every H that divides D; more heads "
        "means more, smaller attention patterns, at the same parameter cost."
    ),
)


def check_parameter_count(predicted, measured) -> Feedback:
    """Compare the stored prediction with count_parameters(MultiHeadSelfAttention(32, 8, bias=False))."""
    return PARAMETERS.check(predicted, measured)


CAUSAL_ORDER = Prediction(
    name="a causal mask and permutation equivariance",
    kind="bool",
    hints=(
        "Permutation equivariance means: shuffle the tokens, and each token's output is the one it had before, "
        "only at its new place. Does a token's output depend on where it stands?",
        "Without a mask every token attends to all tokens, wherever it stands. With a causal mask token i attends "
        "to tokens 0 .. i. After a shuffle, which tokens does the token now at place i see?",
        "Think of the first token of the shuffled sequence: how many tokens can it attend to now, and how many "
        "before the shuffle?",
    ),
    solution="my_causal_guess = False  # a token's output depends on how many tokens stand before it",
    explanation=(
        "With a causal mask, the set of tokens a token attends to is the ones before it, so its output depends on "
        "where it stands: moved to the front it sees only itself. The mask carries order, even with no positional "
        "encoding at all: in lesson 06's causal experiment the model with no positions beats a constant answer "
        "through the mask alone."
    ),
)


def check_causal_order(predicted, measured) -> Feedback:
    """Compare the stored bool with the measurement: is causal multi-head attention permutation-equivariant?"""
    return CAUSAL_ORDER.check(predicted, measured)


LESSON = Lesson({"masked_mha": MASKED_MHA, "parameters": PARAMETERS, "causal_order": CAUSAL_ORDER})
hint, solution = LESSON.hint, LESSON.solution
