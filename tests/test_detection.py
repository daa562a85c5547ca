"""Detection audits: COCO matching by hand, pycocotools parity, Wilson per-group AP, FACET end to end."""

from __future__ import annotations

import contextlib
import copy
import io
import json
import re

import numpy as np
import pandas as pd
import pytest
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from audit.cli import main
from audit.errors import PredictionError
from audit.tasks.detection.cocoeval import Boxes, accumulate, box_iou, match, summarize
from audit.tasks.detection.people import vote_groups
from audit.tasks.detection.pipeline import audit_detections
from audit.stats import Attribute
from detection_helpers import make_facet_split, write_facet_card


def _gt(anns):
    return Boxes([a["image_id"] for a in anns], [a["category_id"] for a in anns], [a["bbox"] for a in anns],
                 [a.get("area", a["bbox"][2] * a["bbox"][3]) for a in anns],
                 iscrowd=[a.get("iscrowd", 0) for a in anns], ann_id=[a["id"] for a in anns])


def _dt(res):
    return Boxes([d["image_id"] for d in res], [d["category_id"] for d in res], [d["bbox"] for d in res],
                 [d["bbox"][2] * d["bbox"][3] for d in res], score=[d["score"] for d in res])


def _pycoco(gt_dict, results, *, agnostic=False, iou_type="bbox", prepare=None):
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO()
        gt.dataset = copy.deepcopy(gt_dict)
        gt.createIndex()
        dt = gt.loadRes(copy.deepcopy(results))
        e = COCOeval(gt, dt, iou_type)
        e.params.useCats = 0 if agnostic else 1
        if prepare is not None:
            e._prepare = prepare.__get__(e)
        e.evaluate()
        e.accumulate()
        e.summarize()
    return e


# ---------------------------------------------------------------------------
# Hand-built scene
# ---------------------------------------------------------------------------
# Image 1, two people side by side, 20x40 boxes (area 800: COCO "small"):
#   A (group a) at x=0:  detection d1 (score 0.9) at x=2  -> inter 18*40=720, union 880, IoU 0.8182
#   B (group b) at x=30: detection d2 (score 0.8) at x=34 -> inter 16*40=640, union 960, IoU 0.6667
#   d3 (score 0.7) exactly on A: A is already taken by d1 at every threshold <= 0.8182, so d3 matches A
#   only where d1 cannot (t >= 0.85: d1's 0.8182 is too low, d3's IoU 1.0 takes A).
# Image 2: C (group b) at x=0, no detection. D (group a) at x=30, detection d4 (0.6) exactly on it.
# Recall per threshold t (0.50 .. 0.95):
#   A: matched at every t (d1 up to 0.80, d3 from 0.85)   -> 10/10
#   B: matched for t <= 0.65 (0.50, 0.55, 0.60, 0.65)      -> 4/10
#   C: never                                             -> 0/10
#   D: always (IoU 1)                                      -> 10/10
SCENE_GT = [
    {"id": 1, "image_id": 1, "category_id": 1, "bbox": [0, 0, 20, 40]},
    {"id": 2, "image_id": 1, "category_id": 1, "bbox": [30, 0, 20, 40]},
    {"id": 3, "image_id": 2, "category_id": 1, "bbox": [0, 0, 20, 40]},
    {"id": 4, "image_id": 2, "category_id": 1, "bbox": [30, 0, 20, 40]},
]
SCENE_DT = [
    {"image_id": 1, "category_id": 1, "bbox": [2, 0, 20, 40], "score": 0.9},
    {"image_id": 1, "category_id": 1, "bbox": [34, 0, 20, 40], "score": 0.8},
    {"image_id": 1, "category_id": 1, "bbox": [0, 0, 20, 40], "score": 0.7},
    {"image_id": 2, "category_id": 1, "bbox": [30, 0, 20, 40], "score": 0.6},
]
SCENE_GROUPS = pd.DataFrame({"g": ["a", "b", "b", "a"]})


