"""The course's diagrams, drawn from code with matplotlib patches, arrows and text.

Each function takes no required argument and returns (fig, ax) like the plotting helpers; it never
touches rcParams. A lesson shows a diagram with `fig, ax = cu.diagrams.one_query(); plt.show()`, so a
lesson opened alone (Colab) draws it without the repository's images/ folder. `save_all(folder)` writes
the same drawings as PNG files for the README (`make images`).

    one_query()            the attention computation for one query: a^i -> q, k, v; alpha; softmax; b^1
    matrix_form()          I -> Q, K, V; A = K^T Q; A' = softmax over columns; O = V A', with shapes
    multi_head()           split into heads, attention per head, concatenate, W^O
    positional_encoding()  e^i added to a^i, and the sinusoidal encoding's heatmap
    tiling()               flash attention's tiling: blocks of Q, K, V and the running max and sum
    vector_sets()          lesson 01: words, audio frames, graph nodes as sets of vectors; three output kinds
    cnn_vs_self_attention()  lesson 08: a 3x3 receptive field inside self-attention's learned one
    rnn_vs_self_attention()  lesson 09: N sequential steps vs one parallel step over all pairs
    graph_attention()      lesson 10: the adjacency matrix masks the attention matrix
    efficient_patterns()   lesson 11: the scores local, strided, global, Linformer compute; linear has none
    char_language_model()  lesson 12: characters -> pre-norm RoPE attention blocks -> next character; two head patterns

Two-panel diagrams (positional_encoding) return their first panel as `ax`; `fig.axes` holds them all.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.patches import Circle, FancyArrowPatch, FancyBboxPatch, Rectangle

__all__ = [
    "one_query",
    "matrix_form",
    "multi_head",
    "positional_encoding",
    "tiling",
    "vector_sets",
    "cnn_vs_self_attention",
    "rnn_vs_self_attention",
    "graph_attention",
    "efficient_patterns",
    "char_language_model",
    "save_all",
    "DIAGRAMS",
]

# One palette for every drawing: a colour per role, the same in every diagram.
INPUT = "#dfe7f2"  # a^i, I
QUERY = "#f4c7a1"  # q, Q
KEY = "#a9d6a9"  # k, K
VALUE = "#b7c7ee"  # v, V
SCORE = "#f3e08a"  # alpha, A
WEIGHT = "#e8b4d8"  # alpha', A'
OUTPUT = "#c9b3e6"  # b, O
LEARNED = "#fbe3e3"  # W^q, W^k, W^v, W^O: the only learned parts
HEAD1 = "#4c72b0"
HEAD2 = "#dd8452"
EDGE = "#333333"
FOCUS = "#d62728"  # outline of the stage a lesson is about
FONT = 13


def _canvas(width: float, height: float, xlim: tuple[float, float], ylim: tuple[float, float]):
    """A blank figure with equal axis units and no frame."""
    fig, ax = plt.subplots(figsize=(width, height))
    ax.set_xlim(*xlim)
    ax.set_ylim(*ylim)
    ax.set_aspect("equal")
    ax.axis("off")
    return fig, ax


def _box(ax, x, y, text, w=0.9, h=0.6, color=INPUT, fontsize=FONT, edge=EDGE, lw=1.2, round_=0.08, **kw):
    """A rounded box centred at (x, y) with `text` in it."""
    ax.add_patch(
        FancyBboxPatch(
            (x - w / 2, y - h / 2),
            w,
            h,
            boxstyle=f"round,pad=0,rounding_size={round_}",
            facecolor=color,
            edgecolor=edge,
            linewidth=lw,
        )
    )
    if text:
        ax.text(x, y, text, ha="center", va="center", fontsize=fontsize, **kw)


def _arrow(
    ax,
    start,
    end,
    text=None,
    color=EDGE,
    lw=1.3,
    style="-|>",
    offset=(0.0, 0.0),
    fontsize=FONT - 2,
    rad=0.0,
    ls="-",
    text_color=None,
    shrink=2.0,
):
    """An arrow from `start` to `end`, with an optional label at its middle shifted by `offset`."""
    ax.add_patch(
        FancyArrowPatch(
            start,
            end,
            arrowstyle=style,
            mutation_scale=14,
            color=color,
            linewidth=lw,
            linestyle=ls,
            connectionstyle=f"arc3,rad={rad}",
            shrinkA=shrink,
            shrinkB=shrink,
        )
    )
    if text:
        mx, my = (start[0] + end[0]) / 2 + offset[0], (start[1] + end[1]) / 2 + offset[1]
        ax.text(mx, my, text, ha="center", va="center", fontsize=fontsize, color=text_color or color)


def _node(ax, x, y, text, r=0.28, color="white", fontsize=FONT + 2):
    """A small circle (an operation: +, x, sum) centred at (x, y)."""
    ax.add_patch(Circle((x, y), r, facecolor=color, edgecolor=EDGE, linewidth=1.2))
    ax.text(x, y, text, ha="center", va="center", fontsize=fontsize)


def _grid(ax, x, y, rows, cols, cell, color, lw=0.8, edge=EDGE, alpha=1.0):
    """A matrix drawn as rows x cols cells with its top-left corner at (x, y); returns its centre."""
    for r in range(rows):
        for c in range(cols):
            ax.add_patch(
                Rectangle(
                    (x + c * cell, y - (r + 1) * cell),
                    cell,
                    cell,
                    facecolor=color,
                    edgecolor=edge,
                    linewidth=lw,
                    alpha=alpha,
                )
            )
    return x + cols * cell / 2, y - rows * cell / 2


def _focus(ax, x0, y0, x1, y1):
    """A dashed red frame around a stage (the part a lesson is about)."""
    ax.add_patch(
        FancyBboxPatch(
            (x0, y0),
            x1 - x0,
            y1 - y0,
            boxstyle="round,pad=0,rounding_size=0.15",
            fill=False,
            edgecolor=FOCUS,
            linewidth=2.0,
            linestyle="--",
        )
    )


def one_query(n: int = 4, focus: str | None = None):
    """The attention computation for query 1 over n inputs: a^i -> q^1, k^i, v^i -> alpha -> softmax -> b^1.

    `focus` frames one stage in red: "scores" (lesson 02), "softmax", or "sum" (lesson 03).
    """
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or not 2 <= n <= 6:
        raise ValueError(f"n must be an int from 2 to 6 (inputs drawn), got {n!r}")
    if focus not in (None, "scores", "softmax", "sum"):
        raise ValueError(f"focus must be None, 'scores', 'softmax' or 'sum', got {focus!r}")
    step = 2.6
    xs = [1.4 + step * i for i in range(n)]
    right = xs[-1] + 4.0
    fig, ax = _canvas(1.75 * n + 4.0, 8.4, (-0.4, right), (-0.9, 10.1))
    y_a, y_qkv, y_alpha, y_soft, y_prime, y_mul, y_sum, y_b = 0.0, 1.9, 3.5, 4.6, 5.7, 7.1, 8.2, 9.3
    for i, x in enumerate(xs, start=1):
        _box(ax, x, y_a, f"$a^{{{i}}}$", color=INPUT)
        # k^i and v^i for every input; q^1 only for the query's own input
        _box(ax, x, y_qkv, f"$k^{{{i}}}$", w=0.75, color=KEY)
        _box(ax, x + 0.9, y_qkv, f"$v^{{{i}}}$", w=0.75, color=VALUE)
        _arrow(ax, (x, y_a + 0.3), (x, y_qkv - 0.3))
        _arrow(ax, (x + 0.15, y_a + 0.3), (x + 0.85, y_qkv - 0.3))
        # alpha_{1,i} = q^1 . k^i
        _node(ax, x, y_alpha, r"$\cdot$", r=0.22)
        _arrow(ax, (x, y_qkv + 0.3), (x, y_alpha - 0.22))
        ax.text(x - 0.3, y_alpha + 0.5, rf"$\alpha_{{1,{i}}}$", ha="center", va="center", fontsize=FONT)
        _arrow(ax, (x, y_alpha + 0.22), (x, y_soft - 0.3))
        _box(ax, x, y_prime, rf"$\alpha'_{{1,{i}}}$", w=0.95, color=WEIGHT)
        _arrow(ax, (x, y_soft + 0.3), (x, y_prime - 0.3))
        # alpha'_{1,i} v^i
        _node(ax, x + 0.9, y_mul, r"$\times$", r=0.24)
        _arrow(ax, (x + 0.2, y_prime + 0.3), (x + 0.75, y_mul - 0.15))
        ax.add_patch(
            FancyArrowPatch(
                (x + 0.9, y_qkv + 0.3),
                (x + 0.9, y_mul - 0.24),
                arrowstyle="-|>",
                mutation_scale=14,
                color="#6a7fb5",
                linewidth=1.3,
                linestyle=(0, (4, 3)),
                shrinkA=2,
                shrinkB=2,
                zorder=0.5,
            )
        )  # passes behind the softmax box
        _arrow(ax, (x + 0.9, y_mul + 0.24), ((xs[0] + xs[-1]) / 2 + 0.45, y_sum - 0.3), rad=0.0)
    # the query q^1 = W^q a^1, drawn to the left of k^1
    xq = xs[0] - 0.95
    _box(ax, xq, y_qkv, "$q^{1}$", w=0.75, color=QUERY)
    _arrow(ax, (xs[0] - 0.15, y_a + 0.3), (xq + 0.1, y_qkv - 0.3))
    # q^1 goes to every score node, along a bus
    y_bus = y_alpha - 0.7
    ax.plot([xq, xq, xs[-1] - 0.45], [y_qkv + 0.3, y_bus, y_bus], color="#c8834a", lw=1.6, zorder=0.5)
    for x in xs:
        _arrow(ax, (x - 0.45, y_bus), (x - 0.16, y_alpha - 0.16), color="#c8834a", lw=1.3, shrink=0)
    ax.text(xq - 0.12, y_bus + 0.25, "$q^{1}$", ha="right", va="center", fontsize=FONT - 2, color="#c8834a")
    # softmax over all scores
    _box(
        ax,
        (xs[0] + xs[-1]) / 2,
        y_soft,
        r"softmax over $i$:   $\alpha'_{1,i} = \exp(\alpha_{1,i})\ /\ \sum_m \exp(\alpha_{1,m})$",
        w=xs[-1] - xs[0] + 1.4,
        h=0.6,
        color="#f7f7f7",
        fontsize=FONT - 1,
    )
    xs_sum = (xs[0] + xs[-1]) / 2 + 0.45
    _node(ax, xs_sum, y_sum, r"$\Sigma$", r=0.3)
    _box(ax, xs_sum, y_b, r"$b^{1} = \sum_i \alpha'_{1,i}\, v^{i}$", w=2.9, color=OUTPUT)
    _arrow(ax, (xs_sum, y_sum + 0.3), (xs_sum, y_b - 0.3))
    # the learned projections, named once at the side
    x_note = xs[-1] + 1.55
    ax.text(
        x_note,
        (y_a + y_qkv) / 2,
        "learned:\n$q^{i} = W^{q} a^{i}$\n$k^{i} = W^{k} a^{i}$\n$v^{i} = W^{v} a^{i}$",
        ha="left",
        va="center",
        fontsize=FONT - 2,
        linespacing=1.5,
        bbox=dict(boxstyle="round,pad=0.3", facecolor=LEARNED, edgecolor="#c99"),
    )
    # the note beside the framed stage turns red with it
    ax.text(
        x_note,
        y_alpha,
        "dot product:\n" + r"$\alpha_{1,i} = q^{1} \cdot k^{i}$",
        ha="left",
        va="center",
        fontsize=FONT - 2,
        linespacing=1.5,
        color=FOCUS if focus == "scores" else "black",
    )
    ax.text(
        x_note,
        y_prime - 0.55,
        "normalise:\n" + r"$\sum_i \alpha'_{1,i} = 1$",
        ha="left",
        va="center",
        fontsize=FONT - 2,
        linespacing=1.5,
        color=FOCUS if focus == "softmax" else "black",
    )
    ax.text(
        x_note,
        y_mul + 0.5,
        "weighted sum:\n" + r"$\alpha'_{1,i}\, v^{i}$",
        ha="left",
        va="center",
        fontsize=FONT - 2,
        linespacing=1.5,
        color=FOCUS if focus == "sum" else "black",
    )
    ax.text(-0.3, y_a, "inputs", ha="left", va="center", fontsize=FONT - 3, color="#555", rotation=90)
    if focus == "scores":
        _focus(ax, xq - 0.55, y_alpha - 0.9, xs[-1] + 0.55, y_alpha + 0.8)
    elif focus == "softmax":
        _focus(ax, xs[0] - 0.8, y_soft - 0.4, xs[-1] + 0.8, y_prime + 0.42)
    elif focus == "sum":
        _focus(ax, xs[0] - 0.6, y_mul - 0.45, xs[-1] + 1.3, y_b + 0.42)
    ax.set_title("Self-attention for one query: how $b^{1}$ is computed", fontsize=FONT + 1)
    return fig, ax


def matrix_form(n: int = 5, d_in: int = 4, d_k: int = 3, d_v: int = 3):
    """The matrix form with shapes: Q = W^q I, K = W^k I, V = W^v I; A = K^T Q; A' = softmax(A); O = V A'."""
    for name, value in (("n", n), ("d_in", d_in), ("d_k", d_k), ("d_v", d_v)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not 1 <= value <= 8:
            raise ValueError(f"{name} must be an int from 1 to 8 (cells drawn), got {value!r}")
    c = 0.42  # side of one cell
    fig, ax = _canvas(16.0, 7.3, (-0.8, 19.2), (-3.9, 4.4))

    def matrix(x, ytop, rows, cols, color, name, shape, column=None):
        _grid(ax, x, ytop, rows, cols, c, color)
        if column is not None:  # one column outlined: the thing softmax normalises
            ax.add_patch(
                Rectangle((x + column * c, ytop - rows * c), c, rows * c, fill=False, edgecolor=FOCUS, linewidth=2.2)
            )
        ax.text(x + cols * c / 2, ytop + 0.25, name, ha="center", va="bottom", fontsize=FONT + 1)
        ax.text(x + cols * c / 2, ytop - rows * c - 0.15, shape, ha="center", va="top", fontsize=FONT - 2, color="#444")
        return x, ytop, x + cols * c, ytop - rows * c  # left, top, right, bottom

    # I: the inputs as columns
    I = matrix(0.0, 0.5 + d_in * c / 2, d_in, n, INPUT, "$I$", r"$(d_{in}, N)$")
    ax.text(I[0] + c / 2, I[3] - 0.62, "column $i$ = $a^{i}$", ha="left", va="top", fontsize=FONT - 3, color="#555")
    xqkv = 4.4
    tops = {"Q": 3.5, "K": 1.0, "V": -1.35}
    Q = matrix(xqkv, tops["Q"], d_k, n, QUERY, "$Q$", r"$(d_k, N)$")
    K = matrix(xqkv, tops["K"], d_k, n, KEY, "$K$", r"$(d_k, N)$")
    V = matrix(xqkv, tops["V"], d_v, n, VALUE, "$V$", r"$(d_v, N)$")
    mid_I = (I[1] + I[3]) / 2
    for M, w in ((Q, "q"), (K, "k"), (V, "v")):
        ym = (M[1] + M[3]) / 2
        _arrow(ax, (I[2] + 0.1, mid_I), (M[0] - 0.1, ym))
        ax.text(
            (I[2] + M[0]) / 2 + 0.05,
            (mid_I + ym) / 2 + 0.18,
            f"$W^{{{w}}}$",
            ha="center",
            va="bottom",
            fontsize=FONT - 1,
            bbox=dict(boxstyle="round,pad=0.15", facecolor=LEARNED, edgecolor="none"),
        )
    # A = K^T Q
    xa = 8.6
    top_a = 0.9 + n * c / 2
    A = matrix(xa, top_a, n, n, SCORE, r"$A = K^{\top} Q$", r"$(N, N)$")
    ya = (A[1] + A[3]) / 2
    _arrow(ax, (Q[2] + 0.1, (Q[1] + Q[3]) / 2), (A[0] - 0.1, ya + 0.3))
    _arrow(ax, (K[2] + 0.1, (K[1] + K[3]) / 2), (A[0] - 0.1, ya - 0.1))
    ax.text(
        A[0] + 0.02, A[3] - 0.62, r"$A[i, j] = k^{i} \cdot q^{j}$", ha="left", va="top", fontsize=FONT - 3, color="#555"
    )
    # A' = softmax over each column
    xp = A[2] + 1.5
    P = matrix(xp, top_a, n, n, WEIGHT, r"$A'$", r"$(N, N)$", column=1)
    _arrow(ax, (A[2] + 0.1, ya), (P[0] - 0.1, ya))
    ax.text((A[2] + P[0]) / 2, ya + 0.22, "softmax\nover each\ncolumn", ha="center", va="bottom", fontsize=FONT - 3)
    ax.text(
        P[0] + 1.5 * c, P[3] - 0.62, "each column\nsums to 1", ha="center", va="top", fontsize=FONT - 3, color=FOCUS
    )
    # O = V A'
    xo = P[2] + 1.4
    O = matrix(xo, 0.5 + d_v * c / 2, d_v, n, OUTPUT, r"$O = V A'$", r"$(d_v, N)$")
    yo = (O[1] + O[3]) / 2
    _arrow(ax, (P[2] + 0.1, ya), (O[0] - 0.1, yo + 0.05))
    _arrow(ax, (V[2] + 0.1, (V[1] + V[3]) / 2), (O[0] + n * c / 2, O[3] - 0.55), rad=0.12)
    ax.text(
        O[2] + 0.1, (O[1] + O[3]) / 2, "column $j$\n= $b^{j}$", ha="left", va="center", fontsize=FONT - 3, color="#555"
    )
    ax.text(
        11.6,
        -3.4,
        r"Only $W^{q}$, $W^{k}$, $W^{v}$ are learned.   Cost: $A$ holds $N^2$ numbers.",
        ha="center",
        va="center",
        fontsize=FONT - 1,
        bbox=dict(boxstyle="round,pad=0.3", facecolor=LEARNED, edgecolor="#c99"),
    )
    ax.set_title("Self-attention as matrices (the lecture's column convention)", fontsize=FONT + 1)
    return fig, ax


def multi_head(heads: int = 2):
    """Multi-head self-attention for token i: split q, k, v into heads, attend per head, concatenate, W^O."""
    if isinstance(heads, bool) or not isinstance(heads, (int, np.integer)) or not 1 <= heads <= 3:
        raise ValueError(f"heads must be an int from 1 to 3 (heads drawn), got {heads!r}")
    colors = [HEAD1, HEAD2, "#55a868"][:heads]
    c = 0.36  # cell side
    per = 2  # cells per head
    d = per * heads
    gap = 2.3  # vertical distance between head rows
    span = gap * (heads - 1) / 2  # head rows at y_mid +- span
    fig, ax = _canvas(15.0, 3.4 + 1.0 * heads, (-0.6, 18.6), (-span - 2.3, span + 1.3))

    def vector(x, ytop, parts, name, base=None):
        for h, col in enumerate(parts):
            for r in range(per):
                ax.add_patch(
                    Rectangle(
                        (x, ytop - (h * per + r + 1) * c),
                        c,
                        c,
                        facecolor=col,
                        edgecolor=EDGE,
                        linewidth=0.8,
                        alpha=0.8 if base is None else 1.0,
                    )
                )
        ax.text(x + c / 2, ytop + 0.12, name, ha="center", va="bottom", fontsize=FONT)
        return x + c / 2, ytop - len(parts) * per * c / 2

    y_mid = 0.0
    top_vec = y_mid + d * c / 2
    # a^i and the fused projections
    _box(ax, 0.4, y_mid, "$a^{i}$", w=0.8, h=0.7, color=INPUT)
    xs_qkv = {"q": 2.3, "k": 3.2, "v": 4.1}
    for name, x in xs_qkv.items():
        vector(x, top_vec, colors, f"${name}^{{i}}$")
    _arrow(ax, (0.8, y_mid), (xs_qkv["q"] - 0.05, y_mid))
    ax.text(
        1.4,
        y_mid + 0.3,
        "$W^{q}, W^{k}, W^{v}$",
        ha="center",
        va="bottom",
        fontsize=FONT - 3,
        bbox=dict(boxstyle="round,pad=0.15", facecolor=LEARNED, edgecolor="none"),
    )
    ax.text(3.35, top_vec - d * c - 0.2, "split into\nheads", ha="center", va="top", fontsize=FONT - 3, color="#444")
    # per-head q, k, v and attention
    x_head = 6.0
    x_att = 10.1
    x_b = 12.7
    outs = []
    for h, col in enumerate(colors, start=1):
        yh = y_mid + gap * ((heads - 1) / 2 - (h - 1))
        for j, name in enumerate("qkv"):
            xv = x_head + 0.85 * j
            for r in range(per):
                ax.add_patch(
                    Rectangle((xv, yh + per * c / 2 - (r + 1) * c), c, c, facecolor=col, edgecolor=EDGE, linewidth=0.8)
                )
            ax.text(
                xv + c / 2, yh + per * c / 2 + 0.1, f"${name}^{{i,{h}}}$", ha="center", va="bottom", fontsize=FONT - 2
            )
        # split arrows from the fused vectors' h-th part
        src_y = top_vec - ((h - 1) * per + per / 2) * c
        _arrow(ax, (xs_qkv["v"] + c + 0.05, src_y), (x_head - 0.1, yh), color=col, lw=1.4)
        _box(
            ax,
            x_att,
            yh,
            f"attention, head {h}\n" + rf"with $k^{{j,{h}}}, v^{{j,{h}}}$ of every $j$",
            w=3.0,
            h=1.0,
            color="white",
            edge=col,
            lw=2.0,
            fontsize=FONT - 3,
        )
        _arrow(ax, (x_head + 0.85 * 2 + c + 0.05, yh), (x_att - 1.52, yh), color=col, lw=1.4)
        bx = x_b
        for r in range(per):
            ax.add_patch(
                Rectangle((bx, yh + per * c / 2 - (r + 1) * c), c, c, facecolor=col, edgecolor=EDGE, linewidth=0.8)
            )
        ax.text(bx + c / 2, yh + per * c / 2 + 0.1, f"$b^{{i,{h}}}$", ha="center", va="bottom", fontsize=FONT - 2)
        _arrow(ax, (x_att + 1.52, yh), (bx - 0.05, yh), color=col, lw=1.4)
        outs.append((bx + c, yh))
    # concatenate and project
    x_cat = 14.5
    vector(
        x_cat,
        top_vec,
        colors,
        r"$[b^{i,1}; \ldots]$" if heads > 2 else ("$[b^{i,1}; b^{i,2}]$" if heads == 2 else "$b^{i,1}$"),
        base=True,
    )
    for h, (ox, oy) in enumerate(outs):
        _arrow(ax, (ox + 0.1, oy), (x_cat - 0.1, top_vec - (h * per + per / 2) * c), color=colors[h], lw=1.2)
    _box(ax, 16.1, y_mid, "$W^{O}$", w=0.8, h=0.7, color=LEARNED)
    _arrow(ax, (x_cat + c + 0.05, y_mid), (15.68, y_mid))
    _box(ax, 17.6, y_mid, "$b^{i}$", w=0.8, h=0.7, color=OUTPUT)
    _arrow(ax, (16.52, y_mid), (17.18, y_mid))
    ax.text(
        9.0,
        -span - 1.75,
        "fused form in PyTorch:  (B, N, D)  $\\to$  q, k, v (B, N, H$\\cdot$d)  $\\to$  reshape (B, H, N, d)"
        "  $\\to$  attention per head  $\\to$  (B, N, H$\\cdot$d)  $\\to$  $W^{O}$",
        ha="center",
        va="center",
        fontsize=FONT - 3,
        color="#333",
        bbox=dict(boxstyle="round,pad=0.3", facecolor="#f5f5f5", edgecolor="#bbb"),
    )
    ax.set_title(
        f"Multi-head self-attention ({heads} head{'s' if heads > 1 else ''}): each head its own kind of relevance",
        fontsize=FONT + 1,
    )
    return fig, ax


def positional_encoding(d_model: int = 64, n_positions: int = 64, highlight: int = 10):
    """Left: e^i added to each a^i before self-attention. Right: the sinusoidal encoding, shape (d_model, N)."""
    from .reference import sinusoidal_encoding

    if isinstance(highlight, bool) or not isinstance(highlight, (int, np.integer)):
        raise TypeError(f"highlight must be an int position, got {type(highlight).__name__}")
    E = sinusoidal_encoding(d_model, n_positions)  # (d_model, N): column p is e^p
    if not 0 <= highlight < n_positions:
        raise ValueError(f"highlight must be a position in [0, {n_positions}), got {highlight}")
    fig = plt.figure(figsize=(14.0, 5.2))
    ax = fig.add_axes((0.01, 0.04, 0.42, 0.84))
    ax.set_xlim(0.0, 9.6)
    ax.set_ylim(-0.6, 5.6)
    ax.set_aspect("equal")
    ax.axis("off")
    xs = [1.2, 3.4, 5.6, 7.8]
    _box(ax, 4.5, 4.7, "self-attention", w=8.4, h=0.75, color="#eeeeee")
    for i, x in enumerate(xs, start=1):
        _box(ax, x - 0.45, 0.3, f"$a^{{{i}}}$", w=0.8, h=0.6, color=INPUT)
        _box(ax, x + 0.55, 1.5, f"$e^{{{i}}}$", w=0.8, h=0.6, color="#fde4b8")
        _node(ax, x - 0.45, 2.7, "+", r=0.28)
        _arrow(ax, (x - 0.45, 0.6), (x - 0.45, 2.42))
        _arrow(ax, (x + 0.55, 1.8), (x - 0.23, 2.55), rad=0.25)
        _arrow(ax, (x - 0.45, 2.98), (x - 0.45, 4.3))
        ax.text(x - 0.3, 3.6, f"$a^{{{i}}} + e^{{{i}}}$", ha="left", va="center", fontsize=FONT - 3)
    ax.text(
        4.5,
        -0.45,
        "each position $i$ has its own vector $e^{i}$ (hand-crafted or learned)",
        ha="center",
        va="center",
        fontsize=FONT - 2,
        color="#444",
    )
    ax.set_title("No position information in self-attention: add $e^{i}$", fontsize=FONT)
    ax_h = fig.add_axes((0.50, 0.13, 0.42, 0.75))
    image = ax_h.imshow(E, cmap="RdBu_r", vmin=-1, vmax=1, aspect="auto", interpolation="nearest")
    ax_h.add_patch(Rectangle((highlight - 0.5, -0.5), 1.0, d_model, fill=False, edgecolor="black", linewidth=1.8))
    ax_h.text(highlight, -1.2, f"$e^{{{highlight}}}$", ha="center", va="bottom", fontsize=FONT)
    ax_h.set_xlabel("position $p$", fontsize=FONT - 1)
    ax_h.set_ylabel("dimension (sin at even rows, cos at odd)", fontsize=FONT - 2)
    ax_h.set_title("sinusoidal $e^{p}$: $\\sin$ / $\\cos$ of $p / 10000^{2i/d}$", fontsize=FONT, pad=30)
    cax = fig.add_axes((0.935, 0.13, 0.015, 0.75))
    fig.colorbar(image, cax=cax)
    return fig, ax


def tiling(blocks: int = 4, current: tuple[int, int] = (1, 2)):
    """Flash attention's tiling (row convention): one Q block meets K, V blocks in turn, with a running max and sum."""
    if isinstance(blocks, bool) or not isinstance(blocks, (int, np.integer)) or not 2 <= blocks <= 6:
        raise ValueError(f"blocks must be an int from 2 to 6, got {blocks!r}")
    if (
        not isinstance(current, tuple)
        or len(current) != 2
        or not all(isinstance(v, (int, np.integer)) and 0 <= v < blocks for v in current)
    ):
        raise ValueError(f"current must be a (row block, column block) pair in [0, {blocks}), got {current!r}")
    qi, kj = current
    b = 1.0  # side of one block
    fig, ax = _canvas(13.0, 5.6, (-1.4, 14.4), (-0.9, blocks + 1.6))
    x0, ytop = 1.6, blocks  # top-left corner of the score grid S = Q K^T (never stored whole)

    # K^T on top: one column block per key block
    for j in range(blocks):
        col = KEY if j == kj else "#e6f2e6"
        ax.add_patch(Rectangle((x0 + j * b, ytop + 0.35), b, 0.55, facecolor=col, edgecolor=EDGE, lw=1.0))
        ax.text(x0 + j * b + b / 2, ytop + 0.62, f"$K_{{{j}}}^{{\\top}}$", ha="center", va="center", fontsize=FONT - 1)
    # Q on the left: one row block per query block
    for i in range(blocks):
        col = QUERY if i == qi else "#fbeadb"
        ax.add_patch(Rectangle((x0 - 0.9, ytop - (i + 1) * b), 0.55, b, facecolor=col, edgecolor=EDGE, lw=1.0))
        ax.text(x0 - 0.62, ytop - (i + 0.5) * b, f"$Q_{{{i}}}$", ha="center", va="center", fontsize=FONT - 1)
    # the score tiles: done, current, to come (only the current tile is held, in fast on-chip memory)
    for i in range(blocks):
        for j in range(blocks):
            if i == qi and j < kj:
                col, hatch = "#f6ecb4", None
            elif i == qi and j == kj:
                col, hatch = SCORE, None
            elif i == qi:
                col, hatch = "white", "//"
            else:
                col, hatch = "#f7f7f7", None
            ax.add_patch(
                Rectangle((x0 + j * b, ytop - (i + 1) * b), b, b, facecolor=col, edgecolor="#888", lw=0.8, hatch=hatch)
            )
    ax.add_patch(Rectangle((x0 + kj * b, ytop - (qi + 1) * b), b, b, fill=False, edgecolor=FOCUS, lw=2.4))
    ax.text(x0 + (kj + 0.5) * b, ytop - (qi + 0.5) * b, f"$S_{{{qi}{kj}}}$", ha="center", va="center", fontsize=FONT)
    for j in range(kj):
        ax.text(
            x0 + (j + 0.5) * b, ytop - (qi + 0.5) * b, "done", ha="center", va="center", fontsize=FONT - 4, color="#776"
        )
    _arrow(
        ax,
        (x0 + 0.1, ytop - (qi + 1) * b - 0.25),
        (x0 + blocks * b - 0.1, ytop - (qi + 1) * b - 0.25),
        color=FOCUS,
        lw=1.5,
    )
    ax.text(
        x0 + blocks * b / 2,
        ytop - (qi + 1) * b - 0.5,
        "inner loop over key blocks $j$",
        ha="center",
        va="top",
        fontsize=FONT - 3,
        color=FOCUS,
    )
    ax.text(
        x0 - 1.05,
        ytop - blocks * b / 2,
        "one program per query block\n(all run in parallel)",
        rotation=90,
        ha="right",
        va="center",
        fontsize=FONT - 3,
        color="#444",
    )
    ax.text(
        x0 + blocks * b / 2,
        -0.35,
        r"$S = Q K^{\top}$ ($N \times N$) is never stored whole",
        ha="center",
        va="center",
        fontsize=FONT - 2,
        color="#444",
    )
    # V on the right: row blocks paired with K's column blocks
    xv = x0 + blocks * b + 0.9
    for j in range(blocks):
        col = VALUE if j == kj else "#e8edf9"
        ax.add_patch(Rectangle((xv, ytop - (j + 1) * b), 0.7, b, facecolor=col, edgecolor=EDGE, lw=1.0))
        ax.text(xv + 0.35, ytop - (j + 0.5) * b, f"$V_{{{j}}}$", ha="center", va="center", fontsize=FONT - 1)
    # what one program holds in fast on-chip memory (SRAM) while it works on tile (i, j)
    xs = xv + 1.5
    y_top = ytop + 0.95
    ax.add_patch(
        FancyBboxPatch(
            (xs, y_top - 2.35),
            5.6,
            2.35,
            boxstyle="round,pad=0,rounding_size=0.12",
            facecolor="#fffdf4",
            edgecolor="#a08c3c",
            linewidth=1.5,
            linestyle="--",
        )
    )
    ax.text(
        xs + 0.15,
        y_top - 0.12,
        f"on-chip memory of the program for $Q_{{{qi}}}$",
        ha="left",
        va="top",
        fontsize=FONT - 3,
        color="#7a6a2c",
    )
    y1, y2 = y_top - 0.95, y_top - 1.75
    for k, (name, col) in enumerate(
        ((f"$Q_{{{qi}}}$", QUERY), (f"$K_{{{kj}}}$", KEY), (f"$V_{{{kj}}}$", VALUE), (f"$S_{{{qi}{kj}}}$", SCORE))
    ):
        _box(ax, xs + 0.75 + 1.3 * k, y1, name, w=1.0, h=0.55, color=col, round_=0.04)
    for k, (name, col) in enumerate(
        ((f"$m_{{{qi}}}$", "#fff3d6"), (f"$\\ell_{{{qi}}}$", "#fff3d6"), (f"$O_{{{qi}}}$", OUTPUT))
    ):
        xk = xs + 0.75 + 1.3 * k
        _box(ax, xk, y2, name, w=1.0, h=0.55, color=col, round_=0.04)
    ax.text(xs + 0.75 + 1.3 * 3, y2, "running\nper query", ha="center", va="center", fontsize=FONT - 4, color="#555")
    rules = (
        r"for each key block $j$:",
        r"$S = \mathrm{scale} \cdot Q_{i} K_{j}^{\top}$",
        r"$m' = \max(m,\ \mathrm{rowmax}(S))$",
        r"$P = e^{S - m'}$",
        r"$\ell \leftarrow e^{m - m'}\,\ell + \mathrm{rowsum}(P)$",
        r"$O \leftarrow e^{m - m'}\,O + P\,V_{j}$",
        r"$m \leftarrow m'$",
        r"at the end: $O_{i} = O / \ell$  (exact softmax)",
    )
    ax.text(
        xs,
        y_top - 2.6,
        "\n".join(rules),
        ha="left",
        va="top",
        fontsize=FONT - 2,
        linespacing=1.55,
        bbox=dict(boxstyle="round,pad=0.4", facecolor="#fafafa", edgecolor="#bbb"),
    )
    ax.set_title(
        "Flash attention: tiles of $Q$, $K$, $V$ with a running max and sum (online softmax)", fontsize=FONT + 1
    )
    return fig, ax


