"""Lesson 09's trained claim on several seeds (make test-slow): attention holds up, the LSTM falls away.

The same assertions as the lesson's cell after the recall experiment, on seeds 0-4.
"""

import numpy as np
import pytest

from course_utils.recurrent import RecallComparison, compare_on_recall


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1, 2, 3, 4])
def test_attention_holds_up_lstm_falls_away(seed):
    result = compare_on_recall(RecallComparison(), seed=seed, progress=False)
    p = result.parameters
    assert abs(p["LSTM"] - p["self-attention"]) <= 0.1 * p["self-attention"]
    acc_attention = np.array(result.accuracy["self-attention"])
    acc_lstm = np.array(result.accuracy["LSTM"])
    report = f"seed {seed}: attention {acc_attention.round(2)}, LSTM {acc_lstm.round(2)}"
    assert acc_attention.min() >= 0.9, report
    assert acc_lstm[0] >= 0.8, report
    assert acc_lstm[0] - acc_lstm[-1] >= 0.25, report
    assert acc_attention[-1] - acc_lstm[-1] >= 0.3, report
