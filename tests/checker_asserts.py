"""Assertions shared by the checker tests: a named mistake is diagnosed and printed; a solution passes."""

from __future__ import annotations


def assert_diagnosed(feedback, mistake: str, capsys) -> None:
    """The checker failed the function, named `mistake`, and printed that name for the learner."""
    printed = capsys.readouterr().out
    assert not feedback.passed and feedback.answered
    assert feedback.mistake == mistake, feedback.message
    assert mistake in printed  # the learner reads the mistake's name


def assert_passes(feedback, capsys) -> None:
    """The checker accepted the function and printed a success line."""
    printed = capsys.readouterr().out
    assert feedback.passed, feedback.message
    assert printed.startswith("✅")


def unanswered(*args):
    """A stub as the lessons ship it."""
    raise NotImplementedError


def assert_verdict(feedback, capsys, *words: str, mistake: str | None = None) -> None:
    """Failed, answered, printed, and the printed verdict contains every word (and names `mistake` if given)."""
    printed = capsys.readouterr().out
    assert not feedback.passed and feedback.answered, feedback.message
    assert printed.startswith("❌"), printed
    for word in words:
        assert word in printed, (word, printed)
    if mistake is not None:
        assert feedback.mistake == mistake, feedback.message


def assert_hints_in_steps(exercises) -> None:
    """Each exercise's three hints come one check at a time, the idea first; the solution never uninvited."""
    import copy

    for exercise in exercises:
        fresh = copy.copy(exercise)
        fresh._step = 0
        messages = [
            (
                fresh.check(unanswered, verbose=False)
                if hasattr(fresh, "reference")
                else fresh.check(None, 1, verbose=False)
            ).message
            for _ in range(4)
        ]
        for step, hint in enumerate(fresh.hints[:3], start=1):
            assert hint in messages[step - 1] and f"({step}/3" in messages[step - 1]
        assert f"ex.solution({exercise.key!r})" in messages[3]
        assert not any(fresh.solution in m for m in messages)  # the solution never appears uninvited
        assert "np." not in fresh.hints[0]  # the first hint is the idea, not code


def assert_registered(lesson, keys, exercises) -> None:
    """The lesson registers exactly these exercises, each with three hints and a written solution."""
    assert lesson.keys() == keys
    for exercise in exercises:
        assert len(exercise.hints) == 3 and exercise.solution, exercise.name
        assert lesson.exercises[exercise.key] is exercise


def assert_written_solutions_pass(lesson, builds, capsys) -> None:
    """Each build exercise's solution text is printed on request, and it passes its own checker."""
    import numpy as np

    for key, check in builds.items():
        lesson.solution(key)
        source = lesson.exercises[key].solution
        assert source in capsys.readouterr().out
        namespace: dict = {"np": np}
        exec(source, namespace)
        fn = next(v for k, v in namespace.items() if callable(v) and k != "np")
        assert_passes(check(fn), capsys)
