"""course_utils.exercises.lesson09: each checker passes the right answer, names each common mistake, and gives a
readable verdict (never a traceback, nothing on stderr) for each kind of broken answer."""

import time

import pytest
import torch
from checker_asserts import assert_diagnosed, assert_passes, unanswered

from course_utils import efficient
from course_utils.attention import window_mask
from course_utils.exercises import lesson09 as ex
from course_utils.tasks.recall import recall_batch

# ---------------------------------------------------------------------------------------------------------
# 1. Causal linear attention as an RNN: a learner's loop, right and with each mistake
# ---------------------------------------------------------------------------------------------------------


def phi(x):
    return torch.nn.functional.elu(x) + 1


def rnn(q, k, v, phi_q=phi, phi_k=phi, normalise=True, see_self=True, causal=True):
    S = torch.zeros(q.shape[1], v.shape[1], dtype=q.dtype)
    z = torch.zeros(q.shape[1], dtype=q.dtype)
    if not causal:
        S, z = phi_k(k).T @ v, phi_k(k).sum(0)
    out = []
    for i in range(q.shape[0]):
        if not see_self:
            out.append(phi_q(q[i]) @ S / (phi_q(q[i]) @ z))
        if causal:
            S = S + torch.outer(phi_k(k[i]), v[i])
            z = z + phi_k(k[i])
        if see_self:
            num = phi_q(q[i]) @ S
            out.append(num / (phi_q(q[i]) @ z) if normalise else num)
    return torch.stack(out)


def test_linear_attention_rnn_right_answers_pass(capsys):
    assert_passes(ex.check_linear_attention_rnn(rnn), capsys)
    # a float32 answer is held to float32's precision, not float64's
    assert_passes(ex.check_linear_attention_rnn(lambda q, k, v: rnn(q.float(), k.float(), v.float())), capsys)


def test_linear_attention_rnn_reference_is_efficient():
    q, k, v = (torch.randn(7, 3, dtype=torch.float64) for _ in range(3))
    torch.testing.assert_close(rnn(q, k, v), efficient.linear_attention(q, k, v, causal=True), atol=1e-12, rtol=0)


@pytest.mark.parametrize(
    "wrong, mistake",
    [
        (lambda q, k, v: rnn(q, k, v, normalise=False), "no normaliser"),
        (lambda q, k, v: rnn(q, k, v, causal=False), "not causal: every output uses the whole sequence"),
        (lambda q, k, v: rnn(q, k, v, see_self=False), "token i does not see itself"),
        (lambda q, k, v: rnn(q, k, v, phi_q=lambda x: x, phi_k=lambda x: x), "no feature map"),
        (
            lambda q, k, v: rnn(q, k, v, phi_q=torch.nn.functional.elu, phi_k=torch.nn.functional.elu),
            "elu without + 1",
        ),
        (lambda q, k, v: rnn(q, k, v, phi_q=lambda x: x), "feature map on the keys only"),
        (
            lambda q, k, v: (
                torch.softmax(q @ k.T / q.shape[1] ** 0.5 + torch.ones(len(q), len(q)).triu(1) * -1e9, -1) @ v
            ),
            "softmax attention instead of linear attention",
        ),
    ],
)
def test_linear_attention_rnn_names_each_mistake(wrong, mistake, capsys):
    assert_diagnosed(ex.check_linear_attention_rnn(wrong), mistake, capsys)


def peeks_at_large_future_keys(q, k, v):
    """Right on the random test inputs, but its past outputs move when a later key is large: it reads the future."""
    return rnn(q, k, v) + torch.relu(k.abs().max() - 2.5)


def test_linear_attention_rnn_causality_perturbation(capsys):
    feedback = ex.check_linear_attention_rnn(peeks_at_large_future_keys)
    assert not feedback.passed and feedback.answered and feedback.mistake == "looks at future tokens"
    assert "(not causal): changing only the tokens after position" in capsys.readouterr().out


def test_linear_attention_rnn_stepped_hints_then_solution(monkeypatch, capsys):
    monkeypatch.setattr(ex.LINEAR_ATTENTION_RNN, "_step", 0)
    printed = []
    for _ in range(4):
        feedback = ex.check_linear_attention_rnn(unanswered)
        assert not feedback.passed and not feedback.answered
        printed.append(capsys.readouterr().out)
    assert "(1/3" in printed[0] and "outer" not in printed[0]  # the idea first, no code
    assert "(2/3" in printed[1] and "torch.outer" in printed[2]
    assert "ex.solution('linear_rnn')" in printed[3] and "torch.stack(outputs)" not in "".join(printed)
    ex.solution("linear_rnn")
    assert "torch.stack(outputs)" in capsys.readouterr().out


def _sleeps(q, k, v):
    time.sleep(5)
    return rnn(q, k, v)


