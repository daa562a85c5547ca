"""Splits of image and label-mask PNGs, per-person instance masks, and predicted mask PNGs.

:func:`load_segmentation_split` returns one row per image (``sample_id``,
``image_path``, ``mask_path`` and one column per declared attribute) and, when
the card lists people, one row per person (``person_row``, ``sample_id``,
``mask_path``, ``instance``, and the person attributes). Every problem is a
:class:`~audit.errors.DataError` (or :class:`~audit.errors.PredictionError`
for predicted masks) naming the file, the row and the field.
"""

from __future__ import annotations

import hashlib
import os
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd

from ...core.cards import DataCard
from ...core.data import as_object, require_columns, row_ids, read_table
from ..._paths import Root
from ...errors import DataError, PredictionError

__all__ = [
    "fingerprint_segmentation_split",
    "load_segmentation_split",
    "mask_size",
    "predicted_mask_paths",
    "read_mask",
]


def read_mask(path, *, what: str = "mask") -> np.ndarray:
    """A single-channel PNG (palette, 8- or 16-bit grey) as a 2-D integer array.

    Palette PNGs (the VOC style) give their palette indices, which are the
    class indices.

    Raises
    ------
    DataError
        The file is missing, is not an image, or has colour channels.
    """
    with _opened_mask(path, what) as image:
        return np.asarray(image)


def mask_size(path, *, what: str = "mask") -> tuple[int, int]:
    """The ``(height, width)`` of a mask :func:`read_mask` reads, from its header (nothing is decoded).

    Raises
    ------
    DataError
        As :func:`read_mask`, for a missing file, a file that is not an image, or one with colour channels.
    """
    with _opened_mask(path, what) as image:
        return image.height, image.width


