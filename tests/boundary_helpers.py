"""Seeded simulations of clustered 0/1 outcomes near 0 and 1, shared by the tests and ``bench/stats_validity.py``.

People sit in images of 1 to 4 (uniformly). With intra-image correlation
``icc`` each image draws its own rate from a Beta distribution with mean
``rate`` and ``alpha + beta = (1 - icc) / icc`` (a beta-binomial, whose
intra-cluster correlation is exactly ``icc``); every person of the image is
then found with that rate.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from audit.stats import Attribute, audit_classification, audit_ratio_metrics


def image_rates(rng, rate: float, icc: float, n_images: int) -> np.ndarray:
    """Per-image success rates with mean ``rate`` and intra-image correlation ``icc``."""
    if icc == 0:
        return np.full(n_images, rate)
    total = (1 - icc) / icc
    return rng.beta(rate * total, (1 - rate) * total, n_images)


def clustered_people(rng, *, n_people: int, rate: float, icc: float, max_cluster: int = 4):
    """``n_people`` 0/1 outcomes in images of 1..max_cluster people: (outcome, image) arrays."""
    sizes = rng.integers(1, max_cluster + 1, n_people)  # more than enough images
    sizes = sizes[: np.searchsorted(np.cumsum(sizes), n_people) + 1]
    sizes[-1] -= sizes.sum() - n_people
    image = np.repeat(np.arange(sizes.size), sizes)
    found = rng.random(n_people) < image_rates(rng, rate, icc, sizes.size)[image]
    return found.astype(float), image


def coverage_audit(rng, *, replicates: int, n_people: int, rate: float, icc: float, interval: str = "wilson"):
    """One clustered audit holding ``replicates`` independent groups of ``n_people``; their recall rows."""
    found, image, group = [], [], []
    offset = 0
    for r in range(replicates):
        f, i = clustered_people(rng, n_people=n_people, rate=rate, icc=icc)
        found.append(f)
        image.append(i + offset)
        offset += i.max() + 1
        group.append(np.full(f.size, f"r{r:04d}"))
    statistics = pd.DataFrame({"found": np.concatenate(found), "people": 1.0})
    result = audit_ratio_metrics(
        statistics=statistics, metrics={"recall": [("found", "people")]},
        groups=pd.DataFrame({"replicate": np.concatenate(group)}), clusters=np.concatenate(image),
        disparity_metrics=[], n_boot=0, interval=interval, min_group_size=1,
    )
    return result.metrics.query("grouping == 'replicate'")


TONES, AGES = ("lighter", "darker"), ("young", "middle", "older")


def null_detection_audit(rng, *, rate: float, icc: float, n_images: int = 300, correction: str = "fdr_bh",
                         seed: int = 0, n_boot: int = 0):
    """The issue's null design: 1-3 people per image, tone x age, every person found with ``rate``."""
    sizes = rng.integers(1, 4, n_images)
    image = np.repeat(np.arange(n_images), sizes)
    found = rng.random(image.size) < image_rates(rng, rate, icc, n_images)[image]
    groups = pd.DataFrame({"tone": rng.choice(TONES, image.size), "age": rng.choice(AGES, image.size)})
    statistics = pd.DataFrame({"m50": found.astype(float), "total": 1.0})
    return audit_ratio_metrics(
        statistics=statistics, metrics={"recall@0.50": [("m50", "total")]}, groups=groups, clusters=image,
        attributes=[Attribute("tone"), Attribute("age")], intersections=[("tone", "age")],
        reference_groups={"tone": "lighter"}, n_boot=n_boot, seed=seed, correction=correction, min_group_size=1,
    )


def null_classification_audit(rng, *, error: float, n: int = 1200, correction: str = "fdr_bh", seed: int = 0):
    """A binary classifier erring with probability ``error`` for everyone; tone x age with intersections."""
    groups = pd.DataFrame({"tone": rng.choice(TONES, n), "age": rng.choice(AGES, n)})
    y_true = rng.integers(0, 2, n)
    y_pred = np.where(rng.random(n) < error, 1 - y_true, y_true)
    return audit_classification(
        y_true=y_true, y_pred=y_pred, groups=groups, classes=["neg", "pos"], pos_label=1,
        attributes=[Attribute("tone"), Attribute("age")], intersections=[("tone", "age")],
        reference_groups={"tone": "lighter"}, n_boot=0, n_perm=200, seed=seed, correction=correction,
        min_group_size=1,
    )
