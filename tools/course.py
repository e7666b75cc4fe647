"""The Makefile's two commands without make (Windows, or anywhere make is missing):

    python tools/course.py lab      set up .venv and open the course in JupyterLab        (make lab)
    python tools/course.py test     set up .venv and run the whole suite                    (make test)
    python tools/course.py setup    only set up .venv                                       (make setup)
    add --dry-run to print the commands instead of running them (tests/test_tools.py checks they are the Makefile's)
    add --no-venv to use the Python running this script (a conda environment from environment-test.yml)

The virtual environment's Python is .venv/bin/python, or .venv\\Scripts\\python.exe on Windows. Nothing here needs
bash: the only programs run are Python, pip, jupyter and pytest.
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VENV = ".venv"
KERNEL = "self-attention-course"
CONSTRAINTS = ".ci/constraints.txt"
# What keeps stored notebook outputs identical from run to run (the Makefile exports the same values).
PINNED_ENV = {"PYTHONHASHSEED": "0", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
NBVAL = ["--nbval", "--nbval-current-env", "--nbval-sanitize-with", "tests/nbval_sanitize.cfg",
         "--nbval-cell-timeout", "300"]


def venv_bin(name: str, windows: bool = os.name == "nt") -> str:
    """Path (relative to the repository) of a program inside .venv: bin/ on Linux and macOS, Scripts\\ on Windows."""
    if windows:
        return f"{VENV}\\Scripts\\{name}.exe"
    return f"{VENV}/bin/{name}"


def commands(target: str, *, python: str, jupyter: str, base_python: str, is_root: bool) -> list[list[str]]:
    """The commands `make TARGET` runs after its set-up, in order (set-up: target 'setup')."""
    if target == "setup":
        return [
            [base_python, "-m", "venv", VENV],
            [python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "-c", CONSTRAINTS,
             "-e", ".[test,gpu,lab]"],
            [python, "-m", "ipykernel", "install", "--sys-prefix", "--name", KERNEL, "--display-name",
             "Self-attention course (.venv)"],
        ]
    if target == "lab":
        return [[jupyter, "lab", "--port", os.environ.get("PORT", "8888"), *(["--allow-root"] if is_root else []),
                 "notebooks/"]]
    if target == "test":
        return [
            [python, "-m", "ruff", "check", "course_utils", "tests", "tools", "notebooks"],
            [python, "-m", "mypy", "course_utils"],
            [python, "tools/nb.py", "check"],
            [python, "-m", "pytest", "-n", "2", "--dist", "loadfile", "--durations", "30", "tests", "notebooks",
             *NBVAL],
            [python, "-m", "pytest", "-m", "browser", "--durations", "5", "tests/test_browser.py"],
        ]
    raise ValueError(f"target must be 'setup', 'lab' or 'test', got {target!r}")


def _setup(python: str, base_python: str, dry_run: bool) -> None:
    """make setup: create .venv once, install the package with its extras, register the Jupyter kernel."""
    stamp = ROOT / VENV / ".installed"
    create, install, kernel = commands("setup", python=python, jupyter="", base_python=base_python, is_root=False)
    if dry_run:
        for cmd in (create, install, kernel):
            print(shlex.join(cmd))
        return
    if stamp.exists() and stamp.stat().st_mtime >= max(
        (ROOT / p).stat().st_mtime for p in ("pyproject.toml", CONSTRAINTS)
    ):
        return
    if not (ROOT / python).exists():
        _run(create)
    _run(install)
    _run(kernel)
    settings = ROOT / VENV / "share" / "jupyter" / "lab" / "settings"
    settings.mkdir(parents=True, exist_ok=True)
    shutil.copy(ROOT / "tools" / "jupyterlab_overrides.json", settings / "overrides.json")
    _run([python, "-c", "import matplotlib; matplotlib.use('Agg'); import matplotlib.pyplot"])  # font cache, once
    stamp.touch()


def _run(cmd: list[str]) -> None:
    print("+", shlex.join(cmd), flush=True)
    env = {**os.environ, **PINNED_ENV}
    result = subprocess.run(cmd, cwd=ROOT, env=env)
    if result.returncode != 0:
        raise SystemExit(result.returncode)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("target", choices=["setup", "lab", "test"])
    parser.add_argument("--dry-run", action="store_true", help="print the commands, run nothing")
    parser.add_argument("--no-venv", action="store_true", help="use this Python (e.g. a conda env), no .venv")
    parser.add_argument("--windows", action="store_true", default=os.name == "nt", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.no_venv:
        python, jupyter = sys.executable, str(Path(sys.executable).with_name("jupyter"))
    else:
        python, jupyter = venv_bin("python", args.windows), venv_bin("jupyter", args.windows)
        if args.target == "setup" or not args.dry_run:
            _setup(python, sys.executable, args.dry_run)
    if args.target == "setup":
        return 0
    is_root = hasattr(os, "getuid") and os.getuid() == 0
    for cmd in commands(args.target, python=python, jupyter=jupyter, base_python=sys.executable, is_root=is_root):
        if args.dry_run:
            print(shlex.join(cmd))
        else:
            _run(cmd)
    return 0


if __name__ == "__main__":
    sys.exit(main())
