#!/bin/bash
# //examples:demo end to end on a short run: it must write the curves as JSON and CSV and draw
# them (PNG and SVG) with a title, labelled axes and a legend naming every run.
set -euo pipefail
runfiles="${RUNFILES_DIR:-$0.runfiles}/halide_lars"
out="$TEST_TMPDIR/curves"
export MPLCONFIGDIR="$TEST_TMPDIR/mpl"
"$runfiles/examples/demo" --epochs=2 --runs=sgd_large,lars,lars8bit --out="$out"
ws="$(cd "$(dirname "$(readlink -f "$runfiles/python/requirements.txt")")/.." && pwd)"
"$ws/.venv/bin/python" "$runfiles/examples/check_plot.py" "$runfiles/examples/plot_demo.py" "$out"
