"""Every GPU family's block configs fit its shared memory and spill no register: checked by compiling on the CPU.

tests/kernel_compile.py compiles each (kernel, config, architecture) for sm_80, sm_86, sm_89 and sm_90 with the
attributes a real launch passes, in one separate process (this one runs the kernels in Triton's interpreter). The
fast run compiles each config once, at the largest head dim it serves; the full matrix (every dtype, head dim and
causal flag) is marked slow.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from course_utils import gpu

HERE = Path(__file__).resolve().parent
needs_triton = pytest.mark.skipif(not gpu.TRITON_AVAILABLE and os.environ.get("CI") != "true",
                                  reason=f"needs Triton to compile: {gpu.TRITON_PROBLEM}")


def _compile(mode: str, tmp_path: Path) -> tuple[list[dict], dict]:
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    env["TRITON_CACHE_DIR"] = str(tmp_path / "triton-cache")  # a cold cache: the time CI pays
    res = subprocess.run([sys.executable, str(HERE / "kernel_compile.py"), mode], capture_output=True, text=True,
                         env=env, timeout=3600)
    assert res.returncode == 0, res.stderr[-3000:]
    rows = [json.loads(line) for line in res.stdout.splitlines() if line.startswith("{")]
    return rows[:-1], rows[-1]


def _check(rows: list[dict]) -> None:
    assert rows and all(r["res_usage"] for r in rows), "cuobjdump was not found: spills cannot be read"
    limits = {f.name: f.shared_memory for f in gpu.GPU_FAMILIES.values()}
    too_big = [r for r in rows if r["shared"] > limits[r["family"]]]
    spills = [r for r in rows if r["stack"] or r["local"]]
    assert not too_big, "configs over their family's shared memory:\n" + "\n".join(map(json.dumps, too_big))
    assert not spills, "configs that spill registers (stack or local memory):\n" + "\n".join(map(json.dumps, spills))


@needs_triton
def test_every_config_fits_and_does_not_spill_at_its_largest_head_dim(tmp_path):
    rows, total = _compile("fast", tmp_path)
    targets = {cc for f in gpu.GPU_FAMILIES.values() for cc in f.targets}
    assert targets == {80, 86, 89, 90} and {r["cc"] for r in rows} == targets
    want = sum(len(f.configs(k, fp32)) * len(f.targets) for f in gpu.GPU_FAMILIES.values()
               for k in ("fwd", "dkdv", "dq") for fp32 in (False, True))
    assert len(rows) == want == total["compiles"]
    _check(rows)
    print(f"{total['compiles']} compiles in {total['total_seconds']} s (triton {total['triton']})")


@pytest.mark.slow
@needs_triton
def test_every_config_fits_and_does_not_spill_for_every_dtype_and_head_dim(tmp_path):
    rows, total = _compile("full", tmp_path)
    assert {r["dtype"] for r in rows} == {"fp16", "bf16", "fp32"} and len(rows) == total["compiles"]
    _check(rows)
