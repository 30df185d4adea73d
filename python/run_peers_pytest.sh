#!/bin/bash
# Runs Python tests with the peers virtualenv (./setup.sh --peers: real bitsandbytes, torch 2.x)
# when the checkout has one, else with Debian's python3, where they skip saying why.
# Usage: run_peers_pytest.sh LIBHALIDE_LARS_SO TEST_FILE...
set -euo pipefail
export HALIDE_LARS_LIB="$PWD/$1"
shift
export PYTHONPATH="$PWD/python${PYTHONPATH:+:$PYTHONPATH}"
# The checkout: where this test's sources really are (runfiles are links into it).
ws="$(cd "$(dirname "$(readlink -f "$1")")/../.." && pwd)"
py=/usr/bin/python3
if [[ -x "$ws/.peers/bin/python" ]]; then
  py="$ws/.peers/bin/python"
  echo "run_peers_pytest: peers virtualenv $ws/.peers"
else
  echo "run_peers_pytest: no peers virtualenv at $ws/.peers (./setup.sh --peers): tests skip"
fi
rc=0
"$py" -m pytest -q -rs -p no:cacheprovider "$@" || rc=$?
# 5: pytest collected nothing to run -- every module skipped (no bitsandbytes), as intended.
[[ $rc -eq 5 ]] && rc=0
exit $rc
