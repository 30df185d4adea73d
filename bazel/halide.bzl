"""Bazel 4.2.3 macros that drive Halide 14's GenGen (genrule-based; Halide 14 has no Bazel rules).

  halide_generator(name, srcs, deps)            one cc_binary holding every generator
  halide_runtime(name, generator)               THE Halide runtime (union of all targets below)
  halide_library(name, generator, generator_name, backend, params)
                                                <op>_<dtype>_<backend>[_<variant>]: .a + .h

Every pipeline is compiled with `no_runtime` and `user_context` (the runtime passes a per-call
context: CUDA context/stream, the error text sink). CPU libraries are multitarget
(avx512_skylake, avx2-fma, baseline; Halide picks the best at the first call). GPU libraries are one
target each (never `host`: that would query a GPU at build time).

Extra outputs (stmt, schedule, assembly per target) for code review and tuning:
  bazel build --define halide_extra_outputs=1 //generators:all
"""

# Backend -> comma-separated Halide targets (features common to all are added below).
HALIDE_TARGETS = {
    "cpu": [
        # AVX-512 (Skylake-SP set: F, CD, BW, DQ, VL -- Intel Xeon since 2017, AMD Zen 4+):
        # 32 vector registers end the AVX2 spills in the 8-bit kernels (lars8bit_update 1.21x
        # faster on the EPYC CI machine, same process, interleaved). It replaced SSE4.1: a CPU
        # without AVX2 (pre-2013) runs the baseline.
        "x86-64-linux-avx512_skylake",
        "x86-64-linux-avx2-fma",
        "x86-64-linux",
    ],
    "cuda": ["x86-64-linux-avx2-fma-cuda-cuda_capability_80"],
    "opencl": ["x86-64-linux-opencl"],
}

PIPELINE_FEATURES = ["user_context", "no_runtime", "strict_float"]

def _with_features(targets, features):
    return [t + "".join(["-" + f for f in features]) for t in targets]

def halide_targets(backend):
    """The exact target list a backend's libraries are compiled for."""
    if backend not in HALIDE_TARGETS:
        fail("unknown Halide backend %r (expected one of %s)" % (backend, HALIDE_TARGETS.keys()))
    return _with_features(HALIDE_TARGETS[backend], PIPELINE_FEATURES)

def _runtime_targets():
    # `-r` computes a runtime compatible with every listed target: union of GPU APIs,
    # intersection of CPU ISA features (so the runtime itself stays baseline x86-64).
    out = []
    for backend in HALIDE_TARGETS:
        out += HALIDE_TARGETS[backend]
    return out

def halide_generator(name, srcs, deps = [], **kwargs):
    """One generator binary (Halide.h is slow to compile: keep every generator in it)."""
    native.cc_binary(
        name = name,
        srcs = srcs,
        deps = deps + [
            "@halide//:gengen",
            "@halide//:language",
        ],
        linkopts = ["-rdynamic"],
        **kwargs
    )

def halide_runtime(name, generator, visibility = None):
    """Exactly one Halide runtime for all pipelines (CPU, CUDA, OpenCL)."""
    native.genrule(
        name = name + "_gen",
        outs = [name + ".a"],
        cmd = "$(execpath %s) -r %s -o $(@D) -e static_library target=%s" % (
            generator,
            name,
            ",".join(_runtime_targets()),
        ),
        tools = [generator],
        message = "Halide runtime " + name,
    )
    native.cc_library(
        name = name,
        srcs = [name + ".a"],
        linkopts = [
            "-ldl",
            "-lpthread",
        ],
        linkstatic = 1,
        deps = ["@halide//:runtime"],
        visibility = visibility,
    )

def _param_args(params):
    return " ".join(["%s=%s" % (k, params[k]) for k in sorted(params.keys())])

_EXTENSIONS = {"stmt": ".stmt", "assembly": ".s", "schedule": ".schedule.h"}

def _halide_extras_impl(ctx):
    if not ctx.attr.always and ctx.var.get("halide_extra_outputs", "0") != "1":
        return [DefaultInfo(files = depset())]
    name = ctx.attr.fn_name
    targets = ctx.attr.targets
    emit = ctx.attr.emit
    all_outs = []

    # One generator run per target: Halide emits stmt/assembly/schedule for a single target only
    # (with several it insists on a static library or object, as the CPU multitarget build is).
    for t in targets:
        base = ctx.attr.base + ("" if len(targets) == 1 else "-" + t)
        outs = [ctx.actions.declare_file(base + _EXTENSIONS[e]) for e in emit]
        ctx.actions.run(
            executable = ctx.executable.generator,
            arguments = [
                "-g",
                ctx.attr.registered_name,
                "-f",
                name,
                "-n",
                base,
                "-o",
                outs[0].dirname,
                "-e",
                ",".join(emit),
                "target=" + t,
            ] + ctx.attr.params,
            outputs = outs,
            mnemonic = "HalideExtraOutputs",
            progress_message = "Halide %s for %s (%s)" % ("/".join(emit), name, t),
        )
        all_outs += outs
    return [DefaultInfo(files = depset(all_outs))]

_halide_extras = rule(
    implementation = _halide_extras_impl,
    attrs = {
        "fn_name": attr.string(),
        "base": attr.string(),
        "emit": attr.string_list(default = ["stmt", "assembly", "schedule"]),
        "always": attr.bool(default = False),
        "generator": attr.label(executable = True, cfg = "host"),
        "registered_name": attr.string(),
        "params": attr.string_list(),
        "targets": attr.string_list(),
    },
)

def halide_library(name, generator, generator_name, backend, params = {}, visibility = None,
                   runtime = "//generators:halide_runtime", tags = []):
    """A generated kernel library `name` (.a + .h, C symbol `name`) for one backend.

    Args:
      name: <op>_<dtype>_<backend>[_<variant>]; also the C function name and header name.
      generator: the halide_generator binary label.
      generator_name: the registered generator (e.g. "norms_f32").
      backend: "cpu", "cuda" or "opencl".
      params: GeneratorParams, e.g. {"gpu_threads": 256}.
      runtime: the one halide_runtime every pipeline links against.
    """
    targets = halide_targets(backend)
    args = _param_args(params)
    native.genrule(
        name = name + "_gen",
        outs = [
            name + ".a",
            name + ".h",
        ],
        cmd = "$(execpath %s) -g %s -f %s -n %s -o $(@D) -e static_library,c_header target=%s %s" % (
            generator,
            generator_name,
            name,
            name,
            ",".join(targets),
            args,
        ),
        tools = [generator],
        message = "Halide %s (%s)" % (name, backend),
        tags = tags,
    )
    extras = dict(
        fn_name = name,
        generator = generator,
        registered_name = generator_name,
        params = [a for a in args.split(" ") if a],
        targets = targets,
        tags = tags,
    )

    # --define halide_extra_outputs=1: stmt, assembly and schedule for review and tuning.
    _halide_extras(name = name + "_extra_outputs", base = name, **extras)
    if backend == "cpu":
        # Always built: the lowered statements //tests/lint:schedule_lint_test reads (one generator
        # run per CPU target, stmt only).
        _halide_extras(name = name + "_lint_stmt", base = name + "_lint", emit = ["stmt"],
                       always = True, visibility = visibility, **extras)
    native.cc_library(
        name = name,
        srcs = [name + ".a"],
        hdrs = [name + ".h"],
        linkstatic = 1,
        deps = [
            runtime,
            "@halide//:runtime",
        ],
        visibility = visibility,
        tags = tags,
    )