def test_hand_built_scene_matches_and_recall():
    m = match(_gt(SCENE_GT), _dt(SCENE_DT))
    assert m.gt_iou[0, 0, :2] == pytest.approx([720 / 880, 640 / 960])
    matched = m.gt_matched[0]  # (T, people)
    assert matched.sum(0).tolist() == [10, 4, 0, 10]
    # d3 (kept index 1 in image 1 score order d1, d2, d3) matches A only from t = 0.85 on
    d3 = int(np.flatnonzero((m.det_image == 1) & (m.det_score == 0.7))[0])
    assert (m.det_gt[0, :, d3] == 0).tolist() == [False] * 7 + [True] * 3

    result = audit_detections(gt=_gt(SCENE_GT), dt=_dt(SCENE_DT), groups=SCENE_GROUPS, attributes=[Attribute("g")],
                              n_boot=50, min_group_size=1)
    v = lambda metric, group="all", grouping="overall": result.value(metric=metric, grouping=grouping, group=group)  # noqa: E731
    assert v("recall@0.50") == pytest.approx(3 / 4)  # A, B, D
    assert v("recall@0.75") == pytest.approx(2 / 4)  # A (d1 0.818), D
    assert v("ar") == pytest.approx((10 + 4 + 0 + 10) / 40)
    assert v("ar", "a", "g") == pytest.approx(1.0) and v("ar", "b", "g") == pytest.approx(4 / 20)
    assert v("miss_rate@0.50", "b", "g") == pytest.approx(1 / 2)  # C
    # IoU of the matches at 0.50: A 0.8182 (d1), B 0.6667, D 1.0
    assert v("matched_iou@0.50") == pytest.approx((720 / 880 + 640 / 960 + 1.0) / 3)
    assert v("ar_small", "a", "g") == pytest.approx(1.0)  # all four people are small (area 800)
    # FACET's recall disparity: a - b at AR
    d = result.disparities.query("grouping == 'g' and metric == 'ar' and kind == 'between_groups'").iloc[0]
    assert (d.group, d.other, d.difference) == ("a", "b", pytest.approx(1.0 - 0.2))


def test_recall_and_ap_equal_pycocotools_on_the_scene():
    gt_dict = {"images": [{"id": 1}, {"id": 2}], "annotations": [dict(a, area=800, iscrowd=0) for a in SCENE_GT],
               "categories": [{"id": 1, "name": "person"}]}
    e = _pycoco(gt_dict, SCENE_DT)
    m = match(_gt(SCENE_GT), _dt(SCENE_DT))
    # pycocotools' recall at area "all", 100 detections = our per-person recall
    assert e.eval["recall"][:, 0, 0, 2] == pytest.approx(m.gt_matched[0].mean(1))
    assert list(summarize(*accumulate(m)).values()) == list(e.stats)


