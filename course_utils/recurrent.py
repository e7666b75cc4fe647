"""Self-attention vs an RNN (lesson 09): an LSTM classifier sized to match, and how to count sequential steps.

- `LSTMClassifier`: x (B, N, d_in) -> LSTM -> last hidden state -> linear head (B, C). `forward` uses torch's
  fused nn.LSTM; `unrolled` runs the same weights one token at a time, so autograd sees every step.
- `lstm_parameter_count` / `matched_hidden_size`: pick the hidden size whose parameter count matches a model's.
- `recall_transformer`: the attention side of the comparison, one `models.Block` reading the last token.
- `graph_depth`: the longest chain of dependent operations behind a tensor (its sequential steps); an RNN's
  grows with N, attention's does not.
- `compare_on_recall`: the lesson's experiment, LSTM vs self-attention on associative recall.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from ._validate import check_int, check_positive_int, check_tensor, shape_of
from .attention import MultiHeadSelfAttention
from .models import Block, Encoder
from .tasks.recall import RecallTask
from .training import TrainConfig, accuracy, count_parameters, train_classifier

__all__ = [
    "LSTMClassifier",
    "lstm_parameter_count",
    "matched_hidden_size",
    "recall_transformer",
    "graph_depth",
    "best_time",
    "RecallComparison",
    "RecallResult",
    "compare_on_recall",
]


def _check_input(x, d_in: int) -> torch.Tensor:
    """x (B, N >= 1, d_in): a finite floating-point tensor."""
    if isinstance(x, torch.Tensor) and (x.ndim != 3 or x.shape[-1] != d_in or x.shape[1] == 0):
        raise ValueError(f"x must have shape (B, N >= 1, d_in={d_in}), got {shape_of(x)}")
    return check_tensor(x, "x", min_ndim=3)


class LSTMClassifier(nn.Module):
    """x (B, N, d_in) -> one-layer LSTM -> its last hidden state (B, hidden) -> linear head -> (B, C)."""

    def __init__(self, d_in: int, hidden: int, n_classes: int):
        super().__init__()
        self.d_in = check_positive_int(d_in, "d_in")
        self.hidden = check_positive_int(hidden, "hidden")
        self.lstm = nn.LSTM(self.d_in, self.hidden, batch_first=True)
        self.head = nn.Linear(self.hidden, check_positive_int(n_classes, "n_classes"))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits (B, C), read from the hidden state after the last token (the fused LSTM kernel)."""
        outputs, _ = self.lstm(_check_input(x, self.d_in))  # (B, N, hidden)
        return self.head(outputs[:, -1])  # (B, hidden) @ (hidden, C) -> (B, C)

    def unrolled(self, x: torch.Tensor) -> torch.Tensor:
        """The same logits (B, C), computed one token at a time: step t needs the state of step t - 1."""
        x = _check_input(x, self.d_in)
        B = x.shape[0]
        h = x.new_zeros(B, self.hidden)  # (B, hidden)
        c = x.new_zeros(B, self.hidden)
        w_ih = self.lstm.get_parameter("weight_ih_l0")  # (4 hidden, d_in)
        w_hh = self.lstm.get_parameter("weight_hh_l0")  # (4 hidden, hidden)
        bias = self.lstm.get_parameter("bias_ih_l0") + self.lstm.get_parameter("bias_hh_l0")  # (4 hidden,)
        for t in range(x.shape[1]):
            gates = x[:, t] @ w_ih.T + h @ w_hh.T + bias  # (B, d_in) @ (d_in, 4h) + (B, h) @ (h, 4h) -> (B, 4h)
            i, f, g, o = gates.chunk(4, dim=-1)  # torch's gate order: input, forget, cell, output
            c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)  # (B, hidden)
            h = torch.sigmoid(o) * torch.tanh(c)
        return self.head(h)  # (B, hidden) @ (hidden, C) -> (B, C)


def lstm_parameter_count(d_in: int, hidden: int, n_classes: int) -> int:
    """Parameters of LSTMClassifier: 4 gates of (d_in + hidden) weights and 2 biases each, plus the head."""
    d_in, hidden = check_positive_int(d_in, "d_in"), check_positive_int(hidden, "hidden")
    n_classes = check_positive_int(n_classes, "n_classes")
    return 4 * hidden * (d_in + hidden) + 8 * hidden + hidden * n_classes + n_classes


def matched_hidden_size(n_params: int, d_in: int, n_classes: int) -> int:
    """The LSTM hidden size whose LSTMClassifier has the parameter count closest to `n_params`."""
    n_params = check_positive_int(n_params, "n_params")
    hidden = 1
    while lstm_parameter_count(d_in, hidden + 1, n_classes) <= n_params:
        hidden += 1
    above = lstm_parameter_count(d_in, hidden + 1, n_classes)
    return hidden + 1 if above - n_params < n_params - lstm_parameter_count(d_in, hidden, n_classes) else hidden


