"""The predictions file joined to the split on the ids' hashes and counted per cell: :func:`read_predictions`.

The file is read in record batches (:mod:`audit.tasks.classification._record_batches`), each batch's ids
looked up in the split's :class:`~audit.tasks.classification._split_codes._HashIndex`, and only each sample's
predicted class (and its scores, when the file has them) kept; the checks then run in the order of the
row-by-row loader, and :func:`_counts` lays out the :class:`SplitCounts`.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path

import numpy as np
import pandas as pd

from ...errors import PredictionError
from ._record_batches import (
    NotStreamable,
    _blank,
    _encode,
    _pandas_na_values,
    _plain,
    _plain_type,
    _release_arrow_memory,
    _smallest,
    _strings,
    _Table,
)
from ._split_codes import _CHUNK, SAMPLE_DETAIL_LIMIT, ManifestCodes, SplitCounts, _first_repeat, _hashes, _IdReader

__all__ = ["read_predictions"]

log = logging.getLogger("audit")

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
        The split (:func:`audit.tasks.classification.stream.read_split`).
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

    from ...core.inference import NOT_A_LABEL, parse_label, shown_ids
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
            parts.append(f"{missing.size} split ids missing ({_shown_sample(shown_ids, shown_missing, missing.size)})")
        if extra_count:
            parts.append(f"{extra_count} ids not in the split ({_shown_sample(shown_ids, extra_smallest, extra_count)})")
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
    """:func:`audit.core.inference.check_probabilities` over the whole split, a chunk at a time (bounded
    temporaries): the first offending sample in split order, every chunk's values before any chunk's sums,
    as over the whole array at once (``id_at(row)`` names it)."""
    from ...core.inference import check_probabilities as check

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


def _shown_sample(sample, smallest: list[str], count: int) -> str:
    """:func:`audit.core.inference.shown_ids`'s text for ``count`` ids whose ``k`` smallest are ``smallest``."""
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
