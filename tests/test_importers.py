"""`audit import`: FairFace, UTKFace and CelebA read in their published layouts; `${VAR}` paths in cards.

Each test writes a small fixture in the data set's exact layout (real file
names, column names and encodings), imports it through the CLI, and checks
the card, the group counts, the first rows and that `audit run --predictions`
accepts the result. Nothing downloads.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from audit.core.registry import load_any_data_card
from audit.cli import main
from audit.core.data import load_split
from audit.importers import COMMITTED, import_dataset
from audit.importers.utkface import MalformedName, age_group, parse_name

from importer_helpers import UTKFACE_GOOD, UTKFACE_MALFORMED, celeba, fairface, utkface


def _run_predictions(tmp_path, card, predictions: pd.DataFrame, capsys):
    preds = tmp_path / "preds.csv"
    predictions.to_csv(preds, index=False)
    out = tmp_path / "report"
    code = main(["run", "--data", str(card), "--predictions", str(preds), "--out", str(out), "--n-boot", "20",
                 "--n-perm", "20", "-q"])
    assert code == 0, capsys.readouterr().err
    return json.loads((out / "results.json").read_text())


# ---------------------------------------------------------------------------
# FairFace
# ---------------------------------------------------------------------------


def test_fairface_card_reads_the_published_label_file_in_place(tmp_path, monkeypatch, capsys):
    root = fairface(tmp_path / "fairface")
    monkeypatch.setenv("FAIRFACE_ROOT", str(root))
    card = tmp_path / "cards" / "fairface_val.md"
    assert main(["import", "fairface", "${FAIRFACE_ROOT}", "--out", str(card)]) == 0
    out = capsys.readouterr().out
    assert "8 faces" in out
    assert "race4: White 2, Black 1, Asian 3, Indian 1, Other 1" in out
    assert sorted(p.name for p in card.parent.iterdir()) == ["fairface_val.md"]  # no side file: the label file itself

    parsed = load_any_data_card(card)
    text = card.read_text()
    assert "manifest: '${FAIRFACE_ROOT}/fairface_label_val.csv'" in text and "image_root: ${FAIRFACE_ROOT}" in text
    assert parsed.split.table == root / "fairface_label_val.csv" and parsed.image_root == root
    assert parsed.classes == ["Female", "Male"] and parsed.label_column == "gender"
    assert [a.name for a in parsed.attributes] == ["race", "race4", "gender", "age"]
    assert parsed.attributes[1].bins["Asian"] == ["East Asian", "Southeast Asian"]
    assert parsed.attributes[1].bins["White"] == ["White", "Middle Eastern"]
    assert parsed.attributes[1].bins["Other"] == ["Latino_Hispanic"]
    assert "- `race`: White 1, Black 1, Latino_Hispanic 1, East Asian 2, Southeast Asian 1, Indian 1, Middle " \
           "Eastern 1." in text
    assert "- `age`: 0-2 1, 3-9 1, 10-19 1, 20-29 2, 30-39 1, 40-49 0, 50-59 1, 60-69 0, more than 70 1." in text
    for section in ("## Composition", "## Collection process", "## Labelling protocol", "## Licence",
                    "## Known biases and limits"):
        assert section in text

    frame = load_split(parsed)  # images exist and verify
    first = frame.iloc[0]
    assert (first["sample_id"], first["label"], first["race"], first["age"]) == ("val/1.jpg", 1, "East Asian", "3-9")
    assert first["image_path"] == str(root / "val" / "1.jpg")

    table = pd.read_csv(root / "fairface_label_val.csv")
    doc = _run_predictions(tmp_path, card, pd.DataFrame({"sample_id": table["file"], "pred": table["gender"]}), capsys)
    rows = pd.DataFrame(doc["results"]["metrics"])
    assert rows.query("metric == 'accuracy' and grouping == 'overall'")["value"].iloc[0] == 1.0
    assert set(rows.query("grouping == 'race4'")["group"]) == {"White", "Black", "Asian", "Indian", "Other"}


def test_fairface_unknown_value_is_one_line_naming_row_and_field(tmp_path, capsys):
    root = fairface(tmp_path / "fairface")
    path = root / "fairface_label_val.csv"
    path.write_text(path.read_text().replace("val/3.jpg,30-39,Male,White", "val/3.jpg,30-39,Male,Caucasian"))
    assert main(["import", "fairface", str(root), "--out", str(tmp_path / "c.md")]) == 2
    err = capsys.readouterr().err
    assert err == (f"error: {path}: row 3 (file 'val/3.jpg'): field 'race': expected one of White, Black, "
                   "Latino_Hispanic, East Asian, Southeast Asian, Indian, Middle Eastern, found 'Caucasian'\n")


def test_fairface_missing_image_is_named(tmp_path, capsys):
    root = fairface(tmp_path / "fairface")
    (root / "val" / "4.jpg").unlink()
    assert main(["import", "fairface", str(root), "--out", str(tmp_path / "c.md")]) == 2
    err = capsys.readouterr().err
    assert err == (f"error: {root / 'fairface_label_val.csv'}: row 4 (file 'val/4.jpg'): image file not found: "
                   f"{root / 'val' / '4.jpg'} (1 of 8 images missing)\n")


# ---------------------------------------------------------------------------
# `${VAR}` in card paths
# ---------------------------------------------------------------------------


def test_card_path_variables_error_lines(tmp_path, monkeypatch, capsys):
    root = fairface(tmp_path / "fairface")
    monkeypatch.setenv("FAIRFACE_ROOT", str(root))
    card = tmp_path / "fairface_val.md"
    import_dataset("fairface", "${FAIRFACE_ROOT}", card)
    (tmp_path / "p.csv").write_text("sample_id,pred\nval/1.jpg,Male\n")
    argv = ["run", "--data", str(card), "--predictions", str(tmp_path / "p.csv"), "--out", str(tmp_path / "o")]

    monkeypatch.delenv("FAIRFACE_ROOT")
    assert main(argv) == 2
    assert capsys.readouterr().err == (
        f"error: {card}: field 'split.manifest': expected the environment variable FAIRFACE_ROOT to be set to the "
        "data set's root directory, found it not set (export FAIRFACE_ROOT=/path/to/the/data/set)\n")

    monkeypatch.setenv("FAIRFACE_ROOT", str(tmp_path / "nowhere"))
    assert main(argv) == 2
    assert capsys.readouterr().err == (
        f"error: {card}: field 'split.manifest': expected the environment variable FAIRFACE_ROOT to name a "
        f"directory, found '{tmp_path / 'nowhere'}', which is not one\n")

    # the importer's ROOT argument says the same when the variable is not set
    monkeypatch.delenv("FAIRFACE_ROOT")
    assert main(["import", "fairface", "${FAIRFACE_ROOT}", "--out", str(card)]) == 2
    assert capsys.readouterr().err == (
        "error: ROOT ${FAIRFACE_ROOT}: expected the environment variable FAIRFACE_ROOT to be set to the data set's "
        "root directory, found it not set (export FAIRFACE_ROOT=/path/to/the/data/set)\n")


def test_root_given_as_plain_path_equal_to_the_variable_is_written_as_the_variable(tmp_path, monkeypatch):
    root = fairface(tmp_path / "fairface")
    monkeypatch.setenv("FAIRFACE_ROOT", str(root))
    card = import_dataset("fairface", str(root), tmp_path / "a.md").card
    assert "image_root: ${FAIRFACE_ROOT}" in card.read_text()
    monkeypatch.delenv("FAIRFACE_ROOT")
    card = import_dataset("fairface", str(root), tmp_path / "b.md").card
    assert f"image_root: {root}" in card.read_text()  # no variable set: the absolute path


def test_side_file_missing_names_the_import_command(tmp_path, monkeypatch, capsys):
    root = utkface(tmp_path / "utk")
    monkeypatch.setenv("UTKFACE_ROOT", str(root))
    card = tmp_path / "cards" / "utkface.md"
    import_dataset("utkface", "${UTKFACE_ROOT}", card)
    (card.parent / "utkface.csv").unlink()
    assert main(["data-card", str(card), "--no-write", "--no-images"]) == 2
    assert capsys.readouterr().err == (
        f"error: {card}: field 'split.manifest': expected {card.parent / 'utkface.csv'}, found no such file; "
        f"write it with: audit import utkface '${{UTKFACE_ROOT}}' --out {card} --split all\n")


# ---------------------------------------------------------------------------
# UTKFace
# ---------------------------------------------------------------------------


def test_utkface_parses_names_and_sets_malformed_ones_aside_counted(tmp_path, monkeypatch, capsys):
    root = utkface(tmp_path / "UTKFace-root")
    monkeypatch.setenv("UTKFACE_ROOT", str(root))
    card = tmp_path / "cards" / "utkface.md"
    assert main(["import", "utkface", "${UTKFACE_ROOT}", "--out", str(card)]) == 0
    out = capsys.readouterr().out
    assert "3 of 9 file names are malformed and set aside in utkface_malformed.csv" in out
    assert "1 files that are not images ignored (e.g. landmark_list_part1.txt)" in out
    assert "UTKFace/39_1_20170116174525125.jpg.chip.jpg (expected 4 fields age_gender_race_datetime, found 3 in " \
           "'39_1_20170116174525125')" in out

    malformed = pd.read_csv(card.parent / "utkface_malformed.csv")
    assert sorted(malformed["file"]) == sorted(f"UTKFace/{n}" for n in UTKFACE_MALFORMED)
    assert malformed.set_index("file").loc["UTKFace/55_0_0_20170116232725357jpg.chip.jpg", "problem"] == \
        "field 'datetime': expected digits, found '20170116232725357jpg'"
    manifest = pd.read_csv(card.parent / "utkface.csv", dtype=str)
    assert len(manifest) == len(UTKFACE_GOOD)  # every file is in exactly one of the two lists
    first = manifest.iloc[0].to_dict()
    assert first == {"image": "UTKFace/1_0_0_20161219140623097.jpg.chip.jpg", "age": "1", "age_group": "0-2",
                     "gender": "Male", "race": "White", "datetime": "20161219140623097"}

    text = card.read_text()
    assert "3 of 9 file names are malformed" in text
    assert "- `race`: White 2, Black 1, Asian 1, Indian 1, Others 1." in text
    assert "- `race4`: White 2, Black 1, Asian 1, Indian 1, Other 1." in text
    assert "- `label`: Female 3, Male 3." in text
    parsed = load_any_data_card(card)
    frame = load_split(parsed)
    assert frame["sample_id"].iloc[3] == "UTKFace/45_0_4_20170117191327564.jpg.chip.jpg"
    assert frame["age"].iloc[3] == "40-49"
    doc = _run_predictions(tmp_path, card, pd.DataFrame({"sample_id": manifest["image"], "pred": "Female"}), capsys)
    rows = pd.DataFrame(doc["results"]["metrics"])
    assert rows.query("metric == 'accuracy' and grouping == 'overall'")["value"].iloc[0] == pytest.approx(0.5)


def test_utkface_name_parser_examples():
    assert parse_name("26_1_2_20170116174525125.jpg.chip.jpg").race == "Asian"
    assert parse_name("part1/100_0_0_20170112213500903.jpg").age == 100
    with pytest.raises(MalformedName, match=r"field 'gender': expected 0 \(male\) or 1 \(female\), found 2"):
        parse_name("30_2_0_20170112213500903.jpg")
    with pytest.raises(MalformedName, match=r"field 'race': expected 0..4"):
        parse_name("30_0_5_20170112213500903.jpg")
    assert [age_group(a) for a in (0, 2, 3, 9, 10, 69, 70, 116)] == \
        ["0-2", "0-2", "3-9", "3-9", "10-19", "60-69", "more than 70", "more than 70"]


# ---------------------------------------------------------------------------
# CelebA
# ---------------------------------------------------------------------------


def test_celeba_reads_both_files_with_torchvisions_parser(tmp_path, monkeypatch, capsys):
    root = celeba(tmp_path / "celeba")
    monkeypatch.setenv("CELEBA_ROOT", str(root))
    card = tmp_path / "cards" / "celeba_test.md"
    assert main(["import", "celeba", "${CELEBA_ROOT}", "--out", str(card)]) == 0
    out = capsys.readouterr().out
    assert "4 images" in out
    assert "list_attr_celeba.txt: MD5 differs from the published file's (torchvision's record " \
           "75e246fa4810816ffd6ee81facbd244c)" in out  # a fixture, not the real file

    manifest = pd.read_csv(card.parent / "celeba_test.csv", dtype=str)
    assert list(manifest["image_id"]) == ["000003.jpg", "000004.jpg", "000005.jpg", "000007.jpg"]
    first = manifest.iloc[0]
    assert (first["image"], first["label"], first["gender"], first["age"], first["Blond_Hair"], first["Male"]) == \
        ("img_align_celeba/000003.jpg", "Blond_Hair", "female", "young", "1", "0")
    assert manifest.shape[1] == 6 + 40

    text = card.read_text()
    assert "- `label`: not_Blond_Hair 2, Blond_Hair 2." in text
    assert "- `gender`: female 2, male 2." in text and "- `age`: young 2, not_young 2." in text
    parsed = load_any_data_card(card)
    assert parsed.image_root == root and load_split(parsed)["image_path"].iloc[0] == \
        str(root / "img_align_celeba" / "000003.jpg")
    doc = _run_predictions(tmp_path, card, pd.DataFrame({"sample_id": manifest["image_id"],
                                                          "pred": "not_Blond_Hair"}), capsys)
    rows = pd.DataFrame(doc["results"]["metrics"])
    assert rows.query("metric == 'accuracy' and grouping == 'overall'")["value"].iloc[0] == pytest.approx(0.5)


def test_celeba_bad_value_is_one_line(tmp_path, capsys):
    root = celeba(tmp_path / "celeba")
    path = root / "list_attr_celeba.txt"
    lines = path.read_text().splitlines()
    lines[3] = lines[3].replace("-1", " 0", 1)  # 000002.jpg, first attribute
    path.write_text("\n".join(lines) + "\n")
    assert main(["import", "celeba", str(root), "--out", str(tmp_path / "c.md"), "--split", "all"]) == 2
    assert capsys.readouterr().err == \
        f"error: {path}: line 4 (000002.jpg): field '5_o_Clock_Shadow': expected 1 or -1, found 0\n"


def test_unknown_split_is_one_line(tmp_path, capsys):
    root = celeba(tmp_path / "celeba")
    assert main(["import", "celeba", str(root), "--out", str(tmp_path / "c.md"), "--split", "val"]) == 2
    assert capsys.readouterr().err == ("error: audit import celeba: --split: expected one of train, valid, test, all "
                                       "(the splits celeba publishes), found 'val'\n")


# ---------------------------------------------------------------------------
# The committed cards
# ---------------------------------------------------------------------------

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("source, split, name", COMMITTED)
def test_committed_cards_are_what_the_importer_writes_without_data(source, split, name):
    from audit.importers import template_card

    text = (REPO / "data_cards" / f"{name}.md").read_text(encoding="utf-8")
    assert text == template_card(source, split), \
        f"data_cards/{name}.md differs from audit.importers.template_card({source!r}, {split!r}); " \
        "regenerate it with audit.importers.write_committed_cards()"
    from audit.core.card_loaders import read_front_matter

    imported = read_front_matter(REPO / "data_cards" / f"{name}.md")[0]["imported_from"]
    assert imported["root"].startswith("${") and imported["root"] in imported["command"]  # the root stays a variable
    for section in ("## Composition", "## Collection process", "## Labelling protocol", "## Licence",
                    "## Known biases and limits"):
        assert section in text


def test_committed_cards_resolve_from_the_environment(tmp_path, monkeypatch, capsys):
    from audit.tasks.detection.cards import load_detection_data_card
    from audit.importers._common import group_counts

    from importer_helpers import facet

    monkeypatch.setenv("FAIRFACE_ROOT", str(fairface(tmp_path / "ff")))
    card = load_any_data_card(REPO / "data_cards" / "fairface_val.md")
    assert card.split.table == tmp_path / "ff" / "fairface_label_val.csv"
    assert len(load_split(card)) == 8

    monkeypatch.setenv("FACET_ROOT", str(facet(tmp_path / "facet")))
    assert load_detection_data_card(REPO / "data_cards" / "facet_detection.md").image_root == \
        tmp_path / "facet" / "images"
    assert group_counts(REPO / "data_cards" / "facet_detection.md")[0] == 5

    # a card whose side file the importer writes says how to write it
    monkeypatch.setenv("UTKFACE_ROOT", str(tmp_path))
    argv = ["data-card", str(REPO / "data_cards" / "utkface.md"), "--no-write", "--no-images"]
    if (REPO / "data_cards" / "utkface.csv").exists():
        pytest.skip("data_cards/utkface.csv exists on this machine (an imported copy)")
    assert main(argv) == 2
    assert capsys.readouterr().err == (
        f"error: {REPO / 'data_cards' / 'utkface.md'}: field 'split.manifest': expected "
        f"{REPO / 'data_cards' / 'utkface.csv'}, found no such file; write it with: audit import utkface "
        "'${UTKFACE_ROOT}' --out data_cards/utkface.md --split all\n")
