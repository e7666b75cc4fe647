import pytest
import torch

from course_utils import models
from course_utils.attention import MultiHeadSelfAttention


def test_encoder_shapes_and_attention_maps():
    torch.manual_seed(0)
    x = torch.randint(0, 10, (3, 7))
    for pool, shape in (("mean", (3, 4)), ("first", (3, 4)), ("last", (3, 4)), ("none", (3, 7, 4))):
        model = models.tiny_transformer(10, 4, d_model=16, num_heads=2, n_layers=2, pool=pool)
        assert model(x).shape == shape
    maps = model.attention_maps(x)
    assert len(maps) == 2 and maps[0].shape == (3, 2, 7, 7)
    torch.testing.assert_close(maps[0].sum(-1), torch.ones(3, 2, 7), atol=1e-6, rtol=0)


def test_without_positions_the_encoder_is_permutation_equivariant():
    torch.manual_seed(0)
    model = models.tiny_transformer(10, 4, pool="none")
    x = torch.randint(0, 10, (2, 6))
    perm = torch.randperm(6)
    torch.testing.assert_close(model(x[:, perm]), model(x)[:, perm], atol=1e-5, rtol=1e-5)


def test_block_passes_masks_to_attention():
    torch.manual_seed(0)
    block = models.Block(8, MultiHeadSelfAttention(8, 2))
    x = torch.randn(1, 5, 8)
    causal = block(x, is_causal=True)
    changed = x.clone()
    changed[:, -1] += 1.0  # the future must not leak into earlier positions
    torch.testing.assert_close(block(changed, is_causal=True)[:, :-1], causal[:, :-1], atol=1e-6, rtol=1e-6)


def test_window_mlp_sees_only_its_window():
    torch.manual_seed(0)
    model = models.WindowMLP(vocab_size=5, n_classes=3, half_width=2)
    x = torch.randint(0, 5, (1, 12))
    y = x.clone()
    y[0, 9] = (x[0, 9] + 1) % 5  # more than 2 positions away from token 5
    assert model(x).shape == (1, 12, 3)
    torch.testing.assert_close(model(x)[0, 5], model(y)[0, 5])
    assert not torch.allclose(model(x)[0, 8], model(y)[0, 8])


def test_bad_inputs():
    with pytest.raises(ValueError, match="pool"):
        models.tiny_transformer(10, 2, pool="max")
    with pytest.raises(ValueError, match="vocab_size"):
        models.tiny_transformer(0, 2)
    with pytest.raises(ValueError, match="half_width"):
        models.WindowMLP(5, 3, half_width=-1)
