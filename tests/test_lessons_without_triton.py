"""Every notebook that uses the GPU code runs top to bottom where Triton cannot be imported (macOS, Windows,
conda's CPU PyTorch), and says what it skips.

The notebooks are found by scanning their sources (any notebook that imports `course_utils.gpu` or
`course_utils.flash_teaching`, lessons and solutions), so a lesson added later is covered without editing this
file. Each runs in a fresh Jupyter kernel whose start-up (a `sitecustomize` put first on PYTHONPATH) sets
`sys.modules["triton"] = None`: `import triton` then raises ModuleNotFoundError and
`importlib.util.find_spec("triton")` returns None, exactly as where Triton is not installed. Outputs are not
compared (they differ from the stored ones by design); the test asserts that no cell raised, that Triton really
was blocked inside the kernel, and that the notebook printed why it skipped something. Nothing here skips,
under CI=true or not.
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")) + sorted(
    (ROOT / "notebooks" / "solutions").glob("[0-9][0-9]_*_solutions.ipynb")
)
# `course_utils.gpu`, `from course_utils import attention, gpu`, `from course_utils.gpu import ...`, and the teaching
# kernel of lesson 07 (it needs Triton too).
USES_GPU = re.compile(
    r"\bcourse_utils\.(gpu|flash_teaching)\b|^\s*from\s+course_utils\s+import\s+[^\n]*\b(gpu|flash_teaching)\b",
    re.MULTILINE,
)

SITECUSTOMIZE = '''"""Test start-up: Triton cannot be imported in this interpreter (tests/test_lessons_without_triton.py)."""
import importlib.machinery
import importlib.util
import os
import sys

for _name in [m for m in sys.modules if m == "triton" or m.startswith("triton.")]:
    del sys.modules[_name]
sys.modules["triton"] = None  # import triton -> ModuleNotFoundError; find_spec("triton") -> None

# Chain to a sitecustomize this one shadows, if the interpreter has one.
_here = os.path.dirname(os.path.abspath(__file__))
_spec = importlib.machinery.PathFinder.find_spec(
    "sitecustomize", [p for p in sys.path if os.path.abspath(p or ".") != _here]
)
if _spec is not None and _spec.loader is not None:
    _spec.loader.exec_module(importlib.util.module_from_spec(_spec))
'''

PROBE = (
    "import importlib.util, sys\n"
    "print('TRITON BLOCKED:', sys.modules.get('triton', 0) is None and importlib.util.find_spec('triton') is None)"
)
SKIP_SAID = re.compile(r"skip", re.IGNORECASE)


def gpu_notebooks() -> list[Path]:
    """The notebooks whose code imports the GPU module or the teaching kernel."""
    found = []
    for path in NOTEBOOKS:
        nb = nbformat.read(path, as_version=4)
        if any(c.cell_type == "code" and USES_GPU.search(c.source) for c in nb.cells):
            found.append(path)
    return found


def _stdout(nb) -> list[str]:
    lines = []
    for cell in nb.cells:  # a cell's stream may come in pieces: join them before splitting lines
        text = "".join(
            out["text"] for out in cell.get("outputs", []) if out.get("output_type") == "stream" and out["name"] == "stdout"
        )
        lines += text.splitlines()
    return lines


def test_the_scan_finds_lesson_07_and_its_solutions():
    names = {p.name for p in gpu_notebooks()}
    assert "07_self_attention_on_a_gpu.ipynb" in names, names
    assert "07_self_attention_on_a_gpu_solutions.ipynb" in names, names


def run_notebook(path: Path, workdir: Path, monkeypatch, block_triton: bool = True) -> tuple[list[str], float]:
    """Execute a notebook top to bottom in a fresh kernel (Triton blocked unless told otherwise); (stdout, seconds).

    Raises nbclient's CellExecutionError, naming the cell and its traceback, if any cell raises.
    """
    if block_triton:
        (workdir / "sitecustomize.py").write_text(SITECUSTOMIZE)
        rest = os.environ.get("PYTHONPATH")  # kept after it: course_utils may come from there, not the environment
        monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(workdir), *([rest] if rest else [])]))
        monkeypatch.delenv("TRITON_INTERPRET", raising=False)  # as on a learner's machine
    monkeypatch.setenv("MPLBACKEND", "Agg")
    nb = nbformat.read(path, as_version=4)
    nb.cells.insert(0, nbformat.v4.new_code_cell(PROBE))
    start = time.perf_counter()
    NotebookClient(
        nb, timeout=300, kernel_name="python3", allow_errors=False, resources={"metadata": {"path": str(path.parent)}}
    ).execute()
    return _stdout(nb), time.perf_counter() - start


@pytest.mark.parametrize("path", gpu_notebooks(), ids=lambda p: p.name)
def test_runs_top_to_bottom_without_triton(path: Path, tmp_path: Path, monkeypatch):
    lines, seconds = run_notebook(path, tmp_path, monkeypatch)
    assert lines[0] == "TRITON BLOCKED: True", lines[:3]
    said = [ln for ln in lines if SKIP_SAID.search(ln)]
    assert said, f"{path.name} ran without Triton but never said what it skipped"
    assert any("Triton" in ln for ln in said), f"{path.name}: no skip message names Triton: {said}"
    print(f"{path.name}: {seconds:.1f} s without Triton; skip messages:", *said, sep="\n  ")