def recall_transformer(d_in: int, n_classes: int, d_model: int = 32, num_heads: int = 1, d_ff: int = 32) -> Encoder:
    """x (B, N, d_in) -> Linear -> one pre-norm Block -> LayerNorm -> head on the last token -> (B, C).

    No position module: associative recall matches keys by content, so order does not matter.
    """
    d_in, d_model = check_positive_int(d_in, "d_in"), check_positive_int(d_model, "d_model")
    block = Block(d_model, MultiHeadSelfAttention(d_model, num_heads), d_ff=check_positive_int(d_ff, "d_ff"))
    return Encoder(nn.Linear(d_in, d_model), [block], d_model, check_positive_int(n_classes, "n_classes"), pool="last")


def graph_depth(output: torch.Tensor) -> int:
    """The longest chain of dependent autograd operations from the leaves to `output`: its sequential steps.

    Operations on one chain must run one after another; operations off the chain can run in parallel.
    0 for a tensor that no differentiable operation produced.
    """
    if not isinstance(output, torch.Tensor):
        raise TypeError(f"output must be a torch.Tensor, got {type(output).__name__}")
    root = output.grad_fn
    if root is None:
        return 0
    depth: dict = {}
    stack = [(root, False)]
    while stack:  # iterative post-order walk: an unrolled RNN's graph is deeper than Python's recursion limit
        node, children_done = stack.pop()
        if node in depth:
            continue
        children = [child for child, _ in node.next_functions if child is not None]
        if children_done:
            depth[node] = 1 + max((depth[child] for child in children), default=0)
        else:
            stack.append((node, True))
            stack.extend((child, False) for child in children if child not in depth)
    return depth[root]


def best_time(fn: Callable[[], object], repeats: int = 5) -> float:
    """The fastest of `repeats` timed calls of fn() in seconds, after one warm-up call (no gradients, GPU synced)."""
    repeats = check_positive_int(repeats, "repeats")
    if not callable(fn):
        raise TypeError(f"fn must be callable, got {type(fn).__name__}")
    sync = torch.cuda.synchronize if torch.cuda.is_available() else (lambda: None)  # GPU work is asynchronous
    best = float("inf")
    with torch.no_grad():
        fn()
        for _ in range(repeats):
            sync()
            start = time.perf_counter()
            fn()
            sync()
            best = min(best, time.perf_counter() - start)
    return best


@dataclass(frozen=True)
class RecallComparison:
    """LSTM vs self-attention on associative recall: equal parameters, equal steps, the same batches.

    Each model has its own learning rate, tuned by hand for it; everything else is shared.
    """

    lengths: tuple[int, ...] = (2, 4, 8, 16)  # pairs per sequence: training mixes them, testing takes each
    n_keys: int = 16  # key vocabulary (>= the longest length: keys are distinct within a sequence)
    n_values: int = 4  # value vocabulary = classes; chance accuracy 1/4
    d_model: int = 32  # the transformer's width (one block, one head)
    d_ff: int = 32  # the transformer's MLP width
    num_heads: int = 1  # attention heads
    steps: int = 600  # optimiser steps, the same for both models
    batch_size: int = 64  # sequences per step
    lr_attention: float = 1e-2  # AdamW learning rate of the transformer (higher rates diverge on some seeds)
    lr_lstm: float = 3e-2  # AdamW learning rate of the LSTM (lower rates leave it under-trained in `steps`)
    n_test: int = 1000  # test sequences per length


@dataclass(frozen=True)
class RecallResult:
    """What `compare_on_recall` measured, per model ("self-attention", "LSTM")."""

    lengths: tuple[int, ...]  # pairs per sequence
    accuracy: dict  # model name -> test accuracy per length
    parameters: dict  # model name -> trainable parameters
    losses: dict  # model name -> training loss per step


def compare_on_recall(
    config: RecallComparison = RecallComparison(), seed: int = 0, progress: bool = True
) -> RecallResult:
    """Train an LSTM and a one-block transformer of matched size on recall; test each at every length."""
    if not isinstance(config, RecallComparison):
        raise TypeError(f"config must be a RecallComparison, got {type(config).__name__}")
    seed = check_int(seed, "seed", minimum=0)
    task = RecallTask(config.n_keys, config.n_values)
    torch.manual_seed(seed)
    attention = recall_transformer(task.d_in, task.n_values, config.d_model, config.num_heads, config.d_ff)
    hidden = matched_hidden_size(count_parameters(attention), task.d_in, task.n_values)
    models = {"self-attention": attention, "LSTM": LSTMClassifier(task.d_in, hidden, task.n_values)}
    lrs = {"self-attention": config.lr_attention, "LSTM": config.lr_lstm}
    accuracies: dict[str, list[float]] = {}
    losses: dict[str, list[float]] = {}
    for name, model in models.items():
        train = TrainConfig(config.steps, config.batch_size, lr=lrs[name], seed=seed, progress=progress)
        losses[name] = train_classifier(model, task.sampler(config.lengths), train, desc=name)
        accuracies[name] = []
        for n_pairs in config.lengths:
            x, y = task.batch(config.n_test, n_pairs, torch.Generator().manual_seed(10_000 + n_pairs))
            accuracies[name].append(accuracy(model, x, y))
    parameters = {name: count_parameters(model) for name, model in models.items()}
    return RecallResult(tuple(config.lengths), accuracies, parameters, losses)
