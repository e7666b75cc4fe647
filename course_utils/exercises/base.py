"""The exercise checkers every lesson uses.

An `Exercise` runs the learner's function on a few seeded cases, compares it with the reference, and explains
the first failure in words. When the output is wrong it re-computes each known `Mistake` (softmax over the wrong
axis, a missing scale, transposed weights, ...) and names the one that explains every case.

A `Prediction` compares a number (or a choice) the learner wrote down *before* a measurement with the measurement.

Both follow the same rules:
- an unanswered exercise (the stub raises NotImplementedError, or the prediction is still None) prints the next of
  its stepped hints, the idea first; the solution appears only when asked for, `lesson.solution("key")`;
- a checker never raises and never writes to stderr: wrong types (a string, a dict, an iterator), complex values,
  NaN, a float mask where a boolean one is asked, an exception or a function that runs too long each get a verdict
  in words that names what was wrong and the shapes the learner's function received;
- tolerances follow the dtype of the learner's answer, so a correct float32 (or float16) answer passes.
"""

from __future__ import annotations

import contextlib
import copy
import io
import math
import signal
import threading
import time
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .._validate import shape_of

__all__ = [
    "Mistake",
    "Feedback",
    "Causal",
    "Exercise",
    "Prediction",
    "Lesson",
    "run_guarded",
    "as_answer_array",
    "tolerance_for",
]


@dataclass(frozen=True)
class Mistake:
    name: str  # short name, e.g. "softmax over the wrong axis"
    wrong: Callable  # returns what the mistaken implementation returns, given the reference's arguments
    explanation: str  # what to change


@dataclass(frozen=True)
class Feedback:
    passed: bool  # the learner's answer matched the reference on every case
    answered: bool  # False while the function still raises NotImplementedError (or the prediction is None)
    message: str  # what `check` printed
    mistake: str | None = None  # the name of the diagnosed Mistake (or robustness problem), if one matched

    def __bool__(self) -> bool:
        return self.passed

    def _ipython_display_(self) -> None:  # the message is already printed: show nothing more
        pass


# ---------------------------------------------------------------------------------------------------------
# Calling the learner's code safely
# ---------------------------------------------------------------------------------------------------------


class _TimeLimit(Exception):
    """Raised inside the learner's function when its time is up."""


def _can_interrupt() -> bool:
    """A running function can be interrupted on platforms with SIGALRM timers, from the main thread only."""
    return hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread()


@contextlib.contextmanager
def _quiet():
    """Nothing the learner's code warns or writes to stderr reaches the notebook: the verdict says it in words."""
    with warnings.catch_warnings(), np.errstate(all="ignore"), contextlib.redirect_stderr(io.StringIO()):
        warnings.simplefilter("ignore")
        yield


def run_guarded(fn: Callable, args: tuple, time_limit: float = 10.0) -> tuple[Any, str | None]:
    """Call fn(*deep copies of args) within `time_limit` seconds: (value, None), or (None, what went wrong).

    NotImplementedError (an unanswered stub) is re-raised for the caller to turn into a hint. Where the platform
    cannot interrupt a running function (no SIGALRM: Windows, or a thread other than the main one), the call runs
    to its end and a call that took longer than `time_limit` is reported with its elapsed time.
    """
    args = copy.deepcopy(args)
    start = time.perf_counter()
    interrupt = _can_interrupt() and time_limit > 0

    def _alarm(signum, frame):
        raise _TimeLimit

    previous = signal.signal(signal.SIGALRM, _alarm) if interrupt else None
    try:
        if interrupt:
            signal.setitimer(signal.ITIMER_REAL, time_limit)
        with _quiet():
            value = fn(*args)
    except NotImplementedError:
        raise
    except _TimeLimit:
        return None, f"did not finish within {time_limit:g} s (stopped; an endless loop, or far too much work?)"
    except RecursionError:
        return None, "raised RecursionError: the function calls itself without end"
    except Exception as exc:  # the learner's bug, reported in words
        return None, f"raised {type(exc).__name__}: {exc}"
    finally:
        if interrupt:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)
    elapsed = time.perf_counter() - start
    if not interrupt and elapsed > time_limit > 0:
        return None, (
            f"took {elapsed:.1f} s, over the limit of {time_limit:g} s (this platform cannot interrupt a running "
            "function, so the checker waited for it)"
        )
    return value, None


