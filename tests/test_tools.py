"""The notebook tooling: one repository address drives every badge, bootstrap cell and README link."""

import os
import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
import nb as nbtool  # noqa: E402


def test_everything_is_in_sync_with_pyproject():
    assert nbtool.cmd_sync(nbtool.all_notebooks(), check_only=True) == 0


def test_badge_and_bootstrap_follow_the_repository(monkeypatch):
    monkeypatch.setattr(nbtool, "repository", lambda: "https://github.com/someone/fork")
    path = ROOT / "notebooks" / "01_sequences_as_vector_sets.ipynb"
    assert "github/someone/fork/blob/main/notebooks/01_sequences_as_vector_sets.ipynb" in nbtool.badge_source(path)
    assert "git+https://github.com/someone/fork.git" in nbtool.bootstrap_source()
    readme = "[x](https://colab.research.google.com/github/a/b/blob/main/notebooks/01.ipynb) https://github.com/a/b."
    assert nbtool.readme_synced(readme) == (
        "[x](https://colab.research.google.com/github/someone/fork/blob/main/notebooks/01.ipynb) "
        "https://github.com/someone/fork."
    )


def test_sync_repairs_a_stale_notebook(tmp_path, monkeypatch):
    path = ROOT / "notebooks" / "01_sequences_as_vector_sets.ipynb"
    nb = nbformat.read(path, as_version=4)
    nb.cells[0].source = "[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](old)"
    assert "badge cell out of date" in nbtool.synced(nb, path)
    assert nbtool.synced(nb, path) == []


def test_bootstrap_pins_the_installed_torch():
    source = nbtool.bootstrap_source()
    assert 'pins.write(f"torch=={version(\'torch\')}\\n")' in source
    assert '"-c", pins.name' in source and "COURSE_UTILS_SOURCE" in source
    compile(source, "bootstrap", "exec")


def test_clean_metadata_drops_per_machine_facts():
    nb = nbformat.v4.new_notebook()
    nb.metadata["language_info"] = {"name": "python", "version": "3.11.7"}
    nb.cells = [nbformat.v4.new_code_cell("1", metadata={"execution": {"iopub.execute_input": "2026"}})]
    nbtool.clean_metadata(nb)
    assert nb.metadata["language_info"] == {"name": "python"} and "execution" not in nb.cells[0].metadata


# ---------------------------------------------------------------------------------------------------------
# tools/course.py: the Makefile's lab and test without make (Windows)
# ---------------------------------------------------------------------------------------------------------


def _make_dry_run(*targets: str, done: tuple[str, ...] = (".venv/.installed", "chromium")) -> list[list[str]]:
    """The commands `make -n` prints for targets, those in `done` taken as made; redirections dropped."""
    import shlex
    import subprocess

    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MAKELEVEL", "MFLAGS")}  # under make test
    out = subprocess.run(["make", "-n", "--no-print-directory", *(f"--assume-old={t}" for t in done), *targets],
                         cwd=ROOT, capture_output=True, text=True, check=True, env=env).stdout
    return [shlex.split(line.split(">/dev/null")[0], comments=True) for line in out.splitlines() if line.strip()]


def _course_dry_run(*args: str) -> list[list[str]]:
    import shlex
    import subprocess

    out = subprocess.run([sys.executable, str(ROOT / "tools" / "course.py"), *args, "--dry-run"], cwd=ROOT,
                         capture_output=True, text=True, check=True).stdout
    return [shlex.split(line, posix=True) for line in out.splitlines()]


def test_course_py_runs_what_the_makefile_runs():
    """`python tools/course.py test|lab` prints (with --dry-run) exactly the commands `make test|lab` runs."""
    import shutil

    if shutil.which("make") is None:
        import pytest

        pytest.skip("make is not installed: nothing to compare with")
    assert _course_dry_run("test") == _make_dry_run("test")
    assert _course_dry_run("lab") == _make_dry_run("lab")
    setup = _make_dry_run("-B", ".venv/.installed", done=())  # -B: print the set-up recipe even though it is done
    for cmd in _course_dry_run("setup")[1:]:  # pip install and the kernel registration, as make runs them
        assert cmd in setup, cmd


def test_course_py_uses_scripts_on_windows():
    sys.path.insert(0, str(ROOT / "tools"))
    import course

    assert course.venv_bin("python", windows=True) == ".venv\\Scripts\\python.exe"
    assert course.venv_bin("jupyter", windows=False) == ".venv/bin/jupyter"
    lab = course.commands("lab", python="p", jupyter=course.venv_bin("jupyter", True), base_python="b", is_root=False)
    assert lab == [[".venv\\Scripts\\jupyter.exe", "lab", "--port", "8888", "notebooks/"]]
    assert course.PINNED_ENV == nbtool.PINNED_ENV  # the same pinned environment as make and nb.py
