"""course_utils.gpu: the Triton flash-attention kernel, its dispatch and its validation.

On a CPU the kernels run under TRITON_INTERPRET=1 (set by conftest.py before the module is imported) on
small awkward sizes, against the float64 reference. Tests marked `gpu` need CUDA: there the check is
flash-attention's rule (error vs an fp32 reference <= 2x plain PyTorch's error in the same dtype) and the
O(N) memory claim.
"""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys
import warnings

import pytest
import torch

from course_utils import gpu
from course_utils.attention import scaled_dot_product_attention as reference

CUDA = torch.cuda.is_available()
needs_triton = pytest.mark.skipif(not gpu.TRITON_AVAILABLE, reason="Triton is not installed")
needs_interpreter = pytest.mark.skipif(
    CUDA or not gpu.INTERPRET or not gpu.TRITON_AVAILABLE, reason="CPU interpreter tests (no CUDA)"
)
needs_cuda = pytest.mark.skipif(not CUDA or not gpu.TRITON_AVAILABLE, reason="needs a CUDA GPU and Triton")

# Interpreter tolerances vs float64 (the interpreter computes fp32 dots exactly; fp16 rounds inputs and P).
CPU_ATOL = {torch.float32: 1e-5, torch.float16: 4e-3}


def _inputs(shape, dtype, device="cpu", seed=0):
    g = torch.Generator(device="cpu").manual_seed(seed)
    return [torch.randn(shape, generator=g).to(device=device, dtype=dtype) for _ in range(3)]


def _run(fn, q, k, v, do, causal):
    """Output and gradients of fn at (q, k, v) for the upstream gradient do."""
    q, k, v = (t.detach().clone().requires_grad_() for t in (q, k, v))
    out = fn(q, k, v, causal)
    out.backward(do)
    return out.detach(), q.grad, k.grad, v.grad


def _flash(q, k, v, causal):
    return gpu.flash_attention(q, k, v, causal=causal)


def _ref(q, k, v, causal):
    return reference(q, k, v, is_causal=causal)


def _assert_matches_float64(got, q, k, v, do, causal):
    """got = (out, dq, dk, dv) at (q, k, v, do): each finite, of q's dtype and shape, within CPU_ATOL of float64."""
    want = _run(_ref, q.double(), k.double(), v.double(), do.double(), causal)
    for name, a, b in zip(("out", "dq", "dk", "dv"), got, want):
        assert a.dtype == q.dtype and a.shape == q.shape and torch.isfinite(a).all(), name
        err = (a.double() - b).abs().max().item()
        assert err <= CPU_ATOL[q.dtype], f"{name}: max error {err:.2e} > {CPU_ATOL[q.dtype]:.0e}"


# ---------------------------------------------------------------------------------------------------------
# Interpreter (CPU): forward and gradients vs the float64 reference
# ---------------------------------------------------------------------------------------------------------


@needs_interpreter
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16], ids=["fp32", "fp16"])
@pytest.mark.parametrize("causal", [False, True], ids=["full", "causal"])
@pytest.mark.parametrize("d", [16, 40, 64])
@pytest.mark.parametrize("n", [1, 97, 200])
def test_interpreter_matches_float64_reference(n, d, causal, dtype):
    q, k, v = _inputs((1, 1, n, d), dtype, seed=n + d)
    do = torch.randn(1, 1, n, d, generator=torch.Generator().manual_seed(1)).to(dtype)
    _assert_matches_float64(_run(_flash, q, k, v, do, causal), q, k, v, do, causal)


@needs_interpreter
def test_interpreter_batch_heads_and_scale():
    """Several (batch, head) programs and an explicit scale (the lecture's unscaled form)."""
    q, k, v = _inputs((2, 3, 97, 40), torch.float32, seed=3)
    do = torch.randn_like(q)
    for causal in (False, True):
        got = _run(lambda *a: gpu.flash_attention(*a[:3], causal=a[3], scale=0.3), q, k, v, do, causal)
        want = _run(lambda *a: reference(*a[:3], is_causal=a[3], scale=0.3), q.double(), k.double(), v.double(),
                    do.double(), causal)
        for a, b in zip(got, want):
            assert torch.allclose(a.double(), b, atol=1e-5, rtol=0)


@needs_interpreter
def test_interpreter_lse_is_the_row_logsumexp():
    q, k, v = _inputs((1, 2, 97, 16), torch.float32, seed=4)
    for causal in (False, True):
        out, lse = gpu.flash_attention_forward(q, k, v, causal=causal)
        scores = (q.double() @ k.double().transpose(-2, -1)) / math.sqrt(16)  # (1, 2, 97, 97)
        if causal:
            scores = scores.masked_fill(~torch.ones(97, 97, dtype=torch.bool).tril(), float("-inf"))
        assert lse.dtype == torch.float32 and lse.shape == (1, 2, 97)
        assert torch.allclose(lse.double(), torch.logsumexp(scores, dim=-1), atol=1e-5, rtol=0)
        assert torch.allclose(out.double(), reference(q.double(), k.double(), v.double(), is_causal=causal),
                              atol=1e-5, rtol=0)


