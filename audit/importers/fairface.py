"""FairFace (Kärkkäinen & Joo, WACV 2021): ``fairface_label_{train,val}.csv``, images under ``train/``, ``val/``.

The card reads the published label file as it is (no side file): the
``file`` column (``val/1.jpg``) is both the sample id and the image path
relative to the root, ``gender`` is the label, and the attributes are
``race`` (7 groups), ``race4`` (the same column binned into the paper's
four coarse groups: White = White + Middle Eastern, Black, Asian = East +
Southeast Asian, Indian, plus ``Other`` for Latino_Hispanic, which is kept,
not dropped), ``gender`` and ``age`` (the nine published age bins).
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from ..errors import DataError
from ._common import ImportResult, DataLocation, counts_markdown, group_counts, write_card

VARIABLE = "FAIRFACE_ROOT"
SPLITS = ("train", "val")
DEFAULT_SPLIT = "val"
COLUMNS = ["file", "age", "gender", "race", "service_test"]
GENDERS = ["Female", "Male"]
RACES = ["White", "Black", "Latino_Hispanic", "East Asian", "Southeast Asian", "Indian", "Middle Eastern"]
# The paper's coarse groups (its Table 1: White* = Western White + Middle Eastern, Asian* = East + Southeast Asian),
# as far as White, Black, Asian and Indian go; Latino_Hispanic has no place among the four and is kept as Other.
RACE4 = {"White": ["White", "Middle Eastern"], "Black": ["Black"], "Asian": ["East Asian", "Southeast Asian"],
         "Indian": ["Indian"], "Other": ["Latino_Hispanic"]}
AGES = ["0-2", "3-9", "10-19", "20-29", "30-39", "40-49", "50-59", "60-69", "more than 70"]
SERVICE_TEST = ["True", "False"]


def label_file(split: str) -> str:
    return f"fairface_label_{split}.csv"


def front_matter(root: DataLocation, split: str, command: str) -> dict:
    return {
        "pretty_name": f"FairFace, {split} split (gender classification by race, gender and age)",
        "license": "cc-by-4.0",
        "task_categories": ["image-classification"],
        "source_datasets": ["FairFace (Kärkkäinen & Joo, WACV 2021)"],
        "imported_from": {"source": "fairface", "split": split, "root": root.text, "command": command},
        "split": {"manifest": root.card(label_file(split)), "id_column": "file", "image_column": "file"},
        "image_root": root.card(),
        "label_column": "gender",
        "classes": list(GENDERS),
        "attributes": {
            "race": {"column": "race", "order": list(RACES)},
            "race4": {"column": "race", "bins": {k: list(v) for k, v in RACE4.items()}},
            "gender": {"column": "gender", "order": list(GENDERS)},
            "age": {"column": "age", "scale": "ordinal", "order": list(AGES)},
        },
        "intersections": [["race", "gender"], ["race4", "gender"]],
        "reference_groups": {"race4": "White", "race4 × gender": "White × Male"},
        "min_group_size": 50,
    }


def read_labels(path: Path) -> pd.DataFrame:
    """Read and check a FairFace label file; every value must be one the data set publishes."""
    if not path.is_file():
        raise DataError(f"{path}: file not found (FairFace publishes fairface_label_train.csv and "
                        "fairface_label_val.csv beside the train/ and val/ image folders)")
    try:
        table = pd.read_csv(path, dtype=str, keep_default_na=False)
    except Exception as exc:  # noqa: BLE001 - pandas raises many types for bad files
        raise DataError(f"{path}: cannot read table: {' '.join(str(exc).split())}") from None
    missing = [c for c in COLUMNS if c not in table.columns]
    if missing:
        raise DataError(f"{path}: expected the columns {','.join(COLUMNS)}, found {','.join(table.columns)} "
                        f"(missing {', '.join(missing)})")
    allowed = {"age": AGES, "gender": GENDERS, "race": RACES, "service_test": SERVICE_TEST}
    for column, values in allowed.items():
        bad = ~table[column].isin(values)
        if bad.any():
            i = int(bad.to_numpy().argmax())
            raise DataError(f"{path}: row {i + 1} (file '{table['file'].iat[i]}'): field '{column}': expected one of "
                            f"{', '.join(values)}, found {table[column].iat[i]!r}")
    empty = table["file"].str.strip() == ""
    if empty.any():
        raise DataError(f"{path}: row {int(empty.to_numpy().argmax()) + 1}: field 'file': expected an image path, "
                        "found an empty value")
    dup = table["file"].duplicated()
    if dup.any():
        i = int(dup.to_numpy().argmax())
        raise DataError(f"{path}: row {i + 1} (file '{table['file'].iat[i]}'): duplicate file")
    return table


def run(root: DataLocation, out: Path, split: str, command: str) -> ImportResult:
    path = root.path / label_file(split)
    table = read_labels(path)
    missing = [i for i, f in enumerate(table["file"]) if not os.path.isfile(root.path / f)]
    if missing:
        i = missing[0]
        raise DataError(f"{path}: row {i + 1} (file '{table['file'].iat[i]}'): image file not found: "
                        f"{root.path / table['file'].iat[i]} ({len(missing):,} of {len(table):,} images missing)")
    front = front_matter(root, split, command)
    write_card(out, front, body(split, None))
    n, counts = group_counts(out)
    notes = [f"{n:,} faces in {label_file(split)}, every image found",
             f"service_test=True (the subset the paper used to test commercial services): "
             f"{int((table['service_test'] == 'True').sum()):,}"]
    write_card(out, front, body(split, counts_markdown(n, "faces", counts) + "\n- " + notes[1] + "."))
    return ImportResult(card=out, files=[out], counts=counts, notes=notes, n_samples=n, unit="faces")


def body(split: str, summary: str | None) -> str:
    this_copy = summary or (f"Not imported on this machine yet: `audit import fairface '${{{VARIABLE}}}' --out "
                            f"data_cards/fairface_{split}.md --split {split}` checks every row and image and "
                            "writes the group counts here.")
    return f"""
