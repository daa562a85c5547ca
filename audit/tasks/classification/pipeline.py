"""The classification audit: a classifier (or its predictions) on a labelled split, per group.

:func:`evaluate_classification` loads the split, builds or loads the
predictions (a file, the cache, or the model in resumable chunks), checks the
class scores and runs :func:`audit.stats.audit_classification`. Predictions
made elsewhere are streamed (:mod:`.stream`): the split and the file are read
in record batches and reduced to per-cell counts, the engine's sufficient
statistics, so a file of millions of rows costs what a groupby costs.
"""

from __future__ import annotations

import functools
import logging
import platform
from pathlib import Path

import numpy as np
import pandas as pd

from ...core.run import AuditRun, created_time, model_provenance, check_reference_groups
from ...core.distributed import discard_chunks, predict_in_chunks
from ...errors import AuditError

__all__ = ["evaluate_classification"]

log = logging.getLogger("audit")


def _classification_options(card) -> dict:
    """``pos_label`` (as a class index) and ``disparity_metrics`` for the engine, where the card sets them."""
    options = {}
    if card.options.get("pos_label") is not None:
        options["pos_label"] = list(card.classes).index(card.options["pos_label"])
    if card.options.get("disparity_metrics") is not None:
        options["disparity_metrics"] = list(card.options["disparity_metrics"])
    return options


