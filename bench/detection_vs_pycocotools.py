"""Per-group detection audit vs one overall pycocotools evaluation, on the same synthetic COCO data.

5,000 images, about 36k ground-truth people (one category), 100 detections
per image (some near people, most on background), each person in one of 6
groups. Ours: COCO matching once (every IoU threshold and area range),
overall AP/AR (the 12 COCOeval numbers, checked identical to pycocotools
here), per-person statistics, and recall/AR/AR50/AR75/miss rate/IoU/size
metrics for the 6 groups through the engine, with and without 1,000
cluster-bootstrap resamples. Reference: ``COCO.loadRes`` + ``COCOeval``
``evaluate``/``accumulate``/``summarize`` for the overall numbers only.

    python bench/detection_vs_pycocotools.py [--images 5000] [--n-boot 1000]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import time

import numpy as np
import pandas as pd


def make_data(n_images: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    W, H = 640, 480
    images = [{"id": i + 1, "width": W, "height": H} for i in range(n_images)]
    anns, dets = [], []
    group_names = ["g1", "g2", "g3", "g4", "g5", "g6"]
    miss = np.linspace(0.05, 0.35, 6)
    groups = []
    for im in images:
        k = int(rng.integers(1, 14))  # mean ~7.2 people per image
        w = rng.uniform(10, 200, k)
        h = w * rng.uniform(1.2, 2.5, k)
        x = rng.uniform(0, W - w)
        y = rng.uniform(0, np.maximum(H - h, 1))
        g = rng.integers(0, 6, k)
        for j in range(k):
            anns.append({"id": len(anns) + 1, "image_id": im["id"], "category_id": 1,
                         "bbox": [float(x[j]), float(y[j]), float(w[j]), float(h[j])], "area": float(w[j] * h[j]),
                         "iscrowd": 0})
            groups.append(group_names[g[j]])
        n_near = 0
        for j in range(k):
            if rng.random() < miss[g[j]]:
                continue
            jit = rng.normal(0, 0.08, 4) * [w[j], h[j], w[j], h[j]]
            dets.append({"image_id": im["id"], "category_id": 1,
                         "bbox": [float(x[j] + jit[0]), float(y[j] + jit[1]), float(max(w[j] + jit[2], 2)),
                                  float(max(h[j] + jit[3], 2))], "score": float(rng.uniform(0.3, 1.0))})
            n_near += 1
        rest = 100 - n_near
        bw, bh = rng.uniform(8, 150, rest), rng.uniform(8, 150, rest)
        bx, by = rng.uniform(0, W - bw), rng.uniform(0, H - bh)
        sc = rng.uniform(0, 0.6, rest)
        dets += [{"image_id": im["id"], "category_id": 1, "bbox": [float(bx[i]), float(by[i]), float(bw[i]),
                                                                    float(bh[i])], "score": float(sc[i])}
                 for i in range(rest)]
    gt = {"images": images, "annotations": anns, "categories": [{"id": 1, "name": "person"}]}
    return gt, dets, pd.DataFrame({"group": groups})


def ours(gt, dets, groups, n_boot):
    from audit.tasks.detection.cocoeval import Boxes
    from audit.tasks.detection.pipeline import audit_detections
    from audit.stats import Attribute

    a = gt["annotations"]
    gtb = Boxes([x["image_id"] for x in a], [x["category_id"] for x in a], [x["bbox"] for x in a],
                [x["area"] for x in a], iscrowd=[x["iscrowd"] for x in a], ann_id=[x["id"] for x in a])
    dtb = Boxes([d["image_id"] for d in dets], [d["category_id"] for d in dets], [d["bbox"] for d in dets],
                [d["bbox"][2] * d["bbox"][3] for d in dets], score=[d["score"] for d in dets])
    return audit_detections(gt=gtb, dt=dtb, groups=groups, attributes=[Attribute("group")], class_agnostic=False,
                            per_group_ap=False, n_boot=n_boot, seed=0)


def reference(gt, dets):
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO()
        coco.dataset = gt
        coco.createIndex()
        res = coco.loadRes(dets)
        e = COCOeval(coco, res, "bbox")
        e.evaluate()
        e.accumulate()
        e.summarize()
    return e


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--images", type=int, default=5000)
    parser.add_argument("--n-boot", type=int, default=1000)
    args = parser.parse_args()
    gt, dets, groups = make_data(args.images)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ours(*make_data(20, seed=1), 10)  # warm-up: imports, first calls (tiny groups warn)
    print(f"images={args.images:,}  ground truth={len(gt['annotations']):,}  detections={len(dets):,} "
          f"({len(dets) / args.images:.0f}/image)  groups=6")
    t0 = time.perf_counter()
    r0 = ours(gt, dets, groups, 0)
    t_ours0 = time.perf_counter() - t0
    t0 = time.perf_counter()
    r1 = ours(gt, dets, groups, args.n_boot)
    t_ours1 = time.perf_counter() - t0
    import copy

    t0 = time.perf_counter()
    e = reference(copy.deepcopy(gt), copy.deepcopy(dets))
    t_ref = time.perf_counter() - t0
    names = ["AP", "AP50", "AP75", "AP_small", "AP_medium", "AP_large", "AR1", "AR10", "AR100", "AR_small",
             "AR_medium", "AR_large"]
    mine = np.array([r0.value(metric=f"bbox_{n}_coco") for n in names])
    mine = np.where(np.isnan(mine), -1.0, mine)
    same = np.array_equal(mine, np.asarray(e.stats))
    recall_ref = float(e.eval["recall"][0, 0, 0, 2])  # IoU 0.50, area all, 100 detections
    recall_ours = r0.value(metric="recall@0.50")
    print()
    print("| what | ours | pycocotools | ratio (ours / reference) |")
    print("|---|---:|---:|---:|")
    print(f"| overall AP/AR + per-group AR for 6 groups, no resampling | {t_ours0:.2f} s | {t_ref:.2f} s "
          f"(overall only) | {t_ours0 / t_ref:.3f}x |")
    print(f"| the same with {args.n_boot} cluster-bootstrap resamples | {t_ours1:.2f} s | {t_ref:.2f} s "
          f"(overall only) | {t_ours1 / t_ref:.3f}x |")
    print()
    print(f"overall COCO numbers identical to pycocotools: {same} (AP={e.stats[0]:.4f}, AR100={e.stats[8]:.4f})")
    print(f"recall@0.50: ours {recall_ours:.6f}, pycocotools recall[t=0.50, all, 100] {recall_ref:.6f}")
    table = r1.metrics.query("grouping == 'group' and metric in ['ar', 'recall@0.50', 'recall@0.75']")
    print(table.pivot(index="group", columns="metric", values="value").round(4).to_string())


if __name__ == "__main__":
    main()
