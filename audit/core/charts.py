"""Chart data for the report's inline SVG: every coordinate is computed here, the template only draws.

Nothing here produces markup. A chart is a plain dataclass of numbers (already
rounded, so the output is byte-stable) and label strings, which the Jinja2
template ``report/_svg.html.j2`` writes with autoescaping on.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

__all__ = ["Chart", "Series", "ForestPlot", "ShareBars", "PALETTE", "DASHES", "line_chart", "forest_plot",
           "share_bars", "style_for"]

# Okabe & Ito's colour-blind-safe qualitative palette (yellow last: low contrast on white).
PALETTE = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000", "#F0E442"]
DASHES = ["", "6 3", "2 2", "8 3 2 3"]


def style_for(i: int) -> tuple[str, str]:
    """Colour and dash pattern of the i-th series: 8 colours, then the same colours dashed."""
    return PALETTE[i % len(PALETTE)], DASHES[(i // len(PALETTE)) % len(DASHES)]


def _r(v: float) -> float:
    return round(float(v), 1)


@dataclass
class Tick:
    pos: float
    label: str


@dataclass
class Series:
    label: str
    colour: str
    dash: str
    points: list  # [(x, y)] in pixels
    whiskers: list = field(default_factory=list)  # [(x, y_lo, y_hi)] in pixels
    width: float = 1.8

    @property
    def path(self) -> str:
        return " ".join(f"{x},{y}" for x, y in self.points)


@dataclass
class Chart:
    id: str
    title: str
    x_label: str
    y_label: str
    width: int
    height: int
    plot: tuple  # (left, top, right, bottom) in pixels
    x_ticks: list
    y_ticks: list
    series: list
    diagonal: tuple | None = None  # (x1, y1, x2, y2), e.g. perfect calibration
    legend: list = field(default_factory=list)  # [(label, colour, dash, width)]
    note: str = ""


def _nice_ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    if not math.isfinite(lo) or not math.isfinite(hi) or hi <= lo:
        return [lo]
    raw = (hi - lo) / n
    mag = 10 ** math.floor(math.log10(raw))
    step = min((s * mag for s in (1, 2, 2.5, 5, 10) if s * mag >= raw), default=raw)
    first = math.ceil(lo / step - 1e-9) * step
    ticks, t = [], first
    while t <= hi + 1e-9:
        ticks.append(round(t, 10))
        t += step
    return ticks


def _fmt_tick(v: float) -> str:
    return f"{v:.2f}".rstrip("0").rstrip(".") if v != int(v) else str(int(v))


def line_chart(*, id: str, title: str, x_label: str, y_label: str, series: list[dict], x_domain=(0.0, 1.0),
               y_domain=(0.0, 1.0), x_categories: list[str] | None = None, diagonal: bool = False,
               width: int = 330, height: int = 240, note: str = "") -> Chart:
    """A line chart from data coordinates.

    ``series``: dicts with ``label``, ``points`` [(x, y)] (NaN/None skipped), optional ``lower``/``upper`` lists
    (whiskers at each point), optional ``style`` index, ``width``, ``colour`` and ``dash``; ``legend`` False
    leaves a series out of the legend, ``legend_label`` names it there differently. With
    ``x_categories`` the x values are category indices.
    """
    left, top, right, bottom = 44, 12, width - 10, height - 40
    x0, x1 = x_domain if x_categories is None else (-0.5, len(x_categories) - 0.5)
    y0, y1 = y_domain

    def px(x):
        return _r(left + (x - x0) / ((x1 - x0) or 1) * (right - left))

    def py(y):
        return _r(bottom - (y - y0) / ((y1 - y0) or 1) * (bottom - top))

    out = []
    legend = []
    for i, s in enumerate(series):
        colour, dash = style_for(s.get("style", i))
        colour, dash = s.get("colour", colour), s.get("dash", dash)
        pts, whiskers = [], []
        lowers, uppers = s.get("lower"), s.get("upper")
        for j, (x, y) in enumerate(s["points"]):
            if y is None or x is None or not math.isfinite(y):
                continue
            pts.append((px(x), py(min(max(y, y0), y1))))
            if lowers is not None and lowers[j] is not None and uppers[j] is not None \
                    and math.isfinite(lowers[j]) and math.isfinite(uppers[j]):
                whiskers.append((px(x), py(max(lowers[j], y0)), py(min(uppers[j], y1))))
        out.append(Series(label=s["label"], colour=colour, dash=dash, points=pts, whiskers=whiskers,
                          width=s.get("width", 1.8)))
        if s.get("legend", True):
            legend.append((s.get("legend_label", s["label"]), colour, dash, min(s.get("width", 1.8), 3.2)))
    if x_categories is None:
        x_ticks = [Tick(px(t), _fmt_tick(t)) for t in _nice_ticks(x0, x1)]
    else:
        x_ticks = [Tick(px(i), c) for i, c in enumerate(x_categories)]
    y_ticks = [Tick(py(t), _fmt_tick(t)) for t in _nice_ticks(y0, y1)]
    diag = (px(max(x0, y0)), py(max(x0, y0)), px(min(x1, y1)), py(min(x1, y1))) if diagonal else None
    return Chart(id=id, title=title, x_label=x_label, y_label=y_label, width=width, height=height,
                 plot=(left, top, right, bottom), x_ticks=x_ticks, y_ticks=y_ticks, series=out, diagonal=diag,
                 legend=legend, note=note)


@dataclass
class ForestRow:
    y: float
    label: str
    header: bool = False
    x: float | None = None
    lo: float | None = None
    hi: float | None = None
    small: bool = False
    text: str = ""  # the value and interval, printed at the right


@dataclass
class ForestPlot:
    id: str
    title: str
    width: int
    height: int
    plot: tuple
    rows: list
    ticks: list
    lines: list  # [(x, y1, y2, kind, label)] kind: overall | reference
    note: str = ""
    compact: "ForestPlot | None" = None  # the same plot for a narrow screen: short labels, no value column


def forest_plot(*, id: str, title: str, blocks: list[dict], overall: float | None, fmt, note: str = "",
                compact: bool = True, width: int = 760, label_w: int = 210, value_w: int = 210,
                show_values: bool = True) -> ForestPlot:
    """Per-group point estimates with intervals, one block of rows per grouping.

    ``blocks``: dicts with ``title``, ``rows`` (dicts ``label``, ``value``, ``lower``, ``upper``, ``small``, ``n``)
    and ``reference`` (the reference group's value, or None). With ``compact`` the plot also carries a narrow
    version for phones (360 px: labels cut to 22 characters, no value column; the page shows one or the other).
    """
    values = [v for b in blocks for r in b["rows"] for v in (r["value"], r["lower"], r["upper"])
              if v is not None and math.isfinite(v)]
    if overall is not None and math.isfinite(overall):
        values.append(overall)
    lo, hi = (min(values), max(values)) if values else (0.0, 1.0)
    if lo >= 0 and hi <= 1:
        lo, hi = math.floor(lo * 10) / 10, math.ceil(hi * 10) / 10
        if hi <= lo:
            lo, hi = max(lo - 0.1, 0.0), min(hi + 0.1, 1.0)
    else:
        pad = (hi - lo) * 0.05 or 1.0
        lo, hi = lo - pad, hi + pad
    row_h = 17
    left, right = label_w, width - value_w
    short = not show_values

    def cut(text: str) -> str:
        return text if not short or len(text) <= 22 else text[:21] + "…"

    n_rows = sum(1 + len(b["rows"]) for b in blocks)
    top = 8
    height = top + n_rows * row_h + 34

    def px(x):
        return _r(left + (x - lo) / ((hi - lo) or 1) * (right - left))

    rows, lines = [], []
    y = top
    for b in blocks:
        rows.append(ForestRow(y=_r(y + row_h * 0.7), label=cut(b["title"]), header=True))
        y += row_h
        start = y
        for r in b["rows"]:
            ok = r["value"] is not None and math.isfinite(r["value"])
            has_ci = ok and r["lower"] is not None and r["upper"] is not None \
                and math.isfinite(r["lower"]) and math.isfinite(r["upper"])
            rows.append(ForestRow(
                y=_r(y + row_h / 2), label=cut(r["label"] + (" (small)" if r["small"] else "")),
                x=px(r["value"]) if ok else None, lo=px(r["lower"]) if has_ci else None,
                hi=px(r["upper"]) if has_ci else None, small=r["small"],
                text="" if short else f"{fmt(r['value'])} [{fmt(r['lower'])}, {fmt(r['upper'])}] n={r['n']}"))
            y += row_h
        ref = b.get("reference")
        if ref is not None and math.isfinite(ref):
            lines.append((px(ref), _r(start), _r(y), "reference", f"reference group of {b['title']}"))
    if overall is not None and math.isfinite(overall):
        lines.insert(0, (px(overall), _r(top), _r(y), "overall", "overall"))
    ticks = [Tick(px(t), _fmt_tick(t)) for t in _nice_ticks(lo, hi)]
    narrow = forest_plot(id=id + "-compact", title=title, blocks=blocks, overall=overall, fmt=fmt, compact=False,
                         width=360, label_w=128, value_w=14, show_values=False) if compact else None
    return ForestPlot(id=id, title=title, width=width, height=_r(height), plot=(left, top, right, _r(y)), rows=rows,
                      ticks=ticks, lines=lines, note=note, compact=narrow)


@dataclass
class ShareBars:
    """Horizontal bars of each group's share, one colour per grouping (plain data: JSON-ready with ``asdict``)."""

    title: str
    width: int
    height: int
    plot: tuple  # (left, top, right, bottom) in pixels
    ticks: list  # [(x, label)]
    bars: list  # dicts: pixels (x, y, width, height, text_x, label_y, reference_x), colour, label (and short,
    #              cut to fit), share and reference share (reference and reference_x None without one), value text
    x_label: str


def share_bars(rows: list[dict], *, title: str, reference: bool, width: int = 600) -> ShareBars | None:
    """Bars from 0 to 100% of the shares of ``rows`` (dicts ``grouping``, ``group``, ``share``, optional
    ``reference_share``), in their order, coloured by grouping from :data:`PALETTE`. None without rows."""
    if not rows:
        return None
    row_h, top = 20, 6
    labels = [f"{r['grouping']}: {r['group']}" for r in rows]
    left = min(max(60, 6 * max(len(s) for s in labels) + 10), width // 2)  # about 6 px per 11-px character
    right = width - 46  # room for the value of a full bar
    bottom = top + row_h * len(rows)
    colours = {}
    bars = []
    for k, (r, label) in enumerate(zip(rows, labels)):
        colour = colours.setdefault(r["grouping"], PALETTE[len(colours) % (len(PALETTE) - 1)])  # no yellow
        share = min(max(float(r["share"]), 0.0), 1.0)
        end = left + share * (right - left)
        ref = r.get("reference_share")
        room = (left - 10) // 6
        bars.append({"y": _r(top + k * row_h + 3), "x": left, "width": _r(end - left), "height": row_h - 6,
                     "colour": colour, "label": label, "short": label if len(label) <= room else label[:room - 1] + "…", "share": share, "reference": ref,
                     "value": f"{100 * share:.1f}%", "text_x": _r(end + 4),
                     "label_y": _r(top + k * row_h + row_h / 2 + 4),
                     "reference_x": None if ref is None else _r(left + min(max(float(ref), 0.0), 1.0) * (right - left))})
    ticks = [(_r(left + t / 100 * (right - left)), f"{t}%") for t in (0, 25, 50, 75, 100)]
    x_label = "share of samples" + ("; black tick: reference population" if reference else "")
    return ShareBars(title=title, width=width, height=bottom + 34, plot=(left, top, right, bottom), ticks=ticks,
                     bars=bars, x_label=x_label)
