"""Card primitives every task shares: the validator, attribute specs, model sources and weights.

A card is a Markdown file in the Hugging Face card style::

    ---
    label_column: label
    classes: [cat, dog]
    ...
    ---
    # Motivation
    ...

The front matter (between the two ``---`` lines) is machine readable and is
validated when the card is loaded; the Markdown body is the human
documentation (a datasheet for data cards, a model card for models) and is kept
as text. Every problem raises :class:`~audit.errors.CardError` with a one-line
message naming the file, the field as a dotted path, what was expected and
what was found, e.g.::

    data_cards/x.md: field 'label_column': expected a string, found 3

Paths inside a card are resolved relative to the directory of the card file;
absolute paths are used as they are.

The front matter is read by :func:`audit.core.front_matter.read_front_matter` (YAML with its size
bounded); this module holds the cards' types and the validator that checks their fields.

This module knows no task: each task's card section is parsed by the task
(:mod:`audit.core.card_loaders` for classification and semantic segmentation,
:mod:`audit.tasks.detection.cards` for detection) with these primitives.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import CardError

__all__ = [
    "AttributeSpec",
    "DataCard",
    "ModelCard",
    "ModelSource",
    "Preprocessing",
    "SplitSpec",
    "WeightsSpec",
]

SCALES = ("nominal", "ordinal", "fitzpatrick", "monk")
FITZPATRICK_DEFAULT_BINS = {"lighter": [1, 2, 3], "darker": [4, 5, 6]}
_ROMAN = {"I": 1, "II": 2, "III": 3, "IV": 4, "V": 5, "VI": 6}
_SCALE_RANGE = {"fitzpatrick": range(1, 7), "monk": range(1, 11)}
MISSING = object()


# ---------------------------------------------------------------------------
# Dataclasses
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class SplitSpec:
    """Where the samples of a split are listed.

    Attributes
    ----------
    kind : {"manifest", "imagefolder"}
        A manifest table (CSV or Parquet) with one row per sample, or an
        ImageFolder tree (one subfolder per class) plus an attribute table.
    table : Path
        The manifest (``kind="manifest"``) or the attribute table
        (``kind="imagefolder"``), CSV or Parquet.
    id_column : str
        Column holding the unique sample id. For an ImageFolder the id is the
        image path relative to the folder root, with ``/`` separators.
    image_column : str or None
        Manifest column holding image paths (relative to ``image_root``);
        None for a split audited only from predictions made elsewhere.
    folder : Path or None
        Root of the ImageFolder tree.
    """

    kind: str
    table: Path
    id_column: str
    image_column: str | None = None
    folder: Path | None = None


@dataclass(frozen=True)
class AttributeSpec:
    """A demographic or capture attribute declared by a data card.

    Attributes
    ----------
    name : str
        Name used in reports and intersections.
    column : str
        Column of the manifest / attribute table holding raw values.
    scale : {"nominal", "ordinal", "fitzpatrick", "monk"}
        Measurement scale. Fitzpatrick values may be written 1..6 or I..VI and
        are normalised to integers.
    bins : dict of str to list, or None
        Bin label to the raw values it holds. Fitzpatrick defaults to
        ``lighter: [1, 2, 3]`` and ``darker: [4, 5, 6]``.
    order : list or None
        Display order of unbinned levels.
    """

    name: str
    column: str
    scale: str = "nominal"
    bins: dict[str, list] | None = None
    order: list | None = None

    def engine_attribute(self, *, column: str | None = None):
        """The statistics engine's :class:`~audit.stats.Attribute` for this spec (values read from ``column``)."""
        from ..stats import Attribute

        return Attribute(name=self.name, column=column or self.column, scale=self.scale, bins=self.bins,
                         order=self.order)


