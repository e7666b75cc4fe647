"""Checkers for lesson 10's exercises: how many masked layers a message needs to cross the graph, which nodes
reach which after L layers (a boolean mask), and masked graph attention with isolated nodes."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch

from ..attention import scaled_dot_product_attention
from .base import Exercise, Feedback, Lesson, Mistake, Prediction

__all__ = [
    "mask_from_edges",
    "reach_mask",
    "graph_attention",
    "check_layers",
    "check_reach_mask",
    "check_graph_attention",
    "LESSON",
    "hint",
    "solution",
]


def mask_from_edges(edges: list[tuple[int, int]], n: int) -> torch.Tensor:
    """(n, n) bool attention mask of an undirected graph: True on both directions of each edge and on the diagonal."""
    mask = torch.eye(n, dtype=torch.bool)
    for i, j in edges:
        mask[i, j] = mask[j, i] = True
    return mask


def reach_mask(edges: list[tuple[int, int]], n: int, layers: int) -> torch.Tensor:
    """(n, n) bool: True at [i, j] when node j's vector reaches node i's output through `layers` masked layers."""
    step = mask_from_edges(edges, n).to(torch.int64)  # (n, n): one layer, self-loops on
    reach = torch.eye(n, dtype=torch.int64)  # (n, n): no layer, each node only itself
    for _ in range(layers):
        reach = ((reach @ step) > 0).to(torch.int64)  # (n, n) @ (n, n) -> (n, n): one hop further
    return reach.bool()


def graph_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """softmax(q k^T / sqrt(d), only where mask is True) v: q, k (n, d), v (n, d_v), mask (n, n) -> (n, d_v).

    A fully masked row (an isolated node without a self-loop) gives a zero output, as the course's attention does.
    """
    return scaled_dot_product_attention(q, k, v, attn_mask=mask)


# 1. Predict: how many masked layers until node 4 reaches node 0? -----------------------------------------

LAYERS = Prediction(
    name="masked layers until a change at node 4 reaches node 0's output",
    kind="int",
    hints=(
        "A masked layer mixes each node's vector with its neighbours' only (every other weight is exactly 0). "
        "So how far can a change travel through one layer?",
        "One layer carries a change one edge further. Count the edges on the shortest path from node 4 to "
        "node 0 in section 1's graph (edges = [(0, 1), (1, 2), (1, 3), (2, 3), (3, 4)]).",
        "The shortest path is 4 - 3 - 1 - 0.",
    ),
    solution="3: the shortest path 4 - 3 - 1 - 0 has three edges, and each masked layer crosses one.",
    explanation=(
        "After L masked layers node 0's output depends only on the nodes within L edges of it: its weights on "
        "every other node are exactly 0, so changing them changes nothing, not even a rounding bit. Node 4 is "
        "three edges away. Unmasked attention would feel the change after one layer: the mask is what makes "
        "depth the GNN's receptive field."
    ),
)


# 2. Which nodes reach which after L layers ---------------------------------------------------------------


def _random_edges(rng: np.random.Generator, n: int, n_edges: int, isolated: int | None) -> list[tuple[int, int]]:
    nodes = [i for i in range(n) if i != isolated]
    pairs = [(a, b) for x, a in enumerate(nodes) for b in nodes[x + 1 :]]
    keep = rng.choice(len(pairs), size=n_edges, replace=False)
    return [pairs[p] if rng.random() < 0.5 else pairs[p][::-1] for p in keep]  # either order of each pair


def _reach_cases(rng: np.random.Generator) -> list[tuple]:
    # Sparse graphs (about one edge per node), so that 1, 2 and 3 layers reach different sets; one isolated node.
    return [
        (_random_edges(rng, 6, 5, isolated=None), 6, 1),
        (_random_edges(rng, 8, 7, isolated=5), 8, 2),
        (_random_edges(rng, 9, 8, isolated=None), 9, 3),
        ([(0, 1), (1, 2), (2, 3), (3, 4)], 5, 2),  # a path: the diagonal and one-way edges are plain to see
    ]


def _exact_walks(edges, n, layers):
    adjacency = mask_from_edges(edges, n) & ~torch.eye(n, dtype=torch.bool)  # (n, n), no self-loops
    walks = torch.linalg.matrix_power(adjacency.to(torch.int64), layers)  # (n, n): walks of exactly `layers` edges
    return walks > 0


def _one_way_reach(edges, n, layers):
    step = torch.eye(n, dtype=torch.int64)
    for i, j in edges:
        step[i, j] = 1  # only one direction of each edge
    reach = torch.eye(n, dtype=torch.int64)
    for _ in range(layers):
        reach = ((reach @ step) > 0).to(torch.int64)  # (n, n) @ (n, n) -> (n, n)
    return reach.bool()


REACH_MASK = Exercise(
    name="reach_mask",
    reference=reach_mask,
    cases=_reach_cases,
    output="bool_mask",
    mistakes=(
        Mistake(
            "walks of exactly `layers` edges (the adjacency's power, without self-loops)",
            _exact_walks,
            "A node keeps what it heard before: with self-loops in each layer, reaching in fewer hops counts "
            "too. Raise (adjacency + identity), not the adjacency alone, to the power `layers`.",
        ),
        Mistake(
            "one layer too few",
            lambda edges, n, layers: reach_mask(edges, n, layers - 1),
            "Each of the `layers` layers crosses one edge: node j reaches node i when it is at most `layers` "
            "edges away (0 layers: each node only itself).",
        ),
        Mistake(
            "one layer too many",
            lambda edges, n, layers: reach_mask(edges, n, layers + 1),
            "Each of the `layers` layers crosses one edge: node j reaches node i when it is at most `layers` "
            "edges away (0 layers: each node only itself).",
        ),
        Mistake(
            "only one direction of each edge",
            _one_way_reach,
            "A friendship goes both ways: each edge (i, j) lets i hear j and j hear i.",
        ),
        Mistake(
            "the diagonal left False (a node does not reach itself)",
            lambda edges, n, layers: reach_mask(edges, n, layers) & ~torch.eye(n, dtype=torch.bool),
            "With self-loops a node's own vector is part of its output in every layer: the diagonal is True.",
        ),
    ),
    hints=(
        "One masked layer lets node i hear its neighbours and itself. A second layer lets it hear what they "
        "heard: their neighbours too. After `layers` layers node i hears every node at most `layers` edges "
        "away, itself included.",
        "Start from the identity (no layer: each node hears only itself) and grow it one hop per layer: node j "
        "is heard by i after one more layer when j is heard by some neighbour of i (or by i itself). That is a "
        "matrix product with the one-layer mask.",
        "step = the one-layer mask (both directions of each edge, plus the diagonal) as int64; reach = "
        "torch.eye(n, dtype=torch.int64); repeat `layers` times: reach = ((reach @ step) > 0).long(); return "
        "reach.bool().",
    ),
    solution=(
        "def my_reach_mask(edges, n, layers):\n"
        "    step = torch.eye(n, dtype=torch.int64)  # (n, n): one layer, self-loops on\n"
        "    for i, j in edges:\n"
        "        step[i, j] = step[j, i] = 1\n"
        "    reach = torch.eye(n, dtype=torch.int64)  # no layer: each node hears only itself\n"
        "    for _ in range(layers):\n"
        "        reach = ((reach @ step) > 0).long()  # (n, n) @ (n, n) -> (n, n): one hop further\n"
        "    return reach.bool()\n"
    ),
)


# 3. Masked graph attention, isolated nodes included ------------------------------------------------------


def _attention_cases(rng: np.random.Generator) -> list[tuple]:
    cases = []
    for n, d, d_v, isolated in ((5, 4, 3, 2), (8, 2, 2, 6), (6, 3, 4, None)):
        q, k, v = (torch.tensor(rng.normal(size=s), dtype=torch.float64) for s in ((n, d), (n, d), (n, d_v)))
        mask = torch.tensor(rng.random((n, n)) < 0.4)
        mask = mask | mask.T | torch.eye(n, dtype=torch.bool)
        ring = torch.arange(n)
        mask[ring, (ring + 1) % n] = mask[(ring + 1) % n, ring] = False  # no node sees all: ~mask has no empty row
        if isolated is not None:  # an isolated node without a self-loop: its row is fully masked
            mask[isolated, :] = mask[:, isolated] = False
        cases.append((q, k, v, mask))
    return cases


def _scores(q, k):
    return q @ k.T / math.sqrt(q.shape[-1])  # (n, d) @ (d, n) -> (n, n)


def _mask_after_softmax(q, k, v, mask):
    weights = torch.softmax(_scores(q, k), dim=-1)  # (n, n) over every node
    return (weights * mask) @ v  # zeroed afterwards: the rows no longer sum to 1


def _scores_times_mask(q, k, v, mask):
    return torch.softmax(_scores(q, k) * mask, dim=-1) @ v  # forbidden scores become 0, not -inf


def _plus_bool_mask(q, k, v, mask):
    return torch.softmax(_scores(q, k) + mask, dim=-1) @ v  # True adds 1 to a score: nothing is masked


def _nan_on_isolated(q, k, v, mask):
    return torch.softmax(_scores(q, k).masked_fill(~mask, float("-inf")), dim=-1) @ v  # all -inf -> NaN


def _finite_fill(q, k, v, mask):
    return torch.softmax(_scores(q, k).masked_fill(~mask, -1e9), dim=-1) @ v  # all -1e9 -> uniform weights


GRAPH_ATTENTION = Exercise(
    name="graph_attention",
    reference=graph_attention,
    cases=_attention_cases,
    mistakes=(
        Mistake(
            "mask applied after the softmax",
            _mask_after_softmax,
            "Zeroing weights after the softmax leaves rows that no longer sum to 1. Set the forbidden scores "
            "to -inf BEFORE the softmax.",
        ),
        Mistake(
            "multiplying the scores by the mask",
            _scores_times_mask,
            "scores * mask sets the forbidden scores to 0, and exp(0) = 1: those nodes still get weight. A "
            "forbidden score must be -inf, so that its weight exp(-inf) is exactly 0.",
        ),
        Mistake(
            "adding a boolean mask",
            _plus_bool_mask,
            "scores + mask adds 1 to the allowed scores and 0 to the others: nothing is masked. (torch's SDPA "
            "adds a FLOAT mask, whose forbidden entries are -inf; a boolean mask selects.) Use "
            "scores.masked_fill(~mask, float('-inf')).",
        ),
        Mistake(
            "NaN for an isolated node (a fully masked row)",
            _nan_on_isolated,
            "A node with no edge and no self-loop has every score at -inf, and the softmax of all -inf is 0/0 = "
            "NaN. The course's attention (like torch's SDPA on CPU) gives such a row zeros: set the rows where "
            "mask.any(-1) is False to 0.",
        ),
        Mistake(
            "forbidden scores filled with a large finite number (an isolated node averages every node)",
            _finite_fill,
            "With -1e9 instead of -inf, a fully masked row has all its scores equal, and the softmax spreads "
            "its weight evenly over every node: the isolated node hears the whole graph. Use -inf and give fully "
            "masked rows zeros.",
        ),
        Mistake(
            "wrong polarity (attending to the non-neighbours)",
            lambda q, k, v, mask: graph_attention(q, k, v, ~mask),
            "mask is True where attention is allowed: the forbidden scores are where mask is False (~mask).",
        ),
        Mistake(
            "the mask is ignored (a complete graph)",
            lambda q, k, v, mask: graph_attention(q, k, v, torch.ones_like(mask)),
            "Every node attended to every node: apply the mask to the scores before the softmax.",
        ),
        Mistake(
            "missing the 1/sqrt(d) scale",
            lambda q, k, v, mask: scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=1.0),
            "Divide the scores q k^T by sqrt(d), d = q.shape[-1], as torch's SDPA does.",
        ),
    ),
    hints=(
        "Scores first (q against every k, scaled by 1/sqrt(d)), then take away what the graph forbids, then the "
        "softmax over the keys, then the weighted sum of v. A forbidden key must get weight exactly 0, and an "
        "isolated node (a row with no True at all) gets a zero output.",
        "'Weight exactly 0' means the forbidden score is -inf before the softmax (exp(-inf) = 0); multiplying "
        "or adding the boolean mask does not do that. A row that is all -inf gives NaN in the softmax: replace "
        "that row's output with zeros.",
        "scores = q @ k.T / math.sqrt(q.shape[-1]); weights = torch.softmax(scores.masked_fill(~mask, "
        "float('-inf')), dim=-1); weights = weights.masked_fill(~mask.any(-1, keepdim=True), 0.0); "
        "return weights @ v.",
    ),
    solution=(
        "def my_graph_attention(q, k, v, mask):\n"
        "    scores = q @ k.T / math.sqrt(q.shape[-1])  # (n, d) @ (d, n) -> (n, n)\n"
        "    weights = torch.softmax(scores.masked_fill(~mask, float('-inf')), dim=-1)  # (n, n)\n"
        "    weights = weights.masked_fill(~mask.any(-1, keepdim=True), 0.0)  # isolated nodes: zeros, not NaN\n"
        "    return weights @ v  # (n, n) @ (n, d_v) -> (n, d_v)\n"
    ),
)


LESSON = Lesson({"layers": LAYERS, "reach_mask": REACH_MASK, "graph_attention": GRAPH_ATTENTION})
hint, solution = LESSON.hint, LESSON.solution


def check_layers(predicted: object, measured: int) -> Feedback:
    """Compare the predicted number of masked layers (node 4 -> node 0) with the measured one."""
    return LAYERS.check(predicted, measured)


def check_reach_mask(fn: Callable) -> Feedback:
    """Check reach_mask(edges, n, layers) -> (n, n) bool: True where node j reaches node i within `layers` hops."""
    return REACH_MASK.check(fn)


def check_graph_attention(fn: Callable) -> Feedback:
    """Check graph_attention(q, k, v, mask) -> (n, d_v): -inf before the softmax, zeros for isolated nodes."""
    return GRAPH_ATTENTION.check(fn)
