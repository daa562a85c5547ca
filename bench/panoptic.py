"""Benchmark: the per-group panoptic audit with 1,000-resample intervals against torchmetrics' overall PQ.

1,000 images of 512 x 512 with about 50 segments each (5 stuff bands and 45
thing rectangles, some occluded; 20 thing and 10 stuff categories, ground-truth
void), predictions that shift, resize, miss, split and relabel segments and
add false positives, missing 'darker' people more often. Both sides get the
same id maps, batch by batch; drawing them is not timed, nor is PNG decoding
(neither side reads files here).

- ours: every image reduced once (:func:`audit.tasks.panoptic.matching.compact_ids`,
  ``joint_histogram``, ``match_image``: per-class TP, IoU sum, FP, FN and per
  person matched, IoU, owned false positives), then
  :func:`audit.tasks.panoptic.statistics.audit_panoptic`: PQ, SQ, RQ (all,
  things, stuff, per class) for overall, 2 image attributes and their
  intersection, and person recall, SQ, RQ and PQ without unowned false
  positives for overall, 2 person attributes and their intersection, each
  with a 1,000-resample image bootstrap interval, disparities and tests.
- reference: ``torchmetrics.detection.PanopticQuality(return_sq_and_rq=True)``
  updated on the same batches and computed once: the overall PQ, SQ, RQ, no
  groups, no intervals.

The overall PQ, SQ and RQ of both sides are printed and must agree.

    python bench/panoptic.py [--images 1000] [--size 512] [--n-boot 1000] [--batch 4]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd
import torch
from torchmetrics.detection import PanopticQuality

from audit.stats import Attribute
from audit.tasks.panoptic.matching import Segments, compact_ids, joint_histogram, match_image
from audit.tasks.panoptic.statistics import audit_panoptic

N_THINGS, N_STUFF = 20, 10  # category indices 0..19 things (0 = person), 20..29 stuff
VOID_CATEGORY = 99


def draw(rng, size, darker_people):
    """One image: (gt ids, gt Segments, pred ids, pred Segments, skin of each person segment of the gt)."""
    gt = np.zeros((size, size), np.int32)
    gcat, pcat = {}, {}
    cuts = np.sort(rng.choice(np.arange(size // 8, size - size // 8), 4, replace=False))
    bands = np.r_[0, cuts, size]
    stuff = rng.choice(np.arange(N_THINGS, N_THINGS + N_STUFF), 5, replace=False)
    pred = np.zeros_like(gt)
    spare = [int(c) for c in np.setdiff1d(np.arange(N_THINGS, N_THINGS + N_STUFF), stuff)]
    for k in range(5):
        gt[bands[k]:bands[k + 1]] = 1000 + k
        gcat[1000 + k] = stuff[k]
        top = int(np.clip(bands[k] + (rng.integers(-6, 7) if k else 0), 0, size))
        pred[top:] = 2000 + k
        # a relabelled band takes a stuff category no other band has (one segment per stuff category, as in COCO)
        pcat[2000 + k] = stuff[k] if rng.random() > 0.1 or not spare else spare.pop()
    skin = {}
    shapes = []
    for j in range(45):
        sid = 1 + j
        cat = 0 if rng.random() < 0.3 else int(rng.integers(1, N_THINGS))
        h, w = (int(v) for v in rng.integers(20, 120, 2))
        y, x = int(rng.integers(0, size - h)), int(rng.integers(0, size - w))
        gt[y:y + h, x:x + w] = sid
        gcat[sid] = cat
        shapes.append((sid, cat, y, x, h, w))
        if cat == 0:
            skin[sid] = "darker" if rng.random() < darker_people else "lighter"
    for _ in range(3):  # void
        h, w = (int(v) for v in rng.integers(10, 40, 2))
        y, x = int(rng.integers(0, size - h)), int(rng.integers(0, size - w))
        gt[y:y + h, x:x + w] = 0
    next_id = 3000
    for sid, cat, y, x, h, w in shapes:
        miss = 0.25 if skin.get(sid) == "darker" else 0.1
        if rng.random() < miss:
            continue
        dy, dx = (int(v) for v in rng.integers(-8, 9, 2))
        y0, x0 = max(0, y + dy), max(0, x + dx)
        h2, w2 = max(2, h + int(rng.integers(-10, 11))), max(2, w + int(rng.integers(-10, 11)))
        c = cat if rng.random() > 0.1 else int(rng.integers(0, N_THINGS))
        if rng.random() < 0.08:  # split in two
            pred[y0:y0 + h2, x0:x0 + w2 // 2] = next_id
            pred[y0:y0 + h2, x0 + w2 // 2:x0 + w2] = next_id + 1
            pcat[next_id] = pcat[next_id + 1] = c
            next_id += 2
            continue
        pred[y0:y0 + h2, x0:x0 + w2] = next_id
        pcat[next_id] = c
        next_id += 1
    for _ in range(5):  # false positives on background
        h, w = (int(v) for v in rng.integers(10, 60, 2))
        y, x = int(rng.integers(0, size - h)), int(rng.integers(0, size - w))
        pred[y:y + h, x:x + w] = next_id
        pcat[next_id] = int(rng.integers(0, N_THINGS))
        next_id += 1
    g_ids = np.array(sorted(set(np.unique(gt).tolist()) - {0}), np.int64)
    p_ids = np.array(sorted(set(np.unique(pred).tolist()) - {0}), np.int64)
    g = Segments(g_ids, np.array([gcat[i] for i in g_ids], np.int64), np.zeros(len(g_ids), bool))
    p = Segments(p_ids, np.array([pcat[i] for i in p_ids], np.int64), np.zeros(len(p_ids), bool))
    return gt, g, pred, p, skin


def batches(n, size, batch, seed=0):
    rng = np.random.default_rng(seed)
    for start in range(0, n, batch):
        dim = [(start + k) % 2 == 1 for k in range(min(batch, n - start))]
        yield [draw(rng, size, 0.5) for _ in dim], dim


def _channels(ids, seg):
    lookup = dict(zip(seg.ids.tolist(), seg.category.tolist()))
    cat = np.full(ids.shape, VOID_CATEGORY, np.int64)
    for sid, c in lookup.items():
        cat[ids == sid] = c
    return np.stack([cat, ids.astype(np.int64)], -1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=1000)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--n-boot", type=int, default=1000)
    parser.add_argument("--batch", type=int, default=4)
    args = parser.parse_args()
    torch.set_num_threads(2)
    torch.set_default_dtype(torch.float64)  # torchmetrics' RQ in double, for the agreement check
    n_cat = N_THINGS + N_STUFF
    reference = PanopticQuality(things=set(range(N_THINGS)), stuffs=set(range(N_THINGS, n_cat)),
                                return_sq_and_rq=True)
    t_ours = t_reference = 0.0
    counts = {k: [] for k in ("iou", "tp", "fp", "fn")}
    people, image_rows, n_segments = [], [], 0
    for index, (images, dims) in enumerate(batches(args.images, args.size, args.batch)):
        tm_target = torch.from_numpy(np.stack([_channels(gt, g) for gt, g, _, _, _ in images]))
        tm_preds = torch.from_numpy(np.stack([_channels(pred, p) for _, _, pred, p, _ in images]))
        t0 = time.perf_counter()
        for (gt, g, pred, p, skin), dim in zip(images, dims):
            gi, _ = compact_ids(gt, g.ids)
            pi, _ = compact_ids(pred, p.ids)
            m = match_image(joint_histogram(gi, pi, len(g), len(p)), g, p, n_categories=n_cat)
            for k in counts:
                counts[k].append(getattr(m, k))
            image_id = len(image_rows)
            image_rows.append({"lighting": "dim" if dim else "bright", "camera": "a" if image_id % 3 else "b"})
            for j in np.flatnonzero(g.category == 0):
                people.append({"image_id": image_id, "matched": int(m.gt_matched[j]), "iou": m.gt_iou[j],
                               "owned_fp": int(m.gt_owned_fp[j]), "skin": skin[int(g.ids[j])],
                               "size": "large" if m.gt_area[j] > 4000 else "small"})
        t_ours += time.perf_counter() - t0
        n_segments += sum(len(g) for _, g, _, _, _ in images)
        t1 = time.perf_counter()
        reference.update(tm_preds, tm_target)
        t_reference += time.perf_counter() - t1
    t1 = time.perf_counter()
    ref_pq, ref_sq, ref_rq = (float(v) for v in reference.compute())
    t_reference += time.perf_counter() - t1
    t_reduce = t_ours

    people = pd.DataFrame(people)
    t2 = time.perf_counter()
    result = audit_panoptic(
        **{k: np.stack(v) for k, v in counts.items()}, classes=[f"c{j}" for j in range(n_cat)],
        isthing=np.arange(n_cat) < N_THINGS, image_groups=pd.DataFrame(image_rows),
        image_attributes=[Attribute("lighting"), Attribute("camera")], image_intersections=[("lighting", "camera")],
        people=people[["image_id", "matched", "iou", "owned_fp"]], person_groups=people[["skin", "size"]],
        person_attributes=[Attribute("skin"), Attribute("size")], person_intersections=[("skin", "size")],
        n_boot=args.n_boot, seed=0)
    t_engine = time.perf_counter() - t2
    ours = t_reduce + t_engine

    n_groups = len(result.groups)
    print(f"images={args.images:,}  size={args.size}x{args.size}  segments/image={n_segments / args.images:.1f}  "
          f"people={len(people):,}  categories={n_cat}  groups={n_groups}  resamples={args.n_boot}\n")
    print("| what | ours (audit.tasks.panoptic) | reference (torchmetrics PanopticQuality, overall once) | ratio |")
    print("|---|---:|---:|---:|")
    print(f"| per-image reduction (one joint histogram + matching) | {t_reduce:.2f} s | | |")
    print(f"| image and person groups, {args.n_boot} resamples, disparities | {t_engine:.2f} s | | |")
    print(f"| **total** | **{ours:.2f} s** | **{t_reference:.2f} s** | **{ours / t_reference:.2f}x** |")
    v = result.metrics.query("grouping == 'overall' and `class` == ''").set_index("metric")["value"]
    diff = max(abs(v["pq"] - ref_pq), abs(v["sq"] - ref_sq), abs(v["rq"] - ref_rq))
    print(f"\noverall PQ / SQ / RQ: ours {v['pq']:.6f} / {v['sq']:.6f} / {v['rq']:.6f}, torchmetrics {ref_pq:.6f} / "
          f"{ref_sq:.6f} / {ref_rq:.6f}, max |diff| = {diff:.1e}")
    print(f"(ours also: {len(result.metrics):,} metric values with intervals, {len(result.disparities):,} "
          f"disparities, {result.significance['family_size']} tests; target ratio <= 1x)")


if __name__ == "__main__":
    main()
