"""The checkers of lessons 02-04: each named mistake is diagnosed on a learner-style wrong function, each
robustness case (wrong type, dtype, complex, NaN, exceptions, timeouts, mask polarity, causality) gets a verdict in
words, correct solutions pass (float32 included). The wrong functions are written the way a learner would, not
copied from the checkers."""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch
from checker_asserts import assert_diagnosed, assert_passes, unanswered

from course_utils.exercises import lesson02, lesson03, lesson04

EXERCISE_CHECKS = [
    (lesson02.LOG_SOFTMAX, lesson02.check_log_softmax),
    (lesson02.SOFTMAX_JACOBIAN, lesson02.check_softmax_jacobian),
    (lesson03.NEW_INPUT, lesson03.check_new_input),
    (lesson04.CAUSAL_WINDOW_MASK, lesson04.check_causal_window_mask),
    (lesson04.MASKED_ATTENTION, lesson04.check_masked_attention),
]
PREDICTIONS = [
    (lesson02.IDENTICAL_INPUTS, lesson02.check_identical_inputs, 0.25),
    (lesson03.DUPLICATE, lesson03.check_duplicate, 0.8903),
    (lesson04.SCALED_VARIANCE, lesson04.check_scaled_variance, 16.0),
]


@pytest.fixture(autouse=True)
def _fresh_hints():
    """Hints advance per check: start and leave every exercise at its first hint."""
    every = [e for e, _ in EXERCISE_CHECKS] + [p for p, _, _ in PREDICTIONS]
    for exercise in every:
        exercise._step = 0
    yield
    for exercise in every:
        exercise._step = 0


@pytest.mark.parametrize("exercise, check", EXERCISE_CHECKS, ids=lambda x: getattr(x, "name", ""))
def test_unanswered_prints_hints_in_steps_and_no_code(exercise, check, capsys):
    outs = []
    for _ in range(len(exercise.hints) + 1):
        feedback = check(unanswered)
        assert not feedback.passed and not feedback.answered
        outs.append(capsys.readouterr().out)
    assert "not answered yet" in outs[0] and "1/3" in outs[0] and "2/3" in outs[1] and "3/3" in outs[2]
    assert "def " not in outs[0] and not any(lib in exercise.hints[0] for lib in ("np.", "torch."))  # the idea first
    assert f"ex.solution('{exercise.key}')" in outs[-1]  # after the last hint: where the solution is
    assert exercise.solution not in "".join(outs)  # never printed unasked


@pytest.mark.parametrize("lesson", [lesson02, lesson03, lesson04])
def test_solutions_only_on_request(lesson, capsys):
    for key in lesson.LESSON.keys():
        lesson.solution(key)
        printed = capsys.readouterr().out
        assert lesson.LESSON.exercises[key].solution in printed
    lesson.solution("no such key")
    assert "the exercises are" in capsys.readouterr().out


@pytest.mark.parametrize("prediction, check, truth", PREDICTIONS, ids=lambda x: getattr(x, "name", ""))
def test_predictions(prediction, check, truth, capsys):
    assert not check(None, truth).answered
    assert "Hint:" in capsys.readouterr().out
    assert check(truth, truth).passed
    assert check(round(truth * 1.004, 4), truth).passed  # within the stated tolerance
    for wrong, verdict in ((truth * 2 + 1, "prediction off"), (str(truth), "not a valid prediction"),
                           (True, "not a valid prediction"), (float("nan"), "not a valid prediction"),
                           ([truth], "not a valid prediction")):
        feedback = check(wrong, truth)
        assert not feedback.passed and feedback.mistake == verdict, (wrong, feedback.message)
    assert prediction.explanation in check(truth, truth).message


# ---------------------------------------------------------------------------------------------------------
# lesson 02: log-softmax
# ---------------------------------------------------------------------------------------------------------


def log_softmax_ok(A):
    shifted = A - np.max(A, axis=0, keepdims=True)
    return shifted - np.log(np.sum(np.exp(shifted), axis=0, keepdims=True))


def log_softmax_torch(A):
    return torch.log_softmax(torch.as_tensor(A), dim=0)


