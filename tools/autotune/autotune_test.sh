#!/bin/bash
# A tiny sweep (2 variants of lars_update_f32 on 1M elements) must build, run, and pick a winner,
# with Halide's Mullapudi2016 and Adams2019 autoschedulers timed as baselines in the same run.
set -euo pipefail
out="${TEST_TMPDIR:-$(mktemp -d)}/sweep.json"
/usr/bin/python3 "$1" --family lars_update_f32 --param chunk=4096,65536 --n 1048579 --reps 3 \
  --generator "$2" --runtime "$3" --json "$out"
/usr/bin/python3 - "$out" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
assert len(r["results"]) == 2 and r["best"]["gbps"] > 0, r
names = sorted(b["autoscheduler"] for b in r["baselines"])
assert names == ["Adams2019", "Mullapudi2016"] and all(b["gbps"] > 0 for b in r["baselines"]), r
print("autotune OK:", r["best"], r["baselines"])
PY
