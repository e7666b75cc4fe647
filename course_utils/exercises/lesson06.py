"""Lesson 06's exercises (positional encoding), in the row convention with NumPy arrays.

sinusoidal    (build)    fn(n_positions, d_model) -> E (N, D): E[p, 2i] = sin(p / 10000^(2i/D)), E[p, 2i+1] = cos(..)
rope          (build)    fn(x (N, d)) -> x with each pair (x[p, 2i], x[p, 2i+1]) rotated by p / 10000^(2i/d);
                         rotating the other way (by -angle) is accepted: it is RoPE with the opposite sign convention
causal_alibi  (build)    fn(q, k, v (H, N, d)) -> (H, N, d): causal attention with ALiBi's penalty -s_h (i - j)
extrapolation (predict)  which encoding loses least accuracy from 12 to 48 tokens on a causal task (`recent_marker`)

The causal experiment lives here too: `recent_marker` (the task), `train_causal` and `causal_accuracy`.
`ex.hint(key)` prints the next hint, `ex.solution(key)` a solution.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch import nn

from .. import reference as ref
from .._validate import check_positive_int
from .base import Causal, Exercise, Feedback, Lesson, Mistake, Prediction

__all__ = [
    "SINUSOIDAL",
    "ROPE",
    "CAUSAL_ALIBI",
    "EXTRAPOLATION",
    "LESSON",
    "hint",
    "solution",
    "check_sinusoidal",
    "check_rope",
    "check_causal_alibi",
    "check_extrapolation",
    "CAUSAL_ENCODINGS",
    "recent_marker",
    "train_causal",
    "causal_accuracy",
]


def _angles(n: int, d: int, exponent=None, first: int = 0) -> np.ndarray:
    """(n, ceil(d/2)) angles p / 10000^(2i/d) for p = first .. first + n - 1, or with another exponent per pair."""
    two_i = np.arange(0, d, 2) if exponent is None else exponent(d)
    return np.arange(first, first + n)[:, None] / 10000.0 ** (two_i[None, :] / d)


def _interleave(first: np.ndarray, second: np.ndarray, d: int) -> np.ndarray:
    E = np.zeros((first.shape[0], d))
    E[:, 0::2] = first
    E[:, 1::2] = second[:, : d // 2]
    return E


# ---------------------------------------------------------------------------------------------------------
# 1. The sinusoid
# ---------------------------------------------------------------------------------------------------------


def _sinusoid_cases(rng: np.random.Generator) -> list[tuple]:
    return [(10, 8), (7, 6), (50, 16), (5, 7)]  # N != D (a transposed table has another shape); one odd d_model


SINUSOIDAL = Exercise(
    name="sinusoidal encoding",
    reference=lambda n, d: ref.sinusoidal_encoding(d, n).T,
    cases=_sinusoid_cases,
    mistakes=(
        Mistake(
            "column convention (D, N)",
            lambda n, d: ref.sinusoidal_encoding(d, n),
            "Here rows are positions, as in PyTorch: return the (n_positions, d_model) table, e^p in row p.",
        ),
        Mistake(
            "positions counted from 1",
            lambda n, d: _interleave(np.sin(_angles(n, d, first=1)), np.cos(_angles(n, d, first=1)), d),
            "The first token is at position p = 0, so its row is e^0 = (0, 1, 0, 1, ...): use np.arange(n), not "
            "np.arange(1, n + 1).",
        ),
        Mistake(
            "sin and cos swapped",
            lambda n, d: _interleave(np.cos(_angles(n, d)), np.sin(_angles(n, d)), d),
            "sin goes to the even columns 2i, cos to the odd columns 2i+1 (e^0 starts 0, 1, 0, 1, ...).",
        ),
        Mistake(
            "sin and cos in two halves instead of interleaved",
            lambda n, d: np.concatenate([np.sin(_angles(n, d)), np.cos(_angles(n, d))], axis=1)[:, :d],
            "The lecture's (and the original paper's) layout interleaves: column 2i is sin, column 2i+1 the cos "
            "of the same angle. Fill E[:, 0::2] and E[:, 1::2].",
        ),
        Mistake(
            "exponent i / d_model instead of 2i / d_model",
            lambda n, d: _interleave(
                np.sin(_angles(n, d, lambda d: np.arange(0, d, 2) // 2)),
                np.cos(_angles(n, d, lambda d: np.arange(0, d, 2) // 2)),
                d,
            ),
            "Pair i (columns 2i and 2i+1) uses the angle p / 10000^(2i / d_model): the exponent counts columns, "
            "so it is 2i, not i.",
        ),
        Mistake(
            "each column with its own exponent",
            lambda n, d: np.where(
                np.arange(d)[None, :] % 2 == 0,
                np.sin(np.arange(n)[:, None] / 10000.0 ** (np.arange(d)[None, :] / d)),
                np.cos(np.arange(n)[:, None] / 10000.0 ** (np.arange(d)[None, :] / d)),
            ),
            "Columns 2i and 2i+1 share one angle, p / 10000^(2i / d_model): the cos column does not use 2i+1.",
        ),
        Mistake(
            "multiplied by 10000^(2i/d) instead of dividing",
            lambda n, d: _interleave(
                np.sin(np.arange(n)[:, None] * 10000.0 ** (np.arange(0, d, 2)[None, :] / d)),
                np.cos(np.arange(n)[:, None] * 10000.0 ** (np.arange(0, d, 2)[None, :] / d)),
                d,
            ),
            "The wavelengths grow from 2*pi to 10000*2*pi: angle = p / 10000^(2i / d_model), so later pairs turn "
            "slowly.",
        ),
    ),
    hints=(
        "Row p is the vector e^p. Columns come in pairs (2i, 2i+1) that share one angle: the position divided by "
        "a number that grows with the pair index. sin goes to the first column of each pair, cos to the second.",
        "The angle of pair i at position p is p / 10000^(2i / d_model), for p = 0 .. n-1 and 2i = 0, 2, 4, ... "
        "Build it as an (n, number of pairs) array with broadcasting; watch an odd d_model (its last pair has no cos).",
        "angle = np.arange(n)[:, None] / 10000 ** (np.arange(0, d_model, 2)[None, :] / d_model); "
        "E[:, 0::2] = np.sin(angle); E[:, 1::2] = np.cos(angle[:, : d_model // 2])",
    ),
    solution="""def sinusoidal(n_positions, d_model):
    pos = np.arange(n_positions)[:, None]  # (N, 1): positions 0 .. N-1
    two_i = np.arange(0, d_model, 2)[None, :]  # (1, ceil(D/2))
    angle = pos / 10000.0 ** (two_i / d_model)  # (N, ceil(D/2))
    E = np.zeros((n_positions, d_model))
    E[:, 0::2] = np.sin(angle)
    E[:, 1::2] = np.cos(angle[:, : d_model // 2])
    return E""",
)


def check_sinusoidal(fn: Callable) -> Feedback:
    """Check fn(n_positions, d_model) -> (n_positions, d_model)."""
    return SINUSOIDAL.check(fn)


# ---------------------------------------------------------------------------------------------------------
# 2. RoPE
# ---------------------------------------------------------------------------------------------------------


def _rotate(x: np.ndarray, angle: np.ndarray, halves: bool = False) -> np.ndarray:
    """x (N, d) with pairs rotated by angle (N, d/2): pairs (2i, 2i+1), or (i, i + d/2) if halves."""
    d = x.shape[1]
    a, b = (x[:, : d // 2], x[:, d // 2 :]) if halves else (x[:, 0::2], x[:, 1::2])
    c, s = np.cos(angle), np.sin(angle)
    out = np.empty_like(x)
    first, second = a * c - b * s, a * s + b * c
    if halves:
        out[:, : d // 2], out[:, d // 2 :] = first, second
    else:
        out[:, 0::2], out[:, 1::2] = first, second
    return out


def _rope_reference(x: np.ndarray) -> np.ndarray:
    return _rotate(x, _angles(x.shape[0], x.shape[1]))


def _rope_cases(rng: np.random.Generator) -> list[tuple]:
    return [(rng.normal(size=(n, d)),) for n, d in ((6, 4), (9, 8), (5, 16))]


_OTHER_WAY = "rotated the other way"  # accepted: RoPE with the opposite sign convention
_FROM_ONE = (
    "positions counted from 1",
    "The first token sits at position p = 0 and is not rotated at all: its row comes back unchanged. Use "
    "np.arange(N) for the positions.",
)

ROPE = Exercise(
    name="rotary position embedding",
    reference=_rope_reference,
    cases=_rope_cases,
    mistakes=(
        Mistake(
            _OTHER_WAY,
            lambda x: _rotate(x, -_angles(x.shape[0], x.shape[1])),
            "(accepted: check_rope passes it)",
        ),
        Mistake(*_FROM_ONE[:1], lambda x: _rotate(x, _angles(x.shape[0], x.shape[1], first=1)), _FROM_ONE[1]),
        Mistake(*_FROM_ONE[:1], lambda x: _rotate(x, -_angles(x.shape[0], x.shape[1], first=1)), _FROM_ONE[1]),
        Mistake(
            "rotated halves instead of pairs (2i, 2i+1)",
            lambda x: _rotate(x, _angles(x.shape[0], x.shape[1]), halves=True),
            "This course rotates neighbouring pairs (x[2i], x[2i+1]), as the RoPE paper writes it; pairing x[i] "
            "with x[i + d/2] is another (equally valid) layout, but not the one asked here.",
        ),
        Mistake(
            "the same angle for every pair",
            lambda x: _rotate(x, np.repeat(np.arange(x.shape[0])[:, None], x.shape[1] // 2, axis=1) * 1.0),
            "Pair i turns with its own frequency: angle = p / 10000^(2i / d), fast for the first pairs, slow later.",
        ),
        Mistake(
            "rotated only the first coordinate of each pair",
            lambda x: np.where(np.arange(x.shape[1]) % 2 == 0, _rope_reference(x), x),
            "A rotation moves both coordinates of the pair: the new x[2i+1] is a sin + b cos, computed from the "
            "old a = x[2i] and b = x[2i+1] (keep a copy of the old values).",
        ),
        Mistake(
            "updated the pair in place",
            lambda x: _in_place(x),
            "x[2i] was overwritten before x[2i+1] was computed from it: compute both new coordinates from the old "
            "ones (write into a new array).",
        ),
    ),
    hints=(
        "Each row p is one token at position p; its coordinates come in pairs (2i, 2i+1). Treat each pair as a point "
        "in the plane and turn it about the origin by an angle that grows with p, at the sinusoid's speed for that "
        "pair.",
        "The angle of pair i at position p is p / 10000^(2i / d), as in the sinusoid (p from 0). Turning (a, b) by "
        "an angle t gives (a cos t - b sin t, a sin t + b cos t). Compute both from the old a and b.",
        "angle = np.arange(N)[:, None] / 10000 ** (np.arange(0, d, 2)[None, :] / d); a, b = x[:, 0::2], x[:, 1::2]; "
        "out[:, 0::2] = a * cos - b * sin; out[:, 1::2] = a * sin + b * cos",
    ),
    solution="""def rope(x):
    n, d = x.shape
    angle = np.arange(n)[:, None] / 10000.0 ** (np.arange(0, d, 2)[None, :] / d)  # (N, d/2)
    a, b = x[:, 0::2], x[:, 1::2]  # the pairs (2i, 2i+1)
    out = np.empty_like(x)
    out[:, 0::2] = a * np.cos(angle) - b * np.sin(angle)
    out[:, 1::2] = a * np.sin(angle) + b * np.cos(angle)
    return out""",
)


def _in_place(x: np.ndarray) -> np.ndarray:
    """The learner's loop that overwrites x[2i] before x[2i+1] uses it."""
    x = x.copy()
    angle = _angles(x.shape[0], x.shape[1])
    c, s = np.cos(angle), np.sin(angle)
    x[:, 0::2] = x[:, 0::2] * c - x[:, 1::2] * s
    x[:, 1::2] = x[:, 0::2] * s + x[:, 1::2] * c
    return x


def check_rope(fn: Callable) -> Feedback:
    """Check fn(x (N, d)) -> (N, d), each pair (2i, 2i+1) of row p rotated by p / 10000^(2i/d) (either way)."""
    feedback = ROPE.check(fn, verbose=False)
    if feedback.mistake == _OTHER_WAY:
        feedback = Feedback(
            True,
            True,
            f"✅ {ROPE.name}: correct on all {len(ROPE.cases(np.random.default_rng(ROPE.seed)))} test cases, "
            "rotated the other way (by -angle). That is equally valid: it is RoPE with the opposite sign convention "
            "(as if every position were -p), and the score still depends only on the offset between query and key.",
        )
    print(feedback.message)
    return feedback


# ---------------------------------------------------------------------------------------------------------
# 3. Causal ALiBi, as published
# ---------------------------------------------------------------------------------------------------------


def _slopes(H: int, first: int = 1, reverse: bool = False, same: bool = False) -> np.ndarray:
    """(H,) slopes 2^(-8 h / H) for h = first .. first + H - 1 (the paper's: first = 1)."""
    h = np.full(H, first) if same else np.arange(first, first + H)
    s = 2.0 ** (-8.0 * h / H)
    return s[::-1].copy() if reverse else s


def _alibi(q, k, v, *, slopes=None, sign=-1.0, side="past", scaled=True):
    """Causal ALiBi attention (H, N, d), with one deliberate change when a keyword says so.

    side: "past" keys j <= i (right), "both" (no causal mask, penalty on |i - j|), "future" (keys j >= i).
    """
    H, N, d = q.shape
    s = _slopes(H) if slopes is None else slopes
    i, j = np.arange(N)[:, None], np.arange(N)[None, :]
    distance = np.abs(i - j)  # (N, N)
    allowed = {"past": j <= i, "future": j >= i, "both": np.ones((N, N), dtype=bool)}[side]
    scores = q @ k.transpose(0, 2, 1) / (np.sqrt(d) if scaled else 1.0)  # (H, N, d) @ (H, d, N) -> (H, N, N)
    scores = scores + sign * s[:, None, None] * distance[None]  # -s_h (i - j) on the past
    scores = np.where(allowed[None], scores, -np.inf)
    return ref.softmax(scores, axis=-1) @ v  # (H, N, N) @ (H, N, d) -> (H, N, d)


def _alibi_cases(rng: np.random.Generator) -> list[tuple]:
    """Scores of order 1, so the penalty matters; H = 2, 4, 8 (powers of two, as the paper's slopes)."""
    cases = []
    for H, N, d in ((2, 5, 3), (4, 7, 4), (8, 6, 2)):
        q, k, v = (rng.normal(size=(H, N, d)) for _ in range(3))
        cases.append((q, k, v))
    return cases


CAUSAL_ALIBI = Exercise(
    name="causal ALiBi attention",
    reference=_alibi,
    cases=_alibi_cases,
    mistakes=(
        Mistake(
            "penalty added instead of subtracted",
            lambda q, k, v: _alibi(q, k, v, sign=1.0),
            "ALiBi makes far keys count less: subtract s_h * (i - j) from the score of key j <= i.",
        ),
        Mistake(
            "no causal mask",
            lambda q, k, v: _alibi(q, k, v, side="both"),
            "Published ALiBi is causal: query i sees keys j <= i only. Set the scores of j > i to -inf.",
        ),
        Mistake(
            "mask polarity inverted: the heads look at the future",
            lambda q, k, v: _alibi(q, k, v, side="future"),
            "The allowed keys are j <= i (the past and the token itself); your mask kept j >= i.",
        ),
        Mistake(
            "slopes start at 2^0 = 1",
            lambda q, k, v: _alibi(q, k, v, slopes=_slopes(q.shape[0], first=0)),
            "Head h (h = 0 .. H-1) has slope 2^(-8 (h + 1) / H): the first head's is 2^(-8/H), not 1.",
        ),
        Mistake(
            "slopes in reverse order",
            lambda q, k, v: _alibi(q, k, v, slopes=_slopes(q.shape[0], reverse=True)),
            "The first head gets the steepest slope, 2^(-8/H), the last the gentlest, 2^(-8).",
        ),
        Mistake(
            "the same slope for every head",
            lambda q, k, v: _alibi(q, k, v, slopes=_slopes(q.shape[0], same=True)),
            "Each head has its own slope, a geometric sequence 2^(-8/H), 2^(-16/H), ..., 2^(-8): some heads look "
            "near, some far.",
        ),
        Mistake(
            "forgot the 1/sqrt(d) scale",
            lambda q, k, v: _alibi(q, k, v, scaled=False),
            "The content score is q . k / sqrt(d), as in every lesson since 04; the penalty is added to that.",
        ),
    ),
    causal=Causal(arg=(0, 1, 2), token_axis=-2, out_token_axis=-2),
    hints=(
        "Start from ordinary attention per head. Then add to each score a penalty proportional to how far back the "
        "key is, with a head-specific slope, and forbid the keys after the query altogether.",
        "Slopes: s_h = 2^(-8 (h + 1) / H) for h = 0 .. H-1. Score of query i and key j: q_i . k_j / sqrt(d) - "
        "s_h (i - j) when j <= i, and -inf when j > i. Softmax over the keys, then weights @ v.",
        "s = 2.0 ** (-8 * np.arange(1, H + 1) / H); i, j = np.arange(N)[:, None], np.arange(N)[None, :]; "
        "scores = q @ k.transpose(0, 2, 1) / np.sqrt(d) - s[:, None, None] * (i - j); "
        "scores = np.where(j <= i, scores, -np.inf)",
    ),
    solution="""def causal_alibi(q, k, v):
    H, N, d = q.shape
    slopes = 2.0 ** (-8.0 * np.arange(1, H + 1) / H)  # (H,): 2^(-8/H), 2^(-16/H), ..., 2^(-8)
    i, j = np.arange(N)[:, None], np.arange(N)[None, :]  # query i, key j
    scores = q @ k.transpose(0, 2, 1) / np.sqrt(d)  # (H, N, d) @ (H, d, N) -> (H, N, N)
    scores = scores - slopes[:, None, None] * (i - j)  # far keys count less
    scores = np.where(j <= i, scores, -np.inf)  # causal: the past and itself only
    weights = np.exp(scores - scores.max(axis=-1, keepdims=True))
    weights = weights / weights.sum(axis=-1, keepdims=True)  # softmax over the keys
    return weights @ v  # (H, N, N) @ (H, N, d) -> (H, N, d)""",
)


def check_causal_alibi(fn: Callable) -> Feedback:
    """Check fn(q, k, v (H, N, d)) -> (H, N, d): causal attention with ALiBi's penalties."""
    return CAUSAL_ALIBI.check(fn)


# ---------------------------------------------------------------------------------------------------------
# 4. The causal extrapolation test: a task, a trainer, a measurement
# ---------------------------------------------------------------------------------------------------------

CAUSAL_ENCODINGS = ("none", "sinusoidal", "learned", "rope", "alibi")
MARKER = 0  # the marker's token id


def recent_marker(
    batch_size: int,
    length: int,
    window: int = 3,
    p_marker: float = 0.2,
    vocab_size: int = 16,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """x (B, N) token ids, each a marker (id 0) with probability p_marker; y (B, N): 1 when a marker is among the
    `window` tokens before token i, else 0. Past the first `window` tokens the labels' statistics are the same at
    every position (a 1 with probability 1 - 0.8^3 = 0.49 by default), so accuracies at different lengths compare."""
    batch_size = check_positive_int(batch_size, "batch_size")
    length = check_positive_int(length, "length")
    window = check_positive_int(window, "window")
    vocab_size = check_positive_int(vocab_size, "vocab_size")
    if vocab_size < 2:
        raise ValueError(f"vocab_size must be >= 2 (the marker and at least one filler), got {vocab_size}")
    if not 0.0 < float(p_marker) < 1.0:
        raise ValueError(f"p_marker must lie strictly between 0 and 1, got {p_marker!r}")
    x = torch.randint(1, vocab_size, (batch_size, length), generator=generator)  # (B, N) fillers
    is_marker = torch.rand(batch_size, length, generator=generator) < p_marker  # (B, N)
    x[is_marker] = MARKER
    seen = torch.nn.functional.pad(is_marker.long().cumsum(dim=1), (1, 0))  # (B, N + 1): markers in 0 .. t-1
    pos = torch.arange(length)
    y = (seen[:, pos] - seen[:, (pos - window).clamp(min=0)] > 0).long()  # markers in i - window .. i - 1
    return x, y


class _CausalModel(nn.Module):
    """Runs an encoder with is_causal=True: token i sees tokens 0 .. i only (ALiBi then uses its causal bias)."""

    def __init__(self, encoder: nn.Module):
        super().__init__()
        self.encoder = encoder

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x, is_causal=True)


def train_causal(encoding: str, seed: int = 0, length: int = 12, steps: int = 100, progress: bool = True) -> nn.Module:
    """A causal `positional.make_encoder(encoding)` (1 block, 4 heads, D = 32) trained on `recent_marker`."""
    from ..positional import make_encoder
    from ..training import TrainConfig, train_classifier

    if encoding not in CAUSAL_ENCODINGS:
        raise ValueError(f"encoding must be one of {CAUSAL_ENCODINGS}, got {encoding!r}")
    length = check_positive_int(length, "length")
    torch.manual_seed(seed)
    model = _CausalModel(make_encoder(encoding, 16, 2, d_model=32, num_heads=4, max_len=64))
    config = TrainConfig(steps=check_positive_int(steps, "steps"), batch_size=64, lr=1e-2, seed=seed, progress=progress)
    train_classifier(model, lambda b, generator: recent_marker(b, length, generator=generator), config, desc=encoding)
    return model


def causal_accuracy(model: nn.Module, length: int, n: int = 512, seed: int = 99) -> float:
    """Accuracy of a `train_causal` model on n fresh `recent_marker` sequences of `length` tokens."""
    from ..training import accuracy

    x, y = recent_marker(n, length, generator=torch.Generator().manual_seed(seed))
    return accuracy(model, x, y)


EXTRAPOLATION = Prediction(
    name="the causal encoding that loses least from 12 to 48 tokens",
    kind="choice",
    choices=CAUSAL_ENCODINGS,
    hints=(
        "Ask of each encoding: at position 40, does the model meet anything it never saw in training (positions "
        "12 .. 47)? The task only asks about the last 3 tokens.",
        "The sinusoid and the learned table give positions past 11 vectors the model never trained on. RoPE's "
        "scores depend on the offset only, but offsets past 11 are new too. ALiBi adds -s (i - j), and with its "
        "steepest slopes far keys add almost nothing to the softmax.",
        "Which encoding makes a long causal prefix look like a short one to the softmax?",
    ),
    solution='my_prediction = "alibi"',
    explanation=(
        "ALiBi's penalty -s (i - j) makes keys far in the past weigh exponentially little, so a query at position 40 "
        "sees nearly what it saw at position 11: no new vectors, no new offsets that matter. Absolute encodings "
        "(sinusoid, learned table) hand positions past 11 vectors never trained on; RoPE's offsets past 11 were "
        "never seen either. ALiBi pays at the training length: a fixed exponential cannot draw the sharp 3-token "
        "window that RoPE learns."
    ),
)


def check_extrapolation(predicted, measured) -> Feedback:
    """Compare the stored choice with the encoding whose accuracy fell least from 12 to 48 tokens."""
    return EXTRAPOLATION.check(predicted, measured)


LESSON = Lesson({"sinusoidal": SINUSOIDAL, "rope": ROPE, "causal_alibi": CAUSAL_ALIBI, "extrapolation": EXTRAPOLATION})
hint, solution = LESSON.hint, LESSON.solution