@pytest.mark.parametrize(
    "answer, words",
    [
        (lambda q, k, v: "rnn(q, k, v)", "string"),
        (lambda q, k, v: {"out": rnn(q, k, v)}, "dict"),
        (lambda q, k, v: iter(rnn(q, k, v)), "iterator"),
        (lambda q, k, v: None, "returned None"),
        (lambda q, k, v: rnn(q, k, v).to(torch.complex128), "complex"),
        (lambda q, k, v: rnn(q, k, v) * torch.nan, "returned nan"),
        (lambda q, k, v: rnn(q, k, v.T), "raised IndexError"),
        (lambda q, k, v: rnn(q, k, v)[:, :1], "returned shape"),
        (_sleeps, "did not finish within 0.5 s"),
    ],
)
def test_linear_attention_rnn_broken_answers_get_a_verdict(answer, words, monkeypatch, capsys):
    monkeypatch.setattr(ex.LINEAR_ATTENTION_RNN, "time_limit", 0.5)
    feedback = ex.check_linear_attention_rnn(answer)
    captured = capsys.readouterr()
    assert not feedback.passed and feedback.answered and words in feedback.message, feedback.message
    assert captured.err == "" and captured.out.startswith("❌")
    if words not in ("string", "dict", "iterator", "returned None", "complex", "did not finish within 0.5 s"):
        assert "your function received (5, 3), (5, 3), (5, 2)" in feedback.message  # the learner's own shapes


# ---------------------------------------------------------------------------------------------------------
# 2. The recall batch: the package's generator passes, each broken generator is named
# ---------------------------------------------------------------------------------------------------------


def broken(change):
    """A recall generator with one deliberate change applied to (x, y, generator args)."""

    def fn(batch_size, n_pairs, n_keys, n_values, generator):
        x, y = recall_batch(batch_size, n_pairs, n_keys, n_values, generator)
        return change(x.clone(), y.clone(), n_pairs, n_keys, n_values)

    return fn


def label_is_key(x, y, n_pairs, n_keys, n_values):
    return x, x[:, -1, :n_keys].argmax(-1)


def label_is_last_value(x, y, n_pairs, n_keys, n_values):
    return x, x[:, -2, n_keys : n_keys + n_values].argmax(-1)


def query_carries_value(x, y, n_pairs, n_keys, n_values):
    x[torch.arange(len(y)), -1, n_keys + y] = 1.0
    return x, y


def query_first(x, y, n_pairs, n_keys, n_values):
    return torch.cat([x[:, -1:], x[:, :-1]], dim=1), y


def repeated_keys(x, y, n_pairs, n_keys, n_values):
    x[:, 0, :n_keys] = x[:, 1, :n_keys]  # pair 0 gets pair 1's key
    return x, y


def query_from_vocabulary(x, y, n_pairs, n_keys, n_values):
    g = torch.Generator().manual_seed(1)
    x[:, -1, :n_keys] = 0
    x[torch.arange(len(y)), -1, torch.randint(n_keys, (len(y),), generator=g)] = 1
    return x, y


def always_first_pair(x, y, n_pairs, n_keys, n_values):
    x[:, -1, :n_keys] = x[:, 0, :n_keys]
    return x, x[:, 0, n_keys : n_keys + n_values].argmax(-1)


def no_query(x, y, n_pairs, n_keys, n_values):
    return x[:, :-1], y


def ignores_generator(batch_size, n_pairs, n_keys, n_values, generator):
    return recall_batch(batch_size, n_pairs, n_keys, n_values)


def test_recall_batch_right_answers_pass(capsys):
    assert_passes(ex.check_recall_batch(recall_batch), capsys)
    namespace = {"torch": torch}
    exec(ex.RECALL_BATCH.solution, namespace)  # the written solution passes too
    assert_passes(ex.check_recall_batch(namespace["my_recall_batch"]), capsys)


@pytest.mark.parametrize(
    "wrong, mistake",
    [
        (broken(label_is_key), "the label is the query key"),
        (broken(label_is_last_value), "the label is the last pair's value"),
        (broken(query_carries_value), "the query token carries the answer"),
        (broken(query_first), "the query is not the last token"),
        (broken(repeated_keys), "keys repeat within a sequence"),
        (broken(query_from_vocabulary), "the query key is not in the sequence"),
        (broken(always_first_pair), "the query always asks for the same pair"),
        (broken(lambda x, y, *_: (x, y.float())), "y must be (batch_size,) integer class indices"),
        (broken(no_query), "x has the wrong shape"),
        (ignores_generator, "the generator is ignored"),
        # the lesson asks for float x: nn.Linear refuses the others (issue 13: these passed)
        (broken(lambda x, y, *_: (x.long(), y)), "x is an integer tensor (torch.int64)"),
        (broken(lambda x, y, *_: (x.bool(), y)), "x is a bool tensor"),
        (broken(lambda x, y, *_: (x.double(), y)), "x is torch.float64, not torch.float32"),
        (broken(lambda x, y, *_: (x.to(torch.complex64), y)), "x is complex (torch.complex64)"),
        (broken(lambda x, y, *_: (x * torch.nan, y)), "x holds NaN or inf"),
        (lambda *args: recall_batch(*args)[0], "not a pair (x, y)"),
    ],
)
def test_recall_batch_names_each_mistake(wrong, mistake, capsys):
    assert_diagnosed(ex.check_recall_batch(wrong), mistake, capsys)


