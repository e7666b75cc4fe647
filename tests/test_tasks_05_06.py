"""The generated tasks of lessons 05 and 06: their structure, labels and seeding."""

from __future__ import annotations

import pytest
import torch

from course_utils.tasks import order, two_relations
from course_utils.tasks.two_relations import TwoRelations

# ---------------------------------------------------------------------------------------------------------
# lesson 05: two relations
# ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("length, n_colours, n_shapes", [(8, 8, 8), (4, 2, 3), (10, 5, 7)])
def test_two_relations_structure(length, n_colours, n_shapes):
    x, y, partners = two_relations.two_relations(32, length, n_colours, n_shapes, seed=0)
    assert x.shape == (32, length, n_colours + n_shapes) and x.dtype == torch.float32
    assert y.shape == (32, length) and partners.shape == (32, 2, length)
    assert torch.all(x[..., :n_colours].sum(-1) == 1) and torch.all(x[..., n_colours:].sum(-1) == 1)
    colour = x[..., :n_colours].argmax(-1)
    shape = x[..., n_colours:].argmax(-1)
    rows = torch.arange(32)[:, None]
    positions = torch.arange(length)
    for r, attribute in ((0, colour), (1, shape)):
        p = partners[:, r]
        assert torch.all(p[rows, p] == positions)  # a perfect matching: the partner's partner is me
        assert torch.all(p != positions)  # nobody is its own partner
        assert torch.all(attribute[rows, p] == attribute)  # partners share the attribute
        # the attribute appears exactly twice in each sequence
        counts = (attribute[:, :, None] == attribute[:, None, :]).sum(-1)
        assert torch.all(counts == 2)
    assert torch.all(partners[:, 0] != partners[:, 1])  # two different relations for every token
    assert torch.equal(y, shape[rows, partners[:, 0]] * n_colours + colour[rows, partners[:, 1]])
    assert y.max() < n_shapes * n_colours


def test_two_relations_seeding():
    a = two_relations.two_relations(4, seed=3)
    b = two_relations.two_relations(4, seed=3)
    assert all(torch.equal(u, v) for u, v in zip(a, b))
    task = TwoRelations()
    g1, g2 = torch.Generator().manual_seed(1), torch.Generator().manual_seed(1)
    assert all(torch.equal(u, v) for u, v in zip(task(8, g1), task(8, g2)))
    assert not torch.equal(task(8, g1)[0], task(8, torch.Generator().manual_seed(2))[0])
    assert task.d_in == 16 and task.n_classes == 64


def test_relation_mass_measures_weight_on_partners():
    task = TwoRelations(length=6, n_colours=4, n_shapes=4)
    x, _, partners = task.sample(3, seed=0)
    model = two_relations.two_head_model(task, seed=0, d_model=16)
    mass = two_relations.relation_mass(model, x, partners)
    assert mass.shape == (2, 2) and torch.all((mass >= 0) & (mass <= 1))
    weights = model.attention_maps(x)[0]  # (B, H, N, N)
    want = torch.stack([weights[b, 1, i, partners[b, 0, i]] for b in range(3) for i in range(6)]).mean()
    assert torch.isclose(mass[1, 0], want, atol=1e-6)
    with pytest.raises(ValueError, match="partners"):
        two_relations.relation_mass(model, x, partners[:, 0])


@pytest.mark.parametrize(
    "kwargs, pattern",
    [
        (dict(batch_size=0), "batch_size"),
        (dict(batch_size=2, length=5), "even"),
        (dict(batch_size=2, length=2), "even and >= 4"),
        (dict(batch_size=2, length=8, n_colours=3), "n_colours"),
    ],
)
def test_two_relations_validation(kwargs, pattern):
    with pytest.raises(ValueError, match=pattern):
        two_relations.two_relations(**kwargs)


# ---------------------------------------------------------------------------------------------------------
# lesson 06: side of the marker
# ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("length", [2, 12, 48])
def test_side_of_marker_labels(length):
    x, y = order.side_of_marker(64, length, 16, torch.Generator().manual_seed(0))
    assert x.shape == y.shape == (64, length)
    assert torch.all((x == order.MARKER).sum(1) == 1)
    where = (x == order.MARKER).long().argmax(1)
    for b in range(64):
        assert torch.all(y[b, : where[b]] == 0) and torch.all(y[b, where[b] + 1 :] == 1)
        assert y[b, where[b]] == -100
    assert x.max() < 16


def test_side_of_marker_is_balanced_and_seeded():
    x, y = order.side_of_marker(4000, 12, generator=torch.Generator().manual_seed(1))
    labelled = y[y != -100].float()
    assert abs(labelled.mean().item() - 0.5) < 0.02  # an order-blind guess is right half the time
    task = order.SideOfMarker(length=12)
    a = task(5, torch.Generator().manual_seed(2))
    b = task(5, torch.Generator().manual_seed(2))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])


def test_side_of_marker_is_invisible_to_a_bag_of_tokens():
    """Reversing a sequence keeps its bag of tokens and flips every label."""
    x, y = order.side_of_marker(8, 10, generator=torch.Generator().manual_seed(3))
    xr = x.flip(1)
    assert torch.equal(x.sort(1).values, xr.sort(1).values)  # the same bag of tokens
    where_r = (xr == order.MARKER).long().argmax(1)
    yr = (torch.arange(10)[None, :] > where_r[:, None]).long()  # the reversed sequence's own labels
    keep = y.flip(1) != -100
    assert torch.equal(yr[keep], 1 - y.flip(1)[keep])  # every filler's answer flips


@pytest.mark.parametrize(
    "call, pattern",
    [
        (lambda: order.side_of_marker(4, 1), "length"),
        (lambda: order.side_of_marker(4, 5, vocab_size=1), "vocab_size"),
        (lambda: order.side_of_marker(0, 5), "batch_size"),
        (lambda: order.SideOfMarker(length=1), "length"),
    ],
)
def test_side_of_marker_validation(call, pattern):
    with pytest.raises(ValueError, match=pattern):
        call()


def test_train_order_model_runs_and_order_accuracy_is_a_fraction():
    experiment = order.OrderExperiment(steps=3, length=6, max_len=12)
    model = order.train_order_model("alibi", seed=0, experiment=experiment, progress=False)
    acc = order.order_accuracy(model, 12, n=32)
    assert 0.0 <= acc <= 1.0
