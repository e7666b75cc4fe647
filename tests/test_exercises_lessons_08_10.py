"""Lessons 08 and 10's checkers: the solutions pass, and each named mistake is diagnosed by name."""

import math

import pytest
import torch

from course_utils import vision
from course_utils.exercises import lesson08, lesson10


def test_solutions_pass():
    assert lesson08.check_image_to_vectors(vision.image_to_vectors)
    assert lesson08.check_relative_position_mask(vision.relative_position_mask)
    assert lesson10.check_mask_from_edges(lesson10.mask_from_edges)
    assert lesson10.check_graph_attention(lesson10.graph_attention)


def _loop_graph_attention(q, k, v, mask):  # written differently from the reference, still right
    scores = (q @ k.T / math.sqrt(q.shape[-1])).masked_fill(~mask, float("-inf"))
    return torch.softmax(scores, dim=-1) @ v


def test_other_correct_answers_pass():
    assert lesson10.check_graph_attention(_loop_graph_attention)
    assert lesson08.check_image_to_vectors(lambda im: im.flatten(2).transpose(1, 2))


def _plain_reshape(images):
    B, C, H, W = images.shape
    return images.reshape(B, H * W, C)


def _column_major(images):
    B, C, H, W = images.shape
    return images.permute(0, 3, 2, 1).reshape(B, W * H, C)


def _channels_as_vectors(images):
    return images.flatten(2)  # (B, C, H*W)


def _flat_offset(height, width, dy, dx):
    n = height * width
    return torch.arange(n)[None, :] == torch.arange(n)[:, None] + dy * width + dx


def _no_self_loops(edges, n):
    mask = torch.zeros(n, n, dtype=torch.bool)
    for i, j in edges:
        mask[i, j] = mask[j, i] = True
    return mask


def _one_way(edges, n):
    mask = torch.eye(n, dtype=torch.bool)
    for i, j in edges:
        mask[i, j] = True
    return mask


def _after_softmax(q, k, v, mask):
    return (torch.softmax(q @ k.T / math.sqrt(q.shape[-1]), dim=-1) * mask) @ v


def _inverted(q, k, v, mask):
    return _loop_graph_attention(q, k, v, ~mask)


@pytest.mark.parametrize(
    "check,wrong,mistake",
    [
        (lesson08.check_image_to_vectors, _plain_reshape, "reshaped without moving the channels last"),
        (lesson08.check_image_to_vectors, _column_major, "height and width swapped (pixels read column by column)"),
        (lesson08.check_image_to_vectors, _channels_as_vectors, "one vector per channel instead of one per pixel"),
        (lesson08.check_relative_position_mask, _flat_offset, "the offset wraps around the image's edge"),
        (
            lesson08.check_relative_position_mask,
            lambda h, w, dy, dx: vision.relative_position_mask(h, w, -dy, -dx),
            "queries and keys swapped (the opposite offset)",
        ),
        (
            lesson08.check_relative_position_mask,
            lambda h, w, dy, dx: vision.relative_position_mask(h, w, dx, dy),
            "dy and dx swapped",
        ),
        (
            lesson08.check_relative_position_mask,
            lambda h, w, dy, dx: ~vision.relative_position_mask(h, w, dy, dx),
            "wrong polarity (True where attention is forbidden)",
        ),
        (lesson10.check_mask_from_edges, _no_self_loops, "no self-loops"),
        (
            lesson10.check_mask_from_edges,
            lambda e, n: ~lesson10.mask_from_edges(e, n),
            "wrong polarity (True where attention is forbidden)",
        ),
        (lesson10.check_mask_from_edges, _one_way, "only one direction of each edge"),
        (lesson10.check_graph_attention, _after_softmax, "mask applied after the softmax"),
        (lesson10.check_graph_attention, _inverted, "wrong polarity (attending to the non-neighbours)"),
        (
            lesson10.check_graph_attention,
            lambda q, k, v, m: torch.softmax(q @ k.T / math.sqrt(q.shape[-1]), -1) @ v,
            "the mask is ignored (a complete graph)",
        ),
        (
            lesson10.check_graph_attention,
            lambda q, k, v, m: torch.softmax((q @ k.T).masked_fill(~m, -math.inf), -1) @ v,
            "missing the 1/sqrt(d) scale",
        ),
    ],
)
def test_each_named_mistake_is_diagnosed(check, wrong, mistake, capsys):
    feedback = check(wrong)
    assert not feedback and feedback.answered and feedback.mistake == mistake
    assert mistake in capsys.readouterr().out


def test_unanswered_exercises_print_a_hint(capsys):
    def stub(*args):
        raise NotImplementedError

    for check in (
        lesson08.check_image_to_vectors,
        lesson08.check_relative_position_mask,
        lesson10.check_mask_from_edges,
        lesson10.check_graph_attention,
    ):
        feedback = check(stub)
        assert not feedback and not feedback.answered
        assert "Hint" in capsys.readouterr().out
