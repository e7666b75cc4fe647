"""Lesson 08: images as vector sets, a convolution written as multi-head self-attention, a tiny CNN and ViT.

An image of C channels and H x W pixels is a set of N = H * W vectors of dimension C: pixel (r, c) becomes
token r * W + c (row-major, as `torch.flatten` reads it).

A 3 x 3 convolution is a multi-head self-attention layer with 9 heads, one per kernel offset (dy, dx):
head h attends by *relative position* only (no content score): query pixel p may attend key pixel p + (dy, dx)
and nothing else, so its attention row is one-hot on that neighbour. The head's value is the neighbour itself
and W^O holds the kernel's 9 slices W[:, :, dy + 1, dx + 1] side by side, so the output is
sum_h W_h x_{p + offset_h} + bias: the convolution. A neighbour outside the image leaves the head's row fully
masked; the contract gives a zero output there, which is exactly zero padding.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
from torch import nn

from ._validate import check_finite, check_int, check_tensor, shape_of
from .attention import MultiHeadSelfAttention, attention_weights, scaled_dot_product_attention
from .models import Block, Encoder
from .positional import LearnedPositionalEncoding

__all__ = [
    "image_to_vectors",
    "vectors_to_image",
    "kernel_offsets",
    "relative_position_mask",
    "ConvAsAttention",
    "CNNConfig",
    "TinyCNN",
    "ViTConfig",
    "TorchSDPAttention",
    "TinyViT",
]


def _check_float_tensor(x, name: str, ndim: int, layout: str) -> torch.Tensor:
    """A finite floating-point tensor of rank `ndim` (layout, e.g. "(B, C, H, W)", goes into the message)."""
    if isinstance(x, torch.Tensor) and x.ndim != ndim:
        raise ValueError(f"{name} must have shape {layout}, got shape {shape_of(x)}")
    return check_tensor(x, name, min_ndim=ndim)


# ---------------------------------------------------------------------------------------------------------
# An image as a vector set
# ---------------------------------------------------------------------------------------------------------


def image_to_vectors(images: torch.Tensor) -> torch.Tensor:
    """Images (B, C, H, W) -> vector sets (B, H*W, C); pixel (r, c) becomes token r * W + c."""
    images = _check_float_tensor(images, "images", 4, "(B, C, H, W)")
    B, C, H, W = images.shape
    return images.permute(0, 2, 3, 1).reshape(B, H * W, C)  # (B, C, H, W) -> (B, H, W, C) -> (B, H*W, C)


def vectors_to_image(vectors: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Vector sets (B, H*W, C) -> images (B, C, H, W): the inverse of `image_to_vectors`."""
    vectors = _check_float_tensor(vectors, "vectors", 3, "(B, H*W, C)")
    height, width = check_int(height, "height"), check_int(width, "width")
    B, N, C = vectors.shape
    if N != height * width:
        raise ValueError(f"vectors must hold height*width = {height * width} tokens, got shape {shape_of(vectors)}")
    return vectors.reshape(B, height, width, C).permute(0, 3, 1, 2)  # (B, H*W, C) -> (B, H, W, C) -> (B, C, H, W)


# ---------------------------------------------------------------------------------------------------------
# A convolution as multi-head self-attention with relative-position heads
# ---------------------------------------------------------------------------------------------------------


def kernel_offsets(kernel_size: int = 3) -> list[tuple[int, int]]:
    """The (dy, dx) offsets of a kernel_size x kernel_size window, row by row: one attention head each."""
    kernel_size = check_int(kernel_size, "kernel_size")
    if kernel_size % 2 == 0:
        raise ValueError(f"kernel_size must be odd (the window is centred on the pixel), got {kernel_size}")
    r = kernel_size // 2
    return [(dy, dx) for dy in range(-r, r + 1) for dx in range(-r, r + 1)]


def relative_position_mask(height: int, width: int, dy: int, dx: int) -> torch.Tensor:
    """(N, N) bool, N = height*width: query pixel (r, c) may attend only key pixel (r + dy, c + dx), if inside."""
    height, width = check_int(height, "height"), check_int(width, "width")
    dy, dx = check_int(dy, "dy", minimum=None), check_int(dx, "dx", minimum=None)
    r = torch.arange(height).repeat_interleave(width)  # (N,) row of each token
    c = torch.arange(width).repeat(height)  # (N,) column of each token
    same_row = r[None, :] == r[:, None] + dy  # (N, N): key row = query row + dy
    same_col = c[None, :] == c[:, None] + dx  # (N, N): key column = query column + dx
    return same_row & same_col


