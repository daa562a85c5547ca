"""Predictions made elsewhere, streamed: a split and its predictions file reduced to per-cell counts.

A rate metric depends on the samples only through the counts per (attribute values, true class, predicted
class), so an audit of a predictions file need not hold a table of strings per sample. :func:`read_split`
reads the data card's manifest in record batches (pyarrow: a Parquet file, or a CSV file through pyarrow's
streaming CSV reader), dictionary-encodes each attribute and the label batch by batch into value dictionaries
that grow across batches, and keeps per sample only the code of its (attributes, label) combination, its id
and a 64-bit hash of the id. :func:`read_predictions` then reads the predictions file (a CSV or Parquet file,
or a directory of Parquet files: a dataset) in record batches, joins each batch to the split on the id hash
(the ids themselves compared, so a hash collision cannot join the wrong sample), and keeps per sample only its
predicted class (one or two bytes) and, when the file has them, its class scores (score metrics need every
sample's scores). The result, :class:`SplitCounts`, is what :func:`audit.stats.audit_classification` takes:
the distinct cells with their counts, and each scored sample's cell.

Memory: per sample the id (its UTF-8 bytes and a 4-byte offset), 8 bytes of hash, 4 of sort order, 4 of
cell code, 4 for the first predictions row that named it and 1-2 of prediction, whatever the file's other
columns; plus the scores when there are any. Up to :data:`SAMPLE_DETAIL_LIMIT` samples the per-sample tables
the report and ``audit compare`` read (``samples.parquet``, the worst errors, the threshold sweep,
thumbnails) are kept too; above it they are left out, and the log says so.

Validation is the row-by-row loaders' (:func:`audit.data.load_split`,
:func:`audit.inference.load_predictions_file`), message for message and in the same order: when a file has
several problems, the one reported is the one the row-by-row loader reports (the first row in file order for
the manifest and the predictions file's ids; the first sample in split order for its values). What pyarrow
cannot read as pandas does (a ragged CSV row, a duplicated column name, an image-folder split, nested
columns) raises :class:`NotStreamable`, and the caller reads those files row by row instead.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ...errors import DataError, PredictionError

__all__ = ["BATCH_ROWS", "ManifestCodes", "NotStreamable", "SAMPLE_DETAIL_LIMIT", "SplitCounts", "predictions_sha256",
           "read_predictions", "read_split"]

log = logging.getLogger("audit")

BATCH_ROWS = 65_536  # rows per record batch (Parquet); CSV batches are blocks of CSV_BLOCK_BYTES
CSV_BLOCK_BYTES = 4 << 20
SAMPLE_DETAIL_LIMIT = 1_000_000  # keep per-sample tables (samples.parquet, worst errors, thumbnails) up to here
_CHUNK = 1 << 20  # samples per step of the whole-split passes (bounded temporaries)


class NotStreamable(Exception):
    """Files the streaming reader does not read as pandas would: the caller reads them row by row instead."""


@dataclass
class ManifestCodes:
    """The split after the manifest pass: per sample a cell code and its id; per cell the raw values.

    Attributes
    ----------
    n : int
        Samples, in manifest order (the split's order).
    combos : DataFrame
        One row per distinct (attribute values, label): one column per attribute (named after it, raw
        values, None where missing) and ``label`` (class index).
    code : ndarray of int32, shape (n,)
        Each sample's row of ``combos``.
    ids : pyarrow.ChunkedArray of string
        Each sample's id.
    image_paths : list of str, optional
        Each sample's image path (joined to the image root; ``""`` without an image column), kept only
        when per-sample tables are (``n`` at most :data:`SAMPLE_DETAIL_LIMIT`).
    source : str
        The manifest, for messages.
    index : _HashIndex
        The ids' 64-bit hashes: the join's index.
    """

    n: int
    combos: pd.DataFrame
    code: np.ndarray
    ids: object
    image_paths: list | None
    source: str
    index: object

    @property
    def groups(self) -> pd.DataFrame:
        """The attribute columns of ``combos``: one row per distinct combination, raw values."""
        return self.combos.drop(columns="label")


@dataclass
class SplitCounts:
    """A split and its predictions as per-cell counts: the engine's sufficient statistics.

    Attributes
    ----------
    cells : DataFrame
        One row per distinct (attribute values, true class, predicted class), one column per attribute
        (named after it; raw values, None where missing).
    label, pred, count : ndarray of int64
        True class, predicted class (-1: abstention) and number of samples of each row of ``cells``.
    n_samples : int
        ``count.sum()``.
    rows : ndarray of int64, optional
        Each sample's row of ``cells``, in split order; kept with scores or per-sample tables.
    scores : ndarray, shape (n_samples, n_classes), optional
        Class scores in split order when the file has them (NaN for an abstention).
    samples : DataFrame, optional
        Per sample, in split order: ``sample_id``, ``image_path`` (``""`` without an image column),
        ``label``, ``score_<class>`` when the file has scores, and ``pred``. None above
        :data:`SAMPLE_DETAIL_LIMIT` samples.
    source : str
        The manifest.
    """

    cells: pd.DataFrame
    label: np.ndarray
    pred: np.ndarray
    count: np.ndarray
    n_samples: int
    rows: np.ndarray | None
    scores: np.ndarray | None
    samples: pd.DataFrame | None
    source: str


def predictions_sha256(path) -> str:
    """SHA-256 of a predictions file's bytes; of a directory (a Parquet dataset), of its files' relative paths
    and SHA-256 hashes, in path order."""
    import hashlib

    from ...inference import file_sha256

    path = Path(path)
    if not path.is_dir():
        return file_sha256(path)
    digest = hashlib.sha256()
    for file in sorted(p for p in path.rglob("*") if p.is_file()):
        digest.update(f"{file.relative_to(path).as_posix()}\0{file_sha256(file)}\n".encode())
    return digest.hexdigest()


# ---------------------------------------------------------------------------------------------------------
# Reading tables in record batches
# ---------------------------------------------------------------------------------------------------------


def _pandas_na_values() -> list[str]:
    """The strings :func:`pandas.read_csv` reads as missing by default."""
    from pandas._libs.parsers import STR_NA_VALUES

    return sorted(STR_NA_VALUES)


class _Table:
    """A CSV or Parquet file, or a directory of Parquet files, read in record batches of chosen columns.

    ``csv_nulls`` are the CSV cells read as missing (as the pandas reader the row-by-row loader uses).
    """

    def __init__(self, path: Path, *, csv_nulls: list[str]):
        import pyarrow.parquet as pq

        self.path = path
        self.directory = path.is_dir()
        self.csv = not self.directory and path.suffix.lower() != ".parquet"
        self.csv_nulls = csv_nulls
        try:
            if self.directory:
                import pyarrow.dataset as ds

                self._dataset = ds.dataset(str(path), format="parquet")
                self.fragments = sorted(self._dataset.get_fragments(), key=lambda f: f.path)
                self.schema = self._dataset.schema
            elif self.csv:
                import pyarrow.csv as pcsv

                reader = pcsv.open_csv(str(path), read_options=pcsv.ReadOptions(block_size=CSV_BLOCK_BYTES),
                                       convert_options=pcsv.ConvertOptions(column_types={}, null_values=csv_nulls,
                                                                           strings_can_be_null=True))
                self.schema = reader.schema
                reader.close()
            else:
                self._file = pq.ParquetFile(str(path))
                self.schema = self._file.schema_arrow
        except Exception as exc:  # noqa: BLE001 - pyarrow raises many types for files it cannot read
            if self.directory:
                raise PredictionError(f"{path}: cannot read predictions: {' '.join(str(exc).split())}") from None
            raise NotStreamable(f"pyarrow cannot read {path}: {' '.join(str(exc).split())}") from None
        self.names = [str(n) for n in self.schema.names]
        if len(set(self.names)) != len(self.names) or "" in self.names:
            raise NotStreamable(f"{path}: duplicated or empty column names")

    def is_string(self, column: str) -> bool:
        import pyarrow as pa

        kind = self.schema.field(column).type
        if pa.types.is_dictionary(kind):
            kind = kind.value_type
        return self.csv or pa.types.is_string(kind) or pa.types.is_large_string(kind)

    def pandas_float(self, column: str) -> bool:
        """Whether pandas reads this column as floats though it holds integers (a single Parquet file's
        integer column with a missing value: ``1`` then reads as ``1.0``)."""
        import pyarrow as pa

        if self.csv or self.directory or not pa.types.is_integer(self.schema.field(column).type):
            return False
        meta = self._file.metadata
        index = self._file.schema_arrow.get_field_index(column)
        leaf = [meta.schema.column(i).path for i in range(meta.num_columns)].index(column)
        total = 0
        for g in range(meta.num_row_groups):
            stats = meta.row_group(g).column(leaf).statistics
            if stats is None or not stats.has_null_count:
                return self._file.read(columns=[column]).column(0).null_count > 0 if index >= 0 else False
            total += stats.null_count
        return total > 0

    def batches(self, columns: list[str], *, types: dict | None = None):
        """Record batches of ``columns`` (CSV: read as ``types``, strings by default), in file order."""
        import pyarrow as pa

        try:
            if self.csv:
                import pyarrow.csv as pcsv

                kinds = {c: (types or {}).get(c, pa.string()) for c in columns}
                reader = pcsv.open_csv(
                    str(self.path), read_options=pcsv.ReadOptions(block_size=CSV_BLOCK_BYTES),
                    convert_options=pcsv.ConvertOptions(column_types=kinds, include_columns=columns,
                                                        null_values=self.csv_nulls, strings_can_be_null=True))
                yield from reader
            elif self.directory:
                for fragment in self.fragments:
                    yield from fragment.to_batches(schema=self.schema, columns=columns, batch_size=BATCH_ROWS)
            else:
                yield from self._file.iter_batches(batch_size=BATCH_ROWS, columns=columns)
        except (pa.ArrowException, OSError) as exc:
            if self.directory:
                raise PredictionError(f"{self.path}: cannot read predictions: {' '.join(str(exc).split())}") from None
            raise NotStreamable(f"pyarrow cannot read {self.path}: {' '.join(str(exc).split())}") from None


def _plain(array):
    """A dictionary-encoded array decoded; any other array as it is."""
    import pyarrow as pa

    return array.dictionary_decode() if pa.types.is_dictionary(array.type) else array


def _python_values(array, *, as_float: bool) -> list:
    """Values as the pandas reader hands them to the row-by-row loader: None for missing (and NaN), floats for
    an integer column pandas reads as floats."""
    import pyarrow as pa

    kind = array.type
    if pa.types.is_nested(kind) or pa.types.is_dictionary(kind):
        raise NotStreamable(f"a column of type {kind}")
    values = array.to_pylist()
    if pa.types.is_floating(kind):
        return [None if v is None or math.isnan(v) else v for v in values]
    if as_float:
        return [None if v is None else float(v) for v in values]
    return values


def _strings(array, *, as_float: bool = False):
    """``str(value)`` of each value as a pyarrow string array, null where the row-by-row loader sees a missing
    value (the ids and labels of a table)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    array = _plain(array)
    kind = array.type
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        return array
    if pa.types.is_integer(kind) and not as_float:
        return pc.cast(array, pa.string())
    return pa.array([None if v is None else str(v) for v in _python_values(array, as_float=as_float)],
                    type=pa.string())


def _encode(array, *, as_float: bool = False) -> tuple[np.ndarray, list]:
    """Dictionary-encode one batch's column: each row's code into the returned values (None for missing)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    array = _plain(array)
    if pa.types.is_nested(array.type):
        raise NotStreamable(f"a column of type {array.type}")
    encoded = pc.dictionary_encode(array)
    values = _python_values(encoded.dictionary, as_float=as_float)
    indices = encoded.indices
    if indices.null_count:  # missing values: one more entry, None
        indices = pc.fill_null(indices, len(values))
        values = values + [None]
    return np.asarray(indices.to_numpy(zero_copy_only=False), dtype=np.int64), values


def _blank(strings) -> np.ndarray:
    """Rows whose value is missing or only whitespace (``str(value).strip() == ""``)."""
    import pyarrow.compute as pc

    blank = pc.or_(pc.equal(pc.utf8_length(strings), 0), pc.utf8_is_space(strings))
    return np.asarray(pc.fill_null(blank, True).to_numpy(zero_copy_only=False), dtype=bool)


def _hash(strings) -> np.ndarray:
    """64-bit hashes of strings (pandas' SipHash; nulls hash as None)."""
    return pd.util.hash_array(strings.to_numpy(zero_copy_only=False), categorize=False)


def _concat(chunks: list, empty):
    return np.concatenate(chunks) if chunks else empty


# ---------------------------------------------------------------------------------------------------------
# The manifest
# ---------------------------------------------------------------------------------------------------------


def read_split(card, *, keep_samples_up_to: int = SAMPLE_DETAIL_LIMIT) -> ManifestCodes:
    """Read and check a data card's manifest in record batches.

    Parameters
    ----------
    card : DataCard
        A validated data card with a manifest split.
    keep_samples_up_to : int
        Keep each sample's image path when the split has at most this many samples.

    Returns
    -------
    ManifestCodes

    Raises
    ------
    DataError
        What :func:`audit.data.load_split` raises for the same manifest, with the same message.
    NotStreamable
        An image-folder split, or a manifest pyarrow does not read as pandas does.
    """
    import pyarrow as pa

    from ..._paths import Root
    from ...data import _require_columns
    from ...model_spec import shown
    from ...stats import AttributeValueError, bin_attribute

    split = card.split
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
    _require_columns(pd.DataFrame(columns=table.names), path, card, declared)
    columns = list(declared)
    as_float = {c: table.pandas_float(c) for c in columns}
    class_index = {name: i for i, name in enumerate(card.classes)}
    engine_attrs = {a.name: a.engine_attribute(column=a.name) for a in card.attributes}
    attr_columns = list(dict.fromkeys(a.column for a in card.attributes))

    values: dict[str, dict] = {c: {} for c in attr_columns}  # column -> raw value -> global code
    combos: dict[tuple, int] = {}  # (attribute codes..., label) -> combination code
    ids, hashes, codes = [], [], []
    paths: list | None = []  # the joined image paths, per batch, while per-sample tables are kept
    first_blank_id = None  # row
    first_row_problem = None  # (row, message): an empty image path or an unknown label
    outside = None  # message of the first image path outside the root
    bad_value: dict[str, tuple[int, str]] = {}  # attribute -> (row, message)
    root = None
    if split.image_column is not None:
        root = Root(card.image_root, allow_outside=card.allow_paths_outside_root)
    offset = 0
    for batch in table.batches(columns):
        size = batch.num_rows
        if not size:
            continue
        col = dict(zip(batch.schema.names, batch.columns))
        sid = _strings(col[split.id_column], as_float=as_float[split.id_column])
        blank = _blank(sid)
        if blank.any() and first_blank_id is None:
            first_blank_id = offset + int(np.argmax(blank)) + 1
        ids.append(sid.cast(pa.string()))
        hashes.append(np.where(blank, np.uint64(0), _hash(sid)))

        def where(i, sid=sid, offset=offset):
            return f"{path}: row {offset + i + 1} (id '{sid[i].as_py()}')"

        label_codes, label_values = _encode(col[card.label_column], as_float=as_float[card.label_column])
        label_of_value = np.array([class_index.get(None if v is None else str(v), -1) for v in label_values],
                                  dtype=np.int64)
        label = label_of_value[label_codes] if len(label_values) else np.zeros(size, np.int64)
        problem_rows = label < 0
        image_blank = None
        if split.image_column is not None:
            image = _strings(col[split.image_column], as_float=as_float[split.image_column])
            image_blank = _blank(image)
            problem_rows = problem_rows | image_blank
        if problem_rows.any() and first_row_problem is None:
            i = int(np.argmax(problem_rows))
            if image_blank is not None and image_blank[i]:
                message = f"{where(i)}: field '{split.image_column}': expected an image path, found an empty value"
            else:
                found = label_values[label_codes[i]]
                found = "an empty value" if found is None else repr(str(found))
                message = (f"{where(i)}: field '{card.label_column}': unknown label {found}; "
                           f"expected one of: {shown(card.classes)}")
            first_row_problem = (offset + i + 1, message)
        if split.image_column is not None and outside is None:
            try:
                joined = root.check(image.to_pylist(), where=lambda i, where=where: (
                    f"{where(i)}: field '{split.image_column}'"))
            except DataError as exc:
                outside, joined = str(exc), None
            if paths is not None and joined is not None and offset + size <= keep_samples_up_to:
                paths.append(joined)
            else:
                paths = None  # past the detail limit (or refused): the joined paths are not kept

        parts = []
        for column in attr_columns:
            row_codes, row_values = _encode(col[column], as_float=as_float[column])
            known = values[column]
            fresh = list(dict.fromkeys(v for v in row_values if v not in known))
            for attr in card.attributes:
                if attr.column != column or attr.name in bad_value or not fresh:
                    continue
                try:
                    bin_attribute(pd.Series(fresh, dtype=object), engine_attrs[attr.name])
                except AttributeValueError as exc:
                    k = row_values.index(fresh[exc.row])
                    i = int(np.argmax(row_codes == k))
                    bad_value[attr.name] = (offset + i + 1, f"{where(i)}: field '{attr.column}': {exc.detail}")
            for v in fresh:
                known[v] = len(known)
            parts.append(np.array([known[v] for v in row_values], dtype=np.int64)[row_codes])
        parts.append(label)
        codes.append(_combine(parts, combos))
        offset += size

    n = offset
    ids = pa.chunked_array(ids, type=pa.string()) if ids else pa.chunked_array([], pa.string())
    hashes = _concat(hashes, np.zeros(0, np.uint64))
    order = np.argsort(hashes, kind="stable")
    hashes = hashes[order]  # sorted
    duplicate = _first_duplicate(hashes, order, ids, skip=_blank(ids) if first_blank_id else None)
    if first_blank_id is not None and (duplicate is None or first_blank_id < duplicate[0]):
        raise DataError(f"{path}: row {first_blank_id}: field '{split.id_column}': expected a sample id, "
                        "found an empty value")
    if duplicate is not None:
        row, first, sid = duplicate
        raise DataError(f"{path}: row {row} (id '{sid}'): duplicate sample id (first seen in row {first})")
    if not n:
        raise DataError(f"{path}: expected at least one sample (a row below the header), found none")
    if first_row_problem is not None:
        raise DataError(first_row_problem[1])
    if outside is not None:
        raise DataError(outside)
    for attr in card.attributes:
        if attr.name in bad_value:
            raise DataError(bad_value[attr.name][1])

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
    if n <= keep_samples_up_to:
        image_paths = [""] * n if split.image_column is None else [p for part in paths for p in part]
    return ManifestCodes(n=n, combos=frame, code=_concat(codes, np.zeros(0, np.int32)), ids=ids,
                         image_paths=image_paths, source=str(path), index=_HashIndex(hashes, order))


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


class _HashIndex:
    """Sorted 64-bit hashes with a bucket table on their top bits: each lookup reads about one bucket.

    A binary search over millions of hashes misses the cache at every step; the hashes' top ``bits`` bits
    address a bucket directly (``bounds[b]:bounds[b + 1]`` of the sorted hashes, about one entry each).
    """

    def __init__(self, sorted_hashes: np.ndarray, order: np.ndarray):
        n = len(sorted_hashes)
        self.hashes = sorted_hashes
        self.order = order.astype(np.int32 if n < 2**31 else np.int64)
        self.bits = max(1, min(30, math.ceil(math.log2(max(n, 2)))))
        self.shift = np.uint64(64 - self.bits)
        counts = np.bincount((sorted_hashes >> self.shift).astype(np.intp), minlength=1 << self.bits)
        self.bounds = np.zeros((1 << self.bits) + 1, dtype=np.int32 if n < 2**31 else np.int64)
        np.cumsum(counts, out=self.bounds[1:])

    def find(self, hashes: np.ndarray) -> np.ndarray:
        """The row (manifest order) of each hash, -1 where no sample has it."""
        bucket = (hashes >> self.shift).astype(np.intp)
        at = self.bounds[bucket].astype(np.intp)
        end = self.bounds[bucket + 1]
        found = np.full(hashes.size, -1, dtype=np.intp)
        active = np.flatnonzero(at < end)
        while active.size:  # a bucket is sorted: step through it until the hash or a larger one
            where = at[active]
            value = self.hashes[where]
            hit = value == hashes[active]
            found[active[hit]] = where[hit]
            active = active[~hit & (value < hashes[active]) & (where + 1 < end[active])]
            at[active] += 1
        rows = np.full(hashes.size, -1, dtype=np.int64)
        rows[found >= 0] = self.order[found[found >= 0]]
        return rows


def _first_duplicate(sorted_hashes, order, ids, *, skip=None):
    """``(row, first row, id)`` of the first row whose id appeared before (rows from 1), or None.

    ``order`` sorts the rows by hash (stably, so rows of one hash ascend); equal hashes are checked on the
    ids themselves. Rows in ``skip`` (blank ids) are left out. Two different ids with one hash leave the join
    ambiguous: :class:`NotStreamable`.
    """
    import pyarrow.compute as pc

    same = np.flatnonzero(sorted_hashes[1:] == sorted_hashes[:-1])
    if not same.size:
        return None
    a, b = order[same].astype(np.int64), order[same + 1].astype(np.int64)
    if skip is not None:
        keep = ~(skip[a] | skip[b])
        a, b = a[keep], b[keep]
        if not a.size:
            return None
    equal = np.asarray(pc.equal(ids.take(a), ids.take(b)).to_numpy(zero_copy_only=False), dtype=bool)
    if not equal.all():
        raise NotStreamable("two different sample ids with the same 64-bit hash")
    # a run of k equal ids gives k - 1 pairs (first, second), (second, third), ...: the first of a run is
    # the row that first named the id
    start = np.ones(len(a), dtype=bool)
    start[1:] = a[1:] != b[:-1]
    first_of_run = a[np.maximum.accumulate(np.where(start, np.arange(len(a)), 0))]
    k = int(np.argmin(b))
    return int(b[k]) + 1, int(first_of_run[k]) + 1, ids[int(b[k])].as_py()


# ---------------------------------------------------------------------------------------------------------
# The predictions file
# ---------------------------------------------------------------------------------------------------------


def read_predictions(path, manifest: ManifestCodes, *, classes, id_column: str = "sample_id") -> SplitCounts:
    """Read predictions made elsewhere in record batches, join them to the split and count per cell.

    The file (CSV or Parquet, or a directory of Parquet files) is what
    :func:`audit.inference.load_predictions_file` reads: the data card's id column (or ``sample_id``), and
    either one ``score_<class>`` column per class (probabilities) or a ``pred`` / ``predicted_label`` column
    (a class name or index; empty: an abstention), or both.

    Parameters
    ----------
    path : str or Path
        The file, or a directory of Parquet files.
    manifest : ManifestCodes
        The split (:func:`read_split`).
    classes : list of str
        The data card's classes.
    id_column : str
        The data card's ``split.id_column``.

    Returns
    -------
    SplitCounts

    Raises
    ------
    PredictionError
        What :func:`audit.inference.load_predictions_file` raises for the same file, with the same message.
    NotStreamable
        A file pyarrow does not read as pandas does.
    """
    from ...inference import _sample, score_columns
    from ...model_spec import shown

    path = Path(path)
    if not path.is_dir() and not path.is_file():
        raise PredictionError(f"{path}: predictions file not found")
    table = _Table(path, csv_nulls=_pandas_na_values())
    if table.directory and not table.fragments:
        raise PredictionError(f"{path}: expected Parquet files in the directory, found none")
    names = table.names
    column = next((c for c in (id_column, "sample_id") if c in names), None)
    if column is None:
        wanted = f"'{id_column}' (the data card's split.id_column)" + (" or 'sample_id'" if id_column != "sample_id" else "")
        raise PredictionError(f"{path}: missing column {wanted}; found columns: {shown(names)}")
    score_cols = score_columns(classes)
    present = [c for c in score_cols if c in names]
    pred_col = next((c for c in ("pred", "predicted_label") if c in names), None)
    schema_problem = None
    if present and len(present) != len(score_cols):
        lacking = [c for c in score_cols if c not in names]
        schema_problem = f"{path}: expected a score column for every class, missing: {', '.join(lacking)}"
    elif not present and pred_col is None:
        schema_problem = (f"{path}: expected score_<class> columns ({shown(score_cols)}) or a 'pred' / "
                          f"'predicted_label' column; found columns: {shown(names)}")
    scored = bool(present) and schema_problem is None
    value_cols = ([*score_cols] if scored else []) + ([pred_col] if pred_col and schema_problem is None else [])
    columns = [column, *[c for c in value_cols if c != column]]
    options = {"column": column, "classes": classes, "score_cols": score_cols, "scored": scored,
               "pred_col": pred_col if schema_problem is None else None, "schema_problem": schema_problem,
               "sample": _sample}
    try:
        return _join(path, table, manifest, columns, numbers_as_text=False, **options)
    except _RetryAsText:  # a CSV score cell that is not a float: read the scores as text, as pandas does
        return _join(path, table, manifest, columns, numbers_as_text=True, **options)


class _RetryAsText(Exception):
    pass


def _join(path, table, manifest, columns, *, column, classes, score_cols, scored, pred_col, schema_problem,
          numbers_as_text, sample) -> SplitCounts:
    import pyarrow as pa
    import pyarrow.compute as pc

    from ...inference import PROBABILITY_TOLERANCE

    n, n_classes = manifest.n, len(classes)
    id_as_float = table.pandas_float(column)
    types = {c: (pa.string() if numbers_as_text else pa.float64()) for c in score_cols} if scored else {}
    score_dtype = np.float64
    if scored and not table.csv and all(pa.types.is_float32(_plain_type(table.schema.field(c).type))
                                        for c in score_cols):
        score_dtype = np.float32  # a float32 file stays float32 (exact as float64 later)
    scores = np.full((n, n_classes), np.nan, dtype=score_dtype) if scored else None
    pred_dtype = np.int8 if n_classes < 127 else (np.int16 if n_classes < 32_767 else np.int32)
    pred = np.full(n, -1, dtype=pred_dtype)
    first_row = np.full(n, -1, dtype=np.int32 if n < 2**31 else np.int64)  # predictions row naming each sample
    class_index = {name: i for i, name in enumerate(classes)}
    pred_kind = _CsvKind() if table.csv and pred_col else None

    first_blank = None
    duplicate = None  # (row, first row, id) of a split id named twice
    extra_hashes, extra_rows, extra_count, extra_smallest = [], [], 0, []
    not_numbers: dict[int, tuple[int, str]] = {}  # score column -> (split position, text)
    bad_pred = None  # (split position, value)
    offset = 0
    batches = table.batches(columns, types=types)
    while True:
        try:
            batch = next(batches)
        except StopIteration:
            break
        except NotStreamable:
            if table.csv and scored and not numbers_as_text:
                raise _RetryAsText from None
            raise
        size = batch.num_rows
        if not size:
            continue
        col = dict(zip(batch.schema.names, batch.columns))
        sid = _strings(col[column], as_float=id_as_float)
        blank = _blank(sid)
        if blank.any() and first_blank is None:
            first_blank = offset + int(np.argmax(blank)) + 1
        h = _hash(sid)
        candidate = manifest.index.find(h)
        hit = ~blank & (candidate >= 0)
        if hit.any():  # the ids themselves, so that a hash collision cannot join the wrong sample
            k = np.flatnonzero(hit)
            same = pc.equal(sid.take(pa.array(k)).cast(pa.string()), manifest.ids.take(pa.array(candidate[k])))
            hit[k] = np.asarray(pc.fill_null(same, False).to_numpy(zero_copy_only=False), dtype=bool)
        extra = ~blank & ~hit
        if extra.any():
            k = np.flatnonzero(extra)
            extra_hashes.append(h[k])
            extra_rows.append(offset + k)
            extra_count += k.size
            names = sid.take(pa.array(k))
            extra_smallest = sorted(set(extra_smallest) | set(_smallest(names, 5)))[:5]
        rows = np.flatnonzero(hit)
        positions = candidate[rows]
        # a split id named twice: before this batch, or twice within it
        seen_before = first_row[positions] >= 0
        order_in_batch = np.argsort(positions, kind="stable")
        again = np.zeros(rows.size, dtype=bool)
        again[order_in_batch[1:]] = positions[order_in_batch[1:]] == positions[order_in_batch[:-1]]
        twice = seen_before | again
        if twice.any() and duplicate is None:
            i = int(np.flatnonzero(twice)[0])
            p = int(positions[i])
            first = int(first_row[p]) if seen_before[i] else offset + int(rows[np.flatnonzero(positions == p)[0]])
            duplicate = (offset + int(rows[i]) + 1, first + 1, manifest.ids[p].as_py())
        new = ~twice
        rows, positions = rows[new], positions[new]
        first_row[positions] = offset + rows
        if rows.size:
            take = pa.array(rows)
            if scored:
                for j, c in enumerate(score_cols):
                    values, problem = _numbers(col[c].take(take), positions)
                    scores[positions, j] = values
                    if problem is not None and (j not in not_numbers or problem[0] < not_numbers[j][0]):
                        not_numbers[j] = problem
            if pred_col is not None:
                codes, values = _encode(col[pred_col].take(take), as_float=table.pandas_float(pred_col))
                if pred_kind is not None:
                    pred_kind.update(values)
                parsed = np.array([_parse_label(v, class_index) for v in values], dtype=np.int64)
                pred[positions] = np.where(parsed == _BAD, -1, parsed)[codes]
                bad = parsed[codes] == _BAD
                if bad.any():
                    i = int(np.argmin(np.where(bad, positions, np.iinfo(np.int64).max)))
                    if bad_pred is None or positions[i] < bad_pred[0]:
                        bad_pred = (int(positions[i]), values[codes[i]])
        offset += size

    # the checks, in the order of the row-by-row loader
    if first_blank is not None:
        raise PredictionError(f"{path}: row {first_blank}: field '{column}': expected a sample id, found an empty value")
    extra_duplicate = _extra_duplicate(table, column, id_as_float, extra_hashes, extra_rows)
    if duplicate is None or (extra_duplicate is not None and extra_duplicate[0] < duplicate[0]):
        duplicate = extra_duplicate
    if duplicate is not None:
        row, first, sid = duplicate
        raise PredictionError(f"{path}: row {row} (id '{sid}'): duplicate sample id (first seen in row {first})")
    missing = np.flatnonzero(first_row < 0)
    if missing.size or extra_count:
        parts = []
        if missing.size:
            shown_missing = _smallest(manifest.ids.take(pa.array(missing)), 5)
            parts.append(f"{missing.size} split ids missing ({_shown_sample(sample, shown_missing, missing.size)})")
        if extra_count:
            parts.append(f"{extra_count} ids not in the split ({_shown_sample(sample, extra_smallest, extra_count)})")
        raise PredictionError(f"{path}: sample ids do not match the split: {'; '.join(parts)}")
    if schema_problem is not None:
        raise PredictionError(schema_problem)
    if not_numbers:
        j = min(not_numbers)
        position, text = not_numbers[j]
        raise PredictionError(f"{path}: score columns must be numbers: Unable to parse string '{text}' at position "
                              f"{position}")
    if scored:
        _check_probabilities(scores, score_cols, manifest.ids, path, PROBABILITY_TOLERANCE)
    if bad_pred is not None:
        position, value = bad_pred
        shown_value = pred_kind.shown(value) if pred_kind is not None else repr(value)
        from ...model_spec import shown

        raise PredictionError(
            f"{path}: sample '{manifest.ids[position].as_py()}': field '{pred_col}': expected a class name "
            f"({shown(classes)}) or index 0..{len(classes) - 1}, found {shown_value}")
    if pred_col is None:  # the argmax of complete scores; a sample without scores abstains
        for start in range(0, n, _CHUNK):
            part = scores[start:start + _CHUNK]
            complete = ~np.isnan(part).any(axis=1)
            pred[start:start + _CHUNK] = np.where(complete, np.argmax(np.where(complete[:, None], part, 0), axis=1), -1)
    return _counts(manifest, pred, scores, classes, score_cols, scored)


def _plain_type(kind):
    import pyarrow as pa

    return kind.value_type if pa.types.is_dictionary(kind) else kind


_BAD = -2


def _parse_label(value, index: dict) -> int:
    """A predicted label as :func:`audit.inference._parse_labels` reads it: -1 for an abstention, _BAD if
    it is neither a class name nor an index."""
    if value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NA or (
            isinstance(value, str) and value.strip() == ""):
        return -1
    key = str(value).strip()
    if key in index:
        return index[key]
    try:
        number = float(key)
    except ValueError:
        number = None
    if number is not None and number.is_integer() and 0 <= int(number) < len(index):
        return int(number)
    if number is not None and number == -1:
        return -1
    return _BAD


class _CsvKind:
    """What pandas would make of a CSV column of predicted labels (ints, floats or text), for the message."""

    def __init__(self):
        self.text = self.fraction = self.missing = False

    def update(self, values):
        for v in values:
            if v is None:
                self.missing = True
                continue
            try:
                number = float(v)
            except ValueError:
                self.text = True
                continue
            try:
                int(v)
            except ValueError:
                self.fraction = self.fraction or not math.isnan(number)

    def shown(self, value) -> str:
        if self.text:
            return repr(value)
        if self.fraction or self.missing:
            return repr(float(value))
        return repr(int(value))


def _numbers(array, positions) -> tuple[np.ndarray, tuple[int, str] | None]:
    """A score column as floats (NaN for missing), and the first text that is not a number as
    ``(split position, text)``: pandas' :func:`~pandas.to_numeric` on the column in split order."""
    import pyarrow as pa

    array = _plain(array)
    if not (pa.types.is_string(array.type) or pa.types.is_large_string(array.type)):
        if not (pa.types.is_integer(array.type) or pa.types.is_floating(array.type) or pa.types.is_boolean(array.type)):
            raise NotStreamable(f"a score column of type {array.type}")
        return np.asarray(array.cast(pa.float64()).to_numpy(zero_copy_only=False), dtype=float), None
    text = array.to_numpy(zero_copy_only=False)
    values = pd.to_numeric(pd.Series(text, dtype=object), errors="coerce").to_numpy(dtype=float)
    failed = np.isnan(values) & pd.notna(text)
    if not failed.any():
        return values, None
    i = int(np.argmin(np.where(failed, positions, np.iinfo(np.int64).max)))
    return values, (int(positions[i]), str(text[i]))


def _check_probabilities(scores, columns, ids, path, tolerance) -> None:
    """:func:`audit.inference._check_probabilities` over the whole split, a chunk at a time: the first
    offending sample in split order, an empty or out-of-range value before a bad sum."""
    bad_sum = None
    for start in range(0, len(scores), _CHUNK):
        part = np.asarray(scores[start:start + _CHUNK], dtype=float)
        missing = np.isnan(part)
        partial = missing.any(axis=1) & ~missing.all(axis=1)
        bad_value = ~missing & (~np.isfinite(part) | (part < 0) | (part > 1))
        rows = np.flatnonzero(partial | bad_value.any(axis=1))
        if rows.size:
            r = int(rows[0])
            sid = ids[start + r].as_py()
            if partial[r]:
                col = columns[int(np.flatnonzero(missing[r])[0])]
                raise PredictionError(f"{path}: sample '{sid}': field '{col}': expected a probability in 0..1 for "
                                      "every class (or no scores at all: an abstention), found an empty value")
            col = int(np.flatnonzero(bad_value[r])[0])
            raise PredictionError(f"{path}: sample '{sid}': field '{columns[col]}': expected a probability in 0..1, "
                                  f"found {part[r, col]:.6g}; apply a softmax to logits first")
        if bad_sum is None:
            complete = np.flatnonzero(~missing.any(axis=1))
            sums = part[complete].sum(axis=1)
            off = np.flatnonzero(np.abs(sums - 1.0) > tolerance)
            if off.size:
                bad_sum = (start + int(complete[off[0]]), float(sums[off[0]]))
    if bad_sum is not None:
        r, total = bad_sum
        raise PredictionError(f"{path}: sample '{ids[r].as_py()}': expected class scores summing to 1 "
                              f"(probabilities), found a sum of {total:.6g}; apply a softmax to logits first")


def _smallest(strings, k: int) -> list[str]:
    """The ``k`` smallest strings (code point order, as Python sorts them)."""
    import pyarrow.compute as pc

    if len(strings) <= k:
        return sorted(strings.to_pylist())
    return sorted(pc.take(strings, pc.select_k_unstable(strings, k=k, sort_keys=[("dummy", "ascending")])).to_pylist())


def _shown_sample(sample, smallest: list[str], count: int) -> str:
    """:func:`audit.inference._sample`'s text for ``count`` ids whose ``k`` smallest are ``smallest``."""
    text = sample(smallest)
    return text + (f" and {count - len(smallest)} more" if count > len(smallest) else "")


def _extra_duplicate(table, column, as_float, extra_hashes, extra_rows):
    """``(row, first row, id)`` of the first id not in the split that the file names twice, or None (the ids
    of equal hashes are read again from the file to compare them)."""
    import pyarrow as pa

    if not extra_hashes:
        return None
    hashes, rows = np.concatenate(extra_hashes), np.concatenate(extra_rows)
    order = np.argsort(hashes, kind="stable")
    same = np.flatnonzero(hashes[order][1:] == hashes[order][:-1])
    if not same.size:
        return None
    wanted = np.unique(np.concatenate([rows[order[same]], rows[order[same + 1]]]))
    found: dict[int, str] = {}
    offset = 0
    for batch in table.batches([column]):
        k = wanted[(wanted >= offset) & (wanted < offset + batch.num_rows)]
        if k.size:
            sid = _strings(batch.column(0), as_float=as_float).take(pa.array(k - offset)).to_pylist()
            found.update(zip(k.tolist(), sid))
        offset += batch.num_rows
    best = None
    for a, b in zip(rows[order[same]], rows[order[same + 1]]):
        if found[int(a)] == found[int(b)]:
            first = min(r for r in wanted if found[int(r)] == found[int(a)])
            if best is None or b + 1 < best[0]:
                best = (int(b) + 1, int(first) + 1, found[int(b)])
    return best


def _counts(manifest: ManifestCodes, pred, scores, classes, score_cols, scored) -> SplitCounts:
    """Count the samples per (combination, prediction) and lay out the cells, each sample's cell and, up to
    the detail limit, the per-sample table."""
    n, width = manifest.n, len(classes) + 1
    keep = manifest.image_paths is not None
    count = np.zeros(len(manifest.combos) * width, dtype=np.int64)
    for start in range(0, n, _CHUNK):
        key = manifest.code[start:start + _CHUNK].astype(np.int64) * width + pred[start:start + _CHUNK] + 1
        count += np.bincount(key, minlength=count.size)
    present = np.flatnonzero(count)
    cells = manifest.groups.iloc[present // width].reset_index(drop=True)
    label = manifest.combos["label"].to_numpy()[present // width].astype(np.int64)
    rows = None
    if scored or keep:
        row_of_key = np.full(count.size, -1, dtype=np.int64)
        row_of_key[present] = np.arange(present.size)
        rows = row_of_key[manifest.code.astype(np.int64) * width + pred + 1]
    samples = None
    if keep:
        samples = pd.DataFrame({"sample_id": manifest.ids.to_pylist(), "image_path": manifest.image_paths,
                                "label": label[rows]})
        for j, c in enumerate(score_cols if scored else []):
            samples[c] = scores[:, j].astype(float)
        samples["pred"] = pred.astype(np.int64)
    else:
        log.warning("predictions: %d samples, more than %d: per-sample tables (samples.parquet, the report's worst "
                    "errors, threshold sweep and thumbnails) are left out", n, SAMPLE_DETAIL_LIMIT)
    return SplitCounts(cells=cells, label=label, pred=(present % width - 1).astype(np.int64), count=count[present],
                       n_samples=n, rows=rows, scores=scores, samples=samples, source=manifest.source)
