"""environment.yml / environment-test.yml (conda) and pyproject.toml (pip) declare the same dependencies."""

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


def _conda(name: str = "environment.yml") -> tuple[dict[str, str], list[str]]:
    env = yaml.safe_load((ROOT / name).read_text())
    conda, pip = {}, []
    for dep in env["dependencies"]:
        if isinstance(dep, dict):
            pip += dep["pip"]
        else:
            dep_name, spec = _split(dep)
            conda[CONDA_TO_PYPI.get(dep_name, dep_name)] = spec
    return conda, pip


@pytest.mark.parametrize(
    "name, extras", [("environment.yml", ["lab"]), ("environment-test.yml", ["lab", "test"])]
)
def test_environment_matches_pyproject(name, extras):
    """conda's list is the package's dependencies plus the extras (markers dropped: conda has none)."""
    project = _pyproject()
    requirements = project["dependencies"] + [r for e in extras for r in project["optional-dependencies"][e]]
    expected = dict(_split(r) for r in requirements)
    conda, pip = _conda(name)
    assert conda.pop("python") == project["requires-python"]
    assert conda.pop("pip") == ""
    missing = {k: v for k, v in expected.items() if conda.get(k) != v}
    extra = {k: v for k, v in conda.items() if expected.get(k) != v}
    assert not missing and not extra, f"{name} and pyproject.toml ({'+'.join(['dependencies', *extras])}) disagree: " \
        f"pyproject has {missing}, {name} has {extra}"
    assert pip == ["--editable ."], f"{name} must install course_utils itself, editable"


def test_declared_lower_bounds_are_the_tested_ones():
    """The floors test-compat's oldest environment installs (torch 2.2 and matplotlib 3.7 fail lessons)."""
    deps = dict(_split(r) for r in _pyproject()["dependencies"])
    assert deps["torch"] == ">=2.5" and deps["matplotlib"] == ">=3.9" and deps["numpy"] == ">=1.24"
    oldest = (ROOT / "tools" / "test_compat.sh").read_text()
    for name, spec in deps.items():
        assert f"{name}=={spec.removeprefix('>=')}" in oldest, name


def test_gpu_extra_spans_the_triton_that_supported_torch_releases_pin():
    """torch 2.10/2.11 pin triton 3.6.0, 2.12-2.13 3.7.x, 2.14 3.8.0, 2.15 3.9.0 (TOOLCHAIN.md): all inside the range."""
    from packaging.requirements import Requirement

    (gpu,) = _pyproject()["optional-dependencies"]["gpu"]
    spec = Requirement(gpu).specifier
    assert all(v in spec for v in ("3.6.0", "3.7.0", "3.7.1", "3.8.0", "3.9.0")) and "3.5.0" not in spec


def test_license_is_an_spdx_string_with_a_setuptools_that_takes_it():
    with open(ROOT / "pyproject.toml", "rb") as f:
        data = tomllib.load(f)
    assert data["project"]["license"] == "MIT"
    (req,) = [r for r in data["build-system"]["requires"] if r.startswith("setuptools")]
    assert req == "setuptools>=77"


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
