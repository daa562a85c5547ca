"""Image statistics (Know Your Data's derived signals): brightness, contrast, sharpness and resolution.

Read with PIL, one row per image. The dataset audit (:mod:`audit.dataset`) summarises them per group; the
covariates of a data card (:mod:`audit.core.covariates`) bin them into quantiles to explain gaps.

A model run computes them in its inference pass from the image it has already decoded
(:func:`statistics_of`, :class:`audit.core.images.ImageDataset` with ``statistics=True``) and keeps them with
the predictions as the :data:`IMAGE_COLUMNS`; :func:`image_statistics` decodes the files again, only when there
was no model run. Both go through :func:`grey_statistics`, so the numbers are the same bit for bit.
"""

from __future__ import annotations

import math
import os

import numpy as np
import pandas as pd

from ..errors import DataError

__all__ = ["DESCRIBE_IMAGE", "IMAGE_COLUMNS", "IMAGE_STATISTICS", "grey_statistics", "image_statistics",
           "split_image_columns", "statistics_columns", "statistics_from_columns", "statistics_frame", "statistics_of", "statistics_table", "statistics_to_json"]

IMAGE_STATISTICS = ("brightness", "contrast", "sharpness", "width", "height", "megapixels")
IMAGE_COLUMNS = tuple(f"image_{s}" for s in IMAGE_STATISTICS)  # their columns in a table of predictions
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
                grey = np.asarray(image.convert("L"))
        except Exception as exc:  # noqa: BLE001 - PIL raises many kinds for bad files
            where = f"{source}: " if source else ""
            raise DataError(f"{where}cannot read image {path}: {' '.join(str(exc).split()) or type(exc).__name__}") \
                from None
        rows.append(grey_statistics(grey))
    return statistics_frame(rows)


def statistics_frame(rows) -> pd.DataFrame:
    """A frame of :data:`IMAGE_STATISTICS` from :func:`statistics_of` tuples, one row each."""
    return pd.DataFrame(rows, columns=list(IMAGE_STATISTICS)).astype(
        {"width": np.int64, "height": np.int64} if len(rows) else {})


def grey_statistics(grey: np.ndarray) -> tuple:
    """The :data:`IMAGE_STATISTICS` of one image from its 8-bit luminance (PIL mode ``L``, uint8).

    Sums of integers, exact in any size PIL opens: the pixel values' from their histogram, the Laplacian's in
    int32 / int64. Each variance is then one correctly rounded division of integers (``(n * sum(x^2) - sum(x)^2)
    / n^2``), which is what numpy's float64 ``var`` computes up to its rounding, 7 times faster on a 640 x 480
    image than the float64 arrays (``bench/overhead.py`` pays it once per image in the inference pass).
    """
    grey = np.asarray(grey)
    if grey.dtype != np.uint8:
        raise TypeError(f"grey_statistics: expected 8-bit luminance (uint8), found {grey.dtype}")
    h, w = grey.shape
    n = grey.size
    if n == 0:
        return (math.nan, math.nan, math.nan, w, h, 0.0)
    counts = np.bincount(grey.ravel(), minlength=256).astype(np.int64)
    levels = np.arange(256, dtype=np.int64)
    total, squares = int(counts @ levels), int(counts @ (levels * levels))
    mean = total / n / 255
    contrast = math.sqrt(_variance(n, total, squares)) / 255
    if h >= 3 and w >= 3:
        g = grey.astype(np.int32)
        lap = g[:-2, 1:-1] + g[2:, 1:-1] + g[1:-1, :-2] + g[1:-1, 2:] - 4 * g[1:-1, 1:-1]  # |lap| <= 1020
        sharpness = _variance(lap.size, int(lap.sum(dtype=np.int64)), int((lap * lap).sum(dtype=np.int64)))
    else:
        sharpness = math.nan
    return (mean, contrast, sharpness, w, h, w * h / 1e6)


def _variance(n: int, total: int, squares: int) -> float:
    """Population variance of n integers from their sum and sum of squares, exactly up to one rounding."""
    return (n * squares - total * total) / (n * n)


def statistics_of(image) -> tuple:
    """The :data:`IMAGE_STATISTICS` of a decoded :class:`PIL.Image.Image` as it was opened (before any
    ``convert("RGB")``, resizing or normalisation): what :func:`image_statistics` computes from its file."""
    return grey_statistics(np.asarray(image.convert("L")))


def split_image_columns(table: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """A table of predictions without its :data:`IMAGE_COLUMNS`, and those as an :func:`image_statistics`
    frame (one row per row of ``table``; None when it has none of them)."""
    if not all(c in table.columns for c in IMAGE_COLUMNS):
        return table.drop(columns=[c for c in IMAGE_COLUMNS if c in table.columns]), None
    stats = table[list(IMAGE_COLUMNS)].reset_index(drop=True)
    stats.columns = list(IMAGE_STATISTICS)
    stats = stats.astype({"width": np.int64, "height": np.int64})
    return table.drop(columns=list(IMAGE_COLUMNS)), stats


def statistics_to_json(statistics: dict) -> dict:
    """``{image key: statistics_of tuple}`` as JSON for a prediction cache's meta file (NaN as None)."""
    return {str(k): [None if isinstance(v, float) and math.isnan(v) else v for v in row]
            for k, row in statistics.items()}


def statistics_table(statistics, keys) -> pd.DataFrame | None:
    """The :func:`statistics_frame` of ``keys`` (one row each, in order, indexed by them) from ``{key: row}``:
    :func:`statistics_of` tuples, or :func:`statistics_to_json`'s lists as a cache's meta file kept them (keys
    compared as strings). None when ``statistics`` is not that or lacks a key (an older or damaged cache: the
    caller decodes the images again)."""
    if not isinstance(statistics, dict):
        return None
    by_key = {str(k): v for k, v in statistics.items()}
    keys = list(keys)
    rows = []
    for key in keys:
        row = by_key.get(str(key))
        if not isinstance(row, (list, tuple)) or len(row) != len(IMAGE_STATISTICS) or not all(
                v is None or (isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool))
                for v in row):
            return None
        rows.append(tuple(math.nan if v is None else v for v in row))
    table = statistics_frame(rows)
    table.index = keys
    return table


def statistics_columns(frame: pd.DataFrame, statistics: dict, keys) -> pd.DataFrame:
    """``frame`` with the :data:`IMAGE_COLUMNS` of ``statistics[key]`` for each of ``keys`` (one per row): how a
    chunk of predictions keeps them, so that a resumed run does not decode its images again."""
    table = statistics_frame([statistics[k] for k in keys])
    for column, name in zip(IMAGE_COLUMNS, table.columns):
        frame[column] = table[name].to_numpy()
    return frame


def statistics_from_columns(frame: pd.DataFrame, keys) -> dict:
    """``{key: statistics tuple}`` from the :data:`IMAGE_COLUMNS` of merged chunks (``keys``: one per row), ``{}``
    when they lack them (chunks of an older run)."""
    if not all(c in frame.columns for c in IMAGE_COLUMNS):
        return {}
    return dict(zip(keys, frame[list(IMAGE_COLUMNS)].itertuples(index=False, name=None)))
