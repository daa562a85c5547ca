"""The classification task's report sections: calibration curves and threshold sweeps per group, and the
highest-confidence mistakes per group with thumbnails.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ...core.charts import PALETTE, line_chart
from ...core.sections import (Block, ErrorGroup, ReportSpec, Section, Thumb, emphasis, focus_groups, fmt, group_columns, groupings_of, ids_as_str, num,
                              ordered_groups, slug, grey_first)
from ...core.thumbnails import THUMB, thumbnail

__all__ = ["calibration_charts", "report_sections", "report_spec", "threshold_sweep", "worst_errors"]

def threshold_sweep(labels, scores: np.ndarray, classes: list[str], groups: pd.Series | np.ndarray,
                    thresholds=None, pos_label: str | None = None) -> dict:
    """TPR and FPR against the decision threshold, per group (pure: arrays in, numbers out).

    Binary: the positive class's score (``pos_label``, else the second class). Multiclass: the macro average
    over classes of each class's one-vs-rest TPR and FPR on its own score. Returns ``{group: {"tpr": [...],
    "fpr": [...], "n": n}}`` plus ``"thresholds"`` and ``"how"``.
    """
    thresholds = np.round(np.linspace(0, 1, 21), 2) if thresholds is None else np.asarray(thresholds)
    labels = np.asarray(labels)
    scores = np.asarray(scores, dtype=float)
    groups = np.asarray(groups, dtype=object)
    if len(classes) == 2:
        pos = classes.index(pos_label) if pos_label in classes else 1
        which = [pos]
        how = f"score of '{classes[pos]}'"
    else:
        which = list(range(len(classes)))
        how = "macro average over classes of one-vs-rest TPR and FPR, each on its class's score"
    out = {"thresholds": [float(t) for t in thresholds], "how": how, "groups": {}}
    for g in pd.unique(groups):
        mask = groups == g
        tprs, fprs = [], []
        for c in which:
            s = scores[mask, c]
            pos_mask = labels[mask] == c
            ge = s[:, None] >= thresholds[None, :]
            n_pos, n_neg = pos_mask.sum(), (~pos_mask).sum()
            tprs.append(ge[pos_mask].sum(0) / n_pos if n_pos else np.full(len(thresholds), np.nan))
            fprs.append(ge[~pos_mask].sum(0) / n_neg if n_neg else np.full(len(thresholds), np.nan))
        with np.errstate(all="ignore"):
            import warnings

            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                tpr, fpr = np.nanmean(tprs, axis=0), np.nanmean(fprs, axis=0)
        out["groups"][str(g)] = {"tpr": [float(v) for v in tpr], "fpr": [float(v) for v in fpr],
                                 "n": int(mask.sum())}
    return out


def threshold_charts(task_in, results: dict, key: str, focus: dict | None = None) -> tuple[list, str]:
    preds, samples = task_in.predictions, task_in.samples
    classes = [str(c) for c in results["config"].get("classes") or []]
    if preds is None or samples is None:
        return [], ("Not available: the threshold sweep needs the per-sample scores (predictions.parquet) and "
                    "groups (samples.parquet) in the output directory.")
    score_cols = [f"score_{c}" for c in classes]
    if not all(c in preds.columns for c in score_cols):
        return [], "Not available: the predictions carry no class scores."
    merged = ids_as_str(samples[["sample_id", "label", *group_columns(samples)]]).merge(
        ids_as_str(preds[["sample_id", *score_cols]]), on="sample_id", how="inner", validate="one_to_one")
    scores = merged[score_cols].to_numpy(dtype=float)
    if np.isnan(scores).any():
        return [], "Not available: some predictions have no scores."
    charts = []
    how = ""
    columns = {c[len("group:"):]: merged[c].astype(str) for c in group_columns(samples)}
    for parts in results["config"].get("intersections") or []:
        if all(p in columns for p in parts):  # intersection labels as the engine writes them: "a × b"
            label = columns[parts[0]]
            for p in parts[1:]:
                label = label + " × " + columns[p]
            columns[" × ".join(parts)] = label
    for grouping, values in columns.items():
        sweep = threshold_sweep(merged["label"].to_numpy(), scores, classes, values.to_numpy(),
                                pos_label=results["config"].get("pos_label"))
        how = sweep["how"]
        order = [g for g in ordered_groups(results, grouping) if g in sweep["groups"]]
        order += sorted(g for g in sweep["groups"] if g not in order)
        series = []
        styles, note = emphasis(focus or {}, grouping, order)
        for i, g in enumerate(order):
            d = sweep["groups"][g]
            width = 1.8 if i < len(PALETTE) else 3.2  # past 8 groups the colours repeat, drawn thicker
            for rate, dash in (("tpr", ""), ("fpr", "5 3")):
                style = dict(styles.get(g, {}))
                if "legend_label" in style:
                    style["legend_label"] = f"{style['legend_label']} {rate.upper()}"
                series.append({"label": f"{g} {rate.upper()}", "points": list(zip(sweep["thresholds"], d[rate])),
                               "style": i, "dash": dash, "width": width, **style})
        charts.append(line_chart(id=f"sweep-{key}-{slug(grouping)}", title=grouping, x_label="threshold",
                                 y_label="rate", series=grey_first(series), note=note))
    return charts, f"Solid: TPR; dashed: FPR; {how}."


def calibration_charts(results: dict, key: str, focus: dict | None = None) -> list:
    rel = pd.DataFrame(results.get("reliability") or [])
    if rel.empty:
        return []
    rel = rel[rel["count"] > 0]
    overall = rel[rel["grouping"] == "overall"]
    charts = []
    for grouping in groupings_of(results):
        if grouping == "overall":
            continue
        part = rel[rel["grouping"] == grouping]
        if part.empty:
            continue
        series = [{"label": "overall", "points": list(zip(overall["mean_confidence"], overall["accuracy"])),
                   "colour": "#999999", "dash": "", "width": 3.0}]
        groups = ordered_groups(results, grouping)
        styles, note = emphasis(focus or {}, grouping, groups)
        for i, g in enumerate(groups):
            rows = part[part["group"] == g].sort_values("bin")
            if rows.empty:
                continue
            series.append({"label": g, "points": list(zip(rows["mean_confidence"], rows["accuracy"])), "style": i,
                           **styles.get(g, {})})
        charts.append(line_chart(id=f"calibration-{key}-{slug(grouping)}", title=grouping,
                                 x_label="mean confidence", y_label="accuracy", series=grey_first(series),
                                 diagonal=True, note=note))
    return charts


def worst_errors(predictions: pd.DataFrame, samples: pd.DataFrame, classes: list[str], *, per_group: int = 4,
                 groupings: list[str] | None = None) -> list[dict]:
    """The highest-confidence mistakes per group: ``[{grouping, group, n_errors, items: [{sample_id, truth,
    predicted, confidence}]}]`` (ties broken by sample id, so the choice is deterministic)."""
    score_cols = [f"score_{c}" for c in classes]
    cols = ["sample_id", *[c for c in score_cols if c in predictions.columns]]
    merged = ids_as_str(samples).merge(ids_as_str(predictions[cols]), on="sample_id", how="inner")
    wrong = merged[(merged["pred"] != merged["label"]) & (merged["pred"] >= 0)].copy()
    if all(c in wrong.columns for c in score_cols) and len(wrong):
        s = wrong[score_cols].to_numpy(dtype=float)
        wrong["confidence"] = s[np.arange(len(wrong)), wrong["pred"].to_numpy(dtype=int)]
    else:
        wrong["confidence"] = np.nan
    wrong = wrong.sort_values(["confidence", "sample_id"], ascending=[False, True], na_position="last")
    out = []
    for col in group_columns(samples):
        grouping = col[len("group:"):]
        if groupings is not None and grouping not in groupings:
            continue
        for g in sorted(merged[col].astype(str).unique()):
            part = wrong[wrong[col].astype(str) == g]
            out.append({"grouping": grouping, "group": g, "n_errors": int(len(part)), "items": [
                {"sample_id": str(r["sample_id"]), "truth": classes[int(r["label"])], "predicted":
                 classes[int(r["pred"])], "confidence": num(r["confidence"])}
                for r in part.head(per_group).to_dict("records")]})
    return out


def worst_error_groups(task_in, results: dict, thumbnails: bool) -> tuple[list, str]:
    preds, samples = task_in.predictions, task_in.samples
    if preds is None or samples is None:
        return [], ("Not available: the worst errors need predictions.parquet and samples.parquet in the output "
                    "directory.")
    classes = [str(c) for c in results["config"].get("classes") or []]
    singles = [g for g in groupings_of(results) if g != "overall" and " × " not in g]
    groups = worst_errors(preds, samples, classes, groupings=singles)
    paths = task_in.image_paths or {}
    out = []
    for g in groups:
        items = [Thumb(sample_id=i["sample_id"], truth=i["truth"], predicted=i["predicted"],
                       confidence=fmt(i["confidence"]),
                       src=thumbnail(paths[i["sample_id"]]) if thumbnails and i["sample_id"] in paths else None)
                 for i in g["items"]]
        out.append(ErrorGroup(grouping=g["grouping"], group=g["group"], n_errors=g["n_errors"], items=items))
    if not thumbnails:
        note = "Thumbnails left out (--no-thumbnails): only the sample ids are listed."
    elif not paths:
        note = "Images not available (the data card's images could not be found): only the sample ids are listed."
    else:
        note = f"Thumbnails at most {THUMB}×{THUMB} pixels, embedded in this file. Leave them out with --no-thumbnails."
    return out, ("The highest-confidence mistakes per group: wrong predictions with the largest score for the "
                 "predicted class. " + note)


TABLE_METRICS = ["accuracy", "error_rate", "overall_error", "abstention_rate", "tpr", "fpr", "ppv", "fnr", "roc_auc",
                 "ece"]
# A binary task with a positive class: Gender Shades' own columns, for that class.
BINARY_TABLE_METRICS = ["tpr", "fpr", "ppv", "fdr", "error_rate"]
FOREST_METRICS = ["error_rate", "tpr"]


def report_spec(results: dict, *, card_task: str = "classification") -> ReportSpec:
    """How a classification audit reads in the report (:class:`audit.core.sections.ReportSpec`)."""
    config = results["config"]
    return ReportSpec(
        title="Classification",
        table_metrics=BINARY_TABLE_METRICS if config.get("pos_label") is not None else TABLE_METRICS,
        forest_metrics=FOREST_METRICS, unit="samples",
        methodology=[
            f"Intervals: {config.get('interval', 'wilson')} intervals (95%) for proportions; percentile bootstrap "
            f"({config.get('n_boot')} resamples, {config.get('bootstrap', 'plain')}, seed {config.get('seed')}) for "
            "every other metric and every disparity between two groups. Where every resample is equal (a perfect "
            "group), the interval is the Wilson interval on the group's samples instead, so no interval has zero "
            "width.",
            "Abstentions (a prediction of −1) are kept apart: abstention rate = NA/N, error rate is within processed "
            "samples (1 − TRUE/(N−NA)) and overall error counts abstentions as errors ((NA+FALSE)/N), as in Gender "
            "Shades' released code."])


def report_sections(task_in, *, card_task: str = "classification", key: str, thumbnails: bool) -> list[Section]:
    """Calibration and threshold sweeps per group, and the worst errors (:class:`audit.core.sections.Section`)."""
    results = task_in.document["results"]
    focus = focus_groups(results, FOREST_METRICS)
    sweeps, sweep_note = threshold_charts(task_in, results, key, focus)
    worst, worst_note = worst_error_groups(task_in, results, thumbnails)
    return [
        Section(id="classifier", title="Calibration and thresholds", blocks=[
            Block(heading="Calibration curves per group", anchor="calibration",
                  note="Accuracy against mean confidence in each of the reliability bins (from results.json); the "
                       "dotted diagonal is perfect calibration, the thick grey line the whole population.",
                  charts=calibration_charts(results, key, focus),
                  empty="Not available: the predictions carry no scores."),
            Block(heading="Threshold sweep per group", anchor="threshold-sweep", note=sweep_note, charts=sweeps)]),
        Section(id="worst-errors", title="Worst errors", place="examples", note=worst_note, groups=worst),
    ]
