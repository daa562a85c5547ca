"""The semantic-segmentation audit end to end: cards -> masks -> predicted masks -> counts -> engine.

Predicted masks come from, in order of precedence: ``predictions`` (a
directory of ``<sample_id>.png`` or a manifest, made elsewhere); the cache in
``out_dir/predicted_masks/`` when the model and data hashes match; running
the model (which writes that cache). Every image is then reduced once to its
per-class intersection, predicted and labelled areas (and each person's
intersection and union), and :func:`audit.stats.audit_segmentation` does the
rest.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import platform
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd

from ..._io import atomic_write_text, atomic_write_with
from ...core.distributed import context_from_env, discard_chunks, predict_in_chunks
from ...errors import AuditError, CardError, DataError, PredictionError

__all__ = ["evaluate_segmentation", "image_counts", "person_table", "run_segmenter"]

log = logging.getLogger("audit")

CACHE_DIR = "predicted_masks"
CACHE_META = "predicted_masks.json"


def image_counts(label, pred, num_classes: int, *, ignore_index: int, sample_id: str, label_path, pred_path,
                 person_masks=(), person_class: int | None = None):
    """Counts of one image: (intersection, pred_area, label_area) per class, and per-person (I, U)."""
    from ...stats import person_region_counts, segmentation_counts
    from ...errors import StatsInputError

    if label.shape != pred.shape:
        raise PredictionError(f"{pred_path}: expected a predicted mask of the label mask's size {label.shape[::-1]} "
                              f"(width, height) for sample '{sample_id}', found {pred.shape[::-1]}")
    try:
        counts = segmentation_counts(label, pred, num_classes, ignore_index=ignore_index)
    except StatsInputError as exc:
        raise DataError(f"{label_path}: label mask of sample '{sample_id}': {exc}") from None
    people = None
    if person_class is not None and len(person_masks):
        instances = np.zeros(label.shape, dtype=np.int32)
        for k, (mask, path) in enumerate(person_masks, start=1):
            if mask.shape != label.shape:
                raise DataError(f"{path}: expected a person mask of the label mask's size {label.shape[::-1]}, "
                                f"found {mask.shape[::-1]}")
            instances[mask] = k  # where people overlap, the later row owns the pixel
        people = person_region_counts(pred, instances, person_class=person_class, ignore=label == ignore_index)
    return counts, people


def _person_masks(people_rows, *, table=None, field: str = "instance"):
    """Each person's boolean mask; a person whose mask is empty (their instance id absent) is a DataError."""
    from .data import read_mask

    out = []
    for row in people_rows:
        raw = read_mask(row["mask_path"], what="person mask")
        mask = raw == row["instance"] if row["instance"] is not None else raw > 0
        if not mask.any():
            found = ", ".join(str(v) for v in np.unique(raw)[:10].tolist())
            what = f"instance id {row['instance']}" if row["instance"] is not None else "a nonzero pixel"
            raise DataError(f"{table}: row {row.get('row', '?')}: field '{field}': expected {what} in the person "
                            f"mask {row['mask_path']}, found values {found}")
        out.append((mask, row["mask_path"]))
    return out


def _mask_box(mask) -> dict:
    """The bounding box (x, y, w, h in pixels) of a boolean mask; NaN when it is empty."""
    ys, xs = np.nonzero(mask)
    if xs.size == 0:
        return {"x": np.nan, "y": np.nan, "w": np.nan, "h": np.nan}
    return {"x": float(xs.min()), "y": float(ys.min()), "w": float(xs.max() - xs.min() + 1),
            "h": float(ys.max() - ys.min() + 1)}


def _predicted_box(mask, pred, person_class) -> dict:
    """The box (``best_x``, ``best_y``, ``best_w``, ``best_h``) of the predicted person pixels that overlap the
    person's mask (NaN when none do), drawn beside the person's own box on the report's crops."""
    if person_class is None:
        return {f"best_{k}": np.nan for k in "xywh"}
    return {f"best_{k}": v for k, v in _mask_box(mask & (pred == person_class)).items()}


