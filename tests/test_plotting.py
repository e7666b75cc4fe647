import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pytest

from course_utils import plotting


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def test_helpers_return_fig_and_ax_and_leave_rcparams_alone():
    before = dict(matplotlib.rcParams)
    fig, ax = plotting.heatmap(np.arange(6.0).reshape(2, 3), row_labels=["a", "b"], col_labels=list("xyz"), annotate=True,
                               colorbar_label="weight")
    assert fig.axes[-1].get_ylabel() == "weight"
    assert ax.get_xticklabels()[2].get_text() == "z" and len(ax.texts) == 6
    fig, axes = plotting.heatmaps([np.eye(2)] * 3, titles=["h1", "h2", "h3"], ncols=2)
    assert len(axes) == 4 and not axes[3].axison and axes[1].get_title() == "h2"
    fig, ax = plotting.curves([1, 2, 3], {"a": [1, 2, 3], "b": [3, 2, 1]}, xlabel="N")
    assert len(ax.lines) == 2 and ax.get_xlabel() == "N"
    fig, ax = plotting.bars({"x": 0.5, "y": 0.25})
    assert len(ax.patches) == 2
    fig, ax = plotting.bubble_chart({"a": 1, "b": 2}, {"a": 0.5, "b": 0.9}, {"a": 10, "b": 40}, size_label="MB")
    assert len(ax.collections[0].get_offsets()) == 2 and "MB" in ax.get_title()
    assert dict(matplotlib.rcParams) == before


def test_heatmap_shows_minus_inf_as_text():
    fig, ax = plotting.heatmap(np.array([[0.0, -np.inf]]), annotate=True)
    assert [t.get_text() for t in ax.texts] == ["0.00", "-inf"]


@pytest.mark.parametrize(
    "call,words",
    [
        (lambda: plotting.heatmap(np.ones((2, 3)), row_labels=["a"]), "got 1 labels for 2"),
        (lambda: plotting.heatmap(np.ones(3)), "matrix must have 2"),
        (lambda: plotting.heatmaps([]), "at least one"),
        (lambda: plotting.curves([1, 2], {"a": [1, 2, 3]}), "ys['a'] has shape (3,)"),
        (lambda: plotting.bubble_chart({"a": 1}, {"b": 1}, {"a": 1}), "same labels"),
    ],
)
def test_bad_inputs(call, words):
    with pytest.raises(ValueError) as info:
        call()
    assert words in str(info.value)


def test_bubble_chart_staggers_labels_at_one_level():
    fig, ax = plotting.bubble_chart({"a": 1, "b": 2, "c": 3}, {"a": 1.0, "b": 1.0, "c": 0.2}, {"a": 1, "b": 1, "c": 1}, stagger=0.1)
    offsets = {t.get_text(): t.get_position()[1] for t in ax.texts}
    assert offsets == pytest.approx({"a": 0.9, "b": 0.8, "c": 0.1})
