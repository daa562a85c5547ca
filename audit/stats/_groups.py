"""Attribute binning and the group structure every task shares.

All groupings an audit reports (overall, each attribute, each intersection) are
coarsenings of one *finest partition*: the observed combinations of every binned
attribute. Counts are reduced once per finest cell; a grouping's counts are a
sum over its cells (a matrix product), so bootstrap resamples of the finest
cells are consistent across every grouping.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..errors import StatsInputError

__all__ = ["Attribute", "AttributeValueError", "Grouping", "GroupStructure", "bin_attribute", "UNKNOWN", "SEPARATOR"]

UNKNOWN = "unknown"
SEPARATOR = " × "
OVERALL = "overall"
ALL = "all"

_SCALES = ("nominal", "ordinal", "fitzpatrick", "monk")
_ROMAN = {"I": 1, "II": 2, "III": 3, "IV": 4, "V": 5, "VI": 6}
_SCALE_RANGE = {"fitzpatrick": range(1, 7), "monk": range(1, 11)}
FITZPATRICK_BINARY = {"lighter": (1, 2, 3), "darker": (4, 5, 6)}


@dataclass(frozen=True)
class Attribute:
    """A demographic or capture attribute that defines groups.

    Parameters
    ----------
    name : str
        Name used in reports and in intersections.
    column : str, optional
        Column of the attribute table holding the raw values; defaults to ``name``.
    scale : {"nominal", "ordinal", "fitzpatrick", "monk"}
        ``fitzpatrick`` accepts 1-6 or I-VI and bins to lighter (I-III) and darker
        (IV-VI) unless ``bins`` says otherwise or ``bins={}`` keeps the full scale.
        ``monk`` accepts 1-10 and is binned only as declared.
    bins : mapping of str to sequence, optional
        Bin label to the raw values it holds, in display order. A non-missing
        value outside every bin is an error.
    order : sequence, optional
        Display order of the (unbinned) levels.
    multi : bool
        Each value is a collection of levels (e.g. every Monk tone that some
        annotator chose) and the row belongs to *every* group one of its
        levels falls in, so groups may overlap. Only the clustered
        ratio-of-sums engine (:func:`audit_ratio_metrics`) accepts these.
    """

    name: str
    column: str | None = None
    scale: str = "nominal"
    bins: Mapping[str, Sequence] | None = None
    order: Sequence | None = None
    multi: bool = False

    def __post_init__(self):
        if self.scale not in _SCALES:
            raise StatsInputError(
                f"attribute '{self.name}': expected scale to be one of {', '.join(_SCALES)}, found '{self.scale}'"
            )

    @property
    def source(self) -> str:
        return self.column or self.name

    def effective_bins(self) -> Mapping[str, Sequence] | None:
        if self.scale == "fitzpatrick" and self.bins is None:
            return FITZPATRICK_BINARY
        return self.bins or None


def _normalise(value, scale: str):
    """Turn a raw attribute value into a hashable, comparable level (or None if missing)."""
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
        return None
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        value = int(value)
    elif isinstance(value, np.integer):
        value = int(value)
    if scale in _SCALE_RANGE:
        if isinstance(value, str):
            text = value.strip()
            if text.upper() in _ROMAN and scale == "fitzpatrick":
                value = _ROMAN[text.upper()]
            elif text.lstrip("-").isdigit():
                value = int(text)
        if value not in _SCALE_RANGE[scale]:
            lo, hi = _SCALE_RANGE[scale][0], _SCALE_RANGE[scale][-1]
            raise _BadValue(f"expected a {scale} value in {lo}..{hi}, found {value!r}")
    elif isinstance(value, str) and value.strip() == "":
        return None
    return value


class _BadValue(Exception):
    pass


class AttributeValueError(StatsInputError):
    """A raw attribute value that its scale or bins do not allow.

    ``row`` is the 0-based position in the values; callers that know the file
    and the sample id turn it into their own message.
    """

    def __init__(self, attribute: str, row: int, detail: str):
        super().__init__(f"attribute '{attribute}': row {row}: {detail}")
        self.attribute, self.row, self.detail = attribute, row, detail


def _label(value) -> str:
    return str(value)


def bin_attribute(values: pd.Series | Sequence, attribute: Attribute) -> pd.Categorical:
    """Bin raw attribute values into labelled groups.

    Missing values become the explicit group ``"unknown"``; they are never dropped.

    Parameters
    ----------
    values : Series or sequence
        Raw values, one per sample.
    attribute : Attribute
        How to read and bin them.

    Returns
    -------
    pandas.Categorical
        String labels, with categories in display order (``unknown`` last, and
        only present when some value is missing).
    """
    series = values if isinstance(values, pd.Series) else pd.Series(list(values), dtype=object)
    codes, uniques = pd.factorize(series.to_numpy(), use_na_sentinel=True)
    bins = attribute.effective_bins()
    lookup: dict = {}
    if bins:
        for label, members in bins.items():
            for member in members:
                try:
                    key = _normalise(member, attribute.scale)
                except _BadValue as exc:
                    raise StatsInputError(f"attribute '{attribute.name}': bin '{label}': {exc}") from None
                lookup[key] = str(label)
    # Normalise and bin each distinct value once, then broadcast to the rows.
    unique_levels = []
    unique_labels = []
    found, first = np.unique(codes, return_index=True)
    first_rows = first[found >= 0]  # the first row holding each distinct value, for error messages
    for value, row in zip(uniques, first_rows):
        try:
            level = _normalise(value, attribute.scale)
        except _BadValue as exc:
            raise AttributeValueError(attribute.name, int(row), str(exc)) from None
        unique_levels.append(level)
        if level is None:
            unique_labels.append(UNKNOWN)
        elif bins:
            if level not in lookup:
                raise AttributeValueError(
                    attribute.name, int(row),
                    f"expected a value in the declared bins ({', '.join(map(str, lookup))}), found {value!r}",
                )
            unique_labels.append(lookup[level])
        else:
            unique_labels.append(_label(level))
    present = set(unique_labels) | ({UNKNOWN} if (codes < 0).any() else set())
    if bins:
        categories = [str(label) for label in bins]
    elif attribute.order is not None:
        categories = [_label(_normalise(v, attribute.scale)) for v in attribute.order]
        extra = sorted(lab for lab in present if lab not in categories and lab != UNKNOWN)
        categories += extra
    else:
        observed = set(unique_levels) - {None}
        if attribute.scale in _SCALE_RANGE:
            observed = set(_SCALE_RANGE[attribute.scale])
        categories = [_label(v) for v in sorted(observed, key=_sort_key)]
    if UNKNOWN in present and UNKNOWN not in categories:
        categories.append(UNKNOWN)
    # category index of each distinct value; the trailing entry serves missing values (code -1)
    position = {label: i for i, label in enumerate(categories)}
    category_of_code = np.array([position[label] for label in unique_labels] + [position.get(UNKNOWN, -1)])
    return pd.Categorical.from_codes(category_of_code[codes], categories=categories)


def _sort_key(value):
    return (0, value, "") if isinstance(value, (int, float)) else (1, 0, str(value))


@dataclass
class Grouping:
    """One way of splitting the samples: ``overall``, an attribute, or an intersection."""

    name: str
    attributes: tuple[str, ...]
    labels: list[str]
    # finest cell index -> group index in ``labels`` (-1 when groups overlap: see ``membership``)
    cell_to_group: np.ndarray = field(repr=False)
    # (n_cells, n_groups) 0/1 membership when a cell may belong to several groups (multi attributes)
    membership: np.ndarray | None = field(default=None, repr=False)

    @property
    def indicator(self) -> np.ndarray:
        """``(n_cells, n_groups)`` 0/1 matrix mapping finest cells to groups."""
        if self.membership is not None:
            return self.membership.astype(float)
        out = np.zeros((len(self.cell_to_group), len(self.labels)))
        out[np.arange(len(self.cell_to_group)), self.cell_to_group] = 1.0
        return out


@dataclass
class GroupStructure:
    """The finest partition of the samples and every reported grouping over it."""

    cell_of_sample: np.ndarray  # (n_samples,) finest cell of each sample
    n_cells: int
    groupings: list[Grouping]

    def grouping(self, name: str) -> Grouping:
        for grouping in self.groupings:
            if grouping.name == name:
                return grouping
        raise StatsInputError(f"expected a grouping among {[g.name for g in self.groupings]}, found '{name}'")

    def sum_cells(self, per_cell: np.ndarray, grouping: Grouping, *, axis: int) -> np.ndarray:
        """Sum ``per_cell`` (cell axis at ``axis``) into the groups of ``grouping``."""
        moved = np.moveaxis(np.asarray(per_cell, dtype=float), axis, -1)
        return np.moveaxis(moved @ grouping.indicator, -1, axis)


def build_groups(
    table: pd.DataFrame,
    attributes: Sequence[Attribute],
    intersections: Sequence[Sequence[str]],
) -> tuple[GroupStructure, dict[str, pd.Categorical]]:
    """Bin every attribute and lay out the finest partition and all groupings.

    Returns the structure and the binned attribute columns.
    """
    names = [a.name for a in attributes]
    if len(set(names)) != len(names):
        raise StatsInputError(f"expected unique attribute names, found {names}")
    binned: dict[str, pd.Categorical] = {}
    member_of_code: dict[str, np.ndarray] = {}  # multi attributes: (n_codes, n_labels) membership of each code
    multi_codes: dict[str, np.ndarray] = {}
    for attribute in attributes:
        if attribute.source not in table.columns:
            raise StatsInputError(
                f"attribute '{attribute.name}': expected column '{attribute.source}' in the group table, "
                f"found columns {list(table.columns)}"
            )
        if attribute.multi:
            binned[attribute.name], multi_codes[attribute.name], member_of_code[attribute.name] = _bin_multi(
                table[attribute.source], attribute)
        else:
            binned[attribute.name] = bin_attribute(table[attribute.source], attribute)
    for combo in intersections:
        unknown = [a for a in combo if a not in binned]
        if unknown or len(combo) < 2:
            raise StatsInputError(
                f"intersection {list(combo)}: expected two or more declared attributes ({', '.join(names)}), "
                f"found {list(combo)}"
            )
    n = len(table)
    codes = [multi_codes[a] if a in multi_codes else np.asarray(binned[a].codes, dtype=np.int64) for a in names]
    sizes = [member_of_code[a].shape[0] if a in member_of_code else len(binned[a].categories) for a in names]
    if names:
        mixed = np.ravel_multi_index(codes, sizes) if n else np.zeros(0, dtype=np.int64)
        uniq, cell_of_sample = np.unique(mixed, return_inverse=True)
        cell_levels = np.array(np.unravel_index(uniq, sizes)).T  # (n_cells, n_attrs)
    else:
        uniq = np.zeros(1, dtype=np.int64)
        cell_of_sample = np.zeros(n, dtype=np.int64)
        cell_levels = np.zeros((1, 0), dtype=np.int64)
    n_cells = len(uniq)
    groupings = [Grouping(OVERALL, (), [ALL], np.zeros(n_cells, dtype=np.int64))]
    for combo in [(a,) for a in names] + [tuple(c) for c in intersections]:
        idx = [names.index(a) for a in combo]
        labels = [
            SEPARATOR.join(parts)
            for parts in itertools.product(*[list(map(str, binned[a].categories)) for a in combo])
        ]
        if any(a in member_of_code for a in combo):
            # a cell belongs to every combination of its attributes' groups: outer product of memberships
            membership = np.ones((n_cells, 1), dtype=bool)
            for a, i in zip(combo, idx):
                if a in member_of_code:
                    m = member_of_code[a][cell_levels[:, i]]
                else:
                    m = np.zeros((n_cells, len(binned[a].categories)), dtype=bool)
                    m[np.arange(n_cells), cell_levels[:, i]] = True
                membership = (membership[:, :, None] & m[:, None, :]).reshape(n_cells, -1)
            groupings.append(Grouping(SEPARATOR.join(combo), combo, labels, np.full(n_cells, -1, dtype=np.int64),
                                      membership))
            continue
        combo_sizes = [sizes[i] for i in idx]
        cell_to_group = np.ravel_multi_index(tuple(cell_levels[:, i] for i in idx), combo_sizes) if n_cells else np.zeros(0, int)
        groupings.append(Grouping(SEPARATOR.join(combo), combo, labels, np.asarray(cell_to_group, dtype=np.int64)))
    return GroupStructure(np.asarray(cell_of_sample, dtype=np.int64), n_cells, groupings), binned



@dataclass
class MultiBinned:
    """A multi attribute after binning: its group labels and each row's membership."""

    categories: list[str]
    membership: np.ndarray = field(repr=False)  # (n_rows, n_groups) bool

    @property
    def codes(self):  # pragma: no cover - exclusive-only consumers must not see multi attributes
        raise StatsInputError("a multi attribute has no single group per row")


