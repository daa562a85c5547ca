"""The report's data: everything the page shows, computed from the audit's outputs before any templating.

Like coverage.py's ``HtmlDataGeneration``: :func:`build_report` turns one or
more ``results.json`` documents (plus, when available, the per-sample tables
``predictions.parquet`` / ``samples.parquet``, the dataset section and the
image paths) into plain dataclasses. The templates only loop and format; every
data-derived string reaches the page through Jinja2's autoescaping.

The page is one skeleton for every task: summary, tables by group, forest
plots, disparities, what explains the gaps (:mod:`._explain`), dataset, methodology, reproducibility. What differs by task
comes from the task itself, through the registry: how its figures read
(``Task.report_spec``: title, table rows, forest plots, methodology) and its
own sections (``Task.report_sections``: calibration, recall curves, worst
errors), as plain data (:mod:`audit.core.sections`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import pandas as pd

from ..core.charts import forest_plot
from ..core.registry import get_task
from ..core.sections import (ReportSpec, TaskInput, fmt, groupings_of, metric_name, metric_rows, num, pick_class,
                             records, slug)
from ..stats import display_name, findings, lower_is_better, method_line
from ._explain import Explanation, explanation

__all__ = ["TaskInput", "Report", "build_report", "fmt"]

# Aggregates over groups (max - min, the largest gap to overall) get no interval: why, in one line.
NO_RANGE_INTERVAL = ("no interval: the bootstrap interval of a maximum over groups is pushed away from 0, "
                     "so the test is the evidence")


CORRECTIONS = {"fdr_bh": "Benjamini–Hochberg (false discovery rate)", "holm": "Holm (family-wise error rate)"}


SHADES = 5


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
    unit: str = "samples"
    sections: list = field(default_factory=list)  # audit.core.sections.Section, from the task

    def charts(self, heading: str) -> list:
        """The charts of the task's blocks headed ``heading`` ("Recall by object size")."""
        return [c for s in self.sections for b in s.blocks if b.heading == heading for c in b.charts]

    @property
    def examples(self) -> list:
        """The worst errors per group (:class:`audit.core.sections.ErrorGroup`), from the task's examples section."""
        return [g for s in self.sections if s.place == "examples" for g in s.groups]
    dataset: dict | None = None
    methodology: list = field(default_factory=list)
    reproducibility: list = field(default_factory=list)  # [(label, value)]
    commands: list = field(default_factory=list)
    small_groups: list = field(default_factory=list)
    warnings: list = field(default_factory=list)
    explanation: Explanation | None = None  # "What explains the gaps", from results.json's explanations


@dataclass
class Report:
    title: str
    created: str
    tasks: list
    thumbnails: bool
    has_dataset: bool
    analysis: list = field(default_factory=list)  # [(section id, title, [(task title, Section)])], in page order


# ---------------------------------------------------------------------------
# Builders
# ---------------------------------------------------------------------------


def _task(document: dict) -> str:
    prov = document.get("provenance") or {}
    return prov.get("task") or document["results"]["config"].get("task") or "classification"


def _spec(card_task: str, results: dict) -> ReportSpec:
    """The task's :class:`ReportSpec`, or one made of its headline metrics when the task gives none."""
    task = get_task(card_task)
    if hasattr(task, "report_spec"):
        return task.report_spec(results, card_task=card_task)
    headline = list(getattr(task, "metrics", {}) or {})
    return ReportSpec(title=card_task.replace("_", " ").capitalize(), table_metrics=headline,
                      forest_metrics=headline[:2])


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


def _units(results: dict, spec: ReportSpec) -> dict:
    """grouping -> what its groups count ('images', 'people'): as the audit says, else people for detection."""
    out: dict = {}
    default = "people" if spec.unit == "people" else None
    for g in results["groups"]:
        unit = g.get("unit") or default
        if unit and unit not in out.setdefault(g["grouping"], []):
            out[g["grouping"]].append(unit)
    return {k: " and ".join(v) for k, v in out.items() if v}


def _group_tables(metrics: pd.DataFrame, results: dict, spec: ReportSpec) -> list[GroupTable]:
    cls = pick_class(metrics, results["config"])
    names = [m for m in spec.table_metrics if not metric_rows(metrics, m, cls).empty]
    lookup = {}
    for m in names:
        for r in records(metric_rows(metrics, m, cls)):
            lookup[(m, r["grouping"], r["group"])] = r
    sizes = {}
    for g in results["groups"]:  # a grouping counted in images and in people lists its groups twice: once here
        if g["group"] not in sizes.setdefault(g["grouping"], []):
            sizes[g["grouping"]].append(g["group"])
    for m in metrics.drop_duplicates(["grouping", "group"]).to_dict("records"):
        if m["group"] not in sizes.setdefault(m["grouping"], []):
            sizes[m["grouping"]].append(m["group"])
    gaps = _worse_gaps(results)
    units = _units(results, spec)
    tables = []
    for block in _blocks(groupings_of(results)):
        columns = [(grouping, group) for grouping in block for group in sizes.get(grouping, [])]
        rows, notes = [], []
        for m in names:
            cells = []
            row_cls = str(metric_rows(metrics, m, cls)["class"].iloc[0])
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


