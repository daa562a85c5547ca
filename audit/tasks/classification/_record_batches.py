"""Reading a table in record batches as the pandas reader would: the streaming reader's file layer.

A CSV or Parquet file, or a directory of Parquet files (:class:`_Table`), read a few columns at a time with
pyarrow, and each batch's columns turned into what the row-by-row loaders see (ids and labels as strings,
values dictionary-encoded, missing values as pandas reads them). What pyarrow cannot read as pandas does
raises :class:`NotStreamable`. Used by :mod:`audit.tasks.classification.stream` (the manifest) and
:mod:`audit.tasks.classification._predictions_join` (the predictions file).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from ...errors import PredictionError

__all__ = ["BATCH_ROWS", "CSV_BLOCK_BYTES", "NotStreamable"]

BATCH_ROWS = 65_536  # rows per record batch (Parquet); CSV batches are blocks of CSV_BLOCK_BYTES
CSV_BLOCK_BYTES = 4 << 20


class NotStreamable(Exception):
    """Files the streaming reader does not read as pandas would: the caller reads them row by row instead."""


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


def _plain_type(kind):
    import pyarrow as pa

    return kind.value_type if pa.types.is_dictionary(kind) else kind


def _smallest(strings, k: int) -> list[str]:
    """The ``k`` smallest strings (code point order, as Python sorts them)."""
    import pyarrow.compute as pc

    if len(strings) <= k:
        return sorted(strings.to_pylist())
    return sorted(pc.take(strings, pc.select_k_unstable(strings, k=k, sort_keys=[("dummy", "ascending")])).to_pylist())


def _release_arrow_memory() -> None:
    """Hand the memory pyarrow's allocator keeps for reuse back to the system (record batches are done)."""
    import pyarrow as pa

    pa.default_memory_pool().release_unused()
