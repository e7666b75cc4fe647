#!/usr/bin/env bash
# The GPU checks in one go (293 s on an H200): the GPU tests of course_utils.gpu and every lesson under strict nbval
# side by side, then the benchmark alone (python -m course_utils.bench, the full sweep).
#
#   bash tools/gpu_check.sh fetch      # once, where pip can download: wheels for nbval and a Jupyter kernel, in .whl/
#                                      # (for a GPU machine that has torch, triton and pytest but no Jupyter)
#   bash tools/gpu_check.sh [OUT_DIR]  # on the GPU machine, from a copy of the repository with .whl/ in it
#
# Each step has its own time limit, so a slow step leaves the others their time and every log comes back:
# OUT_DIR/env.txt, gpu_tests.txt, nbval.txt, lesson07_t4.txt, bench_log.txt, bench/bench.{json,txt,png} (8 files).
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
  nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.sm,clocks.max.sm --format=csv,noheader
  $PY -c "import torch, triton; print('torch', torch.__version__, 'triton', triton.__version__, \
torch.cuda.get_device_name(), torch.cuda.get_device_capability())"
} 2>&1 | tee "$OUT/env.txt"

# 1. Correctness, two jobs side by side (neither is timed): the GPU tests (one fixed kernel config: fewer compiles;
#    4 workers compile in parallel) and every lesson and solution under strict nbval, as CI runs them on a CPU.
echo "== 1. GPU tests and nbval of every notebook, side by side (limit 220 s each)"
COURSE_UTILS_AUTOTUNE=off timeout 220 $PY -m pytest -q -p no:cacheprovider -n 4 \
  tests/test_gpu.py tests/test_tiling.py tests/test_bench.py tests/test_exercises_lesson07.py \
  --durations 10 -rs > "$OUT/gpu_tests.txt" 2>&1 &
tests_pid=$!
if $PY -c "import nbval, ipykernel" 2>/dev/null; then
  timeout 220 $PY -m pytest -q -p no:cacheprovider -n 6 --dist loadfile --nbval --nbval-current-env \
    --nbval-sanitize-with tests/nbval_sanitize.cfg --nbval-cell-timeout 200 --durations 25 \
    notebooks > "$OUT/nbval.txt" 2>&1
else
  echo "nbval or ipykernel missing: run 'bash tools/gpu_check.sh fetch' where pip can download, and copy .whl/ here" > "$OUT/nbval.txt"
fi
wait $tests_pid
tail -n 25 "$OUT/gpu_tests.txt"
grep -E "^(FAILED|ERROR)|passed|failed" "$OUT/nbval.txt" | tail -n 40
echo "   step 1 done at $((SECONDS - start)) s"

# 1b. Lesson 07 as on a Colab T4: the free memory its naive-attention check sees forced to a T4's 15 GB
#     (COURSE_UTILS_FREE_MEMORY_BYTES); the lesson must run top to bottom, skip naive attention at N = 4096 and say so.
echo "== 1b. lesson 07 with a T4's free memory forced (limit 150 s)"
timeout 150 $PY -m pytest -q -p no:cacheprovider -s tests/test_lesson07_gpus.py -k t4s_free_memory -rs \
  > "$OUT/lesson07_t4.txt" 2>&1
grep -E "with a T4|passed|failed|skipped|Error" "$OUT/lesson07_t4.txt" | tail -n 5
echo "   step 1b done at $((SECONDS - start)) s"

# 2. The benchmark alone on the GPU: the issue's sweep, autotuned kernel (the small config list).
echo "== 2. benchmark (limit 300 s)"
timeout 300 $PY -m course_utils.bench --out "$OUT/bench" --rep-ms 40 > "$OUT/bench_log.txt" 2>&1
grep -A 200 "under 1.0x" "$OUT/bench_log.txt" | head -n 60
grep -E "^(float16|bfloat16) .* course " "$OUT/bench/bench.txt" 2>/dev/null | cut -c1-140
tail -n 3 "$OUT/bench_log.txt"
echo "== all done in $((SECONDS - start)) s"
