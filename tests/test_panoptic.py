"""The panoptic task: PQ/SQ/RQ against torchmetrics and panopticapi, crowd and void by hand, per-group figures by
hand, the Panoptic FPN merge by hand, and `audit run` end to end (predictions made elsewhere, and a model)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from audit.tasks.panoptic.matching import Segments, compact_ids, joint_histogram, match_image, rgb_to_id
from audit.tasks.panoptic.merge import merge_panoptic
from audit.tasks.panoptic.statistics import audit_panoptic, coco_pq
from panoptic_helpers import CATEGORIES, STUFF, THINGS, id_to_rgb, panopticapi_single_image, random_panoptic, \
    write_dataset

CATS = sorted(CATEGORIES)
NAMES = [CATEGORIES[c][0] for c in CATS]
ISTHING = np.array([CATEGORIES[c][1] == 1 for c in CATS])


def _segments(listed, *, crowd=True):
    return Segments(np.array([s["id"] for s in listed], np.int64),
                    np.array([CATS.index(s["category_id"]) for s in listed], np.int64),
                    np.array([bool(s["iscrowd"]) and crowd for s in listed], bool))


def _match(gt, gs, pred, ps):
    g, p = _segments(gs), _segments(ps, crowd=False)
    gi, unknown_g = compact_ids(gt, g.ids)
    pi, unknown_p = compact_ids(pred, p.ids)
    assert unknown_g.size == 0 and unknown_p.size == 0
    return match_image(joint_histogram(gi, pi, len(g), len(p)), g, p, n_categories=len(CATS))


def _counts(images):
    """Per image (N, C) iou, tp, fp, fn of a list of (gt, gt segments, pred, pred segments)."""
    matches = [_match(*im) for im in images]
    return {k: np.stack([getattr(m, k) for m in matches]) for k in ("iou", "tp", "fp", "fn")}


@pytest.fixture
def float64_torch():
    torch = pytest.importorskip("torch")
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)  # torchmetrics' RQ denominator follows the default dtype
    yield torch
    torch.set_default_dtype(previous)


def _torchmetrics(images, torch):
    """torchmetrics' PanopticQuality (per class and averaged) on the same images; ground-truth void is a category
    that is neither thing nor stuff (torchmetrics maps it to its void colour)."""
    from torchmetrics.detection import PanopticQuality

    def channels(id_map, listed):
        cat = np.full(id_map.shape, 99, np.int64)  # 99: no category, i.e. void
        for s in listed:
            cat[id_map == s["id"]] = s["category_id"]
        return np.stack([cat, id_map], -1)

    preds = torch.tensor(np.stack([channels(p, ps) for _, _, p, ps in images]))
    target = torch.tensor(np.stack([channels(g, gs) for g, gs, _, _ in images]))
    overall = PanopticQuality(things=set(THINGS), stuffs=set(STUFF), return_sq_and_rq=True)(preds, target)
    per_class = PanopticQuality(things=set(THINGS), stuffs=set(STUFF), return_sq_and_rq=True,
                                return_per_class=True)(preds, target)
    return overall.numpy(), per_class.numpy()  # (3,), (C, 3) in torchmetrics' order: things then stuff, each sorted


@pytest.mark.parametrize("seed", [0, 1, 2, 3, 4])
def test_overall_pq_sq_rq_equal_torchmetrics(seed, float64_torch):
    # things, stuff and ground-truth void; predictions without void and no crowd: the cases torchmetrics can express
    rng = np.random.default_rng(seed)
    images = [random_panoptic(rng, void=True, crowd=False, pred_void=False) for _ in range(25)]
    counts = _counts(images)
    result = audit_panoptic(**counts, classes=NAMES, isthing=ISTHING, n_boot=0)
    rows = result.metrics.set_index(["grouping", "metric", "class"])["value"]
    overall, per_class = _torchmetrics(images, float64_torch)
    ours = [rows[("overall", m, "")] for m in ("pq", "sq", "rq")]
    np.testing.assert_allclose(ours, overall, rtol=1e-12, atol=1e-12)
    order = sorted(THINGS) + sorted(STUFF)  # torchmetrics' continuous ids
    present = (counts["tp"] + counts["fp"] + counts["fn"]).sum(0) > 0
    for k, cat in enumerate(order):
        j = CATS.index(cat)
        if not present[j]:
            continue
        pq, sq, rq = per_class[k]
        assert rows[("overall", "pq_class", NAMES[j])] == pytest.approx(pq, abs=1e-12)
        assert rows[("overall", "rq_class", NAMES[j])] == pytest.approx(rq, abs=1e-12)
        ours_sq = rows[("overall", "sq_class", NAMES[j])]
        # torchmetrics (and panopticapi) print SQ 0 for a class that occurs without a match; its row is undefined
        assert ours_sq == pytest.approx(sq, abs=1e-12) if counts["tp"][:, j].sum() else (np.isnan(ours_sq) and sq == 0)
    ref = coco_pq(*(counts[k].sum(0) for k in ("iou", "tp", "fp", "fn")), ISTHING)
    for part in ("things", "stuff"):
        for m in ("pq", "sq", "rq"):
            assert rows[("overall", f"{m}_{part}", "")] == pytest.approx(ref[part][m], abs=1e-12)


@pytest.mark.parametrize("seed", [10, 11, 12, 13])
@pytest.mark.parametrize("crowd, pred_void", [(True, False), (False, True), (True, True)])
def test_matching_equals_a_literal_port_of_panopticapi(seed, crowd, pred_void):
    # crowd regions and predicted void, which torchmetrics cannot express (or handles its own way): the reference is
    # panopticapi's pq_compute_single_core, ported line by line in panoptic_helpers (panopticapi is not on the index)
    rng = np.random.default_rng(seed)
    images = [random_panoptic(rng, void=True, crowd=crowd, pred_void=pred_void) for _ in range(20)]
    stat = None
    for im in images:
        stat = panopticapi_single_image(*im, stat)
    reference = np.array([[stat[c][k] for c in CATS] for k in range(4)])  # iou, tp, fp, fn
    counts = _counts(images)
    np.testing.assert_allclose(np.stack([counts[k].sum(0) for k in ("iou", "tp", "fp", "fn")]), reference,
                               rtol=1e-12)
    result = audit_panoptic(**counts, classes=NAMES, isthing=ISTHING, n_boot=20)
    rows = result.metrics.set_index(["grouping", "metric", "class"])["value"]
    ref = coco_pq(*reference, ISTHING)
    for m in ("pq", "sq", "rq"):
        assert rows[("overall", m, "")] == pytest.approx(ref["all"][m], abs=1e-12)


def test_crowd_and_void_by_hand():
    # one row of 10 pixels. GT: P P P P P V V K K K (P person, 5 px; V void; K a crowd of people, 3 px)
    # pred: p p p p q q q q q r (p, q person; r ball)
    gt = np.array([[1, 1, 1, 1, 1, 0, 0, 2, 2, 2]])
    pred = np.array([[7, 7, 7, 7, 8, 8, 8, 8, 8, 9]])
    gs = [{"id": 1, "category_id": 1, "iscrowd": 0}, {"id": 2, "category_id": 1, "iscrowd": 1}]
    ps = [{"id": 7, "category_id": 1, "iscrowd": 0}, {"id": 8, "category_id": 1, "iscrowd": 0},
          {"id": 9, "category_id": 2, "iscrowd": 0}]
    m = _match(gt, gs, pred, ps)
    person, ball = CATS.index(1), CATS.index(2)
    # p-P: IoU = 4 / (4 + 5 - 4 - 0 void) = 0.8 > 0.5: a true positive
    assert m.tp[person] == 1 and m.iou[person] == pytest.approx(0.8)
    # P's best IoU is its match's (q's 1/7 is lower); the crowd has none (the report's worst errors)
    assert m.gt_best_iou.tolist() == pytest.approx([0.8, 0.0]) and m.gt_best_pred.tolist() == [0, -1]
    # q: IoU with P = 1 / (5 + 5 - 1 - 2 on void) = 1/7, unmatched; on void + the person crowd: (2 + 2) / 5 = 0.8 > 0.5,
    # so no false positive; the crowd is never a false negative
    assert m.fp[person] == 0 and m.fn[person] == 0
    # r: a ball on the person crowd: a crowd of another category does not excuse it
    assert m.fp[ball] == 1
    # void leaves the union: GT P P P P V V, pred p p p p p p -> IoU = 4 / (6 + 4 - 4 - 2) = 1.0 (4/6 with void)
    m = _match(np.array([[1, 1, 1, 1, 0, 0]]), gs[:1], np.array([[7] * 6]), ps[:1])
    assert m.iou[person] == pytest.approx(1.0)


def test_torchmetrics_removes_predicted_void_from_the_ground_truth_too(float64_torch):
    # GT P P P P P P, pred p . . . . . (5 predicted-void pixels). panopticapi: IoU = 1 / (1 + 6 - 1 - 0) = 1/6: a false
    # negative and a false positive, PQ 0. torchmetrics also leaves the ground truth's predicted-void pixels out of
    # the union: IoU = 1 / (1 + 6 - 5 - 1) = 1, a true positive, PQ 1. This audit follows panopticapi.
    gt, pred = np.array([[1] * 6]), np.array([[7, 0, 0, 0, 0, 0]])
    gs, ps = [{"id": 1, "category_id": 1, "iscrowd": 0}], [{"id": 7, "category_id": 1, "iscrowd": 0}]
    m = _match(gt, gs, pred, ps)
    person = CATS.index(1)
    assert (m.tp[person], m.fp[person], m.fn[person]) == (0, 1, 1)
    from torchmetrics.detection import PanopticQuality

    torch = float64_torch
    target = torch.tensor(np.stack([np.ones((1, 6), np.int64), gt], -1)[None])
    preds = torch.tensor(np.stack([np.where(pred > 0, 1, 99), pred], -1)[None])
    value = PanopticQuality(things={1}, stuffs={4}, allow_unknown_preds_category=True)(preds, target)
    assert float(value) == pytest.approx(1.0)


def _tiny():
    """Two 4 x 8 images, person (thing) and sky (stuff). Uppercase GT segments, lowercase predictions.

    image 1 (well_lit):          GT                 pred
                          S S S S S S S S    s s s s s s s s
                          A A A A B B B B    a a a a b b x x
                          A A A A B B B B    a a a a b b x x
                          A A A A B B B B    a a a a b b x x
    image 2 (dim):        S S S S S S S S    s s s s s s s s
                          S S C C C C S S    s s c c c c s s
                          S S C C C C S S    s s c c c s s s
                          S S S S S S S S    s s s s s s s y
    """
    g1 = np.array([[9] * 8] + [[1] * 4 + [2] * 4] * 3)
    p1 = np.array([[19] * 8] + [[11] * 4 + [12] * 2 + [13] * 2] * 3)
    g2 = np.array([[9] * 8, [9, 9, 3, 3, 3, 3, 9, 9], [9, 9, 3, 3, 3, 3, 9, 9], [9] * 8])
    p2 = np.array([[19] * 8, [19, 19, 14, 14, 14, 14, 19, 19], [19, 19, 14, 14, 14, 19, 19, 19], [19] * 7 + [15]])
    person = {"category_id": 1, "iscrowd": 0}
    sky = {"category_id": 4, "iscrowd": 0}
    gs1 = [{"id": 9, **sky}, {"id": 1, **person}, {"id": 2, **person}]
    ps1 = [{"id": 19, **sky}, {"id": 11, **person}, {"id": 12, **person}, {"id": 13, **person}]
    gs2 = [{"id": 9, **sky}, {"id": 3, **person}]
    ps2 = [{"id": 19, **sky}, {"id": 14, **person}, {"id": 15, **person}]
    return [(g1, gs1, p1, ps1), (g2, gs2, p2, ps2)]


def test_per_group_figures_by_hand():
    images = _tiny()
    matches = [_match(*im) for im in images]
    counts = {k: np.stack([getattr(m, k) for m in matches]) for k in ("iou", "tp", "fp", "fn")}
    # people: A (image 1, lighter): a = A, IoU 1, matched.
    #         B (image 1, darker): b covers 6 of its 12 pixels, IoU 6/12 = 0.5, not > 0.5: missed; b and x are false
    #           positives that overlap B most (6 pixels each): B owns 2.
    #         C (image 2, darker): c covers 7 of 8 pixels, IoU 7/8 = 0.875, matched. y (1 pixel on sky) is a false
    #           positive that overlaps no person: owned by nobody.
    people = pd.DataFrame({"image_id": [1, 1, 2], "matched": [matches[0].gt_matched[1], matches[0].gt_matched[2],
                                                             matches[1].gt_matched[1]],
                           "iou": [matches[0].gt_iou[1], matches[0].gt_iou[2], matches[1].gt_iou[1]],
                           "owned_fp": [matches[0].gt_owned_fp[1], matches[0].gt_owned_fp[2],
                                        matches[1].gt_owned_fp[1]]})
    assert people[["matched", "owned_fp"]].to_numpy().tolist() == [[1, 0], [0, 2], [1, 0]]
    result = audit_panoptic(**counts, classes=NAMES, isthing=ISTHING, image_ids=[1, 2],
                            image_groups=pd.DataFrame({"lighting": ["well_lit", "dim"]}), people=people,
                            person_groups=pd.DataFrame({"skin": ["lighter", "darker", "darker"]}), n_boot=50,
                            min_group_size=1)
    v = result.metrics.set_index(["grouping", "group", "metric", "class"])["value"]
    # lighter (A): recall 1/1; SQ 1/1; PQ owned = 1 / (TP 1 + FN 0/2 + FP_owned 0/2) = 1
    assert v[("skin", "lighter", "person_recall", "")] == pytest.approx(1.0)
    assert v[("skin", "lighter", "person_pq_owned", "")] == pytest.approx(1.0)
    # darker (B, C): recall 1/2; SQ 0.875/1; PQ owned = 0.875 / (1 + 1/2 + 2/2) = 0.875 / 2.5 = 0.35; RQ owned 1/2.5
    assert v[("skin", "darker", "person_recall", "")] == pytest.approx(0.5)
    assert v[("skin", "darker", "person_sq", "")] == pytest.approx(0.875)
    assert v[("skin", "darker", "person_pq_owned", "")] == pytest.approx(0.35)
    assert v[("skin", "darker", "person_rq_owned", "")] == pytest.approx(0.4)
    # everyone: recall 2/3; SQ 1.875/2 = 0.9375; PQ owned = 1.875 / (2 + 1/2 + 2/2) = 1.875/3.5, while the person
    # category's PQ counts y too: 1.875 / (2 + 3/2 + 1/2) = 0.46875
    assert v[("overall", "all", "person_recall", "")] == pytest.approx(2 / 3)
    assert v[("overall", "all", "person_sq", "")] == pytest.approx(0.9375)
    assert v[("overall", "all", "person_pq_owned", "")] == pytest.approx(1.875 / 3.5)
    assert v[("overall", "all", "pq_class", "person")] == pytest.approx(0.46875)
    # well_lit (image 1): person TP 1 (IoU 1), FP 2, FN 1 -> PQ 1 / 2.5 = 0.4, SQ 1, RQ 0.4; sky PQ = SQ = RQ = 1
    #   -> PQ (0.4 + 1)/2 = 0.7, SQ 1, RQ 0.7
    assert [v[("lighting", "well_lit", m, "")] for m in ("pq", "sq", "rq")] == pytest.approx([0.7, 1.0, 0.7])
    # dim (image 2): person TP 1 (0.875), FP 1 (y) -> PQ 0.875/1.5, SQ 0.875, RQ 2/3; sky: S and s share 23 pixels,
    #   union 24 + 24 - 23 = 25 -> IoU 0.92 = PQ = SQ, RQ 1 -> PQ (0.875/1.5 + 0.92)/2, SQ (0.875 + 0.92)/2,
    #   RQ (2/3 + 1)/2
    assert [v[("lighting", "dim", m, "")] for m in ("pq", "sq", "rq")] == pytest.approx(
        [(0.875 / 1.5 + 0.92) / 2, (0.875 + 0.92) / 2, (2 / 3 + 1) / 2])
    # overall: person PQ 0.46875, SQ 0.9375, RQ 2/4; sky PQ = SQ = 1.92/2, RQ 1
    assert [v[("overall", "all", m, "")] for m in ("pq", "sq", "rq")] == pytest.approx(
        [(0.46875 + 0.96) / 2, (0.9375 + 0.96) / 2, 0.75])
    assert (result.groups.query("grouping == 'skin'")["unit"] == "people").all()
    assert (result.groups.query("grouping == 'lighting'")["unit"] == "images").all()


def test_image_group_metrics_are_coco_pq_of_the_group_images():
    rng = np.random.default_rng(5)
    images = [random_panoptic(rng, crowd=True, pred_void=True) for _ in range(30)]
    counts = _counts(images)
    light = np.array(["a", "b", "c"] * 10)
    result = audit_panoptic(**counts, classes=NAMES, isthing=ISTHING, image_groups=pd.DataFrame({"light": light}),
                            n_boot=20, min_group_size=1)
    v = result.metrics.set_index(["grouping", "group", "metric", "class"])["value"]
    for g in "abc":
        ref = coco_pq(*(counts[k][light == g].sum(0) for k in ("iou", "tp", "fp", "fn")), ISTHING)
        for part, suffix in (("all", ""), ("things", "_things"), ("stuff", "_stuff")):
            for m in ("pq", "sq", "rq"):
                assert v[("light", g, m + suffix, "")] == pytest.approx(ref[part][m], abs=1e-12)


def test_an_undefined_metric_is_nan_with_a_warning():
    images = _tiny()[:1]
    counts = _counts(images)
    result = audit_panoptic(**counts, classes=NAMES, isthing=ISTHING, n_boot=10)
    v = result.metrics.set_index(["grouping", "metric", "class"])["value"]
    assert np.isnan(v[("overall", "pq_class", "ball")])  # no ball anywhere: undefined, not 0
    assert any("undefined" in w for w in result.warnings)


def test_rgb_ids_and_compaction():
    ids = np.array([[0, 1, 256], [65536, 16777215, 1]])
    assert (rgb_to_id(id_to_rgb(ids)) == ids).all()
    index, unknown = compact_ids(ids, np.array([256, 1, 16777215]))
    assert index.tolist() == [0, 2, 1, -1, 3, 2] and unknown.tolist() == [65536]


def test_merge_by_hand():
    # 1 x 6 image. Instances (by score): a (0.9) on pixels 0-2; b (0.8) on 2-4 overlaps a on 1 of 3 pixels (1/3 <= 0.5:
    # kept, takes 3-4); c (0.7) on 1-3 is 3/3 on taken pixels (> 0.5: dropped); d (0.3) is below the score threshold.
    # Semantic: stuff 5 on pixels 4-5, stuff 6 nowhere free; pixel 5 is the only free pixel of class 5: area 1 >= 1.
    masks = np.zeros((4, 1, 6), bool)
    masks[0, 0, 0:3] = masks[1, 0, 2:5] = masks[2, 0, 1:4] = masks[3, 0, 5] = True
    panoptic, segments = merge_panoptic(masks=masks, labels=[1, 2, 1, 3], scores=[0.9, 0.8, 0.7, 0.3],
                                        semantic=np.array([[6, 6, 6, 6, 5, 5]]), stuff_labels=[5, 6],
                                        score_threshold=0.5, overlap_threshold=0.5, stuff_area_threshold=1)
    assert panoptic.tolist() == [[1, 1, 1, 2, 2, 3]]
    assert [(s["id"], s["category_id"], s["isthing"]) for s in segments] == [(1, 1, True), (2, 2, True),
                                                                          (3, 5, False)]
    # with a stuff area threshold of 2 the single free pixel stays void
    panoptic, segments = merge_panoptic(masks=masks, labels=[1, 2, 1, 3], scores=[0.9, 0.8, 0.7, 0.3],
                                        semantic=np.array([[6, 6, 6, 6, 5, 5]]), stuff_labels=[5, 6],
                                        stuff_area_threshold=2)
    assert panoptic.tolist() == [[1, 1, 1, 2, 2, 0]] and len(segments) == 2


def _run(args):
    from audit.cli import main

    return main([*args, "--n-boot", "50", "-q"])


def test_audit_run_with_predictions_writes_per_group_rows(tmp_path):
    p = write_dataset(tmp_path, n_images=12, crowd=True)
    assert _run(["run", "--data", str(p["card"]), "--predictions", str(p["preds"]), "--out", str(p["out"])]) == 0
    document = json.loads((p["out"] / "results.json").read_text())
    assert document["provenance"]["task"] == "panoptic_segmentation"
    metrics = pd.DataFrame(document["results"]["metrics"])
    lighting = metrics[(metrics["grouping"] == "lighting") & (metrics["class"] == "")]
    assert {"pq", "sq", "rq"} <= set(lighting["metric"]) and set(lighting["group"]) == {"well_lit", "dim"}
    skin = metrics[metrics["grouping"] == "skin"]
    assert {"person_recall", "person_sq", "person_pq_owned"} <= set(skin["metric"])
    assert set(skin["group"]) == {"lighter", "darker"}
    # the overall PQ equals panopticapi's on the same files
    stat = None
    for gt, gs, pred, ps in p["maps"].values():
        stat = panopticapi_single_image(gt, gs, pred, ps, stat)
    ref = coco_pq(*np.array([[stat[c][k] for c in CATS] for k in range(4)]), ISTHING)
    overall = metrics[(metrics["grouping"] == "overall") & (metrics["class"] == "")].set_index("metric")["value"]
    assert overall["pq"] == pytest.approx(ref["all"]["pq"], abs=1e-12)
    assert (p["out"] / "index.html").is_file()
    assert {d["metric"] for d in document["results"]["disparities"]} >= {"pq", "person_recall"}


def _photos(p, tmp_path):
    """Write each image's photograph encoding its ground truth (R = 20 x category id, G = segment rank)."""
    from PIL import Image

    doc = json.loads(p["gt"].read_text())
    (tmp_path / "photos").mkdir()
    for image in doc["images"]:
        gt, segments, _, _ = p["maps"][image["id"]]
        photo = np.zeros((*gt.shape, 3), np.uint8)
        for rank, s in enumerate(segments, start=1):
            photo[gt == s["id"]] = (20 * s["category_id"], rank, 0)
        image["file_name"] = f"photos/{image['id']}.png"
        Image.fromarray(photo).save(tmp_path / image["file_name"])
    p["gt"].write_text(json.dumps(doc))
    text = p["card"].read_text().replace("task: panoptic_segmentation", "task: panoptic_segmentation\nimage_root: .")
    p["card"].write_text(text)


