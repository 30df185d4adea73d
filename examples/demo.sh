#!/bin/bash
# bazel run -c opt //examples:demo -- [demo_train flags]: trains (examples/demo.cc) and draws
# OUT.png and OUT.svg from OUT.json with examples/plot_demo.py in the project's .venv (matplotlib;
# ./setup.sh makes it). OUT is --out (default demo_accuracy, in the directory bazel ran from).
set -euo pipefail
runfiles="${RUNFILES_DIR:-$0.runfiles}/halide_lars"
train="$runfiles/examples/demo_train"
plot="$runfiles/examples/plot_demo.py"
out=demo_accuracy
for a in "$@"; do
  case "$a" in --out=*) out="${a#--out=}" ;; esac
done
[[ "$out" = /* ]] || out="${BUILD_WORKING_DIRECTORY:-$PWD}/$out"
"$train" "$@"
# The checkout's .venv (runfiles are links into the checkout).
ws="$(cd "$(dirname "$(readlink -f "$plot")")/.." && pwd)"
py="$ws/.venv/bin/python"
if [[ ! -x "$py" ]]; then
  echo "demo: $py is missing (run ./setup.sh); the curves are in $out.json and $out.csv" >&2
  exit 1
fi
"$py" "$plot" "$out.json" "$out"
