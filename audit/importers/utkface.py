"""UTKFace (Zhang, Song & Qi, CVPR 2017): labels live in the file names, ``[age]_[gender]_[race]_[date&time].jpg``.

gender 0 male, 1 female; race 0 White, 1 Black, 2 Asian, 3 Indian, 4 Others;
date&time ``yyyymmddHHMMSSFFF``. The aligned and cropped faces end in
``.jpg.chip.jpg``. Every image file under ROOT is parsed; a name that does
not parse (the real data set has a few with a field missing, e.g.
``39_1_20170116174525125.jpg.chip.jpg``) is never dropped silently: it goes
to ``<card>_malformed.csv`` beside the card, with the reason, and is counted
in the card and on stdout. No label is guessed for it (sources that "fix"
these names disagree on the missing field).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from ..errors import DataError
from ._common import ImportResult, DataLocation, counts_markdown, group_counts, write_card, write_csv
from .fairface import AGES

VARIABLE = "UTKFACE_ROOT"
SPLITS = ("all",)
DEFAULT_SPLIT = "all"
GENDERS = {0: "Male", 1: "Female"}
RACES = {0: "White", 1: "Black", 2: "Asian", 3: "Indian", 4: "Others"}
RACE4 = {"White": ["White"], "Black": ["Black"], "Asian": ["Asian"], "Indian": ["Indian"], "Other": ["Others"]}
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
_DIGITS = re.compile(r"\d+")


def card_name(split: str) -> str:
    return "utkface"


@dataclass(frozen=True)
class Face:
    """The labels one UTKFace file name carries."""

    age: int
    gender: str
    race: str
    datetime: str


class MalformedName(ValueError):
    """A file name that does not carry the four UTKFace fields; the message says which and why."""


def parse_name(name: str) -> Face:
    """Parse ``[age]_[gender]_[race]_[date&time].jpg`` (any ``.jpg.chip.jpg`` tail); raises MalformedName."""
    base = name.rsplit("/", 1)[-1]
    stem = base.split(".", 1)[0]
    fields = stem.split("_")
    if len(fields) != 4:
        raise MalformedName(f"expected 4 fields age_gender_race_datetime, found {len(fields)} in {stem!r}")
    age, gender, race, when = fields
    for field_name, value in (("age", age), ("gender", gender), ("race", race), ("datetime", when)):
        if not _DIGITS.fullmatch(value):
            raise MalformedName(f"field '{field_name}': expected digits, found {value!r}")
    if int(gender) not in GENDERS:
        raise MalformedName(f"field 'gender': expected 0 (male) or 1 (female), found {gender}")
    if int(race) not in RACES:
        raise MalformedName(f"field 'race': expected 0..4 (White, Black, Asian, Indian, Others), found {race}")
    return Face(age=int(age), gender=GENDERS[int(gender)], race=RACES[int(race)], datetime=when)


def age_group(age: int) -> str:
    """FairFace's age bins, so UTKFace and FairFace audits line up."""
    if age >= 70:
        return AGES[-1]
    for label in AGES[:-1]:
        lo, hi = (int(x) for x in label.split("-"))
        if lo <= age <= hi:
            return label
    raise ValueError(age)  # pragma: no cover - the bins cover 0..69


def _images(root: Path) -> tuple[list[str], list[str]]:
    """The image files under ``root`` (relative, sorted) and the other files (e.g. landmark lists), sorted."""
    found, other = [], []
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for f in files:
            if f.startswith("."):
                continue
            rel = (Path(folder) / f).relative_to(root).as_posix()
            (found if f.lower().endswith(IMAGE_SUFFIXES) else other).append(rel)
    return sorted(found), sorted(other)


def front_matter(root: DataLocation, split: str, command: str, manifest: str = "utkface.csv") -> dict:
    return {
        "pretty_name": "UTKFace (gender classification by race, gender and age)",
        "license": "other",
        "task_categories": ["image-classification"],
        "source_datasets": ["UTKFace (Zhang, Song & Qi, CVPR 2017)"],
        "imported_from": {"source": "utkface", "split": split, "root": root.text, "command": command},
        "split": {"manifest": manifest, "id_column": "image", "image_column": "image"},
        "image_root": root.card(),
        "label_column": "gender",
        "classes": ["Female", "Male"],
        "attributes": {
            "race": {"column": "race", "order": list(RACES.values())},
            "race4": {"column": "race", "bins": {k: list(v) for k, v in RACE4.items()}},
            "gender": {"column": "gender", "order": ["Female", "Male"]},
            "age": {"column": "age_group", "scale": "ordinal", "order": list(AGES)},
        },
        "intersections": [["race", "gender"], ["race4", "gender"]],
        "reference_groups": {"race4": "White", "race4 × gender": "White × Male"},
        "min_group_size": 50,
    }


