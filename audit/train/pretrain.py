"""Pretrained weights for the trunk: a local file, a torchvision enum, or the project's own source task.

Pretrained weights cannot be downloaded on an offline machine, so without a
file :func:`pretrained_trunk` pretrains the trunk itself on a *source task*
unlike every target task: classifying procedurally drawn 32x32 patterns
(stripes at four orientations, checkerboards, concentric rings, and a disc,
square, triangle or cross on a faint striped background), in random colours
and with noise. Oriented edges, colour contrast and compact shapes are what
the target tasks' first layers need; the patterns are drawn from the seed, so
the trunk is the same on every machine. 32x32 images keep it within about 20
seconds on two CPU cores; convolution filters do not depend on image size, so
the trunk transfers to 64x64 targets.
"""

from __future__ import annotations

import hashlib
import io
import logging
import math
import time
from pathlib import Path

import torch
from torch import nn

from .._io import atomic_write_bytes
from ..errors import ModelError
from .backbone import BACKBONES, backbone_of, make_trunk, set_trainable, train_mode
from .models import TrunkClassifier

__all__ = ["SOURCE_CLASSES", "SOURCE_VERSION", "load_trunk_state", "pretrained_trunk", "source_images"]

log = logging.getLogger("audit")

SOURCE_VERSION = 2  # bump when the source task or its schedule changes: cached trunks are then rebuilt
SOURCE_CLASSES = ("vertical stripes", "horizontal stripes", "diagonal stripes /", "diagonal stripes \\",
                  "checkerboard", "concentric rings", "disc", "square", "triangle", "cross")
SOURCE_SIZE = 32
SOURCE_TRAIN = 6144
SOURCE_TEST = 1024
SOURCE_BATCH = 64
SOURCE_LR = 3e-3
# the ImageNet statistics every `audit train` model card uses, so ImageNet weights fit too
MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)


def _stripes(xx, yy, angle, freq, phase):
    return torch.sin(freq * (xx * torch.cos(angle) + yy * torch.sin(angle)) + phase) > 0


def source_images(n: int, *, generator: torch.Generator, size: int = SOURCE_SIZE) -> tuple[torch.Tensor, torch.Tensor]:
    """Draw ``n`` source-task images and labels (indices into :data:`SOURCE_CLASSES`).

    Returns
    -------
    images : Tensor
        ``(n, 3, size, size)``, normalised with :data:`MEAN` and :data:`STD`.
    labels : Tensor
        ``(n,)`` int64.
    """
    g = generator

    def u(lo, hi, *shape):
        return lo + (hi - lo) * torch.rand(n, *shape, generator=g)

    y = torch.randint(0, len(SOURCE_CLASSES), (n,), generator=g)
    axis = torch.linspace(-1, 1, size)
    yy, xx = torch.meshgrid(axis, axis, indexing="ij")
    xx, yy = xx.expand(n, size, size), yy.expand(n, size, size)
    col = lambda v: v[:, None, None]  # noqa: E731 - per-sample scalar against the pixel grid
    angle_jitter, freq, phase = u(-0.25, 0.25), u(6.0, 16.0), u(0.0, 2 * math.pi)
    cx, cy, r = u(-0.45, 0.45), u(-0.45, 0.45), u(0.25, 0.55)
    dx, dy = xx - col(cx), yy - col(cy)
    base = (0.0, math.pi / 2, math.pi / 4, -math.pi / 4)
    patterns = [_stripes(xx, yy, col(angle_jitter + a), col(freq), col(phase)) for a in base]
    checker = _stripes(xx, yy, col(angle_jitter), col(freq / 2), col(phase)) ^ _stripes(
        xx, yy, col(angle_jitter + math.pi / 2), col(freq / 2), col(phase))
    dist = torch.sqrt(dx**2 + dy**2)
    rings = torch.sin(col(freq) * dist + col(phase)) > 0
    disc = dist < col(r)
    square = (dx.abs() < col(r) * 0.85) & (dy.abs() < col(r) * 0.85)
    triangle = (dy < col(r) * 0.8) & (dy > -col(r)) & (dx.abs() < (dy + col(r)) * 0.6)
    arm = col(r) * 0.3
    cross = ((dx.abs() < arm) & (dy.abs() < col(r))) | ((dy.abs() < arm) & (dx.abs() < col(r)))
    patterns += [checker, rings, disc, square, triangle, cross]
    stack = torch.stack(patterns, 1)  # (n, classes, h, w)
    mask = stack[torch.arange(n), y].float()
    # shapes sit on a faint striped texture, so "any stripes" does not give the class away
    texture = _stripes(xx, yy, u(0, math.pi).view(n, 1, 1), col(u(4.0, 12.0)), col(phase)).float()
    faint = (y >= 6).float().view(n, 1, 1) * u(0.05, 0.2).view(n, 1, 1)
    fg, bg = u(0, 1, 3), u(0, 1, 3)
    same = (fg - bg).abs().max(1).values < 0.3  # make sure the pattern is visible
    fg[same] = 1 - bg[same]
    # half the shapes are faint: a shift of brightness (and a little hue) against the background
    faint_shape = (y >= 6) & (torch.rand(n, generator=g) < 0.5)
    sign = torch.where(bg.mean(1, keepdim=True) > 0.5, -1.0, 1.0)
    shifted = (bg + sign * u(0.1, 0.35).view(n, 1) + u(-0.05, 0.05, 3)).clamp(0, 1)
    fg[faint_shape] = shifted[faint_shape]
    m = mask[:, None]
    img = fg[..., None, None] * m + bg[..., None, None] * (1 - m) + (faint * (texture - 0.5))[:, None]
    img = img + torch.randn(img.shape, generator=g) * u(0.02, 0.12).view(n, 1, 1, 1)
    img = img.clamp(0, 1)
    mean, std = torch.tensor(MEAN).view(1, 3, 1, 1), torch.tensor(STD).view(1, 3, 1, 1)
    return (img - mean) / std, y


