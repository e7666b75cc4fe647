"""scikit-learn's 8x8 handwritten digits (ships with sklearn, nothing downloaded), split for lesson 08.

1797 images of 8 x 8 pixels with values 0..16, ten classes. `load` gives a fixed train pool / test split;
`balanced_subset` draws a training set of a given size with (as near as possible) equal counts per class;
`fixed_permutation` + `permute_pixels` shuffle the pixels of every image the same way (the locality control).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .._validate import check_int, check_positive_int, check_tensor, shape_of

__all__ = ["Digits", "load", "balanced_subset", "fixed_permutation", "permute_pixels"]

HEIGHT = WIDTH = 8
N_CLASSES = 10


@dataclass(frozen=True)
class Digits:
    x_train: torch.Tensor  # (N_train, 1, 8, 8) float32 in [0, 1]: the pool training sets are drawn from
    y_train: torch.Tensor  # (N_train,) int64 labels 0..9
    x_test: torch.Tensor  # (N_test, 1, 8, 8) float32
    y_test: torch.Tensor  # (N_test,) int64


def load(n_test: int = 500, seed: int = 0) -> Digits:
    """The digits as tensors (B, 1, 8, 8) scaled to [0, 1], split into a train pool and `n_test` test images."""
    from sklearn.datasets import load_digits

    n_test = check_int(n_test, "n_test", minimum=1, maximum=1796)
    seed = check_int(seed, "seed", minimum=0)
    data = load_digits()
    x = torch.tensor(data.images / 16.0, dtype=torch.float32)[:, None]  # (1797, 8, 8) -> (1797, 1, 8, 8)
    y = torch.tensor(data.target, dtype=torch.int64)
    order = torch.randperm(len(y), generator=torch.Generator().manual_seed(seed))
    test, train = order[:n_test], order[n_test:]
    return Digits(x[train], y[train], x[test], y[test])


def balanced_subset(x: torch.Tensor, y: torch.Tensor, n: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """n examples of (x, y) with class counts as equal as the pool allows, drawn with a seeded generator."""
    if len(x) != len(y):
        raise ValueError(f"x and y must have the same length, got x {shape_of(x)}, y {shape_of(y)}")
    n = check_int(n, "n", minimum=1, maximum=len(y))
    rng = np.random.default_rng(seed)
    labels = y.numpy()
    per_class = [rng.permutation(np.flatnonzero(labels == c)) for c in np.unique(labels)]
    # Round-robin over classes: the first n picks take one of each class in turn while a class has any left.
    depth = max(len(p) for p in per_class)
    picks = [p[i] for i in range(depth) for p in per_class if i < len(p)][:n]
    idx = torch.as_tensor(rng.permutation(np.array(picks)))
    return x[idx], y[idx]


def fixed_permutation(n_pixels: int = HEIGHT * WIDTH, seed: int = 0) -> torch.Tensor:
    """One random order of the n_pixels pixel positions, (n_pixels,) int64: applied to every image alike."""
    n_pixels = check_positive_int(n_pixels, "n_pixels")
    return torch.randperm(n_pixels, generator=torch.Generator().manual_seed(check_int(seed, "seed", minimum=0)))


def permute_pixels(images: torch.Tensor, permutation: torch.Tensor) -> torch.Tensor:
    """images (B, C, H, W) with pixel token i moved from position permutation[i]: out.flat[i] = images.flat[perm[i]]."""
    if isinstance(images, torch.Tensor) and images.ndim != 4:
        raise ValueError(f"images must be a tensor of shape (B, C, H, W), got {shape_of(images)}")
    check_tensor(images, "images", min_ndim=4)
    B, C, H, W = images.shape
    if not isinstance(permutation, torch.Tensor) or permutation.shape != (H * W,):
        raise ValueError(
            f"permutation must be a tensor of shape ({H * W},) for {H}x{W} images, got {shape_of(permutation)}"
        )
    if not torch.equal(permutation.sort().values, torch.arange(H * W)):
        raise ValueError(f"permutation must hold each of 0..{H * W - 1} once")
    flat = images.reshape(B, C, H * W)  # (B, C, H, W) -> (B, C, H*W)
    return flat[:, :, permutation].reshape(B, C, H, W)
