"""course_utils.recurrent: the LSTM side of lesson 09, parameter matching and sequential-step counting."""

import pytest
import torch

from course_utils.recurrent import (
    LSTMClassifier,
    RecallComparison,
    best_time,
    compare_on_recall,
    graph_depth,
    lstm_parameter_count,
    matched_hidden_size,
    recall_transformer,
)
from course_utils.training import count_parameters


@pytest.mark.parametrize("d_in, hidden, n_classes, n", [(5, 7, 3, 6), (21, 33, 4, 1), (2, 1, 2, 9)])
def test_unrolled_equals_fused_lstm(d_in, hidden, n_classes, n):
    torch.manual_seed(0)
    model = LSTMClassifier(d_in, hidden, n_classes).double()
    x = torch.randn(3, n, d_in, dtype=torch.float64)
    fused, unrolled = model(x), model.unrolled(x)
    assert fused.shape == unrolled.shape == (3, n_classes)
    torch.testing.assert_close(unrolled, fused, atol=1e-12, rtol=1e-10)


@pytest.mark.parametrize("d_in, hidden, n_classes", [(5, 7, 3), (21, 33, 4), (1, 1, 2)])
def test_parameter_count_formula(d_in, hidden, n_classes):
    assert lstm_parameter_count(d_in, hidden, n_classes) == count_parameters(LSTMClassifier(d_in, hidden, n_classes))


def test_matched_hidden_size_is_the_closest():
    transformer = recall_transformer(21, 4, d_model=32, num_heads=1, d_ff=32)
    target = count_parameters(transformer)
    assert target == 7364  # 21*32+32 (embed) + 4*32*32+4*32 (attention) + 2*32*32+64 (MLP) + 4*64 (LNs) + 132 (head)
    hidden = matched_hidden_size(target, 21, 4)
    best = min(range(1, 200), key=lambda h: abs(lstm_parameter_count(21, h, 4) - target))
    assert hidden == best == 33
    assert abs(lstm_parameter_count(21, hidden, 4) - target) <= 0.1 * target


def test_recall_transformer_shapes():
    model = recall_transformer(9, 3, d_model=8, num_heads=2, d_ff=16)
    assert model(torch.zeros(5, 4, 9)).shape == (5, 3)


def test_graph_depth_of_a_chain_and_of_a_leaf():
    w = torch.ones(3, requires_grad=True)
    assert graph_depth(w) == 0
    y = w
    for _ in range(10):
        y = y * 2  # ten dependent multiplications
    # ten MulBackward nodes, then AccumulateGrad
    assert graph_depth(y) == 11
    assert graph_depth(y + y.exp()) == 13  # the longer branch (exp) counts, not the sum of branches


def test_rnn_depth_grows_with_n_attention_depth_does_not():
    torch.manual_seed(0)
    lstm, attention = LSTMClassifier(6, 8, 2), recall_transformer(6, 2, d_model=8, d_ff=8)
    rnn = [graph_depth(lstm.unrolled(torch.randn(1, n, 6))) for n in (4, 8, 16, 500)]
    per_token = (rnn[1] - rnn[0]) // 4
    assert per_token > 1 and rnn == [rnn[0] + per_token * (n - 4) for n in (4, 8, 16, 500)]
    att = {graph_depth(attention(torch.randn(1, n, 6))) for n in (4, 8, 16, 500)}
    assert len(att) == 1


def test_compare_on_recall_runs_and_reports():
    config = RecallComparison(lengths=(1, 3), n_keys=4, n_values=2, d_model=8, d_ff=8, steps=3, n_test=20)
    result = compare_on_recall(config, seed=0, progress=False)
    assert result.lengths == (1, 3)
    assert set(result.accuracy) == set(result.parameters) == {"self-attention", "LSTM"}
    assert all(len(a) == 2 and all(0 <= v <= 1 for v in a) for a in result.accuracy.values())
    assert all(len(losses) == 3 for losses in result.losses.values())
    p = result.parameters
    assert abs(p["LSTM"] - p["self-attention"]) <= 0.1 * p["self-attention"]


def test_best_time():
    assert 0 <= best_time(lambda: sum(range(100)), repeats=2) < 1
    with pytest.raises(ValueError, match="repeats"):
        best_time(lambda: None, repeats=0)
    with pytest.raises(TypeError, match="fn must be callable"):
        best_time(3)


def test_bad_arguments():
    model = LSTMClassifier(4, 5, 2)
    with pytest.raises(ValueError, match=r"x must have shape \(B, N >= 1, d_in=4\), got \(2, 3, 5\)"):
        model(torch.zeros(2, 3, 5))
    with pytest.raises(ValueError, match=r"got \(3, 4\)"):
        model.unrolled(torch.zeros(3, 4))
    with pytest.raises(TypeError, match="floating-point"):
        model(torch.zeros(2, 3, 4, dtype=torch.long))
    with pytest.raises(TypeError, match="x must be a torch.Tensor"):
        model.unrolled([[0.0]])
    with pytest.raises(ValueError, match="hidden"):
        LSTMClassifier(4, 0, 2)
    with pytest.raises(ValueError, match="n_params"):
        matched_hidden_size(0, 4, 2)
    with pytest.raises(TypeError, match="output must be a torch.Tensor"):
        graph_depth(3.0)
    with pytest.raises(TypeError, match="config must be a RecallComparison"):
        compare_on_recall({"steps": 3})
    with pytest.raises(ValueError, match="seed"):
        compare_on_recall(RecallComparison(steps=1), seed=-1)
