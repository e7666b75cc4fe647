"""Lesson 07 on the GPUs learners have, without the hardware: whether naive attention fits each GPU's free memory
(bench.naive_fits, a pure function), the override that forces a T4's free memory, and what the lesson then does
(its `extra_memory` falls back to byte counts when naive attention was skipped)."""

from __future__ import annotations

import pytest
import torch
from nbtools import notebook_definitions

from course_utils import bench

LESSON = "notebooks/07_self_attention_on_a_gpu.ipynb"
# The lesson's live benchmark: fp16, d = 64, causal, B * N = 16384 tokens, H * d = 2048.
LESSON_SWEEP = bench.Sweep(dtypes=("float16",), head_dims=(64,), ns=(1024, 4096), causal=(True,), label="lesson")
GB = 10**9
# Free memory a learner sees right after start-up (total minus what the driver and CUDA context take).
FREE = {
    "T4 (16 GB, Colab)": 15 * GB,
    "L4 (24 GB)": 22 * GB,
    "A100 40 GB": 39 * GB,
    "A100 80 GB": 79 * GB,
    "H200 (141 GB)": 139 * GB,
}
# (N, mode) -> fits, per GPU. Naive attention at N = 4096 holds 12.9 GB forward, 25.8 GB with the backward pass.
EXPECTED = {
    "T4 (16 GB, Colab)": {(1024, "fwd"): True, (1024, "fwd+bwd"): True, (4096, "fwd"): False, (4096, "fwd+bwd"): False},
    "L4 (24 GB)": {(1024, "fwd"): True, (1024, "fwd+bwd"): True, (4096, "fwd"): True, (4096, "fwd+bwd"): False},
    "A100 40 GB": {(1024, "fwd"): True, (1024, "fwd+bwd"): True, (4096, "fwd"): True, (4096, "fwd+bwd"): True},
    "A100 80 GB": {(1024, "fwd"): True, (1024, "fwd+bwd"): True, (4096, "fwd"): True, (4096, "fwd+bwd"): True},
    "H200 (141 GB)": {(1024, "fwd"): True, (1024, "fwd+bwd"): True, (4096, "fwd"): True, (4096, "fwd+bwd"): True},
}
MEMORY_CASE = bench.Case("float16", 4, 32, 4096, 64, True)  # the case of the lesson's memory claim


def test_naive_bytes_counts_three_n_by_n_tensors_forward_six_with_backward():
    assert bench.naive_bytes(MEMORY_CASE, "fwd") == 3 * 4 * 32 * 4096**2 * 2
    assert bench.naive_bytes(MEMORY_CASE, "fwd+bwd") == 2 * bench.naive_bytes(MEMORY_CASE, "fwd")
    f32 = bench.Case("float32", 4, 32, 4096, 64, True)
    assert bench.naive_bytes(f32, "fwd") == 2 * bench.naive_bytes(MEMORY_CASE, "fwd")


@pytest.mark.parametrize("gpu", list(FREE))
def test_naive_fits_each_gpu_as_expected(gpu):
    got = {(c.n, mode): bench.naive_fits(FREE[gpu], c, mode) for c in LESSON_SWEEP.cases() for mode in bench.MODES}
    assert got == EXPECTED[gpu]
    for (n, mode), fits in got.items():
        case = next(c for c in LESSON_SWEEP.cases() if c.n == n)
        reason = bench.naive_skip_reason(FREE[gpu], case, mode)
        assert (reason is None) == fits
        if reason:
            assert f"{bench.naive_bytes(case, mode) / 1e9:.1f} GB" in reason and f"{FREE[gpu] / 1e9:.1f} GB free" in reason


def test_the_boundary_is_the_memory_share():
    need = bench.naive_bytes(MEMORY_CASE, "fwd")
    just_enough = int(need / bench.NAIVE_MEMORY_SHARE) + 1
    assert bench.naive_fits(just_enough, MEMORY_CASE, "fwd")
    assert not bench.naive_fits(just_enough - 2, MEMORY_CASE, "fwd")
    assert not bench.naive_fits(0, MEMORY_CASE, "fwd")


@pytest.mark.parametrize("bad", [-1, 1.5e10, "15e9", None, True])
def test_naive_fits_rejects_a_bad_free_memory(bad):
    with pytest.raises(ValueError, match="free_bytes"):
        bench.naive_fits(bad, MEMORY_CASE, "fwd")


def test_naive_fits_rejects_a_bad_mode_or_dtype():
    with pytest.raises(ValueError, match="mode"):
        bench.naive_fits(10 * GB, MEMORY_CASE, "bwd")
    with pytest.raises(ValueError, match="dtype"):
        bench.naive_fits(10 * GB, bench.Case("int8", 1, 1, 8, 8, False), "fwd")


