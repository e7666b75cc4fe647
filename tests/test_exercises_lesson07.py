"""Lesson 07's checkers: each named mistake is diagnosed, the correct answers pass, a stub gets a hint."""

from __future__ import annotations

import pytest
import torch

from course_utils import tiling
from course_utils.exercises import lesson07 as ex


def _stub(*args):
    raise NotImplementedError


def _step(kind):
    def step(m, l, acc, s, v):
        m_new = s.amax(dim=-1) if kind == "block max" else torch.maximum(m, s.amax(dim=-1))
        alpha = torch.exp(m_new - m) if kind == "inverted" else torch.exp(m - m_new)
        p = torch.exp(s - (m if kind == "old max" else m_new)[:, None])
        l_new = (l if kind == "no l" else alpha * l) + p.sum(dim=-1)
        acc_new = (acc if kind == "no acc" else alpha[:, None] * acc) + p @ v
        return m_new, l_new, acc_new

    return step


def test_step_correct_answers_pass():
    assert ex.check_online_softmax_step(tiling.online_softmax_step)
    assert ex.check_online_softmax_step(_step("right"))


def test_step_that_never_moves_the_max_fails_on_the_overflow_case():
    """Exact in exact arithmetic (softmax is shift-invariant), but exp overflows when the scores jump up."""

    def lazy(m, l, acc, s, v):
        p = torch.exp(s - m[:, None])
        return m, l + p.sum(-1), acc + p @ v

    fb = ex.check_online_softmax_step(lazy)
    assert not fb.passed and fb.answered


@pytest.mark.parametrize(
    "kind, name",
    [
        ("no acc", "the accumulator was not rescaled"),
        ("no l", "the running sum l was not rescaled"),
        ("inverted", "the correction factor is inverted"),
        ("old max", "the new block was exponentiated with the old max"),
        ("block max", "the block's own max replaced the running max"),
    ],
)
def test_step_mistakes_are_named(kind, name, capsys):
    fb = ex.check_online_softmax_step(_step(kind))
    assert not fb.passed and fb.answered and fb.mistake == name
    assert name in capsys.readouterr().out


def test_step_unanswered_prints_a_hint(capsys):
    fb = ex.check_online_softmax_step(_stub)
    assert not fb and not fb.answered
    assert "Hint" in capsys.readouterr().out


def test_step_wrong_return_type_is_explained():
    fb = ex.check_online_softmax_step(lambda m, l, acc, s, v: acc)
    assert not fb.passed and "must return a tuple (m, l, acc)" in fb.message


def _merge(kind):
    def merge(m1, l1, a1, m2, l2, a2):
        m = torch.maximum(m1, m2)
        if kind == "no rescale":
            return m, l1 + l2, a1 + a2
        if kind == "average":
            return m, torch.ones_like(l1), (a1 / l1[:, None] + a2 / l2[:, None]) / 2
        w1, w2 = torch.exp(m1 - m), torch.exp(m2 - m)
        if kind == "one side":
            return m, w1 * l1 + l2, w1[:, None] * a1 + a2
        if kind == "inverted":
            w1, w2 = 1 / w1, 1 / w2
        return m, w1 * l1 + w2 * l2, w1[:, None] * a1 + w2[:, None] * a2

    return merge


def test_merge_correct_answers_pass():
    assert ex.check_merge_states(tiling.merge_states)
    assert ex.check_merge_states(_merge("right"))


@pytest.mark.parametrize(
    "kind, name",
    [
        ("no rescale", "the two states were added without rescaling"),
        ("average", "the two outputs were averaged"),
        ("one side", "only one side was rescaled"),
        ("inverted", "the correction factors are inverted"),
    ],
)
def test_merge_mistakes_are_named(kind, name):
    fb = ex.check_merge_states(_merge(kind))
    assert not fb.passed and fb.mistake == name


def test_merge_unanswered_prints_a_hint(capsys):
    assert not ex.check_merge_states(_stub).answered
    assert "Hint" in capsys.readouterr().out
