"""MIAP, Open Images Extended (Schumann et al., AIES 2021): person boxes with perceived gender and age presentation.

Reads ``open_images_extended_miap_boxes_{split}.csv`` and
``open_images_extended_miap_images_{split}.lst`` (one ``split/ImageID`` per
line, the list Open Images' downloader takes) and the downloaded images,
``<ImageID>.jpg``, under ``images/``, ``<split>/images/``, the list's split
folder or the root itself. Boxes are normalised, so each image's size is read
from its file header (Pillow, no pixels decoded). Writes COCO ground truth
``<card>.json`` beside the card: one ``person`` category, boxes in pixels,
``IsGroupOf`` boxes as crowd regions (``iscrowd: 1``, which neither count as
misses nor turn their detections into false positives) and each box's
``GenderPresentation`` and ``AgePresentation`` as inline attributes, with
``Unknown`` written as missing, which the audit reports as the explicit
``unknown`` group. Images listed but not downloaded are set aside, listed in
``<card>_missing_images.txt`` and counted, never dropped silently.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd

from ..errors import DataError
from ._common import ImportResult, DataLocation, write_text, counts_markdown, group_counts, image_size, write_card

VARIABLE = "MIAP_ROOT"
SPLITS = ("train", "val", "test")
DEFAULT_SPLIT = "test"
PERSON = "/m/01g317"
# Open Images' person subtree (Person, Man, Woman, Boy, Girl): MIAP labels its boxes Person, any of these is a person
PERSON_LABELS = [PERSON, "/m/04yx4", "/m/03bt1vf", "/m/01bl7v", "/m/05r655"]
COLUMNS = ["ImageID", "LabelName", "XMin", "XMax", "YMin", "YMax", "IsOccluded", "IsTruncated", "IsGroupOf",
           "IsDepictionOf", "IsInsideOf", "GenderPresentation", "AgePresentation"]
GENDERS = ["Predominantly Feminine", "Predominantly Masculine", "Unknown"]
AGES = ["Young", "Middle", "Older", "Unknown"]
FLAGS = ["IsOccluded", "IsTruncated", "IsGroupOf", "IsDepictionOf", "IsInsideOf"]


def card_name(split: str) -> str:
    return f"miap_{split}"


def boxes_file(split: str) -> str:
    return f"open_images_extended_miap_boxes_{split}.csv"


def list_file(split: str) -> str:
    return f"open_images_extended_miap_images_{split}.lst"


def front_matter(root: DataLocation, split: str, command: str, coco: str | None = None) -> dict:
    return {
        "pretty_name": f"MIAP (Open Images Extended), {split} split: person detection by perceived gender and age "
                       "presentation",
        "license": "cc-by-4.0",
        "task_categories": ["object-detection"],
        "source_datasets": ["Open Images Extended: MIAP (Schumann et al., AIES 2021)"],
        "imported_from": {"source": "miap", "split": split, "root": root.text, "command": command},
        "task": "detection",
        "split": {"coco": coco or f"{card_name(split)}.json"},
        "image_root": root.card(),
        "class_agnostic": True,
        "detection_classes": ["person"],
        "attributes": {
            "gender_presentation": {"column": "gender_presentation", "order": GENDERS[:2]},
            "age_presentation": {"column": "age_presentation", "scale": "ordinal", "order": AGES[:3]},
        },
        "intersections": [["gender_presentation", "age_presentation"]],
        "min_group_size": 50,
    }


def _read_boxes(path: Path) -> pd.DataFrame:
    if not path.is_file():
        raise DataError(f"{path}: file not found (MIAP publishes {path.name} beside the image list)")
    try:
        table = pd.read_csv(path, dtype=str, keep_default_na=False)
    except Exception as exc:  # noqa: BLE001
        raise DataError(f"{path}: cannot read table: {' '.join(str(exc).split())}") from None
    missing = [c for c in COLUMNS if c not in table.columns]
    if missing:
        raise DataError(f"{path}: expected the columns {','.join(COLUMNS)}, found {','.join(table.columns)} "
                        f"(missing {', '.join(missing)})")

    def fail(i, column, expected):
        return DataError(f"{path}: row {i + 1} (ImageID '{table['ImageID'].iat[i]}'): field '{column}': expected "
                         f"{expected}, found {table[column].iat[i]!r}")

    for column, allowed in (("LabelName", PERSON_LABELS), ("GenderPresentation", GENDERS), ("AgePresentation", AGES)):
        bad = ~table[column].isin(allowed)
        if bad.any():
            raise fail(int(bad.to_numpy().argmax()), column, "one of " + ", ".join(allowed))
    for column in FLAGS:
        bad = ~table[column].isin(["0", "1", "-1"])
        if bad.any():
            raise fail(int(bad.to_numpy().argmax()), column, "0, 1 or -1")
    coords = {}
    for column in ("XMin", "XMax", "YMin", "YMax"):
        values = pd.to_numeric(table[column], errors="coerce")
        bad = values.isna() | (values < 0) | (values > 1)
        if bad.any():
            raise fail(int(bad.to_numpy().argmax()), column, "a normalised coordinate in [0, 1]")
        coords[column] = values.to_numpy(dtype=float)
    for lo, hi in (("XMin", "XMax"), ("YMin", "YMax")):
        bad = coords[lo] > coords[hi]
        if bad.any():
            i = int(bad.argmax())
            raise fail(i, hi, f"a value >= {lo} ({table[lo].iat[i]})")
    for column, values in coords.items():
        table[column] = values
    return table


def _read_list(path: Path) -> list[tuple[str, str]]:
    if not path.is_file():
        raise DataError(f"{path}: file not found (MIAP publishes {path.name}, one split/ImageID per line)")
    entries = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        line = line.strip()
        if not line:
            continue
        parts = line.split("/")
        if len(parts) != 2 or not all(parts):
            raise DataError(f"{path}: line {n}: expected split/ImageID, found {line!r}")
        entries.append((parts[0], parts[1]))
    if not entries:
        raise DataError(f"{path}: expected split/ImageID lines, found none")
    return entries


def _find_image(root: Path, folder: str, split: str, image_id: str) -> str | None:
    for candidate in (f"images/{image_id}.jpg", f"{split}/images/{image_id}.jpg", f"{folder}/{image_id}.jpg",
                      f"{image_id}.jpg"):
        if os.path.isfile(root / candidate):
            return candidate
    return None


def run(root: DataLocation, out: Path, split: str, command: str) -> ImportResult:
    boxes_path, list_path = root.path / boxes_file(split), root.path / list_file(split)
    table = _read_boxes(boxes_path)
    entries = _read_list(list_path)
    listed = {image_id for _, image_id in entries}
    unlisted = ~table["ImageID"].isin(listed)
    if unlisted.any():
        i = int(unlisted.to_numpy().argmax())
        raise DataError(f"{boxes_path}: row {i + 1}: field 'ImageID': expected an image listed in {list_path.name}, "
                        f"found {table['ImageID'].iat[i]!r}")
    images, missing = [], []
    for folder, image_id in entries:
        found = _find_image(root.path, folder, split, image_id)
        if found is None:
            missing.append(f"{folder}/{image_id}")
            continue
        width, height = image_size(root.path / found)
        images.append({"id": len(images) + 1, "file_name": found, "width": width, "height": height,
                       "open_images_id": image_id})
    if not images:
        raise DataError(f"{list_path}: expected the listed images under {root.path}/images/ (as <ImageID>.jpg), "
                        f"found none of {len(entries):,}")
    by_id = {im["open_images_id"]: im for im in images}
    annotations, skipped = [], 0
    for i, row in enumerate(table.itertuples(index=False)):
        im = by_id.get(row.ImageID)
        if im is None:
            skipped += 1
            continue
        w, h = im["width"], im["height"]
        x, y = row.XMin * w, row.YMin * h
        bw, bh = (row.XMax - row.XMin) * w, (row.YMax - row.YMin) * h
        crowd = int(row.IsGroupOf == "1")
        annotations.append({
            "id": len(annotations) + 1, "image_id": im["id"], "category_id": 1,
            "bbox": [round(v, 3) for v in (x, y, bw, bh)], "area": round(bw * bh, 3), "iscrowd": crowd,
            "attributes": {
                "gender_presentation": None if row.GenderPresentation == "Unknown" else row.GenderPresentation,
                "age_presentation": None if row.AgePresentation == "Unknown" else row.AgePresentation,
                **{flag: int(getattr(row, flag)) for flag in FLAGS},
            },
            "csv_row": i + 1,
        })
    coco = {"info": {"description": f"MIAP {split} boxes from {boxes_file(split)}, in pixels, by audit import"},
            "images": images, "annotations": annotations,
            "categories": [{"id": 1, "name": "person", "open_images_label": PERSON}]}
    coco_path = out.with_name(f"{out.stem}.json")
    missing_path = out.with_name(f"{out.stem}_missing_images.txt")
    write_text(coco_path, json.dumps(coco, separators=(",", ":")) + "\n")
    write_text(missing_path, "".join(f"{m}\n" for m in missing))
    front = front_matter(root, split, command, coco_path.name)
    write_card(out, front, body(split, None))
    n, counts = group_counts(out)
    n_crowd = sum(a["iscrowd"] for a in annotations)
    notes = [f"{len(images):,} images, {len(annotations):,} boxes, of which {n_crowd:,} IsGroupOf boxes are crowd "
             f"regions (not people to find)",
             f"{len(missing):,} of {len(entries):,} listed images not found (set aside with their {skipped:,} boxes, "
             f"listed in {missing_path.name})"]
    summary = counts_markdown(n, "people (non-crowd boxes)", counts) + "".join(f"\n- {x}." for x in notes)
    write_card(out, front, body(split, summary))
    return ImportResult(card=out, files=[out, coco_path, missing_path], counts=counts, notes=notes, n_samples=n,
                        unit="people")


def body(split: str, summary: str | None) -> str:
    this_copy = summary or (f"Not imported on this machine yet: `audit import miap '${{{VARIABLE}}}' --out "
                            f"data_cards/miap_{split}.md --split {split}` reads the boxes and the image list, reads "
                            f"each image's size, writes `miap_{split}.json` (the COCO ground truth this card reads) "
                            "beside this card and writes the group counts here.")
    return f"""
