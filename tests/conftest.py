"""Shared test set-up: a headless matplotlib, and Triton's interpreter when there is no GPU."""

import os

import matplotlib

matplotlib.use("Agg")

import torch  # noqa: E402

# course_utils.gpu reads this when it is first imported: without a GPU its kernels run in the interpreter.
if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")
