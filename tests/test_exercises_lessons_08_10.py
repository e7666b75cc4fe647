"""Lessons 08 and 10's checkers: the solutions pass, each named mistake is diagnosed by name, and bad answers
(wrong types, dtypes, complex, NaN, float or inverted masks, exceptions, timeouts) get a readable verdict."""

import dataclasses
import math
import time

import numpy as np
import pytest
import torch
from checker_asserts import assert_diagnosed, assert_passes, unanswered

from course_utils import vision
from course_utils.exercises import lesson08, lesson10


def _run_solution(source: str, name: str):
    namespace = {"torch": torch, "math": math}
    exec(source, namespace)  # the solution text the learner gets from ex.solution(...)
    return namespace[name]


# Correct answers -------------------------------------------------------------------------------------------


def _conv_by_heads(image, kernel):  # the solution, written as the lesson's solutions notebook writes it
    C_in, H, W = image.shape
    padded = torch.nn.functional.pad(image, (1, 1, 1, 1))  # (C_in, H + 2, W + 2)
    out = image.new_zeros(kernel.shape[0], H, W)  # (C_out, H, W)
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            shifted = padded[:, 1 + dy : 1 + dy + H, 1 + dx : 1 + dx + W]  # (C_in, H, W)
            out += torch.einsum("oc,chw->ohw", kernel[:, :, dy + 1, dx + 1], shifted)
    return out


def _conv_by_masks(image, kernel):  # through section 2's masks: one-hot attention per head
    C_in, H, W = image.shape
    x = image.reshape(C_in, H * W).T  # (N, C_in)
    out = torch.zeros(H * W, kernel.shape[0], dtype=image.dtype)  # (N, C_out)
    for dy, dx in vision.kernel_offsets(3):
        head = vision.relative_position_mask(H, W, dy, dx).to(image.dtype) @ x  # (N, N) @ (N, C_in)
        out += head @ kernel[:, :, dy + 1, dx + 1].T  # (N, C_in) @ (C_in, C_out)
    return out.T.reshape(-1, H, W)


def _graph_attention_loop(q, k, v, mask):  # written differently from the reference, still right
    scores = (q @ k.T / math.sqrt(q.shape[-1])).masked_fill(~mask, float("-inf"))
    return torch.nan_to_num(torch.softmax(scores, dim=-1)) @ v


def _reach_by_power(edges, n, layers):
    step = torch.eye(n)
    for i, j in edges:
        step[i, j] = step[j, i] = 1.0
    return torch.linalg.matrix_power(step, layers) > 0


def test_solutions_pass(capsys):
    assert_passes(lesson08.check_image_to_vectors(vision.image_to_vectors), capsys)
    assert_passes(lesson08.check_relative_position_mask(vision.relative_position_mask), capsys)
    assert_passes(lesson08.check_conv3x3_by_heads(lesson08.conv3x3_by_heads), capsys)
    assert_passes(lesson10.check_reach_mask(lesson10.reach_mask), capsys)
    assert_passes(lesson10.check_graph_attention(lesson10.graph_attention), capsys)


def test_other_correct_answers_pass(capsys):
    assert_passes(lesson08.check_image_to_vectors(lambda im: im.flatten(2).transpose(1, 2)), capsys)
    assert_passes(lesson08.check_conv3x3_by_heads(_conv_by_heads), capsys)
    assert_passes(lesson08.check_conv3x3_by_heads(_conv_by_masks), capsys)
    assert_passes(lesson10.check_graph_attention(_graph_attention_loop), capsys)
    assert_passes(lesson10.check_reach_mask(_reach_by_power), capsys)


def _conv_float32(image, kernel):
    return _conv_by_heads(image.float(), kernel.float())  # (C_out, H, W) float32


def _graph_attention_float32(q, k, v, mask):
    return _graph_attention_loop(q.float(), k.float(), v.float(), mask)  # (n, d_v) float32


def test_float32_answers_pass(capsys):
    assert_passes(lesson08.check_conv3x3_by_heads(_conv_float32), capsys)
    assert_passes(lesson10.check_graph_attention(_graph_attention_float32), capsys)


