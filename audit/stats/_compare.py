"""Comparing two audits: matched metrics and disparities, changes with intervals, a regression policy.

Pure numpy/pandas: the inputs are two ``results`` sections (``GroupedMetrics.to_dict()``)
and, optionally, each audit's per-sample statistics (:class:`SampleStats`).

How the uncertainty of a change is obtained, in order of preference:

``paired``
    Both audits scored the same samples (equal sets of sample ids). Every
    sample is reduced to the pair (baseline confusion cell, candidate confusion
    cell) within the pair of finest groups it belongs to. Resampling samples
    jointly is then exactly a multinomial draw over the observed
    (group pair x cell pair) counts; both audits' metrics, and every change, are
    recomputed from each draw. Changes that most samples share cancel, so a
    small consistent change is detected.
``unpaired``
    The audits scored different samples (or pairing was switched off). Each
    audit's (group x cell) counts are resampled independently.
``unpaired (reported intervals)``
    Per-sample statistics are missing for one audit. The change's standard
    error is ``sqrt(se_b^2 + se_c^2)`` with each ``se`` read off the reported
    interval (``(upper - lower) / (2 z)``).

Score metrics (ROC AUC, ECE) need scores, not cells; they always use the
reported intervals.

A row is a **regression** when it worsens by more than the policy allows and,
with ``significant_only``, the worsening is significant: a one-sided test of
"no worsening" (``z = worsening / bootstrap SD``, or the normal approximation)
after Benjamini-Hochberg (or Holm) adjustment over every gated row.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd

from ..errors import StatsInputError
from ._clustered import floor_variance
from ._groups import ALL, OVERALL, SEPARATOR
from ._rates import CLASS_METRICS, OVERALL_METRICS, macro, rate_components, ratio
from ._significance import CORRECTIONS, adjust_p_values

__all__ = [
    "ComparePolicy",
    "Comparison",
    "HIGHER_IS_BETTER",
    "LOWER_IS_BETTER",
    "SampleStats",
    "compare_results",
    "metric_direction",
]

# An increase is the worsening.
LOWER_IS_BETTER = ("error_rate", "fpr", "fnr", "fdr", "overall_error", "abstention_rate", "ece")
# A decrease is the worsening.
HIGHER_IS_BETTER = ("accuracy", "tpr", "ppv", "tnr", "npv", "roc_auc")

DEFAULT_DISPARITY_KINDS = ("between_groups", "to_reference")
_DISPARITY_KINDS = ("between_groups", "to_overall", "to_overall_max", "to_reference")
_AGGREGATE_KINDS = ("between_groups", "to_overall_max")
MACRO = "macro"

PAIRED = "paired"
UNPAIRED = "unpaired"
REPORTED = "unpaired (reported intervals)"

ROW_COLUMNS = [
    "item", "grouping", "group", "metric", "class", "kind", "direction", "baseline", "candidate",
    "baseline_lower", "baseline_upper", "candidate_lower", "candidate_upper", "change", "change_lower",
    "change_upper", "worsening", "limit", "n_baseline", "n_candidate", "method", "p_value", "p_adjusted",
    "significant", "status", "note",
]
STATUSES = ("regression", "within_noise", "ok", "improved", "info", "small_n", "undefined", "only_baseline",
            "only_candidate")


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


# ---------------------------------------------------------------------------------------------------------
# Per-sample statistics
# ---------------------------------------------------------------------------------------------------------


@dataclass
class SampleStats:
    """An audit's per-sample sufficient statistics: confusion cell inputs and binned group labels.

    Attributes
    ----------
    sample_id : ndarray of str, shape (n,)
    y_true, y_pred : ndarray of int, shape (n,)
        Class indices; ``y_pred == -1`` is an abstention.
    groups : DataFrame, n rows
        One column per attribute holding each sample's binned group label
        (as in the audit's groupings, ``unknown`` for missing values).
    classes : list of str
    """

    sample_id: np.ndarray
    y_true: np.ndarray
    y_pred: np.ndarray
    groups: pd.DataFrame
    classes: list

    def __post_init__(self):
        self.sample_id = np.asarray(self.sample_id).astype(str)
        self.y_true = np.asarray(self.y_true, dtype=np.int64)
        self.y_pred = np.asarray(self.y_pred, dtype=np.int64)
        self.groups = self.groups.reset_index(drop=True).astype(str)
        self.classes = [str(c) for c in self.classes]
        n = len(self.sample_id)
        if not (len(self.y_true) == len(self.y_pred) == len(self.groups) == n):
            raise StatsInputError(
                f"expected sample ids, labels, predictions and groups of equal length, found "
                f"{n}, {len(self.y_true)}, {len(self.y_pred)} and {len(self.groups)}"
            )
        if len(set(self.sample_id.tolist())) != n:
            raise StatsInputError("expected unique sample ids, found duplicates")
        c = len(self.classes)
        if n and (self.y_true.min() < 0 or self.y_true.max() >= c or self.y_pred.min() < -1 or self.y_pred.max() >= c):
            raise StatsInputError(f"expected labels in [0, {c - 1}] and predictions in [-1, {c - 1}], found others")

    @property
    def cells(self) -> np.ndarray:
        c = len(self.classes)
        return self.y_true * (c + 1) + np.where(self.y_pred < 0, c, self.y_pred)

    def labels_of(self, grouping: str) -> np.ndarray:
        """Each sample's group label under ``grouping`` (``overall``, an attribute or ``a × b``)."""
        if grouping == OVERALL:
            return np.full(len(self.sample_id), ALL, dtype=object)
        parts = grouping.split(SEPARATOR)
        missing = [p for p in parts if p not in self.groups.columns]
        if missing:
            raise StatsInputError(
                f"grouping '{grouping}': expected attribute column '{missing[0]}' in the per-sample groups, "
                f"found {list(self.groups.columns)}"
            )
        labels = self.groups[parts[0]].to_numpy(dtype=object)
        for part in parts[1:]:
            labels = labels + SEPARATOR + self.groups[part].to_numpy(dtype=object)
        return labels

    def reorder(self, order: np.ndarray) -> "SampleStats":
        return SampleStats(self.sample_id[order], self.y_true[order], self.y_pred[order],
                           self.groups.iloc[order], self.classes)


# ---------------------------------------------------------------------------------------------------------
# The comparison
# ---------------------------------------------------------------------------------------------------------


@dataclass
class Comparison:
    """The outcome of :func:`compare_results`.

    Attributes
    ----------
    rows : DataFrame
        One row per matched (or unmatched) metric value and disparity, columns
        :data:`ROW_COLUMNS`. ``change`` is candidate minus baseline;
        ``worsening`` is the change in the bad direction (for a disparity, the
        growth of ``|difference|``); ``status`` is one of :data:`STATUSES`.
    mode : str
        ``paired``, ``unpaired`` or ``unpaired (reported intervals)``.
    method : str
        How the intervals and tests were obtained, in words.
    reason : str
        Why this mode was used.
    policy : ComparePolicy
    sources : dict
        What was compared (paths, models, data), for the reports.
    """

    rows: pd.DataFrame
    mode: str
    method: str
    reason: str
    policy: ComparePolicy
    sources: dict = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return not bool((self.rows["status"] == "regression").any())

    @property
    def regressions(self) -> pd.DataFrame:
        return self.rows[self.rows["status"] == "regression"]

    def counts(self) -> dict:
        found = self.rows["status"].value_counts()
        return {s: int(found.get(s, 0)) for s in STATUSES}

    def summary(self, *, limit: int = 10) -> str:
        """A few lines for a terminal or a test failure: the disparity regressions first (the reason the gate
        exists), then the metric regressions (at least three of them shown), ``limit`` lines in all."""
        counts = self.counts()
        verdict = "PASS" if self.passed else "FAIL"
        lines = [
            f"audit compare: {verdict} ({self.mode}: {self.reason}); "
            f"{counts['regression']} regressions, {counts['within_noise']} worsenings within noise, "
            f"{counts['improved']} improvements, {counts['small_n']} rows below min_n, "
            f"{counts['only_baseline'] + counts['only_candidate']} unmatched"
        ]
        shown = 0
        for title, part in regression_sections(self.regressions):
            take = max(limit - shown, 0 if title.startswith("disparity") else 3)  # a few metric lines always
            lines.append(f"  {title} ({len(part)}):")
            for _, r in part.head(take).iterrows():
                lines.append("    " + describe_row(r))
            shown += min(len(part), take)
            if len(part) > take:
                lines.append(f"    ... and {len(part) - take} more")
        return "\n".join(lines)

    def to_dict(self) -> dict:
        from ._results import _records

        return {
            "passed": self.passed,
            "mode": self.mode,
            "method": self.method,
            "reason": self.reason,
            "policy": self.policy.to_dict(),
            "sources": self.sources,
            "counts": self.counts(),
            "rows": _records(self.rows),
        }


def regression_order(rows: pd.DataFrame) -> pd.DataFrame:
    """Rows with the disparity regressions first (the reason the gate exists), then the metric regressions,
    then everything else; within each, the smallest adjusted p-value and the largest worsening first."""
    if rows.empty:
        return rows
    rank = np.where(rows["status"] == "regression", np.where(rows["item"] == "disparity", 0, 1), 2)
    return rows.assign(_rank=rank).sort_values(["_rank", "p_adjusted", "worsening"], ascending=[True, True, False],
                                               kind="stable").drop(columns="_rank")


def regression_sections(regressions: pd.DataFrame) -> list[tuple[str, pd.DataFrame]]:
    """[("disparity regressions", rows), ("metric regressions", rows)], the empty ones left out."""
    ordered = regression_order(regressions)
    out = [("disparity regressions", ordered[ordered["item"] == "disparity"]),
           ("metric regressions", ordered[ordered["item"] != "disparity"])]
    return [(t, p) for t, p in out if len(p)]


def row_label(r) -> str:
    """What a row is: the metric by its short display name with its code, the class, the group or the comparison."""
    from ._names import short_name

    cls = f"[{r['class']}]" if r["class"] else ""
    name = short_name(r["metric"])
    metric = f"{name} ({r['metric']}){cls}" if name != r["metric"] else f"{r['metric']}{cls}"
    if r["item"] == "metric":
        return f"{metric} {r['grouping']}={r['group']}"
    where = f" {r['group']}" if r["group"] else ""
    return f"disparity {r['kind']} {metric} over {r['grouping']}{where}"


def _num(value, digits=4) -> str:
    return "nan" if value is None or not np.isfinite(value) else f"{value:.{digits}f}"


def describe_row(r) -> str:
    """One line: what changed, by how much, with its interval, against what limit."""
    p = r["p_adjusted"]
    return (
        f"{row_label(r)}: {_num(r['baseline'])} -> {_num(r['candidate'])} "
        f"(change {_num(r['change'], 4)} [{_num(r['change_lower'], 4)}, {_num(r['change_upper'], 4)}], "
        f"worsening {_num(r['worsening'])} (allowed {_num(r['limit'])}), "
        f"p_adj={_num(p, 4)}, n={_num_int(r['n_baseline'])}/{_num_int(r['n_candidate'])})"
    )


def _num_int(value) -> str:
    return "?" if value is None or (isinstance(value, float) and not np.isfinite(value)) else str(int(value))


def _floored_p(worsening: float, r: dict) -> float:
    """One-sided p-value of a worsening seen with no variance, on the largest variance a [0, 1] metric can have."""
    from scipy.stats import norm  # lazy (see audit.stats)
    values = (r["baseline"], r["candidate"])
    sizes = (r["n_baseline"], r["n_candidate"])
    if not all(np.isfinite(values)) or not all(0 <= v <= 1 for v in values) or not all(
            np.isfinite(sizes)) or min(sizes) <= 0:
        return float("nan")
    sd = math.sqrt(sum(float(floor_variance(v, n)) for v, n in zip(values, sizes)))
    return float(norm.sf(worsening / sd))


def compare_results(
    baseline,
    candidate,
    *,
    policy: ComparePolicy | None = None,
    baseline_samples: SampleStats | None = None,
    candidate_samples: SampleStats | None = None,
    paired: bool | None = None,
) -> Comparison:
    """Match two audits' metrics and disparities and judge every change against ``policy``.

    Parameters
    ----------
    baseline, candidate : GroupedMetrics or dict
        The engine's results, or their ``to_dict()`` (the ``results`` section
        of ``results.json``).
    policy : ComparePolicy, optional
    baseline_samples, candidate_samples : SampleStats, optional
        Per-sample statistics. With both and equal sample ids, changes are
        tested with a paired bootstrap; otherwise unpaired.
    paired : bool, optional
        ``False`` forces the unpaired bootstrap; ``True`` requires pairing
        (an error if the samples differ); ``None`` pairs when possible.

    Returns
    -------
    Comparison
    """
    policy = policy or ComparePolicy()
    base = baseline if isinstance(baseline, dict) else baseline.to_dict()
    cand = candidate if isinstance(candidate, dict) else candidate.to_dict()
    rows = _match(base, cand, policy)
    if not (rows["status"] == "").any():
        raise StatsInputError(
            "expected the two audits to share at least one metric of one group, found none in common"
        )

    mode, reason = _choose_mode(baseline_samples, candidate_samples, paired)
    rng = np.random.default_rng(policy.seed)
    replicates: dict = {}
    if mode != REPORTED:
        b, c = baseline_samples, candidate_samples
        if mode == PAIRED:
            order_c = np.argsort(c.sample_id, kind="stable")
            order_b = np.argsort(b.sample_id, kind="stable")
            b, c = b.reorder(order_b), c.reorder(order_c)
        groupings = sorted(set(rows.loc[rows["status"] == "", "grouping"]))
        replicates = _count_replicates(b, c, groupings, base, cand, paired=(mode == PAIRED), n_boot=policy.n_boot,
                                       rng=rng)
    rows = _judge(rows, replicates, policy, base, cand, mode)
    method = {
        PAIRED: f"paired bootstrap: {policy.n_boot} joint resamples of the samples, each audit's metrics recomputed "
                "from every sample's pair of confusion cells (score metrics: reported intervals)",
        UNPAIRED: f"unpaired bootstrap: {policy.n_boot} independent resamples of each audit's (group x confusion "
                  "cell) counts (score metrics: reported intervals)",
        REPORTED: "normal approximation: each audit's standard error read off its reported interval",
    }[mode]
    return Comparison(rows=rows, mode=mode, method=method, reason=reason, policy=policy)


def _choose_mode(b: SampleStats | None, c: SampleStats | None, paired: bool | None) -> tuple[str, str]:
    if b is None or c is None:
        which = " and ".join(n for n, s in (("baseline", b), ("candidate", c)) if s is None)
        if paired:
            raise StatsInputError(f"paired comparison: expected per-sample statistics of both audits, found none for {which}")
        return REPORTED, f"no per-sample statistics for the {which}"
    if b.classes != c.classes:
        if paired:
            raise StatsInputError(f"paired comparison: expected the same classes, found {b.classes} and {c.classes}")
        return REPORTED, f"the audits have different classes ({b.classes} vs {c.classes})"
    same = len(b.sample_id) == len(c.sample_id) and set(b.sample_id.tolist()) == set(c.sample_id.tolist())
    if paired is False:
        return UNPAIRED, "pairing switched off"
    if same:
        return PAIRED, f"both audits scored the same {len(b.sample_id)} samples"
    only_b = len(set(b.sample_id.tolist()) - set(c.sample_id.tolist()))
    only_c = len(set(c.sample_id.tolist()) - set(b.sample_id.tolist()))
    if paired:
        raise StatsInputError(
            f"paired comparison: expected the same sample ids, found {only_b} only in the baseline and "
            f"{only_c} only in the candidate"
        )
    return UNPAIRED, f"different samples ({only_b} ids only in the baseline, {only_c} only in the candidate)"


def _match(base: dict, cand: dict, policy: ComparePolicy) -> pd.DataFrame:
    """Outer-join metric rows and disparity rows; ``status`` is '' for matched rows still to be judged."""
    key = ["grouping", "group", "metric", "class"]
    cols = key + ["value", "lower", "upper", "n"]
    mb = pd.DataFrame(base.get("metrics", []), columns=cols)
    mc = pd.DataFrame(cand.get("metrics", []), columns=cols)
    metrics = mb.merge(mc, on=key, how="outer", suffixes=("_b", "_c"), indicator=True, sort=False)
    metrics["item"] = "metric"
    metrics["kind"] = ""

    dcols = ["grouping", "metric", "class", "kind", "group", "other", "difference", "difference_lower",
             "difference_upper", "n_group", "n_other"]
    db = pd.DataFrame(base.get("disparities", []), columns=dcols)
    dc = pd.DataFrame(cand.get("disparities", []), columns=dcols)
    frames = []
    for d in (db, dc):
        d = d[d["kind"].isin(policy.disparity_kinds)].copy()
        aggregate = d["kind"].isin(_AGGREGATE_KINDS)
        d["pair"] = np.where(aggregate, d["group"].fillna("") + " vs " + d["other"].fillna(""), "")
        d["group"] = np.where(aggregate, "", d["group"].fillna(""))
        d["n"] = np.minimum(d["n_group"].astype(float), d["n_other"].astype(float))
        d = d.rename(columns={"difference": "value", "difference_lower": "lower", "difference_upper": "upper"})
        frames.append(d[["grouping", "group", "metric", "class", "kind", "other", "pair", "value", "lower", "upper",
                         "n"]])
    dkey = ["grouping", "group", "metric", "class", "kind"]
    disp = frames[0].merge(frames[1], on=dkey, how="outer", suffixes=("_b", "_c"), indicator=True, sort=False)
    disp["item"] = "disparity"

    rows = pd.concat([metrics, disp], ignore_index=True, sort=False)
    out = pd.DataFrame({
        "item": rows["item"], "grouping": rows["grouping"], "group": rows["group"].fillna(""),
        "metric": rows["metric"], "class": rows["class"].fillna(""), "kind": rows["kind"].fillna(""),
    })
    out["direction"] = [
        ("lower" if item == "disparity" else metric_direction(
            m, higher_is_better=policy.higher_is_better, lower_is_better=policy.lower_is_better))
        for item, m in zip(out["item"], out["metric"])
    ]
    for side, suffix in (("baseline", "_b"), ("candidate", "_c")):
        out[side] = rows["value" + suffix].astype(float)
        out[side + "_lower"] = rows["lower" + suffix].astype(float)
        out[side + "_upper"] = rows["upper" + suffix].astype(float)
        out["n_" + side] = rows["n" + suffix].astype(float)
    note = []
    for r in rows.to_dict("records"):
        if r["item"] == "disparity" and r["kind"] in _AGGREGATE_KINDS:
            pb, pc = r.get("pair_b"), r.get("pair_c")
            note.append(f"baseline {pb if isinstance(pb, str) else '-'}; candidate {pc if isinstance(pc, str) else '-'}")
        elif r["item"] == "disparity" and r["kind"] == "to_reference":
            other = r.get("other_b") if isinstance(r.get("other_b"), str) else r.get("other_c")
            note.append(f"vs {other}")
        else:
            note.append("")
    out["note"] = note
    out["status"] = np.select(
        [rows["_merge"].astype(str) == "left_only", rows["_merge"].astype(str) == "right_only"],
        ["only_baseline", "only_candidate"], default="",
    )
    out["limit"] = [policy.limit(i, m) for i, m in zip(out["item"], out["metric"])]
    for column in ROW_COLUMNS:
        if column not in out:
            out[column] = np.nan
    out["method"] = ""
    out["significant"] = False
    return out[ROW_COLUMNS].reset_index(drop=True)


# --- bootstrap replicates from counts ----------------------------------------------------------------------


def _group_index(labels: np.ndarray, known: list[str]) -> tuple[np.ndarray, list[str]]:
    """Codes of ``labels`` in ``known`` order (labels not in ``known`` are appended)."""
    order = list(known)
    extra = sorted(set(labels.tolist()) - set(order))
    order += extra
    position = {label: i for i, label in enumerate(order)}
    return np.array([position[label] for label in labels], dtype=np.int64), order


def _values_from_confusion(conf: np.ndarray, classes: list[str]) -> dict:
    """``(metric, class) -> values`` over the leading axes of ``conf`` (..., C, C + 1)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        parts = rate_components(conf)
        out = {}
        for name in OVERALL_METRICS:
            out[(name, "")] = ratio(*parts[name])
        for name in CLASS_METRICS:
            values = ratio(*parts[name])
            for k, cls in enumerate(classes):
                out[(name, cls)] = values[..., k]
            out[(name, MACRO)] = macro(values)
    return out


def _count_replicates(b: SampleStats, c: SampleStats, groupings: list[str], base: dict, cand: dict, *, paired: bool,
                      n_boot: int, rng) -> dict:
    """Point values and bootstrap replicates of every count-based metric, per audit and grouping.

    Returns ``{(side, grouping): (labels, {(metric, class): (point (G,), boot (B, G))})}``.
    """
    from scipy import sparse  # lazy (see audit.stats)
    sides = {"baseline": (b, base), "candidate": (c, cand)}
    # group codes per side and grouping, in the order the results list the groups
    codes: dict = {}
    for side, (stats, doc) in sides.items():
        listed: dict = {}
        for row in doc.get("groups", []):
            listed.setdefault(row["grouping"], []).append(row["group"])
        for grouping in groupings:
            codes[(side, grouping)] = _group_index(stats.labels_of(grouping), listed.get(grouping, []))
    n_cells = len(b.classes) * (len(b.classes) + 1)

    def units(stats: SampleStats, side: str) -> np.ndarray:
        # the finest stratum of a sample: its codes under every grouping, plus its confusion cell
        return np.column_stack([codes[(side, g)][0] for g in groupings] + [stats.cells])

    if paired:
        joint = np.column_stack([units(b, "baseline"), units(c, "candidate")])
        uniq, inverse = np.unique(joint, axis=0, return_inverse=True)
        counts = np.bincount(inverse.ravel(), minlength=len(uniq))
        draws = _multinomial(counts, n_boot, rng)
        width = len(groupings) + 1
        tables = {"baseline": (uniq[:, :width], counts, draws), "candidate": (uniq[:, width:], counts, draws)}
    else:
        tables = {}
        for side, (stats, _) in sides.items():
            uniq, inverse = np.unique(units(stats, side), axis=0, return_inverse=True)
            counts = np.bincount(inverse.ravel(), minlength=len(uniq))
            tables[side] = (uniq, counts, _multinomial(counts, n_boot, rng))

    out = {}
    classes = b.classes
    for side, (uniq, counts, draws) in tables.items():
        for j, grouping in enumerate(groupings):
            labels = codes[(side, grouping)][1]
            column = uniq[:, j] * n_cells + uniq[:, -1]
            width = len(labels) * n_cells
            indicator = sparse.csr_matrix((np.ones(len(uniq)), (np.arange(len(uniq)), column)), shape=(len(uniq), width))
            point = (indicator.T @ counts.astype(float)).reshape(len(labels), len(classes), len(classes) + 1)
            boot = np.asarray((indicator.T @ draws.T.astype(float)).T).reshape(
                n_boot, len(labels), len(classes), len(classes) + 1)
            point_values = _values_from_confusion(point, classes)
            boot_values = _values_from_confusion(boot, classes)
            out[(side, grouping)] = (labels, {k: (point_values[k], boot_values[k]) for k in point_values})
    return out


def _multinomial(counts: np.ndarray, n_boot: int, rng) -> np.ndarray:
    total = int(counts.sum())
    if total == 0:
        return np.zeros((n_boot, len(counts)), dtype=np.int64)
    return rng.multinomial(total, counts / total, size=n_boot)


def _quiet(fn, values, axis):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return fn(values, axis=axis)


def _row_replicates(r, replicates: dict, side: str, reference: dict) -> tuple[float, np.ndarray] | None:
    """Point value and replicates of one row's quantity for one side, or None when not count-based."""
    entry = replicates.get((side, r["grouping"]))
    if entry is None:
        return None
    labels, values = entry
    cls = r["class"]
    found = values.get((r["metric"], cls))
    if found is None:
        return None
    point, boot = found
    if r["item"] == "metric":
        if r["group"] not in labels:
            return None
        g = labels.index(r["group"])
        return float(point[g]), boot[:, g]
    # disparities: use only the groups this audit reports (its listed groups come first in ``labels``)
    if r["kind"] in _AGGREGATE_KINDS:
        n_listed = len(reference.get((side, r["grouping"]), labels))
        point, boot = point[:n_listed], boot[:, :n_listed]
        if r["kind"] == "between_groups":
            return (float(_quiet(np.nanmax, point, None) - _quiet(np.nanmin, point, None)),
                    _quiet(np.nanmax, boot, 1) - _quiet(np.nanmin, boot, 1))
        overall = replicates.get((side, OVERALL))
        if overall is None or (r["metric"], cls) not in overall[1]:
            return None
        op, ob = overall[1][(r["metric"], cls)]
        return (float(_quiet(np.nanmax, np.abs(point - op[0]), None)),
                _quiet(np.nanmax, np.abs(boot - ob[:, :1]), 1))
    if r["group"] not in labels:
        return None
    g = labels.index(r["group"])
    if r["kind"] == "to_overall":
        overall = replicates.get((side, OVERALL))
        if overall is None or (r["metric"], cls) not in overall[1]:
            return None
        op, ob = overall[1][(r["metric"], cls)]
        return float(point[g] - op[0]), boot[:, g] - ob[:, 0]
    other = r["note"][3:] if r["note"].startswith("vs ") else None
    if other not in labels:
        return None
    o = labels.index(other)
    return float(point[g] - point[o]), boot[:, g] - boot[:, o]


def _judge(rows: pd.DataFrame, replicates: dict, policy: ComparePolicy, base: dict, cand: dict, mode: str) -> pd.DataFrame:
    from scipy.stats import norm  # lazy (see audit.stats)
    z = norm.ppf(0.5 + policy.confidence / 2)
    listed = {}
    for side, doc in (("baseline", base), ("candidate", cand)):
        for row in doc.get("groups", []):
            listed.setdefault((side, row["grouping"]), []).append(row["group"])
    z_of = {
        "baseline": norm.ppf(0.5 + float(base.get("config", {}).get("confidence", 0.95)) / 2),
        "candidate": norm.ppf(0.5 + float(cand.get("config", {}).get("confidence", 0.95)) / 2),
    }
    gated_metrics = set(policy.metrics) if policy.metrics is not None else None
    p_values = np.full(len(rows), np.nan)
    records = rows.to_dict("records")
    for i, r in enumerate(records):
        if r["status"]:
            continue
        sign = {"higher": -1.0, "lower": 1.0, "": 0.0}[r["direction"]]
        change = r["candidate"] - r["baseline"]
        r["change"] = change
        if not (np.isfinite(r["baseline"]) and np.isfinite(r["candidate"])):
            r["status"] = "undefined"
            continue
        is_disparity = r["item"] == "disparity"
        worsening = (abs(r["candidate"]) - abs(r["baseline"])) if is_disparity else sign * change
        r["worsening"] = worsening

        reps = None
        if replicates:
            rb = _row_replicates(r, replicates, "baseline", listed)
            rc = _row_replicates(r, replicates, "candidate", listed)
            if rb is not None and rc is not None:
                reps = (rb, rc)
        if reps is not None:
            (pb, bb), (pc, bc) = reps
            if not (_close(pb, r["baseline"]) and _close(pc, r["candidate"])):
                raise StatsInputError(
                    f"{row_label(r)}: the per-sample statistics give {pb:.6g} (baseline) and {pc:.6g} (candidate), "
                    f"the results report {r['baseline']:.6g} and {r['candidate']:.6g}; expected the samples of "
                    "the same audits"
                )
            diff = bc - bb
            worse_boot = (np.abs(bc) - np.abs(bb)) if is_disparity else sign * diff
            ok = np.isfinite(diff) & np.isfinite(worse_boot)
            diff, worse_boot = diff[ok], worse_boot[ok]
            if diff.size >= 2:
                lo, hi = np.quantile(diff, [0.5 - policy.confidence / 2, 0.5 + policy.confidence / 2])
                sd = float(np.std(worse_boot, ddof=1))
            else:
                lo = hi = sd = np.nan
            r["method"] = "paired bootstrap" if mode == PAIRED else "unpaired bootstrap"
        else:
            se = []
            for side in ("baseline", "candidate"):
                width = r[side + "_upper"] - r[side + "_lower"]
                se.append(width / (2 * z_of[side]) if np.isfinite(width) else np.nan)
            sd = float(math.hypot(*se)) if all(np.isfinite(se)) else np.nan
            lo, hi = change - z * sd, change + z * sd
            r["method"] = "normal approximation (reported intervals)"
        r["change_lower"], r["change_upper"] = lo, hi
        if not np.isfinite(sd):
            p = np.nan
        elif sd > 0:
            p = float(norm.sf(worsening / sd))  # one-sided: H0 "no worsening"
        elif worsening <= 0:
            p = 1.0
        else:
            # no variance seen (recall 1.000 on both sides, say): a zero standard error must not give p = 0;
            # a [0, 1] metric falls back to the variance it can have at most on its n, as audit.stats' intervals do
            p = _floored_p(worsening, r)

        n_min = np.nanmin([r["n_baseline"], r["n_candidate"]])
        if sign == 0.0 and not is_disparity:
            r["status"] = "info"
        elif gated_metrics is not None and r["metric"] not in gated_metrics:
            r["status"] = "info"
        elif not (n_min >= policy.min_n):
            r["status"] = "small_n"
        else:
            p_values[i] = p
    rows = pd.DataFrame(records, columns=ROW_COLUMNS)
    adjusted, significant = adjust_p_values(p_values, method=policy.correction, alpha=policy.alpha)
    rows["p_value"] = p_values
    rows["p_adjusted"] = adjusted
    rows["significant"] = significant
    pending = rows["status"] == ""
    eps = 1e-12
    over = rows["worsening"] > rows["limit"] + eps
    improved = -rows["worsening"] > rows["limit"] + eps
    if policy.significant_only:
        regression = over & rows["significant"].astype(bool)
    else:
        regression = over
    rows.loc[pending & regression, "status"] = "regression"
    rows.loc[pending & over & ~regression, "status"] = "within_noise"
    rows.loc[pending & ~over & improved, "status"] = "improved"
    rows.loc[rows["status"] == "", "status"] = "ok"
    return rows


def _close(a: float, b: float) -> bool:
    if not (np.isfinite(a) and np.isfinite(b)):
        return np.isfinite(a) == np.isfinite(b)
    return abs(a - b) <= 1e-9 + 1e-9 * abs(b)
