"""What explains the gaps: the stratified, adjusted and sliced analysis of every audit, run once for every task.

:func:`explain_gaps` reads a task's :class:`~audit.core.units.UnitFrame` (an outcome per unit, its image, its
groups and covariates) and the engine's result, and for each headline disparity of a 0/1 outcome (a metric
of :attr:`Outcome.metric` that the audit compares between groups: the error rate of a classifier, the recall
of people at IoU 0.50) and each attribute compared with a reference group (or of exactly two groups):

- the gap within each stratum of the covariates, the Mantel-Haenszel pooled gap with the CMH and
  Breslow-Day tests, the regression-adjusted marginal gap (a logistic GLM for samples; a GEE with image
  clusters for people, or a cluster-robust GLM above :data:`GEE_MAX_UNITS` people, where GEE is slow), and
  the share of the raw gap the covariates explain with its bootstrap interval
  (:func:`audit.stats.stratified_disparity`; Simpson's paradox and strata holding one group only are warned
  about and recorded);
- the slices of attributes and covariates where the outcome concentrates, found on one half of the images
  and confirmed on the other with Benjamini-Hochberg (:func:`audit.stats.find_slices`).

The result is the ``explanations`` block of ``results.json`` (:func:`audit.core.run.results_document`);
the report's "What explains the gaps" section is drawn from it. :func:`audit.pipeline.evaluate` calls this
once per audit, after the task's ``evaluate``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from ..stats import SEPARATOR, UNKNOWN, find_slices, stratified_disparity
from ..stats import json_plain
from .covariates import COVARIATE_PREFIX
from .units import CLUSTER, GROUP_PREFIX, UnitFrame

__all__ = ["GEE_MAX_UNITS", "SLICE_SETTINGS", "STRATUM_FIELDS", "explain_gaps"]

GEE_MAX_UNITS = 20_000  # above this many clustered units, a cluster-robust GLM instead of a GEE (as fast, same gap)
SLICE_SETTINGS = {"max_level": 2, "min_support": 0.02, "top_k": 10, "fdr": 0.05}
STRATUM_FIELDS = ("stratum", "n_group", "errors_group", "rate_group", "lower_group", "upper_group", "n_reference",
                  "errors_reference", "rate_reference", "lower_reference", "upper_reference", "gap", "gap_lower",
                  "gap_upper", "p_value", "overlap", "weight")


def _empty(covariates: Sequence[str], units: UnitFrame | None, note: str | None) -> dict:
    return {"covariates": list(covariates), "unit": units.unit if units is not None else None,
            "cluster": CLUSTER if units is not None and units.clustered else None, "regression": None,
            "comparisons": [], "slices": [], "notes": [note] if note else []}


def _single_valued(values: pd.Series) -> bool:
    return not values.map(lambda v: isinstance(v, (list, tuple, np.ndarray))).any()


def _comparison(disparities: pd.DataFrame, metric: str, attribute: str, labels: pd.Series, y: np.ndarray):
    """``{"reference": r}`` when the audit compares the attribute's groups with a reference group on ``metric``,
    ``{"groups": (worse, better)}`` when it has exactly two known groups, else None."""
    if len(disparities):
        rows = disparities[(disparities["metric"] == metric) & (disparities["grouping"] == attribute)
                           & (disparities["kind"] == "to_reference")]
        if len(rows):
            return {"reference": str(rows["other"].iloc[0])}
    known = sorted(set(labels) - {UNKNOWN})
    if len(known) != 2:
        return None
    rate = {g: y[(labels == g).to_numpy()].mean() for g in known}
    worse = max(known, key=lambda g: (rate[g], g))
    return {"groups": (worse, next(g for g in known if g != worse))}


def explain_gaps(units: UnitFrame | None, result, *, covariates: Sequence[str], seed: int = 0,
                 n_boot: int = 1000, confidence: float = 0.95) -> dict:
    """The ``explanations`` block of ``results.json``: every headline gap taken apart by the covariates.

    Parameters
    ----------
    units : UnitFrame, optional
        The task's units (None: the task gives none, and nothing is analysed).
    result : GroupedMetrics
        The engine's result: which metrics are compared between groups and against which reference group.
    covariates : sequence of str
        The declared covariates' names (empty: nothing is analysed, and the block says so).
    seed : int
        Seed of the share's bootstrap and of the slices' split into halves.
    n_boot : int
        Bootstrap replicates of the share explained.

    Returns
    -------
    dict
        ``covariates``, ``unit``, ``cluster``, ``regression``; ``comparisons``: one per (outcome, attribute,
        group) with ``metric``, ``outcome``, ``verb``, ``attribute``, ``group``, ``reference``,
        ``covariates``, ``gap`` (:class:`audit.stats.AdjustedGap`'s fields) and ``strata``
        (:data:`STRATUM_FIELDS`); ``slices``: one per outcome with the ``features`` searched, the number
        ``tested`` and the ``confirmed`` slices; ``notes``. JSON-ready: NaN is None.
    """
    if not covariates:
        return _empty(covariates, units, "No covariates were declared (the data card's covariates field, or "
                                         "--covariates).")
    if units is None:
        return _empty(covariates, None, "This audit has no 0/1 outcome per unit (an error or a miss of a sample or "
                                        "a person) to take apart.")
    doc = _empty(covariates, units, None)
    doc["notes"] += list(units.notes)
    present = units.covariates
    if not present:
        doc["notes"].append("None of the declared covariates could be measured.")
        return json_plain(doc)
    table = units.table
    cluster = CLUSTER if units.clustered else None
    regression = "gee" if cluster and len(table) <= GEE_MAX_UNITS else "glm"
    doc["regression"] = regression + (" with image clusters (robust)" if cluster else "")
    rng = np.random.default_rng(seed)
    disparities = result.disparities
    compared = set(disparities["metric"]) if len(disparities) else set()
    attributes = [a for a in units.attributes if _single_valued(table[GROUP_PREFIX + a])]
    for a in units.attributes:
        if a not in attributes:
            doc["notes"].append(f"{a}: a unit may be in several groups, which the stratified analysis cannot "
                                "compare; left out.")
    named = [[a] for a in attributes] + [g.split(SEPARATOR) for g in set(result.groups["grouping"])
                                         if SEPARATOR in g]
    for outcome in units.outcomes:
        if outcome.metric not in compared:
            continue
        y = table[outcome.column].to_numpy()
        frame = pd.DataFrame({outcome.column: y})
        if cluster:
            frame[CLUSTER] = table[CLUSTER].to_numpy()
        for a in attributes:
            frame[a] = table[GROUP_PREFIX + a].astype(str).to_numpy()
        extra = [c for c in present if c not in attributes]
        for c in present:
            frame[COVARIATE_PREFIX + c] = table[COVARIATE_PREFIX + c].to_numpy()
        for a in attributes:
            others = [c for c in present if c != a]
            how = _comparison(disparities, outcome.metric, a, frame[a], y)
            if not others or how is None:
                if others:
                    doc["notes"].append(f"{a}: no reference group and more than two groups, so its gaps are not "
                                        "taken apart (declare reference_groups).")
                continue
            data = frame[[outcome.column, a, *([CLUSTER] if cluster else [])]].copy()
            for c in others:
                data[c] = frame[COVARIATE_PREFIX + c].to_numpy()
            analysis = stratified_disparity(data, outcome=outcome.column, attribute=a, covariates=others,
                                            cluster=cluster, regression=regression, n_boot=n_boot, seed=rng,
                                            confidence=confidence, **how)
            strata = analysis.strata
            for gap in analysis.gaps:
                rows = strata[(strata["group"] == gap.group) & (strata["reference"] == gap.reference)]
                doc["comparisons"].append({
                    "metric": outcome.metric, "outcome": outcome.column, "verb": outcome.verb, "attribute": a,
                    "group": gap.group, "reference": gap.reference, "covariates": others, "gap": gap.to_dict(),
                    "strata": rows[list(STRATUM_FIELDS)].to_dict(orient="records")})
        features = [*attributes, *extra]
        data = frame[[outcome.column, *([CLUSTER] if cluster else []), *attributes]].copy()
        for c in extra:
            data[c] = frame[COVARIATE_PREFIX + c].to_numpy()
        search = find_slices(data, outcome=outcome.column, features=features, cluster=cluster, named=named,
                             seed=rng, confidence=confidence, **SLICE_SETTINGS)
        doc["slices"].append({"metric": outcome.metric, "outcome": outcome.column, "verb": outcome.verb,
                              "features": features, "tested": int(len(search.candidates)),
                              "confirmed": search.slices.to_dict(orient="records"), "config": search.config})
    doc["notes"] = list(dict.fromkeys(doc["notes"]))  # one line each, whatever the number of outcomes
    return json_plain(doc)
