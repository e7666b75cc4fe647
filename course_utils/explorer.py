"""An attention explorer: pick a query token and see its weights; change the temperature (the scores are divided
by it), √d scaling, heads (numbered from 0), mask, and whether positions are added.

    cu.explorer.explore()                      # the built-in example sentence, random projections
    cu.explorer.explore(x, tokens, wq, wk)     # your own embeddings (N, D) and projections (D, D)

In a live notebook frontend (JupyterLab, Colab, VS Code) with ipywidgets installed it shows controls; elsewhere
(ipywidgets missing, a plain viewer, nbclient, nbval) it draws one static figure of the same view, which is
deterministic, so a lesson's stored output passes strict nbval. `interactive=True/False` overrides the choice.

Row convention, as PyTorch: x is (N, D), q = x W_qᵀ, split into H heads of d = D / H; the weights come from
`course_utils.attention.attention_weights` with scale = (1/√d if scaled else 1) / temperature.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace

import matplotlib.pyplot as plt
import numpy as np
import torch

from ._validate import as_matrix, shape_of
from .attention import attention_weights, causal_mask, window_mask
from .plotting import heatmap

__all__ = [
    "ExplorerConfig",
    "MASKS",
    "POSITIONS",
    "example",
    "weights",
    "figure",
    "build_widget",
    "explore",
    "live_frontend",
]

MASKS = ("none", "causal", "window")
POSITIONS = ("none", "sinusoidal")
EXAMPLE_TOKENS = ("the", "cat", "sat", "on", "the", "mat", "because", "it", "was", "warm")


@dataclass(frozen=True)
class ExplorerConfig:
    """What the explorer shows."""

    query: int = 1  # the query token whose weights are shown (a row of the attention matrix)
    temperature: float = 1.0  # scores are divided by it: below 1 sharpens the softmax, above 1 flattens it
    scaled: bool = True  # multiply scores by 1/sqrt(d) (d = head dim) as torch's SDPA; False: the lecture's q·k
    heads: int = 2  # heads the width D is split into (must divide D)
    mask: str = "none"  # "none", "causal" (only the past) or "window" (|i - j| <= window)
    window: int = 1  # neighbours on each side the window mask keeps
    position: str = "none"  # "sinusoidal" adds the sinusoidal encoding e^i to each x_i before projecting

    def check(self, n: int, d_model: int) -> ExplorerConfig:
        """This config, or a ValueError naming the field that does not fit n tokens of width d_model."""
        if isinstance(self.query, bool) or not isinstance(self.query, (int, np.integer)) or not 0 <= self.query < n:
            raise ValueError(f"query must be a token index in [0, {n}), got {self.query!r}")
        if not isinstance(self.temperature, (int, float)) or not np.isfinite(self.temperature) or self.temperature <= 0:
            raise ValueError(f"temperature must be a finite positive number, got {self.temperature!r}")
        if not isinstance(self.scaled, (bool, np.bool_)):
            raise ValueError(f"scaled must be True or False, got {self.scaled!r}")
        if (
            isinstance(self.heads, bool)
            or not isinstance(self.heads, (int, np.integer))
            or self.heads < 1
            or d_model % self.heads
        ):
            raise ValueError(f"heads must be a positive divisor of the width D={d_model}, got {self.heads!r}")
        if self.mask not in MASKS:
            raise ValueError(f"mask must be one of {MASKS}, got {self.mask!r}")
        if isinstance(self.window, bool) or not isinstance(self.window, (int, np.integer)) or self.window < 0:
            raise ValueError(f"window must be a non-negative int, got {self.window!r}")
        if self.position not in POSITIONS:
            raise ValueError(f"position must be one of {POSITIONS}, got {self.position!r}")
        return self

    def describe(self, d_model: int) -> str:
        """One line: the settings as the figure's title states them."""
        d = d_model // self.heads
        scale = f"1/√{d}" if self.scaled else "1"
        mask = f"window ±{self.window}" if self.mask == "window" else self.mask
        position = ", + sinusoidal positions" if self.position == "sinusoidal" else ""
        return (
            f"{self.heads} head{'s' if self.heads > 1 else ''} (d={d}), scale {scale}, "
            f"scores ÷ temperature {self.temperature:g}, mask {mask}{position}"
        )


def example(d_model: int = 8, seed: int = 0) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray]:
    """A sentence of 10 tokens with fixed random embeddings x (N, D) and projections W_q, W_k (D, D)."""
    if isinstance(d_model, bool) or not isinstance(d_model, (int, np.integer)) or d_model < 1:
        raise ValueError(f"d_model must be a positive int, got {d_model!r}")
    rng = np.random.default_rng(seed)
    vocab = sorted(set(EXAMPLE_TOKENS))
    table = rng.standard_normal((len(vocab), d_model))  # one embedding per word: "the" twice, same vector
    x = np.stack([table[vocab.index(t)] for t in EXAMPLE_TOKENS])  # (N, D)
    # (D, D), q = x W_q^T; entries of variance 1/D keep q and k at unit variance, so 1/sqrt(d) matters
    wq = rng.standard_normal((d_model, d_model)) / np.sqrt(d_model)
    wk = rng.standard_normal((d_model, d_model)) / np.sqrt(d_model)
    return list(EXAMPLE_TOKENS), x, wq, wk