@contextmanager
def _opened_mask(path, what: str):
    """A single-channel image opened from ``path``; every failure, inside the block too, as one DataError."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            if image.mode not in ("P", "L", "I", "I;16", "1"):
                raise DataError(f"{path}: expected a single-channel {what} PNG (palette or greyscale, pixel = class "
                                f"index), found mode {image.mode}")
            yield image
    except FileNotFoundError:
        raise DataError(f"{path}: {what} file not found") from None
    except UnidentifiedImageError:
        raise DataError(f"{path}: cannot read {what}: not a recognised image format") from None
    except DataError:
        raise
    except Exception as exc:  # noqa: BLE001 - PIL raises many types for bad files
        raise DataError(f"{path}: cannot read {what}: {' '.join(str(exc).split()) or type(exc).__name__}") from None


def _path(root: Path, value) -> str:
    p = Path(str(value)).expanduser()
    return str(p if p.is_absolute() else root / p)


def _empty(value) -> bool:
    return value is None or (isinstance(value, float) and np.isnan(value)) or str(value).strip() == ""


def load_segmentation_split(card: DataCard) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """Load and check the images, label masks and people a segmentation data card describes.

    Returns
    -------
    images : DataFrame
        ``sample_id``, ``image_path``, ``mask_path`` and the image attributes.
    people : DataFrame or None
        ``sample_id``, ``mask_path``, ``instance`` (int or None), ``row``
        (1-based row in the people table) and the person attributes.

    Raises
    ------
    DataError
    """
    seg = card.segmentation
    split = card.split
    if split.kind != "manifest":
        raise DataError(f"{card.path}: field 'split': expected a manifest for a segmentation split, found an imagefolder")
    table = read_table(split.table)
    declared = {split.id_column: "split.id_column", seg.mask_column: "segmentation.mask_column"}
    if split.image_column is not None:  # None: predicted masks made elsewhere, no images needed
        declared[split.image_column] = "split.image_column"
    for attr in card.attributes:
        declared.setdefault(attr.column, f"attributes.{attr.name}.column")
    require_columns(table, split.table, card, declared)
    ids = row_ids(table, split.table, split.id_column)
    if not ids:
        raise DataError(f"{split.table}: expected at least one sample (a row below the header), found none")
    for i, sid in enumerate(ids, start=1):  # predicted masks are stored and read as <sample_id>.png
        if "/" in sid or "\\" in sid or sid in (".", "..") or "\0" in sid:
            raise DataError(f"{split.table}: row {i} (id '{sid}'): field '{split.id_column}': expected a sample id "
                            "usable as a file name (no '/', '\\', '.' or '..'), found one that is not")
    root = Root(card.image_root, allow_outside=card.allow_paths_outside_root)
    columns = {}
    for column in (split.image_column, seg.mask_column):
        if column is None:  # predictions only: no image column
            continue
        values = table[column].tolist()
        for i, value in enumerate(values, start=1):
            if _empty(value):
                raise DataError(f"{split.table}: row {i} (id '{ids[i - 1]}'): field '{column}': expected a path, "
                                "found an empty value")
        columns[column] = root.contain_all([str(v) for v in values], what="image" if column == split.image_column
                                     else "label mask",
                                     where=lambda i, c=column: f"{split.table}: row {i + 1} (id '{ids[i]}'): "
                                                               f"field '{c}'")
    images = columns[split.image_column] if split.image_column is not None else [""] * len(ids)
    masks = columns[seg.mask_column]
    for i, (sid, img, mask) in enumerate(zip(ids, images, masks), start=1):
        for kind, p in (("image", img), ("label mask", mask)):
            if p and not os.path.isfile(p):
                raise DataError(f"{split.table}: row {i} (id '{sid}'): {kind} file not found: {p}")
    frame = pd.DataFrame({"sample_id": ids, "image_path": images, "mask_path": masks})
    for attr in card.attributes:
        frame[attr.name] = pd.Series(as_object(table[attr.column]).tolist(), dtype=object)
    frame.attrs["source"] = str(split.table)

    people = None
    if seg.people is not None:
        spec = seg.people
        ptable = read_table(spec.table)
        wanted = {spec.image_column: "segmentation.people.image_column", spec.mask_column: "segmentation.people.mask_column"}
        if spec.instance_column:
            wanted[spec.instance_column] = "segmentation.people.instance_column"
        for attr in spec.attributes:
            wanted.setdefault(attr.column, f"segmentation.people.attributes.{attr.name}.column")
        require_columns(ptable, spec.table, card, wanted)
        known = set(ids)
        rows = []
        for i, record in enumerate(ptable.to_dict(orient="records"), start=1):
            sid, mask = record[spec.image_column], record[spec.mask_column]
            where = f"{spec.table}: row {i}"
            if _empty(sid) or str(sid) not in known:
                raise DataError(f"{where}: field '{spec.image_column}': expected an image id of {split.table}, "
                                f"found {'an empty value' if _empty(sid) else repr(str(sid))}")
            if _empty(mask):
                raise DataError(f"{where}: field '{spec.mask_column}': expected a path, found an empty value")
            path = root.check_one(str(mask), where=f"{where}: field '{spec.mask_column}'", what="person mask")
            if not os.path.isfile(path):
                raise DataError(f"{where}: person mask file not found: {path}")
            instance = None
            if spec.instance_column:
                raw = record[spec.instance_column]
                try:
                    instance = int(str(raw))
                    if instance < 1:
                        raise ValueError
                except ValueError:
                    raise DataError(f"{where}: field '{spec.instance_column}': expected a positive integer, "
                                    f"found {raw!r}") from None
            rows.append({"row": i, "sample_id": str(sid), "mask_path": path, "instance": instance,
                         **{a.name: (None if _empty(record[a.column]) else record[a.column]) for a in spec.attributes}})
        people = pd.DataFrame(rows, columns=["row", "sample_id", "mask_path", "instance",
                                             *[a.name for a in spec.attributes]])
    return frame, people


def predicted_mask_paths(predictions, sample_ids, *, id_column: str = "sample_id") -> list[str]:
    """Where the predicted mask of every sample is.

    ``predictions`` is a directory holding ``<sample_id>.png``, or a CSV /
    Parquet manifest with the data card's id column (``id_column``; or
    ``sample_id``) and a ``mask`` column (paths relative to the manifest's
    directory).

    Raises
    ------
    PredictionError
        A mask is missing, or the manifest's ids do not match the split.
    """
    predictions = Path(predictions)
    if predictions.is_dir():
        paths = [str(predictions / f"{sid}.png") for sid in sample_ids]
        for sid, p in zip(sample_ids, paths):
            if not os.path.isfile(p):
                raise PredictionError(f"{predictions}: expected a predicted mask '{sid}.png' for sample '{sid}', found none")
        return paths
    if predictions.suffix.lower() not in (".csv", ".parquet"):
        raise PredictionError(f"{predictions}: expected a directory of <sample_id>.png masks or a .csv/.parquet "
                              "manifest with sample_id and mask columns, found neither")
    try:
        table = read_table(predictions)
    except DataError as exc:
        raise PredictionError(str(exc)) from None
    id_col = next((c for c in (id_column, "sample_id") if c in table.columns), id_column)
    for column in (id_col, "mask"):
        if column not in table.columns:
            raise PredictionError(f"{predictions}: missing column '{column}'; found columns: {', '.join(table.columns)}")
    ids = [str(s) for s in table[id_col]]
    if sorted(ids) != sorted(str(s) for s in sample_ids) or len(set(ids)) != len(ids):
        missing = sorted(set(map(str, sample_ids)) - set(ids))[:3]
        extra = sorted(set(ids) - set(map(str, sample_ids)))[:3]
        raise PredictionError(f"{predictions}: expected one row per sample of the split, found missing ids {missing}, "
                              f"unknown ids {extra} or duplicates")
    for i, (sid, value) in enumerate(zip(ids, table["mask"]), start=1):
        if _empty(value):
            raise PredictionError(f"{predictions}: row {i} (id '{sid}'): field 'mask': expected a path, found an "
                                  "empty value")
    lookup = dict(zip(ids, table["mask"]))
    paths = [_path(predictions.parent, lookup[str(sid)]) for sid in sample_ids]
    for sid, p in zip(sample_ids, paths):
        if not os.path.isfile(p):
            raise PredictionError(f"{predictions}: predicted mask for sample '{sid}' not found: {p}")
    return paths


def fingerprint_segmentation_split(card: DataCard, images: pd.DataFrame, people: pd.DataFrame | None) -> str:
    """SHA-256 of the card, the tables, and every image and mask's relative path, size and mtime."""
    digest = hashlib.sha256()
    tables = [card.path, card.split.table] + ([card.segmentation.people.table] if people is not None else [])
    for path in tables:
        digest.update(Path(path).name.encode())
        digest.update(Path(path).read_bytes())
    root = os.path.abspath(card.image_root)
    files = list(images["image_path"]) + list(images["mask_path"]) + (list(people["mask_path"]) if people is not None else [])
    for f in files:
        st = os.stat(f)
        digest.update(f"{os.path.relpath(os.path.abspath(f), root)}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return digest.hexdigest()