# Data card: FairFace, {split} split

Read in its published layout: `fairface_label_{split}.csv` (columns
`file,age,gender,race,service_test`) and the images under `{split}/`, from
`${{{VARIABLE}}}`. Nothing is copied or converted; the card points at the
label file itself. Sources: [FF] K. Kärkkäinen and J. Joo, "FairFace: Face
Attribute Dataset for Balanced Race, Gender, and Age for Bias Measurement and
Mitigation", WACV 2021 (arXiv:1908.04913); [FF-repo] github.com/joojs/fairface.

## This copy

{this_copy}

## Motivation

FairFace was built because public face-attribute data sets are dominated by
lighter-skinned faces, so models trained and tested on them hide their errors
on other groups [FF]. Its goal is a face set balanced over seven race
groups, gender and age, for measuring and mitigating bias [FF, Abstract].

## Composition

- The paper describes 108,501 face images [FF]; the public release has
  86,744 in `train` and 10,954 in `val` [FF-repo]. One face per image,
  cropped with a margin (the repository offers
  padding 0.25 and 1.25 versions).
- Labels per face: `race` (White, Black, Indian, East Asian, Southeast Asian,
  Middle Eastern, Latino_Hispanic), `gender` (Male, Female) and `age` in nine
  bins (0-2, 3-9, 10-19, 20-29, 30-39, 40-49, 50-59, 60-69, more than 70)
  [FF].
- `service_test` marks the subset the paper used to test commercial face
  services [FF].
- This card's `race4` bins the seven groups into the paper's coarse groups
  as far as White, Black, Asian and Indian go, the categories other face data
  sets label: its Table 1 counts Western White and Middle Eastern under White,
  and East and Southeast Asian under Asian [FF]. Latino_Hispanic has no place
  among the four; it is kept as an explicit `Other` group, never dropped.
  (UTKFace's `Others`, its `race4` `Other`, also holds Middle Eastern faces, so
  the two `Other` groups are not the same people.)

## Collection process

Images come mostly from the YFCC-100M Flickr collection, with faces found by
a face detector; collection was steered towards balance by sampling more from
under-represented groups and regions [FF].

## Labelling protocol

Race, gender and age were annotated by Amazon Mechanical Turk workers, three
per image; labels were kept where the annotators agreed, and disagreements were
re-annotated or refined with a model trained on the agreed labels
[FF]. The labels are *perceived* attributes, judged from the face;
they are not the pictured person's self-identification.

## Licence

CC BY 4.0 [FF-repo]. The images remain subject to their Flickr licences.

## Known biases and limits

- Race categories are social constructs; labelling them from a face is an
  annotator's perception, with disagreement concentrated at group boundaries
  (e.g. Latino_Hispanic and Middle Eastern) [FF].
- Balanced over race by construction, but age is not balanced: most faces are
  20–39 [FF]; young children and people over 70 are small groups.
- Gender is binary as labelled.

## Uses

Evaluation of face-attribute classifiers by race, gender and age
(`audit run --model ... --data data_cards/fairface_{split}.md`), e.g. the
Gender Shades-style recipe in the README.
"""
