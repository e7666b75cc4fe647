"""course_utils.tasks.recall: the associative-recall batches of lesson 09."""

import pytest
import torch

from course_utils.tasks.recall import RecallTask, decode_recall, recall_batch


@pytest.mark.parametrize("n_pairs, n_keys, n_values", [(1, 1, 2), (4, 8, 3), (16, 16, 4), (5, 20, 7)])
def test_batch_layout_and_label(n_pairs, n_keys, n_values):
    x, y = recall_batch(200, n_pairs, n_keys, n_values, torch.Generator().manual_seed(1))
    assert x.shape == (200, n_pairs + 1, n_keys + n_values + 1) and x.dtype == torch.float32
    assert y.shape == (200,) and y.dtype == torch.int64
    assert ((x == 0) | (x == 1)).all()
    assert (x[:, :-1, :n_keys].sum(-1) == 1).all() and (x[:, :-1, n_keys:-1].sum(-1) == 1).all()
    assert (x[:, :-1, -1] == 0).all() and (x[:, -1, -1] == 1).all()  # the flag marks the query, last
    assert (x[:, -1, n_keys:-1] == 0).all()  # the query does not carry its value
    keys, values, query = decode_recall(x, n_keys, n_values)
    assert all(len(set(row.tolist())) == n_pairs for row in keys)  # distinct keys per sequence
    match = keys == query[:, None]
    assert (match.sum(1) == 1).all()  # the query key occurs exactly once
    assert torch.equal(values[match], y)  # the label is the value paired with the query key
    assert 0 <= y.min() and y.max() < n_values


def test_query_asks_for_every_position_and_values_cover_the_vocabulary():
    x, y = recall_batch(2000, 6, 10, 4, torch.Generator().manual_seed(0))
    keys, _, query = decode_recall(x, 10, 4)
    asked = (keys == query[:, None]).float().argmax(1)
    assert set(asked.tolist()) == set(range(6))
    assert set(y.tolist()) == set(range(4))


def test_reproducible_with_a_generator():
    a = recall_batch(8, 3, 5, 2, torch.Generator().manual_seed(7))
    b = recall_batch(8, 3, 5, 2, torch.Generator().manual_seed(7))
    c = recall_batch(8, 3, 5, 2, torch.Generator().manual_seed(8))
    assert all(torch.equal(p, q) for p, q in zip(a, b))
    assert not torch.equal(a[0], c[0])


def test_task_sampler_mixes_lengths():
    task = RecallTask(n_keys=8, n_values=3)
    assert task.d_in == 12
    sample = task.sampler((2, 5))
    g = torch.Generator().manual_seed(0)
    lengths = {sample(4, g)[0].shape[1] - 1 for _ in range(40)}
    assert lengths == {2, 5}
    x, y = task.batch(3, 4)
    assert x.shape == (3, 5, 12) and y.shape == (3,)


@pytest.mark.parametrize(
    "kwargs, error, words",
    [
        (dict(batch_size=0), ValueError, "batch_size"),
        (dict(n_pairs=9), ValueError, "n_pairs=9 must be <= n_keys=8"),
        (dict(n_values=1.5), TypeError, "n_values"),
        (dict(generator=3), TypeError, "generator"),
    ],
)
def test_bad_arguments(kwargs, error, words):
    args = dict(batch_size=4, n_pairs=3, n_keys=8, n_values=2, generator=None) | kwargs
    with pytest.raises(error, match=words):
        recall_batch(**args)


def test_bad_task_and_decode_arguments():
    with pytest.raises(ValueError, match="n_keys"):
        RecallTask(n_keys=0)
    with pytest.raises(ValueError, match="lengths must be <= n_keys=4"):
        RecallTask(n_keys=4).sampler((2, 5))
    with pytest.raises(ValueError, match="at least one"):
        RecallTask().sampler(())
    with pytest.raises(ValueError, match=r"x must have shape \(B, n_pairs \+ 1, 7\), got \(2, 3, 6\)"):
        decode_recall(torch.zeros(2, 3, 6), 4, 2)
