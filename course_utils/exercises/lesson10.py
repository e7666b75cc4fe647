"""Checkers for lesson 10's exercises: a graph's attention mask from its edges, and masked graph attention."""

from __future__ import annotations

import math

import numpy as np
import torch

from ..attention import scaled_dot_product_attention
from .base import Exercise, Mistake

__all__ = ["mask_from_edges", "graph_attention", "check_mask_from_edges", "check_graph_attention"]


def mask_from_edges(edges: list[tuple[int, int]], n: int) -> torch.Tensor:
    """(n, n) bool attention mask of an undirected graph: True on both directions of each edge and on the diagonal."""
    mask = torch.eye(n, dtype=torch.bool)
    for i, j in edges:
        mask[i, j] = mask[j, i] = True
    return mask


def graph_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """softmax(q k^T / sqrt(d), only where mask is True) v: q, k (n, d), v (n, d_v), mask (n, n) -> (n, d_v)."""
    return scaled_dot_product_attention(q, k, v, attn_mask=mask)


def _edge_cases(rng: np.random.Generator) -> list[tuple]:
    cases = []
    for n in (4, 6, 9):
        pairs = [(int(i), int(j)) for i in range(n) for j in range(i + 1, n)]
        keep = rng.choice(len(pairs), size=n, replace=False)
        cases.append(([pairs[p] if rng.random() < 0.5 else pairs[p][::-1] for p in keep], n))
    return cases


def _one_direction(edges, n):
    mask = torch.eye(n, dtype=torch.bool)
    for i, j in edges:
        mask[i, j] = True
    return mask


MASK_FROM_EDGES = Exercise(
    name="mask_from_edges",
    reference=mask_from_edges,
    cases=_edge_cases,
    mistakes=[
        Mistake(
            "no self-loops",
            lambda edges, n: mask_from_edges(edges, n) & ~torch.eye(n, dtype=torch.bool),
            "Each node must also attend to itself (the lecture's a^1 attends to a^1): set the diagonal to True. "
            "Without it a node's own vector never reaches its output, and a node with no edge gets a zero row.",
        ),
        Mistake(
            "wrong polarity (True where attention is forbidden)",
            lambda edges, n: ~mask_from_edges(edges, n),
            "The course's masks are True where a query MAY attend, like torch's SDPA "
            "(torch.nn.MultiheadAttention's boolean masks mean the opposite).",
        ),
        Mistake(
            "only one direction of each edge",
            _one_direction,
            "A friendship goes both ways: set mask[i, j] and mask[j, i].",
        ),
    ],
    hint="torch.eye(n, dtype=torch.bool), then for each (i, j) set mask[i, j] = mask[j, i] = True.",
)


def _attention_cases(rng: np.random.Generator) -> list[tuple]:
    cases = []
    for n, d, d_v in ((5, 4, 3), (8, 2, 2)):
        q, k, v = (torch.tensor(rng.normal(size=s), dtype=torch.float64) for s in ((n, d), (n, d), (n, d_v)))
        mask = torch.tensor(rng.random((n, n)) < 0.4)
        mask = mask | mask.T | torch.eye(n, dtype=torch.bool)
        ring = torch.arange(n)
        mask[ring, (ring + 1) % n] = mask[(ring + 1) % n, ring] = False  # no node sees all: ~mask has no empty row
        cases.append((q, k, v, mask))
    return cases


def _mask_after_softmax(q, k, v, mask):
    weights = torch.softmax(q @ k.T / math.sqrt(q.shape[-1]), dim=-1)  # (n, n) over every node
    return (weights * mask) @ v  # zeroed afterwards: the rows no longer sum to 1


GRAPH_ATTENTION = Exercise(
    name="graph_attention",
    reference=graph_attention,
    cases=_attention_cases,
    mistakes=[
        Mistake(
            "mask applied after the softmax",
            _mask_after_softmax,
            "Zeroing weights after the softmax leaves rows that no longer sum to 1. Set the forbidden scores "
            "to -inf BEFORE the softmax (scores.masked_fill(~mask, float('-inf'))).",
        ),
        Mistake(
            "wrong polarity (attending to the non-neighbours)",
            lambda q, k, v, mask: graph_attention(q, k, v, ~mask),
            "mask is True where attention is allowed: fill -inf where mask is False (~mask).",
        ),
        Mistake(
            "the mask is ignored (a complete graph)",
            lambda q, k, v, mask: graph_attention(q, k, v, None),
            "Every node attended to every node: apply the mask to the scores before the softmax.",
        ),
        Mistake(
            "missing the 1/sqrt(d) scale",
            lambda q, k, v, mask: scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=1.0),
            "Divide the scores q k^T by sqrt(d), d = q.shape[-1], as torch's SDPA does.",
        ),
    ],
    hint="scores = q @ k.T / sqrt(d); scores = scores.masked_fill(~mask, float('-inf')); softmax(dim=-1) @ v.",
)


def check_mask_from_edges(fn) -> bool:
    """Check mask_from_edges(edges, n) -> (n, n) bool: both directions, self-loops, True = may attend."""
    return MASK_FROM_EDGES.check(fn)


def check_graph_attention(fn) -> bool:
    """Check graph_attention(q, k, v, mask) -> (n, d_v): the mask applied to the scores before the softmax."""
    return GRAPH_ATTENTION.check(fn)
