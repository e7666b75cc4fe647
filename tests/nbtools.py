"""Read a lesson's own definitions, so tests can compare a function a lesson derives with the package's."""

from __future__ import annotations

import ast
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]


def code_cells(path: Path) -> list[str]:
    nb = nbformat.read(ROOT / path, as_version=4)
    return [c.source for c in nb.cells if c.cell_type == "code"]


def notebook_definitions(path: str | Path) -> dict:
    """Execute only the imports and top-level `def`/`class` statements of a notebook; return the namespace."""
    namespace: dict = {}
    for source in code_cells(Path(path)):
        lines = [ln for ln in source.splitlines() if not ln.lstrip().startswith(("%", "!"))]
        try:
            tree = ast.parse("\n".join(lines))
        except SyntaxError:
            continue
        keep = [n for n in tree.body if isinstance(n, (ast.FunctionDef, ast.ClassDef, ast.Import, ast.ImportFrom))]
        exec(compile(ast.Module(body=keep, type_ignores=[]), str(path), "exec"), namespace)
    return namespace
