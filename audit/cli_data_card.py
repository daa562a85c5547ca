"""``audit data-card CARD``: the dataset-bias audit of a data card's split, written into the card.

Computes composition (with the LFW-style sentence, a chart, missing rates and
the fit to a declared reference population), label x attribute nPMI,
image statistics per group, person-box statistics for COCO detection data,
and the comparison with the split named by ``compare_to``; writes it between
``<!-- audit:composition:start -->`` / ``end`` markers in the card (the rest
of the card is left byte-identical) and, with ``--out``, ``dataset.json`` and
``dataset.html``.
"""

from __future__ import annotations

import argparse
import logging

__all__ = ["add_data_card_parser", "run_data_card"]

log = logging.getLogger("audit")


def add_data_card_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser("data-card", help="audit a data card's split (composition, co-occurrence, image statistics) "
                                         "and write the results into the card")
    p.add_argument("card", metavar="CARD", help="data card (data_cards/NAME.md)")
    p.add_argument("--out", metavar="DIR", help="also write DIR/dataset.json and DIR/dataset.html")
    p.add_argument("--no-images", action="store_true", help="skip image statistics (do not read the images)")
    p.add_argument("--no-write", action="store_true", help="leave the card unchanged (with --out: report only)")
    p.add_argument("-q", "--quiet", action="store_true", help="print only warnings and errors")
    return p


def run_data_card(args) -> int:
    from .dataset import write_data_card

    result, paths = write_data_card(args.card, out_dir=args.out, images=not args.no_images,
                                    write_card=not args.no_write)
    log.info("%s", result.sentence)
    for path in paths.values():
        log.info("wrote %s", path)
    return 0
