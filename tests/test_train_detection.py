"""``audit train`` for detection and instance segmentation: a small Faster / Mask R-CNN learns bright boxes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from detection_helpers import square_rle

from audit.cli import main

SIZE = 64


def make_box_split(root: Path, *, n_images: int, seed: int) -> Path:
    """A COCO split of 64x64 images: one or two bright upright rectangles ("people") on a dark plain background.

    Returns the data card. Each person has an inline ``shade`` attribute.
    """
    from PIL import Image

    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    images, anns = [], []
    for i in range(n_images):
        pixels = np.full((SIZE, SIZE, 3), 40, np.uint8)
        slots = rng.permutation(3)[:int(rng.integers(1, 3))]  # three columns, no overlap
        for slot in slots:
            bw, bh = int(rng.integers(10, 16)), int(rng.integers(28, 44))
            x = int(slot * 21 + rng.integers(0, 21 - min(bw, 20) + 1))
            x = min(x, SIZE - bw)
            y = int(rng.integers(0, SIZE - bh + 1))
            shade = "bright" if rng.random() < 0.5 else "pale"
            pixels[y:y + bh, x:x + bw] = (250, 230, 60) if shade == "bright" else (200, 200, 220)
            anns.append({"id": len(anns) + 1, "image_id": i + 1, "category_id": 1,
                         "bbox": [float(x), float(y), float(bw), float(bh)], "area": float(bw * bh), "iscrowd": 0,
                         "segmentation": square_rle(SIZE, SIZE, x, y, bw, bh), "attributes": {"shade": shade}})
        name = f"im{i:03d}.png"
        Image.fromarray(pixels).save(root / name)
        images.append({"id": i + 1, "file_name": name, "height": SIZE, "width": SIZE})
    coco = {"images": images, "annotations": anns, "categories": [{"id": 1, "name": "person"}]}
    (root / "coco.json").write_text(json.dumps(coco))
    card = root / "card.md"
    card.write_text("""---
split:
  coco: coco.json
  masks: coco.json
class_agnostic: true
min_group_size: 5
attributes:
  shade: {}
---
# Bright boxes

Made by the tests.
""")
    return card


@pytest.fixture(scope="module")
def splits(tmp_path_factory):
    root = tmp_path_factory.mktemp("boxes")
    return make_box_split(root / "train", n_images=24, seed=0), make_box_split(root / "test", n_images=12, seed=1)


def _recall50(out: Path) -> float:
    rows = pd.DataFrame(json.loads((out / "results.json").read_text())["results"]["metrics"])
    return float(rows.query("metric == 'recall@0.50' and grouping == 'overall'")["value"].iloc[0])


def _untrained_card(path: Path, task: str) -> Path:
    entry = "person_maskrcnn" if task == "instance_segmentation" else "person_fasterrcnn"
    path.write_text(f"""---
