#!/usr/bin/env python3
"""Builds the halide_lars wheel (no setuptools, no PyPI): the package's modules plus
libhalide_lars.so inside the package, where halide_lars._lib finds it with no environment
variable. Reproducible (fixed timestamps, sorted entries). Used by //python:wheel.
    build_wheel.py --out F.whl --lib libhalide_lars.so --version V MODULE.py...
"""
import argparse
import base64
import ctypes
import hashlib
import os
import sys
import zipfile

TAG = "py3-none-linux_x86_64"  # ctypes over a native library: any CPython 3, x86-64 Linux


def record_line(name, data):
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{name},sha256={digest},{len(data)}"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--lib", required=True)
    ap.add_argument("--version", required=True)
    ap.add_argument("modules", nargs="+")
    args = ap.parse_args()
    built = ctypes.CDLL(os.path.abspath(args.lib)).lars_version
    built.restype = ctypes.c_char_p
    if built().decode() != f"halide_lars {args.version}":
        sys.exit(f"build_wheel: the library says {built().decode()!r}, the wheel would be "
                 f"{args.version}: update WHEEL_VERSION in python/BUILD")
    dist = f"halide_lars-{args.version}.dist-info"
    files = {}
    for m in args.modules:
        with open(m, "rb") as f:
            files[f"halide_lars/{os.path.basename(m)}"] = f.read()
    with open(args.lib, "rb") as f:
        files["halide_lars/libhalide_lars.so"] = f.read()
    files[f"{dist}/METADATA"] = f"""Metadata-Version: 2.1
Name: halide_lars
Version: {args.version}
Summary: The LARS optimizer of bitsandbytes (LARS, LARS8bit, LARS32bit) over AOT-compiled Halide kernels
Requires-Python: >=3.9
Requires-Dist: numpy>=1.24
Provides-Extra: torch
Requires-Dist: torch>=2.6; extra == "torch"

torch.optim optimizers with bitsandbytes' signatures and state layout (halide_lars.LARS,
LARS8bit, LARS32bit), a numpy API (halide_lars.NumpyLARS), over libhalide_lars.so (C ABI).
""".encode()
    files[f"{dist}/WHEEL"] = f"""Wheel-Version: 1.0
Generator: halide_lars build_wheel.py
Root-Is-Purelib: false
Tag: {TAG}
""".encode()
    files[f"{dist}/top_level.txt"] = b"halide_lars\n"
    record = [record_line(n, d) for n, d in sorted(files.items())] + [f"{dist}/RECORD,,"]
    files[f"{dist}/RECORD"] = ("\n".join(record) + "\n").encode()
    with zipfile.ZipFile(args.out, "w", zipfile.ZIP_DEFLATED) as z:
        for name in sorted(files):
            info = zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0))
            info.external_attr = (0o755 if name.endswith(".so") else 0o644) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            z.writestr(info, files[name])


if __name__ == "__main__":
    main()