def _forests(metrics: pd.DataFrame, results: dict, spec: ReportSpec, key: str) -> list:
    cls = pick_class(metrics, results["config"])
    refs = results["config"].get("reference_groups") or {}
    out = []
    for m in spec.forest_metrics:
        rows = metric_rows(metrics, m, cls)
        if rows.empty:
            continue
        overall = rows[rows["grouping"] == "overall"]
        overall_v = records(overall)[0]["value"] if len(overall) else None
        blocks = []
        for grouping in groupings_of(results):
            if grouping == "overall":
                continue
            part = rows[rows["grouping"] == grouping]
            if part.empty:
                continue
            ref = refs.get(grouping)
            ref_v = [r["value"] for r in records(part[part["group"] == ref])] if ref is not None else []
            blocks.append({"title": grouping, "reference": ref_v[0] if ref_v else None, "rows": [
                {"label": r["group"] + (" (reference)" if r["group"] == ref else ""), "value": num(r["value"]),
                 "lower": num(r["lower"]), "upper": num(r["upper"]), "small": bool(r["small_group"]),
                 "n": r["n"]} for r in records(part)]})
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


def _headline_disparities(results: dict, spec: ReportSpec) -> list[dict]:
    primary = set(results["config"].get("disparity_metrics") or []) | set(spec.forest_metrics)
    rows = [d for d in results["disparities"] if d["kind"] in ("between_groups", "to_reference")
            and d.get("class", "") in ("", "macro") and d["metric"] in primary and d["difference"] is not None]
    rows.sort(key=lambda d: (not d.get("significant"), -abs(d["difference"]), d["grouping"], d["metric"],
                             d.get("group") or ""))
    return rows


def _methodology(results: dict, spec: ReportSpec) -> list[str]:
    config, sig = results["config"], results["significance"]
    out = list(spec.methodology)
    out.append(f"Significance: {sig.get('tests', 'tests as listed in the disparity table')}. "
               f"{CORRECTIONS.get(sig['correction'], sig['correction'])} correction at α = {sig['alpha']} over the "
               f"family of all {sig['family_size']} tests this audit makes; both adjusted p-values are in results.json.")
    out.append(f"Small groups: a group with fewer than {config.get('min_group_size')} "
               f"{'samples' if spec.unit == 'samples' and not results['config'].get('pooling') else 'units (images or people)'} on a metric's own "
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
    key = f"{slug(task)}-{index}"
    metrics = pd.DataFrame(results["metrics"])
    sig = results["significance"]
    correction = sig["correction"]
    spec = _spec(task, results)
    headline_d = _headline_disparities(results, spec)
    primary = list(dict.fromkeys([*(results["config"].get("disparity_metrics") or []), *spec.forest_metrics]))
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
        key=key, task=task, title=spec.title, model=model, data=data, predictions=predictions,
        n_samples=int(data.get("n_samples") or 0), headlines=headlines, flags=flags, method=method_line(results),
        tables=_group_tables(metrics, results, spec), forests=_forests(metrics, results, spec, key),
        significance={"method": correction_name, "code": correction, "alpha": sig["alpha"],
                      "family_size": sig["family_size"], "tests": sig.get("tests", "")},
        disparities=_disparity_rows([d for d in results["disparities"] if d["kind"] in ("between_groups", "to_reference")
                                     and d.get("class", "") in ("", "macro")], correction),
        all_disparities=_disparity_rows(results["disparities"], correction),
        dataset=task_in.dataset, methodology=_methodology(results, spec), reproducibility=repro,
        commands=commands, small_groups=small, warnings=[str(w) for w in results.get("warnings") or []],
        unit=spec.unit, explanation=explanation(doc))
    registered = get_task(task)
    if hasattr(registered, "report_sections"):
        report.sections = registered.report_sections(task_in, card_task=task, key=key, thumbnails=thumbnails)
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
    analysis: dict = {}  # section id -> (title, [(task title, Section)]), in the order tasks contribute them
    for t in tasks:
        for s in t.sections:
            if s.place == "analysis":
                analysis.setdefault(s.id, (s.title, []))[1].append((t.title, s))
    return Report(title=title, created=created, tasks=tasks, thumbnails=thumbnails,
                  has_dataset=any(t.dataset for t in tasks),
                  analysis=[(sid, title, parts) for sid, (title, parts) in analysis.items()])
