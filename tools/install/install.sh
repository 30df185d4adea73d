#!/bin/bash
# Installs halide_lars for users outside Bazel: bazel run //:install -- PREFIX
#   PREFIX/include/halide_lars/   include/halide_lars/ as it is: lars_c.h (C ABI), lars.h, stateless.h,
#                                 options.h (+ options.inc), types.h (C++ API)
#   PREFIX/include/dlpack/        dlpack.h (the tensor struct of the C ABI)
#   PREFIX/lib/libhalide_lars.a   everything (C and C++ API, every kernel, the Halide runtime)
#   PREFIX/lib/libhalide_lars.so  the C ABI only (lars_*), Halide/Abseil hidden
#   PREFIX/lib/pkgconfig/halide_lars.pc                  pkg-config --cflags --libs halide_lars
#   PREFIX/lib/cmake/halide_lars/halide_larsConfig.cmake find_package(halide_lars):
#       halide_lars::halide_lars (static) and halide_lars::halide_lars_shared (shared)
# The tree is relocatable (the .pc and CMake files find it relative to themselves). The C++ API
# and the static library need Abseil's headers and libraries (Debian: libabsl-dev).
set -euo pipefail
[[ $# -eq 1 ]] || { echo "usage: bazel run //:install -- PREFIX" >&2; exit 2; }
prefix=$1
[[ "$prefix" = /* ]] || prefix="${BUILD_WORKING_DIRECTORY:-$PWD}/$prefix"
src=${INSTALL_RUNFILES:-$PWD}
find_one() {  # a runfile by its path inside the workspace or an external repository
  for c in "$src/$1" "$src/../$1" "$src/external/$1"; do [[ -e "$c" ]] && { echo "$c"; return; }; done
  echo "install.sh: $1 not found under $src" >&2; exit 1
}
version=$(sed -n 's/.*return "halide_lars \([0-9.]*\)".*/\1/p' "$(find_one c_api/lars_c.cc)")
[[ -n "$version" ]] || version=0.1.0
mkdir -p "$prefix/include/halide_lars" "$prefix/include/dlpack" "$prefix/lib/pkgconfig" \
         "$prefix/lib/cmake/halide_lars"
# Headers: include/halide_lars/ as it is (they include each other as "halide_lars/...").
for h in lars_c.h lars.h stateless.h options.h options.inc types.h; do
  install -m 644 "$(find_one "include/halide_lars/$h")" "$prefix/include/halide_lars/$h"
done
cp "$(find_one dlpack/include/dlpack/dlpack.h)" "$prefix/include/dlpack/dlpack.h"
install -m 644 "$(find_one c_api/libhalide_lars.a)" "$prefix/lib/libhalide_lars.a"
install -m 755 "$(find_one c_api/libhalide_lars.so)" "$prefix/lib/libhalide_lars.so"
linkopts=$(cat "$(find_one c_api/libhalide_lars.a.linkopts)")
sed -e "s#@VERSION@#$version#" -e "s#@LINKOPTS@#$linkopts#" \
  "$(find_one tools/install/halide_lars.pc.in)" > "$prefix/lib/pkgconfig/halide_lars.pc"
cmake_list=$(tr ' ' ';' <<<"$linkopts" | sed 's/;*$//')
sed -e "s#@VERSION@#$version#" -e "s#@LINKOPTS@#$cmake_list#" \
  "$(find_one tools/install/halide_larsConfig.cmake.in)" > "$prefix/lib/cmake/halide_lars/halide_larsConfig.cmake"
sed -e "s#@VERSION@#$version#" "$(find_one tools/install/halide_larsConfigVersion.cmake.in)" \
  > "$prefix/lib/cmake/halide_lars/halide_larsConfigVersion.cmake"
chmod -R u+w "$prefix"
echo "halide_lars $version installed in $prefix"
