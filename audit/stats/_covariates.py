"""Covariates for the stratified and slice analyses: quantile bins for continuous ones, checks for all.

Nominal columns go through :func:`bin_attribute`, as the engine's attributes
do, so missing values become the explicit level ``"unknown"``. A continuous
column (brightness, box area) is first cut into quantile bins with readable
labels by :func:`quantile_bins`; ``bin_attribute`` does not fit there, as it
maps declared lists of raw values to bins.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from ..errors import StatsInputError
from ._groups import UNKNOWN, Attribute, bin_attribute

__all__ = ["MAX_LEVELS", "quantile_bins", "prepare_columns", "builtin_values"]

MAX_LEVELS = 30  # a covariate with more distinct values must be binned first (quantile_bins)


def quantile_bins(values, *, n_bins: int = 4, digits: int = 3) -> pd.Categorical:
    """Bin a continuous covariate (brightness, box area, ...) into quantile bins with readable labels.

    Labels give each bin's range, e.g. ``"≤ 0.31"``, ``"0.31–0.52"``, ``"> 0.78"``
    (``digits`` significant digits); a bin holds values above its lower edge up
    to its upper edge. Edges are observed values (the inverse of the empirical
    distribution), so no bin is empty and tied values never straddle an edge:
    heavy ties give fewer bins. Missing values become ``"unknown"``, as in :func:`bin_attribute`.
    """
    if n_bins < 1:
        raise StatsInputError(f"expected n_bins >= 1, found {n_bins}")
    x = pd.to_numeric(pd.Series(np.asarray(values, dtype=object)), errors="coerce").to_numpy(dtype=float)
    known = np.isfinite(x)
    edges = (np.unique(np.quantile(x[known], np.linspace(0, 1, n_bins + 1)[1:-1], method="inverted_cdf"))
             if known.any() else np.array([]))
    edges = edges[edges < x[known].max()] if known.any() else edges
    fmt = lambda v: f"{v:.{digits}g}"  # noqa: E731
    if edges.size == 0:
        low, high = (fmt(x[known].min()), fmt(x[known].max())) if known.any() else ("", "")
        labels = [] if not known.any() else [low] if low == high else [f"{low}–{high}"]
    else:
        labels = ([f"≤ {fmt(edges[0])}"] + [f"{fmt(lo)}–{fmt(hi)}" for lo, hi in zip(edges[:-1], edges[1:])]
                  + [f"> {fmt(edges[-1])}"])
    codes = np.searchsorted(edges, x, side="left")
    if not known.all():
        labels.append(UNKNOWN)
        codes = np.where(known, codes, len(labels) - 1)
    return pd.Categorical.from_codes(codes.astype(np.int64), categories=labels)


def prepare_columns(data: pd.DataFrame, *, outcome: str, columns: Sequence[str], cluster: str | None):
    """Validate the outcome, bin each nominal column with :func:`bin_attribute`, code the clusters.

    Returns ``y`` (int 0/1), a frame of string-labelled categoricals, and the
    cluster codes (``None`` without a cluster column).
    """
    if not isinstance(data, pd.DataFrame):
        raise StatsInputError(f"expected a pandas DataFrame, found {type(data).__name__}")
    missing = [c for c in [outcome, *columns, *([cluster] if cluster else [])] if c not in data.columns]
    if missing:
        raise StatsInputError(f"expected columns {missing} in the data, found columns {list(data.columns)}")
    raw = pd.to_numeric(data[outcome], errors="coerce").to_numpy(dtype=float)
    if not np.isin(raw, (0.0, 1.0)).all():
        bad = data[outcome][~np.isin(raw, (0.0, 1.0))].iloc[0]
        bad = bad.item() if isinstance(bad, np.generic) else bad
        raise StatsInputError(f"expected outcome column '{outcome}' to hold only 0 and 1, found {bad!r}")
    binned = {}
    for name in columns:
        labels = bin_attribute(data[name].reset_index(drop=True), Attribute(name))
        if len(labels.categories) > MAX_LEVELS:
            raise StatsInputError(
                f"expected column '{name}' to have at most {MAX_LEVELS} levels, found {len(labels.categories)}: "
                f"bin a continuous covariate first with quantile_bins")
        binned[name] = labels
    codes = None
    if cluster:
        if data[cluster].isna().any():
            raise StatsInputError(f"expected a cluster id in every row of column '{cluster}', found missing values")
        codes = pd.factorize(data[cluster])[0].astype(np.int64)
    return raw.astype(np.int64), pd.DataFrame(binned), codes


def builtin_values(value):
    """Numpy scalars as Python ones and tuples as lists, recursively, for ``to_dict``; NaN stays a float."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (list, tuple)):
        return [builtin_values(v) for v in value]
    if isinstance(value, dict):
        return {str(k): builtin_values(v) for k, v in value.items()}
    return value