def vector_sets():
    """Lesson 01: words, audio frames and graph nodes all become a set of vectors a^1 ... a^N."""
    fig, ax = _canvas(13.0, 6.2, (-0.3, 15.6), (-0.6, 7.3))
    rng = np.random.default_rng(3)

    def column(x, y, values, color, label=None, empty=None):
        """A vector drawn as a column of cells; with `empty`, cells holding 0 get that colour (one-hot)."""
        for r, v in enumerate(values):
            blank = empty is not None and float(v) == 0.0
            ax.add_patch(
                Rectangle(
                    (x, y - (r + 1) * 0.28),
                    0.36,
                    0.28,
                    facecolor=empty if blank else color,
                    edgecolor=EDGE,
                    linewidth=0.7,
                    alpha=1.0 if empty is not None else 0.35 + 0.65 * float(v),
                )
            )
            if empty is not None:
                ax.text(x + 0.18, y - (r + 0.5) * 0.28, f"{v:g}", ha="center", va="center", fontsize=FONT - 6)
        if label:
            ax.text(x + 0.18, y + 0.12, label, ha="center", va="bottom", fontsize=FONT - 2)

    rows = (6.1, 3.6, 1.1)
    # words
    ax.text(0.0, rows[0] + 0.35, "words", ha="left", va="center", fontsize=FONT, weight="bold")
    for i, w in enumerate(("this", "is", "a", "cat")):
        _box(ax, 0.6 + 1.15 * i, rows[0] - 0.45, w, w=1.0, h=0.5, color=INPUT, fontsize=FONT - 1)
    # audio: a waveform cut into 25 ms windows every 10 ms, so neighbouring windows overlap by 15 ms (60%)
    ax.text(0.0, rows[1] + 0.35, "audio", ha="left", va="center", fontsize=FONT, weight="bold")
    t = np.linspace(0, 4.4, 400)
    ax.plot(0.1 + t, rows[1] - 0.45 + 0.3 * np.sin(9 * t) * np.sin(1.3 * t + 0.4), color="#4c72b0", lw=1.2)
    win, hop = 1.75, 0.7  # 25 ms and 10 ms drawn to scale: hop / window = 0.4
    for k in range(4):
        x_start, y_bar = 0.4 + hop * k, rows[1] - 0.93 - 0.13 * k  # staggered so each window shows
        ax.plot(
            [x_start, x_start, x_start + win, x_start + win],
            [y_bar + 0.09, y_bar, y_bar, y_bar + 0.09],
            color=HEAD2,
            lw=1.6,
        )
        ax.text(x_start - 0.07, y_bar, str(k + 1), ha="right", va="center", fontsize=FONT - 5, color=HEAD2)
    ax.text(
        2.5,
        rows[1] - 1.48,
        "25 ms windows, one every 10 ms: 100 frames per second",
        ha="center",
        va="top",
        fontsize=FONT - 4,
        color="#555",
    )
    # graph: a molecule-like graph, one vector per node
    ax.text(0.0, rows[2] + 0.35, "graph", ha="left", va="center", fontsize=FONT, weight="bold")
    pos = {0: (0.8, 0.6), 1: (1.9, 0.9), 2: (3.0, 0.5), 3: (2.1, -0.15), 4: (4.0, 0.95)}
    for a, b in ((0, 1), (1, 2), (1, 3), (2, 4)):
        ax.plot(*zip(pos[a], pos[b]), color="#666", lw=1.5, zorder=0)
    for node, (x, y) in pos.items():
        _node(ax, x, y + 0.0, "", r=0.2, color=["#bbbbbb", "#bbbbbb", "#e07070", "#bbbbbb", "#7090e0"][node])
    ax.text(
        2.5,
        -0.55,
        "social network, molecule (one-hot atom type)",
        ha="center",
        va="center",
        fontsize=FONT - 4,
        color="#555",
    )
    # each becomes a set of vectors
    for y in rows:
        _arrow(ax, (5.0, y - 0.45), (6.3, y - 0.45), lw=1.6)
    ax.text(5.65, rows[0] - 0.15, "one-hot", ha="center", va="bottom", fontsize=FONT - 4, color="#555")
    ax.text(5.65, rows[0] - 0.75, "(or a learned\nembedding)", ha="center", va="top", fontsize=FONT - 5, color="#555")
    ax.text(5.65, rows[1] - 0.15, "spectrum\nper frame", ha="center", va="bottom", fontsize=FONT - 4, color="#555")
    ax.text(5.65, rows[2] - 0.15, "features\nper node", ha="center", va="bottom", fontsize=FONT - 4, color="#555")
    # words: one-hot over a 5-word vocabulary (one filled cell per column); audio and graph: real-valued features
    for i, word_index in enumerate((3, 2, 0, 1)):  # vocabulary a, cat, is, this, sat
        column(6.6 + 0.6 * i, rows[0] + 0.25, np.eye(5)[word_index], QUERY, f"$a^{{{i + 1}}}$", empty="white")
    for r, (y, n) in enumerate(zip(rows[1:], (4, 5)), start=1):
        for i in range(n):
            column(6.6 + 0.6 * i, y + 0.25, rng.random(5), (QUERY, VALUE, KEY)[r], f"$a^{{{i + 1}}}$")
    # the three kinds of output
    x0 = 10.2
    ax.plot([x0 - 0.35, x0 - 0.35], [-0.5, 7.0], color="#bbb", lw=1.0, ls="--")
    ax.text(x0, rows[0] + 0.7, "what comes out", ha="left", va="center", fontsize=FONT, weight="bold")
    kinds = (
        ("N vectors, N labels", "POS tagging:\nI     saw   a    saw\nPRON  VERB  DET  NOUN"),
        ("N vectors, 1 label", "sentiment:\n'this is good' -> positive"),
        ("N vectors, N' labels", "seq2seq:\ntranslation, speech\nrecognition"),
    )
    for (title, example_), y in zip(kinds, rows):
        _box(ax, x0 + 2.6, y - 0.45, "", w=5.2, h=1.6, color="#f7f7f7", edge="#bbb")
        ax.text(x0 + 0.15, y + 0.15, title, ha="left", va="center", fontsize=FONT - 2, weight="bold")
        ax.text(
            x0 + 0.15,
            y - 0.65,
            example_,
            ha="left",
            va="center",
            fontsize=FONT - 3,
            family="monospace",
            linespacing=1.3,
        )
    ax.set_title(
        "Inputs are sets of vectors; outputs are one label per vector, one per set, or a new sequence", fontsize=FONT
    )
    return fig, ax