@needs_interpreter
def test_interpreter_non_contiguous_inputs():
    """(B, N, H, d) tensors viewed as (B, H, N, d), as a model's projections give them."""
    q, k, v = (t.transpose(1, 2) for t in _inputs((1, 97, 2, 16), torch.float32, seed=5))
    assert not q.is_contiguous()
    got = gpu.flash_attention(q, k, v)
    assert torch.allclose(got.double(), reference(q.double(), k.double(), v.double()), atol=1e-5, rtol=0)


@needs_interpreter
def test_interpreter_is_deterministic():
    """Same inputs, several runs: bit-equal outputs and gradients (no atomics anywhere)."""
    q, k, v = _inputs((1, 1, 97, 40), torch.float16, seed=6)
    do = torch.randn_like(q)
    first = _run(_flash, q, k, v, do, True)
    for _ in range(2):
        again = _run(_flash, q, k, v, do, True)
        assert all(torch.equal(a, b) for a, b in zip(first, again))


@needs_interpreter
@pytest.mark.parametrize("causal", [False, True], ids=["full", "causal"])
def test_interpreter_head_dim_128(causal):
    """The largest head dim: a (BLOCK, 128) tile, no padding."""
    q, k, v = _inputs((1, 1, 97, 128), torch.float32, seed=8)
    do = torch.randn_like(q)
    _assert_matches_float64(_run(_flash, q, k, v, do, causal), q, k, v, do, causal)


@pytest.mark.slow
@needs_interpreter
@pytest.mark.parametrize("causal", [False, True], ids=["full", "causal"])
def test_interpreter_long_awkward_sequence(causal):
    """N = 1025 (one past a power of two), d = 128, fp16: many blocks and a one-row tail (slow: about 20 s)."""
    q, k, v = _inputs((1, 1, 1025, 128), torch.float16, seed=9)
    do = torch.randn_like(q)
    _assert_matches_float64(_run(_flash, q, k, v, do, causal), q, k, v, do, causal)


def _block_shapes(configs):
    """The configs with distinct (block_m, block_n): warps and stages change nothing in the interpreter."""
    return list({(c.block_m, c.block_n): c for c in configs}.values())


GPU_BLOCK_SHAPES = [  # every family's block shapes, per kernel
    _block_shapes(tuple(c for f in gpu.GPU_FAMILIES.values() for c in f.configs(name, False)))
    for name in ("fwd", "dkdv", "dq")
]


@needs_interpreter
@pytest.mark.parametrize("which", range(max(map(len, GPU_BLOCK_SHAPES))))
def test_interpreter_runs_the_gpu_block_configs(which, monkeypatch):
    """Each GPU block shape computes the same numbers, run here in the interpreter."""
    fwd, dkdv, dq = (shapes[min(which, len(shapes) - 1)] for shapes in GPU_BLOCK_SHAPES)
    monkeypatch.setattr(gpu, "INTERPRET", False)  # take the GPU launch path (the kernels stay interpreted)
    monkeypatch.setattr(gpu, "AUTOTUNE", "off")
    monkeypatch.setattr(gpu, "_configs", lambda name, fp32, family: {"fwd": (fwd,), "dkdv": (dkdv,), "dq": (dq,)}[name])
    q, k, v = _inputs((1, 1, 200, 40), torch.float16, seed=10)
    do = torch.randn_like(q)
    scale = 40**-0.5
    out, lse = gpu._forward(q, k, v, True, scale)
    _assert_matches_float64((out, *gpu._backward(do, q, k, v, out, lse, True, scale)), q, k, v, do, True)


@needs_interpreter
@pytest.mark.parametrize("d", [16, 40, 64])
@pytest.mark.parametrize("causal", [False, True], ids=["full", "causal"])
def test_interpreter_reads_nothing_past_the_head(d, causal):
    """q, k, v, dO are the first half of buffers whose second half is NaN: any load past the head's last element
    (e.g. an unmasked tile of a padded head dim, d = 40) would bring a NaN in. N = 192 is a multiple of every
    block size, so every block but the causal diagonal runs the unmasked loop, up to the last row."""
    n, scale = 192, d**-0.5
    bufs = [torch.full((2, 1, n, d), float("nan")) for _ in range(4)]
    g = torch.Generator().manual_seed(d)
    for buf in bufs:
        buf[:1] = torch.randn(1, 1, n, d, generator=g)
    q, k, v, do = (buf[:1] for buf in bufs)  # contiguous views: .contiguous() keeps them where they are
    assert q.is_contiguous() and q.data_ptr() == bufs[0].data_ptr()
    out, lse = gpu._forward(q, k, v, causal, scale)
    _assert_matches_float64((out, *gpu._backward(do, q, k, v, out, lse, causal, scale)), q, k, v, do, causal)


@needs_interpreter
def test_interpreter_small_head_dim_is_padded():
    """d = 8 pads the tile to 16 columns and masks them."""
    q, k, v = _inputs((1, 1, 33, 8), torch.float32, seed=7)
    got = gpu.flash_attention(q, k, v, causal=True)
    assert torch.allclose(got.double(), reference(q.double(), k.double(), v.double(), is_causal=True),
                          atol=1e-5, rtol=0)