def _inputs(x, wq, wk) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    x = as_matrix(x, "x")
    wq = as_matrix(wq, "wq")
    wk = as_matrix(wk, "wk")
    d_model = x.shape[1]
    for name, w in (("wq", wq), ("wk", wk)):
        if w.shape != (d_model, d_model):
            raise ValueError(
                f"{name} must have shape (D, D) = ({d_model}, {d_model}) for x {shape_of(x)}, got {shape_of(w)}"
            )
    return x, wq, wk


def weights(x, wq, wk, config: ExplorerConfig = ExplorerConfig()) -> np.ndarray:
    """The attention weights per head, shape (H, N, N): row i is query i's weights over the keys."""
    x, wq, wk = _inputs(x, wq, wk)
    n, d_model = x.shape
    config.check(n, d_model)
    h, d = config.heads, d_model // config.heads
    if config.position == "sinusoidal":
        from .reference import sinusoidal_encoding

        x = x + sinusoidal_encoding(d_model, n).T  # (N, D) + (D, N)^T: row i gets e^i
    xt = torch.as_tensor(x)  # float64
    q = (xt @ torch.as_tensor(wq).T).reshape(n, h, d).transpose(0, 1)  # (N, D) @ (D, D) -> (N, D) -> (H, N, d)
    k = (xt @ torch.as_tensor(wk).T).reshape(n, h, d).transpose(0, 1)  # (H, N, d)
    scale = (1.0 / np.sqrt(d) if config.scaled else 1.0) / float(config.temperature)
    mask = {"none": None, "causal": causal_mask(n), "window": window_mask(n, int(config.window))}[config.mask]
    return attention_weights(q, k, attn_mask=mask, scale=scale).numpy()  # (H, N, N)


def figure(tokens, w: np.ndarray, config: ExplorerConfig, d_model: int):
    """Heatmaps of every head's weights (the query's row framed) and the query's weights as bars; (fig, axes)."""
    w = np.asarray(w, dtype=np.float64)
    if w.ndim != 3 or w.shape[1] != w.shape[2] or w.shape[1] != len(tokens):
        raise ValueError(f"w must have shape (H, N, N) with N = {len(tokens)} tokens, got {shape_of(w)}")
    h, n = w.shape[0], w.shape[1]
    q = config.query
    fig, axes = plt.subplots(1, h + 1, figsize=(2.9 * h + 4.6, 3.6), gridspec_kw={"width_ratios": [1.0] * h + [1.5]})
    labels = [f"{i}:{t}" for i, t in enumerate(tokens)]
    top = max(float(w.max()), 1e-12)  # one colour scale for every head
    for head in range(h):
        ax = axes[head]
        heatmap(
            w[head],
            ax=ax,
            row_labels=labels,
            col_labels=labels,
            vmin=0.0,
            vmax=top,
            colorbar=head == h - 1,
            title=f"head {head}",  # 0-based, as lessons 05-06 number heads
            xlabel="key",
            ylabel="query" if head == 0 else None,
        )
        ax.tick_params(axis="x", labelrotation=90, labelsize=7)
        ax.tick_params(axis="y", labelsize=7)
        ax.add_patch(plt.Rectangle((-0.5, q - 0.5), n, 1.0, fill=False, edgecolor="red", linewidth=2.0))
    ax = axes[-1]
    width = 0.8 / h
    for head in range(h):
        ax.bar(np.arange(n) + (head - (h - 1) / 2) * width, w[head, q], width=width, label=f"head {head}")
    ax.set_xticks(range(n))
    ax.set_xticklabels(labels, rotation=90, fontsize=7)
    ax.set_ylim(0.0, 1.05)
    ax.set_ylabel("weight")
    ax.set_title(f"weights of query {q} ({tokens[q]!r})")
    if h > 1:
        ax.legend(fontsize=7, loc="upper right")
    fig.suptitle(config.describe(d_model), fontsize=10)
    fig.tight_layout()
    return fig, axes


def live_frontend() -> bool:
    """True when code runs in a kernel driven by a live notebook frontend (one that can answer input()).

    nbclient asks with allow_stdin=False and nbval with store_history=False; JupyterLab, Colab and VS Code
    send both True. COURSE_UTILS_WIDGETS=0 or 1 overrides.
    """
    forced = os.environ.get("COURSE_UTILS_WIDGETS")
    if forced in ("0", "1"):
        return forced == "1"
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    kernel = getattr(get_ipython(), "kernel", None)
    if kernel is None or not hasattr(kernel, "get_parent"):
        return False
    content = (kernel.get_parent("shell") or {}).get("content", {})
    return bool(content.get("allow_stdin")) and bool(content.get("store_history"))