def cnn_vs_self_attention(size: int = 7, pixel: tuple[int, int] = (3, 3)):
    """Lesson 08: a CNN sees a fixed 3x3 window; self-attention over pixels learns its receptive field."""
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or not 3 <= size <= 12:
        raise ValueError(f"size must be an int from 3 to 12, got {size!r}")
    if not (isinstance(pixel, tuple) and len(pixel) == 2 and all(0 <= p < size for p in pixel)):
        raise ValueError(f"pixel must be a (row, column) pair in [0, {size}), got {pixel!r}")
    fig, ax = _canvas(12.0, 5.4, (-0.5, 2 * size + 4.6), (-2.3, size + 1.2))
    r0, c0 = pixel
    yy, xx = np.mgrid[0:size, 0:size]
    # a made-up learned attention map: strongest nearby, some far pixels that look alike
    attn = np.exp(-((yy - r0) ** 2 + (xx - c0) ** 2) / 6.0)
    attn[1, size - 2] = attn[size - 1, 0] = 0.55
    attn /= attn.max()
    for panel, x0 in enumerate((0.0, size + 3.5)):
        for r in range(size):
            for c in range(size):
                if panel == 0:
                    inside = abs(r - r0) <= 1 and abs(c - c0) <= 1
                    color, alpha = (HEAD1, 0.75) if inside else ("white", 1.0)
                else:
                    color, alpha = HEAD2, 0.1 + 0.85 * attn[r, c]
                ax.add_patch(
                    Rectangle(
                        (x0 + c, size - 1 - r), 1, 1, facecolor=color, alpha=alpha, edgecolor="#999", linewidth=0.6
                    )
                )
        ax.add_patch(Rectangle((x0 + c0, size - 1 - r0), 1, 1, fill=False, edgecolor="black", linewidth=2.4))
    ax.text(size / 2, size + 0.5, "CNN: a fixed 3×3 receptive field", ha="center", fontsize=FONT)
    ax.text(
        size + 3.5 + size / 2, size + 0.5, "self-attention: every pixel, learned weights", ha="center", fontsize=FONT
    )
    ax.text(size + 1.75, size / 2, "⊂", ha="center", va="center", fontsize=40, color="#444")
    ax.text(
        size + 1.75,
        -1.2,
        "an image is a set of vectors: one per pixel (its channels).  CNN = self-attention restricted to a"
        " window;\nwith little data the CNN's prior wins; with lots of data self-attention can win\n"
        "(ViT paper; not reachable at this course's scale)",
        ha="center",
        va="center",
        fontsize=FONT - 2,
        color="#333",
    )
    ax.set_title("CNN is a restricted self-attention", fontsize=FONT + 1)
    return fig, ax


