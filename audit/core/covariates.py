"""Covariates: what a data card declares may explain a gap (``covariates:``), and their values per unit.

A data card (of any task) may declare, next to its attributes::

    covariates: [lighting, brightness]            # names: columns of the split, or built-in statistics
    covariates:
      - lighting
      - {name: device, column: camera_model}      # a column under another name
      - {name: exposure, quantiles: 5}            # a numeric column, cut into 5 quantile bins

and ``audit run --covariates lighting,brightness`` overrides the list for one run. :func:`parse_covariates`
validates either once for every task (:func:`audit.core.card_fields.parse_audit_options`,
:func:`~audit.core.card_fields.settled`).

Each name is looked up, in order:

1. a column of the data the task offers for its units (:func:`covariate_table`'s ``columns``): the
   classification manifest; a detection card's people, image and annotation attributes (occlusion and
   truncation live there when the data has them); a segmentation card's people table and manifest;
2. a statistic the task derives per unit (``derived``): ``box_size`` (person box area in pixels) for
   detection and for segmentation with people;
3. an image statistic of :mod:`audit.core.image_stats` (``brightness``, ``contrast``, ``sharpness``,
   ``resolution`` in megapixels), computed from the unit's image.

Nominal columns keep their values (missing ones become ``unknown``); a numeric column with more than
:data:`NOMINAL_LEVELS` distinct values, a column given ``quantiles`` and every derived or image statistic are
cut into quantile bins (:func:`audit.stats.quantile_bins`, :data:`DEFAULT_QUANTILES` by default).
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..errors import CardError
from ..stats import UNKNOWN, UndefinedMetricWarning, quantile_bins

__all__ = ["BOX_COVARIATES", "COVARIATE_PREFIX", "Covariate", "DEFAULT_QUANTILES", "IMAGE_COVARIATES",
           "MAX_COVARIATES", "NOMINAL_LEVELS", "covariate_table", "image_statistics_pending", "parse_covariates"]

COVARIATE_PREFIX = "covariate:"
IMAGE_COVARIATES = ("brightness", "contrast", "sharpness", "resolution")
BOX_COVARIATES = ("box_size",)
MAX_COVARIATES = 4  # strata are the covariates' combinations: 4 covariates of 4 bins are 256 already
DEFAULT_QUANTILES = 4
NOMINAL_LEVELS = 10  # a numeric column with more distinct values is binned into quantiles
QUANTILE_RANGE = (2, 10)
_KEYS = ("name", "column", "quantiles")


@dataclass(frozen=True)
class Covariate:
    """One declared covariate: its name in the report, the column it is read from, its quantile bins."""

    name: str
    column: str
    quantiles: int | None = None

    def to_dict(self) -> dict:
        return {"name": self.name, "column": self.column, "quantiles": self.quantiles}


def parse_covariates(raw, *, fail: Callable[[str, str, object], Exception]) -> tuple[Covariate, ...]:
    """Validate a ``covariates`` value (the card's list, or the names of ``--covariates``).

    Parameters
    ----------
    raw : object
        The value: a list of names or of mappings with ``name``, ``column``, ``quantiles``.
    fail : callable
        ``fail(where, expected, found)`` makes the error to raise: ``where`` is ``""`` for the whole value,
        ``"[i]"`` or ``"[i].key"`` for an item (the card's :meth:`Validator.fail` names the field with it).

    Returns
    -------
    tuple of Covariate
        In the order given.
    """
    if not isinstance(raw, list) or not raw:
        raise fail("", "a non-empty list of covariate names (or mappings with name, column, quantiles)", raw)
    if len(raw) > MAX_COVARIATES:
        raise fail("", f"at most {MAX_COVARIATES} covariates (strata are their combinations)", raw)
    out: list[Covariate] = []
    for i, item in enumerate(raw):
        where = f"[{i}]"
        if isinstance(item, str):
            if not item.strip():
                raise fail(where, "a covariate name (a non-empty string)", item)
            item = {"name": item}
        if not isinstance(item, Mapping):
            raise fail(where, "a covariate name (string) or a mapping with name, column, quantiles", item)
        unknown = [k for k in item if k not in _KEYS]
        if unknown:
            raise fail(f"{where}.{unknown[0]}", f"one of the known fields ({', '.join(_KEYS)})", unknown[0])
        name = item.get("name")
        if not isinstance(name, str) or not name.strip():
            raise fail(f"{where}.name", "a covariate name (a non-empty string)", name)
        column = item.get("column", name)
        if not isinstance(column, str) or not column.strip():
            raise fail(f"{where}.column", "a column name (a non-empty string)", column)
        quantiles = item.get("quantiles")
        if quantiles is not None and (isinstance(quantiles, bool) or not isinstance(quantiles, int)
                                      or not QUANTILE_RANGE[0] <= quantiles <= QUANTILE_RANGE[1]):
            raise fail(f"{where}.quantiles", f"an integer from {QUANTILE_RANGE[0]} to {QUANTILE_RANGE[1]}", quantiles)
        if any(c.name == name for c in out):
            raise fail(where, "a covariate name not listed before", name)
        out.append(Covariate(name=name, column=column, quantiles=quantiles))
    return tuple(out)


def _numeric(values: pd.Series) -> np.ndarray | None:
    """The values (positionally indexed) as floats, NaN where missing, when every present one is a number."""
    present = np.flatnonzero([not _missing(v) for v in values.tolist()])
    if present.size == 0:
        return None
    numbers = pd.to_numeric(values.iloc[present].astype(str).str.strip(), errors="coerce").to_numpy(dtype=float)
    if np.isnan(numbers).any():
        return None
    out = np.full(len(values), np.nan)
    out[present] = numbers
    return out


def _labels(binned) -> np.ndarray:
    return np.asarray(pd.Series(binned).astype(str), dtype=object)


def _per_image(paths: Sequence[str], statistic: str, cache: dict) -> np.ndarray:
    """One image statistic per unit, reading each distinct image once (``cache`` keeps the table)."""
    if "table" not in cache:
        from .image_stats import image_statistics

        unique = list(dict.fromkeys(str(p) for p in paths))
        table = image_statistics(unique)
        table.index = unique
        cache["table"] = table
    column = "megapixels" if statistic == "resolution" else statistic
    return cache["table"][column].reindex([str(p) for p in paths]).to_numpy(dtype=float)


def covariate_table(covariates: Sequence[Covariate] | None, *, n: int, columns: pd.DataFrame | None = None,
                    derived: Mapping[str, np.ndarray] | None = None, image_paths: Sequence[str] | None = None,
                    card_path=None, image_table: pd.DataFrame | None = None,
                    images_later: bool = False) -> tuple[pd.DataFrame, list[str]]:
    """The binned value of each declared covariate for each of ``n`` units, and notes on how they were made.

    Parameters
    ----------
    covariates : sequence of Covariate, optional
        As :func:`parse_covariates` returns them (the card's, or the command line's).
    n : int
        Units (samples or people).
    columns : DataFrame, optional
        Raw per-unit values the covariates may name, one row per unit.
    derived : mapping of str to array, optional
        Numeric per-unit statistics the task offers (``box_size``).
    image_paths : sequence of str, optional
        Each unit's image, for the image statistics.
    card_path : str or Path, optional
        Named in error messages.
    image_table : DataFrame, optional
        Each unit's image statistics (:func:`audit.core.image_stats.image_statistics`' columns, one row per
        unit), computed in the inference pass: read instead of decoding the images again.
    images_later : bool, default False
        Check the names only for the image statistics and leave them out (a model run, before inference, that
        calls again with ``image_table`` once the inference pass has computed them).

    Returns
    -------
    (DataFrame, list of str)
        One column ``covariate:<name>`` per covariate (string labels, ``unknown`` where missing), and notes.

    Raises
    ------
    CardError
        A covariate names nothing the data has.
    """
    out, notes = pd.DataFrame(index=pd.RangeIndex(n)), []
    derived = dict(derived or {})
    where = f"{card_path}: " if card_path else ""
    cache: dict = {}
    for i, cov in enumerate(covariates or ()):
        if columns is not None and cov.column in columns.columns:
            raw = columns[cov.column].reset_index(drop=True)
            numbers = _numeric(raw)
            if cov.quantiles and numbers is None:
                raise CardError(f"{where}field 'covariates[{i}].quantiles': expected a numeric column to cut into "
                                f"quantile bins, found non-numeric values in '{cov.column}'")
            many = numbers is not None and np.unique(numbers[np.isfinite(numbers)]).size > NOMINAL_LEVELS
            if numbers is not None and (cov.quantiles or many):
                labels = _labels(quantile_bins(numbers, n_bins=cov.quantiles or DEFAULT_QUANTILES))
                if not cov.quantiles:
                    notes.append(f"covariate {cov.name}: a numeric column with more than {NOMINAL_LEVELS} values, "
                                 f"cut into {DEFAULT_QUANTILES} quantile bins")
            else:
                labels = np.asarray([UNKNOWN if _missing(v) else str(v) for v in raw.tolist()], dtype=object)
        elif cov.name in derived:
            labels = _labels(quantile_bins(np.asarray(derived[cov.name], dtype=float),
                                           n_bins=cov.quantiles or DEFAULT_QUANTILES))
        elif cov.name in IMAGE_COVARIATES and image_paths is not None and images_later:
            continue
        elif cov.name in IMAGE_COVARIATES and image_paths is not None and image_table is not None:
            column = "megapixels" if cov.name == "resolution" else cov.name
            labels = _labels(quantile_bins(image_table[column].to_numpy(dtype=float),
                                           n_bins=cov.quantiles or DEFAULT_QUANTILES))
        elif cov.name in IMAGE_COVARIATES and image_paths is not None:
            if not all(p and os.path.isfile(p) for p in image_paths):
                message = (f"covariate {cov.name}: left out, as some images are not at hand (an audit of "
                           "predictions made elsewhere)")
                warnings.warn(message, UndefinedMetricWarning, stacklevel=2)
                notes.append(message)
                continue
            labels = _labels(quantile_bins(_per_image(image_paths, cov.name, cache),
                                           n_bins=cov.quantiles or DEFAULT_QUANTILES))
        else:
            builtin = [*sorted(derived), *(IMAGE_COVARIATES if image_paths is not None else ())]
            raise CardError(f"{where}field 'covariates[{i}]': expected a column of the data"
                            + (f" or one of {', '.join(builtin)}" if builtin else "") + f", found '{cov.column}'")
        out[COVARIATE_PREFIX + cov.name] = labels
    return out, notes


def image_statistics_pending(covariates: Sequence[Covariate] | None, table: pd.DataFrame) -> bool:
    """Whether :func:`covariate_table` with ``images_later`` left out a declared covariate for the image
    statistics of the inference pass (``table`` is its first output)."""
    return any(COVARIATE_PREFIX + c.name not in table.columns for c in covariates or ())


def _missing(value) -> bool:
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False
