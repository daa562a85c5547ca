"""Build a semantic segmenter from a model card: torchvision builders or a small U-Net.

``model.architecture`` is either a torchvision segmentation builder
(``fcn_resnet50``, ``deeplabv3_mobilenet_v3_large``, ``lraspp_mobilenet_v3_large``,
... anything in ``torchvision.models.list_models(module=torchvision.models.segmentation)``)
or a name in :data:`SEGMENTATION_ARCHITECTURES` (``unet``, ``unet_small``).
torchvision builders are called with ``weights=None, weights_backbone=None``
so nothing is downloaded; weights come from the card (``weights.enum`` or a
local ``weights.path`` loaded with ``weights_only=True``). ``torchscript`` and
``entry_point`` sources work as for classifiers.

A segmenter maps a ``(N, 3, H, W)`` batch to ``(N, C, h, w)`` logits, or to a
dict whose ``"out"`` entry holds them (torchvision); logits are resized to the
label mask's size before the arg-max.
"""

from __future__ import annotations

import torch
from torch import nn

from ..core.cards import ModelCard
from ..errors import ModelError

__all__ = ["SEGMENTATION_ARCHITECTURES", "UNet", "build_segmenter", "has_aux_classifier", "segmentation_logits", "unet", "unet_small"]


class _Block(nn.Sequential):
    def __init__(self, c_in: int, c_out: int):
        super().__init__(
            nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True),
            nn.Conv2d(c_out, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True),
        )


class UNet(nn.Module):
    """U-Net (Ronneberger et al., 2015): a convolutional encoder, a decoder that upsamples with
    transpose convolutions, and skip connections that concatenate encoder features at each scale.

    Parameters
    ----------
    num_classes : int
        Output channels (class logits).
    in_channels : int
        Input channels (3 for RGB).
    base : int
        Channels of the first level; each level down doubles them.
    depth : int
        Number of 2x downsamplings. Inputs whose sides are not multiples of
        ``2 ** depth`` are padded, and the output cropped back.
    """

    def __init__(self, num_classes: int, in_channels: int = 3, base: int = 32, depth: int = 4):
        super().__init__()
        self.depth = depth
        widths = [base * 2**k for k in range(depth + 1)]
        self.down = nn.ModuleList([_Block(in_channels, widths[0])] + [
            _Block(widths[k - 1], widths[k]) for k in range(1, depth + 1)])
        self.pool = nn.MaxPool2d(2)
        self.up = nn.ModuleList([nn.ConvTranspose2d(widths[k], widths[k - 1], 2, stride=2)
                                 for k in range(depth, 0, -1)])
        self.decode = nn.ModuleList([_Block(2 * widths[k - 1], widths[k - 1]) for k in range(depth, 0, -1)])
        self.head = nn.Conv2d(widths[0], num_classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        m = 2**self.depth
        pad_h, pad_w = (-h) % m, (-w) % m
        if pad_h or pad_w:
            x = nn.functional.pad(x, (0, pad_w, 0, pad_h))
        skips = []
        for k, block in enumerate(self.down):
            x = block(x if k == 0 else self.pool(x))
            skips.append(x)
        skips.pop()
        for up, decode in zip(self.up, self.decode):
            x = decode(torch.cat([skips.pop(), up(x)], dim=1))
        return self.head(x)[..., :h, :w]


def unet(num_classes: int = 21) -> UNet:
    """The U-Net of the original paper's shape, scaled down: base 32 channels, 4 levels."""
    return UNet(num_classes=num_classes, base=32, depth=4)


def unet_small(num_classes: int = 21) -> UNet:
    """A tiny U-Net (base 8 channels, 2 levels) for tests and CPU demos."""
    return UNet(num_classes=num_classes, base=8, depth=2)


SEGMENTATION_ARCHITECTURES = {"unet": unet, "unet_small": unet_small}


def has_aux_classifier(state) -> bool:
    """Whether a state dict holds fcn/deeplabv3's auxiliary head (``aux_classifier.*`` keys)."""
    return bool(state) and any(k.startswith("aux_classifier.") for k in state)


def _segmenter_architecture(card: ModelCard, state=None) -> nn.Module:
    """A U-Net by name, or a torchvision segmentation builder, fitted to the weights the card names.

    With ``weights.enum`` torchvision's enum path builds the network (with the
    auxiliary head those weights carry). With a local ``weights.path`` whose
    state dict has ``aux_classifier`` keys, fcn / deeplabv3 are built with
    ``aux_loss=True`` so that every key loads (strictly); the auxiliary head
    only serves training, and ``out`` is what is scored.
    """
    from ..models import build_torchvision

    source, weights = card.model, card.weights
    if source.architecture in SEGMENTATION_ARCHITECTURES:
        if weights is not None and weights.enum:
            raise ModelError(f"{card.path}: field 'weights.enum': '{source.architecture}' has no torchvision weights")
        return SEGMENTATION_ARCHITECTURES[source.architecture](num_classes=card.num_classes)
    without = {"weights_backbone": None}
    if not source.architecture.startswith("lraspp") and "aux_loss" not in (card.builder or {}):
        without["aux_loss"] = has_aux_classifier(state)
    return build_torchvision(card, without_weights=without)


def build_segmenter(card: ModelCard) -> nn.Module:
    """Construct the segmenter a model card describes and load its weights (eval mode, CPU).

    Raises
    ------
    ModelError
        The model cannot be built or its weights cannot be loaded.
    """
    from ..models import build_from_card

    return build_from_card(card, build_architecture=_segmenter_architecture)


def segmentation_logits(output) -> torch.Tensor:
    """The ``(N, C, h, w)`` logits of a segmenter's output (a tensor, or torchvision's dict with ``"out"``)."""
    if isinstance(output, dict):
        output = output["out"]
    if not isinstance(output, torch.Tensor) or output.ndim != 4:
        raise ModelError(
            f"expected the segmenter to return (N, C, H, W) logits or a dict with 'out', found "
            f"{type(output).__name__}{tuple(output.shape) if isinstance(output, torch.Tensor) else ''}"
        )
    return output
