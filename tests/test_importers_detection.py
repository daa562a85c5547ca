"""`audit import` for the detection data sets: FACET (three cards) and MIAP, in their published layouts.

Fixtures are written by tests/importer_helpers.py: FACET's annotations.csv
with its real vote columns, coco_boxes.json (annotation id = person_id),
coco_masks.json (person/clothing/hair masks with facet_person_id); MIAP's
boxes CSV with the real header and encodings, the .lst image list and
generated JPEGs whose sizes the importer reads.
"""

from __future__ import annotations

import json

import pandas as pd
import pytest

from audit.cli import main
from audit.tasks.detection.cards import load_detection_data_card
from audit.tasks.detection.data import load_ground_truth
from audit.tasks.detection.people import card_people

from importer_helpers import FACET_CLASSES, MIAP_IMAGES, MIAP_TEST, facet, miap


def _audit(tmp_path, card, detections, capsys, name="report"):
    results = tmp_path / f"{name}.json"
    results.write_text(json.dumps(detections))
    out = tmp_path / name
    code = main(["run", "--data", str(card), "--predictions", str(results), "--out", str(out), "--n-boot", "20",
                 "--n-perm", "20", "-q"])
    assert code == 0, capsys.readouterr().err
    rows = pd.DataFrame(json.loads((out / "results.json").read_text())["results"]["metrics"])
    return lambda metric, grouping, group: rows.query(  # noqa: E731
        "metric == @metric and grouping == @grouping and group == @group")["value"].iloc[0]


# ---------------------------------------------------------------------------
# FACET
# ---------------------------------------------------------------------------


def test_facet_detection_card_reads_the_published_files_in_place(tmp_path, monkeypatch, capsys):
    root = facet(tmp_path / "facet")
    monkeypatch.setenv("FACET_ROOT", str(root))
    card = tmp_path / "cards" / "facet_detection.md"
    assert main(["import", "facet", "${FACET_ROOT}", "--out", str(card)]) == 0
    out = capsys.readouterr().out
    assert "5 people" in out
    assert sorted(p.name for p in card.parent.iterdir()) == ["facet_detection.md"]
    text = card.read_text()
    assert "coco: '${FACET_ROOT}/annotations/coco_boxes.json'" in text
    assert "attributes: '${FACET_ROOT}/annotations/annotations.csv'" in text
    assert "image_root: ${FACET_ROOT}/images" in text
    # votes: person 1 {1: 3, 2: 2}, 2 {7: 1, 8: 3, 9: 2}, 3 {4: 2, 5: 3, 6: 1}, 4 na only, 5 {9: 3, 10: 3}
    assert "- `skin_tone`: 1 1, 2 1, 3 0, 4 1, 5 1, 6 1, 7 1, 8 1, 9 2, 10 1, unknown 1." in text  # any vote
    # majority 1, 8, 5, (none), tie 9/10 -> 9: lighter 1 and 5, darker 8 and 9
    assert "- `skin_tone_bin`: lighter 2, darker 2, unknown 1." in text
    assert "- `gender_presentation`: masc 2, fem 1, non_binary 1, unknown 1." in text
    for section in ("## Composition", "## Collection process", "## Labelling protocol", "## Licence",
                    "## Known biases and limits", "## How votes become groups"):
        assert section in text

    parsed = load_detection_data_card(card)
    assert parsed.coco == root / "annotations" / "coco_boxes.json" and parsed.image_root == root / "images"
    assert [(a.name, a.votes) for a in parsed.attributes][:2] == [("skin_tone", "any"), ("skin_tone_bin", "majority")]
    gt = load_ground_truth(parsed.coco)
    people, groups = card_people(parsed, gt)
    assert groups.iloc[0].to_dict() == {"skin_tone": (1, 2), "skin_tone_bin": 1, "gender_presentation": "fem",
                                        "age_presentation": "middle", "lighting": "well_lit"}

    boxes = json.loads((root / "annotations" / "coco_boxes.json").read_text())
    found = [{"image_id": a["image_id"], "category_id": 1, "bbox": a["bbox"], "score": 0.9}
             for a in boxes["annotations"] if a["id"] != 2]  # person 2 (masc, MST 7-9) is missed
    get = _audit(tmp_path, card, found, capsys)
    assert get("recall@0.50", "overall", "all") == pytest.approx(4 / 5)
    assert get("recall@0.50", "gender_presentation", "fem") == 1.0
    assert get("recall@0.50", "gender_presentation", "masc") == pytest.approx(1 / 2)
    assert get("recall@0.50", "skin_tone", "8") == 0.0 and get("recall@0.50", "skin_tone", "1") == 1.0


