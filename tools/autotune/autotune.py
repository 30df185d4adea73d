#!/usr/bin/env python3
"""Schedule autotuning for halide_lars kernels on THIS machine: sweeps GeneratorParams (no code
edits), AOT-compiles each variant with the project's generator binary, times all variants of a
family in ONE harness process -- interleaved rounds after a warm-up, the median of --reps per
variant, with an in-place triad (the roofline) timed in the same rounds -- and keeps the fastest.
Timing variants one process after another ranked them by this machine's bandwidth drift (the
triad moves between 55 and 120 GB/s within minutes) more than by their schedules.

Whole-machine run (every CPU family, default search spaces, a time budget):

    bazel run //tools/autotune -- --backend=cpu --budget=10

  writes tools/autotune/out/{tuning.json,tuning.csv,tuning.png,tuning.svg} and installs
  generators/tuning_table.bzl (the GeneratorParams generators/kernels.bzl builds with), so the
  next `bazel build` picks the winners up. --no-install leaves the table alone.

One family, your own grid:

    python3 tools/autotune/autotune.py --family lars_update_f32 \\
        --param chunk=4096,16384,65536 --param vector_width=8,16 --n 33554432 --json out.json

Families: norms_f32, lars_norms_f32, lars_update_f32, lars_momentum_f32, lars_apply_f32,
lars8bit_norms_f32, lars8bit_update_f32 (CPU; 8-bit at block 256).
A family's winner applies to every dtype of its op (the schedules are dtype-independent); the
winner of lars_norms also goes to lars_flat_norms (their shared reduction tree keeps the flat-set
step bit-identical to the per-tensor one), lars_update's to lars_flat_update, and the 8-bit
families' to their flat-set kernels likewise. One size
bucket: sweeps at 64K and 1M elements gave the same winners within 3 % on this machine, so the
runtime does not dispatch by size (revisit with a GPU). --backend=cuda needs a CUDA device
(GPU schedules cannot be timed without one) and says so.

Baselines in the same run: each family scheduled by Halide 14's own autoschedulers
(--autoschedulers, default Mullapudi2016,Adams2019; plugins from Debian's libhalide14 in
--plugin-dir), compiled from the same algorithm (the generators' auto_schedule path with their
estimates) and timed by the same harness.
"""
import argparse
import csv
import itertools
import json
import os
import re
import subprocess
import sys
import tempfile
import time

# The timing harness, a C++ template next to this script (its two marked lines are filled per
# family: the variants' headers, and one timed run per variant).
HARNESS_TEMPLATE = os.path.join(os.path.dirname(os.path.realpath(__file__)), "harness.cc.in")


# The harness calls each kernel by the argument names of runtime/kernel_ops.inc (the list the
# runtime's named-argument structs come from, checked against every kernel's metadata by
# //tests/runtime:kernel_args_test), so its positional order is written nowhere else.
KERNEL_OPS = os.path.join(os.path.dirname(os.path.realpath(__file__)), "..", "..", "runtime",
                          "kernel_ops.inc")
# The value of each argument in a timing run: the harness's buffers and typical options.
ARG_VALUES = {"p": "p", "g": "g", "m": "m", "gscale": "gscale", "norms": "norms",
              "codes": "codes", "absmax": "absmax", "code": "code", "mids": "mids", "lut": "lut",
              "lr": "0.01f", "momentum": "0.9f", "dampening": "0.0f", "weight_decay": "1e-4f",
              "nesterov": "false", "first_step": "false", "trust_mode": "0",
              "max_unorm": "0.02f", "trust_coefficient": "1e-3f", "eps": "1e-8f",
              # outputs: in place over their inputs; the norms outputs into `norms`
              "out": "norms", "p_out": "p", "m_out": "m", "codes_out": "codes",
              "absmax_out": "absmax"}
ARG_OVERRIDES = {"norms": {"x": "p", "out": "out"}}
PRELUDE = {"norms": "Buffer<float, 1> out(2); "}


