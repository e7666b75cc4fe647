"""Lesson 07's checkers: each named mistake is diagnosed, correct answers pass (float64 and float32), stubs get
stepped hints, and wrong types, complex values, NaN, exceptions and timeouts give verdicts, never tracebacks.

The kernel exercise runs under TRITON_INTERPRET=1 on a CPU (tests/conftest.py sets it); each named mistake has a
deliberately wrong @triton.jit function here, written independently of the checker's own."""

from __future__ import annotations

import time

import pytest
import torch
from checker_asserts import assert_diagnosed, assert_passes, unanswered

from course_utils import tiling
from course_utils.exercises import lesson07 as ex


def _step(kind):
    def step(m, l, acc, s, v):
        m_new = s.amax(dim=-1) if kind == "block max" else torch.maximum(m, s.amax(dim=-1))
        alpha = torch.exp(m_new - m) if kind == "inverted" else torch.exp(m - m_new)
        p = torch.exp(s - (m if kind == "old max" else m_new)[:, None])
        l_new = (l if kind == "no l" else alpha * l) + p.sum(dim=-1)
        acc_new = (acc if kind == "no acc" else alpha[:, None] * acc) + p @ v
        return m_new, l_new, acc_new

    return step


def test_step_correct_answers_pass(capsys):
    assert_passes(ex.check_online_softmax_step(tiling.online_softmax_step), capsys)
    assert_passes(ex.check_online_softmax_step(_step("right")), capsys)


def test_step_a_correct_float32_answer_passes(capsys):
    def step32(m, l, acc, s, v):
        return _step("right")(*(t.float() for t in (m, l, acc, s, v)))

    assert_passes(ex.check_online_softmax_step(step32), capsys)


def test_step_that_never_moves_the_max_fails_on_the_overflow_case():
    """Exact in exact arithmetic (softmax is shift-invariant), but exp overflows when the scores jump up."""

    def lazy(m, l, acc, s, v):
        p = torch.exp(s - m[:, None])
        return m, l + p.sum(-1), acc + p @ v

    fb = ex.check_online_softmax_step(lazy)
    assert not fb.passed and fb.answered and fb.mistake == "NaN or inf in the output"


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
    assert_diagnosed(ex.check_online_softmax_step(_step(kind)), name, capsys)


def test_step_hints_come_in_steps_and_the_solution_only_on_request(capsys):
    ex.online_softmax_step_exercise._step = 0
    messages = []
    for _ in range(4):
        fb = ex.check_online_softmax_step(unanswered)
        assert not fb and not fb.answered
        messages.append(capsys.readouterr().out)
    assert "(1/3" in messages[0] and "(2/3" in messages[1] and "(3/3" in messages[2]
    assert "ex.solution('online_softmax_step')" in messages[3]
    assert "torch.maximum" not in messages[0]  # the first hint is the idea, not code
    assert all("return m_new, alpha * l" not in m for m in messages)  # never the solution
    ex.solution("online_softmax_step")
    assert "return m_new, alpha * l + p.sum(dim=-1)" in capsys.readouterr().out


@pytest.mark.parametrize(
    "answer, words",
    [
        (lambda m, l, acc, s, v: acc, "must return a tuple (m, l, acc), got Tensor"),
        (lambda m, l, acc, s, v: (m, l), "got tuple of length 2"),
        (lambda m, l, acc, s, v: "m, l, acc", "got str"),
        (lambda m, l, acc, s, v: {"m": m, "l": l, "acc": acc}, "got dict"),
        (lambda m, l, acc, s, v: iter((m, l, acc)), "got tuple_iterator"),
        (lambda m, l, acc, s, v: (m, l, acc.to(torch.complex128)), "complex"),
        (lambda m, l, acc, s, v: (m, "l", acc), "string"),
        (lambda m, l, acc, s, v: (m.long(), l, acc), "must be floating point"),
        (lambda m, l, acc, s, v: (m, l[:, None], acc), "l holds one number per query row"),
        (lambda m, l, acc, s, v: (m, l, acc[:, :, None] @ v), "raised RuntimeError"),
    ],
    ids=["tensor", "pair", "str", "dict", "iterator", "complex", "str inside", "int64", "l shape", "exception"],
)
def test_step_wrong_kinds_of_answer_get_verdicts_not_tracebacks(answer, words, capsys):
    fb = ex.check_online_softmax_step(answer)
    printed = capsys.readouterr()
    assert not fb.passed and fb.answered and words in fb.message, fb.message
    assert "your function received m (3,), l (3,), acc (3, 2), s (3, 4), v (4, 2)" in fb.message  # the learner's shapes
    assert printed.err == ""


