"""Argument types the ``audit`` subcommands share (a leaf module: :mod:`audit.cli` and its parsers import it)."""

from __future__ import annotations

import argparse


def _int_at_least(minimum: int):
    """An argparse type: an integer >= ``minimum``, with a message naming what was found."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, found {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"expected an integer >= {minimum}, found {value}")
        return value

    return parse


_positive_int = _int_at_least(1)
_non_negative_int = _int_at_least(0)

MAX_RESAMPLES = 100_000  # bootstrap replicates / permutations: enough for any interval, bounded memory
MAX_SEED = 2**32 - 1  # numpy's legacy seeding range


def _int_between(minimum: int, maximum: int):
    """An argparse type: an integer in ``minimum..maximum``."""
    at_least = _int_at_least(minimum)

    def parse(text: str) -> int:
        value = at_least(text)
        if value > maximum:
            raise argparse.ArgumentTypeError(f"expected an integer <= {maximum:,}, found {value:,}")
        return value

    return parse
