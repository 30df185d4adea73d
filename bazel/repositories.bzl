"""halide_lars_dependencies(): every external repository halide_lars needs, each in maybe().

A monorepo that already declares one of these names (its own rules_cc, Abseil, GoogleTest, ...)
keeps its own: maybe() skips names that exist. Labels are Label()s so that they resolve to this
repository when the macro is called from a consumer's WORKSPACE.
"""

load("@bazel_tools//tools/build_defs/repo:utils.bzl", "maybe")
load("//bazel:system_repos.bzl", "cuda_toolkit", "in_repo_repository", "system_absl")

def _local(name, rel):
    # A plain local_repository path would be relative to the *consumer's* workspace; in_repo_repository
    # finds the folder through a Label, so it works from any WORKSPACE.
    maybe(in_repo_repository, name = name, marker = Label("//" + rel + ":WORKSPACE"))

def halide_lars_dependencies():
    """Declares rules_cc/rules_java/coverage stubs, Halide, GoogleTest, Benchmark, Abseil, DLPack, CUDA."""

    # Offline stand-ins for repositories Bazel 4.2.3's WORKSPACE suffix would download.
    _local("rules_cc", "third_party/rules_cc")
    _local("rules_java", "third_party/rules_java")
    _local("remote_coverage_tools", "third_party/remote_coverage_tools")

    # Debian packages rooted at /usr.
    maybe(
        native.new_local_repository,
        name = "halide",
        path = "/usr",
        build_file = str(Label("//third_party/halide:halide.BUILD")),
    )
    maybe(
        native.new_local_repository,
        name = "com_google_googletest",
        path = "/usr",
        build_file = str(Label("//third_party/gtest:gtest.BUILD")),
    )
    maybe(
        native.new_local_repository,
        name = "com_github_google_benchmark",
        path = "/usr",
        build_file = str(Label("//third_party/benchmark:benchmark.BUILD")),
    )
    maybe(
        native.new_local_repository,
        name = "dlpack",
        path = "/usr",
        build_file = str(Label("//third_party/dlpack:dlpack.BUILD")),
    )
    maybe(system_absl, name = "com_google_absl")
    maybe(cuda_toolkit, name = "local_cuda")
