"""Image statistics (Know Your Data's derived signals): brightness, contrast, sharpness and resolution.

Read with PIL, one row per image. The dataset audit (:mod:`audit.dataset`) summarises them per group; the
covariates of a data card (:mod:`audit.core.covariates`) bin them into quantiles to explain gaps.
"""

from __future__ import annotations

import math
import os

import numpy as np
import pandas as pd

from ..errors import DataError

__all__ = ["IMAGE_STATISTICS", "DESCRIBE_IMAGE", "image_statistics"]

IMAGE_STATISTICS = ("brightness", "contrast", "sharpness", "width", "height", "megapixels")
DESCRIBE_IMAGE = {
    "brightness": "mean luminance (ITU-R 601 grey, 0 black to 1 white)",
    "contrast": "RMS contrast: standard deviation of the luminance (0 to 0.5)",
    "sharpness": "variance of the 4-neighbour Laplacian of the 0-255 luminance (higher is sharper)",
    "width": "pixels", "height": "pixels", "megapixels": "width x height / 10^6",
}


def image_statistics(paths, *, source: str | None = None) -> pd.DataFrame:
    """Brightness, contrast, sharpness and resolution of each image.

    Parameters
    ----------
    paths : sequence of str or Path
    source : str, optional
        Named in error messages (the manifest).

    Returns
    -------
    DataFrame
        One row per path, columns :data:`IMAGE_STATISTICS`.

    Raises
    ------
    DataError
        An image cannot be read.
    """
    from PIL import Image

    rows = []
    for path in paths:
        if not os.path.isfile(path):  # missing, or a FIFO / device that would block or never end
            where = f"{source}: " if source else ""
            raise DataError(f"{where}cannot read image {path}: expected a regular file")
        try:
            with Image.open(path) as image:
                grey = np.asarray(image.convert("L"), dtype=np.float64)
        except Exception as exc:  # noqa: BLE001 - PIL raises many kinds for bad files
            where = f"{source}: " if source else ""
            raise DataError(f"{where}cannot read image {path}: {' '.join(str(exc).split()) or type(exc).__name__}") \
                from None
        h, w = grey.shape
        if h >= 3 and w >= 3:
            lap = (grey[:-2, 1:-1] + grey[2:, 1:-1] + grey[1:-1, :-2] + grey[1:-1, 2:] - 4 * grey[1:-1, 1:-1])
            sharpness = float(lap.var())
        else:
            sharpness = math.nan
        rows.append((float(grey.mean() / 255), float(grey.std() / 255), sharpness, w, h, w * h / 1e6))
    return pd.DataFrame(rows, columns=list(IMAGE_STATISTICS)).astype(
        {"width": np.int64, "height": np.int64} if rows else {})
