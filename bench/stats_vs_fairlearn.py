"""Benchmark: the engine against fairlearn's MetricFrame on the same data, in the same run.

1M rows, 12 intersectional groups (gender x Fitzpatrick type), 4 rate metrics,
1,000 bootstrap resamples. fairlearn reruns every metric on every resample, so
its bootstrap is timed on a few replicates and extrapolated per replicate.

    python bench/stats_vs_fairlearn.py [--rows 1000000] [--n-boot 1000] [--fairlearn-boot 2]
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
import pandas as pd
from fairlearn.metrics import MetricFrame, false_positive_rate, selection_rate, true_positive_rate
from sklearn.metrics import precision_score

from audit.stats import Attribute, audit_classification

METRICS = {
    "tpr": true_positive_rate,
    "fpr": false_positive_rate,
    "ppv": lambda t, p: precision_score(t, p, zero_division=np.nan),
    "selection_rate": selection_rate,
}


def make_data(rows: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    gender = rng.choice(np.array(["female", "male"]), rows)
    skin = rng.integers(1, 7, rows)
    y_true = rng.integers(0, 2, rows)
    accuracy = 0.95 - 0.03 * skin  # planted: darker types are misclassified more often
    y_pred = np.where(rng.random(rows) < accuracy, y_true, 1 - y_true)
    return y_true, y_pred, pd.DataFrame({"gender": gender, "skin": skin})


def run_ours(y_true, y_pred, groups, n_boot):
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = audit_classification(
            y_true=y_true, y_pred=y_pred, groups=groups, classes=["neg", "pos"], pos_label=1,
            attributes=[Attribute("gender"), Attribute("skin", scale="fitzpatrick", bins={})],
            intersections=[("gender", "skin")], metrics=list(METRICS), disparity_metrics=list(METRICS),
            n_boot=n_boot, n_perm=n_boot, interval="bootstrap", seed=0,
        )
    return result, time.perf_counter() - start


def run_fairlearn(y_true, y_pred, groups, n_boot):
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        kwargs = {"n_boot": n_boot, "ci_quantiles": [0.025, 0.975], "random_state": 0} if n_boot else {}
        frame = MetricFrame(metrics=METRICS, y_true=y_true, y_pred=y_pred, sensitive_features=groups, **kwargs)
    return frame, time.perf_counter() - start


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--n-boot", type=int, default=1000)
    parser.add_argument("--fairlearn-boot", type=int, default=2)
    args = parser.parse_args(argv)
    y_true, y_pred, groups = make_data(args.rows)
    result, ours = run_ours(y_true, y_pred, groups, args.n_boot)
    _, ours_points = run_ours(y_true, y_pred, groups, 0)
    frame, theirs_points = run_fairlearn(y_true, y_pred, groups, 0)
    _, theirs_boot = run_fairlearn(y_true, y_pred, groups, args.fairlearn_boot)
    per_replicate = max(theirs_boot - theirs_points, 0.0) / args.fairlearn_boot
    theirs = theirs_points + per_replicate * args.n_boot

    worst = 0.0
    metrics = result.metrics[result.metrics.grouping == "gender × skin"]
    for name in METRICS:
        ours_by_group = metrics[metrics.metric == name].set_index("group")["value"]
        for key, value in frame.by_group[name].items():
            worst = max(worst, abs(ours_by_group[f"{key[0]} × {key[1]}"] - value))

    n_groups = int((result.groups.grouping == "gender × skin").sum())
    print(f"rows={args.rows:,}  intersectional groups={n_groups}  metrics={len(METRICS)}  resamples={args.n_boot}")
    print()
    print("| what | audit.stats | fairlearn MetricFrame | ratio |")
    print("|---|---:|---:|---:|")
    print(f"| point estimates only | {ours_points:.3f} s | {theirs_points:.2f} s | {theirs_points / ours_points:,.0f}x |")
    print(f"| with {args.n_boot} bootstrap resamples | {ours:.3f} s | {theirs:,.0f} s (extrapolated) | {theirs / ours:,.0f}x |")
    per_1000_ours = (ours - ours_points) / args.n_boot * 1000
    per_1000_theirs = per_replicate * 1000
    print(f"| per 1,000 resamples | {per_1000_ours:.3f} s | {per_1000_theirs:,.0f} s | {per_1000_theirs / max(per_1000_ours, 1e-9):,.0f}x |")
    print()
    print(f"point estimates identical: max |ours - fairlearn| over groups and metrics = {worst:.1e}"
          f" ({'identical' if worst <= 1e-12 else 'DIFFERENT'})")
    print(f"(ours also computes every single attribute, {len(result.disparities)} disparities with intervals "
          f"and {result.significance['family_size']} tests; fairlearn's bootstrap timed on {args.fairlearn_boot} replicates)")


if __name__ == "__main__":
    main()
