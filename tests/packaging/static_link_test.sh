#!/bin/bash
# Builds tests/packaging/c/static_link_main.c against lars_c.h and libhalide_lars.a with plain gcc/g++
# (no Bazel C++ rules involved), runs it, and fails if it fails.
# Usage: static_link_test.sh {LIB.a LIB.a.linkopts (either order)} HEADER MAIN.c
set -euo pipefail
case "$1" in *.linkopts) linkopts="$1"; lib="$2" ;; *) lib="$1"; linkopts="$2" ;; esac
header="$3"; main="$4"
out="${TEST_TMPDIR:-$(mktemp -d)}"
mkdir -p "$out/include/halide_lars"
cp "$header" "$out/include/halide_lars/lars_c.h"
gcc -std=c99 -Wall -Wextra -pedantic -O2 -I"$out/include" -c "$main" -o "$out/main.o"
sanitize=""
# Under `bazel test --config=asan` the archive is ASan-instrumented: link the ASan runtime too.
if nm "$lib" 2>/dev/null | grep " U __asan_init" >/dev/null; then sanitize="-fsanitize=address"; fi
if nm "$lib" 2>/dev/null | grep " U __ubsan_handle" >/dev/null; then sanitize="$sanitize -fsanitize=undefined"; fi
# shellcheck disable=SC2046
g++ $sanitize "$out/main.o" "$lib" $(cat "$linkopts") -lm -o "$out/static_link_main"
echo "built with: gcc -std=c99 ... && g++ main.o libhalide_lars.a $(cat "$linkopts" | cut -c1-60)..."
"$out/static_link_main"
