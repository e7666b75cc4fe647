"""A small flash-attention forward written for teaching: lesson 07's "write the kernel" exercise.

The course's production kernel (`course_utils.gpu`) is tuned for speed (base-2 exponentials, mask-free inner
blocks, autotuned block sizes, a backward pass) and will keep changing for speed. This kernel is the plain
algorithm and stays put, so the exercise never breaks when the production kernel is rewritten. One program owns
BLOCK_M queries of one (batch, head) and walks over the keys in blocks of BLOCK_N; per query it keeps the running
max m, the running sum l of exp(s - m) and the accumulator acc of exp(s - m) v. What happens to them for each
block of scores is a parameter: `UPDATE`, a `@triton.jit` function passed to the kernel as a `tl.constexpr`

    UPDATE(b_m, b_l, b_acc, b_s, b_v) -> (b_m, b_l, b_acc)
        b_m, b_l (BLOCK_M,) float32; b_acc (BLOCK_M, BLOCK_D) float32;
        b_s (BLOCK_M, BLOCK_N) float32 scores in natural-log units, -inf where masked; b_v (BLOCK_N, BLOCK_D)

so the learner writes exactly the online-softmax step and the kernel does the loads, the masks and the stores.
`online_softmax_update` is the course's own update. Masks: `causal` (top-left, key j <= query i) and an optional
key mask `key_ok` (B, N) bool, True = a real key (SDPA's polarity), e.g. left padding; a query row that sees no key
at all gets zeros, as torch's SDPA gives.

Like `course_utils.gpu` this module is never imported by `import course_utils`: on a CPU, TRITON_INTERPRET=1 must
be set before it is imported. Without Triton, `triton` and `tl` here are stand-ins so that a lesson cell that
decorates a function with `@triton.jit` still runs; `ready()` says why the kernel cannot run. Tested with triton
3.7.1 under the interpreter (fp32 and fp16; the interpreter miscomputes bf16 dots, so bf16 is left out).
"""

from __future__ import annotations

import os

import torch

from ._validate import shape_of
from .runtime import triton_problem

TRITON_PROBLEM = triton_problem()  # None, or why Triton cannot run the kernel here (missing, too old, ...)
try:
    if TRITON_PROBLEM is not None:
        raise ImportError(TRITON_PROBLEM)
    import triton
    import triton.language as tl

    TRITON_AVAILABLE = True
