"""Every notebook follows the lesson template and the output policy (COURSE.md)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
import nb as nbtool  # noqa: E402

LESSONS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
SOLUTIONS = sorted((ROOT / "notebooks" / "solutions").glob("[0-9][0-9]_*_solutions.ipynb"))
ALL = LESSONS + SOLUTIONS


def _cells(path: Path) -> list[dict]:
    return json.loads(path.read_text())["cells"]


def _src(cell) -> str:
    return "".join(cell["source"])


def test_there_are_lessons_and_each_has_solutions():
    assert LESSONS, "no lesson in notebooks/"
    for lesson in LESSONS:
        expected = ROOT / "notebooks" / "solutions" / f"{lesson.stem}_solutions.ipynb"
        assert expected.exists(), f"{lesson.name} has no solutions notebook {expected.name}"


@pytest.mark.parametrize("path", ALL, ids=lambda p: p.name)
def test_template(path: Path):
    cells = _cells(path)
    code = [c for c in cells if c["cell_type"] == "code" and _src(c).strip()]
    assert BADGE in _src(cells[0]), "the first cell must be the Open-in-Colab badge"
    assert _src(cells[0]) == nbtool.badge_source(path), "badge out of date: run `make sync`"
    boot = [c for c in code if _src(c).startswith(nbtool.BOOTSTRAP_FIRST_LINE)]
    assert len(boot) == 1 and _src(boot[0]) == nbtool.bootstrap_source(), "bootstrap cell missing or out of date"
    runtime = [c for c in code if nbtool.RUNTIME_MARKER in _src(c)]
    assert runtime and "NBVAL_IGNORE_OUTPUT" in _src(runtime[0]), "the runtime cell must exist and be ignored"
    assert any("seed_everything" in _src(c) for c in code[:4]), "seeds must be set in the first cells"
    heading = "## Solutions" if path in SOLUTIONS else "## Exercises"
    assert any(c["cell_type"] == "markdown" and heading in _src(c) for c in cells), f"no '{heading}' section"


@pytest.mark.parametrize("path", ALL, ids=lambda p: p.name)
def test_output_policy(path: Path):
    cells = _cells(path)
    code = [c for c in cells if c["cell_type"] == "code" and _src(c).strip()]
    assert all(c.get("execution_count") for c in code), "committed unexecuted: run `make execute`"
    counts = [c["execution_count"] for c in code]
    assert counts == list(range(1, len(code) + 1)), "cells were not executed top to bottom in one run"
    for c in code:
        for out in c.get("outputs", []):
            assert out["output_type"] != "error", f"stored error output in cell: {_src(c)[:80]!r}"
            if out["output_type"] == "stream" and out["name"] == "stderr":
                assert "NBVAL_IGNORE_OUTPUT" in _src(c), f"stderr in a compared cell: {_src(c)[:80]!r}"
    ignored = [c for c in code if "NBVAL_IGNORE_OUTPUT" in _src(c) or "NBVAL_SKIP" in _src(c)]
    assert 3 * len(ignored) <= len(code), f"{len(ignored)} of {len(code)} code cells ignored or skipped (max 1/3)"
    meta = json.loads(path.read_text())["metadata"]
    assert "version" not in meta.get("language_info", {}), "per-machine metadata: run `make execute`"
    assert all("execution" not in c.get("metadata", {}) for c in cells), "execution timestamps stored"


BADGE = nbtool.BADGE_IMAGE
