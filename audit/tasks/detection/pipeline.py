"""Detection and instance-segmentation audits: cards -> COCO data -> detections -> matching -> engine -> report.

What is measured (IoU thresholds 0.50:0.05:0.95, at most 100 detections per
image, COCO's greedy matching; see :mod:`audit.tasks.detection.cocoeval`):

* **Overall COCO AP/AR** (``bbox_*``, ``segm_*``): the 12 numbers of
  ``COCOeval.summarize``, identical to pycocotools (tested bit for bit).
  Class-agnostic cards use pycocotools' ``useCats=0``.
* **Per group, recall-based** (with cluster-bootstrap intervals over images,
  disparities and tests from :func:`audit.stats.audit_ratio_metrics`):
  ``recall@0.50``, ``recall@0.75``, ``ar`` (mean recall over the ten
  thresholds, FACET's mAR), ``miss_rate@0.50``, ``matched_iou@0.50`` (mean IoU
  of the people found at 0.50: localisation quality), ``ar_small`` /
  ``ar_medium`` / ``ar_large`` and ``recall@0.50_<size>`` (COCO's area
  ranges: a ground truth outside the range is ignored, as in ``AR_small``),
  and the same with mask IoU (``mask_*``) for instance segmentation. Each
  person is matched once, together with everyone else in the image; the
  groups then split the people.
* **Per-group AP** (``bbox_AP``, ``bbox_AP50``, ``bbox_AP75``, ``segm_*``) as
  in Wilson et al.: only the images that contain the group, with every
  other person *ignored* -- a detection on them is neither a true nor a
  false positive, and missing them is no miss. Point estimates.

Why recall: a false positive is a detection of nobody, so it belongs to no
demographic group; only misses (and their complement, recall) can be
attributed to a person, and so to a group. Per-group AP still moves with
false positives on background, shared by all groups, which is why the
disparities and their tests are on recall.
"""

from __future__ import annotations

import functools
import json
import logging
import platform
from pathlib import Path

import numpy as np
import pandas as pd

from ...core.distributed import CHUNK_DIR, context_from_env, discard_chunks, predict_in_chunks

from ...errors import AuditError, PredictionError
from .cocoeval import AREA_RANGES, IOU_THRESHOLDS, MAX_DETS, Boxes, Matches, accumulate, match, summarize

__all__ = ["RECALL_EXPLANATION", "audit_detections", "evaluate_detection", "person_statistics", "person_table",
           "recall_metrics"]

log = logging.getLogger("audit")

RECALL_EXPLANATION = (
    "Detection disparities are recall-based: a false positive is a detection of nobody, so it cannot be "
    "attributed to a demographic group, while every miss belongs to a person and so to that person's groups "
    "(FACET; Wilson et al.). Per-group AP ignores the other groups' people but still shares the background "
    "false positives; it is reported as a point estimate."
)
THRESHOLD_LABELS = [f"{t:.2f}" for t in IOU_THRESHOLDS]
SIZES = [a[0] for a in AREA_RANGES[1:]]


def person_statistics(matches: Matches, people: np.ndarray, *, prefix: str = "") -> dict[str, np.ndarray]:
    """Per-person additive statistics from one matching: matched, IoU of the match, per size range."""
    cols = {}
    for t, lab in enumerate(THRESHOLD_LABELS):
        cols[f"{prefix}matched@{lab}"] = matches.gt_matched[0, t, people].astype(float)
        cols[f"{prefix}iou@{lab}"] = matches.gt_iou[0, t, people]
    cols[f"{prefix}missed@0.50"] = 1.0 - cols[f"{prefix}matched@0.50"]
    for a, size in enumerate(SIZES, start=1):
        in_range = ~matches.gt_ignore[a, people]
        cols[f"{prefix}total_{size}"] = in_range.astype(float)
        for t, lab in enumerate(THRESHOLD_LABELS):
            cols[f"{prefix}matched_{size}@{lab}"] = (matches.gt_matched[a, t, people] & in_range).astype(float)
    return cols


