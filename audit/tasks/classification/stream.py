"""Predictions made elsewhere, streamed: a split and its predictions file reduced to per-cell counts.

A rate metric depends on the samples only through the counts per (attribute values, true class, predicted
class), so an audit of a predictions file need not hold a table of strings per sample. :func:`read_split`
reads the data card's manifest in record batches (pyarrow: a Parquet file, or a CSV file through pyarrow's
streaming CSV reader), dictionary-encodes each attribute and the label batch by batch into value dictionaries
that grow across batches, and keeps per sample only the code of its (attributes, label) combination and two
independent 64-bit hashes of its id. :func:`read_predictions` then reads the predictions file (a CSV or
Parquet file, or a directory of Parquet files: a dataset) in record batches, joins each batch to the split
on the id hashes (two different ids share both with probability 2**-128), and keeps per sample only its
predicted class (one byte) and, when the file has them, its class scores (score metrics need every sample's
scores). The result, :class:`SplitCounts`, is what :func:`audit.stats.audit_classification` takes: the
distinct cells with their counts, and each scored sample's cell.

Memory: about 35 bytes per sample (16 of hashes, 4 of sort order, 4-8 of bucket table, 4 of cell code,
4 for the predictions row that named it, 1 of prediction), whatever the files' other columns; plus the scores
when there are any. Up to :data:`SAMPLE_DETAIL_LIMIT` samples the per-sample tables the report and ``audit
compare`` read (``samples.parquet``, the worst errors, the threshold sweep, thumbnails) are kept too, with
the ids and image paths they need; above it they are left out, and the log says so. Messages that name a
sample read its id again from the file.

Validation is the row-by-row loaders' (:func:`audit.core.data.load_split`,
:func:`audit.core.inference.load_predictions_file`), message for message and in the same order: when a file has
several problems, the one reported is the one the row-by-row loader reports (the first row in file order for
the manifest and the predictions file's ids; the first sample in split order for its values). What pyarrow
cannot read as pandas does (a ragged CSV row, a duplicated column name, an image-folder split, nested
columns) raises :class:`NotStreamable`, and the caller reads those files row by row instead.

The pieces: this module reads the manifest (:func:`read_split`); the predictions file is joined and counted
in :mod:`audit.tasks.classification._predictions_join`; tables are read in record batches by
:mod:`audit.tasks.classification._record_batches`; the coded split, its ids' hash index and the counts are
the types of :mod:`audit.tasks.classification._split_codes`.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from ...errors import DataError
from ._predictions_join import read_predictions
from ._record_batches import BATCH_ROWS, NotStreamable, _blank, _encode, _release_arrow_memory, _strings, _Table
from ._split_codes import SAMPLE_DETAIL_LIMIT, ManifestCodes, SplitCounts, _hashes, _HashIndex, _IdReader

__all__ = ["BATCH_ROWS", "ManifestCodes", "NotStreamable", "SAMPLE_DETAIL_LIMIT", "SplitCounts", "predictions_sha256",
           "read_predictions", "read_split"]


def predictions_sha256(path) -> str:
    """SHA-256 of a predictions file's bytes; of a directory (a Parquet dataset), of its files' relative paths
    and SHA-256 hashes, in path order."""
    import hashlib

    from ...core.inference import file_sha256

    path = Path(path)
    if not path.is_dir():
        return file_sha256(path)
    digest = hashlib.sha256()
    for file in sorted(p for p in path.rglob("*") if p.is_file()):
        digest.update(f"{file.relative_to(path).as_posix()}\0{file_sha256(file)}\n".encode())
    return digest.hexdigest()


# ---------------------------------------------------------------------------------------------------------
# The manifest
# ---------------------------------------------------------------------------------------------------------


def read_split(card, *, keep_samples_up_to: int | None = None) -> ManifestCodes:
    """Read and check a data card's manifest in record batches.

    Parameters
    ----------
    card : DataCard
        A validated data card with a manifest split.
    keep_samples_up_to : int, optional
        Keep each sample's id and image path when the split has at most this many samples (default
        :data:`SAMPLE_DETAIL_LIMIT`).

    Returns
    -------
    ManifestCodes

    Raises
    ------
    DataError
        What :func:`audit.core.data.load_split` raises for the same manifest, with the same message.
    NotStreamable
        An image-folder split, or a manifest pyarrow does not read as pandas does.
    """
    import pyarrow as pa

    from ..._paths import Root
    from ...core.data import require_columns
    from ...core.model_spec import shown
    from ...stats import AttributeValueError, bin_attribute

    split = card.split
    if keep_samples_up_to is None:
        keep_samples_up_to = SAMPLE_DETAIL_LIMIT
    if split.kind != "manifest":
        raise NotStreamable("an image-folder split")
    path = Path(split.table)
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    table = _Table(path, csv_nulls=[""])
    declared = {split.id_column: "split.id_column"}
    if split.image_column is not None:
        declared[split.image_column] = "split.image_column"
    declared[card.label_column] = "label_column"
    for attr in card.attributes:
        declared.setdefault(attr.column, f"attributes.{attr.name}.column")
    require_columns(pd.DataFrame(columns=table.names), path, card, declared)
    columns = list(declared)
    as_float = {c: table.pandas_float(c) for c in columns}
    class_index = {name: i for i, name in enumerate(card.classes)}
    engine_attrs = {a.name: a.engine_attribute(column=a.name) for a in card.attributes}
    attr_columns = list(dict.fromkeys(a.column for a in card.attributes))

    values: dict[str, dict] = {c: {} for c in attr_columns}  # column -> raw value -> global code
    combos: dict[tuple, int] = {}  # (attribute codes..., label) -> combination code
    first_hashes, second_hashes, codes = _Growing(np.uint64, table.rows), _Growing(np.uint64, table.rows), \
        _Growing(np.int32, table.rows)
    ids: list | None = []  # each batch's ids, while per-sample tables are kept
    paths: list | None = []  # each batch's joined image paths, likewise
    blank_rows = []  # rows (from 0) whose id is blank
    first_row_problem = None  # message: an empty image path or an unknown label
    outside = None  # message of the first image path outside the root
    bad_value: dict[str, str] = {}  # attribute -> message
    root = Root(card.image_root, allow_outside=card.allow_paths_outside_root) if split.image_column else None
    offset = 0
    for batch in table.batches(columns):
        size = batch.num_rows
        if not size:
            continue
        col = dict(zip(batch.schema.names, batch.columns))
        sid = _strings(col[split.id_column], as_float=as_float[split.id_column]).cast(pa.string())
        blank = _blank(sid)
        if blank.any():
            blank_rows.append(offset + np.flatnonzero(blank))
        first, second = _hashes(sid)
        first_hashes.append(first)
        second_hashes.append(second)
        del first, second
        keep = offset + size <= keep_samples_up_to
        ids = ids + [sid] if keep and ids is not None else None

        def where(i, sid=sid, offset=offset):
            return f"{path}: row {offset + i + 1} (id '{sid[i].as_py()}')"

        label_codes, label_values = _encode(col[card.label_column], as_float=as_float[card.label_column])
        label = np.array([class_index.get(None if v is None else str(v), -1) for v in label_values],
                         dtype=np.int64)[label_codes]
        problem_rows = label < 0
        image_blank = None
        if split.image_column is not None:
            image = _strings(col[split.image_column], as_float=as_float[split.image_column])
            image_blank = _blank(image)
            problem_rows = problem_rows | image_blank
        if problem_rows.any() and first_row_problem is None:
            i = int(np.argmax(problem_rows))
            if image_blank is not None and image_blank[i]:
                first_row_problem = (f"{where(i)}: field '{split.image_column}': expected an image path, found an "
                                     "empty value")
            else:
                found = label_values[label_codes[i]]
                found = "an empty value" if found is None else repr(str(found))
                first_row_problem = (f"{where(i)}: field '{card.label_column}': unknown label {found}; "
                                     f"expected one of: {shown(card.classes)}")
        if split.image_column is not None and outside is None:
            try:
                joined = root.contain_all(image.to_pylist(), where=lambda i, where=where: (
                    f"{where(i)}: field '{split.image_column}'"))
            except DataError as exc:
                outside, joined = str(exc), None
            paths = paths + [joined] if keep and paths is not None and joined is not None else None

        parts = []
        for column in attr_columns:
            row_codes, row_values = _encode(col[column], as_float=as_float[column])
            known = values[column]
            fresh = list(dict.fromkeys(v for v in row_values if v not in known))
            for attr in card.attributes:  # bin each value when first seen, so a bad one is named with its row
                if attr.column != column or attr.name in bad_value or not fresh:
                    continue
                try:
                    bin_attribute(pd.Series(fresh, dtype=object), engine_attrs[attr.name])
                except AttributeValueError as exc:
                    i = int(np.argmax(row_codes == row_values.index(fresh[exc.row])))
                    bad_value[attr.name] = f"{where(i)}: field '{attr.column}': {exc.detail}"
            for v in fresh:
                known[v] = len(known)
            parts.append(np.array([known[v] for v in row_values], dtype=np.int64)[row_codes])
        parts.append(np.maximum(label, 0))  # an unknown label (-1) is reported below: any code will do
        codes.append(_combine(parts, combos))
        offset += size

    n = offset
    index = _HashIndex([first_hashes.done(), second_hashes.done()])
    del first_hashes, second_hashes
    blank_rows = _concat(blank_rows, np.zeros(0, np.int64))
    reader = _IdReader(table, split.id_column, as_float[split.id_column],
                       pa.chunked_array(ids, type=pa.string()) if ids is not None and n else None)
    duplicate = index.first_duplicate(skip=blank_rows)
    if blank_rows.size and (duplicate is None or blank_rows[0] < duplicate[0]):
        raise DataError(f"{path}: row {int(blank_rows[0]) + 1}: field '{split.id_column}': expected a sample id, "
                        "found an empty value")
    if duplicate is not None:
        row, first = duplicate
        raise DataError(f"{path}: row {row + 1} (id '{reader.id_at(row)}'): duplicate sample id (first seen in row "
                        f"{first + 1})")
    if not n:
        raise DataError(f"{path}: expected at least one sample (a row below the header), found none")
    for problem in (first_row_problem, outside, *[bad_value.get(a.name) for a in card.attributes]):
        if problem is not None:
            raise DataError(problem)

    # the combinations' raw values, per attribute (an attribute reads its column's dictionary)
    value_of = {c: list(values[c]) for c in attr_columns}
    keys = sorted(combos, key=combos.get)
    frame = pd.DataFrame({
        attr.name: pd.Series([value_of[attr.column][key[attr_columns.index(attr.column)]] for key in keys],
                             dtype=object)
        for attr in card.attributes
    })
    frame["label"] = np.array([key[-1] for key in keys], dtype=np.int64)
    image_paths = None
    if reader.kept is not None:  # at most keep_samples_up_to samples: their ids and image paths are kept
        image_paths = [""] * n if split.image_column is None else [p for part in paths for p in part]
    _release_arrow_memory()
    return ManifestCodes(n=n, combos=frame, code=codes.done(), ids=reader, image_paths=image_paths,
                         source=str(path), index=index)


def _combine(parts: list[np.ndarray], combos: dict) -> np.ndarray:
    """Each row's combination code, for rows given as one code array per column (``combos`` maps a tuple of
    codes to its combination code and grows with new combinations)."""
    dims = [int(p.max()) + 1 for p in parts]
    if math.prod(dims) > 1 << 24:  # many distinct values: the tuples themselves
        unique, inverse = np.unique(np.stack(parts, axis=1), axis=0, return_inverse=True)
        code_of = np.array([combos.setdefault(tuple(int(x) for x in u), len(combos)) for u in unique], dtype=np.int32)
        return code_of[inverse.reshape(-1)]
    key = np.ravel_multi_index(parts, dims)
    seen = np.flatnonzero(np.bincount(key, minlength=math.prod(dims)))
    lookup = np.zeros(math.prod(dims), dtype=np.int32)
    for k, combo in zip(seen, zip(*np.unravel_index(seen, dims))):
        lookup[k] = combos.setdefault(tuple(int(x) for x in combo), len(combos))
    return lookup[key]


def _concat(chunks: list, empty):
    return np.concatenate(chunks) if chunks else empty


class _Growing:
    """A 1-d array filled a batch at a time: preallocated when the row count is known (Parquet), else the
    batches joined at the end (CSV)."""

    def __init__(self, dtype, rows: int | None):
        self.dtype, self.size = dtype, 0
        self.array = np.empty(rows, dtype=dtype) if rows is not None else None
        self.parts: list = []

    def append(self, values: np.ndarray) -> None:
        if self.array is not None and self.size + len(values) <= len(self.array):
            self.array[self.size:self.size + len(values)] = values
        else:
            if self.array is not None:  # more rows than the metadata said: keep what is there as a part
                self.parts, self.array = [self.array[:self.size]], None
            self.parts.append(np.asarray(values, dtype=self.dtype))
        self.size += len(values)

    def done(self) -> np.ndarray:
        """The array (handed over: this object no longer holds it)."""
        array, parts, self.array, self.parts = self.array, self.parts, None, []
        if array is not None:
            return array if self.size == len(array) else array[:self.size].copy()
        return _concat(parts, np.zeros(0, self.dtype))
