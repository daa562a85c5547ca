"""Model cards for the torchvision zoo, class maps, builder arguments, loading gaps, entry points, transfer learning.

Nothing downloads. The weights-enum path is torchvision's own: a random-init
state dict is saved in a temporary ``$TORCH_HOME/hub/checkpoints`` under the
enum's real file name, and ``torch.hub`` does not check the hash of a file
already in its cache. ``torch.hub.download_url_to_file`` is patched to fail,
so a test that would reach the network fails instead.
"""

from __future__ import annotations

import json
import os
import sys
import uuid
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import urlparse

import numpy as np
import pandas as pd
import pytest
import torch
import torchvision

from audit.core.card_loaders import load_model_card
from audit.cli import main
from audit.errors import CardError, ModelError
from detection_helpers import make_facet_split, write_facet_card
from slice_helpers import make_split

MODELS = Path(__file__).resolve().parents[1] / "models"
ZOO = {
    "fasterrcnn_resnet50_fpn_v2": "detection", "retinanet_resnet50_fpn_v2": "detection",
    "fcos_resnet50_fpn": "detection", "ssdlite320_mobilenet_v3_large": "detection",
    "maskrcnn_resnet50_fpn_v2": "instance_segmentation", "deeplabv3_resnet50": "semantic_segmentation",
    "deeplabv3_mobilenet_v3_large": "semantic_segmentation", "lraspp_mobilenet_v3_large": "semantic_segmentation",
    "fcn_resnet50": "semantic_segmentation",
}


@pytest.fixture
def no_download(monkeypatch):
    """Fail any attempt of torch.hub to download."""

    def refuse(url, *args, **kwargs):
        raise OSError(f"test: no network (tried {url})")

    monkeypatch.setattr(torch.hub, "download_url_to_file", refuse)


def cache_weights(tmp_path, monkeypatch, enum_name: str, state: dict) -> Path:
    """Put ``state`` in a fresh ``$TORCH_HOME/hub/checkpoints`` under the file name of ``enum_name``'s URL."""
    enum = torchvision.models.get_weight(enum_name)
    home = tmp_path / "torch_home"
    target = home / "hub" / "checkpoints" / os.path.basename(urlparse(enum.url).path)
    target.parent.mkdir(parents=True, exist_ok=True)
    torch.save(state, target)
    monkeypatch.setenv("TORCH_HOME", str(home))
    return target


def random_state(name: str, **kwargs) -> dict:
    torch.manual_seed(0)
    net = torchvision.models.get_model(name, weights=None, **kwargs)
    return {k: v.detach().clone() for k, v in net.state_dict().items()}


def run_cli(capsys, *args):
    code = main([*map(str, args)])
    return code, capsys.readouterr()


# ---------------------------------------------------------------------------
# The committed cards
# ---------------------------------------------------------------------------


def test_every_zoo_card_is_committed():
    assert sorted(p.stem for p in MODELS.glob("*.md") if p.name != "README.md") == sorted(ZOO)


@pytest.mark.parametrize("name", sorted(ZOO))
def test_committed_card_parses_and_finds_person_by_name(name):
    path = MODELS / f"{name}.md"
    card = load_model_card(path)  # validates the enum, the class map and the builder arguments
    assert card.task == ZOO[name] and card.model.architecture == name
    enum = torchvision.models.get_weight(card.weights.enum)  # metadata only: nothing is downloaded
    categories = enum.meta["categories"]
    assert card.label_map == categories and card.num_classes == len(categories)
    assert card.front_matter["label_map"] == "weights"
    # person is found by name in the enum's categories, never by a hard-coded id
    assert "person" in card.front_matter["class_map"]
    assert not any(isinstance(k, int) for k in card.front_matter["class_map"])
    assert card.class_map[categories.index("person")] == "person"
    if card.task != "semantic_segmentation":
        assert set(card.class_map.values()) == {"person"}
        assert {"min_size", "max_size"} <= set(card.builder) or name.startswith("ssd")
    # model-card prose: the sections, the enum's published metrics, citations
    for section in ("## Model details", "## Intended use", "## Training data", "## Metrics", "## Caveats",
                    "## References"):
        assert section in card.body, section
    for values in enum.meta["_metrics"].values():
        for metric, value in values.items():
            assert f"{metric} {value}" in card.body
    assert card.weights.enum in card.body and os.path.basename(urlparse(enum.url).path) in card.body
    assert "arXiv:" in card.body and "Microsoft COCO" in card.body


# ---------------------------------------------------------------------------
# Builder arguments
# ---------------------------------------------------------------------------


def detector_card(tmp_path, extra: str = "", name: str = "det.md") -> Path:
    path = tmp_path / "models" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("---\ntask: detection\nmodel: {architecture: fasterrcnn_mobilenet_v3_large_320_fpn}\n"
                    "weights: null\nnum_classes: 3\nlabel_map: [__background__, doctor, guitarist]\n"
                    f"{extra}---\n# Untrained detector\n")
    return path