def test_step_nan_answer_is_named(capsys):
    fb = ex.check_online_softmax_step(lambda m, l, acc, s, v: (m, l, acc * float("nan")))
    assert not fb.passed and fb.mistake == "NaN or inf in the output"
    assert capsys.readouterr().err == ""


def test_step_not_a_function():
    fb = ex.check_online_softmax_step("my_online_softmax_step")
    assert not fb.passed and "expected a function, got str" in fb.message


def test_step_a_hanging_answer_times_out(monkeypatch):
    monkeypatch.setattr(ex.online_softmax_step_exercise, "time_limit", 0.5)

    def hang(m, l, acc, s, v):
        while True:
            time.sleep(0.01)

    start = time.perf_counter()
    fb = ex.check_online_softmax_step(hang)
    assert not fb.passed and "did not finish within 0.5 s" in fb.message
    assert time.perf_counter() - start < 10


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


def test_merge_correct_answers_pass(capsys):
    assert_passes(ex.check_merge_states(tiling.merge_states), capsys)
    assert_passes(ex.check_merge_states(_merge("right")), capsys)
    f32 = lambda *state: _merge("right")(*(t.float() for t in state))  # noqa: E731
    assert_passes(ex.check_merge_states(f32), capsys)


@pytest.mark.parametrize(
    "kind, name",
    [
        ("no rescale", "the two states were added without rescaling"),
        ("average", "the two outputs were averaged"),
        ("one side", "only one side was rescaled"),
        ("inverted", "the correction factors are inverted"),
    ],
)
def test_merge_mistakes_are_named(kind, name, capsys):
    assert_diagnosed(ex.check_merge_states(_merge(kind)), name, capsys)


def test_merge_wrong_types_and_hints(capsys):
    fb = ex.check_merge_states(lambda *state: state[:3] + state[3:])
    assert not fb.passed and "got tuple of length 6" in fb.message
    assert "your function received m1, l1, m2, l2 (3,)" in fb.message
    ex.merge_states_exercise._step = 0
    assert not ex.check_merge_states(unanswered).answered
    assert "(1/3" in capsys.readouterr().out


# ---------------------------------------------------------------------------------------------------------
# 3. Write the kernel (Triton's interpreter on a CPU)
# ---------------------------------------------------------------------------------------------------------

flash_teaching = pytest.importorskip("course_utils.flash_teaching") if ex.kernel_ready() is None else None
needs_kernel = pytest.mark.skipif(flash_teaching is None, reason=f"the teaching kernel cannot run: {ex.kernel_ready()}")