def kernel_ops(path=KERNEL_OPS):
    """{op: [argument name, ...]} in the generated order, from runtime/kernel_ops.inc."""
    text = re.sub(r"//[^\n]*", "", open(path).read())
    ops = {}
    for row in re.split(r"(?=LARS_OP\()", text):
        m = re.match(r"LARS_OP\(\s*\w+\s*,\s*(\w+)\s*,", row)
        if not m:
            continue
        names = []
        for kind, body in re.findall(r"LARS_(IN|OUT|ARG)\(([^)]*)\)", row):
            parts = [x.strip() for x in body.split(",")]
            names.append(parts[1] if kind == "ARG" else parts[0])
        ops[m.group(1)] = names
    return ops


def harness_call(op, ops=None):
    """The harness's call of an `op` kernel named `cand`, its arguments by name."""
    names = (ops or kernel_ops())[op]
    own = ARG_OVERRIDES.get(op, {})
    values = [own[n] if n in own else ARG_VALUES[n] for n in names]
    return PRELUDE.get(op, "") + "return cand(nullptr, " + ", ".join(values) + ");"


BYTES = {"norms": 4, "lars_norms": 12, "lars_update": 20, "lars_momentum": 16, "lars_apply": 12,
         "lars8bit_norms": 9, "lars8bit_update": 14}
TRIAD_BYTES = 12

# Default search spaces of the whole-machine run (CPU). The defaults of the generators are in
# every grid, so a run never installs anything slower than what it measured for them.
SPACES = {
    # tasks: how many contiguous ranges a parallel loop is cut into (generators/common.h
    # UnitsPerTask); 4096 = one chunk per task, the old schedule, kept as a reference.
    # specialize_steady: a select-free copy of the loop for !first_step && !nesterov.
    "lars_update_f32": {"chunk": ["16384", "65536"], "vector_width": ["8", "16"],
                        "tasks": ["16", "64", "4096"], "specialize_steady": ["false", "true"]},
    # lars_norms' chunk is part of the flat set ABI (kFlatChunk); its lanes are tunable.
    "lars_norms_f32": {"vector_width": ["8", "16"], "tasks": ["16", "64", "4096"],
                       "specialize_steady": ["false", "true"]},
    "lars_momentum_f32": {"chunk": ["16384", "65536"], "vector_width": ["8", "16"],
                          "tasks": ["16", "64", "4096"]},
    "lars_apply_f32": {"chunk": ["16384", "65536"], "vector_width": ["8", "16"],
                       "tasks": ["16", "64", "4096"]},
    "norms_f32": {"chunk": ["32768", "131072"], "vector_width": ["8", "16"],
                  "tasks": ["16", "64", "4096"]},
    # 8-bit state (block 256); lars8bit_norms' lanes are its reduction tree (shared with the
    # flat set kernel). blocks_per_task (the least per task) is left alone: tasks groups blocks.
    "lars8bit_norms_f32": {"vector_width": ["8", "16"], "tasks": ["16", "64", "4096"],
                           "specialize_steady": ["false", "true"]},
    "lars8bit_update_f32": {"vector_width": ["16", "32"], "tasks": ["16", "64", "4096"],
                            "specialize_steady": ["false", "true"]},
}
# The table entry a family's winner goes to, and the ops that share it (kernels.bzl).
TABLE_HEADER = '''"""Tuned GeneratorParams per (op, backend), written by tools/autotune (do not edit by hand:
rerun `bazel run //tools/autotune -- --backend=cpu --budget=10` on the target machine).

generators/kernels.bzl applies TUNING["<op>/<backend>"] to every dtype of that op, and
lars_norms' entry also to lars_flat_norms (their reduction trees must stay identical),
lars_update's to lars_flat_update.
"""

'''


def host_target():
    """The ISA the build's CPU multitarget kernels dispatch to here (bazel/halide.bzl)."""
    try:
        flags = set(open("/proc/cpuinfo").read().split())
    except OSError:
        flags = set()
    if {"avx512f", "avx512cd", "avx512bw", "avx512dq", "avx512vl"} <= flags:
        isa = "x86-64-linux-avx512_skylake"
    elif {"avx2", "fma"} <= flags:
        isa = "x86-64-linux-avx2-fma"
    else:
        isa = "x86-64-linux"
    return isa + "-user_context-no_runtime-strict_float"