def rnn_vs_self_attention(n: int = 5):
    """Lesson 09: an RNN walks the sequence step by step; self-attention links every pair in one step."""
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or not 3 <= n <= 8:
        raise ValueError(f"n must be an int from 3 to 8, got {n!r}")
    step = 1.9
    fig, ax = _canvas(12.0, 6.0, (-2.0, step * n + 2.6), (-0.8, 7.0))
    xs = [0.6 + step * i for i in range(n)]
    # RNN on top
    y_in, y_h = 4.3, 5.7
    for i, x in enumerate(xs, start=1):
        _box(ax, x, y_in, f"$a^{{{i}}}$", w=0.8, h=0.5, color=INPUT)
        _box(ax, x, y_h, f"$h^{{{i}}}$", w=0.8, h=0.5, color=OUTPUT)
        _arrow(ax, (x, y_in + 0.25), (x, y_h - 0.25))
        if i > 1:
            _arrow(ax, (x - step + 0.4, y_h), (x - 0.4, y_h), color=FOCUS, lw=1.6)
            ax.text(x - step / 2, y_h + 0.3, f"step {i - 1}", ha="center", va="bottom", fontsize=FONT - 4, color=FOCUS)
    ax.text(-1.9, (y_in + y_h) / 2, "RNN", ha="left", va="center", fontsize=FONT, weight="bold")
    ax.text(
        xs[-1] + 0.7,
        y_h,
        f"{n - 1} steps in a row;\n$a^{{1}}$ reaches $h^{{{n}}}$\nthrough {n - 1} updates",
        ha="left",
        va="center",
        fontsize=FONT - 3,
    )
    # self-attention below
    y_in, y_b = 0.2, 2.6
    for i, x in enumerate(xs, start=1):
        _box(ax, x, y_in, f"$a^{{{i}}}$", w=0.8, h=0.5, color=INPUT)
        _box(ax, x, y_b, f"$b^{{{i}}}$", w=0.8, h=0.5, color=OUTPUT)
    for i, xi in enumerate(xs):
        for j, xj in enumerate(xs):
            ax.add_patch(
                FancyArrowPatch(
                    (xj, y_in + 0.25),
                    (xi, y_b - 0.25),
                    arrowstyle="-",
                    color="#4c72b0",
                    alpha=0.35 if i != j else 0.8,
                    linewidth=1.0,
                )
            )
    ax.text(-1.9, (y_in + y_b) / 2, "self-\nattention", ha="left", va="center", fontsize=FONT, weight="bold")
    ax.text(
        xs[-1] + 0.7,
        (y_in + y_b) / 2,
        "every pair linked:\none parallel step,\n$N^2$ scores",
        ha="left",
        va="center",
        fontsize=FONT - 3,
    )
    ax.set_title("Sequential steps vs one parallel step", fontsize=FONT + 1)
    return fig, ax