# ---------------------------------------------------------------------------
# Wilson et al. per-group AP, and the pycocotools ignore pitfall
# ---------------------------------------------------------------------------
# One image: A (group a) at x=0 and B (group b) at x=30. Detections: dB (0.9) exactly on B, dA (0.5)
# exactly on A, and a false positive dF (0.4) far away.
# Per-group AP for a, with B ignored: dB matches the ignored B -> neither TP nor FP. Ranked list of the
# rest: dA TP (precision 1, recall 1), dF FP. Interpolated precision is 1 at every recall -> AP = 1.
# Stock COCOeval with 'ignore': 1 on B ignores nothing (_prepare() overwrites it with iscrowd = 0):
# B counts as a ground truth (2 positives), dB is a TP for B, so recall reaches 1 only with dA: AP = 1 still?
# No: with B a regular ground truth, a's AP is computed over both people -- recall 0.5 after dB, 1.0 after
# dA, precision 1 at both -> AP = 1 too. So put B's detection *off* B (IoU 0.5 < t for most t) to expose it:
WILSON_GT = [
    {"id": 1, "image_id": 1, "category_id": 1, "bbox": [0, 0, 20, 40], "area": 800, "iscrowd": 0},
    {"id": 2, "image_id": 1, "category_id": 1, "bbox": [30, 0, 20, 40], "area": 800, "iscrowd": 0},
]
WILSON_DT = [
    {"image_id": 1, "category_id": 1, "bbox": [40, 0, 20, 40], "score": 0.9},  # half on B: IoU 10*40/(1600-400)=1/3
    {"image_id": 1, "category_id": 1, "bbox": [0, 0, 20, 40], "score": 0.5},  # exactly A
]
# With B ignored and dB unmatched (IoU 1/3 < 0.5), dB is a false positive in a's AP no matter what -- it is a
# detection of nobody. So the pitfall shows in *recall*: stock COCOeval keeps B as a positive it never finds.
#   ours, group a:   positives {A}; ranked dB FP, dA TP -> precision 0.5 at recall 1 -> AP = 0.5 (AP50 = 0.5)
#   stock + ignore:  positives {A, B}; dB FP, dA TP -> recall 0.5, precision 0.5 at recall <= 0.5, 0 above
#                    -> AP50 = 51 recall points * 0.5 / 101 = 0.2525
# And when B's detection *does* hit B (IoU 1), ours ignores it (AP = 1), while stock counts it as a TP of B.


def test_per_group_ap_ignores_other_groups_people_unlike_stock_ignore_flag():
    gt_dict = {"images": [{"id": 1}], "annotations": copy.deepcopy(WILSON_GT), "categories": [{"id": 1, "name": "p"}]}
    groups = pd.DataFrame({"g": ["a", "b"]})
    result = audit_detections(gt=_gt(WILSON_GT), dt=_dt(WILSON_DT), groups=groups, attributes=[Attribute("g")],
                              n_boot=0, min_group_size=1)
    ap50_a = result.value(metric="bbox_AP50", grouping="g", group="a")
    assert ap50_a == pytest.approx(0.5)
    # the naive recipe: mark B ignore and run stock pycocotools -> _prepare() drops the flag
    naive = copy.deepcopy(gt_dict)
    naive["annotations"][1]["ignore"] = 1
    stock = _pycoco(naive, WILSON_DT)
    assert stock.stats[1] == pytest.approx(51 * 0.5 / 101)  # B still counts as a miss
    assert stock.stats[1] != pytest.approx(ap50_a)

    # the other group's person, when detected, does not turn its detection into a false positive either
    hit_b = [dict(WILSON_DT[0], bbox=[30, 0, 20, 40]), WILSON_DT[1]]
    result = audit_detections(gt=_gt(WILSON_GT), dt=_dt(hit_b), groups=groups, attributes=[Attribute("g")],
                              n_boot=0, min_group_size=1)
    assert result.value(metric="bbox_AP", grouping="g", group="a") == pytest.approx(1.0)
    assert result.value(metric="bbox_AP", grouping="g", group="b") == pytest.approx(1.0)

    # the same numbers from pycocotools when the other group's ignore is kept (its _prepare patched)
    def prepare_keeping_ignore(self):
        COCOeval._prepare(self)
        for gts in self._gts.values():
            for g in gts:
                g["ignore"] = g.get("iscrowd", 0) or g.get("group") != "a"

    tagged = copy.deepcopy(gt_dict)
    tagged["annotations"][0]["group"] = "a"
    patched = _pycoco(tagged, WILSON_DT, prepare=prepare_keeping_ignore)
    assert patched.stats[1] == pytest.approx(ap50_a)


# ---------------------------------------------------------------------------
# Overall AP/AR equals pycocotools on randomised detection sets
# ---------------------------------------------------------------------------


