"""Checkers for lesson 01's exercises: one-hot columns, audio frames, a graph's adjacency matrix, and a
prediction of the smallest window that solves the delayed-copy task.

    check_one_hot(fn)                 fn(tokens, vocab) -> (len(vocab), len(tokens)) one-hot columns
    check_frame_signal(fn)            fn(signal, sample_rate) -> (samples per 25 ms, number of frames)
    check_adjacency(fn)               fn(edges, n) -> (n, n) symmetric 0/1 matrix
    check_window(predicted, measured) the smallest half-width that solves a delay of WINDOW_DELAY
"""

from __future__ import annotations

import numpy as np

from .. import data
from .base import Exercise, Feedback, Lesson, Mistake, Prediction

__all__ = [
    "ONE_HOT",
    "FRAME_SIGNAL",
    "ADJACENCY",
    "WINDOW",
    "WINDOW_DELAY",
    "LESSON",
    "hint",
    "solution",
    "check_one_hot",
    "check_frame_signal",
    "check_adjacency",
    "check_window",
]

_WORDS = ["the", "cat", "saw", "a", "dog", "ran"]


def _one_hot_cases(rng: np.random.Generator) -> list[tuple]:
    cases = []
    for n in (1, 4, 7):
        vocab = list(rng.permutation(_WORDS))
        cases.append(([str(w) for w in rng.choice(vocab, size=n)], [str(w) for w in vocab]))
    return cases


def _sorted_vocab_one_hot(tokens, vocab):
    return data.one_hot(tokens, sorted(vocab))


ONE_HOT = Exercise(
    name="one_hot",
    reference=data.one_hot,
    cases=_one_hot_cases,
    mistakes=(
        Mistake(
            "one row per token instead of one column",
            lambda tokens, vocab: data.one_hot(tokens, vocab).T,
            "The lecture stacks the input vectors as columns: I has shape (len(vocab), len(tokens)).",
        ),
        Mistake(
            "rows in alphabetical order, not vocab's order",
            _sorted_vocab_one_hot,
            "Row r stands for vocab[r], in the order vocab lists the words: use vocab.index(word), not a sorted list.",
        ),
    ),
    hints=(
        "Each token becomes one column: as many rows as words in the vocabulary, all 0 but one 1.",
        "The 1 of column i sits in the row of tokens[i]'s position in vocab.",
        "Start from np.zeros((len(vocab), len(tokens))) and set I[vocab.index(tokens[i]), i] = 1 for every i.",
    ),
    solution='''def one_hot(tokens, vocab):
    I = np.zeros((len(vocab), len(tokens)))  # (V, N): column i is token i
    for i, token in enumerate(tokens):
        I[vocab.index(token), i] = 1.0
    return I''',
)


def _frame_cases(rng: np.random.Generator) -> list[tuple]:
    return [(rng.normal(size=n), sr) for n, sr in ((1000, 8000), (16000, 16000), (2345, 16000))]


FRAME_SIGNAL = Exercise(
    name="frame_signal",
    reference=data.frame_signal,
    cases=_frame_cases,
    mistakes=(
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
    ),
    hints=(
        "Turn milliseconds into samples first: a window of 25 ms and a hop of 10 ms, at sample_rate samples a second.",
        "Frame f starts at sample f * hop and is window samples long; keep only frames that fit entirely.",
        "window = sample_rate * 25 // 1000, hop = sample_rate * 10 // 1000, n = 1 + (len(signal) - window) // hop; "
        "stack signal[f * hop : f * hop + window] for f in range(n) as columns (np.stack(..., axis=1)).",
    ),
    solution='''def frame_signal(signal, sample_rate):
    window = sample_rate * 25 // 1000  # samples per 25 ms frame
    hop = sample_rate * 10 // 1000  # a new frame every 10 ms
    n_frames = 1 + (len(signal) - window) // hop
    return np.stack([signal[f * hop : f * hop + window] for f in range(n_frames)], axis=1)  # (window, n_frames)''',
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
    mistakes=(
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
    ),
    hints=(
        "A[i, j] = 1 when nodes i and j are joined, 0 otherwise; an undirected edge joins them both ways.",
        "Start from an n x n matrix of zeros and walk through the edge list once.",
        "np.zeros((n, n)), then for each (i, j) in edges set both A[i, j] and A[j, i] to 1.",
    ),
    solution='''def adjacency_from_edges(edges, n):
    A = np.zeros((n, n))
    for i, j in edges:
        A[i, j] = A[j, i] = 1.0  # an undirected edge goes both ways
    return A''',
)


WINDOW_DELAY = 6  # the delay the prediction asks about (the lesson's measurement used 4)

WINDOW = Prediction(
    name=f"smallest window half-width that solves a delay of {WINDOW_DELAY}",
    kind="int",
    hints=(
        "A window of half-width w shows the net the tokens at positions t - w ... t + w, nothing else.",
        f"The label at t is the token at t - {WINDOW_DELAY}: for which w is that position inside the window?",
        f"Write the condition t - w <= t - {WINDOW_DELAY} and solve it for w; the window's total width 2w + 1 is "
        "not the condition.",
    ),
    solution=f"my_window = {WINDOW_DELAY}  # the window must reach back {WINDOW_DELAY} positions: w >= delay",
    explanation=f"The label at t is the token at t - {WINDOW_DELAY}. A window of half-width w holds t - w ... "
    f"t + w, so it contains the answer exactly when w >= {WINDOW_DELAY}. Below that the answer is out of view and "
    "the net can only guess (accuracy 1/4); its total width 2w + 1 does not help, only how far back it reaches.",
)


def check_one_hot(fn) -> Feedback:
    """Check fn(tokens, vocab) -> (len(vocab), len(tokens))."""
    return ONE_HOT.check(fn)


def check_frame_signal(fn) -> Feedback:
    """Check fn(signal, sample_rate) -> (window, n_frames) with 25 ms windows every 10 ms."""
    return FRAME_SIGNAL.check(fn)


def check_adjacency(fn) -> Feedback:
    """Check fn(edges, n) -> symmetric (n, n) 0/1 matrix."""
    return ADJACENCY.check(fn)


def check_window(predicted, measured) -> Feedback:
    """Compare the predicted smallest half-width for a delay of WINDOW_DELAY with the measured one (ints)."""
    return WINDOW.check(predicted, measured)


LESSON = Lesson({"one_hot": ONE_HOT, "frame_signal": FRAME_SIGNAL, "adjacency": ADJACENCY, "window": WINDOW})
hint, solution = LESSON.hint, LESSON.solution
