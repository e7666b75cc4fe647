"""Flash attention in Triton: exact softmax attention that never holds the N x N score matrix.

Shapes follow torch's SDPA: q, k, v and the output are (B, H, N, d). One Triton program owns a block of
BLOCK_M queries of one head and walks over the keys in blocks of BLOCK_N, keeping per query three running
quantities instead of a row of N scores (the online softmax, lesson 07):

    m   the largest score seen so far                              (BLOCK_M,)
    l   sum_j exp(s_j - m) over the keys seen so far               (BLOCK_M,)
    acc sum_j exp(s_j - m) v_j over the keys seen so far           (BLOCK_M, d)

A new block of scores S (BLOCK_M, BLOCK_N) moves the maximum to m' = max(m, rowmax S). Every old term
exp(s_j - m) must become exp(s_j - m') = exp(s_j - m) * exp(m - m'), so the old sums are multiplied by the
correction factor alpha = exp(m - m') <= 1 and the new block is added:

    P = exp(S - m'),   l' = alpha * l + rowsum P,   acc' = alpha * acc + P V.

After the last block, out = acc / l is exactly softmax(S) V: no approximation, only a different order of
summation. The row log-sum-exp LSE = m + log l is stored (B, H, N): the backward pass recomputes each block of
probabilities as P = exp(S - LSE) instead of storing them, so memory stays O(N) in both directions.

Backward (with D_i = sum_d dO_id O_id, one number per query, from a small pre-pass):

    dV = P^T dO,   dP = dO V^T,   dS = P * (dP - D),   dQ = scale * dS K,   dK = scale * dS^T Q.

One kernel owns a block of keys and loops over the queries (dK, dV); another owns a block of queries and loops
over the keys (dQ). Neither uses atomics, so results are bit-for-bit deterministic.

Scores are kept in base 2 (exp2 is one instruction on a GPU): qk_scale = scale * log2(e).
Any N works (rows and columns past N are masked); any head dim d <= 128 works (the tile's head axis is padded to
the next power of two, at least 16, and masked); causal is top-left aligned, as torch's SDPA.
Blocks inside the sequence (and, causal, below the diagonal) run a loop whose loads and scores have no mask at
all; only a padded head dim still masks its padding columns there.

Limits (checked by `_check_inputs`): B * H <= 65535 (the launch grid's second axis) and N * d < 2**31 (offsets
inside one head are int32; the offset of each (batch, head) is int64).

Autotuning (on a GPU) is keyed on N_BUCKET = next_power_of_2(N), the head dim and causal (and the dtypes): one
tuning per bucket of lengths, not one per distinct N.

Versions: written for triton 3.6 to 3.9 (pyproject's `gpu` extra: the triton that torch 2.10 to 2.15 pin); it uses only
plain pointer arithmetic, tl.dot with `input_precision`, tl.exp2/tl.log2, triton.jit(do_not_specialize=...) and
triton.autotune, which all have. An older Triton (torch 2.5 to 2.9 pin 3.1 to 3.5) counts as missing
(TRITON_PROBLEM says which to install), and so does triton 3.6's interpreter with numpy >= 2.4 (it fails there).
Tested with triton 3.7.1 under TRITON_INTERPRET=1 (CPU, in CI), compiled for sm_90 with triton 3.6.0 and 3.7.1, and
run on an NVIDIA H200 (torch 2.11, triton 3.6.0): the GPU tests (tests/test_gpu.py, marked `gpu`) passed and the full
benchmark ran 1.17x to 1.57x SDPA's flash backend (bench.recorded("H200"); tools/gpu_check.sh reruns both).
Block configs come per GPU family (GPU_FAMILIES: sm_80, sm_86/89, sm_90), each compiled on the CPU in a test and
checked to fit the family's shared memory without spilling registers. The H200 run used the earlier sm_90 lists
(dK/dV's has changed since); the sm_80 and sm_86 lists have not run on hardware (A100, L4, consumer cards).
TRITON_INTERPRET must be set before this module is imported (the interpreter replaces @triton.jit at definition
time); `import course_utils` never imports it. Under the interpreter one fixed block config is used; on a GPU a
small autotuned list (COURSE_UTILS_AUTOTUNE=full for a larger one, =off for one fixed config and the fewest compiles).

Future work (not done): (b) sm_75 (T4, Colab's free GPU): Triton 3.4 to 3.9 compile the kernel there without any
tensor-core instruction (FMA only) and its fp16 tiles need more than a T4's 64 KB of shared memory, so
`choose_backend` sends sm_75 to SDPA and a direct float16/bfloat16 call refuses (float32 warns and runs). (d) pass
strides to the kernels instead of calling .contiguous(): that would save a copy when q, k, v are views (e.g. a
(B, N, H, d) projection transposed to (B, H, N, d)), at the price of 4 more arguments per tensor.
"""

import inspect
import math
import os
import warnings
from dataclasses import dataclass
from typing import NamedTuple

import torch
import torch.nn.functional as F

from ._validate import check_flag, check_scale, shape_of
from .runtime import triton_problem

TRITON_PROBLEM = triton_problem()  # None, or the one line that says why the kernels cannot run here
try:
    if TRITON_PROBLEM is not None:
        raise ImportError(TRITON_PROBLEM)
    import triton
    import triton.language as tl

    TRITON_AVAILABLE = True
