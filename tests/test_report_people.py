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
from audit.core.people_report import worst_people
from audit.report import TaskInput, build_report, load_output, render_report
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
    # the best-overlapping detection's box: person 2's is the detection at x=30; person 3 has none
    assert people[["best_x", "best_y", "best_w", "best_h"]].iloc[1].tolist() == [30.0, 4.0, 16.0, 30.0]
    assert people[["best_x", "best_y", "best_w", "best_h"]].iloc[2].isna().all()
    assert people["group:gender_presentation"].tolist() == ["masc", "fem", "masc", "fem"]
    # skin tone is voted with votes: any -> every group one of the person's tones falls in (binned as the audit)
    assert [list(v) for v in people["group:skin_tone"]] == [["darker"], ["lighter"], ["lighter"], ["darker"]]

    task = load_output(out)
    report = build_report(task)
    worst = {(g.grouping, g.group): g for g in report.tasks[0].examples}
    lighter = worst[("skin_tone", "lighter")]
    assert lighter.n_errors == 2 and [i.sample_id for i in lighter.items] == ["3", "2"]  # IoU 0 before 1/3
    assert worst[("skin_tone", "darker")].n_errors == 0 and not worst[("skin_tone", "darker")].items
    assert [i.sample_id for i in worst[("gender_presentation", "fem")].items] == ["2"]
    assert ("gender_presentation × skin_tone", "fem × lighter") not in worst  # single attributes only
    html = (out / "index.html").read_text(encoding="utf-8")
    assert "box IoU 0.50" in _worst_section(html) and "Not available for this task" not in html
    # crops: a quarter of the box as margin, clipped to the 64x48 image: x 0..22 (person 3), 18..42 (person 2)
    crops = _pngs(html)
    # person 2: the crop covers the ground truth (x 22..38) and the best detection (x 30..46), union x 22..46,
    # y 4..34, margins a quarter of that (6, 7.5): x 16..52, y 0..42 (clipped at the top)
    assert [c.size for c in crops[:2]] == [(22, 42), (36, 42)]
    assert crops[0].getpixel((2, 4)) == (230, 97, 1)  # the box's corner is outlined
    assert crops[0].getpixel((10, 20)) == (80, 80, 80)  # inside: the image (im2 is grey 80)
    assert crops[1].getpixel((22 - 16, 4)) == (230, 97, 1)  # ground truth: orange
    assert crops[1].getpixel((46 - 16 - 1, 20)) == (0, 114, 178)  # the best detection's right edge: blue
    assert crops[1].getpixel((40 - 16, 20)) == (40, 40, 40)  # between them: the image (im1 is grey 40)
    captions = {i.sample_id: i.lines for i in lighter.items}
    assert captions["2"] == ["image im1.png", "orange: ground truth", "blue: best detection, box IoU 0.333"]
    assert captions["3"] == ["image im2.png", "best box IoU 0.000"]  # nothing overlaps: no second box
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


def _segmentation_run(tmp_path, *extra):
    """The segmentation fixture with two darker people missed: img01 wholly (IoU 0), img03 by 3/4 (IoU 8/32)."""
    from PIL import Image

    from test_segmentation_e2e import make_split

    split = make_split(tmp_path)
    for sid, keep_rows in (("img01", 0), ("img03", 2)):
        pred = np.array(Image.open(split["pred"] / f"{sid}.png"))
        person = np.array(Image.open(split["data"] / "people" / f"{sid}_p0.png")) > 0
        ys = np.flatnonzero(person.any(1))
        drop = person.copy()
        drop[ys[len(ys) - keep_rows:]] = False  # the person's last rows stay found
        pred[drop] = 0
        Image.fromarray(pred).save(split["pred"] / f"{sid}.png")
    out = tmp_path / "out"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        code = main(["run", "-q", "--n-boot", "10", "--predictions", str(split["pred"]), "--data",
                     str(split["card"]), "--out", str(out), *extra])
    assert code == 0
    return split, out


