"""What determines an entry-point model's predictions, for the prediction cache key and the provenance.

An entry point (``package.module:function``) may load weights from anywhere
inside its package, so hashing the wrapper module's file is not enough: after a
third-party package's weights changed, the old predictions would be reused.
:func:`entry_point_identity` covers

- the module's own file (its bytes);
- the installed distribution that provides the top-level package: name and version;
- every file under the top-level package's directory (relative path, size and
  modification time, as the data fingerprint does for images: a replaced
  weights file changes the key without reading gigabytes);
- files the entry-point function declares in an ``audit_weights`` attribute
  (a list of paths; their bytes).

:func:`card_named_files` lists the files the model card's ``model`` block names
(any string value that is an existing file relative to the card), hashed by
their bytes. When the module cannot be located (a namespace package, a module
without a file) the key cannot be trusted: the caller does not cache and says so.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

__all__ = ["card_named_files", "entry_point_identity", "named_file"]

MAX_PACKAGE_FILES = 50_000  # a package with more files than this is not walked: the key is then untrusted


def _distribution(top: str) -> list[str]:
    from importlib import metadata

    try:
        names = metadata.packages_distributions().get(top) or []
    except Exception:  # noqa: BLE001 - broken metadata of some unrelated package
        return []
    out = []
    for name in sorted(set(names)):
        try:
            out.append(f"{name}=={metadata.version(name)}")
        except metadata.PackageNotFoundError:
            out.append(f"{name}==?")
    return out


def entry_point_identity(entry_point: str) -> tuple[list[str], list[Path], str | None]:
    """``(facts, files_to_hash, problem)`` for ``package.module:function``.

    ``facts`` are strings to put into the key and the provenance (distribution
    name and version, package file listing digest); ``files_to_hash`` are files
    whose bytes go into the key; ``problem`` is why the key cannot be trusted, or None.
    """
    import hashlib

    module_name, _, attr = entry_point.partition(":")
    try:
        spec = importlib.util.find_spec(module_name)
    except (ImportError, ValueError) as exc:
        return [], [], f"cannot locate module '{module_name}': {' '.join(str(exc).split())}"
    if spec is None or not spec.origin or not Path(spec.origin).is_file():
        return [], [], f"module '{module_name}' has no file to fingerprint"
    facts, files = [], [Path(spec.origin)]
    top = module_name.split(".")[0]
    facts += [f"distribution {d}" for d in _distribution(top)]
    top_spec = spec if top == module_name else importlib.util.find_spec(top)
    locations = list(getattr(top_spec, "submodule_search_locations", None) or [])
    listing = hashlib.sha256()
    count = 0
    for location in sorted(locations):
        for dirpath, dirnames, filenames in os.walk(location):
            dirnames[:] = sorted(d for d in dirnames if d != "__pycache__")
            for name in sorted(filenames):
                if name.endswith((".pyc", ".pyo")):
                    continue
                path = os.path.join(dirpath, name)
                try:
                    st = os.stat(path)
                except OSError:
                    continue
                count += 1
                if count > MAX_PACKAGE_FILES:
                    return facts, files, (f"package '{top}' has more than {MAX_PACKAGE_FILES:,} files to "
                                          "fingerprint")
                listing.update(f"{os.path.relpath(path, location)}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    if locations:
        facts.append(f"package files {listing.hexdigest()}")
    declared = _declared_weights(module_name, attr)
    files += declared
    return facts, files, None


def _declared_weights(module_name: str, attr: str) -> list[Path]:
    """Paths in ``function.audit_weights`` if the module is already imported (nothing is imported here)."""
    import sys

    module = sys.modules.get(module_name)
    fn = getattr(module, attr, None) if module is not None and attr else None
    declared = getattr(fn, "audit_weights", None)
    if not isinstance(declared, (list, tuple)):
        return []
    return [Path(p) for p in declared if isinstance(p, (str, os.PathLike))]


def named_file(card, value) -> Path | None:
    """The existing file a card's string value names (relative to the card), or None."""
    if not (isinstance(value, str) and ("/" in value or "." in value) and ":" not in value and len(value) < 4096):
        return None
    p = Path(value).expanduser()
    p = p if p.is_absolute() else Path(card.path).parent / p
    try:
        return p if p.is_file() else None
    except OSError:
        return None


def card_named_files(card) -> list[Path]:
    """Existing files named by string values of the model card's ``model`` block and, for an entry point, its
    ``builder`` arguments (relative to the card)."""
    front = card.front_matter if isinstance(getattr(card, "front_matter", None), dict) else {}
    found: list[Path] = []

    def walk(value, depth=0):
        if depth > 6:
            return
        if isinstance(value, dict):
            for v in value.values():
                walk(v, depth + 1)
        elif isinstance(value, (list, tuple)):
            for v in value[:100]:
                walk(v, depth + 1)
        else:
            p = named_file(card, value)
            if p is not None:
                found.append(p)

    walk(front.get("model"))
    if getattr(card, "builder", None) and getattr(getattr(card, "model", None), "entry_point", None):
        walk(card.builder)
    return found
