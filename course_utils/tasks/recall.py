"""Associative recall (lesson 09): key-value pairs, then a query key; the answer is the query's value.

Each sequence holds `n_pairs` pair tokens and one query token, N = n_pairs + 1 vectors of size
d_in = n_keys + n_values + 1:

    pair token  [one-hot key | one-hot value | 0]     keys are distinct within a sequence
    query token [one-hot key |    zeros      | 1]     always last; its key is one of the sequence's keys

The label is the value paired with the query key (one of n_values classes; chance is 1 / n_values).
Self-attention solves it in one step (the query matches its key, reads the value); an RNN must carry
every pair in its state until the query arrives, which gets harder as the sequence grows.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from .._validate import check_generator, check_positive_int, shape_of

__all__ = ["RecallTask", "recall_batch", "decode_recall"]


def recall_batch(
    batch_size: int, n_pairs: int, n_keys: int, n_values: int, generator: torch.Generator | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """x (B, n_pairs + 1, n_keys + n_values + 1) float pair tokens then the query; y (B,) the query's value."""
    batch_size = check_positive_int(batch_size, "batch_size")
    n_pairs = check_positive_int(n_pairs, "n_pairs")
    n_keys = check_positive_int(n_keys, "n_keys")
    n_values = check_positive_int(n_values, "n_values")
    if n_pairs > n_keys:
        raise ValueError(f"n_pairs={n_pairs} must be <= n_keys={n_keys}: keys are distinct within a sequence")
    check_generator(generator)
    B, K = batch_size, n_pairs
    keys = torch.rand(B, n_keys, generator=generator).argsort(dim=1)[:, :K]  # (B, K) distinct keys per row
    values = torch.randint(n_values, (B, K), generator=generator)  # (B, K)
    asked = torch.randint(K, (B,), generator=generator)  # (B,) which pair the query asks for
    rows = torch.arange(B)
    x = torch.zeros(B, K + 1, n_keys + n_values + 1)  # (B, N, d_in)
    x[:, :K].scatter_(2, keys.unsqueeze(-1), 1.0)  # key one-hots of the pair tokens
    x[:, :K].scatter_(2, (n_keys + values).unsqueeze(-1), 1.0)  # value one-hots
    x[rows, K, keys[rows, asked]] = 1.0  # the query token's key
    x[:, K, -1] = 1.0  # the query flag
    return x, values[rows, asked]


def decode_recall(x: torch.Tensor, n_keys: int, n_values: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Read a batch back: keys (B, n_pairs), values (B, n_pairs), query key (B,); -1 where a slot is empty."""
    n_keys = check_positive_int(n_keys, "n_keys")
    n_values = check_positive_int(n_values, "n_values")
    if not isinstance(x, torch.Tensor) or x.ndim != 3 or x.shape[-1] != n_keys + n_values + 1 or x.shape[1] < 2:
        raise ValueError(f"x must have shape (B, n_pairs + 1, {n_keys + n_values + 1}), got {shape_of(x)}")

    def index(one_hot: torch.Tensor) -> torch.Tensor:
        return torch.where(one_hot.sum(-1) > 0, one_hot.argmax(-1), torch.full(one_hot.shape[:-1], -1))

    keys = index(x[:, :-1, :n_keys])  # (B, K)
    values = index(x[:, :-1, n_keys : n_keys + n_values])  # (B, K)
    query = index(x[:, -1, :n_keys])  # (B,)
    return keys, values, query


@dataclass(frozen=True)
class RecallTask:
    """The vocabulary of an associative-recall task; batches of any length come from `batch` or `sampler`."""

    n_keys: int = 16  # key vocabulary (keys in one sequence are distinct, so n_pairs <= n_keys)
    n_values: int = 4  # value vocabulary = number of classes (chance accuracy is 1 / n_values)

    def __post_init__(self):
        check_positive_int(self.n_keys, "n_keys")
        check_positive_int(self.n_values, "n_values")

    @property
    def d_in(self) -> int:
        """Size of each token vector: key one-hot, value one-hot, query flag."""
        return self.n_keys + self.n_values + 1

    def batch(
        self, batch_size: int, n_pairs: int, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """x (B, n_pairs + 1, d_in), y (B,): see `recall_batch`."""
        return recall_batch(batch_size, n_pairs, self.n_keys, self.n_values, generator)

    def sampler(self, lengths: Sequence[int]) -> Callable[[int, torch.Generator], tuple[torch.Tensor, torch.Tensor]]:
        """make_batch(batch_size, generator) for `train_classifier`: each batch draws its n_pairs from `lengths`."""
        lengths = tuple(check_positive_int(n, "lengths[i]") for n in lengths)
        if not lengths:
            raise ValueError("lengths must hold at least one number of pairs, got none")
        if max(lengths) > self.n_keys:
            raise ValueError(f"lengths must be <= n_keys={self.n_keys}, got {max(lengths)}")

        def make_batch(batch_size: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
            n_pairs = lengths[int(torch.randint(len(lengths), (1,), generator=generator))]
            return self.batch(batch_size, n_pairs, generator)

        return make_batch