def recall_metrics(prefix: str = "") -> dict[str, list[tuple[str, str]]]:
    """Metric name -> (numerator, denominator) parts, for :func:`audit.stats.audit_ratio_metrics`."""
    p = prefix
    m = {
        f"{p}recall@0.50": [(f"{p}matched@0.50", "total")],
        f"{p}recall@0.75": [(f"{p}matched@0.75", "total")],
        f"{p}ar": [(f"{p}matched@{lab}", "total") for lab in THRESHOLD_LABELS],
        f"{p}miss_rate@0.50": [(f"{p}missed@0.50", "total")],
        f"{p}matched_iou@0.50": [(f"{p}iou@0.50", f"{p}matched@0.50")],
    }
    for size in SIZES:
        m[f"{p}ar_{size}"] = [(f"{p}matched_{size}@{lab}", f"{p}total_{size}") for lab in THRESHOLD_LABELS]
    for size in SIZES:
        m[f"{p}recall@0.50_{size}"] = [(f"{p}matched_{size}@0.50", f"{p}total_{size}")]
    for lab in THRESHOLD_LABELS:  # the recall-against-IoU curve of the report (0.50 and 0.75 are above)
        m.setdefault(f"{p}recall@{lab}", [(f"{p}matched@{lab}", "total")])
    return m


def _membership(groups: pd.DataFrame, attributes, intersections):
    """Per grouping: labels and a (n_people, n_groups) membership matrix (groups may overlap)."""
    from ...stats import build_groups

    structure, _ = build_groups(groups.reset_index(drop=True), attributes, intersections)
    out = []
    for grouping in structure.groupings:
        member = grouping.indicator[structure.cell_of_sample] > 0
        out.append((grouping.name, grouping.labels, member))
    return out


def _ap_rows(gt: Boxes, dt: Boxes, people, member_sets, *, iou_type, class_agnostic, min_group_size) -> list[dict]:
    """Wilson et al. per-group AP: images containing the group, the other people ignored (not crowd regions)."""
    rows = []
    is_person = np.zeros(len(gt), bool)
    is_person[people] = True
    for grouping, labels, member in member_sets:
        for g, label in enumerate(labels):
            in_group = np.zeros(len(gt), bool)
            in_group[people[member[:, g]]] = True
            n = int(in_group.sum())
            stats = {"AP": np.nan, "AP50": np.nan, "AP75": np.nan}
            if n:
                images = np.unique(gt.image[in_group])
                gsel = np.isin(gt.image, images)
                dsel = np.isin(dt.image, images)
                extra = (is_person & ~in_group)[gsel]
                # AP, AP50 and AP75 need only the "all" area range and 100 detections: a quarter of the matching
                m = match(gt.subset(gsel), dt.subset(dsel), iou_type=iou_type, class_agnostic=class_agnostic,
                          extra_ignore=extra, area_ranges=AREA_RANGES[:1])
                s = summarize(*accumulate(m, max_dets=MAX_DETS[-1:]), max_dets=MAX_DETS[-1:],
                              area_ranges=AREA_RANGES[:1])
                stats = {k: (np.nan if s[k] < 0 else s[k]) for k in stats}
            for k, value in stats.items():
                rows.append({"grouping": grouping, "group": label, "metric": f"{iou_type}_{k}", "class": "",
                             "value": value, "lower": np.nan, "upper": np.nan, "n": n, "interval": "none",
                             "small_group": bool(n < min_group_size)})
    return rows


