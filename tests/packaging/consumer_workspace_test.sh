#!/bin/bash
# Builds and runs examples/consumer_workspace (a separate Bazel workspace that depends on this
# repository through local_repository + halide_lars_dependencies()) with its own Bazel server,
# offline, and checks the trainer's output. Runs unsandboxed (tags: no-sandbox, exclusive).
set -euo pipefail
root=$(dirname "$(readlink -f WORKSPACE)")
ws="$root/examples/consumer_workspace"
[[ -f "$ws/WORKSPACE" ]] || { echo "consumer workspace not found at $ws"; exit 1; }
out="${TEST_TMPDIR:-$(mktemp -d)}/bazel_root"
cd "$ws"
bazel --output_user_root="$out" run --symlink_prefix=/ //:trainer 2>&1 | tee "$TEST_TMPDIR/out.txt" | tail -5
bazel --output_user_root="$out" shutdown >/dev/null 2>&1 || true
grep -q "consumer OK" "$TEST_TMPDIR/out.txt"
