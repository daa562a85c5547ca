"""Data cards and model cards for detection and instance segmentation.

A detection data card names COCO ground truth instead of a manifest::

    ---
    split:
      coco: facet/coco_boxes.json        # images, annotations, categories
      masks: facet/coco_masks.json       # optional: masks with the same annotation ids
      attributes: facet/annotations.csv  # optional: one row per annotation (FACET's file as it is)
      annotation_id_column: person_id    # default: annotation_id, or person_id when present
      image_attributes: images.csv       # optional: one row per image
      image_id_column: file_name         # image_id or file_name
    image_root: facet/images
    class_agnostic: true                 # any detection may match any person (FACET); default true
    detection_classes: [person]          # model classes kept as detections (default: the categories' names)
    attributes:
      skin_tone: {column: skin_tone, scale: monk, votes: any, bins: {lighter: [1, 2, 3], darker: [8, 9, 10]}}
      gender: {column: gender_presentation}
      lighting: {column: lighting}
    ---

A detection model card has ``task: detection`` or ``task:
instance_segmentation``, a torchvision detection builder
(``model.architecture``: ``fasterrcnn_*``, ``retinanet_*``, ``fcos_*``,
``ssd*``, ``ssdlite*``, ``maskrcnn_*``) or ``model.entry_point``
(``"package.module:function"`` returning a module with torchvision's
detection interface: a list of ``[0, 1]`` image tensors in, one dict of
``boxes``, ``labels``, ``scores`` (and ``masks``) per image out, e.g.
``audit.train.detection:person_maskrcnn``), ``num_classes`` and
``label_map`` (output label -> class name, index 0 usually
``__background__``; ``weights`` takes the enum's ``meta["categories"]``) and
optional ``weights`` (an enum only with an architecture; ``path``: a local
state dict). ``model.torchscript`` names a TorchScript detector (a scripted
torchvision detector returns ``(losses, detections)``; the detections are
used). ``class_map`` (model class -> data category, see
:mod:`audit.core.model_spec`) picks the detections that count, e.g. ``{person:
person}``, and ``builder`` passes arguments to the torchvision builder
(``min_size``, ``max_size``, ``box_score_thresh``, ...). The detectors do
their own resizing and normalisation, so there is no ``preprocessing``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from ...core.card_fields import (DATA_FIELDS, normalise_level, parse_bins, parse_audit_options, parse_intersections,
                                 parse_label_map, parse_reference_groups, parse_weights)
from ...core.cards import SCALES, AttributeSpec, ModelCard, ModelSource, Validator
from ...core.front_matter import read_front_matter
from ...errors import CardError
from .data import VOTE_MODES

__all__ = ["DETECTION_TASKS", "DETECTOR_PREFIXES", "DetectionAttribute", "DetectionDataCard", "is_detection_data_card",
           "load_detection_data_card", "load_detection_model_card"]

DETECTION_TASKS = ("detection", "instance_segmentation")
DETECTOR_PREFIXES = ("fasterrcnn_", "retinanet_", "fcos_", "ssd", "ssdlite", "maskrcnn_", "keypointrcnn_")


@dataclass(frozen=True)
class DetectionAttribute(AttributeSpec):
    """An attribute spec plus how a vote distribution becomes a group (``any``, ``majority``, ``expected``)."""

    votes: str | None = None


@dataclass(frozen=True)
class DetectionDataCard:
    path: Path
    name: str
    coco: Path
    masks: Path | None
    attributes_table: Path | None
    annotation_id_column: str | None
    image_attributes: Path | None
    image_id_column: str
    image_root: Path
    class_agnostic: bool
    detection_classes: list[str] | None
    attributes: list[DetectionAttribute]
    intersections: list[tuple[str, ...]]
    reference_groups: dict[str, str]
    min_group_size: int
    body: str = field(repr=False)
    front_matter: dict = field(repr=False)
    options: dict = field(default_factory=dict)  # statistics settings: see audit.core.card_loaders.parse_audit_options
    allow_paths_outside_root: bool = False


def is_detection_data_card(path) -> bool:
    """True when the card's ``split`` names COCO ground truth (``split.coco``)."""
    try:
        data, _ = read_front_matter(path)
    except CardError:
        return False
    split = data.get("split")
    return isinstance(split, dict) and "coco" in split


