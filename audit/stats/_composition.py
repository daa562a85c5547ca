"""Dataset statistics by group: composition, reference fit, co-occurrence, summaries.

Pure numpy/pandas/scipy, no files. Every grouping (an attribute or an
intersection) comes from :func:`~audit.stats.build_groups`, the same engine the
metric audits use, so a data card's composition counts are exactly the group
sizes an audit of a model on that split reports.

- :func:`composition`: counts and shares per group, and the share among samples
  whose attributes are known.
- :func:`missing_rates`: how often each attribute is missing.
- :func:`composition_sentence`: the LFW-style one-liner ("77.5% male, 83.5% white").
- :func:`reference_fit`: observed composition against a declared reference
  population, Pearson's chi-square goodness-of-fit test (``scipy.stats.chisquare``).
- :func:`cooccurrence`: label x group counts as normalised PMI, with Pearson's
  chi-square test of independence (``scipy.stats.chi2_contingency``).
- :func:`summarise_by_group`: distribution summaries of per-sample numbers
  (image statistics, box geometry) per group, with a Kruskal-Wallis test.
- :func:`box_geometry`: REVISE's person size and distance from the image centre.
- :func:`compare_composition`: two splits' composition, chi-square test of homogeneity.

Groups whose label contains ``unknown`` (a missing attribute) are counted and
shown, but left out of shares "among known", of the tests and of nPMI.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from ..errors import StatsInputError
from ._groups import SEPARATOR, UNKNOWN, Attribute, build_groups
from ._significance import adjust_p_values

__all__ = [
    "BOX_STATISTICS",
    "box_geometry",
    "compare_composition",
    "composition",
    "composition_sentence",
    "cooccurrence",
    "missing_rates",
    "reference_fit",
    "summarise_by_group",
]

BOX_STATISTICS = ("box_area_fraction", "box_size", "centre_distance")


def _weights(weights, n_rows: int) -> np.ndarray:
    """Samples per row: one each by default, else ``weights`` checked (``n_rows`` integers >= 0)."""
    if weights is None:
        return np.ones(n_rows, dtype=np.int64)
    w = np.asarray(weights)
    if w.shape != (n_rows,) or not np.issubdtype(w.dtype, np.integer) or (n_rows and w.min() < 0):
        raise StatsInputError(f"expected weights to be {n_rows} integers >= 0 (samples per row), found shape "
                              f"{w.shape} and dtype {w.dtype}")
    return w.astype(np.int64)


def _is_unknown(label: str) -> bool:
    return UNKNOWN in str(label).split(SEPARATOR)


def _masks(table, attributes, intersections):
    """Yield ``(grouping, labels, membership)`` with a ``(n_samples, n_groups)`` bool matrix."""
    structure, _ = build_groups(table, attributes, intersections)
    for grouping in structure.groupings:
        member = grouping.indicator[structure.cell_of_sample] > 0
        yield grouping, list(grouping.labels), member


def composition(
    table: pd.DataFrame,
    attributes: Sequence[Attribute],
    intersections: Sequence[Sequence[str]] = (),
    *,
    weights=None,
) -> pd.DataFrame:
    """Counts and shares per attribute value and per intersection.

    Parameters
    ----------
    table : DataFrame
        One row per sample with the attributes' raw columns.
    attributes, intersections
        As for :func:`~audit.stats.build_groups`.
    weights : array-like of int, optional
        How many samples each row of ``table`` stands for (a table of distinct rows with counts);
        default one.

    Returns
    -------
    DataFrame
        One row per (grouping, group), groupings in the order ``overall``,
        attributes, intersections and groups in display order: ``n``,
        ``share`` (of all samples) and ``share_known`` (of the samples whose
        attributes in this grouping are all known; NaN for groups with an
        ``unknown`` part).
    """
    rows = []
    w = _weights(weights, len(table))
    total = int(w.sum())
    for grouping, labels, member in _masks(table, attributes, intersections):
        counts = w @ member
        known = np.array([not _is_unknown(lab) for lab in labels])
        # samples with every attribute of this grouping known (a sample is in exactly one group
        # unless an attribute is multi-valued; then count samples, not memberships)
        n_known = int(w @ member[:, known].any(axis=1)) if known.any() else 0
        for label, n, is_known in zip(labels, counts, known):
            rows.append({
                "grouping": grouping.name,
                "group": label,
                "n": int(n),
                "share": n / total if total else math.nan,
                "share_known": (n / n_known if n_known else math.nan) if is_known else math.nan,
            })
    return pd.DataFrame(rows, columns=["grouping", "group", "n", "share", "share_known"])


def missing_rates(table: pd.DataFrame, attributes: Sequence[Attribute], *, weights=None) -> pd.DataFrame:
    """How many samples lack each attribute: ``attribute``, ``n``, ``n_missing``, ``rate``.

    ``weights``: how many samples each row stands for, as in :func:`composition`.
    """
    comp = composition(table, attributes, weights=weights)
    rows = []
    n = int(_weights(weights, len(table)).sum())
    for attribute in attributes:
        part = comp[comp["grouping"] == attribute.name]
        n_missing = int(part.loc[part["group"] == UNKNOWN, "n"].sum())
        rows.append({"attribute": attribute.name, "n": n, "n_missing": n_missing,
                     "rate": n_missing / n if n else math.nan})
    return pd.DataFrame(rows, columns=["attribute", "n", "n_missing", "rate"])


def composition_sentence(comp: pd.DataFrame, attributes: Sequence[str], *, digits: int = 1) -> str:
    """The LFW-style sentence: the largest known group of each attribute and its share of all samples.

    ``"77.5% male, 83.5% white"``. Ties go to the group listed first. An
    attribute with missing values adds ``(x% unknown)``.
    """
    parts = []
    for name in attributes:
        part = comp[comp["grouping"] == name]
        known = part[[not _is_unknown(g) for g in part["group"]]]
        if known.empty or not known["n"].max() > 0:
            continue
        top = known.iloc[int(np.argmax(known["n"].to_numpy()))]
        text = f"{100 * top['share']:.{digits}f}% {top['group']}"
        unknown = part.loc[part["group"] == UNKNOWN, "share"]
        if len(unknown) and unknown.iloc[0] > 0:
            text += f" ({100 * unknown.iloc[0]:.{digits}f}% unknown)"
        parts.append(text)
    return ", ".join(parts)


def reference_fit(
    comp: pd.DataFrame,
    reference: Mapping[str, Mapping[str, float]],
    *,
    correction: str = "fdr_bh",
    alpha: float = 0.05,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Compare the observed composition with a reference population.

    Parameters
    ----------
    comp : DataFrame
        From :func:`composition`.
    reference : mapping
        Grouping name (an attribute or an intersection) to group label to
        the group's weight in the reference population (shares or counts;
        normalised to sum to 1). Every observed known group must be listed.
    correction, alpha
        Multiplicity correction over the tests of this call.

    Returns
    -------
    groups : DataFrame
        ``grouping, group, n, observed_share, reference_share, expected_n, difference``
        (observed minus reference share, among known samples).
    tests : DataFrame
        One Pearson chi-square goodness-of-fit test per grouping:
        ``grouping, n, statistic, dof, p_value, p_adjusted, significant, min_expected``.
        ``min_expected`` below 5 makes the chi-square approximation doubtful.
    """
    from scipy import stats as sps  # lazy (see audit.stats)
    group_rows, test_rows = [], []
    for name, weights in reference.items():
        part = comp[comp["grouping"] == name]
        if part.empty:
            raise StatsInputError(f"reference population: expected a grouping of the split, found '{name}'")
        weights = {str(k): float(v) for k, v in weights.items()}
        if any(not math.isfinite(w) or w <= 0 for w in weights.values()):
            raise StatsInputError(f"reference population '{name}': expected positive weights, found {weights}")
        observed = {g: int(n) for g, n in zip(part["group"], part["n"]) if not _is_unknown(g)}
        extra = [g for g, n in observed.items() if n > 0 and g not in weights]
        if extra:
            raise StatsInputError(
                f"reference population '{name}': expected a weight for every observed group, "
                f"found none for {', '.join(repr(g) for g in extra)}"
            )
        labels = list(weights)
        obs = np.array([observed.get(g, 0) for g in labels], dtype=float)
        ref = np.array([weights[g] for g in labels]) / sum(weights.values())
        n = obs.sum()
        expected = n * ref
        if n > 0 and len(labels) > 1:
            result = sps.chisquare(obs, expected)
            statistic, p_value = float(result.statistic), float(result.pvalue)
        else:
            statistic = p_value = math.nan
        test_rows.append({"grouping": name, "n": int(n), "statistic": statistic, "dof": len(labels) - 1,
                          "p_value": p_value, "min_expected": float(expected.min()) if len(labels) else math.nan})
        for g, o, r, e in zip(labels, obs, ref, expected):
            share = o / n if n else math.nan
            group_rows.append({"grouping": name, "group": g, "n": int(o), "observed_share": share,
                               "reference_share": float(r), "expected_n": float(e), "difference": share - r})
    tests = pd.DataFrame(test_rows, columns=["grouping", "n", "statistic", "dof", "p_value", "min_expected"])
    tests = _adjust(tests, correction, alpha)
    groups = pd.DataFrame(group_rows, columns=["grouping", "group", "n", "observed_share", "reference_share",
                                               "expected_n", "difference"])
    return groups, tests


