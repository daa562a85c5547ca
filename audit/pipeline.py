"""The pipeline driver, for every task: cards -> split -> predictions -> engine -> report.

The data card's task (:func:`audit.core.registry.task_name`) picks the
:class:`~audit.core.registry.Task` from the registry; the task does the audit
and this module writes it.

Two entry points:

:func:`audit_split`
    The notebook API: returns the engine's
    :class:`~audit.stats.GroupedMetrics` (``.to_frame()``, ``.disparities``,
    rich display in Jupyter). Writes nothing unless ``out_dir`` is given, in
    which case predictions are cached there.
:func:`run_audit`
    What ``audit run`` does: the same, then :func:`write_outputs` writes
    ``results.json`` and ``index.html``.

Predictions come from, in order of precedence: a ``predictions`` file made
elsewhere; the cache in ``out_dir`` when its model and data hashes match;
running the model.
"""

from __future__ import annotations

import json
import logging

import pandas as pd

from .distributed import context_from_env
from .core.run import (  # noqa: F401 - re-exported: where callers and tests find them
    RESULTS_SCHEMA_VERSION, AuditRun, _created, _fmt, _model_provenance, check_reference_groups,
    load_results_schema, results_document)
from .errors import AuditError  # noqa: F401 - named in docstrings, imported from here by callers

__all__ = [
    "AuditRun",
    "RESULTS_SCHEMA_VERSION",
    "audit_split",
    "evaluate",
    "load_results_schema",
    "render_html",
    "results_document",
    "run_audit",
    "write_outputs",
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
    ``disparity_metrics`` and ``min_group_size`` override the data card's settings when given; the
    defaults are Wilson, Benjamini-Hochberg, every class, the task's headline metrics and 50. Model
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
                               interval=interval, disparity_metrics=disparity_metrics)
    run = task.evaluate(card, model=model, predictions=predictions, out_dir=out_dir, context=context,
                        use_cache=use_cache, batch_size=batch_size, num_workers=num_workers, device=device,
                        seed=seed, n_boot=n_boot, n_perm=n_perm, bootstrap=bootstrap, alpha=alpha,
                        verify_images=verify_images, progress=progress, chunk_size=chunk_size)
    return run if context.is_main else None


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


def run_audit(*, data, model=None, predictions=None, out_dir, data_audit: bool = True, thumbnails: bool = True,
              command: list[str] | None = None, **options) -> AuditRun | None:
    """Audit and write ``results.json``, ``index.html`` and the prediction cache into ``out_dir``.

    Parameters are those of :func:`audit_split`; ``out_dir`` is required.
    ``data_audit`` (default True) adds the dataset section of ``audit
    data-card`` (composition, co-occurrence, image statistics) to ``index.html``.
    ``thumbnails`` (default True) embeds thumbnails of the worst errors per
    group in ``index.html``; ``command`` (the command line) is shown in the
    report's reproducibility section and kept in ``command.txt`` (not in
    ``results.json``, which stays the same whatever the output directory).

    Returns
    -------
    AuditRun
    """
    from ._output import output_lock

    with output_lock(out_dir):
        return _run_audit(data=data, model=model, predictions=predictions, out_dir=out_dir, data_audit=data_audit,
                          thumbnails=thumbnails, command=command, **options)


def _run_audit(*, data, model, predictions, out_dir, data_audit, thumbnails, command, **options):
    run = evaluate(data=data, model=model, predictions=predictions, out_dir=out_dir, **options)
    if run is None:
        return None  # a torchrun rank other than 0
    dataset = None
    split = run.split  # loaded once by the task, handed down
    if data_audit:
        from .dataset import report_section

        dataset = report_section(data, split=split)
    image_paths = image_root = None
    if thumbnails and run.samples is not None:
        from .report import image_paths_from_card

        # per-cell counts keep their samples' ids and image paths as .samples (up to the detail limit)
        image_paths = image_paths_from_card(getattr(data, "path", data), split=getattr(split, "samples", split))
    if thumbnails and (run.people is not None or run.images is not None):
        from .report import image_root_from_card

        image_root = image_root_from_card(getattr(data, "path", data))
    run.paths = write_outputs(run.result, out_dir, provenance=run.provenance, dataset=dataset,
                              predictions=run.predictions if run.samples is not None else None, samples=run.samples,
                              image_paths=image_paths, thumbnails=thumbnails,
                              command=None if command is None else " ".join(str(c) for c in command),
                              people=run.people, images=run.images, image_root=image_root)
    return run


# ---------------------------------------------------------------------------
# Outputs
# ---------------------------------------------------------------------------


