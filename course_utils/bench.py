"""Benchmark: the course's flash-attention kernel vs torch SDPA (each backend) vs naive attention.

    python -m course_utils.bench                 # the full sweep on a GPU; a small one on a CPU (it says so)
    python -m course_utils.bench --quick         # a few GPU cells (about a minute)
    python -m course_utils.bench --out DIR       # where the JSON and the plot go (default: bench_results)

Every implementation is first checked against an fp32 reference on a slice of the same inputs (one batch,
up to two heads); a wrong one is reported as "wrong" and not timed. Each row records which backend actually
ran (the course's `attention` may fall back). Reported per cell: milliseconds, TFLOP/s (forward
4*B*H*N^2*d FLOPs, half that when causal; forward+backward 3.5x the forward), the ratio to SDPA's flash
backend and to the best SDPA backend, and the peak memory the call allocates beyond its inputs (GPU only).
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import platform
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from ._validate import check_flag, check_qkv, check_scale

__all__ = [
    "Case",
    "Sweep",
    "GPU_SWEEP",
    "QUICK_SWEEP",
    "CPU_SWEEP",
    "naive_attention",
    "implementations",
    "check_implementation",
    "check_tolerance",
    "naive_bytes",
    "naive_fits",
    "naive_skip_reason",
    "free_memory_bytes",
    "FREE_MEMORY_ENV",
    "run",
    "format_table",
    "ratio_table",
    "plot",
    "load",
    "recorded",
    "RECORDED",
    "main",
]

# One full GPU sweep, run and recorded on real hardware, shipped with the package (lesson 07 reads it on any machine).
RECORDED = {"H200": Path(__file__).with_name("recorded") / "bench_h200.json"}
DTYPES = {"float16": torch.float16, "bfloat16": torch.bfloat16, "float32": torch.float32}
# Flash-attention's rule: an implementation's error (vs an fp32/fp64 reference, relative to its largest |value|) may
# be at most twice plain PyTorch's (naive_attention in the inputs' dtype), plus this floor where both are exact.
CHECK_FLOOR = {torch.float16: 1e-4, torch.bfloat16: 1e-4, torch.float32: 1e-5}
MODES = ("fwd", "fwd+bwd")


@dataclass(frozen=True)
class Case:
    dtype: str  # "float16", "bfloat16" or "float32"
    batch: int  # B
    heads: int  # H
    n: int  # N tokens
    head_dim: int  # d
    causal: bool  # top-left causal mask

    def flops(self, mode: str) -> float:
        """Matmul FLOPs: 2 matmuls of 2*N*N*d per (batch, head) forward, halved when causal; bwd = 2.5x fwd."""
        fwd = 4.0 * self.batch * self.heads * self.n * self.n * self.head_dim * (0.5 if self.causal else 1.0)
        return fwd if mode == "fwd" else 3.5 * fwd


@dataclass(frozen=True)
class Sweep:
    dtypes: tuple[str, ...] = ("float16", "bfloat16")  # input dtypes
    head_dims: tuple[int, ...] = (64, 128)  # d
    ns: tuple[int, ...] = (1024, 4096, 16384)  # sequence lengths N
    causal: tuple[bool, ...] = (False, True)  # masks
    tokens: int = 16384  # B * N, constant over the sweep
    width: int = 2048  # H * d, constant over the sweep
    modes: tuple[str, ...] = MODES  # forward only, forward + backward
    label: str = "GPU sweep"  # printed in the header

    def cases(self) -> list[Case]:
        out = []
        for dtype in self.dtypes:
            for d in self.head_dims:
                for n in self.ns:
                    for causal in self.causal:
                        out.append(Case(dtype, max(1, self.tokens // n), max(1, self.width // d), n, d, causal))
        return out


GPU_SWEEP = Sweep()  # the issue's sweep: {fp16, bf16} x {64, 128} x {1k, 4k, 16k} x {causal, not}
QUICK_SWEEP = Sweep(dtypes=("bfloat16",), head_dims=(64, 128), ns=(4096,), label="quick GPU sweep")
CPU_SWEEP = Sweep(
    dtypes=("float32",), head_dims=(32,), ns=(64, 128), tokens=256, width=64,
    label="small CPU sweep (no GPU: timings say nothing about GPUs)",
)


def naive_attention(q, k, v, causal: bool = False, scale: float | None = None) -> torch.Tensor:
    """softmax(q k^T * scale) v with the full (B, H, N_q, N_k) score matrix, in the inputs' dtype ("plain PyTorch").

    causal=True is top-left aligned, as torch's SDPA: query i sees keys j <= i (also when N_q != N_k).
    """
    check_qkv(q, k, v)
    causal = check_flag(causal, "causal")
    scale = check_scale(scale, q.shape[-1])
    scores = (q @ k.transpose(-2, -1)) * scale  # (B, H, N_q, d) @ (B, H, d, N_k) -> (B, H, N_q, N_k)
    if causal:
        n_q, n_k = q.shape[-2], k.shape[-2]
        future = torch.ones(n_q, n_k, dtype=torch.bool, device=q.device).triu(1)  # key j > query i
        scores = scores.masked_fill(future, float("-inf"))
    return torch.softmax(scores, dim=-1) @ v  # (B, H, N, N) @ (B, H, N, d) -> (B, H, N, d)


@dataclass(frozen=True)
class Impl:
    fn: Callable  # (q, k, v, causal) -> out
    ran: Callable  # (q) -> the name of what actually runs for inputs like q


def _sdpa(backend_name: str) -> Impl:
    from torch.nn.attention import SDPBackend, sdpa_kernel

    backend = getattr(SDPBackend, backend_name)

    def fn(q, k, v, causal):
        with sdpa_kernel(backend):
            return torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=causal)

    return Impl(fn, lambda q: f"torch SDPA {backend_name.lower()}")


def _course() -> Impl:
    from . import gpu

    def ran(q):
        cap = gpu._capability(q.device)
        return gpu.choose_backend(cap, q.dtype, q.shape[-1]).backend

    def fn(q, k, v, causal):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the fallback is recorded by `ran` instead
            return gpu.attention(q, k, v, causal=causal)

    return Impl(fn, ran)


def _course_interpreter() -> Impl:
    from . import gpu

    return Impl(lambda q, k, v, causal: gpu.flash_attention(q, k, v, causal=causal), lambda q: "triton interpreter")


def implementations(device: torch.device) -> dict[str, Impl]:
    """What the benchmark compares on `device`: the course's kernel, SDPA's backends, naive attention."""
    impls = {"course": _course()}
    if device.type == "cpu":
        from . import gpu

        if gpu.INTERPRET and gpu.TRITON_AVAILABLE:
            impls["course-interpreter"] = _course_interpreter()
    for name in ("FLASH_ATTENTION", "CUDNN_ATTENTION", "EFFICIENT_ATTENTION", "MATH"):
        impls[f"sdpa-{name.split('_')[0].lower()}"] = _sdpa(name)
    impls["naive"] = Impl(lambda q, k, v, causal: naive_attention(q, k, v, causal), lambda q: "naive (N x N scores)")
    return impls


def _inputs(case: Case, device: torch.device, seed: int = 0):
    """q, k, v, dO for one case, drawn on `device` (a CPU draw of 4 x 33M numbers would cost seconds per case)."""
    g = torch.Generator(device=device).manual_seed(seed)
    shape = (case.batch, case.heads, case.n, case.head_dim)
    dtype = DTYPES[case.dtype]
    return [torch.randn(shape, generator=g, device=device).to(dtype) for _ in range(4)]  # q, k, v, dO


def check_implementation(fn: Callable, q, k, v, do, causal: bool, mode: str) -> float:
    """Largest error of fn's output (and gradients, for fwd+bwd) vs the fp32 reference, relative to its max.

    mode: "fwd" (the output) or "fwd+bwd" (the output and dq, dk, dv for the upstream gradient do).
    """
    from .attention import scaled_dot_product_attention as reference

    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")

    ref_dtype = torch.float64 if q.device.type == "cpu" else torch.float32
    tf32 = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = False
    try:
        errs = []
        grad = mode == "fwd+bwd"
        a = [t.detach().clone().requires_grad_(grad) for t in (q, k, v)]
        b = [t.detach().to(ref_dtype).requires_grad_(grad) for t in (q, k, v)]
        out_a, out_b = fn(*a, causal), reference(b[0], b[1], b[2], is_causal=causal)
        pairs = [(out_a, out_b)]
        if grad:
            out_a.backward(do)
            out_b.backward(do.to(ref_dtype))
            pairs += [(x.grad, y.grad) for x, y in zip(a, b)]
        for x, y in pairs:
            if x is None or x.shape != y.shape:
                return float("inf")
            scale = y.abs().max().clamp_min(1e-6)
            errs.append(((x.detach().to(ref_dtype) - y.detach()).abs().max() / scale).item())
        return max(errs) if all(math.isfinite(e) for e in errs) else float("inf")
    finally:
        torch.backends.cuda.matmul.allow_tf32 = tf32


def check_tolerance(q, k, v, do, causal: bool, mode: str) -> float:
    """Flash-attention's rule as a bound on `check_implementation`: 2x plain PyTorch's error in q's dtype + a floor."""
    plain = check_implementation(naive_attention, q, k, v, do, causal, mode)
    return 2 * plain + CHECK_FLOOR.get(q.dtype, 1e-5)


