"""The report's "What explains the gaps" section, as data: built from ``results.json``'s ``explanations`` only.

For each headline gap the covariates were declared for: one plain sentence
(:func:`audit.stats.explanation_sentence`), the raw, pooled and adjusted figures, the share the covariates
explain, and the stratified table; then the confirmed slices of each outcome. The template
(``report.html.j2``) only loops and formats; every string reaches the page autoescaped.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

from ..core.sections import fmt
from ..stats import AdjustedGap, explanation_sentence

__all__ = ["Explanation", "GapBlock", "SliceBlock", "explanation"]

NOT_DECLARED = ("No covariates were declared, so no gap is taken apart: declare them in the data card "
                "(covariates: [lighting, brightness]) or pass --covariates.")


@dataclass
class StratumRow:
    stratum: str
    n: str  # "group / reference"
    rate_group: str
    rate_reference: str
    gap: str
    weight: str
    left_out: bool


@dataclass
class GapBlock:
    heading: str
    sentence: str
    figures: list  # [(label, value)]
    strata: list  # [StratumRow]
    notes: list = field(default_factory=list)
    reversed: bool = False


@dataclass
class SliceRow:
    slice: str
    n: str
    rate: str
    rest: str
    p_adjusted: str


@dataclass
class SliceBlock:
    heading: str
    note: str
    rows: list  # [SliceRow]


@dataclass
class Explanation:
    declared: list
    method: str
    gaps: list  # [GapBlock]
    slices: list  # [SliceBlock]
    notes: list
    empty: str = ""


def _interval(value, lower, upper) -> str:
    if lower is None or upper is None:
        return fmt(value)
    return f"{fmt(value)} [{fmt(lower)}, {fmt(upper)}]"


def _p_value(value) -> str:
    """``0.012``, ``3.4e-08``, ``< 1e-12``; ``–`` when undefined."""
    if value is None:
        return "–"
    if value < 1e-12:
        return "< 1e-12"
    return f"{value:.1e}" if value < 0.001 else f"{value:.3f}"


def _p(value) -> str:
    """``p = 0.012``, ``p < 1e-12``."""
    text = _p_value(value)
    return f"p {text}" if text.startswith("<") else f"p = {text}"


def _gap(d: dict) -> AdjustedGap:
    """The engine's :class:`AdjustedGap` from its ``results.json`` record (null is NaN, lists are tuples)."""
    values = {}
    for f in dataclasses.fields(AdjustedGap):
        v = d.get(f.name)
        values[f.name] = tuple(v) if isinstance(v, list) else (math.nan if v is None and f.type in ("float", float)
                                                               else v)
    return AdjustedGap(**values)


def _label(metric: str, verb: str) -> str:
    from ..stats import display_name

    return "error rate" if verb == "misclassified" else f"miss rate (1 − {display_name(metric)})"


def _upper(text: str) -> str:
    return text[:1].upper() + text[1:]