def graph_attention():
    """Lesson 10: on a graph, each node attends only along edges: the adjacency masks the attention matrix."""
    edges = ((0, 1), (0, 2), (1, 2), (2, 3), (3, 4))
    n = 5
    adj = np.eye(n, dtype=bool)
    for a, b in edges:
        adj[a, b] = adj[b, a] = True
    fig, ax = _canvas(11.0, 5.2, (-0.5, 12.2), (-1.6, 5.1))
    pos = {0: (0.6, 3.0), 1: (0.6, 0.8), 2: (2.3, 1.9), 3: (4.1, 2.6), 4: (5.6, 1.3)}
    for a, b in edges:
        ax.plot(*zip(pos[a], pos[b]), color="#666", lw=1.8, zorder=0)
    for node, (x, y) in pos.items():
        _node(ax, x, y, str(node + 1), r=0.34, color=INPUT if node != 2 else QUERY, fontsize=FONT)
    for b in range(n):
        if adj[2, b] and b != 2:
            _arrow(ax, pos[b], pos[2], color=HEAD2, lw=2.0, rad=0.25, shrink=14)
    ax.text(
        3.0,
        -0.4,
        "node 3 attends to itself and its neighbours 1, 2, 4 only",
        ha="center",
        va="center",
        fontsize=FONT - 2,
        color="#444",
    )
    x0, top, c = 7.6, 3.7, 0.72
    for i in range(n):
        for j in range(n):
            color = (QUERY if i == 2 else SCORE) if adj[i, j] else "#eeeeee"
            ax.add_patch(
                Rectangle((x0 + j * c, top - (i + 1) * c), c, c, facecolor=color, edgecolor="#888", linewidth=0.8)
            )
            if not adj[i, j]:
                ax.text(
                    x0 + (j + 0.5) * c,
                    top - (i + 0.5) * c,
                    "×",
                    ha="center",
                    va="center",
                    color="#999",
                    fontsize=FONT - 2,
                )
        ax.text(x0 - 0.2, top - (i + 0.5) * c, str(i + 1), ha="right", va="center", fontsize=FONT - 2)
        ax.text(x0 + (i + 0.5) * c, top + 0.15, str(i + 1), ha="center", va="bottom", fontsize=FONT - 2)
    ax.text(
        x0 + n * c / 2,
        top + 0.6,
        "attention matrix (query row, key column)",
        ha="center",
        va="bottom",
        fontsize=FONT - 2,
    )
    ax.text(
        x0 + n * c / 2,
        top - n * c - 0.35,
        "× : no edge, masked before the softmax",
        ha="center",
        va="top",
        fontsize=FONT - 3,
        color="#444",
    )
    ax.set_title("Self-attention on a graph: a kind of graph neural network", fontsize=FONT + 1)
    return fig, ax


