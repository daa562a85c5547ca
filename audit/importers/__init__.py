"""Importers: public fairness data sets, read in their published layout, written as data cards.

``audit import SOURCE ROOT --out data_cards/NAME.md [--split S] [--task T]``
reads the data set under ROOT untouched and writes a data card (and any side
file the card needs, beside the card) that ``audit run`` and ``audit
data-card`` accept. Give ROOT as ``'${FAIRFACE_ROOT}'`` (quoted) and the card
keeps the variable, so the same card works on every machine.

Each source is one module with ``VARIABLE``, ``SPLITS``, ``DEFAULT_SPLIT``
and ``run(root, out, split, command)``; :data:`SOURCES` is the registry.
"""

from __future__ import annotations

import importlib
import shlex
from pathlib import Path

from ..errors import AuditError

__all__ = ["COMMITTED", "SOURCES", "ImportResult", "import_dataset", "template_card", "write_committed_cards"]

# source name -> module (imported on use)
SOURCES = {"facet": "facet", "miap": "miap", "fairface": "fairface", "utkface": "utkface", "celeba": "celeba"}


def __getattr__(name):
    # Lazy: the CLI lists SOURCES for `audit --help` without importing pandas.
    if name == "ImportResult":
        from ._common import ImportResult

        return ImportResult
    raise AttributeError(f"module 'audit.importers' has no attribute {name!r}")


def _module(source: str):
    if source not in SOURCES:
        raise AuditError(f"audit import: expected a source ({', '.join(SOURCES)}), found {source!r}")
    return importlib.import_module(f".{SOURCES[source]}", __package__)


def _split(module, source: str, split: str | None) -> str:
    split = split or module.DEFAULT_SPLIT
    if split not in module.SPLITS:
        what = "task" if source == "facet" else "split"
        raise AuditError(f"audit import {source}: --split: expected one of {', '.join(module.SPLITS)} "
                         f"(the {what}s {source} publishes), found {split!r}")
    return split


def import_dataset(source: str, root: str, out: str | Path, *, split: str | None = None):
    """Import one split of a data set; returns what was written and the group counts.

    Raises
    ------
    AuditError
        Unknown source or split; DataError for anything wrong with the data
        (one line naming the file, row or field, expected vs found).
    """
    from ._common import parse_root

    module = _module(source)
    split = _split(module, source, split)
    parsed = parse_root(root, module.VARIABLE)
    out = Path(out)
    if out.suffix.lower() != ".md":
        raise AuditError(f"audit import: --out: expected a card file ending in .md, found {str(out)!r}")
    command = f"audit import {source} {shlex.quote(parsed.text)} --out {shlex.quote(str(out))} --split {split}"
    return module.run(parsed, out, split, command)


def template_card(source: str, split: str | None = None) -> str:
    """The card as committed in ``data_cards/``: root ``${VAR}``, no counts (they need the data)."""
    from ._common import DataLocation, render_card

    module = _module(source)
    split = _split(module, source, split)
    root = DataLocation(text="${" + module.VARIABLE + "}", path=Path("."))
    out = f"data_cards/{module.card_name(split)}.md" if hasattr(module, "card_name") else \
        f"data_cards/{source}_{split}.md"
    command = f"audit import {source} '{root.text}' --out {out} --split {split}"
    front = module.front_matter(root, split, command)
    return render_card(front, module.body(split, None))


# (source, split, card name) of the cards committed in data_cards/
COMMITTED = [("fairface", "val", "fairface_val"), ("utkface", "all", "utkface"), ("celeba", "test", "celeba_test"),
             ("miap", "test", "miap_test"), ("facet", "detection", "facet_detection"),
             ("facet", "instance_segmentation", "facet_instance_segmentation"),
             ("facet", "semantic_segmentation", "facet_semantic_segmentation"),
             ("facet", "classification", "facet_classification")]


def write_committed_cards(directory: str | Path = "data_cards") -> list[Path]:
    """(Re)write the committed cards from :func:`template_card`:
    ``python -c "from audit.importers import write_committed_cards; write_committed_cards()"``."""
    paths = []
    for source, split, name in COMMITTED:
        path = Path(directory) / f"{name}.md"
        path.write_text(template_card(source, split), encoding="utf-8")
        paths.append(path)
    return paths
