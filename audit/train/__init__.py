"""``audit train``: transfer learning onto a small torchvision backbone for every task.

:data:`TRAINERS` maps a task to its trainer, imported only when used. Every
trainer has the signature of :func:`audit.train.classification.train_classifier`.
"""

from __future__ import annotations

import importlib
import inspect

from ..errors import AuditError

__all__ = ["BACKBONE_NETWORKS", "TRAINERS", "get_trainer"]

# What `audit train --backbone` offers (audit.train.backbone.NETWORKS, named here so that `audit --help` needs no torch).
BACKBONE_NETWORKS = ("resnet18", "resnet34", "resnet50", "resnet101", "resnet152", "mobilenet_v3_large",
                     "mobilenet_v3_small")

TRAINERS = {
    "classification": "audit.train.classification:train_classifier",
    "semantic_segmentation": "audit.train.segmentation:train_segmenter",
    "detection": "audit.train.detection:train_detector",
    "instance_segmentation": "audit.train.detection:train_detector",
}


def get_trainer(task: str):
    """The trainer of ``task``, called as ``trainer(data_card, trunk=..., provenance=..., out_card=..., ...)``.

    A trainer that takes a ``task`` keyword (detection serves two tasks) gets it bound.

    Raises
    ------
    AuditError
        The task is unknown, or its trainer is not part of this installation.
    """
    if task not in TRAINERS:
        raise AuditError(f"audit train: --task: expected one of {', '.join(TRAINERS)}, found {task!r}")
    module_name, _, attr = TRAINERS[task].partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name != module_name:
            raise
        raise AuditError(f"audit train: task '{task}' needs {module_name}.{attr}, which this installation "
                         "does not have yet") from None
    trainer = getattr(module, attr, None)
    if trainer is None:
        raise AuditError(f"audit train: task '{task}' needs {module_name}.{attr}, which this installation "
                         "does not have yet")
    if "task" in inspect.signature(trainer).parameters:
        import functools

        trainer = functools.partial(trainer, task=task)
    return trainer
