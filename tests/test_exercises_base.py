import numpy as np

from course_utils.exercises import Exercise, Mistake


def _cases(rng):
    return [(rng.normal(size=(3, 4)),), (rng.normal(size=(2, 5)),)]


EX = Exercise(
    name="double",
    reference=lambda x: 2 * x,
    cases=_cases,
    mistakes=[
        Mistake("tripled", lambda x: 3 * x, "Multiply by two."),
        Mistake("transposed", lambda x: 2 * x.T, "Keep the shape."),
    ],
    hint="return 2 * x",
)


def test_correct_answer_passes(capsys):
    feedback = EX.check(lambda x: x + x)
    assert feedback and feedback.answered and "✅" in capsys.readouterr().out


def test_unanswered_prints_the_hint_and_does_not_raise(capsys):
    def stub(x):
        raise NotImplementedError

    feedback = EX.check(stub)
    assert not feedback and not feedback.answered
    assert "return 2 * x" in capsys.readouterr().out


def test_known_mistakes_are_named():
    assert EX.check(lambda x: 3 * x, verbose=False).mistake == "tripled"
    assert EX.check(lambda x: 2 * x.T, verbose=False).mistake == "transposed"


def test_a_mistake_is_named_only_when_it_explains_every_case():
    def half_tripled(x):  # tripled on the first case only
        return 3 * x if x.shape == (3, 4) else x

    feedback = EX.check(half_tripled, verbose=False)
    assert not feedback and feedback.mistake is None and "wrong values" in feedback.message


def test_other_failures_are_explained_in_words():
    assert "returned None" in EX.check(lambda x: None, verbose=False).message
    assert "raised ZeroDivisionError" in EX.check(lambda x: 1 / 0, verbose=False).message
    assert "returned shape (3,)" in EX.check(lambda x: x[:, 0], verbose=False).message
    wrong = EX.check(lambda x: 2 * x + (x > 1), verbose=False)
    assert "wrong values on case" in wrong.message and "expected" in wrong.message
    assert "expected a function" in EX.check(42, verbose=False).message


def test_torch_outputs_are_accepted():
    import torch

    assert EX.check(lambda x: torch.tensor(2 * x), verbose=False)
    assert isinstance(np.asarray(EX.cases(np.random.default_rng(0))[0][0]), np.ndarray)


# ---------------------------------------------------------------------------------------------------------
# Robustness: a checker never crashes, never passes a wrong answer, writes nothing to stderr
# ---------------------------------------------------------------------------------------------------------

import time  # noqa: E402
import warnings  # noqa: E402

import pytest  # noqa: E402
import torch  # noqa: E402

from course_utils.exercises import base  # noqa: E402
from course_utils.exercises.base import Causal, Lesson, Prediction  # noqa: E402


@pytest.mark.parametrize(
    "answer, words",
    [
        (lambda x: "2 * x", "returned a string"),
        (lambda x: {"out": 2 * x}, "returned a dict"),
        (lambda x: iter(2 * x), "returned an iterator"),
        (lambda x: (r for r in 2 * x), "returned an iterator"),
        (lambda x: 2 * x + 0j, "complex values"),
        (lambda x: torch.tensor(2 * x, dtype=torch.complex64), "complex values"),
        (lambda x: [2 * x, 2 * x[:1]], "could not be read as an array"),
        (lambda x: {1, 2}, "returned a set"),
        (lambda x: print, "returned a function"),
    ],
)
def test_answers_of_the_wrong_kind_get_a_verdict_in_words(answer, words, capsys):
    feedback = EX.check(answer)
    captured = capsys.readouterr()
    assert not feedback and feedback.answered
    assert words in feedback.message and words in captured.out
    assert captured.err == ""
    assert "received (3, 4)" in feedback.message  # the shapes the learner's function received


def test_nan_in_the_output_is_named():
    feedback = EX.check(lambda x: np.where(x > 0.5, np.nan, 2 * x), verbose=False)
    assert not feedback and feedback.mistake == "NaN or inf in the output"


def test_a_function_that_never_returns_is_stopped():
    ex = Exercise(name="double", reference=lambda x: 2 * x, cases=_cases, time_limit=0.2)

    def forever(x):
        while True:
            pass

    start = time.perf_counter()
    feedback = ex.check(forever, verbose=False)
    assert time.perf_counter() - start < 5
    assert not feedback and "did not finish within 0.2 s" in feedback.message


def test_where_it_cannot_interrupt_the_checker_reports_the_elapsed_time(monkeypatch):
    monkeypatch.setattr(base, "_can_interrupt", lambda: False)
    ex = Exercise(name="double", reference=lambda x: 2 * x, cases=_cases, time_limit=0.05)

    def slow(x):
        time.sleep(0.1)
        return 2 * x

    feedback = ex.check(slow, verbose=False)
    assert not feedback and "took 0.1 s, over the limit of 0.05 s" in feedback.message
    assert "cannot interrupt" in feedback.message


