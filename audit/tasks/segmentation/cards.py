"""The ``segmentation`` block of a data card.

::

    segmentation:
      mask_column: mask          # manifest column: label-mask PNG (pixel = class index), relative to image_root
      ignore_index: 255          # label value left out of every metric (default 255)
      person_class: person       # optional: the class whose instances are scored per person
      people:                    # optional: one row per person
        table: people.csv        # CSV or Parquet, relative to the card
        image_column: image_id   # the image's sample id (the manifest's id_column)
        mask_column: mask        # per-person mask PNG, relative to image_root: nonzero = this person
        instance_column: value   # optional: the mask holds instance ids, this person is mask == value
        attributes: {skin_type: {column: skin, scale: fitzpatrick}}
        intersections: []
        reference_groups: {}

With a ``segmentation`` block the manifest needs no ``label_column``; the
label is the mask. Classes are the pixel values ``0..len(classes)-1`` in the
order of ``classes``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ...core.card_fields import parse_intersections, parse_reference_groups

__all__ = ["PeopleSpec", "SegmentationSpec", "parse_segmentation"]


@dataclass(frozen=True)
class PeopleSpec:
    """Per-person instance masks and the attributes of each person."""

    table: Path
    image_column: str
    mask_column: str
    instance_column: str | None
    attributes: list = field(default_factory=list)  # list of audit.core.card_loaders.AttributeSpec
    intersections: list = field(default_factory=list)
    reference_groups: dict = field(default_factory=dict)


@dataclass(frozen=True)
class SegmentationSpec:
    """How a data card's split holds its label masks."""

    mask_column: str
    ignore_index: int = 255
    person_class: str | None = None
    people: PeopleSpec | None = None


def _attributes(v, raw, prefix):
    """Attribute specs in the data card's own format (see :func:`audit.core.card_loaders.load_data_card`)."""
    from ...core.card_fields import parse_attribute_specs

    raw = v.mapping({"attributes": raw}, "attributes", prefix, required=False,
                    expected="a mapping of attribute name to its spec") if raw is not None else None
    return parse_attribute_specs(v, raw, prefix)


def parse_segmentation(v, raw, *, classes) -> SegmentationSpec:
    """Validate a data card's ``segmentation`` block; ``v`` is the card's validator."""
    if not isinstance(raw, dict):
        raise v.fail("segmentation", "a mapping with mask_column (and ignore_index, person_class, people)", raw)
    p = "segmentation."
    v.unknown_keys(raw, {"mask_column", "ignore_index", "person_class", "people"}, p)
    mask_column = v.string(raw, "mask_column", p)
    ignore_index = v.integer(raw, "ignore_index", p, required=False, default=255, minimum=0)
    if ignore_index < len(classes) or ignore_index > 65535:
        raise v.fail(p + "ignore_index", f"an integer in {len(classes)}..65535 (not a class index)", ignore_index)
    person_class = v.string(raw, "person_class", p, required=False)
    if person_class is not None and person_class not in classes:
        raise v.fail(p + "person_class", f"one of the classes ({', '.join(classes)})", person_class)
    people = None
    if raw.get("people") is not None:
        pr = raw["people"]
        pp = p + "people."
        if not isinstance(pr, dict):
            raise v.fail(p + "people", "a mapping with table, image_column, mask_column, attributes", pr)
        if person_class is None:
            raise v.fail(p + "person_class", "a class name when 'people' is given", None)
        v.unknown_keys(pr, {"table", "image_column", "mask_column", "instance_column", "attributes",
                            "intersections", "reference_groups"}, pp)
        table = v.string(pr, "table", pp)
        if Path(table).suffix.lower() not in (".csv", ".parquet"):
            raise v.fail(pp + "table", "a .csv or .parquet file", table)
        attributes = _attributes(v, pr.get("attributes"), pp)
        names = [a.name for a in attributes]
        intersections = parse_intersections(v, pr.get("intersections"), names, pp)
        groupings = ["overall", *names, *(" × ".join(c) for c in intersections)]
        people = PeopleSpec(
            table=v.resolve(table), image_column=v.string(pr, "image_column", pp),
            mask_column=v.string(pr, "mask_column", pp),
            instance_column=v.string(pr, "instance_column", pp, required=False),
            attributes=attributes, intersections=intersections,
            reference_groups=parse_reference_groups(
                v, v.mapping(pr, "reference_groups", pp, required=False,
                             expected="a mapping of grouping name to group label"), groupings, pp),
        )
    return SegmentationSpec(mask_column=mask_column, ignore_index=ignore_index, person_class=person_class,
                            people=people)
