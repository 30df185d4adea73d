"""pytest in the project's virtualenv (.venv, made by ./setup.sh from python/requirements.txt)."""

def venv_pytest(name, srcs, data = [], size = "medium", tags = []):
    """An sh_test running pytest on `srcs` (the first is the test file) with libhalide_lars.so.

    python/requirements.txt is a data dependency: the test reruns when the pinned environment
    changes (the .venv itself is outside Bazel's view, made from that file)."""
    native.sh_test(
        name = name,
        size = size,
        srcs = ["//python:run_pytest.sh"],
        args = [
            "$(location //c_api:libhalide_lars.so)",
            "$(location //python:requirements.txt)",
            "$(location %s)" % srcs[0],
        ],
        data = srcs + data + [
            "//python:package",
            "//python:requirements.txt",
            "//c_api:libhalide_lars.so",
        ],
        tags = tags,
    )
