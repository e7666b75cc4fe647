"""The exercises of lesson 06: the sinusoid, RoPE (either sign), causal ALiBi and the extrapolation prediction. Each named mistake is diagnosed on a learner-style wrong function,
each robustness case (wrong type, dtype, complex, NaN, exception, timeout, polarity, causality) gets a readable
verdict, and the correct solutions (and the written ones) pass. The wrong functions are written the way a learner
would, not copied from the checkers."""

from __future__ import annotations

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

from course_utils.exercises import lesson06 as ex_module

lesson06 = ex_module
LESSON = lesson06.LESSON
KEYS = ["sinusoidal", "rope", "causal_alibi", "extrapolation"]
EXERCISES = (lesson06.SINUSOIDAL, lesson06.ROPE, lesson06.CAUSAL_ALIBI, lesson06.EXTRAPOLATION)
BUILDS = {
    "sinusoidal": lesson06.check_sinusoidal,
    "rope": lesson06.check_rope,
    "causal_alibi": lesson06.check_causal_alibi,
}
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
# lesson 06: the sinusoid
# ---------------------------------------------------------------------------------------------------------


def sinusoid_learner(n, d, layout="interleaved", swap=False, exponent="2i", op="divide", transpose=False, start=0):
    E = np.zeros((n, d))
    for p in range(n):
        for col in range(d):
            i = col // 2
            power = {"2i": 2 * i, "i": i, "col": col}[exponent] / d
            pos = p + start
            angle = pos / 10000**power if op == "divide" else pos * 10000**power
            use_sin = (col % 2 == 0) != swap
            E[p, col] = np.sin(angle) if use_sin else np.cos(angle)
    if layout == "halves":
        half = (d + 1) // 2
        angles = np.array([[p / 10000 ** (2 * i / d) for i in range(half)] for p in range(n)])
        E = np.concatenate([np.sin(angles), np.cos(angles)], axis=1)[:, :d]
    return E.T if transpose else E


SINUSOID = [
    (lambda n, d: sinusoid_learner(n, d, transpose=True), "column convention (D, N)"),
    (lambda n, d: sinusoid_learner(n, d, start=1), "positions counted from 1"),
    (lambda n, d: sinusoid_learner(n, d, swap=True), "sin and cos swapped"),
    (lambda n, d: sinusoid_learner(n, d, layout="halves"), "sin and cos in two halves instead of interleaved"),
    (lambda n, d: sinusoid_learner(n, d, exponent="i"), "exponent i / d_model instead of 2i / d_model"),
    (lambda n, d: sinusoid_learner(n, d, exponent="col"), "each column with its own exponent"),
    (lambda n, d: sinusoid_learner(n, d, op="multiply"), "multiplied by 10000^(2i/d) instead of dividing"),
]


def test_sinusoid_solutions_pass(capsys):
    from course_utils import positional as pe

    assert_passes(lesson06.check_sinusoidal(sinusoid_learner), capsys)
    assert_passes(lesson06.check_sinusoidal(lambda n, d: pe.sinusoidal_encoding(n, d)), capsys)  # float32


@pytest.mark.parametrize("fn, mistake", SINUSOID, ids=[m for _, m in SINUSOID])
def test_sinusoid_mistakes(fn, mistake, capsys):
    assert_diagnosed(lesson06.check_sinusoidal(fn), mistake, capsys)


@pytest.mark.parametrize(
    "answer, words",
    [
        (lambda n, d: [[0.0] * d] * n, ("wrong values",)),
        (lambda n, d: str(sinusoid_learner(n, d)), ("a string",)),
        (lambda n, d: sinusoid_learner(n, d) + 0j, ("complex",)),
        (lambda n, d: sinusoid_learner(n, d) > 0, ("a boolean array",)),
        (lambda n, d: sinusoid_learner(n, d)[:, : d - 1], ("returned shape (10, 7), expected (10, 8)",)),
        (lambda n, d: np.zeros((n, d)) / 0.0, ("nan",)),
    ],
    ids=["zeros list", "string", "complex", "bool", "shape", "NaN"],
)
def test_sinusoid_robustness(answer, words, capsys):
    assert_verdict(lesson06.check_sinusoidal(answer), capsys, *words)


# ---------------------------------------------------------------------------------------------------------
# lesson 06: RoPE (either sign convention)
# ---------------------------------------------------------------------------------------------------------


