#!/usr/bin/env python3
"""Draws the demo's test-accuracy curves from its JSON (//examples:demo_train --out=PREFIX writes
PREFIX.json and PREFIX.csv) as PREFIX.png and PREFIX.svg with matplotlib (the project's .venv).

    plot_demo.py demo_accuracy.json demo_accuracy      -> demo_accuracy.png, demo_accuracy.svg
"""
import json
import sys

import matplotlib

matplotlib.use("Agg")  # files only: no display on a build machine
import matplotlib.pyplot as plt  # noqa: E402

# One look per run kind, so a run reads the same in every picture (LARS8bit dashed over LARS:
# where the two agree both stay visible).
STYLE = {
    "SGD b": dict(color="tab:blue", linestyle="-", marker="o"),
    "LARS b": dict(color="tab:red", linestyle="-", marker="s"),
    "LARS8bit b": dict(color="tab:green", linestyle="--", marker="^"),
}


def style_of(run, small_batch):
    for prefix, style in STYLE.items():
        if run["name"].startswith(prefix):
            s = dict(style)
            if prefix == "SGD b" and run["batch"] != small_batch:
                s.update(color="tab:orange", marker="D")
            return s
    return {}


def figure(data):
    """The test accuracy per epoch of every run, one line each, with title, axes and legend."""
    runs = data["runs"]
    small = min(r["batch"] for r in runs)
    fig, ax = plt.subplots(figsize=(8, 5), dpi=100)
    for r in runs:
        acc = [100.0 * a for a in r["test_acc"]]
        label = (f'{r["name"]}, peak lr {r["peak_lr"]:g}: {acc[-1]:.1f} % '
                 f'({r["seconds"]:.0f} s)')
        ax.plot(range(1, len(acc) + 1), acc, label=label, linewidth=1.8, markersize=4,
                **style_of(r, small))
    setup = data.get("setup", {})
    ax.set_title("Fashion-MNIST MLP %s, %s epochs: test accuracy per epoch" % (
        setup.get("model", ""), setup.get("epochs", len(runs[0]["test_acc"]))))
    ax.set_xlabel("epoch")
    ax.set_ylabel("test accuracy (%)")
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.grid(True, alpha=0.3)
    ax.legend(loc="lower right", title="optimizer, batch (final accuracy, time)")
    fig.tight_layout()
    return fig


def main(argv):
    if len(argv) != 3:
        sys.exit("usage: plot_demo.py DEMO.json OUT_PREFIX")
    with open(argv[1]) as f:
        data = json.load(f)
    fig = figure(data)
    for ext in ("png", "svg"):
        fig.savefig(f"{argv[2]}.{ext}")
    print(f"drew {argv[2]}.png and {argv[2]}.svg")


if __name__ == "__main__":
    main(sys.argv)
