"""The panoptic audit end to end: cards -> ground truth -> predictions -> one reduction per image -> engine.

Predictions come from, in order of precedence: ``predictions`` (a COCO
panoptic JSON made elsewhere, its PNGs in the folder of the same name without
``.json``, as panopticapi expects); the cache in ``out_dir`` when the model and
data hashes match; running the model (:mod:`audit.tasks.panoptic.inference`).
Each image's ground truth and prediction are then read once, checked, and
reduced to their sufficient statistics (:func:`~audit.tasks.panoptic.matching.match_image`);
:func:`~audit.tasks.panoptic.statistics.audit_panoptic` does the rest.
"""

from __future__ import annotations

import logging
import platform
from pathlib import Path

import numpy as np
import pandas as pd

from ...errors import AuditError, CardError, PredictionError, StatsInputError

__all__ = ["evaluate_panoptic", "reduce_split"]

log = logging.getLogger("audit")


def reduce_split(gt, pred, people: pd.DataFrame, *, progress: bool | None = None):
    """Read every image's ground truth and prediction once and reduce them to sufficient statistics.

    Parameters
    ----------
    gt, pred : PanopticSet
        The ground truth and the predictions (checked against each other here).
    people : DataFrame
        :func:`~audit.tasks.panoptic._attributes.person_segments` of ``gt``.

    Returns
    -------
    counts : dict of str to ndarray (N, C)
        ``iou``, ``tp``, ``fp``, ``fn`` per image (annotation order) and category.
    person_stats : DataFrame
        Per row of ``people``: ``matched``, ``iou`` (of the match, 0 when unmatched), ``owned_fp``; for the
        report's worst errors ``best_iou`` (the largest IoU with a predicted segment of the person's category),
        ``x``, ``y``, ``w``, ``h`` (the person segment's box) and ``best_x`` ... ``best_h`` (the box of that
        predicted segment, NaN when none overlaps).
    """
    from .data import read_ids
    from .matching import joint_histogram, match_image, segment_boxes

    by_image = pred.by_image()
    missing = [a.image_id for a in gt.annotations if a.image_id not in by_image]
    extra = sorted(set(by_image) - {a.image_id for a in gt.annotations})
    if missing or extra:
        raise PredictionError(f"{pred.path}: field 'annotations': expected one prediction per image of {gt.path}, "
                              f"found {len(missing)} missing (image id {missing[0] if missing else '-'}) and "
                              f"{len(extra)} not in the ground truth (image id {extra[0] if extra else '-'})")
    n, c = len(gt.annotations), len(gt.category_ids)
    counts = {k: np.zeros((n, c), dtype=float if k == "iou" else np.int64) for k in ("iou", "tp", "fp", "fn")}
    per_ann, boxes = {}, {}
    wanted = set(people["ann"].tolist())
    people_of = {a: part["seg"].to_numpy() for a, part in people.groupby("ann", sort=False)}
    sizes = dict(zip(gt.images["image_id"], zip(gt.images["height"], gt.images["width"])))
    iterator = gt.annotations
    if progress:
        from tqdm import tqdm

        iterator = tqdm(iterator, desc="panoptic", unit="image")
    for a, ann in enumerate(iterator):
        size = sizes.get(ann.image_id, (np.nan, np.nan))
        size = None if any(pd.isna(s) for s in size) else (int(size[0]), int(size[1]))
        gi, shape, _ = read_ids(ann, gt, size=size)
        p = by_image[ann.image_id]
        pi, _, _ = read_ids(p, pred, size=shape, prediction=True)
        m = match_image(joint_histogram(gi, pi, len(ann.segments), len(p.segments)), ann.segments, p.segments,
                        n_categories=c)
        for k in counts:
            counts[k][a] = getattr(m, k)
        if a in wanted:
            per_ann[a] = m
            mine = people_of[a]
            theirs = m.gt_best_pred[mine]  # the best-overlapping predictions of this image's people
            boxes[a] = (segment_boxes(gi, shape, len(ann.segments), segments=mine),
                        segment_boxes(pi, shape, len(p.segments), segments=theirs[theirs >= 0]))
    columns = ["matched", "iou", "owned_fp", "best_iou", *"xywh", *(f"best_{c}" for c in "xywh")]
    if not len(people):
        return counts, pd.DataFrame({c: [] for c in columns})
    rows = [per_ann[a] for a in people["ann"]]
    seg = people["seg"].to_numpy()
    gt_box = np.array([boxes[a][0][s] for a, s in zip(people["ann"], seg)])
    best = [m.gt_best_pred[s] for m, s in zip(rows, seg)]
    best_box = np.array([boxes[a][1][b] if b >= 0 else np.full(4, np.nan) for a, b in zip(people["ann"], best)])
    person_stats = pd.DataFrame({
        "matched": [int(m.gt_matched[s]) for m, s in zip(rows, seg)],
        "iou": [float(m.gt_iou[s]) for m, s in zip(rows, seg)],
        "owned_fp": [int(m.gt_owned_fp[s]) for m, s in zip(rows, seg)],
        "best_iou": [float(m.gt_best_iou[s]) for m, s in zip(rows, seg)]})
    for k, c in enumerate("xywh"):
        person_stats[c] = gt_box[:, k]
        person_stats[f"best_{c}"] = best_box[:, k]
    return counts, person_stats[columns]


