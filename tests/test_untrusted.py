"""Untrusted files: a malicious checkpoint runs nothing; manifest paths stay inside the image root."""

from __future__ import annotations

import os

import pandas as pd
import pytest
import torch

from audit.cli import main
from slice_helpers import make_model, make_split

FAST = ["--n-boot", "10", "--n-perm", "10"]


class _Payload:
    """Unpickling this calls ``open(marker, "w")``: an attacker's code running at load time."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_malicious_pickle_executes_nothing(tmp_path, capsys):
    split = make_split(tmp_path)
    marker = tmp_path / "pwned"
    evil = tmp_path / "models" / "evil.pth"
    evil.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"weight": torch.zeros(1), "payload": _Payload(marker)}, evil)
    card = make_model(tmp_path, name="evil", weights="evil.pth")
    out = tmp_path / "out"
    code = main(["run", "--model", str(card), "--data", str(split["card"]), "--out", str(out), *FAST])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and not marker.exists()
    assert err == [
        f"error: {evil}: refused to load a checkpoint that contains objects other than tensors "
        "(torch.load weights_only=True); set 'trust_checkpoint: true' in the model card only if you trust "
        "where this file came from"
    ]
    assert not (out / "results.json").exists() and not (out / "index.html").exists()


def _point_row_at(split, path_text):
    manifest = pd.read_csv(split["manifest"])
    manifest.loc[2, "file"] = path_text
    manifest.to_csv(split["manifest"], index=False)


@pytest.mark.parametrize("kind", ["dotdot", "absolute", "symlink"])
def test_manifest_paths_cannot_escape_the_image_root(tmp_path, capsys, kind):
    split = make_split(tmp_path)
    model = make_model(tmp_path)
    outside = tmp_path / "secret.png"
    (split["images"] / "s002.png").rename(outside)  # a real image, outside the root (tmp_path/data)
    root = tmp_path / "data"
    if kind == "dotdot":
        text = "../secret.png"
    elif kind == "absolute":
        text = str(outside)
    else:
        os.symlink(outside, split["images"] / "link.png")
        text = "images/link.png"
    _point_row_at(split, text)
    out = tmp_path / "out"
    args = ["run", "--model", str(model), "--data", str(split["card"]), "--out", str(out), *FAST]
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        f"error: {split['manifest']}: row 3 (id 's002'): field 'file': image path {text!r} is outside the image "
        f"root {root}; set 'allow_paths_outside_root: true' in the data card to allow it"
    ]
    assert not (out / "results.json").exists()
    # the card may allow it explicitly
    card_text = split["card"].read_text().replace("min_group_size: 10\n", "min_group_size: 10\nallow_paths_outside_root: true\n")
    split["card"].write_text(card_text)
    assert main(args) == 0
