"""Train a classifier: the pretrained trunk, global average pooling and a new linear head."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import torch

from ..errors import CardError
from ._card import write_model_card
from ._loop import (STRATEGY_TEXT, Timer, check_strategy, fit, front_matter, image_size, load_images, prepare,
                    provenance_text, save_weights)
from .backbone import BACKBONES, backbone_of, trunk_text
from .models import TrunkClassifier, entry_point

__all__ = ["DEFAULTS", "train_classifier"]

log = logging.getLogger("audit")

# epochs, batch size, peak learning rate per strategy (tuned on the 64x64 benchmark, 2 CPU cores)
DEFAULTS = {"head": (40, 64, 1e-2), "finetune": (8, 32, 3e-3), "full": (8, 32, 2e-3)}


def composition(frame, card) -> list[str]:
    """Markdown bullets: samples per class and per level of each declared attribute."""
    lines = []
    counts = frame["label"].value_counts()
    lines.append("- class: " + ", ".join(f"{name} {int(counts.get(i, 0))}" for i, name in enumerate(card.classes)))
    for attr in card.attributes:
        values = frame[attr.name].map(lambda v: "missing" if v is None else str(v)).value_counts()
        shown = ", ".join(f"{k} {int(v)}" for k, v in list(values.items())[:12])
        lines.append(f"- {attr.name}: {shown}{', …' if len(values) > 12 else ''}")
    return lines


def train_classifier(data_card, *, trunk, provenance: dict, out_card, strategy: str = "finetune",
                     epochs: int | None = None, seed: int = 0, batch_size: int | None = None,
                     lr: float | None = None, resize: tuple[int, int] | None = None) -> dict:
    """Train trunk + new linear head on a classification data card's split; write weights and model card.

    Parameters
    ----------
    data_card : str or Path or DataCard
        The training split (read with :func:`audit.core.data.load_split`).
    trunk : nn.Sequential
        The pretrained trunk (:func:`audit.train.pretrain.pretrained_trunk`); trained in place
        unless ``strategy="head"``.
    provenance : dict
        Where the trunk's weights came from (written into the card).
    out_card : str or Path
        The model card to write (``models/NAME.md``); weights go to ``models/NAME.pth``.
    strategy : {"head", "finetune", "full"}
        ``head``: freeze the trunk (small datasets); ``finetune``: also train layer2
        (bigger datasets); ``full``: train everything.
    epochs, batch_size, lr : optional
        Default per strategy (:data:`DEFAULTS`).
    resize : (int, int), optional
        Train (and evaluate, via the card's preprocessing) at this ``(height, width)``;
        default: the size of the first training image. Smaller is quadratically faster.
    seed : int
        Seeds initialisation and shuffling.

    Returns
    -------
    dict
        ``n_train``, ``epochs``, ``seconds``, ``train_loss``, ``train_accuracy``
        (last epoch), ``strategy``, ``card``, ``weights``.

    Raises
    ------
    AuditError
        The data card, its split or the strategy is invalid.
    """
    from ..core.registry import load_any_data_card
    from ..core.data import load_split

    check_strategy(strategy)
    timer = Timer()
    card = load_any_data_card(data_card)
    if card.segmentation is not None:
        raise CardError(f"{card.path}: expected a classification data card, found a 'segmentation' block "
                        "(use --task semantic_segmentation)")
    frame = load_split(card, verify_images=False)
    if frame.empty:
        raise CardError(f"{card.path}: expected a training split with samples, found none")
    d_epochs, d_batch, d_lr = DEFAULTS[strategy]
    epochs, batch_size, lr = epochs or d_epochs, batch_size or d_batch, lr or d_lr
    resize = tuple(resize) if resize else image_size(frame["image_path"].iat[0])
    x = load_images(frame["image_path"], resize)
    y = torch.tensor(frame["label"].to_numpy(), dtype=torch.long)
    log.info("training a classifier on %d images of %s (%s, %d epochs)", len(x), card.name, strategy, epochs)

    torch.manual_seed(seed)
    model = TrunkClassifier(len(card.classes), trunk=trunk)
    prepare(model, strategy)
    stats = fit(model, x, y, loss_fn=torch.nn.functional.cross_entropy,
                score_fn=lambda logits, t: (int((logits.argmax(1) == t).sum()), len(t)),
                epochs=epochs, batch_size=batch_size, lr=lr, seed=seed)
    out_card = Path(out_card)
    weights = save_weights(model, out_card)
    seconds = timer()
    summary = {"task": "classification", "n_train": len(x), "epochs": epochs, "seconds": seconds, **stats,
               "strategy": strategy, "card": str(out_card), "weights": str(weights)}
    entry = entry_point("trunk_classifier", trunk)
    spec = BACKBONES[backbone_of(trunk)]
    fm = front_matter(task="classification", entry_point=entry, weights=weights,
                      classes=card.classes, resize=resize, data_card=card, strategy=strategy, provenance=provenance,
                      description=f"{spec.pretty} {spec.cut} with a new linear head, trained on {card.name} "
                                  "by audit train", backbone=spec.name)
    body = f"""# Model card: {out_card.stem}

## Model details

- Architecture: {trunk_text(model.trunk)}, global average
  pooling and a new linear layer with {len(card.classes)} outputs ({', '.join(card.classes)}).
- Built by the entry point `{entry}`; weights `{weights.name}` (a state dict,
  loaded with `weights_only=True`).
- Input: RGB resized to {resize[0]}x{resize[1]}, normalised with the ImageNet mean and standard deviation.

## Intended use

Auditing: a baseline to exercise `audit run` on splits like the training data. Not evaluated for any
decision about people.

## Training data

Data card `{os.path.relpath(card.path, out_card.parent)}` ({card.name}): {len(x)} samples.

{chr(10).join(composition(frame, card))}

## Training procedure

- Strategy `{strategy}`: {STRATEGY_TEXT[strategy]}.
- {epochs} epochs, AdamW (weight decay 1e-4) with a one-cycle learning rate peaking at {lr}, batch size
  {batch_size}, cross-entropy, seed {seed}, no augmentation. Frozen BatchNorm layers keep their running statistics.
- Pretrained trunk: {provenance_text(provenance)}.
- Last epoch: training loss {stats['train_loss']}, training accuracy {stats['train_accuracy']}.
- Time: {seconds} s on {torch.get_num_threads()} CPU thread(s) (loading, training, saving; pretraining not included).

## Caveats

- Trained on {card.name} only; accuracy on other data, and per group, is what `audit run` measures.
- Groups that are rare in the training data are likely to be served worse.
"""
    write_model_card(out_card, front_matter=fm, body=body)
    log.info("wrote %s and %s (%.1f s)", out_card, weights, seconds)
    return summary
