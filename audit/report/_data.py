"""The report's data: everything the page shows, computed from the audit's outputs before any templating.

Like coverage.py's ``HtmlDataGeneration``: :func:`build_report` turns one or
more ``results.json`` documents (plus, when available, the per-sample tables
``predictions.parquet`` / ``samples.parquet``, the dataset section and the
image paths) into plain dataclasses. The templates only loop and format; every
data-derived string reaches the page through Jinja2's autoescaping.
"""

from __future__ import annotations

import base64
import io
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ..stats import display_name, findings, lower_is_better, method_line
from ._charts import PALETTE, forest_plot, line_chart

__all__ = ["TaskInput", "Report", "build_report", "threshold_sweep", "worst_errors", "worst_people", "fmt"]


TASK_TITLES = {"classification": "Classification", "detection": "Detection",
               "instance_segmentation": "Instance segmentation", "semantic_segmentation": "Semantic segmentation"}

# Rows of the Gender Shades-style table, per task, in order (only those present are shown).
TABLE_METRICS = {
    "classification": ["accuracy", "error_rate", "overall_error", "abstention_rate", "tpr", "fpr", "ppv", "fnr",
                       "roc_auc", "ece"],
    "detection": ["recall@0.50", "recall@0.75", "ar", "miss_rate@0.50", "matched_iou@0.50", "mask_recall@0.50",
                  "mask_recall@0.75", "mask_ar", "bbox_AP", "bbox_AP50", "segm_AP"],
    "semantic_segmentation": ["miou_pooled", "miou_per_image", "mdice_pooled", "mdice_per_image",
                              "pixel_accuracy_pooled", "pixel_accuracy_per_image", "person_iou", "person_iou_pooled",
                              "person_recall@0.50", "person_ar"],
}
TABLE_METRICS["instance_segmentation"] = TABLE_METRICS["detection"]
# A binary task with a positive class: Gender Shades' own columns, for that class.
BINARY_TABLE_METRICS = ["tpr", "fpr", "ppv", "fdr", "error_rate"]
# Aggregates over groups (max - min, the largest gap to overall) get no interval: why, in one line.
NO_RANGE_INTERVAL = ("no interval: the bootstrap interval of a maximum over groups is pushed away from 0, "
                     "so the test is the evidence")
FOREST_METRICS = {"classification": ["error_rate", "tpr"], "detection": ["recall@0.50", "ar"],
                  "instance_segmentation": ["mask_recall@0.50", "recall@0.50"],
                  "semantic_segmentation": ["miou_pooled", "miou_per_image", "person_recall@0.50"]}

CORRECTIONS = {"fdr_bh": "Benjamini–Hochberg (false discovery rate)", "holm": "Holm (family-wise error rate)"}
SHADES = 5
THUMB = 96
OUTLINE = (230, 97, 1)  # the person's box on a crop: orange, visible on most photographs
DETECTION = (0, 114, 178)  # the best-matching detection's box: Okabe-Ito blue


def fmt(value, digits: int = 3) -> str:
    """A number as the report prints it: fixed digits, '–' when undefined."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (float, np.floating)):
        value = float(value)
        if abs(value) < 1e-12:
            value = 0.0
        if value != 0 and abs(value) < 10 ** (-digits):
            return f"{value:.1e}"
        return f"{value:.{digits}f}"
    return str(value)


def metric_name(metric: str) -> str:
    """The metric's display name, from the one table in :mod:`audit.stats` (IoU, mIoU, AP stay as written)."""
    return display_name(metric)


def _num(v):
    return None if v is None else float(v)


# ---------------------------------------------------------------------------
# Inputs and the report's data classes
# ---------------------------------------------------------------------------


@dataclass
class TaskInput:
    """One audit's outputs: the ``results.json`` document and what else the report can use.

    ``predictions`` / ``samples`` are the tables of ``predictions.parquet`` / ``samples.parquet``
    (classification: for the threshold sweep and the worst errors); ``image_paths`` maps sample ids to image
    files (for thumbnails); ``dataset`` is :func:`audit.dataset.report_section`'s dict; ``location`` is the
    output directory shown in the re-render command. ``people`` is ``people.parquet`` (detection and
    segmentation: one row per person, for the worst errors), ``images`` is ``images.parquet`` (semantic
    segmentation without person masks: one row per image) and ``image_root`` the directory their
    ``file_name`` column is relative to.
    """

    document: dict
    predictions: pd.DataFrame | None = None
    samples: pd.DataFrame | None = None
    image_paths: dict | None = None
    dataset: dict | None = None
    location: str | None = None
    command: str | None = None
    people: pd.DataFrame | None = None
    image_root: str | None = None
    images: pd.DataFrame | None = None


@dataclass
class Cell:
    value: str
    interval: str
    n: str
    shade: int | None  # 0..SHADES-1: significantly worse than the whole population, darker = larger gap; None = not
    small: bool = False
    missing: bool = False


@dataclass
class GroupTable:
    title: str
    spans: list  # [(grouping, number of columns)]
    columns: list  # group labels
    small_columns: list  # bool per column
    rows: list  # [(metric code, metric name, [Cell])]
    notes: list = field(default_factory=list)


@dataclass
class DisparityRow:
    grouping: str
    metric: str
    cls: str
    kind: str
    group: str
    other: str
    n: str
    difference: str
    ratio: str
    test: str
    p: str
    p_adj: str
    significant: bool
    small: bool


@dataclass
class Headline:
    sentence: str
    significant: bool
    small: bool
    caveat: str = ""


@dataclass
class Thumb:
    sample_id: str
    truth: str
    predicted: str
    confidence: str
    src: str | None  # a data: URI, or None when left out or unavailable
    lines: list = field(default_factory=list)  # caption lines (people); empty: truth / predicted (classifiers)
    alt: str = ""


@dataclass
class ErrorGroup:
    grouping: str
    group: str
    n_errors: int
    items: list
    unit: str = "errors"


