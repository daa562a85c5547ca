"""Dataset-bias audit of a data card's split: what ``audit data-card`` computes.

- **Composition**: counts and shares per attribute value and intersection, the
  LFW-style sentence, a chart, missing-attribute rates, and (when the card
  declares ``reference_population``) a chi-square goodness-of-fit test against
  it.
- **Co-occurrence**: label x group normalised PMI with a chi-square test of
  independence.
- **Image statistics per group** (Know Your Data's derived signals):
  brightness, contrast, sharpness and resolution, read with PIL.
- **Detection data** (COCO ground truth): person box size and distance from
  the image centre per group, as REVISE does.
- **Split comparison**: this split's composition against the split of the
  data card named by ``compare_to`` (e.g. train vs test).

The numbers come from the pure functions in :mod:`audit.stats`; this module
reads files and images, and formats one *section* (tables of strings, the
sentence and the chart) that is rendered both as Markdown into the data card
(:mod:`audit.card_update`) and as HTML into the report, so the two always agree.

Data card fields read here (validated when used, one-line
:class:`~audit.errors.CardError` naming the field)::

    reference_population:
      description: World population, UN 2022     # optional
      shares:                                     # grouping -> group -> weight (shares or counts)
        gender_presentation: {feminine: 0.5, masculine: 0.5}
        skin_type: {lighter: 0.6, darker: 0.4}
    compare_to: train.md                          # another data card (e.g. the training split)

The package splits along its concerns: the card fields it reads (:mod:`._options`), the audit itself
(:mod:`._audit`), the result and its presentation as one section of tables (:mod:`._section`), and the
Markdown / HTML rendering and writing (:mod:`._write`).
"""

from __future__ import annotations

from ..core.image_stats import IMAGE_STATISTICS, image_statistics  # noqa: F401 - re-exported: audit.dataset's API
from ._audit import audit_dataset, report_section  # noqa: F401 - report_section: audit run's dataset section
from ._options import DatasetOptions, dataset_options  # noqa: F401
from ._section import DatasetAudit, chart_png
from ._write import COMMAND, SECTION, render_dataset_html, section_markdown, write_data_card  # noqa: F401 - COMMAND

__all__ = [
    "DatasetAudit",
    "IMAGE_STATISTICS",
    "SECTION",
    "audit_dataset",
    "chart_png",
    "dataset_options",
    "image_statistics",
    "render_dataset_html",
    "section_markdown",
    "write_data_card",
]