except ImportError as exc:  # e.g. macOS: the dispatch falls back to torch SDPA; the kernels below are never launched
    from types import SimpleNamespace

    TRITON_AVAILABLE = False
    TRITON_PROBLEM = TRITON_PROBLEM or f"Triton cannot be imported ({exc})"

    def _no_jit(fn=None, **_options):
        return fn if fn is not None else (lambda f: f)

    triton = SimpleNamespace(jit=_no_jit, cdiv=lambda a, b: -(-a // b))
    tl = SimpleNamespace(constexpr=lambda x: x, float32="float32")

__all__ = [
    "TRITON_AVAILABLE",
    "TRITON_PROBLEM",
    "INTERPRET",
    "SUPPORTED_DTYPES",
    "MAX_HEAD_DIM",
    "BackendChoice",
    "choose_backend",
    "flash_attention",
    "flash_attention_forward",
    "attention",
    "kernel_source",
]

INTERPRET = os.environ.get("TRITON_INTERPRET", "0") not in ("", "0")  # read once, as triton.jit does
SUPPORTED_DTYPES = (torch.float16, torch.bfloat16, torch.float32)
MAX_HEAD_DIM = 128  # one (BLOCK_M, d) tile of q, k, v each must fit in on-chip memory
MIN_CAPABILITY = (8, 0)  # Ampere: bf16 tensor cores and the async copies Triton pipelines with

ACC_DTYPE = tl.float32  # accumulators, running max/sum and LSE are always fp32, whatever the input dtype
LOG2E = tl.constexpr(1.4426950408889634)  # exp(x) = exp2(x * log2(e))
LN2 = tl.constexpr(0.6931471805599453)  # log(x) = log2(x) * ln(2)
# tl.dot's input_precision. It matters for fp32 tiles only: "ieee" multiplies them in exact fp32 (TF32 would give
# ~1e-3 errors). fp16/bf16 tiles ignore it: they always run on the tensor cores, accumulating in fp32.
FP32_DOT = tl.constexpr("ieee")


# ---------------------------------------------------------------------------------------------------------
# Tiles. Names say where data lives: t_ a pointer into a global tensor, b_ a block held in registers/SRAM.
# ---------------------------------------------------------------------------------------------------------


@triton.jit
def _load_tile(t_ptrs, row_ok, d_ok, MASK_ROWS: tl.constexpr, PAD_D: tl.constexpr):
    """Load a (rows, BLOCK_D) tile; zeros in rows past N (MASK_ROWS) and in the head-dim padding (PAD_D).

    With neither flag (a full block of an unpadded head) the load has no mask at all.
    """
    if MASK_ROWS:
        if PAD_D:
            b_x = tl.load(t_ptrs, mask=row_ok[:, None] & d_ok[None, :], other=0.0)
        else:
            b_x = tl.load(t_ptrs, mask=row_ok[:, None], other=0.0)
    else:
        if PAD_D:
            b_x = tl.load(t_ptrs, mask=d_ok[None, :], other=0.0)
        else:
            b_x = tl.load(t_ptrs)
    return b_x


@triton.jit
def _store_tile(t_ptrs, b_x, row_ok, d_ok, PAD_D: tl.constexpr):
    """Store a (rows, BLOCK_D) tile, skipping rows past N and the head-dim padding."""
    if PAD_D:
        tl.store(t_ptrs, b_x, mask=row_ok[:, None] & d_ok[None, :])
    else:
        tl.store(t_ptrs, b_x, mask=row_ok[:, None])


# ---------------------------------------------------------------------------------------------------------
# Forward: the inner loop (online softmax over key blocks), then the kernel around it.
# ---------------------------------------------------------------------------------------------------------


@triton.jit
def _fwd_inner(
    b_acc, b_m, b_l, b_q, t_k, t_v, offs_m, offs_d, lo, hi, N, qk_scale,
    HEAD_DIM: tl.constexpr, BLOCK_N: tl.constexpr, PAD_D: tl.constexpr,
    MASKED: tl.constexpr, CAUSAL: tl.constexpr,
):
    """Online softmax over the key blocks [lo, hi): update the running max b_m, sum b_l and accumulator b_acc."""
    offs_n = tl.arange(0, BLOCK_N)
    d_ok = offs_d < HEAD_DIM
    for start_n in range(lo, hi, BLOCK_N):
        cols = start_n + offs_n  # key indices of this block
        col_ok = cols < N
        t_kv = cols[:, None] * HEAD_DIM + offs_d[None, :]
        # unmasked blocks: no mask at all, or only the head-dim padding when PAD_D
        b_k = _load_tile(t_k + t_kv, col_ok, d_ok, MASKED, PAD_D)  # (BLOCK_N, BLOCK_D)
        b_v = _load_tile(t_v + t_kv, col_ok, d_ok, MASKED, PAD_D)  # (BLOCK_N, BLOCK_D)
        # (BLOCK_M, BLOCK_D) @ (BLOCK_D, BLOCK_N) -> (BLOCK_M, BLOCK_N) scores, in base-2 units
        b_s = tl.dot(b_q, tl.trans(b_k), input_precision=FP32_DOT) * qk_scale
        if MASKED:  # past the end of the sequence, or (causal) a key after the query
            keep = col_ok[None, :]
            if CAUSAL:
                keep = keep & (cols[None, :] <= offs_m[:, None])
            b_s = tl.where(keep, b_s, float("-inf"))
        b_m_new = tl.maximum(b_m, tl.max(b_s, 1))  # the running max moves up (never down)
        b_alpha = tl.exp2(b_m - b_m_new)  # correction factor exp(m - m') for everything summed so far
        b_p = tl.exp2(b_s - b_m_new[:, None])  # (BLOCK_M, BLOCK_N) unnormalised probabilities
        b_l = b_l * b_alpha + tl.sum(b_p, 1)
        # acc' = alpha * acc + P V (tl.dot adds its third argument): (BLOCK_M, BLOCK_N) @ (BLOCK_N, BLOCK_D)
        b_acc = tl.dot(b_p.to(b_v.dtype), b_v, b_acc * b_alpha[:, None], input_precision=FP32_DOT)
        b_m = b_m_new
    return b_acc, b_m, b_l


# N_BUCKET only keys the autotuner: not specialising on it keeps its values from adding compiled variants.
@triton.jit(do_not_specialize=["N_BUCKET"])
def _attn_fwd(
    t_q, t_k, t_v, t_o, t_lse, N, N_BUCKET, qk_scale,
    HEAD_DIM: tl.constexpr, BLOCK_D: tl.constexpr, PAD_D: tl.constexpr, CAUSAL: tl.constexpr,
    BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr,
):
    """One program: BLOCK_M queries of one (batch, head); writes their outputs and log-sum-exps.

    N_BUCKET (next power of two >= N) is not used here: it is the autotuner's key.
    """
    start_m = tl.program_id(0) * BLOCK_M
    bh = tl.program_id(1).to(tl.int64)  # which (batch, head): int64, so huge tensors do not overflow
    head = bh * N * HEAD_DIM  # q, k, v, o are contiguous (B, H, N, d)
    t_q += head
    t_k += head
    t_v += head
    t_o += head
    t_lse += bh * N
    offs_m = start_m + tl.arange(0, BLOCK_M)
    offs_d = tl.arange(0, BLOCK_D)
    row_ok = offs_m < N
    d_ok = offs_d < HEAD_DIM
    t_rows = offs_m[:, None] * HEAD_DIM + offs_d[None, :]
    b_q = _load_tile(t_q + t_rows, row_ok, d_ok, True, PAD_D)  # (BLOCK_M, BLOCK_D), stays on chip
    b_m = tl.full([BLOCK_M], float("-inf"), dtype=ACC_DTYPE)
    b_l = tl.zeros([BLOCK_M], dtype=ACC_DTYPE)
    b_acc = tl.zeros([BLOCK_M, BLOCK_D], dtype=ACC_DTYPE)
    if CAUSAL:  # keys before this query block need no mask; the diagonal block does
        body_hi = start_m
        edge_hi = tl.minimum(start_m + BLOCK_M, N)
    else:  # full key blocks need no mask; the last, partial one does
        body_hi = (N // BLOCK_N) * BLOCK_N
        edge_hi = N
    b_acc, b_m, b_l = _fwd_inner(
        b_acc, b_m, b_l, b_q, t_k, t_v, offs_m, offs_d, 0, body_hi, N, qk_scale,
        HEAD_DIM, BLOCK_N, PAD_D, False, CAUSAL,
    )
    b_acc, b_m, b_l = _fwd_inner(
        b_acc, b_m, b_l, b_q, t_k, t_v, offs_m, offs_d, body_hi, edge_hi, N, qk_scale,
        HEAD_DIM, BLOCK_N, PAD_D, True, CAUSAL,
    )
    # every query sees at least key 0, so b_l > 0
    b_o = b_acc / b_l[:, None]
    b_lse = (b_m + tl.log2(b_l)) * LN2  # natural-log LSE = m + log(l), from base-2 units
    _store_tile(t_o + t_rows, b_o.to(t_o.dtype.element_ty), row_ok, d_ok, PAD_D)
    tl.store(t_lse + offs_m, b_lse, mask=row_ok)


# ---------------------------------------------------------------------------------------------------------
# Backward: D = rowsum(dO * O); dK, dV by key blocks; dQ by query blocks. P is recomputed from the LSE.
# ---------------------------------------------------------------------------------------------------------


@triton.jit
def _bwd_delta(
    t_o, t_do, t_delta, N,
    HEAD_DIM: tl.constexpr, BLOCK_D: tl.constexpr, PAD_D: tl.constexpr, BLOCK_M: tl.constexpr,
):
    """D_i = sum_d dO_id * O_id for BLOCK_M queries: the row term of the softmax gradient."""
    start_m = tl.program_id(0) * BLOCK_M
    bh = tl.program_id(1).to(tl.int64)
    offs_m = start_m + tl.arange(0, BLOCK_M)
    offs_d = tl.arange(0, BLOCK_D)
    row_ok = offs_m < N
    t_rows = bh * N * HEAD_DIM + offs_m[:, None] * HEAD_DIM + offs_d[None, :]
    b_o = _load_tile(t_o + t_rows, row_ok, offs_d < HEAD_DIM, True, PAD_D).to(ACC_DTYPE)
    b_do = _load_tile(t_do + t_rows, row_ok, offs_d < HEAD_DIM, True, PAD_D).to(ACC_DTYPE)
    tl.store(t_delta + bh * N + offs_m, tl.sum(b_o * b_do, 1), mask=row_ok)


@triton.jit
def _bwd_dkdv_inner(
    b_dk, b_dv, b_k, b_v, t_q, t_do, t_lse, t_delta, offs_n, offs_d, lo, hi, N, qk_scale,
    HEAD_DIM: tl.constexpr, BLOCK_M: tl.constexpr, PAD_D: tl.constexpr,
    MASKED: tl.constexpr, CAUSAL: tl.constexpr,
):
    """Accumulate dK and dV of one key block over the query blocks [lo, hi); works on transposed scores."""
    offs_m0 = tl.arange(0, BLOCK_M)
    d_ok = offs_d < HEAD_DIM
    for start_m in range(lo, hi, BLOCK_M):
        rows = start_m + offs_m0  # query indices of this block
        row_ok = rows < N
        t_rows = rows[:, None] * HEAD_DIM + offs_d[None, :]
        # unmasked blocks: no mask at all, or only the head-dim padding when PAD_D
        b_q = _load_tile(t_q + t_rows, row_ok, d_ok, MASKED, PAD_D)  # (BLOCK_M, BLOCK_D)
        b_do = _load_tile(t_do + t_rows, row_ok, d_ok, MASKED, PAD_D)  # (BLOCK_M, BLOCK_D)
        if MASKED:
            b_lse = tl.load(t_lse + rows, mask=row_ok, other=0.0)
            b_delta = tl.load(t_delta + rows, mask=row_ok, other=0.0)
        else:
            b_lse = tl.load(t_lse + rows)
            b_delta = tl.load(t_delta + rows)
        # (BLOCK_N, BLOCK_D) @ (BLOCK_D, BLOCK_M) -> (BLOCK_N, BLOCK_M): S^T, base-2 units
        b_sT = tl.dot(b_k, tl.trans(b_q), input_precision=FP32_DOT) * qk_scale
        # masked before the exponent: a padded key (row past N) would give exp(-LSE), which can overflow fp16
        keep = offs_n[:, None] < N
        if MASKED:
            keep = keep & row_ok[None, :]
            if CAUSAL:
                keep = keep & (offs_n[:, None] <= rows[None, :])
        b_sT = tl.where(keep, b_sT, float("-inf"))
        b_pT = tl.exp2(b_sT - b_lse[None, :] * LOG2E)  # P^T = exp(S^T - LSE): the forward's probabilities; 0 masked
        # dV += P^T dO: (BLOCK_N, BLOCK_M) @ (BLOCK_M, BLOCK_D) -> (BLOCK_N, BLOCK_D)
        b_dv = tl.dot(b_pT.to(b_do.dtype), b_do, b_dv, input_precision=FP32_DOT)
        # dP^T = V dO^T: (BLOCK_N, BLOCK_D) @ (BLOCK_D, BLOCK_M) -> (BLOCK_N, BLOCK_M)
        b_dpT = tl.dot(b_v, tl.trans(b_do), input_precision=FP32_DOT)
        b_dsT = b_pT * (b_dpT - b_delta[None, :])  # dS^T = P^T * (dP^T - D)
        # dK += dS^T Q: (BLOCK_N, BLOCK_M) @ (BLOCK_M, BLOCK_D) -> (BLOCK_N, BLOCK_D)
        b_dk = tl.dot(b_dsT.to(b_q.dtype), b_q, b_dk, input_precision=FP32_DOT)
    return b_dk, b_dv


@triton.jit(do_not_specialize=["N_BUCKET"])
def _attn_bwd_dkdv(
    t_q, t_k, t_v, t_do, t_lse, t_delta, t_dk, t_dv, N, N_BUCKET, qk_scale, sm_scale,
    HEAD_DIM: tl.constexpr, BLOCK_D: tl.constexpr, PAD_D: tl.constexpr, CAUSAL: tl.constexpr,
    BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr,
):
    """One program: dK and dV for BLOCK_N keys of one (batch, head), looping over the queries that see them."""
    start_n = tl.program_id(0) * BLOCK_N
    bh = tl.program_id(1).to(tl.int64)
    head = bh * N * HEAD_DIM
    t_q += head
    t_k += head
    t_v += head
    t_do += head
    t_dk += head
    t_dv += head
    t_lse += bh * N
    t_delta += bh * N
    offs_n = start_n + tl.arange(0, BLOCK_N)
    offs_d = tl.arange(0, BLOCK_D)
    col_ok = offs_n < N
    d_ok = offs_d < HEAD_DIM
    t_cols = offs_n[:, None] * HEAD_DIM + offs_d[None, :]
    b_k = _load_tile(t_k + t_cols, col_ok, d_ok, True, PAD_D)  # (BLOCK_N, BLOCK_D), stays on chip
    b_v = _load_tile(t_v + t_cols, col_ok, d_ok, True, PAD_D)
    b_dk = tl.zeros([BLOCK_N, BLOCK_D], dtype=ACC_DTYPE)
    b_dv = tl.zeros([BLOCK_N, BLOCK_D], dtype=ACC_DTYPE)
    full_m = (N // BLOCK_M) * BLOCK_M  # query blocks before this index are complete
    if CAUSAL:  # queries before start_n never see these keys; the diagonal square needs the causal mask
        diag_lo = start_n
        diag_hi = tl.minimum(start_n + BLOCK_N, N)
        body_lo = start_n + BLOCK_N
    else:
        diag_lo = 0
        diag_hi = 0
        body_lo = 0
    b_dk, b_dv = _bwd_dkdv_inner(
        b_dk, b_dv, b_k, b_v, t_q, t_do, t_lse, t_delta, offs_n, offs_d, diag_lo, diag_hi, N, qk_scale,
        HEAD_DIM, BLOCK_M, PAD_D, True, CAUSAL,
    )
    b_dk, b_dv = _bwd_dkdv_inner(
        b_dk, b_dv, b_k, b_v, t_q, t_do, t_lse, t_delta, offs_n, offs_d, body_lo, full_m, N, qk_scale,
        HEAD_DIM, BLOCK_M, PAD_D, False, CAUSAL,
    )
    b_dk, b_dv = _bwd_dkdv_inner(
        b_dk, b_dv, b_k, b_v, t_q, t_do, t_lse, t_delta, offs_n, offs_d, tl.maximum(body_lo, full_m), N, N,
        qk_scale, HEAD_DIM, BLOCK_M, PAD_D, True, CAUSAL,
    )
    _store_tile(t_dv + t_cols, b_dv.to(t_dv.dtype.element_ty), col_ok, d_ok, PAD_D)
    _store_tile(t_dk + t_cols, (b_dk * sm_scale).to(t_dk.dtype.element_ty), col_ok, d_ok, PAD_D)


@triton.jit
def _bwd_dq_inner(
    b_dq, b_q, b_do, b_lse2, b_delta, t_k, t_v, offs_m, offs_d, lo, hi, N, qk_scale,
    HEAD_DIM: tl.constexpr, BLOCK_N: tl.constexpr, PAD_D: tl.constexpr,
    MASKED: tl.constexpr, CAUSAL: tl.constexpr,
):
    """Accumulate dQ of one query block over the key blocks [lo, hi)."""
    offs_n0 = tl.arange(0, BLOCK_N)
    d_ok = offs_d < HEAD_DIM
    for start_n in range(lo, hi, BLOCK_N):
        cols = start_n + offs_n0
        col_ok = cols < N
        t_cols = cols[:, None] * HEAD_DIM + offs_d[None, :]
        # unmasked blocks: no mask at all, or only the head-dim padding when PAD_D
        b_k = _load_tile(t_k + t_cols, col_ok, d_ok, MASKED, PAD_D)  # (BLOCK_N, BLOCK_D)
        b_v = _load_tile(t_v + t_cols, col_ok, d_ok, MASKED, PAD_D)  # (BLOCK_N, BLOCK_D)
        # (BLOCK_M, BLOCK_D) @ (BLOCK_D, BLOCK_N) -> (BLOCK_M, BLOCK_N)
        b_s = tl.dot(b_q, tl.trans(b_k), input_precision=FP32_DOT) * qk_scale
        b_p = tl.exp2(b_s - b_lse2[:, None])
        if MASKED:
            keep = col_ok[None, :]
            if CAUSAL:
                keep = keep & (cols[None, :] <= offs_m[:, None])
            b_p = tl.where(keep, b_p, 0.0)
        # dP = dO V^T: (BLOCK_M, BLOCK_D) @ (BLOCK_D, BLOCK_N) -> (BLOCK_M, BLOCK_N)
        b_dp = tl.dot(b_do, tl.trans(b_v), input_precision=FP32_DOT)
        b_ds = b_p * (b_dp - b_delta[:, None])
        # dQ += dS K: (BLOCK_M, BLOCK_N) @ (BLOCK_N, BLOCK_D) -> (BLOCK_M, BLOCK_D)
        b_dq = tl.dot(b_ds.to(b_k.dtype), b_k, b_dq, input_precision=FP32_DOT)
    return b_dq


@triton.jit(do_not_specialize=["N_BUCKET"])
def _attn_bwd_dq(
    t_q, t_k, t_v, t_do, t_lse, t_delta, t_dq, N, N_BUCKET, qk_scale, sm_scale,
    HEAD_DIM: tl.constexpr, BLOCK_D: tl.constexpr, PAD_D: tl.constexpr, CAUSAL: tl.constexpr,
    BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr,
):
    """One program: dQ for BLOCK_M queries of one (batch, head), looping over the keys they see."""
    start_m = tl.program_id(0) * BLOCK_M
    bh = tl.program_id(1).to(tl.int64)
    head = bh * N * HEAD_DIM
    t_q += head
    t_k += head
    t_v += head
    t_do += head
    t_dq += head
    offs_m = start_m + tl.arange(0, BLOCK_M)
    offs_d = tl.arange(0, BLOCK_D)
    row_ok = offs_m < N
    d_ok = offs_d < HEAD_DIM
    t_rows = offs_m[:, None] * HEAD_DIM + offs_d[None, :]
    b_q = _load_tile(t_q + t_rows, row_ok, d_ok, True, PAD_D)  # (BLOCK_M, BLOCK_D)
    b_do = _load_tile(t_do + t_rows, row_ok, d_ok, True, PAD_D)  # (BLOCK_M, BLOCK_D)
    b_lse2 = tl.load(t_lse + bh * N + offs_m, mask=row_ok, other=0.0) * LOG2E  # LSE in base-2 units
    b_delta = tl.load(t_delta + bh * N + offs_m, mask=row_ok, other=0.0)
    b_dq = tl.zeros([BLOCK_M, BLOCK_D], dtype=ACC_DTYPE)
    if CAUSAL:
        body_hi = start_m
        edge_hi = tl.minimum(start_m + BLOCK_M, N)
    else:
        body_hi = (N // BLOCK_N) * BLOCK_N
        edge_hi = N
    b_dq = _bwd_dq_inner(
        b_dq, b_q, b_do, b_lse2, b_delta, t_k, t_v, offs_m, offs_d, 0, body_hi, N, qk_scale,
        HEAD_DIM, BLOCK_N, PAD_D, False, CAUSAL,
    )
    b_dq = _bwd_dq_inner(
        b_dq, b_q, b_do, b_lse2, b_delta, t_k, t_v, offs_m, offs_d, body_hi, edge_hi, N, qk_scale,
        HEAD_DIM, BLOCK_N, PAD_D, True, CAUSAL,
    )
    _store_tile(t_dq + t_rows, (b_dq * sm_scale).to(t_dq.dtype.element_ty), row_ok, d_ok, PAD_D)


# ---------------------------------------------------------------------------------------------------------
# Configs: one fixed config in the interpreter, a small autotuned list on a GPU, a larger list behind a flag.
# ---------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BlockConfig:
    block_m: int  # queries per program (forward, dQ) or per inner step (dK/dV)
    block_n: int  # keys per inner step (forward, dQ) or per program (dK/dV)
    num_warps: int = 4  # GPU threads per program / 32
    num_stages: int = 3  # software-pipelining depth of the loads in the inner loop
    max_head_dim: int = MAX_HEAD_DIM  # used only up to this head dim: beyond it the tiles spill registers


# Interpreter: one fixed config per kernel, small and asymmetric, so tiny test inputs run every path
# (several unmasked blocks, a diagonal split into two steps, a partial last block).
INTERPRETER_FWD = INTERPRETER_DQ = BlockConfig(64, 32, 4, 1)
INTERPRETER_DKDV = BlockConfig(32, 64, 4, 1)
# GPU, fp16/bf16, one list per GPU family (below). Forward and dQ need block_m % block_n == 0 (the causal diagonal
# is one query block); dK/dV the reverse. The first config of each list that takes the head dim is the one used when
# autotuning is off. Every config fits its family's shared memory and spills no register at its max_head_dim
# (tests/test_gpu_compile.py compiles each one for each family's architectures and reads both).
# Seen on an H200 (bf16): for the forward the autotuner picked 64 x 64 (4 warps) at N = 1k, and at N = 16k 128 x 64
# (4 warps) for d = 64, 128 x 128 (8 warps) for d = 128. 128 x 128 with 4 warps ran at half speed; with 8 warps and
# 4 stages it runs out of shared memory at d = 128. A one-off run found 128 x 64 with 8 warps about 3% faster at
# d = 128, N = 16k, but a full sweep with it in the list moved the median cell by under 1% (SDPA's own timings moved
# up to 5% between the two runs): not kept. The backward kernels load two tiles per step, so their lists
# include deeper pipelines (5 stages); at N = 16k, d = 64 the autotuner picked 5 stages for dK/dV.
# Compiled for sm_90 at d = 128, the 4-warp configs with a 128-row tile (forward 128 x 64, dQ 128 x 32) spill registers
# (255 registers and a stack frame): they serve d <= 64 only. dK/dV's 32 x 128 with 4 warps spilled 16 bytes even at
# d = 64 on sm_90, so it was replaced by 8 warps (the H200 run in bench.recorded() used the earlier lists).
# variable-length tuples: each family and AUTOTUNE="full" give lists of their own length
FWD_CONFIGS: tuple[BlockConfig, ...]
DKDV_CONFIGS: tuple[BlockConfig, ...]
DQ_CONFIGS: tuple[BlockConfig, ...]
FWD_CONFIGS = (  # sm_90 (H100, H200): 227 KB of shared memory per block
    BlockConfig(128, 64, 4, 3, 64), BlockConfig(128, 128, 8, 3), BlockConfig(128, 64, 4, 4, 64),
    BlockConfig(64, 64, 4, 3),
)
DKDV_CONFIGS = (BlockConfig(32, 128, 8, 3), BlockConfig(32, 64, 4, 3))  # 64 x 128 (8 warps) spills with triton 3.9
DQ_CONFIGS = (BlockConfig(128, 32, 4, 3, 64), BlockConfig(128, 32, 4, 5, 64), BlockConfig(128, 64, 8, 3))
# fp32 inputs use exact fp32 products (no tensor cores): twice the bytes per tile and long compiles, so
# one small config each, the same on every family. fp32 is the accuracy path; fp16/bf16 are the fast ones.
# At d = 128 a 64-query fp32 tile spills on sm_86/sm_90 (and dQ's needs 104 KB, over sm_86's 99 KB).
# The backward kernels hold three or four (32, 128) fp32 tiles per program: with 4 warps they spill, with 8 they don't.
FP32_FWD_CONFIGS = (BlockConfig(32, 16, 8, 2),)  # 32 x 32 spills on sm_90; sm_80 keeps it (32 x 16 spills there)
FP32_DQ_CONFIGS = (BlockConfig(32, 32, 8, 2),)
FP32_DKDV_CONFIGS = (BlockConfig(16, 32, 8, 2),)  # 32 x 32 spilled even with 8 warps on sm_86, sm_89 and sm_90
# COURSE_UTILS_AUTOTUNE: "small" (default: the lists above), "full" (a wide grid, the same for every GPU, not checked
# for shared memory or spills: slow to tune), "off" (each list's first fitting config: no tuning, fewest compiles).
AUTOTUNE = os.environ.get("COURSE_UTILS_AUTOTUNE", "small")
if AUTOTUNE not in ("small", "full", "off"):
    raise ValueError(f"COURSE_UTILS_AUTOTUNE must be 'small', 'full' or 'off', got {AUTOTUNE!r}")


@dataclass(frozen=True)
class GpuFamily:
    """The block configs of one family of GPUs, each fitting its shared memory without spilling registers."""

    name: str  # the architecture the lists were checked for, e.g. "sm_80"
    shared_memory: int  # bytes of shared memory one block may use (the opt-in maximum)
    targets: tuple[int, ...]  # compute capabilities (major * 10 + minor) the compile test builds for
    fwd: tuple[BlockConfig, ...]
    dkdv: tuple[BlockConfig, ...]
    dq: tuple[BlockConfig, ...]
    examples: str  # GPUs of the family, for messages and docs
    fp32_fwd: tuple[BlockConfig, ...] = FP32_FWD_CONFIGS  # the fp32 forward list, where it differs

    def configs(self, name: str, fp32: bool) -> tuple[BlockConfig, ...]:
        """The list for kernel `name` ('fwd', 'dkdv' or 'dq') and fp32 or fp16/bf16 inputs."""
        if fp32:
            return {"fwd": self.fp32_fwd, "dkdv": FP32_DKDV_CONFIGS, "dq": FP32_DQ_CONFIGS}[name]
        return getattr(self, name)


GPU_FAMILIES = {
    # Compiled causal: 4-warp 128-row forward tiles spill on sm_80 even at d = 64, and dK/dV's 32 x 128 with 4 warps
    # on sm_80, sm_86 and sm_89 (24 bytes at d = 64).
    "sm_80": GpuFamily(  # A100, A30: 163 KB; the sm_90 lists' 128 x 128 forward tile needs 160 KB and spills there
        "sm_80", 163 * 1024, (80,),
        fwd=(BlockConfig(128, 64, 8, 3), BlockConfig(64, 64, 4, 3)),
        dkdv=(BlockConfig(32, 64, 4, 3),),
        dq=(BlockConfig(128, 32, 8, 3), BlockConfig(64, 32, 4, 2)),
        examples="A100, A30",
        fp32_fwd=(BlockConfig(32, 32, 4, 2),),
    ),
    "sm_86": GpuFamily(  # RTX 30xx, A10, A40 (sm_86), L4, RTX 40xx, L40 (sm_89): 99 KB per block
        "sm_86", 99 * 1024, (86, 89),
        fwd=(BlockConfig(128, 64, 8, 3), BlockConfig(64, 64, 4, 2)),  # 128 x 64, 4 warps spills (triton 3.9)
        dkdv=(BlockConfig(32, 64, 4, 3),),
        dq=(BlockConfig(128, 32, 8, 3), BlockConfig(64, 32, 4, 2)),
        examples="RTX 3090, A10, L4, RTX 4090",
    ),
    "sm_90": GpuFamily(
        "sm_90", 227 * 1024, (90,), fwd=FWD_CONFIGS, dkdv=DKDV_CONFIGS, dq=DQ_CONFIGS, examples="H100, H200"
    ),
}


def gpu_family(capability: tuple[int, int]) -> GpuFamily:
    """The config family for a GPU of compute `capability` (sm_80 and newer).

    sm_8x other than sm_80 get the 99 KB lists (sm_87's 163 KB is not counted on); sm_9x and sm_10x (227 KB and
    more) the sm_90 lists; anything newer the smallest (99 KB) lists, which fit every GPU the kernel runs on.
    """
    major, minor = capability
    if major == 8:
        return GPU_FAMILIES["sm_80" if minor == 0 else "sm_86"]
    if major in (9, 10):
        return GPU_FAMILIES["sm_90"]
    return GPU_FAMILIES["sm_86"]


def _full_list(queries_per_key_block: bool) -> tuple[BlockConfig, ...]:
    """Every (block_m, block_n, warps, stages) in a wider grid that keeps the divisibility rule."""
    out = []
    for bm in (32, 64, 128):
        for bn in (32, 64, 128):
            ok = bn % bm == 0 if queries_per_key_block else bm % bn == 0
            if ok:
                out += [BlockConfig(bm, bn, w, s) for w in (4, 8) for s in (2, 3, 4, 5)]
    return tuple(out)


_KERNELS = {"fwd": _attn_fwd, "dkdv": _attn_bwd_dkdv, "dq": _attn_bwd_dq}
_INTERPRETER_CONFIGS = {"fwd": INTERPRETER_FWD, "dkdv": INTERPRETER_DKDV, "dq": INTERPRETER_DQ}
_TUNED: dict = {}  # (kernel, fp32, family) -> autotuned kernel, built on first use


def _configs(name: str, fp32: bool, family: GpuFamily) -> tuple[BlockConfig, ...]:
    """The configs the launch may use: the family's list, or the wide grid under COURSE_UTILS_AUTOTUNE=full."""
    if AUTOTUNE == "full" and not fp32:
        return _full_list(name == "dkdv")
    return family.configs(name, fp32)


def _for_head_dim(configs: tuple[BlockConfig, ...], head_dim: int) -> tuple[BlockConfig, ...]:
    """The configs whose tiles take this head dim (the last of a list always takes every head dim)."""
    return tuple(c for c in configs if head_dim <= c.max_head_dim) or configs[-1:]


def _kernel_and_meta(name: str, fp32: bool, family: GpuFamily | None = None, head_dim: int = MAX_HEAD_DIM):
    """The kernel to launch ('fwd', 'dkdv' or 'dq') and the launch parameters the caller must still pass."""
    if INTERPRET:
        c = _INTERPRETER_CONFIGS[name]
        return _KERNELS[name], {"BLOCK_M": c.block_m, "BLOCK_N": c.block_n}
    family = family or GPU_FAMILIES["sm_90"]
    configs = _configs(name, fp32, family)
    if AUTOTUNE == "off" or len(_for_head_dim(configs, head_dim)) == 1:
        c = _for_head_dim(configs, head_dim)[0]
        meta = {"BLOCK_M": c.block_m, "BLOCK_N": c.block_n, "num_warps": c.num_warps, "num_stages": c.num_stages}
        return _KERNELS[name], meta
    key = (name, fp32, family.name)
    if key not in _TUNED:
        tuned = [
            triton.Config({"BLOCK_M": c.block_m, "BLOCK_N": c.block_n}, num_warps=c.num_warps, num_stages=c.num_stages)
            for c in configs
        ]
        limit = {id(t): c.max_head_dim for t, c in zip(tuned, configs)}

        def prune(configs, named_args, **kwargs):  # the autotuner's hook: drop configs that spill at this head dim
            d = kwargs.get("HEAD_DIM", named_args.get("HEAD_DIM", MAX_HEAD_DIM))
            return [t for t in configs if d <= limit[id(t)]] or list(configs[-1:])

        _TUNED[key] = triton.autotune(
            configs=tuned,
            # one tuning per (length bucket, head dim, causal) and dtype (the autotuner adds the dtypes)
            key=["N_BUCKET", "HEAD_DIM", "CAUSAL"],
            prune_configs_by={"early_config_prune": prune},
        )(_KERNELS[name])
    return _TUNED[key], {}


# ---------------------------------------------------------------------------------------------------------
# Python side: validation, launches, autograd.
# ---------------------------------------------------------------------------------------------------------


def _check_inputs(q, k, v, causal, scale) -> float:
    """Shapes, dtypes and devices of q, k, v (no finiteness check: it would sync the GPU); returns the scale.

    Size limits: B * H <= 65535 (the launch grid's second axis) and N * d < 2**31 (offsets inside one head are
    int32 in the kernels; only the (batch, head) offset is int64).
    """
    for name, t in (("q", q), ("k", k), ("v", v)):
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
        if t.ndim != 4:
            raise ValueError(f"{name} must have shape (B, H, N, d), got shape {shape_of(t)}")
    if not (q.shape == k.shape == v.shape):
        raise ValueError(
            f"q, k, v must have the same shape (B, H, N, d): got q {shape_of(q)}, k {shape_of(k)}, v {shape_of(v)}"
        )
    B, H, N, d = q.shape
    if min(B, H, N) == 0:
        raise ValueError(f"q must hold at least one batch, head and token, got shape {shape_of(q)}")
    if not 1 <= d <= MAX_HEAD_DIM:
        raise ValueError(f"head dim d must lie in [1, {MAX_HEAD_DIM}], got q of shape {shape_of(q)}")
    if B * H > 65535:
        raise ValueError(f"B * H must be at most 65535 (a launch-grid limit), got q of shape {shape_of(q)}")
    if N * d >= 2**31:
        raise ValueError(f"N * d must be below 2**31 (int32 offsets inside one head), got q of shape {shape_of(q)}")
    if not (q.dtype == k.dtype == v.dtype):
        raise TypeError(f"q, k, v must share a dtype: got {q.dtype}, {k.dtype}, {v.dtype}")
    if q.dtype not in SUPPORTED_DTYPES:
        raise TypeError(f"q, k, v must be float16, bfloat16 or float32, got {q.dtype}")
    if not (q.device == k.device == v.device):
        raise ValueError(f"q, k, v must be on one device: got {q.device}, {k.device}, {v.device}")
    if not TRITON_AVAILABLE:
        raise RuntimeError("flash_attention needs Triton (pip install triton); use attention(..., backend='auto')")
    if q.device.type != "cuda" and not INTERPRET:
        raise RuntimeError(
            f"flash_attention needs CUDA tensors, got {q.device}; on a CPU set TRITON_INTERPRET=1 before "
            "importing course_utils.gpu (slow: for tests and teaching)"
        )
    if q.device.type == "cuda" and INTERPRET:
        raise RuntimeError("TRITON_INTERPRET=1 runs kernels on the CPU: pass CPU tensors (or unset it)")
    check_flag(causal, "causal")
    return 1.0 / math.sqrt(d) if scale is None else check_scale(scale, d)


def _device_family(device: torch.device) -> GpuFamily | None:
    """The config family of the GPU holding the tensors (None on a CPU: the interpreter's fixed configs)."""
    capability = _capability(device)
    return None if capability is None or capability < MIN_CAPABILITY else gpu_family(capability)


def _static_args(q: torch.Tensor, causal: bool) -> dict:
    d = q.shape[-1]
    block_d = max(16, triton.next_power_of_2(d))  # tl.dot needs >= 16 along each axis
    return {
        "HEAD_DIM": d,
        "BLOCK_D": block_d,
        "PAD_D": block_d != d,
        "CAUSAL": causal,
    }


def _forward(q, k, v, causal: bool, scale: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Launch the forward kernel: (out (B, H, N, d), lse (B, H, N) fp32)."""
    q, k, v = q.contiguous(), k.contiguous(), v.contiguous()
    B, H, N, d = q.shape
    o = torch.empty_like(q)
    lse = torch.empty((B, H, N), device=q.device, dtype=torch.float32)
    kernel, meta = _kernel_and_meta("fwd", q.dtype == torch.float32, _device_family(q.device), d)
    grid = lambda meta: (triton.cdiv(N, meta["BLOCK_M"]), B * H)  # (query blocks, batch * heads)
    qk_scale = scale * 1.4426950408889634  # scores in base-2 units: exp(x) = exp2(x * log2(e))
    n_bucket = triton.next_power_of_2(N)  # the autotuner's key: lengths 1025..2048 share one tuning
    kernel[grid](q, k, v, o, lse, N, n_bucket, qk_scale, **_static_args(q, causal), **meta)
    return o, lse


def _backward(do, q, k, v, o, lse, causal: bool, scale: float):
    """Launch the three backward kernels: (dq, dk, dv), each (B, H, N, d)."""
    do = do.contiguous()
    B, H, N, d = q.shape
    static = _static_args(q, causal)
    fp32 = q.dtype == torch.float32
    delta = torch.empty_like(lse)  # (B, H, N)
    _bwd_delta[(triton.cdiv(N, 64), B * H)](
        o, do, delta, N, HEAD_DIM=d, BLOCK_D=static["BLOCK_D"], PAD_D=static["PAD_D"], BLOCK_M=64
    )
    dq, dk, dv = torch.empty_like(q), torch.empty_like(k), torch.empty_like(v)
    qk_scale = scale * 1.4426950408889634
    family = _device_family(q.device)
    kernel, meta = _kernel_and_meta("dkdv", fp32, family, d)
    key_grid = lambda meta: (triton.cdiv(N, meta["BLOCK_N"]), B * H)  # (key blocks, batch * heads)
    n_bucket = triton.next_power_of_2(N)  # the autotuner's key
    kernel[key_grid](q, k, v, do, lse, delta, dk, dv, N, n_bucket, qk_scale, scale, **static, **meta)
    kernel, meta = _kernel_and_meta("dq", fp32, family, d)
    query_grid = lambda meta: (triton.cdiv(N, meta["BLOCK_M"]), B * H)  # (query blocks, batch * heads)
    kernel[query_grid](q, k, v, do, lse, delta, dq, N, n_bucket, qk_scale, scale, **static, **meta)
    return dq, dk, dv


class _FlashAttention(torch.autograd.Function):
    """Forward stores (q, k, v, out, lse); backward recomputes the probabilities block by block."""

    @staticmethod
    def forward(ctx, q, k, v, causal: bool, scale: float):
        o, lse = _forward(q, k, v, causal, scale)
        ctx.save_for_backward(q.contiguous(), k.contiguous(), v.contiguous(), o, lse)
        ctx.causal, ctx.scale = causal, scale
        return o

    @staticmethod
    def backward(ctx, do):
        q, k, v, o, lse = ctx.saved_tensors
        dq, dk, dv = _backward(do, q, k, v, o, lse, ctx.causal, ctx.scale)
        return dq, dk, dv, None, None


def flash_attention(q, k, v, causal: bool = False, scale: float | None = None) -> torch.Tensor:
    """softmax(q k^T * scale) v by the Triton kernel, differentiable; q, k, v (B, H, N, d) -> (B, H, N, d).

    scale=None means 1/sqrt(d). causal=True lets query i see keys j <= i. No N x N tensor is ever created.
    """
    s = _check_inputs(q, k, v, causal, scale)
    _check_gpu(_capability(q.device), q.dtype)
    return _FlashAttention.apply(q, k, v, causal, s)


def flash_attention_forward(q, k, v, causal: bool = False, scale: float | None = None):
    """Forward only, with the stored statistics: (out (B, H, N, d), lse (B, H, N) float32, natural log)."""
    s = _check_inputs(q, k, v, causal, scale)
    _check_gpu(_capability(q.device), q.dtype)
    with torch.no_grad():
        return _forward(q, k, v, causal, s)


def _check_gpu(capability: tuple[int, int] | None, dtype: torch.dtype) -> None:
    """A direct call on a GPU below sm_80: float32 warns (it runs, on FMA units), float16/bfloat16 raise."""
    problem = None if capability is None else tensor_core_problem(capability, dtype)
    if problem is None:
        return
    if dtype == torch.float32:
        warnings.warn(
            f"flash_attention: {problem}. float32 runs there (its exact products use FMA on every GPU), untested "
            "and slower than torch SDPA, which attention(..., backend='auto') runs",
            stacklevel=3,
        )
        return
    raise RuntimeError(
        f"flash_attention cannot run here: {problem}; use attention(..., backend='auto') (torch SDPA) or float32"
    )


# ---------------------------------------------------------------------------------------------------------
# Dispatch: triton on a capable GPU, else torch SDPA, else the course's reference.
# ---------------------------------------------------------------------------------------------------------


class BackendChoice(NamedTuple):
    backend: str  # "triton", "sdpa" or "reference"
    reason: str  # one line a warning can quote


BACKENDS = ("auto", "triton", "sdpa", "reference")


MAX_BATCH_HEADS = 65535  # the launch grid's second axis holds B * H
MAX_HEAD_ELEMENTS = 2**31  # N * d must stay below it: offsets inside one head are int32


def unsupported_shape(shape) -> str | None:
    """Why the kernel cannot take q of shape (B, H, N, d) (None when it can): the limits `_check_inputs` raises on."""
    B, H, N, d = shape
    if min(B, H, N) == 0:
        return f"shape {tuple(shape)} has no batch, head or token"
    if d > MAX_HEAD_DIM:
        return f"head dim {d} > {MAX_HEAD_DIM}"
    if B * H > MAX_BATCH_HEADS:
        return f"B * H = {B * H} > {MAX_BATCH_HEADS} (a launch-grid limit)"
    if N * d >= MAX_HEAD_ELEMENTS:
        return f"N * d = {N * d} >= 2**31 (int32 offsets inside one head)"
    return None


def tensor_core_problem(capability: tuple[int, int], dtype: torch.dtype) -> str | None:
    """Why the kernel runs badly or not at all on a GPU below sm_80 in this dtype (None from sm_80 on).

    Measured by compiling for sm_75 (a T4) with triton 3.4 to 3.9: the kernel contains no tensor-core (mma)
    instruction, only FMA, and its fp16 tiles need more than the 64 KB of shared memory a T4 block gets.
    """
    if tuple(capability) >= MIN_CAPABILITY:
        return None
    sm = f"sm_{capability[0]}{capability[1]}"
    if dtype == torch.bfloat16:
        return f"{sm} GPU: no bfloat16 tensor cores; bfloat16 and the Triton kernel need sm_80 or newer"
    return (
        f"{sm} GPU: Triton compiles the kernel there with no tensor-core instruction (FMA only), and its float16 "
        "tiles need more than 64 KB of shared memory; the kernel needs sm_80 or newer"
    )


def choose_backend(
    capability: tuple[int, int] | None,
    dtype: torch.dtype,
    head_dim: int,
    *,
    shape: tuple[int, int, int, int] | None = None,
    triton_available: bool | None = None,
    sdpa_available: bool = True,
) -> BackendChoice:
    """Which implementation `attention(backend="auto")` runs for a GPU of compute `capability` (None: no GPU).

    Pure: tests call it for any GPU, e.g. a T4 is (7, 5), an A100 (8, 0), an L4 (8, 9), an H100 (9, 0).
    `shape` (B, H, N, d), when given, sends shapes past the kernel's limits to the fallback too.
    triton_available=None means whether this machine's Triton can run the kernels (TRITON_AVAILABLE).
    """
    if triton_available is None:
        triton_available = TRITON_AVAILABLE
    if capability is not None:
        ok = (
            isinstance(capability, tuple)
            and len(capability) == 2
            and all(isinstance(c, int) and not isinstance(c, bool) and c >= 0 for c in capability)
        )
        if not ok:
            raise ValueError(f"capability must be None or a (major, minor) tuple of ints, got {capability!r}")
    if not isinstance(dtype, torch.dtype):
        raise TypeError(f"dtype must be a torch.dtype, got {type(dtype).__name__}")
    if isinstance(head_dim, bool) or not isinstance(head_dim, int) or head_dim <= 0:
        raise ValueError(f"head_dim must be a positive int, got {head_dim!r}")
    if shape is not None and (len(shape) != 4 or shape[-1] != head_dim):
        raise ValueError(f"shape must be (B, H, N, d) with d = head_dim = {head_dim}, got {tuple(shape)!r}")
    fallback = "sdpa" if sdpa_available else "reference"
    via = "torch SDPA" if sdpa_available else "the course's reference (torch SDPA unavailable)"
    if capability is None:
        return BackendChoice(fallback, f"no CUDA GPU: ran {via}")
    sm = f"sm_{capability[0]}{capability[1]}"
    if not triton_available:
        why = TRITON_PROBLEM if TRITON_PROBLEM and not TRITON_AVAILABLE else "Triton is not installed"
        return BackendChoice(fallback, f"{why}: ran {via}")
    problem = tensor_core_problem(capability, dtype)
    if problem is not None:
        return BackendChoice(fallback, f"{problem}: ran {via}")
    if dtype not in SUPPORTED_DTYPES:
        return BackendChoice(fallback, f"dtype {dtype} is not float16/bfloat16/float32: ran {via}")
    if head_dim > MAX_HEAD_DIM:
        return BackendChoice(fallback, f"head dim {head_dim} > {MAX_HEAD_DIM}: ran {via}")
    problem = unsupported_shape(shape) if shape is not None else None
    if problem is not None:
        return BackendChoice(fallback, f"the kernel does not take {problem}: ran {via}")
    return BackendChoice("triton", f"{sm} GPU, {dtype}, head dim {head_dim}: ran the Triton kernel")


def _capability(device: torch.device) -> tuple[int, int] | None:
    if device.type != "cuda" or torch.version.cuda is None:  # ROCm is not covered by the choice rules
        return None
    major, minor = torch.cuda.get_device_capability(device)
    return (major, minor)


def attention(q, k, v, causal: bool = False, backend: str = "auto", scale: float | None = None) -> torch.Tensor:
    """Attention by the best available implementation; q, k, v (B, H, N, d) -> (B, H, N, d).

    backend: "auto" (triton -> torch SDPA -> reference, warning when it falls back), or one of "triton",
    "sdpa", "reference" (which raise rather than fall back). The choice is `choose_backend`'s.
    """
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    if backend == "triton":
        if isinstance(q, torch.Tensor) and q.device.type == "cuda":
            choice = choose_backend(_capability(q.device), q.dtype, q.shape[-1])
            if choice.backend != "triton":
                raise RuntimeError(f"backend='triton' cannot run here: {choice.reason.split(': ran')[0]}")
        return flash_attention(q, k, v, causal=causal, scale=scale)
    if backend == "reference":
        from .attention import scaled_dot_product_attention

        return scaled_dot_product_attention(q, k, v, is_causal=causal, scale=scale)
    if backend == "sdpa":
        _check_inputs_light(q, k, v)
        return F.scaled_dot_product_attention(q, k, v, is_causal=causal, scale=scale)
    _check_inputs_light(q, k, v)
    choice = choose_backend(_capability(q.device), q.dtype, q.shape[-1], shape=tuple(q.shape))
    if choice.backend == "triton":
        return flash_attention(q, k, v, causal=causal, scale=scale)
    if choice.backend == "sdpa":
        try:
            out = F.scaled_dot_product_attention(q, k, v, is_causal=causal, scale=scale)
            warnings.warn(f"course_utils.gpu.attention: {choice.reason}", stacklevel=2)
            return out
        except RuntimeError as exc:  # e.g. a dtype this device's SDPA lacks
            choice = BackendChoice("reference", f"torch SDPA failed ({exc}): ran the course's reference")
    from .attention import scaled_dot_product_attention

    warnings.warn(f"course_utils.gpu.attention: {choice.reason}", stacklevel=2)
    return scaled_dot_product_attention(q, k, v, is_causal=causal, scale=scale)


def _check_inputs_light(q, k, v) -> None:
    """The checks every backend shares: tensors of rank 4 with one dtype and device."""
    for name, t in (("q", q), ("k", k), ("v", v)):
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
        if t.ndim != 4:
            raise ValueError(f"{name} must have shape (B, H, N, d), got shape {shape_of(t)}")
    if not (q.dtype == k.dtype == v.dtype):
        raise TypeError(f"q, k, v must share a dtype: got {q.dtype}, {k.dtype}, {v.dtype}")
    if not (q.device == k.device == v.device):
        raise ValueError(f"q, k, v must be on one device: got {q.device}, {k.device}, {v.device}")


def kernel_source(name: str = "forward_inner") -> str:
    """The Python source of one kernel piece, for reading in lesson 07: 'forward_inner', 'forward', ..."""
    pieces = {
        "load_tile": _load_tile,
        "forward_inner": _fwd_inner,
        "forward": _attn_fwd,
        "backward_dkdv_inner": _bwd_dkdv_inner,
        "backward_dkdv": _attn_bwd_dkdv,
        "backward_dq_inner": _bwd_dq_inner,
        "backward_dq": _attn_bwd_dq,
        "backward_delta": _bwd_delta,
    }
    if name not in pieces:
        raise ValueError(f"name must be one of {sorted(pieces)}, got {name!r}")
    fn = pieces[name]
    return inspect.getsource(getattr(fn, "fn", fn))
