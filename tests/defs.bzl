"""The test macro: the deps every C++ suite links, in one place (they were copied ~30 times)."""

# What a suite of the optimizer or its kernels links: the test helpers (float64 references, device
# lists, tensor fillers), the optimizer, the runtime, gtest's main.
SUITE_DEPS = [
    "//tests:test_util",
    "//lars",
    "//runtime",
    "@com_google_absl//absl/strings",
    "@com_google_googletest//:gtest_main",
]

def lars_test(name, srcs = None, deps = [], avx2 = False, size = "medium", **kwargs):
    """cc_test `name` from `name`.cc (or `srcs`) with SUITE_DEPS + `deps`.

    avx2 = True also makes `<name without _test>_avx2_test`: the same suite on the AVX2 code of
    the CPU multitarget kernels (HALIDE_LARS_CPU_ISA=avx2; a CI machine with AVX-512 dispatches to
    that otherwise). strict_float makes every ISA bit-identical, so the expectations are the same.
    """
    srcs = srcs or [name + ".cc"]
    base_env = kwargs.pop("env", {})
    variants = [(name, {})]
    if avx2:
        variants.append((name[:-len("_test")] + "_avx2_test", {"HALIDE_LARS_CPU_ISA": "avx2"}))
    for test_name, env in variants:
        native.cc_test(
            name = test_name,
            srcs = srcs,
            size = size,
            env = dict(base_env, **env),
            deps = SUITE_DEPS + [d for d in deps if d not in SUITE_DEPS],
            **kwargs
        )