def test_recall_batch_float_x_really_is_what_the_model_needs():
    """The dtype rule is the model's: a float64 or int64 x fails in nn.Linear, the default float32 runs."""
    x, _ = recall_batch(4, 3, 8, 3, torch.Generator().manual_seed(0))
    linear = torch.nn.Linear(x.shape[-1], 2)
    assert linear(x).shape == (4, 4, 2)
    for dtype in (torch.float64, torch.int64):
        with pytest.raises(RuntimeError):
            linear(x.to(dtype))


def _recall_sleeps(*args):
    time.sleep(5)
    return recall_batch(*args)


@pytest.mark.parametrize(
    "answer, words",
    [
        (lambda *args: 1 / 0, "raised ZeroDivisionError: division by zero"),
        (_recall_sleeps, "did not finish within 0.5 s"),
        (lambda *args: "x, y", "got str"),
        (lambda *args: ("x", "y"), "x and y must be tensors"),
        (42, "expected a function, got int"),
    ],
)
def test_recall_batch_broken_answers_get_a_verdict(answer, words, monkeypatch, capsys):
    monkeypatch.setattr(ex.RECALL_BATCH, "time_limit", 0.5)
    feedback = ex.check_recall_batch(answer)
    captured = capsys.readouterr()
    assert not feedback.passed and feedback.answered and words in feedback.message, feedback.message
    assert captured.err == "" and captured.out.startswith("❌")
    if callable(answer):
        assert "received batch_size, n_pairs, n_keys, n_values = (64, 4, 8, 3)" in feedback.message


def test_recall_batch_stepped_hints(monkeypatch, capsys):
    monkeypatch.setattr(ex.RECALL_BATCH, "_step", 0)
    first = ex.check_recall_batch(unanswered)
    assert not first.answered and "(1/3" in first.message and "argsort" not in first.message
    second = ex.check_recall_batch(unanswered)
    assert "(2/3" in second.message
    ex.hint("recall")
    assert "argsort(1)" in capsys.readouterr().out.split("\n")[-2]  # the third hint is nearly code


# ---------------------------------------------------------------------------------------------------------
# 3. Pairs in a causal window
# ---------------------------------------------------------------------------------------------------------


def test_causal_window_pairs_right_answers_pass(capsys):
    assert_passes(ex.check_causal_window_pairs(lambda n, w: int(window_mask(n, w, causal=True).sum())), capsys)
    assert_passes(ex.check_causal_window_pairs(lambda n, w: sum(min(i, w) + 1 for i in range(n))), capsys)
    namespace = {}
    exec(ex.CAUSAL_WINDOW_PAIRS.solution, namespace)
    assert_passes(ex.check_causal_window_pairs(namespace["my_causal_window_pairs"]), capsys)


@pytest.mark.parametrize(
    "wrong, mistake",
    [
        (lambda n, w: n * n, "full attention: n^2"),
        (lambda n, w: sum(i + 1 for i in range(n)), "all of the past: n (n + 1) / 2"),
        (lambda n, w: int(window_mask(n, w).sum()), "counted both sides"),
        (lambda n, w: n * (min(w, n - 1) + 1), "forgot the first frames"),
        (lambda n, w: sum(min(i, w) for i in range(n)), "forgot the frame itself"),
        (lambda n, w: n * (w + 1) - w * (w + 1) // 2, "the window is wider than the sequence"),
    ],
)
def test_causal_window_pairs_names_each_mistake(wrong, mistake, capsys):
    assert_diagnosed(ex.check_causal_window_pairs(wrong), mistake, capsys)


@pytest.mark.parametrize(
    "answer, words",
    [
        (lambda n, w: str(int(window_mask(n, w, causal=True).sum())), "string"),
        (lambda n, w: True, "a bool"),
        (lambda n, w: float("nan"), "returned nan"),
        (lambda n, w: window_mask(n, w, causal=True).sum(-1), "expected a single number"),
        (lambda n, w: complex(int(window_mask(n, w, causal=True).sum()), 1), "complex"),
    ],
)
def test_causal_window_pairs_broken_answers_get_a_verdict(answer, words, capsys):
    feedback = ex.check_causal_window_pairs(answer)
    assert not feedback.passed and feedback.answered and words in feedback.message, feedback.message
    assert capsys.readouterr().err == ""
