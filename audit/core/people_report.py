"""Report sections shared by the tasks that count people (detection, instance, semantic and panoptic segmentation).

Recall against the IoU threshold and by object size, per group; and the worst-localised missed people as crops
(or the worst images of a per-image score). Shared machinery, so it lives in the core: no task imports another,
and the core knows no task: each task says what decides a miss and how its crops read
(:class:`PersonErrors`, :class:`ImageErrors`) from its own ``report.py``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .charts import line_chart
from .sections import (Block, ErrorGroup, Section, Thumb, emphasis, focus_groups, fmt, group_columns, groupings_of, num, ordered_groups, slug,
                       grey_first)
from .thumbnails import crop_thumbnail, thumb_note, thumbnail, under_root

__all__ = ["ImageErrors", "PEOPLE_METHODOLOGY", "PersonErrors", "people_sections", "recall_charts", "worst_images_section",
           "worst_people", "worst_people_section"]

UNAVAILABLE = ("Not available: the worst errors need the per-person table people.parquet (or, for semantic "
               "segmentation without person masks, images.parquet) in the output directory, as audit run writes them.")


@dataclass(frozen=True)
class PersonErrors:
    """What decides a missed person in ``people.parquet``, and how the crops of the worst errors read.

    Attributes
    ----------
    matched : str
        The column that is true where the person was found.
    iou : str
        The column that ranks the misses, lowest first (an IoU with the best-overlapping prediction).
    what : str
        What that IoU is, in a caption ("best box IoU"); ``best `` is dropped where it labels the blue box.
    predicted : str
        What the blue box is ("best detection").
    caption : str
        The note above the crops: what a miss is and what the boxes are.
    box : str or None
        Prefix of the best-overlapping prediction's box columns (``box + "x"``, ... ``box + "h"``); None: none
        drawn.
    fallback : PersonErrors, optional
        Used instead when ``people.parquet`` has no ``matched`` column (instance segmentation without masks).
    unavailable : str
        The note when there is no ``people.parquet``.
    """

    matched: str
    iou: str
    what: str
    predicted: str
    caption: str
    box: str | None = "best_"
    fallback: PersonErrors | None = None
    unavailable: str = UNAVAILABLE


@dataclass(frozen=True)
class ImageErrors:
    """The worst images of a per-image score in ``images.parquet`` (lowest first), and how they read.

    Attributes
    ----------
    column : str
        The score's column ("miou").
    label : str
        Its name under each thumbnail ("mIoU").
    caption : str
        The note above the thumbnails.
    """

    column: str
    label: str
    caption: str


def recall_charts(metrics: pd.DataFrame, results: dict, key: str, focus: dict | None = None) -> tuple[list, list]:
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
        for grouping in groupings_of(results):
            if grouping == "overall":
                continue
            part = metrics[(metrics["grouping"].isin([grouping, "overall"])) & (metrics["class"] == "")]
            if not (part["metric"].str.startswith(f"{prefix}recall@") & (part["grouping"] == grouping)).any():
                continue  # e.g. person metrics by an image attribute: nothing but the overall line
            groups = ["all"] + ordered_groups(results, grouping)
            styles, crowd = emphasis(focus or {}, grouping, groups[1:])
            if len(names) >= 2:
                series = []
                for i, g in enumerate(groups):
                    rows = part[(part["group"] == g) & part["metric"].isin(names)].set_index("metric")
                    if rows.empty:
                        continue
                    style = {"colour": "#999999", "dash": "", "width": 3.0} if g == "all" else \
                        {"style": i - 1, **styles.get(g, {})}
                    series.append({"label": "overall" if g == "all" else g, **style,
                                   "points": [(t, num(rows["value"].get(m))) for t, m in zip(thresholds, names)],
                                   "lower": [num(rows["lower"].get(m)) for m in names],
                                   "upper": [num(rows["upper"].get(m)) for m in names]})
                iou_charts.append(line_chart(
                    id=f"recall-iou-{key}-{prefix}{slug(grouping)}", title=f"{grouping} ({what} IoU)",
                    x_label="IoU threshold", y_label="recall", series=grey_first(series),
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
                                   "points": [(j, num(rows["value"].get(m))) for j, m in enumerate(ms)],
                                   "lower": [num(rows["lower"].get(m)) for m in ms],
                                   "upper": [num(rows["upper"].get(m)) for m in ms]})
                size_charts.append(line_chart(
                    id=f"recall-size-{key}-{prefix}{slug(grouping)}", title=f"{grouping} ({what}, IoU 0.50)",
                    x_label=x_label, y_label="recall", series=grey_first(series),
                    x_categories=[z.replace("_", " ") for z in sizes], note=" ".join(x for x in (note, crowd) if x)))
    return iou_charts, size_charts


def member(values: pd.Series, group: str) -> np.ndarray:
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
    for col in group_columns(people):
        grouping = col[len("group:"):]
        if groupings is not None and grouping not in groupings:
            continue
        seen = set()
        for v in people[col]:
            seen.update(str(x) for x in v) if isinstance(v, (list, tuple, np.ndarray)) else seen.add(str(v))
        groups = [g for g in (order or {}).get(grouping, []) if g in seen]
        groups += sorted(seen - set(groups))
        for g in groups:
            part = missed[member(missed[col], g)]
            out.append({"grouping": grouping, "group": g, "n_errors": int(len(part)),
                        "items": part.head(per_group).to_dict("records")})
    return out


def worst_images_section(task_in, results: dict, *, errors: ImageErrors, thumbnails: bool) -> tuple[list, str]:
    """The images with the lowest ``errors.column`` per group of each image attribute, and the note above them."""
    table = task_in.images.assign(_miss=False)
    table = table[np.isfinite(table[errors.column].to_numpy(dtype=float))]
    singles = [g for g in groupings_of(results) if g != "overall" and " × " not in g]
    groupings = [g for g in singles if f"group:{g}" in table.columns]
    order = {g: ordered_groups(results, g) for g in groupings}
    root = task_in.image_root
    out = []
    for g in worst_people(table, matched="_miss", score=errors.column, groupings=groupings, order=order):
        items = [Thumb(sample_id=str(r["image_id"]), truth="", predicted="", confidence=fmt(num(r[errors.column])),
                       src=thumbnail(under_root(root, r["file_name"])) if thumbnails and root else None,
                       lines=[f"{errors.label} {fmt(num(r[errors.column]))}"], alt=f"image {r['image_id']}")
                 for r in g["items"]]
        out.append(ErrorGroup(grouping=g["grouping"], group=g["group"], n_errors=g["n_errors"], items=items,
                              unit="image" if g["n_errors"] == 1 else "images"))
    return out, errors.caption + " " + thumb_note(thumbnails, root, "Thumbnails")


def _best_box(row: dict, prefix: str | None):
    """The best-overlapping prediction's box (x, y, w, h) from a people.parquet row, or None (none overlaps, no
    box columns, or a table written before these columns existed)."""
    if prefix is None:
        return None
    cols = [f"{prefix}{c}" for c in "xywh"]
    if not all(c in row for c in cols):
        return None
    box = [num(row[c]) for c in cols]
    if any(v is None or not math.isfinite(v) for v in box):
        return None
    return tuple(box)


def worst_people_section(task_in, results: dict, *, errors: PersonErrors, thumbnails: bool,
                         images: ImageErrors | None = None) -> tuple[list, str]:
    """The worst-localised missed people per group as crops, and the note above them.

    Parameters
    ----------
    task_in : TaskInput
        ``people`` (``people.parquet``) with the columns ``errors`` names, ``image_id``, ``file_name``, ``x``,
        ``y``, ``w``, ``h`` and ``group:<attribute>``; ``images`` for the fallback.
    errors : PersonErrors
        The task's: what decides a miss, what the boxes are.
    images : ImageErrors, optional
        Without ``people.parquet`` but with ``images.parquet``: the worst images instead.
    """
    people = task_in.people
    if people is None and images is not None and task_in.images is not None:
        return worst_images_section(task_in, results, errors=images, thumbnails=thumbnails)
    if people is None:
        return [], errors.unavailable
    if errors.matched not in people.columns and errors.fallback is not None:  # e.g. no mask columns: boxes decide
        errors = errors.fallback
    matched, score, what, predicted = errors.matched, errors.iou, errors.what, errors.predicted
    missing = [c for c in (matched, score, "image_id", "file_name", "x", "y", "w", "h") if c not in people.columns]
    if missing:
        return [], f"Not available: people.parquet has no column {', '.join(missing)} (written by another version?)."
    singles = [g for g in groupings_of(results) if g != "overall" and " × " not in g]
    groupings = [g for g in singles if f"group:{g}" in people.columns]
    order = {g: ordered_groups(results, g) for g in groupings}
    root = task_in.image_root
    out = []
    for g in worst_people(people, matched=matched, score=score, groupings=groupings, order=order):
        items = []
        for r in g["items"]:
            ident = str(r.get("annotation_id", r.get("person", "")))
            src = None
            best = _best_box(r, errors.box)
            if thumbnails and root and r.get("file_name"):
                src = crop_thumbnail(under_root(root, r["file_name"]), (r["x"], r["y"], r["w"], r["h"]), best)
            value = fmt(num(r[score]))
            lines = [f"image {r.get('file_name') or r['image_id']}", f"{what} {value}"]
            if best is not None:
                lines = [lines[0], "orange: ground truth", f"blue: {predicted}, {what.replace('best ', '')} {value}"]
            items.append(Thumb(sample_id=ident, truth="", predicted="", confidence=value, src=src, lines=lines,
                               alt=f"person {ident}" + (f": ground truth box (orange) and the {predicted} "
                                                        f"(blue), IoU {value}" if best is not None else "")))
        out.append(ErrorGroup(grouping=g["grouping"], group=g["group"], n_errors=g["n_errors"], items=items,
                              unit="person missed" if g["n_errors"] == 1 else "people missed"))
    return out, errors.caption + " " + thumb_note(thumbnails, root, "Crops around each person (the box outlined)")


PEOPLE_METHODOLOGY = (
    "Intervals: recall and other proportions of people get a {interval} interval (95%) on the effective sample "
    "size n / deff, where the design effect deff (at least 1) comes from the spread of the images' results (Korn & "
    "Graubard 1998), so people who share an image do not count as independent; their tests are on the same "
    "effective counts. IoU, AR and other means get a cluster bootstrap over images ({n_boot} resamples, seed "
    "{seed}), with the Wilson interval on the group's images where every resample is equal. A group in a single "
    "image is shown but not tested.")


def people_sections(task_in, *, errors: PersonErrors, key: str, thumbnails: bool, forest_metrics: list[str],
                    images: ImageErrors | None = None) -> list[Section]:
    """The sections of a task that counts people: recall by IoU threshold and object size, and the worst errors
    (:func:`worst_people_section` with the task's ``errors`` and ``images``)."""
    results = task_in.document["results"]
    iou, size = recall_charts(pd.DataFrame(results["metrics"]), results, key, focus_groups(results, forest_metrics))
    blocks = [Block(heading=h, charts=c) for h, c in (("Recall against IoU threshold", iou),
                                                       ("Recall by object size", size)) if c]
    if not blocks:
        blocks = [Block(empty="Not available: this audit has no recall at several IoU thresholds or object sizes.")]
    worst, note = worst_people_section(task_in, results, errors=errors, thumbnails=thumbnails, images=images)
    return [Section(id="recall", title="Recall by IoU threshold and object size", blocks=blocks,
                    note="Per group, with 95% intervals; the thick grey line is the whole population. Size ranges "
                         "are COCO's (small < 32², medium < 96² pixels, large above) unless a chart says otherwise."),
            Section(id="worst-errors", title="Worst errors", place="examples", note=note, groups=worst)]