def _adjust(tests: pd.DataFrame, correction: str, alpha: float) -> pd.DataFrame:
    adjusted, reject = adjust_p_values(tests["p_value"].to_numpy(dtype=float), method=correction, alpha=alpha)
    tests = tests.copy()
    tests.insert(tests.columns.get_loc("p_value") + 1, "p_adjusted", adjusted)
    tests.insert(tests.columns.get_loc("p_adjusted") + 1, "significant", reject)
    return tests


def cooccurrence(
    labels: Sequence[int] | np.ndarray,
    classes: Sequence[str],
    table: pd.DataFrame,
    attributes: Sequence[Attribute],
    intersections: Sequence[Sequence[str]] = (),
    *,
    correction: str = "fdr_bh",
    alpha: float = 0.05,
    weights=None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Label x group co-occurrence as normalised PMI, with a chi-square test of independence.

    ``weights``: how many samples each row stands for, as in :func:`composition`.

    For a class ``x`` and a group ``y``, over the samples whose attributes in
    the grouping are known (``N`` of them)::

        p(x, y) = n(x, y) / N,  p(x) = n(x) / N,  p(y) = n(y) / N
        pmi  = ln( p(x, y) / (p(x) p(y)) )
        npmi = pmi / -ln p(x, y)        in [-1, 1]

    ``npmi`` is -1 when ``x`` and ``y`` never co-occur, 0 when they are
    independent and 1 when they always do; NaN when the class or the group
    is empty.

    Returns
    -------
    cells : DataFrame
        ``grouping, class, group, n, p_joint, p_class, p_group, pmi, npmi``.
    tests : DataFrame
        Pearson's chi-square test of independence (no continuity correction)
        on the classes x groups table without empty rows or columns, per
        grouping: ``grouping, n, statistic, dof, p_value, p_adjusted,
        significant, cramers_v, min_expected``.
    """
    from scipy import stats as sps  # lazy (see audit.stats)
    labels = np.asarray(labels, dtype=np.int64)
    if len(labels) != len(table):
        raise StatsInputError(f"expected one label per row of the table ({len(table)}), found {len(labels)}")
    if len(labels) and (labels.min() < 0 or labels.max() >= len(classes)):
        raise StatsInputError(f"expected labels in 0..{len(classes) - 1}, found {labels.min()}..{labels.max()}")
    cell_rows, test_rows = [], []
    w = _weights(weights, len(labels)).astype(float)
    for grouping, group_labels, member in _masks(table, attributes, intersections):
        if not grouping.attributes:
            continue  # 'overall' has one group: nothing co-occurs
        keep = [i for i, g in enumerate(group_labels) if not _is_unknown(g)]
        member = member[:, keep]
        names = [group_labels[i] for i in keep]
        onehot = np.zeros((len(labels), len(classes)))
        onehot[np.arange(len(labels)), labels] = w  # a row counts as many samples as it stands for
        counts = onehot.T @ member.astype(float)  # (classes, groups)
        n_known = member.any(axis=1)
        total = float(w[n_known].sum()) if member.size else 0.0
        p_class = (onehot[n_known].sum(axis=0) / total) if total else np.full(len(classes), np.nan)
        p_group = counts.sum(axis=0) / total if total else np.full(len(names), np.nan)
        with np.errstate(divide="ignore", invalid="ignore"):
            p_joint = counts / total if total else np.full(counts.shape, np.nan)
            pmi = np.log(p_joint / np.outer(p_class, p_group))
            npmi = np.where(p_joint >= 1.0, 1.0, pmi / -np.log(p_joint))
            defined = (np.outer(p_class, p_group) > 0)
            npmi = np.where(defined & (p_joint == 0), -1.0, npmi)
            npmi = np.where(defined, npmi, np.nan)
            pmi = np.where(defined & (p_joint > 0), pmi, np.where(defined, -np.inf, np.nan))
        for i, cls in enumerate(classes):
            for j, group in enumerate(names):
                cell_rows.append({"grouping": grouping.name, "class": cls, "group": group, "n": int(counts[i, j]),
                                  "p_joint": p_joint[i, j], "p_class": p_class[i], "p_group": p_group[j],
                                  "pmi": pmi[i, j], "npmi": npmi[i, j]})
        sub = counts[counts.sum(axis=1) > 0][:, counts.sum(axis=0) > 0]
        row = {"grouping": grouping.name, "n": int(total), "statistic": math.nan, "dof": 0,
               "p_value": math.nan, "cramers_v": math.nan, "min_expected": math.nan}
        if sub.shape[0] >= 2 and sub.shape[1] >= 2:
            res = sps.chi2_contingency(sub, correction=False)
            row.update(statistic=float(res.statistic), dof=int(res.dof), p_value=float(res.pvalue),
                       cramers_v=math.sqrt(res.statistic / (total * (min(sub.shape) - 1))),
                       min_expected=float(res.expected_freq.min()))
        test_rows.append(row)
    cells = pd.DataFrame(cell_rows, columns=["grouping", "class", "group", "n", "p_joint", "p_class", "p_group",
                                             "pmi", "npmi"])
    tests = pd.DataFrame(test_rows, columns=["grouping", "n", "statistic", "dof", "p_value", "cramers_v",
                                             "min_expected"])
    return cells, _adjust(tests, correction, alpha)


def summarise_by_group(
    values: pd.DataFrame,
    table: pd.DataFrame,
    attributes: Sequence[Attribute],
    intersections: Sequence[Sequence[str]] = (),
    *,
    statistics: Sequence[str] | None = None,
    correction: str = "fdr_bh",
    alpha: float = 0.05,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Summaries of per-sample numbers (image statistics, box geometry) per group.

    Parameters
    ----------
    values : DataFrame
        One row per row of ``table``, numeric columns; NaN values are skipped.
    statistics : sequence of str, optional
        Columns of ``values`` to summarise (default: all).

    Returns
    -------
    summary : DataFrame
        ``grouping, group, statistic, n, mean, std, min, q25, median, q75, max``
        (``std`` with ``ddof=1``; quartiles by linear interpolation).
    tests : DataFrame
        Kruskal-Wallis H test of equal distributions across the known groups
        of each grouping, per statistic: ``grouping, statistic, n_groups,
        h_statistic, p_value, p_adjusted, significant``.
    """
    from scipy import stats as sps  # lazy (see audit.stats)
    if len(values) != len(table):
        raise StatsInputError(f"expected one row of values per row of the table ({len(table)}), found {len(values)}")
    statistics = list(values.columns if statistics is None else statistics)
    data = {s: values[s].to_numpy(dtype=float) for s in statistics}
    rows, tests = [], []
    for grouping, labels, member in _masks(table, attributes, intersections):
        for stat in statistics:
            samples = []
            for j, label in enumerate(labels):
                x = data[stat][member[:, j]]
                x = x[np.isfinite(x)]
                rows.append(_summary(grouping.name, label, stat, x))
                if len(x) and not _is_unknown(label):
                    samples.append(x)
            if grouping.attributes:
                h = p = math.nan
                # a statistic constant over the grouping (e.g. one image size) has nothing to test
                if len(samples) >= 2 and np.ptp(np.concatenate(samples)) > 0:
                    res = sps.kruskal(*samples)
                    h, p = float(res.statistic), float(res.pvalue)
                tests.append({"grouping": grouping.name, "statistic": stat, "n_groups": len(samples),
                              "h_statistic": h, "p_value": p})
    summary = pd.DataFrame(rows, columns=["grouping", "group", "statistic", "n", "mean", "std", "min", "q25",
                                          "median", "q75", "max"])
    tests = pd.DataFrame(tests, columns=["grouping", "statistic", "n_groups", "h_statistic", "p_value"])
    return summary, _adjust(tests, correction, alpha)


def _summary(grouping: str, group: str, stat: str, x: np.ndarray) -> dict:
    row = {"grouping": grouping, "group": group, "statistic": stat, "n": int(len(x))}
    if len(x):
        q = np.quantile(x, [0.0, 0.25, 0.5, 0.75, 1.0])
        row.update(mean=float(x.mean()), std=float(x.std(ddof=1)) if len(x) > 1 else math.nan,
                   min=q[0], q25=q[1], median=q[2], q75=q[3], max=q[4])
    else:
        row.update(mean=math.nan, std=math.nan, min=math.nan, q25=math.nan, median=math.nan, q75=math.nan,
                   max=math.nan)
    return row


def box_geometry(boxes: pd.DataFrame) -> pd.DataFrame:
    """REVISE's person-box statistics from ``x1, y1, x2, y2, image_width, image_height`` (pixels).

    Returns
    -------
    DataFrame
        ``box_area_fraction``: box area / image area; ``box_size``: its
        square root (the box's side relative to the image's); and
        ``centre_distance``: distance from the box centre to the image centre
        divided by half the image diagonal (0 at the centre, 1 in a corner).
        Boxes are clipped to the image first.
    """
    needed = ["x1", "y1", "x2", "y2", "image_width", "image_height"]
    missing = [c for c in needed if c not in boxes.columns]
    if missing:
        raise StatsInputError(f"boxes: expected columns {', '.join(needed)}, found none named {', '.join(missing)}")
    x1, y1, x2, y2, w, h = (boxes[c].to_numpy(dtype=float) for c in needed)
    bad = ~((w > 0) & (h > 0) & (x2 > x1) & (y2 > y1))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise StatsInputError(
            f"boxes: row {i}: expected x2 > x1, y2 > y1 and a positive image size, found "
            f"({x1[i]:g}, {y1[i]:g}, {x2[i]:g}, {y2[i]:g}) in {w[i]:g}x{h[i]:g}"
        )
    x1, x2 = np.clip(x1, 0, w), np.clip(x2, 0, w)
    y1, y2 = np.clip(y1, 0, h), np.clip(y2, 0, h)
    area = (x2 - x1) * (y2 - y1) / (w * h)
    cx, cy = (x1 + x2) / 2 - w / 2, (y1 + y2) / 2 - h / 2
    distance = np.hypot(cx, cy) / (np.hypot(w, h) / 2)
    return pd.DataFrame({"box_area_fraction": area, "box_size": np.sqrt(area), "centre_distance": distance},
                        index=boxes.index)


def compare_composition(
    first: pd.DataFrame,
    second: pd.DataFrame,
    attributes: Sequence[Attribute],
    intersections: Sequence[Sequence[str]] = (),
    *,
    names: tuple[str, str] = ("first", "second"),
    correction: str = "fdr_bh",
    alpha: float = 0.05,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Composition of two splits side by side, with a chi-square test of homogeneity.

    Returns
    -------
    groups : DataFrame
        ``grouping, group, n_<first>, share_<first>, n_<second>, share_<second>,
        difference`` (shares among known samples; difference = second - first).
    tests : DataFrame
        Pearson's chi-square test that the known groups have the same
        shares in both splits: ``grouping, n, statistic, dof, p_value,
        p_adjusted, significant, min_expected``.
    """
    from scipy import stats as sps  # lazy (see audit.stats)
    a, b = names
    ca = composition(first, attributes, intersections)
    cb = composition(second, attributes, intersections)
    merged = ca.merge(cb, on=["grouping", "group"], how="outer", suffixes=(f"_{a}", f"_{b}"), sort=False)
    # display order: groups of the first split as listed, then groups only the second has
    keys = list(dict.fromkeys(zip(pd.concat([ca["grouping"], cb["grouping"]]), pd.concat([ca["group"], cb["group"]]))))
    rank = {k: i for i, k in enumerate(keys)}
    merged = merged.iloc[np.argsort([rank[k] for k in zip(merged["grouping"], merged["group"])], kind="stable")]
    merged[f"n_{a}"] = merged[f"n_{a}"].fillna(0).astype(int)
    merged[f"n_{b}"] = merged[f"n_{b}"].fillna(0).astype(int)
    order = list(dict.fromkeys(ca["grouping"]))
    merged = merged[merged["grouping"] != "overall"]
    rows, tests = [], []
    for name in order:
        if name == "overall":
            continue
        part = merged[merged["grouping"] == name]
        known = part[[not _is_unknown(g) for g in part["group"]]]
        na, nb = known[f"n_{a}"].to_numpy(), known[f"n_{b}"].to_numpy()
        ta, tb = na.sum(), nb.sum()
        for _, r in part.iterrows():
            is_known = not _is_unknown(r["group"])
            sa = r[f"n_{a}"] / ta if is_known and ta else math.nan
            sb = r[f"n_{b}"] / tb if is_known and tb else math.nan
            rows.append({"grouping": name, "group": r["group"], f"n_{a}": int(r[f"n_{a}"]), f"share_{a}": sa,
                         f"n_{b}": int(r[f"n_{b}"]), f"share_{b}": sb, "difference": sb - sa})
        table = np.vstack([na, nb])
        table = table[:, table.sum(axis=0) > 0]
        row = {"grouping": name, "n": int(ta + tb), "statistic": math.nan, "dof": 0, "p_value": math.nan,
               "min_expected": math.nan}
        if table.shape[1] >= 2 and ta > 0 and tb > 0:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                res = sps.chi2_contingency(table, correction=False)
            row.update(statistic=float(res.statistic), dof=int(res.dof), p_value=float(res.pvalue),
                       min_expected=float(res.expected_freq.min()))
        tests.append(row)
    groups = pd.DataFrame(rows, columns=["grouping", "group", f"n_{a}", f"share_{a}", f"n_{b}", f"share_{b}",
                                         "difference"])
    tests = pd.DataFrame(tests, columns=["grouping", "n", "statistic", "dof", "p_value", "min_expected"])
    return groups, _adjust(tests, correction, alpha)
