"""The NumPy reference, in the lecture's column convention.

Each input vector a^i is a *column*: the input is I = [a^1 ... a^N] of shape (d_in, N).

    Q = W^q I    K = W^k I    V = W^v I          (d_k, N), (d_k, N), (d_v, N)
    A = K^T Q                                    (N, N), A[i, j] = k^i . q^j: relevance of input i to query j
    A' = softmax(A) over each column (over i)    column j holds alpha'_{j, 1..N}
    O = V A'                                     (d_v, N), column j is b^j = sum_i alpha'_{j,i} v^i

Only W^q, W^k and W^v are learned. `scale=None` means 1/sqrt(d_k), as in torch's
`scaled_dot_product_attention`; `scale=1.0` is the lecture's unscaled alpha = q . k.
Everything is float64, so these functions are the numbers the rest of the course is checked against.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ._validate import as_matrix, check_dim, check_flag, check_positive_int, check_scale, shape_of

__all__ = [
    "softmax",
    "dot_product_scores",
    "additive_scores",
    "self_attention_loop",
    "self_attention_matrix",
    "multi_head_self_attention",
    "sinusoidal_encoding",
    "online_softmax_attention",
]


def softmax(x, axis: int = 0) -> np.ndarray:
    """Numerically stable softmax along `axis` (default 0: over each column, the lecture's A').

    -inf entries (masked scores) get weight 0; a slice that is entirely -inf gives zeros, not NaN.
    """
    x = np.asarray(x)
    if x.ndim == 0:
        raise ValueError("x must have at least 1 dimension, got a scalar")
    arr = as_matrix(x, "x", ndim=x.ndim, finite=False)
    if np.isnan(arr).any() or np.isposinf(arr).any():
        raise ValueError(f"x must not hold NaN or +inf (use -inf for masked entries), got shape {shape_of(arr)}")
    if not -arr.ndim <= axis < arr.ndim:
        raise ValueError(f"axis={axis} is out of range for x of shape {shape_of(arr)}")
    m = arr.max(axis=axis, keepdims=True)
    m = np.where(np.isfinite(m), m, 0.0)  # a fully masked slice: exp(-inf) = 0 everywhere
    e = np.exp(arr - m)  # the largest entry becomes exp(0) = 1: nothing overflows
    total = e.sum(axis=axis, keepdims=True)
    return np.divide(e, total, out=np.zeros_like(e), where=total > 0)


def _projections(I, Wq, Wk, Wv=None):
    """Validate I and the weights; return (I, Wq, Wk, Wv) as float64 arrays."""
    I = as_matrix(I, "I")
    Wq = as_matrix(Wq, "Wq")
    Wk = as_matrix(Wk, "Wk")
    d_in = I.shape[0]
    check_dim(Wq.shape[1], d_in, "Wq's columns and I's rows (d_in)", ["Wq", "I"], [Wq, I])
    check_dim(Wk.shape[1], d_in, "Wk's columns and I's rows (d_in)", ["Wk", "I"], [Wk, I])
    check_dim(Wk.shape[0], Wq.shape[0], "Wq's and Wk's rows (d_k)", ["Wq", "Wk"], [Wq, Wk])
    if Wv is not None:
        Wv = as_matrix(Wv, "Wv")
        check_dim(Wv.shape[1], d_in, "Wv's columns and I's rows (d_in)", ["Wv", "I"], [Wv, I])
    return I, Wq, Wk, Wv


def _finite_scores(A: np.ndarray, names: str, *arrays: np.ndarray) -> np.ndarray:
    """The scores, or an error naming the caller's arguments when they overflowed float64 (inputs too large)."""
    if not np.all(np.isfinite(A)):
        got = ", ".join(f"{n} {shape_of(a)} (max |.| {np.abs(a).max():.3g})" for n, a in zip(names.split(), arrays))
        raise ValueError(f"the scores overflow float64 (inf or NaN): got {got}; scale the inputs down")
    return A


def dot_product_scores(I, Wq, Wk, scale: float | None = None) -> np.ndarray:
    """A = scale * K^T Q, shape (N, N), with A[i, j] = scale * k^i . q^j (query j, key i)."""
    I, Wq, Wk, _ = _projections(I, Wq, Wk)
    s = check_scale(scale, Wq.shape[0])
    Q = Wq @ I  # (d_k, d_in) @ (d_in, N) -> (d_k, N)
    K = Wk @ I  # (d_k, d_in) @ (d_in, N) -> (d_k, N)
    with np.errstate(over="ignore", invalid="ignore"):  # an overflow is reported below, naming the inputs
        A = s * (K.T @ Q)  # (N, d_k) @ (d_k, N) -> (N, N)
    return _finite_scores(A, "I Wq Wk", I, Wq, Wk)


