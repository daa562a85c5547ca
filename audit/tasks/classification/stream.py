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
    ids : _IdReader
        Each sample's id by row (``ids.id_at(row)``): held in memory with the per-sample tables, else
        read again from the manifest for a message.
    image_paths : list of str, optional
        Each sample's image path (joined to the image root; ``""`` without an image column), kept only
        with the per-sample tables (``n`` at most :data:`SAMPLE_DETAIL_LIMIT`).
    source : str
        The manifest, for messages.
    index : _HashIndex
        The ids' two 64-bit hashes: the join's index.
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

    from ...core.inference import file_sha256

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
        self.rows = None  # known up front for a Parquet file
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
                self.rows = self._file.metadata.num_rows
        except Exception as exc:  # noqa: BLE001 - pyarrow raises many types for files it cannot read
            if self.directory:
                raise PredictionError(f"{path}: cannot read predictions: {' '.join(str(exc).split())}") from None
            raise NotStreamable(f"pyarrow cannot read {path}: {' '.join(str(exc).split())}") from None
        self.names = [str(n) for n in self.schema.names]
        if len(set(self.names)) != len(self.names) or "" in self.names:
            raise NotStreamable(f"{path}: duplicated or empty column names")

    def pandas_float(self, column: str) -> bool:
        """Whether pandas reads this column as floats though it holds integers (a single Parquet file's
        integer column with a missing value: ``1`` then reads as ``1.0``)."""
        import pyarrow as pa

        if self.csv or self.directory or not pa.types.is_integer(self.schema.field(column).type):
            return False
        meta = self._file.metadata
        leaf = [meta.schema.column(i).path for i in range(meta.num_columns)].index(column)
        total = 0
        for g in range(meta.num_row_groups):
            stats = meta.row_group(g).column(leaf).statistics
            if stats is None or not stats.has_null_count:  # no statistics: read the column once
                return self._file.read(columns=[column]).column(0).null_count > 0
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
    from ...core.data import _require_columns
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
    _require_columns(pd.DataFrame(columns=table.names), path, card, declared)
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


class _HashIndex:
    """The ids' two 64-bit hashes, sorted, with a bucket table on the first one's top bits.

    Two ids match when both hashes do (two different ids share both with probability 2**-128). A binary
    search over millions of hashes misses the cache at every step; the first hash's top ``bits`` bits address
    a bucket directly (``bounds[b]:bounds[b + 1]`` of the sorted hashes, about one entry each).
    """

    def __init__(self, hashes: list):
        """``hashes``: ``[first, second]``, each sample's two hashes in row order (the list is emptied, so that
        the unsorted arrays are freed as soon as they are sorted)."""
        second = hashes.pop()
        first = hashes.pop()
        n = len(first)
        order = np.argsort(first, kind="stable")
        self.first = first[order]
        del first
        self.second = second[order]
        del second
        self.order = order.astype(np.int32 if n < 2**31 else np.int64)  # row of each sorted entry
        del order
        self.bits = max(1, min(30, math.ceil(math.log2(max(n, 2)))))
        self.shift = np.uint64(64 - self.bits)
        buckets = 1 << self.bits
        self.bounds = np.empty(buckets + 1, dtype=np.int32 if n < 2**31 else np.int64)
        for start in range(0, buckets, _CHUNK):  # where each bucket starts, a chunk of buckets at a time
            lowest = np.arange(start, min(buckets, start + _CHUNK), dtype=np.uint64) << self.shift
            self.bounds[start:start + lowest.size] = np.searchsorted(self.first, lowest)
        self.bounds[buckets] = n

    def find(self, first: np.ndarray, second: np.ndarray) -> np.ndarray:
        """The row of each id given by its two hashes, -1 where no sample has it."""
        bucket = (first >> self.shift).astype(np.intp)
        at = self.bounds[bucket].astype(np.intp)
        end = self.bounds[bucket + 1]
        found = np.full(first.size, -1, dtype=np.intp)
        active = np.flatnonzero(at < end)
        while active.size:  # a bucket is sorted: step through it until the hash or a larger one
            where = at[active]
            value = self.first[where]
            hit = (value == first[active]) & (self.second[where] == second[active])
            found[active[hit]] = where[hit]
            active = active[~hit & (value <= first[active]) & (where + 1 < end[active])]
            at[active] += 1
        rows = np.full(first.size, -1, dtype=np.int64)
        rows[found >= 0] = self.order[found[found >= 0]]
        return rows

    def first_duplicate(self, *, skip: np.ndarray) -> tuple[int, int] | None:
        """``(row, first row)`` (from 0) of the first row whose id an earlier row has, or None; rows in
        ``skip`` (blank ids) left out."""
        return _first_repeat(self.first, self.second, self.order, skip=skip)


