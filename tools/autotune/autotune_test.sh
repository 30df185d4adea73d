#!/bin/bash
# 1. A tiny sweep (2 variants of lars_update_f32 on 1M elements) must build, run, and pick a
#    winner, with Halide's Mullapudi2016 and Adams2019 autoschedulers timed as baselines.
# 2. A whole-machine run on a tiny budget must write the JSON, CSV, a picture (PNG + SVG with a
#    title, labelled axes and a legend) and a tuning table that parses, holding only
#    GeneratorParams it measured.
set -euo pipefail
tmp="${TEST_TMPDIR:-$(mktemp -d)}"
# The project's .venv (matplotlib for the picture): runfiles are links into the checkout.
export MPLCONFIGDIR="$tmp/mpl"
python="$(cd "$(dirname "$(readlink -f "$1")")/../.." && pwd)/.venv/bin/python"
"$python" "$1" --family lars_update_f32 --param chunk=4096,65536 --n 1048579 --reps 3 \
  --generator "$2" --runtime "$3" --json "$tmp/sweep.json"
"$python" - "$tmp/sweep.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
assert len(r["results"]) == 2 and r["best"]["gbps"] > 0, r
names = sorted(b["autoscheduler"] for b in r["baselines"])
assert names == ["Adams2019", "Mullapudi2016"] and all(b["gbps"] > 0 for b in r["baselines"]), r
# Every variant was timed beside the in-place triad of the same run (interleaved rounds).
assert all(x["triad_gbps"] > 0 for x in r["results"] + r["baselines"]), r
print("autotune sweep OK:", r["best"], r["baselines"])
PY
# 1b. ISAs compared in one run (isa is not a GeneratorParam: it swaps the target's ISA), with
#     the task-count knob. (No speed is asserted: a memory-bound kernel may tie.)
"$python" "$1" --family lars_norms_f32 --param isa=x86-64-linux-avx2-fma,x86-64-linux \
  --param tasks=16 --n 4194304 --reps 5 --autoschedulers= \
  --generator "$2" --runtime "$3" --json "$tmp/isa.json"
"$python" - "$tmp/isa.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
isas = sorted(x["params"]["isa"] for x in r["results"])
assert isas == ["x86-64-linux", "x86-64-linux-avx2-fma"], isas
# Each variant is built for its ISA only: none of the host's ISA features (e.g. avx512_skylake
# of the default target on this CI machine) remain in its target.
for x in r["results"]:
    features = x["target"].split("-")
    assert features[:3] == x["params"]["isa"].split("-")[:3], x["target"]
    assert not any(f.startswith("avx512") for f in features), x["target"]
    assert "strict_float" in features and "user_context" in features, x["target"]
    if x["params"]["isa"] == "x86-64-linux":
        assert "avx2" not in features and "fma" not in features, x["target"]
assert all(x["gbps"] > 0 and x["triad_gbps"] > 0 for x in r["results"]), r
print("autotune isa sweep OK:", [(x["params"]["isa"], round(x["gbps"], 1)) for x in r["results"]])
PY
"$python" "$1" --backend=cpu --budget=0.3 --n 65536 --reps 3 --autoschedulers= \
  --generator "$2" --runtime "$3" --out "$tmp/out" --table "$tmp/tuning_table.bzl"
"$python" - "$tmp" "$1" <<'PY'
import csv, json, os, sys
d = sys.argv[1]
r = json.load(open(os.path.join(d, "out", "tuning.json")))
assert r["winners"], r
rows = list(csv.DictReader(open(os.path.join(d, "out", "tuning.csv"))))
assert len(rows) == len(r["results"]) >= 1, rows
assert open(os.path.join(d, "out", "tuning.png"), "rb").read(8) == b"\x89PNG\r\n\x1a\n"
assert "<svg" in open(os.path.join(d, "out", "tuning.svg")).read(1000)
# The picture reads: title, axis labels, a tick per family, one bar per timed variant, a legend.
sys.path.insert(0, os.path.dirname(os.path.realpath(sys.argv[2])))
import autotune
fig = autotune.plot_figure(r["results"], list(autotune.SPACES))
ax = fig.axes[0]
assert "autotune" in ax.get_title() and "triad" in ax.get_ylabel() and ax.get_xlabel(), ax
families = sorted({x["family"] for x in r["results"]})
assert sorted(t.get_text() for t in ax.get_xticklabels()) == families, ax.get_xticklabels()
assert len(ax.patches) == len([x for x in r["results"] if x["kind"] != "baseline_failed"])
kinds = {"ours"} | {"baseline" for x in r["results"] if x["kind"] == "baseline"}
assert len(ax.get_legend().get_texts()) == len(kinds) + 1, ax.get_legend().get_texts()  # + winner
# Bars are each variant's bandwidth over its run's triad bandwidth (not seconds), in order.
heights = [p.get_height() for p in ax.patches]
want = [x["gbps"] / x["triad_gbps"] for f in autotune.SPACES for x in r["results"]
        if x["family"] == f and x["kind"] != "baseline_failed"]
assert heights == want, (heights, want)
scope = {}
exec(open(os.path.join(d, "tuning_table.bzl")).read(), scope)
tuning = scope["TUNING"]
for family, params in r["winners"].items():
    assert tuning[family.rsplit("_", 1)[0] + "/cpu"] == params, (tuning, r["winners"])
print("autotune whole-machine OK:", tuning)
PY
