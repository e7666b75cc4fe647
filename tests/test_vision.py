"""course_utils.vision: image <-> vector set, a convolution as relative-position multi-head attention, tiny models."""

import pytest
import torch
from torch import nn

from course_utils import vision
from course_utils.attention import MultiHeadSelfAttention
from course_utils.tasks import digits


def test_image_to_vectors_layout_and_inverse():
    images = torch.randn(2, 3, 5, 10)
    vectors = vision.image_to_vectors(images)
    assert vectors.shape == (2, 50, 3)  # the lecture's 5x10x3 image -> 50 vectors of dimension 3
    for r, c in ((0, 0), (2, 7), (4, 9)):
        assert torch.equal(vectors[:, r * 10 + c], images[:, :, r, c])
    assert torch.equal(vision.vectors_to_image(vectors, 5, 10), images)


def test_image_to_vectors_rejects_bad_input():
    with pytest.raises(ValueError, match=r"images must have shape \(B, C, H, W\), got shape \(3, 5, 10\)"):
        vision.image_to_vectors(torch.randn(3, 5, 10))
    with pytest.raises(TypeError, match="images"):
        vision.image_to_vectors(torch.zeros(1, 1, 2, 2, dtype=torch.long))
    with pytest.raises(ValueError, match="height\\*width = 12"):
        vision.vectors_to_image(torch.randn(1, 10, 3), 3, 4)


def test_kernel_offsets():
    assert vision.kernel_offsets(3) == [(dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1)]
    assert len(vision.kernel_offsets(5)) == 25
    with pytest.raises(ValueError, match="odd"):
        vision.kernel_offsets(4)


def test_relative_position_mask_is_one_hot_inside_and_empty_off_the_image():
    H, W = 4, 6
    for dy, dx in vision.kernel_offsets(3):
        mask = vision.relative_position_mask(H, W, dy, dx)
        assert mask.shape == (H * W, H * W) and mask.dtype == torch.bool
        for r in range(H):
            for c in range(W):
                row = mask[r * W + c]
                if 0 <= r + dy < H and 0 <= c + dx < W:
                    assert row.nonzero().ravel().tolist() == [(r + dy) * W + (c + dx)]
                else:
                    assert not row.any()  # fully masked: the head gives zero, i.e. zero padding
    with pytest.raises(TypeError, match="dy"):
        vision.relative_position_mask(3, 3, 0.5, 0)


