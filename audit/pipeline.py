"""The classification audit end to end: cards -> split -> predictions -> engine -> report.

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

import functools
import json
import logging
import os
import platform
from dataclasses import dataclass, field
from datetime import datetime, timezone
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd

from ._io import atomic_write_bytes, atomic_write_text
from .distributed import context_from_env, discard_chunks, predict_in_chunks
from .cards import DataCard, ModelCard, load_data_card, load_model_card
from .core.run import (  # noqa: F401 - re-exported: where callers and tests find them
    RESULTS_SCHEMA_VERSION, AuditRun, _created, _fmt, _model_provenance, check_reference_groups,
    load_results_schema, results_document)
from .errors import AuditError

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

def _as_card(value, loader, kind):
    if value is None or isinstance(value, (DataCard, ModelCard)):
        return value
    return loader(value)


def _classification_options(card) -> dict:
    """``pos_label`` (as a class index) and ``disparity_metrics`` for the engine, where the card sets them."""
    options = {}
    if card.options.get("pos_label") is not None:
        options["pos_label"] = list(card.classes).index(card.options["pos_label"])
    if card.options.get("disparity_metrics") is not None:
        options["disparity_metrics"] = list(card.options["disparity_metrics"])
    return options


def _settled(card, *, pos_label, min_group_size, **settings):
    """The data card with the command line's settings over its own; a positive class only where there are classes."""
    from .cards import apply_settings

    if pos_label is not None:
        classes = getattr(card, "classes", None)
        if classes is None:
            raise AuditError(f"--pos-label: expected no positive class for the detection audit of {card.path}, "
                             f"found '{pos_label}' (it applies to classification)")
        if pos_label not in classes:
            raise AuditError(f"--pos-label: expected one of the classes of {card.path} {list(classes)}, "
                             f"found '{pos_label}'")
    return apply_settings(card, pos_label=pos_label, min_group_size=min_group_size, **settings)


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
    """Load the cards and split, get predictions, run the statistics engine.

    Parameters are those of :func:`audit_split`. ``interval``,
    ``correction``, ``pos_label`` (a class name), ``disparity_metrics`` and
    ``min_group_size`` override the data card's settings when given; the
    defaults are Wilson, Benjamini-Hochberg, every class, the task's headline
    metrics and 50. Model predictions are
    committed in chunks of ``chunk_size`` samples under ``out_dir``, so an
    interrupted run resumes; ``context`` (default: from ``torchrun``'s
    environment) shards the chunks over ranks.

    Returns
    -------
    AuditRun
    """
    import torch

    from ._version import __version__
    from .data import fingerprint_split, load_split
    from .inference import file_sha256, load_cache, load_predictions_file, run_inference, save_cache
    from .stats import Attribute, audit_classification

    context = context or context_from_env()
    from .detection.cards import DetectionDataCard, is_detection_data_card

    settings = dict(correction=correction, interval=interval, disparity_metrics=disparity_metrics)
    if isinstance(data, DetectionDataCard) or (isinstance(data, (str, Path)) and is_detection_data_card(data)):
        from .detection.cards import load_detection_data_card
        from .detection.pipeline import evaluate_detection

        card = _settled(data if isinstance(data, DetectionDataCard) else load_detection_data_card(data),
                        pos_label=pos_label, min_group_size=min_group_size, **settings)
        run = evaluate_detection(
            data=card, model=model, predictions=predictions, out_dir=out_dir, use_cache=use_cache,
            batch_size=batch_size, num_workers=num_workers, device=device, seed=seed, n_boot=n_boot, alpha=alpha,
            correction=card.options.get("correction", "fdr_bh"), interval=card.options.get("interval", "wilson"),
            progress=progress, chunk_size=chunk_size, context=context,
        )
        return run if context.is_main else None
    data_card = _as_card(data, load_data_card, "data")
    model_card = _as_card(model, load_model_card, "model")
    data_card = _settled(data_card, pos_label=pos_label if data_card.segmentation is None else None,
                         min_group_size=min_group_size, **settings)
    if pos_label is not None and data_card.segmentation is not None:
        raise AuditError(f"--pos-label: expected no positive class for the segmentation audit of {data_card.path}, "
                         f"found '{pos_label}' (it applies to classification)")
    interval = data_card.options.get("interval", "wilson")
    correction = data_card.options.get("correction", "fdr_bh")
    if (model_card.task if model_card is not None else None) == "semantic_segmentation" or (
        model_card is None and data_card.segmentation is not None
    ):
        from .segmentation.pipeline import evaluate_segmentation

        run = evaluate_segmentation(
            data=data_card, model=model_card, predictions=predictions, out_dir=out_dir, use_cache=use_cache,
            batch_size=batch_size, num_workers=num_workers, device=device, seed=seed, n_boot=n_boot, alpha=alpha,
            correction=correction, progress=progress, chunk_size=chunk_size, context=context,
        )
        return run if context.is_main else None
    if model_card is None and predictions is None:
        raise AuditError("expected a model card or a predictions file, found neither")
    net = model_sha = None
    if model_card is not None:
        from .models import fingerprint_model

        model_sha = fingerprint_model(model_card)  # also checks that the card's files are there
    if model_card is not None and predictions is None:  # checked and built before the data: a bad model fails fast
        from .model_spec import class_matrix
        from .models import build_model, guard_forward

        class_matrix(label_map=model_card.label_map, classes=data_card.classes, class_map=model_card.class_map,
                     model_card_path=model_card.path)
        net = guard_forward(build_model(model_card), model_card)

    frame = load_split(data_card, verify_images=verify_images, require_images=predictions is None)
    log.info("data: %s (%d samples, %d classes)", data_card.path, len(frame), len(data_card.classes))
    check_reference_groups(data_card.path, frame[[a.name for a in data_card.attributes]],
                           [Attribute(name=a.name, column=a.name, scale=a.scale, bins=a.bins, order=a.order)
                            for a in data_card.attributes], data_card.intersections, data_card.reference_groups)
    data_sha = fingerprint_split(data_card, frame, include_images=predictions is None)
    pred_info: dict = {}

    if predictions is not None:
        preds = load_predictions_file(predictions, sample_ids=frame["sample_id"].tolist(), classes=data_card.classes,
                                      id_column=data_card.split.id_column)
        pred_info = {"source": "file", "file": str(predictions), "sha256": file_sha256(predictions)}
        log.info("predictions: read from %s", predictions)
    else:
        preds = None
        if out_dir is not None and use_cache:
            preds = load_cache(
                out_dir,
                model_sha256=model_sha,
                data_sha256=data_sha,
                classes=data_card.classes,
                sample_ids=frame["sample_id"].tolist(),
            )
        if preds is not None:
            # the same provenance as the run that made them: results.json does not depend on cache state
            pred_info = {"source": "model", "device": str(preds.attrs.get("cache_meta", {}).get("device", "unknown"))}
            log.info("predictions: reusing cache %s (model and data hashes match)",
                     Path(out_dir) / "predictions.parquet")
            discard_chunks(out_dir)  # left by a run killed between caching the merge and discarding them
        else:
            from .models import build_transform, select_device

            torch_device = select_device(device)
            transform = build_transform(model_card)
            log.info("predictions: running %s on %s", model_card.name, torch_device)
            torch.manual_seed(seed)
            infer = functools.partial(
                run_inference,
                net,
                transform=transform,
                classes=data_card.classes,
                label_map=model_card.label_map,
                class_map=model_card.class_map,
                batch_size=batch_size,
                num_workers=num_workers,
                device=torch_device,
                progress=progress,
                source=str(frame.attrs.get("source", data_card.split.table)),
            )
            if out_dir is None:
                preds = infer(frame)
            else:
                preds = predict_in_chunks(lambda part: infer(part), frame, out_dir=out_dir,
                                          key=f"{model_sha}{data_sha}", chunk_size=chunk_size, context=context)
                if preds is None:
                    return None  # not rank 0: rank 0 merges the chunks and computes the audit
            pred_info = {"source": "model", "device": str(torch_device)}
            if out_dir is not None:
                save_cache(
                    out_dir,
                    preds,
                    meta={
                        "source": "model",
                        "device": str(torch_device),
                        "model_card": str(model_card.path),
                        "model_sha256": model_sha,
                        "data_card": str(data_card.path),
                        "data_sha256": data_sha,
                        "classes": list(data_card.classes),
                        "n_samples": len(preds),
                    },
                )
                discard_chunks(out_dir)

    if not context.is_main:
        return None
    score_cols = [f"score_{c}" for c in data_card.classes]
    scores = None
    if all(c in preds.columns for c in score_cols):
        candidate = preds[score_cols].to_numpy(dtype=float)
        infinite = np.isinf(candidate).any(axis=1)
        if infinite.any():  # a model that overflowed: name the sample rather than fail inside the engine
            from .errors import PredictionError

            row = int(np.flatnonzero(infinite)[0])
            source = predictions if predictions is not None else (model_card.path if model_card else "predictions")
            raise PredictionError(f"{source}: sample '{preds['sample_id'].iat[row]}': expected finite class scores, "
                                  "found inf")
        if not np.isnan(candidate).any():
            scores = candidate
    attributes = [
        Attribute(name=a.name, column=a.name, scale=a.scale, bins=a.bins, order=a.order) for a in data_card.attributes
    ]
    groups = frame[[a.name for a in data_card.attributes]].reset_index(drop=True)
    from .errors import StatsInputError

    try:  # the engine's message names the argument; say which card declared it
        result = audit_classification(
            y_true=frame["label"].to_numpy(dtype=np.int64),
            y_pred=preds["pred"].to_numpy(dtype=np.int64),
            groups=groups,
            attributes=attributes,
            intersections=[tuple(c) for c in data_card.intersections],
            classes=list(data_card.classes),
            scores=scores,
            reference_groups=dict(data_card.reference_groups) or None,
            interval=interval,
            n_boot=n_boot,
            n_perm=n_perm,
            bootstrap=bootstrap,
            seed=seed,
            alpha=alpha,
            correction=correction,
            min_group_size=data_card.min_group_size,
            **_classification_options(data_card),
        )
    except StatsInputError as exc:
        raise StatsInputError(f"{data_card.path}: {exc}") from None

    table = preds.copy()
    table.insert(1, "label", frame["label"].to_numpy())
    provenance = {
        "audit_version": __version__,
        "created": _created(),
        "model": _model_provenance(model_card, model_sha),
        "data": {
            "card": str(data_card.path),
            "name": data_card.name,
            "title": str(data_card.front_matter.get("pretty_name") or data_card.front_matter.get("name") or data_card.name),
            "sha256": data_sha,
            "split": str(data_card.split.folder or data_card.split.table),
            "n_samples": int(len(frame)),
            "classes": list(data_card.classes),
            "attributes": [a.name for a in data_card.attributes],
        },
        "predictions": pred_info,
        "settings": {
            "seed": seed,
            "n_boot": n_boot,
            "n_perm": n_perm,
            "interval": interval,
            "bootstrap": bootstrap,
            "alpha": alpha,
            "correction": correction,
            "min_group_size": data_card.min_group_size,
            **{k: v for k, v in data_card.options.items() if k in ("pos_label", "disparity_metrics")},
        },
        "environment": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "numpy": np.__version__,
            "pandas": pd.__version__,
        },
    }
    from .compare import samples_table

    samples = samples_table(frame["sample_id"], table["label"], table["pred"], groups, attributes,
                            [tuple(c) for c in data_card.intersections])
    return AuditRun(result=result, provenance=provenance, predictions=table, samples=samples)


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
    if data_audit:
        from .dataset import report_section

        dataset = report_section(data)
    image_paths = image_root = None
    if thumbnails and run.samples is not None:
        from .report import image_paths_from_card

        image_paths = image_paths_from_card(getattr(data, "path", data))
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
