"""The report's worst errors for detection and segmentation: people.parquet, the choice, the crops, escaping."""

from __future__ import annotations

import base64
import io
import json
import re
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from audit.cli import main
from audit.report import TaskInput, build_report, load_output, render_report, worst_people
from detection_helpers import FACET_COLUMNS, square_rle, write_facet_card
from report_helpers import EVIL

H, W = 48, 64
# (annotation id, image id, box, skin tones voted, gender, detection box or None)
PEOPLE = [
    (1, 1, [2.0, 4.0, 16.0, 30.0], (8, 9), "masc", [2.0, 4.0, 16.0, 30.0]),   # found
    (2, 1, [22.0, 4.0, 16.0, 30.0], (1, 2), "fem", [30.0, 4.0, 16.0, 30.0]),  # missed: IoU 240 / 720 = 1/3
    (3, 2, [2.0, 4.0, 16.0, 30.0], (1, 2), "masc", None),                     # missed: nothing near, IoU 0
    (4, 2, [42.0, 4.0, 16.0, 30.0], (8, 9), "fem", [42.0, 4.0, 16.0, 30.0]),  # found
]


def _split(root: Path, task: str = "detection") -> Path:
    """Two 64x48 images, four people: person 2 is missed with a box of IoU 1/3, person 3 with none."""
    from PIL import Image

    root.mkdir(parents=True, exist_ok=True)
    images = [{"id": i, "file_name": f"im{i}.png", "height": H, "width": W} for i in (1, 2)]
    for i in (1, 2):
        Image.fromarray(np.full((H, W, 3), 40 * i, np.uint8)).save(root / f"im{i}.png")
    anns, masks, rows, dets = [], [], [], []
    for pid, img, box, tones, gender, det in PEOPLE:
        ann = {"id": pid, "image_id": img, "category_id": 1, "bbox": box, "area": box[2] * box[3], "iscrowd": 0}
        anns.append(ann)
        masks.append({**ann, "segmentation": square_rle(H, W, *box)})
        row = {c: 0 for c in FACET_COLUMNS}
        row.update({"filename": f"im{img}.png", "person_id": pid, "class1": "doctor", "class2": "",
                    "bounding_box": json.dumps(dict(zip(["x", "y", "width", "height"], box)))})
        row[f"gender_presentation_{gender}"] = 1
        row["lighting_well_lit"] = 1
        for t in tones:
            row[f"skin_tone_{t}"] = 3
        rows.append(row)
        if det is not None:
            dets.append({"image_id": img, "category_id": 1, "bbox": det, "score": 0.9,
                         "segmentation": square_rle(H, W, *det)})
    cats = [{"id": 1, "name": "doctor"}]
    (root / "coco_boxes.json").write_text(json.dumps({"images": images, "annotations": anns, "categories": cats}))
    (root / "coco_masks.json").write_text(json.dumps({"images": images, "annotations": masks, "categories": cats}))
    pd.DataFrame(rows, columns=FACET_COLUMNS).to_csv(root / "annotations.csv", index=False)
    (root / "detections.json").write_text(json.dumps(dets))
    return write_facet_card(root, extra="" if task == "detection" else f"task: {task}\n")


def _run(tmp_path, *extra, task="detection"):
    card = _split(tmp_path / "split", task)
    out = tmp_path / ("out" + "".join(extra).replace("-", ""))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tiny groups warn
        code = main(["run", "--data", str(card), "--predictions", str(card.parent / "detections.json"),
                     "--out", str(out), "--n-boot", "10", "-q", *extra])
    assert code == 0
    return out


def _worst_section(html: str) -> str:
    return html[html.index('<section id="worst-errors">'):html.index('<section id="methodology">')]