def evaluate_classification(data_card, *, model=None, predictions=None, out_dir=None, use_cache: bool = True,
                            batch_size: int = 64, num_workers: int = 0, device: str | None = None, seed: int = 0,
                            n_boot: int = 1000, n_perm: int = 1000, bootstrap: str = "plain", alpha: float = 0.05,
                            verify_images: bool = True, progress: bool | None = None, chunk_size: int = 1024,
                            context=None) -> AuditRun | None:
    """Audit a classifier (a model card, path or loaded) or ``predictions`` on ``data_card`` (loaded and settled).

    ``interval`` and ``correction`` come from the card's settings (default Wilson and Benjamini-Hochberg).
    Returns None on a ``torchrun`` rank other than 0.
    """
    from ...core.card_loaders import load_model_card
    from ...core.cards import ModelCard
    from ...core.data import fingerprint_split, load_split
    from ...core.image_stats import IMAGE_COLUMNS, split_image_columns
    from ...core.inference import file_sha256, load_cache, load_predictions_file, run_inference, save_cache

    model_card = model if model is None or isinstance(model, ModelCard) else load_model_card(model)
    interval = data_card.options.get("interval", "wilson")
    correction = data_card.options.get("correction", "fdr_bh")
    if model_card is None and predictions is None:
        raise AuditError("expected a model card or a predictions file, found neither")
    net = model_sha = None
    if model_card is not None:
        from ...core.models import fingerprint_model

        model_sha = fingerprint_model(model_card)  # also checks that the card's files are there
    if model_card is not None and predictions is None:  # checked and built before the data: a bad model fails fast
        from ...core.model_spec import class_matrix
        from ...core.models import build_model, guard_forward

        class_matrix(label_map=model_card.label_map, classes=data_card.classes, class_map=model_card.class_map,
                     model_card_path=model_card.path)
        net = guard_forward(build_model(model_card), model_card)

    settings = {"seed": seed, "n_boot": n_boot, "n_perm": n_perm, "interval": interval, "bootstrap": bootstrap,
                "alpha": alpha, "correction": correction}
    if predictions is not None and not data_card.options.get("covariates"):  # the gap analysis needs each sample
        from .stream import NotStreamable

        try:
            return _evaluate_streamed(data_card, predictions, model_card=model_card, model_sha=model_sha,
                                      context=context, settings=settings)
        except NotStreamable as exc:
            if Path(predictions).is_dir():  # only the streaming reader reads a directory of Parquet files
                from ...errors import PredictionError

                raise PredictionError(f"{predictions}: expected a predictions file (a directory of Parquet files "
                                      f"needs a manifest split pyarrow can read), found a directory; {exc}") from None
            log.info("predictions: %s; reading the files row by row", exc)
    frame = load_split(data_card, verify_images=verify_images, require_images=predictions is None)
    log.info("data: %s (%d samples, %d classes)", data_card.path, len(frame), len(data_card.classes))
    check_reference_groups(data_card.path, frame[[a.name for a in data_card.attributes]], _attributes(data_card),
                           data_card.intersections, data_card.reference_groups)
    from .units import classification_covariates, classification_units

    # before inference: an unknown name fails fast; a model run's image statistics come from its inference pass
    covariates = classification_covariates(data_card, frame, images_later=predictions is None)
    data_sha = fingerprint_split(data_card, frame, include_images=predictions is None)
    pred_info: dict = {}

    if predictions is not None:
        preds = load_predictions_file(predictions, sample_ids=frame["sample_id"].tolist(), classes=data_card.classes,
                                      id_column=data_card.split.id_column)
        pred_info = {"source": "file", "file": str(predictions), "sha256": file_sha256(predictions),
                     "id_column": data_card.split.id_column}
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
            import torch

            from ...core.models import build_transform, select_device

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
                image_statistics=True,
            )
            if out_dir is None:
                preds = infer(frame)
            else:
                preds = predict_in_chunks(lambda part: infer(part), frame, out_dir=out_dir,
                                          key=f"{model_sha}{data_sha}", chunk_size=chunk_size, context=context,
                                          columns=IMAGE_COLUMNS)
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
    image_table = None
    if predictions is None:  # the model's pass computed each image's statistics: no second decode
        preds, image_table = split_image_columns(preds)
        if data_card.options.get("covariates"):
            covariates = classification_covariates(data_card, frame, image_table=image_table)
    score_cols = [f"score_{c}" for c in data_card.classes]
    scores = None
    if all(c in preds.columns for c in score_cols):
        candidate = preds[score_cols].to_numpy(dtype=float)
        infinite = np.isinf(candidate).any(axis=1)
        if infinite.any():  # a model that overflowed: name the sample rather than fail inside the engine
            from ...errors import PredictionError

            row = int(np.flatnonzero(infinite)[0])
            source = predictions if predictions is not None else (model_card.path if model_card else "predictions")
            raise PredictionError(f"{source}: sample '{preds['sample_id'].iat[row]}': expected finite class scores, "
                                  "found inf")
        if not np.isnan(candidate).any():
            scores = candidate
    attributes = _attributes(data_card)
    groups = frame[[a.name for a in data_card.attributes]].reset_index(drop=True)
    result = _engine(data_card, settings, y_true=frame["label"].to_numpy(dtype=np.int64),
                     y_pred=preds["pred"].to_numpy(dtype=np.int64), groups=groups, attributes=attributes,
                     scores=scores)

    table = preds.copy()
    table.insert(1, "label", frame["label"].to_numpy())
    provenance = _provenance(data_card, settings, model_card=model_card, model_sha=model_sha, data_sha=data_sha,
                             n_samples=len(frame), pred_info=pred_info)
    from ...compare import samples_table

    samples = samples_table(frame["sample_id"], table["label"], table["pred"], groups, attributes,
                            [tuple(c) for c in data_card.intersections])
    return AuditRun(result=result, provenance=provenance, predictions=table, samples=samples, split=frame,
                    units=classification_units(samples, covariates), image_statistics=image_table)


def _attributes(data_card) -> list:
    """The engine's attributes, each reading the split column named after it."""
    from ...stats import Attribute

    return [Attribute(name=a.name, column=a.name, scale=a.scale, bins=a.bins, order=a.order)
            for a in data_card.attributes]


def _engine(data_card, settings: dict, **data):
    """:func:`audit.stats.audit_classification` with the card's and the run's settings; an input error names
    the card that declared it."""
    from ...errors import StatsInputError
    from ...stats import audit_classification

    try:  # the engine's message names the argument; say which card declared it
        return audit_classification(
            **data,
            intersections=[tuple(c) for c in data_card.intersections],
            classes=list(data_card.classes),
            reference_groups=dict(data_card.reference_groups) or None,
            min_group_size=data_card.min_group_size,
            **{k: settings[k] for k in ("interval", "n_boot", "n_perm", "bootstrap", "seed", "alpha", "correction")},
            **_classification_options(data_card),
        )
    except StatsInputError as exc:
        raise StatsInputError(f"{data_card.path}: {exc}") from None


