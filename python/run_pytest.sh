#!/bin/bash
# Runs Python tests in the project's virtualenv .venv/ (./setup.sh makes it from PyPI with the
# pinned python/requirements.txt: torch 2.x, bitsandbytes, timm, jax/optax), never the python3
# first on PATH. The requirements file is a data dependency, so Bazel reruns the tests when it
# changes; a .venv made from other requirements is an error that says to run ./setup.sh.
# Usage: run_pytest.sh LIBHALIDE_LARS_SO REQUIREMENTS_TXT TEST_FILE...
set -euo pipefail
export HALIDE_LARS_LIB="$PWD/$1"
req="$2"
shift 2
export PYTHONPATH="$PWD/python${PYTHONPATH:+:$PYTHONPATH}"
# The checkout: where the requirements file really is (runfiles are links into it).
ws="$(cd "$(dirname "$(readlink -f "$req")")/.." && pwd)"
py="$ws/.venv/bin/python"
if [[ ! -x "$py" ]] || ! cmp -s "$req" "$ws/.venv/requirements.txt"; then
  echo "run_pytest: $ws/.venv is missing or was not made from python/requirements.txt:" \
       "run ./setup.sh" >&2
  exit 1
fi
exec "$py" -m pytest -q -rs -p no:cacheprovider "$@"
