"""Lesson 05's task with two kinds of relevance: each token has a colour and a shape.

A sequence of N tokens (N even). The colours come in pairs: each colour used appears on exactly two tokens,
its *colour partners*; the shapes come in pairs too, on a different pairing (no token has the same partner
for both). The target of token i needs both relations at once:

    y_i = (shape of i's colour partner) * n_colours + (colour of i's shape partner)

so one head can look up the colour partner, another the shape partner. A token is a vector with two
attributes: the one-hot colour followed by the one-hot shape, shape (n_colours + n_shapes,). `partners`
returns both pairings, so a lesson measures how much of each head's attention lands on each relation.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .._validate import check_positive_int

__all__ = ["TwoRelations", "two_relations", "RELATIONS", "two_head_model", "train_two_heads", "relation_mass"]

RELATIONS = ("colour", "shape")


def _pairing(rng: np.random.Generator, n: int) -> np.ndarray:
    """partner[i] for a random perfect matching of 0..n-1."""
    order = rng.permutation(n)
    partner = np.empty(n, dtype=np.int64)
    partner[order[0::2]] = order[1::2]
    partner[order[1::2]] = order[0::2]
    return partner


def two_relations(
    batch_size: int,
    length: int = 8,
    n_colours: int = 8,
    n_shapes: int = 8,
    seed: int | None = None,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """x (B, N, n_colours + n_shapes) one-hot attributes, y (B, N) targets in [0, n_shapes * n_colours),
    partners (B, 2, N): [colour partner, shape partner] of each token."""
    for name, value in (
        ("batch_size", batch_size),
        ("length", length),
        ("n_colours", n_colours),
        ("n_shapes", n_shapes),
    ):
        check_positive_int(value, name)
    if length < 4 or length % 2:
        raise ValueError(f"length must be even and >= 4 (tokens come in pairs, two pairings), got {length}")
    if 2 * n_colours < length or 2 * n_shapes < length:
        raise ValueError(f"need n_colours, n_shapes >= length / 2 = {length // 2}, got {n_colours}, {n_shapes}")
    if seed is None:  # draw the NumPy seed from the torch generator, so train_classifier's seeding applies
        seed = int(torch.randint(0, 2**62, (1,), generator=generator))
    rng = np.random.default_rng(seed)
    half = length // 2
    x = np.zeros((batch_size, length, n_colours + n_shapes), dtype=np.float32)
    y = np.empty((batch_size, length), dtype=np.int64)
    partners = np.empty((batch_size, 2, length), dtype=np.int64)
    for b in range(batch_size):
        colour_partner = _pairing(rng, length)
        shape_partner = _pairing(rng, length)
        while np.any(shape_partner == colour_partner):  # two different relations for every token
            shape_partner = _pairing(rng, length)
        colour = np.empty(length, dtype=np.int64)
        shape = np.empty(length, dtype=np.int64)
        firsts = np.flatnonzero(np.arange(length) < colour_partner)  # one token of each colour pair
        colour[firsts] = rng.choice(n_colours, half, replace=False)
        colour[colour_partner[firsts]] = colour[firsts]
        firsts = np.flatnonzero(np.arange(length) < shape_partner)
        shape[firsts] = rng.choice(n_shapes, half, replace=False)
        shape[shape_partner[firsts]] = shape[firsts]
        x[b, np.arange(length), colour] = 1.0  # one-hot colour in the first n_colours entries
        x[b, np.arange(length), n_colours + shape] = 1.0  # one-hot shape after it
        y[b] = shape[colour_partner] * n_colours + colour[shape_partner]
        partners[b, 0], partners[b, 1] = colour_partner, shape_partner
    return torch.from_numpy(x), torch.from_numpy(y), torch.from_numpy(partners)


@dataclass(frozen=True)
class TwoRelations:
    """A batch maker for `training.train_classifier`: `task(batch_size, generator) -> (x, y)`."""

    length: int = 8  # tokens per sequence (even: colours and shapes come in pairs)
    n_colours: int = 8  # colours available (each sequence uses length / 2 of them)
    n_shapes: int = 8  # shapes available

    @property
    def d_in(self) -> int:
        """Width of a token vector: one-hot colour then one-hot shape."""
        return self.n_colours + self.n_shapes

    @property
    def n_classes(self) -> int:
        """Targets 0 .. n_shapes * n_colours - 1."""
        return self.n_shapes * self.n_colours

    def __call__(self, batch_size: int, generator: torch.Generator | None = None):
        x, y, _ = two_relations(batch_size, self.length, self.n_colours, self.n_shapes, generator=generator)
        return x, y

    def sample(self, batch_size: int, seed: int):
        """A fixed evaluation set: x, y, partners (B, 2, N)."""
        return two_relations(batch_size, self.length, self.n_colours, self.n_shapes, seed=seed)


def two_head_model(task: TwoRelations, seed: int = 0, d_model: int = 32, num_heads: int = 2):
    """Linear embedding -> one `models.Block` with `MultiHeadSelfAttention` -> a classifier per token."""
    from ..attention import MultiHeadSelfAttention
    from ..models import Block, Encoder

    torch.manual_seed(seed)
    blocks = [Block(d_model, MultiHeadSelfAttention(d_model, num_heads))]
    return Encoder(torch.nn.Linear(task.d_in, d_model), blocks, d_model, task.n_classes, pool="none")


def train_two_heads(
    task: TwoRelations = TwoRelations(), seed: int = 0, steps: int = 150, lr: float = 1e-2, progress: bool = True
):
    """`two_head_model(task, seed)` trained on fresh batches of 64 (lesson 05's settings); returns the model."""
    from ..training import TrainConfig, train_classifier

    model = two_head_model(task, seed=seed)
    config = TrainConfig(steps=steps, batch_size=64, lr=lr, seed=seed, progress=progress)
    train_classifier(model, task, config, desc="two heads")
    return model


@torch.no_grad()
def relation_mass(model, x: torch.Tensor, partners: torch.Tensor) -> torch.Tensor:
    """(H, 2): the mean attention weight each head of the first block puts on each relation's partner."""
    if partners.ndim != 3 or partners.shape[1] != 2 or partners.shape[0] != x.shape[0]:
        raise ValueError(f"partners must have shape (B, 2, N) matching x's B, got {tuple(partners.shape)}")
    weights = model.attention_maps(x)[0]  # (B, H, N, N)
    H = weights.shape[1]
    idx = partners[:, None, :, :, None].expand(-1, H, -1, -1, -1)  # (B, H, 2, N, 1)
    on_partner = weights[:, :, None].expand(-1, -1, 2, -1, -1).gather(-1, idx)[..., 0]  # (B, H, 2, N)
    return on_partner.mean(dim=(0, 3))  # (H, 2)
