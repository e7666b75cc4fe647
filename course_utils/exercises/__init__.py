"""Exercise checkers, one module per lesson (`lesson01`, `lesson02`, ...) on top of `base.Exercise`."""

from .base import Exercise, Feedback, Mistake

__all__ = ["Exercise", "Feedback", "Mistake"]
