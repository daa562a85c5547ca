"""The networks ``audit train`` makes: the ResNet-18 trunk with a new task head.

Both are model-card entry points (``audit.train.models:trunk_classifier``,
``audit.train.models:trunk_segmenter``; on another backbone
``trunk_classifier_resnet50``, ``trunk_segmenter_mobilenet_v3_large``, ...):
the audit rebuilds them untrained and loads the card's ``weights.path`` state
dict with ``weights_only=True``.

Every model runs the trunk through :meth:`TrunkModel.features`, which can
start part way (from cached outputs of frozen stages) and keeps the outputs
of the stages its head reads (``taps``), so training can compute the frozen
stages once instead of every epoch.
"""

from __future__ import annotations

import torch
from torch import nn

from .backbone import BACKBONES, backbone_of, make_trunk

__all__ = ["TrunkClassifier", "TrunkModel", "TrunkSegmenter", "entry_point", "trunk_classifier", "trunk_segmenter"]


class TrunkModel(nn.Module):
    """The trunk plus a head that reads the trunk stages named in ``taps`` (and always the last)."""

    taps: tuple[str, ...] = ()

    def __init__(self, trunk: nn.Sequential | None = None, backbone: str = "resnet18"):
        super().__init__()
        self.trunk = trunk if trunk is not None else make_trunk(backbone)

    def features(self, x: torch.Tensor, *, start: int = 0, stop: int | None = None,
                 carry: dict | None = None) -> dict:
        """Run trunk stages ``start:stop``.

        ``x`` is the input of stage ``start``; ``carry`` holds the taps of
        earlier stages. Returns the taps seen so far and ``"_x"``, the output
        of the last stage run.
        """
        out = dict(carry or {})
        for name, stage in list(self.trunk.named_children())[start:stop]:
            x = stage(x)
            if name in self.taps:
                out[name] = x
        out["_x"] = x
        return out

    def head_forward(self, feats: dict, size) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head_forward(self.features(x), x.shape[-2:])


class TrunkClassifier(TrunkModel):
    """Trunk, global average pooling and a new linear layer."""

    def __init__(self, num_classes: int, trunk: nn.Sequential | None = None, backbone: str = "resnet18"):
        super().__init__(trunk, backbone)
        self.head = nn.Linear(self.trunk.out_channels, num_classes)

    def head_forward(self, feats, size):
        return self.head(feats["_x"].mean(dim=(2, 3)))


def _conv_bn_relu(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True))


class TrunkSegmenter(TrunkModel):
    """Trunk and a light U-Net-style decoder; logits at the input's resolution.

    The stride-8 ``layer2`` features are upsampled and fused with ``layer1``
    (stride 4) and the stem (``relu``, stride 2) by concatenation and a 3x3
    convolution at each scale; a 1x1 convolution gives class logits at stride
    2, upsampled bilinearly to the input size.
    """

    taps = ("relu", "layer1")  # of a ResNet trunk; other trunks name theirs (``trunk.taps``)

    def __init__(self, num_classes: int, trunk: nn.Sequential | None = None, backbone: str = "resnet18"):
        super().__init__(trunk, backbone)
        self.taps = tuple(getattr(self.trunk, "taps", type(self).taps))
        c2, c4 = (self.trunk.tap_channels[t] for t in self.taps)
        self.reduce8 = nn.Sequential(nn.Conv2d(self.trunk.out_channels, 64, 1, bias=False), nn.BatchNorm2d(64),
                                     nn.ReLU(inplace=True))
        self.fuse4 = _conv_bn_relu(64 + c4, 48)
        self.reduce2 = nn.Sequential(nn.Conv2d(c2, 16, 1, bias=False), nn.BatchNorm2d(16), nn.ReLU(inplace=True))
        self.fuse2 = _conv_bn_relu(48 + 16, 32)
        self.classifier = nn.Conv2d(32, num_classes, 1)

    def head_forward(self, feats, size):
        up = nn.functional.interpolate
        x = self.reduce8(feats["_x"])
        stem, l1 = (feats[t] for t in self.taps)
        x = self.fuse4(torch.cat([up(x, size=l1.shape[-2:], mode="bilinear", align_corners=False), l1], 1))
        x = self.fuse2(torch.cat([up(x, size=stem.shape[-2:], mode="bilinear", align_corners=False),
                                  self.reduce2(stem)], 1))
        return up(self.classifier(x), size=tuple(size), mode="bilinear", align_corners=False)


def trunk_classifier(num_classes: int) -> TrunkClassifier:
    """An untrained :class:`TrunkClassifier` (a model-card entry point)."""
    return TrunkClassifier(num_classes)


def trunk_segmenter(num_classes: int) -> TrunkSegmenter:
    """An untrained :class:`TrunkSegmenter` (a model-card entry point)."""
    return TrunkSegmenter(num_classes)


_ENTRY_POINTS = {"trunk_classifier": TrunkClassifier, "trunk_segmenter": TrunkSegmenter}


def entry_point(kind: str, trunk) -> str:
    """The model-card entry point that rebuilds a ``kind`` model (``trunk_classifier``...) on ``trunk``'s backbone."""
    name = backbone_of(trunk)
    return f"audit.train.models:{kind}" + ("" if name == "resnet18" else f"_{name}")


def __getattr__(name: str):
    """``trunk_classifier_<backbone>`` and ``trunk_segmenter_<backbone>``: entry points on another backbone."""
    for kind, cls in _ENTRY_POINTS.items():
        backbone = name[len(kind) + 1:] if name.startswith(kind + "_") else None
        if backbone in BACKBONES:
            def build(num_classes: int, _cls=cls, _backbone=backbone):
                return _cls(num_classes, backbone=_backbone)

            build.__name__ = build.__qualname__ = name
            build.__doc__ = f"An untrained :class:`{cls.__name__}` on the {backbone} trunk (a model-card entry point)."
            return build
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