@pytest.mark.parametrize("entry, merge", [("oracle", ""), ("oracle_merge", "merge: {stuff_area_threshold: 0}\n")])
def test_audit_run_with_a_model_entry_point(tmp_path, entry, merge):
    p = write_dataset(tmp_path, n_images=6, crowd=True)
    _photos(p, tmp_path)
    from panoptic_model import LABELS

    card = tmp_path / "model.md"
    card.write_text(f"---\ntask: panoptic_segmentation\nmodel: {{entry_point: 'panoptic_model:{entry}'}}\n"
                    f"num_classes: {len(LABELS)}\nlabel_map: {json.dumps(LABELS)}\n{merge}---\n# An oracle\n")
    assert _run(["run", "--data", str(p["card"]), "--model", str(card), "--out", str(p["out"])]) == 0
    document = json.loads((p["out"] / "results.json").read_text())
    overall = pd.DataFrame(document["results"]["metrics"]).query("grouping == 'overall' and `class` == ''")
    values = overall.set_index("metric")["value"]
    assert values[["pq", "sq", "rq", "person_recall", "person_pq_owned"]].tolist() == pytest.approx([1.0] * 5)
    assert document["provenance"]["predictions"]["source"] == "model"
    assert (p["out"] / "panoptic_predictions.json").is_file()


