#!/bin/bash
# Installs everything halide_lars needs to build, test and benchmark: Debian packages (apt) for
# the build, and the project's Python environment .venv/ from PyPI with the pinned versions of
# python/requirements.txt (torch 2.x, numpy, pytest, jax/jaxlib + optax, timm, bitsandbytes,
# matplotlib), which the Python tests, demo scripts and benchmarks run in. Nothing is downloaded
# at build time. Idempotent: installs only what is missing (apt-get update at most once; pip
# only when .venv was not made from exactly python/requirements.txt), and fails naming any
# package it cannot install.
#   ./setup.sh            # then: bazel test //...
set -euo pipefail
for arg in "$@"; do
  case "$arg" in
    --peers) ;;  # the peers are part of .venv now; the flag is accepted for old scripts
    *) echo "usage: ./setup.sh" >&2; exit 2 ;;
  esac
done

PACKAGES=(
  build-essential         # gcc/g++ 12 for Bazel's autodetected C++ toolchain
  pkg-config              # Abseil link flags (bazel/system_repos.bzl); the install tree's .pc
  cmake                   # //tests/install:install_test (find_package(halide_lars))
  make
  bazel-bootstrap         # Bazel 4.2.3
  libhalide14-0-dev       # Halide 14: Halide.h, libHalide14, GenGen.cpp, autoscheduler plugins
  libabsl-dev             # Abseil 20220623
  libgtest-dev            # GoogleTest 1.12
  libbenchmark-dev        # Google Benchmark 1.7
  libdlpack-dev           # dlpack/dlpack.h
  zlib1g-dev              # CRC32 for checkpoints
  ocl-icd-opencl-dev      # libOpenCL.so (the unversioned name Halide's runtime dlopens)
  pocl-opencl-icd         # CPU OpenCL: runs the GPU schedules on every test run
  clinfo                  # to inspect OpenCL platforms
  python3-venv            # .venv (below) and //python:wheel_test's fresh virtualenv
  python3-pip
  dataset-fashion-mnist   # the demo's data (examples/demo.cc): nothing downloaded at run time
)

SUDO=""
if [[ $(id -u) -ne 0 ]]; then
  command -v sudo >/dev/null || { echo "setup.sh: run as root or install sudo" >&2; exit 1; }
  SUDO="sudo"
fi

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [[ ${#missing[@]} -eq 0 ]]; then
  echo "setup.sh: all ${#PACKAGES[@]} packages present"
else
  echo "setup.sh: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  if ! $SUDO apt-get install -y -qq "${missing[@]}"; then
    for p in "${missing[@]}"; do
      $SUDO apt-get install -y -qq "$p" >/dev/null 2>&1 ||
        echo "setup.sh: FAILED to install Debian package '$p'" >&2
    done
    exit 1
  fi
fi

# Checks that what the build relies on is really there.
for f in /usr/include/halide14/Halide.h /usr/src/halide14/GenGen.cpp /usr/include/dlpack/dlpack.h \
         /usr/lib/x86_64-linux-gnu/libOpenCL.so; do
  [[ -e "$f" ]] || { echo "setup.sh: expected $f after installing packages" >&2; exit 1; }
done
if [[ -x /usr/local/cuda/bin/ptxas ]]; then
  echo "setup.sh: CUDA toolkit found (ptxas checks the CUDA kernels' PTX)"
else
  echo "setup.sh: no CUDA toolkit at /usr/local/cuda: CUDA kernels still build; the PTX check skips"
fi
# The project's Python environment (PyPI, pinned). .venv/requirements.txt records what it was
# made from: pip runs only when that differs from python/requirements.txt or an import fails.
here="$(cd "$(dirname "$0")" && pwd)"
venv="$here/.venv"
req="$here/python/requirements.txt"
check='import torch, numpy, pytest, jax, optax, timm, bitsandbytes, matplotlib'
[[ -x "$venv/bin/python" ]] || /usr/bin/python3 -m venv "$venv"
if ! cmp -s "$req" "$venv/requirements.txt" || ! "$venv/bin/python" -c "$check" 2>/dev/null; then
  echo "setup.sh: installing python/requirements.txt into $venv (PyPI; torch brings its CUDA" \
       "wheels: ~6 GB, ~2 min)"
  rm -f "$venv/requirements.txt"
  "$venv/bin/python" -m pip install -q --disable-pip-version-check -r "$req" ||
    { echo "setup.sh: FAILED to install python/requirements.txt into $venv" >&2; exit 1; }
  "$venv/bin/python" -c "$check" ||
    { echo "setup.sh: the virtualenv $venv is incomplete" >&2; exit 1; }
  cp "$req" "$venv/requirements.txt"
fi
"$venv/bin/python" -c 'import sys, torch, jax, optax, timm, bitsandbytes, numpy
print("setup.sh: .venv: python", sys.version.split()[0], "torch", torch.__version__, "numpy",
      numpy.__version__, "jax", jax.__version__, "optax", optax.__version__, "timm",
      timm.__version__, "bitsandbytes", bitsandbytes.__version__)' 2>&1 | grep "^setup.sh"
echo "setup.sh: OK"
