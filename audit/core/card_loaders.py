"""Data cards and model cards of classification and semantic segmentation: the two loaders.

The primitives every task shares (the validator, attribute specs, model
sources and weights) live in :mod:`audit.core.cards`, the front matter reader
in :mod:`audit.core.front_matter`; they are re-exported here; a detection card is read by :mod:`audit.tasks.detection.cards`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from pathlib import Path

from .card_fields import DATA_FIELDS, parse_attribute_specs, parse_audit_options, parse_intersections, parse_label_map, parse_reference_groups, parse_weights
from .cards import AttributeSpec, DataCard, ModelCard, ModelSource, Preprocessing, SplitSpec, WeightsSpec, MISSING, Validator
from .front_matter import read_front_matter

__all__ = [
    "AttributeSpec",
    "DataCard",
    "ModelCard",
    "ModelSource",
    "Preprocessing",
    "SplitSpec",
    "WeightsSpec",
    "load_data_card",
    "load_model_card",
    "read_front_matter",
]


def load_data_card(path: str | Path, *, sections: Mapping[str, Callable] | None = None) -> DataCard:
    """Parse and validate a data card.

    Parameters
    ----------
    path : str or Path
        A ``data_cards/NAME.md`` file.
    sections : mapping of str to callable, optional
        A task's own card section: name -> ``parse(validator, raw, *, classes)`` (the semantic segmentation task
        passes its ``segmentation`` parser). A card with such a section needs no ``label_column``.

    Returns
    -------
    DataCard

    Raises
    ------
    CardError
        The card is unreadable or a field is missing or has a wrong value.
    """
    path = Path(path)
    data, body = read_front_matter(path)
    v = Validator(path, data)
    v.unknown_keys(data, DATA_FIELDS)

    split_raw = v.mapping(data, "split", expected="a mapping with either 'manifest' or 'imagefolder'")
    if ("manifest" in split_raw) == ("imagefolder" in split_raw):
        raise v.fail("split", "a mapping with exactly one of 'manifest' or 'imagefolder'", split_raw)
    if "manifest" in split_raw:
        v.unknown_keys(split_raw, {"manifest", "id_column", "image_column"}, "split.")
        table = v.string(split_raw, "manifest", "split.")
        if Path(table).suffix.lower() not in (".csv", ".parquet"):
            raise v.fail("split.manifest", "a .csv or .parquet file", table)
        split = SplitSpec(
            kind="manifest",
            table=v.resolve(table),
            id_column=v.string(split_raw, "id_column", "split."),
            # optional: an audit of predictions made elsewhere needs no images (checked when a model runs)
            image_column=v.string(split_raw, "image_column", "split.", required=False),
        )
    else:
        v.unknown_keys(split_raw, {"imagefolder", "attributes", "id_column"}, "split.")
        folder = v.string(split_raw, "imagefolder", "split.")
        table = v.string(split_raw, "attributes", "split.")
        if Path(table).suffix.lower() not in (".csv", ".parquet"):
            raise v.fail("split.attributes", "a .csv or .parquet file", table)
        split = SplitSpec(
            kind="imagefolder",
            table=v.resolve(table),
            id_column=v.string(split_raw, "id_column", "split."),
            folder=v.resolve(folder),
        )

    root = v.string(data, "image_root", required=False)
    if split.kind == "imagefolder":
        image_root = split.folder
    elif root is not None:
        image_root = v.resolve(root)
    else:
        image_root = split.table.parent

    sections = dict(sections or {})
    label_column = v.string(data, "label_column",
                            required=split.kind == "manifest" and not any(data.get(k) is not None for k in sections))
    classes = v.string_list(data, "classes")
    if len(classes) < 2:
        raise v.fail("classes", "at least 2 classes", classes)
    parsed = {name: parse(v, data[name], classes=classes) for name, parse in sections.items()
              if data.get(name) is not None}

    attrs_raw = v.mapping(data, "attributes", required=False, expected="a mapping of attribute name to its spec")
    attributes = parse_attribute_specs(v, attrs_raw)
    names = [a.name for a in attributes]

    intersections = parse_intersections(v, data.get("intersections"), names)
    groupings = ["overall", *names, *(" × ".join(c) for c in intersections)]
    ref_raw = v.mapping(data, "reference_groups", required=False, expected="a mapping of grouping name to group label")
    reference_groups = parse_reference_groups(v, ref_raw, groupings)

    min_group_size = v.integer(data, "min_group_size", required=False, default=50, minimum=1)
    options = parse_audit_options(v, data, classes=classes)
    allow_outside = data.get("allow_paths_outside_root", False)
    if not isinstance(allow_outside, bool):
        raise v.fail("allow_paths_outside_root", "true or false", allow_outside)

    return DataCard(
        path=path,
        name=path.stem,
        split=split,
        image_root=image_root,
        label_column=label_column,
        classes=classes,
        attributes=attributes,
        intersections=intersections,
        reference_groups=reference_groups,
        min_group_size=min_group_size,
        allow_paths_outside_root=allow_outside,
        body=body,
        front_matter=data,
        segmentation=parsed.get("segmentation"),
        options=options,
    )


MODEL_TASKS = ("classification", "semantic_segmentation")

_MODEL_FIELDS = {
    "task", "model", "weights", "trust_checkpoint", "num_classes", "label_map", "preprocessing", "class_map",
    "builder",
    # documentation fields, free-form (Hugging Face style metadata)
    "name", "model_name", "description", "license", "version", "tags", "language", "library_name",
    "datasets", "metrics", "base_model", "pipeline_tag",
}
# written by `audit run --update-model-card` (audit.model_card), between comment markers
_MODEL_FIELDS |= {"model-index"}


def load_model_card(path: str | Path) -> ModelCard:
    """Parse and validate a model card.

    Parameters
    ----------
    path : str or Path
        A ``models/NAME.md`` file.

    Returns
    -------
    ModelCard

    Raises
    ------
    CardError
        The card is unreadable or a field is missing or has a wrong value
        (including an architecture that is not in the torchvision registry
        and a weights enum torchvision does not know).
    """
    path = Path(path)
    data, body = read_front_matter(path)
    if isinstance(data.get("task"), str) and data["task"] not in MODEL_TASKS:
        from .registry import model_card_loader

        loader = model_card_loader(data["task"])  # a task that reads its own model cards (detection)
        if loader is not None:
            return loader(path, data, body)
    v = Validator(path, data)
    v.unknown_keys(data, _MODEL_FIELDS)

    task = v.string(data, "task")
    if task not in MODEL_TASKS:
        raise v.fail("task", " or ".join(f"'{t}'" for t in MODEL_TASKS), task)

    model_raw = v.mapping(
        data, "model", expected="a mapping with one of 'architecture', 'torchscript' or 'entry_point'"
    )
    kinds = [k for k in ("architecture", "torchscript", "entry_point") if k in model_raw]
    if len(kinds) != 1:
        raise v.fail("model", "a mapping with exactly one of 'architecture', 'torchscript' or 'entry_point'", model_raw)
    v.unknown_keys(model_raw, {"architecture", "torchscript", "entry_point"}, "model.")
    kind = kinds[0]
    value = v.string(model_raw, kind, "model.")
    if kind == "architecture":
        import torchvision.models

        from .unet import SEGMENTATION_ARCHITECTURES

        if value not in torchvision.models.list_models() and not (
            task == "semantic_segmentation" and value in SEGMENTATION_ARCHITECTURES
        ):
            raise v.fail(
                "model.architecture",
                "a torchvision model name (see torchvision.models.list_models())",
                value,
            )
        source = ModelSource(kind=kind, architecture=value)
    elif kind == "torchscript":
        source = ModelSource(kind=kind, torchscript=v.resolve(value))
    else:
        if not re.fullmatch(r"[A-Za-z_][\w.]*:[A-Za-z_][\w.]*", value):
            raise v.fail("model.entry_point", "'package.module:function'", value)
        source = ModelSource(kind=kind, entry_point=value)

    weights, trust = parse_weights(v, data, architecture=kind == "architecture")

    num_classes, label_map = parse_label_map(v, data, weights, minimum=1, unique=True)
    from .model_spec import check_builder, parse_class_map

    class_map = parse_class_map(v, data.get("class_map"), label_map)
    builder = check_builder(v, data.get("builder"), source.architecture)

    preprocessing = None
    pre_raw = v.mapping(data, "preprocessing", required=False, expected="a mapping with resize, mean, std")
    if pre_raw is None:
        if weights is None or weights.enum is None:
            raise v.fail("preprocessing", "a mapping with resize, mean, std (required without weights.enum)", MISSING)
    else:
        v.unknown_keys(pre_raw, {"resize", "mean", "std"}, "preprocessing.")
        resize = pre_raw.get("resize", MISSING)
        if isinstance(resize, int) and not isinstance(resize, bool):
            resize = [resize, resize]
        if (
            not isinstance(resize, list)
            or len(resize) != 2
            or not all(isinstance(x, int) and not isinstance(x, bool) and x > 0 for x in resize)
        ):
            raise v.fail("preprocessing.resize", "[height, width] as two positive integers", resize)
        stats = {}
        for key in ("mean", "std"):
            val = pre_raw.get(key, MISSING)
            if (
                not isinstance(val, list)
                or len(val) not in (1, 3)
                or not all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in val)
            ):
                raise v.fail(f"preprocessing.{key}", "a list of 1 or 3 numbers (one per channel)", val)
            if key == "std" and any(x <= 0 for x in val):
                raise v.fail("preprocessing.std", "positive numbers", val)
            stats[key] = tuple(float(x) for x in val)
        preprocessing = Preprocessing(resize=(resize[0], resize[1]), mean=stats["mean"], std=stats["std"])

    return ModelCard(
        path=path,
        name=path.stem,
        task=task,
        model=source,
        weights=weights,
        trust_checkpoint=trust,
        num_classes=num_classes,
        label_map=label_map,
        preprocessing=preprocessing,
        body=body,
        front_matter=data,
        class_map=class_map,
        builder=builder,
    )