@dataclass
class TaskReport:
    key: str
    task: str
    title: str
    model: dict
    data: dict
    predictions: dict
    n_samples: int
    headlines: list
    flags: list
    method: str
    tables: list
    forests: list
    significance: dict
    disparities: list  # headline kinds
    all_disparities: list
    calibration: list = field(default_factory=list)
    sweeps: list = field(default_factory=list)
    sweep_note: str = ""
    recall_iou: list = field(default_factory=list)
    recall_size: list = field(default_factory=list)
    worst: list = field(default_factory=list)
    worst_note: str = ""
    dataset: dict | None = None
    methodology: list = field(default_factory=list)
    reproducibility: list = field(default_factory=list)  # [(label, value)]
    commands: list = field(default_factory=list)
    small_groups: list = field(default_factory=list)
    warnings: list = field(default_factory=list)


@dataclass
class Report:
    title: str
    created: str
    tasks: list
    thumbnails: bool
    has_classifier: bool
    has_detection: bool
    has_dataset: bool


# ---------------------------------------------------------------------------
# Builders
# ---------------------------------------------------------------------------


def _task(document: dict) -> str:
    prov = document.get("provenance") or {}
    return prov.get("task") or document["results"]["config"].get("task") or "classification"


def _pick_class(metrics: pd.DataFrame, config: dict) -> str:
    classes = [str(c) for c in config.get("classes") or []]
    present = set(metrics["class"])
    if "macro" in present:
        return "macro"
    if config.get("pos_label") is not None and str(config["pos_label"]) in present:
        return str(config["pos_label"])
    return classes[-1] if classes and classes[-1] in present else ""


def _clean(row: dict) -> dict:
    """A metric row with NaN as None and ``n`` as an int (pandas turns None into NaN)."""
    out = dict(row)
    for k in ("value", "lower", "upper"):
        v = out.get(k)
        out[k] = None if v is None or not math.isfinite(float(v)) else float(v)
    n = out.get("n")
    out["n"] = "–" if n is None or (isinstance(n, float) and not math.isfinite(n)) else int(n)
    return out


def _records(frame: pd.DataFrame) -> list[dict]:
    return [_clean(r) for r in frame.to_dict("records")]


def _metric_rows(metrics: pd.DataFrame, metric: str, cls: str) -> pd.DataFrame:
    rows = metrics[(metrics["metric"] == metric) & (metrics["class"] == "")]
    if rows.empty:
        rows = metrics[(metrics["metric"] == metric) & (metrics["class"] == cls)]
    return rows


def _groupings(results: dict) -> list[str]:
    seen = []
    for g in results["groups"]:
        if g["grouping"] not in seen:
            seen.append(g["grouping"])
    for m in results["metrics"]:
        if m["grouping"] not in seen:
            seen.append(m["grouping"])
    return seen


def _blocks(groupings: list[str]) -> list[list[str]]:
    """Gender Shades column blocks: each intersection with its parts; leftover attributes together."""
    singles = [g for g in groupings if g != "overall" and " × " not in g]
    blocks, used = [], set()
    for g in groupings:
        if " × " in g:
            parts = [p for p in g.split(" × ") if p in singles]
            blocks.append(["overall", *parts, g])
            used.update(parts)
    rest = [g for g in singles if g not in used]
    if rest or not blocks:
        blocks.insert(0, ["overall", *rest])
    return blocks


# Shading: only a group significantly worse than the whole population (its to_overall test, after the
# correction), darker for a larger gap on one absolute scale (points of the metric, 0.01 = 1 point) shared by
# every metric and table, so 0.980 against 1.000 is never as dark as a real gap.
SHADE_POINTS = (0.0, 0.05, 0.10, 0.20, 0.30)  # gap at least 0, 5, 10, 20, 30 points -> shade 0..4
SHADE_LEGEND = ["< 5", "5–10", "10–20", "20–30", "≥ 30"]


def _shade(gap: float) -> int:
    return max(i for i, t in enumerate(SHADE_POINTS) if abs(gap) >= t)


def _worse_gaps(results: dict) -> dict:
    """(grouping, group, metric, class) -> the gap to the whole population, where it is significant and worse."""
    out = {}
    for d in results["disparities"]:
        if d["kind"] != "to_overall" or not d.get("significant") or d.get("difference") is None:
            continue
        diff = float(d["difference"])
        if not math.isfinite(diff) or (diff > 0) != lower_is_better(d["metric"]) or diff == 0:
            continue
        out[(d["grouping"], d.get("group"), d["metric"], d.get("class", ""))] = diff
    return out


def _units(results: dict, task: str) -> dict:
    """grouping -> what its groups count ('images', 'people'): as the audit says, else people for detection."""
    out: dict = {}
    default = "people" if task in ("detection", "instance_segmentation") else None
    for g in results["groups"]:
        unit = g.get("unit") or default
        if unit and unit not in out.setdefault(g["grouping"], []):
            out[g["grouping"]].append(unit)
    return {k: " and ".join(v) for k, v in out.items() if v}


def _group_tables(metrics: pd.DataFrame, results: dict, task: str) -> list[GroupTable]:
    cls = _pick_class(metrics, results["config"])
    wanted = TABLE_METRICS.get(task, [])
    if task == "classification" and results["config"].get("pos_label") is not None:
        wanted = BINARY_TABLE_METRICS
    names = [m for m in wanted if not _metric_rows(metrics, m, cls).empty]
    lookup = {}
    for m in names:
        for r in _records(_metric_rows(metrics, m, cls)):
            lookup[(m, r["grouping"], r["group"])] = r
    sizes = {}
    for g in results["groups"]:  # a grouping counted in images and in people lists its groups twice: once here
        if g["group"] not in sizes.setdefault(g["grouping"], []):
            sizes[g["grouping"]].append(g["group"])
    for m in metrics.drop_duplicates(["grouping", "group"]).to_dict("records"):
        if m["group"] not in sizes.setdefault(m["grouping"], []):
            sizes[m["grouping"]].append(m["group"])
    gaps = _worse_gaps(results)
    units = _units(results, task) if task != "classification" else {}
    tables = []
    for block in _blocks(_groupings(results)):
        columns = [(grouping, group) for grouping in block for group in sizes.get(grouping, [])]
        rows, notes = [], []
        for m in names:
            cells = []
            row_cls = str(_metric_rows(metrics, m, cls)["class"].iloc[0])
            with_interval = any(lookup[(m, *c)]["lower"] is not None for c in columns if (m, *c) in lookup)
            for c in columns:
                r = lookup.get((m, *c))
                if r is None or r["value"] is None:
                    cells.append(Cell("–", "", "" if r is None else f"n={r['n']}", None,
                                      small=bool(r and r["small_group"]), missing=True))
                    continue
                gap = gaps.get((c[0], c[1], m, row_cls))
                if r["lower"] is not None:
                    interval = f"[{fmt(r['lower'])}, {fmt(r['upper'])}]"
                else:
                    interval = "no interval" if with_interval else ""
                cells.append(Cell(fmt(r["value"]), interval, f"n={r['n']}", None if gap is None else _shade(gap),
                                  small=bool(r["small_group"])))
            name = metric_name(m) + (f" ({row_cls})" if row_cls else "")
            if not with_interval:
                name += " ‡"
                if not notes:
                    notes.append("‡ Point estimate only: no interval is computed for this metric per group "
                                 "(AP ranks detections across the whole group, and is not bootstrapped here).")
            rows.append((m, name, cells))
        small_cols = [any(row[2][i].small for row in rows) for i in range(len(columns))]
        spans = []
        for grouping, _ in columns:
            if spans and spans[-1][0] == grouping:
                spans[-1][1] += 1
            else:
                spans.append([grouping, 1])
        spans = [(g + (f" ({units[g]})" if g in units else ""), k) for g, k in spans]
        title = block[-1] if len(block) > 1 and " × " in block[-1] else "single attributes"
        tables.append(GroupTable(title=title, spans=spans,
                                 columns=["all" if g == "overall" else grp for g, grp in columns],
                                 small_columns=small_cols, rows=rows, notes=notes))
    return tables


