"""Checkers for lesson 08's exercises: an image as a vector set, and one head's relative-position mask."""

from __future__ import annotations

import numpy as np
import torch

from .. import vision
from .base import Exercise, Mistake

__all__ = ["check_image_to_vectors", "check_relative_position_mask"]


def _image_cases(rng: np.random.Generator) -> list[tuple]:
    # H != W and C differs from both, so every mistake gives a different answer.
    return [(torch.tensor(rng.normal(size=shape), dtype=torch.float32),) for shape in ((1, 3, 5, 10), (2, 2, 4, 3))]


def _channels_last(images):
    B, C, H, W = images.shape
    return images.reshape(B, H * W, C)


def _transposed_hw(images):
    B, C, H, W = images.shape
    return images.permute(0, 3, 2, 1).reshape(B, W * H, C)


def _channels_as_tokens(images):
    B, C, H, W = images.shape
    return images.reshape(B, C, H * W)


IMAGE_TO_VECTORS = Exercise(
    name="image_to_vectors",
    reference=vision.image_to_vectors,
    cases=_image_cases,
    mistakes=[
        Mistake(
            "reshaped without moving the channels last",
            _channels_last,
            "images are (B, C, H, W): a plain reshape to (B, H*W, C) mixes channels and pixels. "
            "Move the channel axis last first: images.permute(0, 2, 3, 1), then reshape.",
        ),
        Mistake(
            "height and width swapped (pixels read column by column)",
            _transposed_hw,
            "Token r * W + c is pixel (row r, column c): permute to (B, H, W, C), not (B, W, H, C).",
        ),
        Mistake(
            "one vector per channel instead of one per pixel",
            _channels_as_tokens,
            "The set holds H*W vectors of dimension C (the lecture's 5x10 image of 3 channels -> 50 vectors of "
            "dimension 3), not C vectors of dimension H*W.",
        ),
    ],
    hint="permute (B, C, H, W) -> (B, H, W, C), then reshape to (B, H*W, C).",
)


def _mask_cases(rng: np.random.Generator) -> list[tuple]:
    return [(5, 10, 1, -1), (4, 3, 0, 1), (3, 6, -1, 2), (6, 4, 1, 0)]


def _wrap_around(height, width, dy, dx):
    n = height * width
    i = torch.arange(n)[:, None]
    j = torch.arange(n)[None, :]
    return j == i + dy * width + dx  # a flat offset: walks off one row onto the next


RELATIVE_POSITION_MASK = Exercise(
    name="relative_position_mask",
    reference=vision.relative_position_mask,
    cases=_mask_cases,
    mistakes=[
        Mistake(
            "the offset wraps around the image's edge",
            _wrap_around,
            "A flat offset i + dy*W + dx walks off the end of a row onto the next one. Compare rows and columns "
            "separately: key (r + dy, c + dx) must exist, else the row stays empty (zero padding).",
        ),
        Mistake(
            "queries and keys swapped (the opposite offset)",
            lambda h, w, dy, dx: vision.relative_position_mask(h, w, dy, dx).T,
            "Rows are queries, columns are keys: mask[i, j] is True when key j = query i + (dy, dx).",
        ),
        Mistake(
            "dy and dx swapped",
            lambda h, w, dy, dx: vision.relative_position_mask(h, w, dx, dy),
            "dy moves along rows (down), dx along columns (right).",
        ),
        Mistake(
            "wrong polarity (True where attention is forbidden)",
            lambda h, w, dy, dx: ~vision.relative_position_mask(h, w, dy, dx),
            "The course's masks are True where a query MAY attend, like torch's SDPA.",
        ),
    ],
    hint="give every token its row and column (token i is pixel (i // W, i % W)). Key j is allowed for query i "
    "when row(j) = row(i) + dy AND col(j) = col(i) + dx: compare rows and columns separately, so nothing wraps "
    "around an edge, and let broadcasting build the (N, N) comparison.",
)


def check_image_to_vectors(fn) -> bool:
    """Check image_to_vectors(images (B, C, H, W)) -> (B, H*W, C), token r * W + c = pixel (r, c)."""
    return IMAGE_TO_VECTORS.check(fn)


def check_relative_position_mask(fn) -> bool:
    """Check relative_position_mask(height, width, dy, dx) -> (N, N) bool, one head's relative-position mask."""
    return RELATIVE_POSITION_MASK.check(fn)
