"""``audit train`` for detection and instance segmentation: a small Faster / Mask R-CNN on the ResNet-18 trunk.

The network is torchvision's own :class:`~torchvision.models.detection.FasterRCNN`
/ :class:`~torchvision.models.detection.MaskRCNN` with the trunk of
:mod:`audit.train.backbone` as a single-level backbone (feature map ``'0'``,
stride 8, 128 channels) and heads sized for people of roughly 10 to 50
pixels in 64x64 images: images keep their size inside the model, anchors
are 8 to 64 px, mostly taller than wide, the box head is
``TwoMLPHead(128*5*5, 64)`` and the mask head two 64-channel convolutions
on 7x7 RoIs (14x14 mask logits). Few proposals and sampled RoIs keep a
training step on two CPU cores short; the weights take about 4-5 MB.
:func:`person_fasterrcnn` and :func:`person_maskrcnn` rebuild the
architecture untrained; a model card names one of them as
``model.entry_point`` and the trained state dict as ``weights.path``.

Training reads the split through the detection data card
(:func:`audit.tasks.detection.cards.load_detection_data_card`,
:func:`audit.tasks.detection.data.load_ground_truth`): every non-crowd annotation
is a person (label 1, class-agnostic), boxes become ``xyxy`` and RLE masks
are decoded with pycocotools.
"""

from __future__ import annotations

import logging
import math
import os
from pathlib import Path

import numpy as np

from ..errors import AuditError, CardError, DataError

__all__ = ["DEFAULTS", "person_fasterrcnn", "person_maskrcnn", "train_detector"]

log = logging.getLogger("audit")

# Hyperparameters ``train_detector`` accepts as keywords (tuned on the 64x64 benchmark, 2 CPU cores).
DEFAULTS = {
    "lr": 0.02,            # SGD peak learning rate: linear warm-up, then cosine decay to 0
    "momentum": 0.9,
    "weight_decay": 1e-4,
    "batch_size": 8,
    "steps": 200,          # optimiser steps when ``epochs`` is not given (rounded to whole epochs)
    "hflip": True,         # random horizontal flips
}

MIN_SIZE = 64          # torchvision's internal resize: 64-px images keep their size (an 8x8 feature map)
ANCHOR_SIZES = (8, 16, 32, 64)
ASPECT_RATIOS = (1.0, 2.0, 3.0)  # height / width
BOX_POOL = 5
REPRESENTATION = 32
MASK_POOL = 7  # mask logits at 14x14 per box: enough for people of ~15x45 px, 4x cheaper than 14
SAMPLING = 1  # RoIAlign samples per bin: a person covers about 2x5 cells of the 8x8 feature map


def _build(num_classes: int, *, masks: bool, trunk=None, backbone: str = "resnet18"):
    from torchvision.models.detection import FasterRCNN, MaskRCNN
    from torchvision.models.detection.anchor_utils import AnchorGenerator
    from torchvision.models.detection.faster_rcnn import FastRCNNPredictor, TwoMLPHead
    from torchvision.models.detection.mask_rcnn import MaskRCNNHeads, MaskRCNNPredictor
    from torchvision.ops import MultiScaleRoIAlign

    from .backbone import make_trunk

    trunk = make_trunk(backbone) if trunk is None else trunk
    channels = trunk.out_channels
    common = {
        "min_size": MIN_SIZE, "max_size": 4 * MIN_SIZE,
        "rpn_anchor_generator": AnchorGenerator(sizes=(ANCHOR_SIZES,), aspect_ratios=(ASPECT_RATIOS,)),
        "box_roi_pool": MultiScaleRoIAlign(featmap_names=["0"], output_size=BOX_POOL, sampling_ratio=SAMPLING),
        "box_head": TwoMLPHead(channels * BOX_POOL ** 2, REPRESENTATION),
        "box_predictor": FastRCNNPredictor(REPRESENTATION, num_classes),
        # few proposals and sampled RoIs: a handful of people per small image, two CPU cores
        "rpn_pre_nms_top_n_train": 300, "rpn_post_nms_top_n_train": 100, "rpn_pre_nms_top_n_test": 150,
        "rpn_post_nms_top_n_test": 50, "rpn_batch_size_per_image": 64, "box_batch_size_per_image": 32,
        "box_detections_per_img": 20, "box_score_thresh": 0.01,
    }
    if not masks:
        return FasterRCNN(trunk, **common)
    mask_pool = MultiScaleRoIAlign(featmap_names=["0"], output_size=MASK_POOL, sampling_ratio=SAMPLING)
    return MaskRCNN(trunk, mask_roi_pool=mask_pool, mask_head=MaskRCNNHeads(channels, [64, 64], 1),
                    mask_predictor=MaskRCNNPredictor(64, 64, num_classes), **common)


