#!/bin/bash
# The wheel (//python:wheel) installs with pip into a fresh virtualenv (offline: --no-index,
# --no-deps; numpy and torch come from the project's .venv through a .pth file) and
# `import halide_lars` works there with no environment variable, from outside the source tree:
# a NumpyLARS step, then the torch optimizer. Its metadata states the supported range.
set -euo pipefail
whl="$PWD/$1"
ws="$(cd "$(dirname "$(readlink -f "$2")")/.." && pwd)"
site=$(echo "$ws"/.venv/lib/python3*/site-packages)
[[ -d "$site" ]] || { echo "no project virtualenv at $ws/.venv: run ./setup.sh" >&2; exit 1; }
venv="$TEST_TMPDIR/venv"
/usr/bin/python3 -m venv "$venv"
echo "$site" > "$(echo "$venv"/lib/python3*/site-packages)/project_venv.pth"
"$venv/bin/python" -m pip install -q --no-index --no-deps --disable-pip-version-check "$whl"
cd "$TEST_TMPDIR"
env -u HALIDE_LARS_LIB -u PYTHONPATH "$venv/bin/python" - "$venv" <<'PY'
import sys
import numpy as np
import halide_lars
venv = sys.argv[1]
assert halide_lars.__file__.startswith(venv), halide_lars.__file__
assert halide_lars._lib._find_library().startswith(venv), halide_lars._lib._find_library()
w = np.linspace(-1, 1, 5000).astype(np.float32)
opt = halide_lars.NumpyLARS({"w": w}, lr=0.1, momentum=0.9)
before = w.copy()
opt.step({"w": np.ones_like(w)})
assert opt.state("w")["step"] == 1 and not np.array_equal(w, before)
import torch
p = torch.nn.Parameter(torch.ones(4096))
o = halide_lars.LARS8bit([p], lr=0.1, momentum=0.9)
p.grad = torch.ones(4096)
o.step()
assert o.state[p]["state1"].dtype == torch.uint8
print("wheel_test: halide_lars", halide_lars.__version__, "from", halide_lars.__file__)
PY
meta=$(/usr/bin/python3 -c 'import sys, zipfile
z = zipfile.ZipFile(sys.argv[1])
print(z.read(next(n for n in z.namelist() if n.endswith(".dist-info/METADATA"))).decode())' "$whl")
for want in "Requires-Python: >=3.9" "Requires-Dist: numpy>=1.24" \
            'Requires-Dist: torch>=2.6; extra == "torch"'; do
  grep -qxF "$want" <<<"$meta" || { echo "wheel METADATA lacks: $want"; echo "$meta"; exit 1; }
done
"$venv/bin/python" -m pip show -f halide_lars | grep -E "^(Name|Version)|libhalide_lars.so"