def _time_ms(fn: Callable, device: torch.device, grads: Sequence[torch.Tensor] = (), rep_ms: int = 100) -> float:
    """Median milliseconds of fn (GPU: triton's do_bench over about rep_ms, else CUDA events; CPU: min of 5 runs)."""
    if device.type == "cuda":
        try:
            from triton.testing import do_bench

            return float(do_bench(fn, warmup=max(5, rep_ms // 4), rep=rep_ms, grad_to_none=list(grads) or None))
        except ImportError:
            pass
        fn()
        times = []
        for _ in range(10):
            for g in grads:
                g.grad = None
            start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            fn()
            stop.record()
            torch.cuda.synchronize()
            times.append(start.elapsed_time(stop))
        return sorted(times)[len(times) // 2]
    fn()
    best = float("inf")
    for _ in range(5):
        for g in grads:
            g.grad = None
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best * 1e3


def _peak_extra_bytes(fn: Callable, device: torch.device) -> int | None:
    if device.type != "cuda":
        return None
    torch.cuda.synchronize(device)
    torch.cuda.reset_peak_memory_stats(device)
    base = torch.cuda.memory_allocated(device)
    fn()
    torch.cuda.synchronize(device)
    return int(torch.cuda.max_memory_allocated(device) - base)


# Whether naive attention is run at all: its N x N tensors must fit in the GPU's free memory.
FREE_MEMORY_ENV = "COURSE_UTILS_FREE_MEMORY_BYTES"  # set it to force the free memory the check sees (e.g. a T4's)
NAIVE_MEMORY_SHARE = 0.8  # naive attention may take at most this share of the free memory (the rest: q, k, v, ...)


def naive_bytes(case: Case, mode: str) -> int:
    """Bytes of the (B, H, N, N) tensors naive attention holds: scores, probabilities, softmax temporaries (x3),
    twice as many with the backward pass (their gradients)."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    if case.dtype not in DTYPES:
        raise ValueError(f"case.dtype must be one of {sorted(DTYPES)}, got {case.dtype!r}")
    element = torch.finfo(DTYPES[case.dtype]).bits // 8
    return case.batch * case.heads * case.n * case.n * element * (3 if mode == "fwd" else 6)


def naive_fits(free_bytes: int, case: Case, mode: str) -> bool:
    """Pure: do naive attention's N x N tensors for `case` and `mode` fit in `free_bytes` of free GPU memory?"""
    if isinstance(free_bytes, bool) or not isinstance(free_bytes, int) or free_bytes < 0:
        raise ValueError(f"free_bytes must be a non-negative int, got {free_bytes!r}")
    return naive_bytes(case, mode) < NAIVE_MEMORY_SHARE * free_bytes


def naive_skip_reason(free_bytes: int, case: Case, mode: str) -> str | None:
    """None when naive attention fits `free_bytes`; else the reason it is skipped, in words with the numbers."""
    if naive_fits(free_bytes, case, mode):
        return None
    return (
        f"its N x N tensors need {naive_bytes(case, mode) / 1e9:.1f} GB, more than "
        f"{NAIVE_MEMORY_SHARE:.0%} of the {free_bytes / 1e9:.1f} GB free"
    )


def free_memory_bytes(device: torch.device) -> int | None:
    """Free memory of a CUDA `device` in bytes (COURSE_UTILS_FREE_MEMORY_BYTES overrides it, on any device);
    None on a CPU without the override (no limit is checked there)."""
    forced = os.environ.get(FREE_MEMORY_ENV, "").strip()
    if forced:
        try:
            value = int(float(forced))
        except (ValueError, OverflowError):
            value = -1
        if value < 0:
            raise ValueError(f"{FREE_MEMORY_ENV} must be a number of bytes (e.g. 15e9), got {forced!r}")
        return value
    if device.type != "cuda":
        return None
    free, _ = torch.cuda.mem_get_info(device)
    return int(free)


def _naive_skip(case: Case, mode: str, device: torch.device) -> str | None:
    free = free_memory_bytes(device)
    return None if free is None else naive_skip_reason(free, case, mode)


@dataclass
class Result:
    impl: str  # name in the sweep
    ran: str  # what actually ran
    mode: str  # "fwd" or "fwd+bwd"
    case: dict  # the Case's fields
    status: str  # "ok", "wrong", "unavailable", "skipped: ...", "error: ..."
    check_error: float | None = None  # max error vs the fp32 reference, relative to its max
    ms: float | None = None  # median (GPU) or best (CPU) time
    tflops: float | None = None  # FLOPs / time
    extra_bytes: int | None = None  # peak allocation beyond the inputs (GPU)
    ratios: dict = field(default_factory=dict)  # vs sdpa-flash and the best SDPA backend


def _bench_one(
    name: str, impl: Impl, case: Case, mode: str, device: torch.device, check: bool, rep_ms: int, inputs: Sequence
) -> Result:
    """Check, then time, one implementation on one case and mode; inputs: the case's (q, k, v, dO)."""
    q, k, v, do = inputs
    res = Result(name, impl.ran(q), mode, asdict(case), "ok")
    skip = _naive_skip(case, mode, device) if name == "naive" else None
    if skip is not None:
        res.status = f"skipped: {skip}"
        return res
    if name == "course-interpreter" and case.n > 256:
        res.status = "skipped: the interpreter is for tiny inputs"
        return res
    grad = mode == "fwd+bwd"
    q, k, v = (t.detach().requires_grad_(grad) for t in (q, k, v))  # fresh leaves: no grads carried over

    def call():
        if grad:
            impl.fn(q, k, v, case.causal).backward(do)
        else:
            with torch.no_grad():
                impl.fn(q, k, v, case.causal)

    sl = (slice(0, 1), slice(0, min(2, case.heads)))  # the check runs on one batch, two heads
    try:
        if device.type == "cuda":  # compile and autotune on the full-size inputs, not on the check's slice
            call()
            q.grad = k.grad = v.grad = None
        err = check_implementation(impl.fn, q[sl], k[sl], v[sl], do[sl], case.causal, mode) if check else None
        tol = check_tolerance(q[sl], k[sl], v[sl], do[sl], case.causal, mode) if check else math.inf
    except RuntimeError as exc:  # an SDPA backend that does not exist for these inputs
        text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        lower = text.lower()
        absent = "no available kernel" in lower or "no viable backend" in lower  # torch's two wordings
        res.status = "unavailable" if absent else f"error: {text[:120]}"
        return res
    res.check_error = err
    if err is not None and not err <= tol:
        res.status = "wrong"
        return res
    try:
        res.extra_bytes = _peak_extra_bytes(call, device)
        res.ms = _time_ms(call, device, grads=(q, k, v) if grad else (), rep_ms=rep_ms)
    except (RuntimeError, torch.cuda.OutOfMemoryError) as exc:
        res.status = f"error: {str(exc).splitlines()[0][:120]}"
        return res
    res.tflops = case.flops(mode) / (res.ms * 1e-3) / 1e12
    return res


def _add_ratios(results: list[Result]) -> None:
    groups: dict = {}
    for r in results:
        groups.setdefault((json.dumps(r.case, sort_keys=True), r.mode), []).append(r)
    for rows in groups.values():
        ok = {r.impl: r.tflops for r in rows if r.status == "ok" and r.tflops}
        sdpa = {k: v for k, v in ok.items() if k.startswith("sdpa-")}
        best = max(sdpa.values()) if sdpa else None
        for r in rows:
            if r.status != "ok" or not r.tflops:
                continue
            if "sdpa-flash" in ok:
                r.ratios["vs_sdpa_flash"] = r.tflops / ok["sdpa-flash"]
            if best:
                r.ratios["vs_best_sdpa"] = r.tflops / best


def run(
    sweep: Sweep | None = None,
    impls: Mapping[str, Impl] | None = None,
    device: torch.device | str | None = None,
    check: bool = True,
    log: Callable[[str], None] | None = print,
    rep_ms: int = 100,
    checkpoint: Callable[[list[Result]], None] | None = None,
) -> list[Result]:
    """Check then time every implementation on every case and mode of the sweep; returns one Result each.

    rep_ms: GPU timing budget per measurement. checkpoint: called with the results so far after each case.
    """
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(device)
    sweep = sweep or (GPU_SWEEP if device.type == "cuda" else CPU_SWEEP)
    impls = dict(impls) if impls is not None else implementations(device)
    results = []
    for case in sweep.cases():
        inputs = _inputs(case, device)  # one draw per case, shared by every implementation and mode
        for mode in sweep.modes:
            for name, impl in impls.items():
                res = _bench_one(name, impl, case, mode, device, check, rep_ms, inputs)
                results.append(res)
                if log:
                    t = f"{res.tflops:8.2f} TFLOP/s" if res.tflops else res.status
                    where = f"{case.dtype:9s} d={case.head_dim:<4d} N={case.n:<6d} causal={case.causal!s:5s}"
                    log(f"{where} {mode:8s} {name:20s} {t}")
                if device.type == "cuda":
                    torch.cuda.empty_cache()
        if checkpoint is not None:
            _add_ratios(results)
            checkpoint(results)
    _add_ratios(results)
    return results


def format_table(results: Sequence[Result]) -> str:
    """One line per result: case, mode, implementation, what ran, TFLOP/s, ratios, extra memory."""
    head = (
        f"{'dtype':9s} {'d':>4s} {'N':>6s} {'causal':6s} {'mode':8s} {'impl':19s} {'ran':28s} "
        f"{'ms':>9s} {'TFLOP/s':>8s} {'/flash':>7s} {'/best':>7s} {'extra MiB':>10s}  status"
    )
    lines = [head, "-" * len(head)]
    for r in results:
        c = r.case
        fmt = lambda x, f: format(x, f) if x is not None else "-"
        mib = r.extra_bytes / 2**20 if r.extra_bytes is not None else None
        lines.append(
            f"{c['dtype']:9s} {c['head_dim']:4d} {c['n']:6d} {c['causal']!s:6s} {r.mode:8s} {r.impl:19s} "
            f"{r.ran[:28]:28s} "
            f"{fmt(r.ms, '9.3f'):>9s} {fmt(r.tflops, '8.2f'):>8s} {fmt(r.ratios.get('vs_sdpa_flash'), '7.2f'):>7s} "
            f"{fmt(r.ratios.get('vs_best_sdpa'), '7.2f'):>7s} {fmt(mib, '10.1f'):>10s}  {r.status}"
        )
    return "\n".join(lines)


def ratio_table(results: Sequence[Result], impl: str = "course") -> str:
    """One line per case: `impl`'s TFLOP/s and its ratios to SDPA flash and to the best SDPA backend, per mode."""
    rows: dict = {}
    for r in results:
        if r.impl == impl and r.status == "ok" and r.tflops:
            c = r.case
            rows.setdefault((c["dtype"], c["head_dim"], c["n"], c["causal"]), {})[r.mode] = r
    modes = [m for m in MODES if any(m in by_mode for by_mode in rows.values())]
    head = f"{'dtype':9s} {'d':>4s} {'N':>6s} {'causal':6s}" + "".join(
        f" | {m + ' TFLOP/s':>16s} {'/flash':>6s} {'/best':>6s}" for m in modes
    )
    fmt = lambda x: f"{x:6.2f}" if x is not None else f"{'-':>6s}"
    lines = [head, "-" * len(head)]
    for (dtype, d, n, causal), by_mode in rows.items():
        line = f"{dtype:9s} {d:4d} {n:6d} {causal!s:6s}"
        for m in modes:
            r = by_mode.get(m)
            if r is None:
                line += f" | {'-':>16s} {'-':>6s} {'-':>6s}"
                continue
            line += f" | {r.tflops:16.0f} {fmt(r.ratios.get('vs_sdpa_flash'))} {fmt(r.ratios.get('vs_best_sdpa'))}"
        lines.append(line)
    return "\n".join(lines)


def load(path: str | Path) -> tuple[dict, list[Result]]:
    """Read a bench.json written by `main`: (meta, results)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"path must be a bench.json written by python -m course_utils.bench, got {path}")
    data = json.loads(path.read_text())
    if not isinstance(data, dict) or not {"meta", "results"} <= set(data):
        raise ValueError(f"path must hold a JSON object with 'meta' and 'results', got keys {sorted(data)} in {path}")
    return data["meta"], [Result(**r) for r in data["results"]]


def recorded(gpu: str = "H200") -> tuple[dict, list[Result]]:
    """A full sweep recorded on real hardware and shipped with the course: (meta, results). meta says where and when."""
    if gpu not in RECORDED:
        raise ValueError(f"gpu must be one of {sorted(RECORDED)}, got {gpu!r}")
    return load(RECORDED[gpu])


def plot(results: Sequence[Result], path: str | Path | None = None):
    """TFLOP/s vs N, one panel per (mode, dtype, d); solid lines full attention, dashed causal. Returns (fig, axes)."""
    import matplotlib.pyplot as plt

    panels = sorted(
        {(r.mode, r.case["dtype"], r.case["head_dim"]) for r in results}, key=lambda p: (MODES.index(p[0]), p[1], p[2])
    )
    cols = max(1, len({p[1:] for p in panels}))
    rows = max(1, len({p[0] for p in panels}))
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.4 * rows), squeeze=False)
    impls = list(dict.fromkeys(r.impl for r in results))
    colors = {name: plt.cm.tab10(i % 10) for i, name in enumerate(impls)}
    ran = {name: sorted({r.ran for r in results if r.impl == name}) for name in impls}
    labels = {name: f"{name} (ran {', '.join(ran[name])})" if name == "course" else name for name in impls}
    col_of = {p: i for i, p in enumerate(sorted({p[1:] for p in panels}))}
    row_of = {m: i for i, m in enumerate(sorted({p[0] for p in panels}, key=MODES.index))}
    for mode, dtype, d in panels:
        ax = axes[row_of[mode]][col_of[(dtype, d)]]
        for name in impls:
            for causal, style in ((False, "-"), (True, "--")):
                pts = sorted(
                    (r.case["n"], r.tflops) for r in results
                    if r.impl == name and r.mode == mode and r.case["dtype"] == dtype and r.case["head_dim"] == d
                    and r.case["causal"] == causal and r.tflops
                )
                if pts:
                    ax.plot(*zip(*pts), style, marker="o", color=colors[name], label=labels[name])
        ax.set_xscale("log", base=2)
        ax.set_title(f"{mode}, {dtype}, d={d}", fontsize=10)
        ax.set_xlabel("N (tokens)")
        ax.set_ylabel("TFLOP/s")
        ax.grid(True, alpha=0.3)
    legend: dict[str, Any] = {}  # one entry per implementation (its first line) for all panels, below them
    for ax in axes.flat:
        for handle, name in zip(*ax.get_legend_handles_labels()):
            legend.setdefault(name, handle)
    names, handles = list(legend), list(legend.values())
    ncol = max(1, min(len(names), 2 * cols))
    legend_inches = 0.22 * (math.ceil(len(names) / ncol) + 1) + 0.1  # its rows and its title
    fig.tight_layout(rect=(0, legend_inches / fig.get_figheight(), 1, 1))
    fig.legend(
        handles, names, loc="lower center", ncol=ncol, fontsize=8, frameon=False,
        title="solid: full attention, dashed: causal", title_fontsize=8,
    )
    if path is not None:
        fig.savefig(path, dpi=110)
    return fig, axes


def _meta(device: torch.device, sweep: Sweep) -> dict:
    meta: dict[str, object] = {
        "sweep": sweep.label,
        "device": torch.cuda.get_device_name(device)
        if device.type == "cuda"
        else f"CPU ({platform.processor() or platform.machine()})",
        "torch": torch.__version__,
        "python": platform.python_version(),
        "recorded": datetime.date.today().isoformat(),
    }
    try:
        import triton

        meta["triton"] = triton.__version__
    except ImportError:
        meta["triton"] = None
    if device.type == "cuda":
        meta["capability"] = list(torch.cuda.get_device_capability(device))
    return meta


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("bench_results"), help="folder for bench.json and bench.png")
    parser.add_argument("--quick", action="store_true", help="a few GPU cells instead of the full sweep")
    parser.add_argument("--cpu", action="store_true", help="the small CPU sweep, even with a GPU")
    parser.add_argument("--no-plot", action="store_true", help="skip the PNG")
    parser.add_argument("--impls", default="", help="comma-separated subset, e.g. course,sdpa-flash,naive")
    parser.add_argument("--rep-ms", type=int, default=100, help="GPU timing budget per measurement (ms)")
    args = parser.parse_args(argv)
    cuda = torch.cuda.is_available() and not args.cpu
    if not torch.cuda.is_available():  # the kernel can only run in Triton's interpreter; set before gpu loads
        os.environ.setdefault("TRITON_INTERPRET", "1")
    device = torch.device("cuda" if cuda else "cpu")
    sweep = (QUICK_SWEEP if args.quick else GPU_SWEEP) if cuda else CPU_SWEEP
    impls = implementations(device)
    if args.impls:
        wanted = [s.strip() for s in args.impls.split(",") if s.strip()]
        unknown = sorted(set(wanted) - set(impls))
        if unknown:
            parser.error(f"unknown --impls {unknown}; choose from {sorted(impls)}")
        impls = {k: impls[k] for k in wanted}
    meta = _meta(device, sweep) | {"rep_ms": args.rep_ms}
    print(f"{sweep.label} on {meta['device']} (torch {meta['torch']}, triton {meta['triton']})", flush=True)
    if not cuda:
        why = "--cpu" if torch.cuda.is_available() else "No CUDA GPU"
        print(f"{why}: a small CPU sweep; the course kernel runs in Triton's interpreter where shown.")
    args.out.mkdir(parents=True, exist_ok=True)

    def save(results: list[Result]) -> None:  # after every case, so a run cut short still leaves its JSON
        payload = {"meta": meta, "results": [asdict(r) for r in results]}
        (args.out / "bench.json").write_text(json.dumps(payload, indent=1))

    results = run(sweep, impls, device, rep_ms=args.rep_ms, checkpoint=save)
    save(results)
    table = format_table(results)
    print(table)
    (args.out / "bench.txt").write_text(table + "\n")
    if not args.no_plot:
        import matplotlib

        matplotlib.use("Agg")
        plot(results, args.out / "bench.png")
    slow = [r for r in results if r.impl == "course" and r.ratios.get("vs_sdpa_flash", 1.0) < 1.0]
    if cuda and slow:
        print(f"{len(slow)} course cells under 1.0x SDPA flash:")
        for r in slow:
            print(f"  {r.mode} {r.case}: {r.ratios['vs_sdpa_flash']:.2f}x")
    print(f"wrote {args.out / 'bench.json'}" + ("" if args.no_plot else f" and {args.out / 'bench.png'}"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