# ---------------------------------------------------------------------------------------------------------
# Turning an answer into numbers, or saying why it can't be
# ---------------------------------------------------------------------------------------------------------

# (atol, rtol) by the dtype of the learner's answer: float64 is held to the reference's precision, lower precisions
# to what their rounding allows (a correct float32 answer differs from the float64 reference by ~1e-7 relative per
# operation, more after long sums).
_TOLERANCES = {
    "float64": (1e-6, 1e-5),
    "float32": (2e-5, 2e-4),
    "float16": (1e-2, 1e-2),
    "bfloat16": (5e-2, 5e-2),
}


def _dtype_name(value) -> str | None:
    dtype = getattr(value, "dtype", None)
    return None if dtype is None else str(dtype).replace("torch.", "")


def tolerance_for(dtype_name: str | None) -> tuple[float, float]:
    """(atol, rtol) for an answer of this dtype ('float32', 'torch.float16', ...); float64's for anything else."""
    name = (dtype_name or "float64").replace("torch.", "")
    return _TOLERANCES.get(name, _TOLERANCES["float64"])


def _type_problem(value) -> str | None:
    """Why `value` is not an array of numbers, in words; None when it may be one."""
    if value is None:
        return "returned None. Did you forget `return`?"
    if isinstance(value, (str, bytes)):
        return f"returned a string ({value!r:.40}), not numbers. Return the array itself, not its text."
    if isinstance(value, Mapping):
        return f"returned a dict (keys {list(value)[:4]}), not an array."
    if isinstance(value, (set, frozenset)):
        return "returned a set: a set has no order, return an array."
    if isinstance(value, Iterator):
        return (
            f"returned an iterator ({type(value).__name__}), not an array: build the array, e.g. np.array(list(...))."
        )
    if callable(value) and not hasattr(value, "shape"):
        return (
            f"returned a function ({getattr(value, '__name__', type(value).__name__)}): call it and return its result."
        )
    return None


def as_answer_array(value, name: str = "the answer") -> tuple[np.ndarray | None, str | None]:
    """`value` (NumPy, torch, list, number) as a float64 array: (array, None), or (None, why it can't be).

    Complex values, object arrays and non-numeric things are named; bool and integer arrays convert (the caller
    decides whether their dtype is acceptable).
    """
    problem = _type_problem(value)
    if problem is not None:
        return None, problem
    if hasattr(value, "detach") and hasattr(value, "cpu"):  # a torch tensor
        if value.is_complex():
            return None, f"returned complex values (dtype {value.dtype}): attention outputs are real."
        value = value.detach().cpu()
        value = (value.double() if value.is_floating_point() else value).numpy()
    try:
        with _quiet():
            arr = np.asarray(value)
    except Exception as exc:  # ragged lists of arrays and other junk
        return None, f"{name} could not be read as an array ({type(value).__name__}: {exc})."
    if arr.dtype == object:
        return None, f"{name} is an array of Python objects ({type(value).__name__}), not of numbers."
    if np.iscomplexobj(arr):
        return None, f"returned complex values (dtype {arr.dtype}): attention outputs are real."
    if not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        return None, f"{name} holds {arr.dtype} values, not numbers."
    return arr.astype(np.float64), None


def _reference_array(value) -> np.ndarray:
    """The reference's output as float64 (the reference is ours: it always converts)."""
    arr, problem = as_answer_array(value, "the reference")
    if arr is None:  # a bug in the course, not the learner's
        raise TypeError(f"the checker's reference returned something that is not an array: {problem}")
    return arr


def _describe(args: Sequence) -> str:
    return ", ".join(shape_of(a) if hasattr(a, "shape") else repr(a) for a in args)


# ---------------------------------------------------------------------------------------------------------
# Hints in steps, solutions on request
# ---------------------------------------------------------------------------------------------------------


