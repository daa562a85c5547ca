"""What every task's audit produces and records: :class:`AuditRun`, provenance, the ``results.json`` document.

Task pipelines build an :class:`AuditRun`; the pipeline driver
(:mod:`audit.pipeline`) writes it. Nothing here knows a task.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from datetime import datetime, timezone
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

if TYPE_CHECKING:
    from .units import UnitFrame

__all__ = ["AuditRun", "RESULTS_SCHEMA_VERSION", "check_reference_groups", "load_results_schema", "results_document"]

RESULTS_SCHEMA_VERSION = 1


@dataclass
class AuditRun:
    """Everything one audit produced.

    Attributes
    ----------
    result : GroupedMetrics
        The statistics engine's result.
    provenance : dict
        Which model, weights, data and settings produced it (names, paths,
        SHA-256 hashes) and where the predictions came from.
    predictions : DataFrame
        ``sample_id``, ``label``, ``pred`` and ``score_<class>`` columns.
    paths : dict of str to Path
        Files written (empty until :func:`write_outputs`).
    samples : DataFrame, optional
        Per-sample statistics for paired comparisons (``audit compare``):
        ``sample_id``, ``label``, ``pred`` and one ``group:<attribute>``
        column per attribute holding the sample's binned group label.
    people : DataFrame, optional
        Per-person outcomes (detection, instance segmentation, semantic segmentation with person masks),
        written as ``people.parquet``: where each person is, whether they were found, and their binned
        groups; the report's worst errors come from it.
    images : DataFrame, optional
        Per-image outcomes of a semantic segmentation audit without person masks (``image_id``,
        ``file_name``, ``miou`` and the binned image groups), written as ``images.parquet``: the report's
        worst images.
    split : object, optional
        The split as the task loaded it (classification: the :func:`audit.core.data.load_split` frame, or
        per-cell counts for predictions made elsewhere), handed to the dataset section and the report so
        that neither loads it again.
    units : UnitFrame, optional
        One 0/1 outcome per unit (sample or person) with its image, groups and covariates
        (:class:`audit.core.units.UnitFrame`): what the gap analysis reads. Each task fills it.
    explanations : dict, optional
        The gap analysis (:func:`audit.core.explain.explain_gaps`), ``results.json``'s ``explanations``;
        :func:`audit.pipeline.evaluate` sets it.
    image_statistics : DataFrame, optional
        Each sample's image statistics (:func:`audit.core.image_stats.image_statistics`' columns, one row per
        row of ``split``), computed in the model's inference pass and handed to the dataset section, so that
        it does not decode the images again; None when no model ran.
    """

    result: object
    provenance: dict
    predictions: pd.DataFrame
    paths: dict = field(default_factory=dict)
    samples: pd.DataFrame | None = None
    people: pd.DataFrame | None = None
    images: pd.DataFrame | None = None
    split: object = field(default=None, repr=False)
    units: UnitFrame | None = None
    explanations: dict | None = None
    image_statistics: pd.DataFrame | None = field(default=None, repr=False)

    def _describe(self) -> str:
        prov = self.provenance or {}
        model = prov.get("model") or {}
        data = prov.get("data") or {}
        task = prov.get("task") or "classification"
        n = len(self.predictions) or data.get("n_samples", 0)  # above the per-sample limit no table is kept
        return (f"{task} audit of {model.get('title') or model.get('name') or 'predictions from a file'} on "
                f"{data.get('title') or data.get('name') or 'a data split'} ({n} predictions)")

    def __repr__(self) -> str:  # the dataclass default prints every table: far too long for a notebook or a log
        files = ", ".join(sorted(self.paths)) or "none yet"
        return f"AuditRun({self._describe()}; files: {files})"

    def _repr_html_(self) -> str:
        """The notebook view: what was audited, then the result's findings, groups table and disparities."""
        from html import escape

        head = f"<p><b>AuditRun</b>: {escape(self._describe())}</p>"
        if self.paths:
            head += "<p><small>Files: " + escape(", ".join(f"{k}: {v}" for k, v in sorted(self.paths.items()))) \
                + "</small></p>"
        body = self.result._repr_html_() if hasattr(self.result, "_repr_html_") else f"<pre>{escape(repr(self.result))}</pre>"
        return head + body


