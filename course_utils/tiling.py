"""Tiled attention in PyTorch (row convention): the online softmax of lesson 07, block by block.

The same algorithm as `reference.online_softmax_attention` (NumPy, columns) and as the Triton kernel in
`course_utils.gpu`, written with plain tensor operations so each step can be printed. Per query row it keeps

    m    the running max of the scores seen so far      (..., N_q)
    l    the running sum of exp(score - m)              (..., N_q)
    acc  the running sum of exp(score - m) * v          (..., N_q, d_v)

and never holds more than (block_q, block_k) scores per (batch, head). The output is acc / l. For float16 and
bfloat16 inputs the scores and the state are float32 and the output is cast back, as in the Triton kernel.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ._validate import check_flag, check_positive_int, check_qkv, check_scale, shape_of

__all__ = [
    "online_softmax_step",
    "merge_states",
    "TilingStats",
    "tiled_attention",
    "score_matrix_bytes",
    "flash_state_bytes",
]


@dataclass(frozen=True)
class TilingStats:
    """What `tiled_attention(..., return_stats=True)` actually built, per (batch, head)."""

    largest_tile: tuple[int, int]  # (rows, cols) of the largest block of scores held at once
    score_blocks: int  # blocks of scores computed (causal skips the blocks above the diagonal)

    @property
    def largest_tile_scores(self) -> int:
        """Scores in the largest tile: the most held at once per (batch, head)."""
        return self.largest_tile[0] * self.largest_tile[1]


def online_softmax_step(m, l, acc, s_block, v_block):
    """Fold one block of keys into the running state; returns the new (m, l, acc).

    m, l: (..., N_q); acc: (..., N_q, d_v); s_block: (..., N_q, b) scores (-inf = masked); v_block: (..., b, d_v).
    """
    m_new = torch.maximum(m, s_block.amax(dim=-1))  # (..., N_q): the running max only moves up
    m_safe = torch.where(torch.isfinite(m_new), m_new, torch.zeros_like(m_new))  # rows with no key yet
    alpha = torch.exp(m - m_safe)  # (..., N_q) correction factor exp(m - m'); 0 when m = -inf
    p = torch.exp(s_block - m_safe[..., None])  # (..., N_q, b)
    l_new = alpha * l + p.sum(dim=-1)
    acc_new = alpha[..., None] * acc + p @ v_block  # (..., N_q, b) @ (..., b, d_v) -> (..., N_q, d_v)
    return m_new, l_new, acc_new


def merge_states(m1, l1, acc1, m2, l2, acc2):
    """Combine two partial states over disjoint key sets (how split-key kernels join their halves).

    Each m, l: (..., N_q); acc: (..., N_q, d_v). Returns (m, l, acc) as if one pass had seen both key sets.
    """
    m = torch.maximum(m1, m2)
    m_safe = torch.where(torch.isfinite(m), m, torch.zeros_like(m))
    a1, a2 = torch.exp(m1 - m_safe), torch.exp(m2 - m_safe)  # each side's correction factor
    return m, a1 * l1 + a2 * l2, a1[..., None] * acc1 + a2[..., None] * acc2


def _check(q, k, v) -> None:
    check_qkv(q, k, v)
    if not q.shape[:-2] == k.shape[:-2] == v.shape[:-2]:  # the tiles index one (..., N, d) block per batch entry
        raise ValueError(f"q, k, v must share batch dimensions: got q {shape_of(q)}, k {shape_of(k)}, v {shape_of(v)}")


def tiled_attention(
    q,
    k,
    v,
    causal: bool = False,
    scale: float | None = None,
    block_q: int = 32,
    block_k: int = 32,
    return_stats: bool = False,
) -> torch.Tensor | tuple[torch.Tensor, TilingStats]:
    """softmax(q k^T * scale) v over (block_q, block_k) tiles; q (..., N_q, d), k (..., N_k, d), v (..., N_k, d_v).

    Returns (..., N_q, d_v), equal to SDPA up to rounding. causal=True: query i sees keys j <= i (top-left).
    A query that sees no key gets a zero row. return_stats=True returns (output, TilingStats): the largest
    score tile it built and how many score blocks it computed.
    """
    _check(q, k, v)
    block_q = check_positive_int(block_q, "block_q")
    block_k = check_positive_int(block_k, "block_k")
    causal = check_flag(causal, "causal")
    scale = 1.0 / math.sqrt(q.shape[-1]) if scale is None else check_scale(scale, q.shape[-1])
    return_stats = check_flag(return_stats, "return_stats")
    n_q, n_k = q.shape[-2], k.shape[-2]
    out_dtype = q.dtype
    if q.dtype in (torch.float16, torch.bfloat16):  # scores, m, l and acc in float32, as the Triton kernel keeps them
        q, k, v = q.float(), k.float(), v.float()
    largest, blocks = (0, 0), 0  # the largest score tile built, the number of score blocks computed
    out = torch.empty(*q.shape[:-1], v.shape[-1], dtype=q.dtype, device=q.device)  # (..., N_q, d_v)
    for i0 in range(0, n_q, block_q):
        q_blk = q[..., i0 : i0 + block_q, :]  # (..., bq, d)
        rows = torch.arange(i0, i0 + q_blk.shape[-2], device=q.device)
        m = torch.full(q_blk.shape[:-1], float("-inf"), dtype=q.dtype, device=q.device)  # (..., bq)
        l = torch.zeros_like(m)  # (..., bq)
        acc = torch.zeros(*q_blk.shape[:-1], v.shape[-1], dtype=q.dtype, device=q.device)  # (..., bq, d_v)
        last = min(n_k, i0 + q_blk.shape[-2]) if causal else n_k  # causal: later keys are never seen
        for j0 in range(0, last, block_k):
            k_blk = k[..., j0 : j0 + block_k, :]  # (..., bk, d)
            s = (q_blk @ k_blk.transpose(-2, -1)) * scale  # (..., bq, d) @ (..., d, bk) -> (..., bq, bk)
            if causal:
                cols = torch.arange(j0, j0 + k_blk.shape[-2], device=q.device)
                s = s.masked_fill(cols[None, :] > rows[:, None], float("-inf"))
            blocks += 1
            if s.shape[-2] * s.shape[-1] > largest[0] * largest[1]:
                largest = (s.shape[-2], s.shape[-1])
            m, l, acc = online_softmax_step(m, l, acc, s, v[..., j0 : j0 + block_k, :])
        safe_l = torch.where(l > 0, l, torch.ones_like(l))
        out[..., i0 : i0 + block_q, :] = torch.where(l[..., None] > 0, acc / safe_l[..., None], 0.0)
    out = out.to(out_dtype)  # float32 state, output cast back to the inputs' dtype (no-op for fp32 and fp64)
    if return_stats:
        return out, TilingStats(largest_tile=largest, score_blocks=blocks)
    return out


def score_matrix_bytes(B: int, H: int, N: int, element_size: int) -> int:
    """Bytes of naive attention's (B, H, N, N) score matrix with `element_size`-byte numbers (2 for fp16)."""
    for name, value in (("B", B), ("H", H), ("N", N), ("element_size", element_size)):
        check_positive_int(value, name)
    return B * H * N * N * element_size


def flash_state_bytes(B: int, H: int, N: int) -> int:
    """Bytes flash attention keeps beyond q, k, v and the output: the fp32 log-sum-exp per query, (B, H, N)."""
    for name, value in (("B", B), ("H", H), ("N", N)):
        check_positive_int(value, name)
    return B * H * N * 4