# Halide's x86 ISA target features: what an "isa" value replaces (the rest of --target, e.g.
# user_context-no_runtime-strict_float, is kept).
X86_ISA_FEATURES = {"sse41", "avx", "avx2", "fma", "fma4", "f16c", "avx512", "avx512_knl",
                    "avx512_skylake", "avx512_cannonlake", "avx512_sapphirerapids",
                    "avx512_zen4", "avxvnni", "avx512_vnni", "avx512_bf16", "avx512_fp16"}


def with_isa(target, isa):
    """`target` with its arch-bits-os and ISA features replaced by `isa` (e.g.
    x86-64-linux-avx2-fma): the host's ISA features of the default target do not leak into
    the variant being compared."""
    rest = [f for f in target.split("-")[3:] if f not in X86_ISA_FEATURES]
    return "-".join([isa] + rest)


def parse_args(argv):
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--family", help="one registered generator, e.g. lars_update_f32")
    ap.add_argument("--param", action="append", default=[], help="name=v1,v2,... (GeneratorParam)")
    ap.add_argument("--backend", choices=["cpu", "cuda"], help="tune every family of a backend")
    ap.add_argument("--budget", type=float, default=10.0, help="minutes (whole-machine run)")
    ap.add_argument("--n", type=int, default=1 << 25)
    ap.add_argument("--reps", type=int, default=15, help="interleaved rounds (median per variant)")
    ap.add_argument("--target", default=host_target(),
                    help="Halide target of the variants (default: the best ISA of the build's "
                    "CPU multitarget list that this machine runs, as the kernels will dispatch)")
    ap.add_argument("--generator", default="bazel-bin/generators/generators")
    ap.add_argument("--runtime", default="bazel-bin/generators/halide_runtime.a")
    ap.add_argument("--autoschedulers", default="Mullapudi2016,Adams2019",
                    help="comma-separated Halide autoschedulers to time as baselines ('' for none)")
    ap.add_argument("--plugin-dir", default="/usr/lib/x86_64-linux-gnu/halide14")
    ap.add_argument("--json", help="write all results here")
    ap.add_argument("--out", help="output directory of the whole-machine run "
                    "(default: <workspace>/tools/autotune/out)")
    ap.add_argument("--table", help="tuning table to install (default: "
                    "<workspace>/generators/tuning_table.bzl)")
    ap.add_argument("--no-install", action="store_true", help="do not rewrite the tuning table")
    args = ap.parse_args(argv)
    if (args.family is None) == (args.backend is None):
        ap.error("give exactly one of --family (one sweep) or --backend (every family)")
    return args