def _pretrain(seed: int, backbone: str = "resnet18") -> tuple[dict, dict]:
    """Train trunk + linear head on the source task; returns the trunk state and its provenance."""
    t0 = time.perf_counter()
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    x, y = source_images(SOURCE_TRAIN, generator=g)
    x_test, y_test = source_images(SOURCE_TEST, generator=g)
    model = TrunkClassifier(len(SOURCE_CLASSES), backbone=backbone)
    set_trainable(model.trunk, "full")
    steps = SOURCE_TRAIN // SOURCE_BATCH
    opt = torch.optim.AdamW(model.parameters(), lr=SOURCE_LR, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=SOURCE_LR, total_steps=steps, pct_start=0.15)
    train_mode(model)
    order = torch.randperm(SOURCE_TRAIN, generator=g)
    for step in range(steps):
        idx = order[step * SOURCE_BATCH:(step + 1) * SOURCE_BATCH]
        loss = nn.functional.cross_entropy(model(x[idx]), y[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
    model.eval()
    with torch.no_grad():
        correct = sum(int((model(x_test[i:i + 256]).argmax(1) == y_test[i:i + 256]).sum())
                      for i in range(0, SOURCE_TEST, 256))
    seconds = time.perf_counter() - t0
    provenance = {
        "source": "synthetic source-task pretraining",
        "task": f"classify {len(SOURCE_CLASSES)} procedurally drawn {SOURCE_SIZE}x{SOURCE_SIZE} patterns "
                f"({', '.join(SOURCE_CLASSES)}) in random colours with noise",
        "version": SOURCE_VERSION,
        "seed": seed,
        **({} if backbone == "resnet18" else {"backbone": backbone}),
        "images": SOURCE_TRAIN,
        "epochs": 1,
        "optimiser": f"AdamW, one-cycle lr {SOURCE_LR}, batch {SOURCE_BATCH}",
        "seconds": round(seconds, 1),
        "source_accuracy": round(correct / SOURCE_TEST, 4),
    }
    log.info("pretrained the trunk on the synthetic source task in %.1f s (held-out source accuracy %.3f)",
             seconds, provenance["source_accuracy"])
    return {k: v.detach().clone() for k, v in model.trunk.state_dict().items()}, provenance


def load_trunk_state(trunk: nn.Module, state: dict, *, origin: str) -> None:
    """Load a full-network, trunk or ``audit train`` model state dict into ``trunk``.

    Keys outside the trunk's stages (a ResNet's ``layer3``, ``layer4`` and
    ``fc``; MobileNetV3's later ``features`` and ``classifier``; any task head)
    are dropped; a ``trunk.`` prefix (a model ``audit train`` wrote) and the
    backbone's ``features.`` prefix are removed.

    Raises
    ------
    ModelError
        A trunk parameter is missing or has the wrong shape.
    """
    spec = BACKBONES[backbone_of(trunk)]
    if any(k.startswith("trunk.") for k in state):
        state = {k[len("trunk."):]: v for k, v in state.items() if k.startswith("trunk.")}
    elif spec.prefix:
        state = {k[len(spec.prefix):]: v for k, v in state.items() if k.startswith(spec.prefix)}
    keep = {k: v for k, v in state.items() if k.split(".")[0] in spec.stages}
    try:
        trunk.load_state_dict(keep, strict=True)
    except RuntimeError as exc:
        text = " ".join(str(exc).split())
        raise ModelError(f"{origin}: expected a {spec.pretty} (or its {spec.cut} trunk) state dict: {text[:300]}") \
            from None


def _check_enum_backbone(name: str, backbone: str) -> None:
    """A ModelError when the weights enum ``name`` is not one of ``backbone``'s (ResNet50 weights for resnet18...)."""
    import torchvision.models

    try:
        enum = torchvision.models.get_weight(name)
    except Exception:  # noqa: BLE001 - fetch_weights_enum reports unknown names
        return
    family = torchvision.models.get_model_weights(BACKBONES[backbone].builder)
    if not isinstance(enum, family):
        raise ModelError(f"--backbone-weights: expected weights of {BACKBONES[backbone].builder} "
                         f"({family.__name__}.*, e.g. "
                         f"{family.DEFAULT.__class__.__name__}.{family.DEFAULT.name}), found '{name}'; "
                         "pass the matching --backbone")


def _file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def pretrained_trunk(*, weights=None, cache=None, seed: int = 0, backbone: str = "resnet18") -> tuple[nn.Sequential, dict]:
    """The trunk with pretrained weights, and where they came from.

    Parameters
    ----------
    weights : str or Path, optional
        A local ``.pth`` file (a full-network or trunk state dict, read with
        ``torch.load(weights_only=True)``) or a torchvision weights enum name
        of the backbone (``"ResNet18_Weights.IMAGENET1K_V1"``,
        ``"ResNet50_Weights.IMAGENET1K_V2"``, ``"MobileNet_V3_Large_Weights.IMAGENET1K_V2"``;
        used only if torchvision can get it: torch hub cache or network).
        ``None``: pretrain on the synthetic source task (module docstring).
    cache : str or Path, optional
        Without ``weights``: a ``.pth`` file holding the source-pretrained
        trunk; reused when its version, seed and backbone match, else (re)written.
    seed : int
        Seed of the source task.
    backbone : str
        A key of :data:`audit.train.backbone.BACKBONES` (default ``resnet18``).

    Returns
    -------
    trunk : nn.Sequential
    provenance : dict
        JSON-able: the source, and for source pretraining the task, time and
        held-out source accuracy.

    Raises
    ------
    ModelError
        The file cannot be loaded or does not fit; the enum cannot be fetched
        or belongs to another backbone.
    """
    from ..core.models import checkpoint_state_dict, fetch_weights_enum, load_checkpoint

    trunk = make_trunk(backbone)
    extra = {} if backbone == "resnet18" else {"backbone": backbone}
    if weights is not None:
        path = Path(weights).expanduser()
        if path.suffix in (".pth", ".pt") or path.exists():
            if not path.is_file():
                raise ModelError(f"{path}: backbone weights file not found")
            state = checkpoint_state_dict(None, load_checkpoint(path), path)
            load_trunk_state(trunk, state, origin=str(path))
            return trunk, {"source": "local file", "path": str(path), "sha256": _file_sha256(path), **extra}
        name = str(weights)
        _check_enum_backbone(name, backbone)
        state = fetch_weights_enum(name, where="backbone weights")
        load_trunk_state(trunk, state, origin=name)
        return trunk, {"source": "torchvision weights enum", "enum": name, **extra}

    cache = Path(cache) if cache is not None else None
    if cache is not None and cache.is_file():
        loaded = load_checkpoint(cache)
        prov = loaded.get("provenance") if isinstance(loaded, dict) else None
        if isinstance(prov, dict) and prov.get("version") == SOURCE_VERSION and prov.get("seed") == seed \
                and prov.get("backbone", "resnet18") == backbone:
            load_trunk_state(trunk, checkpoint_state_dict(None, loaded, cache), origin=str(cache))
            log.info("reusing the source-pretrained trunk %s", cache)
            return trunk, {**prov, "cache": str(cache)}
    state, prov = _pretrain(seed, backbone)
    trunk.load_state_dict(state)
    if cache is not None:
        buffer = io.BytesIO()  # via a buffer, so the bytes do not depend on the file name
        torch.save({"state_dict": state, "provenance": prov}, buffer)
        atomic_write_bytes(cache, buffer.getvalue())
        prov = {**prov, "cache": str(cache)}
    return trunk, prov
