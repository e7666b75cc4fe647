"""Lesson 07 exercises: the online-softmax update step, merging two partial states, and the kernel's inner loop.

The first two return a state (m, l, acc); the checker runs the learner's function inside a blockwise attention
and compares the final output acc / l with the exact one, in the dtype the learner's state comes back in (a correct
float32 state passes). Because the state is exact for *any* consistent reference value m (softmax does not change
when every score is shifted), the checker also feeds blocks whose scores differ by more than exp can hold: an
update that uses the wrong maximum overflows there.

The third is a Triton function, checked by running it inside the teaching kernel (`course_utils.flash_teaching`)
on awkward sizes, fp32 and fp16, causal and not, with left padding and a fully masked row, against a float64
reference. Without Triton (or, on a CPU, without TRITON_INTERPRET=1) it says why it cannot run and how to get it.
"""

from __future__ import annotations

import ast
import inspect
import textwrap
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from ..tiling import merge_states, online_softmax_step
from .base import (
    Exercise,
    Feedback,
    Lesson,
    Mistake,
    Prediction,
    _Hinted,
    as_answer_array,
    run_guarded,
    tolerance_for,
)

__all__ = [
    "online_softmax_step_exercise",
    "merge_states_exercise",
    "flash_update_exercise",
    "check_online_softmax_step",
    "check_merge_states",
    "check_flash_update",
    "causal_blocks_prediction",
    "check_causal_blocks",
    "kernel_ready",
    "LESSON",
    "hint",
    "solution",
]

_BLOCK = 4  # keys per block in the checker's runs of the step