def build_widget(x=None, tokens=None, wq=None, wk=None, config: ExplorerConfig = ExplorerConfig()):
    """The interactive explorer as an ipywidgets VBox (controls above the figure); needs ipywidgets.

    The box's `.config` holds the current settings and `.weights` the (H, N, N) weights shown.
    """
    import ipywidgets as widgets

    tokens, x, wq, wk = _resolve(x, tokens, wq, wk)
    n, d_model = x.shape
    config.check(n, d_model)
    style = {"description_width": "initial"}
    controls = {
        "query": widgets.Dropdown(
            options=[(f"{i}: {t}", i) for i, t in enumerate(tokens)],
            value=config.query,
            description="query token",
            style=style,
            layout=widgets.Layout(width="230px"),
        ),
        "temperature": widgets.FloatLogSlider(
            value=config.temperature,
            base=10,
            min=-1,
            max=1,
            step=0.05,
            description="temperature",
            tooltip="the scores are divided by the temperature T before the softmax: T < 1 sharpens the weights, "
            "T > 1 flattens them",
            style=style,
            continuous_update=False,
        ),
        "scaled": widgets.Checkbox(value=bool(config.scaled), description="scale by 1/√d", style=style),
        "heads": widgets.Dropdown(
            options=[h for h in range(1, d_model + 1) if d_model % h == 0],
            value=config.heads,
            description="heads",
            style=style,
            layout=widgets.Layout(width="130px"),
        ),
        "mask": widgets.ToggleButtons(
            options=list(MASKS), value=config.mask, description="mask", style={**style, "button_width": "80px"}
        ),
        "window": widgets.IntSlider(
            value=config.window, min=0, max=max(1, n - 1), description="window ±", style=style, continuous_update=False
        ),
        "position": widgets.Dropdown(
            options=list(POSITIONS),
            value=config.position,
            description="positions",
            style=style,
            layout=widgets.Layout(width="210px"),
        ),
    }
    out = widgets.Output()
    box = widgets.VBox(
        [
            widgets.HBox([controls["query"], controls["heads"], controls["position"], controls["scaled"]]),
            widgets.HBox([controls["temperature"], controls["mask"], controls["window"]]),
            out,
        ]
    )

    def redraw(_=None) -> None:
        box.config = ExplorerConfig(**{name: c.value for name, c in controls.items()})
        box.weights = weights(x, wq, wk, box.config)
        controls["window"].disabled = box.config.mask != "window"
        with out:
            out.clear_output(wait=True)
            fig, _ = figure(tokens, box.weights, box.config, d_model)
            plt.show()
            plt.close(fig)

    for c in controls.values():
        c.observe(redraw, names="value")
    redraw()
    return box


def _resolve(x, tokens, wq, wk):
    """Fill in the example where x is None; check tokens against x."""
    if x is None:
        if wq is not None or wk is not None:
            raise ValueError("pass wq and wk together with x (or none of them for the example)")
        example_tokens, x, wq, wk = example()
        tokens = example_tokens if tokens is None else tokens
    elif wq is None or wk is None:
        raise ValueError("pass both wq and wk (shape (D, D)) with x")
    x, wq, wk = _inputs(x, wq, wk)
    tokens = [str(i) for i in range(x.shape[0])] if tokens is None else [str(t) for t in tokens]
    if len(tokens) != x.shape[0]:
        raise ValueError(f"tokens must name each of the N={x.shape[0]} rows of x {shape_of(x)}, got {len(tokens)}")
    return tokens, x, wq, wk


def explore(x=None, tokens=None, wq=None, wk=None, interactive: bool | None = None, **settings) -> None:
    """Show the explorer: widgets in a live frontend, else a static figure of the same view.

    x (N, D), wq and wk (D, D) default to `example()`; `settings` are ExplorerConfig fields (query=3, mask=...).
    Returns nothing, so a cell ending with this call stores one figure and no repr.
    """
    unknown = set(settings) - set(ExplorerConfig.__dataclass_fields__)
    if unknown:
        fields = list(ExplorerConfig.__dataclass_fields__)
        raise TypeError(f"unknown settings {sorted(unknown)}; ExplorerConfig has {fields}")
    config = replace(ExplorerConfig(), **settings)
    tokens, x, wq, wk = _resolve(x, tokens, wq, wk)
    config.check(*x.shape)
    if interactive is None:
        interactive = live_frontend()
    if interactive:
        try:
            import ipywidgets  # noqa: F401
        except ImportError:
            interactive = False
    if interactive:
        from IPython.display import display

        box = build_widget(x, tokens, wq, wk, config)
        # a fixed text/plain twin (not the widget's repr) keeps stored outputs stable
        display(
            {
                "text/plain": "attention explorer (widgets: run the cell in a live notebook)",
                "application/vnd.jupyter.widget-view+json": {
                    "version_major": 2,
                    "version_minor": 0,
                    "model_id": box.model_id,
                },
            },
            raw=True,
        )
        return None
    fig, _ = figure(tokens, weights(x, wq, wk, config), config, x.shape[1])
    plt.show()
    return None
