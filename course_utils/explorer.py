"""An attention explorer: pick a query token and see its weights; change the temperature (the scores are divided
by it), √d scaling, heads (numbered from 0), mask, and whether positions are added.

    cu.explorer.explore()                      # the built-in example sentence, random projections
    cu.explorer.explore(x, tokens, wq, wk)     # your own embeddings (N, D) and projections (D, D)
    cu.explorer.explore(model="shakespeare", text="To be, or not to be")   # lesson 12's trained model

The model mode runs a trained character-level model (`course_utils.language.CharLM`; "shakespeare" is the
shipped checkpoint) on the text you type and shows every head's causal attention, layer by layer, with one
query character's weights as bars.

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
    "ModelExplorerConfig",
    "model_weights",
    "model_figure",
    "build_model_widget",
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


# ---------------------------------------------------------------------------------------------------------
# The model mode: a trained language model's heads on a text the learner types (lesson 12)
# ---------------------------------------------------------------------------------------------------------

MODEL_TEXT = "ROMEO.\nBut soft, what light through yonder window breaks?"
MAX_CHARS = 80  # longest text the figure labels legibly (the model itself reads up to its context)


@dataclass(frozen=True)
class ModelExplorerConfig:
    """What the model mode shows."""

    text: str = MODEL_TEXT  # the characters the model reads
    layer: int | str = "all"  # one layer (0-based) or "all", one row of heads per layer
    query: int = -1  # the character whose weights are shown as bars (-1: the last one)

    def check(self, num_layers: int, alphabet: str) -> ModelExplorerConfig:
        """This config, or a ValueError naming the field that does not fit the model."""
        if not isinstance(self.text, str) or not 2 <= len(self.text) <= MAX_CHARS:
            got = f"{len(self.text)} characters" if isinstance(self.text, str) else type(self.text).__name__
            raise ValueError(f"text must be a str of 2 to {MAX_CHARS} characters, got {got}")
        unknown = sorted(set(self.text) - set(alphabet))
        if unknown:
            raise ValueError(f"text holds characters the model does not know: {''.join(unknown)!r}")
        if self.layer != "all" and (
            isinstance(self.layer, bool)
            or not isinstance(self.layer, (int, np.integer))
            or not 0 <= self.layer < num_layers
        ):
            raise ValueError(f"layer must be 'all' or a layer index in [0, {num_layers}), got {self.layer!r}")
        n = len(self.text)
        if isinstance(self.query, bool) or not isinstance(self.query, (int, np.integer)) or not -n <= self.query < n:
            raise ValueError(f"query must be a character index in [-{n}, {n}), got {self.query!r}")
        return self

    def layers(self, num_layers: int) -> list[int]:
        return list(range(num_layers)) if self.layer == "all" else [int(self.layer)]


def _model(model, chars):
    """The shipped checkpoint for model="shakespeare", else the given CharLM and its alphabet."""
    from .language import CharLM, CharVocab, load_checkpoint

    if isinstance(model, str):
        if model != "shakespeare":
            raise ValueError(f"model must be 'shakespeare' (the shipped checkpoint) or a CharLM, got {model!r}")
        return load_checkpoint()
    if not isinstance(model, CharLM):
        raise TypeError(f"model must be 'shakespeare' or a course_utils.language.CharLM, got {type(model).__name__}")
    if not isinstance(chars, CharVocab) or chars.size != model.config.vocab_size:
        raise ValueError("pass chars=, the CharVocab the model was trained with (its size must match the model's)")
    return model, chars


def model_weights(model, chars, config: ModelExplorerConfig = ModelExplorerConfig()) -> np.ndarray:
    """Every head's causal attention on config.text, (L, H, N, N) float64; row i is character i's weights."""
    from .language import attention_maps

    model, chars = _model(model, chars)
    config.check(model.config.num_layers, chars.chars)
    return attention_maps(model, chars.encode(config.text)).double().numpy()  # (L, H, N, N)


def _label(c: str) -> str:
    return {"\n": "⏎", " ": "␣"}.get(c, c)


def model_figure(text: str, w: np.ndarray, config: ModelExplorerConfig):
    """One row per layer shown: a heatmap per head (the query's row framed) and the query's weights as bars."""
    w = np.asarray(w, dtype=np.float64)
    if w.ndim != 4 or w.shape[2] != w.shape[3] or w.shape[2] != len(text):
        raise ValueError(f"w must have shape (L, H, N, N) with N = {len(text)} characters, got {shape_of(w)}")
    L, H, n = w.shape[0], w.shape[1], w.shape[2]
    layers = config.layers(L)
    q = config.query % n
    labels = [_label(c) for c in text]
    fig, axes = plt.subplots(
        len(layers),
        H + 1,
        figsize=(2.6 * H + 4.2, 2.9 * len(layers) + 0.6),
        gridspec_kw={"width_ratios": [1.0] * H + [1.6]},
        squeeze=False,
    )
    fontsize = 7 if n <= 40 else 5
    for row, layer in enumerate(layers):
        for head in range(H):
            ax = axes[row, head]
            heatmap(
                w[layer, head],
                ax=ax,
                row_labels=labels,
                col_labels=labels,
                vmin=0.0,
                vmax=1.0,
                colorbar=False,
                title=f"layer {layer} head {head}",
                xlabel="key" if row == len(layers) - 1 else None,
                ylabel="query" if head == 0 else None,
            )
            ax.tick_params(axis="both", labelsize=fontsize, length=0)
            ax.add_patch(plt.Rectangle((-0.5, q - 0.5), n, 1.0, fill=False, edgecolor="red", linewidth=1.5))
        ax = axes[row, -1]
        width = 0.8 / H
        for head in range(H):
            ax.bar(np.arange(n) + (head - (H - 1) / 2) * width, w[layer, head, q], width=width, label=f"head {head}")
        ax.set_xticks(range(n))
        ax.set_xticklabels(labels, fontsize=fontsize)
        ax.set_ylim(0.0, 1.05)
        ax.set_ylabel("weight")
        ax.set_title(f"layer {layer}: weights of character {q} ({text[q]!r})", fontsize=9)
        if row == 0:
            ax.legend(fontsize=7, loc="upper left")
    fig.suptitle(f"the trained model's heads on {len(text)} characters (causal: each reads only the past)", fontsize=10)
    fig.tight_layout()
    return fig, axes


def build_model_widget(model="shakespeare", chars=None, config: ModelExplorerConfig = ModelExplorerConfig()):
    """The model mode as an ipywidgets VBox: a text box, a layer choice and a query slider above the figure.

    The box's `.config` holds the current settings and `.weights` the (L, H, N, N) weights computed.
    """
    import ipywidgets as widgets

    model, chars = _model(model, chars)
    L = model.config.num_layers
    config.check(L, chars.chars)
    n = len(config.text)
    style = {"description_width": "initial"}
    text = widgets.Text(
        value=config.text,
        description="text",
        continuous_update=False,
        style=style,
        layout=widgets.Layout(width="520px"),
        tooltip=f"type up to {MAX_CHARS} characters and press Enter",
    )
    layer = widgets.Dropdown(
        options=["all"] + list(range(L)),
        value=config.layer,
        description="layer",
        style=style,
        layout=widgets.Layout(width="130px"),
    )
    query = widgets.IntSlider(
        value=config.query % n, min=0, max=n - 1, description="query character", style=style, continuous_update=False
    )
    message = widgets.HTML()
    out = widgets.Output()
    box = widgets.VBox([widgets.HBox([text, layer]), widgets.HBox([query, message]), out])

    def redraw(_=None) -> None:
        query.max = max(1, len(text.value) - 1)
        candidate = ModelExplorerConfig(text=text.value, layer=layer.value, query=min(query.value, query.max))
        try:
            candidate.check(L, chars.chars)
        except ValueError as exc:  # keep the last good view and say why
            message.value = f"<span style='color:#b00'>{exc}</span>"
            return
        message.value = f"query {candidate.query}: {candidate.text[candidate.query]!r}"
        box.config = candidate
        box.weights = model_weights(model, chars, candidate)
        with out:
            out.clear_output(wait=True)
            fig, _ = model_figure(candidate.text, box.weights, candidate)
            plt.show()
            plt.close(fig)

    def new_text(change) -> None:
        """A new text: the query moves to its last character (the one whose next character is predicted)."""
        query.max = max(1, len(change["new"]) - 1)
        if query.value != query.max:
            query.value = query.max  # redraws through the query's observer
        else:
            redraw()

    text.observe(new_text, names="value")
    for control in (layer, query):
        control.observe(redraw, names="value")
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


def _display_widget(box) -> None:
    from IPython.display import display

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


def _want_widgets(interactive: bool | None) -> bool:
    if interactive is None:
        interactive = live_frontend()
    if interactive:
        try:
            import ipywidgets  # noqa: F401
        except ImportError:
            return False
    return bool(interactive)


def _settings(cls, settings: dict):
    unknown = set(settings) - set(cls.__dataclass_fields__)
    if unknown:
        raise TypeError(f"unknown settings {sorted(unknown)}; {cls.__name__} has {list(cls.__dataclass_fields__)}")
    return replace(cls(), **settings)


def explore(
    x=None, tokens=None, wq=None, wk=None, interactive: bool | None = None, model=None, chars=None, **settings
) -> None:
    """Show the explorer: widgets in a live frontend, else a static figure of the same view.

    x (N, D), wq and wk (D, D) default to `example()`; `settings` are ExplorerConfig fields (query=3, mask=...).
    With model="shakespeare" (or a CharLM and its chars) it shows that model's heads instead; `settings` are then
    ModelExplorerConfig fields (text="...", layer=0, query=-1).
    Returns nothing, so a cell ending with this call stores one figure and no repr.
    """
    if model is not None:
        if x is not None or tokens is not None or wq is not None or wk is not None:
            raise ValueError("the model mode takes text=..., not x, tokens, wq, wk")
        config = _settings(ModelExplorerConfig, settings)
        model, chars = _model(model, chars)
        config.check(model.config.num_layers, chars.chars)
        if _want_widgets(interactive):
            _display_widget(build_model_widget(model, chars, config))
            return None
        fig, _ = model_figure(config.text, model_weights(model, chars, config), config)
        plt.show()
        return None
    if chars is not None:
        raise ValueError("chars= goes with model=; the projection mode takes x, tokens, wq, wk")
    config = _settings(ExplorerConfig, settings)
    tokens, x, wq, wk = _resolve(x, tokens, wq, wk)
    config.check(*x.shape)
    if _want_widgets(interactive):
        _display_widget(build_widget(x, tokens, wq, wk, config))
        return None
    fig, _ = figure(tokens, weights(x, wq, wk, config), config, x.shape[1])
    plt.show()
    return None
