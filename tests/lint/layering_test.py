#!/usr/bin/env python3
"""The layers point down only (docs/architecture.md):

    base (0) -> generators (1) -> runtime (2) -> lars (3) -> c_api (4) -> bindings (5)

A file may include a header of its own layer or of a lower one, and a BUILD file may depend on
targets of its own layer or lower ones; tests, benches, tools and examples may use any layer.
The public headers live together in include/halide_lars/ and each belongs to the layer that
implements it (LAYER_OF_PUBLIC below). Also: only the generators include Halide.h (the runtime
links generated kernels and HalideRuntime*.h only), runtime/ never sees LarsOptions, and a
public header is included as users include it ("halide_lars/lars.h", not "include/...").

Reads the files of the layer packages from the test's runfiles; exits 1 listing every arrow that
points up.
"""
import os
import re
import sys

LAYERS = ["base", "generators", "runtime", "lars", "c_api", "bindings"]
RANK = {name: i for i, name in enumerate(LAYERS)}
DIR_LAYER = {"base": "base", "generators": "generators", "runtime": "runtime", "lars": "lars",
             "c_api": "c_api", "python": "bindings", "julia": "bindings"}
LAYER_OF_PUBLIC = {"types.h": "base", "options.h": "lars", "options.inc": "lars",
                   "lars.h": "lars", "stateless.h": "lars", "lars_c.h": "c_api"}
# //include targets by the layer of their headers (public_headers: the install tree's list).
INCLUDE_TARGET_LAYER = {"types": "base", "options": "lars", "lars": "lars", "lars_c": "c_api",
                        "public_headers": "bindings"}
# Local headers that are not this project's (vendored third-party code, generated kernels).
FOREIGN = re.compile(r"^(absl|Halide|HalideRuntime|HalideBuffer|dlpack|xla|gtest|benchmark)")
SOURCE = re.compile(r"\.(h|cc|inc)$")


def layer_of_path(rel):
    """The layer a workspace-relative path belongs to, or None (tests, tools, ...)."""
    parts = rel.split("/")
    if parts[0] == "include" and len(parts) == 3 and parts[1] == "halide_lars":
        return LAYER_OF_PUBLIC.get(parts[2], "UNLISTED")
    return DIR_LAYER.get(parts[0])


def layer_of_include(header):
    if header.startswith("halide_lars/"):
        return LAYER_OF_PUBLIC.get(header.split("/", 1)[1], "UNLISTED")
    if header.startswith("generators/"):  # generated kernel headers (all_kernels.h, ...)
        return "generators"
    return layer_of_path(header)


def layer_of_label(label):
    m = re.match(r"^//([\w/]*)(?::([\w./+-]+))?$", label)
    if not m:
        return None
    pkg, target = m.group(1), m.group(2) or m.group(1).split("/")[-1]
    if pkg == "include":
        return INCLUDE_TARGET_LAYER.get(target.split("/")[-1], "UNLISTED")
    return DIR_LAYER.get(pkg.split("/")[0])


def check_file(rel, text, errors):
    own = layer_of_path(rel)
    if own is None:
        return
    if own == "UNLISTED":
        errors.append(f"{rel}: a public header without a layer (add it to LAYER_OF_PUBLIC)")
        return
    if os.path.basename(rel) == "BUILD":
        for label in re.findall(r'"(//[^"]+)"', text):
            if "__pkg__" in label or "__subpackages__" in label:  # visibility, not a dependency
                continue
            target = layer_of_label(label)
            if target is None:
                continue
            if target == "UNLISTED" or RANK[target] > RANK[own]:
                errors.append(f"{rel}: {own} depends on {label} ({target})")
        return
    if not SOURCE.search(rel):
        return
    for lineno, line in enumerate(text.splitlines(), 1):
        m = re.match(r'\s*#\s*include\s+"([^"]+)"', line)
        if m:
            header = m.group(1)
            if header.startswith("Halide.h") and own != "generators":
                errors.append(f"{rel}:{lineno}: {own} includes Halide.h (generators only)")
            if header.startswith("include/"):
                errors.append(f"{rel}:{lineno}: {header}: include a public header as users do "
                              f"(\"{header[len('include/'):]}\")")
                continue
            if FOREIGN.match(header):
                continue
            target = layer_of_include(header)
            if target is None:
                errors.append(f"{rel}:{lineno}: {own} includes {header} (no layer: tests, "
                              "tools and benches are above every layer)")
            elif target == "UNLISTED" or RANK[target] > RANK[own]:
                errors.append(f"{rel}:{lineno}: {own} includes {header} ({target})")
        if own == "runtime" and re.search(r"\bLarsOptions\b", line):
            errors.append(f"{rel}:{lineno}: runtime names LarsOptions (policy belongs in lars/)")


def main():
    root = os.path.join(os.environ["TEST_SRCDIR"], os.environ.get("TEST_WORKSPACE", "__main__"))
    errors, seen = [], 0
    for top in list(DIR_LAYER) + ["include"]:
        for dirpath, _, files in os.walk(os.path.join(root, top)):
            for name in files:
                path = os.path.join(dirpath, name)
                rel = os.path.relpath(path, root)
                if not (SOURCE.search(name) or name == "BUILD"):
                    continue
                with open(path, encoding="utf-8") as f:
                    check_file(rel, f.read(), errors)
                seen += 1
    # The check read the layers it guards (a runfiles change must not make it vacuous).
    for top in ["base", "generators", "runtime", "lars", "c_api", "include"]:
        if not os.path.isdir(os.path.join(root, top)):
            errors.append(f"{top}/ is not in the test's runfiles")
    if seen < 60:
        errors.append(f"only {seen} files read: the runfiles lack the layers' sources")
    for e in errors:
        print(e)
    print(f"{seen} files, {len(errors)} arrows pointing up or unlisted")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