def _first_repeat(first, second, order, *, skip=None) -> tuple[int, int] | None:
    """``(row, first row)`` of the first row whose pair of hashes an earlier row has (``first`` sorted,
    ``order`` the row of each entry), or None."""
    same = np.flatnonzero(first[1:] == first[:-1])
    if not same.size:
        return None
    member = np.unique(np.concatenate([same, same + 1]))  # entries whose first hash another entry shares
    h1, h2, row = first[member], second[member], order[member].astype(np.int64)
    if skip is not None and skip.size:
        kept = ~np.isin(row, skip)
        h1, h2, row = h1[kept], h2[kept], row[kept]
    o = np.lexsort((row, h2, h1))
    h1, h2, row = h1[o], h2[o], row[o]
    again = np.flatnonzero((h1[1:] == h1[:-1]) & (h2[1:] == h2[:-1])) + 1  # a repeat of the entry before it
    if not again.size:
        return None
    start = np.ones(len(row), dtype=bool)
    start[again] = False
    first_of_run = row[np.maximum.accumulate(np.where(start, np.arange(len(row)), 0))]
    k = again[int(np.argmin(row[again]))]
    return int(row[k]), int(first_of_run[k])


class _IdReader:
    """A table's ids by row: from memory when kept (``kept``), else read again from the file (for messages)."""

    def __init__(self, table, column: str, as_float: bool, kept=None):
        self.table, self.column, self.as_float, self.kept = table, column, as_float, kept

    def _batches(self):
        offset = 0
        for batch in self.table.batches([self.column]):
            yield offset, _strings(batch.column(0), as_float=self.as_float)
            offset += batch.num_rows

    def id_at(self, row: int) -> str:
        """The id of one row (from 0)."""
        if self.kept is not None:
            return self.kept[int(row)].as_py()
        for offset, sid in self._batches():
            if offset <= row < offset + len(sid):
                return sid[int(row) - offset].as_py()
        raise IndexError(row)

    def smallest(self, rows: np.ndarray, k: int) -> list[str]:
        """The ``k`` smallest ids (code point order, as Python sorts) of ``rows`` (sorted, from 0)."""
        import pyarrow as pa

        if self.kept is not None:
            return _smallest(self.kept.take(pa.array(rows)), k)
        best: list[str] = []
        for offset, sid in self._batches():
            here = rows[(rows >= offset) & (rows < offset + len(sid))] - offset
            if here.size:
                best = sorted(set(best) | set(_smallest(sid.take(pa.array(here)), k)))[:k]
        return best


def _hashes(strings) -> tuple[np.ndarray, np.ndarray]:
    """Two independent 64-bit hashes of each string (pandas' SipHash under two keys)."""
    values = strings.to_numpy(zero_copy_only=False)
    return (pd.util.hash_array(values, categorize=False),
            pd.util.hash_array(values, hash_key="audit-id-hash-02", categorize=False))


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


def _release_arrow_memory() -> None:
    """Hand the memory pyarrow's allocator keeps for reuse back to the system (record batches are done)."""
    import pyarrow as pa

    pa.default_memory_pool().release_unused()


# ---------------------------------------------------------------------------------------------------------
# The predictions file
# ---------------------------------------------------------------------------------------------------------


def read_predictions(path, manifest: ManifestCodes, *, classes, id_column: str = "sample_id") -> SplitCounts:
    """Read predictions made elsewhere in record batches, join them to the split and count per cell.

    The file (CSV or Parquet, or a directory of Parquet files) is what
    :func:`audit.core.inference.load_predictions_file` reads: the data card's id column (or ``sample_id``), and
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
        What :func:`audit.core.inference.load_predictions_file` raises for the same file, with the same message.
    NotStreamable
        A file pyarrow does not read as pandas does.
    """
    from ...core.inference import score_columns
    from ...core.model_spec import shown

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
    pred_col = pred_col if schema_problem is None else None
    columns = [column, *(score_cols if scored else []), *([pred_col] if pred_col else [])]
    options = {"column": column, "classes": classes, "score_cols": score_cols, "scored": scored,
               "pred_col": pred_col, "schema_problem": schema_problem}
    try:
        return _join(path, table, manifest, list(dict.fromkeys(columns)), numbers_as_text=False, **options)
    except _RetryAsText:  # a CSV score cell that is not a float: read the scores as text, as pandas does
        return _join(path, table, manifest, list(dict.fromkeys(columns)), numbers_as_text=True, **options)


