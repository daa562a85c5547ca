"""Small synthetic audits of all three tasks, for the report's tests and benchmark (no files, no models).

Each function returns a ``results.json`` document (:func:`audit.pipeline.results_document`) and, for the
classifier, the per-sample frames the report reads from ``predictions.parquet`` and ``samples.parquet``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["classification_example", "detection_example", "segmentation_example"]

_ENV = {"python": "3.11", "torch": "x", "numpy": "x", "pandas": "x"}


def _provenance(task, name, n, classes, attributes, *, seed, n_boot):
    return {
        "audit_version": "0.1.0", "created": "2026-01-01T00:00:00+00:00", "task": task,
        "model": {"card": f"models/{name}.md", "name": name, "title": f"Synthetic {task} model",
                  "sha256": "a" * 64, "source": "entry point example:model", "weights": None, "weights_sha256": None},
        "data": {"card": f"data_cards/{name}.md", "name": name, "title": f"Synthetic {task} split", "sha256": "b" * 64,
                 "split": f"data/{name}.csv", "n_samples": int(n), "classes": list(classes),
                 "attributes": list(attributes)},
        "predictions": {"source": "file", "file": f"{name}_predictions.csv", "sha256": "c" * 64},
        "settings": {"seed": seed, "n_boot": n_boot, "alpha": 0.05, "correction": "fdr_bh", "min_group_size": 50},
        "environment": dict(_ENV),
    }


def classification_example(n: int = 600, *, seed: int = 0, n_boot: int = 50, group_names=None):
    """A binary classifier that errs more on darker skin: (document, predictions, samples)."""
    from ..compare import samples_table
    from ..core.run import results_document
    from ..stats import Attribute, audit_classification

    rng = np.random.default_rng(seed)
    skin = rng.choice(["I", "II", "III", "IV", "V", "VI"], n)
    gender = rng.choice(list(group_names or ["female", "male"]), n, p=[0.45, 0.55])
    y = rng.integers(0, 2, n)
    darker = np.isin(skin, ["IV", "V", "VI"])
    margin = rng.normal(np.where(darker, 0.8, 1.8), 1.0)
    p1 = 1 / (1 + np.exp(-np.where(y == 1, margin, -margin)))
    pred = (p1 >= 0.5).astype(np.int64)
    groups = pd.DataFrame({"skin_type": skin, "gender": gender})
    attributes = [Attribute("skin_type", scale="fitzpatrick"), Attribute("gender")]
    intersections = [("gender", "skin_type")]
    classes = ["negative", "positive"]
    result = audit_classification(
        y_true=y, y_pred=pred, groups=groups, attributes=attributes, intersections=intersections, classes=classes,
        scores=np.column_stack([1 - p1, p1]), reference_groups={"skin_type": "lighter"}, n_boot=n_boot, n_perm=n_boot,
        seed=seed)
    ids = pd.Series([f"s{i:04d}" for i in range(n)])
    predictions = pd.DataFrame({"sample_id": ids, "label": y, "score_negative": 1 - p1, "score_positive": p1,
                                "pred": pred})
    samples = samples_table(ids, predictions["label"], predictions["pred"], groups, attributes, intersections)
    doc = results_document(result, provenance=_provenance("classification", "cls", n, classes,
                                                          ["skin_type", "gender"], seed=seed, n_boot=n_boot))
    return doc, predictions, samples


def detection_example(n_images: int = 120, *, seed: int = 0, n_boot: int = 50, people: bool = False):
    """A person detector that misses more of group g2: the results document.

    With ``people``, also the per-person table of ``people.parquet`` (images ``<image id>.png``, 640x480):
    ``(document, people)``.
    """
    from ..tasks.detection.cocoeval import Boxes
    from ..tasks.detection.pipeline import audit_detections_with_matches, person_table
    from ..core.run import results_document
    from ..stats import Attribute

    rng = np.random.default_rng(seed)
    W, H = 640, 480
    gt_rows, dt_rows, groups = [], [], []
    for im in range(1, n_images + 1):
        for _ in range(int(rng.integers(1, 6))):
            w = float(rng.uniform(10, 220))
            h = w * float(rng.uniform(1.2, 2.0))
            x, y = float(rng.uniform(0, W - w)), float(rng.uniform(0, max(H - h, 1)))
            g = str(rng.choice(["g1", "g2"]))
            gt_rows.append((im, [x, y, w, h], w * h, len(gt_rows) + 1))
            groups.append(g)
            if rng.random() < (0.1 if g == "g1" else 0.3):
                continue
            j = rng.normal(0, 0.1 if g == "g1" else 0.2, 4) * [w, h, w, h]
            box = [x + j[0], y + j[1], max(w + j[2], 2.0), max(h + j[3], 2.0)]
            dt_rows.append((im, box, box[2] * box[3], float(rng.uniform(0.3, 1))))
    gt = Boxes([r[0] for r in gt_rows], [1] * len(gt_rows), [r[1] for r in gt_rows], [r[2] for r in gt_rows],
               iscrowd=[0] * len(gt_rows), ann_id=[r[3] for r in gt_rows])
    dt = Boxes([r[0] for r in dt_rows], [1] * len(dt_rows), [r[1] for r in dt_rows], [r[2] for r in dt_rows],
               score=[r[3] for r in dt_rows])
    frame, attributes = pd.DataFrame({"group": groups}), [Attribute("group")]
    result, matches = audit_detections_with_matches(
        gt=gt, dt=dt, groups=frame, attributes=attributes, intersections=(), class_agnostic=True, masks=False,
        per_group_ap=True, n_boot=n_boot, seed=seed, interval="wilson", alpha=0.05, correction="fdr_bh",
        min_group_size=50, reference_groups={"group": "g1"}, categories=["person"])
    doc = results_document(result, provenance=_provenance("detection", "det", len(groups), ["person"], ["group"],
                                                          seed=seed, n_boot=n_boot))
    if not people:
        return doc
    names = {im: f"{im:04d}.png" for im in range(1, n_images + 1)}
    return doc, person_table(gt, matches, frame, attributes, file_names=names, detections=dt)


def segmentation_example(n_images: int = 200, *, seed: int = 0, n_boot: int = 50, n_classes: int = 5):
    """A semantic segmenter that is worse on darker images: the results document."""
    from ..core.run import results_document
    from ..stats import Attribute, audit_segmentation

    rng = np.random.default_rng(seed)
    label_area = rng.integers(0, 4000, (n_images, n_classes))
    darker = np.arange(n_images) % 2 == 1
    quality = np.where(darker, 0.7, 0.85)[:, None] * rng.uniform(0.9, 1.0, (n_images, n_classes))
    inter = (label_area * quality).astype(np.int64)
    pred_area = inter + rng.integers(0, 600, (n_images, n_classes))
    groups = pd.DataFrame({"skin_type": np.where(darker, "V", "II"),
                           "lighting": rng.choice(["dim", "normal", "bright"], n_images)})
    classes = [f"class{j}" for j in range(n_classes)]
    result = audit_segmentation(intersection=inter, pred_area=pred_area, label_area=label_area, groups=groups,
                                classes=classes, attributes=[Attribute("skin_type", scale="fitzpatrick"),
                                                             Attribute("lighting")],
                                n_boot=n_boot, seed=seed)
    return results_document(result, provenance=_provenance("semantic_segmentation", "seg", n_images, classes,
                                                           ["skin_type", "lighting"], seed=seed, n_boot=n_boot))
