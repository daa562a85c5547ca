"""The split as the streaming reader holds it: per-sample codes, the ids' hash index, per-cell counts.

:class:`ManifestCodes` is the split after the manifest pass (:func:`audit.tasks.classification.stream.read_split`):
each sample's (attributes, label) combination code and two 64-bit hashes of its id, sorted into a
:class:`_HashIndex` that the predictions file is joined on; :class:`_IdReader` names a sample by its row.
:class:`SplitCounts` is the split after the join
(:func:`audit.tasks.classification._predictions_join.read_predictions`): the engine's per-cell counts.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ._record_batches import _smallest, _strings

__all__ = ["ManifestCodes", "SAMPLE_DETAIL_LIMIT", "SplitCounts"]

SAMPLE_DETAIL_LIMIT = 1_000_000  # keep per-sample tables (samples.parquet, worst errors, thumbnails) up to here
_CHUNK = 1 << 20  # samples per step of the whole-split passes (bounded temporaries)


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
