"""Benchmark: AUC and ECE per group with 1,000-resample replicates, vectorised engine against the per-group loop.

Binary task, continuous scores (so 1,024 quantile score levels), groupings
overall, gender (2), Fitzpatrick type (6) and gender x type (12 groups): 21
groups in all, as ``audit_classification`` reports them.

- ours: the engine's score step (``audit.stats._engine._score_inputs`` and
  ``_score_series`` per grouping: one layout, one sort and a few
  ``bincount`` passes per grouping, then the draws).
- reference: the same step before issue #19 (commit ab6370d), kept below
  (per group: select its rows, ``rankdata`` for AUC, bins for ECE, and the
  count bootstrap with its own ``searchsorted`` and histograms).

Both draw from one generator with the same seed; their replicates must be
identical, bit for bit. The last column isolates the random draws
themselves (the ``(B, cells)`` multinomial of each group: ECE cells, then
(score level, label) cells), which neither side can avoid with this method.

    python bench/score_bootstrap.py [--rows 200000 1000000] [--n-boot 1000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np
import pandas as pd
from scipy.stats import rankdata

from audit.stats import Attribute
from audit.stats._engine import _score_inputs, _score_series
from audit.stats._groups import build_groups
from audit.stats._scores import _auc_from_counts, score_levels

# --- the implementation before #19 (audit/stats/_scores.py and _engine.py at ab6370d) ----------------------


def _old_binary_auc(labels, scores):
    labels = np.asarray(labels, dtype=bool)
    n_pos = int(labels.sum())
    n_neg = labels.size - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = rankdata(scores)
    return float((ranks[labels].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def _old_roc_auc(y_true, scores, *, pos_label):
    if pos_label is not None:
        return _old_binary_auc(y_true == pos_label, scores[:, pos_label])
    per_class = [_old_binary_auc(y_true == k, scores[:, k]) for k in range(scores.shape[1])]
    defined = [v for v in per_class if not np.isnan(v)]
    return float(np.mean(defined)) if defined else float("nan")


def _old_calibration_bins(confidence, correct, *, n_bins):
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    bin_of = np.searchsorted(edges[1:-1], confidence)
    count = np.bincount(bin_of, minlength=n_bins).astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_confidence = np.bincount(bin_of, weights=confidence, minlength=n_bins) / count
        accuracy = np.bincount(bin_of, weights=correct.astype(float), minlength=n_bins) / count
    return edges, count, mean_confidence, accuracy


def _old_ece(confidence, correct, *, n_bins):
    if confidence.size == 0:
        return float("nan")
    _, count, mean_confidence, accuracy = _old_calibration_bins(confidence, correct, n_bins=n_bins)
    filled = count > 0
    return float(np.sum(count[filled] / count.sum() * np.abs(accuracy[filled] - mean_confidence[filled])))


def _old_bootstrap(y_true, scores, confidence, correct, *, n_boot, rng, pos_label, n_bins, levels, draws_only):
    m = len(y_true)
    out = {"roc_auc": np.full(n_boot, np.nan), "ece": np.full(n_boot, np.nan)}
    if m == 0 or n_boot == 0:
        return out
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    cell = np.searchsorted(edges[1:-1], confidence) * 2 + correct.astype(np.int64)
    count = np.bincount(cell, minlength=2 * n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_conf = np.where(count > 0, np.bincount(cell, weights=confidence, minlength=2 * n_bins)
                             / np.maximum(count, 1), 0.0)
    classes = [pos_label] if pos_label is not None else list(range(scores.shape[1]))
    hists = []
    for k in classes:
        level = np.searchsorted(levels[k], scores[:, k])
        hists.append((np.bincount(level * 2 + (y_true == k), minlength=2 * (len(levels[k]) + 1)), len(levels[k]) + 1))
    if draws_only:  # the random draws alone, in the same order
        t = time.perf_counter()
        draws = [rng.multinomial(m, count / m, size=n_boot)] + [
            rng.multinomial(m, hist / m, size=n_boot) for hist, _ in hists]
        return time.perf_counter() - t
    draws = rng.multinomial(m, count / m, size=n_boot)
    gap = (draws * (np.tile([0.0, 1.0], n_bins) - mean_conf)).reshape(n_boot, n_bins, 2).sum(-1)
    out["ece"] = np.abs(gap).sum(1) / m
    per_class = []
    for hist, k_levels in hists:
        resampled = rng.multinomial(m, hist / m, size=n_boot).reshape(n_boot, k_levels, 2)
        per_class.append(_auc_from_counts(resampled[..., 1], resampled[..., 0]))
    per_class = np.array(per_class)
    defined = np.isfinite(per_class)
    with np.errstate(invalid="ignore", divide="ignore"):
        out["roc_auc"] = np.where(defined.any(0), np.where(defined, per_class, 0).sum(0) / defined.sum(0), np.nan)
    return out


def reference_scores(y_true, y_pred, scores, structure, *, pos_label, n_bins, n_boot, rng, draws_only=False):
    """Per grouping: AUC and ECE values, replicates and reliability bins, group by group (before #19)."""
    processed = y_pred >= 0
    confidence = np.where(processed, np.nan_to_num(scores.max(1)), 0.0)
    correct = y_pred == y_true
    levels = [score_levels(scores[processed, k]) for k in range(scores.shape[1])]
    out, draw_time = [], 0.0
    for grouping in structure.groupings:
        codes = grouping.cell_to_group[structure.cell_of_sample]
        n_groups = len(grouping.labels)
        values = {m: np.full(n_groups, np.nan) for m in ("roc_auc", "ece")}
        boots = {m: np.full((n_boot, n_groups), np.nan) for m in ("roc_auc", "ece")}
        bins = []
        for g in range(n_groups):
            members = np.flatnonzero((codes == g) & processed)
            if draws_only:
                draw_time += _old_bootstrap(y_true[members], scores[members], confidence[members],
                                            correct[members].astype(float), n_boot=n_boot, rng=rng,
                                            pos_label=pos_label, n_bins=n_bins, levels=levels, draws_only=True)
                continue
            values["roc_auc"][g] = _old_roc_auc(y_true[members], scores[members], pos_label=pos_label)
            values["ece"][g] = _old_ece(confidence[members], correct[members], n_bins=n_bins)
            if members.size and n_boot:
                replicates = _old_bootstrap(y_true[members], scores[members], confidence[members],
                                            correct[members].astype(float), n_boot=n_boot, rng=rng,
                                            pos_label=pos_label, n_bins=n_bins, levels=levels, draws_only=False)
                for metric in ("roc_auc", "ece"):
                    boots[metric][:, g] = replicates[metric]
            edges, count, mean_conf, acc = _old_calibration_bins(confidence[members], correct[members], n_bins=n_bins)
            for b in range(n_bins):
                bins.append({"grouping": grouping.name, "group": grouping.labels[g], "bin": b, "count": int(count[b]),
                             "mean_confidence": mean_conf[b], "accuracy": acc[b]})
        out.append((values, boots, bins))
    return draw_time if draws_only else out


# --- ours -------------------------------------------------------------------------------------------------


def our_scores(y_true, y_pred, scores, structure, *, pos_label, n_bins, n_boot, rng):
    data = _score_inputs(scores, y_true, y_pred, scores.shape[1], pos_label=pos_label, n_bins=n_bins)
    out, overall = [], {}
    for grouping in structure.groupings:
        series, bins = _score_series(data, structure, grouping, pos_label=pos_label, n_bins=n_bins, n_boot=n_boot,
                                     rng=rng, n_perm=0, overall=overall)
        if not overall:
            overall = {s.metric: s for s in series}
        out.append(({s.metric: s.value for s in series}, {s.metric: s.boot for s in series}, bins))
    return out


def make_data(rows: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    gender = rng.choice(np.array(["female", "male"]), rows)
    skin = rng.integers(1, 7, rows)
    y_true = rng.integers(0, 2, rows)
    signal = 1.0 - 0.1 * skin  # planted: scores separate the classes less for darker types
    logit = rng.normal(size=rows) + signal * (2 * y_true - 1)
    p1 = 1 / (1 + np.exp(-logit))
    scores = np.stack([1 - p1, p1], 1)
    y_pred = np.where(rng.random(rows) < 0.01, -1, scores.argmax(1))  # 1% abstentions
    return y_true, y_pred, scores, pd.DataFrame({"gender": gender, "skin": skin})


def spread(times):
    return f"{statistics.median(times):.2f} s ({min(times):.2f}-{max(times):.2f})"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[200_000, 1_000_000])
    parser.add_argument("--n-boot", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    load_at_start = os.getloadavg()[0]
    kw = {"pos_label": 1, "n_bins": 10, "n_boot": args.n_boot}
    lines = []
    for rows in args.rows:
        y_true, y_pred, scores, groups = make_data(rows)
        structure, _ = build_groups(groups, [Attribute("gender"), Attribute("skin", scale="fitzpatrick", bins={})],
                                    [("gender", "skin")])
        n_groups = sum(len(g.labels) for g in structure.groupings)
        ours_t, ref_t, draws_t = [], [], []
        for repeat in range(args.repeats):
            start = time.perf_counter()
            ours = our_scores(y_true, y_pred, scores, structure, rng=np.random.default_rng(repeat), **kw)
            ours_t.append(time.perf_counter() - start)
            start = time.perf_counter()
            ref = reference_scores(y_true, y_pred, scores, structure, rng=np.random.default_rng(repeat), **kw)
            ref_t.append(time.perf_counter() - start)
            draws_t.append(reference_scores(y_true, y_pred, scores, structure, rng=np.random.default_rng(repeat),
                                            draws_only=True, **kw))
            worst = 0.0
            for (v_ours, b_ours, bins_ours), (v_ref, b_ref, bins_ref) in zip(ours, ref):
                for metric in ("roc_auc", "ece"):
                    np.testing.assert_array_equal(b_ours[metric], b_ref[metric])  # replicates: bit for bit
                    worst = max(worst, float(np.nanmax(np.abs(v_ours[metric] - v_ref[metric]))))
                assert [b["count"] for b in bins_ours] == [b["count"] for b in bins_ref]
            assert worst < 1e-12, worst
        ratio = statistics.median(ours_t) / statistics.median(ref_t)
        lines.append(f"| {rows:,} | {n_groups} | {spread(ours_t)} | {spread(ref_t)} | {ratio:.2f}x | {spread(draws_t)} |")
    print(f"machine: {os.cpu_count()} cores, load average {load_at_start:.1f} at the start, "
          f"{os.getloadavg()[0]:.1f} at the end (other work shares the cores)")
    print(f"binary, continuous scores, {args.n_boot} resamples, groupings overall + gender + type + gender x type; "
          f"{args.repeats} repeats (median, min-max)")
    print()
    print("| rows | groups | ours (vectorised) | reference (per group, before #19) | ratio ours / reference "
          "| of which random draws (both) |")
    print("|---:|---:|---:|---:|---:|---:|")
    print("\n".join(lines))
    print()
    print("replicates identical bit for bit (same seed); point values within 1e-12")


if __name__ == "__main__":
    main()