if flash_teaching is not None:
    tl, triton = flash_teaching.tl, flash_teaching.triton

    @triton.jit
    def right_update(b_m, b_l, b_acc, b_s, b_v):
        row_max = tl.max(b_s, axis=1)
        new_m = tl.maximum(b_m, row_max)
        shift = tl.where(new_m > float("-inf"), new_m, 0.0)
        p = tl.exp(b_s - shift[:, None])
        correction = tl.exp(b_m - shift)
        return new_m, correction * b_l + tl.sum(p, axis=1), correction[:, None] * b_acc + tl.dot(p.to(b_v.dtype), b_v)

    @triton.jit
    def forgets_correction(b_m, b_l, b_acc, b_s, b_v):
        new_m = tl.maximum(b_m, tl.max(b_s, axis=1))
        shift = tl.where(new_m > float("-inf"), new_m, 0.0)
        p = tl.exp(b_s - shift[:, None])
        return new_m, b_l + tl.sum(p, axis=1), b_acc + tl.dot(p.to(b_v.dtype), b_v)

    @triton.jit
    def normalises_blocks(b_m, b_l, b_acc, b_s, b_v):
        new_m = tl.maximum(b_m, tl.max(b_s, axis=1))
        shift = tl.where(new_m > float("-inf"), new_m, 0.0)
        p = tl.exp(b_s - shift[:, None])
        block_sum = tl.sum(p, axis=1)
        p = p / tl.where(block_sum > 0, block_sum, 1.0)[:, None]  # a softmax per block
        correction = tl.exp(b_m - shift)
        return new_m, correction * b_l + tl.sum(p, axis=1), correction[:, None] * b_acc + tl.dot(p.to(b_v.dtype), b_v)

    @triton.jit
    def scalar_max(b_m, b_l, b_acc, b_s, b_v):
        new_m = tl.maximum(b_m, tl.max(tl.max(b_s, axis=1), axis=0))  # one max for the whole tile
        shift = tl.where(new_m > float("-inf"), new_m, 0.0)
        p = tl.exp(b_s - shift[:, None])
        correction = tl.exp(b_m - shift)
        return new_m, correction * b_l + tl.sum(p, axis=1), correction[:, None] * b_acc + tl.dot(p.to(b_v.dtype), b_v)

    @triton.jit
    def nan_on_masked_rows(b_m, b_l, b_acc, b_s, b_v):
        new_m = tl.maximum(b_m, tl.max(b_s, axis=1))
        p = tl.exp(b_s - new_m[:, None])  # -inf - (-inf) on a row that has seen no key
        correction = tl.exp(b_m - new_m)
        return new_m, correction * b_l + tl.sum(p, axis=1), correction[:, None] * b_acc + tl.dot(p.to(b_v.dtype), b_v)

    @triton.jit
    def returns_two(b_m, b_l, b_acc, b_s, b_v):
        return b_m, b_l

    @triton.jit
    def wrong_dot_shapes(b_m, b_l, b_acc, b_s, b_v):
        return b_m, b_l, b_acc + tl.dot(b_v, b_s)

    @triton.jit
    def stub_update(b_m, b_l, b_acc, b_s, b_v):
        raise NotImplementedError  # your code here


@needs_kernel
def test_kernel_correct_updates_pass(capsys):
    assert_passes(ex.check_flash_update(flash_teaching.online_softmax_update), capsys)
    assert_passes(ex.check_flash_update(right_update), capsys)


@needs_kernel
@pytest.mark.parametrize(
    "name, wrong",
    [
        ("missing correction factor", "forgets_correction"),
        ("normalising each block", "normalises_blocks"),
        ("a scalar max over the whole block", "scalar_max"),
        ("NaN on a fully masked row", "nan_on_masked_rows"),
    ],
)
def test_kernel_mistakes_are_named(name, wrong, capsys):
    fb = ex.check_flash_update(globals()[wrong])
    assert_diagnosed(fb, name, capsys)


@needs_kernel
def test_kernel_stub_gets_stepped_hints_and_no_kernel_runs(capsys):
    ex.flash_update_exercise._step = 0
    for step in (1, 2, 3):
        fb = ex.check_flash_update(stub_update)
        assert not fb and not fb.answered
        assert f"({step}/3" in capsys.readouterr().out
    ex.solution("flash_update")
    assert 'tl.where(b_m_new == float("-inf"), 0.0, b_m_new)' in capsys.readouterr().out