_DET_DATA_FIELDS = (DATA_FIELDS - {"label_column", "classes", "pos_label"}) | {"class_agnostic", "detection_classes",
                                                                              "task"}


def load_detection_data_card(path) -> DetectionDataCard:
    """Parse and validate a detection data card (see the module docstring). Raises CardError."""
    path = Path(path)
    data, body = read_front_matter(path)
    v = Validator(path, data)
    v.unknown_keys(data, _DET_DATA_FIELDS)
    task = data.get("task")
    if task is not None and task not in DETECTION_TASKS:
        raise v.fail("task", f"one of {', '.join(DETECTION_TASKS)}", task)
    split = v.mapping(data, "split", expected="a mapping with 'coco'")
    v.unknown_keys(split, {"coco", "masks", "attributes", "annotation_id_column", "image_attributes",
                           "image_id_column"}, "split.")
    coco = v.resolve(v.string(split, "coco", "split."))
    masks = split.get("masks")
    masks = v.resolve(v.string(split, "masks", "split.")) if masks is not None else None
    table = v.string(split, "attributes", "split.", required=False)
    for key, value in (("attributes", table), ("image_attributes", split.get("image_attributes"))):
        if value is not None and (not isinstance(value, str) or Path(value).suffix.lower() not in (".csv", ".parquet")):
            raise v.fail(f"split.{key}", "a .csv or .parquet file", value)
    image_table = split.get("image_attributes")
    image_key = v.string(split, "image_id_column", "split.", required=False, default="image_id")
    if image_key not in ("image_id", "file_name", "filename", "id"):
        pass  # any column name is allowed; values are matched to image ids unless the name says file name
    root = v.string(data, "image_root", required=False)
    class_agnostic = data.get("class_agnostic", True)
    if not isinstance(class_agnostic, bool):
        raise v.fail("class_agnostic", "true or false", class_agnostic)
    det_classes = v.string_list(data, "detection_classes", required=False)

    attributes = []
    names = []
    raw = v.mapping(data, "attributes", required=False, expected="a mapping of attribute name to its spec")
    for name, spec in (raw or {}).items():
        prefix = f"attributes.{name}."
        spec = {} if spec is None else spec
        if not isinstance(spec, dict):
            raise v.fail(f"attributes.{name}", "a mapping with column, scale, bins, order, votes", spec)
        v.unknown_keys(spec, {"column", "scale", "bins", "order", "description", "votes"}, prefix)
        column = v.string(spec, "column", prefix, required=False, default=name)
        scale = spec.get("scale", "nominal")
        if scale not in SCALES:
            raise v.fail(prefix + "scale", f"one of {', '.join(SCALES)}", scale)
        votes = spec.get("votes")
        if votes is not None and votes not in VOTE_MODES:
            raise v.fail(prefix + "votes", f"one of {', '.join(VOTE_MODES)}", votes)
        order = spec.get("order")
        if order is not None:
            if not isinstance(order, list) or not order:
                raise v.fail(prefix + "order", "a non-empty list of values", order)
            order = [normalise_level(x, scale) for x in order]
        attributes.append(DetectionAttribute(name=name, column=column, scale=scale, bins=parse_bins(v, spec, prefix, scale),
                                             order=order, votes=votes))
        names.append(name)
    intersections = parse_intersections(v, data.get("intersections"), names)
    groupings = ["overall", *names, *(" × ".join(c) for c in intersections)]
    reference_groups = parse_reference_groups(v, v.mapping(data, "reference_groups", required=False), groupings)
    min_group_size = v.integer(data, "min_group_size", required=False, default=50, minimum=1)
    allow_outside = data.get("allow_paths_outside_root", False)
    if not isinstance(allow_outside, bool):
        raise v.fail("allow_paths_outside_root", "true or false", allow_outside)
    return DetectionDataCard(
        path=path, name=path.stem, coco=coco, masks=masks, attributes_table=v.resolve(table) if table else None,
        annotation_id_column=v.string(split, "annotation_id_column", "split.", required=False),
        image_attributes=v.resolve(image_table) if image_table else None, image_id_column=image_key,
        image_root=v.resolve(root) if root else coco.parent, class_agnostic=class_agnostic,
        detection_classes=det_classes, attributes=attributes, intersections=intersections,
        reference_groups=reference_groups, min_group_size=min_group_size, body=body, front_matter=data,
        options=parse_audit_options(v, data),
        allow_paths_outside_root=allow_outside,
    )


