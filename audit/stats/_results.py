"""The result of a disaggregated audit: tidy tables plus the settings that made them."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

__all__ = ["GroupedMetrics", "UndefinedMetricWarning"]


class UndefinedMetricWarning(UserWarning):
    """A metric is undefined for some group (empty group or zero denominator) and is NaN."""


def _plain(value):
    """Python scalars for JSON: NaN and inf become None, numpy types become builtins."""
    if isinstance(value, (np.bool_, bool)):
        return bool(value)
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        value = float(value)
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _records(frame: pd.DataFrame) -> list[dict]:
    return [{k: _plain(v) for k, v in row.items()} for row in frame.to_dict(orient="records")]


@dataclass
class GroupedMetrics:
    """Metrics per group with intervals, disparities with tests, and the audit's settings.

    Attributes
    ----------
    metrics : DataFrame
        One row per (grouping, group, metric, class): ``value``, ``lower``,
        ``upper``, ``n`` (the metric's denominator), ``interval`` (method) and
        ``small_group``.
    disparities : DataFrame
        One row per comparison: ``kind`` is ``between_groups`` (max vs min),
        ``to_overall`` (a group vs the population), ``to_overall_max`` (the
        largest gap to the population) or ``to_reference``. Each has a
        difference and a ratio with intervals, the test, its p-value, Holm and
        BH adjusted p-values and the ``significant`` flag of the chosen
        correction.
    groups : DataFrame
        Every group's size and small-group flag.
    reliability : DataFrame
        Reliability-curve bins per group (when scores were given).
    config : dict
        The settings of the audit.
    significance : dict
        Correction method, alpha and family size.
    warnings : list of str
    """

    metrics: pd.DataFrame
    disparities: pd.DataFrame
    groups: pd.DataFrame
    reliability: pd.DataFrame
    config: dict
    significance: dict
    warnings: list[str] = field(default_factory=list)

    def to_frame(self) -> pd.DataFrame:
        """The tidy metrics table: one row per group, metric and class."""
        return self.metrics.copy()

    def value(self, *, metric: str, grouping: str = "overall", group: str = "all", cls: str = "") -> float:
        """One point estimate, e.g. ``value(metric="error_rate", grouping="gender", group="female")``."""
        frame = self.metrics
        hit = frame[
            (frame["metric"] == metric) & (frame["grouping"] == grouping) & (frame["group"] == group)
            & (frame["class"] == cls)
        ]
        if len(hit) != 1:
            raise KeyError(f"no single value for metric={metric!r} grouping={grouping!r} group={group!r} class={cls!r}")
        return float(hit["value"].iloc[0])

    def table(self, *, metric: str, cls: str = "") -> pd.DataFrame:
        """Wide view of one metric: groupings x groups with value, interval and n."""
        frame = self.metrics
        return frame[(frame["metric"] == metric) & (frame["class"] == cls)].set_index(["grouping", "group"])[
            ["value", "lower", "upper", "n", "small_group"]
        ]

    def to_dict(self) -> dict:
        """A JSON-ready dict: builtin types only, NaN as None."""
        return {
            "config": _plain(self.config),
            "significance": _plain(self.significance),
            "groups": _records(self.groups),
            "metrics": _records(self.metrics),
            "disparities": _records(self.disparities),
            "reliability": _records(self.reliability),
            "warnings": list(self.warnings),
        }

    def _repr_html_(self) -> str:
        # pandas escapes cell text in to_html by default
        n_significant = int(self.disparities["significant"].sum()) if "significant" in self.disparities else 0
        head = (
            f"<p><b>GroupedMetrics</b>: {self.groups['grouping'].nunique()} groupings, "
            f"{len(self.groups)} groups, {len(self.metrics)} metric values, "
            f"{len(self.disparities)} comparisons ({n_significant} significant, "
            f"{self.significance['correction']} at alpha={self.significance['alpha']}, "
            f"family of {self.significance['family_size']} tests)</p>"
        )
        return head + self.metrics.head(60).to_html(index=False, float_format=lambda v: f"{v:.4f}")
