"""The attention explorer: its numbers, its static figure under nbval, and its widgets."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import matplotlib
import matplotlib.pyplot as plt
import nbformat
import numpy as np
import pytest
import torch

from course_utils import explorer as ex
from course_utils.attention import attention_weights

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


@pytest.fixture
def data():
    return ex.example()


def _entropy(w):
    return float(-(w * np.log(np.where(w > 0, w, 1.0))).sum(-1).mean())


def test_example_is_fixed_and_repeats_words(data):
    tokens, x, wq, wk = data
    assert tokens[0] == tokens[4] == "the"
    assert np.array_equal(x[0], x[4])  # same word, same embedding
    tokens2, x2, wq2, wk2 = ex.example()
    assert np.array_equal(x, x2) and np.array_equal(wq, wq2) and np.array_equal(wk, wk2)
    assert x.shape == (10, 8) and wq.shape == wk.shape == (8, 8)


def test_weights_are_per_head_softmax_rows(data):
    _, x, wq, wk = data
    w = ex.weights(x, wq, wk, ex.ExplorerConfig(heads=4))
    assert w.shape == (4, 10, 10)
    assert np.allclose(w.sum(-1), 1.0, atol=1e-12) and (w >= 0).all()


def test_one_head_equals_attention_weights_of_the_full_projection(data):
    _, x, wq, wk = data
    w = ex.weights(x, wq, wk, ex.ExplorerConfig(heads=1))
    q, k = torch.as_tensor(x @ wq.T), torch.as_tensor(x @ wk.T)  # (N, D) @ (D, D) -> (N, D)
    assert np.allclose(w[0], attention_weights(q, k).numpy(), atol=1e-12)


def test_heads_split_the_width(data):
    _, x, wq, wk = data
    w = ex.weights(x, wq, wk, ex.ExplorerConfig(heads=2))
    d = 4
    for h in range(2):
        q = torch.as_tensor(x @ wq[h * d : (h + 1) * d].T)  # head h: rows h*d..(h+1)*d of W_q, (N, d)
        k = torch.as_tensor(x @ wk[h * d : (h + 1) * d].T)
        assert np.allclose(w[h], attention_weights(q, k).numpy(), atol=1e-12)


def test_without_positions_the_two_thes_attend_alike_and_with_them_they_differ(data):
    """Self-attention alone ignores order (lesson 03): the same word at two places gets the same weights."""
    _, x, wq, wk = data
    plain = ex.weights(x, wq, wk, ex.ExplorerConfig())
    assert np.allclose(plain[:, 0], plain[:, 4], atol=1e-12)  # rows of "the" at positions 0 and 4
    placed = ex.weights(x, wq, wk, ex.ExplorerConfig(position="sinusoidal"))
    assert np.abs(placed[:, 0] - placed[:, 4]).max() > 0.05


def test_unscaled_is_scaled_at_temperature_one_over_sqrt_d(data):
    _, x, wq, wk = data
    unscaled = ex.weights(x, wq, wk, ex.ExplorerConfig(heads=2, scaled=False))
    same = ex.weights(x, wq, wk, ex.ExplorerConfig(heads=2, scaled=True, temperature=1 / np.sqrt(4)))
    assert np.allclose(unscaled, same, atol=1e-12)


def test_temperature_sharpens_and_flattens(data):
    _, x, wq, wk = data
    ent = [_entropy(ex.weights(x, wq, wk, ex.ExplorerConfig(temperature=t))) for t in (0.1, 1.0, 10.0)]
    assert ent[0] < ent[1] < ent[2]
    assert ent[2] > 0.95 * np.log(10)  # near uniform over 10 keys
    sharp = ex.weights(x, wq, wk, ex.ExplorerConfig(temperature=0.01))
    assert (sharp.max(-1) > 0.9).mean() >= 0.7  # near one-hot (ties between the two "the" keys give 0.5)


@pytest.mark.parametrize(
    "mask, allowed",
    [
        ("none", lambda i, j: True),
        ("causal", lambda i, j: j <= i),
        ("window", lambda i, j: abs(i - j) <= 2),
    ],
)
def test_masks(data, mask, allowed):
    _, x, wq, wk = data
    w = ex.weights(x, wq, wk, ex.ExplorerConfig(mask=mask, window=2))
    for i in range(10):
        for j in range(10):
            if allowed(i, j):
                assert (w[:, i, j] > 0).all()
            else:
                assert (w[:, i, j] == 0).all()


def test_figure_frames_the_query_and_leaves_rcparams_alone(data):
    tokens, x, wq, wk = data
    before = dict(matplotlib.rcParams)
    cfg = ex.ExplorerConfig(query=6, heads=4, mask="causal")
    fig, axes = ex.figure(tokens, ex.weights(x, wq, wk, cfg), cfg, 8)
    assert dict(matplotlib.rcParams) == before
    assert len(axes) == 5
    assert "weights of query 6 ('because')" == axes[-1].get_title()
    assert fig._suptitle.get_text() == "4 heads (d=2), scale 1/√2, scores ÷ temperature 1, mask causal"
    assert [ax.get_title() for ax in axes[:4]] == ["head 0", "head 1", "head 2", "head 3"]  # 0-based, as lessons
    assert [t.get_text() for t in axes[-1].get_legend().get_texts()] == ["head 0", "head 1", "head 2", "head 3"]
    bars = [p.get_height() for p in axes[-1].patches]
    assert np.allclose(sorted(bars), sorted(ex.weights(x, wq, wk, cfg)[:, 6].ravel()))


@pytest.mark.parametrize(
    "settings, match",
    [
        ({"query": 10}, r"query must be a token index in \[0, 10\)"),
        ({"temperature": 0.0}, "temperature must be a finite positive number"),
        ({"heads": 3}, "heads must be a positive divisor of the width D=8"),
        ({"mask": "diagonal"}, "mask must be one of"),
        ({"window": -1}, "window must be a non-negative int"),
        ({"scaled": "yes"}, "scaled must be True or False"),
        ({"position": "rope"}, "position must be one of"),
    ],
)
def test_bad_settings_are_named(data, settings, match):
    _, x, wq, wk = data
    with pytest.raises(ValueError, match=match):
        ex.weights(x, wq, wk, ex.ExplorerConfig(**settings))
    with pytest.raises(ValueError, match=match):
        ex.explore(interactive=False, **settings)


def test_bad_inputs_are_named(data):
    tokens, x, wq, wk = data
    with pytest.raises(ValueError, match=r"wq must have shape \(D, D\) = \(8, 8\) for x \(10, 8\), got \(8, 4\)"):
        ex.weights(x, wq[:, :4], wk)
    with pytest.raises(ValueError, match=r"x must have 2 dimension"):
        ex.weights(x[0], wq, wk)
    with pytest.raises(ValueError, match="tokens must name each of the N=10 rows"):
        ex.explore(x, tokens[:3], wq, wk, interactive=False)
    with pytest.raises(ValueError, match="pass both wq and wk"):
        ex.explore(x, tokens, interactive=False)
    with pytest.raises(TypeError, match=r"unknown settings \['head'\]"):
        ex.explore(head=2)
    with pytest.raises(ValueError, match=r"w must have shape \(H, N, N\)"):
        ex.figure(tokens, np.zeros((2, 10, 9)), ex.ExplorerConfig(), 8)


def test_live_frontend_only_for_a_frontend_that_answers_input(monkeypatch):
    monkeypatch.delenv("COURSE_UTILS_WIDGETS", raising=False)
    assert ex.live_frontend() is False  # plain Python: no kernel
    monkeypatch.setenv("COURSE_UTILS_WIDGETS", "1")
    assert ex.live_frontend() is True
    monkeypatch.setenv("COURSE_UTILS_WIDGETS", "0")
    assert ex.live_frontend() is False


@pytest.mark.parametrize(
    "content, live",
    [
        ({"allow_stdin": True, "store_history": True}, True),  # JupyterLab, Colab, VS Code
        ({"allow_stdin": False, "store_history": True}, False),  # nbclient (make execute)
        ({"allow_stdin": True, "store_history": False}, False),  # nbval
    ],
)
def test_live_frontend_reads_the_request(monkeypatch, content, live):
    import IPython

    class Kernel:
        def get_parent(self, channel):
            assert channel == "shell"
            return {"content": content}

    class Shell:
        kernel = Kernel()

    monkeypatch.delenv("COURSE_UTILS_WIDGETS", raising=False)
    monkeypatch.setattr(IPython, "get_ipython", lambda: Shell())
    assert ex.live_frontend() is live


def test_widget_controls_drive_the_view():
    pytest.importorskip("ipywidgets")
    box = ex.build_widget(config=ex.ExplorerConfig(query=2))
    controls = {c.description: c for row in box.children[:2] for c in row.children}
    assert set(controls) == {"query token", "heads", "positions", "scale by 1/√d", "temperature", "mask", "window ±"}
    assert box.config.query == 2 and box.weights.shape == (2, 10, 10)
    assert controls["window ±"].disabled
    assert "divided by the temperature" in controls["temperature"].tooltip
    controls["heads"].value = 4
    assert box.weights.shape == (4, 10, 10)
    controls["mask"].value = "causal"
    assert box.config.mask == "causal" and (np.triu(box.weights[0], 1) == 0).all()
    controls["mask"].value = "window"
    assert not controls["window ±"].disabled
    controls["temperature"].value = 10.0
    assert _entropy(box.weights) > 1.0
    controls["query token"].value = 7
    tokens, x, wq, wk = ex.example()
    assert np.allclose(box.weights, ex.weights(x, wq, wk, box.config))
    assert box.config == ex.ExplorerConfig(query=7, temperature=10.0, scaled=True, heads=4, mask="window", window=1)
    controls["positions"].value = "sinusoidal"
    assert box.config.position == "sinusoidal"
    assert np.allclose(box.weights, ex.weights(x, wq, wk, box.config))


EXPLORER_NOTEBOOK = [
    "import course_utils as cu\nimport matplotlib.pyplot as plt",
    "cu.explorer.explore()",
    "cu.explorer.explore(query=6, heads=4, mask='causal', temperature=0.5)",
    "cu.explorer.explore(heads=2, query=4, position='sinusoidal')",
]


def test_static_figure_under_nbclient_then_strict_nbval(tmp_path):
    """Executed as `make execute` does, the explorer stores one figure; strict nbval then passes on it."""
    from nbclient import NotebookClient

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(src) for src in EXPLORER_NOTEBOOK]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    NotebookClient(nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    for cell in nb.cells[1:]:
        kinds = [(o.output_type, sorted(o.get("data", {}))) for o in cell.outputs]
        assert kinds == [("display_data", ["image/png", "text/plain"])], kinds
        assert "application/vnd.jupyter.widget-view+json" not in json.dumps(cell.outputs)
    assert nb.cells[1].outputs[0].data["text/plain"] == "<Figure size 1040x360 with 4 Axes>"
    path = tmp_path / "explorer.ipynb"
    nbformat.write(nb, path)
    res = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--nbval", "--nbval-current-env", str(path)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert res.returncode == 0, res.stdout[-3000:]
    assert "4 passed" in res.stdout


def test_without_ipywidgets_it_draws_the_static_figure(monkeypatch):
    """Asked for widgets where ipywidgets is missing, the explorer still shows the same view, as one figure."""
    monkeypatch.setitem(sys.modules, "ipywidgets", None)  # `import ipywidgets` now raises ImportError
    plt.close("all")
    assert ex.explore(interactive=True, query=3, heads=4) is None
    (num,) = plt.get_fignums()
    fig = plt.figure(num)
    assert fig._suptitle.get_text().startswith("4 heads (d=2)")
    assert "weights of query 3 ('on')" in [ax.get_title() for ax in fig.axes]


def test_static_figure_is_byte_for_byte_reproducible(data):
    import io

    tokens, x, wq, wk = data
    cfg = ex.ExplorerConfig(query=4, heads=2, position="sinusoidal", mask="window", window=2)
    pngs = []
    for _ in range(2):
        fig, _ = ex.figure(tokens, ex.weights(x, wq, wk, cfg), cfg, 8)
        buf = io.BytesIO()
        fig.savefig(buf, format="png", metadata={"Software": None})
        pngs.append(buf.getvalue())
        plt.close(fig)
    assert pngs[0] == pngs[1]


# ------------------------------------------------------------------------------------- the model mode (lesson 12)


@pytest.fixture(scope="module")
def shakespeare():
    from course_utils import language as lm

    return lm.load_checkpoint()


def test_model_weights_are_the_models_causal_maps(shakespeare):
    from course_utils import language as lm

    model, chars = shakespeare
    cfg = ex.ModelExplorerConfig(text="ROMEO.\nBut soft!", layer=1, query=4)
    w = ex.model_weights("shakespeare", None, cfg)
    assert w.shape == (2, 4, 16, 16) and w.dtype == np.float64
    assert np.allclose(w.sum(-1), 1.0, atol=1e-5) and (np.triu(w, 1) == 0).all()
    assert np.allclose(w, lm.attention_maps(model, chars.encode(cfg.text)).numpy())
    assert np.allclose(ex.model_weights(model, chars, cfg), w)


def test_model_figure_shows_each_layer_and_the_query(shakespeare):
    model, chars = shakespeare
    cfg = ex.ModelExplorerConfig(text="Hamlet, Hamlet", query=-1)
    w = ex.model_weights(model, chars, cfg)
    fig, axes = ex.model_figure(cfg.text, w, cfg)
    assert axes.shape == (2, 5)
    assert [ax.get_title() for ax in axes[1, :4]] == [f"layer 1 head {h}" for h in range(4)]
    assert axes[0, -1].get_title() == "layer 0: weights of character 13 ('t')"
    bars = sorted(p.get_height() for p in axes[1, -1].patches)
    assert np.allclose(bars, sorted(w[1, :, 13].ravel()))
    one = ex.ModelExplorerConfig(text=cfg.text, layer=0, query=2)
    _, axes = ex.model_figure(cfg.text, w, one)
    assert axes.shape == (1, 5) and axes[0, 0].get_title() == "layer 0 head 0"


@pytest.mark.parametrize(
    "settings, match",
    [
        ({"text": "x"}, "text must be a str of 2 to 80 characters, got 1 characters"),
        ({"text": "caf\u00e9 ok"}, "characters the model does not know: '\u00e9'"),
        ({"layer": 2}, r"layer must be 'all' or a layer index in \[0, 2\), got 2"),
        ({"query": 99}, r"query must be a character index in \[-"),
    ],
)
def test_model_mode_bad_settings_are_named(shakespeare, settings, match):
    with pytest.raises(ValueError, match=match):
        ex.explore(model="shakespeare", interactive=False, **settings)


def test_model_mode_bad_arguments_are_named():
    with pytest.raises(ValueError, match="model must be 'shakespeare'"):
        ex.explore(model="gpt2", interactive=False)
    with pytest.raises(TypeError, match="model must be 'shakespeare' or a course_utils.language.CharLM"):
        ex.explore(model=3, interactive=False)
    with pytest.raises(TypeError, match=r"unknown settings \['heads'\]; ModelExplorerConfig"):
        ex.explore(model="shakespeare", heads=2)
    with pytest.raises(ValueError, match="the model mode takes text="):
        ex.explore(np.zeros((3, 8)), model="shakespeare")


def test_model_mode_static_figure(shakespeare):
    plt.close("all")
    assert ex.explore(model="shakespeare", text="To be, or not to be", interactive=False) is None
    (num,) = plt.get_fignums()
    fig = plt.figure(num)
    assert "the trained model's heads on 19 characters" in fig._suptitle.get_text()
    assert len(fig.axes) == 10  # 2 layers x (4 heads + the bars)


def test_model_widget_redraws_on_text_layer_and_query(shakespeare):
    pytest.importorskip("ipywidgets")
    box = ex.build_model_widget("shakespeare", config=ex.ModelExplorerConfig(text="Hamlet, Hamlet"))
    text, layer = box.children[0].children
    query, message = box.children[1].children
    assert (text.description, layer.description, query.description) == ("text", "layer", "query character")
    assert box.weights.shape == (2, 4, 14, 14) and query.value == 13
    text.value = "VIOLA.\nWho?"
    assert box.config.text == "VIOLA.\nWho?" and box.weights.shape == (2, 4, 11, 11) and query.max == 10
    assert query.value == 10 and box.config.query == 10  # a new text: the query moves to its last character
    layer.value = 1
    query.value = 3
    assert box.config == ex.ModelExplorerConfig(text="VIOLA.\nWho?", layer=1, query=3)
    assert np.allclose(box.weights, ex.model_weights("shakespeare", None, box.config))
    text.value = "caf\u00e9"  # refused: the last good view stays, the message says why
    assert "does not know" in message.value and box.config.text == "VIOLA.\nWho?"
