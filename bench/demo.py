"""Benchmark: wall time of ``audit demo`` from an empty directory, per stage, and what it produced.

Runs ``audit demo --out TMP`` in a fresh process (nothing cached: the
benchmark is drawn, the trunk pretrained, three models trained, four audits
(the three models and their panoptic merge) and the report written), then
reads ``demo.json`` and the four ``results.json`` for the stage times, the
models' quality on the balanced test split and the planted disparities.
Target: ≤ 5 min on 2 CPU cores, weights ≤ 10 MB.

    python bench/demo.py [--knobs on|off]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _metric(document: dict, metric: str, grouping: str = "overall", group: str = "all") -> float:
    for row in document["results"]["metrics"]:
        if row["metric"] == metric and row["grouping"] == grouping and row["group"] == group and not row["class"]:
            return row["value"]
    return float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--knobs", choices=("on", "off"), default="on")
    args = parser.parse_args()
    out = Path(tempfile.mkdtemp(prefix="demo-bench-")) / "demo"
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "audit", "demo", "--out", str(out), "--knobs", args.knobs, "-q"],
                   check=True)
    total = time.perf_counter() - start
    stamp = json.loads((out / "demo.json").read_text())
    training = stamp["training"]
    docs = {name: json.loads((out / name / "results.json").read_text())
            for name in ("classification", "detection", "segmentation", "panoptic")}
    trained = ("classification", "detection", "segmentation")
    weights = sum(p.stat().st_size for p in (out / "models").glob("benchmark_*.pth"))
    quality = [("classification", "accuracy", 0.85), ("detection", "recall@0.50", 0.6),
               ("segmentation", "miou_pooled", 0.6), ("panoptic", "pq", 0.5), ("panoptic", "person_recall", 0.6)]
    planted = [("classification", "error_rate"), ("detection", "ar"), ("segmentation", "person_iou"),
               ("panoptic", "person_recall"), ("panoptic", "person_sq")]

    print(f"audit demo --knobs {args.knobs}: {total:.1f} s wall time on this machine (target ≤ 300 s)\n")
    print("| stage | seconds |\n|---|---:|")
    print(f"| source-task pretraining of the trunk | {training['pretraining']['seconds']:.1f} |")
    for name in trained:
        print(f"| train the {name} model | {training[name]['seconds']:.1f} |")
    train_total = training["pretraining"]["seconds"] + sum(training[n]["seconds"] for n in trained)
    print(f"| everything else (draw the benchmark, 4 audits, report) | {total - train_total:.1f} |")
    print(f"| **total** | **{total:.1f}** |\n")
    print(f"weights of the three models: {weights / 1e6:.2f} MB (target ≤ 10 MB)\n")
    print("| model | metric on the balanced test split | value | target |\n|---|---|---:|---:|")
    for name, metric, target in quality:
        print(f"| {name} | {metric} | {_metric(docs[name], metric):.3f} | ≥ {target} |")
    print("\n| model | metric | Monk 1-5 | Monk 6-10 | significant (BH) |\n|---|---|---:|---:|---|")
    for name, metric in planted:
        flagged = [d for d in docs[name]["results"]["disparities"]
                   if d["grouping"] == "monk" and d["metric"] == metric and d["kind"] == "to_reference"]
        print(f"| {name} | {metric} | {_metric(docs[name], metric, 'monk', 'lighter'):.3f} | "
              f"{_metric(docs[name], metric, 'monk', 'darker'):.3f} | "
              f"{'yes' if flagged and flagged[0]['significant'] else 'no'} |")


if __name__ == "__main__":
    main()
