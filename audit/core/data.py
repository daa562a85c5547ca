"""Load the split a data card describes, check it, and serve its images.

:func:`load_split` returns one row per sample with the columns ``sample_id``
(string), ``image_path`` (absolute path), ``label`` (class index into
``card.classes``) and one column per declared attribute (named after the
attribute, raw values, ``None`` where missing). Bad input raises
:class:`~audit.errors.DataError` with a one-line message naming the file, the
row and the field. Rows are counted from 1, the header excluded.

Image checks
------------
Every image path must stay inside the image root (``..``, absolute paths and
symlinks that leave it are refused, unless the card sets
``allow_paths_outside_root: true``): :class:`audit._paths.Root`, the one
containment check every task uses. Every image path is checked to exist
before anything else happens. By default
each image is also opened and checked with :meth:`PIL.Image.Image.verify` up
front (``verify_images=True``), so a corrupt file stops the audit before any
inference, with the row named. ``verify`` parses headers and, for PNG, chunk
checksums; it cannot catch every truncated JPEG, so :class:`ImageDataset`
also turns any failure to decode an image into the same kind of
:class:`~audit.errors.DataError` when the image is loaded. For very large
splits pass ``verify_images=False`` and rely on the load-time check.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import pandas as pd

from ..card_update import card_bytes
from .cards import DataCard
from ..stats import AttributeValueError, bin_attribute
from .._paths import Root
from ..errors import DataError
from .model_spec import shown

__all__ = ["IMAGE_EXTENSIONS", "fingerprint_split", "load_split", "read_table", "split_columns"]

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm")


def read_table(path: Path) -> pd.DataFrame:
    """Read a CSV (all columns as text, empty cells missing) or Parquet table.

    Raises
    ------
    DataError
        The file is missing or cannot be parsed.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    try:
        if path.suffix.lower() == ".parquet":
            frame = pd.read_parquet(path)
        else:
            frame = pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""])
    except Exception as exc:  # noqa: BLE001 - pandas/pyarrow raise many types for bad files
        raise DataError(f"{path}: cannot read table: {' '.join(str(exc).split())}") from None
    frame.columns = [str(c) for c in frame.columns]
    return frame


def as_object(series: pd.Series) -> pd.Series:
    """Raw values as Python objects with ``None`` for missing."""
    return pd.Series([None if _missing(v) else v for v in series.tolist()], dtype=object, index=series.index)


def _missing(value) -> bool:
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def require_columns(table: pd.DataFrame, path: Path, card: DataCard, wanted: dict[str, str]) -> None:
    """``wanted`` maps column name -> card field that declares it."""
    for column, field_name in wanted.items():
        if column not in table.columns:
            raise DataError(
                f"{path}: missing column '{column}' declared by {card.path} field '{field_name}'; "
                f"found columns: {shown(table.columns) or 'none'}"
            )


def row_ids(table: pd.DataFrame, path: Path, id_column: str) -> list[str]:
    ids = []
    first_row: dict[str, int] = {}
    for i, raw in enumerate(table[id_column].tolist(), start=1):
        if raw is None or (isinstance(raw, float) and np.isnan(raw)) or str(raw).strip() == "":
            raise DataError(f"{path}: row {i}: field '{id_column}': expected a sample id, found an empty value")
        sid = str(raw)
        if sid in first_row:
            raise DataError(f"{path}: row {i} (id '{sid}'): duplicate sample id (first seen in row {first_row[sid]})")
        first_row[sid] = i
        ids.append(sid)
    return ids


