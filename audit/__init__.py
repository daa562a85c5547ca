"""audit: fairness and dataset-bias audits for computer-vision models.

Layers, lowest first (a layer never imports a higher one; ARCHITECTURE.md has the map):

``audit.stats``
    The statistics engine (numpy/pandas/scipy/statsmodels only).
``audit.core``
    What every task shares: cards, splits, the model builder, inference, the task registry.
``audit.tasks``
    One package per task, each registering itself.
``audit.pipeline``
    The driver: data card -> task -> :class:`~audit.core.run.AuditRun`.
``audit.report``
    ``results.json`` and the HTML page.
``audit.cli``
    The ``audit`` command.

For notebooks::

    from audit import audit_split
    result = audit_split(model="models/demo.md", data="data_cards/demo.md")
    result.to_frame()
"""

from __future__ import annotations

from ._version import __version__

__all__ = ["__version__", "audit_split", "run_audit"]


def __getattr__(name):
    # Lazy, so that ``import audit.stats`` does not pull in torch.
    if name == "audit_split":
        from .pipeline import audit_split

        return audit_split
    if name == "run_audit":
        from .report import run_audit

        return run_audit
    raise AttributeError(f"module 'audit' has no attribute {name!r}")
