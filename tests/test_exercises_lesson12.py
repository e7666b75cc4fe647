"""Lesson 12's checkers: solutions pass, each named mistake is diagnosed, bad answers get a verdict, hints step."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from checker_asserts import assert_diagnosed, assert_passes, unanswered

from course_utils.exercises import lesson12 as ex


def my_previous_token_score(maps):
    N = maps.shape[-1]
    i = np.arange(1, N)
    return maps[:, i, i - 1].mean(axis=-1)


def my_induction_score(maps):
    n = maps.shape[-1] // 2
    t = np.arange(n - 1)
    return maps[:, n + t, t + 1].mean(axis=-1)


def my_sample_probs(logits, temperature, top_k):
    z = np.asarray(logits, dtype=np.float64) / temperature
    z[np.argsort(-z)[top_k:]] = -np.inf
    e = np.exp(z - z.max())
    return e / e.sum()


def test_solutions_pass(capsys):
    assert_passes(ex.check_previous_token_score(my_previous_token_score), capsys)
    assert_passes(ex.check_induction_score(my_induction_score), capsys)
    assert_passes(ex.check_sample_probs(my_sample_probs), capsys)


def test_torch_and_float32_answers_pass(capsys):
    as_torch = lambda maps: torch.as_tensor(maps).diagonal(offset=-1, dim1=-2, dim2=-1).mean(-1)  # (H, N-1) -> (H,)
    assert_passes(ex.check_previous_token_score(as_torch), capsys)
    assert_passes(ex.check_sample_probs(lambda *a: my_sample_probs(*a).astype(np.float32)), capsys)


def _prev(maps, offset, divide_by=None):
    n = maps.shape[-1]
    i = np.arange(max(0, -offset), n)
    vals = maps[:, i, i + offset]
    return vals.sum(-1) / (divide_by or len(i))


PREVIOUS_MISTAKES = [
    ("the diagonal (each character's weight on itself)", lambda m: _prev(m, 0)),
    ("divided by N instead of N - 1", lambda m: _prev(m, -1, divide_by=m.shape[-1])),
    ("queries and keys swapped", lambda m: _prev(np.swapaxes(m, -1, -2), -1)),
    (
        "all earlier characters, not only the previous one",
        lambda m: (np.tril(m, -1).sum(-1))[:, 1:].mean(-1),
    ),
]


@pytest.mark.parametrize("mistake, fn", PREVIOUS_MISTAKES, ids=[m for m, _ in PREVIOUS_MISTAKES])
def test_previous_token_mistakes_are_named(mistake, fn, capsys):
    assert_diagnosed(ex.check_previous_token_score(fn), mistake, capsys)


def _ind(maps, key):
    n = maps.shape[-1] // 2
    t = np.arange(n - 1)
    return maps[:, n + t, key(n, t)].mean(-1)


INDUCTION_MISTAKES = [
    ("attention to the earlier copy of the same character", lambda m: _ind(m, lambda n, t: t)),
    ("the previous-token score of the second half", lambda m: _ind(m, lambda n, t: n + t - 1)),
    ("all the weight on the first copy", lambda m: m[:, m.shape[-1] // 2 :, : m.shape[-1] // 2].sum(-1).mean(-1)),
]


@pytest.mark.parametrize("mistake, fn", INDUCTION_MISTAKES, ids=[m for m, _ in INDUCTION_MISTAKES])
def test_induction_mistakes_are_named(mistake, fn, capsys):
    assert_diagnosed(ex.check_induction_score(fn), mistake, capsys)


def _softmax(z):
    e = np.exp(z - z.max())
    return e / e.sum()


def _top(z, k):
    z = np.array(z, dtype=np.float64)
    z[np.argsort(-z)[k:]] = -np.inf
    return z


def _bottom(z, k):
    z = np.array(z, dtype=np.float64)
    z[np.argsort(z)[k:]] = -np.inf  # the k smallest stay
    return z


SAMPLING_MISTAKES = [
    ("multiplied by the temperature", lambda lg, t, k: _softmax(_top(np.asarray(lg) * t, k))),
    ("kept the k smallest logits", lambda lg, t, k: _softmax(_bottom(np.asarray(lg) / t, k))),
    (
        "not renormalised after top-k",
        lambda lg, t, k: np.where(np.isfinite(_top(np.asarray(lg) / t, k)), _softmax(np.asarray(lg) / t), 0.0),
    ),
    ("top-k ignored", lambda lg, t, k: _softmax(np.asarray(lg) / t)),
]


@pytest.mark.parametrize("mistake, fn", SAMPLING_MISTAKES, ids=[m for m, _ in SAMPLING_MISTAKES])
def test_sampling_mistakes_are_named(mistake, fn, capsys):
    assert_diagnosed(ex.check_sample_probs(fn), mistake, capsys)


@pytest.mark.parametrize(
    "fn, words",
    [
        (lambda maps: "0.5", "str"),
        (lambda maps: None, "None"),
        (lambda maps: {"head": 1}, "dict"),
        (lambda maps: np.full(maps.shape[0], np.nan), "returned nan"),
        (lambda maps: my_previous_token_score(maps)[:-1], "shape"),
        (lambda maps: 1 / 0, "ZeroDivisionError"),
    ],
)
def test_bad_answers_get_a_verdict_not_a_crash(fn, words, capsys):
    feedback = ex.check_previous_token_score(fn)
    printed = capsys.readouterr().out
    assert not feedback.passed and feedback.answered
    assert words in printed, printed


def test_unanswered_prints_stepped_hints_then_the_solution_on_request(capsys):
    first = ex.check_induction_score(unanswered)
    second = ex.check_induction_score(unanswered)
    printed = capsys.readouterr().out
    assert not first.answered and not second.answered
    assert "(1/3" in printed and "(2/3" in printed
    assert "maps[:, n + t, t + 1]" not in printed.split("(2/3")[0]  # the first hint gives no code
    ex.solution("induction")
    assert "return maps[:, n + t, t + 1].mean(axis=-1)" in capsys.readouterr().out


def test_layer_ablation_prediction(capsys):
    assert not ex.check_layer_ablation(None, 0.8).answered
    assert "Hint" in capsys.readouterr().out
    assert ex.check_layer_ablation(0.7, 0.8).passed
    wrong = ex.check_layer_ablation(0.1, 0.8)
    assert not wrong.passed and "you predicted 0.1, measured 0.8" in capsys.readouterr().out
    assert ex.check_layer_ablation("0.8", 0.8).mistake == "not a valid prediction"
    assert ex.check_layer_ablation(float("nan"), 0.8).mistake == "not a valid prediction"
