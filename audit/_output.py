"""An audit's output directory: one writer at a time, and an output set that appears whole or not at all.

**Lock.** :func:`output_lock` takes ``fcntl.flock`` on ``OUT/.audit.lock`` for
the whole run. A second audit into the same directory stops at once with one
line saying another audit is writing there. The ranks of one ``torchrun`` job
share the directory by design: rank 0 holds the lock for the job, the other
ranks only commit prediction chunks (each chunk is owned by one rank) and take
no lock. Re-entering the lock in the same process (``run_audit`` calls
``evaluate``) is allowed.

**Whole output.** :func:`commit_files` writes the output set (``results.json``,
``index.html``, ``command.txt``, ``dataset_section.json``, the Parquet side
tables) into a staging directory ``OUT/.staging-<pid>``, fsyncs it, then
renames the staging directory to ``OUT/.commit`` (the commit point) and moves
each file into place. A failure before the commit point (a full disk, a file
size limit, an exception) removes the staging directory and leaves the
previous output untouched. A run killed after the commit point leaves
``OUT/.commit``, which the next writer rolls forward before anything else and
which readers (``audit report``, ``audit compare``) refuse as incomplete.
"""

from __future__ import annotations

import errno
import os
import shutil
import threading
from pathlib import Path

from .errors import AuditError

__all__ = ["COMMIT_DIR", "LOCK_FILE", "OutputError", "check_complete", "commit_files", "output_lock",
           "prepare_out_dir", "recover"]

LOCK_FILE = ".audit.lock"
COMMIT_DIR = ".commit"
STAGING_PREFIX = ".staging-"

_held: dict[str, list] = {}  # realpath -> [file object, depth]
_guard = threading.Lock()


class OutputError(AuditError):
    """The output directory cannot be used: not a directory, not writable, locked, or a write failed."""


def write_error(exc: OSError, path=None) -> OutputError:
    """An :class:`OutputError` naming the file and the reason (full disk, file too large, read-only...)."""
    where = path or exc.filename or "output"
    reason = {errno.EFBIG: "file too large (the file size limit, ulimit -f, was reached)",
              errno.ENOSPC: "no space left on device", errno.EDQUOT: "disk quota exceeded",
              errno.EROFS: "read-only file system"}.get(exc.errno, exc.strerror or str(exc))
    return OutputError(f"{where}: cannot write: {reason}; the previous output, if any, is unchanged")


def prepare_out_dir(out_dir) -> Path:
    """Create ``out_dir`` (and parents) or say in one line why it cannot be an output directory."""
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise OutputError(f"{out}: expected a directory for the output, found a file")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise OutputError(f"{out}: expected a directory for the output, found a file on the way") from None
    except NotADirectoryError:
        raise OutputError(f"{out}: expected a directory for the output, found a file on the way") from None
    except OSError as exc:
        raise write_error(exc, out) from None
    if not os.access(out, os.W_OK | os.X_OK):
        raise OutputError(f"{out}: cannot write: permission denied or read-only file system")
    return out


class output_lock:  # noqa: N801 - used as a context manager
    """Hold the output directory's lock (see the module docstring); ``shared`` ranks take none."""

    def __init__(self, out_dir, *, rank: int | None = None):
        self.out_dir = out_dir
        if rank is None:  # torchrun sets WORLD_SIZE and RANK for every rank of the job
            rank = int(os.environ.get("RANK", "0")) if int(os.environ.get("WORLD_SIZE", "1")) > 1 else 0
        self.rank = rank
        self.key = None

    def __enter__(self):
        if self.out_dir is None:
            return self
        out = prepare_out_dir(self.out_dir)
        if self.rank != 0:  # another rank of the same torchrun job: rank 0 holds the lock for the job
            return self
        import fcntl

        key = os.path.realpath(out)
        with _guard:
            held = _held.get(key)
            if held is not None:
                held[1] += 1
                self.key = key
                return self
            path = out / LOCK_FILE
            try:
                fh = open(path, "a+b")
            except OSError as exc:
                raise write_error(exc, path) from None
            try:
                fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                fh.close()
                raise OutputError(f"{out}: another audit is writing there (it holds {path}); wait for it to "
                                  "finish or choose another --out") from None
            except OSError as exc:
                fh.close()
                raise write_error(exc, path) from None
            _held[key] = [fh, 1]
            self.key = key
        recover(out)
        return self

    def __exit__(self, *exc):
        if self.key is None:
            return False
        with _guard:
            held = _held[self.key]
            held[1] -= 1
            if held[1] == 0:
                del _held[self.key]
                held[0].close()  # closing releases the flock
        return False


def recover(out_dir) -> None:
    """Roll forward a commit that was interrupted after its commit point; drop abandoned staging directories.

    Call only while holding the lock.
    """
    out = Path(out_dir)
    commit = out / COMMIT_DIR
    if commit.is_dir():
        _move_into_place(commit, out)
    for stale in out.glob(STAGING_PREFIX + "*"):
        shutil.rmtree(stale, ignore_errors=True)


def _move_into_place(commit: Path, out: Path) -> None:
    removals = commit / ".remove"
    names = removals.read_text(encoding="utf-8").split("\n") if removals.is_file() else []
    for item in sorted(commit.iterdir()):
        if item.name == ".remove":
            continue
        os.replace(item, out / item.name)
    for name in names:
        if name and "/" not in name and name not in (".", ".."):
            (out / name).unlink(missing_ok=True)
    removals.unlink(missing_ok=True)
    commit.rmdir()


def commit_files(out_dir, files: dict[str, bytes], *, remove: tuple[str, ...] = ()) -> dict[str, Path]:
    """Write ``files`` (name -> bytes) into ``out_dir`` as one set, and delete ``remove``; all or nothing.

    Raises
    ------
    OutputError
        A write failed (full disk, file size limit, read-only...); nothing in ``out_dir`` changed.
    """
    out = Path(out_dir)
    staging = out / f"{STAGING_PREFIX}{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    try:
        staging.mkdir()
        for name, data in files.items():
            with open(staging / name, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.chmod(staging / name, 0o644)
        (staging / ".remove").write_text("\n".join(r for r in remove if r not in files) + "\n", encoding="utf-8")
        dir_fd = os.open(staging, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError as exc:
        shutil.rmtree(staging, ignore_errors=True)
        raise write_error(exc, out / Path(exc.filename).name if exc.filename else out) from None
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    commit = out / COMMIT_DIR
    if commit.exists():  # left by a run killed mid-commit and not yet rolled forward
        _move_into_place(commit, out)
    os.replace(staging, commit)  # the commit point
    _move_into_place(commit, out)
    return {name: out / name for name in files}


def check_complete(out_dir) -> None:
    """Refuse to read an output directory whose last commit was interrupted (readers call this)."""
    out = Path(out_dir)
    if (out / COMMIT_DIR).is_dir():
        raise OutputError(f"{out}: the output is incomplete (an audit was interrupted while writing it); run the "
                          "audit again to finish it")
