"""A small training loop for the lessons' tiny models, with a progress bar on stderr.

Training output varies between machines, so lessons run it in `# NBVAL_IGNORE_OUTPUT` cells and assert
the result with a margin in the next cell.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn
from tqdm import tqdm

from ._validate import check_flag, check_int, check_number, check_positive_int, shape_of

__all__ = ["TrainConfig", "train_classifier", "accuracy", "count_parameters"]

Batch = tuple[torch.Tensor, torch.Tensor]


@dataclass(frozen=True)
class TrainConfig:
    steps: int = 300  # optimiser steps (each on one minibatch)
    batch_size: int = 64  # examples per step
    lr: float = 3e-3  # AdamW learning rate
    weight_decay: float = 0.0  # AdamW weight decay
    clip_grad: float | None = 1.0  # gradient-norm clipping; None disables it
    seed: int = 0  # seeds the minibatch sampler (model init is the caller's)
    progress: bool = True  # show a tqdm bar on stderr

    def __post_init__(self):
        check_positive_int(self.steps, "steps")
        check_positive_int(self.batch_size, "batch_size")
        check_number(self.lr, "lr")
        check_number(self.weight_decay, "weight_decay", positive=False, minimum=0.0)
        if self.clip_grad is not None:
            check_number(self.clip_grad, "clip_grad")
        check_int(self.seed, "seed", minimum=0)
        check_flag(self.progress, "progress")


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def _loss(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Cross-entropy on logits (B, C) with y (B,), or per token on (B, N, C) with y (B, N); -100 is ignored."""
    if logits.ndim == y.ndim + 1 and logits.shape[:-1] == y.shape:
        return nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1), ignore_index=-100)
    raise ValueError(f"logits {shape_of(logits)} and targets {shape_of(y)} must be (B, C) & (B,) or (B, N, C) & (B, N)")


def _sampler(data, batch_size: int, generator: torch.Generator) -> Callable[[], Batch]:
    if callable(data):
        return lambda: data(batch_size, generator)
    x, y = data
    if len(x) != len(y) or len(x) == 0:
        raise ValueError(f"data must be (x, y) with the same non-zero length, got x {shape_of(x)}, y {shape_of(y)}")
    return lambda: (lambda idx: (x[idx], y[idx]))(torch.randint(len(x), (batch_size,), generator=generator))


def train_classifier(
    model: nn.Module,
    data,
    config: TrainConfig = TrainConfig(),
    device: torch.device | str | None = None,
    desc: str = "training",
) -> list[float]:
    """Train `model` with AdamW and cross-entropy; returns the loss of every step.

    `data` is either a pair of tensors (x, y) sampled with replacement, or a function
    `make_batch(batch_size, generator) -> (x, y)` that generates fresh examples.
    """
    if not isinstance(config, TrainConfig):
        raise TypeError(f"config must be a TrainConfig, got {type(config).__name__}")
    device = torch.device(device) if device is not None else next(model.parameters()).device
    model.to(device).train()
    generator = torch.Generator().manual_seed(config.seed)
    next_batch = _sampler(data, config.batch_size, generator)
    optimiser = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    losses = []
    bar = tqdm(range(config.steps), desc=desc, disable=not config.progress, mininterval=0.5)
    for _ in bar:
        x, y = next_batch()
        loss = _loss(model(x.to(device)), y.to(device))
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        if config.clip_grad is not None:
            nn.utils.clip_grad_norm_(model.parameters(), config.clip_grad)
        optimiser.step()
        losses.append(loss.item())
        if len(losses) % 25 == 0:
            bar.set_postfix(loss=f"{sum(losses[-25:]) / 25:.3f}", refresh=False)
    model.eval()
    return losses


@torch.no_grad()
def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 1024) -> float:
    """Fraction of correct argmax predictions (per example, or per token where y is (B, N); -100 ignored)."""
    batch_size = check_positive_int(batch_size, "batch_size")
    if len(x) != len(y):
        raise ValueError(f"x and y must have the same length, got x {shape_of(x)}, y {shape_of(y)}")
    model.eval()
    device = next(model.parameters()).device
    correct, total = 0, 0.0
    for start in range(0, len(x), batch_size):
        xb, yb = x[start : start + batch_size].to(device), y[start : start + batch_size].to(device)
        pred = model(xb).argmax(dim=-1)
        keep = yb != -100
        correct += (pred[keep] == yb[keep]).sum().item()
        total += keep.sum().item()
    if total == 0:
        raise ValueError("y holds no labelled example (all -100 or empty)")
    return correct / total
