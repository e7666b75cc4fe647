"""Checkers for lesson 06 (positional encoding), in the row convention with NumPy arrays.

check_sinusoidal(fn)  fn(n_positions, d_model) -> E (N, D): E[p, 2i] = sin(p / 10000^(2i/D)), E[p, 2i+1] = cos(..)
check_rope(fn)        fn(x (N, d)) -> x with each pair (x[p, 2i], x[p, 2i+1]) rotated by p / 10000^(2i/d)
"""

from __future__ import annotations

import numpy as np

from .. import reference as ref
from .base import Exercise, Feedback, Mistake

__all__ = ["SINUSOIDAL", "ROPE", "check_sinusoidal", "check_rope"]


def _angles(n: int, d: int, exponent=None) -> np.ndarray:
    """(n, ceil(d/2)) angles p / 10000^(2i/d), or with another exponent per pair."""
    two_i = np.arange(0, d, 2) if exponent is None else exponent(d)
    return np.arange(n)[:, None] / 10000.0 ** (two_i[None, :] / d)


def _interleave(first: np.ndarray, second: np.ndarray, d: int) -> np.ndarray:
    E = np.zeros((first.shape[0], d))
    E[:, 0::2] = first
    E[:, 1::2] = second[:, : d // 2]
    return E


def _sinusoid_cases(rng: np.random.Generator) -> list[tuple]:
    return [(10, 8), (7, 6), (50, 16)]  # N != D, so a transposed table has another shape


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
    hint="angle = p / 10000 ** (2i / d_model) for p in range(n) and 2i in range(0, d_model, 2); "
    "E[:, 0::2] = sin(angle), E[:, 1::2] = cos(angle).",
)


def check_sinusoidal(fn) -> Feedback:
    """Check fn(n_positions, d_model) -> (n_positions, d_model)."""
    return SINUSOIDAL.check(fn)


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


ROPE = Exercise(
    name="rotary position embedding",
    reference=_rope_reference,
    cases=_rope_cases,
    mistakes=(
        Mistake(
            "rotated halves instead of pairs (2i, 2i+1)",
            lambda x: _rotate(x, _angles(x.shape[0], x.shape[1]), halves=True),
            "This course rotates neighbouring pairs (x[2i], x[2i+1]), as the RoPE paper writes it; pairing x[i] "
            "with x[i + d/2] is another (equally valid) layout, but not the one asked here.",
        ),
        Mistake(
            "rotated the wrong way",
            lambda x: _rotate(x, -_angles(x.shape[0], x.shape[1])),
            "A rotation by +angle maps (a, b) to (a cos - b sin, a sin + b cos).",
        ),
        Mistake(
            "the same angle for every pair",
            lambda x: _rotate(x, np.repeat(np.arange(x.shape[0])[:, None], x.shape[1] // 2, axis=1) * 1.0),
            "Pair i turns with its own frequency: angle = p / 10000^(2i / d), fast for the first pairs, slow later.",
        ),
    ),
    hint="angle (N, d/2) = p / 10000 ** (2i / d); a, b = x[:, 0::2], x[:, 1::2]; "
    "out[:, 0::2] = a cos - b sin; out[:, 1::2] = a sin + b cos.",
)


def check_rope(fn) -> Feedback:
    """Check fn(x (N, d)) -> (N, d), each pair (2i, 2i+1) of row p rotated by p / 10000^(2i/d)."""
    return ROPE.check(fn)
