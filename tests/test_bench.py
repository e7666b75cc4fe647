"""course_utils.bench on a CPU: a tiny sweep, JSON and plot written, wrong implementations rejected."""

from __future__ import annotations

import json

import pytest
import torch

from course_utils import bench

TINY = bench.Sweep(dtypes=("float32",), head_dims=(16,), ns=(32,), causal=(False, True), tokens=64, width=32,
                   label="tiny test sweep")


def _impls():
    all_impls = bench.implementations(torch.device("cpu"))
    return {k: all_impls[k] for k in ("course", "sdpa-flash", "sdpa-cudnn", "sdpa-math", "naive")}


def test_case_flops():
    case = bench.Case("float16", 2, 3, 128, 64, causal=False)
    assert case.flops("fwd") == 4 * 2 * 3 * 128 * 128 * 64
    assert bench.Case("float16", 2, 3, 128, 64, causal=True).flops("fwd") == case.flops("fwd") / 2
    assert case.flops("fwd+bwd") == 3.5 * case.flops("fwd")


def test_sweeps_keep_tokens_and_width():
    cases = bench.GPU_SWEEP.cases()
    assert len(cases) == 2 * 2 * 3 * 2  # {fp16, bf16} x {64, 128} x {1k, 4k, 16k} x {causal, not}
    assert all(c.batch * c.n == 16384 and c.heads * c.head_dim == 2048 for c in cases)
    assert "CPU" in bench.CPU_SWEEP.label


def test_naive_attention_matches_sdpa():
    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(1, 2, 9, 8, generator=g, dtype=torch.float64) for _ in range(3))
    for causal in (False, True):
        want = torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=causal)
        assert torch.allclose(bench.naive_attention(q, k, v, causal), want, atol=1e-12, rtol=0)


def test_tiny_sweep_records_what_ran():
    results = bench.run(TINY, _impls(), device="cpu", log=None)
    assert len(results) == 2 * 2 * 5  # cases x modes x implementations
    by = {(r.impl, r.mode, r.case["causal"]): r for r in results}
    course = by[("course", "fwd", False)]
    assert course.ran == "sdpa" and course.status == "ok"  # no GPU: the course's dispatch fell back
    assert by[("sdpa-cudnn", "fwd", False)].status == "unavailable"  # no cuDNN on a CPU
    for r in results:
        if r.status == "ok":
            assert r.check_error is not None and r.check_error < 1e-3
            assert r.ms > 0 and r.tflops > 0
            assert r.ratios["vs_best_sdpa"] > 0
    assert by[("sdpa-math", "fwd+bwd", True)].ratios["vs_sdpa_flash"] > 0


def test_wrong_implementation_is_rejected_and_not_timed():
    def forgot_scale(q, k, v, causal):
        return torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=causal, scale=1.0)

    def wrong_grad(q, k, v, causal):  # right forward, no gradient to k
        return bench.naive_attention(q, k.detach(), v, causal)

    impls = {"forgot-scale": bench.Impl(forgot_scale, lambda q: "mine"), "wrong-grad": bench.Impl(wrong_grad, lambda q: "mine")}
    results = bench.run(TINY, impls, device="cpu", log=None)
    status = {(r.impl, r.mode): r.status for r in results}
    assert status[("forgot-scale", "fwd")] == "wrong" and status[("forgot-scale", "fwd+bwd")] == "wrong"
    assert status[("wrong-grad", "fwd")] == "ok" and status[("wrong-grad", "fwd+bwd")] == "wrong"
    assert all(r.ms is None for r in results if r.status == "wrong")


def test_check_implementation_numbers():
    g = torch.Generator().manual_seed(1)
    q, k, v, do = (torch.randn(1, 1, 16, 8, generator=g) for _ in range(4))
    assert bench.check_implementation(bench.naive_attention, q, k, v, do, True, "fwd+bwd") < 1e-5
    assert bench.check_implementation(lambda q, k, v, c: v, q, k, v, do, True, "fwd") > 0.1


def test_format_table_and_plot(tmp_path):
    results = bench.run(TINY, {"naive": _impls()["naive"], "sdpa-math": _impls()["sdpa-math"]}, device="cpu", log=None)
    table = bench.format_table(results)
    assert table.splitlines()[0].split()[:3] == ["dtype", "d", "N"] and len(table.splitlines()) == 2 + len(results)
    fig, axes = bench.plot(results, tmp_path / "b.png")
    assert (tmp_path / "b.png").stat().st_size > 1000 and axes.shape == (2, 1)