@pytest.mark.parametrize(
    "lesson,key,name,check",
    [
        (lesson08, "image_to_vectors", "my_image_to_vectors", lesson08.check_image_to_vectors),
        (lesson08, "relative_position_mask", "my_relative_position_mask", lesson08.check_relative_position_mask),
        (lesson08, "conv3x3_by_heads", "my_conv3x3_by_heads", lesson08.check_conv3x3_by_heads),
        (lesson10, "reach_mask", "my_reach_mask", lesson10.check_reach_mask),
        (lesson10, "graph_attention", "my_graph_attention", lesson10.check_graph_attention),
    ],
)
def test_each_solution_text_passes(lesson, key, name, check, capsys):
    lesson.solution(key)
    source = lesson.LESSON.exercises[key].solution
    assert name in capsys.readouterr().out  # printed on request
    assert_passes(check(_run_solution(source, name)), capsys)


def test_predictions_measured_right_and_wrong(capsys):
    assert lesson08.check_empty_rows(86, 86)
    assert not lesson08.check_empty_rows(90, 86)
    assert lesson10.check_layers(3, 3)
    wrong = lesson10.check_layers(2, 3)
    assert not wrong and wrong.answered
    assert "3" in capsys.readouterr().out


def test_the_predictions_solutions_match_the_lessons_measurements():
    # lesson 08: count the fully masked (query, head) rows of the 5x10 layer, as the lesson measures them
    layer = vision.ConvAsAttention.from_conv(torch.nn.Conv2d(3, 4, 3, padding=1), 5, 10)
    weights = layer.attention_weights()[0]  # (heads, N, N)
    assert int((weights.sum(-1) == 0).sum()) == 86
    assert lesson08.LESSON.exercises["empty_rows"].solution.endswith("86")
    # lesson 10: the hop distance from node 4 to node 0 in section 1's graph
    edges = [(0, 1), (1, 2), (1, 3), (2, 3), (3, 4)]
    reached = [bool(lesson10.reach_mask(edges, 6, layers)[0, 4]) for layers in range(5)]
    assert reached.index(True) == 3
    assert lesson10.LESSON.exercises["layers"].solution.startswith("3")


# Named mistakes --------------------------------------------------------------------------------------------


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


def _true_convolution(image, kernel):  # the textbook convolution: the kernel flipped
    return _conv_by_heads(image, kernel.flip(-1, -2))


def _rolled(image, kernel):
    out = 0
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            shifted = torch.roll(image, shifts=(-dy, -dx), dims=(1, 2))  # pixel p + (dy, dx), wrapping around
            out = out + torch.einsum("oc,chw->ohw", kernel[:, :, dy + 1, dx + 1], shifted)
    return out


def _conv_dy_dx_swapped(image, kernel):
    return _conv_by_heads(image, kernel.transpose(2, 3))


def _conv_channels_swapped(image, kernel):
    C_in, H, W = image.shape
    padded = torch.nn.functional.pad(image, (1, 1, 1, 1))
    out = 0
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            shifted = padded[:, 1 + dy : 1 + dy + H, 1 + dx : 1 + dx + W]
            out = out + torch.einsum("co,chw->ohw", kernel[:, :, dy + 1, dx + 1], shifted)  # fails unless C_in == C_out
    return out


def _exact_walks(edges, n, layers):
    adjacency = torch.zeros(n, n)
    for i, j in edges:
        adjacency[i, j] = adjacency[j, i] = 1.0
    return torch.linalg.matrix_power(adjacency, layers) > 0


def _reach_one_way(edges, n, layers):
    step = torch.eye(n)
    for i, j in edges:
        step[i, j] = 1.0
    return torch.linalg.matrix_power(step, layers) > 0


def _after_softmax(q, k, v, mask):
    return (torch.softmax(q @ k.T / math.sqrt(q.shape[-1]), dim=-1) * mask) @ v


def _times_mask(q, k, v, mask):
    return torch.softmax(q @ k.T / math.sqrt(q.shape[-1]) * mask, dim=-1) @ v


def _plus_mask(q, k, v, mask):
    return torch.softmax(q @ k.T / math.sqrt(q.shape[-1]) + mask, dim=-1) @ v


