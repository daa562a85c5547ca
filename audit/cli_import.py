"""``audit import SOURCE ROOT --out data_cards/NAME.md [--split S]``: a public data set, read in place, as a data card.

Sources: facet, miap, fairface, utkface, celeba (see :mod:`audit.importers`).
Prints what it wrote, the group counts and anything it set aside (e.g.
UTKFace's malformed file names), and exits 2 with one line on bad input.
"""

from __future__ import annotations

import argparse
import logging

__all__ = ["add_import_parser", "run_import"]

log = logging.getLogger("audit")


def add_import_parser(sub) -> argparse.ArgumentParser:
    from .importers import SOURCES

    p = sub.add_parser("import", help="read a public fairness data set in its published layout and write a data card")
    p.add_argument("source", metavar="SOURCE", choices=list(SOURCES), help=f"one of {', '.join(SOURCES)}")
    p.add_argument("root", metavar="ROOT",
                   help="the data set's directory; give it as '${FAIRFACE_ROOT}' (quoted) and the card keeps the "
                        "variable, so it works on every machine")
    p.add_argument("--out", metavar="CARD", required=True, help="card to write (data_cards/NAME.md); side files go "
                                                                "beside it")
    p.add_argument("--split", metavar="S", help="fairface: train|val (val); utkface: all; celeba: "
                                                "train|valid|test|all (test); miap: train|val|test (test); "
                                                "facet: detection|instance_segmentation|semantic_segmentation|"
                                                "classification (detection)")
    p.add_argument("-q", "--quiet", action="store_true", help="print only warnings and errors")
    return p


def run_import(args) -> int:
    from .importers import import_dataset

    result = import_dataset(args.source, args.root, args.out, split=args.split)
    log.info("%s: %s %s", result.card, f"{result.n_samples:,}", result.unit)
    for name, groups in result.counts.items():
        log.info("  %s: %s", name, ", ".join(f"{g} {n:,}" for g, n in groups.items()))
    for note in result.notes:
        log.info("  %s", note)
    for path in result.files:
        log.info("wrote %s", path)
    return 0