def test_main_writes_json_and_plot(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(bench, "CPU_SWEEP", TINY)
    assert bench.main(["--cpu", "--out", str(tmp_path), "--impls", "course,sdpa-math,naive"]) == 0
    data = json.loads((tmp_path / "bench.json").read_text())
    assert data["meta"]["sweep"] == "tiny test sweep" and data["meta"]["device"].startswith("CPU")
    assert {r["impl"] for r in data["results"]} == {"course", "sdpa-math", "naive"}
    assert (tmp_path / "bench.png").exists() and (tmp_path / "bench.txt").exists()
    assert "a small CPU sweep" in capsys.readouterr().out


def test_main_rejects_unknown_impls(tmp_path):
    with pytest.raises(SystemExit):
        bench.main(["--cpu", "--out", str(tmp_path), "--impls", "nope"])


def test_recorded_run_is_complete_and_checked():
    meta, results = bench.recorded("H200")
    assert meta["device"] == "NVIDIA H200" and meta["capability"] == [9, 0] and meta["recorded"]
    cases = bench.GPU_SWEEP.cases()
    impls = {"course", "sdpa-flash", "sdpa-cudnn", "sdpa-efficient", "sdpa-math", "naive"}
    assert len(results) == len(cases) * len(bench.MODES) * len(impls)
    assert {r.impl for r in results} == impls and all(r.status == "ok" for r in results)
    naive = {(json.dumps(r.case, sort_keys=True), r.mode): r.check_error for r in results if r.impl == "naive"}
    for r in results:  # every timed result passed flash-attention's rule: at most 2x plain PyTorch's error
        floor = bench.CHECK_FLOOR[bench.DTYPES[r.case["dtype"]]]
        assert r.check_error <= 2 * naive[(json.dumps(r.case, sort_keys=True), r.mode)] + floor and r.tflops > 0
    assert {r.ran for r in results if r.impl == "course"} == {"triton"}


def test_ratio_table_one_line_per_case():
    _, results = bench.recorded()
    lines = bench.ratio_table(results).splitlines()
    assert len(lines) == 2 + len(bench.GPU_SWEEP.cases())
    assert "fwd+bwd TFLOP/s" in lines[0]
    first = bench.GPU_SWEEP.cases()[0]
    ours = next(r for r in results if r.impl == "course" and r.mode == "fwd" and r.case == dict(vars(first)))
    assert lines[2].split()[:5] == [first.dtype, str(first.head_dim), str(first.n), str(first.causal), "|"]
    assert f"{ours.ratios['vs_sdpa_flash']:.2f}" in lines[2]


def test_load_round_trips_main_and_names_bad_paths(tmp_path, monkeypatch):
    monkeypatch.setattr(bench, "CPU_SWEEP", TINY)
    assert bench.main(["--cpu", "--out", str(tmp_path), "--impls", "sdpa-math,naive", "--no-plot"]) == 0
    meta, results = bench.load(tmp_path / "bench.json")
    assert meta["sweep"] == "tiny test sweep" and {r.impl for r in results} == {"sdpa-math", "naive"}
    with pytest.raises(FileNotFoundError, match="path must be a bench.json"):
        bench.load(tmp_path / "missing.json")
    (tmp_path / "other.json").write_text("{}")
    with pytest.raises(ValueError, match="'meta' and 'results'"):
        bench.load(tmp_path / "other.json")
    with pytest.raises(ValueError, match="gpu must be one of"):
        bench.recorded("T4")


def test_check_implementation_rejects_unknown_modes():
    g = torch.Generator().manual_seed(1)
    q, k, v, do = (torch.randn(1, 1, 16, 8, generator=g) for _ in range(4))
    for mode in ("backward", "bwd", "FWD", None):
        with pytest.raises(ValueError, match="mode must be one of"):
            bench.check_implementation(bench.naive_attention, q, k, v, do, False, mode)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16, torch.float32])
def test_a_kernel_that_drops_one_key_fails_the_rule(dtype):
    """The old bf16 tolerance (6e-2 of max|ref|) passed a kernel that ignores the last key; 2x PyTorch's does not."""
    g = torch.Generator().manual_seed(3)
    q, k, v, do = (torch.randn(2, 2, 64, 32, generator=g).to(dtype) for _ in range(4))

    def drops_last_key(q, k, v, causal):
        return bench.naive_attention(q, k[..., :-1, :], v[..., :-1, :], False)

    for mode in bench.MODES:
        tol = bench.check_tolerance(q, k, v, do, False, mode)
        assert bench.check_implementation(bench.naive_attention, q, k, v, do, False, mode) <= tol
        assert bench.check_implementation(drops_last_key, q, k, v, do, False, mode) > tol


def test_a_kernel_that_drops_one_key_is_marked_wrong():
    """bf16, N=1024, small logits: dropping a key costs 4.9e-2 of max|ref|, under the old 6e-2 tolerance."""
    case = bench.Case("bfloat16", 1, 2, 1024, 32, causal=False)
    g = torch.Generator().manual_seed(0)
    q, k, v, do = (torch.randn(1, 2, 1024, 32, generator=g) for _ in range(4))
    inputs = [(q * 0.3).bfloat16(), (k * 0.3).bfloat16(), v.bfloat16(), do.bfloat16()]

    def drops_last_key(q, k, v, causal):
        return bench.naive_attention(q, k[..., :-1, :], v[..., :-1, :], causal)

    impl = bench.Impl(drops_last_key, lambda q: "mine")
    res = bench._bench_one("drops-a-key", impl, case, "fwd", torch.device("cpu"), True, 10, inputs)
    assert 0.03 < res.check_error < 6e-2  # what the old bf16 tolerance let through
    assert res.status == "wrong" and res.ms is None


def test_naive_attention_causal_with_unequal_lengths_is_top_left_as_sdpa():
    g = torch.Generator().manual_seed(0)
    for n_q, n_k in ((5, 9), (9, 5), (1, 4)):
        q = torch.randn(1, 2, n_q, 8, generator=g, dtype=torch.float64)
        k, v = (torch.randn(1, 2, n_k, 8, generator=g, dtype=torch.float64) for _ in range(2))
        want = torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True)
        torch.testing.assert_close(bench.naive_attention(q, k, v, True), want, atol=1e-12, rtol=0)


def test_naive_attention_checks_its_inputs():
    q = torch.randn(1, 1, 4, 8)
    with pytest.raises(ValueError, match="q and k must share the last dimension"):
        bench.naive_attention(q, torch.randn(1, 1, 4, 7), torch.randn(1, 1, 4, 8))
    with pytest.raises(TypeError, match="causal must be a bool"):
        bench.naive_attention(q, q, q, causal="no")
    with pytest.raises(ValueError, match="scale must be a finite positive number"):
        bench.naive_attention(q, q, q, scale=0.0)
