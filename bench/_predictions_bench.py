"""Shared by bench/predictions_1m.py and bench/predictions_10m.py: data, the two commands, the measurement.

The data: a manifest (``id``, ``label``, Fitzpatrick ``skin`` 1-6, ``gender``, ``age``; optionally an image
``file`` column, images absent) and a predictions file listing the samples in another order (a shuffle),
written a million rows at a time, seeded, with a planted bias (darker skin types are misclassified more
often). The data card declares 3 attributes and 2 intersections (gender x skin type, gender x skin type x
age) and the reference group ``skin_type: lighter``.

Each command runs as a subprocess of a fresh wrapper process, which reports the command's whole-process
CPU time (user + system) and peak resident memory from ``resource.getrusage(RUSAGE_CHILDREN)``.
Run from the repository root with the package importable (``pip install -e .``, or ``PYTHONPATH=.``).

The reference is the script people write today: pandas reads both files, merges them on
the id, bins the Fitzpatrick types, and fairlearn's ``MetricFrame`` computes the point estimates per grouping
(each attribute and both intersections) of error rate, TPR, FPR, PPV and selection rate, plus ROC AUC when
there are scores. ``sklearn`` uses fairlearn's and scikit-learn's metric functions, as their documentation
does; ``numpy`` passes numpy one-liners instead (MetricFrame's own cost); ``groupby`` skips MetricFrame and
computes the rates from the sums of one pandas groupby per grouping (no AUC): the cost of a groupby.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np

CARD = """\
---
split:
  manifest: manifest.parquet
  id_column: id
{image}label_column: label
classes: [negative, positive]
attributes:
  skin_type: {{column: skin, scale: fitzpatrick}}
  gender: {{column: gender}}
  age: {{column: age, scale: ordinal, order: [young, middle, older]}}
intersections:
  - [gender, skin_type]
  - [gender, skin_type, age]
reference_groups:
  skin_type: lighter
---
# Benchmark split
"""

CHUNK = 1_000_000


def make_inputs(root: Path, rows: int, *, scores: bool, image_column: bool = False, seed: int = 0) -> dict:
    """Write ``card.md``, ``manifest.parquet`` and ``predictions.parquet`` into ``root`` (seeded)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(seed)
    label = rng.integers(0, 2, rows).astype(np.int8)
    skin = rng.integers(1, 7, rows).astype(np.int8)
    gender = rng.integers(0, 2, rows).astype(np.int8)
    age = rng.integers(0, 3, rows).astype(np.int8)
    if scores:
        score = np.clip(rng.normal(0.35 + 0.3 * label - 0.02 * skin, 0.2), 0, 1)
        pred = (score >= 0.5).astype(np.int8)
    else:
        correct = rng.random(rows) < 0.95 - 0.03 * skin  # planted: darker types misclassified more often
        pred = np.where(correct, label, 1 - label).astype(np.int8)
    classes = np.array(["negative", "positive"], dtype=object)
    names = {"gender": np.array(["female", "male"], dtype=object),
             "age": np.array(["young", "middle", "older"], dtype=object)}

    def ids(numbers):
        return pa.array(np.char.add("s", np.char.zfill(numbers.astype(str), 8)).astype(object), pa.string())

    manifest = None
    for start in range(0, rows, CHUNK):
        part = slice(start, min(rows, start + CHUNK))
        sid = ids(np.arange(part.start, part.stop))
        columns = {"id": sid}
        if image_column:
            columns["file"] = pa.array(np.char.add(np.asarray(sid.to_pylist(), dtype=str), ".png").astype(object))
        columns.update({"label": pa.array(classes[label[part]]).dictionary_encode(), "skin": pa.array(skin[part]),
                        "gender": pa.array(names["gender"][gender[part]]).dictionary_encode(),
                        "age": pa.array(names["age"][age[part]]).dictionary_encode()})
        table = pa.table(columns)
        manifest = manifest or pq.ParquetWriter(root / "manifest.parquet", table.schema)
        manifest.write_table(table)
    manifest.close()

    order = rng.permutation(rows)  # the predictions file lists the samples in another order
    writer = None
    for start in range(0, rows, CHUNK):
        rows_here = order[start:start + CHUNK]
        columns = {"sample_id": ids(rows_here)}
        if scores:
            columns["score_negative"] = pa.array(1 - score[rows_here])
            columns["score_positive"] = pa.array(score[rows_here])
        else:
            columns["pred"] = pa.array(classes[pred[rows_here]]).dictionary_encode()
        table = pa.table(columns)
        writer = writer or pq.ParquetWriter(root / "predictions.parquet", table.schema)
        writer.write_table(table)
    writer.close()
    card = root / "card.md"
    card.write_text(textwrap.dedent(CARD.format(image="  image_column: file\n" if image_column else "")))
    return {"card": card, "manifest": root / "manifest.parquet", "predictions": root / "predictions.parquet"}