def _relative(path, root) -> str:
    """``path`` relative to ``root`` when it lies under it, else as given."""
    try:
        return Path(path).resolve().relative_to(Path(root).resolve()).as_posix()
    except ValueError:
        return str(path)


def person_table(people: pd.DataFrame, stats: pd.DataFrame, images: pd.DataFrame, *, attributes,
                 intersections=(), image_root=None) -> pd.DataFrame:
    """One row per person, written as ``people.parquet``: where the person is, their mask IoU, their groups.

    Columns: ``annotation_id`` (the row of the people table, 1-based), ``image_id`` (sample id),
    ``file_name`` (the image, relative to ``image_root``), ``x``, ``y``, ``w``, ``h`` (the bounding box of the
    person's mask), ``area`` (mask pixels), ``best_iou`` (the person's mask IoU with the predicted person
    region), ``matched@0.50`` (that IoU reaches 0.50, as ``person_recall@0.50`` counts), ``best_x`` ...
    ``best_h`` (the box of the predicted person pixels on the person's mask) and
    ``group:<attribute>``, binned by the engine's :func:`audit.stats.build_groups`.
    """
    from ...stats import build_groups

    image_of = dict(zip(images["sample_id"], images["image_path"]))
    union = stats["union"].to_numpy(dtype=float)
    iou = np.where(union > 0, stats["intersection"].to_numpy(dtype=float) / np.maximum(union, 1), np.nan)
    table = pd.DataFrame({
        "annotation_id": people["row"].to_numpy(dtype=np.int64), "image_id": stats["image_id"].astype(str),
        "file_name": [_relative(image_of[s], image_root) if image_root else str(image_of[s])
                      for s in stats["image_id"]],
        "x": stats["x"], "y": stats["y"], "w": stats["w"], "h": stats["h"], "area": stats["area"],
        "matched@0.50": iou >= 0.5 - 1e-12, "best_iou": iou,
    })
    for k in "xywh":  # the predicted person pixels on the person (tables of older runs lack them)
        if f"best_{k}" in stats.columns:
            table[f"best_{k}"] = stats[f"best_{k}"].to_numpy(dtype=float)
    _, binned = build_groups(people[[a.name for a in attributes]].reset_index(drop=True), attributes, intersections)
    for a in attributes:
        table[f"group:{a.name}"] = np.asarray(binned[a.name].astype(str), dtype=object)
    return table


