#!/bin/bash
# Runs the Python tests with Debian's interpreter (never the python3 first on PATH).
# Usage: run_pytest.sh LIBHALIDE_LARS_SO TEST_FILE...
set -euo pipefail
export HALIDE_LARS_LIB="$PWD/$1"
shift
export PYTHONPATH="$PWD/python${PYTHONPATH:+:$PYTHONPATH}"
exec /usr/bin/python3 -m pytest -q -p no:cacheprovider "$@"
