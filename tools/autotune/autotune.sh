#!/bin/bash
# `bazel run //tools/autotune -- --backend=cpu --budget=10`: the tuner with this build's generator
# binary and Halide runtime (outputs go to the workspace: BUILD_WORKSPACE_DIRECTORY), in the
# project's .venv (./setup.sh; matplotlib draws tuning.png/.svg).
set -euo pipefail
script="$1" generator="$2" runtime="$3"
shift 3
ws="${BUILD_WORKSPACE_DIRECTORY:-$(cd "$(dirname "$(readlink -f "$script")")/../.." && pwd)}"
py="$ws/.venv/bin/python"
[[ -x "$py" ]] || { echo "autotune: $py is missing: run ./setup.sh" >&2; exit 1; }
exec "$py" "$script" --generator "$generator" --runtime "$runtime" "$@"
