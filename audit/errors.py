"""User-facing errors.

Every error that bad input can cause is an :class:`AuditError`. The CLI catches
only these, prints their one-line message and exits with code 2; any other
exception is a bug and keeps its traceback.
"""

from __future__ import annotations

__all__ = [
    "AuditError",
    "CardError",
    "CompareError",
    "DataError",
    "ModelError",
    "PredictionError",
    "StatsInputError",
]


class AuditError(Exception):
    """Base class for every error caused by user input. ``exit_code`` is 2."""

    exit_code = 2


class StatsInputError(AuditError, ValueError):
    """Arguments to the statistics engine are inconsistent or out of range."""


class CardError(AuditError):
    """A data card or model card is missing a field or has a wrong value."""


class DataError(AuditError):
    """A split, manifest, attribute table or image is missing or malformed."""


class CompareError(AuditError):
    """Two audits, or a comparison policy, cannot be read or compared."""


class ModelError(AuditError):
    """A model cannot be built or its weights cannot be loaded."""


class PredictionError(AuditError):
    """Predictions made elsewhere do not match the split."""