@pytest.mark.parametrize(
    "shape,c_out,k", [((2, 3, 5, 10), 4, 3), ((1, 1, 8, 8), 16, 3), ((1, 2, 3, 7), 3, 5), ((1, 1, 1, 1), 2, 3)]
)
@pytest.mark.parametrize("bias", [True, False])
def test_conv_as_attention_equals_conv2d(shape, c_out, k, bias):
    torch.manual_seed(0)
    B, C, H, W = shape
    conv = nn.Conv2d(C, c_out, k, padding=k // 2, bias=bias)
    layer = vision.ConvAsAttention.from_conv(conv, H, W)
    assert layer.num_heads == k * k and layer.W_o.shape == (c_out, k * k * C)
    x = torch.randn(shape)
    with torch.no_grad():
        expected = nn.functional.conv2d(x, conv.weight, conv.bias, padding=k // 2)
        got = layer(vision.image_to_vectors(x))
    assert got.shape == (B, H * W, c_out)
    torch.testing.assert_close(vision.vectors_to_image(got, H, W), expected, atol=1e-5, rtol=0)


def test_conv_as_attention_float64_is_exact_to_1e12():
    conv = nn.Conv2d(3, 4, 3, padding=1).double()
    x = torch.randn(1, 3, 5, 10, dtype=torch.float64)
    layer = vision.ConvAsAttention.from_conv(conv, 5, 10)
    with torch.no_grad():
        got = vision.vectors_to_image(layer(vision.image_to_vectors(x)), 5, 10)
        expected = nn.functional.conv2d(x, conv.weight, conv.bias, padding=1)
    torch.testing.assert_close(got, expected, atol=1e-12, rtol=0)


def test_conv_as_attention_weights_are_one_hot_or_zero():
    layer = vision.ConvAsAttention.from_conv(nn.Conv2d(1, 1, 3, padding=1), 5, 10)
    w = layer.attention_weights(batch=2)
    assert w.shape == (2, 9, 50, 50)
    assert set(torch.unique(w).tolist()) == {0.0, 1.0}
    assert torch.equal(w.sum(-1)[0] == 1, layer.mask.any(-1))
    assert int((w[0, :, 0].sum(-1) == 0).sum()) == 5  # corner (0, 0): 5 offsets fall outside


def test_conv_as_attention_rejects_what_it_cannot_represent():
    with pytest.raises(ValueError, match="stride 1"):
        vision.ConvAsAttention.from_conv(nn.Conv2d(1, 1, 3, padding=1, stride=2), 5, 5)
    with pytest.raises(ValueError, match="zero padding"):
        vision.ConvAsAttention.from_conv(nn.Conv2d(1, 1, 3, padding=0), 5, 5)
    with pytest.raises(TypeError, match="conv"):
        vision.ConvAsAttention.from_conv(nn.Linear(2, 2), 5, 5)
    layer = vision.ConvAsAttention.from_conv(nn.Conv2d(2, 1, 3, padding=1), 5, 5)
    with pytest.raises(ValueError, match=r"x must have shape \(B, 25, 2\)"):
        layer(torch.randn(1, 24, 2))


def test_torch_sdpa_attention_equals_the_course_module():
    torch.manual_seed(0)
    ours = MultiHeadSelfAttention(8, 2)
    fast = vision.TorchSDPAttention(8, 2)
    fast.load_state_dict(ours.state_dict())
    x = torch.randn(3, 7, 8)
    mask = torch.rand(7, 7) > 0.3
    mask |= torch.eye(7, dtype=torch.bool)
    torch.testing.assert_close(fast(x), ours(x), atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(fast(x, attn_mask=mask), ours(x, attn_mask=mask), atol=1e-6, rtol=1e-5)


def test_cpu_sdpa_gives_zero_for_a_fully_masked_row():
    # Lesson 08's prose: the course's attention gives a zero output for a fully masked row, "as torch's CPU SDPA
    # does (checked in torch 2.13)". Other backends may return NaN, so this is only checked on the CPU.
    torch.manual_seed(0)
    q, k, v = torch.randn(3, 1, 2, 4, 8).unbind(0)  # 3 x (B, H, N, d)
    mask = torch.ones(4, 4, dtype=torch.bool)
    mask[1] = False  # query 1 may attend to nothing
    out = nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=mask)  # (B, H, N, d)
    assert torch.equal(out[:, :, 1], torch.zeros(1, 2, 8))
    ours = MultiHeadSelfAttention(8, 2)
    assert torch.equal(ours(torch.randn(1, 4, 8), attn_mask=mask)[:, 1], ours.out_proj.bias.detach()[None])


def test_tiny_models_shapes():
    x = torch.rand(5, 1, 8, 8)
    assert vision.TinyCNN()(x).shape == (5, 10)
    vit = vision.TinyViT()
    assert vit(x).shape == (5, 10)
    assert vit.encoder.position.table.shape == (64, vision.ViTConfig().d_model)
    with pytest.raises(ValueError, match="images"):
        vision.TinyCNN()(torch.rand(5, 8, 8))


def test_vit_with_permuted_positions_is_blind_to_the_shuffle():
    torch.manual_seed(0)
    vit = vision.TinyViT()
    perm = digits.fixed_permutation(64, seed=3)
    x = torch.rand(6, 1, 8, 8)
    twin = vit.with_permuted_positions(perm)
    with torch.no_grad():
        torch.testing.assert_close(twin(digits.permute_pixels(x, perm)), vit(x), atol=1e-5, rtol=0)
    assert not torch.equal(twin.encoder.position.table, vit.encoder.position.table)  # a copy, relabelled
    with pytest.raises(ValueError, match=r"permutation must have shape \(64,\)"):
        vit.with_permuted_positions(torch.arange(10))


def test_digits_split_subset_and_permutation():
    data = digits.load(n_test=500, seed=0)
    assert data.x_train.shape == (1297, 1, 8, 8) and data.x_test.shape == (500, 1, 8, 8)
    assert 0 <= data.x_train.min() and data.x_train.max() <= 1
    x, y = digits.balanced_subset(data.x_train, data.y_train, 100, seed=1)
    assert x.shape == (100, 1, 8, 8) and torch.bincount(y).tolist() == [10] * 10
    x_all, _ = digits.balanced_subset(data.x_train, data.y_train, 1297, seed=1)
    assert x_all.shape[0] == 1297
    perm = digits.fixed_permutation(64, seed=0)
    assert torch.equal(perm.sort().values, torch.arange(64))
    shuffled = digits.permute_pixels(x, perm)
    assert torch.equal(shuffled.reshape(100, 64), x.reshape(100, 64)[:, perm])
    with pytest.raises(ValueError, match="n must be an int"):
        digits.balanced_subset(data.x_train, data.y_train, 5000)
    with pytest.raises(ValueError, match="each of 0..63 once"):
        digits.permute_pixels(x, torch.zeros(64, dtype=torch.long))
    with pytest.raises(ValueError, match=r"permutation must be a tensor of shape \(64,\)"):
        digits.permute_pixels(x, torch.arange(10))


@pytest.mark.parametrize("model", [lambda: vision.TinyCNN(), lambda: vision.TinyViT()], ids=["cnn", "vit"])
def test_tiny_models_name_a_wrong_image_size(model):
    """A 9x9 or 3-channel batch gave torch's matmul/shape errors; now the message names the expected shape."""
    m = model()
    for shape in ((2, 1, 9, 9), (2, 3, 8, 8)):
        with pytest.raises(ValueError, match=r"images must have shape \(B, 1, 8, 8\) .*got \(2, "):
            m(torch.rand(*shape))
    with pytest.raises(ValueError, match=r"images must hold finite values"):
        m(torch.full((1, 1, 8, 8), float("nan")))
    assert m(torch.rand(2, 1, 8, 8)).shape == (2, 10)


def test_tiny_cnn_needs_images_of_at_least_4_pixels():
    with pytest.raises(ValueError, match=r"height must be an int >= 4, got 2"):
        vision.TinyCNN(height=2)
