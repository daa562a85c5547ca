"""Ratio-of-sums metrics over clustered units: the engine behind detection and segmentation audits.

A detection image reduces to matched and total ground truth per group at each
IoU threshold; a segmentation image to intersection and union per class and
group. Both are *additive* statistics, and every metric is a ratio of their
sums (recall = matched / total, IoU = intersection / union), or a mean of such
ratios (AR = mean recall over IoU thresholds).

Units inside one image are correlated. A metric that is a proportion of 0/1
units (recall: people found / people) gets a Wilson or Clopper-Pearson
interval on its effective sample size ``n / deff`` and two-proportion tests on
effective counts (:mod:`._clustered`): both behave at 0 and 1, where a
bootstrap sees no variance. Every other metric (IoU, AR, mIoU) gets a cluster
bootstrap: whole images are resampled by drawing image weights and taking one
weights x statistics matrix product; its tests use the bootstrap standard
error (a cluster-robust Wald test), with a variance floor for a group whose
resamples are all equal.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from ..errors import StatsInputError
from ._bootstrap import cluster_weights
from ._clustered import effective_size, floor_variance
from ._disparity import MetricSeries, assemble, disparity_rows, range_by_pairs, series_rows
from ._groups import Attribute, build_groups
from ._intervals import PROPORTION_METHODS
from ._rates import ratio
from ._significance import CORRECTIONS, two_proportion_test

__all__ = ["audit_ratio_metrics"]

# A group in one image has no variance that can be estimated (0 degrees of freedom): it is not tested.
SINGLE_IMAGE = "none_single_image"


def _wald_p(difference: float, replicates: np.ndarray, floor: float = 0.0) -> float:
    """Two-sided p-value of ``difference == 0`` with the bootstrap standard error.

    ``floor`` is added to the bootstrap variance: the variance of the sides
    whose resamples were all equal, which the bootstrap cannot see. A zero
    variance never gives p = 0.
    """
    from scipy.stats import norm  # lazy (see audit.stats)
    replicates = replicates[np.isfinite(replicates)]
    if not np.isfinite(difference) or replicates.size < 2:
        return float("nan")
    variance = replicates.var(ddof=1) + floor
    if variance <= 0:
        return 1.0 if difference == 0 else float("nan")
    return float(2 * norm.sf(abs(difference) / np.sqrt(variance)))


def _degenerate(replicates: np.ndarray) -> np.ndarray:
    """Groups (last axis) whose defined replicates do not vary."""
    defined = np.where(np.isfinite(replicates), replicates, np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a group with no defined replicate is degenerate too
        return ~(np.nanmax(defined, axis=0) > np.nanmin(defined, axis=0))


def _key_name(key) -> str:
    """``"iou[person]"`` for a per-class key ``("iou", "person")``, the name itself otherwise."""
    return f"{key[0]}[{key[1]}]" if isinstance(key, tuple) else str(key)


def audit_ratio_metrics(
    *,
    statistics: pd.DataFrame,
    metrics: Mapping[str, Sequence[tuple[str, str]]],
    groups: pd.DataFrame,
    clusters=None,
    attributes: Sequence[Attribute] | None = None,
    intersections: Sequence[Sequence[str]] = (),
    reference_groups: Mapping[str, str] | None = None,
    disparity_metrics: Sequence[str] | None = None,
    interval: str = "wilson",
    confidence: float = 0.95,
    n_boot: int = 1000,
    weights: str = "multinomial",
    seed: int = 0,
    alpha: float = 0.05,
    correction: str = "fdr_bh",
    min_group_size: int = 50,
    task: str = "ratio",
    size_column: str | None = None,
    n_columns: Mapping | None = None,
    skip_undefined_parts: bool = False,
):
    """Disaggregate ratio-of-sums metrics over groups, with a cluster bootstrap.

    Parameters
    ----------
    statistics : DataFrame, n rows
        Additive per-unit statistics, e.g. one row per ground-truth person
        with ``matched@0.50``, ..., ``total`` columns, or one row per (image,
        class, group) with ``intersection`` and ``union``.
    metrics : mapping of str or (str, str) to sequence of (str, str)
        Metric name, or (metric name, class name) for a per-class metric, to
        its parts, each a (numerator column, denominator column). A metric
        with one part is a ratio of sums; with several it is the mean of their
        ratios, e.g. AR over ten IoU thresholds.
    groups : DataFrame, n rows
        Raw attribute values of each row.
    clusters : array-like of shape (n,), optional
        The resampling unit of each row (e.g. its image id). Rows without a
        cluster are independent units.
    interval : {"wilson", "clopper-pearson", "bootstrap"}
        For single-part metrics of independent 0/1 units (no ``clusters``)
        a proportion interval applies; everything else, and everything when
        ``clusters`` is given, gets a cluster-bootstrap percentile interval.
    weights : {"multinomial", "poisson"}
        Cluster resampling weights; Poisson suits streaming and sharded runs.
    task : str
        Recorded in the result's config.
    size_column : str, optional
        Column counting the units (e.g. 1 per image row): its sums are each
        group's size and the default ``n`` of every metric (small-group flags
        then count units, not pixels).
    n_columns : mapping of metric key to str, optional
        Per-metric column whose sums are that metric's ``n``.
    skip_undefined_parts : bool
        A multi-part metric is the mean over its *defined* parts (NaN parts,
        e.g. a class absent from a group, are left out, as mmseg's
        ``nanmean`` over classes); NaN only when no part is defined.

    Other parameters are those of :func:`audit_classification`. The
    denominator ``n`` of a multi-part metric is that of its first part.

    Returns
    -------
    GroupedMetrics
    """
    if correction not in CORRECTIONS:
        raise StatsInputError(f"expected correction in {sorted(CORRECTIONS)}, found '{correction}'")
    if interval not in (*PROPORTION_METHODS, "bootstrap"):
        raise StatsInputError(f"expected interval in {[*PROPORTION_METHODS, 'bootstrap']}, found '{interval}'")
    extra = [c for c in [size_column, *(n_columns or {}).values()] if c is not None]
    columns = sorted({c for parts in metrics.values() for part in parts for c in part} | set(extra))
    missing = [c for c in columns if c not in statistics.columns]
    if missing:
        raise StatsInputError(f"expected statistics columns {missing}, found columns {list(statistics.columns)}")
    if len(groups) != len(statistics):
        raise StatsInputError(
            f"expected groups to have one row per statistics row ({len(statistics)}), found {len(groups)} rows"
        )
    values = statistics[columns].to_numpy(dtype=float)
    if not np.isfinite(values).all() or (values < 0).any():
        raise StatsInputError("expected finite, non-negative statistics, found NaN, inf or a negative value")
    if attributes is None:
        attributes = [Attribute(name=str(c)) for c in groups.columns]
    structure, _ = build_groups(groups.reset_index(drop=True), attributes, intersections)
    for name, label in (reference_groups or {}).items():
        grouping = structure.grouping(name)
        if label not in grouping.labels:
            raise StatsInputError(f"reference_groups['{name}']: expected one of {grouping.labels}, found '{label}'")
    disparity_metrics = list(metrics) if disparity_metrics is None else list(disparity_metrics)
    n_columns = dict(n_columns or {})

    n_rows, n_cols = values.shape
    clustered = clusters is not None
    cluster_of_row = pd.factorize(pd.Series(clusters))[0] if clustered else np.arange(n_rows)
    n_clusters = int(cluster_of_row.max()) + 1 if n_rows else 0
    # per-cell sums (n_cells, n_cols), and per-cluster per-cell sums for the bootstrap
    cell_sums = np.zeros((structure.n_cells, n_cols))
    np.add.at(cell_sums, structure.cell_of_sample, values)
    rng = np.random.default_rng(seed)
    # per (cluster, finest cell) sums: the units of resampling, of design effects and of the bootstrap
    key = cluster_of_row * structure.n_cells + structure.cell_of_sample
    unit_key, unit_of_row = np.unique(key, return_inverse=True)
    unit_sums = np.zeros((unit_key.size, n_cols))
    np.add.at(unit_sums, unit_of_row, values)
    unit_cluster, unit_cell = np.divmod(unit_key, structure.n_cells)
    boot_sums = None
    if n_boot:
        w = cluster_weights(n_clusters, n_boot=n_boot, seed=rng, method=weights)
        boot_sums = np.zeros((n_boot, structure.n_cells, n_cols))
        # weights (B, clusters) x (clusters -> cell statistics), one cell at a time to keep memory flat
        for cell in range(structure.n_cells):
            members = unit_cell == cell
            dense = np.zeros((n_clusters, n_cols))
            np.add.at(dense, unit_cluster[members], unit_sums[members])
            boot_sums[:, cell, :] = w @ dense

    col = {c: i for i, c in enumerate(columns)}

    def is_proportion(parts) -> bool:
        """One part whose every row is a 0/1 outcome of one unit (numerator <= denominator <= 1)."""
        if len(parts) != 1:
            return False
        num, den = values[:, col[parts[0][0]]], values[:, col[parts[0][1]]]
        return bool(np.isin(num, (0.0, 1.0)).all() and np.isin(den, (0.0, 1.0)).all() and (num <= den).all())

    proportions = {key: is_proportion(parts) for key, parts in metrics.items()}

    def metric_value(sums, parts):
        """Mean over parts of numerator / denominator sums; sums has columns last."""
        ratios = [ratio(sums[..., col[num]], sums[..., col[den]]) for num, den in parts]
        if len(ratios) == 1:
            return ratios[0]
        if skip_undefined_parts:
            stacked = np.stack(ratios)
            defined = np.isfinite(stacked).sum(0)
            with np.errstate(invalid="ignore", divide="ignore"):
                return np.where(defined > 0, np.nansum(stacked, axis=0) / np.maximum(defined, 1), np.nan)
        return np.mean(ratios, axis=0)

    def n_of(key, parts):
        return n_columns.get(key, size_column or parts[0][1])

    def sizes(key, member, cache):
        """Effective sizes of the first part's proportion in each group of ``member`` (units x groups).

        Only proportions need their design effects; every other metric needs only the count of images behind
        each group (the same for all metrics on one denominator), so that is computed once and cached.
        """
        num, den = metrics[key][0]
        if not proportions[key]:
            num = None
        if (num, den) not in cache:
            cache[num, den] = effective_size(unit_sums[:, col[num or den]], unit_sums[:, col[den]], unit_cluster,
                                             member, n_clusters=n_clusters, confidence=confidence,
                                             clustered=clustered)
        return cache[num, den]

    metric_rows, all_disparities, group_rows, undefined = [], [], [], []
    overall_sums = cell_sums.sum(0)
    overall_boot = None if boot_sums is None else boot_sums.sum(1)
    for grouping in structure.groupings:
        sums = structure.sum_cells(cell_sums, grouping, axis=0)  # (G, n_cols)
        boot = None if boot_sums is None else structure.sum_cells(boot_sums, grouping, axis=1)  # (B, G, n_cols)
        member = grouping.indicator[unit_cell] > 0  # (units, G)
        own_cache, rest_cache = {}, {}
        for g, label in enumerate(grouping.labels):
            first = next(iter(metrics), None)
            size = float(sums[g, col[size_column or metrics[first][0][1]]]) if metrics else 0.0
            group_rows.append({"grouping": grouping.name, "group": label, "n": int(round(size)),
                               "small_group": bool(size < min_group_size)})
        for key, parts in metrics.items():
            name, cls = key if isinstance(key, tuple) else (key, "")
            value = metric_value(sums, parts)
            den = sums[:, col[n_of(key, parts)]]
            replicates = None if boot is None else metric_value(boot, parts)
            o_value = float(metric_value(overall_sums, parts))
            o_boot = None if overall_boot is None else metric_value(overall_boot, parts)
            rest_boot = None if boot is None else metric_value(overall_boot[:, None, :] - boot, parts)
            rest_value = metric_value(overall_sums[None, :] - sums, parts)
            own, rest = sizes(key, member, own_cache), sizes(key, ~member, rest_cache)

            if proportions[key]:
                def pair(g, r, own=own, rest=rest):
                    other, o = (rest, g) if r is None else (own, r)
                    if clustered and min(own.clusters[g], other.clusters[o]) < 2:
                        return float("nan"), SINGLE_IMAGE
                    return two_proportion_test(own.successes_effective[g], own.n_effective[g],
                                               other.successes_effective[o], other.n_effective[o])
            else:
                rest_units = rest.clusters
                degenerate = None if replicates is None else _degenerate(replicates)
                rest_degenerate = None if rest_boot is None else _degenerate(rest_boot)

                def pair(g, r, value=value, replicates=replicates, rest_value=rest_value, rest_boot=rest_boot,
                         own=own, rest_units=rest_units, degenerate=degenerate, rest_degenerate=rest_degenerate):
                    if replicates is None:
                        return float("nan"), "none"
                    if clustered and min(own.clusters[g], (rest_units[g] if r is None else own.clusters[r])) < 2:
                        return float("nan"), SINGLE_IMAGE
                    if r is None:
                        other_value, other_boot = rest_value[g], rest_boot[:, g]
                        other_floor = rest_degenerate[g] * floor_variance(rest_value[g], rest_units[g],
                                                                          confidence=confidence)
                    else:
                        other_value, other_boot = value[r], replicates[:, r]
                        other_floor = degenerate[r] * floor_variance(value[r], own.clusters[r], confidence=confidence)
                    floor = degenerate[g] * floor_variance(value[g], own.clusters[g], confidence=confidence) \
                        + other_floor
                    return _wald_p(value[g] - other_value, replicates[:, g] - other_boot, floor), "bootstrap_wald"

            proportion = proportions[key]
            s = MetricSeries(
                name, cls, value, den, replicates,
                own.successes_effective if proportion else None,
                o_value, float(overall_sums[col[n_of(key, parts)]]), o_boot, pair, range_by_pairs(pair, value),
                n_effective=own.n_effective if proportion and clustered else None,
                units=own.clusters,
            )
            rows, missing_values = series_rows(s, grouping, interval=interval, confidence=confidence,
                                               min_group_size=min_group_size)
            if clustered:
                for row in rows:
                    row["interval"] = row["interval"].replace("bootstrap_percentile", "cluster_bootstrap_percentile")
            metric_rows += rows
            undefined += missing_values
            if grouping is not structure.groupings[0] and (key in disparity_metrics or name in disparity_metrics):
                all_disparities += disparity_rows(
                    s, grouping, reference=(reference_groups or {}).get(grouping.name), confidence=confidence,
                    min_group_size=min_group_size,
                )

    config = {
        "task": task, "interval": interval, "confidence": confidence, "n_boot": n_boot, "bootstrap": "cluster"
        if clustered else "unit", "weights": weights, "seed": seed, "alpha": alpha, "correction": correction,
        "min_group_size": min_group_size, "intersections": [list(c) for c in intersections],
        "reference_groups": dict(reference_groups or {}),
        "disparity_metrics": [_key_name(k) for k in disparity_metrics],
        "metrics": {_key_name(k): [list(p) for p in v] for k, v in metrics.items()}, "n_clusters": n_clusters,
    }
    return assemble(
        metric_rows=metric_rows, disparity_rows_=all_disparities, group_rows=group_rows,
        reliability=pd.DataFrame(), config=config, undefined=undefined, correction=correction, alpha=alpha,
        tests=(
            "proportions of 0/1 units (recall): Fisher's exact test when an expected 2x2 count is below 5, else the "
            "pooled two-proportion z-test, on effective counts n / deff when units share images (Rao-Scott); other "
            "metrics: Wald tests with the cluster-bootstrap standard error (with a variance floor where every "
            "resample is equal); max-min: the test of the max and min groups, Bonferroni-adjusted over all pairs"
        ),
    )