def _unpack(result, what: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(m, l, acc) as float tensors in the dtype the learner returned; a readable TypeError otherwise."""
    if not isinstance(result, (tuple, list)) or len(result) != 3:
        size = f" of length {len(result)}" if isinstance(result, (tuple, list)) else ""
        raise TypeError(f"{what} must return a tuple (m, l, acc), got {type(result).__name__}{size}")
    out = []
    for name, r in zip(("m", "l", "acc"), result):
        if isinstance(r, torch.Tensor):
            if r.is_complex():
                raise TypeError(f"{what} returned a complex {name} ({r.dtype}): the state is real")
            if not r.is_floating_point():
                raise TypeError(f"{what} returned {name} of dtype {r.dtype}: the state must be floating point")
            out.append(r)
            continue
        arr, problem = as_answer_array(r, name)
        if arr is None:
            raise TypeError(f"{what}: {name} {problem}")
        out.append(torch.from_numpy(arr))
    m, l, acc = out  # the caller checked there are three
    return m, l, acc


def _lowest_precision(*tensors: torch.Tensor) -> torch.dtype:
    return min((t.dtype for t in tensors), key=lambda dt: torch.finfo(dt).bits)


@dataclass(frozen=True)
class _States:
    """One checker case: scores s (N_q, N_k) and values v (N_k, d_v), fed to the learner's function in pieces.

    Its repr is what the verdicts quote, so they name the shapes the learner's function received.
    """

    s: torch.Tensor
    v: torch.Tensor
    split: str  # "blocks": the step sees blocks of _BLOCK keys; "halves": the merge sees two half states

    def __repr__(self) -> str:
        n_q, n_k = self.s.shape
        d_v = self.v.shape[1]
        if self.split == "blocks":
            return (
                f"m ({n_q},), l ({n_q},), acc ({n_q}, {d_v}), s ({n_q}, {_BLOCK}), v ({_BLOCK}, {d_v}), float64, "
                f"for each block of {_BLOCK} of {n_k} keys"
            )
        h = n_k // 2
        return f"m1, l1, m2, l2 ({n_q},), acc1, acc2 ({n_q}, {d_v}), float64: two halves of {h} and {n_k - h} keys"


def _run_steps(step: Callable, case: _States) -> torch.Tensor:
    """Blockwise attention over the case's scores with `step` for blocks 2, 3, ...: (N_q, d_v), in the lowest
    precision the step's state came back in."""
    s, v = case.s, case.v
    first = s[:, :_BLOCK]  # block 1 sets the state: m = its row max
    m = first.amax(dim=-1)
    p = torch.exp(first - m[:, None])
    l, acc = p.sum(dim=-1), p @ v[:_BLOCK]  # (N_q, b) @ (b, d_v) -> (N_q, d_v)
    dtypes = [s.dtype]
    for j0 in range(_BLOCK, s.shape[1], _BLOCK):
        m, l, acc = _unpack(step(m, l, acc, s[:, j0 : j0 + _BLOCK], v[j0 : j0 + _BLOCK]), "your step")
        dtypes.append(_lowest_precision(m, l, acc))
    return _output(l, acc, "your step").to(min(dtypes, key=lambda dt: torch.finfo(dt).bits))


def _output(l: torch.Tensor, acc: torch.Tensor, what: str) -> torch.Tensor:
    if l.ndim != 1 or acc.ndim != 2 or l.shape[0] != acc.shape[0]:
        raise TypeError(
            f"{what} returned l of shape {tuple(l.shape)} and acc of shape {tuple(acc.shape)}: "
            "l holds one number per query row (N_q,), acc one row per query (N_q, d_v)"
        )
    return acc / l[:, None]


def _step_cases(rng: np.random.Generator) -> list[tuple]:
    cases = []
    for n_q, n_k, d_v, jump in ((3, 12, 2, 3.0), (5, 16, 3, 6.0), (2, 12, 2, -1000.0), (2, 8, 2, 1000.0)):
        s = rng.normal(size=(n_q, n_k)) * min(abs(jump), 3.0)
        s[:, -_BLOCK:] += jump  # the last block's scores jump: the max moves (up), or must not move (down)
        cases.append((_States(torch.tensor(s), torch.tensor(rng.normal(size=(n_k, d_v))), "blocks"),))
    return cases


def _wrong_step(kind: str) -> Callable:
    def step(m, l, acc, s, v):
        m_new = s.amax(dim=-1) if kind == "block max" else torch.maximum(m, s.amax(dim=-1))
        alpha = torch.exp(m_new - m) if kind == "inverted" else torch.exp(m - m_new)
        p = torch.exp(s - (m if kind == "old max" else m_new)[:, None])
        l_new = (l if kind == "no l rescale" else alpha * l) + p.sum(dim=-1)
        acc_new = (acc if kind == "no acc rescale" else alpha[:, None] * acc) + p @ v
        return m_new, l_new, acc_new

    return lambda case: _run_steps(step, case)


online_softmax_step_exercise = Exercise(
    name="online_softmax_step",
    reference=lambda case: _run_steps(online_softmax_step, case),
    cases=_step_cases,
    mistakes=(
        Mistake(
            "the accumulator was not rescaled",
            _wrong_step("no acc rescale"),
            "When the max grows from m to m', the old terms exp(s - m) v must become exp(s - m') v: "
            "multiply acc by alpha = exp(m - m') before adding the new block.",
        ),
        Mistake(
            "the running sum l was not rescaled",
            _wrong_step("no l rescale"),
            "l holds sum exp(s - m) with the old m: multiply it by alpha = exp(m - m') before adding p.sum(-1).",
        ),
        Mistake(
            "the correction factor is inverted",
            _wrong_step("inverted"),
            "The factor that moves old terms to the new max is exp(m - m') (at most 1), not exp(m' - m).",
        ),
        Mistake(
            "the new block was exponentiated with the old max",
            _wrong_step("old max"),
            "p = exp(s - m') with the *new* max m', so p and the rescaled sums share one reference value.",
        ),
        Mistake(
            "the block's own max replaced the running max",
            _wrong_step("block max"),
            "m' = max(m, rowmax(s)): a block with smaller scores must not lower the max, or exp(m - m') overflows.",
        ),
    ),
    hints=(
        "Three things change when a block arrives: the max (it can only move up), the old sums (they were "
        "measured from the old max) and the new block's own terms.",
        "m' = the larger of m and each row's max of s; alpha = exp(m - m') moves l and acc to m'; the new block "
        "adds exp(s - m') to l (summed over the block) and exp(s - m') @ v to acc.",
        "m_new = torch.maximum(m, s.amax(dim=-1)); alpha = torch.exp(m - m_new); p = torch.exp(s - m_new[:, None]); "
        "then return m_new and the two rescaled sums.",
    ),
    solution=textwrap.dedent("""\
        def my_online_softmax_step(m, l, acc, s, v):
            m_new = torch.maximum(m, s.amax(dim=-1))  # (N_q,)
            alpha = torch.exp(m - m_new)  # correction factor, <= 1
            p = torch.exp(s - m_new[:, None])  # (N_q, b)
            return m_new, alpha * l + p.sum(dim=-1), alpha[:, None] * acc + p @ v"""),
)


def _run_merge(merge: Callable, case: _States) -> torch.Tensor:
    """Split the keys in two halves, build each half's state, merge them, return acc / l (N_q, d_v)."""
    s, v = case.s, case.v
    half = s.shape[1] // 2
    states = []
    for cols in (slice(0, half), slice(half, None)):
        m = s[:, cols].amax(dim=-1)
        p = torch.exp(s[:, cols] - m[:, None])
        states.append((m, p.sum(dim=-1), p @ v[cols]))  # (N_q,), (N_q,), (N_q, d_v)
    (m1, l1, a1), (m2, l2, a2) = states
    m, l, acc = _unpack(merge(m1, l1, a1, m2, l2, a2), "your merge")
    return _output(l, acc, "your merge").to(_lowest_precision(s, m, l, acc))


def _merge_cases(rng: np.random.Generator) -> list[tuple]:
    cases = []
    for n_q, n_k, d_v, shift in ((3, 8, 2, 2.0), (4, 10, 3, -3.0), (2, 6, 2, 900.0)):
        s = rng.normal(size=(n_q, n_k))
        s[:, n_k // 2 :] += shift  # the two halves have different maxima
        cases.append((_States(torch.tensor(s), torch.tensor(rng.normal(size=(n_k, d_v))), "halves"),))
    return cases


def _wrong_merge(kind: str) -> Callable:
    def merge(m1, l1, a1, m2, l2, a2):
        if kind == "no rescale":
            return torch.maximum(m1, m2), l1 + l2, a1 + a2
        if kind == "average":
            out = (a1 / l1[:, None] + a2 / l2[:, None]) / 2
            return torch.maximum(m1, m2), torch.ones_like(l1), out
        m = torch.maximum(m1, m2)
        if kind == "one side":
            w1 = torch.exp(m1 - m)
            return m, w1 * l1 + l2, w1[:, None] * a1 + a2
        w1, w2 = torch.exp(m - m1), torch.exp(m - m2)  # inverted
        return m, w1 * l1 + w2 * l2, w1[:, None] * a1 + w2[:, None] * a2

    return lambda case: _run_merge(merge, case)


merge_states_exercise = Exercise(
    name="merge_states",
    reference=lambda case: _run_merge(merge_states, case),
    cases=_merge_cases,
    mistakes=(
        Mistake(
            "the two states were added without rescaling",
            _wrong_merge("no rescale"),
            "Each half's sums are relative to its own max: bring both to m = max(m1, m2) with "
            "exp(m1 - m) and exp(m2 - m) before adding.",
        ),
        Mistake(
            "the two outputs were averaged",
            _wrong_merge("average"),
            "The halves hold different amounts of probability mass: weight each by its sum l, not by 1/2.",
        ),
        Mistake(
            "only one side was rescaled",
            _wrong_merge("one side"),
            "Both states need their factor exp(m_i - m); the side whose max is smaller gets a factor below 1.",
        ),
        Mistake(
            "the correction factors are inverted",
            _wrong_merge("inverted"),
            "The factor is exp(m_i - m) (at most 1), not exp(m - m_i).",
        ),
    ),
    hints=(
        "Each state's l and acc are sums of exp(s - m_i), measured from its own max m_i. Two sums can only be "
        "added once they are measured from the same value.",
        "Take m = max(m1, m2) and multiply each side's l and acc by exp(m_i - m) (at most 1), then add.",
        "m = torch.maximum(m1, m2); a1, a2 = torch.exp(m1 - m), torch.exp(m2 - m); acc needs a1[:, None].",
    ),
    solution=textwrap.dedent("""\
        def my_merge_states(m1, l1, acc1, m2, l2, acc2):
            m = torch.maximum(m1, m2)
            a1, a2 = torch.exp(m1 - m), torch.exp(m2 - m)  # each side's correction factor
            return m, a1 * l1 + a2 * l2, a1[:, None] * acc1 + a2[:, None] * acc2"""),
)


def check_online_softmax_step(fn: Callable) -> Feedback:
    """Check fn(m, l, acc, s_block, v_block) -> (m_new, l_new, acc_new), torch float64, row convention."""
    return online_softmax_step_exercise.check(fn if not callable(fn) else lambda case: _run_steps(fn, case))


def check_merge_states(fn: Callable) -> Feedback:
    """Check fn(m1, l1, acc1, m2, l2, acc2) -> (m, l, acc): two partial states over disjoint keys, merged."""
    return merge_states_exercise.check(fn if not callable(fn) else lambda case: _run_merge(fn, case))


# ---------------------------------------------------------------------------------------------------------
# 3. Write the kernel: the online-softmax update as a @triton.jit function, run inside the teaching kernel
# ---------------------------------------------------------------------------------------------------------

_KERNEL_EXPLANATIONS = {
    "missing correction factor": (
        "When a block raises a row's max from m to m', everything summed so far was measured from m: multiply "
        "b_l and b_acc by alpha = exp(m - m') before adding the new block."
    ),
    "normalising each block": (
        "Do not divide a block's probabilities by that block's sum: the kernel divides acc by l once, after the "
        "last block. Inside the loop, l and acc are unnormalised running sums."
    ),
    "a scalar max over the whole block": (
        "tl.max(b_s) without an axis is one number for the whole tile. Each query row needs its own max, "
        "tl.max(b_s, 1): a row whose scores sit far below another row's max underflows to 0 otherwise."
    ),
    "NaN on a fully masked row": (
        "A row whose scores in this block are all -inf, before it has seen any key (left padding), has m = m' = -inf, "
        "and exp(-inf - (-inf)) = exp(NaN). Subtract a safe max instead: tl.where(m' == -inf, 0.0, m')."
    ),
}


@dataclass(frozen=True)
class _KernelCase:
    batch: int
    heads: int
    n: int
    head_dim: int
    dtype: torch.dtype
    causal: bool
    left_pad: tuple[int, ...] | None  # masked keys at the start of each batch entry, or no key mask
    spread: bool  # rows whose scores lie far apart (one row near +75, another near -75)
    clean: bool  # no row meets a fully masked block before its first key (the named mistakes compare here)

    def describe(self) -> str:
        mask = f", left padding {list(self.left_pad)}" if self.left_pad else ""
        return (
            f"q, k, v of shape ({self.batch}, {self.heads}, {self.n}, {self.head_dim}) {str(self.dtype)[6:]}"
            f"{', causal' if self.causal else ''}{mask}{', rows far apart in scale' if self.spread else ''}"
        )


_KERNEL_CASES = (
    _KernelCase(1, 1, 1, 16, torch.float32, False, None, False, True),  # a single token
    _KernelCase(1, 2, 97, 40, torch.float32, True, None, False, True),  # 97: not a multiple of the block; d = 40
    _KernelCase(1, 1, 64, 16, torch.float32, False, None, True, True),
    _KernelCase(2, 1, 97, 16, torch.float16, False, (40, 0), False, False),  # the first key block fully masked
    _KernelCase(2, 1, 50, 16, torch.float16, True, (0, 50), False, False),  # batch 1: every key masked
)


def _kernel_inputs(case: _KernelCase, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    shape = (case.batch, case.heads, case.n, case.head_dim)
    q, k, v = (torch.randn(shape, generator=g, dtype=torch.float64) for _ in range(3))
    if case.spread:  # every key shares a large first component; rows of q alternate its sign
        k[..., 0] = 10.0
        q[..., 0] = torch.where(torch.arange(case.n) % 2 == 0, 30.0, -30.0)
    key_ok = None
    if case.left_pad is not None:
        key_ok = torch.arange(case.n)[None, :] >= torch.tensor(case.left_pad)[:, None]  # (B, N), True = real key
    return q.to(case.dtype), k.to(case.dtype), v.to(case.dtype), key_ok


def _kernel_reference(q, k, v, causal: bool, key_ok) -> torch.Tensor:
    """float64 softmax attention with the same masks; a row that sees no key is 0."""
    q, k, v = (t.double() for t in (q, k, v))
    n = q.shape[-2]
    s = q @ k.transpose(-2, -1) / q.shape[-1] ** 0.5  # (B, H, N, d) @ (B, H, d, N) -> (B, H, N, N)
    keep = torch.ones(n, n, dtype=torch.bool).tril() if causal else torch.ones(n, n, dtype=torch.bool)
    keep = keep[None, None]
    if key_ok is not None:
        keep = keep & key_ok[:, None, None, :]
    p = torch.softmax(s.masked_fill(~keep, float("-inf")), dim=-1).nan_to_num(0.0)
    return p @ v  # (B, H, N, N) @ (B, H, N, d) -> (B, H, N, d)


def kernel_ready() -> str | None:
    """None when the kernel exercise can run here, else why not (Triton missing, interpreter not switched on)."""
    try:
        from .. import flash_teaching
    except Exception as exc:  # noqa: BLE001 - a broken Triton install is reported, not raised
        return f"the teaching kernel could not be imported ({type(exc).__name__}: {exc})"
    return flash_teaching.ready(_kernel_device(flash_teaching))


def _kernel_device(flash_teaching) -> str:
    return "cuda" if torch.cuda.is_available() and not flash_teaching.INTERPRET else "cpu"


def _is_stub(fn) -> bool:
    """The shipped stub: a function whose body raises NotImplementedError."""
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(getattr(fn, "fn", fn))))
    except (OSError, TypeError, SyntaxError):
        return False
    for node in ast.walk(tree):
        if isinstance(node, ast.Raise) and node.exc is not None:
            target = node.exc.func if isinstance(node.exc, ast.Call) else node.exc
            if isinstance(target, ast.Name) and target.id == "NotImplementedError":
                return True
    return False


def _first_lines(message: str, limit: int = 400) -> str:
    lines = [ln for ln in str(message).splitlines() if ln.strip()]
    text = " ".join(lines[:3]) if lines else "(no message)"
    return text if len(text) <= limit else text[: limit - 3] + "..."


@dataclass(kw_only=True)
class KernelExercise(_Hinted):
    """A Triton update function checked inside the teaching kernel (see the module docstring)."""

    time_limit: float = 60.0  # seconds per case (the interpreter is slow)

    def check(self, fn, verbose: bool = True) -> Feedback:
        """Run the teaching kernel with `fn` as its update on every case; print and return the verdict."""
        return self._verdict(lambda: self._check(fn), verbose)

    def _check(self, fn) -> Feedback:
        problem = kernel_ready()
        if problem is not None:
            return Feedback(False, False, f"⚠️  {self.name}: skipped, this exercise cannot run here: {problem}.")
        from triton.runtime.jit import KernelInterface

        from .. import flash_teaching

        if _is_stub(fn):
            return self._unanswered()
        if not isinstance(fn, KernelInterface):
            what = "a plain Python function" if callable(fn) else type(fn).__name__
            return self._fail(
                f"expected a @triton.jit function, got {what}: put @triton.jit on the line above `def`.",
                "not a @triton.jit function",
            )
        device = _kernel_device(flash_teaching)
        outputs: list[torch.Tensor] = []
        for n, case in enumerate(_KERNEL_CASES, start=1):
            got, error = self._run(fn, case, device)
            if error is not None or got is None:
                return self._fail(self._error_text(error or "", case) + f"\n   on case {n}: {case.describe()}.")
            outputs.append(got)
        failed = []
        for n, (case, got) in enumerate(zip(_KERNEL_CASES, outputs), start=1):
            q, k, v, key_ok = _kernel_inputs(case)
            expected = _kernel_reference(q, k, v, case.causal, key_ok)
            if not self._close(got, expected):
                failed.append((n, case, got, expected))
        if not failed:
            return Feedback(
                True,
                True,
                f"✅ {self.name}: the teaching kernel with your update is right on all "
                f"{len(_KERNEL_CASES)} cases (fp32 and fp16, causal and not, N = 1, 50, 64, 97).",
            )
        mistake = self._diagnose(fn, outputs, device)
        if mistake is not None:
            return self._fail(f"{mistake}. {_KERNEL_EXPLANATIONS[mistake]}", mistake)
        n, case, got, expected = failed[0]
        bad = torch.isnan(got) & ~torch.isnan(expected)
        if bad.any():
            idx = tuple(int(i) for i in torch.nonzero(bad)[0])
            return self._fail(
                f"NaN at index {idx} on case {n} ({case.describe()}), expected "
                f"{expected[idx].item():.4g}. A row with only -inf scores so far?",
                "NaN in the output",
            )
        err = (got.double() - expected).abs()
        idx = tuple(int(i) for i in torch.nonzero(err == err.max())[0])
        return self._fail(
            f"wrong values on case {n} ({case.describe()}): at index {idx} got {got[idx].item():.4g}, "
            f"expected {expected[idx].item():.4g}."
        )

    def _run(self, update, case: _KernelCase, device: str) -> tuple[torch.Tensor | None, str | None]:
        """The teaching kernel's output (on the CPU) with `update` on one case, or what went wrong."""
        from .. import flash_teaching

        q, k, v, key_ok = (t.to(device) if t is not None else None for t in _kernel_inputs(case))

        def call(q, k, v, causal, key_ok):
            try:
                return flash_teaching.forward(q, k, v, causal, key_ok, update=update)
            except Exception as exc:  # Triton's interpreter wraps what the learner's code raised: unwrap it
                inner: BaseException = exc
                while type(inner).__name__ == "InterpreterError" and inner.__cause__ is not None:
                    inner = inner.__cause__
                if inner is exc:
                    raise
                raise inner from None

        out, error = run_guarded(call, (q, k, v, case.causal, key_ok), self.time_limit)
        return (out.detach().cpu() if error is None else None), error

    @staticmethod
    def _close(got: torch.Tensor, expected: torch.Tensor) -> bool:
        atol, rtol = tolerance_for(str(got.dtype))
        return got.shape == expected.shape and bool(torch.allclose(got.double(), expected, atol=atol, rtol=rtol))

    def _diagnose(self, fn, outputs: list[torch.Tensor], device: str) -> str | None:
        """The named mistake whose kernel output equals the learner's (NaN where theirs is NaN): on every case for the
        NaN mistake, on the cases without masked blocks for the others (what a wrong update does on a fully masked
        row varies with how it is written)."""
        from . import _lesson07_kernels

        for name, wrong in _lesson07_kernels.WRONG_UPDATES.items():
            masked_only = name == "NaN on a fully masked row"
            same = True
            for case, got in zip(_KERNEL_CASES, outputs):
                if not (case.clean or masked_only):  # the other mistakes may differ on masked rows: not compared
                    continue
                theirs, _ = self._run(wrong, case, device)
                atol, rtol = tolerance_for(str(got.dtype))
                if theirs is None or not (
                    torch.equal(torch.isnan(got), torch.isnan(theirs))
                    and torch.allclose(
                        got.double().nan_to_num(0.0), theirs.double().nan_to_num(0.0), atol=atol, rtol=rtol
                    )
                ):
                    same = False
                    break
            if same:
                return name
        return None

    def _error_text(self, error: str, case: _KernelCase) -> str:
        from .. import flash_teaching

        b, d = flash_teaching.BLOCK, max(16, 1 << (case.head_dim - 1).bit_length())
        received = (
            f"your function received b_m ({b},) float32, b_l ({b},) float32, b_acc ({b}, {d}) float32, "
            f"b_s ({b}, {b}) float32, b_v ({b}, {d}) {str(case.dtype)[6:]}"
        )
        text = _first_lines(error)
        if "unpack" in text or "cannot unpack" in text or "too many values" in text:
            text += " (return the three new values: return b_m_new, b_l_new, b_acc_new)"
        return f"{text}\n   {received}"


flash_update_exercise = KernelExercise(
    name="write the kernel",
    hints=(
        "It is the update of section 2 for a whole tile: every query row of the tile keeps its own max, sum and "
        "accumulator. Two things are new in a kernel: masked scores are -inf, and a row may see a block that is "
        "entirely masked before it has seen any key.",
        "Per row: m' = max(m, rowmax(s)) with tl.maximum and tl.max(b_s, 1); alpha = exp(m - m'); p = exp(s - m'); "
        "l and acc are rescaled by alpha, then p is added (acc gets p @ v with tl.dot). Where m' is still -inf, "
        "subtract 0 instead of m', or exp(-inf - (-inf)) gives NaN.",
        "b_m_safe = tl.where(b_m_new == float('-inf'), 0.0, b_m_new); b_p = tl.exp(b_s - b_m_safe[:, None]); "
        "tl.dot(b_p.to(b_v.dtype), b_v) multiplies the tiles (tl.dot needs both in one dtype).",
    ),
    solution=textwrap.dedent("""\
        @triton.jit
        def my_update(b_m, b_l, b_acc, b_s, b_v):
            b_m_new = tl.maximum(b_m, tl.max(b_s, 1))  # (BLOCK_M,): each row's own max
            b_m_safe = tl.where(b_m_new == float("-inf"), 0.0, b_m_new)  # rows with no key yet
            b_alpha = tl.exp(b_m - b_m_safe)  # correction factor exp(m - m')
            b_p = tl.exp(b_s - b_m_safe[:, None])  # (BLOCK_M, BLOCK_N)
            b_l = b_l * b_alpha + tl.sum(b_p, 1)
            b_acc = b_acc * b_alpha[:, None] + tl.dot(b_p.to(b_v.dtype), b_v)  # (BLOCK_M, BLOCK_N) @ (BLOCK_N, BLOCK_D)
            return b_m_new, b_l, b_acc"""),
)


def check_flash_update(fn) -> Feedback:
    """Check a @triton.jit fn(b_m, b_l, b_acc, b_s, b_v) -> (b_m, b_l, b_acc) inside the teaching kernel."""
    return flash_update_exercise.check(fn)


# ---------------------------------------------------------------------------------------------------------
# 4. Predict: how many score blocks causal attention computes with unequal tiles
# ---------------------------------------------------------------------------------------------------------

causal_blocks_prediction = Prediction(
    name="causal score blocks, N = 1000, query tiles of 100, key tiles of 50",
    kind="int",
    hints=(
        "Count per query tile: a causal program stops at the key tile that holds its last query; it never loads a "
        "key tile that lies entirely after all of its queries.",
        "Query tile i holds queries 100 i ... 100 i + 99, so it needs keys 0 ... 100 i + 99: how many tiles of 50 "
        "keys is that? Add this up over the 10 query tiles.",
        "Query tile i needs 2 i + 2 key tiles; sum over i = 0 ... 9.",
    ),
    solution="my_causal_blocks = sum(2 * i + 2 for i in range(10))  # = 110, of 200 without the mask",
    explanation="Query tile i visits key tiles 0 ... 2i + 1: 2 + 4 + ... + 20 = 110 of the 10 x 20 = 200 tiles, "
    "55%: a little over half, because the tiles on the diagonal are computed whole (and masked inside).",
)


def check_causal_blocks(predicted, measured) -> Feedback:
    """Compare the stored prediction with the score blocks tiling.tiled_attention counted."""
    return causal_blocks_prediction.check(predicted, measured)


LESSON = Lesson(
    {
        "online_softmax_step": online_softmax_step_exercise,
        "merge_states": merge_states_exercise,
        "flash_update": flash_update_exercise,
        "causal_blocks": causal_blocks_prediction,
    }
)
hint, solution = LESSON.hint, LESSON.solution