def run_segmenter(model, images: pd.DataFrame, *, transform, permutation, out_dir, batch_size=8, num_workers=0,
                  device=None, progress=None, statistics: dict | None = None) -> list[str]:
    """Predict every image and write ``out_dir/<sample_id>.png`` (data-card class indices, 8- or 16-bit).

    With a ``statistics`` dict, each image's statistics (:func:`audit.core.image_stats.statistics_of`, from the
    image as decoded) are put in it under its ``sample_id``: the image covariates need not decode it again.

    Logits are resized (bilinear) to the label mask's size, then arg-maxed;
    ``permutation[k]`` is the model output that predicts data class ``k``. A
    2-D ``permutation`` is a class map's matrix (:func:`audit.core.model_spec.class_matrix`):
    the softmax probabilities are summed into the data classes first.
    """
    import torch
    from PIL import Image
    from torch.utils.data import DataLoader
    from ..._progress import progress_class

    from ...core.images import ImageDataset
    from .data import mask_size
    from .models import predicted_classes, segmentation_logits

    tqdm = progress_class()
    device = torch.device("cpu") if device is None else device
    model = model.to(device)
    # looked up per image in lists taken once: a pandas .iat per image cost about 1% of the segmenter's CPU
    image_paths, sample_ids = images["image_path"].tolist(), images["sample_id"].tolist()
    mask_paths = images["mask_path"].tolist()
    loader = DataLoader(ImageDataset(image_paths, transform, statistics=statistics is not None),
                        batch_size=batch_size, num_workers=num_workers, collate_fn=list)
    out_dir = Path(out_dir)
    paths = [str(out_dir / f"{sid}.png") for sid in sample_ids]
    matrix = np.asarray(permutation)
    perm = torch.as_tensor(matrix, dtype=torch.long) if matrix.ndim == 1 else None
    show = progress if progress is not None else os.isatty(2)
    with torch.inference_mode():
        for batch in tqdm(loader, disable=not show, desc="segment", unit="batch"):
            for _, index, error, *stats in batch:
                if error:
                    raise DataError(f"{image_paths[index]}: cannot read image of sample '{sample_ids[index]}': "
                                    f"{error}")
                if statistics is not None:
                    statistics[sample_ids[index]] = stats[0]
            shapes = {}
            for tensor, index, *_ in batch:  # images of one size run together
                shapes.setdefault(tuple(tensor.shape), []).append((tensor, index))
            for items in shapes.values():
                logits = segmentation_logits(model(torch.stack([t for t, _ in items]).to(device))).float().cpu()
                if perm is not None:
                    logits = logits[:, perm]  # data-card class order
                else:
                    from ...core.model_spec import map_probabilities

                    logits = map_probabilities(torch.softmax(logits, dim=1), matrix)  # probabilities per data class
                for k, (_, index) in enumerate(items):
                    h, w = mask_size(mask_paths[index], what="label mask")
                    resized = torch.nn.functional.interpolate(logits[k:k + 1], size=(h, w), mode="bilinear",
                                                              align_corners=False)
                    mask = predicted_classes(resized[0]).numpy()
                    mask = mask.astype(np.uint8 if logits.shape[1] <= 256 else np.uint16)
                    target = Path(paths[index])
                    target.parent.mkdir(parents=True, exist_ok=True)
                    # zlib level 1, as for the panoptic PNGs: a speckled mask in a quarter of the default's time,
                    # in a file a third larger
                    atomic_write_with(target, lambda tmp, m=mask: Image.fromarray(m).save(tmp, format="PNG",
                                                                                          compress_level=1))
    return paths


def _cached_meta(out_dir) -> dict:
    """The cached masks' meta file, ``{}`` when it is missing or damaged."""
    try:
        meta = json.loads((Path(out_dir) / CACHE_META).read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):  # a damaged or hostile cache file is a miss
        return {}
    return meta if isinstance(meta, dict) else {}


def _cached_device(out_dir) -> str:
    """The device that made the cached masks, from their meta file."""
    return str(_cached_meta(out_dir).get("device", "unknown"))


def _cached_masks(out_dir, *, model_sha, data_sha, images) -> list[str] | None:
    meta_path = Path(out_dir) / CACHE_META
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):  # a damaged or hostile cache file is a miss
        return None
    if not isinstance(meta, dict) or meta.get("model_sha256") != model_sha or meta.get("data_sha256") != data_sha:
        return None
    paths = [str(Path(out_dir) / CACHE_DIR / f"{sid}.png") for sid in images["sample_id"]]
    return paths if all(os.path.isfile(p) for p in paths) else None