def additive_scores(I, Wq, Wk, w) -> np.ndarray:
    """Additive (Bahdanau) scores: A[i, j] = w^T tanh(q^j + k^i), shape (N, N)."""
    I, Wq, Wk, _ = _projections(I, Wq, Wk)
    w = as_matrix(w, "w", ndim=1)
    check_dim(w.shape[0], Wq.shape[0], "w's length and Wq's rows (d_k)", ["w", "Wq"], [w, Wq])
    Q = Wq @ I  # (d_k, N)
    K = Wk @ I  # (d_k, N)
    H = np.tanh(Q[:, None, :] + K[:, :, None])  # (d_k, 1, N) + (d_k, N, 1) -> (d_k, N_i, N_j)
    return np.einsum("d,dij->ij", w, H)  # (d_k,) . (d_k, N, N) -> (N, N)


def self_attention_loop(I, Wq, Wk, Wv, scale: float | None = None) -> np.ndarray:
    """Self-attention one query at a time, as the lecture draws it; returns O of shape (d_v, N)."""
    I, Wq, Wk, Wv = _projections(I, Wq, Wk, Wv)
    s = check_scale(scale, Wq.shape[0])
    N = I.shape[1]
    q = [Wq @ I[:, i] for i in range(N)]  # q^i = W^q a^i, (d_k,)
    k = [Wk @ I[:, i] for i in range(N)]  # k^i = W^k a^i, (d_k,)
    v = [Wv @ I[:, i] for i in range(N)]  # v^i = W^v a^i, (d_v,)
    O = np.zeros((Wv.shape[0], N))
    for j in range(N):
        with np.errstate(over="ignore", invalid="ignore"):  # an overflow is reported below, naming the inputs
            alpha = np.array([s * (q[j] @ k[i]) for i in range(N)])  # alpha_{j,i} = q^j . k^i
        _finite_scores(alpha, "I Wq Wk", I, Wq, Wk)
        alpha_prime = softmax(alpha)  # over i
        O[:, j] = sum(alpha_prime[i] * v[i] for i in range(N))  # b^j = sum_i alpha'_{j,i} v^i
    return O


def self_attention_matrix(I, Wq, Wk, Wv, scale: float | None = None) -> np.ndarray:
    """O = V softmax(K^T Q) with the softmax over each column; returns O of shape (d_v, N)."""
    I, Wq, Wk, Wv = _projections(I, Wq, Wk, Wv)
    s = check_scale(scale, Wq.shape[0])
    Q = Wq @ I  # (d_k, d_in) @ (d_in, N) -> (d_k, N)
    K = Wk @ I  # (d_k, d_in) @ (d_in, N) -> (d_k, N)
    V = Wv @ I  # (d_v, d_in) @ (d_in, N) -> (d_v, N)
    with np.errstate(over="ignore", invalid="ignore"):  # an overflow is reported below, naming the inputs
        A = s * (K.T @ Q)  # (N, d_k) @ (d_k, N) -> (N, N)
    A_prime = softmax(_finite_scores(A, "I Wq Wk", I, Wq, Wk), axis=0)  # each column sums to 1
    return V @ A_prime  # (d_v, N) @ (N, N) -> (d_v, N)


