"""Lesson 11's checkers: the solutions pass, each named mistake is diagnosed, an unanswered one prints a hint."""

from __future__ import annotations

import math

import pytest
import torch

from course_utils import efficient as ef
from course_utils.attention import scaled_dot_product_attention, window_mask
from course_utils.exercises import lesson11 as ex


def my_window_mask(n, w):
    i = torch.arange(n)[:, None]
    j = torch.arange(n)[None, :]
    return (i - j).abs() <= w


def my_linear(q, k, v):
    phi_q, phi_k = torch.nn.functional.elu(q) + 1, torch.nn.functional.elu(k) + 1
    state = phi_k.transpose(-2, -1) @ v  # (..., d, d_v)
    z = phi_k.sum(-2)  # (..., d)
    return (phi_q @ state) / (phi_q @ z.unsqueeze(-1))


def quadratic_linear(q, k, v):
    """Right values, N x N memory."""
    phi_q, phi_k = torch.nn.functional.elu(q) + 1, torch.nn.functional.elu(k) + 1
    w = phi_q @ phi_k.transpose(-2, -1)  # (..., N, N)
    return (w @ v) / w.sum(-1, keepdim=True)


def my_low_rank(q, k, v, E, F):
    scores = q @ (E @ k).transpose(-2, -1) / math.sqrt(q.shape[-1])
    return torch.softmax(scores, dim=-1) @ (F @ v)


def test_solutions_pass():
    assert ex.check_window_mask(my_window_mask)
    assert ex.check_linear_attention(my_linear)
    assert ex.check_low_rank_attention(my_low_rank)
    assert ex.check_window_mask(lambda n, w: window_mask(n, w).numpy())  # NumPy answers are fine too


def _no_normaliser(q, k, v):
    phi_q, phi_k = torch.nn.functional.elu(q) + 1, torch.nn.functional.elu(k) + 1
    return phi_q @ (phi_k.transpose(-2, -1) @ v)


def _elu_only(q, k, v):
    phi_q, phi_k = torch.nn.functional.elu(q), torch.nn.functional.elu(k)
    return (phi_q @ (phi_k.transpose(-2, -1) @ v)) / (phi_q @ phi_k.sum(-2).unsqueeze(-1))


def _transposed(q, k, v):
    """A state built as v^T phi(k), shape (d_v, d): it breaks as soon as d != d_v."""
    phi_q, phi_k = torch.nn.functional.elu(q) + 1, torch.nn.functional.elu(k) + 1
    state = v.transpose(-2, -1) @ phi_k  # (..., d_v, d)
    return (phi_q @ state) / (phi_q @ phi_k.sum(-2).unsqueeze(-1))


def test_a_transposed_state_is_caught_by_the_case_where_d_differs_from_d_v():
    feedback = ex.check_linear_attention(_transposed)
    assert not feedback and "raised RuntimeError" in feedback.message and "(2, 9, 5)" in feedback.message


def test_an_n_by_n_linear_attention_is_caught_by_its_memory(capsys):
    feedback = ex.check_linear_attention(quadratic_linear)
    assert not feedback and feedback.answered and feedback.mistake == "built an N x N matrix"
    assert "8 MiB" in capsys.readouterr().out


def test_the_memory_check_reports_a_pass(capsys):
    assert ex.check_linear_attention(my_linear)
    assert "no N x N matrix" in capsys.readouterr().out


@pytest.mark.parametrize(
    "check, wrong, mistake",
    [
        (
            ex.check_window_mask,
            lambda n, w: (
                my_window_mask(n, w)
                & (torch.arange(n)[:, None] - torch.arange(n) < w)
                & (torch.arange(n) - torch.arange(n)[:, None] < w)
            ),
            "the window is one too narrow",
        ),
        (ex.check_window_mask, lambda n, w: my_window_mask(n, w).tril(), "only the past is visible"),
        (ex.check_window_mask, lambda n, w: ~my_window_mask(n, w), "True marks the blocked pairs"),
        (ex.check_linear_attention, _no_normaliser, "no normaliser"),
        (ex.check_linear_attention, lambda q, k, v: ef.linear_attention(q, k, v, causal=True), "only the past is used"),
        (ex.check_linear_attention, _elu_only, "the feature map is elu(x), not elu(x) + 1"),
        (
            ex.check_linear_attention,
            lambda q, k, v: scaled_dot_product_attention(q, k, v),
            "softmax attention instead of linear attention",
        ),
        (ex.check_low_rank_attention, lambda q, k, v, E, F: my_low_rank(q, k, v, F, E), "E and F swapped"),
        (
            ex.check_low_rank_attention,
            lambda q, k, v, E, F: torch.softmax(q @ (E @ k).transpose(-2, -1), -1) @ (F @ v),
            "missing scale",
        ),
        (
            ex.check_low_rank_attention,
            lambda q, k, v, E, F: torch.softmax(q @ (E @ k).transpose(-2, -1) / math.sqrt(q.shape[-1]), -2) @ (F @ v),
            "softmax over the wrong axis",
        ),
        (
            ex.check_low_rank_attention,
            lambda q, k, v, E, F: my_low_rank(E @ q, k, v, E, F),
            "the queries were projected too",
        ),
    ],
)
def test_each_named_mistake_is_diagnosed(check, wrong, mistake):
    feedback = check(wrong)
    assert not feedback and feedback.answered and feedback.mistake == mistake


def test_unanswered_exercises_print_a_hint(capsys):
    def stub(*args):
        raise NotImplementedError

    for check in (ex.check_window_mask, ex.check_linear_attention, ex.check_low_rank_attention):
        feedback = check(stub)
        assert not feedback and not feedback.answered
        assert "Hint:" in capsys.readouterr().out


def test_an_unnamed_error_is_reported_with_its_position():
    feedback = ex.check_window_mask(lambda n, w: my_window_mask(n, w) | (torch.arange(n)[:, None] == 0))
    assert not feedback and feedback.mistake is None and "wrong values" in feedback.message
