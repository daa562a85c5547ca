"""Benchmark: peak resident memory of auditing a 1M-sample predictions file.

Writes a data card, a 1M-row manifest (labels and attributes; no images are
needed for predictions made elsewhere) and a Parquet predictions file with
class scores, runs ``audit run --predictions`` in a fresh process, and prints
its peak RSS and wall time. Target: within 2 GB.

    python bench/memory_predictions.py [--rows 1000000] [--n-boot 1000]
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import numpy as np
import pandas as pd

CARD = """\
---
split:
  manifest: manifest.parquet
  id_column: id
  image_column: file
label_column: label
classes: [negative, positive]
attributes:
  skin_type: {column: skin, scale: fitzpatrick}
  gender: {column: gender}
  age: {column: age, scale: ordinal, order: [young, middle, older]}
intersections:
  - [gender, skin_type]
  - [gender, skin_type, age]
reference_groups:
  skin_type: lighter
---
# Benchmark split
"""


def make_inputs(root: Path, rows: int, seed: int = 0) -> tuple[Path, Path]:
    rng = np.random.default_rng(seed)
    ids = np.char.add("s", np.arange(rows).astype(str))
    label = rng.integers(0, 2, rows)
    skin = rng.integers(1, 7, rows)
    manifest = pd.DataFrame({
        "id": ids, "file": np.char.add(ids, ".png"), "label": np.where(label == 1, "positive", "negative"),
        "skin": skin, "gender": rng.choice(["female", "male"], rows), "age": rng.choice(["young", "middle", "older"], rows),
    })
    manifest.to_parquet(root / "manifest.parquet", index=False)
    score = np.clip(rng.normal(0.35 + 0.3 * label - 0.02 * skin, 0.2), 0, 1)
    pd.DataFrame({"sample_id": ids, "score_negative": 1 - score, "score_positive": score}).to_parquet(
        root / "predictions.parquet", index=False)
    card = root / "card.md"
    card.write_text(textwrap.dedent(CARD))
    return card, root / "predictions.parquet"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--n-boot", type=int, default=1000)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        card, predictions = make_inputs(root, args.rows)
        size_mb = predictions.stat().st_size / 2**20
        before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "audit", "run", "--predictions", str(predictions), "--data", str(card),
                        "--out", str(root / "out"), "--n-boot", str(args.n_boot), "-q"], check=True)
        elapsed = time.perf_counter() - start
        peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024  # Linux reports KiB
        results_mb = (root / "out" / "results.json").stat().st_size / 2**20
    print(f"rows={args.rows:,}  resamples={args.n_boot}  predictions file={size_mb:.0f} MiB  results.json={results_mb:.1f} MiB")
    print()
    print("| what | value | target |")
    print("|---|---:|---:|")
    print(f"| peak resident memory of `audit run --predictions` | {peak_mb:,.0f} MiB | ≤ 2,048 MiB |")
    print(f"| wall time | {elapsed:.1f} s | |")
    assert before <= peak_mb * 1024


if __name__ == "__main__":
    main()
