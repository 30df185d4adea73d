"""Checks the ABI surface of halide_lars:
 1. libhalide_lars.so exports exactly the functions declared in lars_c.h (no Halide runtime,
    no kernels, no C++);
 2. julia/HalideLars.jl binds every one of them (ccall with the same number of arguments) and
    does not mirror lars_options_t (it fills one from lars_option_info);
 3. lars_options_t has exactly one field per option of include/halide_lars/options.inc, named alike.
Usage: abi_surface_check.py LIB.so lars_c.h HalideLars.jl options.inc
"""
import re
import subprocess
import sys

lib, header, julia, options_inc = sys.argv[1:5]
h = open(header).read()
decls = {}
for m in re.finditer(r"\b(?:lars_status_t|int32_t|int64_t|const char\*)\s+(lars_[a-z_]+)\(([^)]*)\);", h):
    args = m.group(2).strip()
    decls[m.group(1)] = 0 if args in ("", "void") else args.count(",") + 1
assert len(decls) >= 20, decls
# XLA FFI handlers (XLA_FFI_Error* name(XLA_FFI_CallFrame*)), declared as void* in lars_c.h: for
# JAX's register_ffi_target, not for C or Julia callers.
ffi = set(re.findall(r"\bvoid\*\s+(halide_lars_xla_[a-z0-9_]+)\(void\* call_frame\);", h))
assert len(ffi) == 3, ffi

out = subprocess.run(["nm", "-D", "--defined-only", lib], capture_output=True, text=True, check=True)
exported = {line.split()[-1] for line in out.stdout.splitlines() if " T " in line}
errors = []
if exported != set(decls) | ffi:
    errors.append(f"exports differ from lars_c.h: extra {sorted(exported - set(decls) - ffi)[:10]}, "
                  f"missing {sorted((set(decls) | ffi) - exported)}")

jl = open(julia).read()
for name, nargs in decls.items():
    m = re.search(r"ccall\(\(:%s, libhalide_lars\),\s*\w+(?:\{\w+\})?,\s*\(([^)]*)\)" % name, jl)
    if not m:
        errors.append(f"julia: no ccall for {name}")
        continue
    types = [t for t in m.group(1).split(",") if t.strip()]
    if len(types) != nargs:
        errors.append(f"julia: {name} binds {len(types)} arguments, lars_c.h has {nargs}")

fields = re.findall(r"^\s+\w+\s+(\w+);", re.search(r"typedef struct \{(.*?)\} lars_options_t;", h, re.S).group(1), re.M)
if "struct Options" in jl:
    errors.append("julia: mirrors lars_options_t (struct Options): use options_buffer")
table = re.findall(r"^LARS_OPTION\((\w+),", open(options_inc).read(), re.M)
if sorted(fields) != sorted(table):
    errors.append(f"lars_options_t fields {fields} != include/halide_lars/options.inc options {table}")

if errors:
    print("\n".join(errors))
    sys.exit(1)
print(f"OK: {len(decls)} functions exported and bound in Julia; {len(fields)} option fields = "
      f"halide_lars/options.inc")