# ---------------------------------------------------------------------------------------------------------
# Dispatch: the pure choice, fallbacks and errors
# ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "capability, dtype, head_dim, expected",
    [
        ((9, 0), torch.float16, 64, "triton"),  # H100, H200
        ((9, 0), torch.bfloat16, 128, "triton"),
        ((9, 0), torch.float32, 128, "triton"),
        ((8, 0), torch.bfloat16, 64, "triton"),  # A100
        ((8, 0), torch.float16, 128, "triton"),
        ((8, 6), torch.float32, 40, "triton"),  # RTX 30xx
        ((8, 6), torch.bfloat16, 128, "triton"),
        ((8, 9), torch.float16, 16, "triton"),  # L4
        ((8, 9), torch.bfloat16, 128, "triton"),
        ((7, 5), torch.bfloat16, 64, "sdpa"),  # T4: no bf16 tensor cores
        ((7, 5), torch.float16, 64, "sdpa"),  # T4: Triton emits no tensor-core instruction for sm_75
        ((7, 5), torch.float32, 64, "sdpa"),
        ((7, 0), torch.float16, 64, "sdpa"),  # V100
        ((9, 0), torch.float16, 256, "sdpa"),  # head dim too large
        ((9, 0), torch.float64, 64, "sdpa"),  # dtype the kernel does not take
        (None, torch.float32, 64, "sdpa"),  # no GPU
    ],
)
def test_choose_backend(capability, dtype, head_dim, expected):
    choice = gpu.choose_backend(capability, dtype, head_dim, triton_available=True)
    assert choice.backend == expected
    assert isinstance(choice.reason, str) and choice.reason


@pytest.mark.parametrize(
    "shape, words",
    [
        ((65536, 1, 8, 64), r"B \* H = 65536 > 65535"),
        ((1, 1, 2**25, 64), r"N \* d = 2147483648 >= 2\*\*31"),
    ],
)
def test_choose_backend_sends_shapes_the_kernel_cannot_take_to_sdpa(shape, words):
    choice = gpu.choose_backend((9, 0), torch.float16, 64, shape=shape, triton_available=True)
    assert choice.backend == "sdpa" and re.search(words, choice.reason) and "ran torch SDPA" in choice.reason
    assert gpu.choose_backend((9, 0), torch.float16, 64, shape=(2, 8, 4096, 64), triton_available=True).backend == (
        "triton"
    )
    with pytest.raises(ValueError, match="shape must be"):
        gpu.choose_backend((9, 0), torch.float16, 64, shape=(2, 8, 4096, 128))


def test_t4_reason_says_why_not_the_kernel():
    """sm_75: no tensor-core instruction in what Triton compiles, and tiles larger than a T4's shared memory."""
    reason = gpu.choose_backend((7, 5), torch.float16, 64, triton_available=True).reason
    assert "sm_75" in reason and "FMA only" in reason and "64 KB" in reason and reason.endswith("ran torch SDPA")
    assert gpu.choose_backend((8, 9), torch.float16, 64, triton_available=True).reason.startswith("sm_89 GPU")


def test_auto_on_a_t4_runs_sdpa_and_warns_why(monkeypatch):
    monkeypatch.setattr(gpu, "_capability", lambda device: (7, 5))
    monkeypatch.setattr(gpu, "TRITON_AVAILABLE", True)
    q, k, v = _inputs((1, 2, 10, 16), torch.float16)
    with pytest.warns(UserWarning, match=r"sm_75 GPU: .*FMA only.*ran torch SDPA"):
        out = gpu.attention(q.float(), k.float(), v.float(), causal=True)
    assert torch.allclose(out, reference(q.float(), k.float(), v.float(), is_causal=True), atol=1e-6, rtol=0)


def test_auto_falls_back_on_a_shape_the_kernel_cannot_take(monkeypatch):
    """B * H = 65536 on an H100: `auto` runs SDPA and says why, where flash_attention would raise."""
    monkeypatch.setattr(gpu, "_capability", lambda device: (9, 0))
    monkeypatch.setattr(gpu, "TRITON_AVAILABLE", True)
    q, k, v = (torch.randn(65536, 1, 1, 16, generator=torch.Generator().manual_seed(i)) for i in range(3))
    with pytest.warns(UserWarning, match=r"does not take B \* H = 65536 > 65535 \(a launch-grid limit\): ran torch SDPA"):
        out = gpu.attention(q, k, v)
    assert torch.allclose(out, v)  # one key per (batch, head): the output is its value


@needs_interpreter
def test_direct_call_on_a_t4_warns_in_float32_and_refuses_float16(monkeypatch):
    monkeypatch.setattr(gpu, "_capability", lambda device: (7, 5))
    q, k, v = _inputs((1, 1, 33, 16), torch.float32)
    with pytest.warns(UserWarning, match=r"flash_attention: sm_75 GPU: .*FMA only.*float32 runs there"):
        out = gpu.flash_attention(q, k, v)
    assert torch.allclose(out.double(), reference(q.double(), k.double(), v.double()), atol=1e-5, rtol=0)
    for dtype, words in ((torch.float16, "FMA only"), (torch.bfloat16, "no bfloat16 tensor cores")):
        with pytest.raises(RuntimeError, match=f"flash_attention cannot run here: sm_75 GPU: .*{words}.*backend='auto'"):
            gpu.flash_attention(*(t.to(dtype) for t in (q, k, v)))