def test_facet_images_in_several_folders_get_a_ground_truth_copy_with_their_paths(tmp_path, monkeypatch):
    from audit.importers import import_dataset

    root = facet(tmp_path / "facet", image_dirs=("imgs_1", "imgs_2"))
    monkeypatch.setenv("FACET_ROOT", str(root))
    result = import_dataset("facet", "${FACET_ROOT}", tmp_path / "facet_detection.md")
    copy = json.loads((tmp_path / "facet_detection.json").read_text())
    assert [im["file_name"] for im in copy["images"]] == ["imgs_1/sa_1.jpg", "imgs_2/sa_2.jpg", "imgs_1/sa_3.jpg"]
    assert copy["annotations"] == json.loads((root / "annotations" / "coco_boxes.json").read_text())["annotations"]
    assert "image_root: ${FACET_ROOT}\n" in result.card.read_text()
    assert result.n_samples == 5


def test_facet_instance_segmentation_keeps_people_with_a_person_mask(tmp_path, monkeypatch, capsys):
    root = facet(tmp_path / "facet")
    monkeypatch.setenv("FACET_ROOT", str(root))
    card = tmp_path / "cards" / "facet_instance_segmentation.md"
    assert main(["import", "facet", "${FACET_ROOT}", "--out", str(card), "--split", "instance_segmentation"]) == 0
    out = capsys.readouterr().out
    assert "4 people with a person mask in coco_masks.json; 1 without one are not in this card" in out
    gt_copy = json.loads((card.parent / "facet_instance_segmentation.json").read_text())
    assert [a["id"] for a in gt_copy["annotations"]] == [1, 2, 3, 4]
    people = pd.read_csv(card.parent / "facet_instance_segmentation_people.csv")
    published = pd.read_csv(root / "annotations" / "annotations.csv")
    pd.testing.assert_frame_equal(people, published[published["person_id"] != 5].reset_index(drop=True))
    parsed = load_detection_data_card(card)
    assert parsed.front_matter["task"] == "instance_segmentation" and parsed.masks == parsed.coco
    gt = load_ground_truth(parsed.coco, masks=parsed.masks, need_masks=True)
    assert gt.has_masks and len(gt.boxes.segmentation) == 4
    detections = [{"image_id": a["image_id"], "category_id": 1, "bbox": a["bbox"], "segmentation": a["segmentation"],
                   "score": 0.8} for a in gt_copy["annotations"]]
    get = _audit(tmp_path, card, detections, capsys)
    assert get("mask_ar", "overall", "all") == 1.0


def test_facet_classification_card_one_row_per_person_from_the_votes(tmp_path, monkeypatch, capsys):
    root = facet(tmp_path / "facet")
    monkeypatch.setenv("FACET_ROOT", str(root))
    card = tmp_path / "cards" / "facet_classification.md"
    assert main(["import", "facet", "${FACET_ROOT}", "--out", str(card), "--split", "classification"]) == 0
    capsys.readouterr()
    manifest = pd.read_csv(card.parent / "facet_classification.csv", dtype=str, keep_default_na=False)
    assert manifest.iloc[1].to_dict() == {
        "person_id": "2", "image": "images/sa_1.jpg", "class1": "nurse", "class2": "doctor", "gender_presentation":
        "masc", "skin_tone": "8", "age_presentation": "young", "lighting": "well_lit"}
    assert manifest["skin_tone"].tolist() == ["1", "8", "5", "", "9"]  # na only -> missing -> unknown
    text = card.read_text()
    assert f"classes: [{', '.join(FACET_CLASSES)}]" in text and "label_column: class1" in text
    assert "- `label`: doctor 1, guitarist 2, nurse 1, skateboarder 1." in text
    assert "- `skin_tone_bin`: lighter 2, darker 2, unknown 1." in text
    preds = tmp_path / "p.csv"
    pd.DataFrame({"sample_id": manifest["person_id"], "pred": manifest["class1"]}).to_csv(preds, index=False)
    code = main(["run", "--data", str(card), "--predictions", str(preds), "--out", str(tmp_path / "r"),
                 "--n-boot", "20", "--n-perm", "20", "-q"])
    assert code == 0, capsys.readouterr().err


