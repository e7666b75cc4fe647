"""Lesson 11's planted-token task: the label is a token planted `distance` positions after the query.

Each sequence holds N tokens: a query token `?` at position 0, one *signal* token at position `distance`
(its class, one of `n_classes`, is the label) and noise tokens everywhere else. A one-layer model that reads
its answer at the query (pool "first") must attend from position 0 to position `distance`:

- attention whose window is shorter than `distance` (local attention, window < distance) cannot see the
  signal: its accuracy stays at chance, 1 / n_classes, by design;
- exact attention sees every position and learns to find the signal.

Token ids: 0 is the query, 1 .. n_classes the signal classes, then n_noise noise tokens.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .._validate import check_generator, check_positive_int

__all__ = ["PlantedTask", "QUERY"]

QUERY = 0  # the id of the query token `?`


@dataclass(frozen=True)
class PlantedTask:
    seq_len: int = 64  # N, tokens per sequence (the query included)
    distance: int = 40  # the signal's position, counted from the query at position 0
    n_classes: int = 4  # signal classes = labels; chance accuracy is 1 / n_classes
    n_noise: int = 8  # distinct noise tokens

    def __post_init__(self):
        for name in ("seq_len", "distance", "n_classes", "n_noise"):
            check_positive_int(getattr(self, name), name)
        if self.distance >= self.seq_len:
            raise ValueError(f"distance must be in [1, seq_len={self.seq_len}), got {self.distance}")

    @property
    def vocab_size(self) -> int:
        """Token ids in [0, vocab_size): the query, the classes, the noise."""
        return 1 + self.n_classes + self.n_noise

    @property
    def chance(self) -> float:
        """The accuracy of guessing: 1 / n_classes."""
        return 1.0 / self.n_classes

    def batch(self, batch_size: int, generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """x (B, N) token ids, y (B,) labels in [0, n_classes); `train_classifier` calls it with its generator."""
        batch_size = check_positive_int(batch_size, "batch_size")
        check_generator(generator)
        first_noise = 1 + self.n_classes
        x = torch.randint(first_noise, self.vocab_size, (batch_size, self.seq_len), generator=generator)  # (B, N)
        y = torch.randint(self.n_classes, (batch_size,), generator=generator)  # (B,)
        x[:, 0] = QUERY
        x[:, self.distance] = 1 + y  # the planted signal
        return x, y

    def dataset(self, size: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
        """A fixed set of `size` examples (e.g. a test set), reproducible by `seed`."""
        return self.batch(size, torch.Generator().manual_seed(seed))
