"""The panoptic task's report: people.parquet by hand, the missed people as crops, the worst images by PQ, the
display names, and the page re-rendered from the output directory."""

from __future__ import annotations

import base64
import io
import json
import re
from html import unescape

import numpy as np
import pandas as pd
import pytest

from audit.cli import main
from audit.report import build_report, load_output
from panoptic_helpers import write_panoptic_json

H, W = 24, 32
ORANGE, BLUE = (230, 97, 1), (0, 114, 178)


def _split(tmp_path):
    """Two images, four people on sky. Image 1 (well_lit): A found, B missed (a person predicted 3 columns to the
    right: IoU 30 / 90 = 1/3). Image 2 (dim): C missed (predicted as sky), D found. A, D lighter; B, C darker."""
    from PIL import Image

    boxes = {1: (2, 2, 6, 10), 2: (14, 2, 6, 10), 3: (2, 4, 6, 10), 4: (20, 4, 6, 10)}  # x, y, w, h

    def paint(id_map, sid, x, y, w, h):
        id_map[y:y + h, x:x + w] = sid

    gts, preds = {1: np.full((H, W), 100), 2: np.full((H, W), 100)}, {1: np.full((H, W), 200), 2: np.full((H, W), 200)}
    for sid, image in ((1, 1), (2, 1), (3, 2), (4, 2)):
        paint(gts[image], sid, *boxes[sid])
    paint(preds[1], 11, *boxes[1])
    paint(preds[1], 12, 17, 2, 6, 10)  # B shifted by 3 columns
    paint(preds[2], 14, *boxes[4])
    person, sky = {"category_id": 1, "iscrowd": 0}, {"category_id": 4, "iscrowd": 0}
    gt_segments = {1: [{"id": 100, **sky}, {"id": 1, **person}, {"id": 2, **person}],
                   2: [{"id": 100, **sky}, {"id": 3, **person}, {"id": 4, **person}]}
    pred_segments = {1: [{"id": 200, **sky}, {"id": 11, **person}, {"id": 12, **person}],
                     2: [{"id": 200, **sky}, {"id": 14, **person}]}
    write_panoptic_json(tmp_path / "panoptic.json", tmp_path / "panoptic", gts, gt_segments)
    write_panoptic_json(tmp_path / "preds.json", tmp_path / "preds", preds, pred_segments, with_images=False)
    doc = json.loads((tmp_path / "panoptic.json").read_text())
    (tmp_path / "photos").mkdir()
    for image in doc["images"]:
        image["file_name"] = f"photos/{image['id']}.png"
        Image.fromarray(np.full((H, W, 3), 40 * image["id"], np.uint8)).save(tmp_path / image["file_name"])
    (tmp_path / "panoptic.json").write_text(json.dumps(doc))
    pd.DataFrame({"image_id": [1, 1, 2, 2], "segment_id": [1, 2, 3, 4],
                  "skin": ["lighter", "darker", "darker", "lighter"]}).to_csv(tmp_path / "people.csv", index=False)
    pd.DataFrame({"image_id": [1, 2], "lighting": ["well_lit", "dim"]}).to_csv(tmp_path / "images.csv", index=False)
    (tmp_path / "card.md").write_text(
        "---\ntask: panoptic_segmentation\nimage_root: .\nsplit:\n  panoptic: panoptic.json\n  attributes: people.csv\n"
        "  image_attributes: images.csv\nattributes:\n  skin: {column: skin}\n  lighting: {column: lighting}\nimage_groups:\n  attributes:\n"
        "    lighting: {column: lighting}\nmin_group_size: 1\n---\n# Four people\n")
    return boxes


def _run(tmp_path, *extra):
    boxes = _split(tmp_path)
    out = tmp_path / "out"
    assert main(["run", "-q", "--n-boot", "20", "--data", str(tmp_path / "card.md"), "--predictions",
                 str(tmp_path / "preds.json"), "--out", str(out), *extra]) == 0
    return out, boxes


