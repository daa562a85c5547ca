"""The task registry: the three built-in tasks are found by name, and a toy fourth task runs through `audit run`."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from audit.core.registry import Task, get_task, list_tasks, task_name
from audit.errors import AuditError

TESTS = Path(__file__).resolve().parent
REPO = TESTS.parent


def test_builtin_tasks_are_registered_and_found_by_card_task():
    assert {"classification", "detection", "semantic_segmentation"} <= set(list_tasks())
    assert get_task("instance_segmentation") is get_task("detection")
    assert all(isinstance(get_task(name), Task) for name in list_tasks())
    with pytest.raises(AuditError, match="found 'panoptic'"):
        get_task("panoptic")


@pytest.mark.parametrize("card, task", [("benchmark_classification_test", "classification"),
                                        ("benchmark_detection_test", "detection"),
                                        ("facet_instance_segmentation", "detection"),
                                        ("benchmark_segmentation_test", "semantic_segmentation")])
def test_a_data_card_names_its_task(card, task):
    assert task_name(REPO / "data_cards" / f"{card}.md") == task


def test_a_toy_fourth_task_runs_through_audit_run(tmp_path):
    rng = np.random.default_rng(0)
    n = 200
    group = np.where(np.arange(n) < 120, "a", "b")
    label = rng.integers(0, 2, n)
    pred = np.where(rng.random(n) < np.where(group == "a", 0.1, 0.3), 1 - label, label)
    ids = [f"s{i}" for i in range(n)]
    pd.DataFrame({"sample_id": ids, "label": label, "group": group}).to_csv(tmp_path / "truth.csv", index=False)
    pd.DataFrame({"sample_id": ids, "pred": pred}).to_csv(tmp_path / "preds.csv", index=False)
    (tmp_path / "toy.md").write_text("---\ntask: toy\ntable: truth.csv\nmin_group_size: 10\n---\n# A toy split\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")]),
           "AUDIT_TASK_MODULES": "toy_task", "SOURCE_DATE_EPOCH": "1700000000", "OMP_NUM_THREADS": "1"}
    out = tmp_path / "out"
    run = subprocess.run([sys.executable, "-m", "audit", "run", "--data", str(tmp_path / "toy.md"), "--predictions",
                          str(tmp_path / "preds.csv"), "--out", str(out), "--no-data-audit", "--n-boot", "50",
                          "-q"], env=env, capture_output=True, text=True, cwd=tmp_path)
    assert run.returncode == 0, run.stderr[-3000:]
    document = json.loads((out / "results.json").read_text())
    assert document["provenance"]["data"]["name"] == "toy"
    assert document["provenance"]["data"]["n_samples"] == n
    assert (out / "index.html").is_file()
    # the same card without the toy module registered: one line naming the known tasks... or the card's fields
    env.pop("AUDIT_TASK_MODULES")
    unknown = subprocess.run([sys.executable, "-m", "audit", "run", "--data", str(tmp_path / "toy.md"),
                              "--predictions", str(tmp_path / "preds.csv"), "--out", str(tmp_path / "out2")],
                             env=env, capture_output=True, text=True, cwd=tmp_path)
    assert unknown.returncode == 2 and unknown.stderr.startswith("error:"), unknown.stderr[-2000:]
