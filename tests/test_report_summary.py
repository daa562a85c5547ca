"""The plain-language summary and the display names: each finding once, the Gender Shades sentence, names as written."""

from __future__ import annotations

import json
import re
import warnings

import pytest

from audit.report import TaskInput, build_report, render_report
from audit.stats import display_name, findings, method_line, short_name

from report_helpers import GOLDEN
from test_stats_gender_shades import _audit, _ppb

pytestmark = pytest.mark.filterwarnings("ignore::audit.stats.UndefinedMetricWarning")

# Microsoft in Gender Shades (FAT* 2018): DF 20.8 / DM 6.0 / LF 1.7 / LM 0.0 / All 6.3, on PPB's subgroup sizes:
#   DF 56/271 = 20.66% -> 20.7   DM 19/318 = 5.97% -> 6.0   LF 5/296 = 1.69% -> 1.7   LM 0/385 = 0.0%
#   All 80/1270 = 6.30% -> 6.3
MICROSOFT = {("female", "darker"): 56, ("male", "darker"): 19, ("female", "lighter"): 5, ("male", "lighter"): 0}


def _keys(found):
    return [f.key for f in found]


def test_gender_shades_plain_sentence():
    result = _audit(*_ppb(MICROSOFT)).to_dict()
    found = findings(result, metrics=["error_rate"])
    sentences = [f.sentence for f in found]
    # single attributes first, then the intersection that adds something beyond its parts
    assert [f.grouping for f in found] == ["skin_type_full", "skin_type", "gender", "gender × skin_type"]
    inter = found[-1]
    d = [r for r in result["disparities"] if r["grouping"] == "gender × skin_type" and r["metric"] == "error_rate"
         and r["kind"] == "to_reference" and r["group"] == "female × darker"][0]
    lo, hi = 100 * d["difference_lower"], 100 * d["difference_upper"]
    # the ratio against 0.0% is undefined: no "ratio –", no ratio at all
    assert inter.sentence == (f"Error rate by gender × skin_type: 20.7% for female × darker against 0.0% for "
                              f"male × lighter (reference); 95% interval of the gap {lo:.1f} to {hi:.1f} points "
                              "(significant).")
    # skin type alone has no reference group: its largest gap has no interval, so the test's verdict is said
    # darker 75/589 = 12.73%, lighter 5/681 = 0.73%: 17.3x as often
    assert sentences[1].startswith("Error rate by skin_type: 12.7% for darker against 0.7% for lighter, "
                                   "17.3× as often; a gap of 12.0 points, significant by its test (adjusted p = ")
    assert not any("interval" in s for s in sentences[:3])
    assert not any("ratio –" in s or "–." in s for s in sentences)


def test_no_finding_twice_and_mirrors_merged():
    result = _audit(*_ppb(MICROSOFT)).to_dict()
    found = findings(result, limit=20)
    assert len(set(_keys(found))) == len(found)
    # the pair (female × darker, male × lighter) is both a to_reference and a between_groups row: one finding
    pair = [f for f in found if f.grouping == "gender × skin_type" and f.metric == "error_rate"]
    assert len(pair) == 1 and pair[0].kind == "to_reference"


def test_report_summary_states_each_finding_once_and_the_method_once():
    doc = json.loads((GOLDEN / "report_small.results.json").read_text(encoding="utf-8"))
    report = build_report(TaskInput(doc), thumbnails=False)
    html = render_report(report)
    summary = html[html.index('<section id="summary">'):html.index('<section id="group-tables">')]
    items = re.findall(r"<li[^>]*>(.*?)</li>", summary.split("<h4>Findings</h4>")[1].split("</ul>")[0])
    assert items and len(items) == len(set(items))
    # one finding per pair of groups and metric, whatever the kind of the row
    pairs = [tuple(re.match(r"(.*?): .* for (.*?) against .* for (.*?)[,;( ]", re.sub("<[^>]+>", "", i)).groups())
             for i in items]
    assert len({(m, frozenset(p)) for m, *p in pairs}) == len(pairs)
    assert summary.count("Benjamini–Hochberg") <= 2  # the method line and the flag, not once per bullet
    assert "Significant after" not in summary and "ratio –" not in summary
    assert report.tasks[0].method == method_line(doc["results"])
    # single attributes before intersections
    kinds = [" × " in p[1] for p in pairs]
    assert kinds == sorted(kinds)


def test_small_group_caveat_is_attached_to_its_finding():
    small = {("female", "darker"): 6, ("male", "darker"): 1, ("female", "lighter"): 1, ("male", "lighter"): 0}
    import numpy as np

    y, p, g = _ppb(small)
    keep = np.r_[np.arange(0, 20), np.arange(271, 1270)]  # only 20 darker women
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = _audit(y[keep], p[keep], g.iloc[keep].reset_index(drop=True)).to_dict()
    found = findings(result, metrics=["error_rate"], limit=10)
    inter = [f for f in found if f.grouping == "gender × skin_type"]
    assert inter and inter[0].small and "female × darker (n = 20)" in inter[0].caveat
    assert all(not f.caveat for f in found if not f.small)


def test_miss_rate_is_an_event_and_p_of_zero_is_said():
    from audit.stats._summary import _p_phrase

    assert _p_phrase(0.0) == "< 1e-300" and _p_phrase(2.5e-5) == "= 2.5e-05" and _p_phrase(0.2) == "= 0.200"
    from audit.stats import is_event

    assert is_event("miss_rate@0.50") and is_event("error_rate") and not is_event("recall@0.50")


