"""The classification audit's units for the gap analysis: one sample each, 1 when it is misclassified."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ...core.covariates import covariate_table
from ...core.units import Outcome, UnitFrame, unit_frame

__all__ = ["ERROR", "classification_covariates", "classification_units"]

ERROR = Outcome(metric="error_rate", column="error", verb="misclassified")


def classification_covariates(card, frame: pd.DataFrame, *, image_table: pd.DataFrame | None = None,
                              images_later: bool = False) -> tuple[pd.DataFrame, list[str]]:
    """The declared covariates of each sample of ``frame`` (:func:`audit.core.data.load_split`'s): columns of
    the split's table, or the image statistics of the sample's image (``image_table``, one row per sample, when
    the inference pass computed them; ``images_later``: names checked only, see
    :func:`audit.core.covariates.covariate_table`). Raises CardError for an unknown name."""
    declared = card.options.get("covariates")
    if not declared:
        return pd.DataFrame(index=pd.RangeIndex(len(frame))), []
    from ...core.data import split_columns

    return covariate_table(declared, n=len(frame), columns=split_columns(card, frame),
                           image_paths=frame["image_path"].astype(str).tolist(), card_path=card.path,
                           image_table=image_table, images_later=images_later)


def classification_units(samples: pd.DataFrame, covariates: tuple[pd.DataFrame, list[str]]) -> UnitFrame:
    """The units: ``samples.parquet``'s table (labels, predictions, ``group:`` columns) and the covariates."""
    error = samples["label"].to_numpy(dtype=np.int64) != samples["pred"].to_numpy(dtype=np.int64)
    table, notes = covariates
    return unit_frame(outcomes={ERROR: error}, groups=samples, covariates=table, unit="samples", notes=notes)
