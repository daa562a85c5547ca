"""The ``audit`` command.

``audit run --model models/X.md --data data_cards/Y.md --out reports/Z``
    Audit a model (classifier, detector, instance or semantic segmenter; the
    model card's ``task``), or predictions made elsewhere, on a split; writes
    ``results.json``, ``index.html`` and the prediction cache into ``--out``.
``audit demo [--out reports/demo] [--knobs on|off|representation|acquisition]``
    Draw the planted-bias benchmark, train a classifier, a detector and a
    segmenter on it (as ``audit train`` does) and audit all three in one report; the knobs plant both causes
    of the bias, one of them, or none.
``audit compare BASELINE CANDIDATE``
    Compare two audits against a regression policy; exit 1 on a regression.
``audit train --task T --data TRAIN_CARD --out models/NAME.md``
    Transfer learning onto a ResNet-18 trunk with a new head; writes the
    weights and a model card ``audit run`` reads.
``audit import SOURCE ROOT --out data_cards/NAME.md [--split S]``
    Read a public fairness data set (FACET, MIAP, FairFace, UTKFace, CelebA) in
    its published layout and write a data card ``audit run`` reads.
``audit report OUT [OUT ...]``
    Re-render the HTML report from audit outputs, without rerunning anything.

Errors caused by input (:class:`~audit.errors.AuditError`) print one line
``error: <message>`` to stderr and exit with code 2; ``--traceback`` prints
the full trace before it (e.g. where in your model's ``forward()`` an
exception was raised). Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
import warnings

from .errors import AuditError

__all__ = ["main"]


from ._argtypes import MAX_RESAMPLES, MAX_SEED, _int_at_least, _int_between, _non_negative_int, _positive_int  # noqa: F401


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line ``error: ...`` and exit code 2, like every other bad input."""

    def error(self, message):
        self.exit(2, f"error: {self.prog}: {' '.join(message.split())}\n")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``audit`` command."""
    parser = _Parser(
        prog="audit", description="Fairness audits for computer-vision models: per-group metrics, intervals, tests."
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = sub.add_parser(
        "run", help="audit a model (classifier, detector, instance or semantic segmenter) or its predictions on a "
                    "data split",
        description="Audit a model on a data split: a classifier, a detector, an instance or a semantic segmenter "
                    "(the model card's task), or predictions made elsewhere (--predictions). Writes results.json "
                    "and index.html into --out.")
    run.add_argument("--model", metavar="CARD", help="model card (models/NAME.md); optional with --predictions")
    run.add_argument("--data", metavar="CARD", required=True, help="data card (data_cards/NAME.md)")
    run.add_argument("--out", metavar="DIR", required=True, help="output directory (reports/NAME)")
    run.add_argument("--predictions", metavar="FILE", help="predictions made elsewhere (CSV/Parquet, or a directory of Parquet files, with the data card's id column; COCO results JSON for detection; a directory of <sample_id>.png masks or an id,mask manifest for segmentation); replaces the model")
    run.add_argument("--no-cache", action="store_true", help="run the model even if cached predictions match")
    run.add_argument("--chunk-size", type=_positive_int, default=1024, metavar="N",
                     help="samples per committed prediction chunk; a killed run resumes from its chunks (default 1024)")
    run.add_argument("--update-model-card", action="store_true",
                     help="write the results into the model card (quantitative analyses, model-index) "
                          "and OUT/model_card.json")
    run.add_argument("--no-data-audit", action="store_true",
                     help="leave the dataset section (composition, image statistics) out of index.html")
    stats = run.add_argument_group("statistics (each overrides the data card's field of the same name)")
    stats.add_argument("--pos-label", metavar="CLASS",
                       help="the positive class of a binary task: only its rows are reported and tested")
    stats.add_argument("--correction", choices=("fdr_bh", "holm"),
                       help="multiplicity control over the audit's tests (default fdr_bh: Benjamini-Hochberg)")
    stats.add_argument("--interval", choices=("wilson", "clopper-pearson", "bootstrap"),
                       help="interval for proportions (default wilson)")
    stats.add_argument("--disparity-metrics", type=_name_list, metavar="M1,M2",
                       help="classification metrics compared between groups and tested "
                            "(default error_rate,tpr,fpr,ppv,selection_rate)")
    stats.add_argument("--min-group-size", type=_positive_int, metavar="N",
                       help="groups below N are flagged small (default 50)")
    stats.add_argument("--covariates", type=_name_list, metavar="C1,C2",
                       help="what may explain a gap (card columns such as lighting, or brightness, contrast, "
                            "sharpness, resolution, box_size): the gap is stratified and adjusted for them")
    run.add_argument("--no-thumbnails", action="store_true",
                     help="leave the worst-error thumbnails out of index.html (privacy); sample ids are still listed")
    _common(run)

    demo = sub.add_parser("demo", help="draw the planted-bias benchmark, train a classifier, a detector and a "
                                       "segmenter on it, and audit all three and their panoptic merge")
    demo.add_argument("--out", metavar="DIR", default="reports/demo", help="output directory (default: reports/demo)")
    demo.add_argument("--knobs", choices=("on", "off", "representation", "acquisition"), default="on",
                      help="plant the bias (on, default: rare Monk 6-10 people in the training data, and more often "
                           "underexposed everywhere), one cause alone (representation: rare in training; "
                           "acquisition: more often underexposed) or none (off)")
    demo.add_argument("--backbone-weights", metavar="PATH_OR_ENUM",
                      help="pretrained ResNet-18 weights (a local .pth or a torchvision enum name) instead of the "
                           "project's own source-task pretraining")
    demo.add_argument("--covariates", type=_name_list, metavar="C1,C2",
                      help="what may explain a gap, over the benchmark cards' covariates (default: lighting)")
    demo.add_argument("--tasks", type=_demo_tasks, metavar="T1,T2",
                      help="audit only these of classification, detection, segmentation, panoptic (default: all), "
                           "training only the models they need")
    demo.add_argument("--no-thumbnails", action="store_true", help="leave the worst-error thumbnails out of index.html")
    _common(demo, n_boot=500)

    report = sub.add_parser("report", help="re-render the HTML report from audit outputs (nothing is rerun)")
    report.add_argument("sources", nargs="+", metavar="OUT",
                        help="audit output directory or its results.json; several (one per task) make one page")
    report.add_argument("-o", "--output", metavar="FILE",
                        help="HTML file to write (default: index.html beside the first results.json)")
    report.add_argument("--no-thumbnails", action="store_true", help="leave the worst-error thumbnails out")
    report.add_argument("-q", "--quiet", action="store_true", help="print only warnings and errors")

    from .cli_compare import add_compare_parser

    add_compare_parser(sub)
    from .cli_data_card import add_data_card_parser

    add_data_card_parser(sub)
    from .cli_train import add_train_parser

    add_train_parser(sub)
    from .cli_import import add_import_parser

    add_import_parser(sub)
    return parser


def _name_list(text: str) -> list[str]:
    """``a,b,c`` -> ``["a", "b", "c"]``: comma-separated names, none empty."""
    names = [name.strip() for name in text.split(",")]
    if not all(names):
        raise argparse.ArgumentTypeError(f"expected comma-separated names, found '{text}'")
    return names


def _demo_tasks(text: str) -> list[str]:
    """``audit demo --tasks``: a comma list of the demo's audits."""
    from .demo import AUDITS

    names = _name_list(text)
    unknown = [name for name in names if name not in AUDITS]
    if unknown:
        raise argparse.ArgumentTypeError(f"expected some of {', '.join(AUDITS)}, found '{unknown[0]}'")
    return names


