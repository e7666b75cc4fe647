"""Lessons 05 and 06's trained claims, re-checked on 5 seeds with the lessons' own settings (make test-slow)."""

from __future__ import annotations

import pytest
import torch

from course_utils.tasks.order import OrderExperiment, order_accuracy, train_order_model
from course_utils.tasks.two_relations import TwoRelations, relation_mass, train_two_heads
from course_utils.training import accuracy

pytestmark = pytest.mark.slow

SEEDS = range(5)


def _accuracy_without_head(model, head, x, y):
    attn = model.blocks[0].attn
    keep = torch.ones(attn.d_model)
    keep[head * attn.d_head : (head + 1) * attn.d_head] = 0.0
    handle = attn.out_proj.register_forward_pre_hook(lambda module, args: (args[0] * keep,))
    try:
        return accuracy(model, x, y)
    finally:
        handle.remove()


@pytest.mark.parametrize("seed", SEEDS)
def test_lesson05_each_relation_gets_its_own_head(seed):
    torch.set_num_threads(1)
    task = TwoRelations()
    model = train_two_heads(task, seed=seed, progress=False)
    x, y, partners = task.sample(512, seed=1000 + seed)
    assert accuracy(model, x, y) > 0.9
    mass = relation_mass(model, x, partners)
    assert sorted(mass.argmax(dim=1).tolist()) == [0, 1], mass
    assert (mass.max(dim=1).values >= 0.6).all() and (mass.min(dim=1).values <= 0.1).all(), mass
    on_self = model.attention_maps(x)[0].diagonal(dim1=-2, dim2=-1).mean(dim=(0, 2))  # (H,)
    owner = mass.argmax(dim=1)
    assert all(mass[h, int(owner[h])] + on_self[h] > 0.9 for h in range(2)), (mass, on_self)
    ablated = [_accuracy_without_head(model, h, x, y) for h in range(2)]
    assert max(ablated) < 0.5 and all(0.06 < a < 0.25 for a in ablated), ablated


@pytest.mark.parametrize("seed", SEEDS)
def test_lesson06_order_needs_positions_and_alibi_extrapolates(seed):
    torch.set_num_threads(1)
    experiment = OrderExperiment()
    lengths = [experiment.length, 2 * experiment.length, 4 * experiment.length]
    acc = {}
    for name in ("none", "sinusoidal", "learned", "relative", "rope", "alibi", "split_masks"):
        model = train_order_model(name, seed=seed, experiment=experiment, progress=False)
        acc[name] = [order_accuracy(model, n, seed=99 + seed) for n in lengths]
        if name == "learned":
            norms = model.position.table.detach().norm(dim=1)  # rows 0..11 trained, the rest never
            assert norms[: experiment.length].min() > 2 * norms[experiment.length :].max(), norms
    assert all(abs(a - 0.5) < 0.1 for a in acc["none"]), acc
    assert all(acc[name][0] > 0.9 for name in acc if name != "none"), acc
    assert all(a > 0.95 for a in acc["alibi"]), acc
    assert all(a > 0.95 for a in acc["split_masks"]), acc  # the control: the masks alone, slope 0
    assert abs(acc["split_masks"][-1] - acc["alibi"][-1]) < 0.05, acc
    assert acc["rope"][1] > 0.95, acc
    assert acc["learned"][-1] < 0.75 and acc["sinusoidal"][-1] < 0.8 and acc["relative"][-1] < 0.8, acc
    assert acc["alibi"][-1] > acc["learned"][-1] + 0.2, acc
