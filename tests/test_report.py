"""The HTML report: golden bytes, determinism, escaping, self-containment, sections, `audit report`.

Regenerate the golden file on purpose with ``AUDIT_UPDATE_GOLDEN=1 python -m pytest tests/test_report.py``.
"""

from __future__ import annotations

import json
import os
import re
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from audit.cli import main
from audit.report import TaskInput, build_report, render_document, render_report
from audit.tasks.classification.report import threshold_sweep, worst_errors

from report_helpers import CSS_EXTERNAL, EVIL, EXTERNAL, GOLDEN, classification, write_images

GOLDEN_HTML = GOLDEN / "report_small.html"
GOLDEN_RESULTS = GOLDEN / "report_small.results.json"
SECTIONS = ["summary", "group-tables", "forest-plots", "disparities", "explain", "classifier", "dataset",
            "worst-errors", "methodology", "reproducibility"]


def _golden_inputs():
    """The golden report's inputs: a checked-in results.json plus fixed per-sample tables."""
    doc, preds, samples = classification()
    if os.environ.get("AUDIT_UPDATE_GOLDEN") or not GOLDEN_RESULTS.exists():
        GOLDEN_RESULTS.write_text(json.dumps(doc, indent=1, allow_nan=False) + "\n", encoding="utf-8")
    return json.loads(GOLDEN_RESULTS.read_text(encoding="utf-8")), preds, samples


def test_golden_file():
    """A fixed results.json (and per-sample tables) renders to exactly the checked-in bytes."""
    doc, preds, samples = _golden_inputs()
    html = render_document(doc, predictions=preds, samples=samples, thumbnails=False, location="reports/small")
    if os.environ.get("AUDIT_UPDATE_GOLDEN") or not GOLDEN_HTML.exists():
        GOLDEN_HTML.write_text(html, encoding="utf-8")
    expected = GOLDEN_HTML.read_text(encoding="utf-8")
    if html != expected:
        a, b = html.splitlines(), expected.splitlines()
        first = next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
        pytest.fail(f"report differs from {GOLDEN_HTML.name} at line {first + 1}:\n"
                    f"  got:      {a[first] if first < len(a) else '<end>'}\n"
                    f"  expected: {b[first] if first < len(b) else '<end>'}\n"
                    "regenerate on purpose with AUDIT_UPDATE_GOLDEN=1")


def test_same_inputs_same_bytes_with_thumbnails(tmp_path):
    doc, preds, samples = classification()
    images = write_images(tmp_path / "img", preds["sample_id"])
    one = render_document(doc, predictions=preds, samples=samples, image_paths=images)
    two = render_document(json.loads(json.dumps(doc)), predictions=preds.sample(frac=1, random_state=1),
                          samples=samples, image_paths=dict(reversed(list(images.items()))))
    assert one == two
    assert one.count('src="data:image/png;base64,') >= 8  # 4 worst errors x groups of the single attributes


def test_self_contained_no_script_no_external_resources(tmp_path):
    doc, preds, samples = classification()
    html = render_document(doc, predictions=preds, samples=samples,
                           image_paths=write_images(tmp_path / "img", preds["sample_id"]))
    assert not EXTERNAL.search(html), EXTERNAL.search(html)
    assert not CSS_EXTERNAL.search(html)
    assert "http://" not in html and "https://" not in html
    assert "<script" not in html.lower()  # the page needs no JavaScript
    assert "<style>" in html and "<link" not in html
    srcs = re.findall(r'src="([^"]*)"', html)
    assert srcs and all(s.startswith("data:image/png;base64,") for s in srcs)


