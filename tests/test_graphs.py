"""course_utils.graphs: the karate club, graph attention (dot and GAT's additive score), training, drawing."""

import matplotlib.pyplot as plt
import pytest
import torch

from course_utils import graphs
from course_utils.attention import graph_mask


def test_karate_club_data():
    club = graphs.karate_club(labelled_per_class=2, seed=0)
    assert club.features.shape == (34, 34) and club.adjacency.shape == (34, 34)
    assert torch.equal(club.adjacency, club.adjacency.T) and club.adjacency.diagonal().sum() == 0
    assert int(club.adjacency.sum()) == 2 * 78
    assert torch.bincount(club.labels).tolist() == [17, 17]
    assert club.labels[0] == 0 and club.labels[33] == 1  # the two leaders
    assert int(club.train.sum()) == 4 and bool(club.train[0]) and bool(club.train[33])
    assert torch.equal(club.test, ~club.train)
    assert torch.bincount(club.labels[club.train]).tolist() == [2, 2]
    with pytest.raises(ValueError, match="labelled_per_class"):
        graphs.karate_club(labelled_per_class=0)


@pytest.mark.parametrize("score", ["dot", "additive"])
def test_masked_model_attends_only_along_edges(score):
    club = graphs.karate_club(seed=1)
    torch.manual_seed(0)
    model = graphs.GraphAttentionClassifier(34, 2, club.adjacency, graphs.GraphModelConfig(score=score))
    assert model(club.features[None]).shape == (1, 34, 2)
    allowed = graph_mask(club.adjacency)
    for weights in model.attention_maps(club.features[None]):
        assert weights.shape == (1, 2, 34, 34)
        assert (weights[0][:, ~allowed] == 0).all()
        torch.testing.assert_close(weights.sum(-1), torch.ones(1, 2, 34), atol=1e-5, rtol=0)


def test_additive_attention_gives_zero_rows_to_isolated_nodes():
    torch.manual_seed(0)
    gat = graphs.AdditiveGraphAttention(8, num_heads=2)
    adj = torch.zeros(4, 4)
    adj[0, 1] = adj[1, 0] = 1
    mask = graph_mask(adj, self_loops=False)  # nodes 2 and 3 have no edge
    x = torch.randn(1, 4, 8)
    w = gat.attention_weights(x, attn_mask=mask)
    assert torch.equal(w[0, :, 2], torch.zeros(2, 4)) and torch.equal(w[0, :, 3], torch.zeros(2, 4))
    out = gat(x, attn_mask=mask)
    assert torch.isfinite(out).all()
    with pytest.raises(ValueError, match="causal"):
        gat(x, is_causal=True)


def test_unmasked_model_is_plain_attention_on_the_complete_graph():
    club = graphs.karate_club(seed=0)
    complete = torch.ones(34, 34) - torch.eye(34)
    torch.manual_seed(0)
    plain = graphs.GraphAttentionClassifier(34, 2, None)
    torch.manual_seed(0)
    full = graphs.GraphAttentionClassifier(34, 2, complete)
    with torch.no_grad():
        torch.testing.assert_close(full(club.features[None]), plain(club.features[None]), atol=1e-6, rtol=0)


def test_training_learns_the_labelled_nodes_and_rejects_bad_input():
    club = graphs.karate_club(seed=0)
    torch.manual_seed(0)
    model = graphs.GraphAttentionClassifier(34, 2, club.adjacency)
    losses = graphs.train_node_classifier(model, club, steps=60, lr=1e-2, seed=0)
    assert len(losses) == 60 and losses[-1] < losses[0]
    assert graphs.node_accuracy(model, club, nodes=club.train) == 1.0
    with pytest.raises(ValueError, match=r"features must have shape|features must be a tensor"):
        model(torch.randn(34, 34))
    with pytest.raises(ValueError, match="score"):
        graphs.GraphAttentionClassifier(34, 2, None, graphs.GraphModelConfig(score="cosine"))


def test_draw_graph_returns_fig_ax():
    club = graphs.karate_club(seed=0)
    fig, ax = graphs.draw_graph(club, torch.zeros(34, dtype=torch.long), title="t")
    assert ax.get_title() == "t"
    plt.close(fig)
    with pytest.raises(ValueError, match=r"predictions must have shape \(34,\)"):
        graphs.draw_graph(club, torch.zeros(3))


def test_additive_graph_attention_checks_its_inputs():
    with pytest.raises(ValueError, match=r"num_heads must be a positive int, got 0"):
        graphs.AdditiveGraphAttention(4, num_heads=0)  # was a ZeroDivisionError
    att = graphs.AdditiveGraphAttention(4, num_heads=2)
    x = torch.randn(1, 3, 4)
    bad = x.clone()
    bad[0, 1, 2] = float("nan")
    with pytest.raises(ValueError, match=r"x must hold finite values .* shape \(1, 3, 4\)"):
        att(bad)
    with pytest.raises(ValueError, match=r"x must have shape \(B, N, d_model=4\), got \(1, 3, 5\)"):
        att(torch.randn(1, 3, 5))
    with pytest.raises(TypeError, match=r"is_causal must be a bool"):
        att(x, is_causal="no")
    with pytest.raises(ValueError, match=r"attn_mask must broadcast to the scores' shape \(1, 2, 3, 3\)"):
        att(x, attn_mask=torch.ones(4, 4, dtype=torch.bool))


def test_additive_graph_attention_adds_a_float_mask():
    """A float mask is added (SDPA's polarity): 0 where allowed, -inf where not; it crashed on ~ before."""
    torch.manual_seed(0)
    att = graphs.AdditiveGraphAttention(4, num_heads=2)
    x = torch.randn(2, 5, 4)
    allowed = graph_mask(torch.tensor([[0, 1, 0, 0, 0], [1, 0, 1, 0, 0], [0, 1, 0, 0, 0], [0] * 5, [0] * 5]))
    additive = torch.zeros(5, 5).masked_fill(~allowed, float("-inf"))
    assert torch.equal(att(x, attn_mask=additive), att(x, attn_mask=allowed))