class _RetryAsText(Exception):
    pass


def _join(path, table, manifest, columns, *, column, classes, score_cols, scored, pred_col, schema_problem,
          numbers_as_text) -> SplitCounts:
    import pyarrow as pa

    from ...core.inference import NOT_A_LABEL, _sample, parse_label
    from ...core.model_spec import shown

    n, n_classes = manifest.n, len(classes)
    id_as_float = table.pandas_float(column)
    types = {c: (pa.string() if numbers_as_text else pa.float64()) for c in score_cols} if scored else {}
    score_dtype = np.float64
    if scored and not table.csv and all(pa.types.is_float32(_plain_type(table.schema.field(c).type))
                                        for c in score_cols):
        score_dtype = np.float32  # a float32 file stays float32 (exact as float64 later)
    scores = np.full((n, n_classes), np.nan, dtype=score_dtype) if scored else None
    pred = np.full(n, -1, dtype=np.int8 if n_classes < 127 else np.int32)
    first_row = np.full(n, -1, dtype=np.int32 if n < 2**31 else np.int64)  # the predictions row naming each sample
    class_index = {name: i for i, name in enumerate(classes)}
    pred_kind = _CsvKind() if table.csv and pred_col else None

    first_blank = None
    duplicate = None  # (row, first row, id) of a split id named twice
    extra_first, extra_second, extra_rows, extra_count, extra_smallest = [], [], [], 0, []
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
        first, second = _hashes(sid)
        candidate = manifest.index.find(first, second)
        hit = ~blank & (candidate >= 0)
        extra = np.flatnonzero(~blank & ~hit)
        if extra.size:
            extra_first.append(first[extra])
            extra_second.append(second[extra])
            extra_rows.append(offset + extra)
            extra_count += extra.size
            extra_smallest = sorted(set(extra_smallest) | set(_smallest(sid.take(pa.array(extra)), 5)))[:5]
        rows = np.flatnonzero(hit)
        positions = candidate[rows]
        # a split id named twice: before this batch, or twice within it
        seen_before = first_row[positions] >= 0
        by_position = np.argsort(positions, kind="stable")
        again = np.zeros(rows.size, dtype=bool)
        again[by_position[1:]] = positions[by_position[1:]] == positions[by_position[:-1]]
        twice = seen_before | again
        if twice.any() and duplicate is None:
            i = int(np.flatnonzero(twice)[0])
            p = int(positions[i])
            earlier = int(first_row[p]) if seen_before[i] else offset + int(rows[np.flatnonzero(positions == p)[0]])
            duplicate = (offset + int(rows[i]), earlier, sid[int(rows[i])].as_py())
        rows, positions = rows[~twice], positions[~twice]
        first_row[positions] = offset + rows
        if rows.size:
            take = pa.array(rows)
            for j, c in enumerate(score_cols if scored else ()):
                values, problem = _numbers(col[c].take(take), positions)
                scores[positions, j] = values
                if problem is not None and (j not in not_numbers or problem[0] < not_numbers[j][0]):
                    not_numbers[j] = problem
            if pred_col is not None:
                codes, values = _encode(col[pred_col].take(take), as_float=table.pandas_float(pred_col))
                if pred_kind is not None:
                    pred_kind.update(values)
                parsed = np.array([parse_label(v, class_index) for v in values], dtype=np.int64)
                pred[positions] = np.where(parsed == NOT_A_LABEL, -1, parsed)[codes]
                bad = parsed[codes] == NOT_A_LABEL
                if bad.any():
                    i = int(np.argmin(np.where(bad, positions, np.iinfo(np.int64).max)))
                    if bad_pred is None or positions[i] < bad_pred[0]:
                        bad_pred = (int(positions[i]), values[codes[i]])
        offset += size

    # the checks, in the order of the row-by-row loader
    if first_blank is not None:
        raise PredictionError(f"{path}: row {first_blank}: field '{column}': expected a sample id, found an empty value")
    if extra_rows:  # an id not in the split, named twice
        rows = np.concatenate(extra_rows)
        order = np.argsort(np.concatenate(extra_first), kind="stable")
        repeat = _first_repeat(np.concatenate(extra_first)[order], np.concatenate(extra_second)[order], rows[order])
        if repeat is not None and (duplicate is None or repeat[0] < duplicate[0]):
            reader = _IdReader(table, column, id_as_float)
            duplicate = (repeat[0], repeat[1], reader.id_at(repeat[0]))
    if duplicate is not None:
        row, earlier, sid = duplicate
        raise PredictionError(f"{path}: row {row + 1} (id '{sid}'): duplicate sample id (first seen in row "
                              f"{earlier + 1})")
    missing = np.flatnonzero(first_row < 0)
    if missing.size or extra_count:
        parts = []
        if missing.size:
            shown_missing = manifest.ids.smallest(missing, 5)
            parts.append(f"{missing.size} split ids missing ({_shown_sample(_sample, shown_missing, missing.size)})")
        if extra_count:
            parts.append(f"{extra_count} ids not in the split ({_shown_sample(_sample, extra_smallest, extra_count)})")
        raise PredictionError(f"{path}: sample ids do not match the split: {'; '.join(parts)}")
    if schema_problem is not None:
        raise PredictionError(schema_problem)
    if not_numbers:
        position, text = not_numbers[min(not_numbers)]
        raise PredictionError(f"{path}: score columns must be numbers: Unable to parse string '{text}' at position "
                              f"{position}")
    if scored:
        _check_probabilities(scores, score_cols, manifest.ids.id_at, path)
    if bad_pred is not None:
        position, value = bad_pred
        shown_value = pred_kind.shown(value) if pred_kind is not None else repr(value)
        raise PredictionError(
            f"{path}: sample '{manifest.ids.id_at(position)}': field '{pred_col}': expected a class name "
            f"({shown(classes)}) or index 0..{len(classes) - 1}, found {shown_value}")
    if pred_col is None:  # the argmax of complete scores; a sample without scores abstains
        for start in range(0, n, _CHUNK):
            part = scores[start:start + _CHUNK]
            complete = ~np.isnan(part).any(axis=1)
            pred[start:start + _CHUNK] = np.where(complete, np.argmax(np.where(complete[:, None], part, 0), axis=1), -1)
    del first_row
    _release_arrow_memory()
    return _counts(manifest, pred, scores, classes, score_cols, scored)