class ConvAsAttention(nn.Module):
    """A k x k convolution (stride 1, zero padding k // 2) as k*k-head self-attention over pixel tokens.

    Head h attends by relative position only: its mask allows the single key at offset h, so its weights
    are one-hot there (content scores are zero). Values are the tokens themselves (d_v = C_in per head);
    W^O (C_out, k*k*C_in) holds the kernel slices side by side. x (B, H*W, C_in) -> (B, H*W, C_out).
    """

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor | None, height: int, width: int):
        super().__init__()
        weight = _check_float_tensor(weight, "weight", 4, "(C_out, C_in, k, k)")
        C_out, C_in, k, k2 = weight.shape
        if k != k2:
            raise ValueError(f"weight must have a square kernel (C_out, C_in, k, k), got shape {shape_of(weight)}")
        if bias is not None and (not isinstance(bias, torch.Tensor) or bias.shape != (C_out,)):
            raise ValueError(f"bias must be None or a tensor of shape ({C_out},), got {shape_of(bias)}")
        if bias is not None:
            check_finite(bias, "bias")
        self.height, self.width = check_int(height, "height"), check_int(width, "width")
        self.offsets = kernel_offsets(k)
        self.c_in, self.c_out = C_in, C_out
        masks = [relative_position_mask(self.height, self.width, dy, dx) for dy, dx in self.offsets]
        self.register_buffer("mask", torch.stack(masks))  # (H_heads, N, N): head h's relative-position mask
        r = k // 2
        slices = [weight[:, :, dy + r, dx + r] for dy, dx in self.offsets]  # each (C_out, C_in)
        self.W_o = nn.Parameter(torch.cat(slices, dim=1).detach().clone())  # (C_out, H_heads * C_in)
        self.b_o = nn.Parameter(bias.detach().clone() if bias is not None else torch.zeros(C_out, dtype=weight.dtype))

    @classmethod
    def from_conv(cls, conv: nn.Conv2d, height: int, width: int) -> ConvAsAttention:
        """The attention layer equal to `conv` (stride 1, dilation 1, groups 1, zero padding k // 2)."""
        if not isinstance(conv, nn.Conv2d):
            raise TypeError(f"conv must be a torch.nn.Conv2d, got {type(conv).__name__}")
        k = conv.kernel_size[0]
        if (
            conv.kernel_size != (k, k)
            or conv.stride != (1, 1)
            or conv.dilation != (1, 1)
            or conv.groups != 1
            or conv.padding != (k // 2, k // 2)
            or conv.padding_mode != "zeros"
        ):
            raise ValueError(
                "conv must be square, stride 1, dilation 1, groups 1, zero padding k // 2; got "
                f"kernel {conv.kernel_size}, stride {conv.stride}, padding {conv.padding} ({conv.padding_mode})"
            )
        return cls(conv.weight, conv.bias, height, width)

    @property
    def num_heads(self) -> int:
        return len(self.offsets)

    def attention_weights(self, batch: int = 1) -> torch.Tensor:
        """(B, H_heads, N, N): each head's weights, one-hot on its offset; a row is zero where it leaves the image."""
        N = self.height * self.width
        z = torch.zeros(batch, self.num_heads, N, 1, dtype=self.W_o.dtype, device=self.W_o.device)
        return attention_weights(z, z, attn_mask=self.mask)  # softmax(0 + mask): one-hot, or zero off the image

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x (B, H*W, C_in) -> (B, H*W, C_out)."""
        x = _check_float_tensor(x, "x", 3, "(B, H*W, C_in)")
        B, N, C = x.shape
        if N != self.height * self.width or C != self.c_in:
            raise ValueError(
                f"x must have shape (B, {self.height * self.width}, {self.c_in}) for a "
                f"{self.height}x{self.width} image of {self.c_in} channels, got {shape_of(x)}"
            )
        zeros = x.new_zeros(B, self.num_heads, N, 1)  # no content score: q = k = 0, the mask decides
        v = x[:, None].expand(B, self.num_heads, N, C)  # every head's value is the token itself: (B, H, N, C_in)
        heads = scaled_dot_product_attention(zeros, zeros, v, attn_mask=self.mask)  # (B, H, N, C_in)
        concat = heads.transpose(1, 2).reshape(B, N, self.num_heads * C)  # (B, H, N, C_in) -> (B, N, H*C_in)
        return concat @ self.W_o.T + self.b_o  # (B, N, H*C_in) @ (H*C_in, C_out) -> (B, N, C_out)


# ---------------------------------------------------------------------------------------------------------
# The two tiny models of the data-size experiment
# ---------------------------------------------------------------------------------------------------------


def _image_shape(in_channels: int, height: int, width: int, minimum: int = 1) -> tuple[int, int, int]:
    """(C, H, W) the model was built for."""
    return (
        check_int(in_channels, "in_channels"),
        check_int(height, "height", minimum=minimum),
        check_int(width, "width", minimum=minimum),
    )


def _check_images(images, shape: tuple[int, int, int]) -> torch.Tensor:
    """images (B, C, H, W) of the (C, H, W) the model was built for."""
    images = _check_float_tensor(images, "images", 4, "(B, C, H, W)")
    if tuple(images.shape[1:]) != shape:
        C, H, W = shape
        raise ValueError(f"images must have shape (B, {C}, {H}, {W}) (as the model was built), got {shape_of(images)}")
    return images


@dataclass(frozen=True)
class CNNConfig:
    channels: int = 16  # feature maps in each of the two conv layers
    n_classes: int = 10  # digits 0-9


class TinyCNN(nn.Module):
    """conv3x3 -> ReLU -> maxpool2 -> conv3x3 -> ReLU -> maxpool2 -> linear: images (B, 1, H, W) -> logits (B, C)."""

    def __init__(self, config: CNNConfig = CNNConfig(), height: int = 8, width: int = 8, in_channels: int = 1):
        super().__init__()
        c = check_int(config.channels, "config.channels")
        self.shape = _image_shape(in_channels, height, width, minimum=4)  # two 2x poolings need H, W >= 4
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, c, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),  # (B, c, H, W) -> (B, c, H/2, W/2)
            nn.Conv2d(c, c, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),  # -> (B, c, H/4, W/4)
        )
        self.head = nn.Linear(c * (height // 4) * (width // 4), check_int(config.n_classes, "config.n_classes"))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        images = _check_images(images, self.shape)
        return self.head(self.features(images).flatten(1))  # (B, c, H/4, W/4) -> (B, c*H*W/16) -> (B, C)


@dataclass(frozen=True)
class ViTConfig:
    d_model: int = 32  # token width D
    num_heads: int = 2  # heads per block
    n_layers: int = 1  # transformer blocks
    n_classes: int = 10  # digits 0-9


class TorchSDPAttention(MultiHeadSelfAttention):
    """`MultiHeadSelfAttention` (same parameters, same masks) computed by torch's fused SDPA: faster on a CPU."""

    def forward(self, x, attn_mask=None, is_causal: bool = False) -> torch.Tensor:
        """x (B, N, D) -> (B, N, D)."""
        q, k, v = self.split_heads(x)  # 3 x (B, H, N, d)
        heads = nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask, is_causal=is_causal)
        return self.out_proj(self.merge_heads(heads))  # (B, N, D) @ (D, D) -> (B, N, D)


