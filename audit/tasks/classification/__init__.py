"""The classification task: a classifier's labels against a split's labels, per group (registered as ``classification``).

It is the registry's default task: every data card that no other task recognises (a manifest or an
image folder with ``label_column`` and ``classes``: :func:`audit.core.card_loaders.load_data_card`).
"""

from __future__ import annotations

from ...core.registry import register_task
from . import report

__all__ = ["ClassificationTask"]


class ClassificationTask:
    """:class:`audit.core.registry.Task` for classification; :func:`.pipeline.evaluate_classification` does the work."""

    name = "classification"
    card_tasks = ("classification",)
    metrics = {"error_rate": "error rate (among processed samples)", "tpr": "true positive rate",
               "fpr": "false positive rate", "ppv": "positive predictive value", "selection_rate": "selection rate"}

    def recognises(self, front_matter, *, model_task, has_model) -> bool:
        return False  # the registry's DEFAULT_TASK: every card no other task recognises

    def load_data_card(self, data, *, pos_label=None, min_group_size=None, **settings):
        from ...core.card_loaders import DataCard, load_data_card
        from ...core.card_fields import settled

        card = data if isinstance(data, DataCard) else load_data_card(data)
        return settled(card, pos_label=pos_label, min_group_size=min_group_size, **settings)

    def evaluate(self, card, *, model, predictions, out_dir, context, **options):
        from .pipeline import evaluate_classification

        return evaluate_classification(card, model=model, predictions=predictions, out_dir=out_dir, context=context,
                                       **options)

    report_spec = staticmethod(report.report_spec)
    report_sections = staticmethod(report.report_sections)


register_task(ClassificationTask())
