"""Validity and power of the tests near the boundary: the engine's tests against the old ones, same data, same run.

Prints, for a clustered detection audit (recall near 0.98, people sharing images) and a classification audit
(error near 0.2, six groups), how often a true gap of the given size is flagged (power) and how often a zero
gap is flagged (size, which must stay at or below alpha), for

- **ours**: proportions on effective counts n / deff (Fisher or pooled z; Rao-Scott style), max - min by the
  max/min pair test Bonferroni-adjusted over all pairs;
- **old**: the previous engine: Wald tests with the cluster-bootstrap standard error for detection, and the
  permutation range test (1,000 permutations) for classification's max - min, adjusted by Holm over the family.

Run: ``python bench/stats_validity.py [--audits N]`` (about two minutes for the default 200 audits per cell).
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import norm

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from boundary_helpers import clustered_people, coverage_audit  # noqa: E402

from audit.stats import (  # noqa: E402
    Attribute,
    audit_classification,
    audit_ratio_metrics,
    cluster_weights,
    percentile_interval,
)
from audit.stats._significance import adjust_p_values, permutation_range_test  # noqa: E402

ALPHA = 0.05


def detection_audit(rng, *, darker: float, lighter: float, hard: bool, n_images: int, seed: int):
    """People of both tones in shared images (1-3 per image); returns (our p, old bootstrap-Wald p) darker vs lighter."""
    sizes = rng.integers(1, 4, n_images)
    image = np.repeat(np.arange(n_images), sizes)
    tone = rng.choice(["lighter", "darker"], image.size)
    # a shared image effect: with `hard`, one image in ten misses 5.5 times as often, the others half as often
    # (the mean miss rate is unchanged)
    factor = np.where(rng.random(n_images) < 0.1, 5.5, 0.5)[image] if hard else 1.0
    rate = np.clip(1 - (1 - np.where(tone == "darker", darker, lighter)) * factor, 0, 1)
    found = (rng.random(image.size) < rate).astype(float)
    stats = pd.DataFrame({"m": found, "t": 1.0})
    result = audit_ratio_metrics(statistics=stats, metrics={"recall": [("m", "t")]}, groups=pd.DataFrame({"tone": tone}),
                                 clusters=image, reference_groups={"tone": "lighter"}, n_boot=0, seed=seed,
                                 min_group_size=1)
    ours = result.disparities.query("kind == 'to_reference'").p_value.iloc[0]
    # the old test: Wald with the cluster-bootstrap standard error of the difference (p = 0 when it is 0)
    w = cluster_weights(n_images, n_boot=1000, seed=seed)
    per_image = np.zeros((n_images, 4))
    for k, t in enumerate(("darker", "lighter")):
        np.add.at(per_image[:, 2 * k], image[tone == t], found[tone == t])
        np.add.at(per_image[:, 2 * k + 1], image[tone == t], 1.0)
    boot = w @ per_image
    with np.errstate(invalid="ignore", divide="ignore"):
        diff_boot = boot[:, 0] / boot[:, 1] - boot[:, 2] / boot[:, 3]
    diff = found[tone == "darker"].mean() - found[tone == "lighter"].mean()
    se = np.nanstd(diff_boot, ddof=1)
    old = (1.0 if diff == 0 else 0.0) if se == 0 else 2 * norm.sf(abs(diff) / se)
    return ours, old


def classification_audit(rng, *, worst: float, base: float, n_per_group: int, seed: int):
    """Six groups (tone x age), one erring more; returns (our, old) Holm-adjusted p of error_rate's max - min."""
    tones, ages = np.array(["lighter", "darker"]), np.array(["young", "middle", "older"])
    cell = np.repeat(np.arange(6), n_per_group)
    groups = pd.DataFrame({"tone": tones[cell // 3], "age": ages[cell % 3]})
    error = np.where(cell == 5, worst, base)
    y_true = rng.integers(0, 2, cell.size)
    y_pred = np.where(rng.random(cell.size) < error, 1 - y_true, y_true)
    result = audit_classification(y_true=y_true, y_pred=y_pred, groups=groups, classes=["neg", "pos"], pos_label=1,
                                  attributes=[Attribute("tone"), Attribute("age")], intersections=[("tone", "age")],
                                  n_boot=0, n_perm=1000, seed=seed, correction="holm")
    d = result.disparities
    row = d.index[(d.metric == "error_rate") & (d.kind == "between_groups") & (d.grouping == "tone × age")][0]
    ours = d.loc[row, "p_holm"]
    # the old range test: permutations of the group labels, floor 1/1001, in the same family
    wrong = (y_pred != y_true).astype(int)
    k = np.bincount(cell, wrong)
    n = np.bincount(cell)
    p_old = d.p_value.to_numpy(dtype=float, copy=True)
    p_old[row] = permutation_range_test(k, n, n_perm=1000, rng=np.random.default_rng(seed))
    old = adjust_p_values(p_old, method="holm", alpha=ALPHA)[0][row]
    return ours, old


def coverage_grid(replicates: int) -> None:
    """Coverage of 95% recall intervals for clustered people: ours (effective n) vs the old cluster-bootstrap one."""
    print(f"\ncoverage of the 95% interval of a group's recall ({replicates} groups per cell, images of 1-4 people)\n")
    print("| true recall | people | intra-image correlation | ours | old | old zero-width |")
    print("|---:|---:|---:|---:|---:|---:|")
    ours_all, old_all = [], []
    for rate in (0.5, 0.9, 0.99, 0.999):
        for n in (30, 100, 1000):
            for icc in (0.0, 0.3):
                rng = np.random.default_rng([int(rate * 1000), n, int(icc * 10)])
                rows = coverage_audit(rng, replicates=replicates, n_people=n, rate=rate, icc=icc)
                ours = float(((rows.lower <= rate) & (rate <= rows.upper)).mean())
                covered = zero = 0
                for _ in range(replicates):
                    found, image = clustered_people(rng, n_people=n, rate=rate, icc=icc)
                    per_image = np.stack([np.bincount(image, found), np.bincount(image)], 1)
                    boot = cluster_weights(per_image.shape[0], n_boot=1000, seed=rng) @ per_image
                    lo, hi = percentile_interval(boot[:, :1] / boot[:, 1:])
                    covered += bool(lo[0] <= rate <= hi[0])
                    zero += bool(hi[0] <= lo[0])
                ours_all.append(ours)
                old_all.append(covered / replicates)
                print(f"| {rate} | {n} | {icc} | {ours:.3f} | {covered / replicates:.3f} | {zero / replicates:.3f} |")
    print(f"| **mean over the grid** | | | **{np.mean(ours_all):.3f}** | **{np.mean(old_all):.3f}** | |")
    print(f"| **worst cell** | | | **{min(ours_all):.3f}** | **{min(old_all):.3f}** | |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--audits", type=int, default=200)
    audits = parser.parse_args().audits
    warnings.simplefilter("ignore")
    coverage_grid(200)
    print(f"\npower and size: audits per cell={audits}  alpha={ALPHA}  (share of audits whose test flags the gap)\n")
    print("| audit | true gap | ours | old |")
    print("|---|---|---:|---:|")
    for label, darker, lighter, hard in (("detection recall, 600 images of 1-3 people", 0.96, 0.98, False),
                                         ("detection recall, 600 images of 1-3 people", 0.98, 0.98, False),
                                         ("detection recall, 600 images, hard images", 0.96, 0.98, True),
                                         ("detection recall, 600 images, hard images", 0.98, 0.98, True),
                                         ("detection recall, 60 images, hard images", 0.995, 0.995, True)):
        rng = np.random.default_rng(1)
        n_images = 60 if "60 images" in label else 600
        pairs = [detection_audit(rng, darker=darker, lighter=lighter, hard=hard, n_images=n_images, seed=i)
                 for i in range(audits)]
        ours, old = (np.mean([p[j] < ALPHA for p in pairs]) for j in (0, 1))
        gap = f"{lighter - darker:.2f} (recall {lighter} vs {darker})"
        print(f"| {label} | {gap} | {ours:.3f} | {old:.3f} |")
    for worst in (0.25, 0.3, 0.2):
        rng = np.random.default_rng(2)
        pairs = [classification_audit(rng, worst=worst, base=0.2, n_per_group=500, seed=i) for i in range(audits)]
        ours, old = (np.mean([p[j] < ALPHA for p in pairs]) for j in (0, 1))
        print(f"| classification error, 6 groups of 500, max - min under Holm | {worst - 0.2:.2f} "
              f"(error 0.2 vs {worst}) | {ours:.3f} | {old:.3f} |")


if __name__ == "__main__":
    main()
