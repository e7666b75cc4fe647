"""Lesson 11's generated tasks: the planted-token task and the ListOps generator (checked by a stack evaluator)."""

from __future__ import annotations

import random
import statistics

import pytest
import torch

from course_utils.tasks import listops
from course_utils.tasks.planted import QUERY, PlantedTask

# ---------------------------------------------------------------------------------------------------------
# Planted task
# ---------------------------------------------------------------------------------------------------------


def test_planted_batch_layout():
    task = PlantedTask(seq_len=20, distance=13, n_classes=3, n_noise=5)
    x, y = task.batch(256, torch.Generator().manual_seed(0))
    assert x.shape == (256, 20) and y.shape == (256,)
    assert x.dtype == y.dtype == torch.int64
    assert (x[:, 0] == QUERY).all()
    assert torch.equal(x[:, 13], 1 + y)  # the label is the class of the token planted at the distance
    noise = torch.cat([x[:, 1:13], x[:, 14:]], dim=1)
    assert (noise >= 1 + task.n_classes).all() and (noise < task.vocab_size).all()  # nothing else is a class
    assert set(y.tolist()) == {0, 1, 2}
    assert task.vocab_size == 9 and task.chance == pytest.approx(1 / 3)


def test_planted_label_is_invisible_within_a_shorter_window():
    """Tokens 0..distance-1 carry no information about the label: their distribution is the same for each class."""
    task = PlantedTask(seq_len=16, distance=10, n_classes=2, n_noise=3)
    x, y = task.dataset(4000, seed=1)
    near = x[:, :10]
    for token in range(task.vocab_size):
        rates = [(near[y == c] == token).float().mean().item() for c in range(2)]
        assert abs(rates[0] - rates[1]) < 0.02


def test_planted_generation_is_reproducible():
    task = PlantedTask()
    a = task.dataset(8, seed=3)
    b = task.batch(8, torch.Generator().manual_seed(3))
    c = task.dataset(8, seed=4)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]) and not torch.equal(a[0], c[0])


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"distance": 64}, "distance must be in"),
        ({"distance": 0}, "distance must be a positive int"),
        ({"seq_len": 1.5}, "seq_len must be a positive int"),
        ({"n_classes": 0}, "n_classes"),
        ({"n_noise": -1}, "n_noise"),
    ],
)
def test_planted_rejects_bad_settings(kwargs, match):
    with pytest.raises((TypeError, ValueError), match=match):
        PlantedTask(**kwargs)


def test_planted_batch_rejects_bad_arguments():
    with pytest.raises(ValueError, match="batch_size"):
        PlantedTask().batch(0)
    with pytest.raises(TypeError, match="generator"):
        PlantedTask().batch(4, generator=3)


# ---------------------------------------------------------------------------------------------------------
# ListOps, checked against an evaluator written independently here (a stack machine over the text)
# ---------------------------------------------------------------------------------------------------------


def _stack_value(text: str) -> int:
    stack: list = []
    for token in text.split():
        if token.startswith("["):
            stack.append(token[1:])  # an operator opens a frame
        elif token == "]":
            args = []
            while not isinstance(stack[-1], str):
                args.append(stack.pop())
            op = stack.pop()
            if op == "MAX":
                value = max(args)
            elif op == "MIN":
                value = min(args)
            elif op == "SM":
                value = sum(args) % 10
            else:
                value = int(statistics.median(args) // 1)  # median, rounded down
            stack.append(value)
        else:
            stack.append(int(token))
    assert len(stack) == 1
    return stack[0]


@pytest.mark.parametrize("max_depth", [0, 1, 2])
def test_max_depth_counts_levels_below_the_root(max_depth):
    """Lesson 11: max_depth=2 gives up to three bracket levels (the root plus two below it)."""
    config = listops.ListOpsConfig(max_depth=max_depth, max_args=4, branch_prob=0.5, max_length=400)
    rng = random.Random(0)
    deepest = []
    for _ in range(300):
        tokens, _ = listops.generate(rng, config)
        level, top = 0, 0
        for token in tokens:
            level += token.startswith("[") - (token == "]")
            top = max(top, level)
        deepest.append(top)
    assert max(deepest) == max_depth + 1


def test_listops_labels_match_an_independent_evaluator():
    config = listops.ListOpsConfig(max_depth=4, max_args=6, branch_prob=0.4, max_length=120)
    x, y = listops.listops_batch(500, torch.Generator().manual_seed(0), config)
    assert x.shape == (500, 120) and y.shape == (500,)
    depths = []
    for ids, label in zip(x, y):
        text = listops.decode(ids)
        assert _stack_value(text) == int(label)
        assert listops.evaluate(text) == int(label)
        depth, deepest = 0, 0
        for token in text.split():
            depth += token.startswith("[") - (token == "]")
            deepest = max(deepest, depth)
        depths.append(deepest)
    assert max(depths) >= 3  # nesting really happens
    assert set(y.tolist()) == set(range(10))  # every value occurs


@pytest.mark.parametrize(
    "text, value",
    [
        ("[MAX 2 9 [MIN 4 7 ] 0 ]", 9),
        ("[MIN 3 [MAX 1 8 ] ]", 3),
        ("[MED 1 9 4 ]", 4),
        ("[MED 1 8 ]", 4),  # (1 + 8) / 2 rounded down
        ("[MED 2 3 7 9 ]", 5),
        ("[SM 7 8 9 ]", 4),
        ("[SM [MAX 9 9 ] [MIN 5 6 ] ]", 4),
    ],
)
def test_listops_evaluate_known_expressions(text, value):
    assert listops.evaluate(text) == value == _stack_value(text)


def test_listops_generation_respects_the_config():
    config = listops.ListOpsConfig(max_depth=0, max_args=3, max_length=8)
    rng = random.Random(0)
    for _ in range(200):
        tokens, value = listops.generate(rng, config)
        assert len(tokens) <= 8 and 0 <= value <= 9
        assert sum(t.startswith("[") for t in tokens) == 1  # depth 0: no nesting
        assert 2 <= len(tokens) - 2 <= 3


def test_listops_encode_decode_round_trip():
    tokens = "[SM 1 [MAX 2 3 ] ]".split()
    ids = listops.encode(tokens, 10)
    assert len(ids) == 10 and ids[-1] == listops.PAD
    assert listops.decode(ids) == "[SM 1 [MAX 2 3 ] ]"
    with pytest.raises(ValueError, match="does not fit"):
        listops.encode(tokens, 3)


@pytest.mark.parametrize(
    "text, match",
    [
        ("[MAX 1 2", "unbalanced"),
        ("[MAX ]", "no argument"),
        ("[FOO 1 ]", "unknown token"),
        ("1 2", "trailing"),
        ("", "empty"),
    ],
)
def test_listops_evaluate_rejects_bad_expressions(text, match):
    with pytest.raises(ValueError, match=match):
        listops.evaluate(text)


@pytest.mark.parametrize(
    "kwargs, match",
    [({"max_args": 1}, "max_args"), ({"branch_prob": 1.5}, "branch_prob"), ({"max_length": 2}, "max_length")],
)
def test_listops_config_rejects_bad_settings(kwargs, match):
    with pytest.raises(ValueError, match=match):
        listops.ListOpsConfig(**kwargs)


def test_listops_generate_rejects_a_bad_rng():
    with pytest.raises(TypeError, match="random.Random"):
        listops.generate(0)
