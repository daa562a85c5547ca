"""audit: fairness and dataset-bias audits for computer-vision models.

Layers, lowest first (a layer never imports a higher one):

``audit.stats``
    The statistics engine (numpy/pandas/scipy only).
``audit.cards``, ``audit.data``, ``audit.models``, ``audit.inference``
    Runners: cards, splits, models and predictions (torch and files).
``audit.pipeline``
    End-to-end audit and report rendering.
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
    if name in ("audit_split", "run_audit"):
        from . import pipeline

        return getattr(pipeline, name)
    raise AttributeError(f"module 'audit' has no attribute {name!r}")
