import numpy as np
import pytest

from course_utils import data
from course_utils.exercises import lesson01 as ex


def test_solutions_pass():
    assert ex.check_one_hot(data.one_hot)
    assert ex.check_frame_signal(data.frame_signal)
    assert ex.check_adjacency(data.adjacency_from_edges)


def _directed(edges, n):
    A = np.zeros((n, n))
    for i, j in edges:
        A[i, j] = 1
    return A


@pytest.mark.parametrize(
    "check,wrong,mistake",
    [
        (ex.check_one_hot, lambda t, v: data.one_hot(t, v).T, "one row per token instead of one column"),
        (ex.check_frame_signal, lambda x, sr: data.frame_signal(x, sr, 10, 25), "window and hop swapped"),
        (ex.check_frame_signal, lambda x, sr: data.frame_signal(x, sr).T, "one frame per row instead of one per column"),
        (ex.check_frame_signal, lambda x, sr: data.frame_signal(x, sr)[:, :-1], "the last frame is missing"),
        (ex.check_adjacency, _directed, "only one direction of each edge"),
        (ex.check_adjacency, lambda e, n: data.adjacency_from_edges(e, n) + np.eye(n), "self-loops on the diagonal"),
    ],
)
def test_each_named_mistake_is_diagnosed(check, wrong, mistake):
    feedback = check(wrong)
    assert not feedback and feedback.mistake == mistake
