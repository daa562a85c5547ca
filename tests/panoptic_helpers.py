"""Panoptic test data: random panoptic maps, a literal port of panopticapi's evaluation, tiny data sets on disk."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import numpy as np

# category id -> (name, isthing)
CATEGORIES = {1: ("person", 1), 2: ("ball", 1), 3: ("dog", 1), 4: ("sky", 0), 5: ("grass", 0), 6: ("wall", 0)}
THINGS = [c for c, (_, t) in CATEGORIES.items() if t]
STUFF = [c for c, (_, t) in CATEGORIES.items() if not t]


def _rect(rng, h, w, lo=4, hi=16):
    hh, ww = int(rng.integers(lo, hi)), int(rng.integers(lo, hi))
    return int(rng.integers(0, h - hh)), int(rng.integers(0, w - ww)), hh, ww


def random_panoptic(rng, *, h=40, w=48, void=True, crowd=False, pred_void=False):
    """A random ground truth and a perturbed prediction.

    Returns ``(gt_map, gt_segments, pred_map, pred_segments)``: int64 id maps (0 void) and lists of
    ``{"id", "category_id", "iscrowd"}``. Stuff categories have at most one segment per map (COCO's convention,
    which torchmetrics assumes); predictions have void pixels only with ``pred_void``.
    """
    gt = np.zeros((h, w), np.int64)
    cats = {}
    stuff = rng.permutation(STUFF)[:2]
    cut = int(rng.integers(h // 4, 3 * h // 4))
    for k, (top, bottom) in enumerate(((0, cut), (cut, h))):
        sid = 1000 * int(stuff[k])
        gt[top:bottom] = sid
        cats[sid] = int(stuff[k])
    shapes = []
    for k in range(int(rng.integers(2, 8))):
        sid = 10 + k
        cat = int(rng.choice(THINGS))
        y, x, hh, ww = _rect(rng, h, w)
        gt[y:y + hh, x:x + ww] = sid
        cats[sid] = cat
        shapes.append((sid, cat, y, x, hh, ww))
    if void:
        for _ in range(int(rng.integers(1, 3))):
            y, x, hh, ww = _rect(rng, h, w, 2, 9)
            gt[y:y + hh, x:x + ww] = 0
    present = [int(s) for s in np.unique(gt) if s != 0]
    things_present = [s for s in present if CATEGORIES[cats[s]][1]]
    crowd_ids = set()
    if crowd and things_present:  # at most one crowd region per category, as in COCO
        picked = rng.choice(things_present, size=min(len(things_present), int(rng.integers(1, 3))), replace=False)
        crowd_ids = set({cats[int(s)]: int(s) for s in picked}.values())
    gt_segments = [{"id": s, "category_id": cats[s], "iscrowd": int(s in crowd_ids)} for s in present]

    pred = np.zeros((h, w), np.int64)
    pcats = {}
    pcut = int(np.clip(cut + rng.integers(-3, 4), 1, h - 1))
    for k, (top, bottom) in enumerate(((0, pcut), (pcut, h))):
        cat = int(stuff[k]) if rng.random() > 0.15 else int(rng.choice([c for c in STUFF if c not in stuff]))
        sid = 2000 + 10 * cat
        pred[top:bottom] = sid
        pcats[sid] = cat
    next_id = 100
    for sid, cat, y, x, hh, ww in shapes:
        if rng.random() < 0.12:
            continue  # missed
        dy, dx = (int(v) for v in rng.integers(-3, 4, 2))
        y0, x0 = int(np.clip(y + dy, 0, h - 1)), int(np.clip(x + dx, 0, w - 1))
        hh2, ww2 = max(1, hh + int(rng.integers(-2, 3))), max(1, ww + int(rng.integers(-2, 3)))
        pcat = cat if rng.random() > 0.15 else int(rng.choice(THINGS))
        if rng.random() < 0.12 and ww2 >= 4:  # split in two
            half = ww2 // 2
            for part in ((x0, half), (x0 + half, ww2 - half)):
                pred[y0:y0 + hh2, part[0]:part[0] + part[1]] = next_id
                pcats[next_id] = pcat
                next_id += 1
            continue
        pred[y0:y0 + hh2, x0:x0 + ww2] = next_id
        pcats[next_id] = pcat
        next_id += 1
    for _ in range(int(rng.integers(0, 3))):  # background false positives
        y, x, hh, ww = _rect(rng, h, w, 2, 8)
        pred[y:y + hh, x:x + ww] = next_id
        pcats[next_id] = int(rng.choice(THINGS))
        next_id += 1
    if pred_void:
        for _ in range(int(rng.integers(1, 3))):
            y, x, hh, ww = _rect(rng, h, w, 2, 9)
            pred[y:y + hh, x:x + ww] = 0
    pred_segments = [{"id": int(s), "category_id": pcats[int(s)], "iscrowd": 0} for s in np.unique(pred) if s != 0]
    return gt, gt_segments, pred, pred_segments


def panopticapi_single_image(pan_gt, gt_segments, pan_pred, pred_segments, stat=None):
    """A literal port of ``pq_compute_single_core``'s body (cocodataset/panopticapi, panopticapi/evaluation.py),
    for one image given as id maps; the ground truth's areas are its pixel counts (the JSON's in panopticapi).
    ``stat`` maps category id -> [iou, tp, fp, fn] and is updated in place."""
    offset, void = 256 * 256 * 256, 0
    stat = defaultdict(lambda: [0.0, 0, 0, 0]) if stat is None else stat
    gt_segms = {el["id"]: dict(el) for el in gt_segments}
    pred_segms = {el["id"]: dict(el) for el in pred_segments}
    labels, counts = np.unique(pan_gt, return_counts=True)
    for label, count in zip(labels, counts):
        if label in gt_segms:
            gt_segms[label]["area"] = count
    labels, labels_cnt = np.unique(pan_pred, return_counts=True)
    for label, label_cnt in zip(labels, labels_cnt):
        if label not in pred_segms:
            if label == void:
                continue
            raise KeyError(label)
        pred_segms[label]["area"] = label_cnt
    pan_gt_pred = pan_gt.astype(np.uint64) * offset + pan_pred.astype(np.uint64)
    gt_pred_map = {}
    labels, labels_cnt = np.unique(pan_gt_pred, return_counts=True)
    for label, intersection in zip(labels, labels_cnt):
        gt_pred_map[(label // offset, label % offset)] = intersection
    gt_matched, pred_matched = set(), set()
    for (gt_label, pred_label), intersection in gt_pred_map.items():
        if gt_label not in gt_segms or pred_label not in pred_segms:
            continue
        if gt_segms[gt_label]["iscrowd"] == 1:
            continue
        if gt_segms[gt_label]["category_id"] != pred_segms[pred_label]["category_id"]:
            continue
        union = pred_segms[pred_label]["area"] + gt_segms[gt_label]["area"] - intersection \
            - gt_pred_map.get((void, pred_label), 0)
        iou = intersection / union
        if iou > 0.5:
            stat[gt_segms[gt_label]["category_id"]][1] += 1
            stat[gt_segms[gt_label]["category_id"]][0] += iou
            gt_matched.add(gt_label)
            pred_matched.add(pred_label)
    crowd_labels_dict = {}
    for gt_label, gt_info in gt_segms.items():
        if gt_label in gt_matched:
            continue
        if gt_info["iscrowd"] == 1:
            crowd_labels_dict[gt_info["category_id"]] = gt_label
            continue
        stat[gt_info["category_id"]][3] += 1
    for pred_label, pred_info in pred_segms.items():
        if pred_label in pred_matched:
            continue
        intersection = gt_pred_map.get((void, pred_label), 0)
        if pred_info["category_id"] in crowd_labels_dict:
            intersection += gt_pred_map.get((crowd_labels_dict[pred_info["category_id"]], pred_label), 0)
        if intersection / pred_info["area"] > 0.5:
            continue
        stat[pred_info["category_id"]][2] += 1
    return stat


def id_to_rgb(id_map) -> np.ndarray:
    """panopticapi's ``id2rgb``: an id map as the RGB of a panoptic PNG."""
    id_map = np.asarray(id_map, dtype=np.int64)
    return np.stack([id_map % 256, id_map // 256 % 256, id_map // 65536 % 256], -1).astype(np.uint8)


def save_png(path: Path, id_map) -> None:
    from PIL import Image

    Image.fromarray(id_to_rgb(id_map)).save(path)


def write_panoptic_json(path: Path, folder: Path, maps: dict, segments: dict, *, with_images=True,
                        categories=CATEGORIES) -> None:
    """Write ``path`` (COCO panoptic JSON) and ``folder/<image_id>.png`` from ``{image_id: id map}``."""
    folder.mkdir(parents=True, exist_ok=True)
    annotations, images = [], []
    for image_id, id_map in maps.items():
        name = f"{image_id:04d}.png"
        save_png(folder / name, id_map)
        infos = []
        for s in segments[image_id]:
            ys, xs = np.nonzero(id_map == s["id"])
            infos.append({**s, "area": int(ys.size),
                          "bbox": [int(xs.min()), int(ys.min()), int(np.ptp(xs) + 1), int(np.ptp(ys) + 1)]})
        annotations.append({"image_id": image_id, "file_name": name, "segments_info": infos})
        h, w = id_map.shape
        images.append({"id": image_id, "file_name": f"{image_id:04d}.jpg", "height": h, "width": w})
    doc = {"annotations": annotations,
           "categories": [{"id": c, "name": n, "isthing": t} for c, (n, t) in categories.items()]}
    if with_images:
        doc["images"] = images
    path.write_text(json.dumps(doc))


def write_dataset(tmp: Path, *, n_images=12, seed=0, lighting=True, people_table=True, crowd=False):
    """A tiny panoptic data set, its predictions, a person side table, an image table and a data card.

    Returns a dict of paths: ``card``, ``gt``, ``gt_dir``, ``preds``, ``preds_dir``, ``people``, ``images``,
    ``out``, and the in-memory ``maps`` (``{image_id: (gt, gt_segments, pred, pred_segments)}``).
    """
    import pandas as pd

    rng = np.random.default_rng(seed)
    maps = {i + 1: random_panoptic(rng, crowd=crowd) for i in range(n_images)}
    write_panoptic_json(tmp / "panoptic.json", tmp / "panoptic", {i: m[0] for i, m in maps.items()},
                        {i: m[1] for i, m in maps.items()})
    write_panoptic_json(tmp / "preds.json", tmp / "preds", {i: m[2] for i, m in maps.items()},
                        {i: m[3] for i, m in maps.items()}, with_images=False)
    rows = []
    for i, (_, segs, _, _) in maps.items():
        for s in segs:
            if s["category_id"] == 1 and not s["iscrowd"]:
                rows.append({"image_id": i, "segment_id": s["id"], "skin": ["lighter", "darker"][len(rows) % 2]})
    pd.DataFrame(rows).to_csv(tmp / "people.csv", index=False)
    pd.DataFrame({"image_id": list(maps), "lighting": ["well_lit", "dim"] * (n_images // 2) + ["dim"] * (n_images % 2)}
                 ).to_csv(tmp / "images.csv", index=False)
    split = ["split:", "  panoptic: panoptic.json"]
    if people_table:
        split.append("  attributes: people.csv")
    if lighting:
        split.append("  image_attributes: images.csv")
    card = ["---", "task: panoptic_segmentation", *split, "attributes:", "  skin: {column: skin}"]
    if lighting:
        card += ["image_groups:", "  attributes:", "    lighting: {column: lighting}"]
    card += ["min_group_size: 2", "---", "# A tiny panoptic split", ""]
    (tmp / "card.md").write_text("\n".join(card))
    return {"card": tmp / "card.md", "gt": tmp / "panoptic.json", "gt_dir": tmp / "panoptic",
            "preds": tmp / "preds.json", "preds_dir": tmp / "preds", "people": tmp / "people.csv",
            "images": tmp / "images.csv", "out": tmp / "out", "maps": maps}