def _plain_type(kind):
    import pyarrow as pa

    return kind.value_type if pa.types.is_dictionary(kind) else kind


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


def _check_probabilities(scores, columns, id_at, path) -> None:
    """:func:`audit.core.inference._check_probabilities` over the whole split, a chunk at a time (bounded
    temporaries): the first offending sample in split order, every chunk's values before any chunk's sums,
    as over the whole array at once (``id_at(row)`` names it)."""
    from ...core.inference import _check_probabilities as check

    for sums in (False, True):
        for start in range(0, len(scores), _CHUNK):
            check(np.asarray(scores[start:start + _CHUNK], dtype=float), columns, _Offset(id_at, start), path,
                  sums=sums)


class _Offset:
    """``ids[r]`` for row ``r`` of a chunk starting at ``start``."""

    def __init__(self, id_at, start: int):
        self.id_at, self.start = id_at, start

    def __getitem__(self, row: int) -> str:
        return self.id_at(self.start + int(row))


def _smallest(strings, k: int) -> list[str]:
    """The ``k`` smallest strings (code point order, as Python sorts them)."""
    import pyarrow.compute as pc

    if len(strings) <= k:
        return sorted(strings.to_pylist())
    return sorted(pc.take(strings, pc.select_k_unstable(strings, k=k, sort_keys=[("dummy", "ascending")])).to_pylist())


def _shown_sample(sample, smallest: list[str], count: int) -> str:
    """:func:`audit.core.inference._sample`'s text for ``count`` ids whose ``k`` smallest are ``smallest``."""
    text = sample(smallest)
    return text + (f" and {count - len(smallest)} more" if count > len(smallest) else "")


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
        samples = pd.DataFrame({"sample_id": manifest.ids.kept.to_pylist(), "image_path": manifest.image_paths,
                                "label": label[rows]})
        for j, c in enumerate(score_cols if scored else []):
            samples[c] = scores[:, j].astype(float)
        samples["pred"] = pred.astype(np.int64)
    else:
        log.warning("predictions: %d samples, more than %d: per-sample tables (samples.parquet, the report's worst "
                    "errors, threshold sweep and thumbnails) are left out", n, SAMPLE_DETAIL_LIMIT)
    return SplitCounts(cells=cells, label=label, pred=(present % width - 1).astype(np.int64), count=count[present],
                       n_samples=n, rows=rows, scores=scores, samples=samples, source=manifest.source)
