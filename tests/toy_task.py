"""A toy fourth task that proves the Task protocol: one module, one registry line (the last line).

A toy data card names its task and a table of truth and groups::

    ---
    task: toy
    table: truth.csv        # sample_id, label (0/1), group
    ---

and ``audit run --predictions preds.csv`` (sample_id, pred) audits it: error
rate and selection rate per group, through the same engine, driver and report
as every task. ``audit`` finds it through ``AUDIT_TASK_MODULES=toy_task``.
"""

from __future__ import annotations

import platform
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from audit.core.card_fields import settled
from audit.core.cards import Validator
from audit.core.front_matter import read_front_matter
from audit.core.registry import register_task
from audit.core.run import AuditRun, created_time, model_provenance
from audit.errors import AuditError


@dataclass(frozen=True)
class ToyCard:
    path: Path
    name: str
    table: Path
    min_group_size: int = 50
    options: dict = field(default_factory=dict)
    front_matter: dict = field(default_factory=dict)


class ToyTask:
    name = "toy"
    card_tasks = ("toy",)
    metrics = {"error_rate": "error rate (among processed samples)", "selection_rate": "selection rate"}

    def recognises(self, front_matter, *, model_task, has_model) -> bool:
        return False  # a toy card always names its task

    def load_data_card(self, data, *, pos_label=None, min_group_size=None, **settings):
        path = Path(data)
        front, _ = read_front_matter(path)
        v = Validator(path, front)
        v.unknown_keys(front, {"task", "table", "min_group_size"})
        card = ToyCard(path=path, name=path.stem, table=v.resolve(v.string(front, "table")),
                       min_group_size=v.integer(front, "min_group_size", required=False, default=50, minimum=1),
                       front_matter=front)
        return settled(card, pos_label=None, min_group_size=min_group_size, **settings)

    def evaluate(self, card, *, model, predictions, out_dir, context, seed=0, n_boot=1000, n_perm=1000, alpha=0.05,
                 bootstrap="plain", **_):
        from audit.stats import Attribute, audit_classification

        if model is not None or predictions is None:
            raise AuditError("toy: expected --predictions and no model")
        truth = pd.read_csv(card.table)
        preds = pd.read_csv(predictions)
        table = truth.merge(preds, on="sample_id", validate="one_to_one")
        result = audit_classification(
            y_true=table["label"].to_numpy(), y_pred=table["pred"].to_numpy(), groups=table[["group"]],
            classes=["no", "yes"], attributes=[Attribute(name="group", column="group", scale="nominal")],
            pos_label=1, interval=card.options.get("interval", "wilson"),
            correction=card.options.get("correction", "fdr_bh"), n_boot=n_boot, n_perm=n_perm, bootstrap=bootstrap,
            seed=seed, alpha=alpha, min_group_size=card.min_group_size)
        provenance = {
            "audit_version": "toy", "created": created_time(), "model": model_provenance(None, None),
            "data": {"card": str(card.path), "name": card.name, "title": card.name, "sha256": None,
                     "split": str(card.table), "n_samples": len(table), "classes": ["no", "yes"],
                     "attributes": ["group"]},
            "predictions": {"source": "file", "file": str(predictions)},
            "settings": {"seed": seed, "n_boot": n_boot}, "environment": {"python": platform.python_version()},
        }
        return AuditRun(result=result, provenance=provenance, predictions=table[["sample_id", "label", "pred"]])


register_task(ToyTask())
