#!/bin/bash
# halide_lars outside Bazel: installs the tree (//:install), then builds and runs a CMake project
# (find_package(halide_lars): the C++ API on the static library, the C ABI on the shared one)
# and a Makefile using pkg-config (C ABI), each running training steps; then moves the tree and
# builds again (it is relocatable).
set -euo pipefail
root="$PWD"
prefix="$TEST_TMPDIR/prefix"
INSTALL_RUNFILES="$root" tools/install/install.sh "$prefix"
for f in include/halide_lars/lars_c.h include/halide_lars/lars.h include/halide_lars/options.h \
         include/halide_lars/options.inc \
         include/halide_lars/types.h include/dlpack/dlpack.h lib/libhalide_lars.a \
         lib/libhalide_lars.so lib/pkgconfig/halide_lars.pc \
         lib/cmake/halide_lars/halide_larsConfig.cmake; do
  [[ -s "$prefix/$f" ]] || { echo "install tree lacks $f"; exit 1; }
done

echo "== CMake consumer"
work="$TEST_TMPDIR/cmake"
mkdir -p "$work"
cp tests/install/cmake_consumer/CMakeLists.txt tests/install/cmake_consumer/trainer.cc "$work/"
cp tests/packaging/c/static_link_main.c "$work/trainer_c.c"
cmake -S "$work" -B "$work/build" -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_BUILD_TYPE=Release > "$work/configure.log"
cmake --build "$work/build" -j 2 > "$work/build.log" || { cat "$work/build.log"; exit 1; }
"$work/build/trainer"
"$work/build/trainer_c"

echo "== Makefile + pkg-config consumer, from a moved install tree"
moved="$TEST_TMPDIR/elsewhere/halide_lars"
mkdir -p "$(dirname "$moved")"
mv "$prefix" "$moved"
work="$TEST_TMPDIR/make"
mkdir -p "$work"
cp tests/install/make_consumer/Makefile "$work/"
cp tests/packaging/c/static_link_main.c "$work/trainer.c"
PKG_CONFIG_PATH="$moved/lib/pkgconfig" make -s -C "$work"
loaded=$(ldd "$work/trainer" | awk '/libhalide_lars.so =>/ {print $3}')
[[ -n "$loaded" && "$(readlink -f "$loaded")" == "$(readlink -f "$moved/lib/libhalide_lars.so")" ]] ||
  { echo "trainer does not load the installed libhalide_lars.so"; ldd "$work/trainer"; exit 1; }
echo "trainer loads $(readlink -f "$loaded")"
"$work/trainer"
echo "install_test: OK"
