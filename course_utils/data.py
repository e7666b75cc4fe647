"""Lesson 01's inputs, each turned into a set of vectors (columns, the lecture's convention).

Words become one-hot vectors or embeddings, a waveform becomes 25 ms frames every 10 ms, a molecule
becomes one vector per atom plus an adjacency matrix. Everything is generated here; nothing is downloaded.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ._validate import as_matrix, check_int, check_positive_int, shape_of

__all__ = [
    "one_hot",
    "toy_embeddings",
    "chirp",
    "frame_signal",
    "frame_spectra",
    "molecule",
    "adjacency_from_edges",
]


def one_hot(tokens: Sequence[str], vocab: Sequence[str]) -> np.ndarray:
    """One-hot columns, shape (len(vocab), len(tokens)): column i has a single 1 at tokens[i]'s index."""
    vocab = list(vocab)
    if len(set(vocab)) != len(vocab) or not vocab:
        raise ValueError(f"vocab must be a non-empty list of distinct words, got {vocab!r}")
    if isinstance(tokens, str) or len(tokens) == 0:
        raise ValueError(f"tokens must be a non-empty list of words, got {tokens!r}")
    index = {w: i for i, w in enumerate(vocab)}
    unknown = [t for t in tokens if t not in index]
    if unknown:
        raise ValueError(f"tokens {unknown} are not in vocab {vocab}")
    I = np.zeros((len(vocab), len(tokens)))
    I[[index[t] for t in tokens], np.arange(len(tokens))] = 1.0
    return I


# A hand-made embedding with three readable axes. Learned embeddings end up with the same property
# (related words near each other) after training; here the axes are chosen so the learner can read them.
_EMBEDDING_AXES = ("animal", "food", "action")
_EMBEDDING = {
    "cat": (0.9, 0.1, 0.1),
    "dog": (0.95, 0.05, 0.2),
    "rabbit": (0.8, 0.3, 0.1),
    "apple": (0.05, 0.95, 0.0),
    "bread": (0.0, 0.9, 0.05),
    "run": (0.2, 0.0, 0.9),
    "jump": (0.25, 0.05, 0.95),
    "eat": (0.1, 0.5, 0.8),
}


def toy_embeddings(tokens: Sequence[str] | None = None) -> tuple[np.ndarray, list[str], tuple[str, ...]]:
    """Embedding columns (3, N) for `tokens` (default: the whole vocabulary), the tokens, and the axis names."""
    tokens = list(_EMBEDDING) if tokens is None else list(tokens)
    unknown = [t for t in tokens if t not in _EMBEDDING]
    if unknown or not tokens:
        raise ValueError(f"tokens must be non-empty words from {list(_EMBEDDING)}, got unknown {unknown}")
    return np.array([_EMBEDDING[t] for t in tokens]).T, tokens, _EMBEDDING_AXES


def chirp(seconds: float = 1.0, sample_rate: int = 16_000, f0: float = 200.0, f1: float = 2_000.0) -> np.ndarray:
    """A tone whose pitch rises linearly from f0 to f1 Hz: shape (seconds * sample_rate,)."""
    sample_rate = check_positive_int(sample_rate, "sample_rate")
    if not seconds > 0:
        raise ValueError(f"seconds must be positive, got {seconds}")
    t = np.arange(int(round(seconds * sample_rate))) / sample_rate
    phase = 2 * np.pi * (f0 * t + (f1 - f0) * t**2 / (2 * seconds))  # instantaneous frequency f0 -> f1
    return np.sin(phase)


def frame_signal(signal, sample_rate: int, window_ms: float = 25.0, hop_ms: float = 10.0) -> np.ndarray:
    """Cut a waveform into frames of `window_ms`, one every `hop_ms`: columns, shape (window, n_frames)."""
    x = as_matrix(signal, "signal", ndim=1)
    sample_rate = check_positive_int(sample_rate, "sample_rate")
    window = int(round(sample_rate * window_ms / 1000))
    hop = int(round(sample_rate * hop_ms / 1000))
    if window <= 0 or hop <= 0:
        raise ValueError(f"window_ms={window_ms} and hop_ms={hop_ms} must each span at least one sample")
    if len(x) < window:
        raise ValueError(f"signal of shape {shape_of(x)} is shorter than one window of {window} samples")
    n_frames = 1 + (len(x) - window) // hop
    starts = hop * np.arange(n_frames)  # (n_frames,)
    return x[starts[None, :] + np.arange(window)[:, None]]  # (window, 1) + (1, n_frames) -> (window, n_frames)


def frame_spectra(frames) -> np.ndarray:
    """log(1 + |FFT|) of each Hann-windowed frame: (window, n_frames) -> (window // 2 + 1, n_frames)."""
    F = as_matrix(frames, "frames")
    hann = np.hanning(F.shape[0])[:, None]  # (window, 1)
    return np.log1p(np.abs(np.fft.rfft(F * hann, axis=0)))


_MOLECULES = {
    # ethanol, CH3-CH2-OH: atoms, then bonds as index pairs
    "ethanol": (
        ["C", "C", "O", "H", "H", "H", "H", "H", "H"],
        [(0, 1), (1, 2), (0, 3), (0, 4), (0, 5), (1, 6), (1, 7), (2, 8)],
    ),
    # water, H-O-H
    "water": (["O", "H", "H"], [(0, 1), (0, 2)]),
}
ATOM_TYPES = ("H", "C", "O")


def adjacency_from_edges(edges: Sequence[tuple[int, int]], n: int) -> np.ndarray:
    """The symmetric (n, n) 0/1 adjacency matrix of an undirected graph."""
    n = check_positive_int(n, "n")
    A = np.zeros((n, n))
    for edge in edges:
        if len(edge) != 2:
            raise ValueError(f"each edge must be a pair of node indices in [0, {n}), got {edge!r}")
        i, j = (check_int(v, f"edge {tuple(edge)!r}'s node index", minimum=0, maximum=n - 1) for v in edge)
        A[i, j] = A[j, i] = 1.0
    return A


def molecule(name: str = "ethanol") -> tuple[list[str], np.ndarray, np.ndarray]:
    """A molecule as a graph: atom symbols, node features (one-hot over H, C, O; shape (3, n)), adjacency (n, n)."""
    if name not in _MOLECULES:
        raise ValueError(f"name must be one of {sorted(_MOLECULES)}, got {name!r}")
    atoms, bonds = _MOLECULES[name]
    return list(atoms), one_hot(atoms, ATOM_TYPES), adjacency_from_edges(bonds, len(atoms))
