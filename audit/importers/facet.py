"""FACET (Gustafson et al., ICCV 2023): person detection, instance segmentation and person classification cards.

Published layout under ROOT: ``annotations/annotations.csv`` (one row per
person: ``person_id``, ``filename``, ``class1``, ``class2``, ``bounding_box``
and the vote columns ``gender_presentation_*``, ``skin_tone_1`` ..
``skin_tone_10``, ``skin_tone_na``, ``age_presentation_*``, ``lighting_*``,
``hairtype_*``, ``visible_*`` ...), ``annotations/coco_boxes.json`` (COCO,
annotation ``id`` = ``person_id``), ``annotations/coco_masks.json`` (SA-1B
masks labelled person, clothing or hair, each with its ``facet_person_id``)
and the images.

``--split`` chooses the card:

``detection``
    Reads the published files in place: ``coco_boxes.json`` is the ground
    truth and ``annotations.csv`` the side table keyed by ``person_id``, whose
    vote columns the suite turns into groups. Skin tone: ``skin_tone`` keeps
    the ten Monk levels with ``votes: any`` (a person is in every tone an
    annotator chose, FACET's per-tone reading, groups overlap) and
    ``skin_tone_bin`` bins the majority tone into lighter (MST 1–5) and darker
    (6–10), as the suite's Monk attributes do. (If the images are spread over
    several folders, a copy of ``coco_boxes.json`` with folder-relative file
    names is written beside the card.)
``instance_segmentation``
    The people with a ``person`` mask: ``<card>.json`` (their boxes with their
    masks, ids = ``person_id``) and ``<card>_people.csv`` (their rows of
    ``annotations.csv``, unchanged) beside the card. People without a person
    mask are counted, not silently lost.
``semantic_segmentation``
    The images with at least one ``person`` mask, for semantic segmenters
    (classes background, person): ``<card>.csv`` (one row per image),
    ``<card>_people.csv`` (one row per masked person, attributes from the
    votes as for classification) and ``<card>_masks/`` beside the card, with a
    label PNG per image (0 background, 1 person, 255 ignored: the boxes of
    people who have no mask, whose pixels are neither person nor background)
    and an instance PNG per image (person ``k`` of the people table = value
    ``k``). The mask paths in the side tables are absolute (side files are
    per machine); the images stay under ``${FACET_ROOT}``.
``classification``
    One row per person (``<card>.csv``): the image, ``class1`` as the label,
    ``class2`` kept, and one value per attribute from the votes (the majority
    level; a tie goes to the level nearest the vote-weighted mean, then the
    lower one).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pandas as pd

from ..errors import DataError
from ._common import ImportResult, DataLocation, write_text, counts_markdown, group_counts, write_card, write_csv
from ._facet_files import VOTES, _find, _locate, _read_json, _votes_to_values, read_annotations

VARIABLE = "FACET_ROOT"
SPLITS = ("detection", "instance_segmentation", "semantic_segmentation", "classification")
DEFAULT_SPLIT = "detection"
MONK_BINS = {"lighter": [1, 2, 3, 4, 5], "darker": [6, 7, 8, 9, 10]}


def card_name(split: str) -> str:
    return f"facet_{split}"


def _attributes(with_votes: bool) -> dict:
    v = (lambda mode: {"votes": mode}) if with_votes else (lambda mode: {})
    return {
        "skin_tone": {"column": "skin_tone", "scale": "monk", **v("any")},
        "skin_tone_bin": {"column": "skin_tone", "scale": "monk", **v("majority"),
                          "bins": {k: list(x) for k, x in MONK_BINS.items()}},
        "gender_presentation": {"column": "gender_presentation", **v("majority"),
                                "order": list(VOTES["gender_presentation"])},
        "age_presentation": {"column": "age_presentation", "scale": "ordinal", **v("majority"),
                             "order": list(VOTES["age_presentation"])},
        "lighting": {"column": "lighting", "scale": "ordinal", **v("majority"), "order": list(VOTES["lighting"])},
    }


def front_matter(root: DataLocation, split: str, command: str, *, coco: str | None = None, table: str | None = None,
                 image_root: str | None = None, classes: list[str] | None = None) -> dict:
    head = {
        "pretty_name": {"detection": "FACET: person detection by perceived skin tone, gender and age presentation",
                        "instance_segmentation": "FACET: person instance segmentation (SA-1B person masks) by "
                                                 "perceived skin tone, gender and age presentation",
                        "semantic_segmentation": "FACET: person semantic segmentation (SA-1B person masks) by "
                                                 "perceived skin tone, gender and age presentation",
                        "classification": "FACET: person classification (class1) by perceived skin tone, gender "
                                          "and age presentation"}[split],
        "license": "other",
        "task_categories": [{"classification": "image-classification", "semantic_segmentation":
                             "image-segmentation"}.get(split, "object-detection")],
        "source_datasets": ["FACET (Gustafson et al., ICCV 2023)"],
        "imported_from": {"source": "facet", "split": split, "root": root.text, "command": command},
    }
    intersections = [["skin_tone_bin", "gender_presentation"], ["gender_presentation", "age_presentation"]]
    if split == "classification":
        return head | {
            "split": {"manifest": table or f"{card_name(split)}.csv", "id_column": "person_id",
                      "image_column": "image"},
            "image_root": image_root or root.card(),
            "label_column": "class1",
            "classes": classes or ["<the 52 FACET classes, written by audit import>"],
            "attributes": _attributes(with_votes=False),
            "intersections": intersections,
            "reference_groups": {"skin_tone_bin": "lighter"},
            "min_group_size": 50,
        }
    if split == "semantic_segmentation":
        return head | {
            "split": {"manifest": table or f"{card_name(split)}.csv", "id_column": "image_id",
                      "image_column": "image"},
            "image_root": image_root or root.card(),
            "classes": ["background", "person"],
            "min_group_size": 50,
            # the label and person masks this importer writes live beside the card, not under the image root
            "allow_paths_outside_root": True,
            "segmentation": {
                "mask_column": "mask", "ignore_index": 255, "person_class": "person",
                "people": {"table": f"{card_name(split)}_people.csv", "image_column": "image_id",
                           "mask_column": "mask", "instance_column": "instance",
                           "attributes": _attributes(with_votes=False), "intersections": intersections,
                           "reference_groups": {"skin_tone_bin": "lighter"}},
            },
        }
    if split == "detection":
        spec = {"coco": coco or root.card("annotations", "coco_boxes.json"),
                "attributes": table or root.card("annotations", "annotations.csv"),
                "annotation_id_column": "person_id"}
    else:
        spec = {"coco": coco or f"{card_name(split)}.json", "masks": coco or f"{card_name(split)}.json",
                "attributes": table or f"{card_name(split)}_people.csv", "annotation_id_column": "person_id"}
    return head | {
        "task": split,
        "split": spec,
        "image_root": image_root or root.card("images"),
        "class_agnostic": True,
        "detection_classes": ["person"],
        "attributes": _attributes(with_votes=True),
        "intersections": intersections,
        "reference_groups": {"skin_tone_bin": "lighter"},
        "min_group_size": 50,
    }


def run(root: DataLocation, out: Path, split: str, command: str) -> ImportResult:
    ann_path = _find(root.path, "annotations.csv")
    table = read_annotations(ann_path)
    boxes_path = _find(root.path, "coco_boxes.json")
    boxes = _read_json(boxes_path)
    notes: list[str] = []
    files = [out]
    rel_ann = ann_path.relative_to(root.path).as_posix()
    rel_boxes = boxes_path.relative_to(root.path).as_posix()
    if split == "classification":
        empty = table["class1"].isna() | (table["class1"].astype(str).str.strip() == "")
        if empty.any():
            i = int(empty.to_numpy().argmax())
            raise DataError(f"{ann_path}: row {i + 1} (person_id {table['person_id'].iat[i]}): field 'class1': "
                            "expected a person class, found an empty value")
        used = set(table["class1"].astype(str)) | set(table["class2"].dropna().astype(str)) - {""}
        classes = [str(c.get("name")) for c in boxes.get("categories", []) if isinstance(c, dict)]
        if not used <= set(classes):  # the category names are spelled differently: the labels' own names
            notes.append(f"class names from annotations.csv ({len(used)}), since {boxes_path.name}'s categories "
                         "do not list them all")
            classes = sorted(used)
        _, rel = _locate(root.path, sorted(set(table["filename"].astype(str))), ann_path)
        values = _votes_to_values(table)
        manifest = pd.DataFrame({
            "person_id": table["person_id"].to_numpy(), "image": [rel[f] for f in table["filename"].astype(str)],
            "class1": table["class1"].to_numpy(), "class2": table["class2"].to_numpy(),
        })
        for column in values.columns:
            manifest[column] = values[column].to_numpy()
        side = out.with_name(f"{out.stem}.csv")
        write_csv(side, manifest)
        files.append(side)
        front = front_matter(root, split, command, table=side.name, classes=classes)
        notes.append(f"{len(manifest):,} people; attributes from the annotators' votes, majority level (ties: "
                     "nearest the mean vote, then the lower); class2 kept in the manifest")
        unit = "people"
    elif split == "semantic_segmentation":
        files += _semantic_masks(root, out, table, boxes, boxes_path, notes)
        front = front_matter(root, split, command, table=f"{out.stem}.csv")
        front["segmentation"]["people"]["table"] = f"{out.stem}_people.csv"
        unit = "images"
    else:
        names = [str(im.get("file_name", "")) for im in boxes["images"]]
        folder, rel = _locate(root.path, names, boxes_path)
        if split == "detection" and folder is not None:
            front = front_matter(root, split, command, coco=root.card(rel_boxes), table=root.card(rel_ann),
                                 image_root=root.card(folder if folder != "." else ""))
        else:
            gt = dict(boxes)
            gt["images"] = [dict(im, file_name=rel[str(im.get("file_name", ""))]) for im in boxes["images"]]
            table_name = root.card(rel_ann)
            if split == "instance_segmentation":
                gt, kept, lost = _with_person_masks(gt, _find(root.path, "coco_masks.json"))
                people = out.with_name(f"{out.stem}_people.csv")
                raw = pd.read_csv(ann_path, dtype=str, keep_default_na=False)  # rows written back as published
                write_csv(people, raw[table["person_id"].isin(kept).to_numpy()])
                files.append(people)
                table_name = people.name
                notes.append(f"{len(kept):,} people with a person mask in coco_masks.json; {lost:,} without one "
                             "are not in this card (they are in facet_detection)")
            coco_path = out.with_name(f"{out.stem}.json")
            write_text(coco_path, json.dumps(gt, separators=(",", ":")) + "\n")
            files.append(coco_path)
            front = front_matter(root, split, command, coco=coco_path.name, table=table_name,
                                 image_root=root.card())
            if split == "instance_segmentation":
                front["split"]["masks"] = coco_path.name
        unit = "people"
    write_card(out, front, body(split, None))
    n, counts = group_counts(out)
    summary = counts_markdown(n, unit, counts) + "".join(f"\n- {x}." for x in notes)
    write_card(out, front, body(split, summary))
    return ImportResult(card=out, files=files, counts=counts, notes=notes, n_samples=n, unit=unit)


def _semantic_masks(root: DataLocation, out: Path, table: pd.DataFrame, boxes: dict, boxes_path: Path,
                    notes: list[str]) -> list[Path]:
    """Label and instance PNGs for the images with a person mask, and the image and people tables."""
    import numpy as np
    from PIL import Image
    from pycocotools import mask as mask_utils

    from ._common import image_size

    names = [str(im.get("file_name", "")) for im in boxes["images"]]
    _, rel = _locate(root.path, names, boxes_path)
    gt = dict(boxes)
    gt["images"] = [dict(im, file_name=rel[str(im.get("file_name", ""))]) for im in boxes["images"]]
    masked, kept, lost = _with_person_masks(gt, _find(root.path, "coco_masks.json"))
    with_mask = {a["id"]: a for a in masked["annotations"]}
    by_image: dict = {}
    for a in gt["annotations"]:
        by_image.setdefault(a["image_id"], []).append(a)
    folder = out.with_name(f"{out.stem}_masks")
    (folder / "labels").mkdir(parents=True, exist_ok=True)
    (folder / "instances").mkdir(parents=True, exist_ok=True)
    values = _votes_to_values(table).set_index(table["person_id"].to_numpy())
    images, people, n_ignored = [], [], 0
    log = logging.getLogger("audit")
    for im in gt["images"]:
        anns = by_image.get(im["id"], [])
        if not any(a["id"] in with_mask for a in anns):
            continue
        if images and len(images) % 2000 == 0:
            log.info("  %s images' masks written", f"{len(images):,}")
        w, h = (im.get("width"), im.get("height"))
        if not isinstance(w, int) or not isinstance(h, int):
            w, h = image_size(root.path / im["file_name"])
        sid = Path(im["file_name"]).stem
        label = np.zeros((h, w), np.uint8)
        instance = np.zeros((h, w), np.uint16)
        for a in anns:
            if a["id"] not in with_mask:  # a person without a mask: neither person nor background
                x, y, bw, bh = (int(round(v)) for v in a["bbox"])
                label[max(y, 0):y + bh, max(x, 0):x + bw] = 255
                n_ignored += 1
        k = 0
        for a in anns:
            if a["id"] in with_mask:
                k += 1
                m = mask_utils.decode(with_mask[a["id"]]["segmentation"] | {
                    "counts": with_mask[a["id"]]["segmentation"]["counts"].encode("ascii")}) > 0
                label[m] = 1
                instance[m] = k
                people.append({"person_id": a["id"], "image_id": sid,
                               "mask": str((folder / "instances" / f"{sid}.png").resolve()), "instance": k,
                               **values.loc[a["id"]].to_dict()})
        Image.fromarray(label, mode="L").save(folder / "labels" / f"{sid}.png")
        mode = "L" if k < 256 else "I;16"
        Image.fromarray(instance.astype(np.uint8) if mode == "L" else instance, mode=mode).save(
            folder / "instances" / f"{sid}.png")
        images.append({"image_id": sid, "image": im["file_name"],
                       "mask": str((folder / "labels" / f"{sid}.png").resolve())})
    manifest = out.with_name(f"{out.stem}.csv")
    people_path = out.with_name(f"{out.stem}_people.csv")
    write_csv(manifest, pd.DataFrame(images, columns=["image_id", "image", "mask"]))
    write_csv(people_path, pd.DataFrame(people, columns=["person_id", "image_id", "mask", "instance", *VOTES],
                                        dtype=object))  # object: MST levels stay integers beside missing ones
    notes.append(f"{len(images):,} images with {len(people):,} masked people (the groups above count them); people "
                 f"without a person mask: {lost:,} (their {n_ignored:,} boxes in these images are ignored pixels, "
                 "255)")
    return [manifest, people_path, folder]


def _with_person_masks(gt: dict, masks_path: Path) -> tuple[dict, set, int]:
    """Keep the people of ``gt`` that have a ``person`` mask; their annotation carries it (several are merged)."""
    from pycocotools import mask as mask_utils

    from ..tasks.detection.data import to_rle

    data = _read_json(masks_path)
    person_cats = {c["id"] for c in data.get("categories", []) if isinstance(c, dict) and c.get("name") == "person"}
    if not person_cats:
        raise DataError(f"{masks_path}: field 'categories': expected a category named 'person', found "
                        f"{[c.get('name') for c in data.get('categories', []) if isinstance(c, dict)]}")
    size = {im["id"]: (im.get("height"), im.get("width")) for im in gt["images"]}
    by_person: dict = {}
    for i, a in enumerate(data["annotations"]):
        if not isinstance(a, dict) or a.get("category_id") not in person_cats:
            continue
        pid = a.get("facet_person_id", a.get("person_id"))
        if pid is None:
            raise DataError(f"{masks_path}: annotations[{i}]: field 'facet_person_id': expected the person's id, "
                            "found nothing")
        by_person.setdefault(pid, []).append((i, a))
    annotations, kept = [], set()
    for a in gt["annotations"]:
        found = by_person.get(a["id"])
        if not found:
            continue
        h, w = size[a["image_id"]]
        rles = [to_rle(m["segmentation"], h, w, f"{masks_path}: annotations[{i}]") for i, m in found]
        rle = rles[0] if len(rles) == 1 else mask_utils.merge(rles)
        counts = rle["counts"].decode("ascii") if isinstance(rle["counts"], bytes) else rle["counts"]
        annotations.append(dict(a, segmentation={"size": list(rle["size"]), "counts": counts}))
        kept.add(a["id"])
    return dict(gt, annotations=annotations), kept, len(gt["annotations"]) - len(annotations)


def body(split: str, summary: str | None) -> str:
    side = {"detection": "",
            "instance_segmentation": f"`{card_name(split)}.json` (the people with a person mask, with their masks) "
                                     f"and `{card_name(split)}_people.csv` (their rows of annotations.csv)",
            "semantic_segmentation": f"`{card_name(split)}.csv`, `{card_name(split)}_people.csv` and "
                                     f"`{card_name(split)}_masks/` (label and instance PNGs of the images with a "
                                     "person mask)",
            "classification": f"`{card_name(split)}.csv` (one row per person, attributes from the votes)"}[split]
    this_copy = summary or (f"Not imported on this machine yet: `audit import facet '${{{VARIABLE}}}' --out "
                            f"data_cards/{card_name(split)}.md --split {split}` checks the annotations, finds the "
                            f"images, {'writes ' + side + ' beside this card and ' if side else 'and '}writes the "
                            "group counts here.")
    writes = (f"`audit import` writes {side} beside this card." if side else
              "The card reads them in place; `audit import` writes no side file.")
    task = {"detection": "person detection (class-agnostic recall: any detection may match any person)",
            "instance_segmentation": "person instance segmentation (recall with mask IoU)",
            "semantic_segmentation": "person semantic segmentation (classes background and person; per-person "
                                     "scores on each masked person's pixels)",
            "classification": "person classification: `class1`, one of 52 person classes"}[split]
    return f"""
