"""The delayed-copy task of lesson 01: the label at position t is the token at t - delay.

A model that sees only a window of w tokens around t cannot solve it when the window does not reach
back `delay` positions: its accuracy stays at chance, 1 / vocab_size.
"""

from __future__ import annotations

import torch

from .._validate import check_int, check_positive_int

__all__ = ["delayed_copy_batch"]


def delayed_copy_batch(
    batch_size: int, generator: torch.Generator, length: int = 16, delay: int = 4, vocab_size: int = 4
) -> tuple[torch.Tensor, torch.Tensor]:
    """x (B, N) random token ids; y (B, N) with y[:, t] = x[:, t - delay] and -100 (ignored) for t < delay."""
    batch_size, length = check_positive_int(batch_size, "batch_size"), check_positive_int(length, "length")
    vocab_size = check_positive_int(vocab_size, "vocab_size")
    delay = check_int(delay, "delay", minimum=0, maximum=length - 1)
    x = torch.randint(vocab_size, (batch_size, length), generator=generator)
    y = torch.full_like(x, -100)
    y[:, delay:] = x[:, : length - delay]
    return x, y
