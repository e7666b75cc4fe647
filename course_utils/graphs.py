"""Lesson 10: self-attention on graphs. Nodes are the vector set; the adjacency matrix masks the attention.

Node i (a query) may attend to node j (a key) only where there is an edge (i, j), and to itself
(`course_utils.attention.graph_mask` adds the self-loops). That is a graph neural network: one attention layer
passes messages one hop along the edges. GAT (Velickovic et al., 2018) is the same idea with an additive score
e_ij = LeakyReLU(a^T [W h_i || W h_j]) instead of the dot product q_i . k_j; `AdditiveGraphAttention` is that
score, and both models here accept either attention.

The data is Zachary's karate club (ships with networkx): 34 members, 78 friendships, and the club each member
joined after the split ('Mr. Hi' or 'Officer').
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from ._validate import check_flag, check_int, check_mask, check_number, check_positive_int, check_tensor, shape_of
from .attention import MultiHeadSelfAttention, graph_mask
from .models import Block, Encoder
from .training import TrainConfig, train_classifier

__all__ = [
    "KarateClub",
    "karate_club",
    "AdditiveGraphAttention",
    "GraphModelConfig",
    "GraphAttentionClassifier",
    "train_node_classifier",
    "node_accuracy",
    "draw_graph",
]

CLUBS = ("Mr. Hi", "Officer")


@dataclass(frozen=True)
class KarateClub:
    graph: object  # the networkx.Graph
    features: torch.Tensor  # (n, n) float32: one-hot node identities (the nodes carry no other feature)
    adjacency: torch.Tensor  # (n, n) float32 0/1, symmetric, zero diagonal
    labels: torch.Tensor  # (n,) int64: 0 = 'Mr. Hi', 1 = 'Officer'
    train: torch.Tensor  # (n,) bool: the few labelled nodes
    test: torch.Tensor  # (n,) bool: every other node


def karate_club(labelled_per_class: int = 2, seed: int = 0) -> KarateClub:
    """The karate club with `labelled_per_class` labelled nodes per club: the two leaders (0 and 33) + random others."""
    import networkx as nx

    labelled_per_class = check_positive_int(labelled_per_class, "labelled_per_class")
    seed = check_int(seed, "seed", minimum=0)
    g = nx.karate_club_graph()
    n = g.number_of_nodes()
    labels = torch.tensor([CLUBS.index(g.nodes[i]["club"]) for i in range(n)])
    adjacency = torch.tensor(nx.to_numpy_array(g, nodelist=range(n), weight=None), dtype=torch.float32)
    rng = np.random.default_rng(seed)
    train = torch.zeros(n, dtype=torch.bool)
    for club, leader in ((0, 0), (1, n - 1)):
        others = [i for i in range(n) if labels[i] == club and i != leader]
        if labelled_per_class - 1 > len(others):
            raise ValueError(f"labelled_per_class must be at most {len(others) + 1}, got {labelled_per_class}")
        train[[leader, *rng.choice(others, size=labelled_per_class - 1, replace=False).tolist()]] = True
    return KarateClub(g, torch.eye(n), adjacency, labels, train, ~train)


class AdditiveGraphAttention(nn.Module):
    """GAT-style attention: e_ij = LeakyReLU(a_q . W h_i + a_k . W h_j) per head, masked softmax over j, sum of W h_j.

    x (B, N, D) -> (B, N, D); attn_mask (True = may attend) broadcasts to (B, H, N, N). Drop-in for a `Block`.
    """

    def __init__(self, d_model: int, num_heads: int = 1, negative_slope: float = 0.2):
        super().__init__()
        d_model, num_heads = check_positive_int(d_model, "d_model"), check_positive_int(num_heads, "num_heads")
        negative_slope = check_number(negative_slope, "negative_slope", positive=False, minimum=0.0)
        if d_model % num_heads:
            raise ValueError(f"d_model={d_model} must be divisible by num_heads={num_heads}")
        self.d_model = d_model
        self.num_heads, self.d_head = num_heads, d_model // num_heads
        self.W = nn.Linear(d_model, d_model, bias=False)  # the shared W of GAT
        self.a_q = nn.Parameter(torch.randn(num_heads, self.d_head) / self.d_head**0.5)  # a's query half
        self.a_k = nn.Parameter(torch.randn(num_heads, self.d_head) / self.d_head**0.5)  # a's key half
        self.negative_slope = negative_slope
        self.out_proj = nn.Linear(d_model, d_model)

    def attention_weights(self, x, attn_mask=None, is_causal: bool = False) -> torch.Tensor:
        """(B, H, N, N): row i holds node i's weights over its neighbours (zeros for a fully masked row)."""
        return self._weights_and_values(x, attn_mask, is_causal)[0]

    def _weights_and_values(self, x, attn_mask, is_causal):
        check_tensor(x, "x", min_ndim=3)
        if x.ndim != 3 or x.shape[-1] != self.d_model:
            raise ValueError(f"x must have shape (B, N, d_model={self.d_model}), got {shape_of(x)}")
        if check_flag(is_causal, "is_causal"):
            raise ValueError("graph attention has no causal order: pass the graph as attn_mask")
        if x.dtype != self.W.weight.dtype:
            raise TypeError(f"x has dtype {x.dtype} but the weights are {self.W.weight.dtype}: convert one")
        B, N, D = x.shape
        attn_mask = check_mask(attn_mask)
        if attn_mask is not None:
            try:
                fits = torch.broadcast_shapes(attn_mask.shape, (B, self.num_heads, N, N)) == (B, self.num_heads, N, N)
            except RuntimeError:
                fits = False
            if not fits:
                raise ValueError(
                    f"attn_mask must broadcast to the scores' shape ({B}, {self.num_heads}, {N}, {N}) for x "
                    f"{shape_of(x)}, got {shape_of(attn_mask)}"
                )
        h = self.W(x).view(B, N, self.num_heads, self.d_head).transpose(1, 2)  # (B, N, D) -> (B, H, N, d)
        s_q = (h * self.a_q[:, None, :]).sum(-1)  # (B, H, N): a_q . W h_i
        s_k = (h * self.a_k[:, None, :]).sum(-1)  # (B, H, N): a_k . W h_j
        scores = nn.functional.leaky_relu(s_q[..., :, None] + s_k[..., None, :], self.negative_slope)  # (B, H, N, N)
        if attn_mask is not None and attn_mask.dtype == torch.bool:
            scores = scores.masked_fill(~attn_mask, float("-inf"))  # mask BEFORE the softmax
        elif attn_mask is not None:
            scores = scores + attn_mask.to(scores.dtype)  # a float mask is added (SDPA's polarity; -inf forbids)
        m = scores.amax(-1, keepdim=True)
        e = torch.exp(scores - torch.where(torch.isfinite(m), m, torch.zeros_like(m)).detach())
        total = e.sum(-1, keepdim=True)
        return e / torch.where(total > 0, total, torch.ones_like(total)), h  # a fully masked row stays zero

    def forward(self, x, attn_mask=None, is_causal: bool = False) -> torch.Tensor:
        weights, h = self._weights_and_values(x, attn_mask, is_causal)
        heads = weights @ h  # (B, H, N, N) @ (B, H, N, d) -> (B, H, N, d)
        B, H, N, d = heads.shape
        return self.out_proj(heads.transpose(1, 2).reshape(B, N, H * d))  # (B, N, D) @ (D, D) -> (B, N, D)


