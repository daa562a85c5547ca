"""What ``audit data-card`` computed for one split (:class:`DatasetAudit`) and its presentation: one section of
formatted tables, a sentence and a chart, rendered both into the data card and into the report."""

from __future__ import annotations

import base64
import io
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..core.image_stats import DESCRIBE_IMAGE as _DESCRIBE_IMAGE

__all__ = ["DatasetAudit", "chart_png", "share_chart"]


@dataclass
class DatasetAudit:
    """Everything ``audit data-card`` computed for one split (tidy frames; see :meth:`section`)."""

    card: str
    name: str
    title: str
    kind: str  # "classification" or "detection"
    n: int
    unit: str  # "images" or "people"
    attributes: list[str]
    min_group_size: int
    composition: pd.DataFrame
    sentence: str
    missing: pd.DataFrame
    cooccurrence: pd.DataFrame
    cooccurrence_tests: pd.DataFrame
    reference: pd.DataFrame | None = None
    reference_tests: pd.DataFrame | None = None
    reference_description: str | None = None
    image_statistics: pd.DataFrame | None = None
    image_tests: pd.DataFrame | None = None
    boxes: pd.DataFrame | None = None
    box_tests: pd.DataFrame | None = None
    split: pd.DataFrame | None = None
    split_tests: pd.DataFrame | None = None
    compare_to: str | None = None
    chart: dict | None = None  # audit.core.charts.share_bars as a dict

    def to_dict(self) -> dict:
        """JSON-ready (NaN as None)."""
        from ..stats import json_plain, json_records

        out = {}
        for key, value in self.__dict__.items():
            if isinstance(value, pd.DataFrame):
                out[key] = json_records(value)
            else:
                out[key] = json_plain(value)
        out["section"] = self.section()
        return out

    # -- presentation: one structure, rendered as Markdown and as HTML ------

    def section(self) -> dict:
        """Title, sentence, chart and tables of formatted strings, shared by the card and the report."""
        tables = []
        comp = self.composition
        rows = []
        for r in comp.itertuples(index=False):
            if r.grouping == "overall":
                continue
            small = 0 < r.n < self.min_group_size
            rows.append([r.grouping, r.group + (" (small)" if small else ""), str(r.n), _pct(r.share),
                         _pct(r.share_known)])
        tables.append(_table(
            "Composition", ["grouping", "group", "n", "share", "share of known"], rows,
            f"{self.n} {self.unit}. Share of known leaves out {self.unit} whose attribute is missing. "
            f"(small): fewer than min_group_size = {self.min_group_size}."))
        tables.append(_table(
            "Missing attribute values", ["attribute", "missing", "rate"],
            [[r.attribute, str(r.n_missing), _pct(r.rate)] for r in self.missing.itertuples(index=False)]))
        if self.reference is not None:
            desc = f" ({self.reference_description})" if self.reference_description else ""
            tables.append(_table(
                "Reference population" + desc,
                ["grouping", "group", "n", "observed share", "reference share", "difference"],
                [[r.grouping, r.group, str(r.n), _pct(r.observed_share), _pct(r.reference_share),
                  _pct(r.difference, signed=True)] for r in self.reference.itertuples(index=False)],
                "Shares among known values; difference = observed - reference."))
            tables.append(_tests_table("Goodness of fit to the reference population (Pearson chi-square)",
                                       self.reference_tests))
        co = self.cooccurrence
        for grouping, part in co.groupby("grouping", sort=False):
            groups = list(dict.fromkeys(part["group"]))
            rows = []
            for cls, crow in part.groupby("class", sort=False):
                vals = dict(zip(crow["group"], zip(crow["npmi"], crow["n"])))
                rows.append([cls] + [f"{_num(vals[g][0])} ({vals[g][1]})" for g in groups])
            tables.append(_table(f"Label × {grouping}: nPMI (n)", ["label"] + groups, rows,
                                 "Normalised PMI: -1 never together, 0 independent, 1 always together."))
        tables.append(_tests_table("Label × attribute independence (Pearson chi-square)", self.cooccurrence_tests,
                                   extra=("cramers_v", "Cramér's V")))
        if self.image_statistics is not None:
            st = self.image_statistics
            rows = []
            for (grouping, group), part in st.groupby(["grouping", "group"], sort=False):
                if grouping == "overall" and group != "all":
                    continue
                by = part.set_index("statistic")
                cells = [grouping, group, str(int(by.loc["brightness", "n"]))]
                for s in ("brightness", "contrast", "sharpness"):
                    cells.append(f"{_num(by.loc[s, 'mean'])} ± {_num(by.loc[s, 'std'])}")
                cells.append(f"{_int(by.loc['width', 'median'])}×{_int(by.loc['height', 'median'])}")
                rows.append(cells)
            tables.append(_table(
                "Image statistics per group",
                ["grouping", "group", "n", "brightness", "contrast", "sharpness", "median resolution"], rows,
                "Mean ± standard deviation. " + "; ".join(f"{k}: {_DESCRIBE_IMAGE[k]}" for k in
                                                          ("brightness", "contrast", "sharpness")) + "."))
            tables.append(_tests_table("Image statistics: differences between groups (Kruskal-Wallis)",
                                       self.image_tests, by_statistic=True))
        if self.boxes is not None:
            rows = []
            for (grouping, group), part in self.boxes.groupby(["grouping", "group"], sort=False):
                by = part.set_index("statistic")
                rows.append([grouping, group, str(int(by.loc["box_area_fraction", "n"]))] + [
                    f"{_num(by.loc[s, 'median'])} [{_num(by.loc[s, 'q25'])}, {_num(by.loc[s, 'q75'])}]"
                    for s in ("box_area_fraction", "centre_distance")])
            tables.append(_table(
                "Person boxes per group (REVISE)", ["grouping", "group", "people", "box area / image area",
                                                   "distance from centre"], rows,
                "Median [quartiles]. Distance from the box centre to the image centre over half the diagonal "
                "(0 centre, 1 corner)."))
            tables.append(_tests_table("Person boxes: differences between groups (Kruskal-Wallis)", self.box_tests,
                                       by_statistic=True))
        if self.split is not None:
            other = Path(self.compare_to).stem if self.compare_to else "other"
            rows = [[r[0], r[1], str(r[2]), _pct(r[3]), str(r[4]), _pct(r[5]), _pct(r[6], signed=True)]
                    for r in self.split.itertuples(index=False)]
            tables.append(_table(
                f"Split comparison: {self.name} vs {other}",
                ["grouping", "group", f"n {self.name}", f"share {self.name}", f"n {other}", f"share {other}",
                 "difference"], rows, f"Shares among known values; difference = {other} - {self.name}."))
            tables.append(_tests_table("Split composition: same shares in both splits (chi-square homogeneity)",
                                       self.split_tests))
        return {"title": f"Dataset audit: {self.title}", "sentence": self.sentence, "chart": self.chart,
                "tables": tables}


