#!/bin/bash
# Installs every Debian package halide_lars needs to build, test and benchmark (offline-capable
# Debian 12 mirrors only: no PyPI, no downloads at build time). Idempotent: installs only what is
# missing, runs `apt-get update` at most once, and fails naming any package it cannot install.
#   ./setup.sh            # then: bazel test //...
#   ./setup.sh --peers    # also: the peers virtualenv .peers/ (bitsandbytes 0.50, torch 2.x,
#                         # jax + optax, timm from PyPI) for bench/peers.py and the tests that
#                         # compare against real bitsandbytes (they skip, saying so, without it)
set -euo pipefail
PEERS=0
for arg in "$@"; do
  case "$arg" in
    --peers) PEERS=1 ;;
    *) echo "usage: ./setup.sh [--peers]" >&2; exit 2 ;;
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
  python3-numpy           # Python tests and torch baselines run on /usr/bin/python3
  python3-torch
  python3-pytest
  python3-venv            # //python:wheel_test installs the wheel into a fresh virtualenv
  dataset-fashion-mnist   # the demo's data (examples/demo.cc): nothing downloaded at run time
)
if [[ $PEERS -eq 1 ]]; then
  PACKAGES+=(python3-pip)  # the peers virtualenv
fi

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
/usr/bin/python3 -c "import numpy, torch, pytest" ||
  { echo "setup.sh: /usr/bin/python3 cannot import numpy, torch and pytest" >&2; exit 1; }
if [[ -x /usr/local/cuda/bin/ptxas ]]; then
  echo "setup.sh: CUDA toolkit found (ptxas checks the CUDA kernels' PTX)"
else
  echo "setup.sh: no CUDA toolkit at /usr/local/cuda: CUDA kernels still build; the PTX check skips"
fi
if [[ $PEERS -eq 1 ]]; then
  # PyPI only here (the build and the two README commands never need it). Idempotent: pip runs
  # only when an import or a version is missing.
  here="$(cd "$(dirname "$0")" && pwd)"
  venv="$here/.peers"
  [[ -x "$venv/bin/python" ]] || /usr/bin/python3 -m venv "$venv"
  check='import bitsandbytes, torch, jax, optax, timm, numpy, pytest
assert bitsandbytes.__version__.startswith("0.50"), bitsandbytes.__version__
assert int(torch.__version__.split(".")[0]) >= 2, torch.__version__'
  if ! "$venv/bin/python" -c "$check" 2>/dev/null; then
    echo "setup.sh: installing the peers into $venv (PyPI; torch brings its CUDA wheels: ~5 GB)"
    "$venv/bin/python" -m pip install -q --upgrade pip
    "$venv/bin/python" -m pip install -q "bitsandbytes>=0.50,<0.51" "torch>=2.3" jax optax \
      timm numpy pytest
    "$venv/bin/python" -c "$check" ||
      { echo "setup.sh: the peers virtualenv $venv is incomplete" >&2; exit 1; }
  fi
  "$venv/bin/python" -c 'import bitsandbytes, torch, jax, optax, timm
print("setup.sh: peers: bitsandbytes", bitsandbytes.__version__, "torch", torch.__version__,
      "jax", jax.__version__, "optax", optax.__version__, "timm", timm.__version__)'
fi
echo "setup.sh: OK"