task: {task}
model: {{entry_point: "audit.train.detection:{entry}"}}
num_classes: 2
label_map: [__background__, person]
---
# Untrained
""")
    return path


@pytest.fixture(scope="module")
def trained(splits, tmp_path_factory):
    from audit.train.backbone import resnet18_trunk
    from audit.train.detection import train_detector

    torch.manual_seed(0)
    trunk = resnet18_trunk()
    out = tmp_path_factory.mktemp("models") / "boxes.md"
    summary = train_detector(splits[0], trunk=trunk, provenance={"source": "none"}, out_card=out, strategy="full",
                             task="instance_segmentation", steps=30, batch_size=4, lr=0.02)
    return trunk, out, summary


def test_trained_mask_rcnn_audits_and_beats_untrained(splits, trained, tmp_path, capsys):
    _trunk, card, summary = trained
    assert summary["task"] == "instance_segmentation" and summary["n_train"] == 24
    assert summary["n_people"] == len(json.loads((splits[0].parent / "coco.json").read_text())["annotations"])
    assert summary["epochs"] * 6 == summary["steps"] and set(summary["losses"]) >= {"classifier", "box_reg", "mask"}
    weights = card.with_suffix(".pth")
    assert weights.is_file() and weights.stat().st_size < 5e6
    text = card.read_text()
    for heading in ("## Model details", "## Intended use", "## Training data", "## Training procedure", "## Caveats"):
        assert heading in text
    assert "Strategy `full`" in text and "seed 0" in text and "random initialisation" in text

    out = tmp_path / "trained"
    args = ["--data", str(splits[1]), "--n-boot", "20", "-q", "--device", "cpu", "--no-thumbnails"]
    assert main(["run", "--model", str(card), "--out", str(out), *args]) == 0, capsys.readouterr().err
    doc = json.loads((out / "results.json").read_text())
    assert doc["provenance"]["task"] == "instance_segmentation"
    detections = json.loads((out / "detections.json").read_text())
    assert detections and all("segmentation" in d for d in detections)
    untrained = tmp_path / "untrained"
    torch.manual_seed(0)
    assert main(["run", "--model", str(_untrained_card(tmp_path / "u.md", "instance_segmentation")),
                 "--out", str(untrained), *args]) == 0, capsys.readouterr().err
    trained_recall, untrained_recall = _recall50(out), _recall50(untrained)
    assert trained_recall >= 0.8 and trained_recall >= untrained_recall + 0.3, (trained_recall, untrained_recall)


def test_card_entry_point_and_weights_reload_identically(splits, trained):
    from PIL import Image
    from torchvision.transforms.functional import pil_to_tensor

    from audit.core.card_loaders import load_model_card
    from audit.tasks.detection.inference import build_detector
    from audit.train.detection import person_maskrcnn

    trunk, card_path, _ = trained
    card = load_model_card(card_path)
    assert card.model.entry_point == "audit.train.detection:person_maskrcnn" and card.weights.path.name == "boxes.pth"
    net = build_detector(card)
    # the trunk passed in was trained in place and is the saved backbone
    for name, value in trunk.state_dict().items():
        assert torch.equal(net.backbone.state_dict()[name], value), name
    again = person_maskrcnn(num_classes=2)
    again.load_state_dict(torch.load(card_path.with_suffix(".pth"), weights_only=True))
    again.eval()
    images = [pil_to_tensor(Image.open(p).convert("RGB")).float().div(255)
              for p in sorted(splits[1].parent.glob("im00*.png"))[:3]]
    with torch.inference_mode():
        a, b = net(images), again(images)
    assert any(len(o["boxes"]) for o in a)
    for x, y in zip(a, b):
        assert set(x) == {"boxes", "labels", "scores", "masks"}
        for key in x:
            assert torch.equal(x[key], y[key]), key


def test_head_strategy_leaves_trunk_bit_identical(splits, tmp_path):
    from audit.train.backbone import resnet18_trunk
    from audit.train.detection import train_detector

    trunk = resnet18_trunk()
    with torch.no_grad():  # non-trivial BatchNorm statistics, which train mode would overwrite
        for m in trunk.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.1, 0.1)
                m.running_var.uniform_(0.5, 1.5)
    before = {k: v.clone() for k, v in trunk.state_dict().items()}
    summary = train_detector(splits[0], trunk=trunk, provenance={"source": "none"}, out_card=tmp_path / "head.md",
                             strategy="head", steps=2, batch_size=4)
    assert summary["strategy"] == "head" and summary["task"] == "detection"
    after = trunk.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    saved = torch.load(tmp_path / "head.pth", weights_only=True)
    assert all(torch.equal(saved[f"backbone.{k}"], v) for k, v in before.items())
    assert not any(k.startswith(("roi_heads.mask_", "mask_")) for k in saved)  # detection: Faster R-CNN


def test_detection_card_with_bad_entry_point(splits, tmp_path, capsys):
    from audit.core.card_loaders import load_model_card
    from audit.errors import CardError, ModelError

    card = tmp_path / "bad.md"
    card.write_text("""---
task: detection
model: {entry_point: "audit.train.detection:no_such_builder"}
num_classes: 2
label_map: [__background__, person]
---
""")
    code = main(["run", "--model", str(card), "--data", str(splits[1]), "--out", str(tmp_path / "out"), "-q"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.count("\n") == 0
    assert err.endswith(f"{card}: field 'model.entry_point': 'audit.train.detection' has no attribute "
                        "'no_such_builder'"), err
    with pytest.raises(ModelError):
        from audit.tasks.detection.inference import build_detector

        build_detector(load_model_card(card))

    card.write_text(card.read_text().replace('"audit.train.detection:no_such_builder"', "person_maskrcnn"))
    with pytest.raises(CardError) as info:
        load_model_card(card)
    assert str(info.value) == (f"{card}: field 'model.entry_point': expected 'package.module:function' returning a "
                               "torchvision-style detector, found 'person_maskrcnn'")
    card.write_text(card.read_text().replace("model: {entry_point: person_maskrcnn}",
                                             "model: {entry_point: 'a:b', architecture: fasterrcnn_resnet50_fpn}"))
    with pytest.raises(CardError, match="field 'model': expected a mapping with exactly one of 'architecture', "
                                        "'torchscript' or 'entry_point'"):
        load_model_card(card)


def test_bad_arguments_fail_before_training(splits, tmp_path):
    from audit.errors import AuditError
    from audit.train.backbone import resnet18_trunk
    from audit.train.detection import train_detector

    kwargs = {"trunk": resnet18_trunk(), "provenance": {}, "out_card": tmp_path / "m.md"}
    with pytest.raises(AuditError, match=r"^hyperparameter 'momentun': expected one of lr, momentum, "):
        train_detector(splits[0], momentun=0.5, **kwargs)
    with pytest.raises(AuditError, match=r"^hyperparameter 'batch_size': expected a positive integer, found 0$"):
        train_detector(splits[0], batch_size=0, **kwargs)
    with pytest.raises(AuditError, match=r"^task: expected one of detection, instance_segmentation, found 'keypoints'"):
        train_detector(splits[0], task="keypoints", **kwargs)
    assert not (tmp_path / "m.md").exists() and not (tmp_path / "m.pth").exists()
