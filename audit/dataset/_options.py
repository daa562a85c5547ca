"""The dataset-audit fields of a data card: ``reference_population`` and ``compare_to``."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

from ..core.card_loaders import MISSING, Validator

__all__ = ["DatasetOptions", "dataset_options"]


@dataclass(frozen=True)
class DatasetOptions:
    """The dataset-audit fields of a data card."""

    reference: dict[str, dict[str, float]] = field(default_factory=dict)
    reference_description: str | None = None
    compare_to: Path | None = None


def dataset_options(card) -> DatasetOptions:
    """Validate ``reference_population`` and ``compare_to`` of a (classification or detection) data card."""
    data = card.front_matter
    v = Validator(Path(card.path), data)
    names = [a.name for a in card.attributes]
    groupings = names + [" × ".join(c) for c in card.intersections]
    reference: dict[str, dict[str, float]] = {}
    description = None
    raw = v.mapping(data, "reference_population", required=False,
                    expected="a mapping with 'shares' (and optionally 'description')")
    if raw is not None:
        v.unknown_keys(raw, {"description", "shares"}, "reference_population.")
        description = v.string(raw, "description", "reference_population.", required=False)
        shares = v.mapping(raw, "shares", "reference_population.",
                           expected="a mapping of grouping name to a mapping of group to share")
        for grouping, weights in shares.items():
            where = f"reference_population.shares.{grouping}"
            if grouping not in groupings:
                raise v.fail(where, f"a declared attribute or intersection ({', '.join(groupings) or 'none'})", grouping)
            if not isinstance(weights, dict) or len(weights) < 2:
                raise v.fail(where, "a mapping of two or more groups to their share", weights)
            parsed = {}
            for group, w in weights.items():
                if isinstance(w, bool) or not isinstance(w, (int, float)) or not math.isfinite(w) or w <= 0:
                    raise v.fail(f"{where}.{group}", "a positive number (share or count)", w)
                parsed[str(group)] = float(w)
            reference[str(grouping)] = parsed
    compare_to = None
    other = data.get("compare_to", MISSING)
    if other is not MISSING and other is not None:
        if not isinstance(other, str) or not other.strip().endswith(".md"):
            raise v.fail("compare_to", "the path of another data card (.md)", other)
        compare_to = v.resolve(other)
        if compare_to.resolve() == Path(card.path).resolve():
            raise v.fail("compare_to", "another data card than this one", other)
    return DatasetOptions(reference, description, compare_to)
