"""Exercise checkers, one module per lesson (`lesson01`, `lesson02`, ...) on top of `base`.

`base.Exercise` checks a function the learner writes, `base.Prediction` a number written down before a
measurement; `base.Lesson` holds a lesson's exercises by key for its `hint(key)` and `solution(key)`.
"""

from .base import Causal, Exercise, Feedback, Lesson, Mistake, Prediction

__all__ = ["Causal", "Exercise", "Feedback", "Lesson", "Mistake", "Prediction"]
