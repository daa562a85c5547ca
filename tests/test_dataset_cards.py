"""`audit data-card`, model-card updates and their exports, on tiny generated splits (fast, no model)."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from PIL import Image

from audit.card_update import replace_section, strip_generated
from audit.core.card_loaders import read_front_matter
from audit.core.registry import load_any_data_card
from audit.cli import main
from audit.dataset import audit_dataset, chart_png, image_statistics, section_markdown
from audit.errors import CardError

# 12 test images: gender male x8 / female x4, skin I..VI; label = shape.
TEST_ROWS = [
    # id, shape, gender, skin, grey level
    ("t00", "circle", "male", "I", 51), ("t01", "circle", "male", "II", 51), ("t02", "circle", "male", "III", 51),
    ("t03", "circle", "male", "I", 51), ("t04", "square", "male", "V", 102), ("t05", "square", "male", "VI", 102),
    ("t06", "square", "male", "IV", 102), ("t07", "circle", "male", "II", 51),
    ("t08", "square", "female", "V", 102), ("t09", "square", "female", "IV", 102),
    ("t10", "circle", "female", "I", 51), ("t11", "square", "<b>x</b>", "VI", 102),
]
# train split: 9 lighter, 1 darker
TRAIN_ROWS = [(f"r{i:02d}", "circle", "male" if i % 2 else "female", "I" if i < 9 else "V", 51) for i in range(10)]

CARD = """\
---
pretty_name: Tiny test split
split:
  manifest: {manifest}
  id_column: sample_id
  image_column: image
label_column: shape
classes: [circle, square]
attributes:
  gender: {{column: gender}}
  skin: {{column: skin, scale: fitzpatrick}}
intersections:
  - [gender, skin]
min_group_size: 3
{extra}---
# Datasheet: tiny test split

## Motivation

Hand-written text that must survive byte for byte: *emphasis*, trailing spaces   
and a table | a | b |.

## Composition

Twelve images.

## Uses

