#!/usr/bin/env bash
# Lesson 07's GPU checks in one go (about 8 minutes on an H100): the GPU tests of course_utils.gpu, the benchmark
# (python -m course_utils.bench, full sweep) and lesson 07 under strict nbval.
#
#   bash tools/gpu_check.sh fetch      # HERE, once, before the GPU call: wheels for nbval and a Jupyter kernel
#                                      # (the lent machine has torch, triton, pytest, matplotlib, but no Jupyter)
#   bash tools/gpu_check.sh [OUT_DIR]  # ON THE GPU: the device tool's run with carry [".whl"], e.g.
#                                      #   command: "bash tools/gpu_check.sh $OUT", timeout_s: 600
#
# Each step has its own time limit, so a slow step leaves the others their time and every log comes back:
# OUT_DIR/env.txt, gpu_tests.txt, bench/bench.{json,txt,png}, bench_log.txt, nbval.txt (7 files).
set -uo pipefail
cd "$(dirname "$0")/.."

WHEELS=(
  nbval==0.11.0 nbformat==5.11.1 nbclient==0.11.0 jupyter_client==8.10.0 jupyter_core==5.9.1 ipykernel==7.4.0
  ipython==9.18.1 ipython_pygments_lexers==1.1.1 traitlets==5.16.1 pyzmq==27.3.0 tornado==6.6.1 comm==0.2.3
  debugpy==1.8.22 matplotlib-inline==0.2.2 nest-asyncio==1.6.0 fastjsonschema==2.22.3 jsonschema==4.26.0
  jsonschema-specifications==2025.9.1 referencing==0.37.0 rpds-py==2026.9.1 platformdirs==4.14.8
  decorator==5.2.1 jedi==0.20.1 parso==0.8.7 prompt_toolkit==3.0.53 wcwidth==0.9.4 pexpect==4.9.0
  ptyprocess==0.7.0 stack-data==0.6.3 executing==2.3.0 asttokens==3.0.2 pure_eval==0.2.4
)

if [[ "${1:-}" == "fetch" ]]; then
  grep -qx '/.whl/' .git/info/exclude 2>/dev/null || echo '/.whl/' >> .git/info/exclude
  mkdir -p .whl
  for w in "${WHEELS[@]}"; do
    python3 -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
      --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
      --platform manylinux2014_x86_64 --platform manylinux1_x86_64 --platform any -d .whl "$w" \
      || echo "could not fetch $w (step 3 will be skipped if nbval cannot import)"
  done
  du -sh .whl
  exit 0
fi

OUT=${1:-${OUT:-gpu_check_out}}
mkdir -p "$OUT/bench"
export PYTHONUNBUFFERED=1 PYTHONHASHSEED=0 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
PY=${PYTHON:-python3}
if compgen -G ".whl/*.whl" > /dev/null; then
  $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    && export PYTHONPATH="$PYTHONPATH:/tmp/site"
fi
start=$SECONDS
{
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
  $PY -c "import torch, triton; print('torch', torch.__version__, 'triton', triton.__version__, \
torch.cuda.get_device_name(), torch.cuda.get_device_capability())"
} 2>&1 | tee "$OUT/env.txt"

# 1. GPU tests (one fixed kernel config: fewer compiles), then the CPU-side tests of the same modules.
echo "== 1. tests (limit 210 s)"
COURSE_UTILS_AUTOTUNE=off timeout 210 $PY -m pytest -q -p no:cacheprovider \
  tests/test_gpu.py tests/test_tiling.py tests/test_bench.py tests/test_exercises_lesson07.py \
  --durations 10 -rs 2>&1 | tee "$OUT/gpu_tests.txt"
echo "   step 1 done at $((SECONDS - start)) s"

# 2. The benchmark: the issue's sweep, autotuned kernel (the small config list).
echo "== 2. benchmark (limit 270 s)"
timeout 270 $PY -m course_utils.bench --out "$OUT/bench" --rep-ms 50 2>&1 | tee "$OUT/bench_log.txt"
echo "   step 2 done at $((SECONDS - start)) s"

# 3. Lesson 07 under strict nbval (its benchmark cells run on a GPU; outputs compared with the CPU-executed ones).
echo "== 3. nbval lesson 07 (limit 90 s)"
if $PY -c "import nbval, ipykernel" 2>/dev/null; then
  timeout 90 $PY -m pytest -q -p no:cacheprovider --nbval --nbval-current-env \
    --nbval-sanitize-with tests/nbval_sanitize.cfg --durations 5 \
    notebooks/07_self_attention_on_a_gpu.ipynb notebooks/solutions/07_self_attention_on_a_gpu_solutions.ipynb \
    2>&1 | tee "$OUT/nbval.txt"
else
  echo "nbval or ipykernel missing: run 'bash tools/gpu_check.sh fetch' here and carry .whl" | tee "$OUT/nbval.txt"
fi
echo "== all done in $((SECONDS - start)) s"
