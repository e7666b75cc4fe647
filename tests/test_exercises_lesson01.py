"""Lesson 01's checkers: each named mistake and each robustness case has a deliberately wrong function (written
as a learner would) that the checker diagnoses by name; the solutions pass; the prediction reads its inputs."""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch
from checker_asserts import assert_diagnosed, assert_passes, unanswered

from course_utils import data
from course_utils.exercises import lesson01 as ex


def one_hot_ok(tokens, vocab):
    I = np.zeros((len(vocab), len(tokens)))
    for i, token in enumerate(tokens):
        I[vocab.index(token), i] = 1.0
    return I


def frame_ok(signal, sample_rate):
    window, hop = sample_rate * 25 // 1000, sample_rate * 10 // 1000
    n = 1 + (len(signal) - window) // hop
    return np.stack([signal[f * hop : f * hop + window] for f in range(n)], axis=1)


def adjacency_ok(edges, n):
    A = np.zeros((n, n))
    for i, j in edges:
        A[i, j] = A[j, i] = 1
    return A


def test_solutions_pass(capsys):
    for check, fn in (
        (ex.check_one_hot, one_hot_ok),
        (ex.check_frame_signal, frame_ok),
        (ex.check_adjacency, adjacency_ok),
        (ex.check_one_hot, data.one_hot),
        (ex.check_frame_signal, data.frame_signal),
        (ex.check_adjacency, data.adjacency_from_edges),
    ):
        assert_passes(check(fn), capsys)


def test_integer_and_torch_answers_pass(capsys):
    """A 0/1 matrix of ints, or a torch tensor, is the same answer."""
    assert_passes(ex.check_one_hot(lambda t, v: one_hot_ok(t, v).astype(np.int64)), capsys)
    assert_passes(ex.check_adjacency(lambda e, n: torch.from_numpy(adjacency_ok(e, n))), capsys)


def one_hot_rows(tokens, vocab):
    return np.array([[1.0 if word == token else 0.0 for word in vocab] for token in tokens])


def one_hot_sorted(tokens, vocab):
    words = sorted(vocab)
    I = np.zeros((len(words), len(tokens)))
    for i, token in enumerate(tokens):
        I[words.index(token), i] = 1
    return I


def frame_swapped(signal, sample_rate):
    window, hop = sample_rate * 10 // 1000, sample_rate * 25 // 1000
    n = 1 + (len(signal) - window) // hop
    return np.stack([signal[f * hop : f * hop + window] for f in range(n)], axis=1)


def frame_last_missing(signal, sample_rate):
    window, hop = sample_rate * 25 // 1000, sample_rate * 10 // 1000
    n = (len(signal) - window) // hop  # forgot the frame that starts at 0
    return np.stack([signal[f * hop : f * hop + window] for f in range(n)], axis=1)


def adjacency_directed(edges, n):
    A = np.zeros((n, n))
    for i, j in edges:
        A[i, j] = 1
    return A


def adjacency_self_loops(edges, n):
    return adjacency_ok(edges, n) + np.eye(n)


@pytest.mark.parametrize(
    "check,wrong,mistake",
    [
        (ex.check_one_hot, one_hot_rows, "one row per token instead of one column"),
        (ex.check_one_hot, one_hot_sorted, "rows in alphabetical order, not vocab's order"),
        (ex.check_frame_signal, frame_swapped, "window and hop swapped"),
        (ex.check_frame_signal, lambda x, sr: frame_ok(x, sr).T, "one frame per row instead of one per column"),
        (ex.check_frame_signal, frame_last_missing, "the last frame is missing"),
        (ex.check_adjacency, adjacency_directed, "only one direction of each edge"),
        (ex.check_adjacency, adjacency_self_loops, "self-loops on the diagonal"),
    ],
)
def test_each_named_mistake_is_diagnosed(check, wrong, mistake, capsys):
    assert_diagnosed(check(wrong), mistake, capsys)


@pytest.mark.parametrize("check", [ex.check_one_hot, ex.check_frame_signal, ex.check_adjacency])
def test_unanswered_prints_hints_in_steps(check, capsys):
    exercise = {ex.check_one_hot: ex.ONE_HOT, ex.check_frame_signal: ex.FRAME_SIGNAL, ex.check_adjacency: ex.ADJACENCY}[check]
    exercise._step = 0
    first = check(unanswered)
    out1 = capsys.readouterr().out
    check(unanswered)
    out2 = capsys.readouterr().out
    assert not first.passed and not first.answered
    assert "Hint:" in out1 and "1/3" in out1 and "2/3" in out2 and out1 != out2
    assert "def " not in out1  # the first hint is the idea, not code
    exercise._step = 0


def test_solution_only_on_request(capsys):
    ex.solution("frame_signal")
    printed = capsys.readouterr().out
    assert "def frame_signal" in printed and "hop" in printed
    ex.hint("window")
    assert "Hint:" in capsys.readouterr().out
    ex.WINDOW._step = 0


@pytest.mark.parametrize(
    "wrong, verdict",
    [
        (lambda t, v: "[[1, 0], [0, 1]]", "string"),
        (lambda t, v: {"the": 1}, "dict"),
        (lambda t, v: iter(one_hot_ok(t, v)), "iterator"),
        (lambda t, v: None, "return"),
        (lambda t, v: one_hot_ok(t, v) * (1 + 0j), "complex"),
        (lambda t, v: one_hot_ok(t, v) * np.nan, "returned nan"),
        (lambda t, v: v.index(t), "raised"),
    ],
)
def test_bad_answers_get_a_verdict_not_a_traceback(wrong, verdict, capsys, recwarn):
    feedback = ex.check_one_hot(wrong)
    printed = capsys.readouterr()
    assert not feedback.passed and feedback.answered
    assert verdict in feedback.message and "your function received" in feedback.message, feedback.message
    assert printed.err == "" and not recwarn.list


def test_a_bool_one_hot_is_accepted_but_a_wrong_shape_quotes_the_inputs(capsys):
    assert_passes(ex.check_one_hot(lambda t, v: one_hot_ok(t, v).astype(bool)), capsys)
    feedback = ex.check_frame_signal(lambda x, sr: x[:400])
    assert not feedback.passed and "your function received (1000,), 8000" in feedback.message


def test_a_hanging_answer_times_out(monkeypatch, capsys):
    monkeypatch.setattr(ex.ADJACENCY, "time_limit", 0.2)
    start = time.perf_counter()

    def forever(edges, n):
        while True:
            pass

    feedback = ex.check_adjacency(forever)
    assert not feedback.passed and "did not finish within 0.2 s" in feedback.message
    assert time.perf_counter() - start < 5


def test_window_prediction(capsys):
    ex.WINDOW._step = 0
    assert not ex.check_window(None, 6).answered  # the stub prints a hint
    assert "Hint:" in capsys.readouterr().out
    assert ex.check_window(6, 6).passed
    assert ex.check_window(6.0, 6).passed  # a whole float is an int
    for wrong, mistake in ((3, "prediction off"), (13, "prediction off"), ("6", "not a valid prediction"),
                           (True, "not a valid prediction"), (float("nan"), "not a valid prediction"),
                           (6.5, "not a valid prediction")):
        feedback = ex.check_window(wrong, 6)
        assert not feedback.passed and feedback.mistake == mistake, wrong
    assert "string" in ex.check_window("6", 6).message
    ex.WINDOW._step = 0
