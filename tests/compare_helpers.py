"""Deterministic synthetic audits for the comparison tests: no model, no images, under a second each."""

from __future__ import annotations

import numpy as np
import pandas as pd

from audit.compare import samples_table, write_samples
from audit.report import write_outputs
from audit.stats import Attribute, SampleStats, audit_classification

CLASSES = ["neg", "pos"]
ATTRIBUTES = [Attribute("skin_type"), Attribute("gender")]
INTERSECTIONS = [("skin_type", "gender")]
REFERENCE = {"skin_type": "lighter"}


def population(n: int, *, seed: int, start: int = 0) -> dict:
    """Labels and groups of ``n`` samples with ids ``s<start>..``."""
    rng = np.random.default_rng(seed)
    groups = pd.DataFrame({
        "skin_type": rng.choice(["lighter", "darker"], n),
        "gender": rng.choice(["female", "male"], n),
    })
    return {
        "ids": np.array([f"s{i:05d}" for i in range(start, start + n)]),
        "y": rng.integers(0, 2, n),
        "groups": groups,
    }


def predict(pop: dict, *, error: float | dict = 0.12, seed: int) -> np.ndarray:
    """Predictions wrong with probability ``error`` (a number, or skin type -> rate)."""
    rng = np.random.default_rng(seed)
    if isinstance(error, dict):
        rate = pop["groups"]["skin_type"].map(error).to_numpy(dtype=float)
    else:
        rate = np.full(len(pop["y"]), error)
    wrong = rng.random(len(pop["y"])) < rate
    return np.where(wrong, 1 - pop["y"], pop["y"])


def audit(pop: dict, pred: np.ndarray, *, n_boot: int = 200, scores=None, **options):
    return audit_classification(
        y_true=pop["y"], y_pred=pred, groups=pop["groups"], classes=CLASSES, attributes=ATTRIBUTES,
        intersections=INTERSECTIONS, reference_groups=REFERENCE, n_boot=n_boot, n_perm=50, seed=0,
        disparity_metrics=("error_rate", "tpr"), scores=scores, **options,
    )


def samples(pop: dict, pred: np.ndarray) -> SampleStats:
    return SampleStats(pop["ids"], pop["y"], pred, pop["groups"], CLASSES)


def write_audit(directory, pop: dict, pred: np.ndarray, *, with_samples: bool = True, **options):
    """An audit output directory as ``audit run`` writes it: results.json, index.html, samples.parquet."""
    result = audit(pop, pred, **options)
    write_outputs(result, directory, provenance={})
    if with_samples:
        write_samples(samples_table(pop["ids"], pop["y"], pred, pop["groups"], ATTRIBUTES, INTERSECTIONS), directory)
    return directory
