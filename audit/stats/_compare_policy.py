"""What counts as a regression when two audits are compared: metric directions and :class:`ComparePolicy`.

Used by :func:`audit.stats._compare.compare_results`, which matches the two audits and judges each change
against the policy; the rows it returns are described in :mod:`audit.stats._compare_outcome`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field

import numpy as np

from ..errors import StatsInputError
from ._significance import CORRECTIONS

__all__ = [
    "ComparePolicy",
    "DEFAULT_DISPARITY_KINDS",
    "HIGHER_IS_BETTER",
    "LOWER_IS_BETTER",
    "metric_direction",
]

# An increase is the worsening.
LOWER_IS_BETTER = ("error_rate", "fpr", "fnr", "fdr", "overall_error", "abstention_rate", "ece")
# A decrease is the worsening.
HIGHER_IS_BETTER = ("accuracy", "tpr", "ppv", "tnr", "npv", "roc_auc")

DEFAULT_DISPARITY_KINDS = ("between_groups", "to_reference")
_DISPARITY_KINDS = ("between_groups", "to_overall", "to_overall_max", "to_reference")
_AGGREGATE_KINDS = ("between_groups", "to_overall_max")


def metric_direction(metric: str, *, higher_is_better: Sequence[str] = (), lower_is_better: Sequence[str] = ()) -> str:
    """``"higher"`` (a drop is the worsening), ``"lower"`` (a rise is) or ``""`` (no direction, not gated)."""
    if metric in higher_is_better or metric in HIGHER_IS_BETTER:
        return "higher"
    if metric in lower_is_better or metric in LOWER_IS_BETTER:
        return "lower"
    return ""


# ---------------------------------------------------------------------------------------------------------
# Policy
# ---------------------------------------------------------------------------------------------------------

_POLICY_KEYS = (
    "max_drop", "max_disparity_growth", "min_n", "significant_only", "alpha", "correction", "confidence",
    "n_boot", "seed", "metrics", "disparity_kinds", "higher_is_better", "lower_is_better",
)


@dataclass
class ComparePolicy:
    """What counts as a regression.

    Parameters
    ----------
    max_drop : mapping of str to float
        Largest allowed worsening of a metric, in the metric's own units
        (0.01 is one percentage point of a rate), per metric name; the key
        ``"default"`` applies to the others. A *drop* of ``accuracy`` and a
        *rise* of ``error_rate`` are both worsenings.
    max_disparity_growth : mapping of str to float
        Largest allowed growth of ``|difference|`` of a disparity, per metric
        (``"default"`` for the others).
    min_n : int
        Rows whose metric denominator (or either group of a disparity) is below
        this in either audit are reported but not gated.
    significant_only : bool
        Fail only when the worsening is also significant.
    alpha, correction
        Level and multiplicity adjustment (``fdr_bh`` or ``holm``) of the
        one-sided tests, over every gated row.
    confidence : float
        Coverage of the intervals of the changes.
    n_boot, seed
        Bootstrap resamples and seed.
    metrics : sequence of str, optional
        Gate only these metrics (all directed metrics by default).
    disparity_kinds : sequence of str
        Disparity kinds that are gated.
    higher_is_better, lower_is_better : sequence of str
        Directions of metrics this module does not know (e.g. a detection or
        segmentation metric).
    """

    max_drop: dict = field(default_factory=lambda: {"default": 0.01})
    max_disparity_growth: dict = field(default_factory=lambda: {"default": 0.02})
    min_n: int = 30
    significant_only: bool = True
    alpha: float = 0.05
    correction: str = "fdr_bh"
    confidence: float = 0.95
    n_boot: int = 1000
    seed: int = 0
    metrics: tuple | None = None
    disparity_kinds: tuple = DEFAULT_DISPARITY_KINDS
    higher_is_better: tuple = ()
    lower_is_better: tuple = ()

    def __post_init__(self):
        self.max_drop = _limits(self.max_drop, "max_drop", default=DEFAULT_MAX_DROP)
        self.max_disparity_growth = _limits(self.max_disparity_growth, "max_disparity_growth",
                                            default=DEFAULT_MAX_DISPARITY_GROWTH)
        self.min_n = _integer(self.min_n, "min_n", low=0)
        self.n_boot = _integer(self.n_boot, "n_boot", low=1)
        self.seed = _integer(self.seed, "seed", low=0)
        if not isinstance(self.significant_only, bool):
            raise StatsInputError(f"significant_only: expected true or false, found {self.significant_only!r}")
        for name in ("alpha", "confidence"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 < float(value) < 1.0:
                raise StatsInputError(f"{name}: expected a number in (0, 1), found {value!r}")
            setattr(self, name, float(value))
        if self.correction not in CORRECTIONS:
            raise StatsInputError(f"correction: expected one of {sorted(CORRECTIONS)}, found {self.correction!r}")
        for name in ("metrics", "disparity_kinds", "higher_is_better", "lower_is_better"):
            value = getattr(self, name)
            if value is None:
                continue
            if isinstance(value, str) or not isinstance(value, Sequence) or not all(isinstance(v, str) for v in value):
                raise StatsInputError(f"{name}: expected a list of names, found {value!r}")
            setattr(self, name, tuple(value))
        bad = [k for k in self.disparity_kinds if k not in _DISPARITY_KINDS]
        if bad:
            raise StatsInputError(f"disparity_kinds: expected names among {list(_DISPARITY_KINDS)}, found {bad[0]!r}")

    @classmethod
    def from_mapping(cls, mapping, *, source: str = "policy") -> "ComparePolicy":
        """Build a policy from a mapping (a parsed YAML file); errors name ``source`` and the key."""
        if mapping is None:
            mapping = {}
        if not isinstance(mapping, Mapping):
            raise StatsInputError(f"{source}: expected a mapping of policy keys, found {type(mapping).__name__}")
        unknown = [k for k in mapping if k not in _POLICY_KEYS]
        if unknown:
            raise StatsInputError(f"{source}: unknown key {unknown[0]!r}, expected one of {', '.join(_POLICY_KEYS)}")
        try:
            return cls(**dict(mapping))
        except StatsInputError as exc:
            raise StatsInputError(f"{source}: {exc}") from None

    def limit(self, item: str, metric: str) -> float:
        table = self.max_drop if item == "metric" else self.max_disparity_growth
        return float(table.get(metric, table.get("default", 0.0)))

    def to_dict(self) -> dict:
        out = asdict(self)
        for key in ("metrics", "disparity_kinds", "higher_is_better", "lower_is_better"):
            if out[key] is not None:
                out[key] = list(out[key])
        return out


DEFAULT_MAX_DROP = 0.01  # the documented defaults, kept for every metric a policy does not name
DEFAULT_MAX_DISPARITY_GROWTH = 0.02


def _limits(value, name: str, *, default: float) -> dict:
    """Per-metric limits; a metric not named (and no ``default`` key) keeps the documented ``default``."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        value = {"default": value}
    if not isinstance(value, Mapping):
        raise StatsInputError(f"{name}: expected a number or a mapping of metric to number, found {value!r}")
    out = {}
    for key, limit in value.items():
        if isinstance(limit, bool) or not isinstance(limit, (int, float)) or not limit >= 0 or math.isinf(limit):
            raise StatsInputError(f"{name}[{key!r}]: expected a finite number >= 0, found {limit!r}")
        out[str(key)] = float(limit)
    out.setdefault("default", float(default))
    return out


def _integer(value, name: str, *, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise StatsInputError(f"{name}: expected an integer >= {low}, found {value!r}")
    return int(value)
