"""Per-sample statistics of an audit (:class:`SampleStats`) and the bootstrap replicates of its metrics.

A rate metric depends on the samples only through the counts per (group, confusion cell), so resampling the
samples is a multinomial draw over those counts: :func:`_count_replicates` draws them (jointly for a paired
comparison, independently per audit otherwise) and recomputes every metric from each draw;
:func:`_row_replicates` reads one compared row's quantity (a metric or a disparity) off them. How the
comparison uses them is described in :mod:`audit.stats._compare`.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..errors import StatsInputError
from ._compare_policy import _AGGREGATE_KINDS
from ._groups import ALL, OVERALL, SEPARATOR
from ._rates import CLASS_METRICS, OVERALL_METRICS, macro, rate_components, ratio

__all__ = ["SampleStats"]

MACRO = "macro"


@dataclass
class SampleStats:
    """An audit's per-sample sufficient statistics: confusion cell inputs and binned group labels.

    Attributes
    ----------
    sample_id : ndarray of str, shape (n,)
    y_true, y_pred : ndarray of int, shape (n,)
        Class indices; ``y_pred == -1`` is an abstention.
    groups : DataFrame, n rows
        One column per attribute holding each sample's binned group label
        (as in the audit's groupings, ``unknown`` for missing values).
    classes : list of str
    """

    sample_id: np.ndarray
    y_true: np.ndarray
    y_pred: np.ndarray
    groups: pd.DataFrame
    classes: list

    def __post_init__(self):
        self.sample_id = np.asarray(self.sample_id).astype(str)
        self.y_true = np.asarray(self.y_true, dtype=np.int64)
        self.y_pred = np.asarray(self.y_pred, dtype=np.int64)
        self.groups = self.groups.reset_index(drop=True).astype(str)
        self.classes = [str(c) for c in self.classes]
        n = len(self.sample_id)
        if not (len(self.y_true) == len(self.y_pred) == len(self.groups) == n):
            raise StatsInputError(
                f"expected sample ids, labels, predictions and groups of equal length, found "
                f"{n}, {len(self.y_true)}, {len(self.y_pred)} and {len(self.groups)}"
            )
        if len(set(self.sample_id.tolist())) != n:
            raise StatsInputError("expected unique sample ids, found duplicates")
        c = len(self.classes)
        if n and (self.y_true.min() < 0 or self.y_true.max() >= c or self.y_pred.min() < -1 or self.y_pred.max() >= c):
            raise StatsInputError(f"expected labels in [0, {c - 1}] and predictions in [-1, {c - 1}], found others")

    @property
    def cells(self) -> np.ndarray:
        c = len(self.classes)
        return self.y_true * (c + 1) + np.where(self.y_pred < 0, c, self.y_pred)

    def labels_of(self, grouping: str) -> np.ndarray:
        """Each sample's group label under ``grouping`` (``overall``, an attribute or ``a × b``)."""
        if grouping == OVERALL:
            return np.full(len(self.sample_id), ALL, dtype=object)
        parts = grouping.split(SEPARATOR)
        missing = [p for p in parts if p not in self.groups.columns]
        if missing:
            raise StatsInputError(
                f"grouping '{grouping}': expected attribute column '{missing[0]}' in the per-sample groups, "
                f"found {list(self.groups.columns)}"
            )
        labels = self.groups[parts[0]].to_numpy(dtype=object)
        for part in parts[1:]:
            labels = labels + SEPARATOR + self.groups[part].to_numpy(dtype=object)
        return labels

    def reorder(self, order: np.ndarray) -> "SampleStats":
        return SampleStats(self.sample_id[order], self.y_true[order], self.y_pred[order],
                           self.groups.iloc[order], self.classes)


# --- bootstrap replicates from counts ----------------------------------------------------------------------


def _group_index(labels: np.ndarray, known: list[str]) -> tuple[np.ndarray, list[str]]:
    """Codes of ``labels`` in ``known`` order (labels not in ``known`` are appended)."""
    order = list(known)
    extra = sorted(set(labels.tolist()) - set(order))
    order += extra
    position = {label: i for i, label in enumerate(order)}
    return np.array([position[label] for label in labels], dtype=np.int64), order


def _values_from_confusion(conf: np.ndarray, classes: list[str]) -> dict:
    """``(metric, class) -> values`` over the leading axes of ``conf`` (..., C, C + 1)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        parts = rate_components(conf)
        out = {}
        for name in OVERALL_METRICS:
            out[(name, "")] = ratio(*parts[name])
        for name in CLASS_METRICS:
            values = ratio(*parts[name])
            for k, cls in enumerate(classes):
                out[(name, cls)] = values[..., k]
            out[(name, MACRO)] = macro(values)
    return out


def _count_replicates(b: SampleStats, c: SampleStats, groupings: list[str], base: dict, cand: dict, *, paired: bool,
                      n_boot: int, rng) -> dict:
    """Point values and bootstrap replicates of every count-based metric, per audit and grouping.

    Returns ``{(side, grouping): (labels, {(metric, class): (point (G,), boot (B, G))})}``.
    """
    from scipy import sparse  # lazy (see audit.stats)
    sides = {"baseline": (b, base), "candidate": (c, cand)}
    # group codes per side and grouping, in the order the results list the groups
    codes: dict = {}
    for side, (stats, doc) in sides.items():
        listed: dict = {}
        for row in doc.get("groups", []):
            listed.setdefault(row["grouping"], []).append(row["group"])
        for grouping in groupings:
            codes[(side, grouping)] = _group_index(stats.labels_of(grouping), listed.get(grouping, []))
    n_cells = len(b.classes) * (len(b.classes) + 1)

    def units(stats: SampleStats, side: str) -> np.ndarray:
        # the finest stratum of a sample: its codes under every grouping, plus its confusion cell
        return np.column_stack([codes[(side, g)][0] for g in groupings] + [stats.cells])

    if paired:
        joint = np.column_stack([units(b, "baseline"), units(c, "candidate")])
        uniq, inverse = np.unique(joint, axis=0, return_inverse=True)
        counts = np.bincount(inverse.ravel(), minlength=len(uniq))
        draws = _multinomial(counts, n_boot, rng)
        width = len(groupings) + 1
        tables = {"baseline": (uniq[:, :width], counts, draws), "candidate": (uniq[:, width:], counts, draws)}
    else:
        tables = {}
        for side, (stats, _) in sides.items():
            uniq, inverse = np.unique(units(stats, side), axis=0, return_inverse=True)
            counts = np.bincount(inverse.ravel(), minlength=len(uniq))
            tables[side] = (uniq, counts, _multinomial(counts, n_boot, rng))

    out = {}
    classes = b.classes
    for side, (uniq, counts, draws) in tables.items():
        for j, grouping in enumerate(groupings):
            labels = codes[(side, grouping)][1]
            column = uniq[:, j] * n_cells + uniq[:, -1]
            width = len(labels) * n_cells
            indicator = sparse.csr_matrix((np.ones(len(uniq)), (np.arange(len(uniq)), column)), shape=(len(uniq), width))
            point = (indicator.T @ counts.astype(float)).reshape(len(labels), len(classes), len(classes) + 1)
            boot = np.asarray((indicator.T @ draws.T.astype(float)).T).reshape(
                n_boot, len(labels), len(classes), len(classes) + 1)
            point_values = _values_from_confusion(point, classes)
            boot_values = _values_from_confusion(boot, classes)
            out[(side, grouping)] = (labels, {k: (point_values[k], boot_values[k]) for k in point_values})
    return out


def _multinomial(counts: np.ndarray, n_boot: int, rng) -> np.ndarray:
    total = int(counts.sum())
    if total == 0:
        return np.zeros((n_boot, len(counts)), dtype=np.int64)
    return rng.multinomial(total, counts / total, size=n_boot)


def _quiet(fn, values, axis):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return fn(values, axis=axis)


def _row_replicates(r, replicates: dict, side: str, reference: dict) -> tuple[float, np.ndarray] | None:
    """Point value and replicates of one row's quantity for one side, or None when not count-based."""
    entry = replicates.get((side, r["grouping"]))
    if entry is None:
        return None
    labels, values = entry
    cls = r["class"]
    found = values.get((r["metric"], cls))
    if found is None:
        return None
    point, boot = found
    if r["item"] == "metric":
        if r["group"] not in labels:
            return None
        g = labels.index(r["group"])
        return float(point[g]), boot[:, g]
    # disparities: use only the groups this audit reports (its listed groups come first in ``labels``)
    if r["kind"] in _AGGREGATE_KINDS:
        n_listed = len(reference.get((side, r["grouping"]), labels))
        point, boot = point[:n_listed], boot[:, :n_listed]
        if r["kind"] == "between_groups":
            return (float(_quiet(np.nanmax, point, None) - _quiet(np.nanmin, point, None)),
                    _quiet(np.nanmax, boot, 1) - _quiet(np.nanmin, boot, 1))
        overall = replicates.get((side, OVERALL))
        if overall is None or (r["metric"], cls) not in overall[1]:
            return None
        op, ob = overall[1][(r["metric"], cls)]
        return (float(_quiet(np.nanmax, np.abs(point - op[0]), None)),
                _quiet(np.nanmax, np.abs(boot - ob[:, :1]), 1))
    if r["group"] not in labels:
        return None
    g = labels.index(r["group"])
    if r["kind"] == "to_overall":
        overall = replicates.get((side, OVERALL))
        if overall is None or (r["metric"], cls) not in overall[1]:
            return None
        op, ob = overall[1][(r["metric"], cls)]
        return float(point[g] - op[0]), boot[:, g] - ob[:, 0]
    other = r["note"][3:] if r["note"].startswith("vs ") else None
    if other not in labels:
        return None
    o = labels.index(other)
    return float(point[g] - point[o]), boot[:, g] - boot[:, o]
