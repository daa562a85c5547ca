"""Train a semantic segmenter: the pretrained trunk and a light U-Net-style decoder."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import torch

from ..errors import CardError, DataError
from ._card import write_model_card
from ._loop import (STRATEGY_TEXT, Timer, check_strategy, fit, front_matter, image_size, load_images, prepare,
                    provenance_text, save_weights)
from .backbone import BACKBONES, backbone_of, trunk_text
from .models import TrunkSegmenter, entry_point

__all__ = ["DEFAULTS", "train_segmenter"]

log = logging.getLogger("audit")

# epochs, batch size, peak learning rate per strategy (tuned on the 64x64 benchmark, 2 CPU cores)
DEFAULTS = {"head": (12, 32, 1e-2), "finetune": (6, 32, 3e-3), "full": (6, 32, 2e-3)}


def load_masks(paths, size: tuple[int, int], *, num_classes: int, ignore_index: int) -> torch.Tensor:
    """Label masks as one ``(N, H, W)`` int64 tensor, resized (nearest) to ``size`` when they differ.

    Raises
    ------
    DataError
        A mask holds a value that is neither a class index nor ``ignore_index``.
    """
    from PIL import Image

    from ..tasks.segmentation.data import read_mask

    out = torch.empty(len(paths), *size, dtype=torch.long)
    for i, path in enumerate(paths):
        mask = read_mask(path, what="label mask")
        if mask.shape != tuple(size):
            mask = np.asarray(Image.fromarray(mask).resize((size[1], size[0]), Image.NEAREST))
        bad = (mask >= num_classes) & (mask != ignore_index)
        if bad.any():
            raise DataError(f"{path}: label mask value {int(mask[bad][0])} is neither a class index "
                            f"(0..{num_classes - 1}) nor the ignore_index {ignore_index}")
        out[i] = torch.from_numpy(mask.astype(np.int64))
    return out


def _class_weights(y: torch.Tensor, num_classes: int, ignore_index: int) -> torch.Tensor:
    """Inverse square-root pixel frequency, mean 1: small classes (people, balls) count for more."""
    valid = y[y != ignore_index]
    freq = torch.bincount(valid.flatten(), minlength=num_classes).float().clamp(min=1)
    w = freq.rsqrt()
    return w / w.mean()


def train_segmenter(data_card, *, trunk, provenance: dict, out_card, strategy: str = "finetune",
                    epochs: int | None = None, seed: int = 0, batch_size: int | None = None,
                    lr: float | None = None) -> dict:
    """Train trunk + decoder on a segmentation data card's split; write weights and model card.

    Parameters are those of :func:`audit.train.classification.train_classifier`;
    the split is read with :func:`audit.tasks.segmentation.data.load_segmentation_split`,
    pixels equal to the card's ``ignore_index`` add nothing to the loss, and
    the cross-entropy weighs each class by its inverse square-root pixel frequency.

    Returns
    -------
    dict
        ``n_train``, ``epochs``, ``seconds``, ``train_loss``, ``train_accuracy``
        (pixel accuracy of the last epoch), ``strategy``, ``card``, ``weights``.
    """
    from ..core.registry import load_any_data_card
    from ..tasks.segmentation.data import load_segmentation_split

    check_strategy(strategy)
    timer = Timer()
    card = load_any_data_card(data_card)
    if card.segmentation is None:
        raise CardError(f"{card.path}: expected a segmentation data card (with a 'segmentation' block), "
                        "found none (use --task classification)")
    images, _ = load_segmentation_split(card)
    if images.empty:
        raise CardError(f"{card.path}: expected a training split with samples, found none")
    ignore = card.segmentation.ignore_index
    n_classes = len(card.classes)
    d_epochs, d_batch, d_lr = DEFAULTS[strategy]
    epochs, batch_size, lr = epochs or d_epochs, batch_size or d_batch, lr or d_lr
    resize = image_size(images["image_path"].iat[0])
    x = load_images(images["image_path"], resize)
    y = load_masks(images["mask_path"], resize, num_classes=n_classes, ignore_index=ignore)
    weight = _class_weights(y, n_classes, ignore)
    log.info("training a segmenter on %d images of %s (%s, %d epochs)", len(x), card.name, strategy, epochs)

    def loss_fn(logits, target):
        return torch.nn.functional.cross_entropy(logits, target, weight=weight, ignore_index=ignore)

    def score_fn(logits, target):
        valid = target != ignore
        return int(((logits.argmax(1) == target) & valid).sum()), int(valid.sum())

    torch.manual_seed(seed)
    model = TrunkSegmenter(n_classes, trunk=trunk)
    prepare(model, strategy)
    stats = fit(model, x, y, loss_fn=loss_fn, score_fn=score_fn, epochs=epochs, batch_size=batch_size, lr=lr,
                seed=seed)
    out_card = Path(out_card)
    weights = save_weights(model, out_card)
    seconds = timer()
    summary = {"task": "semantic_segmentation", "n_train": len(x), "epochs": epochs, "seconds": seconds, **stats,
               "strategy": strategy, "card": str(out_card), "weights": str(weights)}
    entry = entry_point("trunk_segmenter", trunk)
    spec = BACKBONES[backbone_of(trunk)]
    fm = front_matter(task="semantic_segmentation", entry_point=entry,
                      weights=weights, classes=card.classes, resize=resize, data_card=card, strategy=strategy,
                      provenance=provenance,
                      description=f"{spec.pretty} {spec.cut} with a light U-Net-style decoder, trained on {card.name} "
                                  "by audit train", backbone=spec.name)
    share = torch.bincount(y[y != ignore].flatten(), minlength=n_classes).double()
    share = share / share.sum().clamp(min=1)
    body = f"""# Model card: {out_card.stem}

