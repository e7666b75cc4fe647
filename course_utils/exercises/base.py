"""The exercise checker every lesson uses.

An `Exercise` runs the learner's function on a few random cases, compares it with the reference, and
explains the first failure in words. When the output is wrong it re-computes each known `Mistake`
(softmax over the wrong axis, a missing scale, transposed weights, ...) and names the one it matches.
An unanswered exercise (the function still raises NotImplementedError) prints a hint and does not fail.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from .._validate import shape_of

__all__ = ["Mistake", "Feedback", "Exercise"]


@dataclass(frozen=True)
class Mistake:
    name: str  # short name, e.g. "softmax over the wrong axis"
    wrong: Callable  # returns what the mistaken implementation returns, given the reference's arguments
    explanation: str  # what to change


@dataclass(frozen=True)
class Feedback:
    passed: bool  # the learner's function matched the reference on every case
    answered: bool  # False while the function still raises NotImplementedError
    message: str  # what `check` printed
    mistake: str | None = None  # the name of the diagnosed Mistake, if one matched

    def __bool__(self) -> bool:
        return self.passed

    def _ipython_display_(self) -> None:  # the message is already printed: show nothing more
        pass


def _as_array(x):
    if hasattr(x, "detach") and hasattr(x, "cpu"):
        return x.detach().cpu().double().numpy()
    return np.asarray(x, dtype=np.float64) if x is not None else None


def _describe(args: Sequence) -> str:
    return ", ".join(shape_of(a) if hasattr(a, "shape") else repr(a) for a in args)


@dataclass
class Exercise:
    name: str  # shown in every message
    reference: Callable  # the correct function
    cases: Callable[[np.random.Generator], list[tuple]]  # random argument tuples, from a seeded generator
    mistakes: Sequence[Mistake] = field(default_factory=tuple)  # known wrong answers, checked in order
    hint: str = ""  # printed while the exercise is unanswered
    atol: float = 1e-6  # absolute tolerance of the comparison
    rtol: float = 1e-5  # relative tolerance of the comparison
    seed: int = 0  # the cases' generator seed

    def _close(self, a, b) -> bool:
        return (
            a is not None and b is not None and a.shape == b.shape and np.allclose(a, b, atol=self.atol, rtol=self.rtol)
        )

    def _matches(self, fn: Callable, args: tuple, got: np.ndarray) -> bool:
        """Whether `fn` returns `got` on `args`."""
        try:
            return self._close(got, _as_array(fn(*copy.deepcopy(args))))
        except Exception:  # a mistake that cannot apply to this case
            return False

    def _diagnose(self, fn: Callable, cases: list[tuple]) -> Mistake | None:
        """The first known mistake that reproduces the learner's output on every case."""
        outputs = []
        for args in cases:
            try:
                outputs.append(_as_array(fn(*copy.deepcopy(args))))
            except Exception:
                return None
        for mistake in self.mistakes:
            if all(self._matches(mistake.wrong, args, out) for args, out in zip(cases, outputs)):
                return mistake
        return None

    def check(self, fn: Callable, verbose: bool = True) -> Feedback:
        """Run `fn` on every case; print and return the verdict."""
        feedback = self._check(fn)
        if verbose:
            print(feedback.message)
        return feedback

    def _check(self, fn: Callable) -> Feedback:
        if not callable(fn):
            return Feedback(False, True, f"❌ {self.name}: expected a function, got {type(fn).__name__}.")
        cases = self.cases(np.random.default_rng(self.seed))
        for n, args in enumerate(cases, start=1):
            expected = _as_array(self.reference(*copy.deepcopy(args)))
            try:
                got = fn(*copy.deepcopy(args))
            except NotImplementedError:
                hint = f"\n   Hint: {self.hint}" if self.hint else ""
                return Feedback(False, False, f"✏️  {self.name}: not answered yet.{hint}")
            except Exception as exc:  # the learner's bug, reported in words
                return Feedback(
                    False,
                    True,
                    f"❌ {self.name}: raised {type(exc).__name__}: {exc}\n   on inputs of shapes {_describe(args)}.",
                )
            if got is None:
                return Feedback(False, True, f"❌ {self.name}: returned None. Did you forget `return`?")
            got = _as_array(got)
            if got.shape == expected.shape and self._close(got, expected):
                continue
            mistake = self._diagnose(fn, cases)
            if mistake is not None:
                return Feedback(False, True, f"❌ {self.name}: {mistake.name}. {mistake.explanation}", mistake.name)
            if got.shape != expected.shape:
                extra = " It is the transpose of the expected shape." if got.shape == expected.T.shape else ""
                return Feedback(
                    False,
                    True,
                    f"❌ {self.name}: returned shape {shape_of(got)}, expected {shape_of(expected)} "
                    f"(inputs of shapes {_describe(args)}).{extra}",
                )
            err = np.abs(got - expected)
            where = np.unravel_index(np.nanargmax(np.where(np.isnan(err), np.inf, err)), err.shape)
            return Feedback(
                False,
                True,
                f"❌ {self.name}: wrong values on case {n} (inputs of shapes {_describe(args)}): at index "
                f"{tuple(int(i) for i in where)} got {got[where]:.4g}, expected {expected[where]:.4g}.",
            )
        return Feedback(True, True, f"✅ {self.name}: correct on all {len(cases)} test cases.")