Tests only.
"""


def make_split(root: Path, name: str, rows) -> Path:
    (root / name).mkdir(parents=True, exist_ok=True)
    records = []
    for sid, shape, gender, skin, grey in rows:
        Image.fromarray(np.full((6, 8), grey, dtype=np.uint8)).convert("RGB").save(root / name / f"{sid}.png")
        records.append({"sample_id": sid, "image": f"{sid}.png", "shape": shape, "gender": gender, "skin": skin})
    pd.DataFrame(records).to_csv(root / name / "manifest.csv", index=False)
    return root / name / "manifest.csv"


@pytest.fixture()
def project(tmp_path):
    make_split(tmp_path, "test", TEST_ROWS)
    make_split(tmp_path, "train", TRAIN_ROWS)
    cards = tmp_path / "data_cards"
    cards.mkdir()
    extra = ("reference_population:\n  description: even split\n  shares:\n    skin: {lighter: 1, darker: 1}\n"
             "compare_to: train.md\n")
    test_card = cards / "test.md"
    test_card.write_bytes(CARD.format(manifest="../test/manifest.csv", extra=extra).encode())
    (cards / "train.md").write_bytes(CARD.format(manifest="../train/manifest.csv", extra="").encode())
    return {"root": tmp_path, "card": test_card, "out": tmp_path / "out"}


def generated_block(text: str) -> tuple[int, int]:
    start = text.index("<!-- audit:composition:start")
    end = text.index("<!-- audit:composition:end -->\n") + len("<!-- audit:composition:end -->\n")
    return start, end


def test_data_card_numbers_and_byte_identical_round_trip(project, capsys):
    from audit.core.data import fingerprint_split, load_split

    card = project["card"]
    original = card.read_bytes()
    data_hash = fingerprint_split(load_any_data_card(card), load_split(load_any_data_card(card)))
    assert main(["data-card", str(card), "--out", str(project["out"]), "-q"]) == 0
    # the prediction cache key ignores the computed section
    assert fingerprint_split(load_any_data_card(card), load_split(load_any_data_card(card))) == data_hash
    first = card.read_bytes()
    text = first.decode()
    start, end = generated_block(text)
    # the block was inserted at the end of '## Composition' (before '## Uses'); nothing else changed
    assert text[end:].startswith("## Uses")
    assert (text[:start] + text[end:]).encode() == original
    assert strip_generated(text).encode() == original
    # second run: byte-identical file (deterministic chart, no timestamps)
    assert main(["data-card", str(card), "-q"]) == 0
    assert card.read_bytes() == first
    # a human edit outside the markers survives a rerun, byte for byte
    edited = text.replace("Tests only.", "Tests only, and nothing else.")
    card.write_text(edited, encoding="utf-8")
    assert main(["data-card", str(card), "-q"]) == 0
    assert card.read_text(encoding="utf-8") == edited
    # numbers by hand. gender: male 8/12 = 66.7%, female 3/12 = 25.0%, '<b>x</b>' 1/12 = 8.3%
    # skin: lighter = I, II, III, I, II, I -> 6/12 = 50.0%; darker 6/12 = 50.0%
    block = text[start:end]
    assert "| gender | male | 8 | 66.7% | 66.7% |" in block
    assert "| gender | female | 3 | 25.0% | 25.0% |" in block
    assert "| skin | lighter | 6 | 50.0% | 50.0% |" in block
    # male x lighter: t00 t01 t02 t03 t07 -> 5 = 41.7%; female x darker: t08 t09 -> 2 (small: < 3 is not, 2 < 3 is)
    assert "| gender × skin | male × lighter | 5 | 41.7% | 41.7% |" in block
    assert "| gender × skin | female × darker (small) | 2 | 16.7% | 16.7% |" in block
    # the LFW-style sentence: largest group of each attribute, share of all images (tie: first listed)
    assert "**66.7% male, 50.0% lighter**" in block
    # reference: lighter 6, darker 6 vs 1:1 -> chi2 = 0, p = 1
    assert "| skin | 0.000 | 1 | 1.000 | 1.000 | no |" in block
    # label x skin nPMI: circle = t00-t03, t07, t10 -> all lighter (6); square all darker (6).
    # p(circle, lighter) = 6/12, p(circle) = p(lighter) = 1/2 -> npmi = ln 2 / ln 2 = 1; never together -> -1
    assert "| circle | 1.000 (6) | -1.000 (0) |" in block
    # image statistics: constant images, grey 51 -> 0.2, grey 102 -> 0.4 (PIL's L of a grey RGB is the grey)
    # lighter images are all 51 -> brightness 0.200 ± 0.000, contrast 0, sharpness 0, 8x6
    assert "| skin | lighter | 6 | 0.200 ± 0.000 | 0.000 ± 0.000 | 0.000 ± 0.000 | 8×6 |" in block
    # split comparison with train (9 lighter, 1 darker): shares 50% vs 90%/10%
    assert "| skin | darker | 6 | 50.0% | 1 | 10.0% | -40.0% |" in block
    # unsafe labels are escaped in Markdown and HTML
    assert "&lt;b>x&lt;/b>" in block and "<b>x</b>" not in block
    html = (project["out"] / "dataset.html").read_text()
    assert "&lt;b&gt;x&lt;/b&gt;" in html and "<b>x</b>" not in html
    assert "66.7% male, 50.0% lighter" in html and "data:image/png" not in html
    # the chart is inline SVG, its labels escaped like the tables'
    assert '<figure class="share-chart"><svg xmlns="http://www.w3.org/2000/svg"' in html
    assert "<title>gender: &lt;b&gt;x&lt;/b&gt;: 8.3%</title>" in html
    assert "data:image/png;base64," in block  # Markdown viewers get a PNG
    doc = json.loads((project["out"] / "dataset.json").read_text())
    assert doc["sentence"] == "66.7% male, 50.0% lighter"
    # nominal groups in sorted order: '<b>x</b>' before 'female'
    assert doc["section"]["tables"][0]["rows"][:2] == [["gender", "<b>x</b> (small)", "1", "8.3%", "8.3%"],
                                                       ["gender", "female", "3", "25.0%", "25.0%"]]
    # the card still loads and validates
    assert load_any_data_card(card).name == "test"


def test_existing_markers_keep_their_place(project):
    card = project["card"]
    text = card.read_text()
    text = text.replace("## Uses", "<!-- audit:composition:start -->\nold\n<!-- audit:composition:end -->\n\n## Uses")
    card.write_text(text)
    before, after = text.split("old\n")
    assert main(["data-card", str(card), "--no-images", "-q"]) == 0
    new = card.read_text()
    assert new.startswith(before) and new.endswith(after) and "old\n" not in new
    assert "Image statistics" not in new


def test_malformed_front_matter_one_line_error(project, capsys):
    card = project["card"]
    card.write_text("---\nsplit: [unclosed\n---\n# Card\n", encoding="utf-8")
    assert main(["data-card", str(card)]) == 2
    err = capsys.readouterr().err
    assert err == f"error: {card}: invalid YAML front matter (line 3): expected ',' or ']', but got '<stream end>'\n"
    card.write_text("# no front matter\n", encoding="utf-8")
    assert main(["data-card", str(card)]) == 2
    assert capsys.readouterr().err == (
        f"error: {card}: expected YAML front matter between '---' lines at the top of the file, found none\n")


@pytest.mark.parametrize(("extra", "message"), [
    ("reference_population:\n  shares:\n    skin: {lighter: 0.5, darker: 0}\n",
     "field 'reference_population.shares.skin.darker': expected a positive number (share or count), found 0"),
    ("reference_population:\n  shares:\n    hair: {a: 1, b: 1}\n",
     "field 'reference_population.shares.hair': expected a declared attribute or intersection "
     "(gender, skin, gender × skin), found 'hair'"),
    ("reference_population:\n  shares:\n    gender: {male: 1, other: 1}\n",
     "field 'reference_population.shares': reference population 'gender': expected a weight for every observed "
     "group, found none for '<b>x</b>', 'female'"),
    ("compare_to: missing.md\n", "field 'compare_to': expected an existing data card, found"),
    ("compare_to: 3\n", "field 'compare_to': expected the path of another data card (.md), found 3"),
])
def test_bad_dataset_fields(project, capsys, extra, message):
    card = project["card"]
    card.write_text(CARD.format(manifest="../test/manifest.csv", extra=extra), encoding="utf-8")
    before = card.read_bytes()
    assert main(["data-card", str(card), "--no-images"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {card}: {message}") and err.count("\n") == 1
    assert card.read_bytes() == before  # nothing written


def test_broken_markers(project, capsys):
    card = project["card"]
    card.write_text(card.read_text() + "<!-- audit:composition:start -->\n", encoding="utf-8")
    assert main(["data-card", str(card), "--no-images"]) == 2
    assert capsys.readouterr().err == (
        f"error: {card}: expected a '<!-- audit:composition:start -->' line followed by a "
        "'<!-- audit:composition:end -->' line, found only the start\n")


def test_replace_section_positions():
    text = "# T\n\n## Composition\n\nx\n\n### Sub\n\ny\n\n## Uses\n\nz"
    new = replace_section(text, "composition", "S", command="c", heading="composition")
    # inserted before the next heading of the same or higher level, after the subsection
    assert new.index("<!-- audit:composition:start") > new.index("### Sub")
    assert new.index("<!-- audit:composition:end") < new.index("## Uses")
    assert strip_generated(new) == text
    appended = replace_section(text, "composition", "S", command="c", heading="Nope")
    assert appended.startswith(text) and appended.endswith("<!-- audit:composition:end -->\n")


def test_image_statistics_by_hand(tmp_path):
    # a 4x4 image with one bright pixel (255) in a black field:
    # brightness = 255/16/255 = 1/16; contrast = sd of {255 once, 0 x15}/255 = sqrt(15)/16
    # Laplacian on the inner 2x2 (pixel (1,1) = 255): at (1,1): -4*255, at (1,2) and (2,1): 255, at (2,2): 0
    # -> values {-1020, 255, 255, 0}: mean -127.5, deviations -892.5, 382.5, 382.5, 127.5
    #    variance = (796556.25 + 2 * 146306.25 + 16256.25) / 4 = 1105425 / 4 = 276356.25
    a = np.zeros((4, 4), dtype=np.uint8)
    a[1, 1] = 255
    Image.fromarray(a).save(tmp_path / "a.png")
    st = image_statistics([tmp_path / "a.png"]).iloc[0]
    assert st["brightness"] == pytest.approx(1 / 16)
    assert st["contrast"] == pytest.approx(np.sqrt(15) / 16)
    assert st["sharpness"] == pytest.approx(276356.25)
    assert (st["width"], st["height"], st["megapixels"]) == (4, 4, 16e-6)


def test_detection_card_box_statistics(tmp_path):
    coco = {
        "images": [{"id": 1, "file_name": "a.jpg", "width": 100, "height": 100},
                   {"id": 2, "file_name": "b.jpg", "width": 200, "height": 100}],
        "categories": [{"id": 1, "name": "person"}],
        "annotations": [
            # centred 20x20 box: area 0.04, distance 0
            {"id": 1, "image_id": 1, "category_id": 1, "bbox": [40, 40, 20, 20], "iscrowd": 0,
             "attributes": {"gender": "female"}},
            # 20x10 box at the top-left of 200x100: area 0.01, distance hypot(90, 45)/hypot(100, 50) = 0.9
            {"id": 2, "image_id": 2, "category_id": 1, "bbox": [0, 0, 20, 10], "iscrowd": 0,
             "attributes": {"gender": "male"}},
            {"id": 3, "image_id": 2, "category_id": 1, "bbox": [0, 0, 200, 100], "iscrowd": 1},
        ],
    }
    (tmp_path / "gt.json").write_text(json.dumps(coco))
    card = tmp_path / "det.md"
    card.write_text("---\nsplit:\n  coco: gt.json\nattributes:\n  gender: {column: gender}\n"
                    "min_group_size: 1\n---\n# Detection data\n", encoding="utf-8")
    result = audit_dataset(card)
    assert result.kind == "detection" and result.n == 2  # the crowd region is not a person
    boxes = result.boxes.set_index(["grouping", "group", "statistic"])
    assert boxes.loc[("gender", "female", "box_area_fraction"), "median"] == pytest.approx(0.04)
    assert boxes.loc[("gender", "male", "box_area_fraction"), "median"] == pytest.approx(0.01)
    assert boxes.loc[("gender", "male", "centre_distance"), "median"] == pytest.approx(0.9)
    assert boxes.loc[("gender", "female", "centre_distance"), "median"] == pytest.approx(0.0)
    md = section_markdown(result.section())
    assert "| gender | female | 1 | 0.040 [0.040, 0.040] | 0.000 [0.000, 0.000] |" in md
    assert "50.0% female" in md
    # `audit data-card` on a detection card: section written, data hash (cache key) unchanged
    from audit.tasks.detection.data import fingerprint_files

    before = fingerprint_files(card, tmp_path / "gt.json")
    assert main(["data-card", str(card), "-q"]) == 0
    assert "Person boxes per group (REVISE)" in card.read_text()
    assert fingerprint_files(card, tmp_path / "gt.json") == before


def test_report_section_in_index_html(project):
    """`audit run` puts the same section into index.html (predictions made elsewhere: no model needed)."""
    preds = project["root"] / "preds.csv"
    ids = [r[0] for r in TEST_ROWS]
    pd.DataFrame({"sample_id": ids, "pred": [r[1] for r in TEST_ROWS]}).to_csv(preds, index=False)
    out = project["out"]
    assert main(["run", "--predictions", str(preds), "--data", str(project["card"]), "--out", str(out),
                 "--n-boot", "20", "--n-perm", "20", "-q"]) == 0
    html = (out / "index.html").read_text()
    assert "Dataset audit: Tiny test split" in html and "66.7% male, 50.0% lighter" in html
    assert html.count("<!-- audit") == 0
    section = audit_dataset(project["card"]).section()
    for table in section["tables"]:
        assert f"<h3>{table['title']}" in html.replace("&#39;", "'").replace("&lt;", "<").replace("&gt;", ">") \
            or table["title"] in html


MODEL = """\
---
model_name: Tiny model
license: Apache-2.0
task: classification
model:
  entry_point: "tiny_model:tiny_cnn"