def test_tolerance_follows_the_answers_dtype():
    def softmax_ref(x):
        e = np.exp(x - x.max(0))
        return e / e.sum(0)

    cases = lambda rng: [(rng.normal(size=(300, 7)) * 3,)]
    ex = Exercise(name="softmax", reference=softmax_ref, cases=cases)
    as_float32 = lambda x: torch.softmax(torch.tensor(x, dtype=torch.float32), 0)
    as_float16 = lambda x: torch.softmax(torch.tensor(x, dtype=torch.float16), 0)
    assert ex.check(as_float32, verbose=False)  # ~1e-7 relative rounding: right
    assert ex.check(as_float16, verbose=False)
    wrong32 = lambda x: torch.softmax(torch.tensor(x * 1.01, dtype=torch.float32), 0)
    assert not ex.check(wrong32, verbose=False)  # 1% off is wrong in any dtype
    # a float16 answer is not allowed float16's slack when it is returned as float64
    rounded = lambda x: softmax_ref(x).astype(np.float16).astype(np.float64) * 1.004
    assert not ex.check(rounded, verbose=False)


def _allowed(n):  # the reference mask: a causal (n, n) mask, True = may attend
    return np.tril(np.ones((n, n), dtype=bool))


MASK = Exercise(name="causal mask", reference=_allowed, cases=lambda rng: [(4,), (6,)], output="bool_mask")


def test_a_float_mask_is_named_as_such():
    feedback = MASK.check(lambda n: np.tril(np.ones((n, n))), verbose=False)
    assert not feedback and feedback.mistake == "a float mask instead of a boolean one"
    assert "added" in feedback.message
    feedback = MASK.check(lambda n: torch.ones(n, n).tril(), verbose=False)
    assert feedback.mistake == "a float mask instead of a boolean one"


def test_an_inverted_or_integer_mask_is_named():
    assert MASK.check(lambda n: ~_allowed(n), verbose=False).mistake == "mask polarity inverted"
    assert MASK.check(lambda n: _allowed(n).astype(np.int64), verbose=False).mistake == "not a boolean mask"
    assert MASK.check(lambda n: torch.ones(n, n, dtype=torch.bool).tril(), verbose=False)


