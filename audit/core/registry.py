"""The task registry: every task implements :class:`Task` and is found by its name, never imported by hand.

In the manner of torchvision's model registry (``register_model``,
``get_model``, ``list_models``)::

    from audit.core.registry import register_task

    register_task(MyTask())          # the one line a new task adds

The pipeline driver (:func:`audit.pipeline.evaluate`) and the CLI read the
data card's task name (:func:`task_name`) and call :func:`get_task`. The core
imports no task package: the built-in tasks are the modules named in
:data:`BUILTIN_TASK_MODULES`, imported by name on the first lookup, and any
further task modules are named in the ``AUDIT_TASK_MODULES`` environment
variable (comma-separated module names) or imported by the caller before the
lookup (then their ``register_task`` line has already run).
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from ..errors import AuditError

__all__ = ["BUILTIN_TASK_MODULES", "DEFAULT_TASK", "Task", "get_task", "list_tasks", "load_any_data_card",
           "model_card_loader", "register_task", "task_name"]

BUILTIN_TASK_MODULES = ("audit.tasks.classification", "audit.tasks.detection", "audit.tasks.segmentation",
                        "audit.tasks.panoptic")
"""Imported on the first lookup."""

DEFAULT_TASK = "classification"
"""The task of a data card that names none and that no task recognises (a labelled manifest or image folder)."""

TASK_MODULES_VARIABLE = "AUDIT_TASK_MODULES"


@runtime_checkable
class Task(Protocol):
    """What a task gives the pipeline driver. One object per task, registered with :func:`register_task`.

    An audit of a task goes: parse its card section (:meth:`load_data_card`),
    then :meth:`evaluate`, which loads its split, builds or loads its
    predictions (a ``predictions`` file, the cache in ``out_dir``, or the
    model, in chunks sharded over ``context``'s ranks), reduces them to
    per-sample sufficient statistics, and runs the statistics engine
    (:mod:`audit.stats`) over the card's groups. It returns a
    :class:`audit.core.run.AuditRun`; the driver writes it (``results.json``,
    ``index.html``).

    Attributes
    ----------
    name : str
        The registry name (``classification``, ``detection``, ...).
    card_tasks : tuple of str
        The values of a card's ``task:`` field this task answers to
        (``detection`` serves ``detection`` and ``instance_segmentation``).
    metrics : Mapping of str to str
        Its headline metrics: name in ``results.json`` -> display name in the report.
    """

    name: str
    card_tasks: tuple[str, ...]
    metrics: Mapping[str, str]

    def recognises(self, front_matter: Mapping, *, model_task: str | None, has_model: bool) -> bool:
        """Whether a data card that names no ``task`` is this task's (its front matter, the model card's task).

        A card no task recognises is :data:`DEFAULT_TASK`'s; tasks are asked in registration order, so what one
        task recognises another must not.
        """

    def load_data_card(self, data: Any, *, pos_label: str | None, min_group_size: int | None, **settings) -> Any:
        """Parse and validate the data card (a path or a loaded card), with the command line's settings over its own.

        ``settings`` are ``correction``, ``interval``, ``disparity_metrics`` and ``covariates`` (None: the card's;
        :func:`audit.core.card_fields.settled` applies them). Raises
        :class:`~audit.errors.AuditError` for a bad card or a setting the task does not take (``pos_label``).
        """

    def evaluate(self, card: Any, *, model: Any, predictions: Any, out_dir: Any, context: Any, **options) -> Any:
        """Audit ``model`` (a model card path or card, or None) or ``predictions`` (a file) on ``card``'s split.

        ``options`` are the driver's: ``use_cache``, ``batch_size``, ``num_workers``, ``device``, ``seed``,
        ``n_boot``, ``n_perm``, ``bootstrap``, ``alpha``, ``verify_images``, ``progress``, ``chunk_size``.
        Returns an ``AuditRun``, or None on a ``torchrun`` rank other than 0. A task whose units have a 0/1
        outcome (an error, a miss) fills ``AuditRun.units`` (:class:`audit.core.units.UnitFrame`) with the
        declared covariates' values (:func:`audit.core.covariates.covariate_table`); the driver then explains
        the gaps (:func:`audit.core.explain.explain_gaps`).
        """


_TASKS: dict[str, Task] = {}
_BY_CARD_TASK: dict[str, str] = {}
_loaded = False


def register_task(task: Task) -> Task:
    """Register ``task`` under its ``name`` and its ``card_tasks``; returns it (usable as a decorator on an instance)."""
    if not isinstance(task, Task):
        raise TypeError(f"expected an object implementing audit.core.registry.Task, found {type(task).__name__}")
    if task.name in _TASKS and type(_TASKS[task.name]) is not type(task):
        raise ValueError(f"a task named '{task.name}' is already registered")
    _TASKS[task.name] = task
    for card_task in (task.name, *task.card_tasks):
        _BY_CARD_TASK[card_task] = task.name
    return task


def _load() -> None:
    global _loaded
    if _loaded:
        return
    _loaded = True
    extra = [m.strip() for m in os.environ.get(TASK_MODULES_VARIABLE, "").split(",") if m.strip()]
    for module in (*BUILTIN_TASK_MODULES, *extra):
        importlib.import_module(module)


def list_tasks() -> list[str]:
    """The registered task names, in registration order."""
    _load()
    return list(_TASKS)


def get_task(name: str) -> Task:
    """The task registered as ``name`` (or answering to the card task ``name``). Raises AuditError for an unknown one."""
    _load()
    try:
        return _TASKS[_BY_CARD_TASK[name]]
    except KeyError:
        raise AuditError(f"task: expected one of {sorted(_BY_CARD_TASK)}, found '{name}'") from None


def model_card_loader(card_task: str):
    """The model card reader of the task answering to ``card_task``, when it reads its own model cards, else None.

    Optional in the protocol: a task with a ``load_model_card(path, front_matter, body)`` method reads the model
    cards whose ``task:`` it answers to (detection); the others' are read by :func:`audit.core.card_loaders.load_model_card`.
    """
    _load()
    name = _BY_CARD_TASK.get(card_task)
    return None if name is None else getattr(_TASKS[name], "load_model_card", None)


def _front_matter(card) -> dict:
    from .front_matter import read_front_matter

    if card is None:
        return {}
    if isinstance(card, (str, Path)):
        try:
            return read_front_matter(card)[0]
        except AuditError:
            return {}  # the task's loader reports it, in the order it reads the cards
    return dict(getattr(card, "front_matter", None) or {})


def task_name(data, model=None) -> str:
    """The task of an audit: the data card's ``task:`` when a registered task answers to it, else the first task
    that recognises the card (given the model card's task). ``data`` and ``model`` are paths or loaded cards."""
    _load()
    front = _front_matter(data)
    named = front.get("task")
    if isinstance(named, str) and named in _BY_CARD_TASK:
        return _BY_CARD_TASK[named]
    model_task = getattr(model, "task", None) if model is not None and not isinstance(model, (str, Path)) else \
        _front_matter(model).get("task")
    for name, task in _TASKS.items():
        if task.recognises(front, model_task=model_task if isinstance(model_task, str) else None,
                           has_model=model is not None):
            return name
    return DEFAULT_TASK


def load_any_data_card(data):
    """A data card of any task, read by the task it belongs to (:func:`task_name` without a model).

    For callers that take any audit's data card: the dataset section, the report's thumbnails, the trainers and
    the importers. ``data`` is a path or an already loaded card (returned as it is).
    """
    if not isinstance(data, (str, Path)):
        return data
    return get_task(task_name(data)).load_data_card(data)