num_classes: 2
label_map: {0: circle, 1: square}
preprocessing: {resize: [8, 8], mean: [0.5], std: [0.5]}
---
# Model card

## Quantitative analyses

Written by a human.

## Caveats and recommendations

Keep this.
"""


def results_doc():
    from audit.pipeline import results_document
    from audit.stats import Attribute, audit_classification

    groups = pd.DataFrame({"gender": [r[2] if r[2] in ("male", "female") else "female" for r in TEST_ROWS],
                           "skin": [r[3] for r in TEST_ROWS]})
    y_true = np.array([0 if r[1] == "circle" else 1 for r in TEST_ROWS])
    y_pred = y_true.copy()
    y_pred[[0, 8]] = 1 - y_pred[[0, 8]]  # two errors: t00 (male, lighter), t08 (female, darker)
    result = audit_classification(y_true=y_true, y_pred=y_pred, groups=groups, classes=["circle", "square"],
                                  attributes=[Attribute("gender"), Attribute("skin", scale="fitzpatrick")],
                                  intersections=[("gender", "skin")], n_boot=20, n_perm=20, seed=0,
                                  min_group_size=3)
    prov = {"audit_version": "test", "data": {"card": "data_cards/test.md", "name": "test", "title": "Tiny test split",
                                              "n_samples": 12}, "settings": {"min_group_size": 3},
            "model": {"name": "tiny", "title": "Tiny model"}}
    return results_document(result, provenance=prov)


def test_model_card_update_round_trip_and_exports(tmp_path):
    from audit.model_card import update_model_card
    from audit.core.models import fingerprint_model
    from audit.core.card_loaders import load_model_card

    card = tmp_path / "model.md"
    card.write_bytes(MODEL.encode())
    before_hash = fingerprint_model(load_model_card(card))
    doc = results_doc()
    paths = update_model_card(card, doc, out_dir=tmp_path / "out")
    first = card.read_text()
    # human text (front matter and body) byte-identical outside the generated blocks
    assert strip_generated(first) == MODEL
    assert first.index("<!-- audit:quantitative-analyses.test:start") > first.index("Written by a human.")
    assert first.index("<!-- audit:quantitative-analyses.test:end -->") < first.index("## Caveats")
    # idempotent
    update_model_card(card, doc, out_dir=tmp_path / "out")
    assert card.read_text() == first
    # the prediction cache key ignores computed sections
    assert fingerprint_model(load_model_card(card)) == before_hash
    # unitary and intersectional results with intervals: overall accuracy 10/12
    acc = next(r for r in doc["results"]["metrics"] if r["grouping"] == "overall" and r["metric"] == "accuracy")
    assert acc["value"] == pytest.approx(10 / 12)
    assert f"| overall | all | 12 | {acc['value']:.3f} [{acc['lower']:.3f}, {acc['upper']:.3f}] |" in first
    assert "#### Unitary results" in first and "#### Intersectional results" in first
    assert re.search(r"\| gender × skin \| male × lighter \| 5 \| 0\.800 \[", first)
    # Hugging Face model-index in the front matter
    front, _ = read_front_matter(card)
    index = front["model-index"]
    assert index[0]["name"] == "Tiny model"
    result = index[0]["results"][0]
    assert result["task"]["type"] == "image-classification"
    assert result["dataset"] == {"name": "Tiny test split", "type": "test", "split": "test"}
    overall = next(m for m in result["metrics"] if m["type"] == "accuracy" and m["args"]["group"] == "all")
    assert overall["value"] == round(10 / 12, 4)
    assert overall["args"]["lower"] == round(acc["lower"], 4) and overall["args"]["n"] == 12
    assert any(m["args"]["grouping"] == "gender × skin" for m in result["metrics"])
    # Model Card Toolkit JSON
    mct = json.loads(paths["model_card_json"].read_text())
    perf = mct["quantitative_analysis"]["performance_metrics"]
    whole = next(p for p in perf if p["type"] == "accuracy" and "slice" not in p)
    assert float(whole["value"]) == pytest.approx(10 / 12, abs=1e-6)
    assert set(whole["confidence_interval"]) == {"lower_bound", "upper_bound"}
    assert any(p.get("slice") == "gender = male, skin = lighter" for p in perf)
    assert mct["model_details"]["licenses"] == [{"identifier": "Apache-2.0"}]
    # a second data set gets its own section and model-index result; the first stays
    doc2 = json.loads(json.dumps(doc))
    doc2["provenance"]["data"].update(name="other", title="Other split")
    update_model_card(card, doc2)
    text = card.read_text()
    assert "audit:quantitative-analyses.test:start" in text and "audit:quantitative-analyses.other:start" in text
    assert [r["dataset"]["type"] for r in read_front_matter(card)[0]["model-index"][0]["results"]] == ["other", "test"]
    assert strip_generated(text) == MODEL


def test_hand_written_model_index_is_refused(tmp_path):
    from audit.model_card import update_model_card

    card = tmp_path / "model.md"
    card.write_text(MODEL.replace("license: Apache-2.0\n", "license: Apache-2.0\nmodel-index: []\n"))
    before = card.read_bytes()
    with pytest.raises(CardError) as err:
        update_model_card(card, results_doc())
    assert str(err.value) == (
        f"{card}: field 'model-index': expected it only between the '# audit:model-index:start' and "
        "'# audit:model-index:end' lines (it is generated), found a hand-written one; delete it or wrap it in them")
    assert card.read_bytes() == before


def test_update_model_card_needs_a_model(project, capsys):
    assert main(["run", "--predictions", "x.csv", "--data", str(project["card"]), "--out", str(project["out"]),
                 "--update-model-card"]) == 2
    assert capsys.readouterr().err == (
        "error: audit run: expected --model with --update-model-card, found only --predictions\n")


def test_chart_geometry_by_hand_and_png_deterministic(project):
    chart = audit_dataset(project["card"], images=False).chart
    # labels "gender: <b>x</b>" (16 characters) is the longest: left = 6 * 16 + 10 = 106; right = 600 - 46 = 554;
    # 5 bars of 20 px from top 6: bottom 106, height 106 + 34 = 140
    assert (chart["width"], chart["height"], chart["plot"]) == (600, 140, (106, 6, 554, 106))
    bars = {b["label"]: b for b in chart["bars"]}
    # male: 8 of 12 -> 106 + (8/12) * 448 = 404.67, a bar 298.7 wide; skin's reference share 1/2 -> x = 330
    assert bars["gender: male"]["width"] == 298.7 and bars["gender: male"]["value"] == "66.7%"
    assert bars["skin: darker"]["reference_x"] == 330.0 and bars["gender: male"]["reference_x"] is None
    assert bars["gender: male"]["colour"] != bars["skin: darker"]["colour"]  # one colour per attribute
    a, b = chart_png(chart), chart_png(audit_dataset(project["card"], images=False).chart)
    assert a and a == b and base64.b64decode(a).startswith(b"\x89PNG")
    assert yaml.safe_load("a: 1")  # keep the yaml import honest
