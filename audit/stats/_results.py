"""The result of a disaggregated audit: tidy tables plus the settings that made them."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

__all__ = ["GroupedMetrics", "UndefinedMetricWarning"]


class UndefinedMetricWarning(UserWarning):
    """A metric is undefined for some group (empty group or zero denominator) and is NaN."""


def json_plain(value):
    """Python scalars for JSON: NaN and inf become None, numpy types become builtins."""
    if isinstance(value, (np.bool_, bool)):
        return bool(value)
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        value = float(value)
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): json_plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_plain(v) for v in value]
    return value


def json_records(frame: pd.DataFrame) -> list[dict]:
    return [{k: json_plain(v) for k, v in row.items()} for row in frame.to_dict(orient="records")]


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
            "config": json_plain(self.config),
            "significance": json_plain(self.significance),
            "groups": json_records(self.groups),
            "metrics": json_records(self.metrics),
            "disparities": json_records(self.disparities),
            "reliability": json_records(self.reliability),
            "warnings": list(self.warnings),
        }

    def _repr_html_(self) -> str:
        """The notebook view: the plain-language findings, the Gender Shades table, the significant disparities,
        each saying what it leaves out (plain HTML, every data-derived string escaped)."""
        return notebook_html(self)


NOTEBOOK_COLUMNS = 24
NOTEBOOK_DISPARITIES = 15


def _cell_text(value, lower, upper) -> str:
    def f(v):
        return "–" if v is None or not math.isfinite(float(v)) else f"{float(v):.3f}"

    out = f(value)
    if lower is not None and upper is not None and math.isfinite(float(lower)) and math.isfinite(float(upper)):
        out += f" [{f(lower)}, {f(upper)}]"
    return out


def _p_text(p) -> str:
    if p is None or not math.isfinite(float(p)):
        return "–"
    return f"{float(p):.1e}" if float(p) < 0.001 else f"{float(p):.3f}"


def notebook_html(result: "GroupedMetrics", *, columns: int = NOTEBOOK_COLUMNS,
                  disparities: int = NOTEBOOK_DISPARITIES) -> str:
    from html import escape

    from ._names import display_name
    from ._summary import findings, method_line

    doc = result.to_dict()
    sig = result.significance
    d = result.disparities
    n_significant = int(d["significant"].sum()) if "significant" in d else 0
    parts = [
        f"<p><b>GroupedMetrics</b>: {result.groups['grouping'].nunique()} groupings, {len(result.groups)} groups, "
        f"{len(result.metrics)} metric values, {len(d)} comparisons ({n_significant} significant, "
        f"{escape(str(sig['correction']))} at α = {escape(str(sig['alpha']))}, family of "
        f"{escape(str(sig['family_size']))} tests)</p>"]
    found = findings(doc)
    if found:
        parts.append("<p><b>Findings</b></p><ul>" + "".join(
            f"<li>{escape(f.sentence)}{(' <i>' + escape(f.caveat) + '</i>') if f.caveat else ''}</li>"
            for f in found) + "</ul>")
        parts.append(f"<p><small>{escape(method_line(doc))}</small></p>")
    # the Gender Shades table: the audit's disparity metrics as rows, every group as a column
    frame = result.metrics
    wanted = [m for m in result.config.get("disparity_metrics") or [] if m in set(frame["metric"])]
    pos = result.config.get("pos_label")
    rows = []
    for m in wanted:
        for cls in ("", "macro", "" if pos is None else str(pos)):
            part = frame[(frame["metric"] == m) & (frame["class"] == cls)]
            if len(part):
                rows.append((m, cls, part))
                break
    if rows:
        cols = list(dict.fromkeys(zip(rows[0][2]["grouping"], rows[0][2]["group"])))
        for _, _, part in rows[1:]:
            cols += [c for c in zip(part["grouping"], part["group"]) if c not in cols]
        shown = cols[:columns]
        head = "".join(f"<th>{escape(str(g))}<br>{escape(str(v))}</th>" for g, v in shown)
        body = []
        for m, cls, part in rows:
            index = {(r["grouping"], r["group"]): r for r in part.to_dict("records")}
            cells = "".join(
                f"<td>{escape(_cell_text(index[c]['value'], index[c]['lower'], index[c]['upper']))}"
                f"{' †' if index[c]['small_group'] else ''}<br><small>n={escape(str(index[c]['n']))}</small></td>"
                if c in index else "<td>–</td>" for c in shown)
            body.append(f"<tr><th>{escape(display_name(m))}{escape(f' ({cls})' if cls else '')}</th>{cells}</tr>")
        parts.append("<p><b>Metrics by group</b> (estimate [95% interval], n; † small group)</p>"
                     f"<table><thead><tr><th>metric</th>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>")
        if len(cols) > len(shown):
            parts.append(f"<p><small>{len(cols) - len(shown)} of {len(cols)} group columns not shown; "
                         "result.table(metric=...) has them all.</small></p>")
    # the significant disparities, smallest adjusted p first
    if n_significant:
        p_col = f"p_{sig['correction']}"
        top = d[d["significant"]].sort_values(p_col if p_col in d else "p_value", kind="stable")
        body = []
        for r in top.head(disparities).to_dict("records"):
            cls = f" ({r['class']})" if r.get("class") else ""
            vs = f" vs {r['other']}" if r.get("other") else ""
            body.append(
                f"<tr><td>{escape(str(r['grouping']))}</td><td>{escape(display_name(r['metric']) + cls)}</td>"
                f"<td>{escape(str(r['kind']).replace('_', ' '))}</td><td>{escape(str(r.get('group') or ''))}"
                f"{escape(vs)}</td><td>{escape(_cell_text(r['difference'], r.get('difference_lower'), r.get('difference_upper')))}"
                f"</td><td>{escape(_p_text(r.get(p_col)))}</td></tr>")
        parts.append("<p><b>Significant disparities</b></p><table><thead><tr><th>grouping</th><th>metric</th>"
                     "<th>comparison</th><th>groups</th><th>difference [95% interval]</th><th>adjusted p</th></tr>"
                     f"</thead><tbody>{''.join(body)}</tbody></table>")
        if n_significant > disparities:
            parts.append(f"<p><small>{n_significant - disparities} more significant disparities not shown "
                         f"(of {len(d)} comparisons); result.disparities has them all.</small></p>")
    parts.append(f"<p><small>The tidy table of all {len(frame)} metric values is result.to_frame().</small></p>")
    return "".join(parts)
