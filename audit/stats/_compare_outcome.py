"""The outcome of comparing two audits: :class:`Comparison`, its rows, and each row in words.

:func:`audit.stats._compare.compare_results` builds it; ``audit compare`` (:mod:`audit.compare`) writes it
and its reports with :func:`regression_order`, :func:`row_label` and :func:`describe_row`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ._compare_policy import ComparePolicy

__all__ = ["Comparison", "ROW_COLUMNS", "STATUSES", "describe_row", "regression_order", "regression_sections",
           "row_label"]

ROW_COLUMNS = [
    "item", "grouping", "group", "metric", "class", "kind", "direction", "baseline", "candidate",
    "baseline_lower", "baseline_upper", "candidate_lower", "candidate_upper", "change", "change_lower",
    "change_upper", "worsening", "limit", "n_baseline", "n_candidate", "method", "p_value", "p_adjusted",
    "significant", "status", "note",
]
STATUSES = ("regression", "within_noise", "ok", "improved", "info", "small_n", "undefined", "only_baseline",
            "only_candidate")


@dataclass
class Comparison:
    """The outcome of :func:`compare_results`.

    Attributes
    ----------
    rows : DataFrame
        One row per matched (or unmatched) metric value and disparity, columns
        :data:`ROW_COLUMNS`. ``change`` is candidate minus baseline;
        ``worsening`` is the change in the bad direction (for a disparity, the
        growth of ``|difference|``); ``status`` is one of :data:`STATUSES`.
    mode : str
        ``paired``, ``unpaired`` or ``unpaired (reported intervals)``.
    method : str
        How the intervals and tests were obtained, in words.
    reason : str
        Why this mode was used.
    policy : ComparePolicy
    sources : dict
        What was compared (paths, models, data), for the reports.
    """

    rows: pd.DataFrame
    mode: str
    method: str
    reason: str
    policy: ComparePolicy
    sources: dict = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return not bool((self.rows["status"] == "regression").any())

    @property
    def regressions(self) -> pd.DataFrame:
        return self.rows[self.rows["status"] == "regression"]

    def counts(self) -> dict:
        found = self.rows["status"].value_counts()
        return {s: int(found.get(s, 0)) for s in STATUSES}

    def summary(self, *, limit: int = 10) -> str:
        """A few lines for a terminal or a test failure: the disparity regressions first (the reason the gate
        exists), then the metric regressions (at least three of them shown), ``limit`` lines in all."""
        counts = self.counts()
        verdict = "PASS" if self.passed else "FAIL"
        lines = [
            f"audit compare: {verdict} ({self.mode}: {self.reason}); "
            f"{counts['regression']} regressions, {counts['within_noise']} worsenings within noise, "
            f"{counts['improved']} improvements, {counts['small_n']} rows below min_n, "
            f"{counts['only_baseline'] + counts['only_candidate']} unmatched"
        ]
        shown = 0
        for title, part in regression_sections(self.regressions):
            take = max(limit - shown, 0 if title.startswith("disparity") else 3)  # a few metric lines always
            lines.append(f"  {title} ({len(part)}):")
            for _, r in part.head(take).iterrows():
                lines.append("    " + describe_row(r))
            shown += min(len(part), take)
            if len(part) > take:
                lines.append(f"    ... and {len(part) - take} more")
        return "\n".join(lines)

    def to_dict(self) -> dict:
        from ._results import json_records

        return {
            "passed": self.passed,
            "mode": self.mode,
            "method": self.method,
            "reason": self.reason,
            "policy": self.policy.to_dict(),
            "sources": self.sources,
            "counts": self.counts(),
            "rows": json_records(self.rows),
        }


def regression_order(rows: pd.DataFrame) -> pd.DataFrame:
    """Rows with the disparity regressions first (the reason the gate exists), then the metric regressions,
    then everything else; within each, the smallest adjusted p-value and the largest worsening first."""
    if rows.empty:
        return rows
    rank = np.where(rows["status"] == "regression", np.where(rows["item"] == "disparity", 0, 1), 2)
    return rows.assign(_rank=rank).sort_values(["_rank", "p_adjusted", "worsening"], ascending=[True, True, False],
                                               kind="stable").drop(columns="_rank")


def regression_sections(regressions: pd.DataFrame) -> list[tuple[str, pd.DataFrame]]:
    """[("disparity regressions", rows), ("metric regressions", rows)], the empty ones left out."""
    ordered = regression_order(regressions)
    out = [("disparity regressions", ordered[ordered["item"] == "disparity"]),
           ("metric regressions", ordered[ordered["item"] != "disparity"])]
    return [(t, p) for t, p in out if len(p)]


def row_label(r) -> str:
    """What a row is: the metric by its short display name with its code, the class, the group or the comparison."""
    from ._names import short_name

    cls = f"[{r['class']}]" if r["class"] else ""
    name = short_name(r["metric"])
    metric = f"{name} ({r['metric']}){cls}" if name != r["metric"] else f"{r['metric']}{cls}"
    if r["item"] == "metric":
        return f"{metric} {r['grouping']}={r['group']}"
    where = f" {r['group']}" if r["group"] else ""
    return f"disparity {r['kind']} {metric} over {r['grouping']}{where}"


def _num(value, digits=4) -> str:
    return "nan" if value is None or not np.isfinite(value) else f"{value:.{digits}f}"


def describe_row(r) -> str:
    """One line: what changed, by how much, with its interval, against what limit."""
    p = r["p_adjusted"]
    return (
        f"{row_label(r)}: {_num(r['baseline'])} -> {_num(r['candidate'])} "
        f"(change {_num(r['change'], 4)} [{_num(r['change_lower'], 4)}, {_num(r['change_upper'], 4)}], "
        f"worsening {_num(r['worsening'])} (allowed {_num(r['limit'])}), "
        f"p_adj={_num(p, 4)}, n={_num_int(r['n_baseline'])}/{_num_int(r['n_candidate'])})"
    )


def _num_int(value) -> str:
    return "?" if value is None or (isinstance(value, float) and not np.isfinite(value)) else str(int(value))
