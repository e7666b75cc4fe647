"""The course's diagrams: each draws without arguments, returns (fig, ax), leaves rcParams alone; images/ is current."""

from pathlib import Path

import matplotlib
import matplotlib.pyplot as plt
import pytest
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from course_utils import diagrams

ROOT = Path(__file__).resolve().parents[1]
NAMES = [
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
]


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


@pytest.mark.parametrize("name", NAMES)
def test_draws_without_arguments_and_leaves_rcparams_alone(name):
    before = dict(matplotlib.rcParams)
    fig, ax = getattr(diagrams, name)()
    assert isinstance(fig, Figure) and isinstance(ax, Axes)
    assert ax.figure is fig
    assert dict(matplotlib.rcParams) == before
    # a drawing, not an empty canvas: shapes and words on it
    assert len(ax.patches) >= 8
    assert len(ax.texts) >= 3
    fig.canvas.draw()  # every mathtext label must parse


def test_one_query_names_every_step():
    fig, ax = diagrams.one_query(n=3)
    text = " ".join(t.get_text() for t in ax.texts)
    for symbol in ("$a^{3}$", "$q^{1}$", "$k^{3}$", "$v^{3}$", r"$\alpha_{1,3}$", "softmax", r"$\alpha'_{1,3}$"):
        assert symbol in text, symbol
    assert "$a^{4}$" not in text  # n=3 inputs drawn, no more


@pytest.mark.parametrize("focus", ["scores", "softmax", "sum"])
def test_one_query_focus_adds_a_frame(focus):
    _, plain = diagrams.one_query()
    _, framed = diagrams.one_query(focus=focus)
    assert len(framed.patches) == len(plain.patches) + 1
    red = [t for t in framed.texts if t.get_color() == diagrams.FOCUS]
    assert len(red) == 1  # the note beside the framed stage


def test_matrix_form_states_the_shapes():
    _, ax = diagrams.matrix_form(n=4, d_in=3, d_k=2, d_v=5)
    text = " ".join(t.get_text() for t in ax.texts)
    for shape in (r"$(d_{in}, N)$", r"$(d_k, N)$", r"$(d_v, N)$", r"$(N, N)$"):
        assert shape in text
    # I (3x4), Q and K (2x4 each), V (5x4), A and A' (4x4 each), O (5x4) cells
    cells = [p for p in ax.patches if type(p).__name__ == "Rectangle" and p.get_fill()]
    assert len(cells) == 3 * 4 + 2 * 2 * 4 + 5 * 4 + 2 * 4 * 4 + 5 * 4


def test_multi_head_draws_one_row_per_head():
    for heads in (1, 2, 3):
        _, ax = diagrams.multi_head(heads=heads)
        labels = [t.get_text() for t in ax.texts if t.get_text().startswith("attention, head")]
        assert len(labels) == heads


def test_positional_encoding_heatmap_is_the_reference_encoding():
    from course_utils.reference import sinusoidal_encoding

    fig, ax = diagrams.positional_encoding(d_model=16, n_positions=20, highlight=3)
    assert len(fig.axes) == 3  # schematic, heatmap, colorbar
    image = fig.axes[1].images[0].get_array()
    assert image.shape == (16, 20)
    assert (image == sinusoidal_encoding(16, 20)).all()


def test_efficient_patterns_count_the_scores():
    _, ax = diagrams.efficient_patterns(n=8)
    text = [t.get_text() for t in ax.texts]
    assert "64 of 64 scores" in text
    assert "22 of 64 scores" in text  # local window |i - j| <= 1: 8 + 2 * 7


def test_efficient_patterns_strided_is_the_sparse_transformers():
    """Causal; each query sees its s = round(sqrt(N)) latest keys and every s-th key before them (Child et al.)."""
    _, ax = diagrams.efficient_patterns(n=9)
    text = [t.get_text() for t in ax.texts]
    # s = 3: local keys i-2..i give 9 + 8 + 7, strided keys i-3, i-6 give 6 + 3
    assert "33 of 81 scores" in text
    assert any(t.startswith("causal, s = 3") for t in text)
    assert "27 of 81 scores" in text  # Linformer: N x r scores with r = 3
    assert "no scores" in text  # linear attention: phi(Q) (phi(K)^T V)


