#!/bin/bash
set -euo pipefail
exec /usr/bin/python3 "$4" "$1" "$2" "$3" "$5"
