"""``audit compare BASELINE CANDIDATE``: the regression gate.

Exit code 0 when no metric or disparity regressed under the policy, 1 when
one did, 2 for bad input (one line ``error: ...`` on stderr).
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from .errors import CompareError

__all__ = ["add_compare_parser", "run_compare"]

log = logging.getLogger("audit")


def _metric_limit(text: str) -> tuple[str, float]:
    name, sep, value = text.partition("=")
    try:
        limit = float(value)
    except ValueError:
        limit = None
    if not sep or not name or limit is None:
        raise argparse.ArgumentTypeError(f"expected METRIC=NUMBER, found {text!r}")
    return name, limit


def _float(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, found {text!r}") from None


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, found {text!r}") from None


def add_compare_parser(sub) -> argparse.ArgumentParser:
    """Add the ``compare`` subcommand to the ``audit`` parser's subparsers."""
    p = sub.add_parser(
        "compare", help="compare a candidate audit with a baseline; exit 1 on a regression",
        description="Match the metrics and disparities of two audits, show each change with its interval and "
                    "judge it against a policy. Exit 0: pass, 1: regression, 2: bad input.",
    )
    p.add_argument("baseline", metavar="BASELINE", help="baseline audit output directory or results.json")
    p.add_argument("candidate", metavar="CANDIDATE", help="candidate audit output directory or results.json")
    p.add_argument("--policy", metavar="FILE", help="YAML policy file; the flags below override it")
    p.add_argument("--max-drop", type=_float, metavar="X",
                   help="largest allowed worsening of any metric, in its units (default 0.01)")
    p.add_argument("--max-drop-metric", type=_metric_limit, action="append", metavar="METRIC=X", default=[],
                   help="largest allowed worsening of one metric, e.g. accuracy=0.005 (repeatable)")
    p.add_argument("--max-disparity-growth", type=_float, metavar="X",
                   help="largest allowed growth of |difference| of a disparity (default 0.02)")
    p.add_argument("--min-n", type=_int, metavar="N", help="gate only rows with n >= N in both audits (default 30)")
    p.add_argument("--significant-only", action=argparse.BooleanOptionalAction, default=None,
                   help="fail only when the worsening is significant (default: yes)")
    p.add_argument("--alpha", type=_float, help="level of the one-sided tests (default 0.05)")
    from ._argtypes import MAX_RESAMPLES, MAX_SEED, _int_between

    p.add_argument("--n-boot", type=_int_between(1, MAX_RESAMPLES), metavar="N",
                   help=f"bootstrap resamples (default 1000, at most {MAX_RESAMPLES:,})")
    p.add_argument("--seed", type=_int_between(0, MAX_SEED), help="bootstrap seed (default 0)")
    pairing = p.add_mutually_exclusive_group()
    pairing.add_argument("--unpaired", dest="paired", action="store_const", const=False, default=None,
                         help="never pair samples, even when both audits scored the same ones")
    pairing.add_argument("--paired", dest="paired", action="store_const", const=True,
                         help="require a paired comparison (error if the samples differ)")
    p.add_argument("--out", metavar="DIR",
                   help="where to write comparison.json, .xml and .html (default: CANDIDATE's directory/compare)")
    p.add_argument("-q", "--quiet", action="store_true", help="print only the verdict line and errors")
    return p


def run_compare(args) -> int:
    """Run ``audit compare``; returns 0 (pass) or 1 (regression). Bad input raises ``AuditError``."""
    from .compare import compare_audits, load_policy, write_comparison

    max_drop = {"default": args.max_drop} if args.max_drop is not None else {}
    max_drop.update(dict(args.max_drop_metric))
    policy = load_policy(
        args.policy,
        max_drop=max_drop or None,
        max_disparity_growth=None if args.max_disparity_growth is None else {"default": args.max_disparity_growth},
        min_n=args.min_n,
        significant_only=args.significant_only,
        alpha=args.alpha,
        n_boot=args.n_boot,
        seed=args.seed,
    )
    comparison = compare_audits(args.baseline, args.candidate, policy=policy, paired=args.paired)
    if args.out is not None:
        out = Path(args.out)
    else:
        candidate = Path(args.candidate)
        out = (candidate if candidate.is_dir() else candidate.parent) / "compare"
    if out.exists() and not out.is_dir():
        raise CompareError(f"--out: expected a directory, found a file '{out}'")
    paths = write_comparison(comparison, out)
    summary = comparison.summary()
    print(summary if not args.quiet else summary.splitlines()[0])
    log.info("wrote %s, %s and %s", paths["json"], paths["junit"], paths["html"])
    return 0 if comparison.passed else 1