# Data card: FACET, {split.replace('_', ' ')}

Task: {task}. Read in its published layout from `${{{VARIABLE}}}`:
`annotations/annotations.csv`, `annotations/coco_boxes.json`,
`annotations/coco_masks.json` and the images. {writes}
Sources: [FACET] L. Gustafson, C. Rolland, N. Ravi, Q. Duval, A. Adcock,
C.-Y. Fu, M. Hall and C. Ross, "FACET: Fairness in Computer Vision Evaluation
Benchmark", ICCV 2023 (arXiv:2309.00035); [FACET-site]
ai.meta.com/datasets/facet; [MST] E. Monk, Monk Skin Tone scale (skintone.google).

## This copy

{this_copy}

## How votes become groups

FACET records annotator *votes*: `skin_tone_1` .. `skin_tone_10` count the
annotators who chose each Monk Skin Tone, and the presentation, age and
lighting columns are one flag or count per level, with `*_na` for "cannot
tell" [FACET]. This card says how a distribution becomes a group:
`skin_tone` puts a person in every tone that got a vote (`votes: any`, so
groups overlap, the per-tone reading of the paper's tables); `skin_tone_bin`
takes the majority tone and bins it lighter (MST 1–5) / darker (6–10), like the
suite's other Monk attributes; the other attributes take the majority level.
No vote at all (only `na`) is the explicit `unknown` group.

## Motivation

A benchmark to measure performance disparities of vision models
(classification, detection, segmentation, visual grounding) across perceived
demographic attributes and their intersections [FACET].

## Composition

- 31,702 images with 49,551 annotated people, in 52 person classes (e.g.
  doctor, guitarist, skateboarder) [FACET]; average resolution about
  1500×2000 [FACET-site].
- Per person: a box, `class1` (and `class2` when a second class fits),
  perceived gender presentation, perceived skin tone (Monk scale [MST]),
  perceived age group, hair colour and type, facial hair, accessories,
  tattoos, lighting and visibility [FACET].
- About 69,000 SA-1B masks labelled person, clothing or hair
  (`coco_masks.json`) [FACET-site]; not every person has a person mask.

## Collection process

Images come from SA-1B (the Segment Anything data set), licensed from a large
photo company; images were chosen to contain people matching the 52 classes
[FACET; FACET-site].

## Labelling protocol

Expert annotators, hired from several geographic regions, drew the boxes and
labelled the classes and attributes; skin tone was annotated by three
annotators per person, each choosing adjacent Monk values rather than a single
one, and the release keeps the summed votes rather than one value [FACET].

## Licence

FACET data licence: research use, for evaluation only; not for training
[FACET-site].

## Known biases and limits

- All demographic labels are perceived, from the image; skin tone depends on
  lighting, which the `lighting` attribute lets you control for [FACET].
- Class membership is uneven across groups (some classes are mostly one
  gender presentation), so per-class group sizes are small; the paper reports
  a pair of groups only when both have at least 50 people (`min_group_size: 50`)
  [FACET].
- The paper counts a classification correct when it matches either `class1`
  or `class2`; this suite scores `class1` only.

## Uses

Evaluation only, e.g. `audit run --model models/fasterrcnn_resnet50_fpn_v2.md
--data data_cards/facet_detection.md`.
"""
