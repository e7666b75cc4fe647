"""The exercises of lesson 05: masked multi-head attention and the parameter-count prediction. Each named mistake is diagnosed on a learner-style wrong function,
each robustness case (wrong type, dtype, complex, NaN, exception, timeout, polarity, causality) gets a readable
verdict, and the correct solutions (and the written ones) pass. The wrong functions are written the way a learner
would, not copied from the checkers."""

from __future__ import annotations

import copy
import time

import numpy as np
import pytest
import torch
from checker_asserts import (
    assert_diagnosed,
    assert_hints_in_steps,
    assert_passes,
    assert_registered,
    assert_verdict,
    assert_written_solutions_pass,
    unanswered,
)

from course_utils.exercises import lesson05 as ex_module

lesson05 = ex_module
LESSON = lesson05.LESSON
KEYS = ["masked_mha", "parameters", "causal_order"]
EXERCISES = (lesson05.MASKED_MHA, lesson05.PARAMETERS, lesson05.CAUSAL_ORDER)
BUILDS = {"masked_mha": lesson05.check_masked_multi_head_attention}
BUILD_KEYS = list(BUILDS)


def test_hints_come_in_steps_and_the_solution_only_on_request():
    assert_hints_in_steps(EXERCISES)


def test_every_exercise_is_registered_with_three_hints_and_a_solution():
    assert_registered(LESSON, KEYS, EXERCISES)


def test_the_written_solutions_pass_their_checkers(capsys):
    assert_written_solutions_pass(LESSON, BUILDS, capsys)


def test_unknown_keys_are_named(capsys):
    LESSON.hint("nope")
    assert "No exercise named 'nope'" in capsys.readouterr().out


@pytest.mark.parametrize("key", BUILD_KEYS)
def test_unanswered_prints_a_hint_and_does_not_fail(key, capsys):
    feedback = BUILDS[key](unanswered)
    printed = capsys.readouterr().out
    assert not feedback.passed and not feedback.answered
    assert "not answered yet" in printed and "Hint:" in printed


# ---------------------------------------------------------------------------------------------------------
# lesson 05: masked multi-head attention
# ---------------------------------------------------------------------------------------------------------


