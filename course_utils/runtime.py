"""Runtime helpers for the lessons: which device, one call that seeds everything, Colab detection."""

from __future__ import annotations

import os
import platform
import random
import sys

import numpy as np
import torch

from ._validate import check_int

__all__ = ["device", "has_cuda", "in_colab", "seed_everything", "summary", "triton_problem", "TRITON_VERSIONS"]

TRITON_VERSIONS = ((3, 6), (3, 9))  # the `gpu` extra's range (the triton that torch 2.10 to 2.15 pin)


def triton_problem() -> str | None:
    """Why the installed Triton cannot run the course's kernels here (None when it can): missing, too old, or an
    interpreter that fails with this numpy. Read from the package's metadata: it imports nothing."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        found = version("triton")
    except PackageNotFoundError:
        return "Triton is not installed (pip install 'triton>=3.6'; Linux only)"
    release = tuple(int(p) for p in found.split("+")[0].split(".")[:2] if p.isdigit())
    if release < TRITON_VERSIONS[0]:
        return (
            f"Triton {found} is older than the kernels need (3.6 to 3.9): pip install 'triton>=3.6' "
            "(torch 2.10 or newer pins one)"
        )
    if os.environ.get("TRITON_INTERPRET", "0") not in ("", "0") and release < (3, 7):
        if tuple(int(p) for p in np.__version__.split(".")[:2]) >= (2, 4):
            return (
                f"Triton {found}'s interpreter fails with numpy {np.__version__} (loops with a tensor bound): "
                "pip install 'numpy<2.4' or 'triton>=3.7'"
            )
    return None


def has_cuda() -> bool:
    """True when a CUDA GPU is visible to torch."""
    return torch.cuda.is_available()


def device(prefer: str | None = None) -> torch.device:
    """The device lessons use: `prefer` if given, else CUDA, then Apple's MPS, then the CPU."""
    if prefer is not None:
        if prefer not in ("cuda", "mps", "cpu"):
            raise ValueError(f"prefer must be 'cuda', 'mps', 'cpu' or None, got {prefer!r}")
        return torch.device(prefer)
    if torch.cuda.is_available():
        return torch.device("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def in_colab() -> bool:
    """True inside Google Colab."""
    return "google.colab" in sys.modules or "COLAB_RELEASE_TAG" in os.environ


def seed_everything(seed: int = 0) -> None:
    """Seed Python's `random`, NumPy's global generator and torch (CPU and CUDA)."""
    seed = check_int(seed, "seed", minimum=0)
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # seeds CUDA too


def summary() -> str:
    """One line per fact a bug report needs: Python, NumPy, torch, threads, device, Colab."""
    dev = device()
    gpu = torch.cuda.get_device_name(0) if dev.type == "cuda" else "none"
    lines = [
        f"python     {platform.python_version()} ({platform.system()} {platform.machine()})",
        f"numpy      {np.__version__}",
        f"torch      {torch.__version__} ({torch.get_num_threads()} CPU threads)",
        f"device     {dev} (GPU: {gpu})",
        f"colab      {in_colab()}",
    ]
    return "\n".join(lines)