def _gap_block(c: dict, unit: str, clustered: bool) -> GapBlock:
    g = c["gap"]
    covariates = " and ".join(c["covariates"])
    name = lambda group: f"{unit} in {c['attribute']} group '{group}'"  # noqa: E731
    sentence = explanation_sentence(_gap(g), group_name=name(c["group"]), reference_name=name(c["reference"]),
                                    covariate_name=covariates, outcome_verb=c["verb"])
    figures = [
        ("rates", f"{fmt(g['rate_group'])} ({c['group']}, n={g['n_group']}) against {fmt(g['rate_reference'])} "
                  f"({c['reference']}, n={g['n_reference']})"),
        ("raw gap", f"{_interval(g['raw_gap'], g['raw_gap_lower'], g['raw_gap_upper'])}, {_p(g['raw_p'])}"),
        (f"gap within {covariates} (Mantel–Haenszel)",
         f"{_interval(g['mh_gap'], g['mh_gap_lower'], g['mh_gap_upper'])}; ratio "
         f"{_interval(g.get('mh_ratio'), g.get('mh_ratio_lower'), g.get('mh_ratio_upper'))}; CMH {_p(g['cmh_p'])}; "
         f"Breslow–Day {_p(g['breslow_day_p'])} (a small p: the gap differs between strata)"),
        (f"regression-adjusted gap ({g['regression_model'].upper()})",
         f"{_interval(g['regression_gap'], g['regression_gap_lower'], g['regression_gap_upper'])}, "
         f"{_p(g.get('regression_p'))}"),
        (f"share of the raw gap explained by {covariates}",
         _interval(g["share_explained"], g["share_lower"], g["share_upper"])),
    ]
    if clustered:
        figures.append(("design effect (people sharing images)", fmt(g.get("design_effect"), 2)))
    strata = [StratumRow(stratum=s["stratum"], n=f"{s['n_group']} / {s['n_reference']}",
                         rate_group=_interval(s["rate_group"], s.get("lower_group"), s.get("upper_group")),
                         rate_reference=_interval(s["rate_reference"], s.get("lower_reference"),
                                                  s.get("upper_reference")),
                         gap=_interval(s["gap"], s["gap_lower"], s["gap_upper"]),
                         weight=fmt(s["weight"], 2) if s["overlap"] else "left out",
                         left_out=not s["overlap"]) for s in c["strata"]]
    notes = list(g.get("notes") or [])
    if g["raw_gap_lower"] is not None and g["raw_gap_lower"] <= 0 <= g["raw_gap_upper"]:
        notes.insert(0, "The raw gap's interval covers 0, so the share explained says little.")
    return GapBlock(heading=f"{_upper(_label(c['metric'], c['verb']))}, {c['attribute']}: {c['group']} against "
                            f"{c['reference']}", sentence=sentence, figures=figures, strata=strata,
                    notes=notes, reversed=bool(g.get("reversed")))


def _slice_block(s: dict, unit: str) -> SliceBlock:
    config = s.get("config") or {}
    rows = [SliceRow(slice=r["slice"], n=str(r["n"]), rate=_interval(r["error_rate"], r["lower"], r["upper"]),
                     rest=fmt(r["error_rate_rest"]), p_adjusted=_p_value(r["p_adjusted"])) for r in s["confirmed"]]
    note = (f"{s['tested']} slices of up to {config.get('max_level', 2)} of {', '.join(s['features'])} were found on "
            f"a random half of the {'images' if config.get('cluster') else unit} and tested on the other half "
            f"({config.get('test', 'one-sided test')}; Benjamini–Hochberg at {config.get('fdr', 0.05)}); "
            f"{len(rows)} confirmed. The attributes and intersections reported above are not searched again. "
            "n, the rate and its 95% interval are the confirmation half's.")
    return SliceBlock(heading=f"Slices where the {_label(s['metric'], s['verb'])} concentrates", note=note, rows=rows)


def explanation(document: dict) -> Explanation:
    """The section's data for one audit's ``results.json`` document.

    Parameters
    ----------
    document : dict
        ``results.json``; without an ``explanations`` block (an older audit, or a document made by hand) the
        section says that no covariates were declared.

    Returns
    -------
    Explanation
    """
    block = document.get("explanations")
    if not block or not block.get("covariates"):
        return Explanation(declared=[], method="", gaps=[], slices=[], notes=[], empty=NOT_DECLARED)
    unit = block.get("unit") or "samples"
    clustered = bool(block.get("cluster"))
    method = (f"Covariates: {', '.join(block['covariates'])}. Units: {unit}"
              + (", resampled and tested by image (people share images)" if clustered else "")
              + f". Regression: {block.get('regression') or 'none'}. Each gap is rate(group) − rate(reference) of "
              "the outcome; strata holding one group only are left out of the pooled and adjusted figures; the "
              "share explained is (raw − pooled) / raw with a bootstrap interval.")
    gaps = [_gap_block(c, unit, clustered) for c in block.get("comparisons") or []]
    slices = [_slice_block(s, unit) for s in block.get("slices") or []]
    empty = "" if gaps or slices else "No headline gap of an error or a miss could be taken apart."
    return Explanation(declared=list(block["covariates"]), method=method, gaps=gaps, slices=slices,
                       notes=list(block.get("notes") or []), empty=empty)
