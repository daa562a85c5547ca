"""The semantic segmentation audit's units for the gap analysis: one person each (when the card has person
masks), 1 when the predicted person region covers the person's mask at IoU below 0.50 (a miss, as
``person_recall@0.50`` counts).

Covariates are looked up among the columns of the people table, then of the image manifest, then among the
image statistics.
"""

from __future__ import annotations

import pandas as pd

from ...core.covariates import covariate_table
from ...core.units import Outcome, UnitFrame, unit_frame

__all__ = ["MISSED", "segmentation_covariates", "segmentation_units"]

MISSED = Outcome(metric="person_recall@0.50", column="missed@0.50", verb="missed")


def segmentation_covariates(card, images: pd.DataFrame, people: pd.DataFrame | None, *,
                            image_table: pd.DataFrame | None = None, images_later: bool = False):
    """The declared covariates of each person (``people``, :func:`.data.load_segmentation_split`'s), or None
    without person masks.

    ``image_table``: each image's statistics from the inference pass, indexed by ``sample_id``, read instead of
    decoding the images again; ``images_later``: names checked only (see
    :func:`audit.core.covariates.covariate_table`).
    """
    declared = card.options.get("covariates")
    if people is None:
        return None
    if not declared:
        return pd.DataFrame(index=pd.RangeIndex(len(people))), []
    from ...core.data import read_table

    person_rows = read_table(card.segmentation.people.table).iloc[people["row"].to_numpy() - 1].reset_index(drop=True)
    manifest = read_table(card.split.table)
    manifest.index = [str(v) for v in manifest[card.split.id_column].tolist()]
    image_rows = manifest.reindex(people["sample_id"].astype(str).tolist()).reset_index(drop=True)
    columns = pd.concat([person_rows, image_rows[[c for c in image_rows.columns if c not in person_rows.columns]]],
                        axis=1)
    paths = dict(zip(images["sample_id"].astype(str), images["image_path"].astype(str)))
    sample_ids = people["sample_id"].astype(str).tolist()
    per_person = None if image_table is None else image_table.reindex(sample_ids).reset_index(drop=True)
    return covariate_table(declared, n=len(people), columns=columns, image_paths=[paths.get(s, "") for s in sample_ids],
                           card_path=card.path, image_table=per_person, images_later=images_later)


def segmentation_units(people_out: pd.DataFrame | None, covariates) -> UnitFrame | None:
    """The units: ``people.parquet``'s table (``matched@0.50``, ``image_id``, ``group:`` columns)
    and the covariates; None without person masks."""
    if people_out is None or covariates is None:
        return None
    table, notes = covariates
    return unit_frame(outcomes={MISSED: ~people_out["matched@0.50"].to_numpy(dtype=bool)}, groups=people_out,
                      covariates=table, image=people_out["image_id"].to_numpy(), unit="people", notes=notes)
