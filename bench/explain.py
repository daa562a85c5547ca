"""Benchmark: what ``audit demo`` says explains the planted gap, with each knob alone and with both.

Runs ``audit demo --knobs K`` for K in representation, acquisition and on (both), each in a fresh process
and output directory (benchmark drawn, trunk pretrained, models trained, audits), then reads each task's
``results.json`` ``explanations``: the darker-vs-lighter gap of the share misclassified (or missed), raw and
within lighting (Mantel-Haenszel, regression-adjusted), the share lighting explains with its bootstrap
interval, and the confirmed slices; and, for the classifier, its error in each skin tone × lighting cell of
the test split beside the number of training portraits in that cell (the mechanism, not only its summary).
What to expect:

- acquisition only: the raw gap is significant, the gap within lighting is not (its interval covers 0) and
  the share explained has an interval that includes 1;
- representation only: the raw gap and the gap within lighting are both significant, the share is near 0;
- both knobs: both parts show; the gap within lighting is smaller than the raw one.

    python bench/explain.py [--knobs representation,acquisition,on] [--tasks T1,T2] [--out DIR] [--n-boot 500]

``--out`` keeps the runs (a second call with the same directory reuses the models and predictions).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TASKS = ("classification", "detection", "segmentation", "panoptic")


def _num(value, digits=3) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def _ci(value, lower, upper, digits=3) -> str:
    return f"{_num(value, digits)} [{_num(lower, digits)}, {_num(upper, digits)}]"


def _p(value) -> str:
    return "–" if value is None else (f"{value:.1e}" if value < 0.001 else f"{value:.3f}")


def _cells(out: Path) -> None:
    """The classifier's error per skin tone bin × lighting cell, and the training portraits in each cell."""
    import pandas as pd

    samples = pd.read_parquet(out / "classification" / "samples.parquet")
    test = pd.read_csv(out / "benchmark" / "portraits" / "test" / "manifest.csv").merge(
        samples[["sample_id", "label", "pred"]], on="sample_id")
    train = pd.read_csv(out / "benchmark" / "portraits" / "train" / "manifest.csv")
    print("\nThe classifier's errors per cell (test split), beside the training portraits in the cell:\n")
    print("| Monk | lighting | errors / n | error rate | training portraits |\n|---|---|---:|---:|---:|")
    for label, tones in (("1-5", range(1, 6)), ("6-10", range(6, 11))):
        for light in ("well_lit", "underexposed"):
            cell = test[test["monk"].isin(tones) & (test["lighting"] == light)]
            wrong = int((cell["label"] != cell["pred"]).sum())
            n_train = int((train["monk"].isin(tones) & (train["lighting"] == light)).sum())
            rate = wrong / len(cell) if len(cell) else float("nan")
            print(f"| {label} | {light} | {wrong} / {len(cell)} | {rate:.3f} | {n_train} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--knobs", default="representation,acquisition,on")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--tasks", default=",".join(TASKS), help="audit demo --tasks (default: all four)")
    parser.add_argument("--n-boot", default="500")
    args = parser.parse_args()
    tasks = [t for t in TASKS if t in args.tasks.split(",")]
    root = args.out or Path(tempfile.mkdtemp(prefix="explain-bench-"))
    for knobs in args.knobs.split(","):
        out = root / knobs
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "audit", "demo", "--out", str(out), "--knobs", knobs, "-q",
                        "--tasks", ",".join(tasks), "--n-boot", args.n_boot, "--n-perm", args.n_boot], check=True)
        seconds = time.perf_counter() - start
        print(f"## audit demo --knobs {knobs} ({seconds:.0f} s)\n")
        print("| task | outcome | darker | lighter | raw gap [95% CI] | raw p | gap within lighting (MH) | CMH p | "
              "Breslow-Day p | regression-adjusted | share explained [95% CI] |")
        print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        slices = []
        for task in tasks:
            block = json.loads((out / task / "results.json").read_text()).get("explanations")
            if not block:  # panoptic: no per-person units yet, so no gap analysis
                continue
            for c in block["comparisons"]:
                if c["attribute"] != "monk":
                    continue
                g = c["gap"]
                print(f"| {task} | {c['verb']} ({c['metric']}) | {_num(g['rate_group'])} | "
                      f"{_num(g['rate_reference'])} | {_ci(g['raw_gap'], g['raw_gap_lower'], g['raw_gap_upper'])} | "
                      f"{_p(g['raw_p'])} | {_ci(g['mh_gap'], g['mh_gap_lower'], g['mh_gap_upper'])} | "
                      f"{_p(g['cmh_p'])} | {_p(g['breslow_day_p'])} | "
                      f"{_ci(g['regression_gap'], g['regression_gap_lower'], g['regression_gap_upper'])} "
                      f"({g['regression_model']}) | "
                      f"{_ci(g['share_explained'], g['share_lower'], g['share_upper'], 2)} |")
            for s in block["slices"]:
                for r in s["confirmed"]:
                    slices.append(f"| {task} | {s['verb']} | {r['slice']} | {r['n']} | "
                                  f"{_ci(r['error_rate'], r['lower'], r['upper'])} | {_num(r['error_rate_rest'])} | "
                                  f"{_p(r['p_adjusted'])} |")
        print("\nConfirmed slices (beyond the attributes and intersections the audit reports):\n")
        if slices:
            print("| task | outcome | slice | n | rate [95% CI] | rest | adjusted p |\n|---|---|---|---:|---:|---:|---:|")
            print("\n".join(slices))
        else:
            print("none")
        if "classification" in tasks:
            _cells(out)
        print()


if __name__ == "__main__":
    main()
