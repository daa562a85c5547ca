"""``audit train``: strategies, pretrained weights, the written cards, and ``audit run`` on them."""

import textwrap

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from audit.core.card_loaders import load_model_card
from audit.cli import main
from audit.errors import ModelError
from audit.train import pretrain
from audit.train.backbone import resnet18_trunk
from audit.train.classification import train_classifier
from audit.train.pretrain import pretrained_trunk
from audit.train.segmentation import train_segmenter
from slice_helpers import make_split

PROV = {"source": "test"}


def _trunk(seed=1):
    torch.manual_seed(seed)
    return resnet18_trunk()


def _state(module):
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def _png(path, array):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.asarray(array, dtype=np.uint8)).save(path)


def make_seg_split(root, *, n=12, size=16, seed=0):
    """Grey images with a red block (class 1) and a blue block (class 2) at random places; border ignored."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        img = np.full((size, size, 3), 120, np.uint8)
        mask = np.zeros((size, size), np.uint8)
        for cls, colour in ((1, (230, 30, 30)), (2, (30, 30, 230))):
            top, left = rng.integers(1, size - 6, 2)
            img[top:top + 5, left:left + 5] = colour
            mask[top:top + 5, left:left + 5] = cls
        mask[:, 0] = 255
        _png(root / "data" / "images" / f"s{i}.png", img)
        _png(root / "data" / "masks" / f"s{i}.png", mask)
        rows.append({"id": f"s{i}", "file": f"images/s{i}.png", "mask": f"masks/s{i}.png",
                     "lighting": "dim" if i % 2 else "bright"})
    pd.DataFrame(rows).to_csv(root / "data" / "manifest.csv", index=False)
    card = root / "data_cards" / "seg.md"
    card.parent.mkdir(parents=True, exist_ok=True)
    card.write_text("---\n" + textwrap.dedent("""\
        split: {manifest: ../data/manifest.csv, id_column: id, image_column: file}
        image_root: ../data
        classes: [background, red, blue]
        attributes: {lighting: {column: lighting}}
        min_group_size: 2
        segmentation: {mask_column: mask, ignore_index: 255}
        """) + "---\n# Tiny segmentation split\n", encoding="utf-8")
    return card


def test_head_strategy_leaves_the_trunk_bit_identical_and_trains_the_head(tmp_path):
    split = make_split(tmp_path, n=32)
    trunk = _trunk()
    before = _state(trunk)
    summary = train_classifier(split["card"], trunk=trunk, provenance=PROV, out_card=tmp_path / "models" / "m.md",
                               strategy="head", epochs=3, seed=0)
    saved = torch.load(tmp_path / "models" / "m.pth", weights_only=True)
    for k, v in before.items():  # parameters and BatchNorm running statistics
        assert torch.equal(saved[f"trunk.{k}"], v), k
    torch.manual_seed(0)
    init = torch.nn.Linear(128, 2)
    assert not torch.equal(saved["head.weight"], init.weight)
    assert summary["strategy"] == "head" and summary["n_train"] == 32 and summary["epochs"] == 3


def test_finetune_trains_layer2_but_not_layer1(tmp_path):
    split = make_split(tmp_path, n=32)
    trunk = _trunk()
    before = _state(trunk)
    train_classifier(split["card"], trunk=trunk, provenance=PROV, out_card=tmp_path / "models" / "m.md",
                     strategy="finetune", epochs=2, seed=0)
    saved = torch.load(tmp_path / "models" / "m.pth", weights_only=True)
    frozen = [k for k in before if not k.startswith("layer2.")]
    assert all(torch.equal(saved[f"trunk.{k}"], before[k]) for k in frozen)
    assert not torch.equal(saved["trunk.layer2.0.conv1.weight"], before["layer2.0.conv1.weight"])
    assert not torch.equal(saved["trunk.layer2.1.bn2.running_mean"], before["layer2.1.bn2.running_mean"])


def test_training_is_deterministic(tmp_path):
    split = make_split(tmp_path, n=24)
    for name in ("a", "b"):
        train_classifier(split["card"], trunk=_trunk(), provenance=PROV, out_card=tmp_path / "models" / f"{name}.md",
                         strategy="finetune", epochs=1, seed=3)
    a = torch.load(tmp_path / "models" / "a.pth", weights_only=True)
    b = torch.load(tmp_path / "models" / "b.pth", weights_only=True)
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_local_weights_file_is_loaded(tmp_path):
    import torchvision

    torch.manual_seed(7)
    full = torchvision.models.resnet18(weights=None).state_dict()
    torch.save(full, tmp_path / "resnet18.pth")
    trunk, prov = pretrained_trunk(weights=tmp_path / "resnet18.pth")
    got = trunk.state_dict()
    assert set(got) == {k for k in full if k.split(".")[0] in ("conv1", "bn1", "layer1", "layer2")}
    assert all(torch.equal(got[k], full[k]) for k in got)
    assert prov["source"] == "local file" and len(prov["sha256"]) == 64
    # a trunk state dict loads too
    torch.save(got, tmp_path / "trunk.pth")
    again, _ = pretrained_trunk(weights=tmp_path / "trunk.pth")
    assert all(torch.equal(again.state_dict()[k], got[k]) for k in got)


class Payload:
    def __reduce__(self):
        return (print, ("code ran",))


def test_pickled_code_and_wrong_files_are_refused(tmp_path, capsys):
    torch.save({"conv1.weight": Payload()}, tmp_path / "evil.pth")
    with pytest.raises(ModelError, match="refused to load a checkpoint that contains objects other than tensors"):
        pretrained_trunk(weights=tmp_path / "evil.pth")
    assert "code ran" not in capsys.readouterr().out
    torch.save({"conv1.weight": torch.zeros(3)}, tmp_path / "bad.pth")
    with pytest.raises(ModelError, match=r"bad.pth: expected a ResNet-18 \(or its conv1..layer2 trunk\) state dict"):
        pretrained_trunk(weights=tmp_path / "bad.pth")
    with pytest.raises(ModelError, match=r"missing.pth: backbone weights file not found"):
        pretrained_trunk(weights=tmp_path / "missing.pth")


def test_source_pretraining_is_deterministic_cached_and_documented(tmp_path, monkeypatch):
    monkeypatch.setattr(pretrain, "SOURCE_TRAIN", 128)
    monkeypatch.setattr(pretrain, "SOURCE_TEST", 64)
    cache = tmp_path / "trunk.pth"
    trunk, prov = pretrained_trunk(cache=cache, seed=5)
    assert prov["source"] == "synthetic source-task pretraining" and prov["seed"] == 5
    assert 0 <= prov["source_accuracy"] <= 1 and prov["seconds"] > 0 and prov["cache"] == str(cache)
    other, _ = pretrained_trunk(seed=5)  # no cache: trained again, identically
    assert all(torch.equal(v, other.state_dict()[k]) for k, v in trunk.state_dict().items())
    monkeypatch.setattr(pretrain, "_pretrain", lambda seed: pytest.fail("the cache was not reused"))
    cached, prov2 = pretrained_trunk(cache=cache, seed=5)
    assert prov2 == prov
    assert all(torch.equal(v, cached.state_dict()[k]) for k, v in trunk.state_dict().items())
    assert torch.load(cache, weights_only=True)["provenance"]["version"] == pretrain.SOURCE_VERSION


def test_cli_trains_a_classifier_whose_card_audit_run_reads(tmp_path, capsys):
    split = make_split(tmp_path, n=48)
    trunk = _trunk()
    torch.save(trunk.state_dict(), tmp_path / "trunk.pth")
    card = tmp_path / "models" / "cls.md"
    code = main(["train", "--task", "classification", "--data", str(split["card"]), "--out", str(card),
                 "--strategy", "head", "--epochs", "40", "--backbone-weights", str(tmp_path / "trunk.pth"), "-q"])
    assert code == 0
    model_card = load_model_card(card)
    assert model_card.model.entry_point == "audit.train.models:trunk_classifier"
    assert model_card.weights.path == card.with_suffix(".pth") and model_card.label_map == ["cat", "dog"]
    assert model_card.preprocessing.resize == (8, 8)
    for heading in ("## Model details", "## Intended use", "## Training data", "## Training procedure", "## Caveats"):
        assert heading in model_card.body
    assert "Strategy `head`" in model_card.body and "loaded from the local file" in model_card.body
    assert "- class: cat" in model_card.body
    out = tmp_path / "report"
    assert main(["run", "--model", str(card), "--data", str(split["card"]), "--out", str(out), "-q",
                 "--n-boot", "20", "--n-perm", "20"]) == 0
    preds = pd.read_parquet(out / "predictions.parquet").set_index("sample_id")["pred"]
    truth = split["frame"].set_index("id")["species"].map({"cat": 0, "dog": 1})
    overall = float((preds == truth.loc[preds.index]).mean())
    assert overall >= 0.85  # the brighter class is easy: chance is about 0.5


def test_segmenter_learns_an_easy_task_and_audit_run_reads_its_card(tmp_path):
    data_card = make_seg_split(tmp_path)
    card = tmp_path / "models" / "seg.md"
    summary = train_segmenter(data_card, trunk=_trunk(), provenance=PROV, out_card=card, strategy="head",
                              epochs=40, seed=0, batch_size=4, lr=1e-2)
    assert summary["train_accuracy"] > 0.9  # pixel accuracy; the ignored border column is left out
    model_card = load_model_card(card)
    assert model_card.task == "semantic_segmentation"
    assert model_card.model.entry_point == "audit.train.models:trunk_segmenter"
    out = tmp_path / "report"
    assert main(["run", "--model", str(card), "--data", str(data_card), "--out", str(out), "-q",
                 "--n-boot", "20", "--n-perm", "20"]) == 0
    pred = np.asarray(Image.open(out / "predicted_masks" / "s0.png"))
    label = np.asarray(Image.open(tmp_path / "data" / "masks" / "s0.png"))
    valid = label != 255
    for cls in (1, 2):
        inter = ((pred == cls) & (label == cls) & valid).sum()
        union = (((pred == cls) | (label == cls)) & valid).sum()
        assert inter / union > 0.5


def test_wrong_kind_of_data_card_is_one_line(tmp_path, capsys):
    seg_card = make_seg_split(tmp_path)
    weights = tmp_path / "trunk.pth"
    torch.save(_trunk().state_dict(), weights)
    code = main(["train", "--task", "classification", "--data", str(seg_card), "--out", str(tmp_path / "m.md"),
                 "--backbone-weights", str(weights)])
    err = capsys.readouterr().err
    assert code == 2
    assert err == (f"error: {seg_card}: expected a classification data card, found a 'segmentation' block "
                   "(use --task semantic_segmentation)\n")


@pytest.mark.parametrize("argv, message", [
    (["--backbone-weights", "NotAWeightsEnum"],
     "error: backbone weights: expected a torchvision weights enum such as 'ResNet18_Weights.IMAGENET1K_V1', "
     "found 'NotAWeightsEnum'\n"),
    (["--out", "model.txt"], "error: audit train: --out: expected a model card path ending in .md, found 'model.txt'\n"),
    (["--data", "nowhere.md"], None),
])
def test_bad_input_is_one_line_and_exit_2(tmp_path, capsys, argv, message):
    args = {"--task": "classification", "--data": str(make_split(tmp_path, n=8)["card"]),
            "--out": str(tmp_path / "m.md"), "--backbone-weights": None}
    args.update(dict(zip(argv[::2], argv[1::2])))
    if args["--backbone-weights"] is None:
        torch.save(_trunk().state_dict(), tmp_path / "trunk.pth")
        args["--backbone-weights"] = str(tmp_path / "trunk.pth")
    code = main(["train", *[x for kv in args.items() for x in kv]])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and err.startswith("error: ")
    if message:
        assert err == message
    else:
        assert "nowhere.md" in err


def test_resize_sets_the_training_size_and_the_cards_preprocessing(tmp_path, capsys):
    split = make_split(tmp_path, n=8)  # 8x8 images
    torch.save(_trunk().state_dict(), tmp_path / "trunk.pth")
    card = tmp_path / "models" / "cls.md"
    common = ["--data", str(split["card"]), "--out", str(card), "--backbone-weights", str(tmp_path / "trunk.pth"),
              "--strategy", "head", "--epochs", "1", "-q"]
    assert main(["train", "--task", "classification", "--resize", "16", "12", *common]) == 0
    assert load_model_card(card).preprocessing.resize == (16, 12)
    code = main(["train", "--task", "detection", "--resize", "16", "16", *common])
    assert code == 2
    assert capsys.readouterr().err == ("error: audit train: --resize: expected only with --task classification, "
                                       "found --task detection\n")