class Tuner:
    """Builds variants, times each family's variants together; remembers every result."""

    def __init__(self, args, tmp):
        self.args, self.tmp = args, tmp
        self.variant = itertools.count()
        self.results = []  # dicts: family, kind (ours|baseline|baseline_failed), label, params,
        #                    seconds, gbps, triad_gbps (the same run's in-place triad)

    def build(self, family, extra, target=None):
        """AOT-compiles one variant as cand_<k> (its own .a/.h); returns the function name."""
        k = next(self.variant)
        name = f"cand_{k}"
        gen = [self.args.generator, "-g", family, "-f", name, "-n", name, "-o", self.tmp,
               "-e", "static_library,c_header", "target=" + (target or self.args.target)] + extra
        subprocess.run(gen, check=True, capture_output=True)
        return name

    def ours(self, family, params):
        """A variant of ours, built (timed later by time_group)."""
        # "isa" is not a GeneratorParam: it swaps the ISA part of --target (compare ISAs in one
        # run, e.g. --param isa=x86-64-linux-avx2-fma,x86-64-linux-avx512_cannonlake).
        target = None
        if "isa" in params:
            target = with_isa(self.args.target, params["isa"])
        fn = self.build(family, [f"{k}={v}" for k, v in params.items() if k != "isa"], target)
        return {"family": family, "kind": "ours", "label": json.dumps(params, sort_keys=True),
                "params": params, "fn": fn, "target": target or self.args.target}

    def baselines(self, family):
        """Halide's autoschedulers' versions of the family, built (or recorded as failed)."""
        found = []
        for name in [a for a in self.args.autoschedulers.split(",") if a]:
            plugin = os.path.join(self.args.plugin_dir, f"libautoschedule_{name.lower()}.so")
            if not os.path.exists(plugin):
                print(f"  {name}: {plugin} not found, baseline skipped", flush=True)
                continue
            try:
                fn = self.build(family, ["-p", plugin, "-s", name, "auto_schedule=true"])
            except subprocess.CalledProcessError as e:  # the autoscheduler itself failed
                why = (e.stderr or b"").decode(errors="replace").strip().splitlines()
                print(f"  baseline {name:14s} failed: {why[-1] if why else e}", flush=True)
                self.results.append({"family": family, "kind": "baseline_failed", "label": name,
                                     "autoscheduler": name, "params": {}, "seconds": 0.0,
                                     "gbps": 0.0, "triad_gbps": 0.0})
                continue
            found.append({"family": family, "kind": "baseline", "label": name,
                          "autoscheduler": name, "params": {}, "fn": fn})
        return found

    def time_group(self, family, variants):
        """Times `variants` (built by ours/baselines) and a triad in one process, interleaved;
        records and returns them with seconds (median), gbps and the run's triad_gbps."""
        if not variants:
            return []
        op = family.rsplit("_", 1)[0]
        headers = "".join(f'#include "{v["fn"]}.h"\n' for v in variants)
        runs = ""
        for v in variants:
            call = harness_call(op).replace("cand(", v["fn"] + "(")
            runs += f'  runs.emplace_back("{v["fn"]}", [&]() -> int {{ {call} }});\n'
        with open(HARNESS_TEMPLATE) as f:
            src = f.read().replace("// @KERNEL_HEADERS@\n", headers)
        src = src.replace("  // @CANDIDATE_RUNS@\n", runs)
        k = next(self.variant)
        harness, exe = (os.path.join(self.tmp, f"harness_{k}{x}") for x in (".cc", ""))
        with open(harness, "w") as f:
            f.write(src)
        subprocess.run(["g++", "-O2", "-std=c++17", "-fopenmp", "-I/usr/include/halide14",
                        "-I" + self.tmp, harness]
                       + [os.path.join(self.tmp, v["fn"] + ".a") for v in variants]
                       + [self.args.runtime, "-ldl", "-lpthread", "-o", exe],
                       check=True, capture_output=True)
        # OpenMP threads that spin after the triad would take a core from the next variant.
        env = dict(os.environ, OMP_WAIT_POLICY="passive")
        out = subprocess.run([exe, str(self.args.n), str(self.args.reps)], check=True,
                             capture_output=True, text=True, env=env).stdout
        seconds = dict((w[0], float(w[1])) for w in (l.split() for l in out.splitlines()))
        triad_gbps = TRIAD_BYTES * self.args.n / seconds["triad"] / 1e9
        for v in variants:
            v["seconds"] = seconds[v.pop("fn")]
            v["gbps"] = BYTES[op] * self.args.n / v["seconds"] / 1e9
            v["triad_gbps"] = triad_gbps
            self.results.append(v)
        return variants

    def best(self, family):
        mine = [r for r in self.results if r["family"] == family and r["kind"] == "ours"]
        return min(mine, key=lambda r: r["seconds"]) if mine else None


def grid(space):
    names = sorted(space)
    return [dict(zip(names, combo)) for combo in itertools.product(*(space[k] for k in names))]