def evaluate_segmentation(*, data, model=None, predictions=None, out_dir=None, use_cache: bool = True,
                          batch_size: int = 8, num_workers: int = 0, device=None, seed: int = 0, n_boot: int = 1000,
                          alpha: float = 0.05, correction: str = "fdr_bh", progress=None, chunk_size: int = 1024,
                          context=None, **_ignored):
    """Audit a semantic segmenter (or predicted masks) on a split; returns an :class:`audit.pipeline.AuditRun`.

    ``data`` and ``model`` are loaded cards. Options that only apply to
    classification (``n_perm``, ``interval``, ``bootstrap``, ...) are ignored.
    """
    import torch

    from ..._version import __version__
    from ...core.inference import file_sha256
    from ...core.run import AuditRun, created_time, model_provenance
    from ...stats import Attribute, audit_segmentation
    from .data import fingerprint_segmentation_split, load_segmentation_split, predicted_mask_paths, read_mask

    data_card, model_card = data, model
    seg = data_card.segmentation
    if seg is None:
        raise CardError(f"{data_card.path}: field 'segmentation': expected a mapping with mask_column for a "
                        "semantic segmentation audit, found nothing (the field is missing)")
    if model_card is None and predictions is None:
        raise AuditError("expected a model card or predicted masks, found neither")
    classes = list(data_card.classes)
    net = matrix = None
    if model_card is not None and predictions is None:  # built and checked before the data: a bad model fails fast
        if data_card.split.image_column is None:
            raise DataError(f"{data_card.path}: field 'split.image_column': expected the manifest column of image "
                            "paths to run a model, found nothing (only --predictions work without it)")
        from ...core.model_spec import class_matrix
        from ...core.models import guard_forward
        from .models import build_segmenter

        matrix = class_matrix(label_map=model_card.label_map, classes=classes, class_map=model_card.class_map,
                              model_card_path=model_card.path)
        net = guard_forward(build_segmenter(model_card), model_card)
    images, people = load_segmentation_split(data_card)
    log.info("data: %s (%d images, %d classes%s)", data_card.path, len(images), len(classes),
             f", {len(people)} people" if people is not None else "")
    from ...core.run import check_reference_groups

    def _attrs(specs):
        return [Attribute(name=a.name, column=a.name, scale=a.scale, bins=a.bins, order=a.order) for a in specs]

    check_reference_groups(data_card.path, images[[a.name for a in data_card.attributes]],
                           _attrs(data_card.attributes), data_card.intersections, data_card.reference_groups)
    if people is not None:
        spec = seg.people
        check_reference_groups(data_card.path, people[[a.name for a in spec.attributes]], _attrs(spec.attributes),
                               spec.intersections, spec.reference_groups)
    from .units import segmentation_covariates, segmentation_units

    # before inference: unknown names fail fast; image statistics come from the inference pass
    covariates = segmentation_covariates(data_card, images, people, images_later=predictions is None)
    from ...core.covariates import image_statistics_pending
    from ...core.image_stats import statistics_columns, statistics_from_columns, statistics_table, statistics_to_json

    statistics = {} if covariates is not None and predictions is None and image_statistics_pending(
        data_card.options.get("covariates"), covariates[0]) else None
    data_sha = fingerprint_segmentation_split(data_card, images, people)
    model_sha = None
    if model_card is not None:
        from ...core.models import fingerprint_model

        model_sha = fingerprint_model(model_card)

    if predictions is not None:
        pred_paths = predicted_mask_paths(predictions, images["sample_id"].tolist(), id_column=data_card.split.id_column)
        sha = file_sha256(predictions) if Path(predictions).is_file() else None
        pred_info = {"source": "file", "file": str(predictions), "sha256": sha}
        log.info("predictions: predicted masks from %s", predictions)
    else:
        # a permutation of the model's outputs, or (with a class map) outputs summed into the split's classes
        permutation = matrix.argmax(0) if model_card.class_map is None else matrix
        pred_paths = _cached_masks(out_dir, model_sha=model_sha, data_sha=data_sha, images=images) \
            if out_dir is not None and use_cache else None
        if pred_paths is not None:
            # the same provenance as the run that made them: results.json does not depend on cache state
            pred_info = {"source": "model", "device": _cached_device(out_dir)}
            saved = _cached_meta(out_dir).get("image_statistics")
            if statistics is not None and isinstance(saved, dict):
                statistics.update(saved)
            discard_chunks(out_dir)  # left by a run killed between caching the merge and discarding them
            log.info("predictions: reusing cached masks in %s (model and data hashes match)",
                     Path(out_dir) / CACHE_DIR)
        else:
            import tempfile

            from ...core.models import build_transform, select_device

            torch_device = select_device(device)
            if out_dir is not None:  # masks about to be rewritten: the old meta must not vouch for them
                (Path(out_dir) / CACHE_META).unlink(missing_ok=True)
            log.info("predictions: running %s on %s", model_card.name, torch_device)
            torch.manual_seed(seed)
            target = Path(out_dir) / CACHE_DIR if out_dir is not None else Path(tempfile.mkdtemp(prefix="audit-seg-"))
            segment = functools.partial(run_segmenter, net, transform=build_transform(model_card),
                                        permutation=permutation, out_dir=target, batch_size=batch_size,
                                        num_workers=num_workers, device=torch_device, progress=progress)
            if out_dir is None:
                pred_paths = segment(images, statistics=statistics)
            else:
                def segment_chunk(part):
                    seen = {} if statistics is not None else None
                    out = pd.DataFrame({"sample_id": part["sample_id"].to_numpy(),
                                        "mask": segment(part, statistics=seen)})
                    return out if seen is None else statistics_columns(out, seen, part["sample_id"])

                # masks are written per image; a chunk is committed once all of its masks are on disk
                done = predict_in_chunks(segment_chunk, images, out_dir=out_dir, key=f"{model_sha}{data_sha}",
                                         chunk_size=chunk_size, context=context or context_from_env())
                if done is None:
                    return None  # not rank 0: rank 0 merges the chunks and computes the audit
                pred_paths = done["mask"].tolist()
                if statistics is not None:
                    statistics.update(statistics_from_columns(done, done["sample_id"]))
            pred_info = {"source": "model", "device": str(torch_device)}
            if out_dir is not None:
                atomic_write_text(Path(out_dir) / CACHE_META, json.dumps({
                    "device": str(torch_device), "model_card": str(model_card.path), "model_sha256": model_sha, "data_card": str(data_card.path),
                    "data_sha256": data_sha, "classes": classes, "n_images": len(images),
                    "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                    **({"image_statistics": statistics_to_json(statistics)} if statistics else {}),
                }, indent=2) + "\n")
                discard_chunks(out_dir)

    if statistics is not None:  # the image covariates, from the inference pass (an older cache: decoded again)
        covariates = segmentation_covariates(
            data_card, images, people, image_table=statistics_table(statistics, images["sample_id"].astype(str)))
    person_class = classes.index(seg.person_class) if seg.person_class is not None else None
    by_image = {} if people is None else {sid: rows for sid, rows in people.groupby("sample_id", sort=False)}
    n, c = len(images), len(classes)
    inter, pred_area, label_area = (np.zeros((n, c), dtype=np.int64) for _ in range(3))
    person_rows = []
    for i, (sid, label_path, pred_path) in enumerate(zip(images["sample_id"], images["mask_path"], pred_paths)):
        label = read_mask(label_path, what="label mask")
        try:
            pred = read_mask(pred_path, what="predicted mask")
        except DataError as exc:
            raise PredictionError(str(exc)) from None
        rows = by_image.get(sid)
        masks = _person_masks(rows.to_dict(orient="records"), table=seg.people.table,
                              field=seg.people.instance_column or seg.people.mask_column) if rows is not None else ()
        (inter[i], pred_area[i], label_area[i]), counts = image_counts(
            label, pred, c, ignore_index=seg.ignore_index, sample_id=sid, label_path=label_path, pred_path=pred_path,
            person_masks=masks, person_class=person_class)
        if rows is not None:
            for (_, row), (mask, _), pi, pu in zip(rows.iterrows(), masks, *counts):
                person_rows.append({"index": row.name, "image_id": sid, "intersection": int(pi), "union": int(pu),
                                    "area": int(mask.sum()), **_mask_box(mask),
                                    **_predicted_box(mask, pred, person_class)})

    def attrs(specs):
        return [Attribute(name=a.name, column=a.name, scale=a.scale, bins=a.bins, order=a.order) for a in specs]

    people_stats = person_groups = None
    kwargs = {}
    if people is not None:
        people_stats = pd.DataFrame(person_rows, columns=["index", "image_id", "intersection", "union", "area",
                                                          "x", "y", "w", "h", "best_x", "best_y", "best_w", "best_h"])
        people_stats = people_stats.set_index("index").loc[people.index].reset_index(drop=True)
        spec = seg.people
        person_groups = people[[a.name for a in spec.attributes]].reset_index(drop=True)
        kwargs = dict(people=people_stats, person_groups=person_groups, person_attributes=attrs(spec.attributes),
                      person_intersections=[tuple(x) for x in spec.intersections],
                      person_reference_groups=dict(spec.reference_groups) or None)
    from ...errors import StatsInputError

    try:  # the engine's message names the argument; say which card declared it
        result = audit_segmentation(
            intersection=inter, pred_area=pred_area, label_area=label_area,
            groups=images[[a.name for a in data_card.attributes]].reset_index(drop=True), classes=classes,
            image_ids=images["sample_id"].to_numpy(), attributes=attrs(data_card.attributes),
            intersections=[tuple(x) for x in data_card.intersections],
            reference_groups=dict(data_card.reference_groups) or None, n_boot=n_boot, seed=seed, alpha=alpha,
            correction=correction, min_group_size=data_card.min_group_size, **kwargs,
        )
    except StatsInputError as exc:
        raise StatsInputError(f"{data_card.path}: {exc}") from None
    union = pred_area + label_area - inter
    with np.errstate(invalid="ignore", divide="ignore"):
        per_image_miou = np.where(union > 0, inter / np.maximum(union, 1), np.nan)
    per_image_miou = np.array([np.nanmean(r) if np.isfinite(r).any() else np.nan for r in per_image_miou])
    table = pd.DataFrame({"sample_id": images["sample_id"], "pred_mask": pred_paths,
                          "pixel_accuracy": inter.sum(1) / np.maximum(label_area.sum(1), 1),
                          "miou": per_image_miou})
    provenance = {
        "audit_version": __version__,
        "created": created_time(),
        "task": "semantic_segmentation",
        "model": model_provenance(model_card, model_sha),
        "data": {
            "card": str(data_card.path), "name": data_card.name,
            "title": str(data_card.front_matter.get("pretty_name") or data_card.front_matter.get("name")
                         or data_card.name),
            "sha256": data_sha, "split": str(data_card.split.table), "n_samples": int(n), "classes": classes,
            "attributes": [a.name for a in data_card.attributes],
            "ignore_index": seg.ignore_index, "n_people": None if people is None else int(len(people)),
        },
        "predictions": pred_info,
        "settings": {"seed": seed, "n_boot": n_boot, "alpha": alpha, "correction": correction,
                     "min_group_size": data_card.min_group_size, "bootstrap": "cluster (images)"},
        "environment": {"python": platform.python_version(), "torch": torch.__version__,
                        "numpy": np.__version__, "pandas": pd.__version__},
    }
    people_out = images_out = None
    if people is None:  # no person masks: the report's worst errors are the worst images, by per-image mIoU
        from ...stats import build_groups

        image_attrs = attrs(data_card.attributes)
        _, binned = build_groups(images[[a.name for a in data_card.attributes]].reset_index(drop=True), image_attrs,
                                 [tuple(x) for x in data_card.intersections])
        images_out = pd.DataFrame({"image_id": images["sample_id"].astype(str).to_numpy(),
                                   "file_name": [_relative(p, data_card.image_root) for p in images["image_path"]],
                                   "miou": per_image_miou})
        for a in image_attrs:
            images_out[f"group:{a.name}"] = np.asarray(binned[a.name].astype(str), dtype=object)
    else:
        people_out = person_table(people.reset_index(drop=True), people_stats, images,
                                  attributes=attrs(seg.people.attributes),
                                  intersections=[tuple(x) for x in seg.people.intersections],
                                  image_root=data_card.image_root)
    return AuditRun(result=result, provenance=provenance, predictions=table, people=people_out, images=images_out,
                    units=segmentation_units(people_out, covariates))