def _provenance(data_card, settings: dict, *, model_card, model_sha, data_sha, n_samples: int, pred_info: dict) -> dict:
    """Which model, data, predictions and settings produced the audit (``results.json``'s provenance)."""
    from ..._version import __version__

    return {
        "audit_version": __version__,
        "created": created_time(),
        "model": model_provenance(model_card, model_sha),
        "data": {
            "card": str(data_card.path),
            "name": data_card.name,
            "title": str(data_card.front_matter.get("pretty_name") or data_card.front_matter.get("name") or data_card.name),
            "sha256": data_sha,
            "split": str(data_card.split.folder or data_card.split.table),
            "n_samples": int(n_samples),
            "classes": list(data_card.classes),
            "attributes": [a.name for a in data_card.attributes],
        },
        "predictions": pred_info,
        "settings": {
            **{k: settings[k] for k in ("seed", "n_boot", "n_perm", "interval", "bootstrap", "alpha", "correction")},
            "min_group_size": data_card.min_group_size,
            **{k: v for k, v in data_card.options.items() if k in ("pos_label", "disparity_metrics")},
        },
        "environment": {
            "python": platform.python_version(),
            "torch": _torch_version(),
            "numpy": np.__version__,
            "pandas": pd.__version__,
        },
    }


def _torch_version() -> str:
    """``torch.__version__`` without importing torch (its ``version.py``) when no model ran."""
    import sys

    if "torch" in sys.modules:
        return sys.modules["torch"].__version__
    import ast
    import importlib.util

    spec = importlib.util.find_spec("torch")
    text = Path(spec.submodule_search_locations[0], "version.py").read_text(encoding="utf-8")
    for node in ast.parse(text).body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "__version__" for t in node.targets):
            return str(ast.literal_eval(node.value))
    import torch  # a layout this does not know: ask torch itself

    return torch.__version__


def _evaluate_streamed(data_card, predictions, *, model_card, model_sha, context, settings: dict) -> AuditRun | None:
    """The audit of predictions made elsewhere, from per-cell counts (:mod:`.stream`).

    The checks and their order are those of the row-by-row path: the manifest, the reference groups, then the
    predictions file. The split handed down (``AuditRun.split``) is the :class:`.stream.SplitCounts`.
    """
    from ...core.data import fingerprint_split
    from ...core.inference import score_columns
    from .stream import predictions_sha256, read_predictions, read_split

    manifest = read_split(data_card)
    log.info("data: %s (%d samples, %d classes)", data_card.path, manifest.n, len(data_card.classes))
    attributes = _attributes(data_card)
    check_reference_groups(data_card.path, manifest.groups, attributes, data_card.intersections,
                           data_card.reference_groups)
    data_sha = fingerprint_split(data_card, None, include_images=False)
    split = read_predictions(predictions, manifest, classes=list(data_card.classes),
                             id_column=data_card.split.id_column)
    del manifest
    pred_info = {"source": "file", "file": str(predictions), "sha256": predictions_sha256(predictions),
                 "id_column": data_card.split.id_column}
    log.info("predictions: read from %s", predictions)
    if not context.is_main:
        return None
    scores = rows = None
    if split.scores is not None and not np.isnan(split.scores).any():  # an abstention anywhere: no score metrics
        scores, rows = split.scores, split.rows
    result = _engine(data_card, settings, y_true=split.label, y_pred=split.pred, groups=split.cells,
                     attributes=attributes, counts=split.count, scores=scores, score_rows=rows)
    provenance = _provenance(data_card, settings, model_card=model_card, model_sha=model_sha, data_sha=data_sha,
                             n_samples=split.n_samples, pred_info=pred_info)
    table = samples = None
    if split.samples is not None:  # per-sample tables, up to the detail limit
        from ...compare import samples_table

        table = split.samples.drop(columns="image_path")
        per_cell = samples_table(np.zeros(len(split.cells), dtype=str), split.label, split.pred, split.cells,
                                 attributes, [tuple(c) for c in data_card.intersections])
        samples = per_cell.iloc[split.rows].reset_index(drop=True)
        samples["sample_id"] = np.asarray(table["sample_id"]).astype(str)
    else:
        table = pd.DataFrame({"sample_id": pd.Series(dtype=str), "label": pd.Series(dtype=np.int64),
                              **({c: pd.Series(dtype=float) for c in score_columns(data_card.classes)}
                                 if split.scores is not None else {}),
                              "pred": pd.Series(dtype=np.int64)})
    return AuditRun(result=result, provenance=provenance, predictions=table, samples=samples, split=split)