def log_softmax_rows(A):
    shifted = A - A.max(axis=1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


def log_softmax_naive(A):
    return A - np.log(np.sum(np.exp(A), axis=0))


def log_of_softmax(A):
    e = np.exp(A - A.max(axis=0))
    return np.log(e / e.sum(axis=0))


def log_softmax_min(A):
    shifted = A - A.min(axis=0)
    return shifted - np.log(np.exp(shifted).sum(axis=0))


def log_softmax_mean(A):
    shifted = A - A.mean(axis=0)
    return shifted - np.log(np.exp(shifted).sum(axis=0))


def log_softmax_global(A):
    shifted = A - A.max()
    return shifted - np.log(np.exp(shifted).sum())


def softmax_only(A):
    e = np.exp(A - A.max(axis=0))
    return e / e.sum(axis=0)


@pytest.mark.parametrize("fn", [log_softmax_ok, log_softmax_torch, lambda A: log_softmax_ok(A.astype(np.float32))])
def test_log_softmax_accepts_solutions(fn, capsys):
    assert_passes(lesson02.check_log_softmax(fn), capsys)


@pytest.mark.parametrize(
    "fn, mistake",
    [
        (log_softmax_rows, "log-softmax over the wrong axis"),
        (softmax_only, "returned the softmax, not its log"),
        (log_softmax_naive, "not numerically stable"),
        (log_of_softmax, "took the log of the softmax"),
        (log_softmax_min, "subtracted the min, not the max"),
        (log_softmax_mean, "subtracted the mean, not the max"),
        (log_softmax_global, "normalised over the whole matrix"),
    ],
)
def test_log_softmax_names_the_mistake(fn, mistake, capsys, recwarn):
    assert_diagnosed(lesson02.check_log_softmax(fn), mistake, capsys)
    assert not recwarn.list  # overflow is diagnosed in words, never warned on stderr


def test_log_softmax_has_a_case_whose_column_spread_exceeds_709():
    cases = lesson02.LOG_SOFTMAX.cases(np.random.default_rng(lesson02.LOG_SOFTMAX.seed))
    spreads = [np.ptp(A, axis=0).min() for (A,) in cases]
    assert max(spreads) > 709  # the min and the mean shifts overflow on it
    assert any((A.max(0) - A.mean(0)).min() > 709 for (A,) in cases)  # ... the mean's too
    assert any(((A.max(0) - A.min(0)) > 709).all() and ((A.max(0) - A.mean(0)) < 709).all() for (A,) in cases)


# ---------------------------------------------------------------------------------------------------------
# lesson 02: the softmax's Jacobian
# ---------------------------------------------------------------------------------------------------------


def jacobian_ok(alpha):
    e = np.exp(alpha - alpha.max())
    p = e / e.sum()
    return np.diag(p) - np.outer(p, p)


def jacobian_loops(alpha):
    p = torch.softmax(torch.as_tensor(alpha), dim=0)
    N = len(alpha)
    return [[float(p[i] * (float(i == m) - p[m])) for m in range(N)] for i in range(N)]  # a list of lists


def jacobian_autograd(alpha):
    return torch.autograd.functional.jacobian(lambda a: torch.softmax(a, 0), torch.as_tensor(alpha))


def jacobian_variant(part):
    def fn(alpha):
        p = np.exp(alpha - alpha.max())
        p /= p.sum()
        return {
            "diag": np.diag(p),
            "own": np.diag(p * (1 - p)),
            "outer": -np.outer(p, p),
            "flipped": np.outer(p, p) - np.diag(p),
            "scores": np.diag(alpha) - np.outer(alpha, alpha),
        }[part]

    return fn


def jacobian_naive(alpha):
    p = np.exp(alpha) / np.exp(alpha).sum()
    return np.diag(p) - np.outer(p, p)


@pytest.mark.parametrize("fn", [jacobian_ok, jacobian_loops, jacobian_autograd])
def test_jacobian_accepts_solutions(fn, capsys):
    assert_passes(lesson02.check_softmax_jacobian(fn), capsys)


@pytest.mark.parametrize(
    "fn, mistake",
    [
        (jacobian_variant("diag"), "only the diagonal alpha'_i"),
        (jacobian_variant("own"), "the off-diagonal terms are missing"),
        (jacobian_variant("outer"), "the diagonal term is missing"),
        (jacobian_variant("flipped"), "the sign is flipped"),
        (jacobian_variant("scores"), "used the scores instead of the weights"),
        (jacobian_naive, "not numerically stable"),
    ],
)
def test_jacobian_names_the_mistake(fn, mistake, capsys):
    assert_diagnosed(lesson02.check_softmax_jacobian(fn), mistake, capsys)


# ---------------------------------------------------------------------------------------------------------
# robustness, on every lesson's exercises
# ---------------------------------------------------------------------------------------------------------


def _robustness_cases():
    """(check, wrong function, words the verdict must contain, mistake name or None)."""
    return [
        (lesson02.check_log_softmax, lambda A: str(log_softmax_ok(A)), "string", "not an array of numbers"),
        (lesson02.check_log_softmax, lambda A: {"log": A}, "dict", "not an array of numbers"),
        (lesson02.check_log_softmax, lambda A: (row for row in log_softmax_ok(A)), "iterator", "not an array of numbers"),
        (lesson02.check_log_softmax, lambda A: log_softmax_ok(A) + 0j, "complex", "not an array of numbers"),
        (lesson02.check_log_softmax, lambda A: log_softmax_ok(A) > -1, "boolean array", None),
        (lesson02.check_log_softmax, lambda A: None, "forget `return`", "not an array of numbers"),
        (lesson02.check_log_softmax, lambda A: A[0][0][0], "raised IndexError", None),
        (lesson02.check_softmax_jacobian, lambda a: np.full((len(a), len(a)), np.nan), "returned nan",
         "NaN or inf in the output"),
        (lesson03.check_new_input, lambda I, Wq, Wk, Wv, x: np.zeros(7), "returned shape (7,)", None),
        (lesson03.check_new_input, lambda I, Wq, Wk, Wv, x: Wv @ I, "returned shape", None),
        (lesson04.check_masked_attention, lambda q, k, v, mask: q @ k.T @ v @ mask, "raised", None),
        (lesson04.check_masked_attention, lambda q, k, v, mask: (q @ k.T).softmax(-1) @ v + 1j, "complex",
         "not an array of numbers"),
    ]


@pytest.mark.parametrize("check, wrong, words, mistake", _robustness_cases())
def test_bad_answers_get_a_readable_verdict(check, wrong, words, mistake, capsys, recwarn):
    feedback = check(wrong)
    out = capsys.readouterr()
    assert not feedback.passed and feedback.answered
    assert words in feedback.message, feedback.message
    assert "your function received" in feedback.message  # the shapes the learner's function was given
    assert feedback.mistake == mistake
    assert out.err == "" and not recwarn.list


def test_error_messages_quote_the_learners_input_shapes(capsys):
    feedback = lesson03.check_new_input(lambda I, Wq, Wk, Wv, x: Wq @ Wk)
    assert "your function received (4, 5), (4, 4), (4, 4), (4, 4), (4,)" in feedback.message


def test_a_hanging_answer_times_out(monkeypatch, capsys):
    monkeypatch.setattr(lesson02.LOG_SOFTMAX, "time_limit", 0.2)

    def forever(A):
        while True:
            A = A + 0

    start = time.perf_counter()
    feedback = lesson02.check_log_softmax(forever)
    assert not feedback.passed and "did not finish within 0.2 s" in feedback.message
    assert time.perf_counter() - start < 5


# ---------------------------------------------------------------------------------------------------------
# lesson 03: the output of a new input
# ---------------------------------------------------------------------------------------------------------


def _softmax(x):
    e = np.exp(x - x.max())
    return e / e.sum()


def new_input_ok(I, Wq, Wk, Wv, x):
    J = np.column_stack([I, x])
    alpha = np.array([(Wq @ x) @ (Wk @ J[:, i]) for i in range(J.shape[1])])
    return sum(w * (Wv @ J[:, i]) for i, w in enumerate(_softmax(alpha)))


def new_input_variant(change):
    def fn(I, Wq, Wk, Wv, x):
        J = I if change == "no self" else np.column_stack([I, x])
        T = (lambda W: W.T) if change == "transposed" else (lambda W: W)
        K = T(Wq if change == "wq keys" else Wk) @ J
        V = T(Wk if change == "keys" else Wv) @ J
        if change == "swapped":
            alpha = (T(Wk) @ x) @ (T(Wq) @ J)
        else:
            alpha = (T(Wq) @ x) @ K
        if change == "scaled":
            alpha = alpha / np.sqrt(Wq.shape[0])
        weights = alpha if change == "no softmax" else _softmax(alpha)
        return V @ weights

    return fn


@pytest.mark.parametrize("fn", [new_input_ok, new_input_variant(None),
                                lambda *a: new_input_ok(*(np.float32(t) for t in a)).astype(np.float32)])
def test_new_input_accepts_solutions(fn, capsys):
    assert_passes(lesson03.check_new_input(fn), capsys)


@pytest.mark.parametrize(
    "change, mistake",
    [
        ("no self", "left out i = j"),
        ("swapped", "rows and columns swapped"),
        ("scaled", "scaled by 1/sqrt(d_k)"),
        ("keys", "weighted the keys instead of the values"),
        ("no softmax", "the softmax is missing"),
        ("wq keys", "used W^q for the keys"),
        ("transposed", "transposed weight matrices"),
    ],
)
def test_new_input_names_the_mistake(change, mistake, capsys):
    assert_diagnosed(lesson03.check_new_input(new_input_variant(change)), mistake, capsys)


# ---------------------------------------------------------------------------------------------------------
# lesson 04: the causal window mask
# ---------------------------------------------------------------------------------------------------------


def window_ok(n, w):
    i, j = np.arange(n)[:, None], np.arange(n)[None, :]
    return (j <= i) & (i - j <= w)


def window_variant(change):
    def fn(n, w):
        i, j = torch.arange(n)[:, None], torch.arange(n)[None, :]
        return {
            "two-sided": (i - j).abs() <= w,
            "transposed": (i <= j) & (j - i <= w),
            "no self": (j < i) & (i - j <= w),
            "short": (j <= i) & (i - j < w),
            "long": (j <= i) & (i - j <= w + 1),
            "untruncated": j <= i,
            "inverted": ~((j <= i) & (i - j <= w)),
            "float": ((j <= i) & (i - j <= w)).float(),
            "int": ((j <= i) & (i - j <= w)).long(),
            "one future key": ((j <= i) & (i - j <= w)) | (j == i + 1),
        }[change]

    return fn


@pytest.mark.parametrize("fn", [window_ok, lambda n, w: torch.from_numpy(window_ok(n, w))])
def test_causal_window_mask_accepts_solutions(fn, capsys):
    assert_passes(lesson04.check_causal_window_mask(fn), capsys)


@pytest.mark.parametrize(
    "change, mistake",
    [
        ("two-sided", "sees the future: a two-sided window"),
        ("transposed", "rows and columns swapped: queries see the future"),
        ("no self", "a token does not see itself"),
        ("short", "the window is one key short"),
        ("long", "the window is one key too long"),
        ("untruncated", "causal, but not truncated"),
    ],
)
def test_causal_window_mask_names_the_mistake(change, mistake, capsys):
    assert_diagnosed(lesson04.check_causal_window_mask(window_variant(change)), mistake, capsys)


@pytest.mark.parametrize(
    "change, verdict, words",
    [
        ("inverted", "mask polarity inverted", "True means *may attend*"),
        ("float", "a float mask instead of a boolean one", "float 0/1 mask"),
        ("int", "not a boolean mask", "must be boolean"),
        ("one future key", "looks at future tokens", "not causal"),
    ],
)
def test_causal_window_mask_robustness_verdicts(change, verdict, words, capsys):
    feedback = lesson04.check_causal_window_mask(window_variant(change))
    assert not feedback.passed and feedback.answered and feedback.mistake == verdict
    assert words in feedback.message and capsys.readouterr().out.strip() == feedback.message


def test_causal_window_mask_verdicts_never_crash(capsys):
    for wrong in (lambda n, w: "mask", lambda n, w: {"n": n}, lambda n, w: iter([n]), lambda n, w: 1 / 0):
        feedback = lesson04.check_causal_window_mask(wrong)
        assert not feedback.passed and feedback.answered
    assert capsys.readouterr().err == ""


# ---------------------------------------------------------------------------------------------------------
# lesson 04: masked attention
# ---------------------------------------------------------------------------------------------------------


def masked_variant(where="before", fill=float("-inf"), invert=False, scale=True, zero_empty_rows=True, add=False):
    def fn(q, k, v, mask):
        scores = q @ k.T / (q.shape[-1] ** 0.5 if scale else 1.0)
        if where == "after":
            weights = torch.softmax(scores, dim=-1) * mask
        elif add:
            weights = torch.softmax(scores + mask, dim=-1)  # the boolean mask promoted to 0/1 and added
        else:
            weights = torch.softmax(scores.masked_fill(mask if invert else ~mask, fill), dim=-1)
            if zero_empty_rows:
                weights = torch.nan_to_num(weights, nan=0.0)
        return weights @ v

    return fn


def masked_float32(q, k, v, mask):
    return masked_variant()(q.float(), k.float(), v.float(), mask)


@pytest.mark.parametrize("fn", [masked_variant(), masked_float32])
def test_masked_attention_accepts_solutions(fn, capsys):
    assert_passes(lesson04.check_masked_attention(fn), capsys)


@pytest.mark.parametrize(
    "change, mistake",
    [
        (dict(where="after"), "masked after the softmax"),
        (dict(add=True), "added the boolean mask to the scores"),
        (dict(invert=True), "mask polarity inverted"),
        (dict(invert=True, zero_empty_rows=False), "mask polarity inverted"),
        (dict(fill=0.0), "masked scores set to 0, not -inf"),
        (dict(fill=0.0, zero_empty_rows=False), "masked scores set to 0, not -inf"),
        (dict(fill=-1e9), "a finite fill (-1e9 or finfo.min) on a fully masked row"),
        (dict(fill=torch.finfo(torch.float64).min), "a finite fill (-1e9 or finfo.min) on a fully masked row"),
        (dict(fill=-1e9, zero_empty_rows=False), "a finite fill (-1e9 or finfo.min) on a fully masked row"),
        (dict(scale=False), "forgot the scale"),
        (dict(scale=False, zero_empty_rows=False), "forgot the scale"),
        (dict(zero_empty_rows=False), "NaN on a fully masked row"),
    ],
)
def test_masked_attention_names_the_mistake(change, mistake, capsys):
    assert_diagnosed(lesson04.check_masked_attention(masked_variant(**change)), mistake, capsys)


def test_masked_attention_cases_cover_partial_and_empty_rows():
    cases = lesson04.MASKED_ATTENTION.cases(np.random.default_rng(lesson04.MASKED_ATTENTION.seed))
    first_mask = cases[0][3]
    assert first_mask.any(-1).all() and not first_mask.all()  # every query sees some keys, not all
    assert any(not mask.any(-1).all() for *_, mask in cases)  # some case has a fully masked row
    assert any(q.shape[0] != k.shape[0] for q, k, *_ in cases)  # N_q != N_k
    assert all(mask.dtype == torch.bool for *_, mask in cases)


def test_every_mistake_differs_from_the_reference_on_some_case():
    """A mistake that equals the right answer on every case could never be named (nor caught)."""
    for exercise, _ in EXERCISE_CHECKS:
        cases = exercise.cases(np.random.default_rng(exercise.seed))
        for mistake in exercise.mistakes:
            differs = False
            with np.errstate(all="ignore"):
                for args in cases:
                    expected = np.asarray(exercise.reference(*args), dtype=np.float64)
                    try:
                        wrong = mistake.wrong(*args)
                    except Exception:
                        continue
                    wrong = wrong.double().numpy() if isinstance(wrong, torch.Tensor) else np.asarray(wrong, float)
                    differs |= wrong.shape != expected.shape or not np.allclose(wrong, expected, equal_nan=True)
            assert differs, f"{exercise.name}: {mistake.name} equals the reference on every case"
