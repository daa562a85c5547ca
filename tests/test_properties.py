"""Property tests (Hypothesis, seeded and bounded): arbitrary cards, COCO files and prediction tables end in
success or an ``AuditError`` one-liner, never in another exception."""

from __future__ import annotations

import functools
import json
import math
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from audit.core.card_loaders import load_data_card, load_model_card  # noqa: E402
from audit.core.registry import load_any_data_card
from audit.tasks.detection.cards import load_detection_data_card  # noqa: E402
from audit.tasks.detection.data import load_ground_truth, load_results  # noqa: E402
from audit.errors import AuditError  # noqa: E402
from audit.core.inference import load_predictions_file  # noqa: E402

SETTINGS = settings(max_examples=60, derandomize=True, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

DATA_FIELDS = ["split", "image_root", "label_column", "classes", "attributes", "intersections", "reference_groups",
               "min_group_size", "allow_paths_outside_root", "segmentation", "compare_to", "reference_population",
               "task", "class_agnostic", "detection_classes"]
MODEL_FIELDS = ["task", "model", "weights", "trust_checkpoint", "num_classes", "label_map", "preprocessing"]
SUB_FIELDS = ["manifest", "imagefolder", "attributes", "id_column", "image_column", "coco", "masks", "column",
              "scale", "bins", "order", "votes", "architecture", "entry_point", "torchscript", "path", "enum",
              "resize", "mean", "std", "mask_column", "people", "table", "shares", "lighter", "darker", "skin_type"]

scalars = st.one_of(st.none(), st.booleans(), st.integers(-3, 300), st.floats(allow_nan=True, allow_infinity=True),
                    st.text(max_size=12), st.sampled_from(["cat", "dog", "fitzpatrick", "monk", "../x", "/etc/passwd",
                                                           "a.csv", "tiny_model:tiny_cnn", "I", "VI"]))


def _values(keys):
    return st.recursive(scalars, lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.one_of(st.sampled_from(keys), st.text(max_size=6)), inner, max_size=4)), max_leaves=12)


front_matter = st.dictionaries(st.sampled_from(DATA_FIELDS + MODEL_FIELDS), _values(SUB_FIELDS), max_size=8)


def _card(directory: Path, data) -> Path:
    path = directory / "card.md"
    path.write_text("---\n" + yaml.safe_dump(data, allow_unicode=True) + "---\n# Card\n", encoding="utf-8")
    return path


def _one_line(exc: AuditError) -> None:
    assert "\n" not in " ".join(str(exc).split()) and len(str(exc)) < 2000


@SETTINGS
@given(front_matter)
def test_arbitrary_card_front_matter(data):
    with tempfile.TemporaryDirectory() as tmp:
        path = _card(Path(tmp), data)
        for loader in (load_data_card, load_any_data_card, load_model_card, load_detection_data_card):
            try:
                loader(path)
            except AuditError as exc:
                _one_line(exc)


@SETTINGS
@given(st.text(max_size=200))
def test_arbitrary_front_matter_text(text):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "card.md"
        path.write_text("---\n" + text + "\n---\n", encoding="utf-8")
        for loader in (load_data_card, load_any_data_card, load_model_card):
            try:
                loader(path)
            except AuditError as exc:
                _one_line(exc)


coco_values = st.one_of(scalars, st.lists(st.one_of(st.integers(-5, 80), st.floats(-5, 80)), max_size=5),
                        st.dictionaries(st.sampled_from(["size", "counts", "a"]),
                                        st.one_of(st.lists(st.integers(-2, 3100), max_size=4), st.text(max_size=8),
                                                  st.integers()), max_size=2))
image_entry = st.fixed_dictionaries({"id": st.one_of(st.integers(0, 4), coco_values)},
                                    optional={"file_name": st.one_of(st.sampled_from(["a.png", "../b.png", "/c.png"]),
                                                                     coco_values),
                                              "height": st.one_of(st.just(48), coco_values),
                                              "width": st.one_of(st.just(64), coco_values)})
ann_entry = st.fixed_dictionaries(
    {"id": st.one_of(st.integers(0, 6), coco_values), "image_id": st.one_of(st.integers(0, 4), coco_values),
     "category_id": st.one_of(st.just(1), coco_values),
     "bbox": st.one_of(st.lists(st.floats(-10, 60), min_size=4, max_size=4), coco_values)},
    optional={"area": coco_values, "iscrowd": st.one_of(st.sampled_from([0, 1]), coco_values),
              "segmentation": coco_values})
coco = st.one_of(
    st.fixed_dictionaries({"images": st.lists(image_entry, max_size=4), "annotations": st.lists(ann_entry, max_size=5),
                           "categories": st.one_of(st.just([{"id": 1, "name": "person"}]),
                                                   st.lists(st.dictionaries(st.sampled_from(["id", "name"]),
                                                                            coco_values, max_size=2), max_size=2))}),
    _values(["images", "annotations", "categories", "id"]))
