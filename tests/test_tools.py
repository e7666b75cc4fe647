"""The notebook tooling: one repository address drives every badge, bootstrap cell and README link."""

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
