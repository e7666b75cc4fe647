"""Checkers for lesson 01's exercises: one-hot columns, audio frames, a graph's adjacency matrix."""

from __future__ import annotations

import numpy as np

from .. import data
from .base import Exercise, Mistake

__all__ = ["check_one_hot", "check_frame_signal", "check_adjacency"]

_WORDS = ["the", "cat", "saw", "a", "dog", "ran"]


def _one_hot_cases(rng: np.random.Generator) -> list[tuple]:
    cases = []
    for n in (1, 4, 7):
        vocab = list(rng.permutation(_WORDS))
        cases.append(([str(w) for w in rng.choice(vocab, size=n)], vocab))
    return cases


ONE_HOT = Exercise(
    name="one_hot",
    reference=data.one_hot,
    cases=_one_hot_cases,
    mistakes=[
        Mistake(
            "one row per token instead of one column",
            lambda tokens, vocab: data.one_hot(tokens, vocab).T,
            "The lecture stacks the input vectors as columns: I has shape (len(vocab), len(tokens)).",
        ),
    ],
    hint="Start from np.zeros((len(vocab), len(tokens))) and put a 1 in column i at row vocab.index(tokens[i]).",
)


def _frame_cases(rng: np.random.Generator) -> list[tuple]:
    return [(rng.normal(size=n), sr) for n, sr in ((1000, 8000), (16000, 16000), (2345, 16000))]


FRAME_SIGNAL = Exercise(
    name="frame_signal",
    reference=data.frame_signal,
    cases=_frame_cases,
    mistakes=[
        Mistake(
            "window and hop swapped",
            lambda x, sr: data.frame_signal(x, sr, window_ms=10.0, hop_ms=25.0),
            "Each frame is 25 ms long and a new frame starts every 10 ms, so frames overlap.",
        ),
        Mistake(
            "one frame per row instead of one per column",
            lambda x, sr: data.frame_signal(x, sr).T,
            "Return the frames as columns, shape (samples per window, number of frames).",
        ),
        Mistake(
            "the last frame is missing",
            lambda x, sr: data.frame_signal(x, sr)[:, :-1],
            "A signal of L samples holds 1 + (L - window) // hop frames: count the frame that starts at 0.",
        ),
    ],
    hint="window = sample_rate * 25 // 1000 samples, hop = sample_rate * 10 // 1000; frame f starts at f * hop.",
)


def _adjacency_cases(rng: np.random.Generator) -> list[tuple]:
    cases = []
    for n in (3, 5, 8):
        pairs = [(int(i), int(j)) for i in range(n) for j in range(i + 1, n)]
        keep = rng.choice(len(pairs), size=min(len(pairs), n), replace=False)
        edges = [pairs[k] if rng.random() < 0.5 else pairs[k][::-1] for k in keep]
        cases.append((edges, n))
    return cases


def _directed(edges, n):
    A = np.zeros((n, n))
    for i, j in edges:
        A[i, j] = 1.0
    return A


ADJACENCY = Exercise(
    name="adjacency_from_edges",
    reference=data.adjacency_from_edges,
    cases=_adjacency_cases,
    mistakes=[
        Mistake(
            "only one direction of each edge",
            _directed,
            "A bond (or a friendship) goes both ways: set A[i, j] and A[j, i].",
        ),
        Mistake(
            "self-loops on the diagonal",
            lambda edges, n: data.adjacency_from_edges(edges, n) + np.eye(n),
            "An atom is not bonded to itself: leave the diagonal at 0 (attention adds self-loops later, lesson 10).",
        ),
    ],
    hint="np.zeros((n, n)), then for each (i, j) in edges set both A[i, j] and A[j, i] to 1.",
)


def check_one_hot(fn) -> bool:
    """Check one_hot(tokens, vocab) -> (len(vocab), len(tokens))."""
    return ONE_HOT.check(fn)


def check_frame_signal(fn) -> bool:
    """Check frame_signal(signal, sample_rate) -> (window, n_frames) with 25 ms windows every 10 ms."""
    return FRAME_SIGNAL.check(fn)


def check_adjacency(fn) -> bool:
    """Check adjacency_from_edges(edges, n) -> symmetric (n, n) 0/1 matrix."""
    return ADJACENCY.check(fn)