def plot_figure(results, families):
    """Every timed variant as a bar, grouped by family: its bandwidth as a fraction of the in-place
    triad timed in the same rounds (1.0 = the roofline), blue ours, green the family's winner,
    red Halide's autoscheduler baselines. Returns the matplotlib figure."""
    import matplotlib
    matplotlib.use("Agg")  # files only
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    colors = {"ours": "tab:blue", "winner": "tab:green", "baseline": "tab:red"}
    # Wide enough to tell bars apart, but never wider than a screen (bars narrow instead).
    fig, ax = plt.subplots(figsize=(min(14.0, max(6.0, 1.2 + 0.12 * len(results))), 4.5),
                           dpi=100)
    shown = set()
    x, centers, names = 0.0, [], []
    for fam in families:
        rows = [r for r in results if r["family"] == fam and r["kind"] != "baseline_failed"]
        if not rows:
            continue
        best = min((r for r in rows if r["kind"] == "ours"), key=lambda r: r["seconds"],
                   default=None)
        start = x
        for r in rows:
            kind = "winner" if r is best else r["kind"]
            shown.add(kind)
            ax.bar(x, r["gbps"] / r["triad_gbps"], width=0.8, color=colors[kind])
            x += 1.0
        centers.append((start + x - 1.0) / 2)
        names.append(fam)
        x += 1.0  # a gap between families
    ax.axhline(1.0, color="black", linewidth=0.8, linestyle="--")
    ax.set_xticks(centers)
    ax.set_xticklabels(names, rotation=20, ha="right")
    ax.set_xlabel("kernel family (one bar per timed variant)")
    ax.set_ylabel("bandwidth / in-place triad bandwidth")
    ax.set_title("autotune: each schedule variant against the in-place triad of the same run "
                 f"({len(ax.patches)} variants)")
    labels = {"ours": "our schedule variant", "winner": "the family's winner (installed)",
              "baseline": "Halide autoscheduler baseline"}
    ax.legend(handles=[Patch(color=colors[k], label=labels[k]) for k in labels if k in shown],
              loc="upper right", fontsize="small")
    ax.grid(True, axis="y", alpha=0.3)
    fig.tight_layout()
    return fig


def write_plot(out_dir, results, families):
    """tuning.png and tuning.svg in out_dir (plot_figure)."""
    fig = plot_figure(results, families)
    for ext in ("png", "svg"):
        fig.savefig(os.path.join(out_dir, f"tuning.{ext}"))


def write_table(path, winners, measured_on):
    lines = [TABLE_HEADER, f"# Measured on: {measured_on}\n", "TUNING = {\n"]
    for family in sorted(winners):
        op = family.rsplit("_", 1)[0]
        params = {k: str(v) for k, v in sorted(winners[family].items())}
        lines.append(f'    "{op}/cpu": {json.dumps(params)},\n')
    lines.append("}\n")
    with open(path, "w") as f:
        f.write("".join(lines))


def report_group(tuner, family, timed):
    """Progress lines for one family's variants, timed together."""
    for r in timed:
        best = tuner.best(family)
        print(f"  {family} {r['kind']:8s} {r['label']:48s} {r['seconds'] * 1e3:9.4f} ms "
              f"{r['gbps']:7.2f} GB/s {r['gbps'] / r['triad_gbps']:5.2f}x triad | best "
              f"{best['gbps']:.2f} GB/s", flush=True)


