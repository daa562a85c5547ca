"""``audit demo`` and the planted-bias benchmark.

The demo is run twice per session (module fixtures): with both knobs on it
must recover the planted disparity in all three tasks and in their panoptic
merge, with the right sign and significant after Benjamini-Hochberg; with every
knob off nothing may be flagged, in any of the four audits, on any attribute
(skin tone, age group, lighting and their intersections). Both runs are
deterministic from the seed, so these are fixed checks of one draw each, not
flaky statistics.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from audit.benchmark import Knobs, write_benchmark
from audit.cli import main

REPO = Path(__file__).resolve().parents[1]
TASKS = ("classification", "detection", "segmentation")
# The planted disparity as each task measures it: (metric, True when higher is worse).
PLANTED = {"classification": ("error_rate", True), "detection": ("ar", False),
           "segmentation": ("person_iou", False)}
PANOPTIC_PLANTED = "person_sq"  # the merge inherits the segmenter's looser person masks (higher is better)


def _run_demo(out: Path, knobs: str) -> dict:
    # No wall-time assertion here: speed lives in bench/demo.py, and a busy CI machine must not fail the suite.
    assert main(["demo", "--out", str(out), "--knobs", knobs, "--n-boot", "200", "--n-perm", "200", "-q"]) == 0
    return {t: json.loads((out / t / "results.json").read_text())["results"] for t in (*TASKS, "panoptic")}


@pytest.fixture(scope="module")
def demo_on(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo") / "on"
    return out, _run_demo(out, "on")


@pytest.fixture(scope="module")
def demo_off(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo") / "off"
    return out, _run_demo(out, "off")


def _value(results: dict, metric: str, grouping: str = "overall", group: str = "all") -> dict:
    rows = [r for r in results["metrics"]
            if r["metric"] == metric and r["grouping"] == grouping and r["group"] == group and not r["class"]]
    assert len(rows) == 1, (metric, grouping, group)
    return rows[0]


def test_demo_models_are_good_enough_and_small(demo_on):
    out, results = demo_on
    assert _value(results["classification"], "accuracy")["value"] >= 0.85
    assert _value(results["detection"], "recall@0.50")["value"] >= 0.6  # AR50 of people
    assert _value(results["segmentation"], "miou_pooled")["value"] >= 0.6
    weights = sorted((out / "models").glob("benchmark_*.pth"))
    assert len(weights) == 3
    assert sum(p.stat().st_size for p in weights) <= 10 * 2**20
    html = (out / "index.html").read_text(encoding="utf-8")
    for title in ("Classification", "Detection", "Semantic segmentation", "Panoptic segmentation"):
        assert title in html


@pytest.mark.parametrize("task", TASKS)
def test_knobs_on_recover_the_planted_disparity(demo_on, task):
    _, results = demo_on
    metric, higher_is_worse = PLANTED[task]
    lighter = _value(results[task], metric, "monk", "lighter")["value"]
    darker = _value(results[task], metric, "monk", "darker")["value"]
    assert (darker > lighter) if higher_is_worse else (darker < lighter), (lighter, darker)
    to_reference = [d for d in results[task]["disparities"]
                    if d["grouping"] == "monk" and d["metric"] == metric and d["kind"] == "to_reference"]
    assert len(to_reference) == 1 and to_reference[0]["group"] == "darker"
    assert to_reference[0]["significant"], to_reference[0]
    assert results[task]["significance"]["correction"] == "fdr_bh"


def test_knobs_on_explain_the_classifier_gap_in_two_parts(demo_on):
    """Both knobs: lighting explains part of the tone gap (acquisition) and part remains within lighting
    (representation). The same demo run as above: no extra training. Each knob alone: tests/test_explain_benchmark.py
    (the classifier of audit demo --knobs representation / acquisition) and bench/explain.py (every task)."""
    out, _ = demo_on
    for task in TASKS:
        block = json.loads((out / task / "results.json").read_text())["explanations"]
        assert block["covariates"] == ["lighting"], task
        assert [c["attribute"] for c in block["comparisons"]] == ["monk"], task  # lighting is the covariate
    block = json.loads((out / "classification" / "results.json").read_text())["explanations"]
    gap = block["comparisons"][0]["gap"]
    assert (gap["group"], gap["reference"]) == ("darker", "lighter")
    assert gap["raw_gap_lower"] > 0 and gap["mh_gap_lower"] > 0 and gap["regression_gap_lower"] > 0
    assert gap["mh_gap"] < gap["raw_gap"] and 0 < gap["share_lower"] and gap["share_upper"] < 1
    html = (out / "index.html").read_text(encoding="utf-8")
    section = html.split('<section id="explain">')[1].split("</section>")[0]
    assert "After accounting for lighting, samples in monk group &#39;darker&#39; are still misclassified" in section


def test_panoptic_merge_recovers_the_planted_disparity(demo_on):
    # no fourth model: the detector's boxes and the segmenter's map merged (audit.demo.panoptic_model)
    out, results = demo_on
    panoptic = results["panoptic"]
    assert _value(panoptic, "pq")["value"] >= 0.5 and _value(panoptic, "person_recall")["value"] >= 0.6
    lighter = _value(panoptic, PANOPTIC_PLANTED, "monk", "lighter")["value"]
    darker = _value(panoptic, PANOPTIC_PLANTED, "monk", "darker")["value"]
    assert darker < lighter, (lighter, darker)
    to_reference = [d for d in panoptic["disparities"]
                    if d["grouping"] == "monk" and d["metric"] == PANOPTIC_PLANTED and d["kind"] == "to_reference"]
    assert len(to_reference) == 1 and to_reference[0]["group"] == "darker" and to_reference[0]["significant"]
    card = (out / "models" / "benchmark_panoptic.md").read_text(encoding="utf-8")
    assert "merge: {score_threshold: 0.5" in card and "benchmark_detector.md" in card
    assert (out / "panoptic" / "people.parquet").is_file()


def test_knobs_off_flag_nothing(demo_off):
    _, results = demo_off
    for task in (*TASKS, "panoptic"):
        flagged = [(d["grouping"], d["metric"], d["group"], d["other"]) for d in results[task]["disparities"]
                   if d["significant"]]
        assert flagged == [], (task, flagged)
        tested = [d for d in results[task]["disparities"] if d["p_value"] is not None]
        assert len(tested) > 10, task  # there was something to flag
    # and the models are still good: knobs off is not "everything is equally bad"
    assert _value(results["classification"], "accuracy")["value"] >= 0.85


def test_second_run_reuses_benchmark_models_and_predictions(demo_on, capsys):
    out, results = demo_on
    capsys.readouterr()
    assert main(["demo", "--out", str(out), "--n-boot", "200", "--n-perm", "200"]) == 0
    log = capsys.readouterr().out
    assert "demo: reusing the trained models" in log
    assert log.count("predictions: reusing cache") == 4  # the panoptic merge's too
    again = json.loads((out / "classification" / "results.json").read_text())["results"]
    assert again["metrics"] == results["classification"]["metrics"]


def test_checked_in_benchmark_cards_are_the_demos(demo_on, tmp_path):
    from audit.benchmark import BenchmarkPaths
    from audit.benchmark.cards import write_cards

    out, _ = demo_on
    stamp = json.loads((out / "benchmark" / "benchmark.json").read_text())
    write_cards(BenchmarkPaths(out / "benchmark"), stamp, card_dir=tmp_path, root="../reports/demo/benchmark")
    for card in sorted(tmp_path.glob("benchmark_*.md")):
        assert (REPO / "data_cards" / card.name).read_text(encoding="utf-8") == card.read_text(encoding="utf-8"), \
            f"data_cards/{card.name} differs from what the demo writes; regenerate it (README: Benchmark)"
    assert len(list(tmp_path.glob("benchmark_*.md"))) == 6


# -- the generator alone ------------------------------------------------------------------------------------------

def test_benchmark_is_seeded_and_knobs_do_what_they_say(tmp_path):
    small = {"n_portraits": (400, 200), "n_scenes": (60, 40)}
    a = write_benchmark(tmp_path / "a", seed=3, **small)
    b = write_benchmark(tmp_path / "b", seed=3, **small)
    off = write_benchmark(tmp_path / "off", seed=3, knobs=Knobs.off(), **small)
    for rel in ("portraits/train/manifest.csv", "scenes/test/instances.json", "scenes/train/people.csv",
                "portraits/test/images/p00007.png", "scenes/train/masks/s00005.png"):
        assert (a.root / rel).read_bytes() == (b.root / rel).read_bytes(), rel
    # a second call reuses the draw and rewrites the cards unchanged (with the drawn split's numbers)
    card = a.card("detection", "test").read_text(encoding="utf-8")
    assert "- 40 RGB scenes of 64×64 pixels" in card
    assert write_benchmark(tmp_path / "a", seed=3, **small).card("detection", "test").read_text(encoding="utf-8") == card
    import pandas as pd

    on_train = pd.read_csv(a.root / "portraits/train/manifest.csv")
    on_test = pd.read_csv(a.root / "portraits/test/manifest.csv")
    off_train = pd.read_csv(off.root / "portraits/train/manifest.csv")
    # representation: 16.5% Monk 6-10 in training (binomial sd at n=400 is 0.019), exactly balanced in test
    assert abs((on_train.monk >= 6).mean() - 0.165) < 0.06
    assert (on_test.monk.value_counts() == 20).all() and len(on_test.monk.unique()) == 10
    assert abs((off_train.monk >= 6).mean() - 0.5) < 0.08
    # acquisition: in the test split P(underexposed) = 0.1 for Monk 1-5 and 0.1 + 0.5 = 0.6 for Monk 6-10; in
    # training 0.1 + 0.5 * 0.165 = 0.18 whoever is pictured; never with knobs off
    under = on_test.lighting.eq("underexposed").groupby(on_test.monk >= 6).mean()
    assert abs(under[False] - 0.1) < 0.07 and abs(under[True] - 0.6) < 0.1
    under = on_train.lighting.eq("underexposed").groupby(on_train.monk >= 6).mean()
    assert Knobs().train_underexposure() == pytest.approx(0.1825)
    assert abs(under[False] - 0.1825) < 0.06 and abs(under[True] - 0.1825) < 0.12
    assert (off_train.lighting == "well_lit").all()
    # no knob is about age: every age group a third of the people in every split (the rest of n / 3 at random)
    for table in (on_train, on_test, off_train, pd.read_csv(a.root / "scenes/train/people.csv")):
        counts = table.age_group.value_counts()
        assert sorted(counts.index) == ["middle", "older", "young"] and counts.max() - counts.min() <= 1


def test_scene_annotations_agree(tmp_path):
    """Boxes are the masks' extents, the semantic mask's person pixels are the union of the instances."""
    from PIL import Image
    from pycocotools import mask as mask_utils

    bench = write_benchmark(tmp_path, seed=1, n_portraits=(10, 10), n_scenes=(8, 8))
    coco = json.loads((bench.root / "scenes/test/instances.json").read_text())
    for image in coco["images"]:
        anns = [a for a in coco["annotations"] if a["image_id"] == image["id"]]
        assert 1 <= len(anns) <= 3
        sid = Path(image["file_name"]).stem
        semantic = np.asarray(Image.open(bench.root / "scenes/test/masks" / f"{sid}.png"))
        instances = np.asarray(Image.open(bench.root / "scenes/test/instances" / f"{sid}.png"))
        union = np.zeros_like(semantic, dtype=bool)
        for k, ann in enumerate(anns, start=1):
            mask = mask_utils.decode(ann["segmentation"]).astype(bool)
            assert np.array_equal(mask, instances == k)
            ys, xs = np.nonzero(mask)
            assert ann["bbox"] == [xs.min(), ys.min(), xs.max() - xs.min() + 1, ys.max() - ys.min() + 1]
            union |= mask
        assert np.array_equal(semantic == 1, union)


def test_knobs_are_validated():
    with pytest.raises(ValueError, match=r"train_darker_share: expected a probability in \[0, 1\], found 1.5"):
        Knobs(train_darker_share=1.5)
    with pytest.raises(ValueError, match="underexposure_base \\+ underexposure_darker: expected at most 1"):
        Knobs(underexposure_base=0.6, underexposure_darker=0.6)