def _bin_multi(values: pd.Series, attribute: Attribute):
    """Bin a column of level collections: every row belongs to each group one of its levels falls in.

    Returns the binned attribute, each row's membership code and the
    ``(n_codes, n_groups)`` membership matrix of the codes. A row with no
    level (missing or empty) is in ``unknown`` only.
    """
    def as_list(v):
        if isinstance(v, (list, tuple, set, frozenset, np.ndarray, pd.Series)):
            return list(v)
        return [v]

    lists = [as_list(v) for v in values.tolist()]
    row = np.repeat(np.arange(len(lists)), [len(x) for x in lists]).astype(np.int64)
    flat = pd.Series([x for items in lists for x in items], dtype=object)
    single = Attribute(attribute.name, attribute.column, attribute.scale, attribute.bins, attribute.order)
    binned = bin_attribute(flat, single)
    categories = [str(c) for c in binned.categories]
    has_unknown = UNKNOWN in categories
    member = np.zeros((len(lists), len(categories) + (not has_unknown)), dtype=bool)
    if row.size:
        member[row, np.asarray(binned.codes, dtype=np.int64)] = True
    if not has_unknown:
        categories.append(UNKNOWN)
    unknown = categories.index(UNKNOWN)
    member[~member.any(1), unknown] = True
    if not has_unknown and not member[:, unknown].any():
        member = np.delete(member, unknown, axis=1)
        categories.remove(UNKNOWN)
    uniq, code = np.unique(member, axis=0, return_inverse=True)
    return MultiBinned(categories, member), np.asarray(code, dtype=np.int64).reshape(-1), uniq
