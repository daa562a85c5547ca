"""The plain-language summary: one sentence per finding, with numbers, for a reader who is not a statistician.

Works on the JSON-ready dict of :meth:`GroupedMetrics.to_dict` (``results`` in ``results.json``), so the report,
the notebook view and anything else say the same thing. A finding is one pair of groups on one metric: a
``to_reference`` row and the ``between_groups`` row of the same pair are the same finding (the one with an
interval is kept). Single attributes come first; an intersection is kept only when its gap is larger than
every single attribute's gap on the same metric (it adds something beyond its parts).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ._names import is_event, is_proportion, sentence_case, short_name

__all__ = ["Finding", "findings", "method_line", "CORRECTION_NAMES"]

CORRECTION_NAMES = {"fdr_bh": "Benjamini–Hochberg (false discovery rate)", "holm": "Holm (family-wise error rate)"}
KINDS = ("to_reference", "between_groups")


@dataclass
class Finding:
    """One finding: the sentence, and what it is about (for tests and styling)."""

    sentence: str
    grouping: str
    metric: str
    group: str
    other: str
    kind: str
    significant: bool
    small: bool
    caveat: str = ""

    @property
    def key(self) -> tuple:
        return (self.grouping, self.metric, frozenset((self.group, self.other)))


def _finite(v) -> bool:
    return v is not None and isinstance(v, (int, float)) and math.isfinite(float(v))


def _pct(v: float) -> str:
    return f"{100 * v:.1f}%"


def _num(v: float) -> str:
    return f"{v:.3f}"


def _signed(v: float, digits: int) -> str:
    s = f"{abs(v):.{digits}f}"
    return ("−" + s) if v < 0 and float(s) != 0 else s


def _p(p) -> str:
    if not _finite(p):
        return "–"
    if p <= 0:
        return "< 1e-300"  # below what a double holds
    return f"{p:.1e}" if p < 0.001 else f"{p:.3f}"


def _p_phrase(p) -> str:
    text = _p(p)
    return text if text.startswith("<") else f"= {text}"


def _sentence(d: dict, values: dict, correction: str, cls: str) -> str:
    metric, group, other = d["metric"], d.get("group") or "", d.get("other") or "the rest"
    name = sentence_case(short_name(metric)) + (f" ({cls})" if cls else "")
    ref = " (reference)" if d["kind"] == "to_reference" else ""
    prop = is_proportion(metric)
    show = _pct if prop else _num
    vg, vo = values.get((d["grouping"], group)), values.get((d["grouping"], other))
    name += f" by {d['grouping']}"
    if _finite(vg) and _finite(vo):
        s = f"{name}: {show(vg)} for {group} against {show(vo)} for {other}{ref}"
    else:
        s = f"{name}: {group} against {other}{ref}"
    ratio = d.get("ratio")
    if _finite(ratio) and ratio > 0 and abs(ratio - 1) > 1e-9:
        s += f", {ratio:.1f}× as often" if is_event(metric) and ratio > 1 else f", {ratio:.2f}× as high"
    lower, upper = d.get("difference_lower"), d.get("difference_upper")
    unit, scale, digits = (" points", 100.0, 1) if prop else ("", 1.0, 3)
    if _finite(lower) and _finite(upper):
        s += (f"; 95% interval of the gap {_signed(scale * lower, digits)} to {_signed(scale * upper, digits)}"
              f"{unit} ({'significant' if d.get('significant') else 'not significant'}).")
    else:
        gap = f"{_signed(scale * d['difference'], digits)}{unit}"
        verdict = "significant" if d.get("significant") else "not significant"
        s += f"; a gap of {gap}, {verdict} by its test (adjusted p = {_p(d.get('p_' + correction))})."
    return s


def findings(results: dict, *, metrics=None, limit: int = 6) -> list[Finding]:
    """The summary's findings, each once: single attributes first, then intersections that add something.

    ``results`` is :meth:`GroupedMetrics.to_dict`'s dict; ``metrics`` the metrics to speak about (default: the
    audit's ``disparity_metrics``). Per attribute and metric, the significant findings, largest gap first (or,
    when none is significant, the largest gap); at most ``limit`` findings.
    """
    config = results.get("config") or {}
    correction = (results.get("significance") or {}).get("correction", "fdr_bh")
    wanted = list(metrics) if metrics is not None else list(config.get("disparity_metrics") or [])
    min_size = config.get("min_group_size")
    cls_of = {}
    values, sizes = {}, {}
    for m in results.get("metrics") or []:
        if m["metric"] in wanted and m.get("class", "") in ("", "macro"):
            values[(m["metric"], m["grouping"], m["group"])] = m.get("value")
            sizes[(m["metric"], m["grouping"], m["group"])] = m.get("n")
    # one row per finding: the to_reference row wins over the mirrored between_groups row of the same pair
    best: dict = {}
    for d in results.get("disparities") or []:
        if d["kind"] not in KINDS or d.get("class", "") not in ("", "macro") or d["metric"] not in wanted:
            continue
        if not _finite(d.get("difference")):
            continue
        key = (d["grouping"], d["metric"], frozenset((d.get("group"), d.get("other"))))
        if key not in best or (best[key]["kind"] != "to_reference" and d["kind"] == "to_reference"):
            best[key] = d
    # per attribute and metric one finding, the largest gap (significant ones before the rest)
    top: dict = {}
    for d in best.values():
        slot = (d["grouping"], d["metric"])
        rank = (not d.get("significant"), -abs(d["difference"]), d["kind"] != "to_reference", d.get("group") or "")
        if slot not in top or rank < top[slot][0]:
            top[slot] = (rank, d)
    rows = [d for _, d in top.values()]
    single_gap: dict = {}
    for d in rows:
        if " × " not in d["grouping"]:
            single_gap[d["metric"]] = max(single_gap.get(d["metric"], 0.0), abs(d["difference"]))
    order = lambda d: (not d.get("significant"), wanted.index(d["metric"]), -abs(d["difference"]), d["grouping"])
    singles = sorted((d for d in rows if " × " not in d["grouping"]), key=order)
    # an intersection is a finding only when its gap is larger than every single attribute's on that metric
    inters = sorted((d for d in rows if " × " in d["grouping"]
                     and abs(d["difference"]) > single_gap.get(d["metric"], 0.0)), key=order)
    n_inter = min(len(inters), max(limit // 3, 1)) if inters else 0
    chosen = singles[:limit - n_inter] + inters[:limit - min(len(singles), limit - n_inter)]
    out = []
    for d in chosen:
        local = {(g, grp): v for (m, g, grp), v in values.items() if m == d["metric"]}
        cls = d.get("class") or ""
        f = Finding(sentence=_sentence(d, local, correction, "" if cls in ("", "macro") else cls),
                    grouping=d["grouping"], metric=d["metric"], group=d.get("group") or "",
                    other=d.get("other") or "", kind=d["kind"], significant=bool(d.get("significant")),
                    small=bool(d.get("small_group")))
        if f.small:
            small = [f"{g} (n = {sizes.get((d['metric'], d['grouping'], g))})" for g in (f.group, f.other)
                     if _finite(sizes.get((d["metric"], d["grouping"], g)))
                     and min_size and sizes[(d["metric"], d["grouping"], g)] < min_size]
            verb = "are" if len(small) > 1 else "is"
            f.caveat = (f"Small group: {' and '.join(small) or 'a group here'} {verb} below {min_size}, so the "
                        "interval is wide and a verdict of 'not significant' says little.")
        out.append(f)
    return out


def method_line(results: dict) -> str:
    """One line on how to read the findings (said once, not per finding)."""
    sig = results.get("significance") or {}
    correction = CORRECTION_NAMES.get(sig.get("correction"), sig.get("correction", ""))
    return (f"How to read: 95% intervals; 'significant' means after {correction} correction at "
            f"α = {sig.get('alpha')} over all {sig.get('family_size')} tests of this audit. A gap stated without an "
            "interval is a largest gap between groups, whose bootstrap interval would be pushed away from 0, so "
            "its test is the evidence.")