def _common(p: argparse.ArgumentParser, *, n_boot: int = 1000) -> None:
    p.add_argument("-q", "--quiet", action="store_true", help="print only warnings and errors")
    p.add_argument("--batch-size", type=_int_between(1, 65_536), default=64, metavar="N",
                   help="images per batch (default 64)")
    p.add_argument("--num-workers", type=_int_between(0, 256), default=0, metavar="N",
                   help="DataLoader workers (default 0, at most 256)")
    p.add_argument("--device", choices=("cpu", "cuda", "mps"), help="default: cuda, then mps, then cpu")
    p.add_argument("--seed", type=_int_between(0, MAX_SEED), default=0,
                   help="seed for bootstrap and permutation tests (default 0)")
    p.add_argument("--n-boot", type=_int_between(1, MAX_RESAMPLES), default=n_boot, metavar="N",
                   help=f"bootstrap replicates (default {n_boot}, at most {MAX_RESAMPLES:,})")
    p.add_argument("--n-perm", type=_int_between(1, MAX_RESAMPLES), default=n_boot, metavar="N",
                   help=f"permutations per test (default {n_boot}, at most {MAX_RESAMPLES:,})")
    p.add_argument("--traceback", action="store_true",
                   help="on an error, print the full traceback (e.g. inside your model's forward()) before the "
                        "one-line message")


