"""Schedule lint over the lowered statements (Halide .stmt) of every CPU kernel and CPU target.

A schedule can be wrong without any result being wrong: until 2026-11-26 lars_apply called
specialize(!nesterov) before its schedule, and a specialization copies the schedule as it
stands, so its common case ran as one serial scalar loop over the whole tensor (0.56 of the
triad instead of 1.0) while every correctness test passed. This test reads what Halide lowered
and fails on:
  1. a loop over a whole buffer extent (`for (v, 0, buf.extent.0)`): an element loop nobody
     split, vectorized or parallelized -- unless ALLOWED below says why it is fine;
  2. a kernel without a parallel loop (halide_do_par_for) or without any vector code, except
     the small ones in SCALAR.
Usage: schedule_lint.py STMT... (file names <kernel>_lint[-<target>].stmt)
"""
import os
import re
import sys

# (kernel name prefix, loop variable regex): loops over a whole extent that are not element loops.
ALLOWED = [
    # The flat set norms' output table: 3 sums per tensor, one iteration per tensor.
    ("lars_flat_norms_", r"^out\.s0\.i\.rebased$"),
    ("lars8bit_flat_norms_", r"^out\.s0\.i\.rebased$"),
]
# Kernels that are scalar by design (no element loop worth a thread or a vector).
SCALAR = ["percentile_clip_"]

FULL_EXTENT_LOOP = re.compile(r"^\s*for \(([^,]+), [^,]+, ([A-Za-z_0-9]+)\.extent\.0\) \{", re.M)
VECTOR = re.compile(r"\b(?:float|u?int)\d+x\d+\b|\bx\d+\(")


def kernel_of(path):
    base = os.path.basename(path)
    return base.split("_lint")[0], base


def lint(path):
    kernel, base = kernel_of(path)
    text = open(path).read()
    errors = []
    for m in FULL_EXTENT_LOOP.finditer(text):
        var, buf = m.group(1), m.group(2)
        if any(kernel.startswith(k) and re.match(v, var) for k, v in ALLOWED):
            continue
        line = text.count("\n", 0, m.start()) + 1
        errors.append(f"{base}:{line}: loop {var} runs over all of {buf}.extent.0 unsplit "
                      "(an unscheduled element loop? a specialize() made before the schedule?)")
    if not any(kernel.startswith(s) for s in SCALAR):
        if "halide_do_par_for" not in text:
            errors.append(f"{base}: no parallel loop (halide_do_par_for)")
        if not VECTOR.search(text):
            errors.append(f"{base}: no vector code")
    return errors


def main(paths):
    if not paths:
        sys.exit("no .stmt files given")
    errors = []
    kernels = set()
    for p in paths:
        kernels.add(kernel_of(p)[0])
        errors += lint(p)
    for e in errors:
        print(e)
    print(f"{len(paths)} statements of {len(kernels)} CPU kernels, {len(errors)} problems")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