def audit_detections(*, gt: Boxes, dt: Boxes, groups: pd.DataFrame, attributes, intersections=(),
                     reference_groups=None, class_agnostic: bool = True, masks: bool = False,
                     per_group_ap: bool = True, n_boot: int = 1000, seed: int = 0, interval: str = "wilson",
                     alpha: float = 0.05, correction: str = "fdr_bh", min_group_size: int = 50,
                     categories: list[str] | None = None):
    """Audit detections against ground truth, per group (the notebook and bench entry point; no files).

    Parameters
    ----------
    gt : Boxes
        Ground truth (``iscrowd``, ``ann_id``; ``segmentation`` when ``masks``).
    dt : Boxes
        Detections (``score``; ``segmentation`` when ``masks``).
    groups : DataFrame
        One row per *person*: the non-crowd ground truth, in ``gt`` order.
    attributes : list of audit.stats.Attribute

    Returns
    -------
    GroupedMetrics
        Recall-based metrics with intervals, disparities and tests, plus
        per-group AP rows and the overall COCO numbers (``bbox_AP`` ... in
        the ``overall`` grouping).
    """
    return audit_detections_with_matches(gt=gt, dt=dt, groups=groups, attributes=attributes, intersections=intersections,
                             reference_groups=reference_groups, class_agnostic=class_agnostic, masks=masks,
                             per_group_ap=per_group_ap, n_boot=n_boot, seed=seed, interval=interval, alpha=alpha,
                             correction=correction, min_group_size=min_group_size, categories=categories)[0]


def audit_detections_with_matches(*, gt, dt, groups, attributes, intersections, reference_groups, class_agnostic, masks,
                      per_group_ap, n_boot, seed, interval, alpha, correction, min_group_size, categories):
    """:func:`audit_detections`, also returning the matchings (``{"bbox": Matches, "segm": Matches}``)."""
    from ...stats import audit_ratio_metrics

    crowd = gt.iscrowd if gt.iscrowd is not None else np.zeros(len(gt), bool)
    people = np.flatnonzero(~crowd)
    if len(groups) != people.size:
        raise AuditError(f"expected one attribute row per non-crowd ground truth ({people.size}), found {len(groups)}")
    types = ["bbox"] + (["segm"] if masks else [])
    matches = {t: match(gt, dt, iou_type=t, class_agnostic=class_agnostic) for t in types}
    cols = {"total": np.ones(people.size)}
    metrics = {}
    for t in types:
        prefix = "mask_" if t == "segm" else ""
        cols.update(person_statistics(matches[t], people, prefix=prefix))
        metrics.update(recall_metrics(prefix))
    statistics = pd.DataFrame(cols)
    # a size range with nobody in it (e.g. only small people) would only add undefined values
    metrics = {k: v for k, v in metrics.items() if not k.endswith(tuple(SIZES)) or statistics[v[0][1]].sum() > 0}
    headline = [m for m in metrics if m.endswith(("recall@0.50", "recall@0.75", "ar", "miss_rate@0.50"))]
    result = audit_ratio_metrics(
        statistics=statistics, metrics=metrics, groups=groups.reset_index(drop=True), clusters=gt.image[people],
        attributes=attributes, intersections=intersections, reference_groups=reference_groups,
        disparity_metrics=headline, interval=interval, n_boot=n_boot, seed=seed, alpha=alpha,
        correction=correction, min_group_size=min_group_size, task="instance_segmentation" if masks else "detection",
    )
    extra = []
    for t in types:
        s = summarize(*accumulate(matches[t]))
        for name, value in s.items():
            extra.append({"grouping": "overall", "group": "all", "metric": f"{t}_{name}_coco", "class": "",
                          "value": np.nan if value < 0 else value, "lower": np.nan, "upper": np.nan,
                          "n": int(people.size), "interval": "none", "small_group": False})
    if per_group_ap:
        member_sets = _membership(groups, attributes, intersections)
        for t in types:
            extra += _ap_rows(gt, dt, people, member_sets, iou_type=t, class_agnostic=class_agnostic,
                              min_group_size=min_group_size)
    result.metrics = pd.concat([result.metrics, pd.DataFrame(extra)], ignore_index=True)
    result.config.update({
        "classes": list(categories or []), "class_agnostic": class_agnostic, "iou_thresholds": THRESHOLD_LABELS,
        "max_detections": 100, "matching": "COCO greedy (pycocotools evaluateImg rules), per image"
        + ("" if class_agnostic else " and category"), "recall_explanation": RECALL_EXPLANATION,
        "per_group_ap": "Wilson et al.: images containing the group, other people ignored (not crowd); no interval",
        "coco": "overall *_coco rows: COCOeval.summarize numbers" + (" with useCats=0" if class_agnostic else ""),
    })
    return result, matches