def test_sections_and_content():
    doc, preds, samples = classification()
    html = render_document(doc, predictions=preds, samples=samples, thumbnails=False)
    for section in SECTIONS:
        assert f'<section id="{section}">' in html, section
    prov = doc["provenance"]
    assert prov["model"]["sha256"] in html and prov["data"]["sha256"] in html
    # Gender Shades table: intersections beside their parts, every cell with value, interval and n
    assert "gender × skin_type" in html and "female × darker" in html
    cells = re.findall(r'<td class="cell[^"]*"><span class="v">([^<]*)</span><span class="ci">([^<]*)</span>'
                       r'<span class="n">([^<]*)</span></td>', html)
    assert len(cells) >= 9 * 9
    assert all(n.startswith("n=") for _, _, n in cells if _ != "–")
    assert all(ci.startswith("[") for v, ci, _ in cells if v != "–")
    # the colour scale is used and the disparity table names the correction, alpha and family size
    assert re.search(r'class="cell s[0-4]', html)
    sig = doc["results"]["significance"]
    assert "Benjamini–Hochberg" in html and f"α = {sig['alpha']}" in html
    assert f"family of {sig['family_size']} tests" in html
    # charts: forest plots, calibration per grouping, threshold sweep per grouping (TPR and FPR)
    assert html.count('<figure class="forest"') == 2
    assert 'id="calibration-classification-0-skin-type"' in html
    assert 'id="sweep-classification-0-gender-skin-type"' in html and "female TPR" in html and "male FPR" in html
    # worst errors without thumbnails: ids listed, no images
    assert "--no-thumbnails" in html and "data:image" not in html
    assert re.search(r"<code>s\d{4}</code>", html)
    # reproducibility: versions, seed, hashes, command lines
    assert "audit report reports/" not in html  # no location given: placeholder
    assert "audit report OUT" in html and "--seed 3" in html


def test_group_names_are_escaped_everywhere(tmp_path):
    """A group named <script>alert(1)</script> is text in tables, plots, legends and thumbnails' captions."""
    doc, preds, samples = classification(group_names=(EVIL, "male"))
    html = render_document(doc, predictions=preds, samples=samples,
                           image_paths=write_images(tmp_path / "img", preds["sample_id"]))
    assert EVIL not in html
    assert "<script" not in html.lower()
    escaped = "&lt;script&gt;alert(1)&lt;/script&gt;"
    assert html.count(escaped) > 20
    for where in ('<th scope="row"', '<figure class="forest"', '<figure class="chart"', '<ul class="legend">'):
        assert where in html


def test_threshold_sweep_by_hand():
    # group a: positives score 0.9, 0.4; negatives 0.6, 0.1 -> at t=0.5: TPR 1/2, FPR 1/2
    sweep = threshold_sweep([1, 1, 0, 0, 1, 0], [[0.1, 0.9], [0.6, 0.4], [0.4, 0.6], [0.9, 0.1], [0.2, 0.8],
                                                [0.8, 0.2]], ["no", "yes"], ["a", "a", "a", "a", "b", "b"],
                            thresholds=[0.0, 0.5, 1.0])
    assert sweep["groups"]["a"] == {"tpr": [1.0, 0.5, 0.0], "fpr": [1.0, 0.5, 0.0], "n": 4}
    assert sweep["groups"]["b"]["tpr"] == [1.0, 1.0, 0.0] and sweep["groups"]["b"]["fpr"] == [1.0, 0.0, 0.0]
    assert sweep["how"] == "score of 'yes'"


def test_worst_errors_highest_confidence_first():
    preds = pd.DataFrame({"sample_id": ["a", "b", "c", "d"], "score_x": [0.9, 0.2, 0.3, 0.6],
                          "score_y": [0.1, 0.8, 0.7, 0.4]})
    samples = pd.DataFrame({"sample_id": ["a", "b", "c", "d"], "label": [1, 0, 0, 1], "pred": [0, 1, 1, 0],
                            "group:g": ["u", "u", "u", "v"]})
    out = worst_errors(preds, samples, ["x", "y"], per_group=2)
    assert [(g["group"], g["n_errors"], [i["sample_id"] for i in g["items"]]) for g in out] == \
        [("u", 3, ["a", "b"]), ("v", 1, ["d"])]
    assert out[0]["items"][0] == {"sample_id": "a", "truth": "y", "predicted": "x", "confidence": 0.9}