def test_builder_arguments_reach_the_torchvision_builder(tmp_path):
    from audit.tasks.detection.inference import build_detector

    card = load_model_card(detector_card(tmp_path, "builder: {min_size: 64, max_size: 96, box_score_thresh: 0.3, "
                                                   "box_nms_thresh: 0.4, box_detections_per_img: 7}\n"))
    assert card.builder == {"min_size": 64, "max_size": 96, "box_score_thresh": 0.3, "box_nms_thresh": 0.4,
                            "box_detections_per_img": 7}
    net = build_detector(card)
    assert net.transform.min_size == (64,) and net.transform.max_size == 96
    assert (net.roi_heads.score_thresh, net.roi_heads.nms_thresh, net.roi_heads.detections_per_img) == (0.3, 0.4, 7)


@pytest.mark.parametrize(("builder", "message"), [
    ("{min_sise: 64}", "field 'builder.min_sise': expected a keyword argument of torchvision's "
                       "fasterrcnn_mobilenet_v3_large_320_fpn (min_size, max_size, bbox_reg_weights, "),
    ("{num_classes: 5}", "field 'builder.num_classes': expected an argument audit does not set itself"),
    ("[min_size, 64]", "field 'builder': expected a mapping of torchvision builder keyword arguments, found"),
    ("{min_size: {a: 1}}", "field 'builder.min_size': expected a number, string, true/false, null or a list"),
])
def test_builder_arguments_are_checked_against_the_signature(tmp_path, builder, message):
    path = detector_card(tmp_path, f"builder: {builder}\n")
    with pytest.raises(CardError) as info:
        load_model_card(path)
    text = str(info.value)
    assert text.startswith(f"{path}: {message}")
    assert "\n" not in text and len(text) - len(str(path)) < 400
    if "min_sise" in builder:
        assert text.endswith("more)), found an unknown argument")


def test_builder_arguments_need_an_architecture(tmp_path):
    path = tmp_path / "m.md"
    path.write_text("---\ntask: detection\nmodel: {entry_point: 'audit.train.detection:person_fasterrcnn'}\n"
                    "num_classes: 2\nlabel_map: [__background__, person]\nbuilder: {min_size: 64}\n---\n# m\n")
    with pytest.raises(CardError, match=r"field 'builder': expected builder arguments only together with "
                                        r"'model.architecture'"):
        load_model_card(path)


def test_segmentation_builder_arguments(tmp_path):
    from audit.tasks.segmentation.models import build_segmenter

    path = tmp_path / "seg.md"
    front = ("task: semantic_segmentation\nmodel: {architecture: lraspp_mobilenet_v3_large}\nnum_classes: 2\n"
             "label_map: [background, person]\npreprocessing: {resize: [32, 32], mean: [0.5], std: [0.5]}\n")
    # lraspp's builder accepts **kwargs and ignores them: nothing can be set, and a card is told so
    path.write_text(f"---\n{front}builder: {{inter_channels: 32}}\n---\n# s\n")
    with pytest.raises(CardError, match=r"field 'builder.inter_channels': expected a keyword argument of "
                                        r"torchvision's lraspp_mobilenet_v3_large \(none\), found an unknown argument$"):
        load_model_card(path)
    path.write_text(f"---\n{front.replace('lraspp_mobilenet_v3_large', 'fcn_resnet50')}builder: {{aux_loss: true}}\n"
                    "---\n# s\n")
    assert build_segmenter(load_model_card(path)).aux_classifier is not None


# ---------------------------------------------------------------------------
# Class maps
# ---------------------------------------------------------------------------


def test_class_map_parsing_names_indices_ranges_and_drops(tmp_path):
    labels = ["__background__", "person", "bicycle", "car", "N/A", "N/A", "dog"]
    path = tmp_path / "m.md"
    path.write_text("---\ntask: detection\nmodel: {architecture: fasterrcnn_mobilenet_v3_large_320_fpn}\n"
                    f"num_classes: {len(labels)}\nlabel_map: [{', '.join(labels)}]\n"
                    "class_map: {person: human, '2..3': vehicle, N/A: null, 6: animal}\n---\n# m\n")
    card = load_model_card(path)
    assert card.class_map == {1: "human", 2: "vehicle", 3: "vehicle", 6: "animal"}  # both N/A dropped, 0 unlisted
    for bad, message in [
        ("{horse: x}", "field 'class_map.horse': expected a model class of label_map (__background__, person, "
                       "bicycle, car, N/A, N/A, dog), an output index or a 'a..b' range as key, found 'horse'"),
        ("{person: x, 1: y}", "field 'class_map.1': expected each model output mapped once (output 1, 'person', "
                              "is mapped by an earlier key), found 1"),
        ("{'5..9': x}", "field 'class_map.5..9': expected output indices 0..6, found '5..9'"),
        ("{person: 3}", "field 'class_map.person': expected a split class name (string) or null, found 3"),
        ("{person: null}", "field 'class_map': expected at least one model class mapped to a split class"),
    ]:
        path.write_text(path.read_text().split("class_map:")[0] + f"class_map: {bad}\n---\n# m\n")
        with pytest.raises(CardError) as info:
            load_model_card(path)
        assert str(info.value).startswith(f"{path}: {message}"), str(info.value)