@dataclass
class _Hinted:
    """Stepped hints and a solution shown on request; shared by Exercise and Prediction."""

    name: str
    hints: Sequence[str] = ()  # the idea first, then closer; never the whole code
    solution: str = ""  # shown only on request (Lesson.solution)
    hint: str = ""  # a single hint (older checkers); used when `hints` is empty
    key: str = ""  # the name the lesson's registry knows it by (set by Lesson)
    _step: int = field(default=0, init=False, repr=False)

    def _hint_list(self) -> list[str]:
        return list(self.hints) or ([self.hint] if self.hint else [])

    def next_hint(self) -> str:
        """The next hint, with its step; once all are shown, the last again and where to find a solution."""
        hints = self._hint_list()
        how = f"ex.solution({self.key!r})" if self.key else "the lesson's solution(...)"
        if self._step < len(hints):
            self._step += 1
            step = f"  ({self._step}/{len(hints)}: run the check again for the next hint)" if len(hints) > 1 else ""
            return f"Hint: {hints[self._step - 1]}{step}"
        if hints:
            return f"Hint: {hints[-1]}  (that was the last hint: {how} prints a solution)"
        return f"To see a solution, run {how}."

    def _unanswered(self) -> Feedback:
        return Feedback(False, False, f"✏️  {self.name}: not answered yet.\n   {self.next_hint()}")

    def solution_text(self) -> str:
        return self.solution or "(no written solution: see the solutions notebook)"

    def _fail(self, message: str, mistake: str | None = None) -> Feedback:
        return Feedback(False, True, f"❌ {self.name}: {message}", mistake)

    def _verdict(self, judge: Callable[[], Feedback], verbose: bool) -> Feedback:
        """judge()'s verdict, printed when verbose; a checker that fails itself says so instead of raising."""
        with _quiet():
            try:
                feedback = judge()
            except Exception as exc:  # a bug in a checker must not look like the learner's
                feedback = Feedback(
                    False, True, f"⚠️  {self.name}: the checker itself failed ({type(exc).__name__}: {exc})."
                )
        if verbose:
            print(feedback.message)
        return feedback


# ---------------------------------------------------------------------------------------------------------
# Exercise: a function the learner writes
# ---------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Causal:
    """Where the tokens are, for the causality perturbation: tokens after t may change, outputs up to t may not."""

    arg: int | Sequence[int] = 0  # which argument(s) hold the tokens (each perturbed the same way)
    token_axis: int = -2  # the token axis in those arguments
    out_token_axis: int = -2  # the token axis of the output


_OUTPUTS = ("array", "bool_mask", "scalar")