def multi_head_self_attention(
    I, Wq: Sequence, Wk: Sequence, Wv: Sequence, Wo, scale: float | None = None
) -> np.ndarray:
    """Multi-head self-attention in the lecture's form; returns (d_out, N).

    Wq[h], Wk[h]: (d_k, d_in) per head (the lecture's W^{q,h} W^q folded into one matrix); Wv[h]: (d_v, d_in);
    Wo: (d_out, H * d_v). Head h attends with its own q, k, v only; b^i = W^O [b^{i,1}; ...; b^{i,H}].
    With scale=None each head is scaled by 1/sqrt of its own d_k.
    """
    for name, ws in (("Wq", Wq), ("Wk", Wk), ("Wv", Wv)):
        if isinstance(ws, np.ndarray) and ws.ndim == 2 or not isinstance(ws, (list, tuple, np.ndarray)):
            raise TypeError(f"{name} must be a list with one matrix per head, got {type(ws).__name__}")
    H = len(Wq)
    if H == 0:
        raise ValueError("Wq must hold at least one head, got an empty list")
    if not len(Wk) == len(Wv) == H:
        raise ValueError(f"Wq, Wk, Wv must hold one matrix per head: got {H}, {len(Wk)}, {len(Wv)} heads")
    heads = [self_attention_matrix(I, Wq[h], Wk[h], Wv[h], scale=scale) for h in range(H)]  # H x (d_v, N)
    concat = np.concatenate(heads, axis=0)  # (H * d_v, N)
    Wo = as_matrix(Wo, "Wo")
    check_dim(Wo.shape[1], concat.shape[0], "Wo's columns and H * d_v", ["Wo", "concatenated heads"], [Wo, concat])
    return Wo @ concat  # (d_out, H * d_v) @ (H * d_v, N) -> (d_out, N)


def sinusoidal_encoding(d_model: int, n_positions: int) -> np.ndarray:
    """The sinusoidal positional encoding, shape (d_model, n_positions): column p is e^p.

    Row 2i holds sin(p / 10000^(2i / d_model)) and row 2i+1 holds cos of the same angle.
    """
    d_model = check_positive_int(d_model, "d_model")
    n_positions = check_positive_int(n_positions, "n_positions")
    pos = np.arange(n_positions, dtype=np.float64)  # (N,)
    two_i = np.arange(0, d_model, 2, dtype=np.float64)  # (ceil(d/2),)
    angle = pos[None, :] / 10000.0 ** (two_i[:, None] / d_model)  # (ceil(d/2), N)
    E = np.zeros((d_model, n_positions))
    E[0::2] = np.sin(angle)
    E[1::2] = np.cos(angle[: d_model // 2])
    return E


def online_softmax_attention(Q, K, V, block: int = 16, scale: float | None = None, causal: bool = False) -> np.ndarray:
    """softmax attention computed over blocks of keys with a running max and sum (online softmax).

    Column convention: Q (d_k, N_q), K (d_k, N_k), V (d_v, N_k); returns (d_v, N_q), equal to
    V softmax(scale K^T Q) without ever holding more than `block` scores per query. `causal=True` lets
    query j see keys i <= j only.
    """
    Q = as_matrix(Q, "Q")
    K = as_matrix(K, "K")
    V = as_matrix(V, "V")
    block = check_positive_int(block, "block")
    causal = check_flag(causal, "causal")
    check_dim(K.shape[0], Q.shape[0], "Q's and K's rows (d_k)", ["Q", "K"], [Q, K])
    check_dim(V.shape[1], K.shape[1], "K's and V's columns (N_k)", ["K", "V"], [K, V])
    s = check_scale(scale, Q.shape[0])
    N_q, N_k = Q.shape[1], K.shape[1]
    m = np.full(N_q, -np.inf)  # running max of the scores seen so far, per query
    ell = np.zeros(N_q)  # running sum of exp(score - m), per query
    acc = np.zeros((V.shape[0], N_q))  # running sum of exp(score - m) * v, (d_v, N_q)
    for start in range(0, N_k, block):
        stop = min(start + block, N_k)
        with np.errstate(over="ignore", invalid="ignore"):  # an overflow is reported below, naming the inputs
            S = _finite_scores(s * (K[:, start:stop].T @ Q), "Q K", Q, K)  # (b, d_k) @ (d_k, N_q) -> (b, N_q)
        if causal:
            S = np.where(np.arange(start, stop)[:, None] <= np.arange(N_q)[None, :], S, -np.inf)
        m_new = np.maximum(m, S.max(axis=0))  # (N_q,)
        m_safe = np.where(np.isfinite(m_new), m_new, 0.0)  # queries that have seen no key yet
        correction = np.exp(np.where(np.isfinite(m), m - m_safe, -np.inf))  # rescale the old sums
        P = np.exp(S - m_safe)  # (b, N_q)
        ell = correction * ell + P.sum(axis=0)
        acc = correction * acc + V[:, start:stop] @ P  # (d_v, b) @ (b, N_q) -> (d_v, N_q)
        m = m_new
    return np.divide(acc, ell, out=np.zeros_like(acc), where=ell > 0)
