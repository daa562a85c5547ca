"""Data card and model card parsing and validation, with exact error messages."""

from __future__ import annotations

from pathlib import Path

import pytest

from audit.core.card_loaders import load_model_card
from audit.core.registry import load_any_data_card
from audit.errors import CardError

REPO = Path(__file__).resolve().parents[1]

DATA = """\
split:
  manifest: data/manifest.csv
  id_column: id
  image_column: file
label_column: species
classes: [cat, dog]
attributes:
  skin_type:
    column: skin
    scale: fitzpatrick
  monk_tone:
    column: monk
    scale: monk
    bins: {light: [1, 2, 3, 4, 5], dark: [6, 7, 8, 9, 10]}
  gender: {}
intersections:
  - [gender, skin_type]
reference_groups:
  skin_type: lighter
  gender × skin_type: male × lighter
"""

MODEL = """\
task: classification
model:
  architecture: resnet18
weights: null
num_classes: 2
label_map: {0: cat, 1: dog}
preprocessing:
  resize: [64, 64]
  mean: [0.485, 0.456, 0.406]
  std: [0.229, 0.224, 0.225]
"""


def write(tmp_path: Path, rel: str, front: str, body: str = "# Card\n") -> Path:
    path = tmp_path / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"---\n{front}---\n{body}", encoding="utf-8")
    return path


def patched(text: str, old: str, new: str) -> str:
    assert old in text, old
    return text.replace(old, new)


def test_valid_data_card(tmp_path):
    card = load_any_data_card(write(tmp_path, "data_cards/x.md", DATA, "# Motivation\nWhy.\n"))
    assert card.name == "x"
    assert card.split.kind == "manifest"
    assert card.split.table == tmp_path / "data_cards" / "data" / "manifest.csv"
    assert card.image_root == card.split.table.parent
    assert card.classes == ["cat", "dog"]
    skin, monk, gender = card.attributes
    assert skin.bins == {"lighter": [1, 2, 3], "darker": [4, 5, 6]}  # Fitzpatrick default
    assert monk.bins["dark"] == [6, 7, 8, 9, 10]
    assert gender.column == "gender" and gender.scale == "nominal" and gender.bins is None
    assert card.intersections == [("gender", "skin_type")]
    assert card.reference_groups == {"skin_type": "lighter", "gender × skin_type": "male × lighter"}
    assert card.min_group_size == 50
    assert "# Motivation" in card.body


def test_roman_numerals_normalised(tmp_path):
    front = patched(DATA, "    scale: fitzpatrick\n", "    scale: fitzpatrick\n    bins: {light: [I, II], mid: [III, 4], dark: ['V', VI]}\n")
    card = load_any_data_card(write(tmp_path, "data_cards/x.md", front))
    assert card.attributes[0].bins == {"light": [1, 2], "mid": [3, 4], "dark": [5, 6]}


def test_absolute_paths_are_kept(tmp_path):
    front = patched(DATA, "manifest: data/manifest.csv", f"manifest: {tmp_path}/elsewhere/m.csv")
    card = load_any_data_card(write(tmp_path, "data_cards/x.md", front))
    assert card.split.table == tmp_path / "elsewhere" / "m.csv"


