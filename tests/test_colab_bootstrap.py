"""The Colab path: a lesson opened alone installs course_utils itself and leaves the torch already there alone.

A fresh virtual environment stands in for a Colab runtime: it has torch (Colab's own build there, the pinned
CPU build here) and ipykernel, and no course_utils. From a temporary folder (so the checkout is not on the
path), the lesson runs in a kernel of that environment with COURSE_UTILS_SOURCE pointing at a plain copy of
the checkout (installed like a git URL: built, not editable). Nothing is reused between runs: the
environment is created anew each time, so a missing install step cannot hide.

The runtime cell's report with and without CUDA is checked in-process with torch's CUDA probes patched.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import time
from contextlib import redirect_stdout
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
import nb as nbtool  # noqa: E402

LESSONS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
# The lesson run in the fresh environment: lesson 02 (pure NumPy, quick), else the first one; COLAB_LESSON=NN
# picks another.
_WANTED = os.environ.get("COLAB_LESSON", "02") + "_"
LESSON = next((p for p in LESSONS if p.name.startswith(_WANTED)), LESSONS[0] if LESSONS else None)
TORCH = "torch==2.13.0"  # the CPU build CI pins (.ci/constraints.txt); stands in for Colab's CUDA build
KERNEL = "colab-sim"

PROBE = """
import importlib.metadata as m, importlib.util, json, sys
d = m.distribution("torch")
cu = importlib.util.find_spec("course_utils")
direct = m.distribution("self-attention-course").read_text("direct_url.json") if cu else None
print(json.dumps({
    "torch": d.version, "torch_record": d.read_text("RECORD"), "torch_location": str(d.locate_file("")),
    "course_utils": cu.origin if cu else None, "direct_url": json.loads(direct) if direct else None,
    "package_data": sorted(str(f.relative_to(f.parents[1])) for f in m.distribution("self-attention-course").files
                           if f.suffix == ".json" and "recorded" in f.parts) if cu else None,
}))
"""


def _run(cmd, **kw) -> subprocess.CompletedProcess:
    res = subprocess.run(cmd, capture_output=True, text=True, **kw)
    assert res.returncode == 0, f"{cmd[:4]} failed ({res.returncode}):\n{res.stdout[-3000:]}\n{res.stderr[-3000:]}"
    return res


def _probe(python: Path, cwd: Path) -> dict:
    return json.loads(_run([str(python), "-c", PROBE], cwd=cwd).stdout)


def _freeze(python: Path) -> list[str]:
    return sorted(_run([str(python), "-m", "pip", "freeze", "--all"]).stdout.splitlines())


def _clean_env(**extra: str) -> dict[str, str]:
    """The environment without anything that points Python at the project's .venv or checkout."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}
    env.update(MPLBACKEND="Agg", **extra)
    return env


