import random

import numpy as np
import pytest
import torch

from course_utils import runtime


def test_device_prefers_cuda_then_mps_then_cpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert runtime.device().type == "cuda"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    assert runtime.device().type == "mps"
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    assert runtime.device().type == "cpu"
    assert runtime.device("cpu").type == "cpu"
    with pytest.raises(ValueError, match="prefer"):
        runtime.device("tpu")


def test_seed_everything_makes_every_generator_repeat():
    def draw():
        return random.random(), np.random.rand(), torch.rand(1).item()

    runtime.seed_everything(7)
    first = draw()
    runtime.seed_everything(7)
    assert draw() == first
    runtime.seed_everything(8)
    assert draw() != first
    with pytest.raises(ValueError, match="seed"):
        runtime.seed_everything(-1)


def test_colab_detection(monkeypatch):
    monkeypatch.delenv("COLAB_RELEASE_TAG", raising=False)
    assert not runtime.in_colab()
    monkeypatch.setenv("COLAB_RELEASE_TAG", "release-colab-2026")
    assert runtime.in_colab()


def test_summary_names_versions_and_device():
    text = runtime.summary()
    for word in ("python", "numpy", torch.__version__, "device", "colab"):
        assert word in text
