#!/bin/bash
# Runs tests/lint/schedule_lint.py (first argument) over every CPU kernel's lowered statements.
set -euo pipefail
script="$1"
shift
exec /usr/bin/python3 "$script" "$@"