def _random_set(seed, n_img=25, n_cat=3, with_masks=False):
    rng = np.random.default_rng(seed)
    H, W = 60, 80
    images = [{"id": i + 1, "width": W, "height": H} for i in range(n_img)]
    anns, res = [], []

    def rect(x, y, w, h):
        return [[x, y, x + w, y, x + w, y + h, x, y + h]]

    for im in images:
        for _ in range(int(rng.integers(0, 7))):
            w, h = rng.uniform(3, 60), rng.uniform(3, 45)
            x, y = rng.uniform(0, W - w), rng.uniform(0, H - h)
            c = int(rng.integers(1, n_cat + 1))
            a = {"id": len(anns) + 1, "image_id": im["id"], "category_id": c, "bbox": [x, y, w, h],
                 "area": float(w * h * rng.uniform(0.6, 1.0)), "iscrowd": int(rng.random() < 0.05)}
            if with_masks:
                a["segmentation"] = rect(x, y, w, h)
            anns.append(a)
            for _ in range(int(rng.integers(0, 3))):
                j = rng.normal(0, 0.2 * min(w, h), 4)
                bw, bh = max(w + j[2], 1), max(h + j[3], 1)
                d = {"image_id": im["id"], "category_id": c if rng.random() < 0.85 else int(rng.integers(1, n_cat + 1)),
                     "bbox": [x + j[0], y + j[1], bw, bh], "score": float(np.round(rng.random(), 2))}
                res.append(d)
        for _ in range(int(rng.integers(0, 12))):
            w, h = rng.uniform(3, 60), rng.uniform(3, 45)
            res.append({"image_id": im["id"], "category_id": int(rng.integers(1, n_cat + 1)),
                        "bbox": [rng.uniform(0, W - w), rng.uniform(0, H - h), w, h],
                        "score": float(np.round(rng.random(), 2))})
    if with_masks:
        from pycocotools import mask as mask_utils

        for d in res:
            x, y, w, h = d["bbox"]
            rle = mask_utils.merge(mask_utils.frPyObjects(rect(x, y, w, h), H, W))
            d["segmentation"] = {"size": rle["size"], "counts": rle["counts"].decode("ascii")}
            del d["bbox"]  # mask-only results: pycocotools takes the area from the mask
    cats = [{"id": c, "name": f"c{c}"} for c in range(1, n_cat + 1)]
    return {"images": images, "annotations": anns, "categories": cats}, res


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("agnostic", [False, True])
def test_overall_ap_identical_to_pycocotools(seed, agnostic):
    gt_dict, res = _random_set(seed)
    e = _pycoco(gt_dict, res, agnostic=agnostic)
    m = match(_gt(gt_dict["annotations"]), _dt(res), class_agnostic=agnostic)
    precision, recall = accumulate(m)
    assert np.array_equal(precision, e.eval["precision"])  # bit for bit
    assert np.array_equal(recall, e.eval["recall"])
    assert list(summarize(precision, recall).values()) == list(e.stats)
    # per ground truth: matched at area "all" exactly where pycocotools' gtMatches are set
    for ev in e.evalImgs:
        if ev is None or ev["aRng"] != [0, 1e10]:
            continue
        index = {a: i for i, a in enumerate(m.gt_ann_id)}
        for gid, gm in zip(ev["gtIds"], ev["gtMatches"].T):
            i = index[gid]
            if not _gt(gt_dict["annotations"]).iscrowd[i]:
                assert m.gt_matched[0, :, i].tolist() == (gm > 0).tolist()


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("agnostic", [False, True])
def test_per_group_ap_from_area_all_and_100_detections_equals_pycocotools(seed, agnostic):
    # _ap_rows matches only the "all" area range and accumulates only the 100-detection cap; its AP, AP50 and
    # AP75 must be pycocotools' numbers bit for bit, with the other group's people ignored (its _prepare patched)
    from audit.tasks.detection.cocoeval import AREA_RANGES, MAX_DETS

    gt_dict, res = _random_set(seed)
    rng = np.random.default_rng(100 + seed)
    for a in gt_dict["annotations"]:
        a["group"] = "a" if rng.random() < 0.5 else "b"

    def prepare_keeping_ignore(self):
        COCOeval._prepare(self)
        for gts in self._gts.values():
            for g in gts:
                g["ignore"] = g.get("iscrowd", 0) or g["group"] != "a"

    e = _pycoco(gt_dict, res, agnostic=agnostic, prepare=prepare_keeping_ignore)
    gt = _gt(gt_dict["annotations"])
    other = np.array([a["group"] != "a" for a in gt_dict["annotations"]])
    m = match(gt, _dt(res), class_agnostic=agnostic, extra_ignore=other, area_ranges=AREA_RANGES[:1])
    s = summarize(*accumulate(m, max_dets=MAX_DETS[-1:]), max_dets=MAX_DETS[-1:], area_ranges=AREA_RANGES[:1])
    assert [s["AP"], s["AP50"], s["AP75"]] == list(e.stats[:3])
    assert [s[k] for k in ("AP_small", "AP_medium", "AP_large", "AR1", "AR10", "AR_small")] == [-1.0] * 6  # not computed
    assert s["AR100"] == e.stats[8]