def efficient_patterns(n: int = 12):
    """Lesson 11: which scores each efficient variant computes: full, local, strided, global + local; Linformer's
    N x r scores and linear attention's phi(Q) (phi(K)^T V), which has no score matrix at all.

    Rows are queries, columns keys. "strided" is the Sparse Transformer's pattern (Child et al., 2019): causal,
    each query sees the s previous keys (itself included) and every s-th key before them, s = round(sqrt(N)).
    """
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or not 6 <= n <= 24:
        raise ValueError(f"n must be an int from 6 to 24, got {n!r}")
    i, j = np.mgrid[0:n, 0:n]  # i: query (row), j: key (column)
    stride = int(round(np.sqrt(n)))
    local = np.abs(i - j) <= 1
    strided = (j <= i) & ((i - j < stride) | ((i - j) % stride == 0))
    global_local = local | (i == 0) | (j == 0)
    panels = (
        ("full: $N^2$", np.ones((n, n), bool), ""),
        ("local window", local, ""),
        ("strided (sparse)", strided, f"causal, s = {stride}: the last s keys\nand every s-th key before them"),
        ("global + local", global_local, ""),
    )
    c = 3.0 / n
    fig, ax = _canvas(14.0, 4.0, (-0.3, 19.6), (-1.3, 3.8))
    for k, (title, m, note) in enumerate(panels):
        x0 = k * 3.9
        for r in range(n):
            for s in range(n):
                ax.add_patch(
                    Rectangle(
                        (x0 + s * c, 3.0 - (r + 1) * c),
                        c,
                        c,
                        facecolor=SCORE if m[r, s] else "white",
                        edgecolor="#bbb",
                        linewidth=0.4,
                    )
                )
        ax.add_patch(Rectangle((x0, 0), 3.0, 3.0, fill=False, edgecolor=EDGE, linewidth=1.0))
        ax.text(x0 + 1.5, 3.25, title, ha="center", va="bottom", fontsize=FONT - 1)
        ax.text(
            x0 + 1.5, -0.3, f"{int(m.sum())} of {n * n} scores", ha="center", va="top", fontsize=FONT - 3, color="#444"
        )
        if note:
            ax.text(x0 + 1.5, -0.78, note, ha="center", va="top", fontsize=FONT - 5, color="#444")
    # the last panel's area holds two methods drawn as shapes: Linformer's N x r scores, linear attention's products
    x0 = 4 * 3.9
    rank = 3
    x_lin = x0 + 0.15  # Linformer: an (N, r) score matrix, one cell per score
    _grid(ax, x_lin, 3.0, n, rank, c, SCORE, lw=0.4, edge="#bbb")
    ax.add_patch(Rectangle((x_lin, 0), rank * c, 3.0, fill=False, edgecolor=EDGE, linewidth=1.0))
    ax.text(x_lin + rank * c / 2, 3.25, "Linformer", ha="center", va="bottom", fontsize=FONT - 1)
    ax.text(
        x_lin + rank * c + 0.12,
        1.5,
        f"$N{{\\times}}r$\nscores\n(r = {rank})",
        ha="left",
        va="center",
        fontsize=FONT - 4,
    )
    ax.text(
        x_lin + rank * c / 2,
        -0.3,
        f"{n * rank} of {n * n} scores",
        ha="center",
        va="top",
        fontsize=FONT - 3,
        color="#444",
    )
    x_phi = x0 + 2.3  # linear attention: phi(Q) (N, d) times phi(K)^T V (d, d_v)
    ax.plot([x_phi - 0.45, x_phi - 0.45], [-0.2, 3.3], color="#bbb", lw=1.0, ls="--")
    ax.add_patch(Rectangle((x_phi, 0.0), 0.5, 3.0, facecolor=QUERY, edgecolor=EDGE))
    ax.text(x_phi + 0.25, 1.5, "$\\phi(Q)$: $N{\\times}d$", rotation=90, ha="center", va="center", fontsize=FONT - 4)
    ax.text(x_phi + 0.7, 2.75, "$\\cdot$", ha="center", va="center", fontsize=FONT + 2)
    ax.add_patch(Rectangle((x_phi + 0.9, 2.5), 0.5, 0.5, facecolor=VALUE, edgecolor=EDGE))
    ax.text(
        x_phi + 1.15,
        2.35,
        "$\\phi(K)^{\\top} V$\n$d{\\times}d_v$",
        ha="center",
        va="top",
        fontsize=FONT - 4,
        linespacing=1.4,
    )
    ax.text(x_phi + 1.15, 0.9, "no $N{\\times}N$\nmatrix", ha="center", va="center", fontsize=FONT - 4)
    ax.text(x_phi + 0.7, 3.25, "linear", ha="center", va="bottom", fontsize=FONT - 1)
    ax.text(x_phi + 0.7, -0.3, "no scores", ha="center", va="top", fontsize=FONT - 3, color="#444")
    ax.text(x0 + 1.9, -0.78, "both cost about $N$", ha="center", va="top", fontsize=FONT - 5, color="#444")
    ax.set_title(
        "Efficient self-attention: compute fewer scores, or none of the $N{\\times}N$ matrix", fontsize=FONT + 1
    )
    return fig, ax