def test_benchmark_scenes_as_panoptic_ground_truth(tmp_path):
    from audit.benchmark import write_benchmark
    from audit.benchmark.panoptic import write_panoptic_benchmark
    from audit.tasks.panoptic.pipeline import evaluate_panoptic
    from PIL import Image

    paths = write_benchmark(tmp_path, seed=3, n_portraits=(2, 2), n_scenes=(3, 8))
    cards = write_panoptic_benchmark(paths)
    scenes = tmp_path / "scenes" / "test"
    doc = json.loads((scenes / "panoptic.json").read_text())
    people = pd.read_csv(scenes / "people.csv")
    assert sum(s["category_id"] == 1 for a in doc["annotations"] for s in a["segments_info"]) == len(people)
    for a in doc["annotations"]:  # every pixel's category agrees with the semantic mask (0 background, 1, 2)
        ids = rgb_to_id(np.asarray(Image.open(scenes / "panoptic" / a["file_name"])))
        semantic = np.asarray(Image.open(scenes / "masks" / a["file_name"]))
        category = np.zeros(ids.shape, int)
        for s in a["segments_info"]:
            category[ids == s["id"]] = s["category_id"]
        assert (category == np.choose(semantic, [3, 1, 2])).all()
    # the ground truth audited as its own prediction: everything found
    run = evaluate_panoptic(data=cards["test"], predictions=scenes / "panoptic.json", n_boot=20)
    m = run.result.metrics.query("grouping == 'overall' and `class` == ''").set_index("metric")["value"]
    assert m[["pq", "sq", "rq", "person_recall", "person_pq_owned"]].tolist() == pytest.approx([1.0] * 5)
    assert {"monk", "monk × lighting", "lighting"} <= set(run.result.metrics["grouping"])