@needs_kernel
@pytest.mark.parametrize(
    "answer, words, mistake",
    [
        ("plain", "expected a @triton.jit function, got a plain Python function", "not a @triton.jit function"),
        ("str", "expected a @triton.jit function, got str", "not a @triton.jit function"),
        ("two", "your function received b_m (32,) float32, b_l (32,) float32, b_acc (32, 16) float32", None),
        ("dot", "your function received b_m (32,)", None),
    ],
)
def test_kernel_wrong_kinds_of_answer_get_verdicts(answer, words, mistake, capsys):
    fn = {
        "plain": lambda b_m, b_l, b_acc, b_s, b_v: (b_m, b_l, b_acc),
        "str": "my_update",
        "two": returns_two,
        "dot": wrong_dot_shapes,
    }[answer]
    fb = ex.check_flash_update(fn)
    printed = capsys.readouterr()
    assert not fb.passed and fb.answered and words in fb.message, fb.message
    assert fb.mistake == mistake
    assert printed.err == ""


def test_kernel_says_it_cannot_run_without_the_interpreter(monkeypatch, capsys):
    """On a CPU without TRITON_INTERPRET (or without Triton) the exercise says why and how, and does not crash."""
    from course_utils import flash_teaching as ft

    monkeypatch.setattr(ft, "INTERPRET", False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    fb = ex.check_flash_update(unanswered)
    out = capsys.readouterr().out
    assert not fb and not fb.answered and "skipped, this exercise cannot run here" in out
    assert "TRITON_INTERPRET" in out if ft.TRITON_AVAILABLE else (ft.TRITON_PROBLEM or "Triton is not installed") in out
    monkeypatch.setattr(ft, "TRITON_AVAILABLE", False)
    monkeypatch.setattr(ft, "TRITON_PROBLEM", "Triton is not installed (pip install 'triton>=3.6'; Linux only)")
    fb = ex.check_flash_update(unanswered)
    assert "Triton is not installed" in fb.message and "pip install triton" in fb.message


def test_lesson_registry_has_the_four_exercises(capsys):
    assert ex.LESSON.keys() == ["online_softmax_step", "merge_states", "flash_update", "causal_blocks"]
    ex.hint("nonsense")
    assert "the exercises are" in capsys.readouterr().out


@needs_kernel
def test_kernel_a_hanging_update_times_out(monkeypatch):
    @triton.jit
    def hangs(b_m, b_l, b_acc, b_s, b_v):
        while True:
            b_l = b_l + 1.0
        return b_m, b_l, b_acc

    monkeypatch.setattr(ex.flash_update_exercise, "time_limit", 1.0)
    start = time.perf_counter()
    fb = ex.check_flash_update(hangs)
    assert not fb.passed and "did not finish within 1 s" in fb.message, fb.message
    assert time.perf_counter() - start < 20


@pytest.mark.parametrize(
    "predicted, passed, words",
    [
        (110, True, "you predicted 110, measured 110"),
        (110.0, True, "you predicted 110, measured 110"),
        (111, False, "you predicted 111, measured 110"),
        (100, False, "you predicted 100, measured 110"),  # half of 200: forgets the diagonal tiles
        ("110", False, "the string '110'"),
        (True, False, "is a bool"),
        (float("nan"), False, "must be a finite number"),
        (110.5, False, "must be a whole number"),
        ([110], False, "must be a number"),
    ],
)
def test_causal_blocks_prediction(predicted, passed, words, capsys):
    fb = ex.check_causal_blocks(
        predicted,
        tiling.tiled_attention(
            *(torch.zeros(1, 1, 1000, 2, dtype=torch.float64),) * 3,
            causal=True,
            block_q=100,
            block_k=50,
            return_stats=True,
        )[1].score_blocks,
    )
    printed = capsys.readouterr()
    assert fb.passed == passed and fb.answered and words in fb.message, fb.message
    assert printed.err == ""


def test_causal_blocks_prediction_hints_before_an_answer(capsys):
    ex.causal_blocks_prediction._step = 0
    fb = ex.check_causal_blocks(None, 110)
    assert not fb and not fb.answered and "(1/3" in capsys.readouterr().out