class TinyViT(nn.Module):
    """A ViT whose tokens are single pixels: images (B, C, H, W) -> H*W tokens -> Encoder (mean pool) -> (B, classes).

    Each pixel's C values are embedded by one linear map; learned positions say where it was. Nothing tells
    the model which pixels are neighbours: that is what it must learn from data.
    """

    def __init__(self, config: ViTConfig = ViTConfig(), height: int = 8, width: int = 8, in_channels: int = 1):
        super().__init__()
        D = check_int(config.d_model, "config.d_model")
        self.shape = _image_shape(in_channels, height, width)
        blocks = [Block(D, TorchSDPAttention(D, config.num_heads)) for _ in range(config.n_layers)]
        self.encoder = Encoder(
            nn.Linear(in_channels, D),
            blocks,
            D,
            config.n_classes,
            pool="mean",
            position=LearnedPositionalEncoding(D, height * width),
        )

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        images = _check_images(images, self.shape)
        return self.encoder(image_to_vectors(images))  # (B, C, H, W) -> (B, H*W, C) -> (B, classes)

    def with_permuted_positions(self, permutation: torch.Tensor) -> TinyViT:
        """A copy whose position i holds the learned vector of position permutation[i]: on images whose pixels
        were permuted by `permutation` it computes exactly what this model computes on the originals."""
        position = self.encoder.position
        assert isinstance(position, LearnedPositionalEncoding)  # built so in __init__
        positions = position.table  # (N, D)
        if not isinstance(permutation, torch.Tensor) or permutation.shape != (positions.shape[0],):
            raise ValueError(f"permutation must have shape ({positions.shape[0]},), got {shape_of(permutation)}")
        twin = copy.deepcopy(self)
        twin_position = twin.encoder.position
        assert isinstance(twin_position, LearnedPositionalEncoding)
        with torch.no_grad():
            twin_position.table.copy_(positions[permutation])  # (N, D) rows relabelled
        return twin