def test_choose_backend_reasons_name_the_cause():
    assert "bfloat16" in gpu.choose_backend((7, 5), torch.bfloat16, 64, triton_available=True).reason
    assert "sm_75" in gpu.choose_backend((7, 5), torch.float16, 64, triton_available=True).reason
    assert "head dim 256" in gpu.choose_backend((9, 0), torch.float16, 256, triton_available=True).reason
    no_triton = gpu.choose_backend((9, 0), torch.float16, 64, triton_available=False).reason
    assert ("not installed" in no_triton) if gpu.TRITON_AVAILABLE else no_triton.startswith(gpu.TRITON_PROBLEM)
    assert gpu.choose_backend((9, 0), torch.float16, 64, triton_available=False).backend == "sdpa"
    assert gpu.choose_backend(None, torch.float16, 64, sdpa_available=False).backend == "reference"


@pytest.mark.parametrize(
    "args, error, words",
    [
        (((9,), torch.float16, 64), ValueError, "capability"),
        (("9.0", torch.float16, 64), ValueError, "capability"),
        (((9, 0), "float16", 64), TypeError, "dtype"),
        (((9, 0), torch.float16, 0), ValueError, "head_dim"),
        (((9, 0), torch.float16, 64.0), ValueError, "head_dim"),
    ],
)
def test_choose_backend_validates(args, error, words):
    with pytest.raises(error, match=words):
        gpu.choose_backend(*args)


@pytest.mark.skipif(CUDA, reason="the CPU fallback path")
def test_auto_falls_back_with_a_warning_naming_what_ran():
    q, k, v = _inputs((1, 2, 10, 16), torch.float32)
    with pytest.warns(UserWarning, match="no CUDA GPU: ran torch SDPA"):
        out = gpu.attention(q, k, v, causal=True)
    assert torch.allclose(out, reference(q, k, v, is_causal=True), atol=1e-6, rtol=0)