def run(root: DataLocation, out: Path, split: str, command: str) -> ImportResult:
    names, other = _images(root.path)
    if not names:
        raise DataError(f"{root.path}: expected UTKFace images named [age]_[gender]_[race]_[date&time].jpg, "
                        "found no image files")
    rows, bad = [], []
    for name in names:
        try:
            face = parse_name(name)
        except MalformedName as exc:
            bad.append({"file": name, "problem": str(exc)})
            continue
        rows.append({"image": name, "age": face.age, "age_group": age_group(face.age), "gender": face.gender,
                     "race": face.race, "datetime": face.datetime})
    if not rows:
        raise DataError(f"{root.path}: expected UTKFace file names [age]_[gender]_[race]_[date&time].jpg, found "
                        f"none among {len(names):,} images (first: {bad[0]['file']}: {bad[0]['problem']})")
    stem = out.stem
    manifest = out.with_name(f"{stem}.csv")
    malformed = out.with_name(f"{stem}_malformed.csv")
    write_csv(manifest, pd.DataFrame(rows, columns=["image", "age", "age_group", "gender", "race", "datetime"]))
    write_csv(malformed, pd.DataFrame(bad, columns=["file", "problem"]))
    front = front_matter(root, split, command, manifest.name)
    write_card(out, front, body(split, None))
    n, counts = group_counts(out)
    note = (f"{len(bad):,} of {len(names):,} file names are malformed and set aside in {malformed.name} "
            f"(not in the audit): " + ("; ".join(f"{b['file']} ({b['problem']})" for b in bad[:3]) +
                                       ("; ..." if len(bad) > 3 else "") if bad else "none"))
    notes = [note]
    if other:
        notes.append(f"{len(other):,} files that are not images ignored (e.g. {', '.join(other[:3])})")
    summary = counts_markdown(n, "faces", counts) + "".join(f"\n- {x}." for x in notes)
    write_card(out, front, body(split, summary))
    return ImportResult(card=out, files=[out, manifest, malformed], counts=counts, notes=notes, n_samples=n,
                        unit="faces")


def body(split: str, summary: str | None) -> str:
    this_copy = summary or (f"Not imported on this machine yet: `audit import utkface '${{{VARIABLE}}}' --out "
                            "data_cards/utkface.md` parses every file name, writes `utkface.csv` (the manifest "
                            "this card reads) and `utkface_malformed.csv` beside this card, and writes the group "
                            "counts and the number of malformed names here.")
    return f"""
# Data card: UTKFace

Read in its published layout: the image files under `${{{VARIABLE}}}`, whose
names carry the labels, `[age]_[gender]_[race]_[date&time].jpg` (the aligned
and cropped faces end in `.jpg.chip.jpg`). `audit import` writes the parsed
names to `utkface.csv` beside this card; the images are not touched. Sources:
[UTK] Z. Zhang, Y. Song and H. Qi, "Age Progression/Regression by Conditional
Adversarial Autoencoder", CVPR 2017; [UTK-site] susanqq.github.io/UTKFace.

## This copy

{this_copy}

## Motivation

UTKFace was published with a face-ageing model [UTK] as a large face set with
a long age span, for age estimation, age progression and face detection
[UTK-site].

## Composition

- Over 20,000 face images with one face each; the aligned and cropped set has
  23,708 [UTK-site].
- Labels per face [UTK-site]: age 0–116 (this card also bins it into
  FairFace's nine age bins, column `age_group`), gender 0 male / 1 female,
  race 0 White, 1 Black, 2 Asian, 3 Indian, 4 Others ("like Hispanic, Latino,
  Middle Eastern"), and the date and time the image was collected.
- `race4` names the five groups like FairFace's `race4`: White, Black,
  Asian, Indian, and `Other` for Others, so the two data sets' audits line up
  on the four shared groups. (UTKFace's Others includes Middle Eastern faces,
  which FairFace's `race4` counts as White.)
- A few published names lack a field, e.g. `39_1_20170116174525125.jpg.chip.jpg`,
  `61_1_20170109150557335.jpg.chip.jpg` and `61_1_20170109142408075.jpg.chip.jpg`
  in the aligned set. Which field is missing is not recorded, and the repairs
  circulating online disagree, so they are set aside, listed and counted, not
  repaired.

## Collection process

Faces collected from the web "in the wild", with large variation in pose,
expression, illumination, occlusion and resolution [UTK-site].

## Labelling protocol

Age, gender and race were estimated by the DEX algorithm and checked by a
human annotator [UTK-site]. They are perceived labels, and age in particular
is an estimate.

## Licence

Available for non-commercial research purposes only; the copyright of the
images belongs to their original owners [UTK-site].

## Known biases and limits

- Not balanced: White faces are the largest group and Others the smallest,
  and most faces are young adults [UTK-site statistics]; the FairFace paper
  cites such imbalance as the reason for building FairFace [FF, Kärkkäinen &
  Joo, WACV 2021].
- Label noise from the semi-automatic labelling; gender binary as labelled;
  "Others" lumps several groups together.

## Uses

Evaluation of face-attribute classifiers by race, gender and age, e.g. the
Gender Shades-style recipe in the README (a FairFace-trained gender classifier
audited on a second data set).
"""