def _pngs(html: str) -> list:
    from PIL import Image

    section = html[html.index('<section id="worst-errors">'):html.index('<section id="methodology">')]
    return [Image.open(io.BytesIO(base64.b64decode(b)))
            for b in re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', section)]


def test_people_table_by_hand(tmp_path):
    out, boxes = _run(tmp_path)
    people = pd.read_parquet(out / "people.parquet")
    assert people["person"].tolist() == ["1/1", "1/2", "2/3", "2/4"]
    assert people["file_name"].tolist() == ["photos/1.png", "photos/1.png", "photos/2.png", "photos/2.png"]
    assert people[["x", "y", "w", "h"]].to_numpy().tolist() == [list(boxes[k]) for k in (1, 2, 3, 4)]
    assert people["matched"].tolist() == [True, False, False, True]
    assert people["best_iou"].tolist() == pytest.approx([1.0, 1 / 3, 0.0, 1.0])
    assert people["iou"].tolist() == pytest.approx([1.0, 0.0, 0.0, 1.0])
    assert people[["best_x", "best_y", "best_w", "best_h"]].iloc[1].tolist() == [17, 2, 6, 10]
    assert people[["best_x", "best_y", "best_w", "best_h"]].iloc[2].isna().all()  # nothing of its category on C
    assert people["owned_fp"].tolist() == [0, 1, 0, 0]  # the shifted prediction belongs to B
    assert people["group:skin"].tolist() == ["lighter", "darker", "darker", "lighter"]
    images = pd.read_parquet(out / "images.parquet")
    assert images["group:lighting"].tolist() == ["well_lit", "dim"]


def test_report_tables_names_crops_and_worst_images(tmp_path):
    out, _ = _run(tmp_path)
    html = (out / "index.html").read_text(encoding="utf-8")
    report = build_report(load_output(out))
    task = report.tasks[0]
    assert task.title == "Panoptic segmentation" and task.unit == "images" and task.n_samples == 2
    names = [row[1] for row in task.tables[0].rows]
    assert names[:3] == ["PQ (panoptic quality)", "SQ (segmentation quality)", "RQ (recognition quality)"]
    assert "person recall (mask IoU > 0.5, panoptic matching)" in names
    assert "person PQ without unowned false positives" in names
    assert "Pq by" not in html and "Person recall by skin: 100.0% for lighter" in html  # per cent
    assert [f.title for f in task.forests][:2] == ["PQ (panoptic quality)",
                                                   "person recall (mask IoU > 0.5, panoptic matching)"]
    # lighting groups both images and people: each group once per section
    for section in task.sections:
        pairs = [(g.grouping, g.group) for g in section.groups]
        assert len(pairs) == len(set(pairs)) and ("lighting", "dim") in pairs
    worst = {(g.grouping, g.group): g for g in task.examples}
    darker = worst[("skin", "darker")]
    assert darker.n_errors == 2 and [i.sample_id for i in darker.items] == ["2/3", "1/2"]  # IoU 0 before 1/3
    assert darker.items[0].lines == ["image photos/2.png", "best IoU 0.000"]
    assert darker.items[1].lines == ["image photos/1.png", "orange: ground truth",
                                     "blue: best-overlapping predicted segment of their category, IoU 0.333"]
    assert worst[("skin", "lighter")].n_errors == 0
    # the worst images by PQ, per lighting group: one image each
    assert worst[("lighting", "dim")].items[0].sample_id == "2"
    assert worst[("lighting", "dim")].items[0].lines[0].startswith("PQ ")
    assert "Missed people per group: person segments that no predicted segment" in html
    assert "Worst images per image group: the lowest per-image PQ" in html
    crops = _pngs(html)
    assert len(crops) == 6  # C and B (darker), B and C again (lighting), then the two images
    pixels = [{tuple(int(v) for v in px) for px in np.asarray(c.convert("RGB")).reshape(-1, 3)} for c in crops[:2]]
    assert ORANGE in pixels[0] and BLUE not in pixels[0]  # C: the ground truth alone
    assert ORANGE in pixels[1] and BLUE in pixels[1]  # B: and the shifted prediction
    for line in ("COCO panoptic, as panopticapi's pq_compute", "PQ without unowned false positives",
                 "cluster bootstrap over images (20 resamples, seed 0)", "effective sample size n / deff"):
        assert line in unescape(html)
    # re-rendered from the output directory: the same page
    assert main(["report", str(out), "-o", str(tmp_path / "again.html"), "-q"]) == 0
    assert (tmp_path / "again.html").read_text(encoding="utf-8") == html


def test_no_thumbnails_lists_the_people(tmp_path):
    out, _ = _run(tmp_path, "--no-thumbnails")
    html = (out / "index.html").read_text(encoding="utf-8")
    assert not _pngs(html) and "<code>1/2</code>" in html and "--no-thumbnails" in html


def test_segment_boxes_by_hand():
    from audit.tasks.panoptic.matching import segment_boxes

    index = np.array([0, 1, 1, 0, 0, 2, 0, 0, 0, 0, 0, 0])  # a 3 x 4 map: segment 1 at (0, 1..2), segment 2 at (1, 1)
    boxes = segment_boxes(index, (3, 4), 3)
    assert np.isnan(segment_boxes(index, (3, 4), 3, segments=[1])[0]).all()  # only segment 2 asked for
    assert boxes[:2].tolist() == [[1, 0, 2, 1], [1, 1, 1, 1]] and np.isnan(boxes[2]).all()


def test_display_names_of_the_panoptic_metrics():
    from audit.stats import display_name, is_proportion, sentence_case, short_name

    assert [short_name(m) for m in ("pq", "sq", "rq", "pq_things", "person_recall", "person_sq")] == \
        ["PQ", "SQ", "RQ", "PQ (things)", "person recall", "person SQ"]
    assert display_name("person_pq_owned") == "person PQ without unowned false positives"
    assert sentence_case(short_name("pq")) == "PQ" and is_proportion("person_recall") and not is_proportion("pq")


def test_builder_arguments_reach_the_entry_point_and_the_fingerprint(tmp_path, monkeypatch):
    # a panoptic model made of another model: its card is a builder argument, passed as its path; the other card's
    # weights are part of this model's fingerprint
    import torch

    from audit.core.models import build_from_card, fingerprint_model
    from audit.errors import CardError
    from audit.tasks.panoptic.pipeline import _load_model_card

    (tmp_path / "made_of.py").write_text("import torch\nSEEN = {}\n\n\ndef build(*, num_classes, part, threshold):\n"
                                         "    SEEN.update(part=part, threshold=threshold, n=num_classes)\n"
                                         "    return torch.nn.Identity()\n")
    torch.save({}, tmp_path / "part.pth")
    (tmp_path / "part.md").write_text("---\ntask: classification\nmodel: {entry_point: 'made_of:build'}\n"
                                      "weights: {path: part.pth}\nnum_classes: 1\nlabel_map: [person]\n"
                                      "preprocessing: {resize: [8, 8], mean: [0, 0, 0], std: [1, 1, 1]}\n---\n")
    card = tmp_path / "panoptic.md"
    card.write_text("---\ntask: panoptic_segmentation\nmodel: {entry_point: 'made_of:build'}\n"
                    "builder: {part: part.md, threshold: 3}\nnum_classes: 1\nlabel_map: [person]\n---\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    loaded = _load_model_card(card)
    assert loaded.builder == {"part": "part.md", "threshold": 3}
    build_from_card(loaded, build_architecture=None)
    import made_of

    assert made_of.SEEN == {"part": str(tmp_path / "part.md"), "threshold": 3, "n": 1}
    before = fingerprint_model(loaded)
    torch.save({"changed": torch.zeros(1)}, tmp_path / "part.pth")
    assert fingerprint_model(loaded) != before
    card.write_text(card.read_text().replace("threshold: 3", "num_classes: 3"))
    with pytest.raises(CardError, match=r"panoptic.md: field 'builder.num_classes': expected a keyword argument name "
                                        r"other than weights, progress, num_classes and weights_backbone, found 3$"):
        _load_model_card(card)