def test_three_tasks_in_one_page():
    from audit.report._examples import detection_example, segmentation_example

    doc, preds, samples = classification()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tiny groups warn
        det, seg = detection_example(n_images=40, n_boot=10), segmentation_example(n_images=40, n_boot=10)
    report = build_report([TaskInput(doc, preds, samples), TaskInput(det), TaskInput(seg)])
    html = render_report(report)
    curve = report.tasks[1].charts("Recall against IoU threshold")[0]
    assert [s.label for s in curve.series] == ["overall", "g1", "g2"]
    assert all(len(s.points) == 10 for s in curve.series)  # recall at IoU 0.50, 0.55, ..., 0.95
    assert [len(s.points) for s in report.tasks[1].charts("Recall by object size")[0].series] == [3, 3, 3]  # small, medium, large
    assert '<section id="recall">' in html
    assert "recall-iou-detection-1-group" in html and "recall-size-detection-1-group" in html
    assert "cannot be attributed to a demographic group" in html  # detection caveat
    assert "mmseg" in html and "torchmetrics" in html  # the segmentation pooling convention
    assert "mIoU, dataset-pooled" in html and "miou_pooled" in html


def test_audit_report_cli_rerenders_output_dir(tmp_path, capsys):
    """`audit report OUT` re-renders from results.json + parquet files; missing input is one line, exit 2."""
    doc, preds, samples = classification()
    out = tmp_path / "out"
    out.mkdir()
    (out / "results.json").write_text(json.dumps(doc), encoding="utf-8")
    preds.to_parquet(out / "predictions.parquet")
    samples.to_parquet(out / "samples.parquet")
    assert main(["report", str(out), "-q"]) == 0
    html = (out / "index.html").read_text(encoding="utf-8")
    assert 'id="sweep-classification-0-skin-type"' in html and f"audit report {out}" in html
    assert main(["report", str(out / "results.json"), "-o", str(tmp_path / "again.html"), "-q"]) == 0
    assert (tmp_path / "again.html").read_text(encoding="utf-8") == html
    capsys.readouterr()
    assert main(["report", str(tmp_path / "missing")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: ") and "missing" in err


def test_audit_run_thumbnails_and_no_thumbnails(tmp_path):
    """`audit run` embeds the worst errors' thumbnails from the data card's images; --no-thumbnails leaves them
    out (ids still listed); `audit report OUT` then gives the same page as the run."""
    from slice_helpers import CLASSES, make_split

    split = make_split(tmp_path, n=40)
    frame = split["frame"]
    rng = np.random.default_rng(0)
    p = rng.uniform(0, 1, len(frame))
    preds = tmp_path / "preds.csv"
    pd.DataFrame({"sample_id": frame["id"], "pred": (p > 0.5).astype(int),
                  f"score_{CLASSES[0]}": 1 - p, f"score_{CLASSES[1]}": p}).to_csv(preds, index=False)
    common = ["--predictions", str(preds), "--data", str(split["card"]), "--n-boot", "10", "--n-perm", "10", "-q",
              "--no-data-audit"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert main(["run", *common, "--out", str(tmp_path / "a")]) == 0
        assert main(["run", *common, "--out", str(tmp_path / "b"), "--no-thumbnails"]) == 0
    with_thumbs = (tmp_path / "a" / "index.html").read_text(encoding="utf-8")
    without = (tmp_path / "b" / "index.html").read_text(encoding="utf-8")
    assert with_thumbs.count('src="data:image/png;base64,') >= 4
    assert "data:image/png" not in without and "--no-thumbnails" in without
    assert re.search(r"<code>s0\d\d</code>", without)
    assert "audit run --predictions" in with_thumbs  # the command line, from the provenance
    page = tmp_path / "a" / "index.html"
    before = page.read_bytes()
    assert main(["report", str(tmp_path / "a"), "-q"]) == 0
    assert page.read_bytes() == before  # re-rendering reruns nothing and changes nothing
