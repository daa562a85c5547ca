"""Run a torchvision detector over COCO images and write COCO results JSON (with a hash-keyed cache).

Builders come from the torchvision registry (``get_model(name, weights=None,
weights_backbone=None, num_classes=...)``); weights are a torchvision enum
or a local checkpoint loaded with ``weights_only=True`` (see
:mod:`audit.core.models`). Images are fed as ``[0, 1]`` tensors: torchvision
detectors resize and normalise inside the model. Outputs are moved off the
device at once and converted to COCO results: ``[x, y, w, h]`` boxes,
``score``, the data's ``category_id`` (by class name, or the first category
when class-agnostic) and, for Mask R-CNN, masks thresholded at 0.5 as
compressed RLE.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..._io import atomic_write_many
from ...errors import DataError, ModelError

__all__ = ["build_detector", "category_mapping", "load_cached_results", "run_detector", "save_results"]


def _torchvision_detector(card, state=None):
    from ...core.models import build_torchvision

    return build_torchvision(card, without_weights={"weights_backbone": None})


def build_detector(card):
    """The detector of a detection model card, in eval mode on the CPU. Raises ModelError."""
    from ...core.models import build_from_card

    return build_from_card(card, build_architecture=_torchvision_detector)


def category_mapping(card, gt, *, class_agnostic: bool, detection_classes=None) -> dict[int, int]:
    """Model output label -> data category id, for the labels whose detections are kept.

    With the card's ``class_map`` a label is kept when it maps to a category
    (by name; class-agnostic data takes any kept label as its first
    category); without one, by the label's own name. ``detection_classes``
    (data card) narrows the kept labels to those whose name or mapped name it lists.
    """
    from ...core.model_spec import shown

    by_name = {name: cid for cid, name in sorted(gt.categories.items())}
    first = min(gt.categories) if gt.categories else 1
    class_map = getattr(card, "class_map", None)
    keep = set(detection_classes) if detection_classes else None
    mapping = {}
    for label, name in enumerate(card.label_map):
        target = name if class_map is None else class_map.get(label)
        if target is None:
            continue
        if keep is not None and name not in keep and target not in keep:
            continue
        if keep is None and class_map is None and name not in by_name:
            continue
        if class_agnostic:
            mapping[label] = by_name.get(target, first)
        elif target in by_name:
            mapping[label] = by_name[target]
        elif class_map is not None:
            raise ModelError(f"{card.path}: field 'class_map.{name}': expected a category of {gt.path} "
                             f"({shown(sorted(by_name))}), found '{target}'")
    if not mapping:
        wanted = sorted(keep) if keep is not None else sorted(by_name)
        raise ModelError(f"{card.path}: field '{'class_map' if class_map is not None else 'label_map'}': expected "
                         f"some model class to keep as detections ({shown(wanted)}), found none among "
                         f"{shown(card.label_map)}")
    return mapping


def run_detector(net, gt, *, image_root: Path, mapping: dict, device, batch_size: int = 4, masks: bool = False,
                 score_threshold: float = 0.0, progress: bool | None = None, images=None,
                 statistics: dict | None = None) -> list[dict]:
    """Detections on every ground-truth image (or the rows of ``images``) as COCO results dicts.

    With a ``statistics`` dict, each image's statistics (:func:`audit.core.image_stats.statistics_of`, from
    the image as decoded) are put in it under its ``image_id``: the image covariates need not decode it again.
    """
    import torch
    from PIL import Image
    from pycocotools import mask as mask_utils
    from torchvision.transforms.functional import pil_to_tensor
    from ..._progress import progress_class

    tqdm = progress_class()

    net = net.to(device)
    results = []
    rows = list((gt.images if images is None else images).itertuples(index=False))
    bar = tqdm(total=len(rows), unit="img", disable=progress is False or (progress is None and not _tty()))
    with torch.inference_mode():
        for start in range(0, len(rows), batch_size):
            batch = rows[start:start + batch_size]
            tensors = []
            for r in batch:
                # the path load_ground_truth checked against the image root, when it was given one
                path = Path(getattr(r, "path", None) or Path(image_root) / r.file_name)
                if path.exists() and not path.is_file():  # a FIFO or a device would block or never end
                    raise DataError(f"{gt.path}: image {r.image_id!r}: expected a regular file, found {path}")
                try:
                    with Image.open(path) as im:
                        if statistics is not None:
                            from ...core.image_stats import statistics_of

                            statistics[r.image_id] = statistics_of(im)
                        tensors.append(pil_to_tensor(im.convert("RGB")).float().div(255).to(device))
                except FileNotFoundError:
                    raise DataError(f"{gt.path}: image {r.image_id!r}: file not found: {path}") from None
                except Exception as exc:  # noqa: BLE001 - PIL raises many types (UnidentifiedImageError, DecompressionBombError...)
                    raise DataError(f"{path}: cannot decode image {r.image_id!r}: {' '.join(str(exc).split())}") \
                        from None
            outputs = _check_outputs(net(tensors), len(tensors), masks=masks)
            for r, o in zip(batch, outputs):
                # x1, y1, x2 - x1, y2 - y1 in float64, then Python floats: numpy scalars cost 10 times more
                boxes = o["boxes"].numpy().astype(float)  # (N, 4), as _check_outputs made sure
                xywh = np.concatenate([boxes[:, :2], boxes[:, 2:] - boxes[:, :2]], axis=1).tolist()
                for i, (label, score) in enumerate(zip(o["labels"].tolist(), o["scores"].tolist())):
                    if label not in mapping or score < score_threshold:
                        continue
                    det = {"image_id": r.image_id, "category_id": mapping[label],
                           "bbox": [round(v, 3) for v in xywh[i]], "score": round(float(score), 5)}
                    if masks and "masks" in o:
                        binary = np.asfortranarray((o["masks"][i, 0].numpy() >= 0.5).astype(np.uint8))
                        rle = mask_utils.encode(binary)
                        det["segmentation"] = {"size": list(rle["size"]), "counts": rle["counts"].decode("ascii")}
                    results.append(det)
            bar.update(len(batch))
    bar.close()
    return results


def _check_outputs(outputs, n: int, *, masks: bool) -> list[dict]:
    """The detector's outputs on the CPU; a ModelError when they are not torchvision's detection format."""
    import torch

    need = ("boxes", "labels", "scores") + (("masks",) if masks else ())
    if isinstance(outputs, tuple) and len(outputs) == 2 and isinstance(outputs[0], dict) \
            and isinstance(outputs[1], list):
        outputs = outputs[1]  # a scripted torchvision detector returns (losses, detections)
    if not isinstance(outputs, (list, tuple)) or len(outputs) != n:
        found = f"a list of {len(outputs)}" if isinstance(outputs, (list, tuple)) else type(outputs).__name__
        raise ModelError(f"detector output: expected a list of {n} dicts (one per image, torchvision's detection "
                         f"format), found {found}")
    for o in outputs:
        missing = [k for k in need if not isinstance(o, dict) or not isinstance(o.get(k), torch.Tensor)]
        if missing:
            raise ModelError(f"detector output: expected tensors {', '.join(need)} per image"
                             f"{' (instance_segmentation needs masks)' if masks else ''}, found no {missing[0]}")
        boxes, labels, scores = (tuple(o[k].shape) for k in ("boxes", "labels", "scores"))
        if len(boxes) != 2 or boxes[1] != 4 or labels != boxes[:1] or scores != boxes[:1]:
            raise ModelError(f"detector output: expected boxes of shape (N, 4) with N labels and N scores per "
                             f"image, found boxes {list(boxes)}, labels {list(labels)} and scores {list(scores)}")
    return [{k: v.to("cpu") for k, v in o.items()} for o in outputs]


def _tty() -> bool:
    import sys

    return sys.stderr.isatty()


def save_results(out_dir, results: list[dict] | str, meta: dict) -> Path:
    """Write ``detections.json`` (COCO results, or their JSON text) and its ``detections.meta.json`` atomically."""
    out = Path(out_dir)
    text = results if isinstance(results, str) else json.dumps(results)
    # a failed write leaves the old cache whole; the old meta goes before the new detections land
    atomic_write_many([(out / "detections.json", (text + "\n").encode("utf-8")),
                       (out / "detections.meta.json", (json.dumps(meta, indent=2) + "\n").encode("utf-8"))],
                      unlink_first=[out / "detections.meta.json"])
    return out / "detections.json"


def load_cached_results(out_dir, *, model_sha256: str, data_sha256: str) -> Path | None:
    """The cached ``detections.json`` when its meta matches both hashes, else None."""
    out = Path(out_dir)
    try:
        meta = json.loads((out / "detections.meta.json").read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):  # a damaged or hostile cache file is a miss
        return None
    if isinstance(meta, dict) and meta.get("model_sha256") == model_sha256 and meta.get("data_sha256") == data_sha256 and \
            (out / "detections.json").is_file():
        return out / "detections.json"
    return None