def person_table(gt: Boxes, matches: dict, groups: pd.DataFrame, attributes, intersections=(), *,
                 file_names: dict | None = None, detections: Boxes | None = None) -> pd.DataFrame:
    """One row per person (non-crowd ground truth): where they are, whether they were found, their groups.

    The table written as ``people.parquet`` beside ``results.json``; the report picks the worst errors from it.

    Parameters
    ----------
    gt : Boxes
        Ground truth, as matched.
    matches : dict of str to Matches
        ``"bbox"`` (and ``"segm"`` for instance segmentation) matchings of ``gt``.
    groups : DataFrame
        Raw attribute values, one row per person in ``gt`` order (as given to :func:`audit_detections`).
    attributes, intersections
        As given to :func:`audit_detections`; the groups are binned by the engine's own
        :func:`audit.stats.build_groups`, so the labels are those of ``results.json``.
    file_names : dict, optional
        ``image_id -> file name`` relative to the image root.
    detections : Boxes, optional
        The detections as matched: with them, the box of each person's best-overlapping detection.

    Returns
    -------
    DataFrame
        ``annotation_id``, ``image_id``, ``file_name``, ``x``, ``y``, ``w``, ``h`` (the ground-truth box),
        ``matched@0.50`` and ``best_iou`` (box IoU; ``mask_matched@0.50`` and ``mask_best_iou`` with masks),
        with ``detections`` ``best_x``, ``best_y``, ``best_w``, ``best_h`` (``mask_best_*``): the box of the
        detection with that best IoU (NaN when none overlaps), and
        ``group:<attribute>`` per single attribute: the binned label, or for a multi-valued attribute the list
        of every group the person is in.
    """
    from ...core.tables import binned_group_columns

    crowd = gt.iscrowd if gt.iscrowd is not None else np.zeros(len(gt), bool)
    people = np.flatnonzero(~crowd)
    ann = gt.ann_id if gt.ann_id is not None else np.arange(1, len(gt) + 1)
    table = pd.DataFrame({"annotation_id": np.asarray(ann)[people].astype(np.int64),
                          "image_id": np.asarray(gt.image)[people].astype(np.int64)})
    names = file_names or {}
    table["file_name"] = [str(names.get(i, "")) for i in table["image_id"].tolist()]
    box = np.asarray(gt.bbox, dtype=float)[people]
    for k, c in enumerate("xywh"):
        table[c] = box[:, k]
    t50 = THRESHOLD_LABELS.index("0.50")
    for kind, prefix in (("bbox", ""), ("segm", "mask_")):
        if kind in matches:
            m = matches[kind]
            table[f"{prefix}matched@0.50"] = m.gt_matched[0, t50, people].astype(bool)
            table[f"{prefix}best_iou"] = m.gt_best_iou[people]
            if detections is not None and m.gt_best_det is not None:
                best = m.gt_best_det[people]
                boxes = np.full((people.size, 4), np.nan)
                boxes[best >= 0] = np.asarray(detections.bbox, dtype=float)[best[best >= 0]]
                for k, c in enumerate("xywh"):
                    table[f"{prefix}best_{c}"] = boxes[:, k]
    for column, values in binned_group_columns(groups, attributes=attributes, intersections=intersections).items():
        table[column] = values
    return table


