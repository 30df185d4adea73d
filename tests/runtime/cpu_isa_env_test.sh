#!/bin/bash
# HALIDE_LARS_CPU_ISA: a bad value fails the first step with a message naming the accepted
# values; "baseline" runs the SSE2 code and passes the same test.
set -uo pipefail
test_bin="$1"
filter="--gtest_filter=*Trajector*:*trajector*"
out=$(HALIDE_LARS_CPU_ISA=avx3 "$test_bin" "$filter" 2>&1)
if [[ $? -eq 0 ]]; then echo "FAIL: HALIDE_LARS_CPU_ISA=avx3 passed"; exit 1; fi
grep -q "HALIDE_LARS_CPU_ISA=avx3: expected native, avx2 or baseline" <<<"$out" || {
  echo "FAIL: no clear message:"; echo "$out" | tail -20; exit 1; }
HALIDE_LARS_CPU_ISA=baseline "$test_bin" "$filter" || { echo "FAIL: baseline ISA"; exit 1; }
echo "cpu_isa_env_test OK"