def person_fasterrcnn(num_classes: int = 2):
    """The untrained detector ``audit train`` fits for ``task: detection`` (a model card's entry point).

    Parameters
    ----------
    num_classes : int
        Output labels including background (2: background, person).

    Returns
    -------
    torchvision.models.detection.FasterRCNN
    """
    return _build(num_classes, masks=False)


def person_maskrcnn(num_classes: int = 2):
    """The untrained detector ``audit train`` fits for ``task: instance_segmentation`` (a card's entry point).

    Parameters
    ----------
    num_classes : int
        Output labels including background (2: background, person).

    Returns
    -------
    torchvision.models.detection.MaskRCNN
    """
    return _build(num_classes, masks=True)


ENTRY_POINTS = {"detection": "audit.train.detection:person_fasterrcnn",
                "instance_segmentation": "audit.train.detection:person_maskrcnn"}


def __getattr__(name: str):
    """``person_fasterrcnn_<backbone>`` and ``person_maskrcnn_<backbone>``: entry points on another backbone."""
    from .backbone import BACKBONES

    for kind, masks in (("person_fasterrcnn", False), ("person_maskrcnn", True)):
        backbone = name[len(kind) + 1:] if name.startswith(kind + "_") else None
        if backbone in BACKBONES:
            def build(num_classes: int = 2, _masks=masks, _backbone=backbone):
                return _build(num_classes, masks=_masks, backbone=_backbone)

            build.__name__ = build.__qualname__ = name
            return build
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# ---------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------


def _load_split(card, masks: bool):
    """Images as uint8 ``(3, H, W)`` tensors and torchvision targets, one per ground-truth image."""
    import torch
    from PIL import Image
    from pycocotools import mask as mask_utils
    from torchvision.transforms.functional import pil_to_tensor

    from ..tasks.detection.data import load_ground_truth

    gt = load_ground_truth(card.coco, masks=card.masks, need_masks=masks, image_root=card.image_root,
                           allow_outside=card.allow_paths_outside_root)
    b = gt.boxes
    keep = ~np.asarray(b.iscrowd, dtype=bool) & (b.bbox[:, 2] >= 1) & (b.bbox[:, 3] >= 1)
    by_image: dict = {}
    for i in np.flatnonzero(keep):
        by_image.setdefault(b.image[i].item(), []).append(i)
    images, targets = [], []
    for row in gt.images.itertuples(index=False):
        path = Path(row.path)  # checked against the image root by load_ground_truth
        try:
            with Image.open(path) as im:
                image = pil_to_tensor(im.convert("RGB"))
        except FileNotFoundError:
            raise DataError(f"{gt.path}: image {row.image_id!r}: file not found: {path}") from None
        except OSError as exc:
            raise DataError(f"{path}: cannot decode image {row.image_id!r}: {' '.join(str(exc).split())}") from None
        idx = by_image.get(row.image_id, [])
        xywh = b.bbox[idx].reshape(-1, 4)
        target = {"boxes": torch.as_tensor(np.c_[xywh[:, :2], xywh[:, :2] + xywh[:, 2:]], dtype=torch.float32),
                  "labels": torch.ones(len(idx), dtype=torch.int64)}
        if masks:
            h, w = image.shape[1:]
            decoded = [mask_utils.decode(b.segmentation[i]) for i in idx]
            for i, m in zip(idx, decoded):
                if m.shape != (h, w):
                    raise DataError(f"{gt.path}: annotation {int(b.ann_id[i])}: field 'segmentation': expected a "
                                    f"{h}x{w} mask like its image {path.name}, found {m.shape[0]}x{m.shape[1]}")
            target["masks"] = torch.as_tensor(np.stack(decoded) if decoded else np.zeros((0, h, w), np.uint8))
        images.append(image)
        targets.append(target)
    return gt, images, targets


