"""Run a classifier over a split, cache its predictions, or read predictions made elsewhere.

A prediction table has one row per sample: ``sample_id``, one
``score_<class>`` column per data-card class (softmax probabilities, in the
data card's class order; absent when only labels are known) and ``pred``
(class index into the data card's classes, ``-1`` for an abstention).

Cache
-----
:func:`save_cache` writes ``predictions.parquet`` and ``predictions.json``
(metadata) into the output directory. The metadata records the SHA-256 of the
model (:func:`audit.core.models.fingerprint_model`) and of the data
(:func:`audit.core.data.fingerprint_split`); :func:`load_cache` returns the cached
table only when both hashes, the class list and the sample ids match.
"""

from __future__ import annotations

import hashlib
import json
import logging
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd

from .._io import atomic_write_many
from ..errors import CardError, DataError, PredictionError
from .model_spec import shown

__all__ = [
    "CACHE_META",
    "CACHE_TABLE",
    "class_permutation",
    "load_cache",
    "load_predictions_file",
    "run_inference",
    "save_cache",
    "score_columns",
]

log = logging.getLogger("audit")

CACHE_TABLE = "predictions.parquet"
CACHE_META = "predictions.json"
CACHE_VERSION = 2  # 2: the table also holds each image's statistics (audit.core.image_stats.IMAGE_COLUMNS)


def score_columns(classes) -> list[str]:
    """Column names of the class scores: ``score_<class>``."""
    return [f"score_{c}" for c in classes]


def class_permutation(*, label_map, classes, model_card_path=None) -> np.ndarray:
    """For each data-card class, the model output index that predicts it.

    Raises
    ------
    CardError
        The model's ``label_map`` does not name exactly the data card's classes
        (the message shows at most ten names).
    """
    from .model_spec import class_matrix

    matrix = class_matrix(label_map=label_map, classes=classes, model_card_path=model_card_path)
    return matrix.argmax(0).astype(np.int64)


def _collate(batch):
    """Items of :class:`audit.core.images.ImageDataset` -> ``(images, indices, errors, stats)``; ``stats`` is the
    list of each item's image statistics, or None when the dataset computes none."""
    import torch

    errors = [(item[1], item[2]) for item in batch if item[2]]
    indices = torch.tensor([item[1] for item in batch], dtype=torch.long)
    stats = [item[3] for item in batch] if batch and len(batch[0]) > 3 else None
    if errors:
        return None, indices, errors, stats
    return torch.stack([item[0] for item in batch]), indices, [], stats