def whole_machine(args, tuner):
    if args.backend == "cuda":
        sys.exit("--backend=cuda: GPU schedules are timed on a GPU; no CUDA device is usable here "
                 "(the CUDA kernels are still built and their PTX checked by //tests/lint:ptx_check)")
    workspace = os.environ.get("BUILD_WORKSPACE_DIRECTORY", os.getcwd())
    out = args.out or os.path.join(workspace, "tools", "autotune", "out")
    table = args.table or os.path.join(workspace, "generators", "tuning_table.bzl")
    os.makedirs(out, exist_ok=True)
    plan = [(fam, params) for fam in SPACES for params in grid(SPACES[fam])]
    deadline = time.time() + 60 * args.budget
    print(f"autotune: {len(plan)} variants of {len(SPACES)} families + autoscheduler baselines, "
          f"n={args.n}, budget {args.budget:g} min", flush=True)
    done_families, built, done = [], [], 0
    for i, (family, params) in enumerate(plan):
        left = deadline - time.time()
        if left <= 0:
            print(f"budget spent after {i}/{len(plan)} variants: keeping the best so far",
                  flush=True)
            break
        built.append(tuner.ours(family, params))
        print(f"[{i + 1}/{len(plan)}] built {family} {built[-1]['label']} | "
              f"{left / 60:.1f} min left", flush=True)
        last_of_family = i + 1 == len(plan) or plan[i + 1][0] != family
        if last_of_family or time.time() >= deadline:
            if time.time() < deadline:
                built += tuner.baselines(family)
            report_group(tuner, family, tuner.time_group(family, built))
            done_families.append(family)
            built = []
    if built:  # the budget ran out inside a family: time what was built
        family = built[0]["family"]
        report_group(tuner, family, tuner.time_group(family, built))
        done_families.append(family)
    winners = {fam: tuner.best(fam)["params"] for fam in done_families}
    with open(os.path.join(out, "tuning.json"), "w") as f:
        json.dump({"n": args.n, "target": args.target, "results": tuner.results,
                   "winners": winners}, f, indent=2)
    with open(os.path.join(out, "tuning.csv"), "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["family", "kind", "variant", "seconds", "gbps", "triad_gbps"])
        for r in tuner.results:
            w.writerow([r["family"], r["kind"], r["label"], f"{r['seconds']:.6f}",
                        f"{r['gbps']:.3f}", f"{r['triad_gbps']:.3f}"])
    write_plot(out, tuner.results, list(SPACES))
    print(f"\nwrote {out}/tuning.json, tuning.csv, tuning.png, tuning.svg")
    for fam in done_families:
        best = tuner.best(fam)
        line = f"  {fam:20s} best {best['label']:40s} {best['gbps']:7.2f} GB/s"
        for r in tuner.results:
            if r["family"] == fam and r["kind"] == "baseline":
                line += f" | {r['label']} {r['seconds'] / best['seconds']:.2f}x slower"
            elif r["family"] == fam and r["kind"] == "baseline_failed":
                line += f" | {r['label']} failed"
        print(line)
    if not args.no_install and winners:
        write_table(table, winners, args.target)
        print(f"installed {table}: rebuild (bazel build //...) to use it")


def one_family(args, tuner):
    op = args.family.rsplit("_", 1)[0]
    if op not in BYTES or not args.family.endswith("_f32"):
        sys.exit(f"unsupported family {args.family}: one of {', '.join(k + '_f32' for k in BYTES)}")
    space = {}
    for p in args.param:
        k, v = p.split("=", 1)
        space[k] = v.split(",")
    combos = grid(space)
    built = []
    for i, params in enumerate(combos):
        built.append(tuner.ours(args.family, params))
        print(f"[{i + 1}/{len(combos)}] built {built[-1]['label']}", flush=True)
    baselines = tuner.baselines(args.family)
    report_group(tuner, args.family, tuner.time_group(args.family, built + baselines))
    best = tuner.best(args.family)
    print(f"\nbest for {args.family} (n={args.n}): {best['params']}  {best['gbps']:.2f} GB/s")
    print("generators/kernels.bzl params: " + json.dumps({k: str(v) for k, v in best["params"].items()}))
    for b in baselines:
        print(f"ours (best) / {b['autoscheduler']}: {b['seconds'] / best['seconds']:.2f}x faster")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"family": args.family, "n": args.n, "target": args.target,
                       "results": [r for r in tuner.results if r["kind"] == "ours"],
                       "best": best, "baselines": baselines}, f, indent=2)


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    for f in (args.generator, args.runtime):
        if not os.path.exists(f):
            sys.exit(f"{f} not found: bazel build //generators:generators //generators:halide_runtime")
    with tempfile.TemporaryDirectory(dir=os.environ.get("AUTOTUNE_TMP")) as tmp:
        tuner = Tuner(args, tmp)
        if args.backend:
            whole_machine(args, tuner)
        else:
            one_family(args, tuner)


if __name__ == "__main__":
    main()