def test_free_memory_override(monkeypatch):
    monkeypatch.delenv(bench.FREE_MEMORY_ENV, raising=False)
    assert bench.free_memory_bytes(torch.device("cpu")) is None  # a CPU has no limit to check
    monkeypatch.setenv(bench.FREE_MEMORY_ENV, "15e9")
    assert bench.free_memory_bytes(torch.device("cpu")) == 15 * GB
    for bad in ("fifteen", "-3", "inf"):
        monkeypatch.setenv(bench.FREE_MEMORY_ENV, bad)
        with pytest.raises(ValueError, match=bench.FREE_MEMORY_ENV):
            bench.free_memory_bytes(torch.device("cpu"))


def _tiny_run(monkeypatch, free: str | None):
    """bench.run on a CPU over one tiny case, naive attention and SDPA's math backend only."""
    if free is None:
        monkeypatch.delenv(bench.FREE_MEMORY_ENV, raising=False)
    else:
        monkeypatch.setenv(bench.FREE_MEMORY_ENV, free)
    sweep = bench.Sweep(dtypes=("float32",), head_dims=(16,), ns=(32,), causal=(True,), tokens=32, width=32, label="t")
    impls = {k: f for k, f in bench.implementations(torch.device("cpu")).items() if k in ("sdpa-math", "naive")}
    return sweep, bench.run(sweep, impls, device="cpu", log=None, rep_ms=1)


def test_run_skips_naive_with_its_reason_when_the_forced_memory_is_too_small(monkeypatch):
    sweep, results = _tiny_run(monkeypatch, "1000")
    naive = [r for r in results if r.impl == "naive"]
    assert len(naive) == 2 and all(r.status.startswith("skipped: its N x N tensors need") for r in naive)
    assert all(r.status == "ok" for r in results if r.impl == "sdpa-math")
    _, results = _tiny_run(monkeypatch, None)
    assert all(r.status == "ok" for r in results)


@pytest.fixture(scope="module")
def extra_memory():
    return notebook_definitions(LESSON)["extra_memory"]


def _result(impl: str, case: bench.Case, status: str, extra: int | None) -> bench.Result:
    return bench.Result(impl, impl, "fwd", vars(case), status, extra_bytes=extra)


@pytest.mark.parametrize("gpu", list(FREE))
def test_what_the_lesson_does_on_each_gpu(gpu, extra_memory):
    """Where naive attention fits, the lesson's memory claim uses the measured bytes; where it was skipped (a T4),
    the byte counts from the shapes, and the claim (naive > 10x flash) still holds."""
    reason = bench.naive_skip_reason(FREE[gpu], MEMORY_CASE, "fwd")
    measured_naive, measured_flash = 3 * 2**30, 40 * 2**20  # made-up measurements, told apart from the counts
    results = [_result("course", MEMORY_CASE, "ok", measured_flash)]
    results.append(_result("naive", MEMORY_CASE, f"skipped: {reason}" if reason else "ok", None if reason else measured_naive))
    naive, flash, how = extra_memory(results, MEMORY_CASE)
    if reason is None:
        assert (naive, flash, how) == (measured_naive, measured_flash, "measured")
    else:
        assert how == "from the shapes" and naive == 4 * 32 * 4096**2 * 2
    assert naive > 10 * flash
    assert (gpu.startswith("T4")) == (reason is not None)


def test_what_the_lesson_does_without_a_gpu(extra_memory):
    naive, flash, how = extra_memory([], MEMORY_CASE)
    assert how == "from the shapes" and naive > 10 * flash


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (tools/gpu_check.sh runs it)")
def test_lesson07_runs_on_a_gpu_with_a_t4s_free_memory(tmp_path, monkeypatch):
    """On a real GPU, with the free memory the naive-attention check sees forced to a T4's: the lesson runs top to
    bottom, skips naive attention at N = 4096 and says so (tools/gpu_check.sh)."""
    from pathlib import Path

    from test_lessons_without_triton import run_notebook

    monkeypatch.setenv(bench.FREE_MEMORY_ENV, str(15 * GB))
    lines, seconds = run_notebook(Path(__file__).parents[1] / LESSON, tmp_path, monkeypatch, block_triton=False)
    skipped = [ln for ln in lines if ln.startswith("N = 4096") and "naive attention skipped" in ln]
    assert len(skipped) == 2, lines  # forward and forward + backward
    assert any(ln.startswith("naive attention needs over 10x") and ln.endswith("True") for ln in lines)
    print(f"lesson 07 with a T4's free memory: {seconds:.1f} s; " + " | ".join(skipped))
