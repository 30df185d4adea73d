#!/bin/bash
# Packs the GPU verification kit: bazel run -c opt //tools/gpu_kit -- OUTDIR
# OUTDIR gets a self-contained folder (< 60 MiB) for a machine with only an NVIDIA driver (and,
# for the peer rows, a python3 with torch): the CUDA test suites in one statically linked gtest
# binary, the GPU benchmark, libhalide_lars.so with the Python package, the shared libraries
# they need beyond glibc/libstdc++, and run.sh. Then: OUTDIR/run.sh [--quick] [RESULTS_DIR].
set -euo pipefail
[[ $# -eq 1 ]] || { echo "usage: bazel run -c opt //tools/gpu_kit -- OUTDIR" >&2; exit 2; }
out=$1
[[ "$out" = /* ]] || out="${BUILD_WORKING_DIRECTORY:-$PWD}/$out"
# Runfiles: bazel run starts here in the runfiles tree; a test passes its own root.
src=${GPU_KIT_RUNFILES:-$PWD}
for f in tests/gpu_suites bench/gpu_bench c_api/libhalide_lars.so bench/peers.py \
         tools/gpu_kit/run.sh tools/gpu_kit/python_check.py tools/gpu_kit/README.md; do
  [[ -e "$src/$f" ]] || { echo "pack.sh: $src/$f missing (run it through bazel run)" >&2; exit 1; }
done
rm -rf "$out"
mkdir -p "$out/bin" "$out/lib" "$out/python/halide_lars" "$out/bench"
cp -L "$src/tests/gpu_suites" "$src/bench/gpu_bench" "$out/bin/"
cp -L "$src/c_api/libhalide_lars.so" "$out/python/halide_lars/"
cp -L "$src"/python/halide_lars/*.py "$out/python/halide_lars/"
cp -L "$src/bench/peers.py" "$out/bench/"
cp -L "$src/tools/gpu_kit/run.sh" "$src/tools/gpu_kit/python_check.py" \
      "$src/tools/gpu_kit/README.md" "$out/"
chmod u+w -R "$out"
strip --strip-unneeded "$out"/bin/* "$out/python/halide_lars/libhalide_lars.so"
# Shared libraries beyond the C/C++ runtime every Linux has (Debian's Abseil, libgomp, zlib...).
for b in "$out"/bin/* "$out/python/halide_lars/libhalide_lars.so"; do
  ldd "$b" | awk '/=> \// {print $3}'
done | sort -u |
  grep -v -E '/(libc|libm|libdl|libpthread|librt|libstdc\+\+|libgcc_s)\.so|/ld-linux' |
  while read -r lib; do cp -L "$lib" "$out/lib/"; done
chmod +x "$out/run.sh"
size_mib=$(du -sm "$out" | cut -f1)
if (( size_mib >= 60 )); then
  echo "pack.sh: the kit is ${size_mib} MiB, over its 60 MiB budget" >&2
  exit 1
fi
(cd "$out" && find . -type f | sort | xargs ls -l | awk '{print $5, $9}') > "$out/MANIFEST"
echo "gpu_kit: packed $out (${size_mib} MiB, $(wc -l < "$out/MANIFEST") files); run: $out/run.sh [--quick] [RESULTS_DIR]"