def _load_model_card(model):
    from ...core.front_matter import read_front_matter
    from .cards import PANOPTIC_TASK, load_panoptic_model_card

    if model is None or not isinstance(model, (str, Path)):
        return model
    front, body = read_front_matter(model)
    if front.get("task") != PANOPTIC_TASK:
        raise CardError(f"{model}: field 'task': expected {PANOPTIC_TASK} for a panoptic data card, found "
                        f"{front.get('task')!r}")
    return load_panoptic_model_card(model, front, body)


def evaluate_panoptic(*, data, model=None, predictions=None, out_dir=None, use_cache: bool = True,
                      batch_size: int = 4, device: str | None = None, seed: int = 0, n_boot: int = 1000,
                      alpha: float = 0.05, progress: bool | None = None, chunk_size: int = 1024, context=None,
                      **_ignored):
    """Audit panoptic predictions (a file) or a model on a panoptic data card.

    Parameters
    ----------
    data : str, Path or PanopticDataCard
        The data card.
    model : str, Path or ModelCard, optional
        A ``task: panoptic_segmentation`` model card; used when ``predictions`` is None.
    predictions : str or Path, optional
        A COCO panoptic predictions JSON; its PNGs are in the folder of the same name without ``.json``.
    out_dir : str or Path, optional
        Where a model's predictions are chunked and cached (a temporary folder when None).
    n_boot, seed, alpha : int, int, float
        Bootstrap resamples, their seed, the significance level.
    _ignored
        The driver's options that do not apply here (``n_perm``, ``bootstrap``, ``num_workers``,
        ``verify_images``).

    Returns
    -------
    AuditRun or None
        None on a ``torchrun`` rank other than 0. ``predictions`` holds one row per person segment
        (``image_id``, ``segment_id``, ``matched``, ``iou``, ``owned_fp`` and the raw attributes), ``images`` one
        row per image with its own PQ.
    """
    from ..._version import __version__
    from ...core.run import AuditRun, created_time, model_provenance, check_reference_groups
    from ...core.tables import binned_group_columns, fingerprint_files
    from ._attributes import image_attribute_values, person_attribute_values, person_category_indices, \
        person_segments
    from .cards import PanopticDataCard, load_panoptic_data_card
    from .data import load_panoptic
    from .statistics import audit_panoptic

    card = data if isinstance(data, PanopticDataCard) else load_panoptic_data_card(data)
    model_card = _load_model_card(model)
    if model_card is None and predictions is None:
        raise AuditError("expected a model card or a predictions file, found neither")
    net = None
    if model_card is not None and predictions is None:  # built before the data: a bad model fails fast
        from ...core.models import build_from_card, guard_forward

        net = guard_forward(build_from_card(model_card, build_architecture=None), model_card)
    gt = load_panoptic(card.panoptic, card.segmentations, allow_outside=card.allow_paths_outside_root)
    people = person_segments(gt, person_category_indices(card, gt))
    person_groups = person_attribute_values(card, gt, people)
    image_groups = image_attribute_values(card, gt)
    person_attrs = [a.engine_attribute(column=a.name) for a in card.attributes]
    image_attrs = [a.engine_attribute(column=a.name) for a in card.image_group_attributes]
    check_reference_groups(card.path, person_groups, person_attrs, card.intersections, card.reference_groups)
    check_reference_groups(card.path, image_groups, image_attrs, card.image_intersections,
                           card.image_reference_groups)
    data_sha = fingerprint_files(card.path, card.panoptic, card.attributes_table, card.image_attributes)
    log.info("data: %s (%d images, %d people)", card.path, len(gt.annotations), len(people))

    model_sha = None
    if model_card is not None:
        from ...core.models import fingerprint_model

        model_sha = fingerprint_model(model_card)
    if predictions is not None:
        from ...core.inference import file_sha256

        pred_path = Path(predictions)
        pred_info = {"source": "file", "file": str(predictions), "sha256": file_sha256(pred_path)
                     if pred_path.is_file() else None}
    else:
        from .inference import load_cached, predict_panoptic

        key = f"{model_sha}{data_sha}"
        cached = load_cached(out_dir, key) if (out_dir is not None and use_cache) else None
        if cached is not None:
            pred_path, device_used = cached
            log.info("predictions: reusing cache %s (model and data hashes match)", pred_path)
        else:
            import tempfile

            import torch

            from ...core.distributed import context_from_env
            from ...core.models import select_device

            torch_device = select_device(device)
            torch.manual_seed(seed)
            log.info("predictions: running %s on %s", model_card.name, torch_device)
            target = out_dir if out_dir is not None else tempfile.mkdtemp(prefix="audit-panoptic-")
            pred_path = predict_panoptic(net.to(torch_device), gt, model_card, image_root=card.image_root,
                                         allow_outside=card.allow_paths_outside_root, device=torch_device,
                                         batch_size=batch_size, out_dir=target, key=key, chunk_size=chunk_size,
                                         context=context or context_from_env())
            if pred_path is None:
                return None  # not rank 0
            device_used = str(torch_device)
        pred_info = {"source": "model", "device": device_used}
    pred = load_panoptic(pred_path, Path(pred_path).with_suffix(""), prediction=True,
                         categories=(gt.category_ids, gt.names, gt.isthing),
                         allow_outside=card.allow_paths_outside_root)
    counts, person_stats = reduce_split(gt, pred, people, progress=progress)
    correction = card.options.get("correction", "fdr_bh")
    interval = card.options.get("interval", "wilson")
    try:  # the engine's message names the argument; say which card declared it
        result = audit_panoptic(
            **counts, classes=gt.names, isthing=gt.isthing, image_ids=[a.image_id for a in gt.annotations],
            image_groups=image_groups, image_attributes=image_attrs, image_intersections=card.image_intersections,
            image_reference_groups=card.image_reference_groups or None,
            people=pd.concat([people[["image_id"]], person_stats], axis=1), person_groups=person_groups,
            person_attributes=person_attrs, person_intersections=card.intersections,
            person_reference_groups=card.reference_groups or None,
            disparity_metrics=card.options.get("disparity_metrics"), n_boot=n_boot, seed=seed, alpha=alpha,
            correction=correction, interval=interval,
            min_group_size=card.min_group_size)
    except StatsInputError as exc:
        raise StatsInputError(f"{card.path}: {exc}") from None
    table = pd.concat([people[["image_id", "segment_id"]], person_stats[["matched", "iou", "owned_fp"]],
                       person_groups], axis=1)
    people_out = _people_table(gt, people, person_stats, person_groups, attributes=person_attrs,
                               intersections=card.intersections)
    images = _image_table(gt, counts)
    if image_attrs:
        binned = binned_group_columns(image_groups, attributes=image_attrs, intersections=card.image_intersections)
        for column, values in binned.items():
            images[column] = values
    import torch

    provenance = {
        "audit_version": __version__, "created": created_time(), "task": "panoptic_segmentation",
        "model": model_provenance(model_card, model_sha),
        "data": {"card": str(card.path), "name": card.name,
                 "title": str(card.front_matter.get("pretty_name") or card.front_matter.get("name") or card.name),
                 "sha256": data_sha, "split": str(card.panoptic), "n_samples": int(len(gt.annotations)),
                 "n_images": int(len(gt.annotations)), "n_people": int(len(people)), "classes": list(gt.names),
                 "attributes": [a.name for a in card.attributes],
                 "image_attributes": [a.name for a in card.image_group_attributes]},
        "predictions": pred_info,
        "settings": {"seed": seed, "n_boot": n_boot, "interval": interval, "alpha": alpha, "correction": correction,
                     "min_group_size": card.min_group_size},
        "environment": {"python": platform.python_version(), "torch": torch.__version__, "numpy": np.__version__,
                        "pandas": pd.__version__},
    }
    return AuditRun(result=result, provenance=provenance, predictions=table, people=people_out, images=images)


