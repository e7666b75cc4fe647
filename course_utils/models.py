"""Tiny transformer pieces the lessons train: a pre-norm block and an encoder classifier.

The attention inside a block is any module mapping (B, N, D) -> (B, N, D) with keyword arguments
`attn_mask` and `is_causal` (MultiHeadSelfAttention, or a variant with RoPE, ALiBi, a window, ...), so a
lesson swaps one attention for another and keeps everything else equal.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import cast

import torch
from torch import nn

from ._validate import check_int, check_positive_int
from .attention import MultiHeadSelfAttention

__all__ = ["Block", "Encoder", "tiny_transformer", "WindowMLP"]

POOLS = ("none", "mean", "first", "last")


class Block(nn.Module):
    """Pre-norm transformer block: x + attn(LN(x)), then x + MLP(LN(x)); (B, N, D) -> (B, N, D)."""

    def __init__(self, d_model: int, attention: nn.Module, d_ff: int | None = None):
        super().__init__()
        d_model = check_positive_int(d_model, "d_model")
        d_ff = None if d_ff is None else check_positive_int(d_ff, "d_ff")
        self.norm1 = nn.LayerNorm(d_model)
        self.attn = attention
        self.norm2 = nn.LayerNorm(d_model)
        d_ff = 4 * d_model if d_ff is None else d_ff
        self.mlp = nn.Sequential(nn.Linear(d_model, d_ff), nn.GELU(), nn.Linear(d_ff, d_model))

    def forward(self, x, attn_mask=None, is_causal: bool = False) -> torch.Tensor:
        x = x + self.attn(self.norm1(x), attn_mask=attn_mask, is_causal=is_causal)
        return x + self.mlp(self.norm2(x))


class Encoder(nn.Module):
    """embed -> (+ positions) -> blocks -> LayerNorm -> linear head, per token or pooled.

    embed: maps the input (token ids (B, N) or vectors (B, N, d_in)) to (B, N, D).
    position: optional module adding position information to (B, N, D) (None: attention alone, order-blind).
    pool: "none" gives logits per token (B, N, C); "mean", "first", "last" give (B, C).
    """

    def __init__(
        self,
        embed: nn.Module,
        blocks: list[Block],
        d_model: int,
        n_classes: int,
        pool: str = "mean",
        position: nn.Module | None = None,
    ):
        super().__init__()
        if pool not in POOLS:
            raise ValueError(f"pool must be one of {POOLS}, got {pool!r}")
        d_model, n_classes = check_positive_int(d_model, "d_model"), check_positive_int(n_classes, "n_classes")
        self.embed, self.position, self.pool = embed, position, pool
        self.blocks = nn.ModuleList(blocks)
        self.norm = nn.LayerNorm(d_model)
        self.head = nn.Linear(d_model, n_classes)

    def features(self, x, attn_mask=None, is_causal: bool = False) -> torch.Tensor:
        """The last block's normalised output, (B, N, D)."""
        h = self.embed(x)  # (B, N) or (B, N, d_in) -> (B, N, D)
        if self.position is not None:
            h = self.position(h)
        for block in self.blocks:
            h = block(h, attn_mask=attn_mask, is_causal=is_causal)
        return self.norm(h)

    def forward(self, x, attn_mask=None, is_causal: bool = False) -> torch.Tensor:
        h = self.features(x, attn_mask=attn_mask, is_causal=is_causal)  # (B, N, D)
        if self.pool == "mean":
            h = h.mean(dim=1)  # (B, D)
        elif self.pool == "first":
            h = h[:, 0]
        elif self.pool == "last":
            h = h[:, -1]
        return self.head(h)  # (B, C) or (B, N, C)

    @torch.no_grad()
    def attention_maps(self, x, attn_mask=None, is_causal: bool = False) -> list[torch.Tensor]:
        """Each block's attention weights, a list of (B, H, N, N), for attention modules that expose them."""
        h = self.embed(x)
        if self.position is not None:
            h = self.position(h)
        maps = []
        for block in self.blocks:
            assert isinstance(block, Block)  # Encoder's blocks are Blocks (typed as nn.Module by ModuleList)
            weights_of = getattr(block.attn, "attention_weights", None)  # any attention module that offers it
            if not callable(weights_of):
                raise TypeError(f"{type(block.attn).__name__} has no attention_weights method")
            weights_fn = cast(Callable[..., torch.Tensor], weights_of)  # nn.Module's __getattr__ types it as a Tensor
            maps.append(weights_fn(block.norm1(h), attn_mask=attn_mask, is_causal=is_causal))
            h = block(h, attn_mask=attn_mask, is_causal=is_causal)
        return maps


def tiny_transformer(
    vocab_size: int,
    n_classes: int,
    d_model: int = 32,
    num_heads: int = 2,
    n_layers: int = 1,
    pool: str = "mean",
    position: nn.Module | None = None,
    attention: Callable[[int, int], nn.Module] | None = None,
) -> Encoder:
    """A token classifier: nn.Embedding(vocab_size, d_model) then `n_layers` blocks.

    attention(d_model, num_heads) builds each block's attention (default: MultiHeadSelfAttention).
    """
    for name, value in (("vocab_size", vocab_size), ("n_classes", n_classes), ("n_layers", n_layers)):
        check_positive_int(value, name)
    make = attention or MultiHeadSelfAttention
    blocks = [Block(d_model, make(d_model, num_heads)) for _ in range(n_layers)]
    return Encoder(nn.Embedding(vocab_size, d_model), blocks, d_model, n_classes, pool=pool, position=position)


class WindowMLP(nn.Module):
    """A fully connected net over a fixed window: token t sees only tokens t-w .. t+w; (B, N) -> (B, N, C).

    The lecture's foil: it labels each vector from its neighbourhood and cannot look further.
    """

    def __init__(self, vocab_size: int, n_classes: int, half_width: int, hidden: int = 64):
        super().__init__()
        half_width = check_int(half_width, "half_width", minimum=0)
        vocab_size = check_positive_int(vocab_size, "vocab_size")
        self.vocab_size, self.half_width = vocab_size, half_width
        window = 2 * half_width + 1
        self.net = nn.Sequential(nn.Linear(window * vocab_size, hidden), nn.ReLU(), nn.Linear(hidden, n_classes))

    def forward(self, x) -> torch.Tensor:
        w = self.half_width
        onehot = nn.functional.one_hot(x, self.vocab_size).float()  # (B, N) -> (B, N, V)
        padded = nn.functional.pad(onehot, (0, 0, w, w))  # zeros beyond the ends: (B, N + 2w, V)
        windows = padded.unfold(1, 2 * w + 1, 1)  # (B, N, V, 2w + 1)
        return self.net(windows.flatten(2))  # (B, N, V * (2w + 1)) -> (B, N, C)