def test_semantic_segmentation_worst_people_and_recall_by_size(tmp_path):
    import jsonschema
    from PIL import Image

    from audit.pipeline import load_results_schema

    split, out = _segmentation_run(tmp_path)
    people = pd.read_parquet(out / "people.parquet")
    assert people["image_id"].tolist()[:4] == ["img00", "img01", "img02", "img03"]
    assert people["file_name"].iloc[1] == "images/img01.png"  # relative to the card's image_root
    mask = np.array(Image.open(split["data"] / "people" / "img03_p0.png")) > 0
    ys, xs = np.nonzero(mask)
    assert people[["x", "y", "w", "h"]].iloc[3].tolist() == [xs.min(), ys.min(), 4.0, 8.0]
    assert people["area"].iloc[3] == 32
    assert people["best_iou"].iloc[:4].tolist() == pytest.approx([1.0, 0.0, 1.0, 8 / 32])
    assert people["matched@0.50"].iloc[:4].tolist() == [True, False, True, False]
    # the predicted person pixels on each person: img03 keeps its last 2 of 8 mask rows (x, y + 6, 4 wide, 2 high);
    # img01 has none left
    assert people[["best_x", "best_y", "best_w", "best_h"]].iloc[3].tolist() == [xs.min(), ys.min() + 6, 4.0, 2.0]
    assert people[["best_x", "best_y", "best_w", "best_h"]].iloc[1].isna().all()

    report = build_report(load_output(out))
    worst = {(g.grouping, g.group): g for g in report.tasks[0].examples}
    darker = worst[("skin_type", "darker")]
    assert darker.n_errors == 2 and [i.sample_id for i in darker.items] == ["2", "4"]  # IoU 0 before 0.25
    assert darker.items[1].lines[1:] == ["orange: ground truth", "blue: predicted person pixels on them, mask IoU 0.250"]
    assert darker.items[0].lines[1:] == ["mask IoU 0.000"]  # nothing predicted on them: one box
    assert worst[("skin_type", "lighter")].n_errors == 0
    html = (out / "index.html").read_text(encoding="utf-8")
    assert "mask IoU with the predicted person region is below 0.50" in _worst_section(html)
    # the crop: the 4x8 mask box with 4 px of margin, clipped to the 16x16 image
    x, y = int(xs.min()), int(ys.min())
    expected = (min(x + 8, 16) - max(x - 4, 0), min(y + 12, 16) - max(y - 4, 0))
    assert _pngs(html)[1].size == expected

    # recall by person size: every mask is 32 px (< 32²), so tertiles; all fall in the lower third
    document = json.loads((out / "results.json").read_text())
    jsonschema.validate(document, load_results_schema())
    bins = document["results"]["config"]["people"]["size_bins"]
    assert bins["method"] == "tertiles" and bins["labels"] == ["lower_third"] and bins["edges"] == [32.0, 32.0]
    rows = pd.DataFrame(document["results"]["metrics"]).query("metric == 'person_recall@0.50_lower_third'")
    assert rows.set_index("group")["value"].to_dict() == pytest.approx({"all": 14 / 16, "lighter": 1.0,
                                                                         "darker": 6 / 8})
    chart = report.tasks[0].charts("Recall by object size")[0]
    assert [len(s.points) for s in chart.series] == [1, 1, 1] and "person mask area (tertiles)" in html
    assert "area tertiles instead of COCO" in html


def test_semantic_segmentation_no_thumbnails(tmp_path):
    _, out = _segmentation_run(tmp_path, "--no-thumbnails")
    section = _worst_section((out / "index.html").read_text(encoding="utf-8"))
    assert "data:image" not in section and "--no-thumbnails" in section and "<code>2</code>" in section


def test_person_size_bins_by_hand():
    from audit.stats import person_size_bins, person_statistics

    bins, info = person_size_bins([500, 1023, 1024, 9215, 9216, 20000])
    assert info["method"] == "coco" and bins.tolist() == [0, 0, 1, 1, 2, 2]  # 32² = 1024 is medium, 96² large
    bins, info = person_size_bins([10, 20, 30, 40, 50, 60])
    assert info["method"] == "tertiles" and info["edges"] == pytest.approx([80 / 3, 130 / 3])
    assert bins.tolist() == [0, 0, 1, 1, 2, 2]
    # IoUs 0.6, 0.4 | 0.9, 0.2 | 0.5, 0.0 by COCO size -> recall@0.50 of 1/2 per size; an empty union is left out
    stats, metrics, info = person_statistics([6, 4, 9, 2, 5, 0, 0], [10, 10, 10, 10, 10, 10, 0],
                                             area=[100, 200, 2000, 3000, 10000, 12000, 50])
    assert info["present"] == ["small", "medium", "large"]
    for size in info["present"]:
        (num, den), = metrics[f"person_recall@0.50_{size}"]
        assert stats[num].sum() / stats[den].sum() == pytest.approx(0.5) and stats[den].sum() == 2


def test_semantic_segmentation_without_people_worst_images(tmp_path):
    from PIL import Image

    from test_segmentation_e2e import make_split

    split = make_split(tmp_path, people=False)
    pred = np.array(Image.open(split["pred"] / "img05.png"))
    pred[pred == 2] = 0  # img05 (dim) loses its car too: the lowest mIoU of its group
    Image.fromarray(pred).save(split["pred"] / "img05.png")
    out = tmp_path / "out"
    out.mkdir()
    pd.DataFrame({"annotation_id": [1]}).to_parquet(out / "people.parquet")  # left by an earlier audit
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert main(["run", "-q", "--n-boot", "10", "--predictions", str(split["pred"]), "--data",
                     str(split["card"]), "--out", str(out)]) == 0
    assert not (out / "people.parquet").exists()  # removed: it described other people
    images = pd.read_parquet(out / "images.parquet")
    assert images["image_id"].iloc[5] == "img05" and images["group:lighting"].iloc[5] == "dim"
    report = build_report(load_output(out))
    worst = {(g.grouping, g.group): g for g in report.tasks[0].examples}
    dim = worst[("lighting", "dim")]
    assert dim.n_errors == 8 and dim.items[0].sample_id == "img05" and len(dim.items) == 4
    html = (out / "index.html").read_text(encoding="utf-8")
    assert "No person masks in this split" in html
    assert [im.size for im in _pngs(html)] == [(16, 16)] * 8  # whole 16x16 images, 4 per group