def load_split(card: DataCard, *, verify_images: bool = True, require_images: bool = True) -> pd.DataFrame:
    """Load and check the split a data card describes.

    Parameters
    ----------
    card : DataCard
        A validated data card.
    verify_images : bool, default True
        Open every image with PIL and ``verify()`` it before returning.
    require_images : bool, default True
        Check that every image file exists. An audit of predictions made
        elsewhere needs only labels and attributes, so it passes ``False``
        and skips both image checks.

    Returns
    -------
    pandas.DataFrame
        Columns ``sample_id``, ``image_path``, ``label`` and one per attribute,
        in manifest order (ImageFolder: sorted by id).

    Raises
    ------
    DataError
        A table or declared column is missing, a sample id is empty or
        duplicated, a label is not a declared class, or an image is missing
        or unreadable.
    """
    split = card.split
    table = read_table(split.table)
    declared = {split.id_column: "split.id_column"}
    if split.kind == "manifest":
        if split.image_column is None and require_images:
            raise DataError(f"{card.path}: field 'split.image_column': expected the manifest column of image paths "
                            "to run a model, found nothing (only --predictions work without it)")
        if split.image_column is not None:
            declared[split.image_column] = "split.image_column"
        declared[card.label_column] = "label_column"
    for attr in card.attributes:
        declared.setdefault(attr.column, f"attributes.{attr.name}.column")
    require_columns(table, split.table, card, declared)
    ids = row_ids(table, split.table, split.id_column)
    if not ids:
        raise DataError(f"{split.table}: expected at least one sample (a row below the header), found none")
    class_index = {name: i for i, name in enumerate(card.classes)}

    if split.kind == "manifest":
        frame = _manifest_rows(card, table, ids, class_index)
    else:
        frame = _imagefolder_rows(card, table, ids, class_index)

    for attr in card.attributes:
        if split.kind == "manifest":
            values = as_object(table[attr.column]).tolist()
        else:
            lookup = dict(zip(ids, as_object(table[attr.column]).tolist()))
            values = [lookup.get(sid) for sid in frame["sample_id"]]
        frame[attr.name] = pd.Series(values, dtype=object)  # object keeps None (missing -> 'unknown' group)

    source = split.table if split.kind == "manifest" else split.folder
    row_of = {sid: i for i, sid in enumerate(ids, start=1)}
    for attr in card.attributes:  # bin now, so a bad value is reported with its file, row and id
        try:
            bin_attribute(frame[attr.name], attr.engine_attribute(column=attr.name))
        except AttributeValueError as exc:
            sid = frame["sample_id"].iat[exc.row]
            raise DataError(f"{source}: {_where(row_of, sid, split.kind)}: field '{attr.column}': {exc.detail}") from None
    for sid, img in zip(frame["sample_id"], frame["image_path"]) if require_images else ():
        if not os.path.isfile(img):
            raise DataError(f"{source}: {_where(row_of, sid, split.kind)}: image file not found: {img}")
    if verify_images and require_images:
        for sid, img in zip(frame["sample_id"], frame["image_path"]):
            problem = verify_image(img)
            if problem:
                raise DataError(f"{source}: {_where(row_of, sid, split.kind)}: cannot read image {img}: {problem}")
    frame.attrs["source"] = str(source)
    return frame.reset_index(drop=True)


def split_columns(card: DataCard, frame: pd.DataFrame) -> pd.DataFrame:
    """Every column of the split's table (the manifest, or an image folder's attribute table), one row per
    sample of ``frame`` (:func:`load_split`'s), in its order: where declared covariates are looked up."""
    table = read_table(card.split.table)
    table.index = [str(v) for v in table[card.split.id_column].tolist()]
    return table.reindex(frame["sample_id"].astype(str).tolist()).reset_index(drop=True)


def _where(row_of: dict[str, int], sid: str, kind: str) -> str:
    if kind == "manifest":
        return f"row {row_of[sid]} (id '{sid}')"
    return f"image '{sid}'"


def _manifest_rows(card: DataCard, table: pd.DataFrame, ids: list[str], class_index: dict) -> pd.DataFrame:
    split = card.split
    labels = []
    images = table[split.image_column].tolist() if split.image_column is not None else [None] * len(ids)
    raw_labels = table[card.label_column].tolist()
    for i, (sid, img, lab) in enumerate(zip(ids, images, raw_labels), start=1):
        where = f"{split.table}: row {i} (id '{sid}')"
        if split.image_column is None:  # predictions only: no images
            img = None
        elif img is None or (isinstance(img, float) and np.isnan(img)) or str(img).strip() == "":
            raise DataError(f"{where}: field '{split.image_column}': expected an image path, found an empty value")
        label_key = None if lab is None or (isinstance(lab, float) and np.isnan(lab)) else str(lab)
        if label_key not in class_index:
            found = "an empty value" if label_key is None else repr(label_key)
            raise DataError(
                f"{where}: field '{card.label_column}': unknown label {found}; "
                f"expected one of: {shown(card.classes)}"
            )
        if img is None:  # predictions only: no image column
            labels.append(class_index[label_key])
            continue
        labels.append(class_index[label_key])
    if split.image_column is None:
        paths = [""] * len(ids)  # "" is no file (os.path.isfile("") is False)
    else:
        root = Root(card.image_root, allow_outside=card.allow_paths_outside_root)
        paths = root.contain_all([str(img) for img in images],
                           where=lambda i: f"{split.table}: row {i + 1} (id '{ids[i]}'): field '{split.image_column}'")
    return pd.DataFrame({"sample_id": ids, "image_path": paths, "label": np.asarray(labels, dtype=np.int64)})


