"""Chunked, resumable and sharded inference.

The split is cut into fixed chunks of consecutive samples. Each chunk's
predictions are committed atomically to
``<out>/predictions.chunks/<model+data key>/chunk-NNNNNN.parquet`` as soon as
they are computed, so a run killed midway (even with SIGKILL) resumes with
only the missing chunks. Chunk boundaries and batches inside a chunk do not
depend on how many processes run, so results are identical however the work
is spread.

Under ``torchrun --nproc-per-node N -m audit run ...`` (``WORLD_SIZE > 1`` in
the environment) rank ``r`` computes chunks ``r, r + N, r + 2N, ...`` and
writes them to the shared output directory; after a barrier rank 0 merges the
chunks in order and computes the audit. Every chunk is owned by exactly one
rank: no duplicates, no drops.
"""

from __future__ import annotations

import logging
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from .._io import atomic_write_with

__all__ = ["CHUNK_DIR", "DistContext", "context_from_env", "predict_in_chunks"]

log = logging.getLogger("audit")

CHUNK_DIR = "predictions.chunks"
DEFAULT_CHUNK_SIZE = 1024


@dataclass(frozen=True)
class DistContext:
    """This process's place in a (possibly single-process) run."""

    rank: int = 0
    world_size: int = 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        if self.world_size > 1:
            import torch.distributed as dist

            dist.barrier()


def context_from_env() -> DistContext:
    """Join the process group that ``torchrun`` describes in the environment, if any.

    The backend is NCCL when CUDA is available and gloo otherwise;
    ``AUDIT_DIST_BACKEND`` overrides it.
    """
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return DistContext()
    import torch
    import torch.distributed as dist

    if not dist.is_initialized():
        backend = os.environ.get("AUDIT_DIST_BACKEND") or ("nccl" if torch.cuda.is_available() else "gloo")
        dist.init_process_group(backend=backend)
    return DistContext(rank=dist.get_rank(), world_size=dist.get_world_size())


def _chunk_path(root: Path, index: int) -> Path:
    return root / f"chunk-{index:06d}.parquet"


def _valid_chunk(path: Path, sample_ids, columns=()) -> pd.DataFrame | None:
    """The committed chunk, if it is readable, holds exactly these samples in this order and has ``columns``
    (a chunk an older version committed without them is recomputed)."""
    if not path.is_file():
        return None
    try:
        table = pd.read_parquet(path)
    except Exception:  # noqa: BLE001 - a damaged chunk is recomputed
        return None
    if table.get("sample_id") is None or table["sample_id"].astype(str).tolist() != [str(s) for s in sample_ids]:
        return None
    if any(c not in table.columns for c in columns):
        return None
    return table


def predict_in_chunks(predict, frame: pd.DataFrame, *, out_dir, key: str, chunk_size: int = DEFAULT_CHUNK_SIZE,
                      context: DistContext = DistContext(), columns=()) -> pd.DataFrame | None:
    """Predict ``frame`` chunk by chunk, committing each chunk, skipping chunks already committed.

    Parameters
    ----------
    predict : callable
        ``predict(sub_frame) -> DataFrame`` with ``sample_id`` first, one row per sample.
    frame : DataFrame
        The split, in its canonical order.
    out_dir : path
        The audit's output directory (shared by all ranks).
    key : str
        Identifies the model and data (their hashes); chunks of another key are never reused.
    chunk_size : int
        Samples per chunk.
    context : DistContext
        This process's rank and the world size.
    columns : sequence of str
        Columns every chunk's table has: a committed chunk without them (from an older version) is recomputed.

    Returns
    -------
    DataFrame or None
        On rank 0, all predictions in ``frame`` order; ``None`` on other ranks.
    """
    if chunk_size < 1:
        raise ValueError(f"expected chunk_size >= 1, found {chunk_size}")
    root = Path(out_dir) / CHUNK_DIR / f"{key[:32]}-{chunk_size}"
    n_chunks = -(-len(frame) // chunk_size)
    bounds = [(c * chunk_size, min(len(frame), (c + 1) * chunk_size)) for c in range(n_chunks)]
    mine = range(context.rank, n_chunks, context.world_size)
    done = [c for c in mine
            if _valid_chunk(_chunk_path(root, c), frame["sample_id"].iloc[slice(*bounds[c])], columns) is not None]
    if done:
        log.info("predictions: resuming, %d of %d chunks already committed%s", len(done), len(mine),
                 f" on rank {context.rank}" if context.world_size > 1 else "")
    for c in mine:
        if c in done:
            continue
        part = predict(frame.iloc[slice(*bounds[c])])
        atomic_write_with(_chunk_path(root, c), lambda tmp, part=part: part.to_parquet(tmp, index=False))
    context.barrier()
    if not context.is_main:
        return None
    parts = []
    for c in range(n_chunks):
        table = _valid_chunk(_chunk_path(root, c), frame["sample_id"].iloc[slice(*bounds[c])], columns)
        if table is None:  # a rank died after the barrier was passed by everyone else: impossible unless tampered
            raise RuntimeError(f"chunk {c} of {n_chunks} missing after all ranks finished: {_chunk_path(root, c)}")
        parts.append(table)
    merged = pd.concat(parts, ignore_index=True) if parts else predict(frame.iloc[0:0])
    return merged


def discard_chunks(out_dir) -> None:
    """Remove committed chunks once the merged predictions are cached."""
    shutil.rmtree(Path(out_dir) / CHUNK_DIR, ignore_errors=True)