def test_attributes_inline_in_segments_and_images(tmp_path):
    # no side tables: a person's skin in its segments_info entry, the lighting in images[].attributes
    from audit.tasks.panoptic.pipeline import evaluate_panoptic

    p = write_dataset(tmp_path, n_images=6, people_table=False, lighting=False)
    doc = json.loads(p["gt"].read_text())
    skins = []
    for k, a in enumerate(doc["annotations"]):
        for s in a["segments_info"]:
            if s["category_id"] == 1 and not s["iscrowd"]:
                s["attributes"] = {"skin": ["lighter", "darker"][len(skins) % 2]}
                skins.append(s["attributes"]["skin"])
        doc["images"][k]["attributes"] = {"lighting": ["dim", "bright"][k % 2]}
    p["gt"].write_text(json.dumps(doc))
    p["card"].write_text(p["card"].read_text().replace(
        "min_group_size", "image_groups:\n  attributes: {lighting: {column: lighting}}\nmin_group_size"))
    run = evaluate_panoptic(data=p["card"], predictions=p["preds"], n_boot=10)
    groups = run.result.groups
    people = groups.query("grouping == 'skin'").set_index("group")["n"]
    assert people.to_dict() == {"darker": skins.count("darker"), "lighter": skins.count("lighter")}
    assert groups.query("grouping == 'lighting'").set_index("group")["n"].to_dict() == {"bright": 3, "dim": 3}
    assert run.predictions["skin"].tolist() == skins


