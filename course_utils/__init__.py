"""course_utils: the shared package of the course "Self-attention, step by step".

Shape legend (PyTorch, row convention):
    B  batch size            N  tokens (N_q, N_k when queries and keys differ)
    H  heads                 d  head dimension           D = H * d  model width
    per-head tensors are (B, H, N, d), as in torch.nn.functional.scaled_dot_product_attention.
The NumPy reference (`reference`) keeps the lecture's column convention instead: I is (d_in, N).

Modules follow the syllabus: runtime, data (lesson 01), reference (02-05, 07), attention (04-05),
positional (06), gpu and flash_teaching (07; never imported here: TRITON_INTERPRET must be set before they
load), efficient (09, 11), language (12: the Shakespeare text and the character-level model), plotting,
training, tasks, exercises. They load on first use, so `import course_utils` stays light.
"""

from __future__ import annotations

import importlib
from pathlib import Path

__version__ = "0.1.0"

_SUBMODULES = sorted(
    p.stem for p in Path(__file__).parent.iterdir() if p.suffix == ".py" and not p.stem.startswith("_")
) + ["exercises", "tasks"]
_NOT_LAZY = {"gpu", "bench", "flash_teaching"}  # kernel modules: imported explicitly, after TRITON_INTERPRET is set

__all__ = sorted(set(_SUBMODULES) - _NOT_LAZY)


def __getattr__(name: str):
    if name in _SUBMODULES and name not in _NOT_LAZY:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module 'course_utils' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))