@dataclass(frozen=True)
class DataCard:
    """A parsed and validated data card.

    Attributes
    ----------
    path : Path
        The card file.
    name : str
        Card name (the file stem).
    split : SplitSpec
        Where the samples are.
    image_root : Path
        Directory image paths are relative to.
    label_column : str or None
        Column with the true class name (not used for ImageFolder splits,
        whose label is the class subfolder).
    classes : list of str
        Class names; a sample's label is its index in this list.
    attributes : list of AttributeSpec
        Declared attributes, in order.
    intersections : list of tuple of str
        Attribute combinations to audit jointly.
    reference_groups : dict of str to str
        Grouping name to the group disparities are measured against.
    min_group_size : int
        Groups smaller than this are flagged as small.
    options : dict
        Statistics settings the card sets (``pos_label``, ``correction``,
        ``interval``, ``disparity_metrics``); the command line overrides them.
    allow_paths_outside_root : bool
        Whether manifest image paths may point outside ``image_root`` (absolute
        paths or ``..``); off by default, so a manifest cannot reach arbitrary files.
    body : str
        The Markdown documentation.
    front_matter : dict
        The raw front matter.
    """

    path: Path
    name: str
    split: SplitSpec
    image_root: Path
    label_column: str | None
    classes: list[str]
    attributes: list[AttributeSpec]
    intersections: list[tuple[str, ...]]
    reference_groups: dict[str, str]
    min_group_size: int
    body: str = field(repr=False)
    front_matter: dict = field(repr=False)
    allow_paths_outside_root: bool = False
    segmentation: Any = None  # audit.tasks.segmentation.SegmentationSpec for label-mask splits
    options: dict = field(default_factory=dict)  # statistics settings the card sets: see parse_audit_options


@dataclass(frozen=True)
class ModelSource:
    """How to construct the network.

    Exactly one of ``architecture`` (torchvision registry name),
    ``torchscript`` (a TorchScript file) and ``entry_point``
    (``"module:function"``) is set; ``kind`` says which.
    """

    kind: str
    architecture: str | None = None
    torchscript: Path | None = None
    entry_point: str | None = None


@dataclass(frozen=True)
class WeightsSpec:
    """Which weights to load: a torchvision weights enum or a local file."""

    enum: str | None = None
    path: Path | None = None


@dataclass(frozen=True)
class Preprocessing:
    """Explicit evaluation transform: resize to ``(h, w)`` then normalise."""

    resize: tuple[int, int]
    mean: tuple[float, ...]
    std: tuple[float, ...]


@dataclass(frozen=True)
class ModelCard:
    """A parsed and validated model card.

    Attributes
    ----------
    path : Path
        The card file.
    name : str
        Card name (the file stem).
    task : str
        ``classification``, ``detection``, ``instance_segmentation`` or ``semantic_segmentation``.
    model : ModelSource
        How to build the network.
    weights : WeightsSpec or None
        Weights to load, if any.
    trust_checkpoint : bool
        Only when true may a checkpoint be unpickled with
        ``torch.load(weights_only=False)``.
    num_classes : int
        Number of model outputs.
    label_map : list of str
        Class name of each model output index (``label_map: weights``: the
        enum's ``meta["categories"]``).
    preprocessing : Preprocessing or None
        Explicit transform; required unless ``weights.enum`` is given.
    body : str
        The Markdown documentation.
    front_matter : dict
        The raw front matter.
    class_map : dict of int to str, or None
        Model output index -> split class; outputs left out are dropped
        (:mod:`audit.core.model_spec`). None: ``label_map`` names the split's classes.
    builder : dict
        Keyword arguments passed to the torchvision builder, checked against its signature.
    """

    path: Path
    name: str
    task: str
    model: ModelSource
    weights: WeightsSpec | None
    trust_checkpoint: bool
    num_classes: int
    label_map: list[str]
    preprocessing: Preprocessing | None
    body: str = field(repr=False)
    front_matter: dict = field(repr=False)
    class_map: dict[int, str] | None = None  # model output index -> split class (audit.core.model_spec)
    builder: dict = field(default_factory=dict)  # keyword arguments for the torchvision builder


# ---------------------------------------------------------------------------
# Validation helpers
# ---------------------------------------------------------------------------


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def _show(value: Any) -> str:
    """Render a found value for an error message."""
    if value is MISSING:
        return "nothing (the field is missing)"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return repr(value) if len(value) <= 200 else repr(value[:200]) + "..."
    if isinstance(value, dict):
        if not value:
            return "an empty mapping"
        keys = [str(k)[:40] for k in list(value)[:12]]
        return "a mapping with keys " + ", ".join(keys) + (", ..." if len(value) > 12 else "")
    from .._paths import short_repr

    return short_repr(value, 77)  # never the whole repr: an expanded alias structure can be huge