def _forests(metrics: pd.DataFrame, results: dict, task: str, key: str) -> list:
    cls = _pick_class(metrics, results["config"])
    refs = results["config"].get("reference_groups") or {}
    out = []
    for m in FOREST_METRICS.get(task, []):
        rows = _metric_rows(metrics, m, cls)
        if rows.empty:
            continue
        overall = rows[rows["grouping"] == "overall"]
        overall_v = _records(overall)[0]["value"] if len(overall) else None
        blocks = []
        for grouping in _groupings(results):
            if grouping == "overall":
                continue
            part = rows[rows["grouping"] == grouping]
            if part.empty:
                continue
            ref = refs.get(grouping)
            ref_v = [r["value"] for r in _records(part[part["group"] == ref])] if ref is not None else []
            blocks.append({"title": grouping, "reference": ref_v[0] if ref_v else None, "rows": [
                {"label": r["group"] + (" (reference)" if r["group"] == ref else ""), "value": _num(r["value"]),
                 "lower": _num(r["lower"]), "upper": _num(r["upper"]), "small": bool(r["small_group"]),
                 "n": r["n"]} for r in _records(part)]})
        if blocks:
            label = metric_name(m) + (f" ({rows['class'].iloc[0]})" if rows["class"].iloc[0] else "")
            out.append(forest_plot(id=f"forest-{key}-{m}", title=label, blocks=blocks, overall=overall_v, fmt=fmt,
                                   note="Solid line: overall. Dashed line: the grouping's reference group."))
    return out


def _with_interval(value, lower, upper) -> str:
    """``value [lower, upper]``, or the value alone where there is no interval."""
    if lower is None or upper is None or not (math.isfinite(float(lower)) and math.isfinite(float(upper))):
        return fmt(value)
    return f"{fmt(value)} [{fmt(lower)}, {fmt(upper)}]"


def _disparity_rows(disparities: list[dict], correction: str) -> list[DisparityRow]:
    out = []
    for d in disparities:
        out.append(DisparityRow(
            grouping=d["grouping"], metric=display_name(d["metric"]), cls=d.get("class", ""), kind=d["kind"].replace("_", " "),
            group=d.get("group") or "", other=d.get("other") or "",
            n=f"{d.get('n_group', '–')} / {d.get('n_other', '–')}",
            difference=_with_interval(d["difference"], d.get("difference_lower"), d.get("difference_upper")),
            ratio=_with_interval(d["ratio"], d.get("ratio_lower"), d.get("ratio_upper")),
            test=d.get("test") or "–", p=fmt(d.get("p_value")), p_adj=fmt(d.get(f"p_{correction}")),
            significant=bool(d.get("significant")), small=bool(d.get("small_group"))))
    return out


def _headline_disparities(results: dict, task: str) -> list[dict]:
    primary = set(results["config"].get("disparity_metrics") or []) | set(FOREST_METRICS.get(task, []))
    rows = [d for d in results["disparities"] if d["kind"] in ("between_groups", "to_reference")
            and d.get("class", "") in ("", "macro") and d["metric"] in primary and d["difference"] is not None]
    rows.sort(key=lambda d: (not d.get("significant"), -abs(d["difference"]), d["grouping"], d["metric"],
                             d.get("group") or ""))
    return rows


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