# Data card: MIAP (Open Images Extended), {split} split

Read in its published layout from `${{{VARIABLE}}}`:
`open_images_extended_miap_boxes_{split}.csv`, the image list
`open_images_extended_miap_images_{split}.lst` and the downloaded images
(`images/<ImageID>.jpg`). `audit import` converts the normalised boxes to
pixels with each image's size and writes `miap_{split}.json` (COCO) beside
this card. Sources: [MIAP] C. Schumann, S. Ricco, U. Prabhu, V. Ferrari and
C. Pantofaru, "A Step Toward More Inclusive People Annotations for Fairness",
AIES 2021; [MIAP-card] the Open Images Extended MIAP data card
(storage.googleapis.com/openimages/open_images_extended_miap/);
[OI] A. Kuznetsova et al., "The Open Images Dataset V4", IJCV 2020.

## This copy

{this_copy}

## Motivation

Person boxes in Open Images were not exhaustive, and a fairness analysis of
person detection needs every person boxed. MIAP (More Inclusive Annotations for
People) re-annotates a subset exhaustively and adds perceived gender
presentation and perceived age presentation to each box, for fairness
evaluation [MIAP].

## Composition

- 100,000 Open Images images containing people (train, val and test splits,
  with the same split membership as Open Images), every person boxed with the
  one class Person [MIAP].