@pytest.fixture(scope="module")
def colab(tmp_path_factory):
    """A fresh venv with torch and ipykernel only, a plain copy of the checkout, and an empty work folder."""
    if LESSON is None:
        pytest.skip("no lesson in notebooks/ yet")
    home = tmp_path_factory.mktemp("colab")
    venv, source, work = home / "venv", home / "course-src", home / "work"
    work.mkdir()
    started = time.monotonic()
    _run([sys.executable, "-m", "venv", str(venv)])
    python = venv / "bin" / "python"
    _run([str(python), "-m", "pip", "install", "--quiet", TORCH, "ipykernel"], env=_clean_env())
    # the package as a git clone would hold it: sources and metadata, no build products, no .venv
    (source / "course_utils").parent.mkdir(parents=True)
    shutil.copytree(ROOT / "course_utils", source / "course_utils", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, source / name)
    kernels = home / "jupyter" / "kernels" / KERNEL
    kernels.mkdir(parents=True)
    (kernels / "kernel.json").write_text(
        json.dumps(
            {
                "argv": [str(python), "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                "display_name": "fresh venv (Colab stand-in)",
                "language": "python",
            }
        )
    )
    print(f"fresh venv with torch and ipykernel: {time.monotonic() - started:.0f} s")
    before = _probe(python, work)
    assert before["torch"].startswith("2.13.0")
    assert before["course_utils"] is None, "the fresh venv must not see course_utils"
    return {
        "home": home,
        "python": python,
        "source": source,
        "work": work,
        "before": before,
        "freeze_before": _freeze(python),
    }


def test_lesson_runs_alone_after_its_bootstrap_cell(colab, monkeypatch):
    """The lesson as stored, in the fresh venv: the bootstrap cell installs course_utils, the rest runs.

    Then the cell is a no-op: run again (or in the course's JupyterLab) it installs nothing.
    """
    from nbclient import NotebookClient

    nb = nbformat.read(LESSON, as_version=4)
    boot = [c for c in nb.cells if c.cell_type == "code" and c.source.startswith(nbtool.BOOTSTRAP_FIRST_LINE)]
    assert len(boot) == 1 and boot[0].source == nbtool.bootstrap_source()
    first_code = next(c for c in nb.cells if c.cell_type == "code")
    assert first_code is boot[0], "the bootstrap must be the lesson's first code cell"
    for key, value in _clean_env(
        COURSE_UTILS_SOURCE=str(colab["source"]), JUPYTER_PATH=str(colab["home"] / "jupyter")
    ).items():
        monkeypatch.setenv(key, value)
    for key in ("PYTHONPATH", "VIRTUAL_ENV"):
        monkeypatch.delenv(key, raising=False)
    client = NotebookClient(nb, timeout=600, kernel_name=KERNEL, resources={"metadata": {"path": str(colab["work"])}})
    with client.setup_kernel():
        started = time.monotonic()
        client.execute_cell(boot[0], nb.cells.index(boot[0]))  # raises CellExecutionError if it fails
        installed = time.monotonic()
        for index, cell in enumerate(nb.cells):
            if cell.cell_type == "code" and cell is not boot[0]:
                client.execute_cell(cell, index)
    print(
        f"{LESSON.name} in the fresh venv: bootstrap {installed - started:.0f} s, "
        f"the rest {time.monotonic() - installed:.0f} s"
    )
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []) if o.output_type == "error"]
    assert not errors
    runtime = next(c for c in nb.cells if c.cell_type == "code" and nbtool.RUNTIME_MARKER in c.source)
    text = "".join(o.get("text", "") for o in runtime.outputs if o.output_type == "stream")
    assert "device     cpu (GPU: none)" in text and "torch      2.13.0" in text

    after = _probe(colab["python"], colab["work"])
    # course_utils now comes from the fresh venv, built from the copy (not editable, not the checkout)
    assert after["course_utils"] is not None
    assert Path(after["course_utils"]).is_relative_to(colab["home"] / "venv")
    assert not after["direct_url"].get("dir_info", {}).get("editable", False)
    assert after["package_data"] == ["recorded/bench_h200.json"]  # lesson 07's recorded GPU run ships in the wheel
    # torch untouched: same version, same files (its RECORD), same place
    for key in ("torch", "torch_record", "torch_location"):
        assert after[key] == colab["before"][key], f"the bootstrap changed torch's {key}"
    freeze = _freeze(colab["python"])
    torch_lines = [line for line in freeze if line.startswith(("torch==", "nvidia-", "triton=="))]
    assert torch_lines == [
        line for line in colab["freeze_before"] if line.startswith(("torch==", "nvidia-", "triton=="))
    ]
    assert set(colab["freeze_before"]) <= set(freeze), "the bootstrap replaced a package that was there"

    # run again (or in the course's JupyterLab) the cell installs nothing: a bogus source is never used
    script = colab["home"] / "bootstrap.py"
    script.write_text(nbtool.bootstrap_source())
    env = _clean_env(COURSE_UTILS_SOURCE=str(colab["home"] / "no-such-source"))
    _run([str(colab["python"]), str(script)], cwd=colab["work"], env=env)
    assert _freeze(colab["python"]) == freeze
    _run([sys.executable, str(script)], cwd=colab["work"], env=env)  # the project's .venv: a no-op too


