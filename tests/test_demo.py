"""``audit demo``: offline, fast, deterministic, and it finds the planted disparity."""

from __future__ import annotations

import json
import time

import numpy as np

from audit.cli import main


def test_demo_finds_the_planted_skin_type_disparity(tmp_path, capsys):
    out = tmp_path / "demo"
    start = time.perf_counter()
    assert main(["demo", "--out", str(out), "--n-boot", "100", "--n-perm", "100"]) == 0
    elapsed = time.perf_counter() - start
    assert elapsed < 90, elapsed
    document = json.loads((out / "results.json").read_text())
    error = {
        (r["grouping"], r["group"]): r
        for r in document["results"]["metrics"]
        if r["metric"] == "error_rate" and r["class"] == ""
    }
    lighter, darker = error[("skin_type", "lighter")], error[("skin_type", "darker")]
    assert darker["value"] > lighter["value"] + 0.1
    assert darker["lower"] > lighter["upper"]  # intervals do not overlap
    to_ref = [
        d for d in document["results"]["disparities"]
        if d["grouping"] == "skin_type" and d["metric"] == "error_rate" and d["kind"] == "to_reference"
    ]
    assert to_ref and to_ref[0]["significant"]
    assert (out / "index.html").is_file()
    assert (out / "models" / "demo.md").is_file() and (out / "data_cards" / "demo.md").is_file()
    capsys.readouterr()

    # A second run reuses the generated files and the prediction cache.
    assert main(["demo", "--out", str(out), "--n-boot", "100", "--n-perm", "100"]) == 0
    log = capsys.readouterr().out
    assert "demo: reusing generated split and model" in log
    assert "predictions: reusing cache" in log
    again = json.loads((out / "results.json").read_text())
    assert again["results"]["metrics"] == document["results"]["metrics"]


def test_synthetic_images_are_seeded():
    from audit.demo import synth

    def draw(seed):
        rng = np.random.default_rng(seed)
        attrs = synth.sample_attributes(20, rng)
        return attrs, synth.render(attrs, rng)

    (a1, i1), (a2, i2), (_, i3) = draw(3), draw(3), draw(4)
    assert a1.equals(a2) and np.array_equal(i1, i2)
    assert not np.array_equal(i1, i3)
    assert i1.shape == (20, 32, 32, 3) and i1.dtype == np.uint8


def test_training_is_deterministic():
    import torch

    from audit.demo import _train, synth

    rng = np.random.default_rng(0)
    attrs = synth.sample_attributes(128, rng)
    images = synth.render(attrs, rng)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        first, _ = _train(images, attrs["label"].to_numpy(), seed=0)
        second, _ = _train(images, attrs["label"].to_numpy(), seed=0)
    finally:
        torch.set_num_threads(threads)
    for (name, a), (_, b) in zip(first.state_dict().items(), second.state_dict().items()):
        assert torch.equal(a, b), name
