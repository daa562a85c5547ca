"""The torchvision backbones of ``audit train``: the stem and early stages of a ResNet or MobileNetV3, to stride 8.

By default the trunk is ``conv1 .. layer2`` of :func:`torchvision.models.resnet18`
(0.68 M parameters, output stride 8, 128 channels): small enough to train on
two CPU cores in seconds on 64x64 images, and every task head
(classification, detection, semantic segmentation) sits on the same feature
map. ``--backbone`` picks another torchvision network from :data:`BACKBONES`
(``resnet34``, ``resnet50``, ``resnet101``, ``resnet152``,
``mobilenet_v3_large``, ``mobilenet_v3_small``), cut at the same stride, so
that its ImageNet weights (a torchvision enum such as
``ResNet50_Weights.IMAGENET1K_V2``, read from the torch hub cache) transfer:
freeze the trunk and train a head, or fine-tune its last stage too.
``--trunk full`` keeps every convolutional stage instead (``conv1 .. layer4``,
stride 32: the usual ImageNet transfer-learning recipe, a new head on the
whole network); those trunks are the ``<network>_full`` keys.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # torch is imported where a trunk is built: `audit --help` and `audit run` need not load it
    from torch import nn

__all__ = ["BACKBONES", "NETWORKS", "TRUNK_CHANNELS", "backbone_key", "TRUNK_LAYERS", "TRUNK_STRIDE", "Backbone", "backbone_of", "frozen_prefix",
           "make_trunk", "resnet18_trunk", "set_trainable", "train_mode", "trunk_text"]

TRUNK_LAYERS = ("conv1", "bn1", "relu", "maxpool", "layer1", "layer2")
TRUNK_CHANNELS = 128  # of the default ResNet-18 trunk; other trunks carry theirs as ``trunk.out_channels``
TRUNK_STRIDE = 8


@dataclass(frozen=True)
class Backbone:
    """How to cut a torchvision network into a stride-8 trunk.

    ``stages`` are the trunk's children, named as in the full network's
    state dict after ``prefix`` (``features.`` for MobileNetV3); ``taps`` are
    the stages at stride 2 and 4 a segmentation decoder reads; ``title`` is
    how model cards name it.
    """

    name: str
    stages: tuple[str, ...]
    taps: tuple[str, str]
    prefix: str
    pretty: str  # ResNet-50
    cut: str  # conv1..layer2
    network: str = ""  # the torchvision builder (default: name)
    stride: int = TRUNK_STRIDE

    @property
    def builder(self) -> str:
        return self.network or self.name

    @property
    def title(self) -> str:
        return f"{self.pretty} `{self.cut}`"


_RESNET_TAPS = ("relu", "layer1")
_DEPTHS = (18, 34, 50, 101, 152)
BACKBONES = {
    **{f"resnet{d}": Backbone(f"resnet{d}", TRUNK_LAYERS, _RESNET_TAPS, "", f"ResNet-{d}", "conv1..layer2")
       for d in _DEPTHS},
    # features[0..6]: stride 2 (0, 1), 4 (2, 3), 8 (4..6)
    "mobilenet_v3_large": Backbone("mobilenet_v3_large", tuple(str(i) for i in range(7)), ("1", "3"), "features.",
                                   "MobileNetV3-Large", "features[0..6]"),
    # features[0..3]: stride 2 (0), 4 (1), 8 (2, 3)
    "mobilenet_v3_small": Backbone("mobilenet_v3_small", tuple(str(i) for i in range(4)), ("0", "1"), "features.",
                                   "MobileNetV3-Small", "features[0..3]"),
    # --trunk full: every convolutional stage (stride 32), the usual ImageNet transfer-learning recipe
    **{f"resnet{d}_full": Backbone(f"resnet{d}_full", TRUNK_LAYERS + ("layer3", "layer4"), _RESNET_TAPS, "",
                                   f"ResNet-{d}", "conv1..layer4", network=f"resnet{d}", stride=32)
       for d in _DEPTHS},
    "mobilenet_v3_large_full": Backbone("mobilenet_v3_large_full", tuple(str(i) for i in range(17)), ("1", "3"),
                                        "features.", "MobileNetV3-Large", "features[0..16]",
                                        network="mobilenet_v3_large", stride=32),
    "mobilenet_v3_small_full": Backbone("mobilenet_v3_small_full", tuple(str(i) for i in range(13)), ("0", "1"),
                                        "features.", "MobileNetV3-Small", "features[0..12]",
                                        network="mobilenet_v3_small", stride=32),
}
NETWORKS = tuple(name for name, spec in BACKBONES.items() if not spec.network)  # what --backbone offers


def backbone_key(network: str, trunk: str = "stride8") -> str:
    """The :data:`BACKBONES` key of ``--backbone NETWORK --trunk stride8|full``."""
    return network if trunk == "stride8" else f"{network}_full"


def make_trunk(name: str = "resnet18") -> nn.Sequential:
    """An untrained stride-8 trunk of the torchvision network ``name`` (a key of :data:`BACKBONES`).

    Parameter names are those of the full network without ``prefix``
    (``conv1.weight``, ``layer1.0.conv1.weight``...; ``0.0.weight`` for
    MobileNetV3's ``features.0.0.weight``), so its state dict (a local file or
    a torchvision enum) loads with :func:`audit.train.pretrain.load_trunk_state`.
    The trunk records ``backbone`` (the name), ``out_channels`` (what
    torchvision's detection heads read), ``taps`` and ``tap_channels``.
    """
    import torch
    import torchvision.models
    from torch import nn

    from ..errors import AuditError

    if name not in BACKBONES:
        raise AuditError(f"backbone: expected one of {', '.join(BACKBONES)}, found {name!r}")
    spec = BACKBONES[name]
    full = torchvision.models.get_model(spec.builder, weights=None)
    source = full.features if spec.prefix == "features." else full
    trunk = nn.Sequential()
    for stage in spec.stages:
        trunk.add_module(stage, source[int(stage)] if spec.prefix else getattr(source, stage))
    trunk.backbone = name
    trunk.taps = spec.taps
    with torch.no_grad():  # channel counts from one tiny forward pass (eval: no batch-norm update)
        trunk.eval()
        x, channels = torch.zeros(1, 3, 32, 32), {}
        for stage, module in trunk.named_children():
            x = module(x)
            channels[stage] = int(x.shape[1])
        trunk.train()
    trunk.out_channels = channels[spec.stages[-1]]
    trunk.tap_channels = {t: channels[t] for t in spec.taps}
    return trunk


def resnet18_trunk() -> nn.Sequential:
    """An untrained ``conv1 .. layer2`` of torchvision's ResNet-18 (the default trunk).

    A full ResNet-18 state dict (a local file or ``ResNet18_Weights.IMAGENET1K_V1``)
    loads into it with ``strict=False`` after dropping ``layer3``, ``layer4`` and ``fc``.
    """
    return make_trunk("resnet18")


def backbone_of(trunk: nn.Module) -> str:
    """The backbone name a trunk was made from (``resnet18`` for trunks made before backbones had names)."""
    return getattr(trunk, "backbone", "resnet18")


def trunk_text(trunk: nn.Module) -> str:
    """How a model card names the trunk: ``ResNet-50 `conv1`..`layer2` (stride 8, 512 channels)``."""
    spec = BACKBONES[backbone_of(trunk)]
    channels = getattr(trunk, "out_channels", TRUNK_CHANNELS)
    return f"torchvision {spec.title} (stride {spec.stride}, {channels} channels)"


def set_trainable(trunk: nn.Module, strategy: str) -> None:
    """Freeze the trunk for ``strategy="head"``; unfreeze its last stage (``"finetune"``: ``layer2`` of a
    ResNet) or all of it (``"full"``).
    """
    if strategy not in ("head", "finetune", "full"):
        raise ValueError(f"strategy: expected head, finetune or full, found {strategy!r}")
    last = list(trunk.named_children())[-1][0]
    for name, module in trunk.named_children():
        trainable = strategy == "full" or (strategy == "finetune" and name == last)
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
    from torch import nn

    model.train()
    for module in model.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm) and not any(
                p.requires_grad for p in module.parameters()):
            module.eval()
    return model
