"""Plotting helpers for the lessons. Each takes arrays, returns (fig, ax), and never touches rcParams."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np

from ._validate import as_matrix

__all__ = ["heatmap", "heatmaps", "curves", "bars", "bubble_chart"]


def heatmap(
    matrix,
    ax=None,
    row_labels: Sequence[str] | None = None,
    col_labels: Sequence[str] | None = None,
    title: str | None = None,
    xlabel: str | None = None,
    ylabel: str | None = None,
    cmap: str = "viridis",
    annotate: bool = False,
    fmt: str = ".2f",
    vmin: float | None = None,
    vmax: float | None = None,
    colorbar: bool = True,
    colorbar_label: str | None = None,
):
    """Draw a 2-D array as a heatmap (row 0 at the top); `annotate` writes each value in its cell."""
    m = as_matrix(matrix, "matrix", finite=False)
    if ax is None:
        fig, ax = plt.subplots(figsize=(1.0 + 0.45 * m.shape[1], 0.8 + 0.4 * m.shape[0]) if annotate else None)
    else:
        fig = ax.figure
    image = ax.imshow(np.where(np.isfinite(m), m, np.nan), cmap=cmap, vmin=vmin, vmax=vmax, aspect="auto")
    for labels, set_ticks, set_labels, n in (
        (col_labels, ax.set_xticks, ax.set_xticklabels, m.shape[1]),
        (row_labels, ax.set_yticks, ax.set_yticklabels, m.shape[0]),
    ):
        if labels is not None:
            if len(labels) != n:
                raise ValueError(f"got {len(labels)} labels for {n} rows/columns of a matrix of shape {m.shape}")
            set_ticks(range(n))
            set_labels(labels)
    if annotate:
        for (i, j), value in np.ndenumerate(m):
            text = "-inf" if np.isneginf(value) else format(value, fmt)
            r, g, b, _ = image.cmap(image.norm(value)) if np.isfinite(value) else (1, 1, 1, 1)
            dark = 0.299 * r + 0.587 * g + 0.114 * b < 0.5  # text in the colour that reads on this cell
            ax.text(j, i, text, ha="center", va="center", fontsize=8, color="white" if dark else "black")
    if title:
        ax.set_title(title)
    if xlabel:
        ax.set_xlabel(xlabel)
    if ylabel:
        ax.set_ylabel(ylabel)
    if colorbar:
        bar = fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
        if colorbar_label:
            bar.set_label(colorbar_label)
    return fig, ax


def heatmaps(matrices: Sequence, titles: Sequence[str] | None = None, ncols: int | None = None, **kwargs):
    """Several heatmaps side by side (e.g. one per head); returns (fig, axes) with axes flattened."""
    if len(matrices) == 0:
        raise ValueError("matrices must hold at least one matrix, got none")
    if titles is not None and len(titles) != len(matrices):
        raise ValueError(f"got {len(titles)} titles for {len(matrices)} matrices")
    ncols = ncols or len(matrices)
    nrows = -(-len(matrices) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.2 * ncols, 3.0 * nrows), squeeze=False)
    axes = axes.ravel()
    for idx, m in enumerate(matrices):
        heatmap(m, ax=axes[idx], title=titles[idx] if titles else None, **kwargs)
    for ax in axes[len(matrices) :]:
        ax.axis("off")
    fig.tight_layout()
    return fig, axes


def curves(
    x,
    ys: Mapping[str, Sequence[float]],
    ax=None,
    xlabel: str = "",
    ylabel: str = "",
    title: str | None = None,
    logx: bool = False,
    logy: bool = False,
    marker: str = "o",
):
    """One line per entry of `ys` (label -> values over x), with a legend."""
    x = np.asarray(x)
    if ax is None:
        fig, ax = plt.subplots(figsize=(6, 4))
    else:
        fig = ax.figure
    for label, values in ys.items():
        y = np.asarray(values)
        if y.shape != x.shape:
            raise ValueError(f"ys[{label!r}] has shape {y.shape}, x has shape {x.shape}: they must match")
        ax.plot(x, y, marker=marker, label=label)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if logx:
        ax.set_xscale("log")
    if logy:
        ax.set_yscale("log")
    if title:
        ax.set_title(title)
    ax.grid(True, alpha=0.3)
    ax.legend()
    return fig, ax


def bars(values: Mapping[str, float], ax=None, ylabel: str = "", title: str | None = None, fmt: str = ".2f"):
    """A bar per entry (label -> value), each bar labelled with its value."""
    if ax is None:
        fig, ax = plt.subplots(figsize=(1.2 + 1.1 * len(values), 3.5))
    else:
        fig = ax.figure
    labels = list(values)
    heights = [float(values[k]) for k in labels]
    rects = ax.bar(labels, heights, color=plt.cm.tab10(np.arange(len(labels)) % 10))
    ax.bar_label(rects, labels=[format(h, fmt) for h in heights], padding=2)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    ax.margins(y=0.15)
    return fig, ax


def bubble_chart(
    x: Mapping[str, float],
    y: Mapping[str, float],
    size: Mapping[str, float],
    ax=None,
    xlabel: str = "",
    ylabel: str = "",
    title: str | None = None,
    logx: bool = False,
    size_label: str = "",
    stagger: float | None = None,
):
    """Labelled bubbles at (x, y) with area proportional to `size` (the Long Range Arena chart's layout).

    stagger: where several bubbles sit at one y level (rounded to 0.1), move their labels below them, each
    `stagger` data units further down, with a thin line to its bubble (None: labels on the bubbles).
    """
    if not (set(x) == set(y) == set(size)):
        raise ValueError(f"x, y and size must have the same labels, got {sorted(x)}, {sorted(y)}, {sorted(size)}")
    if ax is None:
        fig, ax = plt.subplots(figsize=(7, 4.5))
    else:
        fig = ax.figure
    labels = list(x)
    s = np.array([float(size[k]) for k in labels])
    area = 2000.0 * s / s.max() if s.max() > 0 else np.full(len(s), 100.0)
    colors = plt.cm.tab10(np.arange(len(labels)) % 10)
    ax.scatter([x[k] for k in labels], [y[k] for k in labels], s=area, c=colors, alpha=0.5, edgecolors="k")
    rows: dict[float, int] = {}
    for k in sorted(labels, key=lambda k: x[k]):
        if stagger is None:
            ax.annotate(k, (x[k], y[k]), ha="center", va="center", fontsize=8)
            continue
        level = round(float(y[k]), 1)
        rows[level] = rows.get(level, 0) + 1
        ax.annotate(
            k,
            (x[k], y[k]),
            xytext=(x[k], y[k] - stagger * rows[level]),
            ha="center",
            fontsize=8,
            arrowprops={"arrowstyle": "-", "color": "grey", "lw": 0.6},
        )
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if logx:
        ax.set_xscale("log")
    note = f"bubble area = {size_label}" if size_label else ""
    ax.set_title(f"{title} ({note})" if title and note else title or note)
    ax.grid(True, alpha=0.3)
    ax.margins(0.15)
    return fig, ax