def test_bootstrap_fails_loudly_on_a_bad_source(tmp_path):
    """Where course_utils is missing and the install cannot run (here: no pip at all), the cell stops with the
    course's message (no silent half-install, no CalledProcessError traceback)."""
    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)])
    script = tmp_path / "bootstrap.py"
    script.write_text(nbtool.bootstrap_source())
    res = subprocess.run(
        [str(venv / "bin" / "python"), str(script)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env=_clean_env(COURSE_UTILS_SOURCE=str(tmp_path / "no-such-source")),
    )
    assert res.returncode != 0
    assert "CalledProcessError" not in res.stderr and "Traceback" not in res.stderr, res.stderr
    assert "Could not install the course's package course_utils" in res.stderr and "No module named pip" in res.stderr


def _runtime_cell_output(monkeypatch, cuda: bool, mps: bool = False, colab: bool = False) -> tuple[str, object]:
    """Run the template's runtime cell and the seed cell with torch's device probes patched."""
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda *a: "Tesla T4")
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: mps)
    if colab:
        monkeypatch.setenv("COLAB_RELEASE_TAG", "release-colab-test")
    else:
        monkeypatch.delenv("COLAB_RELEASE_TAG", raising=False)
    namespace: dict = {}
    out = io.StringIO()
    with redirect_stdout(out):
        exec(nbtool.RUNTIME_SOURCE, namespace)
        exec("cu.runtime.seed_everything(0)\nDEVICE = cu.runtime.device()", namespace)
    return out.getvalue(), namespace["DEVICE"]


def test_runtime_cell_without_cuda(monkeypatch):
    text, device = _runtime_cell_output(monkeypatch, cuda=False)
    assert "device     cpu (GPU: none)" in text
    assert "colab      False" in text
    assert device.type == "cpu"


def test_runtime_cell_with_cuda_as_on_a_colab_t4(monkeypatch):
    text, device = _runtime_cell_output(monkeypatch, cuda=True, colab=True)
    assert "device     cuda (GPU: Tesla T4)" in text
    assert "colab      True" in text
    assert device.type == "cuda"


def test_runtime_cell_on_apple_silicon(monkeypatch):
    text, device = _runtime_cell_output(monkeypatch, cuda=False, mps=True)
    assert "device     mps (GPU: none)" in text
    assert device.type == "mps"


@pytest.mark.parametrize("lesson", LESSONS, ids=lambda p: p.stem)
def test_every_lesson_uses_the_template_runtime_cell(lesson):
    """What the in-process checks above run is what each lesson runs."""
    cells = nbformat.read(lesson, as_version=4).cells
    runtime = [c.source for c in cells if c.cell_type == "code" and nbtool.RUNTIME_MARKER in c.source]
    assert runtime and runtime[0] == nbtool.RUNTIME_SOURCE


# What the bootstrap cell says when the install fails: run as a script with course_utils hidden from it (so the
# install path runs) and the source pointed at places pip cannot install from. No network, about a second each.
_HIDE_COURSE_UTILS = """
import importlib.util, sys
_find = importlib.util.find_spec
importlib.util.find_spec = lambda name, *a: None if name == "course_utils" else _find(name, *a)
exec(compile(open(sys.argv[1]).read(), "bootstrap", "exec"))
"""


@pytest.mark.parametrize(
    "source, pip_says",
    [("git+https://127.0.0.1:9/nobody/nothing.git", "git"), ("/nonexistent/course-copy", "nonexistent")],
    ids=["unreachable-url", "missing-folder"],
)
def test_bootstrap_failure_says_what_to_do(tmp_path, source, pip_says):
    cell = tmp_path / "bootstrap.py"
    cell.write_text(nbtool.bootstrap_source())
    res = subprocess.run([sys.executable, "-c", _HIDE_COURSE_UTILS, str(cell)], capture_output=True, text=True,
                         cwd=tmp_path, env=_clean_env(COURSE_UTILS_SOURCE=source, GIT_TERMINAL_PROMPT="0"),
                         timeout=300)
    assert res.returncode == 1 and res.stdout == ""
    assert "Traceback" not in res.stderr and "CalledProcessError" not in res.stderr, res.stderr
    paragraph, last = res.stderr.strip().split("\n")  # one paragraph, then the one-line reason the cell stops
    assert paragraph.startswith(f"Could not install the course's package course_utils from {source} (pip: ")
    assert pip_says in paragraph.split("(pip: ")[1].lower()
    assert f"Colab badge at {nbtool.repository()}" in paragraph
    assert 'os.environ["COURSE_UTILS_SOURCE"] = "git+https://github.com/YOU/FORK.git"' in paragraph
    assert "local copy" in paragraph and "run this cell again" in paragraph
    assert last == "course_utils is not installed: see the message above"
