"""Compile the flash-attention kernels for GPUs that need not be here and report what each compile uses.

    python tests/kernel_compile.py fast|full      one JSON line per (kernel, config, architecture, dtype, d, causal)

Run by tests/test_gpu_compile.py in a separate process (that process runs the kernels in Triton's interpreter, which
cannot compile them). Each compile gets the attributes a real launch passes: every pointer and N divisible by 16
(torch's allocations are; N_BUCKET is never specialised), so Triton pipelines the loads with cp.async / TMA as on
the GPU. Registers, stack and local memory (where spills go) come from `cuobjdump -res-usage` on the cubin, shared
memory from the compiled kernel's metadata plus the cubin's static shared memory.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.pop("TRITON_INTERPRET", None)  # before course_utils.gpu defines its kernels

import triton  # noqa: E402
from triton.backends.compiler import GPUTarget  # noqa: E402
from triton.compiler import ASTSource  # noqa: E402

from course_utils import gpu  # noqa: E402

POINTER = {"fp16": "*fp16", "bf16": "*bf16", "fp32": "*fp32"}
STATS = ("t_lse", "t_delta")  # fp32 whatever the inputs' dtype


def cuobjdump() -> str | None:
    """Triton's own cuobjdump (shipped with its NVIDIA backend), else one on PATH."""
    bundled = Path(triton.__file__).parent / "backends" / "nvidia" / "bin" / "cuobjdump"
    if bundled.exists():
        return str(bundled)
    from shutil import which

    return which("cuobjdump")


def compile_one(name: str, config: gpu.BlockConfig, cc: int, dtype: str, d: int, causal: bool) -> dict:
    kernel = gpu._KERNELS[name]
    signature, attrs = {}, {}
    for i, arg in enumerate(kernel.arg_names):
        if arg.startswith("t_"):
            signature[arg] = "*fp32" if arg in STATS else POINTER[dtype]
            attrs[(i,)] = [["tt.divisibility", 16]]
        elif arg == "N":
            signature[arg] = "i32"
            attrs[(i,)] = [["tt.divisibility", 16]]
        elif arg == "N_BUCKET":
            signature[arg] = "i32"
        elif arg in ("qk_scale", "sm_scale"):
            signature[arg] = "fp32"
        else:
            signature[arg] = "constexpr"
    block_d = max(16, triton.next_power_of_2(d))
    constants = dict(HEAD_DIM=d, BLOCK_D=block_d, PAD_D=block_d != d, CAUSAL=causal,
                     BLOCK_M=config.block_m, BLOCK_N=config.block_n)
    src = ASTSource(kernel, signature, {(kernel.arg_names.index(k),): v for k, v in constants.items()}, attrs)
    t0 = time.perf_counter()
    compiled = triton.compile(src, target=GPUTarget("cuda", cc, 32),
                              options={"num_warps": config.num_warps, "num_stages": config.num_stages})
    seconds = time.perf_counter() - t0
    usage = {"REG": 0, "STACK": 0, "SHARED": 0, "LOCAL": 0}
    tool = cuobjdump()
    if tool is not None:
        with tempfile.NamedTemporaryFile(suffix=".cubin") as f:
            f.write(compiled.asm["cubin"])
            f.flush()
            out = subprocess.run([tool, "-res-usage", f.name], capture_output=True, text=True, check=True).stdout
        for key in usage:  # the largest over the cubin's functions
            usage[key] = max([int(v) for v in re.findall(rf"\b{key}:(\d+)", out)] or [0])
    return {
        "kernel": name, "config": [config.block_m, config.block_n, config.num_warps, config.num_stages],
        "cc": cc, "dtype": dtype, "d": d, "causal": causal,
        "shared": compiled.metadata.shared + usage["SHARED"], "registers": usage["REG"],
        "stack": usage["STACK"], "local": usage["LOCAL"], "res_usage": tool is not None,
        "seconds": round(seconds, 2),
    }


def cases(full: bool) -> list[tuple]:
    """(family, kernel, config, cc, dtype, d, causal): `fast` compiles each (kernel, config, architecture) once at
    the config's largest head dim; `full` every dtype, head dim up to it (padded ones too) and causal."""
    out = []
    for family in gpu.GPU_FAMILIES.values():
        for cc in family.targets:
            for name in ("fwd", "dkdv", "dq"):
                for fp32 in (False, True):
                    for config in family.configs(name, fp32):
                        if not full:
                            out.append((family.name, name, config, cc, "fp32" if fp32 else "fp16",
                                        config.max_head_dim, True))
                            continue
                        for dtype in ("fp32",) if fp32 else ("fp16", "bf16"):
                            for d in (16, 40, 64, 96, 128):
                                if d <= config.max_head_dim:
                                    out += [(family.name, name, config, cc, dtype, d, c) for c in (False, True)]
    return out


def main(argv: list[str]) -> int:
    todo = cases(full=argv[:1] == ["full"])
    t0 = time.perf_counter()
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:  # ptxas runs as a subprocess: overlaps
        results = pool.map(lambda case: (case[0], compile_one(*case[1:])), todo)
        for family, result in results:
            print(json.dumps({"family": family, **result}), flush=True)
    print(json.dumps({"total_seconds": round(time.perf_counter() - t0, 1), "compiles": len(todo),
                      "triton": triton.__version__}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