def _naive_masked(q, k, v, mask):
    scores = (q @ k.T / math.sqrt(q.shape[-1])).masked_fill(~mask, float("-inf"))
    return torch.softmax(scores, dim=-1) @ v


def _minus_1e9(q, k, v, mask):
    scores = (q @ k.T / math.sqrt(q.shape[-1])).masked_fill(~mask, -1e9)
    return torch.softmax(scores, dim=-1) @ v


def _inverted(q, k, v, mask):
    return _graph_attention_loop(q, k, v, ~mask)


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
            lesson08.check_conv3x3_by_heads,
            _true_convolution,
            "the kernel flipped (each head reads pixel p - delta, not p + delta)",
        ),
        (
            lesson08.check_conv3x3_by_heads,
            _rolled,
            "the shifts wrap around the image's edges (torch.roll instead of zero padding)",
        ),
        (lesson08.check_conv3x3_by_heads, _conv_dy_dx_swapped, "dy and dx swapped (the kernel transposed)"),
        (lesson08.check_conv3x3_by_heads, _conv_channels_swapped, "input and output channels swapped in W^O's slices"),
        (
            lesson10.check_reach_mask,
            _exact_walks,
            "walks of exactly `layers` edges (the adjacency's power, without self-loops)",
        ),
        (lesson10.check_reach_mask, lambda e, n, layers: _reach_by_power(e, n, layers - 1), "one layer too few"),
        (lesson10.check_reach_mask, lambda e, n, layers: _reach_by_power(e, n, layers + 1), "one layer too many"),
        (lesson10.check_reach_mask, _reach_one_way, "only one direction of each edge"),
        (
            lesson10.check_reach_mask,
            lambda e, n, layers: _reach_by_power(e, n, layers).fill_diagonal_(False),
            "the diagonal left False (a node does not reach itself)",
        ),
        (lesson10.check_graph_attention, _after_softmax, "mask applied after the softmax"),
        (lesson10.check_graph_attention, _times_mask, "multiplying the scores by the mask"),
        (lesson10.check_graph_attention, _plus_mask, "adding a boolean mask"),
        (lesson10.check_graph_attention, _naive_masked, "NaN for an isolated node (a fully masked row)"),
        (
            lesson10.check_graph_attention,
            _minus_1e9,
            "forbidden scores filled with a large finite number (an isolated node averages every node)",
        ),
        (lesson10.check_graph_attention, _inverted, "wrong polarity (attending to the non-neighbours)"),
        (
            lesson10.check_graph_attention,
            lambda q, k, v, m: torch.softmax(q @ k.T / math.sqrt(q.shape[-1]), -1) @ v,
            "the mask is ignored (a complete graph)",
        ),
        (
            lesson10.check_graph_attention,
            lambda q, k, v, m: torch.nan_to_num(torch.softmax((q @ k.T).masked_fill(~m, -math.inf), -1)) @ v,
            "missing the 1/sqrt(d) scale",
        ),
    ],
)
def test_each_named_mistake_is_diagnosed(check, wrong, mistake, capsys):
    assert_diagnosed(check(wrong), mistake, capsys)


# Robustness: every bad answer gets a verdict, nothing crashes, nothing on stderr ---------------------------


def _verdict(feedback, capsys, *words: str) -> str:
    captured = capsys.readouterr()
    assert not feedback.passed and feedback.answered, feedback.message
    assert captured.err == "", captured.err
    message = feedback.message.lower()
    assert any(w in message for w in words), feedback.message
    return feedback.message


@pytest.mark.parametrize(
    "check,good",
    [
        (lesson08.check_image_to_vectors, vision.image_to_vectors),
        (lesson08.check_relative_position_mask, vision.relative_position_mask),
        (lesson08.check_conv3x3_by_heads, lesson08.conv3x3_by_heads),
        (lesson10.check_reach_mask, lesson10.reach_mask),
        (lesson10.check_graph_attention, lesson10.graph_attention),
    ],
)
def test_wrong_types_get_a_verdict(check, good, capsys):
    _verdict(check(lambda *a: "1070"), capsys, "str")
    _verdict(check(lambda *a: {"answer": good(*a)}), capsys, "dict")
    _verdict(check(lambda *a: iter(good(*a).tolist())), capsys, "iterator", "generator", "list_iterator")
    _verdict(check(lambda *a: None), capsys, "none", "return")
    _verdict(check(lambda *a: 1 / 0), capsys, "zerodivisionerror")
    _verdict(check("not a function"), capsys, "function", "callable")


