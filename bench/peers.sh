#!/bin/bash
# bazel run -c opt //bench:peers -- [--quick] [--json F]: bench/peers.py with the peers
# virtualenv (./setup.sh --peers: bitsandbytes, torch 2.x, jax + optax, timm) when it exists,
# else Debian's python3 (torch 1.13; the missing peers are reported).
set -euo pipefail
here="$PWD"
ws="${BUILD_WORKSPACE_DIRECTORY:-$(cd "$(dirname "$(readlink -f bench/peers.py)")/.." && pwd)}"
py=/usr/bin/python3
[[ -x "$ws/.peers/bin/python" ]] && py="$ws/.peers/bin/python"
export HALIDE_LARS_LIB="$here/c_api/libhalide_lars.so"
export PYTHONPATH="$here/python${PYTHONPATH:+:$PYTHONPATH}"
export OMP_WAIT_POLICY=passive
args=()
for a in "$@"; do  # --json relative to where the user ran bazel
  if [[ "$a" == --json=* && "${a#--json=}" != /* ]]; then a="--json=${BUILD_WORKING_DIRECTORY:-$here}/${a#--json=}"; fi
  args+=("$a")
done
exec "$py" "$here/bench/peers.py" --gpu-bench "$here/bench/gpu_bench" "${args[@]}"
