"""Benchmark: per-group segmentation metrics with 1,000-resample intervals against torchmetrics' overall mIoU.

1,000 images of 512 x 512 with 21 classes, fed in batches to both sides.

- ours: per-image intersection / predicted / labelled areas per class (one
  ``np.bincount`` per batch, :func:`audit.stats.segmentation_counts`), then
  :func:`audit.stats.audit_segmentation`: both pooling conventions, per-class
  IoU and Dice, pixel accuracy, for overall, 3 attributes and one
  intersection (12 groups), each with a 1,000-resample image bootstrap
  interval, disparities and tests.
- reference: ``torchmetrics.segmentation.MeanIoU(num_classes=21,
  input_format="index")`` updated on the same batches and computed once:
  the overall mIoU, no groups, no intervals.

Mask generation is not timed. The overall per-image mIoU of both sides is
printed, and must agree.

    python bench/segmentation.py [--images 1000] [--size 512] [--classes 21] [--n-boot 1000] [--batch 8]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd
import torch
from torchmetrics.segmentation import MeanIoU

from audit.stats import Attribute, audit_segmentation, segmentation_counts


def batches(n_images, size, classes, batch, seed=0):
    """Blocky label masks (16 x 16 cells) and predictions that miss more on 'darker' images."""
    rng = np.random.default_rng(seed)
    cell = size // 16
    for start in range(0, n_images, batch):
        k = min(batch, n_images - start)
        low = rng.integers(0, classes, (k, 16, 16), dtype=np.uint8)
        darker = (np.arange(start, start + k) % 2).astype(bool)
        flip = rng.random((k, 16, 16)) < np.where(darker, 0.3, 0.15)[:, None, None]
        low_pred = np.where(flip, rng.integers(0, classes, (k, 16, 16), dtype=np.uint8), low)
        label = low.repeat(cell, 1).repeat(cell, 2)
        pred = low_pred.repeat(cell, 1).repeat(cell, 2)
        noise = rng.random(label.shape) < 0.02
        pred = np.where(noise, (pred + 1) % classes, pred).astype(np.uint8)
        yield label, pred


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=1000)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--classes", type=int, default=21)
    parser.add_argument("--n-boot", type=int, default=1000)
    parser.add_argument("--batch", type=int, default=8)
    args = parser.parse_args()
    torch.set_num_threads(2)
    n, c = args.images, args.classes
    data = list(batches(n, args.size, c, args.batch))  # generated once, not timed

    t0 = time.perf_counter()
    counts = [segmentation_counts(label, pred, c) for label, pred in data]
    inter, pred_area, label_area = (np.concatenate(x) for x in zip(*counts))
    t_counts = time.perf_counter() - t0
    rng = np.random.default_rng(1)
    groups = pd.DataFrame({
        "skin_type": np.where(np.arange(n) % 2, "V", "II"),
        "gender": rng.choice(["female", "male"], n),
        "lighting": rng.choice(["dim", "normal", "bright"], n),
    })
    t1 = time.perf_counter()
    result = audit_segmentation(
        intersection=inter, pred_area=pred_area, label_area=label_area, groups=groups,
        classes=[f"c{j}" for j in range(c)], attributes=[Attribute("skin_type", scale="fitzpatrick"),
                                                         Attribute("gender"), Attribute("lighting")],
        intersections=[("gender", "skin_type")], n_boot=args.n_boot, seed=0,
    )
    t_engine = time.perf_counter() - t1
    ours = t_counts + t_engine

    t2 = time.perf_counter()
    metric = MeanIoU(num_classes=c, input_format="index")
    for label, pred in data:
        metric.update(torch.from_numpy(pred).long(), torch.from_numpy(label).long())
    reference_miou = float(metric.compute())
    reference = time.perf_counter() - t2

    n_groups = int((result.groups["grouping"] != "overall").sum()) + 1
    print(f"images={n:,}  size={args.size}x{args.size}  classes={c}  groups={n_groups}  resamples={args.n_boot}\n")
    print("| what | ours (audit.stats) | reference (torchmetrics MeanIoU, overall mIoU once) | ratio |")
    print("|---|---:|---:|---:|")
    print(f"| per-image counts (np.bincount) | {t_counts:.2f} s | | |")
    print(f"| all groups, both conventions, {args.n_boot} resamples, disparities | {t_engine:.2f} s | | |")
    print(f"| **total** | **{ours:.2f} s** | **{reference:.2f} s** | **{ours / reference:.2f}x** |")
    ours_miou = result.value(metric="miou_per_image")
    print(f"\noverall mIoU (per-image convention): ours {ours_miou:.6f}, torchmetrics {reference_miou:.6f}, "
          f"|diff| = {abs(ours_miou - reference_miou):.1e}")
    print(f"(ours also: {len(result.metrics):,} metric values with intervals, {len(result.disparities):,} disparities, "
          f"{result.significance['family_size']} tests; target ratio <= 1x)")


if __name__ == "__main__":
    main()
