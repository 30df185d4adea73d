#!/bin/bash
# `bazel run //tools/autotune -- --backend=cpu --budget=10`: the tuner with this build's generator
# binary and Halide runtime (outputs go to the workspace: BUILD_WORKSPACE_DIRECTORY).
set -euo pipefail
script="$1" generator="$2" runtime="$3"
shift 3
exec /usr/bin/python3 "$script" --generator "$generator" --runtime "$runtime" "$@"
