"""Benchmark (issue #19): `audit run --predictions` on 1M rows with class scores, against pandas + MetricFrame.

3 attributes, 2 intersections, 1,000 bootstrap resamples and 1,000 permutations, on a generated (seeded)
split and predictions file (bench/_predictions_bench.py). Every command runs as a subprocess; whole-process
CPU (user + system) and peak resident memory come from getrusage(RUSAGE_CHILDREN). The references compute
the point estimates only (per group of each attribute and intersection: error rate, TPR, FPR, PPV,
selection rate and ROC AUC) with fairlearn's MetricFrame, once with fairlearn's and scikit-learn's metric
functions (as their documentation writes them) and once with numpy one-liners (the cost of the groupby).

Targets: CPU ours / reference <= 0.5, peak memory <= 1 GiB.

    python bench/predictions_1m.py [--rows 1000000] [--n-boot 1000] [--image-column] [--references sklearn,numpy]
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
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--n-boot", type=int, default=1000)
    parser.add_argument("--image-column", action="store_true",
                        help="the manifest has an image column (paths checked against the image root)")
    parser.add_argument("--references", default="sklearn,numpy")
    args = parser.parse_args(argv)
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        inputs = make_inputs(root, args.rows, scores=True, image_column=args.image_column)
        figures = {"audit run --predictions": measure(audit_command(inputs, root / "out", args.n_boot))}
        worst = {}
        for kind in [k for k in args.references.split(",") if k]:
            figures[f"pandas + MetricFrame ({kind} metrics)"] = f = measure(reference_command(root, kind))
            worst[kind] = check_same(root / "out", json.loads(f["stdout"]))
    ours = figures["audit run --predictions"]
    print(f"rows={args.rows:,}  class scores  3 attributes, 2 intersections  resamples={args.n_boot}  "
          f"permutations=1000  image column={'yes' if args.image_column else 'no'}")
    print()
    print("| run | CPU s | wall s | peak RSS MiB | CPU ours / reference |")
    print("|---|---:|---:|---:|---:|")
    for name, f in figures.items():
        ratio = "" if f is ours else f"{ours['cpu'] / f['cpu']:.2f}"
        print(f"| {name} | {f['cpu']:.1f} | {f['wall']:.1f} | {f['rss']:,.0f} | {ratio} |")
    print()
    print(f"targets: CPU ours / reference <= 0.5; peak memory {ours['rss']:,.0f} MiB <= 1,024 MiB: "
          f"{'met' if ours['rss'] <= 1024 else 'NOT met'}")
    for kind, (value, compared) in worst.items():
        print(f"point estimates: max |ours - reference ({kind})| = {value:.1e} over {compared} group x metric "
              "values (results.json rounds to 6 decimals)")

    print(f"(load average of the 2-core machine: {load_before:.1f} before the run, {os.getloadavg()[0]:.1f} after; "
          "other work shares the cores, so wall times vary more than CPU times)")


if __name__ == "__main__":
    main()