@dataclass(kw_only=True)
class Exercise(_Hinted):
    reference: Callable  # the correct function
    cases: Callable[[np.random.Generator], list[tuple]]  # seeded argument tuples, from a generator
    mistakes: Sequence[Mistake] = ()  # known wrong answers, checked in order
    output: str = "array"  # "array", "bool_mask" (True = may attend) or "scalar"
    causal: Causal | None = None  # check that outputs never depend on future tokens
    atol: float | None = None  # None: follow the answer's dtype; a number loosens (never tightens) that
    rtol: float | None = None
    time_limit: float = 10.0  # seconds per call of the learner's function
    seed: int = 0  # the cases' generator seed

    def __post_init__(self) -> None:
        if self.output not in _OUTPUTS:
            raise ValueError(f"output must be one of {_OUTPUTS}, got {self.output!r}")

    # -- comparison ------------------------------------------------------------------------------------------

    def _tolerance(self, dtype_name: str | None) -> tuple[float, float]:
        atol, rtol = tolerance_for(dtype_name)
        return max(atol, self.atol or 0.0), max(rtol, self.rtol or 0.0)

    def _close(self, a, b, dtype_name: str | None = None) -> bool:
        """Same shape and values; NaN matches NaN (a naive softmax's overflow is a mistake to name)."""
        if a is None or b is None or a.shape != b.shape:
            return False
        atol, rtol = self._tolerance(dtype_name)
        with np.errstate(all="ignore"):
            return bool(np.allclose(a, b, atol=atol, rtol=rtol, equal_nan=True))

    def _outcome(self, fn: Callable, args: tuple) -> tuple[np.ndarray | None, str | None]:
        """fn's output on args as an array and its dtype name, or (None, None) when it fails in any way."""
        try:
            value, error = run_guarded(fn, args, self.time_limit)
        except NotImplementedError:
            return None, None
        if error is not None:
            return None, None
        arr, _ = as_answer_array(value)
        return arr, _dtype_name(value)

    def _diagnose(self, fn: Callable, cases: list[tuple]) -> Mistake | None:
        """The first known mistake that behaves as the learner's function on every case.

        Behaving the same means the same output, or both failing (transposed (d_k, d_in) weights only run when
        d_k == d_in: on the other cases the mistake and the learner's function both fail).
        """
        outcomes = [self._outcome(fn, args) for args in cases]
        if all(out is None for out, _ in outcomes):
            return None
        for mistake in self.mistakes:
            wrongs = [self._outcome(mistake.wrong, args)[0] for args in cases]
            if all(
                (out is None and w is None) or self._close(out, w, dtype) for (out, dtype), w in zip(outcomes, wrongs)
            ):
                return mistake
        return None

    # -- the verdict -----------------------------------------------------------------------------------------

    def check(self, fn: Callable, verbose: bool = True) -> Feedback:
        """Run `fn` on every case; print and return the verdict. Never raises, never writes to stderr."""
        return self._verdict(lambda: self._check(fn), verbose)

    def _check(self, fn: Callable) -> Feedback:
        if not callable(fn):
            return self._fail(f"expected a function, got {type(fn).__name__}.")
        cases = self.cases(np.random.default_rng(self.seed))
        for n, args in enumerate(cases, start=1):
            expected = _reference_array(self.reference(*copy.deepcopy(args)))
            try:
                raw, error = run_guarded(fn, args, self.time_limit)
            except NotImplementedError:
                return self._unanswered()
            where = f" (your function received {_describe(args)})"
            if error is not None:  # a known mistake may fail here and run elsewhere (transposed weights)
                mistake = self._diagnose(fn, cases) if "did not finish" not in error else None
                if mistake is not None:
                    return self._fail(f"{mistake.name}. {mistake.explanation}", mistake.name)
                return self._fail(f"{error}\n   on case {n}{where}.")
            problem = self._answer_problem(raw, expected)
            if problem is not None:
                return self._fail(problem[0] + where, problem[1])
            got, _ = as_answer_array(raw)
            dtype = _dtype_name(raw)
            if got is not None and self._close(got, expected, dtype):
                continue
            mistake = self._diagnose(fn, cases)
            if mistake is not None:
                return self._fail(f"{mistake.name}. {mistake.explanation}", mistake.name)
            return self._wrong_values(fn, cases, n, args, got, expected)
        if self.causal is not None:
            leak = self._causal_leak(fn, cases)
            if leak is not None:
                return self._fail(leak, "looks at future tokens")
        return Feedback(True, True, f"✅ {self.name}: correct on all {len(cases)} test cases.")

    def _answer_problem(self, raw, expected: np.ndarray) -> tuple[str, str | None] | None:
        """(message, mistake name) when the answer is of the wrong kind, before any value is compared."""
        got, problem = as_answer_array(raw)
        if got is None:
            return problem or "the answer is not an array.", "not an array of numbers"
        dtype = _dtype_name(raw) or str(got.dtype)
        if self.output == "scalar":
            if isinstance(raw, (bool, np.bool_)):
                return f"returned a bool ({raw}), expected a number.", "a bool instead of a number"
            if got.size != 1:
                return f"returned shape {shape_of(got)}, expected a single number.", None
            return None
        if self.output == "bool_mask":
            if dtype != "bool":
                only_01 = got.size > 0 and bool(np.isin(got, (0.0, 1.0)).all())
                if only_01 and "float" in dtype:
                    return (
                        f"returned a float 0/1 mask (dtype {dtype}). In SDPA a float mask is *added* to the scores, "
                        "so adding 0 or 1 masks nothing: return a boolean mask (dtype bool, True = may attend).",
                        "a float mask instead of a boolean one",
                    )
                return (
                    f"returned dtype {dtype}; a mask must be boolean (True = may attend).",
                    "not a boolean mask",
                )
            if got.shape == expected.shape and expected.size > 1 and np.array_equal(got, 1.0 - expected):
                return (
                    "the mask is inverted: here, as in torch's SDPA, True means *may attend* and False means masked.",
                    "mask polarity inverted",
                )
            return None
        if dtype == "bool" and expected.size > 1 and not np.isin(expected, (0.0, 1.0)).all():
            return f"returned a boolean array, expected numbers (shape {shape_of(expected)}).", None
        return None

    def _wrong_values(self, fn, cases, n, args, got, expected) -> Feedback:
        where = f"case {n} (your function received {_describe(args)})"
        if got.shape != expected.shape:
            extra = ""
            if got.ndim == 2 and got.shape == expected.T.shape:
                extra = " It is the transpose of the expected shape: rows and columns swapped?"
            return self._fail(f"returned shape {shape_of(got)}, expected {shape_of(expected)} on {where}.{extra}")
        if self.causal is not None:
            leak = self._causal_leak(fn, cases)
            if leak is not None:
                return self._fail(leak, "looks at future tokens")
        bad = ~np.isfinite(got) & np.isfinite(expected)
        if bad.any():
            idx = tuple(int(i) for i in np.argwhere(bad)[0])
            return self._fail(
                f"returned {got[idx]} at index {idx} on {where}, expected the finite value {expected[idx]:.4g}. "
                "An overflow, or 0 / 0 on a row with nothing to attend to?",
                "NaN or inf in the output",
            )
        err = np.abs(got - expected)
        idx = tuple(int(i) for i in np.unravel_index(np.nanargmax(np.where(np.isnan(err), np.inf, err)), err.shape))
        return self._fail(f"wrong values on {where}: at index {idx} got {got[idx]:.4g}, expected {expected[idx]:.4g}.")

    def _causal_leak(self, fn: Callable, cases: list[tuple]) -> str | None:
        """Change the tokens after t; a causal function's outputs up to t stay put. A message when they move."""
        spec = self.causal
        assert spec is not None
        arg_ids = [spec.arg] if isinstance(spec.arg, int) else list(spec.arg)
        rng = np.random.default_rng(self.seed + 1)
        for args in cases:
            n_tokens = args[arg_ids[0]].shape[spec.token_axis]
            if n_tokens < 2:
                continue
            t = n_tokens // 2 - 1 if n_tokens > 2 else 0  # tokens 0..t are the past
            before, _ = self._outcome(fn, args)
            changed = list(copy.deepcopy(args))
            for i in arg_ids:
                changed[i] = _perturb_after(changed[i], t, spec.token_axis, rng)
            after, _ = self._outcome(fn, tuple(changed))
            if before is None or after is None or before.shape != after.shape:
                continue
            past = [slice(None)] * before.ndim
            past[spec.out_token_axis] = slice(0, t + 1)
            a, b = before[tuple(past)], after[tuple(past)]
            if not np.allclose(a, b, atol=1e-6, rtol=1e-5, equal_nan=True):
                return (
                    f"looks at future tokens (not causal): changing only the tokens after position {t} changed "
                    f"the outputs at positions 0..{t} (inputs of shapes {_describe(args)}). Output i may depend on "
                    "tokens 0..i only: "
                    "leave every key j > i out of what query i sees."
                )
        return None