def run_inference(
    model,
    frame: pd.DataFrame,
    *,
    transform,
    classes,
    label_map,
    batch_size: int = 64,
    num_workers: int = 0,
    device=None,
    progress: bool | None = None,
    source: str = "split",
    class_map: dict | None = None,
    image_statistics: bool = False,
) -> pd.DataFrame:
    """Predict every image of a split.

    Runs under :func:`torch.inference_mode`, moving each batch's outputs to
    the CPU at once. Logits are turned into probabilities with a softmax and
    reordered from the model's ``label_map`` order into the data card's class
    order.

    Parameters
    ----------
    model : torch.nn.Module
        The classifier (moved to ``device``).
    frame : DataFrame
        The split (:func:`audit.core.data.load_split`).
    transform : callable
        PIL image -> tensor.
    classes : list of str
        Data card classes.
    label_map : list of str
        Class name of each model output.
    batch_size, num_workers : int
        DataLoader settings.
    device : torch.device or str, optional
        Defaults to the CPU.
    progress : bool or None
        Show a tqdm bar; ``None`` shows it only on a terminal.
    source : str
        Name of the split's file, for error messages.
    class_map : dict of int to str, optional
        Model output index -> data class (:mod:`audit.core.model_spec`): probabilities are summed per data
        class over the outputs mapped to it and renormalised; unmapped outputs are dropped.

    Returns
    -------
    DataFrame
        ``sample_id``, ``score_<class>`` columns and ``pred``.

    Raises
    ------
    DataError
        An image cannot be decoded.
    ModelError
        The model's output does not have one column per ``label_map`` entry.
    """
    import torch
    from torch.utils.data import DataLoader
    from .._progress import progress_class

    from .images import ImageDataset
    from ..errors import ModelError
    from .model_spec import class_matrix, map_probabilities

    tqdm = progress_class()

    matrix = class_matrix(label_map=label_map, classes=classes, class_map=class_map)
    device = torch.device(device or "cpu")
    model = model.to(device).eval()
    dataset = ImageDataset(frame["image_path"].tolist(), transform, statistics=image_statistics)
    loader = DataLoader(
        dataset,
        batch_size=max(1, int(batch_size)),
        shuffle=False,
        num_workers=max(0, int(num_workers)),
        collate_fn=_collate,
        pin_memory=device.type == "cuda",
    )
    probs = np.zeros((len(frame), len(label_map)), dtype=np.float64)
    stats_rows: list = [None] * len(frame)
    disable = None if progress is None else not progress
    with torch.inference_mode():
        for images, indices, errors, stats in tqdm(loader, desc="inference", unit="batch", disable=disable, leave=False):
            if errors:
                idx, reason = errors[0]
                raise DataError(
                    f"{source}: image '{frame['sample_id'].iat[idx]}': cannot read image "
                    f"{frame['image_path'].iat[idx]}: {reason}"
                )
            out = model(images.to(device, non_blocking=True))
            if isinstance(out, (tuple, list)):
                out = out[0]
            out = out.float().cpu()
            if out.ndim != 2 or out.shape[1] != len(label_map):
                raise ModelError(
                    f"model output: expected shape (batch, {len(label_map)}) to match label_map, "
                    f"found {tuple(out.shape)}"
                )
            probs[indices.numpy()] = torch.softmax(out, dim=1).double().numpy()
            if stats is not None:
                for i, row in zip(indices.tolist(), stats):
                    stats_rows[i] = row
    if class_map is None:
        scores = probs[:, matrix.argmax(0)]  # a permutation: reorder only
    else:
        scores = map_probabilities(probs, matrix)
    result = pd.DataFrame({"sample_id": frame["sample_id"].to_numpy()})
    for col, values in zip(score_columns(classes), scores.T):
        result[col] = values
    result["pred"] = np.argmax(scores, axis=1).astype(np.int64) if len(frame) else np.zeros(0, np.int64)
    if image_statistics:
        from .image_stats import IMAGE_COLUMNS, statistics_frame

        table = statistics_frame(stats_rows)
        for col, name in zip(IMAGE_COLUMNS, table.columns):
            result[col] = table[name].to_numpy()
    return result


def save_cache(out_dir, predictions: pd.DataFrame, *, meta: dict) -> None:
    """Write ``predictions.parquet`` and ``predictions.json`` atomically."""
    import io

    out_dir = Path(out_dir)
    buffer = io.BytesIO()
    predictions.to_parquet(buffer, index=False)
    full = {"cache_version": CACHE_VERSION, "written": datetime.now(timezone.utc).isoformat(timespec="seconds"), **meta}
    # a failed write leaves the old cache whole; the old meta goes before the new table lands
    atomic_write_many([(out_dir / CACHE_TABLE, buffer.getvalue()),
                       (out_dir / CACHE_META, (json.dumps(full, indent=2, sort_keys=True) + "\n").encode("utf-8"))],
                      unlink_first=[out_dir / CACHE_META])


def load_cache(out_dir, *, model_sha256: str, data_sha256: str, classes, sample_ids) -> pd.DataFrame | None:
    """Return cached predictions if they were made by this model on this data, else ``None``."""
    out_dir = Path(out_dir)
    meta_path, table_path = out_dir / CACHE_META, out_dir / CACHE_TABLE
    if not (meta_path.is_file() and table_path.is_file()):
        return None
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):  # a damaged or hostile cache file is a miss
        return None
    if (
        not isinstance(meta, dict)
        or meta.get("cache_version") != CACHE_VERSION
        or meta.get("source") != "model"
        or meta.get("model_sha256") != model_sha256
        or meta.get("data_sha256") != data_sha256
        or meta.get("classes") != list(classes)
    ):
        return None
    try:
        table = pd.read_parquet(table_path)
    except Exception:  # noqa: BLE001 - a damaged cache is just a miss
        return None
    if list(table.get("sample_id", pd.Series(dtype=str)).astype(str)) != [str(s) for s in sample_ids]:
        return None
    table.attrs["cache_meta"] = meta
    return table


