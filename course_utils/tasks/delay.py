"""The delayed-copy task of lesson 01: the label at position t is the token at t - delay.

A model that sees only a window of w tokens around t cannot solve it when the window does not reach
back `delay` positions: its accuracy stays at chance, 1 / vocab_size.
"""

from __future__ import annotations

import torch

__all__ = ["delayed_copy_batch"]


def delayed_copy_batch(
    batch_size: int, generator: torch.Generator, length: int = 16, delay: int = 4, vocab_size: int = 4
) -> tuple[torch.Tensor, torch.Tensor]:
    """x (B, N) random token ids; y (B, N) with y[:, t] = x[:, t - delay] and -100 (ignored) for t < delay."""
    for name, value in (("batch_size", batch_size), ("length", length), ("vocab_size", vocab_size)):
        if not isinstance(value, int) or value <= 0:
            raise ValueError(f"{name} must be a positive int, got {value!r}")
    if not isinstance(delay, int) or not 0 <= delay < length:
        raise ValueError(f"delay must be an int in [0, length={length}), got {delay!r}")
    x = torch.randint(vocab_size, (batch_size, length), generator=generator)
    y = torch.full_like(x, -100)
    y[:, delay:] = x[:, : length - delay]
    return x, y
