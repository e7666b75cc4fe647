import pytest
import torch
from torch import nn

from course_utils import training


def _separable(n=256, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 2, generator=g)
    return x, (x[:, 0] + x[:, 1] > 0).long()


def test_training_learns_a_separable_task():
    torch.manual_seed(0)
    model = nn.Linear(2, 2)
    x, y = _separable()
    before = training.accuracy(model, x, y)
    losses = training.train_classifier(model, (x, y), training.TrainConfig(steps=150, lr=0.05, progress=False))
    assert len(losses) == 150 and losses[-1] < losses[0] / 3
    assert training.accuracy(model, x, y) > max(0.95, before)


def test_generator_data_and_per_token_targets_with_ignored_positions():
    def make_batch(batch_size, generator):
        x = torch.randint(0, 3, (batch_size, 5), generator=generator)
        y = x.clone()
        y[:, 0] = -100  # ignored
        return x, y

    torch.manual_seed(0)
    model = nn.Embedding(3, 3)
    training.train_classifier(model, make_batch, training.TrainConfig(steps=100, lr=0.1, progress=False))
    x, y = make_batch(64, torch.Generator().manual_seed(1))
    assert training.accuracy(model, x, y) == 1.0


def test_count_parameters_counts_trainable_only():
    model = nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 1))
    model[1].weight.requires_grad_(False)
    assert training.count_parameters(model) == 3 * 4 + 4 + 1


def test_bad_inputs():
    model = nn.Linear(2, 2)
    with pytest.raises(ValueError, match="same non-zero length"):
        training.train_classifier(model, (torch.zeros(3, 2), torch.zeros(2).long()), training.TrainConfig(steps=1))
    with pytest.raises(ValueError, match=r"logits \(64, 2\)"):
        training.train_classifier(model, (torch.zeros(4, 2), torch.zeros(4, 3).long()), training.TrainConfig(steps=1, progress=False))
    with pytest.raises(ValueError, match="no labelled"):
        training.accuracy(model, torch.zeros(2, 2), torch.full((2,), -100))


@pytest.mark.parametrize(
    "kwargs, error, pattern",
    [
        ({"batch_size": 0}, ValueError, r"batch_size must be a positive int, got 0"),  # returned [nan, nan]
        ({"steps": -3}, ValueError, r"steps must be a positive int, got -3"),  # returned []
        ({"steps": 2.0}, TypeError, r"steps must be a positive int, got float"),
        ({"lr": 0.0}, ValueError, r"lr must be a finite positive number"),
        ({"clip_grad": -1.0}, ValueError, r"clip_grad must be a finite positive number"),
        ({"progress": "no"}, TypeError, r"progress must be a bool"),
    ],
)
def test_train_config_refuses_settings_that_train_nothing(kwargs, error, pattern):
    with pytest.raises(error, match=pattern):
        training.TrainConfig(**kwargs)


def test_train_config_takes_numpy_integers():
    import numpy as np

    assert training.TrainConfig(steps=np.int64(3), batch_size=np.int32(2)).steps == 3
