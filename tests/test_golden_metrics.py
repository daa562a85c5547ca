"""The project's own metric regression tests: golden results for fixed fixtures.

A code change that moves any metric, interval, disparity or p-value of these
fixed audits fails here, listing what moved. If the change is intended,
regenerate the golden files and commit them with the change::

    python -m pytest tests/test_golden_metrics.py --audit-update-baseline
"""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from audit.stats import Attribute, audit_classification

GOLDEN = Path(__file__).parent / "golden"
TOLERANCE = 1e-9

METRIC_KEY = ("grouping", "group", "metric", "class")
METRIC_FIELDS = ("value", "lower", "upper", "n", "small_group")
DISPARITY_KEY = ("grouping", "metric", "class", "kind", "group", "other")
DISPARITY_FIELDS = ("difference", "difference_lower", "difference_upper", "ratio", "ratio_lower", "ratio_upper",
                    "p_value", "p_holm", "p_fdr_bh", "significant")


def _population(n: int, seed: int) -> tuple[pd.DataFrame, np.random.Generator]:
    rng = np.random.default_rng(seed)
    groups = pd.DataFrame({
        "skin_type": rng.integers(1, 7, n),  # Fitzpatrick I-VI, binned lighter / darker
        "gender": rng.choice(["female", "male", None], n, p=[0.48, 0.48, 0.04]),  # some unknown
    })
    return groups, rng


def multiclass_audit():
    """3 classes, abstentions, an error rate that depends on skin type."""
    groups, rng = _population(600, seed=2024)
    y = rng.integers(0, 3, 600)
    darker = groups["skin_type"].to_numpy() >= 4
    wrong = rng.random(600) < np.where(darker, 0.3, 0.1)
    pred = np.where(wrong, (y + rng.integers(1, 3, 600)) % 3, y)
    pred = np.where(rng.random(600) < 0.03, -1, pred)
    return audit_classification(
        y_true=y, y_pred=pred, groups=groups, classes=["a", "b", "c"],
        attributes=[Attribute("skin_type", scale="fitzpatrick"), Attribute("gender")],
        intersections=[("skin_type", "gender")], reference_groups={"skin_type": "lighter"},
        metrics=("accuracy", "error_rate", "abstention_rate", "overall_error", "tpr", "fpr", "ppv"),
        n_boot=200, n_perm=100, seed=0, min_group_size=50,
    )


def binary_scores_audit():
    """Binary with scores: AUC and ECE with their row bootstrap and permutation tests."""
    groups, rng = _population(400, seed=7)
    y = rng.integers(0, 2, 400)
    darker = groups["skin_type"].to_numpy() >= 4
    logit = np.where(y == 1, 1.5, -1.5) * np.where(darker, 0.6, 1.2) + rng.normal(0, 1, 400)
    p1 = 1 / (1 + np.exp(-logit))
    scores = np.column_stack([1 - p1, p1])
    return audit_classification(
        y_true=y, y_pred=(p1 > 0.5).astype(int), groups=groups, classes=["neg", "pos"], pos_label=1, scores=scores,
        attributes=[Attribute("skin_type", scale="fitzpatrick"), Attribute("gender")],
        intersections=[("skin_type", "gender")], reference_groups={"skin_type": "lighter"},
        disparity_metrics=("error_rate", "tpr", "roc_auc", "ece"), n_boot=100, n_perm=50, seed=3,
        min_group_size=30,
    )


def _table(rows, key, fields) -> dict:
    return {tuple(r[k] for k in key): tuple(r.get(f) for f in fields) for r in rows}


def _same(a, b) -> bool:
    if a is None or b is None or isinstance(a, (bool, str)) or isinstance(b, (bool, str)):
        return a == b
    return math.isclose(a, b, rel_tol=TOLERANCE, abs_tol=TOLERANCE)


def moved(golden: dict, current: dict, *, key, fields) -> list[str]:
    """What differs between two tables of rows, one line each."""
    lines = []
    for k in sorted(set(golden) | set(current), key=str):
        if k not in current:
            lines.append(f"{k}: gone")
        elif k not in golden:
            lines.append(f"{k}: new")
        else:
            for name, old, new in zip(fields, golden[k], current[k]):
                if not _same(old, new):
                    lines.append(f"{dict(zip(key, k))} {name}: {old!r} -> {new!r}")
    return lines


def _dumps(document: dict) -> str:
    """One row per line, so that a regenerated golden file diffs readably."""
    parts = []
    for table, rows in document.items():
        body = ",\n".join(json.dumps(r, allow_nan=False) for r in rows)
        parts.append(f'"{table}": [\n{body}\n]')
    return "{\n" + ",\n".join(parts) + "\n}\n"


def check_golden(name: str, document: dict, request, *, disparities: bool = True) -> None:
    path = GOLDEN / f"{name}.json"
    golden_doc = {
        "metrics": [{k: r[k] for k in METRIC_KEY + METRIC_FIELDS} for r in document["metrics"]],
        "disparities": [{k: r.get(k) for k in DISPARITY_KEY + DISPARITY_FIELDS} for r in document["disparities"]]
        if disparities else [],
    }
    if request.config.getoption("audit_update_baseline"):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(_dumps(golden_doc))
        return
    assert path.is_file(), f"no golden file {path}; create it with --audit-update-baseline"
    golden = json.loads(path.read_text())
    lines = moved(_table(golden["metrics"], METRIC_KEY, METRIC_FIELDS),
                  _table(golden_doc["metrics"], METRIC_KEY, METRIC_FIELDS), key=METRIC_KEY, fields=METRIC_FIELDS)
    lines += moved(_table(golden["disparities"], DISPARITY_KEY, DISPARITY_FIELDS),
                   _table(golden_doc["disparities"], DISPARITY_KEY, DISPARITY_FIELDS),
                   key=DISPARITY_KEY, fields=DISPARITY_FIELDS)
    if lines:
        pytest.fail(
            f"{len(lines)} golden values of '{name}' moved (regenerate with --audit-update-baseline if intended):\n"
            + "\n".join(lines[:25]) + ("\n..." if len(lines) > 25 else ""),
            pytrace=False,
        )


@pytest.mark.parametrize("name, make", [("multiclass", multiclass_audit), ("binary_scores", binary_scores_audit)])
def test_engine_golden(name, make, request):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = make()
    check_golden(name, result.to_dict(), request)


def test_golden_check_reports_what_moved():
    golden = {("overall", "all", "accuracy", ""): (0.9, 0.8, 0.95, 100, False)}
    current = {("overall", "all", "accuracy", ""): (0.9 + 1e-6, 0.8, 0.95, 100, False)}
    assert moved(golden, current, key=METRIC_KEY, fields=METRIC_FIELDS) == [
        "{'grouping': 'overall', 'group': 'all', 'metric': 'accuracy', 'class': ''} value: 0.9 -> 0.900001"
    ]
    assert moved(golden, golden, key=METRIC_KEY, fields=METRIC_FIELDS) == []