results = st.one_of(st.lists(st.fixed_dictionaries(
    {"image_id": st.one_of(st.integers(0, 4), coco_values), "category_id": st.one_of(st.just(1), coco_values),
     "score": st.one_of(st.floats(0, 1), coco_values)},
    optional={"bbox": st.one_of(st.lists(st.floats(-10, 60), min_size=4, max_size=4), coco_values),
              "segmentation": coco_values}), max_size=5), coco_values)


@SETTINGS
@given(coco, results, st.booleans())
def test_arbitrary_coco_json(gt_data, dt_data, masks):
    with tempfile.TemporaryDirectory() as tmp:
        gt_path, dt_path = Path(tmp) / "gt.json", Path(tmp) / "dt.json"
        gt_path.write_text(json.dumps(gt_data), encoding="utf-8")
        dt_path.write_text(json.dumps(dt_data), encoding="utf-8")
        try:
            gt = load_ground_truth(gt_path, need_masks=masks, image_root=Path(tmp) / "images")
            load_results(dt_path, gt, need_masks=masks)
        except AuditError as exc:
            _one_line(exc)


numbers = st.one_of(st.integers(-3, 5), st.floats(-10, 60), st.floats(allow_nan=True, allow_infinity=True),
                    st.booleans(), st.sampled_from([2 ** 63, -(2 ** 70), 10 ** 400]), st.text(max_size=2), st.none())
near_valid = st.lists(st.one_of(st.fixed_dictionaries(
    {"image_id": st.one_of(st.integers(1, 3), numbers), "category_id": st.one_of(st.just(1), numbers),
     "score": st.one_of(st.floats(0, 1), numbers),
     "bbox": st.one_of(st.lists(st.one_of(st.floats(0, 60), numbers), min_size=4, max_size=4),
                       st.lists(st.floats(0, 60), max_size=5), numbers)},
    optional={"segmentation": st.one_of(st.just({}), st.just([]), st.none(), coco_values)}), coco_values),
    max_size=6)


@SETTINGS
@given(near_valid)
def test_results_checked_in_bulk_equal_results_checked_one_by_one(data):
    # results_boxes checks box-only results in bulk; on every list it must give what the loop gives: the same
    # arrays, or the same one-line error naming the same first fault
    from audit.tasks.detection.data import _boxes_one_by_one, results_boxes

    gt = _three_images()

    def outcome(f):
        try:
            boxes = f(data, gt, source="dt.json", need_masks=False)
        except AuditError as exc:
            return str(exc)
        return [getattr(boxes, k).tolist() for k in ("image", "category", "bbox", "area", "score")]

    assert outcome(results_boxes) == outcome(_boxes_one_by_one)


@functools.cache
def _three_images():
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "gt.json"
        path.write_text(json.dumps({"images": [{"id": i, "file_name": f"{i}.jpg", "height": 10, "width": 10}
                                               for i in (1, 2, 3)], "annotations": [],
                                    "categories": [{"id": 1, "name": "person"}]}))
        return load_ground_truth(path)


cells = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.floats(0, 1), st.text(max_size=5),
                  st.none(), st.integers(-3, 3))


@SETTINGS
@given(st.lists(st.tuples(cells, cells, st.one_of(cells, st.sampled_from(["cat", "dog"]))), min_size=4, max_size=4),
       st.one_of(st.just(["s0", "s1", "s2", "s3"]), st.lists(st.one_of(st.sampled_from(["s0", "s1", "s2", "s3"]),
                                                                     st.text(max_size=4)), min_size=0, max_size=5)),
       st.sampled_from([("score_cat", "score_dog"), ("score_cat", "score_dog", "pred"), ("pred",),
                        ("score_cat",), ()]))
def test_arbitrary_prediction_tables(values, ids, columns):
    rows = [(sid, *values[i % 4]) for i, sid in enumerate(ids)]
    with tempfile.TemporaryDirectory() as tmp:
        frame = pd.DataFrame([(r[0], *r[1:1 + len(columns)]) for r in rows], columns=["sample_id", *columns])
        path = Path(tmp) / "preds.csv"
        frame.to_csv(path, index=False)
        try:
            out = load_predictions_file(path, sample_ids=["s0", "s1", "s2", "s3"], classes=["cat", "dog"])
        except AuditError as exc:
            _one_line(exc)
            return
        scores = out[[c for c in out.columns if c.startswith("score_")]].to_numpy(dtype=float)
        complete = ~np.isnan(scores).any(axis=1) if scores.size else np.zeros(0, bool)
        if scores.size:  # accepted scores are probabilities
            assert ((scores[complete] >= 0) & (scores[complete] <= 1)).all()
            assert all(math.isclose(s, 1, abs_tol=1e-3) for s in scores[complete].sum(axis=1))
