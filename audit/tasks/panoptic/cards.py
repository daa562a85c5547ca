"""The panoptic data card and model card.

A panoptic data card names COCO panoptic ground truth, like a detection card names COCO instances::

    ---
    task: panoptic_segmentation
    split:
      panoptic: annotations/panoptic_val2017.json   # images, annotations (segments_info), categories (isthing)
      segmentations: annotations/panoptic_val2017   # the PNG folder (default: the JSON's path without .json)
      attributes: people.csv                        # optional: one row per person segment
      segment_id_column: segment_id                 # its segment id column (default segment_id)
      image_attributes: images.csv                  # optional: one row per image
      image_id_column: image_id                     # both tables' image key: image_id, or file_name (images[])
    image_root: val2017                             # the photographs, for a model (default: the JSON's folder)
    person_categories: [person]                     # whose segments are people (default: categories named person)
    attributes:                                     # per person segment: side table, segment or image attributes
      skin_tone: {column: monk, scale: monk, bins: {lighter: [1, 2, 3, 4, 5], darker: [6, 7, 8, 9, 10]}}
    intersections: []
    reference_groups: {skin_tone: lighter}
    image_groups:                                   # per image: the full PQ, SQ, RQ
      attributes: {lighting: {column: lighting}}
      intersections: []
      reference_groups: {lighting: well_lit}
    min_group_size: 30
    ---

A person segment's attribute comes, in order, from the side table (keyed by
the image key and the segment id: COCO segment ids are unique only within an
image), the image table, the segment's own ``attributes`` object in
``segments_info`` or the image's ``attributes`` in ``images[]``.

A panoptic model card has ``task: panoptic_segmentation`` and
``model.entry_point`` (``"package.module:function"`` returning a module that
takes a list of ``[0, 1]`` image tensors and returns, per image, either a
panoptic map ``{"panoptic_seg": (H, W) segment ids, 0 void, "segments_info":
[{"id", "category_id"}, ...]}`` with ``category_id`` an output index of
``label_map``, or an instance and a semantic output to merge
(``{"instances": {"masks", "labels", "scores"}, "sem_seg": (C, H, W) scores
or (H, W) labels}``, merged by :func:`audit.tasks.panoptic.merge.merge_panoptic`
with the card's ``merge`` thresholds)::

    ---
    task: panoptic_segmentation
    model: {entry_point: "mypkg.models:panoptic_fpn"}
    num_classes: 3
    label_map: [person, ball, background]
    class_map: {background: sky}          # optional: model class -> data category (default: by name)
    merge: {score_threshold: 0.5, overlap_threshold: 0.5, stuff_area_threshold: 4096}
    weights: {path: weights.pth}
    ---

``builder`` gives the entry point keyword arguments
(:func:`audit.core.model_spec.entry_point_arguments`); a string naming a file
beside the card is passed as its path and is part of the model's fingerprint
(a model card named there with its weights), so a panoptic model can be made
of trained models that have cards of their own (``audit demo``:
:mod:`audit.demo.panoptic_model`)::

    model: {entry_point: "audit.demo.panoptic_model:detector_and_segmenter"}
    builder: {detector: benchmark_detector.md, segmenter: benchmark_segmenter.md}
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from ...core.card_fields import (DATA_FIELDS, parse_attribute_specs, parse_audit_options, parse_intersections,
                                 parse_label_map, parse_reference_groups, parse_weights)
from ...core.cards import AttributeSpec, ModelCard, ModelSource, Validator
from ...core.front_matter import read_front_matter

__all__ = ["MERGE_DEFAULTS", "PANOPTIC_TASK", "PanopticDataCard", "load_panoptic_data_card",
           "load_panoptic_model_card"]

PANOPTIC_TASK = "panoptic_segmentation"
MERGE_DEFAULTS = {"score_threshold": 0.5, "overlap_threshold": 0.5, "stuff_area_threshold": 4096}
_FIELDS = (DATA_FIELDS - {"label_column", "classes", "pos_label", "segmentation"}) | {"task", "person_categories",
                                                                                      "image_groups"}


@dataclass(frozen=True)
class PanopticDataCard:
    """A parsed and validated panoptic data card (see the module docstring)."""

    path: Path
    name: str
    panoptic: Path
    segmentations: Path
    attributes_table: Path | None
    segment_id_column: str
    image_attributes: Path | None
    image_id_column: str
    image_root: Path
    person_categories: list[str] | None
    attributes: list[AttributeSpec]
    intersections: list[tuple[str, ...]]
    reference_groups: dict[str, str]
    image_group_attributes: list[AttributeSpec]
    image_intersections: list[tuple[str, ...]]
    image_reference_groups: dict[str, str]
    min_group_size: int
    body: str = field(repr=False)
    front_matter: dict = field(repr=False)
    options: dict = field(default_factory=dict)  # statistics settings: see audit.core.cards.parse_audit_options
    allow_paths_outside_root: bool = False


def _table(v: Validator, split: dict, key: str) -> Path | None:
    value = split.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or Path(value).suffix.lower() not in (".csv", ".parquet"):
        raise v.fail(f"split.{key}", "a .csv or .parquet file", value)
    return v.resolve(value)


def _grouping(v: Validator, raw, prefix: str):
    """Attributes, intersections and reference groups of one level (``""`` person, ``"image_groups."`` image)."""
    attributes = parse_attribute_specs(v, v.mapping(raw, "attributes", prefix, required=False,
                                                    expected="a mapping of attribute name to its spec"), prefix)
    names = [a.name for a in attributes]
    intersections = parse_intersections(v, raw.get("intersections"), names, prefix)
    groupings = ["overall", *names, *(" × ".join(c) for c in intersections)]
    reference = parse_reference_groups(v, v.mapping(raw, "reference_groups", prefix, required=False,
                                                    expected="a mapping of grouping name to group label"),
                                       groupings, prefix)
    return attributes, intersections, reference


def load_panoptic_data_card(path) -> PanopticDataCard:
    """Parse and validate a panoptic data card (see the module docstring). Raises CardError."""
    path = Path(path)
    data, body = read_front_matter(path)
    v = Validator(path, data)
    v.unknown_keys(data, _FIELDS)
    if data.get("task", PANOPTIC_TASK) != PANOPTIC_TASK:
        raise v.fail("task", PANOPTIC_TASK, data.get("task"))
    split = v.mapping(data, "split", expected="a mapping with 'panoptic'")
    v.unknown_keys(split, {"panoptic", "segmentations", "attributes", "segment_id_column", "image_attributes",
                           "image_id_column"}, "split.")
    panoptic = v.resolve(v.string(split, "panoptic", "split."))
    folder = v.string(split, "segmentations", "split.", required=False)
    # panopticapi's convention: the PNGs are in the folder named like the JSON without its extension
    segmentations = v.resolve(folder) if folder else panoptic.with_suffix("")
    root = v.string(data, "image_root", required=False)
    people = v.string_list(data, "person_categories", required=False)
    attributes, intersections, reference = _grouping(v, data, "")
    image_raw = v.mapping(data, "image_groups", required=False,
                          expected="a mapping with attributes, intersections, reference_groups") or {}
    v.unknown_keys(image_raw, {"attributes", "intersections", "reference_groups"}, "image_groups.")
    image_attributes, image_intersections, image_reference = _grouping(v, image_raw, "image_groups.")
    allow_outside = data.get("allow_paths_outside_root", False)
    if not isinstance(allow_outside, bool):
        raise v.fail("allow_paths_outside_root", "true or false", allow_outside)
    return PanopticDataCard(
        path=path, name=path.stem, panoptic=panoptic, segmentations=segmentations,
        attributes_table=_table(v, split, "attributes"),
        segment_id_column=v.string(split, "segment_id_column", "split.", required=False, default="segment_id"),
        image_attributes=_table(v, split, "image_attributes"),
        image_id_column=v.string(split, "image_id_column", "split.", required=False, default="image_id"),
        image_root=v.resolve(root) if root else panoptic.parent, person_categories=people,
        attributes=attributes, intersections=intersections, reference_groups=reference,
        image_group_attributes=image_attributes, image_intersections=image_intersections,
        image_reference_groups=image_reference,
        min_group_size=v.integer(data, "min_group_size", required=False, default=50, minimum=1),
        body=body, front_matter=data, options=parse_audit_options(v, data), allow_paths_outside_root=allow_outside,
    )


def _merge_settings(v: Validator, raw) -> dict:
    if raw is None:
        return dict(MERGE_DEFAULTS)
    if not isinstance(raw, dict):
        raise v.fail("merge", "a mapping with score_threshold, overlap_threshold, stuff_area_threshold", raw)
    v.unknown_keys(raw, set(MERGE_DEFAULTS), "merge.")
    out = dict(MERGE_DEFAULTS)
    for key in ("score_threshold", "overlap_threshold"):
        value = raw.get(key, out[key])
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
            raise v.fail(f"merge.{key}", "a number in [0, 1]", value)
        out[key] = float(value)
    out["stuff_area_threshold"] = v.integer(raw, "stuff_area_threshold", "merge.", required=False,
                                            default=out["stuff_area_threshold"], minimum=0)
    return out


def load_panoptic_model_card(path, data: dict, body: str) -> ModelCard:
    """Validate a model card whose ``task`` is ``panoptic_segmentation`` (called by ``audit.core.card_loaders.load_model_card``).

    The ``merge`` thresholds are validated and kept in ``front_matter["merge"]`` (defaults filled in).
    """
    path = Path(path)
    v = Validator(path, data)
    v.unknown_keys(data, {"task", "model", "weights", "trust_checkpoint", "num_classes", "label_map", "class_map",
                          "merge", "builder", "name", "model_name", "description", "license", "version", "tags", "language",
                          "library_name", "datasets", "metrics", "base_model", "pipeline_tag", "model-index"})
    model = v.mapping(data, "model", expected="a mapping with 'entry_point'")
    v.unknown_keys(model, {"entry_point"}, "model.")
    entry = v.string(model, "entry_point", "model.")
    if not re.fullmatch(r"[A-Za-z_][\w.]*:[A-Za-z_][\w.]*", entry):
        raise v.fail("model.entry_point", "'package.module:function' returning a panoptic segmenter", entry)
    weights, trust = parse_weights(v, data, architecture=False)
    num_classes, label_map = parse_label_map(v, data, weights, minimum=1, unique=True)
    from ...core.model_spec import entry_point_arguments, parse_class_map

    class_map = parse_class_map(v, data.get("class_map"), label_map)
    builder = entry_point_arguments(v, data.get("builder"))
    front = {**data, "merge": _merge_settings(v, data.get("merge"))}
    return ModelCard(path=path, name=path.stem, task=PANOPTIC_TASK, model=ModelSource(kind="entry_point",
                     entry_point=entry), weights=weights, trust_checkpoint=trust, num_classes=num_classes,
                     label_map=list(label_map), preprocessing=None, body=body, front_matter=front,
                     class_map=class_map, builder=builder)


def is_panoptic_card(front_matter: dict) -> bool:
    """A card that names no task but whose split names COCO panoptic ground truth (``split.panoptic``)."""
    split = front_matter.get("split")
    return isinstance(split, dict) and "panoptic" in split

