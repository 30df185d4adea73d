"""Repository rules for what Debian installs outside Bazel's reach (no downloads, ever).

- in_repo_repository: an external repository whose files live in this repository (offline stubs).
- system_absl: Debian's libabsl-dev (20220623) under the canonical @com_google_absl labels, with
  link flags read from pkg-config at fetch time.
- cuda_toolkit: @local_cuda//:ptxas when /usr/local/cuda (or $CUDA_PATH) has ptxas; otherwise an
  empty filegroup, and tests that need it report that they were skipped.
"""

def _in_repo_repository_impl(rctx):
    src = rctx.path(rctx.attr.marker).dirname
    for child in src.readdir():
        rctx.symlink(child, child.basename)

in_repo_repository = repository_rule(
    implementation = _in_repo_repository_impl,
    attrs = {"marker": attr.label(mandatory = True, allow_single_file = True)},
    local = True,
)

# Bazel package -> {target name: pkg-config module}. The components halide_lars uses.
_ABSL_COMPONENTS = {
    "absl/base": {"base": "absl_base", "core_headers": "absl_core_headers"},
    "absl/cleanup": {"cleanup": "absl_cleanup"},
    "absl/container": {
        "flat_hash_map": "absl_flat_hash_map",
        "flat_hash_set": "absl_flat_hash_set",
        "inlined_vector": "absl_inlined_vector",
    },
    "absl/flags": {"flag": "absl_flags", "parse": "absl_flags_parse"},
    "absl/status": {"status": "absl_status", "statusor": "absl_statusor"},
    "absl/strings": {"strings": "absl_strings", "str_format": "absl_str_format"},
    "absl/synchronization": {"synchronization": "absl_synchronization"},
    "absl/time": {"time": "absl_time"},
    "absl/types": {"span": "absl_span", "optional": "absl_optional"},
}

def _system_absl_impl(rctx):
    pkg_config = rctx.which("pkg-config")
    if not pkg_config:
        fail("pkg-config not found: run ./setup.sh (installs pkg-config and libabsl-dev)")
    rctx.file("WORKSPACE", 'workspace(name = "%s")\n' % rctx.name)
    rctx.file("BUILD", "# Debian libabsl-dev 20220623 (no absl/crc: use zlib for CRC32).\n")
    for pkg, targets in _ABSL_COMPONENTS.items():
        rules = []
        for name, module in targets.items():
            res = rctx.execute([pkg_config, "--libs", module])
            if res.return_code != 0:
                fail("pkg-config --libs %s failed (is libabsl-dev installed? run ./setup.sh): %s" %
                     (module, res.stderr))
            flags = [f for f in res.stdout.strip().replace("\n", " ").split(" ") if f]
            rules.append("cc_library(\n    name = %r,\n    linkopts = %r,\n)\n" % (name, flags))
        rctx.file(
            pkg + "/BUILD",
            "# Headers: /usr/include/absl (a compiler default include dir). Libraries: pkg-config.\n" +
            'package(default_visibility = ["//visibility:public"])\n\n' + "\n".join(rules),
        )

system_absl = repository_rule(
    implementation = _system_absl_impl,
    local = True,
    environ = ["PKG_CONFIG_PATH"],
)

def _cuda_toolkit_impl(rctx):
    root = rctx.os.environ.get("CUDA_PATH", "/usr/local/cuda")
    ptxas = rctx.path(root + "/bin/ptxas")
    rctx.file("WORKSPACE", 'workspace(name = "%s")\n' % rctx.name)
    if ptxas.exists:
        rctx.symlink(ptxas, "bin/ptxas")
        srcs, have = '["bin/ptxas"]', "True"
    else:
        srcs, have = "[]", "False"
    rctx.file("BUILD", """# CUDA toolkit found at {root}: {have}. Only ptxas is used (PTX validation); Halide emits
# PTX itself, so nothing here is needed to build the CUDA kernels.
package(default_visibility = ["//visibility:public"])

filegroup(
    name = "ptxas",
    srcs = {srcs},
)
""".format(root = root, have = have, srcs = srcs))
    rctx.file("defs.bzl", "HAS_PTXAS = %s\nCUDA_ROOT = %r\n" % (have, root))

cuda_toolkit = repository_rule(
    implementation = _cuda_toolkit_impl,
    local = True,
    environ = ["CUDA_PATH"],
)
