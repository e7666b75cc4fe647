"""Course notebook tooling: create a lesson from the template, sync badges and bootstrap cells, execute.

    python tools/nb.py new 05 multi_head "Multi-head self-attention"   # lesson + solutions skeletons
    python tools/nb.py sync                                             # badges/bootstrap from pyproject
    python tools/nb.py check                                            # exit 1 when something is out of sync
    make execute [NB=notebooks/05_multi_head.ipynb]                     # re-run, store outputs (pinned env)

The course's public address lives in one place, pyproject.toml's [project.urls] Repository; every Colab
badge and every bootstrap cell is generated from it, so a fork changes one line and runs `make sync`.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
BRANCH = "main"
BADGE_IMAGE = "https://colab.research.google.com/assets/colab-badge.svg"
BOOTSTRAP_FIRST_LINE = "# Bootstrap: installs course_utils when it is missing"
RUNTIME_MARKER = "runtime.summary()"
# What keeps stored outputs identical from run to run; `make` exports the same values.
PINNED_ENV = {"PYTHONHASHSEED": "0", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib


def repository() -> str:
    """The course's public address (https://github.com/OWNER/REPO), read from pyproject.toml."""
    with open(ROOT / "pyproject.toml", "rb") as f:
        url = tomllib.load(f)["project"]["urls"]["Repository"].rstrip("/")
    if not re.fullmatch(r"https://github\.com/[\w.-]+/[\w.-]+", url):
        raise SystemExit(f"pyproject.toml's Repository must look like https://github.com/OWNER/REPO, got {url}")
    return url


def colab_url(path: Path) -> str:
    slug = repository().removeprefix("https://github.com/")
    rel = path.resolve().relative_to(ROOT).as_posix()
    return f"https://colab.research.google.com/github/{slug}/blob/{BRANCH}/{rel}"


def badge_source(path: Path) -> str:
    return f"[![Open In Colab]({BADGE_IMAGE})]({colab_url(path)})"


def bootstrap_source() -> str:
    return f"""{BOOTSTRAP_FIRST_LINE} (Colab opens a lesson alone);
# a no-op in the course's own JupyterLab. It pins the torch already installed, so Colab's CUDA build survives.
import importlib
import importlib.util
import os
import subprocess
import sys
import tempfile

if importlib.util.find_spec("course_utils") is None:
    source = os.environ.get("COURSE_UTILS_SOURCE", "git+{repository()}.git")
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as pins:
        if importlib.util.find_spec("torch") is not None:
            from importlib.metadata import version

            pins.write(f"torch=={{version('torch')}}\\n")
    pip = [sys.executable, "-m", "pip", "install", "--quiet", "-c", pins.name, source]
    result = subprocess.run(pip, capture_output=True, text=True)
    if result.returncode != 0:
        said = [line.strip() for line in (result.stderr + result.stdout).splitlines() if line.strip()]
        why = [line for line in said if line.startswith("fatal:")] or [line for line in said if "ERROR" in line]
        why = (why or said or [f"exit code {{result.returncode}}"])[0]
        print(
            f"Could not install the course's package course_utils from {{source}} (pip: {{why}}). "
            "This lesson needs it. Open the "
            "lesson from the course's own address (each lesson's Colab badge at "
            "{repository()}), with the runtime online; "
            "or, for a fork or a local copy, set the source first and run this cell again: "
            'os.environ["COURSE_UTILS_SOURCE"] = "git+https://github.com/YOU/FORK.git" (or the path of a folder '
            "holding the course's pyproject.toml).",
            file=sys.stderr,
        )
        raise SystemExit("course_utils is not installed: see the message above")
    importlib.invalidate_caches()"""


RUNTIME_SOURCE = """# NBVAL_IGNORE_OUTPUT
# The runtime: versions and device (they differ between machines, so this cell's output is not compared).
import course_utils as cu

print(cu.runtime.summary())"""


def _is_badge(cell) -> bool:
    return cell.cell_type == "markdown" and BADGE_IMAGE in cell.source


def _is_bootstrap(cell) -> bool:
    return cell.cell_type == "code" and cell.source.startswith(BOOTSTRAP_FIRST_LINE)


def synced(nb, path: Path) -> list[str]:
    """What is out of date in `nb` (empty when in sync); fixes it in place."""
    problems = []
    badges = [c for c in nb.cells if _is_badge(c)]
    boots = [c for c in nb.cells if _is_bootstrap(c)]
    if not badges:
        problems.append("no Colab badge cell")
    if not boots:
        problems.append("no bootstrap cell")
    for cell in badges:
        if cell.source != badge_source(path):
            problems.append("badge cell out of date")
            cell.source = badge_source(path)
    for cell in boots:
        if cell.source != bootstrap_source():
            problems.append("bootstrap cell out of date")
            cell.source = bootstrap_source()
    return problems


