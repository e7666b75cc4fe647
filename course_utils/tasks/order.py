"""Lesson 06's task that needs order: for every token, is it left or right of the marker?

A sequence of N tokens holds one marker (token id 0) at a random position and random filler tokens
(ids 1 .. vocab_size-1). Each filler's label is 0 when it lies left of the marker and 1 when it lies right;
the marker's own label is -100 (ignored). The multiset of tokens says nothing about the answer, so a model
without position information can only guess: its accuracy stays near 1/2 (chance).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .._validate import check_generator, check_int, check_positive_int

__all__ = ["MARKER", "SideOfMarker", "side_of_marker", "OrderExperiment", "train_order_model", "order_accuracy"]

MARKER = 0  # the marker's token id


def _check(length: int, vocab_size: int) -> None:
    check_int(length, "length (a marker and at least one filler)", minimum=2)
    check_int(vocab_size, "vocab_size (the marker and at least one filler)", minimum=2)


def side_of_marker(
    batch_size: int, length: int, vocab_size: int = 16, generator: torch.Generator | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """x (B, N) token ids with one marker per row; y (B, N): 0 left of it, 1 right of it, -100 at the marker."""
    _check(length, vocab_size)
    batch_size = check_positive_int(batch_size, "batch_size")
    check_generator(generator)
    x = torch.randint(1, vocab_size, (batch_size, length), generator=generator)  # (B, N) fillers
    where = torch.randint(0, length, (batch_size,), generator=generator)  # (B,) marker positions
    rows = torch.arange(batch_size)
    x[rows, where] = MARKER
    pos = torch.arange(length)[None, :]  # (1, N)
    y = (pos > where[:, None]).long()  # (B, N): 1 right of the marker
    y[rows, where] = -100
    return x, y


@dataclass(frozen=True)
class SideOfMarker:
    """A batch maker for `training.train_classifier`: `task(batch_size, generator) -> (x, y)`."""

    length: int = 12  # tokens per sequence (the training length)
    vocab_size: int = 16  # the marker plus vocab_size - 1 filler tokens

    def __post_init__(self):
        _check(self.length, self.vocab_size)

    def __call__(self, batch_size: int, generator: torch.Generator | None = None):
        return side_of_marker(batch_size, self.length, self.vocab_size, generator)


@dataclass(frozen=True)
class OrderExperiment:
    """Lesson 06's comparison: one tiny transformer per position encoding, everything else equal."""

    length: int = 12  # training length N
    vocab_size: int = 16  # the marker plus 15 filler tokens
    d_model: int = 32  # model width D
    num_heads: int = 4  # heads (ALiBi's split mode: 2 look left, 2 look right)
    max_len: int = 48  # the learned table's length: the longest test length
    steps: int = 100  # optimiser steps
    batch_size: int = 64  # sequences per step
    lr: float = 1e-2  # AdamW learning rate


def train_order_model(
    encoding: str, seed: int = 0, experiment: OrderExperiment = OrderExperiment(), progress: bool = True
):
    """A `positional.make_encoder(encoding, ...)` trained on `side_of_marker` at the experiment's length."""
    from ..positional import make_encoder
    from ..training import TrainConfig, train_classifier

    e = experiment
    torch.manual_seed(seed)
    model = make_encoder(encoding, e.vocab_size, 2, d_model=e.d_model, num_heads=e.num_heads, max_len=e.max_len)
    config = TrainConfig(steps=e.steps, batch_size=e.batch_size, lr=e.lr, seed=seed, progress=progress)
    train_classifier(model, SideOfMarker(e.length, e.vocab_size), config, desc=encoding)
    return model


def order_accuracy(model, length: int, vocab_size: int = 16, n: int = 512, seed: int = 99) -> float:
    """Accuracy of `model` on n fresh `side_of_marker` sequences of the given length (chance: 0.5)."""
    from ..training import accuracy

    x, y = side_of_marker(n, length, vocab_size, torch.Generator().manual_seed(seed))
    return accuracy(model, x, y)
