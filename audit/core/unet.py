"""The project's own U-Nets, a model architecture beside torchvision's (names in :data:`SEGMENTATION_ARCHITECTURES`).

A leaf of the model builder: the card loader and :mod:`audit.core.model_spec` look the names up here, so that neither
imports the segmentation task; :mod:`audit.tasks.segmentation.models` re-exports them (their entry points,
``audit.tasks.segmentation.models:unet``, are unchanged).
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["SEGMENTATION_ARCHITECTURES", "UNet", "unet", "unet_small"]


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
