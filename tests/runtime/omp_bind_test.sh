#!/bin/bash
# tests/runtime/omp_bind_main.cc under OMP_PROC_BIND=close (what Intel's torch launcher and many HPC job
# scripts set), on a machine whose process may use more than one CPU.
set -euo pipefail
env -u HL_NUM_THREADS -u OMP_NUM_THREADS OMP_PROC_BIND=close "$1"