def write_outputs(result, out_dir, *, provenance: dict | None = None, dataset: dict | None = None,
                  predictions: pd.DataFrame | None = None, samples: pd.DataFrame | None = None,
                  image_paths: dict | None = None, thumbnails: bool = True, command: str | None = None,
                  people: pd.DataFrame | None = None, images: pd.DataFrame | None = None,
                  image_root=None) -> dict:
    """Write the output set: ``results.json`` (schema-validated), ``index.html`` and the side files, whole.

    Every document is fully built and checked before anything is written;
    then :func:`audit._output.commit_files` stages the set and moves it into
    place, so the set appears whole or not at all (a failure leaves the
    previous output untouched). The set holds ``command.txt``, the dataset
    section as ``dataset_section.json`` (so that ``audit report`` can
    re-render the page without recomputing it), ``samples.parquet`` and
    ``people.parquet`` / ``images.parquet`` when given; a stale
    ``people.parquet``, ``images.parquet`` or ``dataset_section.json`` from an
    earlier audit is removed in the same commit.

    Parameters
    ----------
    result : GroupedMetrics
        The engine's result.
    out_dir : str or Path
        Created if missing.
    provenance : dict, optional
        As in :attr:`AuditRun.provenance`.
    dataset : dict, optional
        :func:`audit.dataset.report_section`'s section.
    predictions, samples : DataFrame, optional
        Per-sample scores and groups (classification): the report's threshold sweep and worst errors.
    image_paths : dict, optional
        ``sample_id -> image file`` for the worst-error thumbnails.
    thumbnails : bool
        Embed the worst-error thumbnails (False: list sample ids only).
    command : str, optional
        The command line, shown in the report and kept in ``command.txt`` for ``audit report``.
    people : DataFrame, optional
        Per-person outcomes (:attr:`AuditRun.people`), kept as ``people.parquet``: the worst errors of
        detection and segmentation audits.
    images : DataFrame, optional
        Per-image outcomes (:attr:`AuditRun.images`), kept as ``images.parquet``: the worst images of a
        semantic segmentation audit without person masks.
    image_root : str or Path, optional
        Directory the ``file_name`` of ``people`` / ``images`` is relative to, for their thumbnails.

    Returns
    -------
    dict of str to Path
    """
    import io

    import jsonschema

    from ._output import commit_files, prepare_out_dir
    from .compare import SAMPLES_FILE
    from .report import COMMAND_FILE, DATASET_FILE, IMAGES_FILE, PEOPLE_FILE, render_document

    out_dir = prepare_out_dir(out_dir)
    document = results_document(result, provenance=provenance)
    jsonschema.validate(document, load_results_schema())  # a failure here is a bug, not bad input
    text = json.dumps(document, indent=2, allow_nan=False, ensure_ascii=False) + "\n"
    html = render_document(document, predictions=predictions, samples=samples, dataset=dataset,
                           image_paths=image_paths, thumbnails=thumbnails, location=str(out_dir), command=command,
                           people=people, images=images, image_root=image_root)
    files = {"results.json": text.encode("utf-8")}
    names = {"results": "results.json"}
    for name, file, frame in (("people", PEOPLE_FILE, people), ("images", IMAGES_FILE, images),
                              ("samples", SAMPLES_FILE, samples)):
        if frame is not None:  # per-person / per-image / per-sample tables, encoded before anything is written
            buffer = io.BytesIO()
            frame.to_parquet(buffer, index=False)
            files[file] = buffer.getvalue()
            names[name] = file
    if dataset is not None:
        files[DATASET_FILE] = (json.dumps(dataset, indent=1, sort_keys=True, ensure_ascii=False) + "\n").encode("utf-8")
        names["dataset_section"] = DATASET_FILE
    if command is not None:
        files[COMMAND_FILE] = (command + "\n").encode("utf-8")
        names["command"] = COMMAND_FILE
    files["index.html"] = html.encode("utf-8")
    names["html"] = "index.html"
    # a table left by an earlier audit in this directory would describe other people, images or data
    stale = tuple(f for f in (PEOPLE_FILE, IMAGES_FILE, DATASET_FILE) if f not in files)
    commit_files(out_dir, files, remove=stale)
    return {name: out_dir / file for name, file in names.items()}


def render_html(document: dict, *, dataset: dict | None = None, **kwargs) -> str:
    """Render the HTML report from a ``results.json`` document (see :mod:`audit.report`).

    ``dataset`` is the section of :meth:`audit.dataset.DatasetAudit.section`; other keyword arguments go to
    :func:`audit.report.render_document` (``predictions``, ``samples``, ``image_paths``, ``thumbnails``).
    """
    from .report import render_document

    return render_document(document, dataset=dataset, **kwargs)
