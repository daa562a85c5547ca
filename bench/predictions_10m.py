"""Benchmark (issue #19): `audit run --predictions` on 10M rows of labels and predictions (no scores).

The same split as bench/predictions_1m.py (3 attributes, 2 intersections, 1,000 resamples and permutations),
labels only: the predictions file (Parquet, in another row order than the manifest) is streamed in record
batches and counted per cell. The audit runs on 1M and on 10M rows, so the bench shows how peak memory grows
with rows (about 35 bytes per sample for the id join, nothing else). References, point estimates only: on
the 10M-row files, pandas alone (read, merge on the id, one groupby per grouping: the speed of a groupby);
on the 1M-row files, pandas + fairlearn's MetricFrame with numpy metric functions (MetricFrame costs about
8 s per grouping and million rows here, so on 10M rows it would take most of an hour).

Targets: the 10M-row audit within 60 s and 1 GiB on a 2-core machine.

    python bench/predictions_10m.py [--rows 10000000] [--small 1000000] [--n-boot 1000] [--no-reference]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _predictions_bench import audit_command, check_same, make_inputs, measure, reference_command  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--small", type=int, default=1_000_000, help="the smaller run, for memory growth")
    parser.add_argument("--n-boot", type=int, default=1000)
    parser.add_argument("--no-reference", action="store_true")
    args = parser.parse_args(argv)
    load_before = os.getloadavg()[0]
    figures, worst = {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        for rows in (args.small, args.rows):
            root = Path(tmp) / str(rows)
            root.mkdir()
            inputs = make_inputs(root, rows, scores=False)
            figures[f"audit run --predictions, {rows:,} rows"] = measure(
                audit_command(inputs, root / "out", args.n_boot))
            if not args.no_reference:
                kind, name = ("groupby", "pandas groupby") if rows == args.rows else \
                    ("numpy", "pandas + MetricFrame (numpy metrics)")
                figures[f"{name}, {rows:,} rows"] = f = measure(reference_command(root, kind))
                worst[rows] = check_same(root / "out", json.loads(f["stdout"]))
            sizes = {p.name: p.stat().st_size / 2**20 for p in (inputs["manifest"], inputs["predictions"])}
    big = figures[f"audit run --predictions, {args.rows:,} rows"]
    small = figures[f"audit run --predictions, {args.small:,} rows"]
    print(f"labels and predictions only (no scores)  3 attributes, 2 intersections  resamples={args.n_boot}  "
          f"permutations=1000  files at {args.rows:,} rows: " + ", ".join(f"{k} {v:.0f} MiB" for k, v in sizes.items()))
    print()
    print("| run | CPU s | wall s | peak RSS MiB |")
    print("|---|---:|---:|---:|")
    for name, f in figures.items():
        print(f"| {name} | {f['cpu']:.1f} | {f['wall']:.1f} | {f['rss']:,.0f} |")
    print()
    for rows, name in ((args.rows, "pandas groupby"), (args.small, "pandas + MetricFrame (numpy metrics)")):
        reference = figures.get(f"{name}, {rows:,} rows")
        ours = figures[f"audit run --predictions, {rows:,} rows"]
        if reference:
            print(f"{rows:,} rows: CPU ours / {name} = {ours['cpu'] / reference['cpu']:.2f}; peak memory ours / "
                  f"{name} = {ours['rss'] / reference['rss']:.2f}; point estimates: max |ours - reference| = "
                  f"{worst[rows][0]:.1e} over {worst[rows][1]} group x metric values")
    growth = (big["rss"] - small["rss"]) * 2**20 / (args.rows - args.small)
    print(f"peak memory grows by {growth:.0f} bytes per row from {args.small:,} to {args.rows:,} rows")
    print(f"targets at {args.rows:,} rows: wall {big['wall']:.1f} s <= 60 s "
          f"({'met' if big['wall'] <= 60 else 'NOT met'}; CPU {big['cpu']:.1f} s on 2 cores), peak memory "
          f"{big['rss']:,.0f} MiB <= 1,024 MiB ({'met' if big['rss'] <= 1024 else 'NOT met'})")

    print(f"(load average of the 2-core machine: {load_before:.1f} before the run, {os.getloadavg()[0]:.1f} after; "
          "other work shares the cores, so wall times vary more than CPU times)")


if __name__ == "__main__":
    main()
