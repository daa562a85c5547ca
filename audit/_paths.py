"""Path containment: the one check for every path a card or annotation file names.

A data card declares an image root; manifests, COCO ``images[].file_name``,
label and person masks and the report's thumbnails name files relative to it.
:class:`Root` joins such names to the root and refuses any that leave it:
``..`` that climbs out, an absolute path elsewhere, or a symlink (the file or
a directory on the way) that resolves outside. The data card's
``allow_paths_outside_root: true`` turns the check off.

Cost: the root is resolved once; in :meth:`Root.check` each name costs a
string check, one ``lstat`` of the file (is it a symlink?) and one
``realpath`` per distinct parent directory (cached), not a ``realpath`` per
file. :meth:`Root.contain_all` checks a whole column with the same result:
names that cannot leave the root by their text are grouped by directory,
and each directory is resolved once and listed once (``os.scandir``) for its
symlinks, instead of an ``lstat`` and a ``normpath`` per name.
"""

from __future__ import annotations

import collections
import itertools
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
                raise _nul_error(where(i), what)
            path = self.join(name)
            if not self.allow_outside and not self.inside(path):
                raise self._outside_error(where(i), what, name)
            out.append(path)
        return out

    def contain_all(self, names: Iterable, *, where: Callable[[int], str], what: str = "image") -> list[str]:
        """:meth:`check` for many names at once: the same paths, the same refusals, the same first error.

        :meth:`check` normalises, joins and ``lstat``-s every name. Here a name
        that cannot leave the root by its text (relative; no ``.``, ``..`` or
        empty component; no leading ``~``) is only joined, and such names are
        grouped by directory. Each directory is resolved once (``realpath``,
        cached as in :meth:`check`) and listed once (``os.scandir``): when it
        is inside the root and holds no symlink, every name in it is inside.
        Otherwise each of its names is decided as :meth:`check` decides it,
        whether it is a symlink read from the listing (a name the listing does
        not show gets its own ``lstat``). A directory that cannot be listed, or
        holds more than ``4 x (its names) + 256`` entries, is not listed: its
        names get their own ``lstat``, so a huge directory that few names
        point into costs what :meth:`check` costs. Every other name (absolute,
        ``..``, ``~``, ``.``, empty components) goes through :meth:`inside`,
        as in :meth:`check`.

        Parameters
        ----------
        names : iterable
            Names as the card or annotation file gives them (relative or absolute).
        where : callable
            ``where(i)`` names the file, row and field of the ``i``-th name for
            the message; called for the offending name only.
        what : str
            What the path is ("image", "label mask", "person mask").

        Returns
        -------
        list of str
            The joined paths, in order: equal to :meth:`check`'s.

        Raises
        ------
        DataError
            :meth:`check`'s error for the first name :meth:`check` would refuse
            (a NUL character, or outside the root).
        """
        texts = [str(name) for name in names]
        first_nul = next((i for i, text in enumerate(texts) if "\0" in text), len(texts))
        prefix = self.root if self.root.endswith(os.sep) else self.root + os.sep
        plain = _plain_all(texts[:first_nul])
        paths = [prefix + text if fast else self.join(text) for text, fast in zip(texts, plain)]
        first_out = first_nul if self.allow_outside else self._first_outside(texts[:first_nul], paths, plain, prefix)
        if first_out < first_nul:
            raise self._outside_error(where(first_out), what, texts[first_out])
        if first_nul < len(texts):
            raise _nul_error(where(first_nul), what)
        return paths

    def _first_outside(self, texts: list[str], paths: list[str], plain: list[bool], prefix: str) -> int:
        """Index of the first path :meth:`inside` refuses, or ``len(paths)``; plain names are ``prefix + name``."""
        first = len(paths)
        rows = range(len(texts))
        if not all(plain):
            first = next((i for i, fast in enumerate(plain) if not fast and not self.inside(paths[i])), first)
            rows = [i for i in range(first) if plain[i]]
        directory_of = [texts[i].rpartition("/")[0] for i in rows]
        unclear: dict[str, tuple] = {}  # directory -> (real parent, inside?, listing or None)
        for directory, count in collections.Counter(directory_of).items():
            parent = prefix + directory if directory else os.path.split(prefix + "x")[0]
            real_parent = self._dirs.get(parent)
            if real_parent is None:
                real_parent = self._dirs[parent] = os.path.realpath(parent)
            parent_inside = self._inside_real(real_parent)
            listing = _listing(parent, limit=4 * count + 256)
            if not (parent_inside and listing is not None and not listing[1]):
                unclear[directory] = (real_parent, parent_inside, listing)
            # else: a directory inside the root without a symlink in it: every name in it stays inside
        if not unclear:
            return first
        for i, directory in zip(rows, directory_of):
            if i >= first:
                break
            if directory not in unclear:
                continue
            real_parent, parent_inside, listing = unclear[directory]
            base = texts[i].rpartition("/")[2]
            if listing is not None and base in listing[1]:
                link = True
            elif listing is not None and base in listing[0]:
                link = False
            else:  # not in the listing: the file's own lstat, as inside() does
                link = os.path.islink(paths[i])
            if link:
                inside = self._inside_real(os.path.realpath(paths[i]))
            else:
                inside = parent_inside or self._inside_real(os.path.join(real_parent, base))
            if not inside:
                return i
        return first

    def _outside_error(self, where: str, what: str, name) -> DataError:
        return DataError(f"{where}: {what} path {_short(name)!r} is outside the image root {self.root}; {OUTSIDE_HINT}")

    def check_one(self, name, *, where: str, what: str = "image") -> str:
        """:meth:`check` for one name."""
        return self.check([name], where=lambda _: where, what=what)[0]


def _nul_error(where: str, what: str) -> DataError:
    return DataError(f"{where}: expected a {what} path, found one with a NUL character")


def _plain(text: str) -> bool:
    """Whether a name cannot leave the root by its text: relative, no ``~``, no empty, ``.`` or ``..`` component.

    Its joined path is then already normal (``normpath`` leaves it as it is),
    and only a symlink on the way can lead it out.
    """
    if os.sep != "/" or os.altsep or not text or text[0] == "~":
        return False
    wrapped = "/" + text + "/"
    return "//" not in wrapped and "/./" not in wrapped and "/../" not in wrapped


# substrings of "\0" + "\0".join(names) + "\0" that only a name that is not plain can contain
_NOT_PLAIN = ("\0/", "/\0", "\0\0", "\0~", "//", "/./", "/../", "\0./", "/.\0", "\0../", "/..\0", "\0.\0", "\0..\0")


def _plain_all(texts: list[str]) -> list[bool]:
    """:func:`_plain` of every name; one scan of the joined names when all are plain (names without NUL)."""
    joined = "\0" + "\0".join(texts) + "\0"
    if os.sep == "/" and not os.altsep and not any(marker in joined for marker in _NOT_PLAIN):
        return [True] * len(texts)
    return [_plain(text) for text in texts]


def _listing(directory: str, *, limit: int) -> tuple[set[str], set[str]] | None:
    """The names in ``directory`` and those of them that are symlinks, from one ``os.scandir``.

    ``None`` when the directory cannot be listed or holds more than ``limit``
    entries (then each name gets its own ``lstat``, as in :meth:`Root.check`).
    """
    try:
        with os.scandir(directory) as listing:
            entries = list(itertools.islice(listing, limit + 1))
        if len(entries) > limit:
            return None
        return {e.name for e in entries}, {e.name for e in entries if e.is_symlink()}
    except OSError:  # not a directory, not listable, or an entry whose type needs an lstat that failed
        return None


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