def test_one_query_softmax_sums_over_m_not_the_query_index():
    _, ax = diagrams.one_query()
    (softmax,) = [t.get_text() for t in ax.texts if t.get_text().startswith("softmax")]
    assert r"\sum_m \exp(\alpha_{1,m})" in softmax and "sum_j" not in softmax


def test_vector_sets_words_are_one_hot():
    fig, ax = diagrams.vector_sets()
    cells = [t for t in ax.texts if t.get_position()[0] > 6.0]  # the vectors, right of the arrows
    ones = [t for t in cells if t.get_text() == "1"]
    zeros = [t for t in cells if t.get_text() == "0"]
    assert len(ones) == 4 and len(zeros) == 4 * 4  # four words, one filled cell of five each
    assert len({round(t.get_position()[0], 3) for t in ones}) == 4  # one per column


def test_graph_attention_masks_non_edges():
    _, ax = diagrams.graph_attention()
    assert sum(t.get_text() == "×" for t in ax.texts) == 25 - 5 - 2 * 5  # 5 nodes, self loops, 5 edges


def test_tiling_marks_the_current_tile():
    _, ax = diagrams.tiling(blocks=3, current=(2, 0))
    text = [t.get_text() for t in ax.texts]
    assert "$S_{20}$" in text
    assert "done" not in text  # no key block before block 0


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: diagrams.one_query(n=1), "n must be an int from 2 to 6"),
        (lambda: diagrams.one_query(n=True), "n must be an int"),
        (lambda: diagrams.one_query(focus="values"), "focus must be"),
        (lambda: diagrams.matrix_form(n=0), "n must be an int from 1 to 8"),
        (lambda: diagrams.matrix_form(d_k=2.5), "d_k must be an int"),
        (lambda: diagrams.multi_head(heads=4), "heads must be an int from 1 to 3"),
        (lambda: diagrams.positional_encoding(highlight=64), r"highlight must be a position in \[0, 64\)"),
        (lambda: diagrams.positional_encoding(d_model=0), "d_model must be a positive int"),
        (lambda: diagrams.tiling(blocks=7), "blocks must be an int from 2 to 6"),
        (lambda: diagrams.tiling(current=(0, 4)), "current must be a"),
        (lambda: diagrams.save_all(".", dpi=5), "dpi must be an int"),
        (lambda: diagrams.cnn_vs_self_attention(size=2), "size must be an int from 3 to 12"),
        (lambda: diagrams.cnn_vs_self_attention(pixel=(0, 9)), "pixel must be a"),
        (lambda: diagrams.rnn_vs_self_attention(n=9), "n must be an int from 3 to 8"),
        (lambda: diagrams.efficient_patterns(n=5), "n must be an int from 6 to 24"),
    ],
)
def test_bad_arguments_are_named(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_bad_types_are_named():
    with pytest.raises(TypeError, match="highlight must be an int"):
        diagrams.positional_encoding(highlight="3")
    with pytest.raises(TypeError, match="folder must be a path"):
        diagrams.save_all(None)


def test_save_all_writes_every_diagram_reproducibly(tmp_path):
    first = diagrams.save_all(tmp_path / "a", dpi=40)
    second = diagrams.save_all(tmp_path / "b", dpi=40)
    assert [p.name for p in first] == [f"{name}.png" for name in diagrams.DIAGRAMS]
    for a, b in zip(first, second):
        assert a.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert a.read_bytes() == b.read_bytes(), f"{a.name} differs between two runs"
    assert plt.get_fignums() == []  # save_all closes what it draws


def test_images_folder_is_current(tmp_path):
    """images/ holds what `make images` draws now (so the README shows the current drawings).

    Byte for byte when images/ was drawn by this matplotlib version (recorded in each PNG); with another
    version, text may move by a pixel, so only the picture sizes are compared.
    """
    from PIL import Image

    fresh = diagrams.save_all(tmp_path)
    stale = []
    for new in fresh:
        old = ROOT / "images" / new.name
        if not old.exists():
            stale.append(new.name)
            continue
        with Image.open(old) as a, Image.open(new) as b:
            same_version = a.text.get("Source") == b.text.get("Source")
            if (same_version and old.read_bytes() != new.read_bytes()) or a.size != b.size:
                stale.append(new.name)
    assert not stale, f"images/ is out of date for {stale}: run `make images`"
    assert sorted(p.name for p in (ROOT / "images").glob("*.png")) == sorted(p.name for p in fresh), (
        "images/ holds a picture save_all no longer draws"
    )