def readme_synced(text: str) -> str:
    """README text with every Colab and repository link pointing at the current address."""
    slug = repository().removeprefix("https://github.com/")
    text = re.sub(
        r"colab\.research\.google\.com/github/[\w.-]+/[\w.-]+/blob/[\w.-]+/",
        f"colab.research.google.com/github/{slug}/blob/{BRANCH}/",
        text,
    )
    return re.sub(r"https://github\.com/[\w.-]+/[\w.-]+?(?=[/.)\s\"'`]|$)", repository(), text)


def clean_metadata(nb) -> None:
    """Drop what differs per machine or run: execution timestamps, the Python patch version, widget state."""
    nb.metadata = nbformat.from_dict(
        {
            "kernelspec": {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"},
            "language_info": {"name": "python"},
            **({"accelerator": nb.metadata["accelerator"]} if "accelerator" in nb.metadata else {}),
        }
    )
    for cell in nb.cells:
        cell.metadata.pop("execution", None)
        cell.metadata.pop("ExecuteTime", None)


def all_notebooks() -> list[Path]:
    return sorted(p for p in NOTEBOOKS.rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts)


def cmd_sync(paths: list[Path], check_only: bool) -> int:
    problems = []
    for path in paths:
        nb = nbformat.read(path, as_version=4)
        found = synced(nb, path)
        problems += [f"{path.relative_to(ROOT)}: {p}" for p in found]
        if found and not check_only:
            nbformat.write(nb, path)
    readme = ROOT / "README.md"
    if readme.exists():
        text = readme.read_text()
        if readme_synced(text) != text:
            problems.append("README.md: links out of date")
            if not check_only:
                readme.write_text(readme_synced(text))
    for p in problems:
        print(("out of sync: " if check_only else "synced: ") + p)
    return 1 if (problems and check_only) else 0


def cmd_execute(paths: list[Path], timeout: int) -> int:
    from nbclient import NotebookClient

    wrong = {k: os.environ.get(k) for k, v in PINNED_ENV.items() if os.environ.get(k) != v}
    if wrong:
        raise SystemExit(f"run through `make execute` (pinned environment {PINNED_ENV}); got {wrong}")
    for path in paths:
        nb = nbformat.read(path, as_version=4)
        synced(nb, path)
        print(f"executing {path.relative_to(ROOT)} ...", flush=True)
        client = NotebookClient(
            nb,
            timeout=timeout,
            kernel_name="python3",
            record_timing=False,
            resources={"metadata": {"path": str(path.parent)}},
        )
        client.execute()
        clean_metadata(nb)
        nbformat.write(nb, path)
    return 0


def cmd_new(number: str, slug: str, title: str) -> int:
    lesson = NOTEBOOKS / f"{number}_{slug}.ipynb"
    solutions = NOTEBOOKS / "solutions" / f"{number}_{slug}_solutions.ipynb"
    for path, heading, tail in (
        (lesson, f"# Lesson {number}: {title}", "## Exercises"),
        (solutions, f"# Lesson {number}: {title}, solutions", "## Solutions"),
    ):
        if path.exists():
            raise SystemExit(f"{path} exists already")
        nb = nbformat.v4.new_notebook()
        nb.cells = [
            nbformat.v4.new_markdown_cell(badge_source(path)),
            nbformat.v4.new_markdown_cell(heading),
            nbformat.v4.new_code_cell(bootstrap_source()),
            nbformat.v4.new_code_cell(RUNTIME_SOURCE),
            nbformat.v4.new_code_cell("cu.runtime.seed_everything(0)\nDEVICE = cu.runtime.device()"),
            nbformat.v4.new_markdown_cell(tail),
        ]
        clean_metadata(nb)
        path.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, path)
        print(f"created {path.relative_to(ROOT)}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p_new = sub.add_parser("new", help="create a lesson and its solutions notebook from the template")
    p_new.add_argument("number")
    p_new.add_argument("slug")
    p_new.add_argument("title")
    for name in ("sync", "check"):
        p = sub.add_parser(name, help="rewrite (sync) or verify (check) badges, bootstrap cells and README links")
        p.add_argument("paths", nargs="*", type=Path)
    p_exec = sub.add_parser("execute", help="execute notebooks in place and store their outputs")
    p_exec.add_argument("paths", nargs="*", type=Path)
    p_exec.add_argument("--timeout", type=int, default=600, help="seconds per cell")
    args = parser.parse_args(argv)
    if args.command == "new":
        return cmd_new(args.number, args.slug, args.title)
    paths = [p.resolve() for p in args.paths] or all_notebooks()
    if args.command == "execute":
        return cmd_execute(paths, args.timeout)
    return cmd_sync(paths, check_only=args.command == "check")


if __name__ == "__main__":
    sys.exit(main())