@dataclass(frozen=True)
class GraphModelConfig:
    d_model: int = 16  # node vector width D
    num_heads: int = 2  # attention heads per layer
    n_layers: int = 2  # attention layers = hops a message can travel
    score: str = "dot"  # "dot": q . k (MultiHeadSelfAttention); "additive": GAT's LeakyReLU(a^T [Wh_i || Wh_j])


class GraphAttentionClassifier(nn.Module):
    """Node classifier: features (B, n, F) -> logits (B, n, C); attention restricted to `adjacency`'s edges.

    adjacency=None attends over every pair (a complete graph): plain self-attention, blind to the graph.
    """

    mask: torch.Tensor | None  # (n, n) bool buffer, self-loops on; None = a complete graph

    def __init__(self, n_features: int, n_classes: int, adjacency=None, config: GraphModelConfig = GraphModelConfig()):
        super().__init__()
        if config.score not in ("dot", "additive"):
            raise ValueError(f"config.score must be 'dot' or 'additive', got {config.score!r}")
        make = MultiHeadSelfAttention if config.score == "dot" else AdditiveGraphAttention
        D = config.d_model
        blocks = [Block(D, make(D, config.num_heads)) for _ in range(config.n_layers)]
        self.encoder = Encoder(nn.Linear(n_features, D), blocks, D, n_classes, pool="none")
        mask = None if adjacency is None else graph_mask(adjacency)  # (n, n) bool, self-loops on
        self.register_buffer("mask", mask)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        check_tensor(features, "features", min_ndim=3)
        if features.ndim != 3:
            raise ValueError(f"features must be a tensor of shape (B, n, F), got {shape_of(features)}")
        if self.mask is not None and features.shape[1] != self.mask.shape[0]:
            raise ValueError(f"features must hold {self.mask.shape[0]} nodes, got shape {shape_of(features)}")
        return self.encoder(features, attn_mask=self.mask)  # (B, n, F) -> (B, n, C)

    def attention_maps(self, features: torch.Tensor) -> list[torch.Tensor]:
        """Each layer's attention weights, a list of (B, H, n, n)."""
        return self.encoder.attention_maps(features, attn_mask=self.mask)


