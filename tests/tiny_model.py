"""A tiny convolutional classifier for the tests: an ``entry_point`` (``tiny_model:tiny_cnn``) for their model cards."""

from __future__ import annotations

from torch import nn

__all__ = ["TinyCNN", "tiny_cnn"]


class TinyCNN(nn.Module):
    """Three 3x3 conv blocks and a linear head, for 32x32 RGB inputs (about 6k parameters)."""

    def __init__(self, num_classes: int = 3):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 8, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2),
            nn.Conv2d(8, 16, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.AdaptiveAvgPool2d(1),
        )
        self.head = nn.Linear(32, num_classes)

    def forward(self, x):
        return self.head(self.features(x).flatten(1))


def tiny_cnn(num_classes: int = 3) -> TinyCNN:
    """Build an untrained :class:`TinyCNN` (weights come from the model card)."""
    return TinyCNN(num_classes=num_classes)