except ImportError:  # macOS, Windows, conda's CPU torch: nothing here can run, but lesson cells still define
    from types import SimpleNamespace

    TRITON_AVAILABLE = False

    def _no_jit(fn=None, **_options):
        return fn if fn is not None else (lambda f: f)

    triton = SimpleNamespace(jit=_no_jit, cdiv=lambda a, b: -(-a // b))
    tl = SimpleNamespace(constexpr=lambda x: x, float32="float32")

__all__ = ["TRITON_AVAILABLE", "INTERPRET", "BLOCK", "ready", "online_softmax_update", "forward", "triton", "tl"]

INTERPRET = os.environ.get("TRITON_INTERPRET", "0") not in ("", "0")  # read once, as triton.jit does
BLOCK = 32  # BLOCK_M = BLOCK_N (tl.dot needs at least 16): few loop steps keep the interpreter quick
DTYPES = (torch.float16, torch.float32)  # bf16 is left out: the interpreter miscomputes bf16 tl.dot


def ready(device: str | torch.device = "cpu") -> str | None:
    """None when the teaching kernel can run on `device`; otherwise why not, and what to do."""
    if not TRITON_AVAILABLE:
        if TRITON_PROBLEM is not None and "not installed" not in TRITON_PROBLEM:
            return TRITON_PROBLEM
        return (
            "Triton is not installed. It exists for Linux only: `pip install triton` there (on a CPU it runs in "
            "its interpreter), or open this lesson in Colab; on macOS and Windows the kernel cannot run"
        )
    device = torch.device(device)
    if device.type == "cuda" and INTERPRET:
        return "TRITON_INTERPRET=1 runs kernels on the CPU: use CPU tensors here"
    if device.type != "cuda" and not INTERPRET:
        return (
            "on a CPU the kernel runs in Triton's interpreter, which must be switched on before this module is "
            "imported: set os.environ['TRITON_INTERPRET'] = '1', restart the kernel and run the lesson again"
        )
    return None


@triton.jit
def online_softmax_update(b_m, b_l, b_acc, b_s, b_v):
    """Fold one block of scores b_s (BLOCK_M, BLOCK_N) and values b_v (BLOCK_N, BLOCK_D) into (m, l, acc)."""
    b_m_new = tl.maximum(b_m, tl.max(b_s, 1))  # (BLOCK_M,): each row's own max; it only moves up
    b_m_safe = tl.where(b_m_new == float("-inf"), 0.0, b_m_new)  # a row that has seen no key yet
    b_alpha = tl.exp(b_m - b_m_safe)  # correction factor exp(m - m'): 0 while m = -inf
    b_p = tl.exp(b_s - b_m_safe[:, None])  # (BLOCK_M, BLOCK_N), 0 where masked
    b_l = b_l * b_alpha + tl.sum(b_p, 1)
    # (BLOCK_M, BLOCK_N) @ (BLOCK_N, BLOCK_D) -> (BLOCK_M, BLOCK_D)
    b_acc = b_acc * b_alpha[:, None] + tl.dot(b_p.to(b_v.dtype), b_v)
    return b_m_new, b_l, b_acc


@triton.jit
def _teaching_fwd(
    t_q, t_k, t_v, t_key_ok, t_o, H, N, scale,
    HEAD_DIM: tl.constexpr, BLOCK_D: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr,
    CAUSAL: tl.constexpr, HAS_KEY_MASK: tl.constexpr, UPDATE: tl.constexpr,
):
    """One program: BLOCK_M queries of one (batch, head) against every key block; writes their outputs."""
    start_m = tl.program_id(0) * BLOCK_M
    bh = tl.program_id(1)
    head = bh.to(tl.int64) * N * HEAD_DIM  # q, k, v, o contiguous (B, H, N, d)
    offs_m = start_m + tl.arange(0, BLOCK_M)  # query rows of this program
    offs_n = tl.arange(0, BLOCK_N)
    offs_d = tl.arange(0, BLOCK_D)
    d_ok = offs_d < HEAD_DIM
    row_ok = offs_m < N
    t_rows = head + offs_m[:, None] * HEAD_DIM + offs_d[None, :]
    b_q = tl.load(t_q + t_rows, mask=row_ok[:, None] & d_ok[None, :], other=0.0)  # (BLOCK_M, BLOCK_D)
    b_m = tl.full([BLOCK_M], float("-inf"), dtype=tl.float32)
    b_l = tl.zeros([BLOCK_M], dtype=tl.float32)
    b_acc = tl.zeros([BLOCK_M, BLOCK_D], dtype=tl.float32)
    hi = tl.minimum(start_m + BLOCK_M, N) if CAUSAL else N  # causal: no key block after the diagonal
    for start_n in range(0, hi, BLOCK_N):
        cols = start_n + offs_n  # key indices of this block
        keep = cols < N
        if HAS_KEY_MASK:
            keep = keep & (tl.load(t_key_ok + (bh // H) * N + cols, mask=cols < N, other=0) != 0)
        t_kv = head + cols[:, None] * HEAD_DIM + offs_d[None, :]
        b_k = tl.load(t_k + t_kv, mask=keep[:, None] & d_ok[None, :], other=0.0)  # (BLOCK_N, BLOCK_D)
        b_v = tl.load(t_v + t_kv, mask=keep[:, None] & d_ok[None, :], other=0.0)  # (BLOCK_N, BLOCK_D)
        # (BLOCK_M, BLOCK_D) @ (BLOCK_D, BLOCK_N) -> (BLOCK_M, BLOCK_N)
        b_s = tl.dot(b_q, tl.trans(b_k), input_precision="ieee") * scale
        b_keep = keep[None, :] & row_ok[:, None]
        if CAUSAL:
            b_keep = b_keep & (cols[None, :] <= offs_m[:, None])
        b_s = tl.where(b_keep, b_s, float("-inf"))
        b_m, b_l, b_acc = UPDATE(b_m, b_l, b_acc, b_s, b_v)
    # a row that saw no key keeps l = 0 and acc = 0: its output is 0 (whatever is in acc is divided by 1)
    b_o = b_acc / tl.where(b_l > 0, b_l, 1.0)[:, None]
    tl.store(t_o + t_rows, b_o.to(t_o.dtype.element_ty), mask=row_ok[:, None] & d_ok[None, :])


def forward(q, k, v, causal: bool = False, key_ok=None, update=None) -> torch.Tensor:
    """softmax(q k^T / sqrt(d)) v by the teaching kernel; q, k, v (B, H, N, d) -> (B, H, N, d).

    key_ok: optional (B, N) bool, True = a real key. update: the @triton.jit online-softmax step (default: the
    course's `online_softmax_update`).
    """
    for name, t in (("q", q), ("k", k), ("v", v)):
        if not isinstance(t, torch.Tensor) or t.ndim != 4:
            raise ValueError(f"{name} must be a torch.Tensor of shape (B, H, N, d), got {shape_of(t)}")
    if not q.shape == k.shape == v.shape:
        raise ValueError(f"q, k, v must have one shape (B, H, N, d): got {shape_of(q)}, {shape_of(k)}, {shape_of(v)}")
    if not q.dtype == k.dtype == v.dtype or q.dtype not in DTYPES:
        raise TypeError(f"q, k, v must all be float16 or float32, got {q.dtype}, {k.dtype}, {v.dtype}")
    B, H, N, d = q.shape
    if min(B, H, N) == 0 or not 1 <= d <= 128:
        raise ValueError(f"q must hold at least one batch, head and token and 1 <= d <= 128, got {shape_of(q)}")
    if not isinstance(causal, bool):
        raise TypeError(f"causal must be a bool, got {type(causal).__name__}")
    bad_mask = not isinstance(key_ok, torch.Tensor) or key_ok.dtype != torch.bool or key_ok.shape != (B, N)
    if key_ok is not None and bad_mask:
        raise ValueError(f"key_ok must be a bool tensor of shape (B, N) = ({B}, {N}), got {shape_of(key_ok)}")
    problem = ready(q.device)
    if problem is not None:
        raise RuntimeError(f"the teaching kernel cannot run here: {problem}")
    q, k, v = q.contiguous(), k.contiguous(), v.contiguous()
    o = torch.empty_like(q)
    mask = key_ok if key_ok is not None else torch.ones(1, dtype=torch.bool, device=q.device)
    mask = mask.to(torch.int8).contiguous()  # (B, N) int8: 1 = a real key
    grid = (triton.cdiv(N, BLOCK), B * H)  # (query blocks, batch * heads)
    _teaching_fwd[grid](
        q, k, v, mask, o, H, N, d**-0.5,
        HEAD_DIM=d, BLOCK_D=max(16, triton.next_power_of_2(d)), BLOCK_M=BLOCK, BLOCK_N=BLOCK,
        CAUSAL=causal, HAS_KEY_MASK=key_ok is not None, UPDATE=update if update is not None else online_softmax_update,
    )
    return o
