"""Runtime helpers for the lessons: which device, one call that seeds everything, Colab detection."""

from __future__ import annotations

import os
import platform
import random
import sys

import numpy as np
import torch

from ._validate import check_int

__all__ = ["device", "has_cuda", "in_colab", "seed_everything", "summary"]


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