def char_language_model(n: int = 8):
    """Lesson 12: a character model (embedding, pre-norm blocks with causal RoPE attention, logits) and the two
    attention patterns lesson 12 looks for: previous character, and induction (copy what followed last time)."""
    fig, ax = _canvas(13.0, 6.0, (-0.6, 13.4), (-0.9, 6.0))
    text = "ROMEO. R"
    for i, c in enumerate(text):
        _box(ax, 0.4 + 0.62 * i, 0.0, c if c != " " else "␣", w=0.52, h=0.5, color=INPUT, fontsize=FONT - 2)
    _box(ax, 2.6, 1.1, "embedding", w=3.2, h=0.55, color=LEARNED, fontsize=FONT - 2)
    _arrow(ax, (2.6, 0.28), (2.6, 0.82))
    ax.add_patch(
        FancyBboxPatch(
            (0.7, 1.75),
            3.8,
            2.55,
            boxstyle="round,pad=0.05,rounding_size=0.15",
            fill=False,
            edgecolor=EDGE,
            linestyle="--",
            lw=1.2,
        )
    )
    ax.text(4.62, 3.0, "× 2", ha="left", va="center", fontsize=FONT)
    _box(
        ax,
        2.6,
        2.2,
        "LayerNorm → causal multi-head\nattention (RoPE q, k) → +",
        w=3.5,
        h=0.65,
        color=SCORE,
        fontsize=FONT - 3,
    )
    _box(ax, 2.6, 3.45, "LayerNorm → MLP → +", w=3.5, h=0.55, color=OUTPUT, fontsize=FONT - 3)
    _arrow(ax, (2.6, 1.38), (2.6, 1.87))
    _arrow(ax, (2.6, 2.53), (2.6, 3.17))
    _box(ax, 2.6, 4.75, "LayerNorm → logits over 76 characters", w=4.4, h=0.55, color=LEARNED, fontsize=FONT - 3)
    _arrow(ax, (2.6, 3.73), (2.6, 4.47))
    ax.text(2.6, 5.35, "next character: P(O | …R)", ha="center", va="center", fontsize=FONT - 2)
    _arrow(ax, (2.6, 5.03), (2.6, 5.2))
    for panel, (x0, title, target) in enumerate(
        ((6.4, "previous-token head", lambda i: i - 1), (9.9, "induction head", lambda i: i - n // 2 + 1))
    ):
        size, top = 0.36, 4.6
        for i in range(n):
            for j in range(n):
                on = j == target(i) and (panel == 0 or i >= n // 2)
                color = (HEAD1 if panel == 0 else HEAD2) if on else (INPUT if j <= i else "#f4f4f4")
                ax.add_patch(
                    Rectangle(
                        (x0 + j * size, top - (i + 1) * size),
                        size,
                        size,
                        facecolor=color,
                        edgecolor="#999",
                        linewidth=0.6,
                    )
                )
        ax.text(x0 + n * size / 2, top + 0.25, title, ha="center", va="bottom", fontsize=FONT - 2)
        ax.text(x0 - 0.15, top - n * size / 2, "query", ha="right", va="center", rotation=90, fontsize=FONT - 4)
        ax.text(x0 + n * size / 2, top - n * size - 0.15, "key", ha="center", va="top", fontsize=FONT - 4)
    ax.text(
        8.65,
        0.9,
        "on [r, r] (a random text repeated), the second copy of each character\n"
        "attends to the character that FOLLOWED its first copy: it can copy a name it has seen",
        ha="center",
        va="center",
        fontsize=FONT - 4,
        color="#444",
    )
    ax.text(
        8.65,
        0.1,
        "light cells: the causal mask allows them (key ≤ query)",
        ha="center",
        va="center",
        fontsize=FONT - 4,
        color="#444",
    )
    ax.set_title(
        "A character-level language model from the course's parts, and two head patterns to look for", fontsize=FONT + 1
    )
    return fig, ax


# name -> (function, keyword arguments): what `save_all` writes, one PNG per entry.
DIAGRAMS: dict[str, tuple[Callable[..., Any], dict[str, Any]]] = {
    "one_query": (one_query, {}),
    "one_query_scores": (one_query, {"focus": "scores"}),
    "one_query_softmax": (one_query, {"focus": "softmax"}),
    "one_query_sum": (one_query, {"focus": "sum"}),
    "matrix_form": (matrix_form, {}),
    "multi_head": (multi_head, {}),
    "positional_encoding": (positional_encoding, {}),
    "tiling": (tiling, {}),
    "vector_sets": (vector_sets, {}),
    "cnn_vs_self_attention": (cnn_vs_self_attention, {}),
    "rnn_vs_self_attention": (rnn_vs_self_attention, {}),
    "graph_attention": (graph_attention, {}),
    "efficient_patterns": (efficient_patterns, {}),
    "char_language_model": (char_language_model, {}),
}


def save_all(folder: str | Path = "images", dpi: int = 110) -> list[Path]:
    """Draw every diagram in DIAGRAMS and save it as folder/<name>.png; returns the paths written."""
    if isinstance(folder, (bytes, int)) or folder is None:
        raise TypeError(f"folder must be a path, got {type(folder).__name__}")
    if isinstance(dpi, bool) or not isinstance(dpi, int) or not 30 <= dpi <= 600:
        raise ValueError(f"dpi must be an int from 30 to 600, got {dpi!r}")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, (draw, kwargs) in DIAGRAMS.items():
        fig, _ = draw(**kwargs)
        path = folder / f"{name}.png"
        # no timestamp in the file, so regenerating gives the same bytes; the matplotlib version that drew it
        # is recorded (another version may draw text a pixel differently: tests then compare sizes only)
        fig.savefig(
            path,
            dpi=dpi,
            bbox_inches="tight",
            facecolor="white",
            metadata={"Software": None, "Source": f"course_utils.diagrams, matplotlib {matplotlib.__version__}"},
        )
        plt.close(fig)
        paths.append(path)
    return paths


if __name__ == "__main__":  # python -m course_utils.diagrams [folder]
    import sys

    for p in save_all(sys.argv[1] if len(sys.argv) > 1 else "images"):
        print(p)
