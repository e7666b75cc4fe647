"""course_utils.exercises.lesson09: each checker passes the right answer and names each common mistake."""

import pytest
import torch

from course_utils import efficient
from course_utils.attention import window_mask
from course_utils.exercises import lesson09 as ex
from course_utils.tasks.recall import recall_batch

# ---------------------------------------------------------------------------------------------------------
# Causal linear attention as an RNN: a learner's loop, right and with each mistake
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


def test_linear_attention_rnn_right_answer_passes(capsys):
    feedback = ex.check_linear_attention_rnn(rnn)
    assert feedback.passed and "✅" in capsys.readouterr().out


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
def test_linear_attention_rnn_names_each_mistake(wrong, mistake):
    feedback = ex.check_linear_attention_rnn(wrong)
    assert not feedback.passed and feedback.mistake == mistake


def test_linear_attention_rnn_unanswered_and_other_failures():
    def stub(q, k, v):
        raise NotImplementedError

    feedback = ex.check_linear_attention_rnn(stub)
    assert not feedback.answered and "Hint" in feedback.message
    feedback = ex.check_linear_attention_rnn(lambda q, k, v: rnn(q, k, v) + 1)
    assert feedback.answered and not feedback.passed and feedback.mistake is None and "wrong values" in feedback.message


# ---------------------------------------------------------------------------------------------------------
# The recall batch: the package's generator passes, each broken generator is named
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


def float_labels(x, y, n_pairs, n_keys, n_values):
    return x, y.float()


def no_query(x, y, n_pairs, n_keys, n_values):
    return x[:, :-1], y


def ignores_generator(batch_size, n_pairs, n_keys, n_values, generator):
    return recall_batch(batch_size, n_pairs, n_keys, n_values)


def test_recall_batch_right_answer_passes(capsys):
    feedback = ex.check_recall_batch(recall_batch)
    assert feedback.passed and "✅" in capsys.readouterr().out


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
        (broken(float_labels), "y must be (batch_size,) integer class indices"),
        (broken(no_query), "x has the wrong shape"),
        (ignores_generator, "the generator is ignored"),
    ],
)
def test_recall_batch_names_each_mistake(wrong, mistake):
    feedback = ex.check_recall_batch(wrong, verbose=False)
    assert not feedback.passed and feedback.answered and feedback.mistake == mistake, feedback.message


def test_recall_batch_unanswered_and_not_a_pair():
    def stub(*args):
        raise NotImplementedError

    assert not ex.check_recall_batch(stub, verbose=False).answered
    feedback = ex.check_recall_batch(lambda *args: recall_batch(*args)[0], verbose=False)
    assert feedback.answered and not feedback.passed and "(x, y)" in feedback.message


# ---------------------------------------------------------------------------------------------------------
# Pairs in a window
# ---------------------------------------------------------------------------------------------------------


def test_window_pairs_right_answer_passes():
    assert ex.check_window_pairs(lambda n, w: int(window_mask(n, w).sum()))
    assert ex.check_window_pairs(lambda n, w: n * (2 * min(w, n - 1) + 1) - min(w, n - 1) * (min(w, n - 1) + 1))


@pytest.mark.parametrize(
    "wrong, mistake",
    [
        (lambda n, w: n * n, "full attention: n^2"),
        (lambda n, w: n * (2 * w + 1), "forgot the edges"),
        (lambda n, w: n * (2 * w + 1) - w * (w + 1) - n, "forgot the frame itself"),
        (lambda n, w: int(window_mask(n, w, causal=True).sum()), "counted only one side"),
        (lambda n, w: n * (2 * w + 1) - w * (w + 1), "the window is wider than the sequence"),
    ],
)
def test_window_pairs_names_each_mistake(wrong, mistake):
    feedback = ex.check_window_pairs(wrong)
    assert not feedback.passed and feedback.mistake == mistake, feedback.message