def test_auto_falls_back_to_reference_when_sdpa_fails(monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("no kernel for this dtype")

    monkeypatch.setattr(gpu.F, "scaled_dot_product_attention", broken)
    q, k, v = _inputs((1, 1, 6, 16), torch.float32)
    with pytest.warns(UserWarning, match="ran the course's reference"):
        out = gpu.attention(q, k, v)
    assert torch.allclose(out, reference(q, k, v), atol=1e-6, rtol=0)


@pytest.mark.parametrize("backend", ["sdpa", "reference"])
def test_explicit_backends_do_not_warn(backend):
    q, k, v = _inputs((1, 2, 10, 16), torch.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = gpu.attention(q, k, v, causal=True, backend=backend)
    assert torch.allclose(out, reference(q, k, v, is_causal=True), atol=1e-6, rtol=0)


@pytest.mark.skipif(CUDA or gpu.INTERPRET, reason="only without a GPU and without the interpreter")
def test_backend_triton_raises_on_cpu_without_interpreter():
    q, k, v = _inputs((1, 1, 8, 16), torch.float32)
    with pytest.raises(RuntimeError, match="CUDA"):
        gpu.attention(q, k, v, backend="triton")


@needs_interpreter
def test_backend_triton_runs_the_interpreter_on_cpu():
    q, k, v = _inputs((1, 1, 8, 16), torch.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = gpu.attention(q, k, v, backend="triton")
    assert torch.allclose(out, reference(q, k, v), atol=1e-5, rtol=0)


def test_unknown_backend():
    q, k, v = _inputs((1, 1, 4, 16), torch.float32)
    with pytest.raises(ValueError, match="backend must be one of"):
        gpu.attention(q, k, v, backend="cuda")


# ---------------------------------------------------------------------------------------------------------
# Validation messages
# ---------------------------------------------------------------------------------------------------------


def _qkv(shape=(1, 1, 4, 16), dtype=torch.float32):
    return _inputs(shape, dtype)


@needs_triton
@pytest.mark.parametrize(
    "make, error, words",
    [
        (lambda: ([1.0], *_qkv()[1:]), TypeError, r"q must be a torch.Tensor, got list"),
        (lambda: (torch.zeros(4, 16), *_qkv()[1:]), ValueError, r"q must have shape \(B, H, N, d\), got shape \(4, 16\)"),
        (lambda: (*_qkv()[:2], torch.zeros(1, 1, 5, 16)), ValueError, r"same shape .*v \(1, 1, 5, 16\)"),
        (lambda: _qkv((1, 1, 0, 16)), ValueError, r"at least one .* got shape \(1, 1, 0, 16\)"),
        (lambda: _qkv((1, 1, 4, 256)), ValueError, r"head dim d must lie in \[1, 128\], got q of shape \(1, 1, 4, 256\)"),
        (  # N * d = 2**31 (an expanded view: no memory): in-head offsets would overflow int32
            lambda: [torch.zeros(1, 1, 1, 128).expand(1, 1, 2**24, 128)] * 3,
            ValueError,
            r"N \* d must be below 2\*\*31 \(int32 offsets inside one head\), got q of shape \(1, 1, 16777216, 128\)",
        ),
        (lambda: _qkv(dtype=torch.float64), TypeError, r"float16, bfloat16 or float32, got torch.float64"),
        (lambda: (*_qkv()[:2], _qkv()[2].half()), TypeError, r"share a dtype"),
    ],
)
def test_flash_attention_validates_inputs(make, error, words):
    with pytest.raises(error, match=words):
        gpu.flash_attention(*make())


@needs_triton
@pytest.mark.parametrize("causal, scale, error, words", [
    (1, None, TypeError, "causal must be a bool"),
    (False, 0.0, ValueError, "scale must be a finite positive number"),
    (False, float("nan"), ValueError, "scale must be a finite positive number"),
])
def test_flash_attention_validates_options(causal, scale, error, words):
    if not (CUDA or gpu.INTERPRET):
        pytest.skip("the device check comes first without a GPU or the interpreter")
    dev = "cuda" if CUDA else "cpu"
    with pytest.raises(error, match=words):
        gpu.flash_attention(*_inputs((1, 1, 4, 16), torch.float32, device=dev), causal=causal, scale=scale)


def test_kernel_source_shows_the_inner_loop():
    src = gpu.kernel_source("forward_inner")
    assert src.startswith("@triton.jit") and "tl.exp2(b_m - b_m_new)" in src
    assert "_load_tile(t_k + t_kv, col_ok, d_ok, MASKED, PAD_D)" in src  # unmasked blocks go through _load_tile
    with pytest.raises(ValueError, match="name must be one of"):
        gpu.kernel_source("nope")


def test_unmasked_tiles_load_without_any_mask():
    """_load_tile masks rows only when asked and head-dim columns only when padded: no mask for neither."""
    src = gpu.kernel_source("load_tile")
    branches = [line.strip() for line in src.splitlines() if "tl.load(" in line]
    assert branches == [
        "b_x = tl.load(t_ptrs, mask=row_ok[:, None] & d_ok[None, :], other=0.0)",
        "b_x = tl.load(t_ptrs, mask=row_ok[:, None], other=0.0)",
        "b_x = tl.load(t_ptrs, mask=d_ok[None, :], other=0.0)",
        "b_x = tl.load(t_ptrs)",
    ]


@needs_triton
def test_autotune_key_is_a_length_bucket(monkeypatch):
    """One tuning per power-of-two bucket of N (and head dim, causal), not one per distinct N."""
    for kernel in (gpu._attn_fwd, gpu._attn_bwd_dkdv, gpu._attn_bwd_dq):
        assert "N_BUCKET" in kernel.arg_names and "DOT_PRECISION" not in kernel.arg_names
    monkeypatch.setattr(gpu, "INTERPRET", False)
    monkeypatch.setattr(gpu, "AUTOTUNE", "small")
    monkeypatch.setattr(gpu, "_TUNED", {})
    tuned, meta = gpu._kernel_and_meta("fwd", False)
    assert meta == {} and list(tuned.keys) == ["N_BUCKET", "HEAD_DIM", "CAUSAL"]

    launched = []

    class Spy:  # records the arguments of every launch instead of running a kernel
        def __getitem__(self, grid):
            return lambda *args, **kwargs: launched.append((args, kwargs))

    monkeypatch.setattr(gpu, "_kernel_and_meta", lambda *args: (Spy(), {}))
    device = "cuda" if CUDA else "cpu"  # the small delta kernel is launched for real
    q, k, v = _inputs((1, 1, 1000, 16), torch.float16, device=device)
    gpu._forward(q, k, v, False, 0.25)
    lse = torch.zeros(1, 1, 1000, device=device)
    gpu._backward(torch.ones_like(q), q, k, v, torch.zeros_like(q), lse, False, 0.25)
    (fwd, fwd_kw), (dkdv, _), (dq, _) = launched
    assert fwd[5:7] == (1000, 1024) and dkdv[8:10] == (1000, 1024) and dq[7:9] == (1000, 1024)  # N, N_BUCKET
    assert "DOT_PRECISION" not in fwd_kw and fwd_kw["PAD_D"] is False


def test_configs_keep_the_divisibility_rules():
    """The causal diagonal is one block: forward/dQ need block_m % block_n == 0, dK/dV the reverse."""
    for family in gpu.GPU_FAMILIES.values():
        for fp32 in (False, True):
            for c in family.configs("fwd", fp32) + family.configs("dq", fp32):
                assert c.block_m % c.block_n == 0, (family.name, c)
            for c in family.configs("dkdv", fp32):
                assert c.block_n % c.block_m == 0, (family.name, c)
    for c in (gpu.INTERPRETER_FWD, gpu.INTERPRETER_DQ):
        assert c.block_m % c.block_n == 0, c
    assert gpu.INTERPRETER_DKDV.block_n % gpu.INTERPRETER_DKDV.block_m == 0
    assert all(b % c.block_n == 0 for c in gpu._full_list(False) for b in (c.block_m,))
    assert all(c.block_n % c.block_m == 0 for c in gpu._full_list(True))


# ---------------------------------------------------------------------------------------------------------
# Config selection per GPU family (what each GPU launches; tests/test_gpu_compile.py checks the configs fit)
# ---------------------------------------------------------------------------------------------------------

GPUS = {"T4": (7, 5), "A100": (8, 0), "RTX 3090": (8, 6), "L4": (8, 9), "H100": (9, 0), "H200": (9, 0)}


@pytest.mark.parametrize(
    "gpu_name, family, shared_kb",
    [("A100", "sm_80", 163), ("RTX 3090", "sm_86", 99), ("L4", "sm_86", 99), ("H100", "sm_90", 227),
     ("H200", "sm_90", 227)],
)
def test_each_gpu_gets_its_familys_configs(gpu_name, family, shared_kb):
    fam = gpu.gpu_family(GPUS[gpu_name])
    assert fam.name == family and fam.shared_memory == shared_kb * 1024
    assert GPUS[gpu_name][0] * 10 + GPUS[gpu_name][1] in fam.targets
    assert gpu_name.split()[0] in fam.examples


def test_newer_gpus_get_lists_that_fit_them():
    """Blackwell's datacenter parts (sm_100, 228 KB) take the sm_90 lists; anything else unknown the smallest."""
    assert gpu.gpu_family((10, 0)).name == "sm_90"
    assert gpu.gpu_family((12, 0)).name == "sm_86"
    assert gpu.gpu_family((8, 7)).name == "sm_86"
    assert min(f.shared_memory for f in gpu.GPU_FAMILIES.values()) == gpu.GPU_FAMILIES["sm_86"].shared_memory


@pytest.mark.parametrize("family", sorted(gpu.GPU_FAMILIES))
@pytest.mark.parametrize("d", [16, 40, 64, 72, 128])
def test_config_selection_respects_each_configs_head_dim(family, d, monkeypatch):
    """With autotuning off each kernel launches the first config of its family's list that takes d; every
    list ends with a config for the largest head dim, so any d has one."""
    monkeypatch.setattr(gpu, "INTERPRET", False)
    monkeypatch.setattr(gpu, "AUTOTUNE", "off")
    fam = gpu.GPU_FAMILIES[family]
    for name in ("fwd", "dkdv", "dq"):
        for fp32 in (False, True):
            configs = fam.configs(name, fp32)
            assert configs[-1].max_head_dim == gpu.MAX_HEAD_DIM, (family, name, fp32)
            want = next(c for c in configs if d <= c.max_head_dim)
            _, meta = gpu._kernel_and_meta(name, fp32, fam, d)
            assert meta == {"BLOCK_M": want.block_m, "BLOCK_N": want.block_n, "num_warps": want.num_warps,
                            "num_stages": want.num_stages}, (family, name, fp32, d)


@needs_triton
@pytest.mark.parametrize("family", sorted(gpu.GPU_FAMILIES))
def test_autotuner_prunes_configs_that_spill_at_the_head_dim(family, monkeypatch):
    """At d = 128 the autotuner tries only the configs whose tiles take d = 128; at d = 64 all of them."""
    monkeypatch.setattr(gpu, "INTERPRET", False)
    monkeypatch.setattr(gpu, "AUTOTUNE", "small")
    monkeypatch.setattr(gpu, "_TUNED", {})
    fam = gpu.GPU_FAMILIES[family]
    for name in ("fwd", "dkdv", "dq"):
        configs = fam.configs(name, False)
        tuned, meta = gpu._kernel_and_meta(name, False, fam, 64)
        if len(configs) == 1:  # nothing to tune: the one config is launched directly
            assert tuned is gpu._KERNELS[name] and meta["BLOCK_M"] == configs[0].block_m
            continue
        assert meta == {} and len(tuned.configs) == len(configs)
        for d in (64, 128):
            kept = tuned.early_config_prune(tuned.configs, {}, HEAD_DIM=d)
            want = [c for c in configs if d <= c.max_head_dim]
            assert [(t.kwargs["BLOCK_M"], t.kwargs["BLOCK_N"], t.num_warps, t.num_stages) for t in kept] == [
                (c.block_m, c.block_n, c.num_warps, c.num_stages) for c in want
            ], (family, name, d)


# Compiles the forward kernel for a GPU that need not be here (Triton's own compiler and ptxas, no driver), in a
# fresh process: the tests' process runs the kernels in the interpreter, which cannot compile them.
_COMPILE_FOR = """
import json, sys
import triton
from triton.backends.compiler import GPUTarget
from triton.compiler import ASTSource
from course_utils import gpu

kernel = gpu._attn_fwd
pointer = {"t_lse": "*fp32"}
signature = {
    name: pointer.get(name, "*bf16") if name.startswith("t_") else "i32" if name in ("N", "N_BUCKET")
    else "fp32" if name == "qk_scale" else "constexpr"
    for name in kernel.arg_names
}
constants = dict(HEAD_DIM=128, BLOCK_D=128, PAD_D=False, CAUSAL=False, BLOCK_M=128, BLOCK_N=128)
src = ASTSource(kernel, signature, {(kernel.arg_names.index(k),): v for k, v in constants.items()})
ptx = triton.compile(src, target=GPUTarget("cuda", int(sys.argv[1]), 32), options={"num_warps": 8}).asm["ptx"]
print(json.dumps({"wgmma": ptx.count("wgmma.mma_async"), "mma_sync": ptx.count("mma.sync")}))
"""


@needs_triton
@pytest.mark.parametrize("capability, hopper", [(90, True), (80, False)], ids=["sm_90", "sm_80"])
def test_tl_dot_compiles_to_each_gpus_matrix_instruction(capability, hopper):
    """Lesson 07's reading of the H200 run: on Hopper (sm_90) Triton turns the kernel's tl.dot into the warpgroup
    instruction wgmma; for Ampere (sm_80) into mma.sync, the instruction FlashAttention-2 uses on both."""
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    res = subprocess.run(
        [sys.executable, "-c", _COMPILE_FOR, str(capability)], capture_output=True, text=True, env=env, timeout=240
    )
    assert res.returncode == 0, res.stderr[-2000:]
    counts = json.loads(res.stdout.splitlines()[-1])
    if hopper:
        assert counts["wgmma"] > 0 and counts["mma_sync"] == 0, counts
    else:
        assert counts["wgmma"] == 0 and counts["mma_sync"] > 0, counts


# ---------------------------------------------------------------------------------------------------------
# GPU: flash-attention's accuracy rule, bf16, determinism, memory
# ---------------------------------------------------------------------------------------------------------


def _naive(q, k, v, causal):
    """Plain PyTorch attention, every step in the inputs' dtype (the rule's baseline; the course's reference now
    computes half-precision scores in float32, so it is no longer "plain")."""
    from course_utils.attention import _masked_softmax, causal_mask

    scores = (q @ k.transpose(-2, -1)) / math.sqrt(q.shape[-1])  # (B, H, N, d) @ (B, H, d, N) -> (B, H, N, N)
    if causal:
        scores = scores.masked_fill(~causal_mask(q.shape[-2], k.shape[-2], device=q.device), float("-inf"))
    return _masked_softmax(scores) @ v  # (B, H, N, N) @ (B, H, N, d) -> (B, H, N, d)


# Each (dtype, d, causal, N's divisibility) is a separate compile: a short list keeps the GPU run in minutes.
GPU_SHAPES = [(2, 4, 1, 64), (2, 4, 97, 40), (1, 2, 1025, 128), (1, 16, 1024, 64)]
GPU_CASES = [(dt, shape, c) for dt in (torch.float16, torch.bfloat16) for shape in GPU_SHAPES for c in (False, True)]
GPU_CASES += [(torch.float32, (2, 4, 97, 40), True), (torch.bfloat16, (1, 4, 1000, 16), False)]


@pytest.mark.gpu
@needs_cuda
@pytest.mark.parametrize(
    "dtype, shape, causal", GPU_CASES, ids=[f"{str(d)[6:]}-{'x'.join(map(str, s))}-{'causal' if c else 'full'}"
                                             for d, s, c in GPU_CASES]
)
def test_gpu_error_at_most_twice_pytorchs(shape, causal, dtype):
    q, k, v = _inputs(shape, dtype, device="cuda", seed=sum(shape))
    do = torch.randn_like(q)
    with _no_tf32():
        ours = _run(_flash, q, k, v, do, causal)
    _assert_at_most_twice_pytorchs_error(ours, q, k, v, do, causal)


def _assert_at_most_twice_pytorchs_error(ours, q, k, v, do, causal):
    """Flash-attention's rule for ours = (out, dq, dk, dv) at (q, k, v, do): each error vs an fp32 reference is at
    most twice the error of plain PyTorch in the inputs' dtype (plus a floor, where both are exact to rounding)."""
    with _no_tf32():
        exact = _run(_ref, q.float(), k.float(), v.float(), do.float(), causal)
        plain = _run(_naive, q, k, v, do, causal)
    floor = 1e-5 if q.dtype == torch.float32 else 1e-4
    for name, a, b, c in zip(("out", "dq", "dk", "dv"), ours, plain, exact):
        err_ours = (a.float() - c).abs().max().item()
        err_plain = (b.float() - c).abs().max().item()
        assert err_ours <= 2 * err_plain + floor, f"{name}: ours {err_ours:.2e}, PyTorch {err_plain:.2e}"


class _no_tf32:
    """fp32 matmuls in full precision while the fp32 reference is computed."""

    def __enter__(self):
        self.saved = torch.backends.cuda.matmul.allow_tf32
        torch.backends.cuda.matmul.allow_tf32 = False

    def __exit__(self, *exc):
        torch.backends.cuda.matmul.allow_tf32 = self.saved


@pytest.mark.gpu
@needs_cuda
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16], ids=["fp16", "bf16"])
def test_gpu_deterministic(dtype):
    q, k, v = _inputs((2, 4, 1000, 64), dtype, device="cuda")
    do = torch.randn_like(q)
    first = _run(_flash, q, k, v, do, True)
    for _ in range(5):
        assert all(torch.equal(a, b) for a, b in zip(first, _run(_flash, q, k, v, do, True)))


@pytest.mark.gpu
@needs_cuda
def test_gpu_auto_picks_triton_on_a_capable_gpu():
    q, k, v = _inputs((1, 2, 128, 64), torch.float16, device="cuda")
    choice = gpu.choose_backend(torch.cuda.get_device_capability(), torch.float16, 64)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = gpu.attention(q, k, v)
    fell_back = [w for w in caught if str(w.message).startswith("course_utils.gpu.attention")]
    assert (choice.backend == "triton") == (not fell_back)
    assert torch.allclose(out.float(), reference(q.float(), k.float(), v.float()), atol=2e-3, rtol=0)


def _peak_extra_bytes(fn) -> int:
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    base = torch.cuda.memory_allocated()
    fn()
    torch.cuda.synchronize()
    return torch.cuda.max_memory_allocated() - base


@pytest.mark.gpu
@needs_cuda
def test_gpu_peak_extra_memory_is_linear_in_n():
    """Forward and backward at N = 32k: extra memory is a few (B, H, N, d) tensors, nothing like N x N."""
    B, H, d = 1, 4, 64
    peaks = {}
    for n in (8192, 32768):
        q, k, v = (t.requires_grad_() for t in _inputs((B, H, n, d), torch.float16, device="cuda"))
        do = torch.randn_like(q)
        qkv_bytes = q.numel() * q.element_size()  # one (B, H, N, d) tensor

        def step(q=q, k=k, v=v, do=do):
            gpu.flash_attention(q, k, v, causal=True).backward(do)

        step()  # autotune and compile outside the measurement
        q.grad = k.grad = v.grad = None
        peaks[n] = _peak_extra_bytes(step)
        assert peaks[n] <= 8 * qkv_bytes, f"N={n}: {peaks[n] / 2**20:.0f} MiB extra"
    assert peaks[32768] * 100 < B * H * 32768**2 * 2  # at N = 32k one fp16 score matrix is over 100x more
    assert peaks[32768] <= 4 * peaks[8192] * 1.1  # 4x the tokens, about 4x the memory (N^2 would be 16x)


@pytest.mark.gpu
@needs_cuda
def test_gpu_very_long_sequence_runs():
    """N = 131,072 (B=1, H=8, d=64), forward and backward, finite results."""
    q, k, v = (t.requires_grad_() for t in _inputs((1, 8, 131072, 64), torch.bfloat16, device="cuda"))
    out = gpu.flash_attention(q, k, v, causal=True)
    out.backward(torch.ones_like(out))
    assert torch.isfinite(out).all() and torch.isfinite(q.grad).all()


def _bench_cases():
    from course_utils.bench import GPU_SWEEP

    return GPU_SWEEP.cases()


@pytest.mark.gpu
@needs_cuda
@pytest.mark.parametrize("case", _bench_cases(), ids=lambda c: f"{c.dtype}-d{c.head_dim}-N{c.n}-{'causal' if c.causal else 'full'}")
def test_gpu_bench_shapes_error_at_most_twice_pytorchs(case):
    """Every cell of the benchmark (B*N = 16k tokens, H*d = 2048): the kernel runs on the full tensors, and
    flash-attention's rule is checked on the first batch and two heads (heads are independent, so their outputs and
    gradients are those of the slice alone)."""
    dtype = getattr(torch, case.dtype)
    shape = (case.batch, case.heads, case.n, case.head_dim)
    q, k, v = _inputs(shape, dtype, device="cuda", seed=case.n + case.head_dim)
    do = torch.randn_like(q)
    ours = _run(_flash, q, k, v, do, case.causal)
    sl = (slice(0, 1), slice(0, 2))
    _assert_at_most_twice_pytorchs_error([t[sl] for t in ours], q[sl], k[sl], v[sl], do[sl], case.causal)


@needs_interpreter
@pytest.mark.parametrize("seed", [10, 16, 20])
def test_interpreter_backward_masks_padded_keys_before_the_exponent(seed):
    """fp16, N=1, d=16, q x5, k x3: padded keys gave exp(-LSE) before the mask, 'overflow encountered in cast'."""
    g = torch.Generator().manual_seed(seed)
    q, k, v = ((torch.randn(1, 1, 1, 16, generator=g) * s).half().requires_grad_() for s in (5, 3, 1))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # any overflow warning from the interpreter's numpy fails the test
        gpu.flash_attention(q, k, v).float().sum().backward()
    expected = [t.detach().double().requires_grad_() for t in (q, k, v)]
    torch.nn.functional.scaled_dot_product_attention(*expected).sum().backward()
    for got, ref in zip((q, k, v), expected):
        assert torch.isfinite(got.grad).all()
        torch.testing.assert_close(got.grad.double(), ref.grad, atol=2e-2, rtol=2e-2)