def test_mask_ap_identical_to_pycocotools():
    from audit.tasks.detection.data import to_rle

    gt_dict, res = _random_set(7, n_img=12, with_masks=True)
    e = _pycoco(gt_dict, res, iou_type="segm")
    gt = _gt(gt_dict["annotations"])
    gt.segmentation = [to_rle(a["segmentation"], 60, 80, "gt") for a in gt_dict["annotations"]]
    from pycocotools import mask as mask_utils

    rles = [dict(d["segmentation"], counts=d["segmentation"]["counts"].encode()) for d in res]
    dt = Boxes([d["image_id"] for d in res], [d["category_id"] for d in res], [mask_utils.toBbox(r) for r in rles],
               [float(mask_utils.area(r)) for r in rles], score=[d["score"] for d in res], segmentation=rles)
    precision, recall = accumulate(match(gt, dt, iou_type="segm"))
    assert np.array_equal(precision, e.eval["precision"]) and np.array_equal(recall, e.eval["recall"])


def test_box_iou_is_pycocotools_iou():
    from pycocotools import mask as mask_utils

    rng = np.random.default_rng(3)
    d, g = rng.uniform(0, 50, (30, 4)), rng.uniform(0, 50, (9, 4))
    crowd = rng.random(9) < 0.3
    ours = box_iou(d, g, crowd)
    ref = mask_utils.iou(d.tolist(), g.tolist(), crowd.astype(int).tolist())
    assert np.array_equal(ours, ref)


# ---------------------------------------------------------------------------
# Monk votes, FACET end to end
# ---------------------------------------------------------------------------


def test_monk_vote_modes():
    # votes over tones 1..4: person 0 {1: 2, 2: 3, 3: 1}, person 1 {2: 3, 3: 3}, person 2 nothing
    counts = pd.DataFrame([[2, 3, 1, 0], [0, 3, 3, 0], [0, 0, 0, 0]], columns=[1, 2, 3, 4])
    assert vote_groups(counts, "any").tolist() == [(1, 2, 3), (2, 3), ()]
    # majority: person 0 -> 2; person 1 tie 2 vs 3, expected 2.5 is equally near -> the lower, 2
    assert vote_groups(counts, "majority").tolist() == [2, 2, None]
    # expected: (2*1 + 3*2 + 1*3) / 6 = 11/6 = 1.83 -> 2; (3*2 + 3*3) / 6 = 2.5 -> 3 (half up)
    assert vote_groups(counts, "expected").tolist() == [2, 3, None]