def _imagefolder_rows(card: DataCard, table: pd.DataFrame, ids: list[str], class_index: dict) -> pd.DataFrame:
    folder = card.split.folder
    if not folder.is_dir():
        raise DataError(f"{folder}: image folder not found (data card {card.path} field 'split.imagefolder')")
    rows = []
    for class_dir in sorted(p for p in folder.iterdir() if p.is_dir()):
        if class_dir.name not in class_index:
            raise DataError(
                f"{folder}: class folder '{class_dir.name}': unknown label '{class_dir.name}'; "
                f"expected one of: {shown(card.classes)}"
            )
        for file in sorted(class_dir.rglob("*")):
            if file.is_file() and file.suffix.lower() in IMAGE_EXTENSIONS:
                rows.append((file.relative_to(folder).as_posix(), str(file), class_index[class_dir.name]))
    root = Root(folder, allow_outside=card.allow_paths_outside_root)
    root.contain_all([sid for sid, _, _ in rows], where=lambda i: f"{folder}: image '{rows[i][0]}'")
    on_disk = {sid for sid, _, _ in rows}
    for i, sid in enumerate(ids, start=1):
        if sid not in on_disk:
            raise DataError(
                f"{card.split.table}: row {i} (id '{sid}'): image file not found: {folder / sid}"
            )
    if not rows:
        raise DataError(f"{folder}: expected class subfolders with images, found none")
    frame = pd.DataFrame(rows, columns=["sample_id", "image_path", "label"])
    frame["label"] = frame["label"].astype(np.int64)
    return frame


def verify_image(path: str | Path) -> str | None:
    """Return ``None`` if PIL can identify and verify the image, else the reason."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            image.verify()
    except UnidentifiedImageError:
        return "not a recognised image format"
    except Exception as exc:  # noqa: BLE001 - PIL raises many types for bad files
        return " ".join(str(exc).split()) or type(exc).__name__
    return None


def fingerprint_split(card: DataCard, frame: pd.DataFrame, *, include_images: bool = True) -> str:
    """SHA-256 identifying a split's content for the prediction cache.

    Hashes the data card bytes, the manifest / attribute table bytes, and for
    every image (in ``sample_id`` order) its sample id, path relative to the
    image root, label, size and
    modification time in nanoseconds. Image bytes are not read: size and mtime
    catch edits in practice at a tiny fraction of the cost; a file merely
    touched or copied changes the hash and only costs a re-run.
    """
    digest = hashlib.sha256()
    for path in (card.path, card.split.table):
        digest.update(str(Path(path).name).encode())
        if path == card.path:  # the card without the sections `audit data-card` writes into it: not the data
            digest.update(card_bytes(path))
            continue
        with open(path, "rb") as fh:  # a chunk at a time: a manifest of millions of rows is not held whole
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                digest.update(chunk)
    if not include_images:  # predictions made elsewhere: the card and table identify the data
        return digest.hexdigest()
    order = np.argsort(frame["sample_id"].to_numpy(dtype=str), kind="stable")
    root = os.path.abspath(card.image_root)
    for i in order:
        sid, img, label = frame["sample_id"].iat[i], frame["image_path"].iat[i], frame["label"].iat[i]
        st = os.stat(img)
        # Paths relative to the image root, so the hash does not depend on the working directory.
        rel = os.path.relpath(os.path.abspath(img), root)
        digest.update(f"{sid}\0{rel}\0{label}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return digest.hexdigest()