def _detect_in_chunks(detect, gt, *, out_dir, key, chunk_size, context, statistics: dict | None = None):
    """Run ``detect(images=...)`` chunk by chunk of images, committing each chunk (resumable, shardable).

    Returns, on rank 0, the COCO results of all images in image order and the same list as JSON text (what
    ``json.dumps`` makes of it, from the chunks' own text); ``None`` on other ranks. With a ``statistics``
    dict, each image's statistics go into the chunks and then into it, by ``image_id``.
    """
    from ...core.image_stats import statistics_columns, statistics_from_columns

    images = gt.images.reset_index(drop=True)
    frame = pd.DataFrame({"sample_id": images["image_id"].astype(str)})
    computed: dict = {}  # sample_id -> detections, for the chunks this process computed: not read back

    def predict(part):
        subset = images.iloc[part.index.to_numpy()]
        by_image: dict = {i: [] for i in subset["image_id"].tolist()}
        seen = {} if statistics is not None else None
        for det in detect(images=subset, statistics=seen):
            by_image[det["image_id"]].append(det)
        computed.update(zip(part["sample_id"].tolist(), by_image.values()))
        out = pd.DataFrame({"sample_id": part["sample_id"].to_numpy(),
                            "detections": [json.dumps(d) for d in by_image.values()]})
        return out if seen is None else statistics_columns(out, seen, subset["image_id"])

    merged = predict_in_chunks(predict, frame, out_dir=out_dir, key=key, chunk_size=chunk_size, context=context,
                               columns=("detections",))
    if merged is None:
        return None
    if statistics is not None:
        statistics.update(statistics_from_columns(merged, images["image_id"]))
    results, texts = [], []
    for sid, text in zip(merged["sample_id"].tolist(), merged["detections"].tolist()):
        if sid in computed:
            detections = computed[sid]
        else:  # committed by an earlier run or another rank: parsed, and its text made again from what was parsed
            detections = _committed_detections(text, out_dir, sid)
            text = json.dumps(detections)
        results += detections
        if detections:
            texts.append(text[1:-1])
    # each image's text is json.dumps of its list: joined, they are json.dumps of the whole list, byte for byte
    return results, "[" + ", ".join(texts) + "]"


def _committed_detections(text, out_dir, sample_id) -> list:
    """One image's detections as a committed chunk holds them (JSON text of a list); a PredictionError else."""
    try:
        detections = json.loads(text)
    except (TypeError, ValueError, RecursionError):
        detections = None
    if not isinstance(detections, list):
        raise PredictionError(f"{Path(out_dir) / CHUNK_DIR}: detections of image {sample_id}: expected the JSON "
                              f"text of a list, found {str(text)[:60]!r}; remove that directory to recompute them")
    return detections


