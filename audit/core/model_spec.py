"""What a model card adds to a network: class names from the weights, a class map, builder arguments.

``label_map: weights``
    The class names of the model's outputs are ``weights.meta["categories"]``
    of the card's torchvision weights enum (91 COCO names for the detectors,
    21 VOC names for the segmenters, 1,000 ImageNet names for classifiers).
    ``num_classes`` may then be left out.
``class_map``
    Model class -> split class (a name of the data card's classes, or
    ``null`` to drop it explicitly). Keys are model class *names* (so COCO's
    ``person`` is found by name, never by a hard-coded id), output indices,
    or index ranges ``"151..268"`` (inclusive). Model classes the map does
    not list are dropped. Without a class map the model's ``label_map`` must
    name exactly the split's classes.

    How a map is applied: a classifier's or segmenter's probabilities
    (softmax over all model outputs) are summed over the model classes that
    map to each split class and renormalised over the kept classes; the
    prediction is their arg-max. A detector keeps the detections whose label
    maps to a split class and gives them that class.
``builder``
    Keyword arguments for the torchvision builder (``min_size``,
    ``max_size``, ``box_score_thresh``, ``box_nms_thresh``,
    ``box_detections_per_img``, ``score_thresh``, ``detections_per_img``,
    ...), checked against the builder's signature and, when the builder
    forwards ``**kwargs``, against the model class it returns. A task may
    also let an entry point take them (:func:`entry_point_arguments`: the
    panoptic task): a string naming a file beside the card is passed as that
    file's path, and the file is part of the model's fingerprint.

Every message that echoes a list of names shows at most :data:`SHOWN` of
them and says how many more there are (:func:`shown`).
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Mapping

import numpy as np

from .card_fields import weights_categories  # noqa: F401 - where it lived

__all__ = ["SHOWN", "builder_arguments", "check_builder", "class_matrix", "entry_point_arguments", "map_probabilities",
           "model_source_text", "parse_class_map", "shown", "weights_categories", "weights_meta"]

SHOWN = 10
_RANGE = re.compile(r"^\s*(\d+)\s*\.\.\s*(\d+)\s*$")
# set by audit itself, never by the card
_RESERVED = {"weights", "progress", "num_classes", "weights_backbone"}
# untyped parameters that take modules (heads, poolers, anchor generators), which YAML cannot give
_MODULE_SUFFIXES = ("head", "predictor", "pool", "generator", "matcher", "norm_layer", "block")


def shown(items, k: int = SHOWN) -> str:
    """``a, b, c`` for a short list; the first ``k`` and ``… (n more)`` for a long one."""
    items = [str(x) for x in items]
    head = ", ".join(items[:k])
    return head + (f", … ({len(items) - k} more)" if len(items) > k else "")


def parse_class_map(v, raw, label_map: list[str]) -> dict[int, str] | None:
    """Validate a card's ``class_map`` into ``model output index -> split class`` (dropped outputs left out).

    ``v`` is the card's validator (:class:`audit.core.card_loaders.Validator`). A key must
    name a model class, an output index or an index range; a value is a split
    class name or null.
    """
    if raw is None:
        return None
    if not isinstance(raw, Mapping) or not raw:
        raise v.fail("class_map", "a mapping of model class (name, index or 'a..b' range) to split class or null",
                     raw)
    by_name: dict[str, list[int]] = {}
    for i, name in enumerate(label_map):
        by_name.setdefault(name, []).append(i)
    out: dict[int, str] = {}
    dropped: set[int] = set()
    for key, target in raw.items():
        where = f"class_map.{key}"
        if target is not None and (not isinstance(target, str) or not target):
            raise v.fail(where, "a split class name (string) or null", target)
        if isinstance(key, bool):
            raise v.fail(where, "a model class name, output index or 'a..b' range as key", key)
        if isinstance(key, int):
            indices = [key]
        elif isinstance(key, str) and key in by_name:
            indices = by_name[key]
        elif isinstance(key, str) and _RANGE.match(key):
            lo, hi = (int(x) for x in _RANGE.match(key).groups())
            if lo > hi:
                raise v.fail(where, "a range 'a..b' with a <= b", key)
            indices = list(range(lo, hi + 1))
        else:
            raise v.fail(where, f"a model class of label_map ({shown(label_map)}), an output index or a "
                                "'a..b' range as key", key)
        for i in indices:
            if not 0 <= i < len(label_map):
                raise v.fail(where, f"output indices 0..{len(label_map) - 1}", key)
            if i in out or i in dropped:
                raise v.fail(where, f"each model output mapped once (output {i}, '{label_map[i]}', is mapped by an "
                                    "earlier key)", key)
            if target is None:
                dropped.add(i)
            else:
                out[i] = target
    if not out:
        raise v.fail("class_map", "at least one model class mapped to a split class", raw)
    return out


def class_matrix(*, label_map, classes, class_map=None, model_card_path=None) -> np.ndarray:
    """``(n_model_outputs, n_split_classes)`` 0/1 matrix: output ``i`` counts towards split class ``k``.

    Without ``class_map`` every split class must be exactly one ``label_map``
    name (a permutation). Raises :class:`~audit.errors.CardError` naming the
    card field otherwise.
    """
    from ..errors import CardError

    where = f"{model_card_path}: " if model_card_path else ""
    index = {c: k for k, c in enumerate(classes)}
    matrix = np.zeros((len(label_map), len(classes)), dtype=np.float64)
    if class_map is None:
        if sorted(label_map) != sorted(classes):
            found = repr(list(label_map)) if len(label_map) <= SHOWN else \
                f"[{shown([repr(x) for x in label_map])}] (add a 'class_map' from the model's classes to the split's)"
            raise CardError(f"{where}field 'label_map': expected the data card's classes ({shown(classes)}), "
                            f"found {found}")
        for i, name in enumerate(label_map):
            matrix[i, index[name]] = 1.0
        return matrix
    for i, target in sorted(class_map.items()):
        if target not in index:
            raise CardError(f"{where}field 'class_map.{label_map[i]}': expected a class of the data card "
                            f"({shown(classes)}), found '{target}'")
        matrix[i, index[target]] = 1.0
    return matrix


def map_probabilities(probs, matrix):
    """Sum probabilities (``(N, C_model, ...)``, torch or numpy) into split classes and renormalise."""
    import torch

    if isinstance(probs, torch.Tensor):
        m = torch.as_tensor(matrix, dtype=probs.dtype, device=probs.device)
        out = torch.einsum("nc...,ck->nk...", probs, m)
        return out / out.sum(1, keepdim=True).clamp_min(torch.finfo(out.dtype).tiny)
    out = np.einsum("nc...,ck->nk...", probs, matrix)
    return out / np.maximum(out.sum(1, keepdims=True), np.finfo(float).tiny)


def _annotation_text(param) -> str:
    a = param.annotation
    return a if isinstance(a, str) else getattr(a, "__name__", "") + repr(a)


def _settable(params) -> list[str]:
    """Keyword parameters a card can set: with a default, not a module or callable."""
    names = []
    for p in params:
        if p.kind in (p.VAR_KEYWORD, p.VAR_POSITIONAL) or p.name in ("self",) or p.name in _RESERVED:
            continue
        if p.default is p.empty:
            continue
        text = _annotation_text(p)
        if "Module" in text or "Callable" in text or p.name.endswith(_MODULE_SUFFIXES):
            continue
        names.append(p.name)
    return names


def builder_arguments(architecture: str) -> list[str]:
    """The keyword arguments a card's ``builder`` may pass to torchvision's ``architecture`` builder.

    The builder's own keyword parameters, plus, when it forwards ``**kwargs``
    to the model class it returns (detectors and classifiers do), that class's (and its bases') keyword
    parameters. Modules and callables cannot come from YAML and are left out.
    (A builder that accepts ``**kwargs`` but never passes them on, like the
    segmentation builders, takes only its named parameters.)
    """
    import torchvision.models

    builder = torchvision.models.get_model_builder(architecture)
    signature = inspect.signature(builder)
    names = _settable(signature.parameters.values())
    forwards = any(p.kind is p.VAR_KEYWORD for p in signature.parameters.values())
    try:  # the segmentation builders accept **kwargs and ignore them: only a call that passes them on counts
        forwards = forwards and re.search(r"\*\*kwargs\s*[,)]", inspect.getsource(builder)) is not None
    except (OSError, TypeError):
        pass
    if forwards:
        cls = signature.return_annotation
        for klass in getattr(cls, "__mro__", ()):
            init = klass.__dict__.get("__init__")
            if init is None or klass.__module__.startswith("torch.nn"):
                continue
            for name in _settable(inspect.signature(init).parameters.values()):
                if name not in names:
                    names.append(name)
    return sorted(names)


def check_builder(v, raw, architecture: str | None) -> dict:
    """Validate a card's ``builder`` mapping against the builder of ``architecture``."""
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise v.fail("builder", "a mapping of torchvision builder keyword arguments", raw)
    if raw and architecture is None:
        raise v.fail("builder", "builder arguments only together with 'model.architecture'", dict(raw))
    if architecture is None:
        return {}
    from .unet import SEGMENTATION_ARCHITECTURES

    if architecture in SEGMENTATION_ARCHITECTURES:
        allowed = []  # the project's U-Nets take only num_classes
    else:
        allowed = builder_arguments(architecture)
    for key, value in raw.items():
        if key in _RESERVED:
            raise v.fail(f"builder.{key}", "an argument audit does not set itself (weights, num_classes and the "
                                           "backbone weights come from the card)", value)
        if key not in allowed:
            import difflib

            from ..errors import CardError

            close = difflib.get_close_matches(str(key), allowed, n=3)
            allowed = close + [a for a in allowed if a not in close]  # the likeliest first

            raise CardError(f"{v.path}: field 'builder.{key}': expected a keyword argument of torchvision's "
                            f"{architecture} ({shown(allowed) or 'none'}), found an unknown argument")
        if not isinstance(value, (int, float, str, bool, list)) and value is not None:
            raise v.fail(f"builder.{key}", "a number, string, true/false, null or a list", value)
    return dict(raw)


