"""Checks what //examples:demo wrote under PREFIX: the curves (JSON, CSV) and a picture a person
can read (checked on the matplotlib figure itself and on the files drawn from it).
Usage: check_plot.py plot_demo.py PREFIX"""
import csv
import importlib.util
import json
import sys

import matplotlib.image

spec = importlib.util.spec_from_file_location("plot_demo", sys.argv[1])
plot_demo = importlib.util.module_from_spec(spec)
spec.loader.exec_module(plot_demo)
prefix = sys.argv[2]

data = json.load(open(prefix + ".json"))
names = [r["name"] for r in data["runs"]]
assert names == ["SGD b8192", "LARS b8192", "LARS8bit b8192"], names
epochs = data["setup"]["epochs"]
assert all(len(r["test_acc"]) == epochs == 2 for r in data["runs"]), data
assert all(0.5 < r["test_acc"][-1] <= 1.0 for r in data["runs"]), data  # they trained
rows = list(csv.DictReader(open(prefix + ".csv")))
assert len(rows) == len(names) * epochs, rows
for r in data["runs"]:  # the CSV holds the JSON's numbers
    assert [float(x["test_acc"]) for x in rows if x["run"] == r["name"]] == r["test_acc"], rows

fig = plot_demo.figure(data)
ax = fig.axes[0]
assert "Fashion-MNIST" in ax.get_title() and "test accuracy" in ax.get_title(), ax.get_title()
assert ax.get_xlabel() == "epoch" and ax.get_ylabel() == "test accuracy (%)"
fig.canvas.draw()  # tick labels exist once drawn
yticks = [t.get_text() for t in ax.get_yticklabels() if t.get_text()]
xticks = [t.get_text() for t in ax.get_xticklabels() if t.get_text()]
assert len(yticks) >= 3 and len(xticks) >= 2, (xticks, yticks)
legend = [t.get_text() for t in ax.get_legend().get_texts()]
assert len(legend) == len(names) and all(n in l for n, l in zip(names, legend)), legend
assert len({line.get_color() for line in ax.get_lines()}) == len(names)  # told apart

png = matplotlib.image.imread(prefix + ".png")
assert png.shape[:2] == (500, 800), png.shape
assert png[..., :3].std() > 0.05, "a blank picture"
svg = open(prefix + ".svg").read()
assert "<svg" in svg and svg.count("<path") > 10, svg[:200]
print("demo curves and picture OK:", legend)
