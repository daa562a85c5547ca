"""The fields every card shares, parsed with the validator of :mod:`audit.core.cards`: attributes and their bins,
intersections, reference groups, weights and label maps, and the audit settings (interval, correction, positive
class, disparity metrics, minimum group size) with the command line's values over the card's.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .cards import (MISSING, _ROMAN, _SCALE_RANGE, FITZPATRICK_DEFAULT_BINS, SCALES, AttributeSpec, WeightsSpec,
                    _show, Validator)

def normalise_level(value: Any, scale: str) -> Any:
    """Normalise a Fitzpatrick / Monk value (roman or int) to an int; else unchanged."""
    if scale not in _SCALE_RANGE:
        return value
    if isinstance(value, str):
        text = value.strip()
        if scale == "fitzpatrick" and text.upper() in _ROMAN:
            return _ROMAN[text.upper()]
        if text.isdigit():
            return int(text)
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


DATA_FIELDS = {
    "split", "image_root", "label_column", "classes", "attributes", "intersections",
    "reference_groups", "min_group_size", "allow_paths_outside_root", "segmentation",
    # statistics settings (the command line overrides them): see parse_audit_options
    "pos_label", "correction", "interval", "disparity_metrics",
    # what may explain a gap (audit.core.covariates); --covariates overrides it
    "covariates",
    # documentation fields, free-form (Hugging Face style metadata)
    "name", "pretty_name", "description", "license", "version", "tags", "language",
    "annotations_creators", "source_datasets", "task_categories", "size_categories",
}
# dataset-audit fields, validated by audit.dataset.dataset_options when `audit data-card` runs
DATA_FIELDS |= {"reference_population", "compare_to"}
# written by `audit import` (audit.importers): the source, root and command that wrote the card and its side files
DATA_FIELDS |= {"imported_from"}


INTERVALS = ("wilson", "clopper-pearson", "bootstrap")


CORRECTIONS = ("fdr_bh", "holm")


def parse_audit_options(v: "Validator", data: dict, *, classes: list[str] | None = None) -> dict:
    """The statistics settings a data card may set: only those it sets, for the command line to override.

    ``pos_label`` (a class name, binary tasks: then only that class's rows are
    reported and tested), ``correction`` (``fdr_bh`` or ``holm``),
    ``interval`` (``wilson``, ``clopper-pearson`` or ``bootstrap``) and
    ``disparity_metrics`` (the metrics compared between groups and tested) and
    ``covariates`` (what may explain a gap: :func:`audit.core.covariates.parse_covariates`).
    """
    options = {}
    if data.get("pos_label") is not None:
        if classes is None:
            raise v.fail("pos_label", "no pos_label: this task has no classes to choose from", data["pos_label"])
        label = str(data["pos_label"])
        if label not in classes:
            raise v.fail("pos_label", f"one of the card's classes {classes}", data["pos_label"])
        options["pos_label"] = label
    for key, allowed in (("correction", CORRECTIONS), ("interval", INTERVALS)):
        if data.get(key) is not None:
            if data[key] not in allowed:
                raise v.fail(key, f"one of {list(allowed)}", data[key])
            options[key] = data[key]
    if data.get("disparity_metrics") is not None:
        options["disparity_metrics"] = v.string_list(data, "disparity_metrics")
    if data.get("covariates") is not None:
        from .covariates import parse_covariates

        options["covariates"] = parse_covariates(
            data["covariates"], fail=lambda where, expected, found: v.fail(f"covariates{where}", expected, found))
    return options


def apply_settings(card, *, min_group_size: int | None = None, **given):
    """The card with the command line's statistics settings (those not None) over its own.

    Works for every kind of data card that has ``options`` and ``min_group_size``.
    """
    import dataclasses

    options = {**card.options, **{key: value for key, value in given.items() if value is not None}}
    changes = {"options": options}
    if min_group_size is not None:
        changes["min_group_size"] = min_group_size
    return dataclasses.replace(card, **changes)


def parse_attribute_specs(v: Validator, raw: Mapping | None, prefix: str = "") -> list[AttributeSpec]:
    """Attribute specs from a card's ``attributes`` mapping (fields reported under ``prefix + "attributes."``)."""
    attributes: list[AttributeSpec] = []
    for name, spec in (raw or {}).items():
        where = f"{prefix}attributes.{name}."
        if not isinstance(name, str) or not name:
            raise v.fail(f"{prefix}attributes.{name}", "an attribute name (string) as key", name)
        if spec is None:
            spec = {}
        if not isinstance(spec, dict):
            raise v.fail(f"{prefix}attributes.{name}", "a mapping with column, scale, bins, order", spec)
        v.unknown_keys(spec, {"column", "scale", "bins", "order", "description"}, where)
        column = v.string(spec, "column", where, required=False, default=name)
        scale = spec.get("scale", "nominal")
        if scale not in SCALES:
            raise v.fail(where + "scale", f"one of {', '.join(SCALES)}", scale)
        bins = parse_bins(v, spec, where, scale)
        order = spec.get("order")
        if order is not None:
            if not isinstance(order, list) or not order:
                raise v.fail(where + "order", "a non-empty list of values", order)
            order = [normalise_level(x, scale) for x in order]
        attributes.append(AttributeSpec(name=name, column=column, scale=scale, bins=bins, order=order))
    return attributes