def _label(card, gt) -> str:
    """The name of output label 1: the card's first detection class, else ``person`` or the first category."""
    if card.detection_classes:
        return card.detection_classes[0]
    names = set(gt.categories.values())
    return "person" if "person" in names or not names else gt.categories[min(gt.categories)]


def _flip(image, target):
    out = dict(target)
    w = image.shape[-1]
    boxes = target["boxes"].clone()
    boxes[:, [0, 2]] = w - target["boxes"][:, [2, 0]]
    out["boxes"] = boxes
    if "masks" in target:
        out["masks"] = target["masks"].flip(-1)
    return image.flip(-1), out


# ---------------------------------------------------------------------------
# Training
# ---------------------------------------------------------------------------


def _hyperparameters(given: dict) -> dict:
    unknown = sorted(set(given) - set(DEFAULTS))
    if unknown:
        raise AuditError(f"hyperparameter '{unknown[0]}': expected one of {', '.join(DEFAULTS)}, found "
                         f"{unknown[0]}={given[unknown[0]]!r}")
    hp = dict(DEFAULTS)
    hp.update({k: v for k, v in given.items() if v is not None})
    for key in ("batch_size", "steps"):
        if isinstance(hp[key], bool) or not isinstance(hp[key], int) or hp[key] < 1:
            raise AuditError(f"hyperparameter '{key}': expected a positive integer, found {hp[key]!r}")
    for key in ("lr", "momentum", "weight_decay"):
        if isinstance(hp[key], bool) or not isinstance(hp[key], (int, float)) or not hp[key] >= 0:
            raise AuditError(f"hyperparameter '{key}': expected a non-negative number, found {hp[key]!r}")
    return hp


