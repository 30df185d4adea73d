"""Tuned GeneratorParams per (op, backend), written by tools/autotune (do not edit by hand:
rerun `bazel run //tools/autotune -- --backend=cpu --budget=10` on the target machine).

generators/kernels.bzl applies TUNING["<op>/<backend>"] to every dtype of that op, and
lars_norms' entry also to lars_flat_norms (their reduction trees must stay identical),
lars_update's to lars_flat_update.
"""

# Measured on: x86-64-linux-avx512_skylake-user_context-no_runtime-strict_float
TUNING = {
    "lars8bit_norms/cpu": {"specialize_steady": "false", "tasks": "16", "vector_width": "16"},
    "lars8bit_update/cpu": {"specialize_steady": "true", "tasks": "16", "vector_width": "32"},
    "lars_apply/cpu": {"chunk": "16384", "tasks": "64", "vector_width": "8"},
    "lars_momentum/cpu": {"chunk": "65536", "tasks": "64", "vector_width": "8"},
    "lars_norms/cpu": {"specialize_steady": "true", "tasks": "64", "vector_width": "8"},
    "lars_update/cpu": {"chunk": "65536", "specialize_steady": "true", "tasks": "64", "vector_width": "16"},
    "norms/cpu": {"chunk": "131072", "tasks": "16", "vector_width": "8"},
}