def test_facet_bad_vote_and_missing_column_are_one_line(tmp_path, capsys):
    root = facet(tmp_path / "facet")
    path = root / "annotations" / "annotations.csv"
    table = pd.read_csv(path, dtype=str, keep_default_na=False)
    table.loc[2, "skin_tone_5"] = "three"
    table.to_csv(path, index=False)
    assert main(["import", "facet", str(root), "--out", str(tmp_path / "c.md")]) == 2
    assert capsys.readouterr().err == (f"error: {path}: row 3 (person_id 3): field 'skin_tone_5': expected a vote "
                                       "count (0 or more), found 'three'\n")
    table.drop(columns=["skin_tone_5", "lighting_well_lit"]).to_csv(path, index=False)
    assert main(["import", "facet", str(root), "--out", str(tmp_path / "c.md")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {path}: expected FACET's columns (person_id, filename, class1, class2, ")
    assert err.endswith("found them without skin_tone_5, lighting_well_lit\n")


# ---------------------------------------------------------------------------
# MIAP
# ---------------------------------------------------------------------------


def test_miap_boxes_to_pixels_crowds_and_unknown_group(tmp_path, monkeypatch, capsys):
    root = miap(tmp_path / "miap")
    monkeypatch.setenv("MIAP_ROOT", str(root))
    card = tmp_path / "cards" / "miap_test.md"
    assert main(["import", "miap", "${MIAP_ROOT}", "--out", str(card)]) == 0
    out = capsys.readouterr().out
    assert "3 images, 5 boxes, of which 1 IsGroupOf boxes are crowd regions" in out
    coco = json.loads((card.parent / "miap_test.json").read_text())
    assert [(im["file_name"], im["width"], im["height"]) for im in coco["images"]] == \
        [(f"images/{i}.jpg", w, h) for i, (w, h) in MIAP_IMAGES.items()]
    first, _, crowd, fourth, _ = coco["annotations"]
    # 40x20 image: XMin 0.1, XMax 0.5, YMin 0.2, YMax 0.9 -> x 4, y 4, w 16, h 14
    assert first["bbox"] == [4.0, 4.0, 16.0, 14.0] and first["iscrowd"] == 0
    assert first["attributes"]["gender_presentation"] == "Predominantly Feminine"
    assert crowd["iscrowd"] == 1 and crowd["attributes"]["gender_presentation"] is None
    assert fourth["attributes"] == {"gender_presentation": None, "age_presentation": "Older", "IsOccluded": 0,
                                    "IsTruncated": 0, "IsGroupOf": 0, "IsDepictionOf": 1, "IsInsideOf": 0}
    text = card.read_text()
    assert "- `gender_presentation`: Predominantly Feminine 1, Predominantly Masculine 2, unknown 1." in text
    assert "- `age_presentation`: Young 1, Middle 1, Older 1, unknown 1." in text
    assert "0 of 3 listed images not found" in text

    # the crowd box is not a person to find, and a detection on it is no false positive
    found = [{"image_id": a["image_id"], "category_id": 1, "bbox": a["bbox"], "score": 0.9}
             for a in coco["annotations"] if a["id"] != 2]
    get = _audit(tmp_path, card, found, capsys)
    assert get("recall@0.50", "overall", "all") == pytest.approx(3 / 4)
    assert get("recall@0.50", "gender_presentation", "Predominantly Masculine") == pytest.approx(1 / 2)
    assert get("recall@0.50", "gender_presentation", "unknown") == 1.0


def test_miap_images_not_downloaded_are_listed_and_counted(tmp_path, monkeypatch, capsys):
    root = miap(tmp_path / "miap", images_dir="test")  # the list's split folder also works
    (root / "test" / "000c4d66ce89aa69.jpg").unlink()
    card = tmp_path / "miap_test.md"
    assert main(["import", "miap", str(root), "--out", str(card)]) == 0
    out = capsys.readouterr().out
    assert "1 of 3 listed images not found (set aside with their 1 boxes, listed in " \
           "miap_test_missing_images.txt)" in out
    assert (tmp_path / "miap_test_missing_images.txt").read_text() == "test/000c4d66ce89aa69\n"
    assert json.loads((tmp_path / "miap_test.json").read_text())["images"][0]["file_name"] == \
        "test/0002ab0af02e4a77.jpg"


def test_miap_bad_rows_are_one_line(tmp_path, capsys):
    root = miap(tmp_path / "miap")
    path = root / "open_images_extended_miap_boxes_test.csv"
    path.write_text(MIAP_TEST.replace("Predominantly Feminine,Middle", "Female,Middle"))
    assert main(["import", "miap", str(root), "--out", str(tmp_path / "c.md")]) == 2
    assert capsys.readouterr().err == (
        f"error: {path}: row 1 (ImageID '0002ab0af02e4a77'): field 'GenderPresentation': expected one of "
        "Predominantly Feminine, Predominantly Masculine, Unknown, found 'Female'\n")
    path.write_text(MIAP_TEST.replace("0.5,0.95,0.1,0.8", "0.5,0.45,0.1,0.8"))
    assert main(["import", "miap", str(root), "--out", str(tmp_path / "c.md")]) == 2
    assert capsys.readouterr().err == (
        f"error: {path}: row 2 (ImageID '0002ab0af02e4a77'): field 'XMax': expected a value >= XMin (0.5), "
        "found '0.45'\n")


def test_detection_card_with_the_variable_unset_is_one_line(tmp_path, monkeypatch, capsys):
    root = facet(tmp_path / "facet")
    monkeypatch.setenv("FACET_ROOT", str(root))
    card = tmp_path / "facet_detection.md"
    assert main(["import", "facet", "${FACET_ROOT}", "--out", str(card), "-q"]) == 0
    monkeypatch.delenv("FACET_ROOT")
    (tmp_path / "d.json").write_text("[]")
    assert main(["run", "--data", str(card), "--predictions", str(tmp_path / "d.json"), "--out",
                 str(tmp_path / "r")]) == 2
    assert capsys.readouterr().err == (
        f"error: {card}: field 'split.coco': expected the environment variable FACET_ROOT to be set to the data "
        "set's root directory, found it not set (export FACET_ROOT=/path/to/the/data/set)\n")


def test_facet_semantic_segmentation_label_and_instance_masks(tmp_path, monkeypatch, capsys):
    import numpy as np
    from PIL import Image

    root = facet(tmp_path / "facet")
    monkeypatch.setenv("FACET_ROOT", str(root))
    card = tmp_path / "cards" / "facet_semantic_segmentation.md"
    assert main(["import", "facet", "${FACET_ROOT}", "--out", str(card), "--split", "semantic_segmentation"]) == 0
    out = capsys.readouterr().out
    assert "3 images with 4 masked people (the groups above count them); people without a person mask: 1 (their 1 " \
           "boxes in these images are ignored pixels, 255)" in out
    masks = card.parent / "facet_semantic_segmentation_masks"
    images = pd.read_csv(card.parent / "facet_semantic_segmentation.csv")
    assert images.iloc[0].to_dict() == {"image_id": "sa_1", "image": "images/sa_1.jpg",
                                        "mask": str(masks / "labels" / "sa_1.png")}
    # sa_3: person 4 has a mask (box 2,2,15,20), person 5 has none (box 20,4,25,24): its box is ignored
    label = np.asarray(Image.open(masks / "labels" / "sa_3.png"))
    assert label.shape == (30, 50) and label[10, 10] == 1 and label[10, 30] == 255 and label[28, 48] == 0
    instance = np.asarray(Image.open(masks / "instances" / "sa_1.png"))
    assert instance[10, 10] == 1 and instance[10, 40] == 2 and instance[45, 60] == 0
    people = pd.read_csv(card.parent / "facet_semantic_segmentation_people.csv", dtype=str, keep_default_na=False)
    assert people.iloc[1].to_dict() == {
        "person_id": "2", "image_id": "sa_1", "mask": str(masks / "instances" / "sa_1.png"), "instance": "2",
        "gender_presentation": "masc", "skin_tone": "8", "age_presentation": "young", "lighting": "well_lit"}
    text = card.read_text()
    assert "classes: [background, person]" in text and "image_root: ${FACET_ROOT}" in text
    assert "- `gender_presentation`: masc 2, fem 1, non_binary 0, unknown 1." in text

    predicted = tmp_path / "predicted"
    predicted.mkdir()
    for f in (masks / "labels").iterdir():
        m = np.asarray(Image.open(f)).copy()
        m[m == 255] = 0
        if f.stem == "sa_1":
            m[:, :28] = 0  # person 1 (fem, x 4..24) is missed entirely
        Image.fromarray(m, mode="L").save(predicted / f.name)
    code = main(["run", "--data", str(card), "--predictions", str(predicted), "--out", str(tmp_path / "r"),
                 "--n-boot", "20", "--n-perm", "20", "-q"])
    assert code == 0, capsys.readouterr().err
    rows = pd.DataFrame(json.loads((tmp_path / "r" / "results.json").read_text())["results"]["metrics"])
    iou = rows.query("metric == 'person_iou' and grouping == 'gender_presentation'").set_index("group")["value"]
    assert iou["fem"] == 0.0 and iou["masc"] == 1.0