def test_model_card_merge_thresholds_are_checked(tmp_path):
    from audit.errors import CardError
    from audit.tasks.panoptic.pipeline import _load_model_card

    card = tmp_path / "m.md"
    card.write_text("---\ntask: panoptic_segmentation\nmodel: {entry_point: 'panoptic_model:oracle'}\nnum_classes: 1\n"
                    "label_map: [person]\nmerge: {overlap_threshold: 1.5}\n---\n")
    with pytest.raises(CardError, match=r"m.md: field 'merge.overlap_threshold': expected a number in \[0, 1\], "
                                        r"found 1.5$"):
        _load_model_card(card)
    card.write_text(card.read_text().replace("overlap_threshold: 1.5", "score_threshold: 0.3"))
    loaded = _load_model_card(card)
    assert loaded.front_matter["merge"] == {"score_threshold": 0.3, "overlap_threshold": 0.5,
                                            "stuff_area_threshold": 4096}


def test_one_crowd_region_per_category_as_panopticapi():
    # two crowd regions of people, K1 then K2 in segments_info; panopticapi keeps the last one per category (K2), so
    # a person prediction on K2 is excused and one on K1 is a false positive. COCO has at most one per category.
    gt = np.array([[1, 1, 1, 2, 2, 2]])
    pred = np.array([[7, 7, 7, 8, 8, 8]])
    gs = [{"id": 1, "category_id": 1, "iscrowd": 1}, {"id": 2, "category_id": 1, "iscrowd": 1}]
    ps = [{"id": 7, "category_id": 1, "iscrowd": 0}, {"id": 8, "category_id": 1, "iscrowd": 0}]
    m = _match(gt, gs, pred, ps)
    assert m.pred_fp.tolist() == [True, False]
    stat = panopticapi_single_image(gt, gs, pred, ps)
    assert stat[1][2] == 1  # panopticapi: one false positive too


def test_the_registry_finds_the_task(tmp_path):
    from audit.core.registry import Task, get_task, task_name

    task = get_task("panoptic_segmentation")
    assert isinstance(task, Task) and task.name == "panoptic_segmentation"
    assert {"pq", "sq", "rq", "person_recall", "person_pq_owned"} <= set(task.metrics)
    card = tmp_path / "c.md"
    card.write_text("---\nsplit: {panoptic: p.json}\n---\n")  # names no task: recognised by its split
    assert task_name(card) == "panoptic_segmentation"