def parse_intersections(v: Validator, raw, names: list[str], prefix: str = "") -> list[tuple[str, ...]]:
    """A card's ``intersections``: lists of two or more distinct declared attribute names."""
    intersections: list[tuple[str, ...]] = []
    if raw is None:
        return intersections
    if not isinstance(raw, list):
        raise v.fail(prefix + "intersections", "a list of lists of attribute names", raw)
    for i, combo in enumerate(raw):
        if not isinstance(combo, list) or len(combo) < 2:
            raise v.fail(f"{prefix}intersections[{i}]", "a list of two or more attribute names", combo)
        for j, item in enumerate(combo):
            if item not in names:
                raise v.fail(f"{prefix}intersections[{i}][{j}]",
                             f"a declared attribute ({', '.join(names) or 'none declared'})", item)
        if len(set(combo)) != len(combo):
            raise v.fail(f"{prefix}intersections[{i}]", "distinct attribute names", combo)
        intersections.append(tuple(combo))
    return intersections


def parse_reference_groups(v: Validator, raw: Mapping | None, groupings: list[str], prefix: str = "") -> dict:
    """A card's ``reference_groups``: grouping name (one of ``groupings``) to its reference group label."""
    reference_groups: dict[str, str] = {}
    for key, label in (raw or {}).items():
        if key not in groupings:
            raise v.fail(f"{prefix}reference_groups.{key}", f"a grouping name ({', '.join(groupings)})", key)
        if not isinstance(label, (str, int)) or isinstance(label, bool):
            raise v.fail(f"{prefix}reference_groups.{key}", "a group label (string)", label)
        reference_groups[str(key)] = str(label)
    return reference_groups


def parse_weights(v: Validator, data: Mapping, *, architecture: bool,
                  example: str = "ResNet18_Weights.IMAGENET1K_V1") -> tuple[WeightsSpec | None, bool]:
    """A model card's ``weights`` (a torchvision enum or a local file) and ``trust_checkpoint``."""
    weights: WeightsSpec | None = None
    raw = data.get("weights")
    if raw is not None:
        if not isinstance(raw, dict) or len(raw) != 1 or not ({"enum", "path"} & set(raw)):
            raise v.fail("weights", "null or a mapping with exactly one of 'enum' or 'path'", raw)
        if "enum" in raw:
            enum = v.string(raw, "enum", "weights.")
            if not architecture:
                raise v.fail("weights.enum", "a weights enum only together with 'model.architecture'", enum)
            import torchvision.models

            try:
                torchvision.models.get_weight(enum)
            except Exception:  # noqa: BLE001 - torchvision raises several kinds here
                raise v.fail("weights.enum", f"a torchvision weights enum such as '{example}'", enum) from None
            weights = WeightsSpec(enum=enum)
        else:
            weights = WeightsSpec(path=v.resolve(v.string(raw, "path", "weights.")))
    trust = data.get("trust_checkpoint", False)
    if not isinstance(trust, bool):
        raise v.fail("trust_checkpoint", "true or false", trust)
    return weights, trust


