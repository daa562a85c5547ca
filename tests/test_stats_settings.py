"""Statistics settings from the data card and the command line: positive class, correction, interval, metrics."""

from __future__ import annotations

import json
from html import escape

import numpy as np
import pandas as pd
import pytest
from slice_helpers import make_split

from audit.core.registry import load_any_data_card
from audit.cli import main
from audit.errors import CardError
from audit.stats._names import display_name

# Gender Shades' binary table: TPR, FPR, PPV, 1 - PPV (FDR) and error rate of the positive class per subgroup
BINARY_COLUMNS = ["tpr", "fpr", "ppv", "fdr", "error_rate"]


def _split(tmp_path, card_extra=""):
    split = make_split(tmp_path, n=60, card_extra=card_extra)
    table = split["frame"]
    preds = tmp_path / "preds.csv"
    rng = np.random.default_rng(0)
    wrong = rng.random(len(table)) < 0.2
    flipped = np.where(table["species"] == "cat", "dog", "cat")
    pd.DataFrame({"sample_id": table["id"], "pred": np.where(wrong, flipped, table["species"])}).to_csv(preds,
                                                                                                      index=False)
    return split, preds


def _run(tmp_path, split, preds, *extra):
    out = tmp_path / "out"
    code = main(["run", "--data", str(split["card"]), "--predictions", str(preds), "--out", str(out),
                 "--n-boot", "20", "--n-perm", "20", "--no-data-audit", "-q", *extra])
    assert code == 0
    return json.loads((out / "results.json").read_text()), (out / "index.html").read_text(encoding="utf-8")


def test_card_sets_the_positive_class_and_the_report_shows_the_binary_table(tmp_path):
    split, preds = _split(tmp_path, card_extra="pos_label: dog\ncorrection: holm\ninterval: clopper-pearson\n")
    document, html = _run(tmp_path, split, preds)
    results = document["results"]
    assert results["config"]["pos_label"] == 1 and results["config"]["correction"] == "holm"
    assert {m["class"] for m in results["metrics"]} == {"", "dog"}  # no class-0 or macro rows
    assert {d["class"] for d in results["disparities"]} <= {"", "dog"}
    assert {m["interval"] for m in results["metrics"] if m["metric"] == "tpr"} == {"clopper-pearson"}
    table = html.split('id="group-tables"')[1].split("</section>")[0]
    # the table's rows, in order, named from the one display-name table
    rows = [display_name(m) for m in BINARY_COLUMNS]
    positions = [table.find(escape(name)) for name in rows]
    assert -1 not in positions and positions == sorted(positions), positions
    assert "accuracy" not in table.lower().replace("pixel accuracy", "")


def test_command_line_overrides_the_card(tmp_path):
    split, preds = _split(tmp_path, card_extra="pos_label: dog\ncorrection: holm\n")
    document, _ = _run(tmp_path, split, preds, "--pos-label", "cat", "--correction", "fdr_bh",
                       "--disparity-metrics", "error_rate,tpr", "--min-group-size", "7")
    config = document["results"]["config"]
    assert config["pos_label"] == 0 and config["correction"] == "fdr_bh" and config["min_group_size"] == 7
    assert {d["metric"] for d in document["results"]["disparities"]} == {"error_rate", "tpr"}


@pytest.mark.parametrize(("extra", "message"), [
    ("pos_label: bird\n", "field 'pos_label': expected one of the card's classes ['cat', 'dog'], found 'bird'"),
    ("correction: bonferroni\n", "field 'correction': expected one of ['fdr_bh', 'holm'], found 'bonferroni'"),
    ("interval: wald\n", "field 'interval': expected one of ['wilson', 'clopper-pearson', 'bootstrap'], found 'wald'"),
])
def test_bad_settings_in_the_card(tmp_path, extra, message):
    split = make_split(tmp_path, n=8, card_extra=extra)
    with pytest.raises(CardError, match=message.replace("[", r"\[").replace("]", r"\]").replace("(", r"\(")):
        load_any_data_card(split["card"])


def test_unknown_positive_class_on_the_command_line(tmp_path, capsys):
    split, preds = _split(tmp_path)
    code = main(["run", "--data", str(split["card"]), "--predictions", str(preds), "--out", str(tmp_path / "o"),
                 "--pos-label", "bird", "-q"])
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert err == f"error: --pos-label: expected one of the classes of {split['card']} ['cat', 'dog'], found 'bird'"
    assert not (tmp_path / "o" / "results.json").exists()
