"""Comparing two audits: matched metrics and disparities, changes with intervals, a regression policy.

Pure numpy/pandas: the inputs are two ``results`` sections (``GroupedMetrics.to_dict()``)
and, optionally, each audit's per-sample statistics (:class:`SampleStats`).

How the uncertainty of a change is obtained, in order of preference:

``paired``
    Both audits scored the same samples (equal sets of sample ids). Every
    sample is reduced to the pair (baseline confusion cell, candidate confusion
    cell) within the pair of finest groups it belongs to. Resampling samples
    jointly is then exactly a multinomial draw over the observed
    (group pair x cell pair) counts; both audits' metrics, and every change, are
    recomputed from each draw. Changes that most samples share cancel, so a
    small consistent change is detected.
``unpaired``
    The audits scored different samples (or pairing was switched off). Each
    audit's (group x cell) counts are resampled independently.
``unpaired (reported intervals)``
    Per-sample statistics are missing for one audit. The change's standard
    error is ``sqrt(se_b^2 + se_c^2)`` with each ``se`` read off the reported
    interval (``(upper - lower) / (2 z)``).

Score metrics (ROC AUC, ECE) need scores, not cells; they always use the
reported intervals.

A row is a **regression** when it worsens by more than the policy allows and,
with ``significant_only``, the worsening is significant: a one-sided test of
"no worsening" (``z = worsening / bootstrap SD``, or the normal approximation)
after Benjamini-Hochberg (or Holm) adjustment over every gated row.

The pieces: the policy and the metrics' directions are in :mod:`audit.stats._compare_policy`; the
per-sample statistics and the bootstrap replicates drawn from their counts in
:mod:`audit.stats._compare_bootstrap`; the outcome (:class:`Comparison`) and its rows in words in
:mod:`audit.stats._compare_outcome`. This module matches the two audits' rows, chooses the mode and judges
every change.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from ..errors import StatsInputError
from ._clustered import floor_variance
from ._compare_bootstrap import SampleStats, _count_replicates, _row_replicates
from ._compare_outcome import ROW_COLUMNS, Comparison, row_label
from ._compare_policy import _AGGREGATE_KINDS, ComparePolicy, metric_direction
from ._significance import adjust_p_values

__all__ = ["compare_results"]

PAIRED = "paired"
UNPAIRED = "unpaired"
REPORTED = "unpaired (reported intervals)"


def _floored_p(worsening: float, r: dict) -> float:
    """One-sided p-value of a worsening seen with no variance, on the largest variance a [0, 1] metric can have."""
    from scipy.stats import norm  # lazy (see audit.stats)
    values = (r["baseline"], r["candidate"])
    sizes = (r["n_baseline"], r["n_candidate"])
    if not all(np.isfinite(values)) or not all(0 <= v <= 1 for v in values) or not all(
            np.isfinite(sizes)) or min(sizes) <= 0:
        return float("nan")
    sd = math.sqrt(sum(float(floor_variance(v, n)) for v, n in zip(values, sizes)))
    return float(norm.sf(worsening / sd))


def compare_results(
    baseline,
    candidate,
    *,
    policy: ComparePolicy | None = None,
    baseline_samples: SampleStats | None = None,
    candidate_samples: SampleStats | None = None,
    paired: bool | None = None,
) -> Comparison:
    """Match two audits' metrics and disparities and judge every change against ``policy``.

    Parameters
    ----------
    baseline, candidate : GroupedMetrics or dict
        The engine's results, or their ``to_dict()`` (the ``results`` section
        of ``results.json``).
    policy : ComparePolicy, optional
    baseline_samples, candidate_samples : SampleStats, optional
        Per-sample statistics. With both and equal sample ids, changes are
        tested with a paired bootstrap; otherwise unpaired.
    paired : bool, optional
        ``False`` forces the unpaired bootstrap; ``True`` requires pairing
        (an error if the samples differ); ``None`` pairs when possible.

    Returns
    -------
    Comparison
    """
    policy = policy or ComparePolicy()
    base = baseline if isinstance(baseline, dict) else baseline.to_dict()
    cand = candidate if isinstance(candidate, dict) else candidate.to_dict()
    rows = _match(base, cand, policy)
    if not (rows["status"] == "").any():
        raise StatsInputError(
            "expected the two audits to share at least one metric of one group, found none in common"
        )

    mode, reason = _choose_mode(baseline_samples, candidate_samples, paired)
    rng = np.random.default_rng(policy.seed)
    replicates: dict = {}
    if mode != REPORTED:
        b, c = baseline_samples, candidate_samples
        if mode == PAIRED:
            order_c = np.argsort(c.sample_id, kind="stable")
            order_b = np.argsort(b.sample_id, kind="stable")
            b, c = b.reorder(order_b), c.reorder(order_c)
        groupings = sorted(set(rows.loc[rows["status"] == "", "grouping"]))
        replicates = _count_replicates(b, c, groupings, base, cand, paired=(mode == PAIRED), n_boot=policy.n_boot,
                                       rng=rng)
    rows = _judge(rows, replicates, policy, base, cand, mode)
    method = {
        PAIRED: f"paired bootstrap: {policy.n_boot} joint resamples of the samples, each audit's metrics recomputed "
                "from every sample's pair of confusion cells (score metrics: reported intervals)",
        UNPAIRED: f"unpaired bootstrap: {policy.n_boot} independent resamples of each audit's (group x confusion "
                  "cell) counts (score metrics: reported intervals)",
        REPORTED: "normal approximation: each audit's standard error read off its reported interval",
    }[mode]
    return Comparison(rows=rows, mode=mode, method=method, reason=reason, policy=policy)


def _choose_mode(b: SampleStats | None, c: SampleStats | None, paired: bool | None) -> tuple[str, str]:
    if b is None or c is None:
        which = " and ".join(n for n, s in (("baseline", b), ("candidate", c)) if s is None)
        if paired:
            raise StatsInputError(f"paired comparison: expected per-sample statistics of both audits, found none for {which}")
        return REPORTED, f"no per-sample statistics for the {which}"
    if b.classes != c.classes:
        if paired:
            raise StatsInputError(f"paired comparison: expected the same classes, found {b.classes} and {c.classes}")
        return REPORTED, f"the audits have different classes ({b.classes} vs {c.classes})"
    same = len(b.sample_id) == len(c.sample_id) and set(b.sample_id.tolist()) == set(c.sample_id.tolist())
    if paired is False:
        return UNPAIRED, "pairing switched off"
    if same:
        return PAIRED, f"both audits scored the same {len(b.sample_id)} samples"
    only_b = len(set(b.sample_id.tolist()) - set(c.sample_id.tolist()))
    only_c = len(set(c.sample_id.tolist()) - set(b.sample_id.tolist()))
    if paired:
        raise StatsInputError(
            f"paired comparison: expected the same sample ids, found {only_b} only in the baseline and "
            f"{only_c} only in the candidate"
        )
    return UNPAIRED, f"different samples ({only_b} ids only in the baseline, {only_c} only in the candidate)"


def _match(base: dict, cand: dict, policy: ComparePolicy) -> pd.DataFrame:
    """Outer-join metric rows and disparity rows; ``status`` is '' for matched rows still to be judged."""
    key = ["grouping", "group", "metric", "class"]
    cols = key + ["value", "lower", "upper", "n"]
    mb = pd.DataFrame(base.get("metrics", []), columns=cols)
    mc = pd.DataFrame(cand.get("metrics", []), columns=cols)
    metrics = mb.merge(mc, on=key, how="outer", suffixes=("_b", "_c"), indicator=True, sort=False)
    metrics["item"] = "metric"
    metrics["kind"] = ""

    dcols = ["grouping", "metric", "class", "kind", "group", "other", "difference", "difference_lower",
             "difference_upper", "n_group", "n_other"]
    db = pd.DataFrame(base.get("disparities", []), columns=dcols)
    dc = pd.DataFrame(cand.get("disparities", []), columns=dcols)
    frames = []
    for d in (db, dc):
        d = d[d["kind"].isin(policy.disparity_kinds)].copy()
        aggregate = d["kind"].isin(_AGGREGATE_KINDS)
        d["pair"] = np.where(aggregate, d["group"].fillna("") + " vs " + d["other"].fillna(""), "")
        d["group"] = np.where(aggregate, "", d["group"].fillna(""))
        d["n"] = np.minimum(d["n_group"].astype(float), d["n_other"].astype(float))
        d = d.rename(columns={"difference": "value", "difference_lower": "lower", "difference_upper": "upper"})
        frames.append(d[["grouping", "group", "metric", "class", "kind", "other", "pair", "value", "lower", "upper",
                         "n"]])
    dkey = ["grouping", "group", "metric", "class", "kind"]
    disp = frames[0].merge(frames[1], on=dkey, how="outer", suffixes=("_b", "_c"), indicator=True, sort=False)
    disp["item"] = "disparity"

    rows = pd.concat([metrics, disp], ignore_index=True, sort=False)
    out = pd.DataFrame({
        "item": rows["item"], "grouping": rows["grouping"], "group": rows["group"].fillna(""),
        "metric": rows["metric"], "class": rows["class"].fillna(""), "kind": rows["kind"].fillna(""),
    })
    out["direction"] = [
        ("lower" if item == "disparity" else metric_direction(
            m, higher_is_better=policy.higher_is_better, lower_is_better=policy.lower_is_better))
        for item, m in zip(out["item"], out["metric"])
    ]
    for side, suffix in (("baseline", "_b"), ("candidate", "_c")):
        out[side] = rows["value" + suffix].astype(float)
        out[side + "_lower"] = rows["lower" + suffix].astype(float)
        out[side + "_upper"] = rows["upper" + suffix].astype(float)
        out["n_" + side] = rows["n" + suffix].astype(float)
    note = []
    for r in rows.to_dict("records"):
        if r["item"] == "disparity" and r["kind"] in _AGGREGATE_KINDS:
            pb, pc = r.get("pair_b"), r.get("pair_c")
            note.append(f"baseline {pb if isinstance(pb, str) else '-'}; candidate {pc if isinstance(pc, str) else '-'}")
        elif r["item"] == "disparity" and r["kind"] == "to_reference":
            other = r.get("other_b") if isinstance(r.get("other_b"), str) else r.get("other_c")
            note.append(f"vs {other}")
        else:
            note.append("")
    out["note"] = note
    out["status"] = np.select(
        [rows["_merge"].astype(str) == "left_only", rows["_merge"].astype(str) == "right_only"],
        ["only_baseline", "only_candidate"], default="",
    )
    out["limit"] = [policy.limit(i, m) for i, m in zip(out["item"], out["metric"])]
    for column in ROW_COLUMNS:
        if column not in out:
            out[column] = np.nan
    out["method"] = ""
    out["significant"] = False
    return out[ROW_COLUMNS].reset_index(drop=True)


def _judge(rows: pd.DataFrame, replicates: dict, policy: ComparePolicy, base: dict, cand: dict, mode: str) -> pd.DataFrame:
    from scipy.stats import norm  # lazy (see audit.stats)
    z = norm.ppf(0.5 + policy.confidence / 2)
    listed = {}
    for side, doc in (("baseline", base), ("candidate", cand)):
        for row in doc.get("groups", []):
            listed.setdefault((side, row["grouping"]), []).append(row["group"])
    z_of = {
        "baseline": norm.ppf(0.5 + float(base.get("config", {}).get("confidence", 0.95)) / 2),
        "candidate": norm.ppf(0.5 + float(cand.get("config", {}).get("confidence", 0.95)) / 2),
    }
    gated_metrics = set(policy.metrics) if policy.metrics is not None else None
    p_values = np.full(len(rows), np.nan)
    records = rows.to_dict("records")
    for i, r in enumerate(records):
        if r["status"]:
            continue
        sign = {"higher": -1.0, "lower": 1.0, "": 0.0}[r["direction"]]
        change = r["candidate"] - r["baseline"]
        r["change"] = change
        if not (np.isfinite(r["baseline"]) and np.isfinite(r["candidate"])):
            r["status"] = "undefined"
            continue
        is_disparity = r["item"] == "disparity"
        worsening = (abs(r["candidate"]) - abs(r["baseline"])) if is_disparity else sign * change
        r["worsening"] = worsening

        reps = None
        if replicates:
            rb = _row_replicates(r, replicates, "baseline", listed)
            rc = _row_replicates(r, replicates, "candidate", listed)
            if rb is not None and rc is not None:
                reps = (rb, rc)
        if reps is not None:
            (pb, bb), (pc, bc) = reps
            if not (_close(pb, r["baseline"]) and _close(pc, r["candidate"])):
                raise StatsInputError(
                    f"{row_label(r)}: the per-sample statistics give {pb:.6g} (baseline) and {pc:.6g} (candidate), "
                    f"the results report {r['baseline']:.6g} and {r['candidate']:.6g}; expected the samples of "
                    "the same audits"
                )
            diff = bc - bb
            worse_boot = (np.abs(bc) - np.abs(bb)) if is_disparity else sign * diff
            ok = np.isfinite(diff) & np.isfinite(worse_boot)
            diff, worse_boot = diff[ok], worse_boot[ok]
            if diff.size >= 2:
                lo, hi = np.quantile(diff, [0.5 - policy.confidence / 2, 0.5 + policy.confidence / 2])
                sd = float(np.std(worse_boot, ddof=1))
            else:
                lo = hi = sd = np.nan
            r["method"] = "paired bootstrap" if mode == PAIRED else "unpaired bootstrap"
        else:
            se = []
            for side in ("baseline", "candidate"):
                width = r[side + "_upper"] - r[side + "_lower"]
                se.append(width / (2 * z_of[side]) if np.isfinite(width) else np.nan)
            sd = float(math.hypot(*se)) if all(np.isfinite(se)) else np.nan
            lo, hi = change - z * sd, change + z * sd
            r["method"] = "normal approximation (reported intervals)"
        r["change_lower"], r["change_upper"] = lo, hi
        if not np.isfinite(sd):
            p = np.nan
        elif sd > 0:
            p = float(norm.sf(worsening / sd))  # one-sided: H0 "no worsening"
        elif worsening <= 0:
            p = 1.0
        else:
            # no variance seen (recall 1.000 on both sides, say): a zero standard error must not give p = 0;
            # a [0, 1] metric falls back to the variance it can have at most on its n, as audit.stats' intervals do
            p = _floored_p(worsening, r)

        n_min = np.nanmin([r["n_baseline"], r["n_candidate"]])
        if sign == 0.0 and not is_disparity:
            r["status"] = "info"
        elif gated_metrics is not None and r["metric"] not in gated_metrics:
            r["status"] = "info"
        elif not (n_min >= policy.min_n):
            r["status"] = "small_n"
        else:
            p_values[i] = p
    rows = pd.DataFrame(records, columns=ROW_COLUMNS)
    adjusted, significant = adjust_p_values(p_values, method=policy.correction, alpha=policy.alpha)
    rows["p_value"] = p_values
    rows["p_adjusted"] = adjusted
    rows["significant"] = significant
    pending = rows["status"] == ""
    eps = 1e-12
    over = rows["worsening"] > rows["limit"] + eps
    improved = -rows["worsening"] > rows["limit"] + eps
    if policy.significant_only:
        regression = over & rows["significant"].astype(bool)
    else:
        regression = over
    rows.loc[pending & regression, "status"] = "regression"
    rows.loc[pending & over & ~regression, "status"] = "within_noise"
    rows.loc[pending & ~over & improved, "status"] = "improved"
    rows.loc[rows["status"] == "", "status"] = "ok"
    return rows


def _close(a: float, b: float) -> bool:
    if not (np.isfinite(a) and np.isfinite(b)):
        return np.isfinite(a) == np.isfinite(b)
    return abs(a - b) <= 1e-9 + 1e-9 * abs(b)