def _pngs(html: str) -> list:
    from PIL import Image

    return [Image.open(io.BytesIO(base64.b64decode(b)))
            for b in re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', _worst_section(html))]


def test_detection_people_table_and_worst_errors(tmp_path):
    out = _run(tmp_path)
    people = pd.read_parquet(out / "people.parquet")
    assert people["annotation_id"].tolist() == [1, 2, 3, 4]
    assert people["file_name"].tolist() == ["im1.png", "im1.png", "im2.png", "im2.png"]
    assert people[["x", "y", "w", "h"]].iloc[1].tolist() == [22.0, 4.0, 16.0, 30.0]
    assert people["matched@0.50"].tolist() == [True, False, False, True]
    assert people["best_iou"].tolist() == pytest.approx([1.0, 1 / 3, 0.0, 1.0])
    assert people["group:gender_presentation"].tolist() == ["masc", "fem", "masc", "fem"]
    # skin tone is voted with votes: any -> every group one of the person's tones falls in (binned as the audit)
    assert [list(v) for v in people["group:skin_tone"]] == [["darker"], ["lighter"], ["lighter"], ["darker"]]

    task = load_output(out)
    report = build_report(task)
    worst = {(g.grouping, g.group): g for g in report.tasks[0].worst}
    lighter = worst[("skin_tone", "lighter")]
    assert lighter.n_errors == 2 and [i.sample_id for i in lighter.items] == ["3", "2"]  # IoU 0 before 1/3
    assert worst[("skin_tone", "darker")].n_errors == 0 and not worst[("skin_tone", "darker")].items
    assert [i.sample_id for i in worst[("gender_presentation", "fem")].items] == ["2"]
    assert ("gender_presentation × skin_tone", "fem × lighter") not in worst  # single attributes only
    html = (out / "index.html").read_text(encoding="utf-8")
    assert "box IoU 0.50" in _worst_section(html) and "Not available for this task" not in html
    # crops: a quarter of the box as margin, clipped to the 64x48 image: x 0..22 (person 3), 18..42 (person 2)
    crops = _pngs(html)
    assert [c.size for c in crops[:2]] == [(22, 42), (24, 42)]
    assert crops[0].getpixel((2, 4)) == (230, 97, 1)  # the box's corner is outlined
    assert crops[0].getpixel((10, 20)) == (80, 80, 80)  # inside: the image (im2 is grey 80)
    # the same output renders to the same bytes
    assert render_report(build_report(load_output(out))) == render_report(build_report(load_output(out)))


def test_detection_no_thumbnails_leaves_none(tmp_path):
    out = _run(tmp_path, "--no-thumbnails")
    html = (out / "index.html").read_text(encoding="utf-8")
    section = _worst_section(html)
    assert "data:image" not in section and "--no-thumbnails" in section
    assert "<code>3</code>" in section  # the person is still listed
    assert main(["report", str(out), "--no-thumbnails"]) == 0
    assert "data:image" not in _worst_section((out / "index.html").read_text(encoding="utf-8"))


def test_instance_segmentation_misses_decided_by_masks(tmp_path):
    out = _run(tmp_path, task="instance_segmentation")
    people = pd.read_parquet(out / "people.parquet")
    assert people["mask_matched@0.50"].tolist() == [True, False, False, True]
    assert people["mask_best_iou"].tolist() == pytest.approx([1.0, 1 / 3, 0.0, 1.0])
    html = (out / "index.html").read_text(encoding="utf-8")
    assert "mask IoU 0.50" in _worst_section(html)
    assert len(_pngs(html)) == 6  # persons 2 and 3 under lighter, fem, masc and well_lit


def test_worst_people_by_hand_and_escaped():
    people = pd.DataFrame({
        "annotation_id": [1, 2, 3, 4, 5], "image_id": [1, 1, 2, 2, 3], "file_name": ["a.png"] * 5,
        "x": 0.0, "y": 0.0, "w": 4.0, "h": 4.0,
        "matched@0.50": [False, False, True, False, False], "best_iou": [0.4, 0.1, 0.9, 0.4, 0.0],
        "group:group": ["g1", EVIL, "g1", "g1", "g2"]})
    out = worst_people(people, per_group=2, order={"group": ["g2", "g1"]})
    assert [(g["group"], g["n_errors"]) for g in out] == [("g2", 1), ("g1", 2), (EVIL, 1)]
    assert [r["annotation_id"] for r in out[1]["items"]] == [1, 4]  # tie at 0.4: image 1 before image 2
    from audit.report._examples import detection_example

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        doc = json.loads(json.dumps(detection_example(n_images=20, n_boot=10)))
    html = render_report(build_report(TaskInput(doc, people=people)))
    assert EVIL not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in _worst_section(html)