def test_class_matrix_sums_probabilities_by_hand():
    from audit.core.model_spec import class_matrix, map_probabilities

    matrix = class_matrix(label_map=["a", "b", "c", "d"], classes=["x", "y"], class_map={0: "x", 1: "x", 2: "y"})
    assert matrix.tolist() == [[1, 0], [1, 0], [0, 1], [0, 0]]
    probs = np.array([[0.5, 0.2, 0.2, 0.1]])
    # x = 0.5 + 0.2 = 0.7, y = 0.2, d dropped; renormalised over 0.9 -> 7/9, 2/9
    assert map_probabilities(probs, matrix) == pytest.approx(np.array([[7 / 9, 2 / 9]]))
    per_pixel = torch.tensor(probs.T.reshape(1, 4, 1, 1), dtype=torch.float64)
    assert map_probabilities(per_pixel, matrix)[0, :, 0, 0].tolist() == pytest.approx([7 / 9, 2 / 9])
    with pytest.raises(CardError, match=r"field 'class_map.c': expected a class of the data card \(x, y\), found 'z'"):
        class_matrix(label_map=["a", "b", "c"], classes=["x", "y"], class_map={0: "x", 2: "z"})


def three_class_split(root: Path, n: int = 6) -> Path:
    from slice_helpers import write_images

    ids = [f"t{i}" for i in range(n)]
    labels = [i % 3 for i in range(n)]
    write_images(root / "images", ids, [min(x, 1) for x in labels], size=24)
    pd.DataFrame({"id": ids, "file": [f"images/{i}.png" for i in ids],
                  "label": [("cat", "dog", "fish")[x] for x in labels],
                  "group": ["a", "b"] * (n // 2)}).to_csv(root / "manifest.csv", index=False)
    card = root / "three.md"
    card.write_text("---\nsplit: {manifest: manifest.csv, id_column: id, image_column: file}\nlabel_column: label\n"
                    "classes: [cat, dog, fish]\nattributes: {group: {}}\nmin_group_size: 1\n---\n# Three classes\n")
    return card


def test_imagenet_classifier_on_a_three_class_split(tmp_path, monkeypatch, no_download):
    """1,000 ImageNet classes onto [cat, dog, fish] through the real enum path; errors stay short."""
    from audit.core.models import build_model, build_transform
    from audit.pipeline import audit_split, evaluate

    state = random_state("resnet18")
    cache_weights(tmp_path, monkeypatch, "ResNet18_Weights.IMAGENET1K_V1", state)
    data = three_class_split(tmp_path)
    model = tmp_path / "imagenet.md"
    front = "task: classification\nmodel: {architecture: resnet18}\nweights: {enum: ResNet18_Weights.IMAGENET1K_V1}\n" \
            "label_map: weights\n"
    model.write_text(f"---\n{front}---\n# ImageNet classifier\n")
    with pytest.raises(CardError) as info:  # no class map: 1,000 names against 3
        audit_split(data=data, model=model, n_boot=10)
    text = str(info.value)
    assert len(text) < 400 and "(990 more)" in text and "add a 'class_map'" in text

    model.write_text(f"---\n{front}class_map:\n  tabby: cat\n  tiger cat: cat\n  Persian cat: cat\n"
                     "  '151..268': dog\n  goldfish: fish\n  great white shark: null\n---\n# ImageNet classifier\n")
    card = load_model_card(model)
    net = build_model(card)
    assert torch.equal(net.state_dict()["fc.weight"], state["fc.weight"])  # the cached file was loaded
    run = evaluate(data=data, model=model, n_boot=10, n_perm=10)
    # by hand: softmax over 1,000 outputs, summed per split class over the mapped outputs, renormalised
    from PIL import Image

    transform = build_transform(card)
    with torch.no_grad():
        x = torch.stack([transform(Image.open(tmp_path / "images" / f"t{i}.png").convert("RGB")) for i in range(6)])
        p = torch.softmax(net(x), 1).double().numpy()
    mass = np.stack([p[:, [281, 282, 283]].sum(1), p[:, 151:269].sum(1), p[:, [1]].sum(1)], 1)
    expected = mass / mass.sum(1, keepdims=True)
    got = run.predictions[["score_cat", "score_dog", "score_fish"]].to_numpy()
    assert got == pytest.approx(expected, rel=1e-5)
    assert run.predictions["pred"].tolist() == expected.argmax(1).tolist()
    assert run.provenance["model"]["class_map"]["tabby"] == "cat"
    assert run.provenance["model"]["weights_meta"]["url"].endswith("resnet18-f37072fd.pth")


def test_detection_class_map_finds_person_by_name():
    from audit.tasks.detection.inference import category_mapping

    card = load_model_card(MODELS / "fasterrcnn_resnet50_fpn_v2.md")
    person = card.label_map.index("person")
    gt = SimpleNamespace(categories={7: "person", 9: "car"}, path="gt.json")
    assert category_mapping(card, gt, class_agnostic=False) == {person: 7}
    gt_facet = SimpleNamespace(categories={1: "doctor", 2: "guitarist"}, path="gt.json")
    assert category_mapping(card, gt_facet, class_agnostic=True) == {person: 1}  # any person matches
    with pytest.raises(ModelError) as info:
        category_mapping(card, gt_facet, class_agnostic=False)
    assert str(info.value) == (f"{card.path}: field 'class_map.person': expected a category of gt.json (doctor, "
                               "guitarist), found 'person'")


# ---------------------------------------------------------------------------
# The enum path, offline: a detector, a segmenter, a ResNet trunk
# ---------------------------------------------------------------------------


def test_detector_enum_weights_from_the_hub_cache(tmp_path, monkeypatch, capsys, no_download):
    from audit.tasks.detection.inference import build_detector

    state = random_state("ssdlite320_mobilenet_v3_large", weights_backbone=None, num_classes=91)
    cache_weights(tmp_path, monkeypatch, "SSDLite320_MobileNet_V3_Large_Weights.COCO_V1", state)
    committed = (MODELS / "ssdlite320_mobilenet_v3_large.md").read_text()
    card_path = tmp_path / "models" / "ssdlite.md"
    card_path.parent.mkdir()
    card_path.write_text(committed.replace("detections_per_img: 100", "detections_per_img: 5"))
    card = load_model_card(card_path)
    net = build_detector(card)
    assert all(torch.equal(v, state[k]) for k, v in net.state_dict().items())
    assert net.detections_per_img == 5 and net.score_thresh == 0.001  # builder arguments on the enum path

    root = make_facet_split(tmp_path / "facet", n_images=2, with_images=True)
    out = tmp_path / "report"
    code, io = run_cli(capsys, "run", "--model", card_path, "--data", write_facet_card(root), "--out", out,
                       "--n-boot", "10", "-q", "--device", "cpu")
    assert code == 0, io.err
    detections = json.loads((out / "detections.json").read_text())
    assert len(detections) <= 2 * 5 and all(d["category_id"] == 1 for d in detections)  # person -> FACET's first
    model = json.loads((out / "results.json").read_text())["provenance"]["model"]
    assert model["weights"] == "enum SSDLite320_MobileNet_V3_Large_Weights.COCO_V1"
    assert model["builder"]["detections_per_img"] == 5 and model["class_map"] == {"person": "person"}
    assert model["weights_meta"]["metrics"] == {"COCO-val2017": {"box_map": 21.3}}


def test_detector_enum_without_cache_or_network_is_one_line(tmp_path, monkeypatch, no_download):
    from audit.tasks.detection.inference import build_detector

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty_home"))
    card = load_model_card(MODELS / "ssdlite320_mobilenet_v3_large.md")
    with pytest.raises(ModelError) as info:
        build_detector(card)
    assert str(info.value).startswith(
        f"{card.path}: field 'weights.enum': cannot fetch weights 'SSDLite320_MobileNet_V3_Large_Weights.COCO_V1' "
        "(no network and not in the torch hub cache?): test: no network")


def test_segmenter_enum_weights_from_the_hub_cache(tmp_path, monkeypatch, no_download):
    from audit.report import run_audit
    from audit.tasks.segmentation.models import build_segmenter
    from test_segmentation_e2e import make_split as make_segmentation_split

    state = random_state("lraspp_mobilenet_v3_large", weights_backbone=None, num_classes=21)
    cache_weights(tmp_path, monkeypatch, "LRASPP_MobileNet_V3_Large_Weights.COCO_WITH_VOC_LABELS_V1", state)
    card = load_model_card(MODELS / "lraspp_mobilenet_v3_large.md")
    net = build_segmenter(card)
    assert all(torch.equal(v, state[k]) for k, v in net.state_dict().items())
    split = make_segmentation_split(tmp_path, n=2)  # classes [background, person, car]
    run = run_audit(model=MODELS / "lraspp_mobilenet_v3_large.md", data=split["card"], out_dir=tmp_path / "r",
                    n_boot=10, data_audit=False, thumbnails=False)
    from PIL import Image

    for path in run.predictions["pred_mask"]:
        assert set(np.unique(np.asarray(Image.open(path)))) <= {0, 1}  # 21 VOC classes -> background, person
    assert run.provenance["model"]["source"] == "torchvision lraspp_mobilenet_v3_large"


def test_deeplab_enum_path_builds_the_auxiliary_head_its_weights_carry(tmp_path, monkeypatch, no_download):
    from audit.tasks.segmentation.models import build_segmenter

    state = random_state("deeplabv3_mobilenet_v3_large", weights_backbone=None, num_classes=21, aux_loss=True)
    assert any(k.startswith("aux_classifier.") for k in state)
    cache_weights(tmp_path, monkeypatch, "DeepLabV3_MobileNet_V3_Large_Weights.COCO_WITH_VOC_LABELS_V1", state)
    net = build_segmenter(load_model_card(MODELS / "deeplabv3_mobilenet_v3_large.md"))
    assert net.aux_classifier is not None
    assert all(torch.equal(v, state[k]) for k, v in net.state_dict().items())


def test_resnet50_trunk_from_a_cached_enum_head_then_audit(tmp_path, monkeypatch, capsys, no_download):
    state = random_state("resnet50")
    cache_weights(tmp_path, monkeypatch, "ResNet50_Weights.IMAGENET1K_V2", state)
    split = make_split(tmp_path, n=16)
    out = tmp_path / "models" / "r50.md"
    code, io = run_cli(capsys, "train", "--task", "classification", "--data", split["card"], "--out", out,
                       "--backbone", "resnet50", "--backbone-weights", "ResNet50_Weights.IMAGENET1K_V2",
                       "--strategy", "head", "--epochs", "1", "--resize", "16", "16", "-q")
    assert code == 0, io.err
    card = load_model_card(out)
    assert card.model.entry_point == "audit.train.models:trunk_classifier_resnet50"
    assert "ResNet-50 `conv1..layer2` (stride 8, 512 channels)" in card.body
    assert "`ResNet50_Weights.IMAGENET1K_V2`" in card.body
    saved = torch.load(out.with_suffix(".pth"), weights_only=True)
    for key in ("conv1.weight", "layer2.3.conv3.weight", "layer1.0.bn1.running_mean"):
        assert torch.equal(saved[f"trunk.{key}"], state[key])  # frozen: the ImageNet trunk as it was
    code, io = run_cli(capsys, "run", "--model", out, "--data", split["card"], "--out", tmp_path / "report",
                       "--n-boot", "10", "--n-perm", "10", "-q", "--no-data-audit")
    assert code == 0, io.err


@pytest.mark.parametrize(("trunk", "last"), [("stride8", "3"), ("full", "12")])
def test_mobilenet_trunk_finetunes_its_last_stage(tmp_path, monkeypatch, capsys, no_download, trunk, last):
    state = random_state("mobilenet_v3_small")
    cache_weights(tmp_path, monkeypatch, "MobileNet_V3_Small_Weights.IMAGENET1K_V1", state)
    split = make_split(tmp_path, n=16)
    out = tmp_path / "models" / "mnv3.md"
    code, io = run_cli(capsys, "train", "--task", "classification", "--data", split["card"], "--out", out,
                       "--backbone", "mobilenet_v3_small", "--trunk", trunk, "--backbone-weights",
                       "MobileNet_V3_Small_Weights.IMAGENET1K_V1", "--strategy", "finetune", "--epochs", "1",
                       "--resize", "32", "32", "-q")
    assert code == 0, io.err
    saved = torch.load(out.with_suffix(".pth"), weights_only=True)
    assert torch.equal(saved["trunk.0.0.weight"], state["features.0.0.weight"])  # a frozen stage
    trained = [k for k in saved if k.startswith(f"trunk.{last}.") and k.endswith("weight")]
    assert trained and not all(torch.equal(saved[k], state["features." + k[len("trunk."):]]) for k in trained)
    assert not any(k.startswith(f"trunk.{int(last) + 1}.") for k in saved)  # the trunk ends there
    suffix = "" if trunk == "stride8" else "_full"
    card = load_model_card(out)
    assert card.model.entry_point == f"audit.train.models:trunk_classifier_mobilenet_v3_small{suffix}"
    assert f"(stride {8 if trunk == 'stride8' else 32}, " in card.body
    code, io = run_cli(capsys, "run", "--model", out, "--data", split["card"], "--out", tmp_path / "report",
                       "--n-boot", "10", "--n-perm", "10", "-q", "--no-data-audit")
    assert code == 0, io.err


def test_backbone_weights_of_another_network_are_refused(tmp_path, capsys):
    split = make_split(tmp_path, n=8)
    code, io = run_cli(capsys, "train", "--task", "classification", "--data", split["card"], "--out",
                       tmp_path / "m.md", "--backbone-weights", "ResNet50_Weights.IMAGENET1K_V2", "-q")
    assert code == 2
    assert io.err.strip() == ("error: --backbone-weights: expected weights of resnet18 (ResNet18_Weights.*, e.g. "
                              "ResNet18_Weights.IMAGENET1K_V1), found 'ResNet50_Weights.IMAGENET1K_V2'; pass the "
                              "matching --backbone")


# ---------------------------------------------------------------------------
# Loading gaps
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("aux", [True, False])
def test_local_deeplab_checkpoint_with_or_without_aux_classifier(tmp_path, aux):
    from audit.tasks.segmentation.models import build_segmenter

    torch.manual_seed(0)
    reference = torchvision.models.get_model("deeplabv3_mobilenet_v3_large", weights=None, weights_backbone=None,
                                             num_classes=3, aux_loss=aux).eval()
    assert any(k.startswith("aux_classifier.") for k in reference.state_dict()) == aux
    torch.save(reference.state_dict(), tmp_path / "deeplab.pth")
    path = tmp_path / "deeplab.md"
    path.write_text("---\ntask: semantic_segmentation\nmodel: {architecture: deeplabv3_mobilenet_v3_large}\n"
                    "weights: {path: deeplab.pth}\nnum_classes: 3\nlabel_map: [background, person, car]\n"
                    "preprocessing: {resize: [32, 32], mean: [0.5], std: [0.5]}\n---\n# d\n")
    net = build_segmenter(load_model_card(path))  # strict: every key, aux_classifier.* included, loads
    assert (net.aux_classifier is not None) == aux
    x = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(net(x)["out"], reference(x)["out"])


SCRIPTED_DETECTOR = '''
from typing import Dict, List, Tuple

import torch


class BoxEveryImage(torch.nn.Module):
    """Returns what a scripted torchvision detector returns: (losses, detections)."""

    def forward(self, images: List[torch.Tensor]) -> Tuple[Dict[str, torch.Tensor], List[Dict[str, torch.Tensor]]]:
        out: List[Dict[str, torch.Tensor]] = []
        for _ in images:
            out.append({"boxes": torch.tensor([[2.0, 4.0, 18.0, 34.0]]), "labels": torch.tensor([1]),
                        "scores": torch.tensor([0.9])})
        losses: Dict[str, torch.Tensor] = {}
        return losses, out
'''


def test_torchscript_detector(tmp_path, capsys):
    module_file = tmp_path / f"scripted_{uuid.uuid4().hex[:8]}.py"
    module_file.write_text(SCRIPTED_DETECTOR)
    sys.path.insert(0, str(tmp_path))
    try:
        module = __import__(module_file.stem)
        torch.jit.script(module.BoxEveryImage()).save(str(tmp_path / "detector.pt"))
    finally:
        sys.path.remove(str(tmp_path))
    card = tmp_path / "scripted.md"
    card.write_text("---\ntask: detection\nmodel: {torchscript: detector.pt}\nnum_classes: 2\n"
                    "label_map: [__background__, person]\nclass_map: {person: person}\n---\n# Scripted detector\n")
    assert load_model_card(card).model.kind == "torchscript"
    root = make_facet_split(tmp_path / "facet", n_images=3, with_images=True)
    out = tmp_path / "report"
    code, io = run_cli(capsys, "run", "--model", card, "--data", write_facet_card(root), "--out", out,
                       "--n-boot", "10", "-q", "--device", "cpu")
    assert code == 0, io.err
    detections = json.loads((out / "detections.json").read_text())
    assert [d["bbox"] for d in detections] == [[2.0, 4.0, 16.0, 30.0]] * 3
    doc = json.loads((out / "results.json").read_text())
    assert doc["provenance"]["model"]["source"] == f"torchscript {tmp_path / 'detector.pt'}"
    recall = [m for m in doc["results"]["metrics"] if m["metric"] == "recall@0.50" and m["grouping"] == "overall"]
    assert 0 < recall[0]["value"] < 1  # the first person of every image is found, the others missed


def test_unet_provenance_names_the_project_not_torchvision(tmp_path):
    from audit.pipeline import model_provenance
    from test_segmentation_e2e import make_model_card

    card = load_model_card(make_model_card(tmp_path, "unet_small"))
    assert model_provenance(card, None)["source"] == "audit U-Net audit.tasks.segmentation.models:unet_small"
    card = load_model_card(make_model_card(tmp_path, "lraspp_mobilenet_v3_large", weights=False))
    assert model_provenance(card, None)["source"] == "torchvision lraspp_mobilenet_v3_large"


def test_run_help_names_every_task(capsys):
    with pytest.raises(SystemExit):
        main(["run", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "audit a classifier" not in text.lower()
    assert "a classifier, a detector, an instance or a semantic segmenter" in text
    assert "--traceback" in text
    with pytest.raises(SystemExit):
        main(["--help"])
    assert "audit a classifier on" not in capsys.readouterr().out


# ---------------------------------------------------------------------------
# Entry points
# ---------------------------------------------------------------------------

USER_MODEL = '''
import torch


class Net(torch.nn.Module):
    def __init__(self, num_classes, fail):
        super().__init__()
        self.fail = fail
        self.head = torch.nn.Linear(3, num_classes)

    def forward(self, x):
        if self.fail:
            raise ValueError("shapes do not match in my layer")
        return self.head(x.mean(dim=(2, 3)))


def build(num_classes):
    return Net(num_classes, fail=False)


def build_failing(num_classes):
    return Net(num_classes, fail=True)
'''


def user_model_card(tmp_path, function="build") -> tuple[Path, str]:
    """A model module beside its card (not installed, not on sys.path) and the card naming it."""
    module = f"user_net_{uuid.uuid4().hex[:8]}"
    models = tmp_path / "models"
    models.mkdir(parents=True, exist_ok=True)
    (models / f"{module}.py").write_text(USER_MODEL)
    card = models / "user.md"
    card.write_text(f"---\ntask: classification\nmodel: {{entry_point: '{module}:{function}'}}\nnum_classes: 2\n"
                    "label_map: [cat, dog]\npreprocessing: {resize: [8, 8], mean: [0.5], std: [0.5]}\n---\n# User\n")
    return card, f"{module}:{function}"


def test_entry_point_beside_the_card_imports(tmp_path, capsys):
    from audit.core.models import build_model

    card, _ = user_model_card(tmp_path)
    assert build_model(load_model_card(card))(torch.rand(2, 3, 8, 8)).shape == (2, 2)
    split = make_split(tmp_path, n=12)
    code, io = run_cli(capsys, "run", "--model", card, "--data", split["card"], "--out", tmp_path / "r",
                       "--n-boot", "10", "--n-perm", "10", "-q", "--no-data-audit")
    assert code == 0, io.err


@pytest.mark.parametrize("task", ["classification", "detection"])
def test_a_bad_entry_point_fails_before_the_data_is_read(tmp_path, capsys, task):
    card = tmp_path / "bad.md"
    if task == "classification":
        data = make_split(tmp_path, n=4)["card"]
        (tmp_path / "data" / "manifest.csv").unlink()  # reading the data would fail
        card.write_text("---\ntask: classification\nmodel: {entry_point: 'no_such_module_zoo:build'}\nnum_classes: 2\n"
                        "label_map: [cat, dog]\npreprocessing: {resize: [8, 8], mean: [0.5], std: [0.5]}\n---\n# b\n")
    else:
        root = make_facet_split(tmp_path / "facet", n_images=2)
        data = write_facet_card(root)
        (root / "coco_boxes.json").write_text("not json")
        card.write_text("---\ntask: detection\nmodel: {entry_point: 'no_such_module_zoo:build'}\nnum_classes: 2\n"
                        "label_map: [__background__, person]\n---\n# b\n")
    code, io = run_cli(capsys, "run", "--model", card, "--data", data, "--out", tmp_path / "r", "-q")
    assert code == 2
    assert io.err.strip() == (f"error: {card}: field 'model.entry_point': cannot import 'no_such_module_zoo': "
                              "No module named 'no_such_module_zoo'")


def test_an_exception_in_forward_is_one_line_and_traceback_shows_it(tmp_path, capsys):
    card, spec = user_model_card(tmp_path, "build_failing")
    split = make_split(tmp_path, n=6)
    args = ["run", "--model", card, "--data", split["card"], "--out", tmp_path / "r", "-q", "--no-data-audit"]
    code, io = run_cli(capsys, *args)
    assert code == 2
    assert io.err.strip() == (f"error: {card}: model.entry_point '{spec}': forward() failed: ValueError: shapes do "
                              "not match in my layer (--traceback shows where)")
    code, io = run_cli(capsys, *args, "--traceback")
    assert code == 2
    assert "Traceback (most recent call last)" in io.err and f"{spec.split(':')[0]}.py" in io.err
    assert 'raise ValueError("shapes do not match in my layer")' in io.err
    assert io.err.strip().splitlines()[-1].startswith(f"error: {card}: model.entry_point")


# ---------------------------------------------------------------------------
# Predictions-only data cards
# ---------------------------------------------------------------------------


def test_predictions_only_card_needs_no_image_column_and_ids_follow_id_column(tmp_path, capsys):
    from audit.report import run_audit
    from slice_helpers import make_model

    split = make_split(tmp_path, n=12)
    card = split["card"]
    card.write_text(card.read_text().replace("  image_column: file\n", ""))
    frame = split["frame"]
    preds = tmp_path / "preds.csv"
    pd.DataFrame({"id": frame["id"], "pred": frame["species"]}).to_csv(preds, index=False)  # the card's id column
    run = run_audit(data=card, predictions=preds, out_dir=tmp_path / "r", n_boot=10, n_perm=10)
    assert run.result.value(metric="accuracy") == 1.0
    # with a model, the image column is needed, and the message says so
    model = make_model(tmp_path)
    code, io = run_cli(capsys, "run", "--model", model, "--data", card, "--out", tmp_path / "r2", "-q")
    assert code == 2
    assert io.err.strip() == (f"error: {card}: field 'split.image_column': expected the manifest column of image "
                              "paths to run a model, found nothing (only --predictions work without it)")
    pd.DataFrame({"sample": frame["id"], "pred": frame["species"]}).to_csv(preds, index=False)
    code, io = run_cli(capsys, "run", "--predictions", preds, "--data", card, "--out", tmp_path / "r3", "-q")
    assert code == 2
    assert io.err.strip() == (f"error: {preds}: missing column 'id' (the data card's split.id_column) or "
                              "'sample_id'; found columns: sample, pred")


# ---------------------------------------------------------------------------
# A real third-party pretrained model: facenet-pytorch's MTCNN (weights inside its wheel)
# ---------------------------------------------------------------------------

MTCNN_ENTRY = '''
import numpy as np
import torch


class MTCNNDetector(torch.nn.Module):
    """facenet-pytorch's MTCNN behind torchvision's detection interface (label 1: face)."""

    def __init__(self):
        super().__init__()
        from facenet_pytorch import MTCNN

        self.mtcnn = MTCNN(keep_all=True, device="cpu")

    def forward(self, images):
        from PIL import Image

        out = []
        for image in images:
            array = (image.permute(1, 2, 0).clamp(0, 1) * 255).round().to(torch.uint8).cpu().numpy()
            boxes, probs = self.mtcnn.detect(Image.fromarray(array))
            if boxes is None:  # no face
                boxes, probs = [], []
            # MTCNN may hand back object arrays: convert box by box
            boxes = np.array([np.asarray(b, dtype=np.float32) for b in boxes], dtype=np.float32).reshape(-1, 4)
            probs = np.array([float(p) for p in probs], dtype=np.float32)
            out.append({"boxes": torch.from_numpy(boxes), "labels": torch.ones(len(probs), dtype=torch.int64),
                        "scores": torch.from_numpy(probs)})
        return out


def mtcnn(num_classes=2):
    return MTCNNDetector()
'''


def test_facenet_mtcnn_through_an_entry_point_reports_recall(tmp_path, capsys):
    pytest.importorskip("facenet_pytorch", reason="facenet-pytorch is not installed (its wheel pins torch<2.3, "
                                                  "so it does not install beside this torch)")
    skimage_data = pytest.importorskip("skimage.data", reason="scikit-image (for its astronaut photograph) is not "
                                                              "installed")
    from PIL import Image

    faces = tmp_path / "faces"
    faces.mkdir()
    photo = Image.fromarray(skimage_data.astronaut())  # 512x512, one face
    images, annotations, rows = [], [], []
    variants = {"full": photo, "flipped": photo.transpose(Image.Transpose.FLIP_LEFT_RIGHT),
                "half": photo.resize((256, 256)), "dark": Image.eval(photo, lambda v: v // 3)}
    box = [160.0, 40.0, 120.0, 150.0]  # the face, roughly, in the 512-px photograph
    for i, (name, image) in enumerate(variants.items(), start=1):
        image.save(faces / f"{name}.png")
        scale = image.width / 512
        x, y, w, h = (v * scale for v in box)
        if name == "flipped":
            x = image.width - x - w
        images.append({"id": i, "file_name": f"{name}.png", "width": image.width, "height": image.height})
        annotations.append({"id": i, "image_id": i, "category_id": 1, "bbox": [x, y, w, h], "area": w * h,
                            "iscrowd": 0})
        rows.append({"annotation_id": i, "lighting": "dark" if name == "dark" else "normal"})
    (faces / "coco.json").write_text(json.dumps({"images": images, "annotations": annotations,
                                                 "categories": [{"id": 1, "name": "face"}]}))
    pd.DataFrame(rows).to_csv(faces / "faces.csv", index=False)
    data = faces / "faces.md"
    data.write_text("---\nsplit: {coco: coco.json, attributes: faces.csv, annotation_id_column: annotation_id}\n"
                    "class_agnostic: true\nmin_group_size: 1\nattributes: {lighting: {}}\n---\n# Astronaut faces\n")
    (tmp_path / "mtcnn_entry.py").write_text(MTCNN_ENTRY)
    card = tmp_path / "mtcnn.md"
    card.write_text("---\ntask: detection\nmodel: {entry_point: 'mtcnn_entry:mtcnn'}\nnum_classes: 2\n"
                    "label_map: [__background__, face]\n---\n# MTCNN (facenet-pytorch)\n")
    out = tmp_path / "report"
    code, io = run_cli(capsys, "run", "--model", card, "--data", data, "--out", out, "--n-boot", "10", "-q",
                       "--device", "cpu", "--batch-size", "1")
    assert code == 0, io.err
    doc = json.loads((out / "results.json").read_text())
    recall = [m["value"] for m in doc["results"]["metrics"]
              if m["metric"] == "recall@0.50" and m["grouping"] == "overall"]
    assert len(recall) == 1 and 0 <= recall[0] <= 1
    print(f"MTCNN recall@0.50 on the astronaut faces: {recall[0]:.2f}")
