"""What every ``audit train`` trainer shares: loading images, the training loop, weights and card text."""

from __future__ import annotations

import io
import logging
import time
from pathlib import Path

import torch
from torch import nn

from .._io import atomic_write_bytes
from ..errors import AuditError, DataError
from .backbone import BACKBONES, frozen_prefix, set_trainable, train_mode
from .pretrain import MEAN, STD

log = logging.getLogger("audit")

STRATEGIES = ("head", "finetune", "full")
STRATEGY_TEXT = {
    "head": "trunk frozen, only the new head trained (advised for a small dataset)",
    "finetune": "every trunk stage but the last frozen (a ResNet's conv1..layer1); the last stage (layer2) and the "
                "new head trained (advised for a bigger dataset)",
    "full": "every layer trained",
}


def check_strategy(strategy: str) -> None:
    """Raise a one-line :class:`AuditError` for an unknown strategy."""
    if strategy not in STRATEGIES:
        raise AuditError(f"strategy: expected one of {', '.join(STRATEGIES)}, found {strategy!r}")


def image_size(path) -> tuple[int, int]:
    """``(height, width)`` of an image file."""
    from PIL import Image

    try:
        with Image.open(path) as image:
            return image.height, image.width
    except Exception as exc:  # noqa: BLE001 - PIL raises many types
        raise DataError(f"{path}: cannot read image: {' '.join(str(exc).split()) or type(exc).__name__}") from None


def load_images(paths, resize: tuple[int, int]) -> torch.Tensor:
    """Every image resized and normalised (the model card's preprocessing) as one ``(N, 3, H, W)`` tensor."""
    from ..core.card_loaders import Preprocessing
    from ..core.images import ImageDataset
    from ..core.models import preprocessing_transform

    transform = preprocessing_transform(Preprocessing(resize=tuple(resize), mean=MEAN, std=STD))
    dataset = ImageDataset(list(paths), transform)
    out = torch.empty(len(dataset), 3, *resize)
    for i in range(len(dataset)):
        tensor, _, error = dataset[i]
        if error:
            raise DataError(f"{dataset.paths[i]}: cannot read image: {error}")
        out[i] = tensor
    return out


def prepare(model: nn.Module, strategy: str) -> None:
    """Freeze the trunk for ``strategy``; the head stays trainable."""
    set_trainable(model.trunk, strategy)


def fit(model, x: torch.Tensor, target: torch.Tensor, *, loss_fn, score_fn, epochs: int, batch_size: int,
        lr: float, seed: int) -> dict:
    """Train ``model`` (a :class:`~audit.train.models.TrunkModel`) with AdamW and a one-cycle schedule.

    The frozen leading trunk stages run once over all of ``x`` (in eval mode),
    and each epoch starts from their outputs, so only the trainable part runs
    every step. Batches are shuffled with a generator seeded by ``seed``.
    ``score_fn(logits, target) -> (correct, count)``.

    Returns
    -------
    dict
        ``train_loss`` and ``train_accuracy`` of the last epoch.
    """
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    k = frozen_prefix(model.trunk)
    n = len(x)
    size = x.shape[-2:]
    if k:
        model.eval()
        parts = []
        with torch.no_grad():
            for i in range(0, n, 128):
                parts.append(model.features(x[i:i + 128], stop=k))
        cached = {name: torch.cat([p[name] for p in parts]) for name in parts[0]}
        del parts
    else:
        cached = {"_x": x}
    params = [p for p in model.parameters() if p.requires_grad]
    steps_per_epoch = max(1, n // batch_size)
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=epochs * steps_per_epoch, pct_start=0.2)
    stats = {}
    for epoch in range(epochs):
        train_mode(model)
        order = torch.randperm(n, generator=generator)
        total_loss, correct, count, seen = 0.0, 0, 0, 0
        for step in range(steps_per_epoch):
            idx = order[step * batch_size:(step + 1) * batch_size] if step < steps_per_epoch - 1 else \
                order[step * batch_size:]  # the last batch takes the remainder
            batch = {name: value[idx] for name, value in cached.items()}
            feats = model.features(batch.pop("_x"), start=k, carry=batch)
            logits = model.head_forward(feats, size)
            loss = loss_fn(logits, target[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            total_loss += float(loss.detach()) * len(idx)
            seen += len(idx)
            c, m = score_fn(logits.detach(), target[idx])
            correct, count = correct + c, count + m
        stats = {"train_loss": round(total_loss / max(seen, 1), 4), "train_accuracy": round(correct / max(count, 1), 4)}
        log.info("epoch %d/%d: loss %.4f, accuracy %.3f", epoch + 1, epochs, stats["train_loss"], stats["train_accuracy"])
    model.eval()
    return stats


def save_weights(model: nn.Module, out_card: Path) -> Path:
    """Save the state dict as ``<card stem>.pth`` beside the card, atomically; returns the path."""
    path = Path(out_card).with_suffix(".pth")
    buffer = io.BytesIO()  # via a buffer, so the bytes do not depend on the file name
    torch.save({k: v.detach().cpu() for k, v in model.state_dict().items()}, buffer)
    atomic_write_bytes(path, buffer.getvalue())
    return path


def provenance_text(provenance: dict) -> str:
    """One Markdown paragraph saying where the trunk's pretrained weights came from."""
    source = provenance.get("source")
    if source == "local file":
        return f"loaded from the local file `{provenance['path']}` (SHA-256 `{provenance['sha256'][:16]}…`)"
    if source == "torchvision weights enum":
        spec = BACKBONES[provenance.get("backbone", "resnet18")]
        if spec.stride != 8:
            dropped = "the classifier"
        else:
            dropped = "layer3, layer4 and fc" if spec.builder.startswith("resnet") else "the later features and the classifier"
        return f"torchvision's `{provenance['enum']}` ({dropped} dropped)"
    if source == "synthetic source-task pretraining":
        return (f"pretrained by `audit train` itself on a synthetic source task (version {provenance['version']}, "
                f"seed {provenance['seed']}): {provenance['task']}; {provenance['images']} images, "
                f"{provenance['optimiser']}, {provenance['seconds']} s, held-out source accuracy "
                f"{provenance['source_accuracy']}")
    return "none (random initialisation)"


def front_matter(*, task: str, entry_point: str, weights: Path, classes, resize, data_card, strategy: str,
                 provenance: dict, description: str, backbone: str = "resnet18") -> dict:
    """The front matter ``audit run`` reads (task, model, weights, classes, preprocessing) and documentation."""
    return {
        "task": task,
        "model": {"entry_point": entry_point},
        "weights": {"path": weights.name},
        "num_classes": len(classes),
        "label_map": list(classes),
        "preprocessing": {"resize": [int(resize[0]), int(resize[1])], "mean": list(MEAN), "std": list(STD)},
        "description": description,
        "library_name": "torchvision",
        "base_model": f"{backbone} {BACKBONES[backbone].cut} ({provenance.get('source', 'random initialisation')})",
        "datasets": [str(data_card.name)],
        "tags": ["audit-train", f"strategy-{strategy}"],
    }


class Timer:
    """Seconds since creation."""

    def __init__(self):
        self.t0 = time.perf_counter()

    def __call__(self) -> float:
        return round(time.perf_counter() - self.t0, 1)
