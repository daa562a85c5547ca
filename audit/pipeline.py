"""The pipeline driver, for every task: cards -> split -> predictions -> engine -> an :class:`AuditRun`.

The data card's task (:func:`audit.core.registry.task_name`) picks the
:class:`~audit.core.registry.Task` from the registry; the task does the audit
and this module writes it.

Two entry points:

:func:`audit_split`
    The notebook API: returns the engine's
    :class:`~audit.stats.GroupedMetrics` (``.to_frame()``, ``.disparities``,
    rich display in Jupyter). Writes nothing unless ``out_dir`` is given, in
    which case predictions are cached there.
:func:`evaluate`
    The same, returning the whole :class:`AuditRun` (result, provenance and
    per-sample tables); :func:`audit.report.run_audit` (what ``audit run``
    does) writes it as ``results.json`` and ``index.html``, one layer up.

Predictions come from, in order of precedence: a ``predictions`` file made
elsewhere; the cache in ``out_dir`` when its model and data hashes match;
running the model.
"""

from __future__ import annotations

import logging

from .core.distributed import context_from_env
from .core.run import (  # noqa: F401 - re-exported: where callers and tests find them
    RESULTS_SCHEMA_VERSION, AuditRun, created_time, _fmt, model_provenance, check_reference_groups,
    load_results_schema, results_document)
from .errors import AuditError  # noqa: F401 - named in docstrings, imported from here by callers

__all__ = [
    "AuditRun",
    "RESULTS_SCHEMA_VERSION",
    "audit_split",
    "evaluate",
    "load_results_schema",
    "results_document",
]

log = logging.getLogger("audit")


def evaluate(*, data, model=None, predictions=None, out_dir=None, **options) -> AuditRun | None:
    """Load the cards and split, get predictions, run the statistics engine (see :func:`_evaluate`).

    With ``out_dir``, the output directory's lock is held throughout (:func:`audit._output.output_lock`).
    """
    from ._output import output_lock

    with output_lock(out_dir):
        return _evaluate(data=data, model=model, predictions=predictions, out_dir=out_dir, **options)


def _evaluate(
    *,
    data,
    model=None,
    predictions=None,
    out_dir=None,
    use_cache: bool = True,
    batch_size: int = 64,
    num_workers: int = 0,
    device: str | None = None,
    seed: int = 0,
    n_boot: int = 1000,
    n_perm: int = 1000,
    interval: str | None = None,
    bootstrap: str = "plain",
    alpha: float = 0.05,
    correction: str | None = None,
    pos_label: str | None = None,
    disparity_metrics: list[str] | None = None,
    covariates: list[str] | None = None,
    min_group_size: int | None = None,
    verify_images: bool = True,
    progress: bool | None = None,
    chunk_size: int = 1024,
    context=None,
) -> AuditRun | None:
    """Load the cards and split, get predictions, run the statistics engine: the task the data card names does it.

    The task comes from the registry (:func:`audit.core.registry.task_name`, :func:`~audit.core.registry.get_task`):
    it parses its card section with the command line's settings over the card's, then evaluates
    (:class:`audit.core.registry.Task`). ``interval``, ``correction``, ``pos_label`` (a class name),
    ``disparity_metrics``, ``covariates`` (names) and ``min_group_size`` override the data card's settings
    when given; the defaults are Wilson, Benjamini-Hochberg, every class, the task's headline metrics, no
    covariates and 50. The gaps of the task's units are then taken apart by the covariates, once for every
    task (:func:`audit.core.explain.explain_gaps`, on :attr:`AuditRun.units`). Model
    predictions are committed in chunks of ``chunk_size`` samples under ``out_dir``, so an interrupted
    run resumes; ``context`` (default: from ``torchrun``'s environment) shards the chunks over ranks.

    Returns
    -------
    AuditRun, or None on a ``torchrun`` rank other than 0
    """
    from .core.registry import get_task, task_name

    context = context or context_from_env()
    task = get_task(task_name(data, model))
    card = task.load_data_card(data, pos_label=pos_label, min_group_size=min_group_size, correction=correction,
                               interval=interval, disparity_metrics=disparity_metrics, covariates=covariates)
    run = task.evaluate(card, model=model, predictions=predictions, out_dir=out_dir, context=context,
                        use_cache=use_cache, batch_size=batch_size, num_workers=num_workers, device=device,
                        seed=seed, n_boot=n_boot, n_perm=n_perm, bootstrap=bootstrap, alpha=alpha,
                        verify_images=verify_images, progress=progress, chunk_size=chunk_size)
    if run is None or not context.is_main:
        return None
    from .core.explain import explain_gaps

    declared = [c.name for c in (getattr(card, "options", None) or {}).get("covariates") or ()]
    run.explanations = explain_gaps(run.units, run.result, covariates=declared, seed=seed, n_boot=n_boot,
                                    confidence=1 - alpha)
    return run


def audit_split(*, data, model=None, predictions=None, out_dir=None, **options):
    """Audit a model (any task: the model card's ``task``) on a split and return the engine's result (notebook API).

    Parameters
    ----------
    data : str, Path or DataCard
        The data card.
    model : str, Path or ModelCard, optional
        The model card; optional when ``predictions`` is given.
    predictions : str or Path, optional
        Predictions made elsewhere (CSV or Parquet), used instead of the model.
    out_dir : str or Path, optional
        Where to cache predictions; ``None`` writes nothing.
    **options
        ``use_cache``, ``batch_size``, ``num_workers``, ``device``, ``seed``,
        ``n_boot``, ``n_perm``, ``interval``, ``bootstrap``, ``alpha``, ``correction``,
        ``verify_images``, ``progress``.

    Returns
    -------
    GroupedMetrics
        ``.to_frame()`` gives the tidy table; it renders as HTML in Jupyter.

    Raises
    ------
    AuditError
        Any problem with the cards, data, model or predictions.
    """
    return evaluate(data=data, model=model, predictions=predictions, out_dir=out_dir, **options).result