class Validator:
    """Collects the card path so every error names the file and field."""

    def __init__(self, path: Path, data: dict):
        self.path = path
        self.data = data

    def fail(self, field_path: str, expected: str, found: Any) -> CardError:
        return CardError(f"{self.path}: field '{field_path}': expected {expected}, found {_show(found)}")

    @staticmethod
    def get(mapping: Mapping, key: str) -> Any:
        return mapping.get(key, MISSING) if isinstance(mapping, Mapping) else MISSING

    def string(self, mapping: Mapping, key: str, prefix: str = "", *, required: bool = True, default=None):
        value = self.get(mapping, key)
        if value is MISSING or (value is None and not required):
            if required:
                raise self.fail(prefix + key, "a string", value)
            return default
        if not isinstance(value, str) or not value.strip():
            raise self.fail(prefix + key, "a non-empty string" if isinstance(value, str) else "a string", value)
        return value

    def integer(self, mapping: Mapping, key: str, prefix: str = "", *, required=True, default=None, minimum=None):
        value = self.get(mapping, key)
        if value is MISSING or (value is None and not required):
            if required:
                raise self.fail(prefix + key, "an integer", value)
            return default
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(prefix + key, "an integer", value)
        if minimum is not None and value < minimum:
            raise self.fail(prefix + key, f"an integer >= {minimum}", value)
        return value

    def mapping(self, mapping: Mapping, key: str, prefix: str = "", *, required=True, expected="a mapping"):
        value = self.get(mapping, key)
        if value is MISSING or (value is None and not required):
            if required:
                raise self.fail(prefix + key, expected, value)
            return None
        if not isinstance(value, dict):
            raise self.fail(prefix + key, expected, value)
        return value

    def string_list(self, mapping: Mapping, key: str, prefix: str = "", *, required=True, unique=True):
        value = self.get(mapping, key)
        if value is MISSING or (value is None and not required):
            if required:
                raise self.fail(prefix + key, "a list of strings", value)
            return None
        if not isinstance(value, list) or not value:
            raise self.fail(prefix + key, "a non-empty list of strings", value)
        for i, item in enumerate(value):
            if not isinstance(item, str) or not item:
                raise self.fail(f"{prefix}{key}[{i}]", "a non-empty string", item)
        if unique:
            seen = set()
            for i, item in enumerate(value):
                if item in seen:
                    raise self.fail(f"{prefix}{key}[{i}]", "a name not listed before", item)
                seen.add(item)
        return list(value)

    def unknown_keys(self, mapping: Mapping, allowed: set[str], prefix: str = "") -> None:
        for key in mapping:
            if key not in allowed:
                raise CardError(
                    f"{self.path}: field '{prefix}{key}': expected one of the known fields "
                    f"({', '.join(sorted(allowed))}), found an unknown field"
                )

    def resolve(self, value: str) -> Path:
        expanded = expand_path_variables(value, self.path, self.data)
        p = Path(expanded).expanduser()
        # normpath folds "cards/../data" into "data" so messages name files plainly.
        resolved = Path(os.path.normpath(p if p.is_absolute() else self.path.parent / p))
        command = (self.data.get("imported_from") or {}).get("command") if isinstance(
            self.data.get("imported_from"), dict) else None
        if command and expanded == value and not resolved.exists():  # a file `audit import` writes beside the card
            raise CardError(f"{self.path}: field '{_field_of(self.data, value)}': expected {resolved}, found no such "
                            f"file; write it with: {command}")
        return resolved


_PATH_VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def _field_of(data: Any, value: str, prefix: str = "") -> str:
    """The dotted path of the first field of ``data`` whose value is ``value`` (for error messages)."""
    if isinstance(data, Mapping):
        for key, item in data.items():
            if item == value:
                return f"{prefix}{key}"
            found = _field_of(item, value, f"{prefix}{key}.")
            if found:
                return found
    return ""


def expand_path_variables(value: str, card_path: Path, data: dict | None = None) -> str:
    """Replace each ``${VAR}`` in a card's path field by the environment variable's value.

    A card written by ``audit import`` keeps the data set's root as ``${FAIRFACE_ROOT}`` and the like, so
    the same file works on every machine. Raises CardError (one line naming the card, the field and the
    variable) when the variable is not set or does not name a directory.
    """
    def replace(match: re.Match) -> str:
        name = match.group(1)
        where = f"{card_path}: field '{_field_of(data or {}, value) or value}'"
        setting = os.environ.get(name)
        if setting is None or not setting.strip():
            raise CardError(f"{where}: expected the environment variable {name} to be set to the data set's root "
                            f"directory, found it not set (export {name}=/path/to/the/data/set)")
        if not os.path.isdir(os.path.expanduser(setting)):
            raise CardError(f"{where}: expected the environment variable {name} to name a directory, found "
                            f"{setting!r}, which is not one")
        return os.path.expanduser(setting).rstrip("/\\") or "/"

    return _PATH_VARIABLE.sub(replace, value) if "${" in value else value