def test_imagefolder_split(tmp_path):
    front = patched(
        DATA,
        "  manifest: data/manifest.csv\n  id_column: id\n  image_column: file\nlabel_column: species\n",
        "  imagefolder: ../images\n  attributes: attrs.parquet\n  id_column: path\n",
    )
    card = load_any_data_card(write(tmp_path, "data_cards/x.md", front))
    assert card.split.kind == "imagefolder"
    assert card.split.folder == tmp_path / "images"
    assert card.image_root == card.split.folder
    assert card.label_column is None


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("label_column: species", "label_column: 3", "field 'label_column': expected a string, found 3"),
        ("label_column: species\n", "", "field 'label_column': expected a string, found nothing (the field is missing)"),
        ("classes: [cat, dog]", "classes: [cat, cat]", "field 'classes[1]': expected a name not listed before, found 'cat'"),
        ("classes: [cat, dog]", "classes: cat", "field 'classes': expected a non-empty list of strings, found 'cat'"),
        (
            "    scale: fitzpatrick\n",
            "    scale: fitzpatrick\n    bins: {lighter: [1, 2, 7]}\n",
            "field 'attributes.skin_type.bins.lighter[2]': expected a fitzpatrick value 1..6 or I..VI, found 7",
        ),
        (
            "    scale: fitzpatrick\n",
            "    scale: fitzpatrick\n    bins: {a: [1, 2], b: [II]}\n",
            "field 'attributes.skin_type.bins.b[0]': expected a value not already in bin 'a', found 'II'",
        ),
        ("    scale: fitzpatrick", "    scale: skin", "field 'attributes.skin_type.scale': expected one of nominal, ordinal, fitzpatrick, monk, found 'skin'"),
        (
            "  - [gender, skin_type]",
            "  - [gender, age]",
            "field 'intersections[0][1]': expected a declared attribute (skin_type, monk_tone, gender), found 'age'",
        ),
        (
            "  skin_type: lighter\n",
            "  skin: lighter\n",
            "field 'reference_groups.skin': expected a grouping name (overall, skin_type, monk_tone, gender, gender × skin_type), found 'skin'",
        ),
        ("split:\n", "min_group_size: 0\nsplit:\n", "field 'min_group_size': expected an integer >= 1, found 0"),
        ("  image_column: file\n", "  image_column: file\n  imagefolder: x\n", "field 'split': expected a mapping with exactly one of 'manifest' or 'imagefolder', found a mapping with keys manifest, id_column, image_column, imagefolder"),
        ("manifest: data/manifest.csv", "manifest: data/manifest.txt", "field 'split.manifest': expected a .csv or .parquet file, found 'data/manifest.txt'"),
        ("split:\n", "colour: blue\nsplit:\n", None),
    ],
)
def test_data_card_errors(tmp_path, old, new, message):
    path = write(tmp_path, "data_cards/x.md", patched(DATA, old, new))
    with pytest.raises(CardError) as info:
        load_any_data_card(path)
    text = str(info.value)
    assert "\n" not in text
    if message is None:
        assert text.startswith(f"{path}: field 'colour': expected one of the known fields (")
        assert text.endswith("found an unknown field")
    else:
        assert text == f"{path}: {message}"


