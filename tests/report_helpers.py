"""Small fixed inputs for the report tests: a results.json document with per-sample tables and images."""

from __future__ import annotations

import json
import re
import warnings
from functools import lru_cache
from pathlib import Path

import numpy as np

EVIL = "<script>alert(1)</script>"
GOLDEN = Path(__file__).parent / "golden"


@lru_cache(maxsize=None)
def _classification(group_names: tuple):
    from audit.report._examples import classification_example

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return classification_example(n=300, seed=3, n_boot=20, group_names=list(group_names))


def classification(group_names=("female", "male")):
    """(document, predictions, samples), round-tripped through JSON like a results.json on disk."""
    doc, preds, samples = _classification(tuple(group_names))
    return json.loads(json.dumps(doc, allow_nan=False)), preds.copy(), samples.copy()


def with_explanations(doc: dict, samples, *, seed: int = 0) -> dict:
    """The document with an ``explanations`` block: the classifier's errors taken apart by a drawn covariate
    (``lighting``), as ``audit run`` would with ``covariates: [lighting]``; JSON round-tripped."""
    from types import SimpleNamespace

    import pandas as pd

    from audit.core.explain import explain_gaps
    from audit.core.units import Outcome, unit_frame

    lighting = np.random.default_rng(seed).choice(["dim", "bright"], len(samples))
    units = unit_frame(outcomes={Outcome("error_rate", "error", "misclassified"): samples["label"] != samples["pred"]},
                       groups=samples, covariates=pd.DataFrame({"covariate:lighting": lighting}))
    result = SimpleNamespace(disparities=pd.DataFrame(doc["results"]["disparities"]),
                             groups=pd.DataFrame(doc["results"]["groups"]))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        block = explain_gaps(units, result, covariates=["lighting"], seed=seed, n_boot=50)
    return json.loads(json.dumps({**doc, "explanations": block}, allow_nan=False))


def write_images(root: Path, sample_ids) -> dict:
    """Tiny deterministic PNGs, one per sample: ``sample_id -> path``."""
    from PIL import Image

    root.mkdir(parents=True, exist_ok=True)
    paths = {}
    for i, sid in enumerate(sample_ids):
        a = np.zeros((24, 24, 3), np.uint8)
        a[..., 0] = (i * 37) % 256
        a[4:20, 4:20, 1] = 200
        p = root / f"{sid}.png"
        Image.fromarray(a).save(p)
        paths[sid] = str(p)
    return paths


EXTERNAL = re.compile(r"""(?:src|href|xlink:href|action|poster|data)\s*=\s*["']?\s*(?:https?:)?//""", re.I)
CSS_EXTERNAL = re.compile(r"""url\(\s*["']?\s*(?:https?:)?//|@import""", re.I)
