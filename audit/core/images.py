"""A split's images as a :class:`torch.utils.data.Dataset` for inference and training.

Its own module so that reading a split (:mod:`audit.core.data`) does not import torch.
"""

from __future__ import annotations

from collections.abc import Callable

from torch.utils.data import Dataset

__all__ = ["ImageDataset"]


class ImageDataset(Dataset):
    """A map-style :class:`torch.utils.data.Dataset` over a split's images.

    Items are ``(tensor, index, error)``: ``error`` is ``""`` when the image
    loaded and otherwise the one-line reason (the tensor is then zeros), so
    the main process can raise a clean :class:`~audit.errors.DataError` even
    when loading happens in worker processes.

    Parameters
    ----------
    paths : sequence of str
        Image files.
    transform : callable
        Maps an RGB :class:`PIL.Image.Image` to a tensor.
    statistics : bool, default False
        Items are ``(tensor, index, error, stats)``: ``stats`` holds the image statistics of the decoded image
        (:func:`audit.core.image_stats.statistics_of`, computed before the transform), ``None`` on an error.
    """

    def __init__(self, paths, transform: Callable, *, statistics: bool = False):
        self.paths = [str(p) for p in paths]
        self.transform = transform
        self.statistics = statistics
        self._shape = None

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int):
        import torch
        from PIL import Image, UnidentifiedImageError

        try:
            with Image.open(self.paths[index]) as image:
                stats = None
                if self.statistics:
                    from .image_stats import statistics_of

                    stats = statistics_of(image)
                tensor = self.transform(image.convert("RGB"))
            self._shape = tuple(tensor.shape)
            return (tensor, index, "", stats) if self.statistics else (tensor, index, "")
        except Exception as exc:  # noqa: BLE001 - reported as DataError by the caller
            if isinstance(exc, UnidentifiedImageError):
                reason = "not a recognised image format"
            else:
                reason = " ".join(str(exc).split()) or type(exc).__name__
            blank = torch.zeros(self._shape or (3, 1, 1))
            return (blank, index, reason, None) if self.statistics else (blank, index, reason)
