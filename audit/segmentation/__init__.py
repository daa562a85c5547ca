"""Semantic segmentation audits: cards, splits of image and label-mask PNGs, models, inference, pipeline.

The runner layer for ``task: semantic_segmentation``. The statistics live in
:mod:`audit.stats` (:func:`~audit.stats.audit_segmentation`); this package
reads masks, runs segmenters (torchvision ``fcn_*``, ``deeplabv3_*``,
``lraspp_*``, or the small :class:`~audit.segmentation.models.UNet`) or reads
predicted mask PNGs, and reduces every image once to its per-class
intersection and union.
"""

from .cards import PeopleSpec, SegmentationSpec

__all__ = ["PeopleSpec", "SegmentationSpec"]
