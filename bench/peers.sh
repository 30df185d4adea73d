#!/bin/bash
# bazel run -c opt //bench:peers -- [--quick] [--json F]: bench/peers.py in the project's
# virtualenv .venv (./setup.sh: bitsandbytes, torch 2.x, jax + optax, timm; pinned in
# python/requirements.txt).
set -euo pipefail
here="$PWD"
ws="${BUILD_WORKSPACE_DIRECTORY:-$(cd "$(dirname "$(readlink -f bench/peers.py)")/.." && pwd)}"
py="$ws/.venv/bin/python"
[[ -x "$py" ]] || { echo "no project virtualenv at $ws/.venv: run ./setup.sh" >&2; exit 1; }
export HALIDE_LARS_LIB="$here/c_api/libhalide_lars.so"
export PYTHONPATH="$here/python${PYTHONPATH:+:$PYTHONPATH}"
export OMP_WAIT_POLICY=passive
args=()
for a in "$@"; do  # --json relative to where the user ran bazel
  if [[ "$a" == --json=* && "${a#--json=}" != /* ]]; then a="--json=${BUILD_WORKING_DIRECTORY:-$here}/${a#--json=}"; fi
  args+=("$a")
done
exec "$py" "$here/bench/peers.py" --gpu-bench "$here/bench/gpu_bench" "${args[@]}"
