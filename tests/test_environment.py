"""environment.yml (conda) and pyproject.toml (pip) declare the same dependencies."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
CONDA_TO_PYPI = {"pytorch": "torch"}  # conda-forge names that differ from PyPI's


def _split(requirement: str) -> tuple[str, str]:
    name, spec = re.match(r"^\s*([A-Za-z0-9_.-]+)\s*(.*)$", requirement.split(";")[0]).groups()
    return name.lower(), spec.replace(" ", "")


def _pyproject() -> dict:
    with open(ROOT / "pyproject.toml", "rb") as f:
        return tomllib.load(f)["project"]


def _conda() -> tuple[dict[str, str], list[str]]:
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    conda, pip = {}, []
    for dep in env["dependencies"]:
        if isinstance(dep, dict):
            pip += dep["pip"]
        else:
            name, spec = _split(dep)
            conda[CONDA_TO_PYPI.get(name, name)] = spec
    return conda, pip


def test_environment_matches_pyproject():
    project = _pyproject()
    expected = dict(_split(r) for r in project["dependencies"] + project["optional-dependencies"]["lab"])
    conda, pip = _conda()
    assert conda.pop("python") == project["requires-python"]
    assert conda.pop("pip") == ""
    assert conda == expected, "environment.yml and pyproject.toml (dependencies + lab extra) disagree"
    assert pip == ["--editable ."], "environment.yml must install course_utils itself, editable"


@pytest.mark.slow
def test_environment_resolves_with_pip(tmp_path):
    """pip's resolver accepts environment.yml's list (conda can't run here): a dry run, nothing installed."""
    conda, _ = _conda()
    conda.pop("python")
    conda.pop("pip")
    requirements = [f"{name}{spec}" for name, spec in conda.items()]
    result = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed", "--quiet",
         "-c", str(ROOT / ".ci" / "constraints.txt"), "--report", str(tmp_path / "report.json"), *requirements],
        capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "torch" in (tmp_path / "report.json").read_text()
