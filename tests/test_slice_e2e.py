"""End-to-end: the ``audit`` CLI on tiny generated splits, the cache, outputs and bad input."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import jsonschema
import numpy as np
import pandas as pd
import pytest
import torch

import audit.core.inference
from audit.cli import main
from audit.pipeline import load_results_schema
from slice_helpers import make_model, make_split

FAST = ["--n-boot", "20", "--n-perm", "20", "--batch-size", "16"]
OUTPUTS = ("results.json", "index.html")


@pytest.fixture()
def project(tmp_path):
    split = make_split(tmp_path)
    model = make_model(tmp_path)
    return {**split, "model": model, "out": tmp_path / "reports" / "tiny"}


def run_cli(project, *extra, out=None):
    return main(["run", "--model", str(project["model"]), "--data", str(project["card"]),
                 "--out", str(out or project["out"]), *FAST, *extra])


def test_run_writes_valid_outputs(project, capsys):
    assert run_cli(project) == 0
    out = project["out"]
    document = json.loads((out / "results.json").read_text())
    jsonschema.validate(document, load_results_schema())
    prov = document["provenance"]
    assert prov["model"]["name"] == "tiny" and len(prov["model"]["sha256"]) == 64
    assert prov["model"]["weights_sha256"] and prov["data"]["n_samples"] == 48
    assert prov["predictions"]["source"] == "model"
    groupings = {row["grouping"] for row in document["results"]["metrics"]}
    assert {"overall", "skin_type", "gender", "age", "gender × skin_type"} <= groupings
    html = (out / "index.html").read_text()
    assert "<table" in html and "gender × skin_type" in html and prov["model"]["sha256"] in html
    assert (out / "predictions.parquet").is_file() and (out / "predictions.json").is_file()
    assert not [p for p in out.iterdir() if p.name.endswith(".tmp")]
    captured = capsys.readouterr()
    assert all(line.startswith("warning: ") for line in captured.err.splitlines())
    assert "predictions: running tiny" in captured.out


def test_second_run_reuses_the_cache(project, capsys, monkeypatch):
    assert run_cli(project) == 0
    first = json.loads((project["out"] / "results.json").read_text())
    capsys.readouterr()

    def must_not_run(*args, **kwargs):
        raise AssertionError("the model ran although the cache matched")

    monkeypatch.setattr(audit.core.inference, "run_inference", must_not_run)
    assert run_cli(project) == 0
    assert "predictions: reusing cache" in capsys.readouterr().out
    second = json.loads((project["out"] / "results.json").read_text())
    # results.json does not depend on cache state: the provenance names the model run that made the predictions
    assert second["provenance"]["predictions"] == first["provenance"]["predictions"] == {"source": "model",
                                                                                          "device": "cpu"}
    assert second["results"] == first["results"]

    # The hashes do not depend on the working directory or on how paths are spelled.
    monkeypatch.chdir(project["root"])
    assert main(["run", "--model", "models/tiny.md", "--data", "data_cards/tiny.md", "--out", "reports/tiny", *FAST]) == 0
    assert "predictions: reusing cache" in capsys.readouterr().out

    # Changing the weights changes the model hash: the model runs again.
    monkeypatch.undo()
    calls = []
    real = audit.core.inference.run_inference
    monkeypatch.setattr(audit.core.inference, "run_inference", lambda *a, **k: calls.append(1) or real(*a, **k))
    make_model(project["root"], seed=1)
    assert run_cli(project) == 0
    assert calls == [1]


def test_results_match_engine_called_directly(project):
    from audit.stats import Attribute, audit_classification

    assert run_cli(project) == 0
    document = json.loads((project["out"] / "results.json").read_text())
    preds = pd.read_parquet(project["out"] / "predictions.parquet")
    frame = project["frame"]
    assert list(preds["sample_id"]) == list(frame["id"])
    direct = audit_classification(
        y_true=frame["species"].map({"cat": 0, "dog": 1}).to_numpy(),
        y_pred=preds["pred"].to_numpy(),
        groups=frame.rename(columns={"skin": "skin_type"})[["skin_type", "gender", "age"]],
        attributes=[
            Attribute("skin_type", scale="fitzpatrick"),
            Attribute("gender"),
            Attribute("age", scale="ordinal", order=["young", "old"]),
        ],
        intersections=[("gender", "skin_type")],
        classes=["cat", "dog"],
        scores=preds[["score_cat", "score_dog"]].to_numpy(),
        reference_groups={"skin_type": "lighter"},
        n_boot=20,
        n_perm=20,
        seed=0,
        min_group_size=10,
    ).to_dict()
    assert document["results"]["groups"] == direct["groups"]
    assert document["results"]["metrics"] == direct["metrics"]
    assert document["results"]["disparities"] == direct["disparities"]
    # and the scores really are softmax outputs of the model
    assert np.allclose(preds[["score_cat", "score_dog"]].sum(axis=1), 1.0)


def test_console_script_subprocess(project, tmp_path):
    exe = shutil.which("audit")
    command = [exe] if exe else [sys.executable, "-m", "audit.cli"]
    here = Path(__file__).resolve()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(here.parent), str(here.parents[1])])}  # tiny_model
    done = subprocess.run(
        [*command, "run", "--model", str(project["model"]), "--data", str(project["card"]),
         "--out", str(tmp_path / "sub"), *FAST],
        capture_output=True, text=True, env=env, timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "sub" / "results.json").is_file()
    bad = subprocess.run(
        [*command, "run", "--model", str(project["model"]), "--data", str(tmp_path / "nope.md"),
         "--out", str(tmp_path / "sub2")],
        capture_output=True, text=True, env=env, timeout=300,
    )
    assert bad.returncode == 2
    assert bad.stderr == f"error: {tmp_path / 'nope.md'}: card file not found\n"


def test_predictions_file_replaces_the_model(project, tmp_path, monkeypatch):
    monkeypatch.setattr(audit.core.inference, "run_inference", lambda *a, **k: pytest.fail("model ran"))
    frame = project["frame"]
    preds = pd.DataFrame({"sample_id": frame["id"][::-1], "predicted_label": frame["species"][::-1]})
    preds.iloc[0, 1] = None  # an abstention
    path = tmp_path / "preds.csv"
    preds.to_csv(path, index=False)
    assert main(["run", "--data", str(project["card"]), "--predictions", str(path),
                 "--out", str(project["out"]), *FAST]) == 0
    document = json.loads((project["out"] / "results.json").read_text())
    assert document["provenance"]["predictions"]["source"] == "file"
    rows = {(r["grouping"], r["metric"]): r for r in document["results"]["metrics"] if r["class"] == ""}
    assert rows[("overall", "accuracy")]["value"] == 1.0
    assert rows[("overall", "abstention_rate")]["value"] == pytest.approx(1 / 48)

    scores = pd.DataFrame({"sample_id": frame["id"], "score_cat": 0.3, "score_dog": 0.7})
    scores.to_parquet(tmp_path / "scores.parquet")
    assert main(["run", "--model", str(project["model"]), "--data", str(project["card"]),
                 "--predictions", str(tmp_path / "scores.parquet"), "--out", str(tmp_path / "o2"), *FAST]) == 0
    document = json.loads((tmp_path / "o2" / "results.json").read_text())
    rows = {(r["grouping"], r["metric"]): r for r in document["results"]["metrics"] if r["class"] == ""}
    assert rows[("overall", "accuracy")]["value"] == pytest.approx((frame["species"] == "dog").mean())


# --------------------------------------------------------------------------- bad input


def _manifest_rows(project):
    return pd.read_csv(project["manifest"], dtype=str)


def case_missing_image(project):
    os.remove(project["images"] / "s006.png")
    return f"{project['manifest']}: row 7 (id 's006'): image file not found: {project['images'] / 's006.png'}"


def case_unreadable_image(project):
    (project["images"] / "s003.png").write_bytes(b"this is not a png")
    return (f"{project['manifest']}: row 4 (id 's003'): cannot read image {project['images'] / 's003.png'}: "
            "not a recognised image format")


def case_unknown_label(project):
    rows = _manifest_rows(project)
    rows.loc[4, "species"] = "cow"
    rows.to_csv(project["manifest"], index=False)
    return f"{project['manifest']}: row 5 (id 's004'): field 'species': unknown label 'cow'; expected one of: cat, dog"


def case_missing_column(project):
    _manifest_rows(project).drop(columns=["gender"]).to_csv(project["manifest"], index=False)
    return (f"{project['manifest']}: missing column 'gender' declared by {project['card']} field "
            "'attributes.gender.column'; found columns: id, file, species, skin, age")


def case_duplicate_id(project):
    rows = _manifest_rows(project)
    rows.loc[9, "id"] = "s002"
    rows.to_csv(project["manifest"], index=False)
    return f"{project['manifest']}: row 10 (id 's002'): duplicate sample id (first seen in row 3)"


def case_unknown_architecture(project):
    card = project["model"]
    card.write_text(card.read_text().replace('entry_point: "tiny_model:tiny_cnn"', "architecture: resnet999"))
    return (f"{card}: field 'model.architecture': expected a torchvision model name "
            "(see torchvision.models.list_models()), found 'resnet999'")


def case_predictions_ids(project):
    frame = project["frame"]
    preds = pd.DataFrame({"sample_id": list(frame["id"][2:]) + ["x1", "x2"], "pred": "cat"})
    path = project["root"] / "preds.csv"
    preds.to_csv(path, index=False)
    project["extra"] = ["--predictions", str(path)]
    return f"{path}: sample ids do not match the split: 2 split ids missing ('s000', 's001'); 2 ids not in the split ('x1', 'x2')"


def case_checkpoint_not_tensors(project):
    weights = project["model"].parent / "tiny.pth"
    state = torch.load(weights, weights_only=True)
    torch.save({"state_dict": state, "optimizer": Unpicklable()}, weights)
    return (f"{weights}: refused to load a checkpoint that contains objects other than tensors "
            "(torch.load weights_only=True); set 'trust_checkpoint: true' in the model card only if you trust "
            "where this file came from")


class Unpicklable:
    """An arbitrary class: weights_only loading must refuse it."""


@pytest.mark.parametrize(
    "case",
    [case_missing_image, case_unreadable_image, case_unknown_label, case_missing_column, case_duplicate_id,
     case_unknown_architecture, case_predictions_ids, case_checkpoint_not_tensors],
    ids=lambda f: f.__name__[5:],
)
def test_bad_input_exits_2_with_one_line(project, capsys, case):
    expected = case(project)
    capsys.readouterr()
    code = run_cli(project, *project.get("extra", []))
    captured = capsys.readouterr()
    assert code == 2
    assert captured.err.splitlines() == [f"error: {expected}"]
    assert captured.err.endswith("\n") and captured.err.count("\n") == 1
    for name in OUTPUTS:
        assert not (project["out"] / name).exists()
    if project["out"].exists():
        assert not [p for p in project["out"].iterdir() if p.name.endswith(".tmp")]


def test_failed_rerun_keeps_previous_outputs_intact(project, capsys):
    assert run_cli(project) == 0
    before = (project["out"] / "results.json").read_bytes()
    case_unknown_label(project)
    assert run_cli(project) == 2
    assert (project["out"] / "results.json").read_bytes() == before


def test_trusted_checkpoint_may_hold_other_objects(project):
    from audit.core.card_loaders import load_model_card
    from audit.core.models import build_model

    case_checkpoint_not_tensors(project)
    card = project["model"]
    card.write_text(card.read_text().replace("trust_checkpoint: false", "trust_checkpoint: true"))
    model = build_model(load_model_card(card))
    assert isinstance(model, torch.nn.Module)
