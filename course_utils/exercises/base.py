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
        """Same shape and values; NaN matches NaN (a naive softmax's overflow is a mistake to name)."""
        return (
            a is not None
            and b is not None
            and a.shape == b.shape
            and np.allclose(a, b, atol=self.atol, rtol=self.rtol, equal_nan=True)
        )

    @staticmethod
    def _outcome(fn: Callable, args: tuple) -> np.ndarray | None:
        """fn's output on args as an array, or None when it raises."""
        try:
            return _as_array(fn(*copy.deepcopy(args)))
        except Exception:
            return None

    def _diagnose(self, fn: Callable, cases: list[tuple]) -> Mistake | None:
        """The first known mistake that behaves as the learner's function on every case.

        Behaving the same means the same output, or both raising (transposed (d_k, d_in) weights only run
        when d_k == d_in: on the other cases the mistake and the learner's function both fail).
        """
        outcomes = [self._outcome(fn, args) for args in cases]
        if all(out is None for out in outcomes):
            return None
        for mistake in self.mistakes:
            wrongs = (self._outcome(mistake.wrong, args) for args in cases)
            if all((out is None and w is None) or self._close(out, w) for out, w in zip(outcomes, wrongs)):
                return mistake
        return None

    def check(self, fn: Callable, verbose: bool = True) -> Feedback:
        """Run `fn` on every case; print and return the verdict."""
        with np.errstate(all="ignore"):  # the learner's overflow is diagnosed in words, not warned on stderr
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
