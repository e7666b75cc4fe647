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
