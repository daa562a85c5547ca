"""Commands that need no model import no torch: `audit --help`, `audit report` and `audit compare`.

Each runs in a fresh interpreter, which then lists the heavy modules it loaded (``sys.modules``).
"""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pandas as pd

from slice_helpers import make_split

from audit.cli import main

HEAVY = ("torch", "torchvision", "matplotlib")


def _loaded(code: str) -> dict:
    """Run ``code`` in a fresh interpreter; it returns the heavy modules it imported and its exit code."""
    probe = (f"import sys\n{code}\n"
             f"print('@@' + __import__('json').dumps({{'rc': rc, 'heavy': [m for m in {HEAVY!r} if m in sys.modules]}}))")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.rsplit("@@", 1)[1])


def _classification_audit(tmp_path, name: str):
    """A finished classification audit (`audit run --predictions`), with a data card the report reads again."""
    split = make_split(tmp_path / name, n=60)
    table = split["frame"]
    preds = tmp_path / f"{name}.csv"
    wrong = np.random.default_rng(len(name)).random(len(table)) < 0.2
    flipped = np.where(table["species"] == "cat", "dog", "cat")
    pd.DataFrame({"sample_id": table["id"], "pred": np.where(wrong, flipped, table["species"])}).to_csv(preds,
                                                                                                      index=False)
    out = tmp_path / f"{name}-out"
    assert main(["run", "--data", str(split["card"]), "--predictions", str(preds), "--out", str(out),
                 "--n-boot", "20", "--n-perm", "20", "-q"]) == 0
    return out


def test_help_imports_no_torch_and_no_pandas():
    loaded = _loaded("from audit.cli import build_parser\nbuild_parser().format_help()\nrc = 0\n"
                     "assert 'pandas' not in sys.modules, 'pandas'")
    assert loaded == {"rc": 0, "heavy": []}


def test_run_with_predictions_imports_no_matplotlib(tmp_path):
    """The dataset section's chart is inline SVG: an audit of predictions made elsewhere loads no matplotlib
    (only ``audit data-card`` does, for the PNG in the Markdown card)."""
    split = make_split(tmp_path / "s", n=60)
    preds = tmp_path / "p.csv"
    pd.DataFrame({"sample_id": split["frame"]["id"], "pred": split["frame"]["species"]}).to_csv(preds, index=False)
    out = tmp_path / "out"
    run = _loaded(f"from audit.cli import main\nrc = main(['run', '--data', {str(split['card'])!r}, '--predictions', "
                  f"{str(preds)!r}, '--out', {str(out)!r}, '--n-boot', '20', '--n-perm', '20', '-q'])")
    assert run["rc"] == 0 and "matplotlib" not in run["heavy"]
    assert '<figure class="share-chart"><svg' in (out / "index.html").read_text(encoding="utf-8")  # the control


def test_report_and_compare_import_no_torch(tmp_path):
    baseline = _classification_audit(tmp_path, "a")
    candidate = _classification_audit(tmp_path, "b")
    page = tmp_path / "page.html"
    report = _loaded(f"from audit.cli import main\nrc = main(['report', {str(baseline)!r}, '--output', {str(page)!r}, '-q'])")
    assert report == {"rc": 0, "heavy": []}
    assert "Calibration and thresholds" in page.read_text(encoding="utf-8")  # the task's own sections came along
    compare = _loaded(f"from audit.cli import main\nrc = main(['compare', {str(baseline)!r}, {str(candidate)!r}])")
    assert compare["rc"] in (0, 1) and compare["heavy"] == []


def test_the_help_lists_every_backbone_the_trainer_has():
    from audit.train import BACKBONE_NETWORKS
    from audit.train.backbone import NETWORKS

    assert BACKBONE_NETWORKS == NETWORKS
