"""Reading the files a data card names, for every task: JSON, side tables, image-keyed tables, the data fingerprint.

What detection and panoptic segmentation (and any task with COCO-style files and attribute tables) share:

* :func:`read_json` and :func:`read_table`: a file, or one line naming it and what is wrong;
* :func:`keyed_table` and :func:`image_keys`: a side table keyed by a unique column, looked up by image id or
  by the photograph's file name (``image_id_column``);
* :func:`binned_group_columns`: the ``group:<attribute>`` columns of a per-person or per-image table
  (``people.parquet``, ``images.parquet``), binned by the engine so the labels are those of ``results.json``;
* :func:`fingerprint_files`: the data hash of the prediction cache and the provenance.

No task imports another; this is the one copy they call.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import DataError

__all__ = ["binned_group_columns", "fingerprint_files", "image_keys", "keyed_table", "plain", "read_json", "read_table"]


def plain(value):
    """A numpy scalar as the Python value it holds, so messages read ``3``, not ``np.int64(3)``."""
    return value.item() if isinstance(value, np.generic) else value


def read_json(path, *, error=DataError, what: str = "JSON"):
    """A JSON file, or one line naming the file and what is wrong with it.

    Parameters
    ----------
    path : str or Path
    error : type
        The exception raised (:class:`~audit.errors.DataError`, or ``PredictionError`` for predictions).
    what : str
        What the file should hold, for the message about values nested too deeply ("COCO JSON").
    """
    try:
        with open(path, encoding="utf-8") as fh:
            return json.load(fh)
    except FileNotFoundError:
        raise error(f"{path}: file not found") from None
    except json.JSONDecodeError as exc:
        raise error(f"{path}: invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}") from None
    except RecursionError:
        raise error(f"{path}: expected {what}, found values nested too deeply to read") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise error(f"{path}: cannot read: {' '.join(str(exc).split())}") from None


def read_table(path) -> pd.DataFrame:
    """A CSV or Parquet table (by its suffix), or one line naming the file."""
    path = Path(path)
    try:
        if path.suffix.lower() == ".parquet":
            return pd.read_parquet(path)
        return pd.read_csv(path, keep_default_na=True)
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except Exception as exc:  # noqa: BLE001 - pandas raises many types
        raise DataError(f"{path}: cannot read table: {' '.join(str(exc).split())[:200]}") from None


def keyed_table(table: pd.DataFrame, *, key: str, path) -> pd.DataFrame:
    """``table`` indexed by its column ``key``, which must be there and hold no value twice (DataError)."""
    if key not in table.columns:
        raise DataError(f"{path}: expected a key column '{key}', found columns {list(table.columns)[:12]}")
    keyed = table.set_index(key)
    if keyed.index.duplicated().any():
        raise DataError(f"{path}: column '{key}': duplicate key {plain(keyed.index[keyed.index.duplicated()][0])!r}")
    return keyed


def image_keys(image_ids, *, key_column: str, file_names: Mapping) -> np.ndarray:
    """The image table's key of each of ``image_ids``: the id itself (``key_column`` ``image_id`` or ``id``), or
    the photograph's file name (``file_names[image_id]``, '' when unknown)."""
    if key_column in ("image_id", "id"):
        return np.asarray(image_ids)
    return np.array([file_names.get(i, "") for i in image_ids], dtype=object)


def binned_group_columns(groups: pd.DataFrame, *, attributes: Sequence, intersections: Sequence = ()) -> dict:
    """``group:<attribute>`` -> each row's group, binned by :func:`audit.stats.build_groups` as the audit bins.

    A single-valued attribute gives the label; a multi-valued one (FACET's ``votes: any``) the list of every
    group the row is in.
    """
    from ..stats import build_groups

    structure, binned = build_groups(groups.reset_index(drop=True), attributes, intersections)
    out = {}
    for a in attributes:
        grouping = structure.grouping(a.name)
        if grouping.membership is None:
            out[f"group:{a.name}"] = np.asarray(binned[a.name].astype(str), dtype=object)
        else:
            member = grouping.membership[structure.cell_of_sample]
            out[f"group:{a.name}"] = [[grouping.labels[j] for j in np.flatnonzero(row)] for row in member]
    return out


def fingerprint_files(*paths) -> str:
    """SHA-256 over the bytes of the given files (None entries skipped); a card (``.md``) without the sections
    ``audit data-card`` writes into it."""
    digest = hashlib.sha256()
    for p in paths:
        if p is None:
            continue
        digest.update(b"\0file\0" + str(Path(p).name).encode())
        if str(p).endswith(".md"):
            from ..card_update import card_bytes

            digest.update(card_bytes(p))
            continue
        with open(p, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                digest.update(chunk)
    return digest.hexdigest()