class _StdoutHandler(logging.Handler):
    """Progress messages to whatever ``sys.stdout`` is at the time (stderr is for errors)."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            print(self.format(record), file=sys.stdout, flush=True)
        except Exception:  # noqa: BLE001 - logging must never break the run
            self.handleError(record)


def _configure_logging(quiet: bool) -> None:
    logger = logging.getLogger("audit")
    if not any(isinstance(h, _StdoutHandler) for h in logger.handlers):
        handler = _StdoutHandler()
        handler.setFormatter(logging.Formatter("%(message)s"))
        logger.addHandler(handler)
    logger.setLevel(logging.WARNING if quiet else logging.INFO)
    logger.propagate = False


def _run_report(args) -> int:
    from pathlib import Path

    from .report import write_report

    first = Path(args.sources[0])
    target = Path(args.output) if args.output else (first if first.is_dir() else first.parent) / "index.html"
    path = write_report(args.sources, target, thumbnails=not args.no_thumbnails)
    logging.getLogger("audit").info("wrote %s", path)
    return 0


# Subcommands that run one function of args and report AuditError as one line (run and demo are below).
_SIMPLE_COMMANDS = {"compare": ".cli_compare:run_compare", "report": ".cli:_run_report",
                    "train": ".cli_train:run_train", "data-card": ".cli_data_card:run_data_card",
                    "import": ".cli_import:run_import"}


def main(argv: list[str] | None = None) -> int:
    """Run the ``audit`` command; returns the exit code (0, 1 for a regression, 2 for bad input, 130 on Ctrl-C).

    Besides :class:`AuditError`, two things that are not bugs also end in one line: a write the system refuses
    (full disk, file size limit, read-only file system: exit 2, the previous output unchanged) and Ctrl-C (exit
    130; committed prediction chunks stay, so the same command resumes).
    """
    import errno
    import signal

    if hasattr(signal, "SIGXFSZ") and threading_main():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # past `ulimit -f` a write raises EFBIG instead of killing us
    try:
        return _main(argv)
    except KeyboardInterrupt:
        print("error: interrupted; committed work is kept, run the same command again to resume", file=sys.stderr)
        return 130
    except OSError as exc:
        if exc.errno not in (errno.ENOSPC, errno.EFBIG, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM):
            raise
        from ._output import write_error

        print(f"error: {' '.join(str(write_error(exc)).split())}", file=sys.stderr)
        return 2


MAX_MESSAGE = 2000  # characters of an error line; a message never echoes a huge value whole


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text if len(text) <= MAX_MESSAGE else text[:MAX_MESSAGE] + "..."


def threading_main() -> bool:
    """Whether this is the main thread (only it may install signal handlers)."""
    import threading

    return threading.current_thread() is threading.main_thread()


def _main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    _configure_logging(args.quiet)
    runner = _SIMPLE_COMMANDS.get(args.command)
    if runner is not None:  # compare: exit 0 pass, 1 regression, 2 bad input; the others 0 or 2
        module, function = runner.split(":")
        try:
            return getattr(importlib.import_module(module, __package__), function)(args)
        except AuditError as exc:
            print(f"error: {_one_line(exc)}", file=sys.stderr)
            return exc.exit_code
    options = dict(
        batch_size=args.batch_size,
        num_workers=args.num_workers,
        device=args.device,
        seed=args.seed,
        n_boot=args.n_boot,
        n_perm=args.n_perm,
        thumbnails=not args.no_thumbnails,
        command=["audit", *(sys.argv[1:] if argv is None else argv)],
    )
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            run = _dispatch(args, options)
    except AuditError as exc:
        if args.traceback:
            import traceback

            traceback.print_exception(exc, file=sys.stderr)
        message = _one_line(exc)
        print(f"error: {message}", file=sys.stderr)
        return exc.exit_code
    seen = set()
    for w in caught:
        if not issubclass(w.category, UserWarning):
            continue  # deprecations and the like are for developers, not for the report's reader
        text = " ".join(str(w.message).split())
        if text not in seen:
            seen.add(text)
            print(f"warning: {text}", file=sys.stderr)
    if run is None:  # a torchrun rank other than 0: its chunks are committed, rank 0 writes the audit
        return 0
    logging.getLogger("audit").info("wrote %s and %s", run.paths["results"], run.paths["html"])
    return 0


def _dispatch(args, options):
    if args.command == "run":
        from .report import run_audit

        if args.model is None and args.predictions is None:
            raise AuditError("audit run: expected --model or --predictions, found neither")
        if args.update_model_card and args.model is None:
            raise AuditError("audit run: expected --model with --update-model-card, found only --predictions")
        run = run_audit(
            model=args.model,
            data=args.data,
            predictions=args.predictions,
            out_dir=args.out,
            use_cache=not args.no_cache,
            chunk_size=args.chunk_size,
            data_audit=not args.no_data_audit,
            pos_label=args.pos_label, correction=args.correction, interval=args.interval,
            disparity_metrics=args.disparity_metrics, min_group_size=args.min_group_size,
            covariates=args.covariates,
            **options,
        )
        if run is not None and args.update_model_card:
            from .model_card import update_model_card

            run.paths.update(update_model_card(args.model, run.paths["results"], out_dir=args.out))
            logging.getLogger("audit").info("updated %s and wrote %s", args.model, run.paths["model_card_json"])
        return run
    from .benchmark import Knobs
    from .demo import run_demo

    return run_demo(out_dir=args.out, knobs=Knobs.named(args.knobs), backbone_weights=args.backbone_weights,
                    covariates=args.covariates, tasks=args.tasks, **options)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