def _people_table(gt, people: pd.DataFrame, stats: pd.DataFrame, groups: pd.DataFrame, *, attributes,
                  intersections) -> pd.DataFrame:
    """One row per non-crowd person segment, written as ``people.parquet`` (the report's worst errors).

    Columns: ``person`` (``image_id/segment_id``), ``image_id``, ``segment_id``, ``file_name`` (the photograph,
    relative to the card's ``image_root``), ``x``, ``y``, ``w``, ``h`` (the segment's box), ``matched`` (COCO
    panoptic matching, as ``person_recall`` counts), ``iou`` (of the match), ``best_iou`` and ``best_x`` ...
    ``best_h`` (the best-overlapping predicted segment of the person's category), ``owned_fp`` and
    ``group:<attribute>``, binned as the audit bins.
    """
    from ...core.tables import binned_group_columns

    names = dict(zip(gt.images["image_id"], gt.images["file_name"].astype(str)))
    table = pd.DataFrame({
        "person": [f"{i}/{s}" for i, s in zip(people["image_id"], people["segment_id"])],
        "image_id": people["image_id"].to_numpy(dtype=np.int64),
        "segment_id": people["segment_id"].to_numpy(dtype=np.int64),
        "file_name": [names.get(i, "") for i in people["image_id"]]})
    for c in ("x", "y", "w", "h", "matched", "iou", "best_iou", "best_x", "best_y", "best_w", "best_h", "owned_fp"):
        table[c] = stats[c].to_numpy()
    table["matched"] = table["matched"].astype(bool)
    if len(table) and attributes:
        for column, values in binned_group_columns(groups, attributes=attributes, intersections=intersections).items():
            table[column] = values
    return table


def _image_table(gt, counts) -> pd.DataFrame:
    """One row per image: ``image_id``, ``file_name`` and its own PQ (mean over the categories in it)."""
    from .statistics import coco_pq

    pq = [coco_pq(counts["iou"][i], counts["tp"][i], counts["fp"][i], counts["fn"][i], gt.isthing)["all"]["pq"]
          for i in range(len(gt.annotations))]
    return pd.DataFrame({"image_id": [a.image_id for a in gt.annotations],
                         "file_name": gt.images["file_name"].astype(str).tolist(), "pq": pq})
