"""Who is who: the person segments of a panoptic split and their attributes, and each image's attributes.

A person segment's attribute comes from the side table keyed by (image key, segment id), the image table, the
segment's ``attributes`` in ``segments_info`` or the image's ``attributes``, in that order. Reading the tables
and looking rows up by key are the core's (:mod:`audit.core.tables`), shared with detection.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ...core.tables import image_keys, keyed_table, plain, read_table
from ...errors import DataError

__all__ = ["image_attribute_values", "person_attribute_values", "person_category_indices", "person_segments"]


def person_category_indices(card, gt) -> np.ndarray:
    """Indices (into the split's categories) of the categories whose segments are people."""
    wanted = card.person_categories if card.person_categories is not None else ["person"]
    found = [i for i, name in enumerate(gt.names) if name in wanted]
    if card.person_categories is not None:
        missing = [c for c in card.person_categories if c not in gt.names]
        if missing:
            from ...errors import CardError

            raise CardError(f"{card.path}: field 'person_categories': expected categories of {gt.path} "
                            f"({', '.join(gt.names[:12])}{', ...' if len(gt.names) > 12 else ''}), found "
                            f"'{missing[0]}'")
    return np.array(found, dtype=np.int64)


def person_segments(gt, person_categories: np.ndarray) -> pd.DataFrame:
    """One row per non-crowd segment of a person category: ``image_id``, ``segment_id``, ``ann`` (annotation
    position), ``seg`` (position in its ``segments_info``), in annotation then segment order."""
    rows = {"image_id": [], "segment_id": [], "ann": [], "seg": []}
    for a, ann in enumerate(gt.annotations):
        keep = np.flatnonzero(np.isin(ann.segments.category, person_categories) & ~ann.segments.iscrowd)
        rows["image_id"] += [ann.image_id] * keep.size
        rows["segment_id"] += ann.segments.ids[keep].tolist()
        rows["ann"] += [a] * keep.size
        rows["seg"] += keep.tolist()
    return pd.DataFrame(rows, dtype=np.int64) if rows["ann"] else pd.DataFrame(
        {k: np.zeros(0, np.int64) for k in rows})


def _image_keys(card, gt, image_ids) -> np.ndarray:
    """The image table's key of each of ``image_ids``: the id, or the photograph's file name."""
    return image_keys(image_ids, key_column=card.image_id_column,
                      file_names=dict(zip(gt.images["image_id"], gt.images["file_name"])))


def _keyed_image_table(card, gt, image_ids):
    if card.image_attributes is None:
        return None
    table = keyed_table(read_table(card.image_attributes), key=card.image_id_column, path=card.image_attributes)
    return table.reindex(_image_keys(card, gt, image_ids)).reset_index(drop=True)


def _fallback(values: list):
    """``values`` as a Series when any is given, else None (the attribute is not there)."""
    return pd.Series(values, dtype=object) if any(v is not None for v in values) else None


def image_attribute_values(card, gt) -> pd.DataFrame:
    """One row per annotated image (annotation order), one column per ``image_groups`` attribute (raw values)."""
    image_ids = [a.image_id for a in gt.annotations]
    table = _keyed_image_table(card, gt, image_ids)
    inline = gt.images["attributes"].tolist()
    out = {}
    for spec in card.image_group_attributes:
        values = table[spec.column] if table is not None and spec.column in table.columns else \
            _fallback([d.get(spec.column) for d in inline])
        if values is None:
            raise DataError(f"{card.path}: field 'image_groups.attributes.{spec.name}.column': expected "
                            f"'{spec.column}' in the image table or the images' 'attributes', found it nowhere")
        out[spec.name] = pd.Series(values).reset_index(drop=True)
    return pd.DataFrame(out, index=range(len(image_ids)))


def person_attribute_values(card, gt, people: pd.DataFrame) -> pd.DataFrame:
    """One row per person segment (rows of ``people``), one column per card attribute (raw values).

    Looked up in the side table (keyed by the image key and ``segment_id_column``), then the image table,
    then the segment's ``attributes`` in ``segments_info``, then the image's ``attributes``.
    """
    side = None
    if card.attributes_table is not None:
        table = read_table(card.attributes_table)
        path, seg_key, im_key = card.attributes_table, card.segment_id_column, card.image_id_column
        for key in (im_key, seg_key):
            if key not in table.columns:
                raise DataError(f"{path}: expected a key column '{key}' ({'image' if key == im_key else 'segment id'}"
                                f"), found columns {list(table.columns)[:12]}")
        pairs = list(zip(table[im_key].tolist(), table[seg_key].tolist()))
        known = set(zip(_image_keys(card, gt, people["image_id"]).tolist(), people["segment_id"].tolist()))
        seen = set()
        for row, pair in enumerate(pairs, start=2):
            if pair in seen:
                raise DataError(f"{path}: row {row}: columns '{im_key}', '{seg_key}': duplicate person segment "
                                f"{plain(pair[0])!r}, {plain(pair[1])!r}")
            seen.add(pair)
            if pair not in known:
                raise DataError(f"{path}: row {row}: columns '{im_key}', '{seg_key}': expected a non-crowd person "
                                f"segment of {gt.path}, found image {plain(pair[0])!r}, segment {plain(pair[1])!r}")
        side = table.set_index([im_key, seg_key]).reindex(
            pd.MultiIndex.from_arrays([_image_keys(card, gt, people["image_id"]), people["segment_id"].to_numpy()]))
        side = side.reset_index(drop=True)
    images = _keyed_image_table(card, gt, people["image_id"].tolist())
    by_image = dict(zip(gt.images["image_id"], gt.images["attributes"]))
    out = {}
    for spec in card.attributes:
        col = spec.column
        values = None
        for source in (side, images):
            if source is not None and col in source.columns:
                values = source[col]
                break
        if values is None:
            values = _fallback([gt.annotations[a].attributes[s].get(col)
                                for a, s in zip(people["ann"], people["seg"])])
        if values is None:
            values = _fallback([by_image.get(i, {}).get(col) for i in people["image_id"]])
        if values is None:
            raise DataError(f"{card.path}: field 'attributes.{spec.name}.column': expected '{col}' in the person "
                            "table, the image table, the segments' or the images' 'attributes', found it nowhere")
        out[spec.name] = pd.Series(values).reset_index(drop=True)
    return pd.DataFrame(out, index=range(len(people)))