def _table(title, columns, rows, note=""):
    return {"title": title, "columns": columns, "rows": rows, "note": note}


def _tests_table(title, tests, *, extra=None, by_statistic=False):
    columns = ["grouping"] + (["statistic"] if by_statistic else []) + \
        ["test statistic", "dof" if not by_statistic else "groups", "p", "p (BH)", "significant"]
    if extra:
        columns.append(extra[1])
    rows = []
    for r in tests.to_dict(orient="records"):
        if by_statistic and _bad(r["p_value"]):
            continue  # constant statistic (e.g. every image the same size): nothing was tested
        stat = r.get("statistic") if not by_statistic else r.get("h_statistic")
        cells = [r["grouping"]] + ([r["statistic"]] if by_statistic else [])
        cells += [_num(stat), str(r.get("dof") if not by_statistic else r.get("n_groups")), _p(r["p_value"]),
                  _p(r["p_adjusted"]), "yes" if r["significant"] else "no"]
        if extra:
            cells.append(_num(r[extra[0]]))
        rows.append(cells)
    note = "Benjamini-Hochberg adjusted over the tests of this table, alpha = 0.05."
    if "min_expected" in tests and (tests["min_expected"] < 5).any():
        note += " Some expected counts are below 5: the chi-square approximation is rough there."
    return _table(title, columns, rows, note)


def _bad(x) -> bool:
    return x is None or (isinstance(x, float) and not math.isfinite(x))


def _pct(x, signed=False) -> str:
    if _bad(x):
        return "–"
    return f"{100 * x:+.1f}%" if signed else f"{100 * x:.1f}%"


def _num(x) -> str:
    if _bad(x):
        return "–"
    x = float(x)
    if abs(x) < 1e-12:
        x = 0.0  # numerical noise (the sd of identical values) reads as zero
    if x != 0 and (abs(x) < 1e-3 or abs(x) >= 1e5):
        return f"{x:.2e}"
    return f"{x:.3f}" if abs(x) < 100 else f"{x:.1f}"


def _int(x) -> str:
    return "–" if _bad(x) else f"{float(x):.0f}"


def _p(x) -> str:
    if _bad(x):
        return "–"
    return f"{x:.1e}" if x < 1e-3 else f"{x:.3f}"


def share_chart(comp: pd.DataFrame, attributes: list[str], reference: dict | None) -> dict | None:
    """Each group's share of all samples (``composition`` rows of the single attributes), with the reference
    population's share where the card gives one: :func:`audit.core.charts.share_bars` as a dict."""
    from dataclasses import asdict

    from ..core.charts import share_bars

    rows = []
    for r in comp.itertuples(index=False):
        if r.grouping not in attributes:
            continue
        ref = (reference or {}).get(r.grouping)
        rows.append({"grouping": r.grouping, "group": r.group, "share": r.share,
                     "reference_share": ref[r.group] / sum(ref.values()) if ref and r.group in ref else None})
    chart = share_bars(rows, title="Share of samples per group", reference=bool(reference))
    return None if chart is None else asdict(chart)


def chart_png(chart: dict | None) -> str:
    """The chart of :func:`share_chart` as a base64 PNG (for Markdown, whose viewers often refuse SVG data URIs);
    "" without one. Deterministic: the Agg backend, fixed size and dpi, no timestamp in the PNG metadata."""
    if not chart:
        return ""
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    bars = chart["bars"]
    fig = Figure(figsize=(6.0, 0.6 + 0.28 * len(bars)), dpi=80)
    ax = fig.add_subplot()
    y = np.arange(len(bars))[::-1]
    ax.barh(y, [100 * b["share"] for b in bars], color=[b["colour"] for b in bars], height=0.7)
    for yi, b in zip(y, bars):
        ax.text(100 * b["share"] + 0.8, yi, b["value"], va="center", fontsize=7)
        if b["reference"] is not None:
            ax.plot([100 * b["reference"]] * 2, [yi - 0.4, yi + 0.4], color="black", linewidth=1.5)
    ax.set_yticks(y, [b["label"] for b in bars], fontsize=7)
    ax.set_xlim(0, 110)
    ax.set_xlabel(chart["x_label"] + " (%)", fontsize=7)
    ax.tick_params(axis="x", labelsize=7)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", metadata={"Software": None})
    return base64.b64encode(buf.getvalue()).decode("ascii")