def file_sha256(path) -> str:
    """SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def shown_ids(ids, k=5) -> str:
    ids = sorted(ids, key=str)
    shown = ", ".join(repr(str(i)) for i in ids[:k])
    return shown + (f" and {len(ids) - k} more" if len(ids) > k else "")


def load_predictions_file(path, *, sample_ids, classes, id_column: str = "sample_id") -> pd.DataFrame:
    """Read predictions made elsewhere and align them with the split.

    The file (CSV or Parquet) has the data card's id column (``id_column``;
    a ``sample_id`` column is accepted too) and either one
    ``score_<class>`` column per class, or a ``pred`` / ``predicted_label``
    column holding a class name or index. An empty / NA prediction is an
    abstention (``pred = -1``). When scores are given, ``pred`` is their argmax
    unless a ``pred`` column is also present.

    Parameters
    ----------
    path : str or Path
        The file.
    sample_ids : sequence of str
        The split's ids; the result is in this order.
    classes : list of str
        Data card classes.
    id_column : str
        The data card's ``split.id_column``, the column the file's ids are read from.

    Returns
    -------
    DataFrame
        ``sample_id``, ``score_<class>`` columns (if given) and ``pred``.

    Raises
    ------
    PredictionError
        The file is missing or malformed, or its ids do not match the split.
    """
    path = Path(path)
    if not path.is_file():
        raise PredictionError(f"{path}: predictions file not found")
    try:
        if path.suffix.lower() == ".parquet":
            table = pd.read_parquet(path)
        else:
            table = pd.read_csv(path, dtype={id_column: str, "sample_id": str}, keep_default_na=True)
    except Exception as exc:  # noqa: BLE001
        raise PredictionError(f"{path}: cannot read predictions: {' '.join(str(exc).split())}") from None
    table.columns = [str(c) for c in table.columns]
    column = next((c for c in (id_column, "sample_id") if c in table.columns), None)
    if column is None:
        wanted = f"'{id_column}' (the data card's split.id_column)" + (" or 'sample_id'" if id_column != "sample_id" else "")
        raise PredictionError(f"{path}: missing column {wanted}; found columns: {shown(table.columns)}")
    ids = table[column].astype(object).where(table[column].notna(), None)
    ids = [None if v is None else str(v) for v in ids]
    if any(v is None or v == "" for v in ids):
        row = next(i for i, v in enumerate(ids, start=1) if v is None or v == "")
        raise PredictionError(f"{path}: row {row}: field '{column}': expected a sample id, found an empty value")
    seen: dict[str, int] = {}
    for i, sid in enumerate(ids, start=1):
        if sid in seen:
            raise PredictionError(f"{path}: row {i} (id '{sid}'): duplicate sample id (first seen in row {seen[sid]})")
        seen[sid] = i
    wanted = [str(s) for s in sample_ids]
    missing = set(wanted) - set(seen)
    extra = set(seen) - set(wanted)
    if missing or extra:
        parts = []
        if missing:
            parts.append(f"{len(missing)} split ids missing ({shown_ids(missing)})")
        if extra:
            parts.append(f"{len(extra)} ids not in the split ({shown_ids(extra)})")
        raise PredictionError(f"{path}: sample ids do not match the split: {'; '.join(parts)}")

    table.index = ids
    table = table.loc[wanted]
    result = pd.DataFrame({"sample_id": wanted})
    score_cols = score_columns(classes)
    present = [c for c in score_cols if c in table.columns]
    pred_col = next((c for c in ("pred", "predicted_label") if c in table.columns), None)
    if present and len(present) != len(score_cols):
        lacking = [c for c in score_cols if c not in table.columns]
        raise PredictionError(f"{path}: expected a score column for every class, missing: {', '.join(lacking)}")
    if not present and pred_col is None:
        raise PredictionError(
            f"{path}: expected score_<class> columns ({shown(score_cols)}) or a 'pred' / "
            f"'predicted_label' column; found columns: {shown(table.columns)}"
        )
    scores = None
    if present:
        try:
            scores = table[score_cols].apply(pd.to_numeric, errors="raise").to_numpy(dtype=float)
        except (ValueError, TypeError) as exc:
            raise PredictionError(f"{path}: score columns must be numbers: {' '.join(str(exc).split())}") from None
        for col, values in zip(score_cols, scores.T):
            result[col] = values
    if scores is not None:
        check_probabilities(scores, score_cols, wanted, path)
    if pred_col is not None:
        result["pred"] = _parse_labels(table[pred_col].tolist(), classes, path, pred_col, wanted)
    else:
        complete = ~np.isnan(scores).any(axis=1)
        pred = np.full(len(wanted), -1, dtype=np.int64)
        pred[complete] = np.argmax(scores[complete], axis=1)
        result["pred"] = pred
    return result.reset_index(drop=True)


PROBABILITY_TOLERANCE = 1e-3  # how far a row of class scores may sum from 1 (rounding in CSV files)


def check_probabilities(scores: np.ndarray, columns, ids, path, *, sums: bool = True) -> None:
    """Class scores must be probabilities: finite, in 0..1, each row summing to 1 (an all-empty row abstains).

    Logits or unnormalised scores would give meaningless calibration and AUC, so they are refused with the
    first offending sample named (vectorised: one pass over the array). ``ids[r]`` names row ``r``;
    ``sums=False`` checks the values only (a caller checking a split a chunk at a time checks every
    chunk's values before any chunk's sums).
    """
    missing = np.isnan(scores)
    partial = missing.any(axis=1) & ~missing.all(axis=1)
    bad_value = ~missing & (~np.isfinite(scores) | (scores < 0) | (scores > 1))
    rows = np.flatnonzero(partial | bad_value.any(axis=1))
    if rows.size:
        r = int(rows[0])
        if partial[r]:
            col = columns[int(np.flatnonzero(missing[r])[0])]
            raise PredictionError(f"{path}: sample '{ids[r]}': field '{col}': expected a probability in 0..1 for "
                                  "every class (or no scores at all: an abstention), found an empty value")
        col = int(np.flatnonzero(bad_value[r])[0])
        raise PredictionError(f"{path}: sample '{ids[r]}': field '{columns[col]}': expected a probability in 0..1, "
                              f"found {scores[r, col]:.6g}; apply a softmax to logits first")
    if not sums:
        return
    complete = ~missing.any(axis=1)
    sums = scores[complete].sum(axis=1)
    off = np.flatnonzero(np.abs(sums - 1.0) > PROBABILITY_TOLERANCE)
    if off.size:
        r = int(np.flatnonzero(complete)[off[0]])
        raise PredictionError(f"{path}: sample '{ids[r]}': expected class scores summing to 1 (probabilities), "
                              f"found a sum of {sums[off[0]]:.6g}; apply a softmax to logits first")


def _parse_labels(values, classes, path, column, ids) -> np.ndarray:
    index = {name: i for i, name in enumerate(classes)}
    out = np.empty(len(values), dtype=np.int64)
    for i, value in enumerate(values):
        out[i] = parse_label(value, index)
        if out[i] == NOT_A_LABEL:
            raise PredictionError(
                f"{path}: sample '{ids[i]}': field '{column}': expected a class name ({shown(classes)}) "
                f"or index 0..{len(classes) - 1}, found {value!r}"
            )
    return out


NOT_A_LABEL = -2


def parse_label(value, index: dict) -> int:
    """A predicted label: its class index (``index`` maps class names to indices), -1 for an abstention (empty,
    NA or -1), :data:`NOT_A_LABEL` when it is neither a class name nor an index."""
    if value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NA or (
        isinstance(value, str) and value.strip() == ""
    ):
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
    return NOT_A_LABEL
