import numpy as np
import pytest
import torch

from course_utils import data
from course_utils.tasks.delay import delayed_copy_batch


def test_one_hot_columns():
    I = data.one_hot(["b", "a", "b"], ["a", "b"])
    np.testing.assert_array_equal(I, [[0, 1, 0], [1, 0, 1]])


def test_embeddings_put_related_words_together():
    E, words, axes = data.toy_embeddings(["cat", "dog", "apple"])
    assert E.shape == (3, 3) and axes == ("animal", "food", "action")
    cos = lambda a, b: a @ b / np.linalg.norm(a) / np.linalg.norm(b)
    assert cos(E[:, 0], E[:, 1]) > cos(E[:, 0], E[:, 2])


def test_frames_are_25ms_every_10ms():
    x = np.arange(16000.0)
    F = data.frame_signal(x, 16000)
    assert F.shape == (400, 98)
    np.testing.assert_array_equal(F[:, 3], x[480:880])
    assert data.frame_spectra(F).shape == (201, 98)


def test_chirp_rises():
    wave = data.chirp(1.0, 8000, 100.0, 1000.0)
    assert wave.shape == (8000,)
    crossings = np.diff(np.signbit(wave)).nonzero()[0]
    assert np.diff(crossings)[:10].mean() > 3 * np.diff(crossings)[-10:].mean()


def test_molecule_valence():
    atoms, X, A = data.molecule("water")
    assert atoms == ["O", "H", "H"] and X.shape == (3, 3)
    np.testing.assert_array_equal(A.sum(axis=0), [2, 1, 1])


def test_delayed_copy_targets():
    x, y = delayed_copy_batch(5, torch.Generator().manual_seed(0), length=8, delay=3)
    assert (y[:, :3] == -100).all() and torch.equal(y[:, 3:], x[:, :5])


@pytest.mark.parametrize(
    "call,error,words",
    [
        (lambda: data.one_hot(["z"], ["a"]), ValueError, "['z'] are not in vocab"),
        (lambda: data.one_hot([], ["a"]), ValueError, "non-empty"),
        (lambda: data.frame_signal(np.ones(10), 16000), ValueError, "shorter than one window of 400"),
        (lambda: data.frame_signal(np.ones((2, 500)), 16000), ValueError, "signal must have 1"),
        (lambda: data.frame_signal(np.ones(500), 0), ValueError, "sample_rate"),
        (lambda: data.adjacency_from_edges([(0, 5)], 3), ValueError, "(0, 5)"),
        (lambda: data.molecule("benzene"), ValueError, "benzene"),
        (lambda: data.toy_embeddings(["zebra"]), ValueError, "zebra"),
        (lambda: delayed_copy_batch(2, torch.Generator(), length=4, delay=4), ValueError, "delay"),
    ],
)
def test_bad_inputs(call, error, words):
    with pytest.raises(error) as info:
        call()
    assert words in str(info.value)