def load_detection_model_card(path, data: dict, body: str) -> ModelCard:
    """Validate a model card whose ``task`` is detection or instance_segmentation (called by ``load_model_card``)."""
    path = Path(path)
    v = Validator(path, data)
    v.unknown_keys(data, {"task", "model", "weights", "trust_checkpoint", "num_classes", "label_map", "name",
                          "model_name", "description", "license", "version", "tags", "language", "library_name",
                          "datasets", "metrics", "base_model", "pipeline_tag", "score_threshold", "class_map",
                          "builder", "model-index"})  # model-index: written by `audit run --update-model-card`
    task = data["task"]
    model = v.mapping(data, "model", expected="a mapping with 'architecture', 'torchscript' or 'entry_point'")
    kinds = [k for k in ("architecture", "torchscript", "entry_point") if k in model]
    if len(kinds) != 1:
        raise v.fail("model", "a mapping with exactly one of 'architecture', 'torchscript' or 'entry_point'", model)
    v.unknown_keys(model, {"architecture", "torchscript", "entry_point"}, "model.")
    if kinds[0] == "entry_point":
        entry = v.string(model, "entry_point", "model.")
        if not re.fullmatch(r"[A-Za-z_][\w.]*:[A-Za-z_][\w.]*", entry):
            raise v.fail("model.entry_point", "'package.module:function' returning a torchvision-style detector",
                         entry)
        source = ModelSource(kind="entry_point", entry_point=entry)
    elif kinds[0] == "torchscript":
        # a scripted torchvision detector (torch.jit.script(model)), or any TorchScript module with its interface
        source = ModelSource(kind="torchscript", torchscript=v.resolve(v.string(model, "torchscript", "model.")))
    else:
        arch = v.string(model, "architecture", "model.")
        import torchvision.models

        if arch not in torchvision.models.list_models() or not arch.startswith(DETECTOR_PREFIXES):
            raise v.fail("model.architecture", "a torchvision detection model name (fasterrcnn_*, retinanet_*, "
                         "fcos_*, ssd*, ssdlite*, maskrcnn_*)", arch)
        if task == "instance_segmentation" and not arch.startswith("maskrcnn_"):
            raise v.fail("model.architecture", "a maskrcnn_* model for instance_segmentation", arch)
        source = ModelSource(kind="architecture", architecture=arch)
    weights, trust = parse_weights(v, data, architecture=source.kind == "architecture",
                                   example="FasterRCNN_ResNet50_FPN_Weights.COCO_V1")
    # COCO's categories repeat 'N/A' for the ids the data set left out, so names need not be unique
    num_classes, label_map = parse_label_map(v, data, weights, minimum=2, unique=False)
    from ...core.model_spec import check_builder, parse_class_map

    class_map = parse_class_map(v, data.get("class_map"), label_map)
    builder = check_builder(v, data.get("builder"), source.architecture)
    threshold = data.get("score_threshold", 0.0)
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not 0 <= threshold <= 1:
        raise v.fail("score_threshold", "a number in [0, 1]", threshold)
    return ModelCard(path=path, name=path.stem, task=task, model=source,
                     weights=weights, trust_checkpoint=trust, num_classes=num_classes, label_map=list(label_map),
                     preprocessing=None, body=body, front_matter=data, class_map=class_map, builder=builder)