- Per box: `GenderPresentation` (Predominantly Feminine, Predominantly
  Masculine, Unknown) and `AgePresentation` (Young, Middle, Older, Unknown)
  [MIAP-card], and Open Images' flags `IsOccluded`, `IsTruncated`,
  `IsGroupOf`, `IsDepictionOf`, `IsInsideOf` [OI].
- `IsGroupOf` marks a box around a group of people too close to box one by one
  [OI]; this card makes such boxes crowd regions. `Unknown` presentations are
  kept as the explicit `unknown` group.

## Collection process

Images are Open Images images, originally from Flickr [OI]. Annotators drew a
box around every person, then labelled the perceived attributes of each box
[MIAP].

## Labelling protocol

Gender and age presentation are what annotators perceive from the image, not
the pictured person's identity; `Unknown` is used when the cues do not allow a
judgement [MIAP; MIAP-card]. The labels are meant for fairness evaluation, not
for training classifiers of gender or age [MIAP-card].

## Licence

Annotations CC BY 4.0; images listed as CC BY 2.0 by Open Images [OI;
MIAP-card].

## Known biases and limits

- Perceived presentation is not identity; two presentation classes plus
  `Unknown` do not cover gender [MIAP].
- Unknown is frequent for small, distant or occluded people, so it is
  correlated with box size and detection difficulty.
- Images not downloadable any more (removed from Flickr) shrink the split; this
  card counts them above.

## Uses

Evaluating person detection recall by perceived gender presentation × age
presentation (`audit run --model models/<detector>.md --data
data_cards/miap_{split}.md`).
"""
