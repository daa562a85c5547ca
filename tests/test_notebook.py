"""The notebook views: GroupedMetrics and AuditRun render the findings, the groups table and the significant
disparities, say what they leave out, escape every data-derived string; progress bars never warn."""

from __future__ import annotations

import sys
import types
import warnings

import pandas as pd
import pytest

from audit.pipeline import AuditRun
from audit.stats import findings

from report_helpers import EVIL
from test_report_summary import MICROSOFT
from test_stats_gender_shades import _audit, _ppb

pytestmark = pytest.mark.filterwarnings("ignore::audit.stats.UndefinedMetricWarning")


@pytest.fixture(scope="module")
def result():
    return _audit(*_ppb(MICROSOFT))


def test_grouped_metrics_notebook_view(result):
    html = result._repr_html_()
    # the findings, in the same words as the report, and the method line once
    for f in findings(result.to_dict()):
        assert f.sentence.replace("×", "×") in html.replace("&#x27;", "'")
    assert "20.7% for female × darker against 0.0% for male × lighter (reference)" in html
    assert html.count("How to read") == 1
    # the Gender Shades table: a row per disparity metric, a column per group, with intervals and n
    assert "<b>Metrics by group</b>" in html and "error rate (among processed samples)" in html
    assert "female × darker" in html and "n=271" in html
    # the significant disparities, and what is left out
    n_sig = int(result.disparities["significant"].sum())
    assert "<b>Significant disparities</b>" in html
    assert f"{n_sig - 15} more significant disparities not shown" in html
    assert "group columns not shown" not in html  # 15 groups: all shown
    from audit.stats._results import notebook_html

    assert "5 of 15 group columns not shown" in notebook_html(result, columns=10)
    assert f"all {len(result.metrics)} metric values is result.to_frame()" in html
    assert "<table" in html and html.count("<tr>") < 60


def test_notebook_view_escapes_group_names():
    y, p, groups = _ppb(MICROSOFT)
    groups = groups.assign(gender=groups["gender"].replace({"female": EVIL}))
    html = _audit(y, p, groups)._repr_html_()
    assert EVIL not in html and "&lt;script&gt;" in html


def test_audit_run_notebook_view_and_short_repr(result):
    run = AuditRun(result=result, provenance={"task": "classification", "model": {"name": "m1"},
                                              "data": {"name": "ppb"}},
                   predictions=pd.DataFrame({"sample_id": range(1270)}))
    html = run._repr_html_()
    assert html.startswith("<p><b>AuditRun</b>: classification audit of m1 on ppb (1270 predictions)</p>")
    assert "<b>Findings</b>" in html and "<b>Significant disparities</b>" in html
    assert repr(run) == "AuditRun(classification audit of m1 on ppb (1270 predictions); files: none yet)"


def test_progress_bar_without_ipywidgets_does_not_warn(monkeypatch):
    import io

    from audit._progress import progress_class

    monkeypatch.setitem(sys.modules, "ipywidgets", None)  # import ipywidgets -> ImportError
    cls = progress_class()
    from tqdm.std import tqdm as std

    assert cls is std
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for _ in cls(range(3), disable=False, file=io.StringIO()):
            pass
    monkeypatch.setitem(sys.modules, "ipywidgets", types.ModuleType("ipywidgets"))
    from tqdm.auto import tqdm as auto

    assert progress_class() is auto
