#!/bin/bash
# Packs the GPU kit into a temporary folder and runs it the way a GPU machine would, here.
set -euo pipefail
root="$PWD"
kit="$TEST_TMPDIR/kit"
results="$TEST_TMPDIR/results"
GPU_KIT_RUNFILES="$root" tools/gpu_kit/pack.sh "$kit"
size_kib=$(du -sk "$kit" | cut -f1)
(( size_kib < 60 * 1024 )) || { echo "kit is ${size_kib} KiB (budget 60 MiB)"; exit 1; }
for f in bin/gpu_suites bin/gpu_bench python/halide_lars/libhalide_lars.so run.sh MANIFEST; do
  [[ -s "$kit/$f" ]] || { echo "kit lacks $f"; exit 1; }
done
# Nothing from the build tree may be needed: every library resolves to the kit's lib/ or the
# system's C/C++ runtime.
stray=$(LD_LIBRARY_PATH="$kit/lib" ldd "$kit/bin/gpu_suites" "$kit/bin/gpu_bench" \
          "$kit/python/halide_lars/libhalide_lars.so" |
        awk '/not found/ {print} /=> \// {print $3}' | grep -v -E "^($kit/lib/|/lib/|/usr/lib/)" || true)
[[ -z "$stray" ]] || { echo "kit binaries need libraries outside the kit: $stray"; exit 1; }
cd "$TEST_TMPDIR"
# The project's Python environment (./setup.sh's .venv, next to python/requirements.txt).
req=$(readlink -f "$root/python/requirements.txt")
venv_py="$(dirname "$(dirname "$req")")/.venv/bin/python"
if [[ -x "$venv_py" ]]; then export HALIDE_LARS_PYTHON="$venv_py"; fi
out=$(env -u HALIDE_LARS_LIB -u PYTHONPATH "$kit/run.sh" --quick "$results" 2>&1) || {
  echo "$out"; echo "run.sh exited non-zero"; exit 1; }
echo "$out"
grep -q "no GPU" <<<"$out" || { echo "run.sh did not report the missing GPU"; exit 1; }
python3 - "$results" <<'PY'
import json, sys
s = json.load(open(sys.argv[1] + "/summary.json"))
assert s["ok"] and not s["gpu"], s
assert s["cuda_tests"]["failed"] == 0 and s["cuda_tests"]["skipped"] > 30, s["cuda_tests"]
rows = s["gpu_bench"]["rows"]
cpu = {r["case"] for r in rows if r["backend"] == "cpu"}
assert {"roofline: triad in place", "lars32 defaults", "lars8bit propagate",
        "resnet50 lars32 flat"} <= cpu, cpu
assert any(r["backend"] == "opencl" and r["launches_per_step"] > 0 for r in rows), rows
assert any("cuda" in m for m in s["gpu_bench"]["missing_backends"])
peers = {r["peer"] for r in s["peers"]["rows"] if "ms" in r}
assert {"halide_lars LARS flat", "torch SGD foreach", "roofline: triad in place"} <= peers, peers
print("gpu_kit_test: OK")
PY
