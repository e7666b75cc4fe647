"""A ListOps-style generator (the Long Range Arena's first task): nested list operations over digits.

An expression such as `[MAX 2 9 [MIN 4 7 ] 0 ]` evaluates to 9. Operators, each on two or more arguments:

    MAX  the largest          MIN  the smallest
    MED  the median (the mean of the two middle values, rounded down, when there is an even number)
    SM   the sum modulo 10

Arguments are digits or nested expressions; the label is the expression's value, a digit (10 classes). Solving
it needs the tree structure over long distances, which is why it takes long training: lesson 11 shows the
generator but does not train on it in CI. `listops_batch` plugs into `training.train_classifier`.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import torch

from .._validate import check_generator, check_int, check_number, check_positive_int

__all__ = ["OPERATORS", "VOCAB", "PAD", "ListOpsConfig", "generate", "evaluate", "encode", "decode", "listops_batch"]

OPERATORS = ("MAX", "MIN", "MED", "SM")
VOCAB = ("<pad>", *(str(i) for i in range(10)), *(f"[{op}" for op in OPERATORS), "]")  # token id = index
PAD = 0  # the padding id
_ID = {token: i for i, token in enumerate(VOCAB)}


def _apply(op: str, values: list[int]) -> int:
    if op == "MAX":
        return max(values)
    if op == "MIN":
        return min(values)
    if op == "MED":
        ordered = sorted(values)
        mid = len(ordered) // 2
        return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) // 2
    if op == "SM":
        return sum(values) % 10
    raise ValueError(f"unknown operator {op!r}; expected one of {OPERATORS}")


@dataclass(frozen=True)
class ListOpsConfig:
    max_depth: int = 3  # nesting levels below the root expression
    max_args: int = 5  # arguments per operator (at least 2)
    branch_prob: float = 0.3  # chance that an argument is a nested expression (while depth allows)
    max_length: int = 64  # tokens per padded sequence; longer expressions are redrawn

    def __post_init__(self):
        check_int(self.max_depth, "max_depth", minimum=0)
        check_int(self.max_args, "max_args", minimum=2)
        check_int(self.max_length, "max_length", minimum=4)
        if not 0.0 <= check_number(self.branch_prob, "branch_prob", positive=False) <= 1.0:
            raise ValueError(f"branch_prob must be a probability in [0, 1], got {self.branch_prob!r}")


def _expression(rng: random.Random, depth: int, config: ListOpsConfig) -> tuple[list[str], int]:
    """Tokens of a random expression and its value, built together."""
    op = rng.choice(OPERATORS)
    tokens, values = [f"[{op}"], []
    for _ in range(rng.randint(2, config.max_args)):
        if depth < config.max_depth and rng.random() < config.branch_prob:
            sub_tokens, value = _expression(rng, depth + 1, config)
            tokens += sub_tokens
        else:
            value = rng.randrange(10)
            tokens.append(str(value))
        values.append(value)
    return tokens + ["]"], _apply(op, values)


def generate(rng: random.Random, config: ListOpsConfig = ListOpsConfig()) -> tuple[list[str], int]:
    """One expression of at most config.max_length tokens, as a token list, and its value (0-9)."""
    if not isinstance(rng, random.Random):
        raise TypeError(f"rng must be a random.Random, got {type(rng).__name__}")
    while True:
        tokens, value = _expression(rng, 0, config)
        if len(tokens) <= config.max_length:
            return tokens, value


def evaluate(tokens: list[str] | str) -> int:
    """The value of an expression given as tokens or as text ('[MAX 2 [MIN 4 7 ] ]')."""
    if isinstance(tokens, str):
        tokens = tokens.split()
    tokens = [t for t in tokens if t != VOCAB[PAD]]
    for t in tokens:
        if t not in _ID:
            raise ValueError(f"unknown token {t!r}; the vocabulary is {VOCAB}")

    def parse(i: int) -> tuple[int, int]:  # value of the expression starting at tokens[i], next index
        if tokens[i].isdigit():
            return int(tokens[i]), i + 1
        if not tokens[i].startswith("["):
            raise ValueError(f"expected a digit or an operator at token {i}, got {tokens[i]!r}")
        op, i, values = tokens[i][1:], i + 1, []
        while i < len(tokens) and tokens[i] != "]":
            value, i = parse(i)
            values.append(value)
        if i == len(tokens):
            raise ValueError("unbalanced expression: a ']' is missing")
        if not values:
            raise ValueError(f"operator {op} has no argument")
        return _apply(op, values), i + 1

    if not tokens:
        raise ValueError("empty expression")
    value, end = parse(0)
    if end != len(tokens):
        raise ValueError(f"trailing tokens after the expression: {tokens[end:]}")
    return value


def encode(tokens: list[str], max_length: int) -> list[int]:
    """Token ids padded with PAD to max_length."""
    if len(tokens) > max_length:
        raise ValueError(f"expression of {len(tokens)} tokens does not fit max_length={max_length}")
    return [_ID[t] for t in tokens] + [PAD] * (max_length - len(tokens))


def decode(ids) -> str:
    """The text of a sequence of ids, padding dropped."""
    return " ".join(VOCAB[int(i)] for i in ids if int(i) != PAD)


def listops_batch(
    batch_size: int, generator: torch.Generator | None = None, config: ListOpsConfig = ListOpsConfig()
) -> tuple[torch.Tensor, torch.Tensor]:
    """x (B, max_length) token ids (PAD after the expression), y (B,) the values; seeded by `generator`."""
    batch_size = check_positive_int(batch_size, "batch_size")
    check_generator(generator)
    seed = int(torch.randint(0, 2**62, (1,), generator=generator))  # so train_classifier's seeding applies
    rng = random.Random(seed)
    examples = [generate(rng, config) for _ in range(batch_size)]
    x = torch.tensor([encode(tokens, config.max_length) for tokens, _ in examples])  # (B, L)
    y = torch.tensor([value for _, value in examples])  # (B,)
    return x, y
