"""Checkers for lesson 08's exercises: an image as a vector set, one head's relative-position mask, how many
(query, head) rows the border leaves empty, and a 3x3 convolution assembled from its nine heads."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from .. import vision
from .base import Exercise, Feedback, Lesson, Mistake, Prediction

__all__ = [
    "conv3x3_by_heads",
    "check_image_to_vectors",
    "check_relative_position_mask",
    "check_empty_rows",
    "check_conv3x3_by_heads",
    "LESSON",
    "hint",
    "solution",
]


# 1. An image as a vector set -----------------------------------------------------------------------------


def _image_cases(rng: np.random.Generator) -> list[tuple]:
    # H != W and C differs from both, so every mistake gives a different answer.
    return [(torch.tensor(rng.normal(size=shape), dtype=torch.float32),) for shape in ((1, 3, 5, 10), (2, 2, 4, 3))]


def _channels_last(images):
    B, C, H, W = images.shape
    return images.reshape(B, H * W, C)  # (B, C, H, W) read as (B, H*W, C): channels and pixels mixed


def _transposed_hw(images):
    B, C, H, W = images.shape
    return images.permute(0, 3, 2, 1).reshape(B, W * H, C)  # (B, W, H, C) -> (B, W*H, C)


def _channels_as_tokens(images):
    B, C, H, W = images.shape
    return images.reshape(B, C, H * W)  # (B, C, H*W): one token per channel


IMAGE_TO_VECTORS = Exercise(
    name="image_to_vectors",
    reference=vision.image_to_vectors,
    cases=_image_cases,
    mistakes=(
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
    ),
    hints=(
        "Each pixel becomes one vector whose entries are its C channel values, and the pixels are read row by "
        "row. A reshape only regroups numbers in memory order, so first bring the axes into the order you want.",
        "The target order is (B, H, W, C): channels last. Move the axes with permute, then merge H and W.",
        "images.permute(0, 2, 3, 1) gives (B, H, W, C); .reshape(B, H * W, C) merges rows and columns.",
    ),
    solution=(
        "def my_image_to_vectors(images):\n"
        "    B, C, H, W = images.shape\n"
        "    return images.permute(0, 2, 3, 1).reshape(B, H * W, C)  # (B, H, W, C) -> (B, H*W, C)\n"
    ),
)


# 2. One head's relative-position mask --------------------------------------------------------------------


def _mask_cases(rng: np.random.Generator) -> list[tuple]:
    return [(5, 10, 1, -1), (4, 3, 0, 1), (3, 6, -1, 2), (6, 4, 1, 0)]


def _wrap_around(height, width, dy, dx):
    n = height * width
    i = torch.arange(n)[:, None]  # (N, 1) queries
    j = torch.arange(n)[None, :]  # (1, N) keys
    return j == i + dy * width + dx  # (N, N), a flat offset: walks off one row onto the next


RELATIVE_POSITION_MASK = Exercise(
    name="relative_position_mask",
    reference=vision.relative_position_mask,
    cases=_mask_cases,
    output="bool_mask",
    mistakes=(
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
    ),
    hints=(
        "Token i is a pixel with a row and a column. Query i may attend to key j only when j's row is i's row "
        "plus dy and j's column is i's column plus dx. A key that would lie outside the image does not exist, "
        "so that query's row of the mask stays all False.",
        "Give every token its row (i // W) and column (i % W) as two length-N tensors, and compare rows with rows "
        "and columns with columns: a single flat offset i + dy*W + dx walks off one row onto the next.",
        "r = torch.arange(N) // width, c = torch.arange(N) % width; broadcast r[None, :] == r[:, None] + dy "
        "(keys along columns, queries along rows), the same for c with dx, and combine the two with &.",
    ),
    solution=(
        "def my_relative_position_mask(height, width, dy, dx):\n"
        "    r = torch.arange(height).repeat_interleave(width)  # (N,) row of each token\n"
        "    c = torch.arange(width).repeat(height)  # (N,) column of each token\n"
        "    return (r[None, :] == r[:, None] + dy) & (c[None, :] == c[:, None] + dx)  # (N, N)\n"
    ),
)


# 3. Predict: how many (query, head) rows does the border leave empty? ------------------------------------

EMPTY_ROWS = Prediction(
    name="fully masked (query, head) rows of the 5x10 conv-as-attention layer",
    kind="int",
    hints=(
        "A head's row for a query is fully masked when the head's offset points outside the image. Count, head "
        "by head, how many of the 50 queries still find a pixel, and subtract from all the (query, head) pairs.",
        "Head (dy, dx) finds a pixel for (H - |dy|) * (W - |dx|) queries: the others sit on the border it looks "
        "across.",
        "Summed over dy and dx in {-1, 0, 1} that factors into (3H - 2) * (3W - 2) rows that find a pixel, out "
        "of 9 * H * W rows in all.",
    ),
    solution="9 * 5 * 10 - (3 * 5 - 2) * (3 * 10 - 2) = 450 - 364 = 86",
    explanation=(
        "Each border pixel loses the 3 heads that look across its side, a corner loses 5 (3 + 3, the diagonal "
        "counted twice). In all 9HW - (3H - 2)(3W - 2) = 6H + 6W - 4 rows are empty: 86 for 5x10. Those rows are "
        "the convolution's zero padding, and they work only because a fully masked row gives zeros."
    ),
)


# 4. A 3x3 convolution assembled from its nine heads ------------------------------------------------------


def conv3x3_by_heads(image: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """PyTorch's 3x3 conv (zero padding 1, no bias): image (C_in, H, W), kernel (C_out, C_in, 3, 3) -> (C_out, H, W)."""
    return torch.nn.functional.conv2d(image[None], kernel, padding=1)[0]  # (1, C_in, H, W) -> (1, C_out, H, W)