def check_reference_groups(card_path, groups: pd.DataFrame, attributes, intersections, reference_groups) -> None:
    """Refuse a reference group the data does not have, before any prediction is made or cached.

    The engine would refuse it too, but only after inference; this names the card and the field at once.
    """
    if not reference_groups:
        return
    from ..errors import StatsInputError
    from ..stats import build_groups

    try:
        structure, _ = build_groups(groups.reset_index(drop=True), attributes, [tuple(c) for c in intersections])
    except StatsInputError as exc:
        raise StatsInputError(f"{card_path}: {exc}") from None
    for name, label in reference_groups.items():
        try:
            labels = structure.grouping(name).labels
        except (KeyError, ValueError, StatsInputError):
            continue  # the card validation names unknown groupings
        if label not in labels:
            raise StatsInputError(f"{card_path}: reference_groups['{name}']: expected one of {labels}, found '{label}'")


def created_time() -> str:
    """Creation time, or ``SOURCE_DATE_EPOCH`` when set (reproducible outputs)."""
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    moment = datetime.fromtimestamp(int(epoch), timezone.utc) if epoch else datetime.now(timezone.utc)
    return moment.isoformat(timespec="seconds")


def model_provenance(card, sha: str | None) -> dict:
    if card is None:
        return {"card": None, "name": None, "title": None, "sha256": None, "source": None, "weights": None, "weights_sha256": None}
    from .inference import file_sha256

    from .model_spec import model_source_text, weights_meta

    source = model_source_text(card)
    weights, weights_sha, meta = None, None, None
    if card.weights is not None and card.weights.enum:
        weights = f"enum {card.weights.enum}"
        meta = weights_meta(card.weights.enum)
    elif card.weights is not None and card.weights.path:
        weights = str(card.weights.path)
        if Path(card.weights.path).is_file():
            weights_sha = file_sha256(card.weights.path)
    return {
        "card": str(card.path),
        "name": card.name,
        "title": str(card.front_matter.get("model_name") or card.front_matter.get("name") or card.name),
        "sha256": sha,
        "source": source,
        "weights": weights,
        "weights_sha256": weights_sha,
        "trust_checkpoint": card.trust_checkpoint,
        **({"weights_meta": meta} if meta else {}),
        **({"builder": dict(card.builder)} if card.builder else {}),
        **({"class_map": {card.label_map[i]: c for i, c in sorted(card.class_map.items())}}
           if card.class_map else {}),
    }


def load_results_schema() -> dict:
    """The JSON Schema ``results.json`` follows (shipped as ``audit/schemas/results.schema.json``)."""
    text = resources.files("audit").joinpath("schemas/results.schema.json").read_text(encoding="utf-8")
    return json.loads(text)


def results_document(result, *, provenance: dict | None = None, explanations: dict | None = None) -> dict:
    """The ``results.json`` document: schema version, provenance, the engine's ``to_dict()`` and, when given,
    the gap analysis (``explanations``: :func:`audit.core.explain.explain_gaps`)."""
    document = {
        "schema_version": RESULTS_SCHEMA_VERSION,
        "provenance": provenance or {},
        "results": result.to_dict(),
    }
    if explanations is not None:
        document["explanations"] = explanations
    return document


def _fmt(value, digits: int = 3) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if abs(value) < 1e-12:
            value = 0.0  # numerical noise (e.g. a Wilson bound at 0) reads as zero
        if value != 0 and abs(value) < 10 ** (-digits):
            return f"{value:.1e}"
        return f"{value:.{digits}f}"
    return str(value)
