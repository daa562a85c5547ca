"""Atomic file output: write to a temporary file in the target directory, then ``os.replace``.

A reader (or a crashed run) never sees a half-written file: the target either
keeps its old content or has the complete new content.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path

__all__ = ["atomic_path", "atomic_write_bytes", "atomic_write_many", "atomic_write_text", "atomic_write_with"]


@contextmanager
def atomic_path(target: str | Path):
    """Yield a temporary path next to ``target``; on success move it over ``target``.

    On any exception the temporary file is removed and ``target`` is untouched.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    os.chmod(tmp, 0o644)  # mkstemp makes 0600; outputs are meant to be shared
    try:
        yield Path(tmp)
        os.replace(tmp, target)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def atomic_write_bytes(target: str | Path, data: bytes) -> None:
    """Write ``data`` to ``target`` atomically."""
    with atomic_path(target) as tmp:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())


def atomic_write_text(target: str | Path, text: str) -> None:
    """Write ``text`` (UTF-8) to ``target`` atomically."""
    atomic_write_bytes(target, text.encode("utf-8"))


def atomic_write_with(target: str | Path, writer: Callable[[Path], None]) -> None:
    """Call ``writer(tmp_path)`` and move the result over ``target`` atomically."""
    with atomic_path(target) as tmp:
        writer(tmp)


def atomic_write_many(items, *, unlink_first=()) -> None:
    """Write several files so that a failure while writing changes none of them.

    Every ``(target, bytes)`` is first written to a temporary file beside its target (a full disk or a file size
    limit fails here, and the targets are untouched); then ``unlink_first`` are removed and the temporary files
    moved over their targets in order. A cache writes its table, then its meta, and removes the old meta first,
    so that no meta ever vouches for a table it did not describe.
    """
    staged = []
    try:
        for target, data in items:
            target = Path(target)
            target.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
            staged.append((tmp, target))
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.chmod(tmp, 0o644)
    except BaseException:
        for tmp, _ in staged:
            try:
                os.unlink(tmp)
            except FileNotFoundError:
                pass
        raise
    for path in unlink_first:
        Path(path).unlink(missing_ok=True)
    for tmp, target in staged:
        os.replace(tmp, target)