def rope_learner(x, halves=False, sign=1.0, same_angle=False, start=0, style="copy"):
    n, d = x.shape
    out = x.copy()
    for p in range(n):
        for i in range(d // 2):
            pos = p + start
            a = sign * pos if same_angle else sign * pos / 10000 ** (2 * i / d)
            j, k = (i, i + d // 2) if halves else (2 * i, 2 * i + 1)
            src = out if style == "in place" else x
            out[p, j] = src[p, j] * np.cos(a) - src[p, k] * np.sin(a)
            if style != "first only":
                out[p, k] = src[p, j] * np.sin(a) + src[p, k] * np.cos(a)
    return out


ROPE = [
    (lambda x: rope_learner(x, start=1), "positions counted from 1"),
    (lambda x: rope_learner(x, start=1, sign=-1.0), "positions counted from 1"),
    (lambda x: rope_learner(x, halves=True), "rotated halves instead of pairs (2i, 2i+1)"),
    (lambda x: rope_learner(x, same_angle=True), "the same angle for every pair"),
    (lambda x: rope_learner(x, style="first only"), "rotated only the first coordinate of each pair"),
    (lambda x: rope_learner(x, style="in place"), "updated the pair in place"),
]


def test_every_lesson06_mistake_is_tested():
    named = {m.name for ex in (lesson06.SINUSOIDAL, lesson06.ROPE, lesson06.CAUSAL_ALIBI) for m in ex.mistakes}
    accepted = {"rotated the other way"}
    assert named == {name for _, name in SINUSOID + ROPE + ALIBI} | accepted


def test_rope_solutions_pass(capsys):
    from course_utils import positional as pe

    assert_passes(lesson06.check_rope(rope_learner), capsys)
    assert_passes(lesson06.check_rope(lambda x: pe.apply_rope(torch.from_numpy(x))), capsys)
    assert_passes(lesson06.check_rope(lambda x: pe.apply_rope(torch.from_numpy(x).float())), capsys)


def test_rope_rotated_the_other_way_is_accepted_and_said_so(capsys):
    fb = lesson06.check_rope(lambda x: rope_learner(x, sign=-1.0))
    printed = capsys.readouterr().out
    assert fb.passed and fb.answered and printed.startswith("✅")
    assert "rotated the other way" in printed and "equally valid" in printed


@pytest.mark.parametrize("fn, mistake", ROPE, ids=[f"{i}-{m}" for i, (_, m) in enumerate(ROPE)])
def test_rope_mistakes(fn, mistake, capsys):
    assert_diagnosed(lesson06.check_rope(fn), mistake, capsys)


@pytest.mark.parametrize(
    "answer, words",
    [
        (lambda x: x, ("wrong values", "(6, 4)")),
        (lambda x: {"x": x}, ("a dict",)),
        (lambda x: (row for row in x), ("an iterator",)),
        (lambda x: rope_learner(x) * (1 + 0j), ("complex",)),
        (lambda x: x[0, 5], ("raised IndexError", "(6, 4)")),
    ],
    ids=["unchanged", "dict", "generator", "complex", "exception"],
)
def test_rope_robustness(answer, words, capsys):
    assert_verdict(lesson06.check_rope(answer), capsys, *words)


def test_rope_unanswered_is_not_accepted(capsys):
    fb = lesson06.check_rope(unanswered)
    assert not fb.passed and not fb.answered and "not answered yet" in capsys.readouterr().out


# ---------------------------------------------------------------------------------------------------------
# lesson 06: causal ALiBi attention
# ---------------------------------------------------------------------------------------------------------


def alibi_learner(q, k, v, sign=-1.0, keep="past", first=1, order="steep first", same=False, scale=True):
    """A learner's loop over heads and queries."""
    H, N, d = q.shape
    out = np.zeros_like(v)
    for h in range(H):
        if same:
            slope = 2 ** (-8 / H)
        else:
            hh = h if order == "steep first" else H - 1 - h
            slope = 2 ** (-8 * (hh + first) / H)
        for i in range(N):
            scores = np.full(N, -np.inf)
            for j in range(N):
                ok = {"past": j <= i, "future": j >= i, "all": True, "strict past": j < i}[keep]
                if ok:
                    scores[j] = q[h, i] @ k[h, j] / (np.sqrt(d) if scale else 1.0) + sign * slope * abs(i - j)
            w = np.exp(scores - scores.max())
            out[h, i] = (w / w.sum()) @ v[h]
    return out


ALIBI = [
    (lambda q, k, v: alibi_learner(q, k, v, sign=1.0), "penalty added instead of subtracted"),
    (lambda q, k, v: alibi_learner(q, k, v, keep="all"), "no causal mask"),
    (lambda q, k, v: alibi_learner(q, k, v, keep="future"), "mask polarity inverted: the heads look at the future"),
    (lambda q, k, v: alibi_learner(q, k, v, first=0), "slopes start at 2^0 = 1"),
    (lambda q, k, v: alibi_learner(q, k, v, order="gentle first"), "slopes in reverse order"),
    (lambda q, k, v: alibi_learner(q, k, v, same=True), "the same slope for every head"),
    (lambda q, k, v: alibi_learner(q, k, v, scale=False), "forgot the 1/sqrt(d) scale"),
]


def test_causal_alibi_solutions_pass(capsys):
    from course_utils import positional as pe

    def with_package_bias(q, k, v):  # the package's causal bias, in torch float32
        H, N, d = q.shape
        q, k, v = (torch.from_numpy(t).float() for t in (q, k, v))
        bias = pe.alibi_bias(H, N, mode="causal")  # (H, N, N), -inf above the diagonal
        return torch.softmax(q @ k.transpose(-2, -1) / d**0.5 + bias, dim=-1) @ v

    assert_passes(lesson06.check_causal_alibi(alibi_learner), capsys)
    assert_passes(lesson06.check_causal_alibi(with_package_bias), capsys)


@pytest.mark.parametrize("fn, mistake", ALIBI, ids=[m for _, m in ALIBI])
def test_causal_alibi_mistakes(fn, mistake, capsys):
    assert_diagnosed(lesson06.check_causal_alibi(fn), mistake, capsys)


def test_causal_alibi_names_a_leak_it_has_no_name_for(capsys):
    fb = lesson06.check_causal_alibi(lambda q, k, v: alibi_learner(q, k, v, keep="all", scale=False))
    assert_verdict(fb, capsys, "not causal", mistake="looks at future tokens")


def test_causal_alibi_without_the_token_itself_gives_nan_and_says_so(capsys):
    fb = lesson06.check_causal_alibi(lambda q, k, v: alibi_learner(q, k, v, keep="strict past"))
    assert_verdict(fb, capsys, "nan", "0 / 0 on a row with nothing to attend to", mistake="NaN or inf in the output")


@pytest.mark.parametrize(
    "answer, words",
    [
        (lambda q, k, v: [alibi_learner(q, k, v)], ("returned shape (1, 2, 5, 3), expected (2, 5, 3)",)),
        (lambda q, k, v: "softmax(q k^T - m|i-j|) v", ("a string",)),
        (lambda q, k, v: alibi_learner(q, k, v).astype(np.complex64), ("complex",)),
    ],
    ids=["list wrapped", "string", "complex"],
)
def test_causal_alibi_robustness(answer, words, capsys):
    assert_verdict(lesson06.check_causal_alibi(answer), capsys, *words)


def test_causal_alibi_tolerance_follows_the_answers_dtype(capsys):
    half = lambda q, k, v: torch.from_numpy(alibi_learner(q, k, v)).half()  # noqa: E731
    assert_passes(lesson06.check_causal_alibi(half), capsys)
    off = lambda q, k, v: alibi_learner(q, k, v) + 1e-4  # noqa: E731  (within float16's tolerance, not float64's)
    assert_verdict(lesson06.check_causal_alibi(off), capsys, "wrong values")


# ---------------------------------------------------------------------------------------------------------
# lesson 06: the causal extrapolation experiment and its prediction
# ---------------------------------------------------------------------------------------------------------


def test_recent_marker_labels_match_a_direct_count():
    x, y = lesson06.recent_marker(64, 20, generator=torch.Generator().manual_seed(0))
    assert x.shape == y.shape == (64, 20) and x.dtype == torch.long and y.dtype == torch.long
    for b in range(64):
        for i in range(20):
            assert y[b, i] == int(any(x[b, j] == lesson06.MARKER for j in range(max(0, i - 3), i)))
    assert 0.3 < y.float().mean() < 0.6  # about as many 1s as 0s


@pytest.mark.parametrize(
    "kwargs, word",
    [
        (dict(batch_size=0, length=5), "batch_size"),
        (dict(batch_size=2, length=2.5), "length"),
        (dict(batch_size=2, length=5, window=0), "window"),
        (dict(batch_size=2, length=5, p_marker=1.0), "p_marker"),
        (dict(batch_size=2, length=5, vocab_size=1), "vocab_size"),
    ],
)
def test_recent_marker_rejects_bad_arguments_by_name(kwargs, word):
    with pytest.raises((TypeError, ValueError), match=word):
        lesson06.recent_marker(**kwargs)


def test_train_causal_rejects_an_unknown_encoding():
    with pytest.raises(ValueError, match="encoding must be one of"):
        lesson06.train_causal("relative_bias")


@pytest.mark.parametrize("encoding", lesson06.CAUSAL_ENCODINGS)
def test_the_causal_models_never_look_ahead(encoding):
    model = lesson06.train_causal(encoding, steps=1, progress=False)
    x, _ = lesson06.recent_marker(4, 16, generator=torch.Generator().manual_seed(1))
    changed = x.clone()
    changed[:, 9:] = (changed[:, 9:] + 1) % 16
    with torch.no_grad():
        assert torch.allclose(model(x)[:, :9], model(changed)[:, :9], atol=1e-6)
        assert not torch.allclose(model(x)[:, 9:], model(changed)[:, 9:], atol=1e-6)
    assert 0.0 <= lesson06.causal_accuracy(model, 12, n=32) <= 1.0


@pytest.mark.parametrize(
    "predicted, passed, answered, words",
    [
        ("alibi", True, True, ("you predicted alibi, measured alibi", "exponentially little")),
        (" ALiBi ", True, True, ("you predicted alibi",)),
        ("rope", False, True, ("you predicted rope, measured alibi",)),
        ("t5", False, True, ("not one of the choices",)),
        (3, False, True, ("not one of the choices",)),
        (None, False, False, ("Hint:",)),
    ],
)
def test_extrapolation_prediction(predicted, passed, answered, words, capsys):
    fb = lesson06.check_extrapolation(predicted, "alibi")
    printed = capsys.readouterr().out
    assert fb.passed == passed and fb.answered == answered
    for word in words:
        assert word in printed, printed
