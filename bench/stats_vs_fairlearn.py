"""Benchmark: the engine against fairlearn's MetricFrame on the same data, in the same run.

1M rows, 12 intersectional groups (gender x Fitzpatrick type), 4 rate metrics,
1,000 bootstrap resamples. Every figure is the median over ``--repeats`` runs,
with the range (min-max) beside it; the ratio is ours / reference.

- ours: ``audit_classification`` with point estimates only, and with the
  resamples. The cost of 1,000 resamples is measured on 10,000 (``--n-boot``
  x 10): each repeat runs both back to back and the difference, divided by
  10, is one measurement. At 1,000 the bootstrap costs about as much as the
  noise of a run on a shared machine, and a difference of two runs once came
  out negative.
- reference: fairlearn's ``MetricFrame``, point estimates only; and one
  bootstrap replicate, timed directly: fairlearn 0.15 computes each replicate
  with ``generate_single_bootstrap_sample`` (a ``DataFrame.sample`` of all
  rows with replacement, then every metric on every group again). The bench
  hooks that function inside one real ``MetricFrame(n_boot=...)`` run and
  times each replicate on its own. A run with 1,000 resamples is then
  extrapolated as point estimates + 1,000 replicates.

    python bench/stats_vs_fairlearn.py [--rows 1000000] [--n-boot 1000] [--fairlearn-boot 3] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
import warnings

import fairlearn.metrics._bootstrap as fairlearn_bootstrap
import fairlearn.metrics._metric_frame as fairlearn_metric_frame
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


def run_fairlearn_points(y_true, y_pred, groups):
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        frame = MetricFrame(metrics=METRICS, y_true=y_true, y_pred=y_pred, sensitive_features=groups)
    return frame, time.perf_counter() - start


def time_fairlearn_replicates(y_true, y_pred, groups, n_replicates):
    """Seconds per bootstrap replicate, each timed on its own inside one real ``MetricFrame(n_boot=...)``."""
    single = fairlearn_bootstrap.generate_single_bootstrap_sample
    times = []

    def timed_single(**kwargs):
        start = time.perf_counter()
        out = single(**kwargs)
        times.append(time.perf_counter() - start)
        return out

    # MetricFrame calls generate_bootstrap_samples, which calls generate_single_bootstrap_sample once per replicate
    assert fairlearn_metric_frame.generate_bootstrap_samples is fairlearn_bootstrap.generate_bootstrap_samples
    fairlearn_bootstrap.generate_single_bootstrap_sample = timed_single
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            MetricFrame(metrics=METRICS, y_true=y_true, y_pred=y_pred, sensitive_features=groups,
                        n_boot=n_replicates, ci_quantiles=[0.025, 0.975], random_state=0)
    finally:
        fairlearn_bootstrap.generate_single_bootstrap_sample = single
    assert len(times) == n_replicates, "fairlearn no longer computes a replicate with generate_single_bootstrap_sample"
    return times


def spread(times, digits=3) -> str:
    return f"{statistics.median(times):,.{digits}f} s ({min(times):,.{digits}f}-{max(times):,.{digits}f})"


def ratio(ours: float, reference: float) -> str:
    """ours / reference, with the reference's slowdown spelled out when it is large."""
    r = ours / reference
    return f"{r:.3f}x" if r >= 0.001 else f"{r:.1e}x (1/{reference / ours:,.0f})"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--n-boot", type=int, default=1000)
    parser.add_argument("--fairlearn-boot", type=int, default=3, help="fairlearn replicates timed one by one")
    parser.add_argument("--repeats", type=int, default=3, help="runs of each of our timings")
    args = parser.parse_args(argv)
    load_at_start = os.getloadavg()[0]
    y_true, y_pred, groups = make_data(args.rows)

    ours_points, ours_boot, ours_per_1000 = [], [], []
    for _ in range(args.repeats):
        _, points = run_ours(y_true, y_pred, groups, 0)
        result, boot = run_ours(y_true, y_pred, groups, args.n_boot)
        _, many = run_ours(y_true, y_pred, groups, 10 * args.n_boot)
        ours_points.append(points)
        ours_boot.append(boot)
        ours_per_1000.append((many - points) / (10 * args.n_boot) * 1000)
    theirs_points = []
    for _ in range(min(args.repeats, 2)):  # 30+ s each on 1M rows
        frame, seconds = run_fairlearn_points(y_true, y_pred, groups)
        theirs_points.append(seconds)
    per_replicate = time_fairlearn_replicates(y_true, y_pred, groups, args.fairlearn_boot)
    theirs_boot = [statistics.median(theirs_points) + r * args.n_boot for r in per_replicate]

    worst = 0.0
    metrics = result.metrics[result.metrics.grouping == "gender × skin"]
    for name in METRICS:
        ours_by_group = metrics[metrics.metric == name].set_index("group")["value"]
        for key, value in frame.by_group[name].items():
            worst = max(worst, abs(ours_by_group[f"{key[0]} × {key[1]}"] - value))

    n_groups = int((result.groups.grouping == "gender × skin").sum())
    mid = statistics.median
    print(f"machine: {os.cpu_count()} cores, load average {load_at_start:.1f} at the start, "
          f"{os.getloadavg()[0]:.1f} at the end (other work shares the cores)")
    print(f"rows={args.rows:,}  intersectional groups={n_groups}  metrics={len(METRICS)}  resamples={args.n_boot}")
    print(f"median (min-max): ours over {args.repeats} runs, fairlearn's point estimates over {len(theirs_points)} "
          f"runs, fairlearn's replicates over {len(per_replicate)} replicates")
    print()
    print("| what | ours (audit.stats) | reference (fairlearn MetricFrame) | ratio ours / reference |")
    print("|---|---:|---:|---:|")
    print(f"| point estimates only | {spread(ours_points)} | {spread(theirs_points, 2)} "
          f"| {ratio(mid(ours_points), mid(theirs_points))} |")
    # seconds per 1,000 replicates = milliseconds per replicate
    print(f"| per bootstrap replicate (see below) | {spread(ours_per_1000, 4).replace(' s', ' ms')} "
          f"| {spread(per_replicate, 2)} | {ratio(mid(ours_per_1000) / 1000, mid(per_replicate))} |")
    print(f"| with {args.n_boot:,} bootstrap resamples | {spread(ours_boot)} | {spread(theirs_boot, 0)} (extrapolated) "
          f"| {ratio(mid(ours_boot), mid(theirs_boot))} |")
    print()
    print(f"point estimates identical: max |ours - fairlearn| over groups and metrics = {worst:.1e}"
          f" ({'identical' if worst <= 1e-12 else 'DIFFERENT'})")
    print(f"(ours also computes every single attribute, {len(result.disparities)} disparities with intervals "
          f"and {result.significance['family_size']} tests)")
    print(f"per replicate: fairlearn's is a resample of all rows and every metric again, timed replicate by replicate; "
          f"ours is the cost of {10 * args.n_boot:,} resamples (a multinomial draw on counts, intervals, disparities) "
          f"over a run without, divided by {10 * args.n_boot:,}. fairlearn with {args.n_boot:,} resamples = its point "
          f"estimates + {args.n_boot:,} x one replicate.")


if __name__ == "__main__":
    main()