SCALAR = Exercise(name="pairs", reference=lambda n: n * (n + 1) // 2, cases=lambda rng: [(4,), (46,)], output="scalar")


def test_a_scalar_answer_must_be_a_number():
    assert SCALAR.check(lambda n: n * (n + 1) // 2, verbose=False)
    assert SCALAR.check(lambda n: np.int64(n * (n + 1) // 2), verbose=False)
    assert "string" in SCALAR.check(lambda n: str(n * (n + 1) // 2), verbose=False).message
    assert SCALAR.check(lambda n: True, verbose=False).mistake == "a bool instead of a number"
    assert "single number" in SCALAR.check(lambda n: [1, 2], verbose=False).message


def _causal_mean(x):  # (N, d): output i is the mean of x[0..i]
    return np.cumsum(x, axis=0) / np.arange(1, len(x) + 1)[:, None]


CAUSAL = Exercise(
    name="running mean",
    reference=_causal_mean,
    cases=lambda rng: [(rng.normal(size=(6, 3)),), (rng.normal(size=(5, 2)),)],
    causal=Causal(arg=0, token_axis=0, out_token_axis=0),
)


def test_a_function_that_looks_at_the_future_is_named():
    peeks = lambda x: np.cumsum(x, axis=0) / np.arange(1, len(x) + 1)[:, None] + 0.01 * x[-1]
    feedback = CAUSAL.check(peeks, verbose=False)
    assert not feedback and feedback.mistake == "looks at future tokens"
    assert "looks at future tokens (not causal): changing only the tokens after position" in feedback.message
    assert CAUSAL.check(_causal_mean, verbose=False)
    with_torch = lambda x: torch.cumsum(torch.tensor(x), 0) / torch.arange(1, len(x) + 1)[:, None]
    assert CAUSAL.check(with_torch, verbose=False)


def test_learners_warnings_and_stderr_stay_out_of_the_notebook(capsys):
    import sys

    def noisy(x):
        warnings.warn("a learner's warning", stacklevel=1)
        print("to stderr", file=sys.stderr)
        return np.exp(x * 1e5) * 0 + 2 * x  # overflow warning from NumPy

    EX.check(noisy)
    assert capsys.readouterr().err == ""


def test_a_broken_checker_says_so_instead_of_raising():
    broken = Exercise(name="broken", reference=lambda x: "not an array", cases=_cases)
    feedback = broken.check(lambda x: 2 * x, verbose=False)
    assert not feedback and "the checker itself failed" in feedback.message


# ---------------------------------------------------------------------------------------------------------
# Hints in steps; the solution only on request
# ---------------------------------------------------------------------------------------------------------


def _stepped():
    ex = Exercise(
        name="double",
        reference=lambda x: 2 * x,
        cases=_cases,
        hints=("each entry grows", "by a factor", "of two"),
        solution="def double(x):\n    return 2 * x",
    )
    return ex, Lesson({"double": ex})


def test_hints_come_one_step_at_a_time_and_never_the_solution(capsys):
    ex, lesson = _stepped()
    outputs = []
    for _ in range(4):
        assert not ex.check(unanswered_stub)
        outputs.append(capsys.readouterr().out)
    assert "each entry grows" in outputs[0] and "by a factor" not in outputs[0] and "(1/3" in outputs[0]
    assert "by a factor" in outputs[1] and "of two" in outputs[2]
    assert "of two" in outputs[3] and "that was the last hint" in outputs[3] and "ex.solution('double')" in outputs[3]
    assert not any("return 2 * x" in out for out in outputs)
    lesson.solution("double")
    assert "return 2 * x" in capsys.readouterr().out


def test_the_lessons_hint_advances_the_same_steps(capsys):
    ex, lesson = _stepped()
    lesson.hint("double")
    ex.check(unanswered_stub)
    out = capsys.readouterr().out
    assert "each entry grows" in out and "by a factor" in out
    lesson.hint("no such exercise")
    lesson.solution(3)
    out = capsys.readouterr().out
    assert out.count("No exercise named") == 2 and "['double']" in out


def test_a_single_hint_reads_as_before(capsys):
    ex = Exercise(name="double", reference=lambda x: 2 * x, cases=_cases, hint="return 2 * x")
    ex.check(unanswered_stub)
    assert capsys.readouterr().out == "✏️  double: not answered yet.\n   Hint: return 2 * x\n"
    ex.check(unanswered_stub)
    assert "Hint: return 2 * x  (that was the last hint" in capsys.readouterr().out


def unanswered_stub(*args):
    raise NotImplementedError


# ---------------------------------------------------------------------------------------------------------
# Predictions
# ---------------------------------------------------------------------------------------------------------

WINDOW = Prediction(name="smallest window", kind="int", hints=("think of the delay",), explanation="w = d works.")


@pytest.mark.parametrize(
    "guess, words",
    [
        ("5", "the string '5'"),
        (True, "a bool"),
        (float("nan"), "finite"),
        (5.5, "whole number"),
        (np.arange(3), "single number"),
        ([5], "must be a number"),
    ],
)
def test_a_prediction_of_the_wrong_kind_is_named(guess, words):
    feedback = WINDOW.check(guess, 5, verbose=False)
    assert not feedback and feedback.answered and words in feedback.message


def test_a_prediction_is_compared_with_the_measurement(capsys):
    assert not WINDOW.check(None, 5).answered
    assert "think of the delay" in capsys.readouterr().out
    assert WINDOW.check(np.int64(5), 5, verbose=False)
    assert WINDOW.check(5.0, torch.tensor(5), verbose=False)
    off = WINDOW.check(3, 5, verbose=False)
    assert not off and "you predicted 3, measured 5 (only the exact value counts)" in off.message
    assert "w = d works." in off.message
    close = Prediction(name="ratio", kind="float", rel_tol=0.1)
    assert close.check(1.05, 1.0, verbose=False) and not close.check(1.2, 1.0, verbose=False)
    assert "cannot compare" in close.check(1.0, "x", verbose=False).message


def test_a_choice_prediction_accepts_only_its_choices():
    which = Prediction(name="which fails", kind="choice", choices=("none", "learned", "rope"))
    assert which.check(" Learned", "learned", verbose=False)
    assert not which.check("rope", "learned", verbose=False)
    assert "not one of the choices" in which.check("alibi", "learned", verbose=False).message
    with pytest.raises(ValueError):
        Prediction(name="x", kind="choice")


def test_a_mistake_that_fails_on_the_first_case_is_still_named():
    square_only = Mistake("transposed", lambda x: 2 * x.T if x.shape[0] == x.shape[1] else x @ x, "Keep the shape.")
    cases = lambda rng: [(rng.normal(size=(2, 3)),), (rng.normal(size=(3, 3)),)]
    ex = Exercise(name="double", reference=lambda x: 2 * x, cases=cases, mistakes=[square_only])
    learner = lambda x: 2 * x.T if x.shape[0] == x.shape[1] else x @ x  # raises on (2, 3) @ (2, 3)
    feedback = ex.check(learner, verbose=False)
    assert feedback.mistake == "transposed"
    other = ex.check(lambda x: x @ x, verbose=False)  # fails on case 1 and matches no mistake
    assert other.mistake is None and "raised ValueError" in other.message and "on case 1" in other.message


def test_a_bool_prediction_written_as_a_string_is_told_how_to_write_it():
    feedback = Prediction(name="still equivariant", kind="bool").check("False", False, verbose=False)
    assert not feedback and "write True or False without quotes" in feedback.message