@pytest.mark.parametrize("code, name", [
    ("miou_pooled", "mIoU, dataset-pooled"), ("recall@0.75", "recall at IoU 0.75"), ("recall@0.50", "recall at IoU 0.50"),
    ("mdice_pooled", "mean Dice, dataset-pooled"), ("ar", "AR (average recall, IoU 0.50:0.95)"),
    ("bbox_AP", "box AP (per group)"), ("bbox_AP50_coco", "box AP50 (COCO, whole set)"),
    ("mask_recall@0.50", "mask recall at mask IoU 0.50"), ("recall@0.50_small", "recall at IoU 0.50, small objects"),
    ("person_recall@0.50", "person recall at mask IoU 0.50"), ("dice_pooled", "Dice, dataset-pooled"),
])
def test_display_names(code, name):
    assert display_name(code) == name


def test_sentence_names_keep_their_capitals():
    from audit.stats import sentence_case

    assert sentence_case(short_name("miou_pooled")) == "mIoU (pooled)"
    assert sentence_case(short_name("recall@0.75")) == "Recall at IoU 0.75"
    assert sentence_case(short_name("roc_auc")) == "ROC AUC"
    assert sentence_case(short_name("ppv")) == "PPV"


def test_crowded_charts_highlight_reference_and_worst():
    """Past three groups a chart draws the reference and the worst group in colour, the others in grey."""
    from audit.core.sections import GREY

    doc = json.loads((GOLDEN / "report_small.results.json").read_text(encoding="utf-8"))
    report = build_report(TaskInput(doc), thumbnails=False)
    task = report.tasks[0]
    chart = [c for c in task.charts("Calibration curves per group") if c.title == "gender × skin_type"][0]
    coloured = {s.label for s in chart.series if s.colour not in (GREY, "#999999")}
    errors = {m["group"]: m["value"] for m in doc["results"]["metrics"]
              if m["grouping"] == "gender × skin_type" and m["metric"] == "error_rate" and m["class"] == ""}
    # no reference group for the intersection: the best group stands in, and the legend says so
    assert "gender × skin_type" not in doc["results"]["config"]["reference_groups"]
    ref, worst = min(errors, key=errors.get), max(errors, key=errors.get)
    assert coloured == {ref, worst}
    assert [s.colour for s in chart.series].index(GREY) < [s.label for s in chart.series].index(ref)  # grey below
    legend = [label for label, *_ in chart.legend]
    assert legend.count("other groups") == 1 and f"{ref} (best)" in legend and f"{worst} (worst)" in legend
    assert "drawn in colour, the others in grey" in chart.note
    # two groups: every group keeps its own colour
    few = [c for c in task.charts("Calibration curves per group") if c.title == "skin_type"][0]
    assert GREY not in {s.colour for s in few.series} and not few.note


def test_shading_only_significant_worse_gaps_on_an_absolute_scale():
    from audit.report._data import SHADE_POINTS, _shade

    doc = json.loads((GOLDEN / "report_small.results.json").read_text(encoding="utf-8"))
    report = build_report(TaskInput(doc), thumbnails=False)
    worse = {(d["grouping"], d["group"], d["metric"], d["class"]): d["difference"] for d in doc["results"]["disparities"]
             if d["kind"] == "to_overall" and d["significant"]}
    shaded = 0
    for tab in report.tasks[0].tables:
        groupings = [g.split(" (")[0] for g, k in tab.spans for _ in range(k)]
        for code, name, cells in tab.rows:
            cls = name.rsplit("(", 1)[1].rstrip(")") if name.endswith(")") and "(" in name else ""
            for grouping, group, cell in zip(groupings, tab.columns, cells):
                if grouping == "overall" or cell.missing:
                    assert cell.shade is None  # a single value has nothing to be worse than
                    continue
                gap = worse.get((grouping, group, code, cls)) if cls in ("negative", "positive", "macro") else \
                    worse.get((grouping, group, code, ""))
                if cell.shade is not None:
                    shaded += 1
                    assert gap is not None and cell.shade == _shade(gap)
    assert shaded > 0
    # one absolute scale: 2 points is the lightest shade, 25 points the fourth, whatever the metric
    assert _shade(0.02) == 0 and _shade(-0.02) == 0 and _shade(0.25) == 3 and len(SHADE_POINTS) == 5


def test_detection_table_says_people_and_notes_ap_once():
    from audit.report._examples import detection_example

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        det = detection_example(n_images=40, n_boot=10)
    report = build_report(TaskInput(det), thumbnails=False)
    tab = report.tasks[0].tables[0]
    assert any("(people)" in g for g, _ in tab.spans)
    ap = [(name, cells) for code, name, cells in tab.rows if code.startswith("bbox_AP")]
    assert ap and all(name.endswith("‡") for name, _ in ap)
    assert all(c.interval == "" for _, cells in ap for c in cells)  # no "no interval" in every cell
    assert len(tab.notes) == 1 and "Point estimate only" in tab.notes[0]
    html = render_report(report)
    section = html.split('<section id="group-tables">')[1].split("</section>")[0]
    assert '<span class="ci">no interval</span>' not in section and section.count("Point estimate only") == 1