def train_node_classifier(
    model: nn.Module, data: KarateClub, steps: int = 150, lr: float = 1e-2, seed: int = 0
) -> list[float]:
    """Train on the labelled nodes only (the others' targets are -100, ignored); returns the losses."""
    y = torch.where(data.train, data.labels, torch.full_like(data.labels, -100))[None]  # (1, n)
    config = TrainConfig(steps=steps, batch_size=1, lr=lr, seed=seed, progress=False)
    return train_classifier(model, (data.features[None], y), config)  # features (1, n, n)


@torch.no_grad()
def node_accuracy(model: nn.Module, data: KarateClub, nodes: torch.Tensor | None = None) -> float:
    """Fraction of `nodes` (default: the test nodes) whose predicted club is right."""
    nodes = data.test if nodes is None else nodes
    model.eval()
    pred = model(data.features[None])[0].argmax(-1)  # (n,)
    return (pred[nodes] == data.labels[nodes]).float().mean().item()


def draw_graph(data: KarateClub, predictions=None, ax=None, title: str | None = None, seed: int = 0):
    """Draw the club (fixed layout `seed`): colour = predicted (or true) club; black ring = labelled, red = wrong."""
    import matplotlib.pyplot as plt
    import networkx as nx

    n = data.labels.shape[0]
    pred = data.labels if predictions is None else torch.as_tensor(predictions)
    if pred.shape != (n,):
        raise ValueError(f"predictions must have shape ({n},), got {shape_of(pred)}")
    if ax is None:
        fig, ax = plt.subplots(figsize=(6, 4.5))
    else:
        fig = ax.figure
    pos = nx.spring_layout(data.graph, seed=seed)
    colors = ["tab:blue" if int(p) == 0 else "tab:orange" for p in pred]
    edgecolors = ["black" if bool(t) else "white" for t in data.train]
    nx.draw_networkx_edges(data.graph, pos, ax=ax, alpha=0.3)
    nx.draw_networkx_nodes(data.graph, pos, ax=ax, node_color=colors, edgecolors=edgecolors, linewidths=2.5)
    nx.draw_networkx_labels(data.graph, pos, ax=ax, font_size=7)
    wrong = [i for i in range(n) if int(pred[i]) != int(data.labels[i])]
    if wrong:
        # a red ring around each wrong node, so its number stays readable
        ax.scatter(
            [pos[i][0] for i in wrong],
            [pos[i][1] for i in wrong],
            marker="o",
            s=620,
            facecolors="none",
            edgecolors="red",
            linewidths=2,
            zorder=5,
        )
    prefix = "" if predictions is None else "predicted "
    handles = [
        plt.Line2D([], [], marker="o", ls="", color=c, label=f"{prefix}{club}")
        for c, club in zip(("tab:blue", "tab:orange"), CLUBS)
    ]
    handles.append(plt.Line2D([], [], marker="o", ls="", mfc="white", mec="black", mew=2, label="labelled"))
    if predictions is not None:
        handles.append(plt.Line2D([], [], marker="o", ls="", mfc="none", mec="red", mew=2, label="wrong"))
    ax.legend(handles=handles, fontsize=7, loc="lower left")
    ax.set_axis_off()
    if title:
        ax.set_title(title)
    return fig, ax
