"""The checkers of lessons 05 and 06: each named mistake is diagnosed on a learner-style wrong function, and the
correct solution passes. The wrong functions are written the way a learner would, not copied from the checkers."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from checker_asserts import assert_diagnosed, assert_passes, unanswered

from course_utils.exercises import lesson05, lesson06


@pytest.mark.parametrize(
    "check",
    [
        lesson05.check_split_heads,
        lesson05.check_merge_heads,
        lesson05.check_multi_head_attention,
        lesson06.check_sinusoidal,
        lesson06.check_rope,
    ],
)
def testunanswered_prints_a_hint_and_does_not_fail(check, capsys):
    feedback = check(unanswered)
    printed = capsys.readouterr().out
    assert not feedback.passed and not feedback.answered
    assert "not answered yet" in printed and "Hint:" in printed


def test_every_mistake_is_tested_below():
    named = {
        m.name
        for ex in (
            lesson05.SPLIT_HEADS,
            lesson05.MERGE_HEADS,
            lesson05.MULTI_HEAD_ATTENTION,
            lesson06.SINUSOIDAL,
            lesson06.ROPE,
        )
        for m in ex.mistakes
    }
    tested = {name for _, name in SPLIT + MERGE + MHA + SINUSOID + ROPE}
    assert named == tested


# ---------------------------------------------------------------------------------------------------------
# lesson 05
# ---------------------------------------------------------------------------------------------------------


def split_ok(x, num_heads):
    B, N, D = x.shape
    return x.view(B, N, num_heads, D // num_heads).permute(0, 2, 1, 3)


def split_straight(x, num_heads):
    B, N, D = x.shape
    return x.view(B, num_heads, N, D // num_heads)


def split_interleaved(x, num_heads):
    B, N, D = x.shape
    return x.view(B, N, D // num_heads, num_heads).permute(0, 3, 1, 2)


def split_no_transpose(x, num_heads):
    B, N, D = x.shape
    return x.view(B, N, num_heads, D // num_heads)


SPLIT = [
    (split_straight, "reshaped straight to (B, H, N, d)"),
    (split_interleaved, "heads interleaved"),
    (split_no_transpose, "forgot to move the head axis"),
]


def merge_ok(heads):
    B, H, N, d = heads.shape
    return torch.cat([heads[:, h] for h in range(H)], dim=-1)


def merge_no_transpose(heads):
    B, H, N, d = heads.shape
    return heads.reshape(B, N, H * d)


def merge_interleaved(heads):
    B, H, N, d = heads.shape
    return torch.stack([heads[:, h] for h in range(H)], dim=-1).reshape(B, N, d * H)


def merge_summed(heads):
    return heads.sum(1)


MERGE = [
    (merge_no_transpose, "reshaped without moving the head axis back"),
    (merge_interleaved, "interleaved the heads' features"),
    (merge_summed, "summed the heads instead of concatenating"),
]


def _softmax(s, axis):
    e = np.exp(s - s.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def mha_learner(X, Wq, Wk, Wv, Wo, num_heads, scale_by=None, axis=-1, use_wo=True, one_head=False):
    N, D = X.shape
    H = 1 if one_head else num_heads
    d = D // H
    outs = []
    for h in range(H):
        cols = slice(h * d, (h + 1) * d)
        q, k, v = X @ Wq[cols].T, X @ Wk[cols].T, X @ Wv[cols].T  # (N, d)
        a = _softmax(q @ k.T / np.sqrt(scale_by or d), axis)
        outs.append(a @ v)
    merged = np.concatenate(outs, axis=1)
    return merged @ Wo.T if use_wo else merged


MHA = [
    (
        lambda X, Wq, Wk, Wv, Wo, H: mha_learner(X, Wq, Wk, Wv, Wo, H, scale_by=X.shape[1]),
        "scaled by 1/sqrt(D) instead of 1/sqrt(d)",
    ),
    (lambda X, Wq, Wk, Wv, Wo, H: mha_learner(X, Wq, Wk, Wv, Wo, H, axis=0), "softmax over the wrong axis"),
    (lambda X, Wq, Wk, Wv, Wo, H: mha_learner(X, Wq, Wk, Wv, Wo, H, use_wo=False), "forgot W^O"),
    (lambda X, Wq, Wk, Wv, Wo, H: mha_learner(X, Wq, Wk, Wv, Wo, H, one_head=True), "one head over all D features"),
]


def test_lesson05_correct_solutions_pass(capsys):
    assert_passes(lesson05.check_split_heads(split_ok), capsys)
    assert_passes(lesson05.check_merge_heads(merge_ok), capsys)
    assert_passes(lesson05.check_multi_head_attention(mha_learner), capsys)


@pytest.mark.parametrize("fn, mistake", SPLIT, ids=[m for _, m in SPLIT])
def test_split_heads_mistakes(fn, mistake, capsys):
    assert_diagnosed(lesson05.check_split_heads(fn), mistake, capsys)


@pytest.mark.parametrize("fn, mistake", MERGE, ids=[m for _, m in MERGE])
def test_merge_heads_mistakes(fn, mistake, capsys):
    assert_diagnosed(lesson05.check_merge_heads(fn), mistake, capsys)


@pytest.mark.parametrize("fn, mistake", MHA, ids=[m for _, m in MHA])
def test_multi_head_attention_mistakes(fn, mistake, capsys):
    assert_diagnosed(lesson05.check_multi_head_attention(fn), mistake, capsys)


def test_the_package_module_passes_the_split_and_merge_checkers(capsys):
    from course_utils.attention import MultiHeadSelfAttention

    def split(x, num_heads):
        module = MultiHeadSelfAttention(x.shape[-1], num_heads).double()
        with torch.no_grad():  # an identity projection: split_heads then only reshapes
            module.in_proj.weight.copy_(torch.eye(x.shape[-1]).repeat(3, 1))
            module.in_proj.bias.zero_()
        return module.split_heads(x)[0]

    def merge(heads):
        B, H, N, d = heads.shape
        return MultiHeadSelfAttention(H * d, H).merge_heads(heads)

    assert_passes(lesson05.check_split_heads(split), capsys)
    assert_passes(lesson05.check_merge_heads(merge), capsys)


# ---------------------------------------------------------------------------------------------------------
# lesson 06
# ---------------------------------------------------------------------------------------------------------


def sinusoid_learner(n, d, layout="interleaved", swap=False, exponent="2i", op="divide", transpose=False):
    E = np.zeros((n, d))
    for p in range(n):
        for col in range(d):
            i = col // 2
            power = {"2i": 2 * i, "i": i, "col": col}[exponent] / d
            angle = p / 10000**power if op == "divide" else p * 10000**power
            use_sin = (col % 2 == 0) != swap
            E[p, col] = np.sin(angle) if use_sin else np.cos(angle)
    if layout == "halves":
        half = (d + 1) // 2
        angles = np.array([[p / 10000 ** (2 * i / d) for i in range(half)] for p in range(n)])
        E = np.concatenate([np.sin(angles), np.cos(angles)], axis=1)[:, :d]
    return E.T if transpose else E


SINUSOID = [
    (lambda n, d: sinusoid_learner(n, d, transpose=True), "column convention (D, N)"),
    (lambda n, d: sinusoid_learner(n, d, swap=True), "sin and cos swapped"),
    (lambda n, d: sinusoid_learner(n, d, layout="halves"), "sin and cos in two halves instead of interleaved"),
    (lambda n, d: sinusoid_learner(n, d, exponent="i"), "exponent i / d_model instead of 2i / d_model"),
    (lambda n, d: sinusoid_learner(n, d, exponent="col"), "each column with its own exponent"),
    (lambda n, d: sinusoid_learner(n, d, op="multiply"), "multiplied by 10000^(2i/d) instead of dividing"),
]


def rope_learner(x, halves=False, sign=1.0, same_angle=False):
    n, d = x.shape
    out = x.copy()
    for p in range(n):
        for i in range(d // 2):
            a = p * sign if same_angle else sign * p / 10000 ** (2 * i / d)
            j, k = (i, i + d // 2) if halves else (2 * i, 2 * i + 1)
            out[p, j] = x[p, j] * np.cos(a) - x[p, k] * np.sin(a)
            out[p, k] = x[p, j] * np.sin(a) + x[p, k] * np.cos(a)
    return out


ROPE = [
    (lambda x: rope_learner(x, halves=True), "rotated halves instead of pairs (2i, 2i+1)"),
    (lambda x: rope_learner(x, sign=-1.0), "rotated the wrong way"),
    (lambda x: rope_learner(x, same_angle=True), "the same angle for every pair"),
]


def test_lesson06_correct_solutions_pass(capsys):
    assert_passes(lesson06.check_sinusoidal(sinusoid_learner), capsys)
    assert_passes(lesson06.check_rope(rope_learner), capsys)


def test_the_package_functions_pass_the_checkers(capsys):
    from course_utils import positional as pe

    assert_passes(lesson06.check_sinusoidal(lambda n, d: pe.sinusoidal_encoding(n, d, dtype=torch.float64)), capsys)
    assert_passes(lesson06.check_rope(lambda x: pe.apply_rope(torch.from_numpy(x))), capsys)


@pytest.mark.parametrize("fn, mistake", SINUSOID, ids=[m for _, m in SINUSOID])
def test_sinusoid_mistakes(fn, mistake, capsys):
    assert_diagnosed(lesson06.check_sinusoidal(fn), mistake, capsys)


@pytest.mark.parametrize("fn, mistake", ROPE, ids=[m for _, m in ROPE])
def test_rope_mistakes(fn, mistake, capsys):
    assert_diagnosed(lesson06.check_rope(fn), mistake, capsys)