def _ids(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy with ``sample_id`` as strings, so that tables read from CSV and Parquet join."""
    frame = frame.copy()
    frame["sample_id"] = frame["sample_id"].astype(str)
    return frame


def _group_columns(samples: pd.DataFrame) -> list[str]:
    return [c for c in samples.columns if c.startswith("group:")]


def _sweeps(task_in: TaskInput, results: dict, key: str, focus: dict | None = None) -> tuple[list, str]:
    preds, samples = task_in.predictions, task_in.samples
    classes = [str(c) for c in results["config"].get("classes") or []]
    if preds is None or samples is None:
        return [], ("Not available: the threshold sweep needs the per-sample scores (predictions.parquet) and "
                    "groups (samples.parquet) in the output directory.")
    score_cols = [f"score_{c}" for c in classes]
    if not all(c in preds.columns for c in score_cols):
        return [], "Not available: the predictions carry no class scores."
    merged = _ids(samples[["sample_id", "label", *_group_columns(samples)]]).merge(
        _ids(preds[["sample_id", *score_cols]]), on="sample_id", how="inner", validate="one_to_one")
    scores = merged[score_cols].to_numpy(dtype=float)
    if np.isnan(scores).any():
        return [], "Not available: some predictions have no scores."
    charts = []
    how = ""
    columns = {c[len("group:"):]: merged[c].astype(str) for c in _group_columns(samples)}
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
        order = [g for g in _ordered_groups(results, grouping) if g in sweep["groups"]]
        order += sorted(g for g in sweep["groups"] if g not in order)
        series = []
        styles, note = _emphasis(focus or {}, grouping, order)
        for i, g in enumerate(order):
            d = sweep["groups"][g]
            width = 1.8 if i < len(PALETTE) else 3.2  # past 8 groups the colours repeat, drawn thicker
            for rate, dash in (("tpr", ""), ("fpr", "5 3")):
                style = dict(styles.get(g, {}))
                if "legend_label" in style:
                    style["legend_label"] = f"{style['legend_label']} {rate.upper()}"
                series.append({"label": f"{g} {rate.upper()}", "points": list(zip(sweep["thresholds"], d[rate])),
                               "style": i, "dash": dash, "width": width, **style})
        charts.append(line_chart(id=f"sweep-{key}-{_slug(grouping)}", title=grouping, x_label="threshold",
                                 y_label="rate", series=_grey_first(series), note=note))
    return charts, f"Solid: TPR; dashed: FPR; {how}."


# Past this many groups a chart draws the reference group and the worst group in colour, the rest in grey.
HIGHLIGHT_AFTER = 3
GREY = "#c4c4c4"


def _focus(results: dict, task: str) -> dict:
    """grouping -> (reference or best group, worst group) on the task's first forest metric."""
    frame = pd.DataFrame(results["metrics"])
    cls = _pick_class(frame, results["config"]) if len(frame) else ""
    refs = results["config"].get("reference_groups") or {}
    out = {}
    for m in FOREST_METRICS.get(task, []):
        rows = _metric_rows(frame, m, cls) if len(frame) else frame
        if rows.empty:
            continue
        for grouping in _groupings(results):
            part = [r for r in _records(rows[rows["grouping"] == grouping]) if r["value"] is not None]
            if grouping == "overall" or not part or grouping in out:
                continue
            part.sort(key=lambda r: r["value"], reverse=not lower_is_better(m))  # best first
            ref = refs.get(grouping)
            ref = ref if ref in {r["group"] for r in part} else part[0]["group"]
            worst = part[-1]["group"] if part[-1]["group"] != ref else None
            out[grouping] = (ref, worst, bool(refs.get(grouping) == ref), metric_name(m))
    return out


def _emphasis(focus: dict, grouping: str, groups: list[str]) -> tuple[dict, str]:
    """Per group the style overrides of a crowded chart (reference and worst in colour, the rest grey), and a
    note saying so; ({}, "") when the chart has few groups."""
    if len(groups) <= HIGHLIGHT_AFTER or grouping not in focus:
        return {}, ""
    ref, worst, is_ref, metric = focus[grouping]
    styles, first_grey = {}, True
    for g in groups:
        if g == ref:
            styles[g] = {"colour": PALETTE[0], "width": 2.6, "legend_label": g + (" (reference)" if is_ref else " (best)")}
        elif g == worst:
            styles[g] = {"colour": PALETTE[1], "width": 2.6, "legend_label": f"{g} (worst)"}
        else:
            styles[g] = {"colour": GREY, "width": 1.2, "legend": first_grey, "legend_label": "other groups"}
            first_grey = False
    what = "reference" if is_ref else "best"
    return styles, (f"{len(groups)} groups: the {what} group (blue) and the worst group (vermilion) on {metric} "
                    "are drawn in colour, the others in grey.")


def _ordered_groups(results: dict, grouping: str) -> list[str]:
    return [g["group"] for g in results["groups"] if g["grouping"] == grouping]


def _slug(text: str) -> str:
    import re

    return re.sub(r"[^0-9a-z]+", "-", text.lower()).strip("-") or "x"


def _grey_first(series: list) -> list:
    """Grey series drawn first, so the highlighted ones lie on top."""
    return sorted(series, key=lambda x: x.get("colour") != GREY)


def _calibration(results: dict, key: str, focus: dict | None = None) -> list:
    rel = pd.DataFrame(results.get("reliability") or [])
    if rel.empty:
        return []
    rel = rel[rel["count"] > 0]
    overall = rel[rel["grouping"] == "overall"]
    charts = []
    for grouping in _groupings(results):
        if grouping == "overall":
            continue
        part = rel[rel["grouping"] == grouping]
        if part.empty:
            continue
        series = [{"label": "overall", "points": list(zip(overall["mean_confidence"], overall["accuracy"])),
                   "colour": "#999999", "dash": "", "width": 3.0}]
        groups = _ordered_groups(results, grouping)
        styles, note = _emphasis(focus or {}, grouping, groups)
        for i, g in enumerate(groups):
            rows = part[part["group"] == g].sort_values("bin")
            if rows.empty:
                continue
            series.append({"label": g, "points": list(zip(rows["mean_confidence"], rows["accuracy"])), "style": i,
                           **styles.get(g, {})})
        charts.append(line_chart(id=f"calibration-{key}-{_slug(grouping)}", title=grouping,
                                 x_label="mean confidence", y_label="accuracy", series=_grey_first(series),
                                 diagonal=True, note=note))
    return charts


def _recall_charts(metrics: pd.DataFrame, results: dict, key: str, focus: dict | None = None) -> tuple[list, list]:
    iou_charts, size_charts = [], []
    # semantic segmentation: the person-size bins the audit used (COCO ranges, or tertiles when all are small)
    person_bins = ((results["config"].get("people") or {}).get("size_bins") or {})
    for prefix, what in (("", "box"), ("mask_", "mask"), ("person_", "person mask")):
        names = sorted({m for m in metrics["metric"] if m.startswith(f"{prefix}recall@")
                        and "_" not in m[len(prefix) + len("recall@"):]})
        thresholds = [float(m.split("@")[1]) for m in names]
        labels, x_label, note = ["small", "medium", "large"], "object size (COCO area ranges)", ""
        if prefix == "person_" and person_bins:
            labels = list(person_bins.get("labels") or [])
            x_label = ("person mask area (COCO ranges)" if person_bins.get("method") == "coco"
                       else "person mask area (tertiles)")
            note = f"Size bins: {person_bins.get('description', '')}."
        sizes = [s for s in labels if f"{prefix}recall@0.50_{s}" in set(metrics["metric"])]
        for grouping in _groupings(results):
            if grouping == "overall":
                continue
            part = metrics[(metrics["grouping"].isin([grouping, "overall"])) & (metrics["class"] == "")]
            if not (part["metric"].str.startswith(f"{prefix}recall@") & (part["grouping"] == grouping)).any():
                continue  # e.g. person metrics by an image attribute: nothing but the overall line
            groups = ["all"] + _ordered_groups(results, grouping)
            styles, crowd = _emphasis(focus or {}, grouping, groups[1:])
            if len(names) >= 2:
                series = []
                for i, g in enumerate(groups):
                    rows = part[(part["group"] == g) & part["metric"].isin(names)].set_index("metric")
                    if rows.empty:
                        continue
                    style = {"colour": "#999999", "dash": "", "width": 3.0} if g == "all" else \
                        {"style": i - 1, **styles.get(g, {})}
                    series.append({"label": "overall" if g == "all" else g, **style,
                                   "points": [(t, _num(rows["value"].get(m))) for t, m in zip(thresholds, names)],
                                   "lower": [_num(rows["lower"].get(m)) for m in names],
                                   "upper": [_num(rows["upper"].get(m)) for m in names]})
                iou_charts.append(line_chart(
                    id=f"recall-iou-{key}-{prefix}{_slug(grouping)}", title=f"{grouping} ({what} IoU)",
                    x_label="IoU threshold", y_label="recall", series=_grey_first(series),
                    x_domain=(min(thresholds) - 0.025, max(thresholds) + 0.025), note=crowd))
            if sizes:
                series = []
                for i, g in enumerate(groups):
                    rows = part[part["group"] == g].set_index("metric")
                    if rows.empty:
                        continue
                    ms = [f"{prefix}recall@0.50_{s}" for s in sizes]
                    style = {"colour": "#999999", "dash": "", "width": 3.0} if g == "all" else \
                        {"style": i - 1, **styles.get(g, {})}
                    series.append({"label": "overall" if g == "all" else g, **style,
                                   "points": [(j, _num(rows["value"].get(m))) for j, m in enumerate(ms)],
                                   "lower": [_num(rows["lower"].get(m)) for m in ms],
                                   "upper": [_num(rows["upper"].get(m)) for m in ms]})
                size_charts.append(line_chart(
                    id=f"recall-size-{key}-{prefix}{_slug(grouping)}", title=f"{grouping} ({what}, IoU 0.50)",
                    x_label=x_label, y_label="recall", series=_grey_first(series),
                    x_categories=[z.replace("_", " ") for z in sizes], note=" ".join(x for x in (note, crowd) if x)))
    return iou_charts, size_charts


def worst_errors(predictions: pd.DataFrame, samples: pd.DataFrame, classes: list[str], *, per_group: int = 4,
                 groupings: list[str] | None = None) -> list[dict]:
    """The highest-confidence mistakes per group: ``[{grouping, group, n_errors, items: [{sample_id, truth,
    predicted, confidence}]}]`` (ties broken by sample id, so the choice is deterministic)."""
    score_cols = [f"score_{c}" for c in classes]
    cols = ["sample_id", *[c for c in score_cols if c in predictions.columns]]
    merged = _ids(samples).merge(_ids(predictions[cols]), on="sample_id", how="inner")
    wrong = merged[(merged["pred"] != merged["label"]) & (merged["pred"] >= 0)].copy()
    if all(c in wrong.columns for c in score_cols) and len(wrong):
        s = wrong[score_cols].to_numpy(dtype=float)
        wrong["confidence"] = s[np.arange(len(wrong)), wrong["pred"].to_numpy(dtype=int)]
    else:
        wrong["confidence"] = np.nan
    wrong = wrong.sort_values(["confidence", "sample_id"], ascending=[False, True], na_position="last")
    out = []
    for col in _group_columns(samples):
        grouping = col[len("group:"):]
        if groupings is not None and grouping not in groupings:
            continue
        for g in sorted(merged[col].astype(str).unique()):
            part = wrong[wrong[col].astype(str) == g]
            out.append({"grouping": grouping, "group": g, "n_errors": int(len(part)), "items": [
                {"sample_id": str(r["sample_id"]), "truth": classes[int(r["label"])], "predicted":
                 classes[int(r["pred"])], "confidence": _num(r["confidence"])}
                for r in part.head(per_group).to_dict("records")]})
    return out


def _under(root, name) -> str | None:
    """``name`` joined to the image root, or None when it leaves the root (``..``, absolute, symlink): a
    people/images table names a file, and the report embeds only images inside the data card's image root."""
    from .._paths import Root

    guard = Root(root)
    path = guard.join(str(name))
    # a regular file only: opening a FIFO or a device would block or read forever
    return path if guard.inside(path) and os.path.isfile(path) else None


def _thumbnail(path) -> str | None:
    from PIL import Image

    if path is None:
        return None
    try:
        with Image.open(path) as im:
            im = im.convert("RGB")
            im.thumbnail((THUMB, THUMB))
            buf = io.BytesIO()
            im.save(buf, format="PNG", optimize=False)
    except Exception:  # noqa: BLE001 - a thumbnail is best effort (PIL raises DecompressionBombError and others)
        return None
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _worst(task_in: TaskInput, results: dict, thumbnails: bool) -> tuple[list, str]:
    preds, samples = task_in.predictions, task_in.samples
    if preds is None or samples is None:
        return [], ("Not available: the worst errors need predictions.parquet and samples.parquet in the output "
                    "directory.")
    classes = [str(c) for c in results["config"].get("classes") or []]
    singles = [g for g in _groupings(results) if g != "overall" and " × " not in g]
    groups = worst_errors(preds, samples, classes, groupings=singles)
    paths = task_in.image_paths or {}
    out = []
    for g in groups:
        items = [Thumb(sample_id=i["sample_id"], truth=i["truth"], predicted=i["predicted"],
                       confidence=fmt(i["confidence"]),
                       src=_thumbnail(paths[i["sample_id"]]) if thumbnails and i["sample_id"] in paths else None)
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


def _member(values: pd.Series, group: str) -> np.ndarray:
    """Rows of a ``group:<attribute>`` column in ``group``: a label, or a list of labels (multi-valued)."""
    return np.array([group in [str(x) for x in v] if isinstance(v, (list, tuple, np.ndarray)) else str(v) == group
                     for v in values], dtype=bool)


def worst_people(people: pd.DataFrame, *, matched: str = "matched@0.50", score: str = "best_iou",
                 per_group: int = 4, groupings: list[str] | None = None,
                 order: dict | None = None) -> list[dict]:
    """The worst-localised missed people per group (pure: a table in, rows out).

    A person is an error when ``people[matched]`` is false; errors are ranked by ``people[score]`` (IoU: lowest
    first), ties broken by image id then annotation id, so the choice is deterministic. Returns
    ``[{grouping, group, n_errors, items: [row dicts]}]`` for each ``group:<attribute>`` column, groups in the
    order of ``order[grouping]`` (the audit's display order) then sorted.
    """
    missed = people[~people[matched].astype(bool)]
    keys = [score, "image_id"] + (["annotation_id"] if "annotation_id" in people.columns else [])
    missed = missed.sort_values(keys, kind="mergesort", na_position="first")
    out = []
    for col in _group_columns(people):
        grouping = col[len("group:"):]
        if groupings is not None and grouping not in groupings:
            continue
        seen = set()
        for v in people[col]:
            seen.update(str(x) for x in v) if isinstance(v, (list, tuple, np.ndarray)) else seen.add(str(v))
        groups = [g for g in (order or {}).get(grouping, []) if g in seen]
        groups += sorted(seen - set(groups))
        for g in groups:
            part = missed[_member(missed[col], g)]
            out.append({"grouping": grouping, "group": g, "n_errors": int(len(part)),
                        "items": part.head(per_group).to_dict("records")})
    return out


def _crop_thumbnail(path, box, detection=None) -> str | None:
    """A crop around ``box`` (x, y, w, h in pixels) with a quarter of its size (at least 4 px) as margin, at most
    :data:`THUMB` pixels a side, the box outlined in orange; with ``detection`` (x, y, w, h, finite) the crop
    also covers that box and outlines it in blue. A PNG ``data:`` URI (same inputs, same bytes)."""
    from PIL import Image, ImageDraw

    if path is None:
        return None
    x, y, w, h = (float(v) for v in box)
    if not all(math.isfinite(v) for v in (x, y, w, h)) or w <= 0 or h <= 0:
        return None
    det = None
    if detection is not None:
        det = tuple(float(v) for v in detection)
        if not all(math.isfinite(v) for v in det) or det[2] <= 0 or det[3] <= 0:
            det = None
    # the region both boxes occupy
    ux0, uy0, ux1, uy1 = x, y, x + w, y + h
    if det is not None:
        ux0, uy0 = min(ux0, det[0]), min(uy0, det[1])
        ux1, uy1 = max(ux1, det[0] + det[2]), max(uy1, det[1] + det[3])
    try:
        with Image.open(path) as im:
            mx, my = max(0.25 * (ux1 - ux0), 4.0), max(0.25 * (uy1 - uy0), 4.0)
            x0, y0 = max(math.floor(ux0 - mx), 0), max(math.floor(uy0 - my), 0)
            x1, y1 = min(math.ceil(ux1 + mx), im.width), min(math.ceil(uy1 + my), im.height)
            if x1 <= x0 or y1 <= y0:
                return None
            crop = im.crop((x0, y0, x1, y1)).convert("RGB")
            crop.thumbnail((THUMB, THUMB))
            sx, sy = crop.width / (x1 - x0), crop.height / (y1 - y0)
            draw = ImageDraw.Draw(crop)

            def outline(bx, by, bw, bh, colour):
                draw.rectangle([min(max(round((bx - x0) * sx), 0), crop.width - 1),
                                min(max(round((by - y0) * sy), 0), crop.height - 1),
                                min(max(round((bx + bw - x0) * sx) - 1, 0), crop.width - 1),
                                min(max(round((by + bh - y0) * sy) - 1, 0), crop.height - 1)], outline=colour)

            if det is not None:
                outline(*det, DETECTION)
            outline(x, y, w, h, OUTLINE)
            buf = io.BytesIO()
            crop.save(buf, format="PNG", optimize=False)
    except Exception:  # noqa: BLE001 - a thumbnail is best effort (PIL raises DecompressionBombError and others)
        return None
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


# what decides a miss, per task: (matched column, IoU column, what the IoU is, caption)
_PERSON_ERRORS = {
    "detection": ("matched@0.50", "best_iou", "best box IoU",
                  "Missed people per group: ground truth no detection matched at box IoU 0.50 (COCO matching), the "
                  "lowest best IoU with any detection first; where a detection overlaps, the crop outlines the "
                  "ground truth in orange and the best-overlapping detection in blue."),
    "instance_segmentation": ("mask_matched@0.50", "mask_best_iou", "best mask IoU",
                              "Missed people per group: ground truth no detection matched at mask IoU 0.50 (COCO "
                              "matching on masks, as mask recall decides), the lowest best mask IoU first; the crop "
                              "outlines the person's box in orange and the box of the detection whose mask overlaps "
                              "best in blue."),
    "semantic_segmentation": ("matched@0.50", "best_iou", "mask IoU",
                              "Missed people per group: people whose mask IoU with the predicted person region is "
                              "below 0.50 (as person recall at 0.50 counts them), the lowest IoU first; the crop "
                              "outlines the bounding box of the person's mask."),
}


def _thumb_note(thumbnails: bool, root, what: str) -> str:
    if not thumbnails:
        return "Thumbnails left out (--no-thumbnails): only the ids are listed."
    if not root:
        return "Images not available (the data card's image directory could not be found): only the ids are listed."
    return f"{what} at most {THUMB}×{THUMB} pixels, embedded in this file. Leave them out with --no-thumbnails."


def _worst_images(task_in: TaskInput, results: dict, thumbnails: bool) -> tuple[list, str]:
    """Semantic segmentation without person masks: the lowest per-image mIoU per group of each image attribute."""
    table = task_in.images.assign(_miss=False)
    table = table[np.isfinite(table["miou"].to_numpy(dtype=float))]
    singles = [g for g in _groupings(results) if g != "overall" and " × " not in g]
    groupings = [g for g in singles if f"group:{g}" in table.columns]
    order = {g: _ordered_groups(results, g) for g in groupings}
    root = task_in.image_root
    out = []
    for g in worst_people(table, matched="_miss", score="miou", groupings=groupings, order=order):
        items = [Thumb(sample_id=str(r["image_id"]), truth="", predicted="", confidence=fmt(_num(r["miou"])),
                       src=_thumbnail(_under(root, r["file_name"])) if thumbnails and root else None,
                       lines=[f"mIoU {fmt(_num(r['miou']))}"], alt=f"image {r['image_id']}") for r in g["items"]]
        out.append(ErrorGroup(grouping=g["grouping"], group=g["group"], n_errors=g["n_errors"], items=items,
                              unit="image" if g["n_errors"] == 1 else "images"))
    return out, ("No person masks in this split, so the worst images instead: per group, the lowest per-image mIoU "
                 "(mean IoU over the classes in the label or the prediction). "
                 + _thumb_note(thumbnails, root, "Thumbnails"))


def _best_box(row: dict, score: str):
    """The best-overlapping detection's box (x, y, w, h) from a people.parquet row, or None (none overlaps,
    or a table written before these columns existed)."""
    prefix = score[: -len("best_iou")]  # "" or "mask_"
    cols = [f"{prefix}best_{c}" for c in "xywh"]
    if not all(c in row for c in cols):
        return None
    box = [_num(row[c]) for c in cols]
    if any(v is None or not math.isfinite(v) for v in box):
        return None
    return tuple(box)


def _worst_people(task_in: TaskInput, results: dict, task: str, thumbnails: bool) -> tuple[list, str]:
    people = task_in.people
    if people is None and task == "semantic_segmentation" and task_in.images is not None:
        return _worst_images(task_in, results, thumbnails)
    if people is None:
        return [], ("Not available: the worst errors need the per-person table people.parquet (or, for semantic "
                    "segmentation without person masks, images.parquet) in the output directory, as audit run "
                    "writes them.")
    matched, score, what, caption = _PERSON_ERRORS[task]
    if matched not in people.columns:  # instance segmentation without mask columns: boxes decide
        matched, score, what, caption = _PERSON_ERRORS["detection"]
    missing = [c for c in (matched, score, "image_id", "file_name", "x", "y", "w", "h") if c not in people.columns]
    if missing:
        return [], f"Not available: people.parquet has no column {', '.join(missing)} (written by another version?)."
    singles = [g for g in _groupings(results) if g != "overall" and " × " not in g]
    groupings = [g for g in singles if f"group:{g}" in people.columns]
    order = {g: _ordered_groups(results, g) for g in groupings}
    root = task_in.image_root
    out = []
    for g in worst_people(people, matched=matched, score=score, groupings=groupings, order=order):
        items = []
        for r in g["items"]:
            ident = str(r.get("annotation_id", r.get("person", "")))
            src = None
            best = _best_box(r, score)
            if thumbnails and root and r.get("file_name"):
                src = _crop_thumbnail(_under(root, r["file_name"]), (r["x"], r["y"], r["w"], r["h"]), best)
            value = fmt(_num(r[score]))
            lines = [f"image {r.get('file_name') or r['image_id']}", f"{what} {value}"]
            if best is not None:
                lines = [lines[0], "orange: ground truth", f"blue: best detection, {what.replace('best ', '')} {value}"]
            items.append(Thumb(sample_id=ident, truth="", predicted="", confidence=value, src=src, lines=lines,
                               alt=f"person {ident}" + (f": ground truth box (orange) and the best detection "
                                                        f"(blue), IoU {value}" if best is not None else "")))
        out.append(ErrorGroup(grouping=g["grouping"], group=g["group"], n_errors=g["n_errors"], items=items,
                              unit="person missed" if g["n_errors"] == 1 else "people missed"))
    return out, caption + " " + _thumb_note(thumbnails, root, "Crops around each person (the box outlined)")


def _methodology(results: dict, task: str, prov: dict) -> list[str]:
    config, sig = results["config"], results["significance"]
    interval = config.get("interval", "wilson")
    out = []
    if task == "classification":
        out.append(f"Intervals: {interval} intervals (95%) for proportions; percentile bootstrap "
                   f"({config.get('n_boot')} resamples, {config.get('bootstrap', 'plain')}, seed {config.get('seed')}) "
                   "for every other metric and every disparity between two groups. Where every resample is equal "
                   "(a perfect group), the interval is the Wilson interval on the group's samples instead, so no "
                   "interval has zero width.")
        out.append("Abstentions (a prediction of −1) are kept apart: abstention rate = NA/N, error rate is within "
                   "processed samples (1 − TRUE/(N−NA)) and overall error counts abstentions as errors ((NA+FALSE)/N), "
                   "as in Gender Shades' released code.")
    else:
        out.append(f"Intervals: recall and other proportions of people get a {interval} interval (95%) on the "
                   "effective sample size n / deff, where the design effect deff (at least 1) comes from the "
                   "spread of the images' results (Korn & Graubard 1998), so people who share an image do not count "
                   "as independent; their tests are on the same effective counts. IoU, AR and other means get a "
                   f"cluster bootstrap over images ({config.get('n_boot')} resamples, seed {config.get('seed')}), "
                   "with the Wilson interval on the group's images where every resample is equal. A group in a "
                   "single image is shown but not tested.")
    out.append(f"Significance: {sig.get('tests', 'tests as listed in the disparity table')}. "
               f"{CORRECTIONS.get(sig['correction'], sig['correction'])} correction at α = {sig['alpha']} over the "
               f"family of all {sig['family_size']} tests this audit makes; both adjusted p-values are in results.json.")
    out.append(f"Small groups: a group with fewer than {config.get('min_group_size')} "
               f"{'samples' if task == 'classification' else 'units (images or people)'} on a metric's own "
               "denominator keeps its figures but is marked 'small' wherever it appears, including every disparity "
               "it takes part in; its interval is wide and a non-significant result says little.")
    out.append("Missing attribute values form an explicit 'unknown' group. Undefined metrics (an empty group, no "
               "positives) are shown as '–', never as 0.")
    if config.get("recall_explanation"):
        out.append("What cannot be attributed to a group: " + config["recall_explanation"])
    pooling = config.get("pooling") or {}
    if pooling:
        out.append("Pooling convention (segmentation): each metric is named by its convention. "
                   + " ".join(f"*_{k}: {v}." for k, v in pooling.items()))
        out.append("False-positive pixels of a class are charged to the images they occur in, and so to those "
                   "images' groups; pixels are never resampled on their own and small-group flags count images "
                   "(people for person metrics), never pixels.")
    return out


def _command(prov: dict, command: str | None) -> str:
    if command:
        return command
    parts = ["audit", "run"]
    if (prov.get("model") or {}).get("card"):
        parts += ["--model", prov["model"]["card"]]
    if (prov.get("predictions") or {}).get("source") == "file":
        parts += ["--predictions", prov["predictions"].get("file", "FILE")]
    parts += ["--data", (prov.get("data") or {}).get("card", "DATA_CARD"), "--out", "OUT"]
    settings = prov.get("settings") or {}
    for k, flag in (("seed", "--seed"), ("n_boot", "--n-boot"), ("n_perm", "--n-perm")):
        if k in settings:
            parts += [flag, str(settings[k])]
    return " ".join(parts) + "   (reconstructed from the provenance)"


def _task_report(task_in: TaskInput, index: int, thumbnails: bool) -> TaskReport:
    doc = task_in.document
    prov, results = doc.get("provenance") or {}, doc["results"]
    task = _task(doc)
    key = f"{_slug(task)}-{index}"
    metrics = pd.DataFrame(results["metrics"])
    sig = results["significance"]
    correction = sig["correction"]
    headline_d = _headline_disparities(results, task)
    primary = list(dict.fromkeys([*(results["config"].get("disparity_metrics") or []),
                                  *FOREST_METRICS.get(task, [])]))
    headlines = [Headline(f.sentence, f.significant, f.small, f.caveat) for f in findings(results, metrics=primary)]
    small = [f"{g['grouping']}: {g['group']} (n={g['n']})" for g in results["groups"] if g["small_group"]]
    n_sig = sum(1 for d in headline_d if d.get("significant"))
    flags = []
    if n_sig:
        flags.append(f"{n_sig} comparison{'s' if n_sig != 1 else ''} between groups or against a reference group "
                     f"{'are' if n_sig != 1 else 'is'} significant after "
                     f"{CORRECTIONS.get(correction, correction)} correction (α = {sig['alpha']}, "
                     f"{sig['family_size']} tests).")
    else:
        flags.append(f"No difference between groups or against a reference group is significant after "
                     f"{CORRECTIONS.get(correction, correction)} correction (α = {sig['alpha']}, "
                     f"{sig['family_size']} tests). That is not evidence of parity when groups are small.")
    if small:
        flags.append(f"{len(small)} group{'s are' if len(small) != 1 else ' is'} smaller than "
                     f"{results['config'].get('min_group_size')}: {'; '.join(small[:8])}"
                     f"{' …' if len(small) > 8 else ''}. Their figures are shown, marked 'small'.")
    if results["config"].get("recall_explanation"):
        flags.append("Detection disparities compare recall: false positives cannot be attributed to a group.")
    for w in results.get("warnings") or []:
        flags.append(str(w))
    correction_name = CORRECTIONS.get(correction, correction)
    repro = [("audit version", prov.get("audit_version", "–"))]
    repro += [(k, str(v)) for k, v in (prov.get("environment") or {}).items()]
    repro += [("seed", str((prov.get("settings") or {}).get("seed", results["config"].get("seed", "–"))))]
    repro += [("settings", ", ".join(f"{k}={v}" for k, v in (prov.get("settings") or {}).items()) or "–")]
    model = {k: (prov.get("model") or {}).get(k) for k in ("card", "name", "title", "sha256", "source", "weights",
                                                          "weights_sha256")}
    data = {k: (prov.get("data") or {}).get(k) for k in ("card", "name", "title", "sha256", "split", "n_samples")}
    predictions = {k: (prov.get("predictions") or {}).get(k) for k in ("source", "file", "sha256")}
    repro += [("model card", model.get("card") or "none"), ("model SHA-256", model.get("sha256") or "–"),
              ("weights", model.get("weights") or "–"), ("weights SHA-256", model.get("weights_sha256") or "–"),
              ("data card", data.get("card") or "–"), ("data SHA-256", data.get("sha256") or "–"),
              ("predictions", predictions.get("source") or "–"),
              ("predictions SHA-256", predictions.get("sha256") or "–"), ("created", prov.get("created") or "–")]
    where = task_in.location or "OUT"
    commands = [("audit", _command(prov, task_in.command)), ("re-render this page", f"audit report {where}")]
    report = TaskReport(
        key=key, task=task, title=TASK_TITLES.get(task, task), model=model, data=data, predictions=predictions,
        n_samples=int(data.get("n_samples") or 0), headlines=headlines, flags=flags, method=method_line(results),
        tables=_group_tables(metrics, results, task), forests=_forests(metrics, results, task, key),
        significance={"method": correction_name, "code": correction, "alpha": sig["alpha"],
                      "family_size": sig["family_size"], "tests": sig.get("tests", "")},
        disparities=_disparity_rows([d for d in results["disparities"] if d["kind"] in ("between_groups", "to_reference")
                                     and d.get("class", "") in ("", "macro")], correction),
        all_disparities=_disparity_rows(results["disparities"], correction),
        dataset=task_in.dataset, methodology=_methodology(results, task, prov), reproducibility=repro,
        commands=commands, small_groups=small, warnings=[str(w) for w in results.get("warnings") or []])
    if task == "classification":
        focus = _focus(results, task)
        report.calibration = _calibration(results, key, focus)
        report.sweeps, report.sweep_note = _sweeps(task_in, results, key, focus)
        report.worst, report.worst_note = _worst(task_in, results, thumbnails)
    else:
        report.recall_iou, report.recall_size = _recall_charts(metrics, results, key, _focus(results, task))
        report.worst, report.worst_note = _worst_people(task_in, results, task, thumbnails)
    return report


def build_report(inputs: list[TaskInput] | TaskInput, *, thumbnails: bool = True) -> Report:
    """Compute everything the page shows, from one or more audits (one per task)."""
    if isinstance(inputs, TaskInput):
        inputs = [inputs]
    tasks = [_task_report(t, i, thumbnails) for i, t in enumerate(inputs)]
    first = tasks[0]
    model = first.model.get("title") or first.model.get("name") or "external predictions"
    data = first.data.get("title") or first.data.get("name") or "a data split"
    title = f"Fairness audit: {model} on {data}" if len(tasks) == 1 else \
        "Fairness audit: " + ", ".join(t.title.lower() for t in tasks)
    created = (inputs[0].document.get("provenance") or {}).get("created", "")
    return Report(title=title, created=created, tasks=tasks, thumbnails=thumbnails,
                  has_classifier=any(t.task == "classification" for t in tasks),
                  has_detection=any(t.task != "classification" for t in tasks),
                  has_dataset=any(t.dataset for t in tasks))