def parse_bins(v: Validator, spec: dict, prefix: str, scale: str) -> dict[str, list] | None:
    raw = spec.get("bins", MISSING)
    if raw is MISSING or raw is None:
        return {k: list(vals) for k, vals in FITZPATRICK_DEFAULT_BINS.items()} if scale == "fitzpatrick" else None
    if raw == {}:
        return {}  # an explicit empty mapping keeps every level of the scale
    if not isinstance(raw, dict):
        raise v.fail(prefix + "bins", "a mapping of bin label to a list of values", raw)
    bins: dict[str, list] = {}
    seen: dict[Any, str] = {}
    for label, values in raw.items():
        where = f"{prefix}bins.{label}"
        if not isinstance(values, list) or not values:
            raise v.fail(where, "a non-empty list of values", values)
        normalised = []
        for i, value in enumerate(values):
            level = normalise_level(value, scale)
            if scale in _SCALE_RANGE and (isinstance(level, bool) or level not in _SCALE_RANGE[scale]):
                lo, hi = _SCALE_RANGE[scale][0], _SCALE_RANGE[scale][-1]
                roman = " or I..VI" if scale == "fitzpatrick" else ""
                raise v.fail(f"{where}[{i}]", f"a {scale} value {lo}..{hi}{roman}", value)
            if level in seen:
                raise v.fail(f"{where}[{i}]", f"a value not already in bin '{seen[level]}'", value)
            seen[level] = str(label)
            normalised.append(level)
        bins[str(label)] = normalised
    return bins


def parse_label_map(v: Validator, data: Mapping, weights: WeightsSpec | None, *, minimum: int,
                    unique: bool) -> tuple[int, list[str]]:
    """A model card's ``num_classes`` and ``label_map`` (a list, an index mapping, or ``weights``).

    ``label_map: weights`` takes the names from the weights enum's
    ``meta["categories"]`` (no download); ``num_classes`` then defaults to
    their count and must equal it when given. Names taken from an enum may
    repeat (ImageNet has two 'crane's, COCO many 'N/A's).
    """
    raw = data.get("label_map", MISSING)
    categories = weights_categories(weights.enum) if weights is not None and weights.enum else None
    if raw == "weights":
        if categories is None:
            raise v.fail("label_map", "a list of class names ('weights' needs a weights.enum with categories)", raw)
        n = v.integer(data, "num_classes", required=False, default=len(categories), minimum=minimum)
        if n != len(categories):
            raise v.fail("num_classes", f"{len(categories)} (the categories of weights '{weights.enum}')", n)
        return n, list(categories)
    num_classes = v.integer(data, "num_classes", minimum=minimum)
    if categories is not None and num_classes != len(categories):
        raise v.fail("num_classes", f"{len(categories)} to match weights '{weights.enum}'", num_classes)
    if isinstance(raw, list):
        raw = dict(enumerate(raw))
    if not isinstance(raw, dict):
        raise v.fail("label_map", "a mapping of output index to class name, a list, or 'weights'", raw)
    keys = list(raw)
    if not all(isinstance(k, int) and not isinstance(k, bool) for k in keys) or sorted(keys) != list(range(num_classes)):
        raise v.fail("label_map", f"one class name for each output index 0..{num_classes - 1}", sorted(raw, key=str))
    label_map: list[str] = []
    for i in range(num_classes):
        name = raw[i]
        if not isinstance(name, str) or not name:
            raise v.fail(f"label_map.{i}", "a class name (string)", name)
        if unique and name in label_map:
            raise v.fail(f"label_map.{i}", "a class name not used by another output", name)
        label_map.append(name)
    return num_classes, label_map


def weights_categories(enum_name: str) -> list[str] | None:
    """``meta["categories"]`` of a torchvision weights enum (no download), or None when it has none."""
    import torchvision.models

    categories = torchvision.models.get_weight(enum_name).meta.get("categories")
    return list(categories) if categories else None


def settled(card, *, pos_label, min_group_size, covariates=None, **settings):
    """The data card with the command line's settings over its own; a positive class only where there are classes.

    ``covariates`` (the names of ``--covariates``) are checked as the card's field is.
    """
    from ..errors import AuditError

    if covariates is not None:
        from .covariates import parse_covariates

        covariates = parse_covariates(list(covariates), fail=lambda where, expected, found: AuditError(
            f"--covariates: expected {expected}, found {_show(found)}"))

    if pos_label is not None:
        classes = getattr(card, "classes", None)
        if classes is None:
            raise AuditError(f"--pos-label: expected no positive class for the detection audit of {card.path}, "
                             f"found '{pos_label}' (it applies to classification)")
        if pos_label not in classes:
            raise AuditError(f"--pos-label: expected one of the classes of {card.path} {list(classes)}, "
                             f"found '{pos_label}'")
    return apply_settings(card, pos_label=pos_label, min_group_size=min_group_size, covariates=covariates, **settings)
