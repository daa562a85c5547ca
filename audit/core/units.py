"""The units of an audit as the gap analysis needs them: one 0/1 outcome per unit, its image, groups and covariates.

Every task reduces its predictions to units: a classification sample (misclassified or not), a detected
person (missed at IoU 0.50 or not), a person of a semantic segmentation (mask IoU below 0.50 or not). A task
fills a :class:`UnitFrame` and hands it over on :attr:`audit.core.run.AuditRun.units`; the analysis of
:mod:`audit.core.explain` reads nothing else, so it runs once, the same way, for every task.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .covariates import COVARIATE_PREFIX

__all__ = ["CLUSTER", "GROUP_PREFIX", "Outcome", "UnitFrame", "unit_frame"]

GROUP_PREFIX = "group:"
CLUSTER = "image"


@dataclass(frozen=True)
class Outcome:
    """A 0/1 outcome of every unit and the headline metric whose gap it is.

    Attributes
    ----------
    metric : str
        The metric of ``results.json`` that is this outcome's rate (``error_rate``) or its complement
        (``recall@0.50`` for misses); its disparities are the ones explained.
    column : str
        The column of :attr:`UnitFrame.table`, 1 for an error or a miss.
    verb : str
        What happened to a unit with outcome 1, for sentences: ``misclassified``, ``missed``.
    """

    metric: str
    column: str
    verb: str


@dataclass(frozen=True)
class UnitFrame:
    """One row per unit (sample or person): what the gap analysis needs, whatever the task.

    Attributes
    ----------
    table : DataFrame
        - one 0/1 column per outcome (:attr:`Outcome.column`; 1 is an error or a miss);
        - ``image``: the unit's image id when units share images (people), else absent;
        - ``group:<attribute>``: the unit's binned group label (as in ``samples.parquet`` and
          ``people.parquet``); a list of labels for a multi-valued attribute, which the analysis leaves out;
        - ``covariate:<name>``: the binned covariate labels (:func:`audit.core.covariates.covariate_table`).
    outcomes : tuple of Outcome
    unit : str
        What a row is: ``samples`` or ``people``.
    notes : tuple of str
        How the covariates were made (binning, covariates left out).
    """

    table: pd.DataFrame
    outcomes: tuple[Outcome, ...]
    unit: str = "samples"
    notes: tuple[str, ...] = ()

    @property
    def attributes(self) -> list[str]:
        return [c[len(GROUP_PREFIX):] for c in self.table.columns if c.startswith(GROUP_PREFIX)]

    @property
    def covariates(self) -> list[str]:
        return [c[len(COVARIATE_PREFIX):] for c in self.table.columns if c.startswith(COVARIATE_PREFIX)]

    @property
    def clustered(self) -> bool:
        return CLUSTER in self.table.columns


def unit_frame(*, outcomes: Mapping[Outcome, np.ndarray], groups: pd.DataFrame, covariates: pd.DataFrame | None = None,
               image=None, unit: str = "samples", notes=()) -> UnitFrame:
    """Assemble a :class:`UnitFrame` from a task's per-unit arrays.

    Parameters
    ----------
    outcomes : mapping of Outcome to array
        Each outcome's 0/1 values (bool or numbers), one per unit.
    groups : DataFrame
        Per-unit table whose ``group:<attribute>`` columns are taken (other columns are ignored).
    covariates : DataFrame, optional
        :func:`audit.core.covariates.covariate_table`'s columns.
    image : array, optional
        Each unit's image id, when units share images.
    unit : {"samples", "people"}
    notes : sequence of str

    Returns
    -------
    UnitFrame

    Raises
    ------
    ValueError
        An outcome is not 0/1 or the lengths differ (a task's bug, not bad input).
    """
    groups = groups.reset_index(drop=True)
    table = pd.DataFrame(index=pd.RangeIndex(len(groups)))
    for outcome, values in outcomes.items():
        values = np.asarray(values, dtype=float)
        if values.shape != (len(table),) or not np.isin(values, (0.0, 1.0)).all():
            raise ValueError(f"outcome '{outcome.column}': expected {len(table)} values of 0 or 1")
        table[outcome.column] = values.astype(np.int64)
    if image is not None:
        table[CLUSTER] = np.asarray(image)
    for column in groups.columns:
        if str(column).startswith(GROUP_PREFIX):
            table[column] = groups[column].to_numpy()
    if covariates is not None and len(covariates.columns):
        if len(covariates) != len(table):
            raise ValueError(f"covariates: expected {len(table)} rows, found {len(covariates)}")
        for column in covariates.columns:
            table[column] = covariates[column].to_numpy()
    return UnitFrame(table=table, outcomes=tuple(outcomes), unit=unit, notes=tuple(notes))