def test_facet_format_audits_end_to_end(tmp_path, capsys):
    root = make_facet_split(tmp_path / "facet", n_images=40)
    card = write_facet_card(root, extra="task: instance_segmentation\n")
    out = tmp_path / "report"
    code = main(["run", "--data", str(card), "--predictions", str(root / "detections.json"), "--out", str(out),
                 "--n-boot", "200", "-q"])
    assert code == 0, capsys.readouterr().err
    doc = json.loads((out / "results.json").read_text())
    rows = pd.DataFrame(doc["results"]["metrics"])
    get = lambda metric, grouping, group: rows.query(  # noqa: E731
        "metric == @metric and grouping == @grouping and group == @group").iloc[0]
    light, dark = get("ar", "skin_tone", "lighter"), get("ar", "skin_tone", "darker")
    assert light.value > dark.value + 0.2  # the planted miss rates: 0.1 vs 0.6
    assert light.interval == "cluster_bootstrap_percentile" and light.lower <= light.value <= light.upper
    assert get("mask_ar", "skin_tone", "darker").value == pytest.approx(dark.value, abs=0.15)
    assert {"bbox_AP", "segm_AP", "bbox_AP_coco", "segm_AP_coco", "matched_iou@0.50", "miss_rate@0.50",
            "ar_small"} <= set(rows.metric)
    assert set(rows.query("grouping == 'gender_presentation'").group) <= {"masc", "fem", "unknown"}
    assert "lighting" in set(rows.grouping) and "gender_presentation × skin_tone" in set(rows.grouping)
    dis = pd.DataFrame(doc["results"]["disparities"])
    ref = dis.query("grouping == 'skin_tone' and metric == 'ar' and kind == 'to_reference'").iloc[0]
    assert ref.group == "darker" and ref.other == "lighter" and ref.significant
    html = (out / "index.html").read_text()
    assert "cannot be attributed to a demographic group" in html

    # bad input: a detection on an image that is not in the ground truth -> one line, exit 2
    capsys.readouterr()
    bad = json.loads((root / "detections.json").read_text())
    bad[3]["image_id"] = 999
    (root / "bad.json").write_text(json.dumps(bad))
    code = main(["run", "--data", str(card), "--predictions", str(root / "bad.json"), "--out", str(tmp_path / "x")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.count("\n") == 0 and "detection [3]" in err and "999" in err
    assert not (tmp_path / "x" / "results.json").exists()


def test_majority_and_expected_votes_give_exclusive_groups(tmp_path):
    from audit.pipeline import audit_split

    root = make_facet_split(tmp_path / "facet", n_images=12)
    for votes in ("majority", "expected"):
        card = write_facet_card(root, votes=votes)
        result = audit_split(data=card, predictions=root / "detections.json", n_boot=20)
        sizes = result.groups.query("grouping == 'skin_tone'").set_index("group")["n"]
        assert sizes.sum() == result.groups.query("grouping == 'overall'")["n"].iloc[0]  # a partition


TORCHVISION_CARD = """---
task: detection
model:
  architecture: fasterrcnn_mobilenet_v3_large_320_fpn
weights: null
num_classes: 3
label_map: [__background__, doctor, guitarist]
---
# Untrained detector (weights=None), for the pipeline test
"""


def test_torchvision_detector_runs_and_caches(tmp_path, capsys):
    import torch

    root = make_facet_split(tmp_path / "facet", n_images=3, with_images=True)
    card = write_facet_card(root)
    model = tmp_path / "det.md"
    model.write_text(TORCHVISION_CARD)
    torch.manual_seed(0)
    out = tmp_path / "report"
    args = ["run", "--model", str(model), "--data", str(card), "--out", str(out), "--n-boot", "20", "-q",
            "--device", "cpu", "--batch-size", "2"]
    assert main(args) == 0, capsys.readouterr().err
    detections = json.loads((out / "detections.json").read_text())
    assert all(set(d) >= {"image_id", "category_id", "bbox", "score"} for d in detections)
    doc = json.loads((out / "results.json").read_text())
    assert doc["provenance"]["predictions"]["source"] == "model"
    assert main(args) == 0
    cached = json.loads((out / "results.json").read_text())
    assert cached["provenance"]["predictions"]["source"] == "model"  # not cache state
    # the fresh run measured the detector's output as it was; the cached run, as read back from detections.json
    del doc["provenance"]["created"], cached["provenance"]["created"]
    assert cached == doc


def test_results_boxes_of_a_list_equal_load_results_of_its_file(tmp_path):
    from audit.tasks.detection.data import load_ground_truth, load_results, results_boxes
    from audit.tasks.detection.inference import save_results
    from detection_helpers import square_rle

    gt_path = tmp_path / "gt.json"
    gt_path.write_text(json.dumps({"images": [{"id": 1, "file_name": "a.jpg", "height": 20, "width": 30}],
                                   "annotations": [], "categories": [{"id": 1, "name": "person"}]}))
    gt = load_ground_truth(gt_path)
    segmentation = square_rle(20, 30, 2, 3, 5, 4)
    for results in ([{"image_id": 1, "category_id": 1, "bbox": [1.5, 2.25, 10.0, 4.125], "score": 0.91234},
                     {"image_id": 1, "category_id": 1, "bbox": [0.0, 0.0, 0.0, 3.0], "score": 0.5}],
                    [{"image_id": 1, "category_id": 1, "segmentation": segmentation, "score": 0.25},
                     {"image_id": 1, "category_id": 1, "bbox": [2.0, 3.0, 5.0, 4.0], "segmentation": segmentation,
                      "score": 0.75}]):
        masks = "segmentation" in results[0]
        live = results_boxes(results, gt, source="detector", need_masks=masks)
        saved = load_results(save_results(tmp_path, results, {}), gt, need_masks=masks)
        for field in ("image", "category", "bbox", "area", "score"):
            np.testing.assert_array_equal(getattr(live, field), getattr(saved, field), err_msg=field)
        assert live.segmentation == saved.segmentation
    # areas as COCO.loadRes: the mask area when the first result has no box (5 x 4 = 20 pixels)
    np.testing.assert_array_equal(live.area, [20.0, 20.0])
    with pytest.raises(PredictionError, match=r"^detector: detection \[0\]: field 'score': expected a finite number"):
        results_boxes([{"image_id": 1, "category_id": 1, "bbox": [0, 0, 1, 1], "score": float("nan")}], gt,
                      source="detector")


def test_inline_side_table_and_image_level_attributes(tmp_path):
    from audit.pipeline import audit_split

    # image 1 (dim): people 1 (f, found), 2 (m, missed); image 2 (bright): people 3 (f, found), 4 (m, found)
    images = [{"id": 1, "file_name": "a.png", "height": 50, "width": 80, "attributes": {"lighting": "dim"}},
              {"id": 2, "file_name": "b.png", "height": 50, "width": 80, "attributes": {"lighting": "bright"}}]
    anns = [{"id": i + 1, "image_id": 1 + i // 2, "category_id": 1, "bbox": [40 * (i % 2), 0, 30, 40], "area": 1200,
             "iscrowd": 0, "attributes": {"gender": "fm"[i % 2]}} for i in range(4)]
    (tmp_path / "gt.json").write_text(json.dumps({"images": images, "annotations": anns,
                                                  "categories": [{"id": 1, "name": "person"}]}))
    pd.DataFrame({"annotation_id": [1, 2, 3, 4], "age": ["young", "older", "older", "young"]}).to_csv(
        tmp_path / "people.csv", index=False)
    found = [anns[0], anns[2], anns[3]]
    (tmp_path / "dt.json").write_text(json.dumps([{"image_id": a["image_id"], "category_id": 1, "bbox": a["bbox"],
                                                   "score": 0.9} for a in found]))
    (tmp_path / "card.md").write_text("""---
split: {coco: gt.json, attributes: people.csv}
min_group_size: 1
attributes: {gender: {}, age: {}, lighting: {}}
---
""")
    result = audit_split(data=tmp_path / "card.md", predictions=tmp_path / "dt.json", n_boot=20)
    v = lambda grouping, group: result.value(metric="recall@0.50", grouping=grouping, group=group)  # noqa: E731
    assert (v("gender", "f"), v("gender", "m")) == (1.0, 0.5)  # inline 'attributes'
    assert (v("age", "young"), v("age", "older")) == (1.0, 0.5)  # side table keyed by annotation id
    assert (v("lighting", "dim"), v("lighting", "bright")) == (0.5, 1.0)  # image-level


class _FixedDetector:
    """A stand-in detector: the same given outputs for every image."""

    def __init__(self, output):
        self.output = output

    def to(self, device):
        return self

    def __call__(self, images):
        return [dict(self.output) for _ in images]


def _run_fixed_detector(tmp_path, output):
    import torch

    from audit.tasks.detection.cards import load_detection_data_card
    from audit.tasks.detection.data import load_ground_truth
    from audit.tasks.detection.inference import run_detector

    card = load_detection_data_card(write_facet_card(make_facet_split(tmp_path, n_images=2, with_images=True)))
    gt = load_ground_truth(card.coco, image_root=card.image_root)
    return gt, run_detector(_FixedDetector(output), gt, image_root=card.image_root, mapping={1: 7},
                            device=torch.device("cpu"), batch_size=2, progress=False)


def test_run_detector_writes_coco_boxes_as_python_rounds_them(tmp_path):
    import torch

    boxes = torch.tensor([[10.123456, 20.5, 30.0004999, 40.25], [0.1, 0.2, 0.30000001, 0.4], [1, 2, 3, 4]])
    output = {"boxes": boxes, "labels": torch.tensor([1, 1, 2]), "scores": torch.tensor([0.987654321, 0.5, 0.9])}
    gt, results = _run_fixed_detector(tmp_path, output)
    # label 2 is not in the mapping; each kept box is [x1, y1, x2 - x1, y2 - y1] of the float32 output in float64,
    # rounded by Python's round to 3 decimals, the score to 5: e.g. 30.0004999 - 10.123456 = 19.877044 -> 19.877
    expected = []
    for image_id in gt.images["image_id"]:
        for (x1, y1, x2, y2), score in zip(boxes[:2].double().tolist(), [0.987654321, 0.5]):
            expected.append({"image_id": image_id, "category_id": 7,
                             "bbox": [round(x1, 3), round(y1, 3), round(x2 - x1, 3), round(y2 - y1, 3)],
                             "score": round(float(torch.tensor(score)), 5)})
    assert results == expected
    assert results[0]["bbox"] == [10.123, 20.5, 19.877, 19.75] and results[0]["score"] == 0.98765


@pytest.mark.parametrize("boxes, labels, found", [
    ([[1.0, 2.0, 3.0]], [1], "boxes [1, 3], labels [1] and scores [1]"),
    ([[1.0, 2.0, 3.0, 4.0], [1.0, 2.0, 3.0, 4.0]], [1], "boxes [2, 4], labels [1] and scores [2]"),
    ([1.0, 2.0, 3.0, 4.0], [1], "boxes [4], labels [1] and scores [1]"),
])
def test_run_detector_rejects_outputs_of_the_wrong_shape(tmp_path, boxes, labels, found):
    import torch

    from audit.errors import ModelError

    n = len(boxes) if isinstance(boxes[0], list) else 1
    output = {"boxes": torch.tensor(boxes), "labels": torch.tensor(labels), "scores": torch.full((n,), 0.5)}
    message = f"detector output: expected boxes of shape (N, 4) with N labels and N scores per image, found {found}"
    with pytest.raises(ModelError, match=f"^{re.escape(message)}$"):
        _run_fixed_detector(tmp_path, output)