def _conv_cases(rng: np.random.Generator) -> list[tuple]:
    cases = []
    # H != W; the first case has C_in == C_out, so swapped channels run there (and fail on the others).
    for c_in, h, w, c_out in ((2, 5, 3, 2), (2, 4, 5, 3), (3, 3, 6, 2), (3, 1, 4, 2)):
        image = torch.tensor(rng.normal(size=(c_in, h, w)), dtype=torch.float64)
        kernel = torch.tensor(rng.normal(size=(c_out, c_in, 3, 3)), dtype=torch.float64)
        cases.append((image, kernel))
    return cases


def _flipped(image, kernel):
    return conv3x3_by_heads(image, kernel.flip(-2, -1))  # pixel p - delta instead of p + delta


def _wrapped(image, kernel):
    padded = torch.nn.functional.pad(image[None], (1, 1, 1, 1), mode="circular")  # (1, C_in, H+2, W+2)
    return torch.nn.functional.conv2d(padded, kernel)[0]  # (C_out, H, W), the torus instead of zeros


CONV3X3_BY_HEADS = Exercise(
    name="conv3x3_by_heads",
    reference=conv3x3_by_heads,
    cases=_conv_cases,
    mistakes=(
        Mistake(
            "the kernel flipped (each head reads pixel p - delta, not p + delta)",
            _flipped,
            "PyTorch's conv2d is a cross-correlation: the head for offset (dy, dx) hands pixel p the value of pixel "
            "p + (dy, dx) and uses kernel[:, :, dy + 1, dx + 1]. Reading p - (dy, dx) flips the kernel.",
        ),
        Mistake(
            "the shifts wrap around the image's edges (torch.roll instead of zero padding)",
            _wrapped,
            "A pixel outside the image is zero (the head's row is fully masked), not the pixel on the opposite "
            "edge: pad with zeros and slice, rather than roll.",
        ),
        Mistake(
            "dy and dx swapped (the kernel transposed)",
            lambda image, kernel: conv3x3_by_heads(image, kernel.transpose(-2, -1)),
            "dy moves along rows (the kernel's third axis), dx along columns (its fourth): offset (dy, dx) uses "
            "kernel[:, :, dy + 1, dx + 1].",
        ),
        Mistake(
            "input and output channels swapped in W^O's slices",
            lambda image, kernel: conv3x3_by_heads(image, kernel.transpose(0, 1)),
            "kernel is (C_out, C_in, 3, 3): the slice kernel[:, :, dy + 1, dx + 1] is (C_out, C_in) and maps "
            "the C_in channels of the shifted pixel to C_out outputs.",
        ),
    ),
    hints=(
        "Section 2's layer, without the attention machinery: head (dy, dx) hands every pixel p the vector of pixel "
        "p + (dy, dx) (zero when that pixel is outside the image), and W^O multiplies it by that offset's "
        "(C_out, C_in) kernel slice. The output is the sum of the nine heads.",
        "Pad the image with one ring of zeros; then 'pixel p + (dy, dx) of the image' is the padded image "
        "sliced one step along (dy, dx). PyTorch's convolution does not flip the kernel: offset (dy, dx) uses "
        "kernel[:, :, dy + 1, dx + 1].",
        "padded = torch.nn.functional.pad(image, (1, 1, 1, 1)); for each dy, dx in {-1, 0, 1}: shifted = "
        "padded[:, 1 + dy : 1 + dy + H, 1 + dx : 1 + dx + W], and add torch.einsum('oc,chw->ohw', "
        "kernel[:, :, dy + 1, dx + 1], shifted).",
    ),
    solution=(
        "def my_conv3x3_by_heads(image, kernel):\n"
        "    C_in, H, W = image.shape\n"
        "    padded = torch.nn.functional.pad(image, (1, 1, 1, 1))  # (C_in, H + 2, W + 2), zeros outside\n"
        "    out = image.new_zeros(kernel.shape[0], H, W)  # (C_out, H, W)\n"
        "    for dy in (-1, 0, 1):\n"
        "        for dx in (-1, 0, 1):\n"
        "            shifted = padded[:, 1 + dy : 1 + dy + H, 1 + dx : 1 + dx + W]  # head (dy, dx)\n"
        "            out += torch.einsum('oc,chw->ohw', kernel[:, :, dy + 1, dx + 1], shifted)  # W^O's slice\n"
        "    return out\n"
    ),
)


LESSON = Lesson(
    {
        "image_to_vectors": IMAGE_TO_VECTORS,
        "relative_position_mask": RELATIVE_POSITION_MASK,
        "empty_rows": EMPTY_ROWS,
        "conv3x3_by_heads": CONV3X3_BY_HEADS,
    }
)
hint, solution = LESSON.hint, LESSON.solution


def check_image_to_vectors(fn: Callable) -> Feedback:
    """Check image_to_vectors(images (B, C, H, W)) -> (B, H*W, C), token r * W + c = pixel (r, c)."""
    return IMAGE_TO_VECTORS.check(fn)


def check_relative_position_mask(fn: Callable) -> Feedback:
    """Check relative_position_mask(height, width, dy, dx) -> (N, N) bool, one head's relative-position mask."""
    return RELATIVE_POSITION_MASK.check(fn)


def check_empty_rows(predicted: object, measured: int) -> Feedback:
    """Compare the predicted number of fully masked (query, head) rows with the measured one."""
    return EMPTY_ROWS.check(predicted, measured)


def check_conv3x3_by_heads(fn: Callable) -> Feedback:
    """Check conv3x3_by_heads(image (C_in, H, W), kernel (C_out, C_in, 3, 3)) -> (C_out, H, W), equal to conv2d."""
    return CONV3X3_BY_HEADS.check(fn)