## Model details

- Architecture: {trunk_text(model.trunk)} and a decoder that upsamples the stride-8
  features and fuses them with the stride-4 and stride-2 stages (`{model.taps[1]}`, `{model.taps[0]}`); logits
  for {n_classes} classes ({', '.join(card.classes)}) at the input's resolution.
- Built by the entry point `{entry}`; weights `{weights.name}` (a state dict,
  loaded with `weights_only=True`).
- Input: RGB resized to {resize[0]}x{resize[1]}, normalised with the ImageNet mean and standard deviation.

## Intended use

Auditing: a baseline to exercise `audit run` on splits like the training data. Not evaluated for any
decision about people.

## Training data

Data card `{os.path.relpath(card.path, out_card.parent)}` ({card.name}): {len(x)} images.

- Pixel share per class (ignored pixels excluded): {', '.join(f'{c} {float(s):.3f}' for c, s in zip(card.classes, share))}

## Training procedure

- Strategy `{strategy}`: {STRATEGY_TEXT[strategy]}.
- {epochs} epochs, AdamW (weight decay 1e-4) with a one-cycle learning rate peaking at {lr}, batch size
  {batch_size}, cross-entropy weighted by inverse square-root class frequency, pixels labelled {ignore}
  ignored, seed {seed}, no augmentation. Frozen BatchNorm layers keep their running statistics.
- Pretrained trunk: {provenance_text(provenance)}.
- Last epoch: training loss {stats['train_loss']}, pixel accuracy {stats['train_accuracy']}.
- Time: {seconds} s on {torch.get_num_threads()} CPU thread(s) (loading, training, saving; pretraining not included).

## Caveats

- Trained on {card.name} only; IoU on other data, per class and per person group, is what `audit run` measures.
- Thin structures narrower than about two pixels are blurred by the stride-2 output.
"""
    write_model_card(out_card, front_matter=fm, body=body)
    log.info("wrote %s and %s (%.1f s)", out_card, weights, seconds)
    return summary
