"""Path containment: the one check for every path a card or annotation file names.

A data card declares an image root; manifests, COCO ``images[].file_name``,
label and person masks and the report's thumbnails name files relative to it.
:class:`Root` joins such names to the root and refuses any that leave it:
``..`` that climbs out, an absolute path elsewhere, or a symlink (the file or
a directory on the way) that resolves outside. The data card's
``allow_paths_outside_root: true`` turns the check off.

Cost: the root is resolved once; each name costs a string check, one
``lstat`` of the file (is it a symlink?) and one ``realpath`` per distinct
parent directory (cached), not a ``realpath`` per file.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable

from .errors import DataError

__all__ = ["Root", "OUTSIDE_HINT", "short_repr"]

OUTSIDE_HINT = "set 'allow_paths_outside_root: true' in the data card to allow it"


class Root:
    """An image root that joins names to it and checks they stay inside.

    Parameters
    ----------
    root : str or Path
        The directory names are relative to.
    allow_outside : bool
        The data card's ``allow_paths_outside_root``: join, never refuse.
    """

    def __init__(self, root, *, allow_outside: bool = False):
        self.root = os.path.abspath(os.fspath(root))
        self.allow_outside = bool(allow_outside)
        self._real = os.path.realpath(self.root)
        self._prefix = self._real.rstrip(os.sep) + os.sep
        self._lexical_prefix = self.root.rstrip(os.sep) + os.sep
        self._dirs: dict[str, str] = {}

    def join(self, name) -> str:
        """``name`` joined to the root (an absolute ``name`` stays as it is), unchecked."""
        return os.path.join(self.root, os.path.expanduser(str(name)))

    def _inside_real(self, real: str) -> bool:
        return real == self._real or real.startswith(self._prefix)

    def inside(self, path: str) -> bool:
        """Whether the joined ``path`` stays under the root, symlinks followed."""
        if "\0" in path:
            return False
        norm = os.path.normpath(path)
        if not (norm == self.root or norm.startswith(self._lexical_prefix)):
            # lexically outside; a symlinked root may still contain it (rare), so decide on the real path
            return self._inside_real(os.path.realpath(norm))
        parent, base = os.path.split(norm)
        real_parent = self._dirs.get(parent)
        if real_parent is None:
            real_parent = self._dirs[parent] = os.path.realpath(parent)
        try:
            link = os.path.islink(norm)
        except OSError:  # pragma: no cover - islink swallows OSError itself
            link = False
        real = os.path.realpath(norm) if link else os.path.join(real_parent, base)
        return self._inside_real(real)

    def check(self, names: Iterable, *, where: Callable[[int], str], what: str = "image") -> list[str]:
        """Join every name to the root; raise on the first that leaves it.

        Parameters
        ----------
        names : iterable
            Names as the card or annotation file gives them (relative or absolute).
        where : callable
            ``where(i)`` names the file, row and field of the ``i``-th name for the message.
        what : str
            What the path is ("image", "label mask", "person mask").

        Returns
        -------
        list of str
            The joined paths, in order.

        Raises
        ------
        DataError
            ``{where}: {what} path '{name}' is outside the image root {root}; set
            'allow_paths_outside_root: true' in the data card to allow it``.
        """
        out = []
        for i, name in enumerate(names):
            if "\0" in str(name):
                raise DataError(f"{where(i)}: expected a {what} path, found one with a NUL character")
            path = self.join(name)
            if not self.allow_outside and not self.inside(path):
                raise DataError(f"{where(i)}: {what} path {_short(name)!r} is outside the image root {self.root}; "
                                f"{OUTSIDE_HINT}")
            out.append(path)
        return out

    def check_one(self, name, *, where: str, what: str = "image") -> str:
        """:meth:`check` for one name."""
        return self.check([name], where=lambda _: where, what=what)[0]


def _short(value, limit: int = 200) -> str:
    text = str(value)
    return text if len(text) <= limit else text[:limit] + "..."


def short_repr(value, limit: int = 60) -> str:
    """``repr(value)`` cut to about ``limit`` characters, without building the whole repr of a huge value."""
    import reprlib

    r = reprlib.Repr()
    r.maxlevel, r.maxlist, r.maxtuple, r.maxdict, r.maxset = 3, 8, 8, 6, 6
    r.maxstring = r.maxother = r.maxlong = max(limit, 10)
    text = r.repr(value)
    return text if len(text) <= limit else text[:limit] + "..."