def entry_point_arguments(v, raw) -> dict:
    """Validate a card's ``builder`` mapping as keyword arguments of its ``model.entry_point``.

    Keys are Python identifiers other than those audit sets itself; values are numbers, strings, true/false,
    null or lists. :func:`audit.core.models.build_from_card` passes them to the entry point, a string that
    names an existing file relative to the card as that file's absolute path.
    """
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise v.fail("builder", "a mapping of the entry point's keyword arguments", raw)
    for key, value in raw.items():
        if not isinstance(key, str) or not key.isidentifier() or key in _RESERVED:
            raise v.fail(f"builder.{key}", "a keyword argument name other than weights, progress, num_classes and "
                                           "weights_backbone", value)
        if not isinstance(value, (int, float, str, bool, list)) and value is not None:
            raise v.fail(f"builder.{key}", "a number, string, true/false, null or a list", value)
    return dict(raw)


def weights_meta(enum_name: str) -> dict:
    """What a report records of a torchvision weights enum: its file, recipe, size and published metrics."""
    import torchvision.models

    enum = torchvision.models.get_weight(enum_name)
    meta = enum.meta
    out = {"url": enum.url, "recipe": meta.get("recipe"), "num_params": meta.get("num_params"),
           "n_categories": len(meta.get("categories") or []), "metrics": meta.get("_metrics")}
    return {k: v for k, v in out.items() if v is not None}


def model_source_text(card) -> str:
    """How the report names where a model came from (the project's own U-Net is not torchvision's)."""
    src = card.model
    if src.kind == "architecture":
        from .unet import SEGMENTATION_ARCHITECTURES

        if src.architecture in SEGMENTATION_ARCHITECTURES:
            return f"audit U-Net audit.tasks.segmentation.models:{src.architecture}"
        return f"torchvision {src.architecture}"
    if src.kind == "torchscript":
        return f"torchscript {src.torchscript}"
    return f"entry point {src.entry_point}"
