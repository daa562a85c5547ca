"""Semantic segmentation audits end to end: cards, masks, people, models, predicted PNGs, CLI, bad input."""

import json
import textwrap

import jsonschema
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from audit.cli import main
from audit.pipeline import load_results_schema
from audit.report import run_audit

CLASSES = ["background", "person", "car"]
SIZE = 16


def _png(path, array):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.asarray(array, dtype=np.uint8)).save(path)


def make_split(root, *, n=16, seed=0, people=True, card_extra=""):
    """Images with one person (class 1) and one car (class 2) each, an ignored border column, and
    predicted masks in which darker-skinned people are half missed (a planted bias)."""
    rng = np.random.default_rng(seed)
    data = root / "data"
    rows, person_rows = [], []
    for i in range(n):
        sid = f"img{i:02d}"
        label = np.zeros((SIZE, SIZE), dtype=np.uint8)
        top, left = rng.integers(1, 6, 2)
        label[top:top + 8, left:left + 4] = 1
        label[12:15, 9:15] = 2
        label[:, 0] = 255
        skin = "V" if i % 2 else "II"
        pred = label.copy()
        pred[:, 0] = 0
        if skin == "V":
            pred[top:top + 4, left:left + 4] = 0  # half of the person missed
        pred[12:15, 9:11] = 0
        _png(data / "images" / f"{sid}.png", rng.integers(0, 255, (SIZE, SIZE, 3)))
        _png(data / "masks" / f"{sid}.png", label)
        _png(data / "pred" / f"{sid}.png", pred)
        person = np.zeros_like(label)
        person[top:top + 8, left:left + 4] = 255
        _png(data / "people" / f"{sid}_p0.png", person)
        rows.append({"id": sid, "file": f"images/{sid}.png", "mask": f"masks/{sid}.png",
                     "lighting": "dim" if i % 4 < 2 else "bright"})
        person_rows.append({"image": sid, "mask": f"people/{sid}_p0.png", "skin": skin})
    pd.DataFrame(rows).to_csv(data / "manifest.csv", index=False)
    pd.DataFrame(person_rows).to_csv(data / "people.csv", index=False)
    people_block = textwrap.indent(textwrap.dedent("""\
        people:
          table: ../data/people.csv
          image_column: image
          mask_column: mask
          attributes:
            skin_type: {column: skin, scale: fitzpatrick}
          reference_groups: {skin_type: lighter}
        """), "  ") if people else ""
    card = root / "data_cards" / "seg.md"
    card.parent.mkdir(parents=True, exist_ok=True)
    card.write_text(
        "---\n" + textwrap.dedent("""\
        split:
          manifest: ../data/manifest.csv
          id_column: id
          image_column: file
        image_root: ../data
        classes: [background, person, car]
        attributes:
          lighting: {column: lighting}
        min_group_size: 4
        segmentation:
          mask_column: mask
          ignore_index: 255
          person_class: person
        """) + people_block + card_extra + "---\n# Tiny segmentation split\n", encoding="utf-8")
    return {"card": card, "data": data, "pred": data / "pred"}


def make_model_card(root, architecture="unet_small", *, resize=16, weights=True):
    import torch

    from audit.tasks.segmentation.models import SEGMENTATION_ARCHITECTURES

    models = root / "models"
    models.mkdir(parents=True, exist_ok=True)
    lines = ""
    if weights:
        torch.manual_seed(0)
        torch.save(SEGMENTATION_ARCHITECTURES[architecture](num_classes=3).state_dict(), models / "seg.pth")
        lines = "weights:\n  path: seg.pth\n"
    card = models / f"{architecture}.md"
    card.write_text("---\n" + textwrap.dedent(f"""\
        task: semantic_segmentation
        model:
          architecture: {architecture}
        num_classes: 3
        label_map: [background, person, car]
        preprocessing:
          resize: [{resize}, {resize}]
          mean: [0.5, 0.5, 0.5]
          std: [0.25, 0.25, 0.25]
        """) + lines + "---\n# Segmenter\n", encoding="utf-8")
    return card


def _run_cli(capsys, *args):
    code = main(["run", "-q", "--n-boot", "60", *map(str, args)])
    return code, capsys.readouterr()


