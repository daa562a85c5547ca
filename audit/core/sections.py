"""What a task contributes to the report, and the helpers its sections share: plain data, no markup.

The report (:mod:`audit.report`) draws one page skeleton (summary, tables by group, forest plots,
disparities, dataset, methodology); each task adds its own sections through the registry
(:meth:`audit.core.registry.Task.report_sections`) and says how its figures read
(:meth:`~audit.core.registry.Task.report_spec`). A section holds chart data (:mod:`audit.core.charts`) and
thumbnails (:mod:`audit.core.thumbnails`); the templates only loop and format.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..stats import display_name, lower_is_better
from .charts import PALETTE

__all__ = ["Block", "ErrorGroup", "ReportSpec", "Section", "TaskInput", "Thumb", "emphasis", "fmt", "focus_groups",
           "grey_first", "group_columns", "groupings_of", "ids_as_str", "metric_name", "metric_rows", "num",
           "ordered_groups", "pick_class", "records", "slug"]


@dataclass(frozen=True)
class ReportSpec:
    """How a task's figures read in the report: its title, the rows of its tables by group, its forest plots.

    Attributes
    ----------
    title : str
        The task's name on the page ("Detection").
    table_metrics : list of str
        Rows of the Gender Shades-style table, in order (those the audit has are shown).
    forest_metrics : list of str
        Metrics with a forest plot; the first the audit has also picks the groups a crowded chart highlights.
    unit : str
        What ``n_samples`` counts ("samples", "people").
    methodology : list of str
        The task's own lines of the methodology section (how its intervals are made, what it counts).
    """

    title: str
    table_metrics: list = field(default_factory=list)
    forest_metrics: list = field(default_factory=list)
    unit: str = "samples"
    methodology: list = field(default_factory=list)


@dataclass
class Block:
    """A headed part of a section: charts, or a note where there is nothing to draw."""

    heading: str = ""
    charts: list = field(default_factory=list)
    note: str = ""
    anchor: str | None = None
    empty: str = ""  # shown instead of the charts when there are none


@dataclass
class Section:
    """A task's section of the page.

    ``place`` is ``"analysis"`` (after the disparities, with its own entry in the navigation; sections of several
    tasks with the same ``id`` share one heading) or ``"examples"`` (the worst errors, after the dataset
    section).
    """

    id: str
    title: str
    place: str = "analysis"
    note: str = ""
    blocks: list = field(default_factory=list)
    groups: list = field(default_factory=list)  # ErrorGroup, for place == "examples"


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


def num(v):
    return None if v is None else float(v)


@dataclass
class TaskInput:
    """One audit's outputs: the ``results.json`` document and what else the report can use.

    ``predictions`` / ``samples`` are the tables of ``predictions.parquet`` / ``samples.parquet``
    (classification: for the threshold sweep and the worst errors); ``image_paths`` maps sample ids to image
    files (for thumbnails); ``dataset`` is :func:`audit.dataset.report_section`'s dict; ``location`` is the
    output directory shown in the re-render command. ``people`` is ``people.parquet`` (detection, semantic
    and panoptic segmentation: one row per person, for the worst errors), ``images`` is ``images.parquet``
    (semantic segmentation without person masks, panoptic segmentation: one row per image) and ``image_root``
    the directory their ``file_name`` column is relative to.
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


# ---------------------------------------------------------------------------
# Reading results.json
# ---------------------------------------------------------------------------


def pick_class(metrics: pd.DataFrame, config: dict) -> str:
    classes = [str(c) for c in config.get("classes") or []]
    present = set(metrics["class"])
    if "macro" in present:
        return "macro"
    if config.get("pos_label") is not None and str(config["pos_label"]) in present:
        return str(config["pos_label"])
    return classes[-1] if classes and classes[-1] in present else ""


def clean_row(row: dict) -> dict:
    """A metric row with NaN as None and ``n`` as an int (pandas turns None into NaN)."""
    out = dict(row)
    for k in ("value", "lower", "upper"):
        v = out.get(k)
        out[k] = None if v is None or not math.isfinite(float(v)) else float(v)
    n = out.get("n")
    out["n"] = "–" if n is None or (isinstance(n, float) and not math.isfinite(n)) else int(n)
    return out


def records(frame: pd.DataFrame) -> list[dict]:
    return [clean_row(r) for r in frame.to_dict("records")]


def metric_rows(metrics: pd.DataFrame, metric: str, cls: str) -> pd.DataFrame:
    rows = metrics[(metrics["metric"] == metric) & (metrics["class"] == "")]
    if rows.empty:
        rows = metrics[(metrics["metric"] == metric) & (metrics["class"] == cls)]
    return rows


def groupings_of(results: dict) -> list[str]:
    seen = []
    for g in results["groups"]:
        if g["grouping"] not in seen:
            seen.append(g["grouping"])
    for m in results["metrics"]:
        if m["grouping"] not in seen:
            seen.append(m["grouping"])
    return seen


def ordered_groups(results: dict, grouping: str) -> list[str]:
    """The groups of ``grouping`` in the audit's order, each once (a grouping counted in images and in people,
    as panoptic lighting is, lists its groups twice in ``results["groups"]``)."""
    return list(dict.fromkeys(g["group"] for g in results["groups"] if g["grouping"] == grouping))


def ids_as_str(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy with ``sample_id`` as strings, so that tables read from CSV and Parquet join."""
    frame = frame.copy()
    frame["sample_id"] = frame["sample_id"].astype(str)
    return frame


def group_columns(samples: pd.DataFrame) -> list[str]:
    return [c for c in samples.columns if c.startswith("group:")]


def slug(text: str) -> str:
    import re

    return re.sub(r"[^0-9a-z]+", "-", text.lower()).strip("-") or "x"


# Past this many groups a chart draws the reference group and the worst group in colour, the rest in grey.
HIGHLIGHT_AFTER = 3


GREY = "#c4c4c4"


def focus_groups(results: dict, metrics: list[str]) -> dict:
    """grouping -> (reference or best group, worst group, whether it is the reference, metric name) on the first of
    ``metrics`` (the task's forest metrics) the audit has."""
    frame = pd.DataFrame(results["metrics"])
    cls = pick_class(frame, results["config"]) if len(frame) else ""
    refs = results["config"].get("reference_groups") or {}
    out = {}
    for m in metrics:
        rows = metric_rows(frame, m, cls) if len(frame) else frame
        if rows.empty:
            continue
        for grouping in groupings_of(results):
            part = [r for r in records(rows[rows["grouping"] == grouping]) if r["value"] is not None]
            if grouping == "overall" or not part or grouping in out:
                continue
            part.sort(key=lambda r: r["value"], reverse=not lower_is_better(m))  # best first
            ref = refs.get(grouping)
            ref = ref if ref in {r["group"] for r in part} else part[0]["group"]
            worst = part[-1]["group"] if part[-1]["group"] != ref else None
            out[grouping] = (ref, worst, bool(refs.get(grouping) == ref), metric_name(m))
    return out


def emphasis(focus: dict, grouping: str, groups: list[str]) -> tuple[dict, str]:
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


def grey_first(series: list) -> list:
    """Grey series drawn first, so the highlighted ones lie on top."""
    return sorted(series, key=lambda x: x.get("colour") != GREY)