def _perturb_after(x, t: int, axis: int, rng: np.random.Generator):
    """x with new random values at positions > t along `axis` (NumPy or torch, dtype kept)."""
    n = x.shape[axis]
    where = [slice(None)] * x.ndim
    where[axis] = slice(t + 1, n)
    index = tuple(where)
    if hasattr(x, "detach"):
        import torch

        x = x.detach().clone()
        noise = torch.from_numpy(rng.normal(size=tuple(x[index].shape))).to(x.dtype) * 3.0 + 1.0
        x[index] = noise
        return x
    x = np.array(x, copy=True)
    x[index] = rng.normal(size=x[index].shape) * 3.0 + 1.0
    return x


# ---------------------------------------------------------------------------------------------------------
# Prediction: a number or a choice written down before the measurement
# ---------------------------------------------------------------------------------------------------------

_KINDS = ("int", "float", "bool", "choice")


@dataclass(kw_only=True)
class Prediction(_Hinted):
    kind: str = "float"  # "int", "float", "bool" or "choice"
    choices: Sequence | None = None  # the allowed answers of a "choice"
    abs_tol: float = 0.0  # how close counts as right
    rel_tol: float = 0.0
    explanation: str = ""  # why the measurement comes out as it does, shown once the prediction is checked

    def __post_init__(self) -> None:
        if self.kind not in _KINDS:
            raise ValueError(f"kind must be one of {_KINDS}, got {self.kind!r}")
        if self.kind == "choice" and not self.choices:
            raise ValueError("a 'choice' prediction needs its choices")

    def _read(self, value, what: str) -> tuple[Any, str | None]:
        """The value as this kind, or why it is not one."""
        if self.kind == "choice":
            assert self.choices is not None
            for choice in self.choices:
                if value == choice or (
                    isinstance(value, str) and isinstance(choice, str) and value.strip().lower() == choice.lower()
                ):
                    return choice, None
            return None, f"{what} {value!r} is not one of the choices {list(self.choices)}."
        if isinstance(value, str):
            plain = "True or False" if self.kind == "bool" else "the number"
            return None, f"{what} is the string {value!r}: write {plain} without quotes."
        if self.kind == "bool":
            if isinstance(value, (bool, np.bool_)):
                return bool(value), None
            return None, f"{what} must be True or False, got {type(value).__name__} {value!r}."
        if isinstance(value, (bool, np.bool_)):
            return None, f"{what} is a bool ({value}), expected a number."
        if hasattr(value, "shape") and hasattr(value, "item"):  # a NumPy scalar, a 0-d array, a one-element tensor
            if math.prod(value.shape) != 1:
                return None, f"{what} must be a single number, got shape {shape_of(value)}."
            value = value.item()
        if not isinstance(value, (int, float, np.integer, np.floating)):
            return None, f"{what} must be a number, got {type(value).__name__}."
        if not math.isfinite(float(value)):
            return None, f"{what} must be a finite number, got {value}."
        if self.kind == "int":
            if float(value) != int(value):
                return None, f"{what} must be a whole number, got {value}."
            return int(value), None
        return float(value), None

    def check(self, predicted, measured, verbose: bool = True) -> Feedback:
        """Compare the learner's stored prediction with the measurement; print and return the verdict."""
        with _quiet():
            feedback = self._check(predicted, measured)
        if verbose:
            print(feedback.message)
        return feedback

    def _check(self, predicted, measured) -> Feedback:
        if predicted is None or predicted is Ellipsis:
            return self._unanswered()
        truth, problem = self._read(measured, "the measurement")
        if problem is not None:  # the lesson's bug, said as such
            return Feedback(False, True, f"⚠️  {self.name}: cannot compare: {problem}")
        guess, problem = self._read(predicted, "your prediction")
        if problem is not None:
            return Feedback(False, True, f"❌ {self.name}: {problem}", "not a valid prediction")
        if self.kind in ("int", "float"):
            close = abs(guess - truth) <= max(self.abs_tol, self.rel_tol * abs(truth))
            allowed = max(self.abs_tol, self.rel_tol * abs(truth))
            margin = (
                "" if close else f" (within ±{allowed:.3g} counts)" if allowed else " (only the exact value counts)"
            )
        else:
            close, margin = guess == truth, ""
        why = f"\n   {self.explanation}" if self.explanation else ""
        if close:
            return Feedback(True, True, f"✅ {self.name}: you predicted {guess}, measured {truth}.{why}")
        return Feedback(
            False, True, f"❌ {self.name}: you predicted {guess}, measured {truth}{margin}.{why}", "prediction off"
        )


# ---------------------------------------------------------------------------------------------------------
# A lesson's exercises, by key
# ---------------------------------------------------------------------------------------------------------


class Lesson:
    """A lesson's exercises by key: `hint(key)` prints the next hint, `solution(key)` prints a solution."""

    def __init__(self, exercises: Mapping[str, _Hinted]):
        self.exercises = dict(exercises)
        for key, exercise in self.exercises.items():
            exercise.key = key

    def keys(self) -> list[str]:
        return list(self.exercises)

    def _get(self, key) -> _Hinted | None:
        return self.exercises.get(key) if isinstance(key, str) else None

    def hint(self, key: str) -> None:
        """Print the next hint of exercise `key`."""
        exercise = self._get(key)
        if exercise is None:
            print(f"No exercise named {key!r} here; the exercises are {self.keys()}.")
            return
        print(f"{exercise.name}: {exercise.next_hint()}")

    def solution(self, key: str) -> None:
        """Print a solution of exercise `key` (try the hints first)."""
        exercise = self._get(key)
        if exercise is None:
            print(f"No exercise named {key!r} here; the exercises are {self.keys()}.")
            return
        print(f"A solution to “{exercise.name}”:\n\n{exercise.solution_text()}")
