"""The demo's panoptic model: the trained person detector and semantic segmenter, merged; no fourth model trained.

:func:`detector_and_segmenter` is the entry point of ``OUT/models/benchmark_panoptic.md``, whose ``builder``
arguments name the two trained models' cards (each with its weights, loaded with ``weights_only=True``). Per
image it returns what the panoptic task merges (:func:`audit.tasks.panoptic.merge.merge_panoptic`, with the card's
``merge`` thresholds):

* instances of each detected class: the pixels the segmenter gives that class inside the detection's box
  (Faster R-CNN has boxes, no masks), scored by the detection;
* instances of the ``components`` classes, which no detector finds (the benchmark's balls): the connected
  components of their pixels of at least ``min_area`` pixels, scored by the segmenter's mean probability on them;
* the semantic map itself, of which the task keeps the stuff classes above the card's area threshold.

Outputs are indices of the segmenter's ``label_map``, which the panoptic card repeats as its own.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..errors import ModelError

__all__ = ["CARD", "MERGE", "DetectorAndSegmenter", "detector_and_segmenter", "write_card"]

CARD = "benchmark_panoptic.md"
# the merge thresholds of the demo's card: its 64x64 scenes are 4,096 pixels, so a stuff region needs 64 of them
MERGE = {"score_threshold": 0.5, "overlap_threshold": 0.5, "stuff_area_threshold": 64}


def _load(path, role: str):
    """A trained model's card and network (its weights loaded with ``weights_only=True``)."""
    from ..core.card_loaders import load_model_card
    from ..core.models import build_from_card

    card = load_model_card(path)
    if card.trust_checkpoint:
        raise ModelError(f"{path}: field 'trust_checkpoint': expected false for the {role} of a panoptic model "
                         "(its weights load with weights_only=True), found true")
    if card.model.kind == "architecture":
        raise ModelError(f"{path}: field 'model': expected an entry point or a TorchScript file for the {role} of a "
                         f"panoptic model, found architecture '{card.model.architecture}'")
    return card, build_from_card(card, build_architecture=None)


class DetectorAndSegmenter(torch.nn.Module):
    """Detections and a semantic map per image, as the panoptic task's merge takes them (see the module)."""

    def __init__(self, detector, segmenter, *, detector_labels, segmenter_labels, preprocessing, components=(),
                 min_area: int = 1):
        super().__init__()
        self.detector, self.segmenter = detector, segmenter
        labels = list(segmenter_labels)
        self.box_class = {i: labels.index(name) for i, name in enumerate(detector_labels) if name in labels}
        self.components = [labels.index(c) for c in components]
        self.size = tuple(int(x) for x in preprocessing.resize)
        self.register_buffer("mean", torch.tensor(preprocessing.mean, dtype=torch.float32).view(3, 1, 1))
        self.register_buffer("std", torch.tensor(preprocessing.std, dtype=torch.float32).view(3, 1, 1))
        self.min_area = int(min_area)

    def semantic(self, images) -> list:
        """Class probabilities ``(C, H, W)`` of each ``[0, 1]`` image ``(3, H, W)``, at the image's size (one
        forward pass for the batch)."""
        x = torch.stack([torch.nn.functional.interpolate(image[None], size=self.size, mode="bilinear",
                                                         align_corners=False, antialias=True)[0] for image in images])
        logits = self.segmenter((x - self.mean) / self.std)
        logits = (logits["out"] if isinstance(logits, dict) else logits).float()
        return [torch.softmax(torch.nn.functional.interpolate(logits[k:k + 1], size=tuple(image.shape[-2:]),
                                                              mode="bilinear", align_corners=False)[0], dim=0)
                for k, image in enumerate(images)]

    def forward(self, images):
        from scipy import ndimage

        images = list(images)
        detections = self.detector(images)
        out = []
        for probs, found in zip(self.semantic(images), detections):
            labels = probs.argmax(0)
            h, w = labels.shape
            masks, classes, scores = [], [], []
            for box, label, score in zip(found["boxes"], found["labels"], found["scores"]):
                cls = self.box_class.get(int(label))
                if cls is None:
                    continue
                x0, y0 = (max(0, int(np.floor(float(v)))) for v in box[:2])
                x1, y1 = min(w, int(np.ceil(float(box[2])))), min(h, int(np.ceil(float(box[3]))))
                mask = torch.zeros((h, w), dtype=torch.bool, device=labels.device)
                mask[y0:y1, x0:x1] = labels[y0:y1, x0:x1] == cls
                masks.append(mask)
                classes.append(cls)
                scores.append(float(score))
            for cls in self.components:
                parts, n = ndimage.label((labels == cls).cpu().numpy())
                for j in range(1, n + 1):
                    part = torch.from_numpy(parts == j).to(labels.device)
                    if int(part.sum()) >= self.min_area:
                        masks.append(part)
                        classes.append(cls)
                        scores.append(float(probs[cls][part].mean()))
            out.append({"instances": {"masks": torch.stack(masks) if masks else
                                      torch.zeros((0, h, w), dtype=torch.bool, device=labels.device),
                                      "labels": torch.tensor(classes, dtype=torch.long),
                                      "scores": torch.tensor(scores, dtype=torch.float32)},
                        "sem_seg": labels})
        return out


