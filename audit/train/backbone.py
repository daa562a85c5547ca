"""The shared torchvision backbone of ``audit train``: the stem and first two stages of ResNet-18.

``conv1 .. layer2`` of :func:`torchvision.models.resnet18` (0.68 M parameters,
output stride 8, 128 channels) is small enough to train on two CPU cores in
seconds on 64x64 images, and every task head (classification, detection,
semantic segmentation) sits on the same feature map.
"""

from __future__ import annotations

from torch import nn

__all__ = ["TRUNK_CHANNELS", "TRUNK_LAYERS", "TRUNK_STRIDE", "frozen_prefix", "resnet18_trunk", "set_trainable", "train_mode"]

TRUNK_LAYERS = ("conv1", "bn1", "relu", "maxpool", "layer1", "layer2")
TRUNK_CHANNELS = 128
TRUNK_STRIDE = 8


def resnet18_trunk() -> nn.Sequential:
    """An untrained ``conv1 .. layer2`` of torchvision's ResNet-18.

    Parameter names are those of ``resnet18`` (``conv1.weight``,
    ``layer1.0.conv1.weight``...), so a full ResNet-18 state dict (a local
    file or ``ResNet18_Weights.IMAGENET1K_V1``) loads into it with
    ``strict=False`` after dropping ``layer3``, ``layer4`` and ``fc``.
    """
    import torchvision.models

    full = torchvision.models.get_model("resnet18", weights=None)
    trunk = nn.Sequential()
    for name in TRUNK_LAYERS:
        trunk.add_module(name, getattr(full, name))
    trunk.out_channels = TRUNK_CHANNELS  # what torchvision's detection heads read
    return trunk


def set_trainable(trunk: nn.Module, strategy: str) -> None:
    """Freeze the trunk for ``strategy="head"``; unfreeze ``layer2`` (``"finetune"``) or all (``"full"``).
    """
    if strategy not in ("head", "finetune", "full"):
        raise ValueError(f"strategy: expected head, finetune or full, found {strategy!r}")
    for name, module in trunk.named_children():
        trainable = strategy == "full" or (strategy == "finetune" and name == "layer2")
        for p in module.parameters():
            p.requires_grad_(trainable)


def frozen_prefix(trunk: nn.Module) -> int:
    """How many leading trunk stages are frozen (no trainable parameter, ``set_trainable`` already applied).

    Parameter-free stages (``relu``, ``maxpool``) count as frozen when every
    stage before them is, so ``head`` gives 6 and ``finetune`` gives 5 (conv1 .. layer1).
    """
    count = 0
    for module in trunk.children():
        if any(p.requires_grad for p in module.parameters()):
            break
        count += 1
    return count


def train_mode(model: nn.Module) -> nn.Module:
    """``model.train()``, but BatchNorm layers whose parameters are frozen stay in eval mode.

    A frozen BatchNorm must keep its running statistics: in train mode it would
    normalise with batch statistics and overwrite the pretrained ones, so a
    "frozen" trunk would still change.
    """
    model.train()
    for module in model.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm) and not any(
                p.requires_grad for p in module.parameters()):
            module.eval()
    return model