def train_detector(data_card, *, trunk, provenance: dict, out_card, strategy: str = "finetune",
                   epochs: int | None = None, seed: int = 0, task: str = "detection", **hyperparameters) -> dict:
    """Train a Faster R-CNN (detection) or Mask R-CNN (instance segmentation) on a detection data card's split.

    Writes the state dict to ``<out_card stem>.pth`` and the model card to
    ``out_card`` (both atomically); ``audit run --model out_card`` audits it.

    Parameters
    ----------
    data_card : str or Path or DetectionDataCard
        The training split: COCO ground truth (masks too for instance segmentation).
    trunk : nn.Sequential
        The pretrained trunk (:func:`audit.train.pretrain.pretrained_trunk`); it
        becomes the detector's backbone and is trained in place unless
        ``strategy="head"``.
    provenance : dict
        Where the trunk's weights came from (written into the card).
    out_card : str or Path
        The model card to write (``models/NAME.md``).
    strategy : {"head", "finetune", "full"}
        ``head``: freeze the trunk; ``finetune``: also train layer2; ``full``: train everything.
    epochs : int, optional
        Passes over the split; default enough whole epochs for ``steps`` optimiser steps.
    seed : int
        Seeds the heads' initialisation, shuffling and flips.
    task : {"detection", "instance_segmentation"}
    **hyperparameters
        Any of :data:`DEFAULTS` (``lr``, ``momentum``, ``weight_decay``,
        ``batch_size``, ``steps``, ``hflip``).

    Returns
    -------
    dict
        ``task``, ``n_train`` (images), ``n_people``, ``epochs``, ``steps``,
        ``seconds``, ``losses`` (mean of each loss over the last epoch),
        ``strategy``, ``card``, ``weights``.

    Raises
    ------
    AuditError
        The data card, its split, the task, strategy or a hyperparameter is invalid.
    """
    import torch

    from ..tasks.detection.cards import (
        DETECTION_TASKS,
        DetectionDataCard,
        load_detection_data_card,
    )
    from ._card import write_model_card
    from ._loop import Timer, check_strategy, save_weights, train_mode
    from .backbone import set_trainable

    if task not in DETECTION_TASKS:
        raise AuditError(f"task: expected one of {', '.join(DETECTION_TASKS)}, found {task!r}")
    check_strategy(strategy)
    if epochs is not None and (isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1):
        raise AuditError(f"epochs: expected a positive integer, found {epochs!r}")
    hp = _hyperparameters(hyperparameters)
    timer = Timer()
    masks = task == "instance_segmentation"
    card = data_card if isinstance(data_card, DetectionDataCard) else load_detection_data_card(data_card)
    gt, images, targets = _load_split(card, masks)
    n_people = sum(len(t["labels"]) for t in targets)
    if n_people == 0:
        raise CardError(f"{card.path}: expected a training split with people (non-crowd annotations), found none")
    n = len(images)
    batch_size = min(hp["batch_size"], n)
    steps_per_epoch = math.ceil(n / batch_size)
    epochs = epochs or max(1, round(hp["steps"] / steps_per_epoch))
    total = epochs * steps_per_epoch
    log.info("training a %s on %d images (%d people) of %s (%s, %d epochs, %d steps)",
             "Mask R-CNN" if masks else "Faster R-CNN", n, n_people, card.name, strategy, epochs, total)

    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    model = _build(2, masks=masks, trunk=trunk)
    set_trainable(model.backbone, strategy)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.SGD(params, lr=hp["lr"], momentum=hp["momentum"], weight_decay=hp["weight_decay"])
    warmup = min(50, max(1, total // 5))
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: (s + 1) / warmup if s < warmup else 0.5 * (1 + math.cos(math.pi * (s - warmup) /
                                                                                max(1, total - warmup))))
    losses: dict = {}
    for epoch in range(epochs):
        train_mode(model)  # frozen BatchNorm layers keep their running statistics
        order = torch.randperm(n, generator=generator).tolist()
        flips = (torch.rand(n, generator=generator) < 0.5).tolist()
        sums: dict = {}
        for start in range(0, n, batch_size):
            batch_images, batch_targets = [], []
            for i in order[start:start + batch_size]:
                image, target = images[i], targets[i]
                if hp["hflip"] and flips[i]:
                    image, target = _flip(image, target)
                batch_images.append(image.float().div(255))
                batch_targets.append(target)
            parts = model(batch_images, batch_targets)
            loss = sum(parts.values())
            if not torch.isfinite(loss):
                raise AuditError(f"training diverged at epoch {epoch + 1} (loss {float(loss)}): expected a finite "
                                 f"loss, try a smaller lr than {hp['lr']}")
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            for k, v in parts.items():
                sums[k] = sums.get(k, 0.0) + float(v.detach()) * len(batch_images)
        losses = {k.removeprefix("loss_"): round(v / n, 4) for k, v in sums.items()}
        log.info("epoch %d/%d: %s", epoch + 1, epochs, ", ".join(f"{k} {v:.3f}" for k, v in losses.items()))
    model.eval()

    out_card = Path(out_card)
    weights = save_weights(model, out_card)
    seconds = timer()
    summary = {"task": task, "n_train": n, "n_people": n_people, "epochs": epochs, "steps": total,
               "seconds": seconds, "losses": losses, "strategy": strategy, "card": str(out_card),
               "weights": str(weights)}
    label = _label(card, gt)
    fm, body = _card_text(card=card, task=task, weights=weights, out_card=out_card, label=label, n=n,
                          n_people=n_people, strategy=strategy, epochs=epochs, total=total, batch_size=batch_size,
                          hp=hp, seed=seed, provenance=provenance, losses=losses, seconds=seconds,
                          threads=torch.get_num_threads(), trunk=model.backbone)
    write_model_card(out_card, front_matter=fm, body=body)
    log.info("wrote %s and %s (%.1f s)", out_card, weights, seconds)
    return summary


def _card_text(*, card, task, weights, out_card, label, n, n_people, strategy, epochs, total, batch_size, hp, seed,
               provenance, losses, seconds, threads, trunk=None):
    from ._loop import STRATEGY_TEXT, provenance_text

    from .backbone import BACKBONES, backbone_of, trunk_text

    net = "Mask R-CNN" if task == "instance_segmentation" else "Faster R-CNN"
    spec = BACKBONES[backbone_of(trunk)]
    entry = ENTRY_POINTS[task] + ("" if spec.name == "resnet18" else f"_{spec.name}")
    fm = {
        "task": task,
        "model": {"entry_point": entry},
        "weights": {"path": weights.name},
        "num_classes": 2,
        "label_map": ["__background__", label],
        "description": f"torchvision {net} on {spec.pretty} {spec.cut}, trained on {card.name} by audit train",
        "library_name": "torchvision",
        "base_model": f"{spec.name} {spec.cut} ({provenance.get('source', 'random initialisation')})",
        "datasets": [str(card.name)],
        "tags": ["audit-train", f"strategy-{strategy}"],
    }
    mask_line = (f"\n- Mask head: RoIAlign {MASK_POOL}x{MASK_POOL}, two 64-channel 3x3 convolutions, a transposed "
                 f"convolution to {2 * MASK_POOL}x{2 * MASK_POOL} mask logits per box (`MaskRCNNHeads`, "
                 "`MaskRCNNPredictor`)." if task == "instance_segmentation" else "")
    loss_text = ", ".join(f"{k} {v}" for k, v in losses.items())
    flips = "random horizontal flips" if hp["hflip"] else "no augmentation"
    body = f"""# Model card: {out_card.stem}

## Model details

- Architecture: torchvision `{net.replace(' ', '').replace('-', '')}` with {trunk_text(trunk) if trunk is not None
  else "torchvision ResNet-18 `conv1`..`layer2` (stride 8, 128 channels)"} as a single-level backbone; one class, `{label}`, besides the background.
- Inside the model images are normalised with the ImageNet mean and standard deviation and resized so
  that the shorter side is {MIN_SIZE} px (64x64 images keep their size).
- Region proposals: anchors of {', '.join(map(str, ANCHOR_SIZES))} px with height/width
  {', '.join(f'{a:g}' for a in ASPECT_RATIOS)}; box head: RoIAlign {BOX_POOL}x{BOX_POOL}, two fully connected
  layers of {REPRESENTATION} (`TwoMLPHead`).{mask_line}
- Built by the entry point `{entry}`; weights `{weights.name}` (a state dict, loaded with
  `weights_only=True`).

## Intended use

Auditing: a baseline to exercise `audit run` on splits like the training data (small images, one to a
few people each). Not evaluated for any decision about people.

## Training data

Data card `{os.path.relpath(card.path, out_card.parent)}` ({card.name}): {n} images, {n_people} people
(non-crowd annotations of any category, trained as one class).

## Training procedure

- Strategy `{strategy}`: {STRATEGY_TEXT[strategy]}.
- {epochs} epoch{'s' if epochs != 1 else ''} ({total} steps), SGD (momentum {hp['momentum']}, weight decay
  {hp['weight_decay']}), learning rate warmed up linearly to {hp['lr']} then cosine-decayed to 0, batch size
  {batch_size}, {flips}, seed {seed}; the sum of torchvision's RPN and box{' and mask' if mask_line else ''} losses.
  Frozen BatchNorm layers keep their running statistics.
- Pretrained trunk: {provenance_text(provenance)}.
- Last epoch, mean losses: {loss_text}.
- Time: {seconds} s on {threads} CPU thread(s) (loading, training, saving; pretraining not included).

## Caveats

- Trained on {card.name} only, at its image size; people much smaller than 10 px or larger than about
  60 px, or in larger images, are outside what the anchors and the short training cover.
- Every annotation is trained as `{label}`, whatever its category.
- Groups that are rare in the training data are likely to be served worse: what `audit run` measures.
"""
    return fm, body