@pytest.mark.parametrize(
    "check,good",
    [
        (lesson08.check_image_to_vectors, vision.image_to_vectors),
        (lesson08.check_conv3x3_by_heads, lesson08.conv3x3_by_heads),
        (lesson10.check_graph_attention, lesson10.graph_attention),
    ],
)
def test_complex_and_nan_answers_get_a_verdict(check, good, capsys):
    _verdict(check(lambda *a: good(*a).to(torch.complex128)), capsys, "complex")

    def with_nan(*args):
        out = good(*args).clone()
        out[(0,) * out.ndim] = float("nan")
        return out

    _verdict(check(with_nan), capsys, "nan")


def test_shapes_quoted_are_the_learners(capsys):
    message = _verdict(lesson08.check_conv3x3_by_heads(lambda image, kernel: image), capsys, "received")
    assert "(2, 5, 3)" in message and "(2, 2, 3, 3)" in message  # the first case's image and kernel


@pytest.mark.parametrize(
    "check,good",
    [
        (lesson08.check_relative_position_mask, vision.relative_position_mask),
        (lesson10.check_reach_mask, lesson10.reach_mask),
    ],
)
def test_masks_float_and_inverted_are_named(check, good, capsys):
    _verdict(check(lambda *a: good(*a).float()), capsys, "float")  # a float 0/1 mask is not a boolean mask
    _verdict(check(lambda *a: good(*a).long()), capsys, "bool", "int")
    _verdict(check(lambda *a: ~good(*a)), capsys, "polarity", "invert")  # True must mean "may attend"


def test_graph_attention_polarity_is_checked(capsys):
    # An answer that reads False as "may attend" fails, whatever else it gets right.
    assert_diagnosed(
        lesson10.check_graph_attention(_inverted), "wrong polarity (attending to the non-neighbours)", capsys
    )


def test_the_cases_hold_an_isolated_node_and_it_gets_zeros():
    cases = lesson10.GRAPH_ATTENTION.cases(np.random.default_rng(0))
    isolated = [case for case in cases if not case[3].any(-1).all()]
    assert isolated  # at least one fully masked row, so a NaN there is caught
    for q, k, v, mask in isolated:
        out = lesson10.graph_attention(q, k, v, mask)
        empty = ~mask.any(-1)
        assert torch.equal(out[empty], torch.zeros_like(out[empty]))


def test_a_hanging_answer_times_out(capsys):
    quick = dataclasses.replace(lesson08.CONV3X3_BY_HEADS, time_limit=0.2)

    def hangs(image, kernel):
        time.sleep(5)
        return lesson08.conv3x3_by_heads(image, kernel)

    start = time.perf_counter()
    _verdict(quick.check(hangs), capsys, "did not finish")
    assert time.perf_counter() - start < 3


def test_unanswered_exercises_give_stepped_hints(capsys):
    for check in (
        lesson08.check_image_to_vectors,
        lesson08.check_relative_position_mask,
        lesson08.check_conv3x3_by_heads,
        lesson10.check_reach_mask,
        lesson10.check_graph_attention,
    ):
        first, second = check(unanswered), check(unanswered)
        assert not first and not first.answered and not second.answered
        assert first.message != second.message  # the next hint, not the same one
        out = capsys.readouterr().out
        assert "def my_" not in out  # no solution before it is asked for
    for check in (lesson08.check_empty_rows, lesson10.check_layers):
        feedback = check(None, 3)
        assert not feedback and not feedback.answered
        assert "def " not in capsys.readouterr().out


def test_predictions_reject_bad_types(capsys):
    _verdict(lesson10.check_layers("3", 3), capsys, "str", "string")
    _verdict(lesson10.check_layers(True, 3), capsys, "bool")
    _verdict(lesson08.check_empty_rows(float("nan"), 86), capsys, "nan")