def test_predicted_masks_end_to_end_with_people(tmp_path, capsys):
    split = make_split(tmp_path)
    out = tmp_path / "report"
    code, io = _run_cli(capsys, "--predictions", split["pred"], "--data", split["card"], "--out", out)
    assert code == 0, io.err
    document = json.loads((out / "results.json").read_text())
    jsonschema.validate(document, load_results_schema())
    results = document["results"]
    assert results["config"]["task"] == "semantic_segmentation"
    assert set(results["config"]["pooling"]) == {"pooled", "per_image"}
    frame = pd.DataFrame(results["metrics"])
    value = lambda metric, grouping="overall", group="all", cls="": frame.query(  # noqa: E731
        "metric == @metric and grouping == @grouping and group == @group and `class` == @cls")["value"].item()
    # the person is fully found for lighter people (IoU 1), half for darker (16 of 32 pixels)
    assert value("person_iou", "skin_type", "lighter") == pytest.approx(1.0)
    assert value("person_iou", "skin_type", "darker") == pytest.approx(0.5)
    assert value("person_recall@0.50", "skin_type", "darker") == pytest.approx(1.0)
    assert value("person_recall@0.55", "skin_type", "darker") == pytest.approx(0.0)
    # pooled car IoU: 12 of 18 car pixels found in every image, nothing else predicted as car
    assert value("iou_pooled", cls="car") == pytest.approx(12 / 18)
    assert {"miou_pooled", "miou_per_image", "pixel_accuracy_pooled", "pixel_accuracy_per_image",
            "mdice_pooled", "dice_per_image"} <= set(frame["metric"])
    d = pd.DataFrame(results["disparities"]).query(
        "metric == 'person_iou' and kind == 'to_reference' and grouping == 'skin_type'").iloc[0]
    assert (d["group"], d["other"]) == ("darker", "lighter") and d["difference"] == pytest.approx(-0.5)
    assert d["significant"]
    groups = pd.DataFrame(results["groups"])
    assert groups.query("unit == 'people' and group == 'darker'")["n"].item() == 8
    assert document["provenance"]["predictions"]["source"] == "file"
    html = (out / "index.html").read_text()
    assert "miou_pooled" in html and "person_iou" in html


def test_predictions_manifest_and_size_mismatch(tmp_path, capsys):
    split = make_split(tmp_path, people=False)
    ids = [f"img{i:02d}" for i in range(16)]
    manifest = tmp_path / "preds.csv"
    pd.DataFrame({"sample_id": ids, "mask": [f"data/pred/{s}.png" for s in ids]}).to_csv(manifest, index=False)
    code, io = _run_cli(capsys, "--predictions", manifest, "--data", split["card"], "--out", tmp_path / "r")
    assert code == 0, io.err
    _png(split["pred"] / "img03.png", np.zeros((SIZE, SIZE + 1)))
    code, io = _run_cli(capsys, "--predictions", split["pred"], "--data", split["card"], "--out", tmp_path / "r2")
    assert code == 2 and not (tmp_path / "r2" / "results.json").exists()
    assert io.err.strip() == (f"error: {split['pred'] / 'img03.png'}: expected a predicted mask of the label "
                              "mask's size (16, 16) (width, height) for sample 'img03', found (17, 16)")


@pytest.mark.parametrize("problem, message", [
    ("label", "label mask of sample 'img00': expected label values in 0..2 or ignore_index 255, found 9"),
    ("missing_pred", "expected a predicted mask 'img01.png' for sample 'img01', found none"),
    ("person_image", "people.csv: row 2: field 'image': expected an image id of"),
])
def test_bad_input_is_one_line_exit_2(tmp_path, capsys, problem, message):
    split = make_split(tmp_path)
    if problem == "label":
        label = np.zeros((SIZE, SIZE))
        label[0, 0] = 9
        _png(split["data"] / "masks" / "img00.png", label)
    elif problem == "missing_pred":
        (split["pred"] / "img01.png").unlink()
    else:
        table = pd.read_csv(split["data"] / "people.csv")
        table.loc[1, "image"] = "nope"
        table.to_csv(split["data"] / "people.csv", index=False)
    code, io = _run_cli(capsys, "--predictions", split["pred"], "--data", split["card"], "--out", tmp_path / "r")
    assert code == 2 and message in io.err and io.err.count("\n") == 1


@pytest.mark.parametrize("extra, message", [
    ("  ignore_index: 2\n", "field 'segmentation.ignore_index': expected an integer in 3..65535 (not a class index), found 2"),
    ("  person_class: dog\n", "field 'segmentation.person_class': expected one of the classes (background, person, car), found 'dog'"),
])
def test_segmentation_card_errors(tmp_path, extra, message):
    from audit.core.registry import load_any_data_card
    from audit.errors import CardError

    split = make_split(tmp_path, people=False)
    text = split["card"].read_text().replace("  ignore_index: 255\n", "").replace("  person_class: person\n", "")
    split["card"].write_text(text.replace("  mask_column: mask\n", "  mask_column: mask\n" + extra))
    with pytest.raises(CardError) as info:
        load_any_data_card(split["card"])
    assert str(info.value) == f"{split['card']}: {message}"