def test_relative_card_path_is_named_as_given(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write(tmp_path, "data_cards/x.md", patched(DATA, "label_column: species", "label_column: 3"))
    with pytest.raises(CardError, match=r"^data_cards/x\.md: field 'label_column': expected a string, found 3$"):
        load_any_data_card("data_cards/x.md")


def test_front_matter_problems(tmp_path):
    plain = tmp_path / "a.md"
    plain.write_text("# no front matter\n")
    with pytest.raises(CardError) as info:
        load_any_data_card(plain)
    assert str(info.value) == f"{plain}: expected YAML front matter between '---' lines at the top of the file, found none"
    bad = write(tmp_path, "b.md", "split: [unclosed\n")
    with pytest.raises(CardError, match=r"b\.md: invalid YAML front matter \(line \d+\)"):
        load_any_data_card(bad)
    with pytest.raises(CardError) as info:
        load_any_data_card(tmp_path / "missing.md")
    assert str(info.value) == f"{tmp_path / 'missing.md'}: card file not found"


def test_valid_model_card(tmp_path):
    card = load_model_card(write(tmp_path, "models/m.md", MODEL))
    assert card.model.kind == "architecture" and card.model.architecture == "resnet18"
    assert card.weights is None and card.trust_checkpoint is False
    assert card.label_map == ["cat", "dog"]
    assert card.preprocessing.resize == (64, 64)


def test_model_card_with_weights_enum_needs_no_preprocessing(tmp_path):
    front = patched(MODEL, "weights: null", "weights: {enum: ResNet18_Weights.IMAGENET1K_V1}")
    front = patched(front, "num_classes: 2\nlabel_map: {0: cat, 1: dog}", "label_map: weights\n"
                    "class_map: {tabby: cat, Egyptian cat: cat, '151..268': dog}")
    front = front.split("preprocessing:")[0]
    card = load_model_card(write(tmp_path, "models/m.md", front))
    assert card.weights.enum == "ResNet18_Weights.IMAGENET1K_V1"
    assert card.preprocessing is None
    assert card.num_classes == 1000 and card.label_map[281] == "tabby"
    assert card.class_map[281] == "cat" and card.class_map[151] == "dog" and len(card.class_map) == 2 + 118


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        (
            "architecture: resnet18",
            "architecture: resnet999",
            "field 'model.architecture': expected a torchvision model name (see torchvision.models.list_models()), found 'resnet999'",
        ),
        ("task: classification", "task: captioning", "field 'task': expected 'classification' or 'semantic_segmentation', found 'captioning'"),
        (
            "weights: null",
            "weights: {enum: ResNet18_Weights.NOPE}",
            "field 'weights.enum': expected a torchvision weights enum such as 'ResNet18_Weights.IMAGENET1K_V1', found 'ResNet18_Weights.NOPE'",
        ),
        ("num_classes: 2", "num_classes: two", "field 'num_classes': expected an integer, found 'two'"),
        ("label_map: {0: cat, 1: dog}", "label_map: {0: cat, 2: dog}", "field 'label_map': expected one class name for each output index 0..1, found [0, 2]"),
        ("label_map: {0: cat, 1: dog}", "label_map: [cat, cat]", "field 'label_map.1': expected a class name not used by another output, found 'cat'"),
        ("weights: null", "weights: null\ntrust_checkpoint: yes please", "field 'trust_checkpoint': expected true or false, found 'yes please'"),
        ("resize: [64, 64]", "resize: [64]", "field 'preprocessing.resize': expected [height, width] as two positive integers, found [64]"),
        ("  std: [0.229, 0.224, 0.225]", "  std: [0.2, 0, 0.2]", "field 'preprocessing.std': expected positive numbers, found [0.2, 0, 0.2]"),
        (
            "  architecture: resnet18",
            "  architecture: resnet18\n  torchscript: m.pt",
            "field 'model': expected a mapping with exactly one of 'architecture', 'torchscript' or 'entry_point', found a mapping with keys architecture, torchscript",
        ),
        ("  architecture: resnet18", "  entry_point: not-a-module", "field 'model.entry_point': expected 'package.module:function', found 'not-a-module'"),
    ],
)
def test_model_card_errors(tmp_path, old, new, message):
    path = write(tmp_path, "models/x.md", patched(MODEL, old, new))
    with pytest.raises(CardError) as info:
        load_model_card(path)
    assert str(info.value) == f"{path}: {message}"


def test_missing_preprocessing_without_enum(tmp_path):
    path = write(tmp_path, "models/x.md", MODEL.split("preprocessing:")[0])
    with pytest.raises(CardError) as info:
        load_model_card(path)
    assert str(info.value) == (
        f"{path}: field 'preprocessing': expected a mapping with resize, mean, std (required without weights.enum), "
        "found nothing (the field is missing)"
    )


def test_checked_in_benchmark_cards_load_and_are_datasheets():
    """data_cards/benchmark_*.md (written by the demo; tests/test_demo.py checks they are current) load and
    carry every section of a datasheet."""
    from audit.tasks.detection.cards import load_detection_data_card

    paths = sorted((REPO / "data_cards").glob("benchmark_*.md"))
    assert len(paths) == 6
    for path in paths:
        card = load_detection_data_card(path) if "_detection_" in path.name else load_any_data_card(path)
        for heading in ("Motivation", "Composition", "Collection process", "Preprocessing", "Uses", "Distribution",
                        "Maintenance"):
            assert f"## {heading}" in card.body, (path.name, heading)



