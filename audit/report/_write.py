"""Writing an audit: :func:`run_audit` (what ``audit run`` does) and :func:`write_outputs`, the whole output set.

The report layer sits above the pipeline driver (:mod:`audit.pipeline`): the driver returns an
:class:`~audit.core.run.AuditRun` and this module turns it into ``results.json``, ``index.html`` and the side
tables, committed as one set (:func:`audit._output.commit_files`).
"""

from __future__ import annotations

import json

import pandas as pd

from ..core.run import load_results_schema, results_document
from ..pipeline import AuditRun, evaluate

__all__ = ["render_html", "run_audit", "write_outputs"]


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
    from .._output import output_lock

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
        from ..dataset import report_section

        dataset = report_section(data, split=split, image_statistics=run.image_statistics)
    image_paths = image_root = None
    if thumbnails and run.samples is not None:
        from . import image_paths_from_card

        # per-cell counts keep their samples' ids and image paths as .samples (up to the detail limit)
        image_paths = image_paths_from_card(getattr(data, "path", data), split=getattr(split, "samples", split))
    if thumbnails and (run.people is not None or run.images is not None):
        from . import image_root_from_card

        image_root = image_root_from_card(getattr(data, "path", data))
    run.paths = write_outputs(run.result, out_dir, provenance=run.provenance, dataset=dataset,
                              predictions=run.predictions if run.samples is not None else None, samples=run.samples,
                              image_paths=image_paths, thumbnails=thumbnails,
                              command=None if command is None else " ".join(str(c) for c in command),
                              people=run.people, images=run.images, image_root=image_root,
                              explanations=run.explanations)
    return run


def write_outputs(result, out_dir, *, provenance: dict | None = None, dataset: dict | None = None,
                  predictions: pd.DataFrame | None = None, samples: pd.DataFrame | None = None,
                  image_paths: dict | None = None, thumbnails: bool = True, command: str | None = None,
                  people: pd.DataFrame | None = None, images: pd.DataFrame | None = None,
                  image_root=None, explanations: dict | None = None) -> dict:
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
    explanations : dict, optional
        The gap analysis (:attr:`AuditRun.explanations`), ``results.json``'s ``explanations``.

    Returns
    -------
    dict of str to Path
    """
    import io

    import jsonschema

    from .._output import commit_files, prepare_out_dir
    from ..compare import SAMPLES_FILE
    from . import COMMAND_FILE, DATASET_FILE, IMAGES_FILE, PEOPLE_FILE, render_document

    out_dir = prepare_out_dir(out_dir)
    document = results_document(result, provenance=provenance, explanations=explanations)
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
    from . import render_document

    return render_document(document, dataset=dataset, **kwargs)