def _softmax(s, axis):
    e = np.exp(s - s.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def mha_learner(
    X,
    Wq,
    Wk,
    Wv,
    Wo,
    num_heads,
    mask,
    transpose="",
    mask_style="where",
    scale_by=None,
    axis=-1,
    use_wo=True,
    one_head=False,
    centre=False,
):
    """A learner's loop over heads, slicing each head's rows of the weights."""
    if centre:
        X = X - X.mean(axis=0)  # "normalise the tokens": mixes every token, the future included
    N, D = X.shape
    H = 1 if one_head else num_heads
    d = D // H
    outs = []
    for h in range(H):
        cols = slice(h * d, (h + 1) * d)
        q, k, v = ((X @ W)[:, cols] if "q" in transpose else X @ W[cols].T for W in (Wq, Wk, Wv))  # (N, d)
        s = q @ k.T / np.sqrt(scale_by or d)
        if mask_style == "where":
            s = np.where(mask, s, -np.inf)
        elif mask_style == "inverted":
            s = s.copy()
            s[mask] = -np.inf  # "mask out where the mask is set"
        elif mask_style == "tril":
            s = np.where(np.tril(np.ones((N, N))) > 0, s, -np.inf)
        elif mask_style == "multiply":
            s = s * mask
        elif mask_style == "add":
            s = s + mask
        a = _softmax(s, axis)
        if mask_style == "after":
            a = a * mask
        outs.append(a @ v)
    merged = np.concatenate(outs, axis=1)
    if not use_wo:
        return merged
    return merged @ (Wo if "o" in transpose else Wo.T)


def _mha(**change):
    return lambda X, Wq, Wk, Wv, Wo, H, mask: mha_learner(X, Wq, Wk, Wv, Wo, H, mask, **change)


MHA = [
    (_mha(transpose="qo"), "transposed weights"),
    (_mha(transpose="q"), "transposed weights"),
    (_mha(transpose="o"), "transposed weights"),
    (_mha(mask_style="inverted"), "mask polarity inverted"),
    (_mha(mask_style="none"), "ignored the mask"),
    (_mha(mask_style="tril"), "a causal mask instead of the given one"),
    (_mha(mask_style="multiply"), "multiplied the scores by the mask"),
    (_mha(mask_style="add"), "added the boolean mask to the scores"),
    (_mha(mask_style="after"), "mask applied after the softmax"),
    (
        lambda X, Wq, Wk, Wv, Wo, H, mask: mha_learner(X, Wq, Wk, Wv, Wo, H, mask, scale_by=X.shape[1]),
        "scaled by 1/sqrt(D) instead of 1/sqrt(d)",
    ),
    (
        lambda X, Wq, Wk, Wv, Wo, H, mask: mha_learner(X, Wq, Wk, Wv, Wo, H, mask, scale_by=1.0),
        "forgot the 1/sqrt(d) scale",
    ),
    (_mha(axis=0), "softmax over the wrong axis"),
    (_mha(use_wo=False), "forgot W^O"),
    (_mha(one_head=True), "one head over all D features"),
]


def test_every_lesson05_mistake_is_tested():
    assert {m.name for m in lesson05.MASKED_MHA.mistakes} == {name for _, name in MHA}


def test_the_masked_mha_solution_passes_in_float64_float32_and_torch(capsys):
    assert_passes(lesson05.check_masked_multi_head_attention(mha_learner), capsys)
    assert_passes(lesson05.check_masked_multi_head_attention(lambda *a: mha_learner(*a).astype(np.float32)), capsys)

    def with_torch(X, Wq, Wk, Wv, Wo, H, mask):  # the package's module, fed the same weights
        from course_utils.attention import MultiHeadSelfAttention

        m = MultiHeadSelfAttention(X.shape[1], H, bias=False).double()
        with torch.no_grad():
            m.in_proj.weight.copy_(torch.from_numpy(np.concatenate([Wq, Wk, Wv])))
            m.out_proj.weight.copy_(torch.from_numpy(Wo))
            return m(torch.from_numpy(X)[None], attn_mask=torch.from_numpy(mask))[0]

    assert_passes(lesson05.check_masked_multi_head_attention(with_torch), capsys)


@pytest.mark.parametrize("fn, mistake", MHA, ids=[f"{i}-{m}" for i, (_, m) in enumerate(MHA)])
def test_masked_mha_mistakes(fn, mistake, capsys):
    assert_diagnosed(lesson05.check_masked_multi_head_attention(fn), mistake, capsys)


def test_masked_mha_catches_a_leak_from_the_future(capsys):
    fb = lesson05.check_masked_multi_head_attention(_mha(centre=True))
    assert_verdict(fb, capsys, "not causal", "changed the outputs at positions", mistake="looks at future tokens")


def test_the_checkers_masks_are_causal_windows_that_keep_the_diagonal():
    for *_, mask in lesson05.MASKED_MHA.cases(np.random.default_rng(0)):
        assert mask.dtype == bool and np.all(np.diag(mask)) and not np.any(np.triu(mask, 1))
        assert np.all((~mask).any(axis=1) | (np.arange(len(mask)) == 0))  # inverted: no row left empty but row 0's


@pytest.mark.parametrize(
    "answer, words, mistake",
    [
        (lambda *a: "array of shape (N, D)", ("a string",), "not an array of numbers"),
        (lambda *a: {"out": mha_learner(*a)}, ("a dict",), "not an array of numbers"),
        (lambda *a: iter(mha_learner(*a)), ("an iterator",), "not an array of numbers"),
        (lambda *a: mha_learner(*a).astype(complex), ("complex",), "not an array of numbers"),
        (lambda *a: None, ("returned None",), "not an array of numbers"),
        (lambda *a: np.full_like(a[0], np.nan), ("nan", "(5, 8)"), "NaN or inf in the output"),
        (lambda *a: mha_learner(*a).T, ("returned shape (8, 5)", "transpose"), None),
    ],
    ids=["string", "dict", "iterator", "complex", "None", "NaN", "transposed output"],
)
def test_masked_mha_robustness(answer, words, mistake, capsys):
    assert_verdict(lesson05.check_masked_multi_head_attention(answer), capsys, *words, mistake=mistake)


def test_masked_mha_exception_quotes_the_shapes_the_learner_received(capsys):
    def crashes(X, Wq, Wk, Wv, Wo, H, mask):
        return X @ Wq.reshape(H, -1)  # a shape bug

    fb = lesson05.check_masked_multi_head_attention(crashes)
    assert_verdict(fb, capsys, "raised ValueError", "(5, 8), (8, 8), (8, 8), (8, 8), (8, 8), 2, (5, 5)")


def test_masked_mha_timeout(capsys):
    quick = copy.copy(lesson05.MASKED_MHA)
    quick.time_limit = 0.2

    def hangs(*args):
        while True:
            time.sleep(0.01)

    start = time.perf_counter()
    fb = quick.check(hangs)
    assert time.perf_counter() - start < 5
    assert_verdict(fb, capsys, "did not finish within 0.2 s")


@pytest.mark.parametrize(
    "predicted, passed, words",
    [
        (4096, True, ("you predicted 4096, measured 4096", "Heads split")),
        (4 * 32 * 32 * 8, False, ("you predicted 32768, measured 4096",)),
        ("4096", False, ("the string '4096'",)),
        (True, False, ("a bool",)),
        (float("nan"), False, ("finite",)),
    ],
)
def test_parameter_count_prediction(predicted, passed, words, capsys):
    fb = lesson05.check_parameter_count(predicted, 4096)
    printed = capsys.readouterr().out
    assert fb.passed == passed and fb.answered
    for word in words:
        assert word in printed, printed


def test_parameter_count_stub_prints_a_hint(capsys):
    fb = lesson05.check_parameter_count(None, 4096)
    assert not fb.answered and "Hint:" in capsys.readouterr().out


def test_the_measured_parameter_count_does_not_depend_on_the_heads():
    from course_utils.attention import MultiHeadSelfAttention
    from course_utils.training import count_parameters

    counts = {count_parameters(MultiHeadSelfAttention(32, H, bias=False)) for H in (1, 2, 4, 8)}
    assert counts == {4 * 32 * 32}


@pytest.mark.parametrize(
    "predicted, passed, words",
    [
        (False, True, ("you predicted False, measured False", "moved to the front it sees only itself")),
        (True, False, ("you predicted True, measured False",)),
        ("False", False, ("the string 'False'",)),
        (0, False, ("must be True or False",)),
    ],
)
def test_causal_order_prediction(predicted, passed, words, capsys):
    fb = lesson05.check_causal_order(predicted, False)
    printed = capsys.readouterr().out
    assert fb.passed == passed and fb.answered
    for word in words:
        assert word in printed, printed


def test_a_causal_mask_breaks_permutation_equivariance_whatever_the_weights():
    from course_utils.attention import MultiHeadSelfAttention

    for seed in range(3):
        torch.manual_seed(seed)
        attn, x = MultiHeadSelfAttention(16, 2), torch.randn(1, 6, 16)
        perm = torch.randperm(6, generator=torch.Generator().manual_seed(1))
        with torch.no_grad():
            assert torch.allclose(attn(x[:, perm]), attn(x)[:, perm], atol=1e-6)
            assert not torch.allclose(attn(x[:, perm], is_causal=True), attn(x, is_causal=True)[:, perm], atol=1e-5)