def evaluate_detection(*, data, model=None, predictions=None, out_dir=None, use_cache: bool = True,
                       batch_size: int = 4, num_workers: int = 0, device: str | None = None, seed: int = 0,
                       n_boot: int = 1000, n_perm: int = 1000, interval: str = "wilson", bootstrap: str = "plain",
                       alpha: float = 0.05, correction: str = "fdr_bh", verify_images: bool = True,
                       progress: bool | None = None, per_group_ap: bool = True, chunk_size: int = 1024,
                       context=None):
    """The detection counterpart of :func:`audit.pipeline.evaluate`; returns an ``AuditRun``."""
    import torch

    from ..._version import __version__
    from ...core.card_loaders import ModelCard, load_model_card
    from ...core.run import AuditRun, created_time, model_provenance
    from ...stats import Attribute
    from .cards import DETECTION_TASKS, DetectionDataCard, load_detection_data_card
    from .data import fingerprint_files, load_ground_truth, load_results, results_boxes
    from .people import card_people
    from .inference import build_detector, category_mapping, load_cached_results, run_detector, save_results
    from ...core.image_stats import statistics_table, statistics_to_json

    card = data if isinstance(data, DetectionDataCard) else load_detection_data_card(data)
    model_card = model if (model is None or isinstance(model, ModelCard)) else load_model_card(model)
    if model_card is None and predictions is None:
        raise AuditError("expected a model card or a predictions file, found neither")
    if model_card is not None and model_card.task not in DETECTION_TASKS:
        raise AuditError(f"{model_card.path}: field 'task': expected one of {', '.join(DETECTION_TASKS)} for the "
                         f"detection data card {card.path}, found '{model_card.task}'")
    task = model_card.task if model_card is not None else card.front_matter.get("task", "detection")
    masks = task == "instance_segmentation"
    net = None
    if model_card is not None and predictions is None:  # built and checked before the data: a bad model fails fast
        from ...core.models import guard_forward

        net = guard_forward(build_detector(model_card), model_card)
    gt = load_ground_truth(card.coco, masks=card.masks, need_masks=masks, image_root=card.image_root,
                           allow_outside=card.allow_paths_outside_root)
    people, groups = card_people(card, gt)
    attributes = [Attribute(name=a.name, column=a.name, scale=a.scale, bins=a.bins, order=a.order,
                            multi=(a.votes == "any")) for a in card.attributes]
    from ...core.run import check_reference_groups

    check_reference_groups(card.path, groups, attributes, card.intersections, card.reference_groups)
    from .units import detection_covariates, detection_units

    # before inference: an unknown name fails fast; image statistics come from the inference pass
    covariates = detection_covariates(card, gt, people, images_later=predictions is None)
    from ...core.covariates import image_statistics_pending

    statistics = {} if predictions is None and image_statistics_pending(card.options.get("covariates"),
                                                                        covariates[0]) else None
    data_sha = fingerprint_files(card.path, card.coco, card.masks, card.attributes_table, card.image_attributes)
    log.info("data: %s (%d images, %d people)", card.path, len(gt.images), people.size)

    model_sha = None
    if model_card is not None:
        from ...core.models import fingerprint_model

        model_sha = fingerprint_model(model_card)
    results = None  # the detector's output when it runs here
    if predictions is not None:
        from ...core.inference import file_sha256

        results_path = Path(predictions)
        pred_info = {"source": "file", "file": str(predictions), "sha256": file_sha256(predictions)}
    else:
        results_path = load_cached_results(out_dir, model_sha256=model_sha, data_sha256=data_sha) \
            if (out_dir is not None and use_cache) else None
        if results_path is not None:
            # the same provenance as the run that made them: results.json does not depend on cache state
            pred_info = {"source": "model", "device": _cached_device(results_path)}
            saved = _cached_meta(results_path).get("image_statistics")
            if statistics is not None and isinstance(saved, dict):
                statistics.update(saved)
            discard_chunks(out_dir)  # left by a run killed between caching the merge and discarding them
            log.info("predictions: reusing cache %s (model and data hashes match)", results_path)
        else:
            from ...core.models import select_device

            torch_device = select_device(device)
            mapping = category_mapping(model_card, gt, class_agnostic=card.class_agnostic,
                                       detection_classes=card.detection_classes)
            log.info("predictions: running %s on %s", model_card.name, torch_device)
            torch.manual_seed(seed)
            detect = functools.partial(
                run_detector, net, gt, image_root=card.image_root, mapping=mapping, device=torch_device,
                batch_size=batch_size, masks=masks, progress=progress,
                score_threshold=float(model_card.front_matter.get("score_threshold", 0.0)))
            if out_dir is None:
                results = detect(statistics=statistics)
            else:
                merged = _detect_in_chunks(detect, gt, out_dir=out_dir, key=f"{model_sha}{data_sha}",
                                           chunk_size=chunk_size, context=context or context_from_env(),
                                           statistics=statistics)
                if merged is None:
                    return None  # not rank 0: rank 0 merges the chunks and computes the audit
                results, results_text = merged
            pred_info = {"source": "model", "device": str(torch_device)}
            if out_dir is not None:
                results_path = save_results(out_dir, results_text, {"model_card": str(model_card.path),
                                                               "device": str(torch_device),
                                                               "model_sha256": model_sha, "data_card": str(card.path),
                                                               "data_sha256": data_sha, "n_detections": len(results),
                                                               **({"image_statistics": statistics_to_json(statistics)}
                                                                  if statistics else {})})
                discard_chunks(out_dir)
    if statistics is not None:  # the image covariates, from the inference pass (an older cache: decoded again)
        covariates = detection_covariates(card, gt, people,
                                          image_table=statistics_table(statistics, gt.images["image_id"].tolist()))
    if results is None:
        dt = load_results(results_path, gt, need_masks=masks)
    else:  # the detector's own output, used as it is rather than read back from its cache
        dt = results_boxes(results, gt, source=results_path or f"{model_card.name} detections", need_masks=masks)
    if card.class_agnostic and len(dt):
        dt.category = np.full(len(dt), min(gt.categories), dtype=np.int64)  # any detection may match any person
    from ...errors import StatsInputError

    try:  # the engine's message names the argument; say which card declared it
        result, matches = audit_detections_with_matches(
            gt=gt.boxes, dt=dt, groups=groups, attributes=attributes, intersections=card.intersections,
            reference_groups=card.reference_groups or None, class_agnostic=card.class_agnostic, masks=masks,
            per_group_ap=per_group_ap, n_boot=n_boot, seed=seed, interval=interval, alpha=alpha, correction=correction,
            min_group_size=card.min_group_size, categories=[gt.categories[c] for c in sorted(gt.categories)],
        )
    except StatsInputError as exc:
        raise StatsInputError(f"{card.path}: {exc}") from None
    people_out = person_table(gt.boxes, matches, groups, attributes, card.intersections,
                              file_names=dict(zip(gt.images["image_id"], gt.images["file_name"])), detections=dt)
    table_out = pd.DataFrame({"annotation_id": gt.boxes.ann_id[people], "image_id": gt.boxes.image[people]})
    for c in groups.columns:
        table_out[c] = groups[c].map(lambda v: "+".join(map(str, v)) if isinstance(v, tuple) else v).astype(object)
    provenance = {
        "audit_version": __version__,
        "created": created_time(),
        "task": task,
        "model": model_provenance(model_card, model_sha),
        "data": {
            "card": str(card.path), "name": card.name,
            "title": str(card.front_matter.get("pretty_name") or card.front_matter.get("name") or card.name),
            "sha256": data_sha, "split": str(card.coco), "n_samples": int(people.size),
            "n_images": int(len(gt.images)), "classes": [gt.categories[c] for c in sorted(gt.categories)],
            "attributes": [a.name for a in card.attributes],
        },
        "predictions": pred_info,
        "settings": {"seed": seed, "n_boot": n_boot, "interval": interval, "alpha": alpha, "correction": correction,
                     "min_group_size": card.min_group_size, "class_agnostic": card.class_agnostic,
                     "votes": {a.name: a.votes for a in card.attributes if a.votes}},
        "environment": {"python": platform.python_version(), "torch": torch.__version__, "numpy": np.__version__,
                        "pandas": pd.__version__},
    }
    return AuditRun(result=result, provenance=provenance, predictions=table_out, people=people_out,
                    units=detection_units(people_out, covariates))


def _cached_meta(results_path) -> dict:
    """``detections.meta.json`` beside cached detections, ``{}`` when it is missing or damaged."""
    try:
        meta = json.loads((Path(results_path).parent / "detections.meta.json").read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):  # a damaged or hostile cache file is a miss
        return {}
    return meta if isinstance(meta, dict) else {}


def _cached_device(results_path) -> str:
    """The device that made cached detections, from ``detections.meta.json``."""
    return str(_cached_meta(results_path).get("device", "unknown"))