def test_unet_model_run_and_cache(tmp_path):
    split = make_split(tmp_path, n=8)
    card = make_model_card(tmp_path)
    out = tmp_path / "report"
    run = run_audit(model=card, data=split["card"], out_dir=out, n_boot=30, batch_size=4)
    assert run.provenance["predictions"]["source"] == "model"
    assert sorted(p.name for p in (out / "predicted_masks").iterdir()) == [f"img{i:02d}.png" for i in range(8)]
    first = run.result.value(metric="miou_pooled")
    again = run_audit(model=card, data=split["card"], out_dir=out, n_boot=30)
    assert again.provenance["predictions"]["source"] == "model"  # results.json does not depend on cache state
    assert again.result.value(metric="miou_pooled") == pytest.approx(first)
    # the cached masks are exactly what --predictions accepts
    other = run_audit(data=split["card"], predictions=out / "predicted_masks", out_dir=tmp_path / "r2", n_boot=30)
    assert other.result.value(metric="miou_pooled") == pytest.approx(first)


def test_unet_shape_and_transpose_convolutions():
    import torch

    from audit.tasks.segmentation.models import UNet

    net = UNet(num_classes=5, base=4, depth=2).eval()
    assert sum(isinstance(m, torch.nn.ConvTranspose2d) for m in net.modules()) == 2
    with torch.no_grad():
        assert net(torch.zeros(1, 3, 13, 10)).shape == (1, 5, 13, 10)  # padded to 16 x 12, cropped back


@pytest.mark.parametrize("architecture", ["lraspp_mobilenet_v3_large", "fcn_resnet50", "deeplabv3_mobilenet_v3_large"])
def test_torchvision_segmenters_build_offline(tmp_path, architecture):
    import torch

    from audit.core.card_loaders import load_model_card
    from audit.tasks.segmentation.models import build_segmenter, segmentation_logits

    card = load_model_card(make_model_card(tmp_path, architecture, weights=False))
    net = build_segmenter(card)  # weights=None, weights_backbone=None: nothing is downloaded
    with torch.no_grad():
        assert segmentation_logits(net(torch.zeros(1, 3, 32, 32))).shape == (1, 3, 32, 32)


def test_lraspp_audit_runs(tmp_path):
    split = make_split(tmp_path, n=4, people=False)
    card = make_model_card(tmp_path, "lraspp_mobilenet_v3_large", resize=32, weights=False)
    run = run_audit(model=card, data=split["card"], out_dir=tmp_path / "r", n_boot=20)
    assert 0 <= run.result.value(metric="pixel_accuracy_pooled") <= 1


@settings(max_examples=150, deadline=None)
@given(st.integers(1, 40), st.integers(1, 9), st.integers(1, 9), st.integers(0, 2**32 - 1), st.booleans())
def test_predicted_classes_is_argmax_with_ties_and_nan(classes, height, width, seed, nan):
    import torch

    from audit.tasks.segmentation.models import predicted_classes

    scores = torch.randint(0, 3, (classes, height, width), generator=torch.Generator().manual_seed(seed)).float()
    if nan:  # NaN counts as the largest, in argmax as in max
        scores[seed % classes, seed % height, seed % width] = float("nan")
    assert torch.equal(predicted_classes(scores), scores.argmax(0))


def test_mask_size_reads_the_header_and_fails_as_read_mask(tmp_path):
    from audit.errors import DataError
    from audit.tasks.segmentation.data import mask_size, read_mask

    grey, wide = tmp_path / "grey.png", tmp_path / "wide.png"
    _png(grey, np.zeros((5, 7)))
    Image.fromarray(np.full((3, 11), 300, dtype=np.uint16)).save(wide)  # 16-bit grey
    assert mask_size(grey) == read_mask(grey).shape == (5, 7)
    assert mask_size(wide) == read_mask(wide).shape == (3, 11)
    colour, text, missing = tmp_path / "rgb.png", tmp_path / "text.png", tmp_path / "none.png"
    _png(colour, np.zeros((4, 4, 3)))
    text.write_text("not a PNG")
    for path, message in [(colour, f"{colour}: expected a single-channel label mask PNG (palette or greyscale, "
                                    "pixel = class index), found mode RGB"),
                          (text, f"{text}: cannot read label mask: not a recognised image format"),
                          (missing, f"{missing}: label mask file not found")]:
        for read in (mask_size, read_mask):
            with pytest.raises(DataError) as info:
                read(path, what="label mask")
            assert str(info.value) == message
    # a truncated file has a whole header: its size is known, and reading its pixels fails as one DataError
    truncated = tmp_path / "cut.png"
    _png(truncated, np.random.default_rng(0).integers(0, 3, (64, 64)))
    truncated.write_bytes(truncated.read_bytes()[:60])
    assert mask_size(truncated) == (64, 64)
    with pytest.raises(DataError, match=r"cut\.png: cannot read mask: "):
        read_mask(truncated)
