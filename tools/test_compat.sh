#!/usr/bin/env bash
# make test-compat: the oldest and the newest environments pyproject.toml allows, each in its own venv under
# .compat/, each running every notebook top to bottom (nbval-lax: cells must not raise, outputs are not compared)
# and the unit tests. Never in CI: PyPI's torch wheels are CUDA builds (about 4 GB downloaded and 6 GB on disk per
# environment, nvidia-* libraries included); PyPI holds no +cpu builds and download.pytorch.org may be unreachable.
#
#   tools/test_compat.sh [oldest|newest ...]     default: both; results go to .compat/results.md
#
# oldest  Python 3.10, torch 2.5.1 (its own triton 3.1: below the kernel's 3.6, so course_utils.gpu treats Triton
#         as missing), numpy 1.24, matplotlib 3.9 and every other dependency at its lower bound.
# newest  Python 3.13, the newest torch on PyPI (2.15.0, pinning triton 3.9.0) with the gpu extra, every other
#         dependency at its newest. A pip configuration that caps torch (here /etc/xdg/pip sets
#         constraint = torch<=2.14.1) is lifted for this environment only: PIP_CONSTRAINT=/dev/null.
# Pythons: COMPAT_PY310 and COMPAT_PY313 (default: pyenv's, else python3.10 / python3.13 on PATH).
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
OUT=$ROOT/.compat
mkdir -p "$OUT"
export PYTHONHASHSEED=0 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 MPLBACKEND=Agg PIP_DISABLE_PIP_VERSION_CHECK=1

find_python() {  # $1 = 3.10 | 3.13
  local p
  p=$(ls -d "${PYENV_ROOT:-$HOME/.pyenv}"/versions/"$1".*/bin/python 2>/dev/null | sort -V | tail -1)
  if [ -n "$p" ]; then echo "$p"; else command -v "python$1"; fi
}

declare -A PYTHON SPEC PIPENV
PYTHON[oldest]=${COMPAT_PY310:-$(find_python 3.10)}
PYTHON[newest]=${COMPAT_PY313:-$(find_python 3.13)}
SPEC[oldest]="torch==2.5.1 numpy==1.24.4 matplotlib==3.9.0 tqdm==4.65.0 scikit-learn==1.3.0 networkx==3.1 -e .[test]"
SPEC[newest]="torch==2.15.0 -e .[test,gpu]"
PIPENV[oldest]=""
PIPENV[newest]="PIP_CONSTRAINT=/dev/null"

build() {  # $1 = name: venv at .compat/$1, stamp .compat/$1/.installed
  local name=$1 venv=$OUT/$1
  [ -f "$venv/.installed" ] && return 0
  [ -n "${PYTHON[$name]}" ] || { echo "$name: no Python for it (set COMPAT_PY310 / COMPAT_PY313)"; return 1; }
  rm -rf "$venv" && "${PYTHON[$name]}" -m venv "$venv" || return 1
  # shellcheck disable=SC2086
  env ${PIPENV[$name]} "$venv/bin/python" -m pip install --quiet --no-cache-dir ${SPEC[$name]} || return 1
  "$venv/bin/python" -m ipykernel install --sys-prefix --name self-attention-course >/dev/null || return 1
  "$venv/bin/python" -c "import matplotlib.pyplot" && touch "$venv/.installed"
}

run_one() {  # $1 = name; prints one row of the result table
  local name=$1 venv=$OUT/$1 log=$OUT/$1.log t0 nb="" unit="" versions
  t0=$(date +%s)
  if ! build "$name" >"$log" 2>&1; then
    echo "| $name | build failed (see .compat/$name.log) | | | |"
    return 1
  fi
  versions=$("$venv/bin/python" -c "
import platform, importlib.metadata as m
def v(p):
    try: return m.version(p)
    except m.PackageNotFoundError: return '-'
print(f\"Python {platform.python_version()}, torch {v('torch')}, triton {v('triton')}, numpy {v('numpy')}, matplotlib {v('matplotlib')}\")")
  local t1 t2 t3
  t1=$(date +%s)
  "$venv/bin/python" -m pytest -q -p no:cacheprovider --nbval-lax --nbval-current-env --nbval-cell-timeout 600 \
    notebooks >"$OUT/$name.notebooks.log" 2>&1 && nb=pass || nb=FAIL
  t2=$(date +%s)
  # the unit tests, less the Colab test (it builds yet another environment) and the pixel-exact check of images/
  # (drawn by CI's matplotlib: another release draws other pixels)
  "$venv/bin/python" -m pytest -q -p no:cacheprovider tests --ignore tests/test_colab_bootstrap.py \
    --deselect tests/test_diagrams.py::test_images_folder_is_current \
    >"$OUT/$name.tests.log" 2>&1 && unit=pass || unit=FAIL
  t3=$(date +%s)
  echo "| $name | $versions | notebooks: $nb ($(tail -1 "$OUT/$name.notebooks.log" | tr -d '=|')) $((t2 - t1)) s | unit tests: $unit ($(tail -1 "$OUT/$name.tests.log" | tr -d '=|')) $((t3 - t2)) s | $(du -sh "$venv" | cut -f1), built in $((t1 - t0)) s |"
  [ "$nb" = pass ] && [ "$unit" = pass ]
}

names=("$@")
[ ${#names[@]} -gt 0 ] || names=(oldest newest)
status=0
{
  echo "| environment | versions | notebooks (run top to bottom) | unit tests | venv size, build time |"
  echo "|---|---|---|---|---|"
} >"$OUT/results.md"
for name in "${names[@]}"; do
  row=$(run_one "$name") || status=1
  echo "$row" | tee -a "$OUT/results.md" "$OUT/results-$name.md"
done
exit $status
