"""Split loading, model building, inference and prediction files, piece by piece."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from audit._io import atomic_write_text
from audit.core.card_loaders import load_model_card
from audit.core.registry import load_any_data_card
from audit.core.data import fingerprint_split, load_split
from audit.errors import CardError, DataError, ModelError, PredictionError
from audit.core.inference import load_predictions_file, run_inference
from audit.core.models import build_model, build_transform, select_device
from slice_helpers import make_model, make_split, write_images


def test_manifest_split(tmp_path):
    split = make_split(tmp_path, n=12)
    frame = load_split(load_any_data_card(split["card"]))
    assert list(frame.columns) == ["sample_id", "image_path", "label", "skin_type", "gender", "age"]
    assert list(frame["sample_id"]) == list(split["frame"]["id"])
    assert list(frame["label"]) == [0 if s == "cat" else 1 for s in split["frame"]["species"]]
    assert frame["image_path"].iloc[0] == str(tmp_path / "data" / "images" / "s000.png")
    assert set(frame["skin_type"]) <= {"I", "II", "III", "IV", "V", "VI"}  # raw values; the engine bins them


def test_parquet_manifest_and_missing_attribute_values(tmp_path):
    split = make_split(tmp_path, n=12)
    table = split["frame"].copy()
    table.loc[3, "gender"] = None
    table.to_parquet(tmp_path / "data" / "manifest.parquet")
    card = split["card"]
    card.write_text(card.read_text().replace("manifest.csv", "manifest.parquet"))
    frame = load_split(load_any_data_card(card))
    assert frame["gender"].iloc[3] is None


def test_empty_label_is_reported(tmp_path):
    split = make_split(tmp_path, n=6)
    table = split["frame"].copy()
    table.loc[2, "species"] = ""
    table.to_csv(split["manifest"], index=False)
    with pytest.raises(DataError) as info:
        load_split(load_any_data_card(split["card"]))
    assert str(info.value) == (
        f"{split['manifest']}: row 3 (id 's002'): field 'species': unknown label an empty value; "
        "expected one of: cat, dog"
    )


def make_imagefolder(tmp_path: Path) -> Path:
    for label, name in enumerate(("cat", "dog")):
        write_images(tmp_path / "folder" / name, [f"{name}{i}" for i in range(3)], [label] * 3)
    attrs = pd.DataFrame({"path": ["cat/cat0.png", "dog/dog2.png"], "skin": ["II", "V"]})
    attrs.to_csv(tmp_path / "attrs.csv", index=False)
    card = tmp_path / "card.md"
    card.write_text(
        textwrap.dedent(
            """\
            ---
            split: {imagefolder: folder, attributes: attrs.csv, id_column: path}
            classes: [cat, dog]
            attributes:
              skin_type: {column: skin, scale: fitzpatrick}
            ---
            # ImageFolder split
            """
        )
    )
    return card


def test_imagefolder_split(tmp_path):
    card = make_imagefolder(tmp_path)
    frame = load_split(load_any_data_card(card))
    assert list(frame["sample_id"]) == [f"cat/cat{i}.png" for i in range(3)] + [f"dog/dog{i}.png" for i in range(3)]
    assert list(frame["label"]) == [0, 0, 0, 1, 1, 1]
    assert list(frame["skin_type"]) == ["II", None, None, None, None, "V"]  # no row -> unknown group


def test_imagefolder_errors(tmp_path):
    card = make_imagefolder(tmp_path)
    attrs = pd.read_csv(tmp_path / "attrs.csv")
    attrs.loc[2] = ["dog/dog9.png", "I"]
    attrs.to_csv(tmp_path / "attrs.csv", index=False)
    with pytest.raises(DataError) as info:
        load_split(load_any_data_card(card))
    assert str(info.value) == f"{tmp_path / 'attrs.csv'}: row 3 (id 'dog/dog9.png'): image file not found: {tmp_path / 'folder' / 'dog/dog9.png'}"
    attrs.drop(index=2).to_csv(tmp_path / "attrs.csv", index=False)
    (tmp_path / "folder" / "cow").mkdir()
    with pytest.raises(DataError) as info:
        load_split(load_any_data_card(card))
    assert str(info.value) == f"{tmp_path / 'folder'}: class folder 'cow': unknown label 'cow'; expected one of: cat, dog"


def test_fingerprint_tracks_images(tmp_path):
    split = make_split(tmp_path, n=6)
    card = load_any_data_card(split["card"])
    frame = load_split(card)
    before = fingerprint_split(card, frame)
    assert fingerprint_split(card, frame) == before
    image = split["images"] / "s001.png"
    image.write_bytes(image.read_bytes() + b"\0")
    assert fingerprint_split(card, frame) != before


@pytest.mark.parametrize("num_workers", [0, 1])
def test_inference_outputs_and_load_time_decode_error(tmp_path, num_workers):
    split = make_split(tmp_path, n=10)
    data = load_any_data_card(split["card"])
    card = load_model_card(make_model(tmp_path))
    model, transform = build_model(card), build_transform(card)
    frame = load_split(data)
    # label_map order differs from the data card's: scores must be reordered
    preds = run_inference(model, frame, transform=transform, classes=["cat", "dog"], label_map=["cat", "dog"],
                          batch_size=4, num_workers=num_workers, progress=False)
    swapped = run_inference(model, frame, transform=transform, classes=["dog", "cat"], label_map=["cat", "dog"],
                            batch_size=4, num_workers=num_workers, progress=False)
    assert np.allclose(preds["score_cat"], swapped["score_cat"])
    assert list(preds.columns) == ["sample_id", "score_cat", "score_dog", "pred"]
    assert np.allclose(preds[["score_cat", "score_dog"]].sum(axis=1), 1)
    assert list(preds["pred"]) == list(np.argmax(preds[["score_cat", "score_dog"]].to_numpy(), axis=1))

    (split["images"] / "s004.png").write_bytes(b"garbage")
    frame = load_split(data, verify_images=False)
    with pytest.raises(DataError) as info:
        run_inference(model, frame, transform=transform, classes=["cat", "dog"], label_map=["cat", "dog"],
                      batch_size=4, num_workers=num_workers, progress=False, source="m.csv")
    assert str(info.value) == (
        f"m.csv: image 's004': cannot read image {split['images'] / 's004.png'}: not a recognised image format"
    )


def test_select_device():
    assert select_device("cpu") == torch.device("cpu")
    assert select_device(None).type in {"cpu", "cuda", "mps"}
    with pytest.raises(ModelError, match="^device: expected cpu, cuda or mps, found 'tpu'$"):
        select_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(ModelError, match="CUDA is not available"):
            select_device("cuda")


def model_card(tmp_path: Path, model: str, weights: str = "null", extra: str = "") -> Path:
    path = tmp_path / "models" / "m.md"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        f"---\ntask: classification\nmodel: {model}\nweights: {weights}\nnum_classes: 2\n"
        f"label_map: [cat, dog]\npreprocessing: {{resize: [16, 16], mean: [0.5], std: [0.5]}}\n{extra}---\n# m\n"
    )
    return path


def test_torchvision_architecture_with_local_state_dict(tmp_path):
    import torchvision

    torch.manual_seed(0)
    reference = torchvision.models.get_model("squeezenet1_1", weights=None, num_classes=2)
    (tmp_path / "models").mkdir()
    torch.save({"state_dict": reference.state_dict()}, tmp_path / "models" / "w.pth")
    card = load_model_card(model_card(tmp_path, "{architecture: squeezenet1_1}", "{path: w.pth}"))
    model = build_model(card)
    x = torch.rand(1, 3, 64, 64)
    assert torch.equal(model(x), reference.eval()(x))

    torch.save(torchvision.models.get_model("squeezenet1_1", num_classes=3).state_dict(), tmp_path / "models" / "w.pth")
    with pytest.raises(ModelError, match=r"w\.pth: weights do not fit the model of .*m\.md: "):
        build_model(card)


def test_weights_enum_uses_torchvision_and_reports_no_network(tmp_path, monkeypatch):
    from torchvision.models._api import WeightsEnum

    def offline(self, *args, **kwargs):
        raise OSError("network unreachable")

    monkeypatch.setattr(WeightsEnum, "get_state_dict", offline)
    path = model_card(tmp_path, "{architecture: resnet18}", "{enum: ResNet18_Weights.IMAGENET1K_V1}").read_text()
    path = path.replace("num_classes: 2\nlabel_map: [cat, dog]\npreprocessing: {resize: [16, 16], mean: [0.5], std: [0.5]}\n",
                        "num_classes: 1000\nlabel_map: [" + ", ".join(f"c{i}" for i in range(1000)) + "]\n")
    card_path = tmp_path / "models" / "m.md"
    card_path.write_text(path)
    card = load_model_card(card_path)
    assert card.preprocessing is None
    transform = build_transform(card)  # the enum's own transforms, no download needed
    assert "ImageClassification" in type(transform).__name__
    with pytest.raises(ModelError) as info:
        build_model(card)
    assert str(info.value) == (
        f"{card_path}: field 'weights.enum': cannot fetch weights 'ResNet18_Weights.IMAGENET1K_V1' "
        "(no network and not in the torch hub cache?): network unreachable"
    )


def test_torchscript_and_entry_point_errors(tmp_path):
    from tiny_model import tiny_cnn

    (tmp_path / "models").mkdir()
    torch.jit.script(tiny_cnn(num_classes=2)).save(str(tmp_path / "models" / "m.pt"))
    card = load_model_card(model_card(tmp_path, "{torchscript: m.pt}"))
    assert build_model(card)(torch.rand(2, 3, 16, 16)).shape == (2, 2)

    card = load_model_card(model_card(tmp_path, "{entry_point: 'builtins:dict'}"))
    with pytest.raises(ModelError, match=r"expected 'builtins:dict' to return a torch\.nn\.Module, found dict$"):
        build_model(card)
    card = load_model_card(model_card(tmp_path, "{entry_point: 'os.path:join'}"))
    with pytest.raises(ModelError, match=r"field 'model\.entry_point': calling 'os\.path:join' failed: "):
        build_model(card)
    card = load_model_card(model_card(tmp_path, "{entry_point: 'no_such_module_xyz:f'}"))
    with pytest.raises(ModelError, match=r"field 'model\.entry_point': cannot import 'no_such_module_xyz'"):
        build_model(card)
    card = load_model_card(model_card(tmp_path, "{entry_point: 'tiny_model:tiny_cnn'}", "{path: nope.pth}"))
    with pytest.raises(ModelError) as info:
        build_model(card)
    assert str(info.value) == f"{card.path}: field 'weights.path': weights file not found: {tmp_path / 'models' / 'nope.pth'}"


def test_label_map_must_name_the_data_classes(tmp_path):
    from audit.pipeline import audit_split

    split = make_split(tmp_path, n=6)
    card = make_model(tmp_path)
    card.write_text(card.read_text().replace("{0: cat, 1: dog}", "{0: cat, 1: cow}"))
    with pytest.raises(CardError) as info:
        audit_split(data=split["card"], model=card)
    assert str(info.value) == f"{card}: field 'label_map': expected the data card's classes (cat, dog), found ['cat', 'cow']"


def test_prediction_files(tmp_path):
    ids = ["a", "b", "c"]
    path = tmp_path / "p.csv"
    pd.DataFrame({"sample_id": ids, "pred": [1, "", "cat"]}).to_csv(path, index=False)
    out = load_predictions_file(path, sample_ids=ids, classes=["cat", "dog"])
    assert list(out["pred"]) == [1, -1, 0]

    pd.DataFrame({"sample_id": ids, "pred": ["dog", "cow", None]}).to_csv(path, index=False)
    with pytest.raises(PredictionError) as info:
        load_predictions_file(path, sample_ids=ids, classes=["cat", "dog"])
    assert str(info.value) == f"{path}: sample 'b': field 'pred': expected a class name (cat, dog) or index 0..1, found 'cow'"

    pd.DataFrame({"sample_id": ids, "score_cat": [0.9, 0.2, None], "score_dog": [0.1, 0.8, None]}).to_csv(path, index=False)
    out = load_predictions_file(path, sample_ids=ids, classes=["cat", "dog"])
    assert list(out["pred"]) == [0, 1, -1]

    pd.DataFrame({"sample_id": ids, "score_cat": [0.9, 0.2, 0.5]}).to_csv(path, index=False)
    with pytest.raises(PredictionError, match=r"expected a score column for every class, missing: score_dog$"):
        load_predictions_file(path, sample_ids=ids, classes=["cat", "dog"])

    pd.DataFrame({"sample_id": ["a", "a", "b"], "pred": [0, 0, 0]}).to_csv(path, index=False)
    with pytest.raises(PredictionError) as info:
        load_predictions_file(path, sample_ids=ids, classes=["cat", "dog"])
    assert str(info.value) == f"{path}: row 2 (id 'a'): duplicate sample id (first seen in row 1)"

    many = [f"x{i}" for i in range(9)]
    pd.DataFrame({"sample_id": many, "pred": 0}).to_csv(path, index=False)
    with pytest.raises(PredictionError) as info:
        load_predictions_file(path, sample_ids=ids, classes=["cat", "dog"])
    assert str(info.value) == (
        f"{path}: sample ids do not match the split: 3 split ids missing ('a', 'b', 'c'); "
        "9 ids not in the split ('x0', 'x1', 'x2', 'x3', 'x4' and 4 more)"
    )


def test_atomic_write_leaves_target_intact_on_failure(tmp_path, monkeypatch):
    target = tmp_path / "results.json"
    atomic_write_text(target, "old")

    def broken(*args):
        raise OSError("disk full")

    monkeypatch.setattr(os, "fsync", broken)
    with pytest.raises(OSError):
        atomic_write_text(target, "new")
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results.json"]


def test_notebook_api_and_html_escaping(tmp_path):
    from audit.pipeline import audit_split, results_document
    from audit.report import render_html

    split = make_split(tmp_path, n=24)
    table = split["frame"].copy()
    table["gender"] = np.where(np.arange(24) % 2, "<script>alert(1)</script>", "female")
    table.to_csv(split["manifest"], index=False)
    preds = tmp_path / "p.csv"
    pd.DataFrame({"sample_id": table["id"], "pred": table["species"]}).to_csv(preds, index=False)
    result = audit_split(data=split["card"], predictions=preds, n_boot=10, n_perm=10)
    frame = result.to_frame()
    assert {"grouping", "group", "metric", "class", "value", "lower", "upper", "n", "interval", "small_group"} <= set(frame)
    assert hasattr(result, "_repr_html_")
    assert not (tmp_path / "predictions.parquet").exists()  # no out_dir: nothing written
    html = render_html(results_document(result, provenance={}))
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
