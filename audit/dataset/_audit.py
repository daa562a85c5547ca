"""The dataset-bias audit of a split (:func:`audit_dataset`) and the dataset section of ``audit run``'s report
(:func:`report_section`)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ..core.card_loaders import DataCard
from ..core.image_stats import image_statistics
from ..errors import CardError, DataError, StatsInputError
from ._options import dataset_options
from ._section import DatasetAudit, share_chart

__all__ = ["audit_dataset", "report_section"]


def _attributes(card):
    from ..stats import Attribute

    return [Attribute(name=a.name, column=a.name, scale=a.scale, bins=a.bins, order=a.order,
                      multi=getattr(a, "votes", None) == "any") for a in card.attributes]


def _as_card_error(card, field_name: str, exc: Exception) -> CardError:
    return CardError(f"{card.path}: field '{field_name}': {' '.join(str(exc).split())}")


def audit_dataset(card, *, images: bool = True, verify_images: bool = False, frame: pd.DataFrame | None = None,
                  correction: str = "fdr_bh", alpha: float = 0.05, counts=None,
                  image_table: pd.DataFrame | None = None) -> DatasetAudit:
    """Run the dataset-bias audit of a data card's split.

    Parameters
    ----------
    card : str, Path, DataCard or DetectionDataCard
    images : bool, default True
        Compute image statistics (reads every image once).
    verify_images : bool, default False
        Passed to :func:`audit.core.data.load_split`.
    frame : DataFrame, optional
        The split as :func:`audit.core.data.load_split` returns it, if already loaded.
    counts : SplitCounts, optional
        Instead of ``frame``, the split as per-cell counts
        (:class:`audit.tasks.classification.stream.SplitCounts`: ``cells``, ``label``, ``count``, and per
        sample ``rows`` and ``samples`` up to its detail limit). Composition and co-occurrence come from the
        counts; image statistics need the per-sample image paths.
    image_table : DataFrame, optional
        With ``frame``: each sample's image statistics (:func:`audit.core.image_stats.image_statistics`' columns,
        one row per row of ``frame``) as a model's inference pass computed them; the images are then not read.

    Returns
    -------
    DatasetAudit
    """
    from .. import stats

    if not isinstance(card, DataCard) and not hasattr(card, "coco"):
        card = _load_any_card(card)
    options = dataset_options(card)
    attributes = _attributes(card)
    intersections = [tuple(c) for c in card.intersections]
    title = str(card.front_matter.get("pretty_name") or card.front_matter.get("name") or card.name)

    box_summary = box_tests = None
    weights = None
    if hasattr(card, "coco"):
        kind, unit = "detection", "people"
        groups, labels, classes, boxes = _detection_people(card)
    elif counts is not None:  # one row per cell, weighted by its count
        kind, unit = "classification", "images"
        groups, labels, classes = counts.cells.reset_index(drop=True), counts.label, list(card.classes)
        weights = counts.count
    else:
        from ..core.data import load_split

        kind, unit = "classification", "images"
        if frame is None:
            frame = load_split(card, verify_images=verify_images)
        groups = frame[[a.name for a in card.attributes]].reset_index(drop=True)
        labels, classes = frame["label"].to_numpy(dtype=np.int64), list(card.classes)

    comp = stats.composition(groups, attributes, intersections, weights=weights)
    names = [a.name for a in attributes]
    reference = reference_tests = None
    if options.reference:
        try:
            reference, reference_tests = stats.reference_fit(comp, options.reference, correction=correction,
                                                             alpha=alpha)
        except StatsInputError as exc:
            raise _as_card_error(card, "reference_population.shares", exc) from None
    co, co_tests = stats.cooccurrence(labels, classes, groups, attributes, intersections, correction=correction,
                                      alpha=alpha, weights=weights)
    image_summary = image_tests = None
    if images and kind == "classification" and (counts is None or counts.samples is not None):
        if counts is None:
            paths, per_image, source = frame["image_path"], groups, str(frame.attrs.get("source", card.path))
        else:  # the per-sample image paths, kept up to the counts' detail limit
            paths, per_image = counts.samples["image_path"], groups.iloc[counts.rows].reset_index(drop=True)
            source = counts.source
        if image_table is None or counts is not None or len(image_table) != len(paths):
            image_table = image_statistics(paths.tolist(), source=source)  # no model ran: decode the images
        image_summary, image_tests = stats.summarise_by_group(image_table.reset_index(drop=True),
                                                              per_image, attributes, intersections,
                                                              correction=correction, alpha=alpha)
    if kind == "detection":
        geometry = stats.box_geometry(boxes)
        box_summary, box_tests = stats.summarise_by_group(
            geometry, groups, attributes, intersections, statistics=["box_area_fraction", "centre_distance"],
            correction=correction, alpha=alpha)
    split = split_tests = None
    if options.compare_to is not None:
        other = _load_any_card(options.compare_to, field_name="compare_to", referrer=card)
        other_groups = _groups_of(other, names, card)
        split, split_tests = stats.compare_composition(
            groups, other_groups, attributes, intersections, names=(card.name, other.name), correction=correction,
            alpha=alpha)
        split.columns = ["grouping", "group", "n_this", "share_this", "n_other", "share_other", "difference"]
    return DatasetAudit(
        card=str(card.path), name=card.name, title=title, kind=kind,
        n=len(groups) if weights is None else int(np.sum(weights)), unit=unit, attributes=names,
        min_group_size=card.min_group_size, composition=comp, sentence=stats.composition_sentence(comp, names),
        missing=stats.missing_rates(groups, attributes, weights=weights), cooccurrence=co, cooccurrence_tests=co_tests,
        reference=reference, reference_tests=reference_tests, reference_description=options.reference_description,
        image_statistics=image_summary, image_tests=image_tests, boxes=box_summary, box_tests=box_tests,
        split=split, split_tests=split_tests,
        compare_to=str(options.compare_to) if options.compare_to else None,
        chart=share_chart(comp, names, options.reference),
    )


def _load_any_card(path, *, field_name=None, referrer=None):
    from ..core.registry import load_any_data_card

    path = Path(path)
    if field_name and not path.is_file():
        raise CardError(f"{referrer.path}: field '{field_name}': expected an existing data card, found {str(path)!r}")
    return load_any_data_card(path)


def _groups_of(other, names: list[str], card) -> pd.DataFrame:
    """The other split's attribute table, under this card's attribute names."""
    missing = [n for n in names if n not in [a.name for a in other.attributes]]
    if missing:
        raise CardError(f"{card.path}: field 'compare_to': expected {other.path} to declare the attributes "
                        f"{', '.join(names)}, found no {', '.join(missing)}")
    if hasattr(other, "coco"):
        groups = _detection_people(other)[0]
    else:
        from ..core.data import load_split

        groups = load_split(other, verify_images=False)
    return groups[names].reset_index(drop=True)


def _detection_people(card):
    """People (non-crowd ground truth) of a detection data card: attributes, category labels, boxes."""
    from ..tasks.detection.data import load_ground_truth
    from ..tasks.detection.people import card_people

    gt = load_ground_truth(card.coco, image_root=card.image_root, allow_outside=card.allow_paths_outside_root)
    people, groups = card_people(card, gt)
    cat_ids = sorted(gt.categories)
    classes = [str(gt.categories[c]) for c in cat_ids]
    labels = np.searchsorted(np.asarray(cat_ids), gt.boxes.category[people])
    size = gt.images.set_index("image_id")[["width", "height"]].reindex(gt.boxes.image[people])
    unsized = size["width"].isna() | size["height"].isna()
    if unsized.any():
        image_id = size.index[unsized.to_numpy()][0]
        raise DataError(f"{card.coco}: image {image_id!r}: field 'height' / 'width': expected the image size "
                        "(positive integers) for the person-box statistics, found none")
    bbox = np.asarray(gt.boxes.bbox, dtype=float)[people]
    boxes = pd.DataFrame({"x1": bbox[:, 0], "y1": bbox[:, 1], "x2": bbox[:, 0] + bbox[:, 2],
                          "y2": bbox[:, 1] + bbox[:, 3], "image_width": size["width"].to_numpy(dtype=float),
                          "image_height": size["height"].to_numpy(dtype=float)})
    return groups.reset_index(drop=True), labels, classes, boxes


def report_section(data, *, images: bool = True, split=None, image_statistics=None) -> dict | None:
    """The dataset section for ``audit run``'s ``index.html`` (classification and COCO detection splits), else None.

    Image statistics are left out when some image file is absent (an audit of
    predictions made elsewhere does not need the images). ``split`` is the
    classification split the audit loaded (a :func:`audit.core.data.load_split`
    frame, or per-cell counts: see :func:`audit_dataset`), so it is not loaded
    again; ``image_statistics`` are its images' statistics from the model's inference pass
    (:attr:`audit.core.run.AuditRun.image_statistics`), so the images are not decoded again.
    """
    import os

    from ..core.data import load_split

    if hasattr(data, "coco"):  # a COCO detection card: composition, co-occurrence and person boxes
        return audit_dataset(data).section()
    card = data if isinstance(data, DataCard) else _load_any_card(data)
    if hasattr(card, "coco"):
        return audit_dataset(card).section()
    if not isinstance(card, DataCard):
        return None  # a task whose card this audit does not read (panoptic): no dataset section yet
    if getattr(card, "segmentation", None) is not None:
        return None
    if split is not None and hasattr(split, "cells"):  # per-cell counts
        detail = split.samples
        images = images and detail is not None and all(p and os.path.isfile(p) for p in detail["image_path"])
        return audit_dataset(card, images=images, counts=split).section()
    frame = split if split is not None else load_split(
        card, verify_images=False, **({"require_images": False} if _accepts_require_images() else {}))
    if "label" not in frame.columns:
        return None
    if image_statistics is None or split is None:
        image_statistics = None
        images = images and all(os.path.isfile(p) for p in frame["image_path"])
    return audit_dataset(card, images=images, frame=frame, image_table=image_statistics).section()


def _accepts_require_images() -> bool:
    import inspect

    from ..core.data import load_split

    return "require_images" in inspect.signature(load_split).parameters
