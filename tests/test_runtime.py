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


def test_triton_problem_names_a_triton_too_old_for_the_kernels(monkeypatch):
    import importlib.metadata

    from course_utils import runtime

    real = importlib.metadata.version
    fake = {"triton": "3.1.0"}
    monkeypatch.setattr(importlib.metadata, "version", lambda name: fake.get(name) or real(name))
    assert "Triton 3.1.0 is older than the kernels need" in runtime.triton_problem()
    fake["triton"] = "3.6.0"
    monkeypatch.setenv("TRITON_INTERPRET", "1")
    problem = runtime.triton_problem()
    numpy_new = tuple(int(p) for p in runtime.np.__version__.split(".")[:2]) >= (2, 4)
    assert (problem is not None and "interpreter fails with numpy" in problem) if numpy_new else problem is None
    fake["triton"] = "3.9.0"
    assert runtime.triton_problem() is None