def detector_and_segmenter(*, detector, segmenter, components=(), min_area: int = 1,
                           num_classes: int | None = None) -> DetectorAndSegmenter:
    """Build the demo's panoptic model from two trained models' cards (the card's ``builder`` arguments).

    Parameters
    ----------
    detector : str or Path
        A detection model card (boxes; its ``label_map`` names the classes it detects).
    segmenter : str or Path
        A semantic segmentation model card with ``preprocessing``; its ``label_map`` is the panoptic card's.
    components : list of str
        Segmenter classes no detector finds whose instances are the connected components of their pixels.
    min_area : int
        Pixels a component needs to be an instance.
    num_classes : int, optional
        The panoptic card's ``num_classes`` (passed by audit): must be the segmenter's.

    Returns
    -------
    DetectorAndSegmenter
    """
    det_card, det = _load(Path(detector), "detector")
    seg_card, seg = _load(Path(segmenter), "segmenter")
    if seg_card.preprocessing is None:
        raise ModelError(f"{segmenter}: field 'preprocessing': expected the segmenter's resize, mean and std, found "
                         "none")
    labels = list(seg_card.label_map)
    if num_classes is not None and num_classes != len(labels):
        raise ModelError(f"{segmenter}: field 'label_map': expected the panoptic card's {num_classes} classes, found "
                         f"{len(labels)}")
    unknown = [c for c in components if c not in labels]
    if unknown:
        raise ModelError(f"{segmenter}: field 'label_map': expected the components' class '{unknown[0]}', found "
                         f"{', '.join(labels)}")
    return DetectorAndSegmenter(det, seg, detector_labels=det_card.label_map, segmenter_labels=labels,
                                preprocessing=seg_card.preprocessing, components=components, min_area=min_area)


def write_card(models_dir, *, detector: str, segmenter: str) -> Path:
    """Write ``models_dir/benchmark_panoptic.md``: the panoptic card over the two trained models' cards there.

    Its ``label_map`` is the segmenter's; its ``merge`` thresholds are :data:`MERGE`. Written atomically and
    the same bytes every time, so a second demo run reuses the cached predictions.
    """
    from ..core.front_matter import read_front_matter
    from ..train._card import write_model_card

    models = Path(models_dir)
    front, _ = read_front_matter(models / segmenter)
    labels = list(front["label_map"])
    components = [c for c in labels if c not in ("background", "person")]
    fm = {"task": "panoptic_segmentation",
          "model": {"entry_point": f"{__name__}:detector_and_segmenter"},
          "builder": {"detector": detector, "segmenter": segmenter, "components": components, "min_area": 4},
          "num_classes": len(labels), "label_map": labels, "merge": dict(MERGE),
          "description": "the demo's person detector and semantic segmenter merged into panoptic segments "
                         "(no model of its own)",
          "tags": ["audit-demo"]}
    body = f"""# Model card: {Path(CARD).stem}

## Model details

- No network of its own: the entry point `{__name__}:detector_and_segmenter` loads the trained
  detector (`{detector}`) and semantic segmenter (`{segmenter}`), each with the weights its card names
  (a state dict, loaded with `weights_only=True`).
- People: per detection, the pixels the segmenter calls `person` inside the detection's box (Faster R-CNN
  gives boxes, not masks), scored by the detection. {', '.join(f'`{c}`' for c in components) or 'No class'}:
  the connected components of its pixels (at least 4), scored by the segmenter's mean probability.
- Merged as Panoptic FPN does (`merge`): instances with a score of at least {MERGE['score_threshold']}, highest
  first, dropped when more than {MERGE['overlap_threshold']} of an instance lies on pixels already taken; then
  each stuff class of the semantic map on the pixels still free, when at least
  {MERGE['stuff_area_threshold']} pixels; the rest is void.

## Intended use

`audit demo`: the panoptic audit of the planted-bias benchmark without training a fourth model. Not evaluated
for any decision about people.

## Caveats

- It inherits both models' errors: a person the detector misses is lost, and a person's segment is only as
  good as the segmenter's person pixels inside the box.
"""
    return write_model_card(models / CARD, front_matter=fm, body=body)
