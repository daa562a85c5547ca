"""The detection audit's units for the gap analysis: one person each, 1 when missed at IoU 0.50.

Covariates are looked up among the person's data (the people table, the image table, the annotation's
``attributes`` and, for occlusion and truncation flags, the annotation's own fields), then ``box_size``
(the ground-truth box's area in pixels) and the image statistics of the person's image.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd

from ...core.covariates import covariate_table
from ...core.units import Outcome, UnitFrame, unit_frame

__all__ = ["MASK_MISSED", "MISSED", "detection_covariates", "detection_units"]

MISSED = Outcome(metric="recall@0.50", column="missed@0.50", verb="missed")
MASK_MISSED = Outcome(metric="mask_recall@0.50", column="mask_missed@0.50", verb="missed by the masks")


def detection_covariates(card, gt, people: np.ndarray, *, image_table: pd.DataFrame | None = None,
                         images_later: bool = False) -> tuple[pd.DataFrame, list[str]]:
    """The declared covariates of each person (``people``: non-crowd ground truth indices of ``gt``).

    ``image_table``: each image's statistics from the inference pass, indexed by ``image_id``, read instead of
    decoding the images again; ``images_later``: names checked only (see
    :func:`audit.core.covariates.covariate_table`).
    """
    declared = card.options.get("covariates")
    if not declared:
        return pd.DataFrame(index=pd.RangeIndex(people.size)), []
    from .people import card_people

    specs = [SimpleNamespace(name=c.column, column=c.column, scale="nominal", votes=None) for c in declared]
    _, columns = card_people(card, gt, specs=specs, required=False)
    for c in declared:  # flags such as occluded or truncated may sit on the annotation itself
        values = [gt.annotations[i].get(c.column) for i in people]
        if c.column not in columns.columns and any(v is not None for v in values):
            columns[c.column] = pd.Series(values, dtype=object)
    box = np.asarray(gt.boxes.bbox, dtype=float)[people]
    paths = None
    if "path" in gt.images.columns:
        where = dict(zip(gt.images["image_id"], gt.images["path"]))
        paths = [str(where.get(i, "")) for i in np.asarray(gt.boxes.image)[people]]
    per_person = None
    if image_table is not None:
        per_person = image_table.reindex(np.asarray(gt.boxes.image)[people]).reset_index(drop=True)
    return covariate_table(declared, n=people.size, columns=columns, derived={"box_size": box[:, 2] * box[:, 3]},
                           image_paths=paths, card_path=card.path, image_table=per_person, images_later=images_later)


def detection_units(people_out: pd.DataFrame, covariates: tuple[pd.DataFrame, list[str]]) -> UnitFrame:
    """The units: ``people.parquet``'s table (``matched@0.50``, ``image_id``, ``group:`` columns) and covariates."""
    outcomes = {MISSED: ~people_out["matched@0.50"].to_numpy(dtype=bool)}
    if "mask_matched@0.50" in people_out.columns:
        outcomes[MASK_MISSED] = ~people_out["mask_matched@0.50"].to_numpy(dtype=bool)
    table, notes = covariates
    return unit_frame(outcomes=outcomes, groups=people_out, covariates=table, image=people_out["image_id"].to_numpy(),
                      unit="people", notes=notes)
