#!/bin/bash
# The GPU verification kit (packed by `bazel run -c opt //tools/gpu_kit -- DIR`):
#   DIR/run.sh [--quick] [RESULTS_DIR]        (default RESULTS_DIR: ./gpu_kit_results)
# 1. every CUDA test case (gtest, one binary); on a GPU none may skip (HALIDE_LARS_REQUIRE_CUDA)
# 2. the GPU benchmark: copy roofline, LARS32 / LARS8bit, ResNet-50 / BERT-base sets per tensor
#    and flat, kernel launches per step counted at run time; CPU (and pocl) rows too
# 3. the Python binding on torch CUDA tensors (correctness vs the CPU, on a side stream)
# 4. torch peers in the same run: SGD foreach/fused, timm Lars, optax lars (those installed)
# Prints the tables, writes RESULTS_DIR/summary.json. Without a GPU the CUDA parts say
# "no GPU" and the script still exits 0 with the CPU/OpenCL rows (CI runs it so).
set -uo pipefail
KIT="$(cd "$(dirname "$0")" && pwd)"
QUICK=""
RESULTS=""
for a in "$@"; do
  case "$a" in
    --quick) QUICK="--quick" ;;
    -h|--help) sed -n 2,10p "$0"; exit 0 ;;
    *) RESULTS="$a" ;;
  esac
done
RESULTS="${RESULTS:-$PWD/gpu_kit_results}"
mkdir -p "$RESULTS"
export LD_LIBRARY_PATH="$KIT/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export OMP_WAIT_POLICY=passive
export PYTHONPATH="$KIT/python${PYTHONPATH:+:$PYTHONPATH}"
export HALIDE_LARS_LIB="$KIT/python/halide_lars/libhalide_lars.so"
start=$(date +%s)
status=0
fail() { echo "run.sh: FAILED: $*"; status=1; }

echo "== probe"
probe=$("$KIT/bin/gpu_bench" --probe)
gpu=$?
echo "$probe"
if [[ $gpu -eq 0 ]]; then
  export HALIDE_LARS_REQUIRE_CUDA=1
  command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
else
  echo "no GPU: the CUDA cases skip and the benchmark has CPU/OpenCL rows only"
fi
grep -q "^opencl: ok" <<<"$probe" || export HALIDE_LARS_NO_OPENCL=1

echo "== CUDA tests"
"$KIT/bin/gpu_suites" --gtest_filter='*cuda*:*Cuda*:*CUDA*' \
  --gtest_output="json:$RESULTS/cuda_tests.json" > "$RESULTS/cuda_tests.log" 2>&1
rc=$?
passed=$(grep -c '^\[       OK \]' "$RESULTS/cuda_tests.log")
skipped=$(grep -c '^\[  SKIPPED \] .*(' "$RESULTS/cuda_tests.log")
failed=$(grep -c '^\[  FAILED  \] .*(' "$RESULTS/cuda_tests.log")
# Cases about the absence of a GPU skip where there is one; nothing else may.
gpu_skips=$(grep -B3 '^\[  SKIPPED \] .*(' "$RESULTS/cuda_tests.log" | grep -c "a CUDA device is present")
echo "CUDA test cases: $passed passed, $failed failed, $skipped skipped (log: $RESULTS/cuda_tests.log)"
grep '^\[  FAILED  \] .*(' "$RESULTS/cuda_tests.log" | head -20
if [[ $gpu -eq 0 ]]; then
  [[ $rc -eq 0 ]] || fail "CUDA tests exited $rc"
  (( skipped == gpu_skips )) || fail "$((skipped - gpu_skips)) CUDA cases skipped on a GPU machine"
  (( passed > 0 )) || fail "no CUDA case ran"
elif (( failed > 0 )); then
  fail "$failed test cases failed without a GPU"
fi

echo "== benchmark"
"$KIT/bin/gpu_bench" $QUICK --json="$RESULTS/gpu_bench.json" | tee "$RESULTS/gpu_bench.txt"
[[ ${PIPESTATUS[0]} -eq 0 ]] || fail "gpu_bench"

PY=""
# $HALIDE_LARS_PYTHON (the project's .venv, as gpu_kit_test passes it), else the first python3
# that has torch.
for c in ${HALIDE_LARS_PYTHON:-} python3 /usr/bin/python3; do
  if command -v "$c" >/dev/null && "$c" -c "import torch" 2>/dev/null; then PY=$c; break; fi
done
if [[ -n "$PY" ]]; then
  echo "== Python binding on torch tensors ($PY)"
  "$PY" "$KIT/python_check.py" | tee "$RESULTS/python_check.txt"
  [[ ${PIPESTATUS[0]} -eq 0 ]] || fail "python_check"
  echo "== peers (same process, same tensors)"
  "$PY" "$KIT/bench/peers.py" --gpu-bench "$KIT/bin/gpu_bench" $QUICK \
    --json "$RESULTS/peers.json" | tee "$RESULTS/peers.txt"
  [[ ${PIPESTATUS[0]} -eq 0 ]] || fail "peers"
else
  echo "== no python3 with torch here: the binding check and the peers are skipped"
fi

elapsed=$(( $(date +%s) - start ))
"${PY:-python3}" - "$RESULTS" "$gpu" "$passed" "$failed" "$skipped" "$elapsed" "$status" <<'PY' || true
import json, os, sys
res, gpu, passed, failed, skipped, elapsed, status = sys.argv[1:]
def load(name):
    try:
        with open(os.path.join(res, name)) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None
summary = {"gpu": gpu == "0", "cuda_tests": {"passed": int(passed), "failed": int(failed),
           "skipped": int(skipped)}, "seconds": int(elapsed), "ok": status == "0",
           "gpu_bench": load("gpu_bench.json"), "peers": load("peers.json")}
with open(os.path.join(res, "summary.json"), "w") as f:
    json.dump(summary, f, indent=1)
print(f"== summary: {'GPU' if summary['gpu'] else 'no GPU'}, CUDA cases {passed} passed / "
      f"{failed} failed / {skipped} skipped, {elapsed} s -> {res}/summary.json")
PY
exit $status
