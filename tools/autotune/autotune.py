#!/usr/bin/env python3
"""Schedule autotuning for halide_lars kernels on THIS machine: sweeps GeneratorParams (no code
edits), AOT-compiles each variant with the project's generator binary, times it in a small
harness, and prints a table, the winner, and the `params` to put into generators/kernels.bzl.

    bazel build //generators:generators //generators:halide_runtime
    python3 tools/autotune/autotune.py --family lars_update_f32 \\
        --param chunk=4096,16384,65536 --param vector_width=8,16 --n 33554432 --json out.json

Families: norms_f32, lars_norms_f32, lars_update_f32, lars_momentum_f32, lars_apply_f32 (CPU;
GPU families need a GPU machine and are not timed here). Target: the AVX2 sub-target the CPU
dispatcher picks on current x86-64 machines (override with --target).

Baselines in the same run: the family scheduled by Halide 14's own autoschedulers
(--autoschedulers, default Mullapudi2016,Adams2019; plugins from Debian's libhalide14 in
--plugin-dir), compiled from the same algorithm (the generators' auto_schedule path with their
estimates) and timed by the same harness; the summary gives our best / each baseline.
"""
import argparse
import itertools
import json
import os
import subprocess
import sys
import tempfile

HARNESS_PROLOGUE = r'''
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <vector>
#include "HalideBuffer.h"
#include "cand.h"
using Halide::Runtime::Buffer;
int main(int argc, char** argv) {
  const int n = std::atoi(argv[1]), reps = std::atoi(argv[2]);
  std::vector<float> a(n), b(n), c(n);
  for (int i = 0; i < n; ++i) { a[i] = (i % 1000) * 1e-3f - 0.5f; b[i] = ((i * 7) % 1000) * 1e-4f; c[i] = 0.01f; }
  Buffer<float, 1> p(a.data(), n), g(b.data(), n), m(c.data(), n);
  float one = 1.0f;
  float norms_v[3] = {1.0f, 1.0f, 1.0f};
  Buffer<float, 1> gscale(&one, 1), norms(norms_v, 3);
  auto run = [&]() -> int {
'''
CALLS = {
    "norms": "Buffer<float, 1> out(2); return cand(nullptr, p, out);",
    "lars_norms": "return cand(nullptr, p, g, m, gscale, 0.9f, 0.0f, 1e-4f, false, false, norms);",
    "lars_update": "return cand(nullptr, p, g, m, gscale, norms, 0.01f, 0.9f, 0.0f, 1e-4f, false, "
                   "false, 0, 0.02f, 1e-3f, 1e-8f, p, m);",
    "lars_momentum": "return cand(nullptr, p, g, m, gscale, 0.9f, 0.0f, 1e-4f, false, false, m, norms);",
    "lars_apply": "return cand(nullptr, p, g, m, gscale, norms, 0.01f, 0.9f, 1e-4f, false, 0.02f, p);",
}
BYTES = {"norms": 4, "lars_norms": 12, "lars_update": 20, "lars_momentum": 16, "lars_apply": 12}
HARNESS_EPILOGUE = r'''
  };
  if (run() != 0) { std::fprintf(stderr, "kernel failed\n"); return 1; }
  std::vector<double> t;
  for (int r = 0; r < reps; ++r) {
    auto s = std::chrono::steady_clock::now();
    if (run() != 0) return 1;
    t.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - s).count());
  }
  std::sort(t.begin(), t.end());
  std::printf("%.6f\n", t[t.size() / 2]);
  return 0;
}
'''


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--family", required=True, help="registered generator, e.g. lars_update_f32")
    ap.add_argument("--param", action="append", default=[], help="name=v1,v2,... (GeneratorParam)")
    ap.add_argument("--n", type=int, default=1 << 25)
    ap.add_argument("--reps", type=int, default=7)
    ap.add_argument("--target",
                    default="x86-64-linux-avx2-fma-user_context-no_runtime-strict_float")
    ap.add_argument("--autoschedulers", default="Mullapudi2016,Adams2019",
                    help="comma-separated Halide autoschedulers to time as baselines ('' for none)")
    ap.add_argument("--plugin-dir", default="/usr/lib/x86_64-linux-gnu/halide14")
    ap.add_argument("--generator", default="bazel-bin/generators/generators")
    ap.add_argument("--runtime", default="bazel-bin/generators/halide_runtime.a")
    ap.add_argument("--json", help="write all results here")
    args = ap.parse_args()

    op = args.family.rsplit("_", 1)[0]
    if op not in CALLS or not args.family.endswith("_f32"):
        sys.exit(f"unsupported family {args.family}: one of {', '.join(k + '_f32' for k in CALLS)}")
    for f in (args.generator, args.runtime):
        if not os.path.exists(f):
            sys.exit(f"{f} not found: bazel build //generators:generators //generators:halide_runtime")
    names, values = [], []
    for p in args.param:
        k, v = p.split("=", 1)
        names.append(k)
        values.append(v.split(","))
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        harness = os.path.join(tmp, "harness.cc")
        with open(harness, "w") as f:
            f.write(HARNESS_PROLOGUE + "    " + CALLS[op] + HARNESS_EPILOGUE)
        variant = itertools.count()

        def build_and_time(label, extra):
            d = os.path.join(tmp, "v%d" % next(variant))
            os.makedirs(d)
            gen = [args.generator, "-g", args.family, "-f", "cand", "-n", "cand", "-o", d,
                   "-e", "static_library,c_header", "target=" + args.target] + extra
            subprocess.run(gen, check=True, capture_output=True)
            exe = os.path.join(d, "bench")
            subprocess.run(["g++", "-O2", "-std=c++17", "-I/usr/include/halide14", "-I" + d, harness,
                            os.path.join(d, "cand.a"), args.runtime, "-ldl", "-lpthread", "-o", exe],
                           check=True, capture_output=True)
            out = subprocess.run([exe, str(args.n), str(args.reps)], check=True, capture_output=True,
                                 text=True).stdout
            seconds = float(out.strip())
            gbps = BYTES[op] * args.n / seconds / 1e9
            print(f"{label:50s} {seconds * 1e3:9.3f} ms {gbps:8.2f} GB/s", flush=True)
            return seconds, gbps

        combos = list(itertools.product(*values)) if values else [()]
        for i, combo in enumerate(combos):
            params = dict(zip(names, combo))
            seconds, gbps = build_and_time(f"[{i + 1}/{len(combos)}] " + json.dumps(params),
                                           [f"{k}={v}" for k, v in params.items()])
            results.append({"params": params, "seconds": seconds, "gbps": gbps})
        baselines = []
        for name in [a for a in args.autoschedulers.split(",") if a]:
            plugin = os.path.join(args.plugin_dir, f"libautoschedule_{name.lower()}.so")
            if not os.path.exists(plugin):
                print(f"{name}: {plugin} not found, baseline skipped")
                continue
            seconds, gbps = build_and_time(f"baseline: Halide autoscheduler {name}",
                                           ["-p", plugin, "-s", name, "auto_schedule=true"])
            baselines.append({"autoscheduler": name, "seconds": seconds, "gbps": gbps})
    best = min(results, key=lambda r: r["seconds"])
    print(f"\nbest for {args.family} (n={args.n}): {best['params']}  {best['gbps']:.2f} GB/s")
    print("generators/kernels.bzl params: " + json.dumps({k: str(v) for k, v in best["params"].items()}))
    for b in baselines:
        print(f"ours (best) / {b['autoscheduler']}: {b['seconds'] / best['seconds']:.2f}x faster")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"family": args.family, "n": args.n, "target": args.target,
                       "results": results, "best": best, "baselines": baselines}, f, indent=2)


if __name__ == "__main__":
    main()