REFERENCE = r'''
import json, sys, warnings
import numpy as np, pandas as pd
from fairlearn.metrics import MetricFrame

root, kind = sys.argv[1], sys.argv[2]
manifest = pd.read_parquet(f"{root}/manifest.parquet")
preds = pd.read_parquet(f"{root}/predictions.parquet")
df = manifest.merge(preds, left_on="id", right_on="sample_id", how="inner", validate="one_to_one")
del manifest, preds
y_true = (df["label"] == "positive").to_numpy().astype(int)
scored = "score_positive" in df.columns
score = df["score_positive"].to_numpy() if scored else None
y_pred = (score >= 0.5).astype(int) if scored else (df["pred"] == "positive").to_numpy().astype(int)
feats = {"skin_type": np.where(df["skin"].to_numpy() <= 3, "lighter", "darker"),
         "gender": df["gender"].to_numpy(), "age": df["age"].to_numpy()}
del df
if kind == "sklearn":
    from fairlearn.metrics import false_positive_rate, selection_rate, true_positive_rate
    from sklearn.metrics import accuracy_score, precision_score, roc_auc_score
    metrics = {"error_rate": lambda t, p: 1 - accuracy_score(t, p), "tpr": true_positive_rate,
               "fpr": false_positive_rate, "ppv": lambda t, p: precision_score(t, p, zero_division=np.nan),
               "selection_rate": selection_rate}
    auc = roc_auc_score
else:
    def mean(x):
        return float(x.mean()) if x.size else float("nan")
    metrics = {"error_rate": lambda t, p: mean(t != p), "tpr": lambda t, p: mean(p[t == 1] == 1),
               "fpr": lambda t, p: mean(p[t == 0] == 1), "ppv": lambda t, p: mean(t[p == 1] == 1),
               "selection_rate": lambda t, p: mean(p == 1)}
    def auc(t, s):
        from scipy.stats import rankdata
        r = rankdata(s); pos = t == 1; n1 = pos.sum(); n0 = t.size - n1
        return float((r[pos].sum() - n1 * (n1 + 1) / 2) / (n1 * n0)) if n1 and n0 else float("nan")
out = {}
groupings = (["skin_type"], ["gender"], ["age"], ["gender", "skin_type"], ["gender", "skin_type", "age"])
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    if kind == "groupby":  # no MetricFrame: the counts of one pandas groupby per grouping
        cells = pd.DataFrame({**feats, "n": 1, "wrong": y_true != y_pred, "pos": y_true == 1,
                              "tp": (y_true == 1) & (y_pred == 1), "neg": y_true == 0,
                              "fp": (y_true == 0) & (y_pred == 1), "sel": y_pred == 1})
        for names in groupings:
            c = cells.groupby(names, observed=True)[["n", "wrong", "pos", "tp", "neg", "fp", "sel"]].sum()
            frame = pd.DataFrame({"error_rate": c["wrong"] / c["n"], "tpr": c["tp"] / c["pos"],
                                  "fpr": c["fp"] / c["neg"], "ppv": c["tp"] / c["sel"],
                                  "selection_rate": c["sel"] / c["n"]})
            out[" x ".join(names)] = {" x ".join(map(str, k if isinstance(k, tuple) else (k,))): v
                                      for k, v in frame.to_dict("index").items()}
    for names in groupings if kind != "groupby" else ():
        sf = pd.DataFrame({k: feats[k] for k in names})
        frame = MetricFrame(metrics=metrics, y_true=y_true, y_pred=y_pred, sensitive_features=sf).by_group
        if scored:
            frame["roc_auc"] = MetricFrame(metrics=auc, y_true=y_true, y_pred=score, sensitive_features=sf).by_group
        out[" x ".join(names)] = {" x ".join(map(str, k if isinstance(k, tuple) else (k,))): v
                                  for k, v in frame.to_dict("index").items()}
print(json.dumps(out))
'''


def measure(command: list[str]) -> dict:
    """Run ``command`` in a fresh wrapper process: its CPU seconds (user + system), wall seconds, peak RSS (MiB)
    and standard output."""
    wrapper = ("import resource, subprocess, sys, json, time; t = time.perf_counter(); "
               "p = subprocess.run(sys.argv[1:]); "
               "u = resource.getrusage(resource.RUSAGE_CHILDREN); "
               "print(json.dumps({'rc': p.returncode, 'cpu': u.ru_utime + u.ru_stime, "
               "'wall': time.perf_counter() - t, 'rss': u.ru_maxrss / 1024}))")
    done = subprocess.run([sys.executable, "-c", wrapper, *command], stdout=subprocess.PIPE, text=True, check=True)
    *output, last = done.stdout.strip().splitlines()
    result = json.loads(last)
    if result["rc"]:
        raise SystemExit(f"failed (exit {result['rc']}): {' '.join(command)}")
    return {**result, "stdout": "\n".join(output)}


def audit_command(inputs: dict, out: Path, n_boot: int) -> list[str]:
    return [sys.executable, "-m", "audit", "run", "--predictions", str(inputs["predictions"]), "--data",
            str(inputs["card"]), "--out", str(out), "--n-boot", str(n_boot), "--n-perm", "1000", "-q"]


def reference_command(root: Path, kind: str) -> list[str]:
    return [sys.executable, "-c", REFERENCE, str(root), kind]


def check_same(out: Path, reference_json: dict) -> tuple[float, int]:
    """Largest |ours - reference| over the reference's groups and metrics, and how many were compared
    (``results.json`` rounds to 6 decimals)."""
    results = json.loads((out / "results.json").read_text())["results"]
    ours = {(row["grouping"], row["group"], row["metric"]): row["value"] for row in results["metrics"]
            if row["class"] in ("", "positive")}
    worst, compared = 0.0, 0
    for grouping, groups in reference_json.items():
        for group, values in groups.items():
            for metric, value in values.items():
                mine = ours.get((grouping.replace(" x ", " × "), group.replace(" x ", " × "), metric))
                if mine is None or value is None or (isinstance(value, float) and np.isnan(value)):
                    continue
                worst, compared = max(worst, abs(mine - value)), compared + 1
    return worst, compared
