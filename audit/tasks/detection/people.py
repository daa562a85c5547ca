"""A detection card's people and their groups: each person's attributes from the annotation, a side table or
the image, and FACET-style vote distributions (``votes: any``, ``majority``, ``expected``) read as groups.

The lookup order and the vote rules are those of :mod:`audit.tasks.detection.data`'s docstring; this module
applies them to the people of loaded ground truth (:func:`card_people`).
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pandas as pd

from ...core.tables import image_keys, keyed_table, plain, read_table
from ...errors import DataError
from .data import VOTE_MODES, GroundTruth

__all__ = ["card_people", "person_attributes", "vote_groups"]

def _level(suffix: str):
    return int(suffix) if re.fullmatch(r"\d+", suffix) else suffix


def vote_groups(counts: pd.DataFrame, mode: str):
    """Turn per-level vote counts (one column per level, ``na`` already dropped) into group values.

    Parameters
    ----------
    counts : DataFrame
        One row per person, one column per level (ints for numeric levels).
    mode : {"any", "majority", "expected"}

    Returns
    -------
    Series
        ``any``: a tuple of levels per person (empty when no votes);
        ``majority``: one level or None;
        ``expected``: the rounded mean level or None.
    """
    if all(isinstance(v, int) for v in counts.columns):
        counts = counts[sorted(counts.columns)]
    levels = list(counts.columns)
    votes = counts.fillna(0).to_numpy(dtype=float)
    total = votes.sum(1)
    numeric = all(isinstance(v, int) for v in levels)
    if mode == "any":
        return pd.Series([tuple(lv for lv, c in zip(levels, row) if c > 0) for row in votes], index=counts.index,
                         dtype=object)
    if mode == "expected":
        if not numeric:
            raise DataError(f"votes: expected numeric levels for 'expected', found {levels}")
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = votes @ np.array(levels, dtype=float) / total
        return pd.Series([int(math.floor(m + 0.5)) if t > 0 else None for m, t in zip(mean, total)],
                         index=counts.index, dtype=object)
    if mode != "majority":
        raise DataError(f"votes: expected one of {', '.join(VOTE_MODES)}, found {mode!r}")
    names = levels
    out = []
    with np.errstate(invalid="ignore", divide="ignore"):
        expected = votes @ np.arange(len(names), dtype=float) / votes.sum(1)
    for row, e in zip(votes, expected):
        if row.sum() <= 0:
            out.append(None)
            continue
        top = np.flatnonzero(row == row.max())
        if top.size > 1 and not numeric:
            out.append(None)
            continue
        # positions are in level order, so nearest to the expected position, then the lower one
        best = top[np.lexsort((top, np.abs(top - e)))[0]]
        out.append(names[best])
    return pd.Series(out, index=counts.index, dtype=object)


# the levels a vote distribution over an ordinal skin scale must have
_SCALE_LEVELS = {"monk": list(range(1, 11)), "fitzpatrick": list(range(1, 7))}


def _prefix_columns(table: pd.DataFrame, column: str) -> dict:
    found = {}
    for c in table.columns:
        c = str(c)
        if c.startswith(column + "_"):
            found[_level(c[len(column) + 1:])] = c
    return found


def person_attributes(gt: GroundTruth, people: np.ndarray, specs, *, table: pd.DataFrame | None,
                      table_path: Path | None, key_column: str | None, image_table: pd.DataFrame | None,
                      image_table_path: Path | None, image_key: str | None, card_path: Path,
                      required: bool = True) -> pd.DataFrame:
    """One row per person (the non-crowd ground truth ``people``), one column per declared attribute.

    ``specs`` are the card's attribute specs (``name``, ``column``, ``votes``, ``bins``).
    Values are raw (binned later by the engine); ``any`` votes give tuples. A column found nowhere raises
    DataError, or is left out when not ``required`` (the covariates: :mod:`.units`).
    """
    ann_ids = gt.boxes.ann_id[people]
    image_ids = gt.boxes.image[people]
    inline = [gt.annotations[i].get("attributes") if isinstance(gt.annotations[i].get("attributes"), dict) else {}
              for i in people]
    side = None
    if table is not None:
        if key_column not in table.columns:
            raise DataError(f"{table_path}: expected a key column '{key_column}' (annotation id), found columns "
                            f"{list(table.columns)[:12]}")
        if table[key_column].duplicated().any():
            dup = table.loc[table[key_column].duplicated(), key_column].iloc[0]
            raise DataError(f"{table_path}: column '{key_column}': duplicate annotation id {plain(dup)!r}")
        side = table.set_index(key_column)
        unknown = np.setdiff1d(side.index.to_numpy(), gt.boxes.ann_id)
        if unknown.size:
            raise DataError(f"{table_path}: column '{key_column}': expected annotation ids of {gt.path}, found "
                            f"{plain(unknown[0])!r} which is not one")
        side = side.reindex(ann_ids)
    images = gt.images.set_index("image_id")
    im_attrs = images["attributes"].reindex(image_ids).tolist()
    im_side = None
    if image_table is not None:
        by = image_keys(image_ids, key_column=image_key, file_names=images["file_name"].to_dict())
        im_side = keyed_table(image_table, key=image_key, path=image_table_path).reindex(by)
    out = {}
    for spec in specs:
        col = spec.column
        values = None
        for source in (side, im_side):
            if source is None:
                continue
            if col in source.columns:
                values = source[col].reset_index(drop=True)
                break
            prefixed = _prefix_columns(source, col)
            if prefixed:
                levels = {lv: c for lv, c in prefixed.items() if lv != "na"}
                scale_levels = _SCALE_LEVELS.get(spec.scale)
                if scale_levels is not None and set(levels) != set(scale_levels):
                    missing = [f"{col}_{lv}" for lv in scale_levels if lv not in levels]
                    extra = [levels[lv] for lv in levels if lv not in scale_levels]
                    raise DataError(
                        f"{table_path if source is side else image_table_path}: columns {col}_*: expected one vote "
                        f"column per {spec.scale} level ({col}_{scale_levels[0]} .. {col}_{scale_levels[-1]}), "
                        f"found {'missing ' + ', '.join(missing) if missing else 'extra ' + ', '.join(extra)}")
                counts = source[list(levels.values())].copy()
                counts.columns = list(levels)
                if not all(pd.api.types.is_numeric_dtype(counts[c]) for c in counts.columns):
                    raise DataError(f"{table_path if source is side else image_table_path}: columns {col}_*: "
                                    "expected vote counts or 0/1 flags")
                mode = spec.votes or ("majority" if spec.scale != "monk" else "any")
                values = vote_groups(counts.reset_index(drop=True), mode)
                break
        if values is None:
            got = [d.get(col) for d in inline]
            if any(v is not None for v in got):
                values = pd.Series(got, dtype=object)
            else:
                got = [d.get(col) if isinstance(d, dict) else None for d in im_attrs]
                if any(v is not None for v in got):
                    values = pd.Series(got, dtype=object)
        if values is None and not required:
            continue
        if values is None:
            raise DataError(
                f"{card_path}: field 'attributes.{spec.name}.column': expected '{col}' (or '{col}_*' vote columns) "
                "in the annotations' 'attributes', the attribute table or the image attributes, found it nowhere")
        if spec.votes == "any" and not isinstance(values.dropna().iloc[0] if values.notna().any() else (), tuple):
            values = pd.Series([() if v is None or (isinstance(v, float) and math.isnan(v)) else
                                (tuple(v) if isinstance(v, (list, tuple)) else (v,)) for v in values], dtype=object)
        elif spec.votes in ("majority", "expected") and values.map(lambda v: isinstance(v, (list, tuple))).any():
            seq = values.map(lambda v: list(v) if isinstance(v, (list, tuple)) else ([] if v is None else [v]))
            levels = sorted({x for v in seq for x in v})
            counts = pd.DataFrame([[v.count(lv) for lv in levels] for v in seq], columns=levels)
            values = vote_groups(counts, spec.votes)
        out[spec.name] = values.reset_index(drop=True)
    return pd.DataFrame(out)


def card_people(card, gt: GroundTruth, *, specs=None, required: bool = True) -> tuple[np.ndarray, pd.DataFrame]:
    """The people of a detection data card (non-crowd ground truth indices) and their raw attribute values.

    Attributes come from the annotations' ``attributes``, the card's side
    table keyed by annotation id (``person_id`` in FACET) and its image-level
    table, as :func:`person_attributes` reads them. ``specs`` (default: the card's attributes) and
    ``required`` are :func:`person_attributes`'s.
    """
    people = np.flatnonzero(~np.asarray(gt.boxes.iscrowd, dtype=bool))
    table = read_table(card.attributes_table) if card.attributes_table else None
    key = card.annotation_id_column
    if table is not None and key is None:
        key = "annotation_id" if "annotation_id" in table.columns or "person_id" not in table.columns else "person_id"
    image_table = read_table(card.image_attributes) if card.image_attributes else None
    groups = person_attributes(gt, people, card.attributes if specs is None else specs, table=table,
                               table_path=card.attributes_table, key_column=key, image_table=image_table,
                               image_table_path=card.image_attributes, image_key=card.image_id_column,
                               card_path=card.path, required=required)
    return people, groups
