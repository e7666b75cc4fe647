import numpy as np

from course_utils.exercises import Exercise, Mistake


def _cases(rng):
    return [(rng.normal(size=(3, 4)),), (rng.normal(size=(2, 5)),)]


EX = Exercise(
    name="double",
    reference=lambda x: 2 * x,
    cases=_cases,
    mistakes=[Mistake("tripled", lambda x: 3 * x, "Multiply by two."), Mistake("transposed", lambda x: 2 * x.T, "Keep the shape.")],
    hint="return 2 * x",
)


def test_correct_answer_passes(capsys):
    feedback = EX.check(lambda x: x + x)
    assert feedback and feedback.answered and "✅" in capsys.readouterr().out


def test_unanswered_prints_the_hint_and_does_not_raise(capsys):
    def stub(x):
        raise NotImplementedError

    feedback = EX.check(stub)
    assert not feedback and not feedback.answered
    assert "return 2 * x" in capsys.readouterr().out


def test_known_mistakes_are_named():
    assert EX.check(lambda x: 3 * x, verbose=False).mistake == "tripled"
    assert EX.check(lambda x: 2 * x.T, verbose=False).mistake == "transposed"


def test_a_mistake_is_named_only_when_it_explains_every_case():
    def half_tripled(x):  # tripled on the first case only
        return 3 * x if x.shape == (3, 4) else x

    feedback = EX.check(half_tripled, verbose=False)
    assert not feedback and feedback.mistake is None and "wrong values" in feedback.message


def test_other_failures_are_explained_in_words():
    assert "returned None" in EX.check(lambda x: None, verbose=False).message
    assert "raised ZeroDivisionError" in EX.check(lambda x: 1 / 0, verbose=False).message
    assert "returned shape (3,)" in EX.check(lambda x: x[:, 0], verbose=False).message
    wrong = EX.check(lambda x: 2 * x + (x > 1), verbose=False)
    assert "wrong values on case" in wrong.message and "expected" in wrong.message
    assert "expected a function" in EX.check(42, verbose=False).message


def test_torch_outputs_are_accepted():
    import torch

    assert EX.check(lambda x: torch.tensor(2 * x), verbose=False)
    assert isinstance(np.asarray(EX.cases(np.random.default_rng(0))[0][0]), np.ndarray)
