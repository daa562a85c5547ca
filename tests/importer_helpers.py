"""Fixtures in the exact published layouts of the public data sets, written small (a few rows, tiny images)."""

from __future__ import annotations

import json
from pathlib import Path

from PIL import Image

CELEBA_ATTRIBUTES = (
    "5_o_Clock_Shadow Arched_Eyebrows Attractive Bags_Under_Eyes Bald Bangs Big_Lips Big_Nose Black_Hair "
    "Blond_Hair Blurry Brown_Hair Bushy_Eyebrows Chubby Double_Chin Eyeglasses Goatee Gray_Hair Heavy_Makeup "
    "High_Cheekbones Male Mouth_Slightly_Open Mustache Narrow_Eyes No_Beard Oval_Face Pale_Skin Pointy_Nose "
    "Receding_Hairline Rosy_Cheeks Sideburns Smiling Straight_Hair Wavy_Hair Wearing_Earrings Wearing_Hat "
    "Wearing_Lipstick Wearing_Necklace Wearing_Necktie Young"
).split()


def image(path: Path, size=(8, 8), shade: int = 128) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, (shade, shade // 2, 255 - shade)).save(path)
    return path


# FairFace: fairface_label_val.csv as published (header, `val/N.jpg`, the nine age bins, True/False).
FAIRFACE_VAL = """file,age,gender,race,service_test
val/1.jpg,3-9,Male,East Asian,False
val/2.jpg,50-59,Female,East Asian,True
val/3.jpg,30-39,Male,White,True
val/4.jpg,20-29,Female,Latino_Hispanic,True
val/5.jpg,20-29,Male,Southeast Asian,False
val/6.jpg,more than 70,Male,Middle Eastern,True
val/7.jpg,10-19,Female,Black,False
val/8.jpg,0-2,Female,Indian,True
"""


def fairface(root: Path) -> Path:
    (root / "fairface_label_val.csv").parent.mkdir(parents=True, exist_ok=True)
    (root / "fairface_label_val.csv").write_text(FAIRFACE_VAL, encoding="utf-8")
    for i in range(1, 9):
        image(root / "val" / f"{i}.jpg", shade=20 * i)
    return root


# UTKFace: the aligned-and-cropped names, plus malformed names of the kinds the real set contains.
UTKFACE_GOOD = [
    "1_0_0_20161219140623097.jpg.chip.jpg",
    "26_1_2_20170116174525125.jpg.chip.jpg",
    "35_0_1_20170117135238571.jpg.chip.jpg",
    "72_1_3_20170110160806315.jpg.chip.jpg",
    "45_0_4_20170117191327564.jpg.chip.jpg",
    "8_1_0_20170109204725102.jpg.chip.jpg",
]
UTKFACE_MALFORMED = [
    "39_1_20170116174525125.jpg.chip.jpg",      # a field missing (published as is)
    "61_1_20170109150557335.jpg.chip.jpg",      # a field missing (published as is)
    "55_0_0_20170116232725357jpg.chip.jpg",     # the date runs into the extension
]


def utkface(root: Path) -> Path:
    for i, name in enumerate(UTKFACE_GOOD + UTKFACE_MALFORMED):
        image(root / "UTKFace" / name, shade=10 + 20 * i)
    (root / "landmark_list_part1.txt").write_text("1_0_0_20161219140623097.jpg 1 2 3\n")  # not an image
    return root


def celeba(root: Path, rows=None) -> Path:
    """list_attr_celeba.txt (count line, header ending in a space, -1/1 values) and list_eval_partition.txt."""
    rows = rows or [
        # (file, partition, {attributes set to 1})
        ("000001.jpg", 0, {"Blond_Hair", "Young", "Smiling"}),
        ("000002.jpg", 0, {"Male"}),
        ("000003.jpg", 2, {"Blond_Hair", "Young"}),
        ("000004.jpg", 2, {"Male", "Young"}),
        ("000005.jpg", 2, {"Male", "Blond_Hair"}),
        ("000006.jpg", 1, {"Young"}),
        ("000007.jpg", 2, set()),
    ]
    root.mkdir(parents=True, exist_ok=True)
    lines = [str(len(rows)), " ".join(CELEBA_ATTRIBUTES) + " "]
    for name, _, on in rows:
        lines.append(name + " " + " ".join(" 1" if a in on else "-1" for a in CELEBA_ATTRIBUTES))
    (root / "list_attr_celeba.txt").write_text("\n".join(lines) + "\n")
    (root / "list_eval_partition.txt").write_text("".join(f"{name} {part}\n" for name, part, _ in rows))
    for i, (name, _, _) in enumerate(rows):
        image(root / "img_align_celeba" / name, size=(178 // 8, 218 // 8), shade=30 * i)
    return root


MIAP_HEADER = ("ImageID,LabelName,Confidence,XMin,XMax,YMin,YMax,IsOccluded,IsTruncated,IsGroupOf,IsDepictionOf,"
               "IsInsideOf,GenderPresentation,AgePresentation")
MIAP_TEST = MIAP_HEADER + """
0002ab0af02e4a77,/m/01g317,1,0.1,0.5,0.2,0.9,0,0,0,0,0,Predominantly Feminine,Middle
0002ab0af02e4a77,/m/01g317,1,0.5,0.95,0.1,0.8,1,0,0,0,0,Predominantly Masculine,Young
0002ab0af02e4a77,/m/01g317,1,0.0,1.0,0.5,1.0,0,1,1,0,0,Unknown,Unknown
000a1249af2bc5f0,/m/01g317,1,0.25,0.75,0.25,0.75,0,0,0,1,0,Unknown,Older
000c4d66ce89aa69,/m/01g317,1,0.0,0.5,0.0,0.5,0,0,0,0,0,Predominantly Masculine,Unknown
"""
MIAP_IMAGES = {"0002ab0af02e4a77": (40, 20), "000a1249af2bc5f0": (16, 32), "000c4d66ce89aa69": (10, 10)}


def miap(root: Path, images_dir: str = "images") -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "open_images_extended_miap_boxes_test.csv").write_text(MIAP_TEST)
    (root / "open_images_extended_miap_images_test.lst").write_text(
        "".join(f"test/{i}\n" for i in MIAP_IMAGES))
    for i, size in MIAP_IMAGES.items():
        image(root / images_dir / f"{i}.jpg", size=size)
    return root


FACET_CLASSES = ["doctor", "guitarist", "nurse", "skateboarder"]


def _facet_row(pid, filename, class1, class2, gender, skin, age, lighting):
    votes = {f"skin_tone_{k}": skin.get(k, 0) for k in range(1, 11)}
    votes["skin_tone_na"] = skin.get("na", 0)
    row = {"filename": filename, "person_id": pid, "class1": class1, "class2": class2}
    row |= {f"gender_presentation_{g}": int(g == gender) for g in ("masc", "fem", "non_binary", "na")}
    row |= votes
    row |= {f"age_presentation_{a}": int(a == age) for a in ("young", "middle", "older", "na")}
    row |= {"hairtype_coily": 0, "hairtype_straight": 1}
    row |= {f"lighting_{x}": int(x == lighting) for x in ("underexposed", "dimly_lit", "well_lit", "overexposed",
                                                          "na")}
    row |= {"visible_torso": 1, "visible_face": 1, "visible_minimal": 0}
    return row


FACET_PEOPLE = [
    # person_id, filename, class1, class2, gender, skin votes (MST level -> votes), age, lighting
    (1, "sa_1.jpg", "doctor", "", "fem", {1: 3, 2: 2}, "middle", "well_lit"),
    (2, "sa_1.jpg", "nurse", "doctor", "masc", {7: 1, 8: 3, 9: 2}, "young", "well_lit"),
    (3, "sa_2.jpg", "guitarist", "", "masc", {4: 2, 5: 3, 6: 1}, "older", "dimly_lit"),
    (4, "sa_3.jpg", "skateboarder", "", "na", {"na": 3}, "na", "underexposed"),
    (5, "sa_3.jpg", "guitarist", "", "non_binary", {9: 3, 10: 3}, "young", "well_lit"),
]
FACET_IMAGES = {"sa_1.jpg": (64, 48), "sa_2.jpg": (40, 40), "sa_3.jpg": (50, 30)}


def facet(root: Path, image_dirs=("images",)) -> Path:
    """annotations/annotations.csv, annotations/coco_boxes.json and annotations/coco_masks.json, images."""
    import pandas as pd
    from pycocotools import mask as mask_utils
    import numpy as np

    ann_dir = root / "annotations"
    ann_dir.mkdir(parents=True, exist_ok=True)
    rows = []
    boxes = {1: [4, 4, 20, 30], 2: [30, 5, 20, 35], 3: [5, 5, 25, 30], 4: [2, 2, 15, 20], 5: [20, 4, 25, 24]}
    for pid, fn, c1, c2, g, skin, age, light in FACET_PEOPLE:
        row = _facet_row(pid, fn, c1, c2, g, skin, age, light)
        x, y, w, h = boxes[pid]
        row["bounding_box"] = json.dumps({"x": x, "y": y, "width": w, "height": h, "dont_know": False})
        rows.append(row)
    pd.DataFrame(rows).to_csv(ann_dir / "annotations.csv", index=False)
    image_ids = {fn: i for i, fn in enumerate(FACET_IMAGES, start=1)}
    for k, (fn, (w, h)) in enumerate(FACET_IMAGES.items()):
        image(root / image_dirs[k % len(image_dirs)] / fn, size=(w, h), shade=40 * k)
    categories = [{"id": i, "name": c} for i, c in enumerate(FACET_CLASSES, start=1)]
    cat = {c: i for i, c in enumerate(FACET_CLASSES, start=1)}
    coco = {
        "info": {"description": "FACET"},
        "images": [{"id": image_ids[fn], "file_name": fn, "width": w, "height": h}
                   for fn, (w, h) in FACET_IMAGES.items()],
        "annotations": [{"id": pid, "image_id": image_ids[fn], "category_id": cat[c1], "bbox": boxes[pid],
                         "area": boxes[pid][2] * boxes[pid][3], "iscrowd": 0}
                        for pid, fn, c1, *_ in FACET_PEOPLE],
        "categories": categories,
    }
    (ann_dir / "coco_boxes.json").write_text(json.dumps(coco))
    masks = []
    mid = 100
    for pid, fn, *_ in FACET_PEOPLE[:4]:  # person 5 has no mask
        w, h = FACET_IMAGES[fn]
        m = np.zeros((h, w), np.uint8, order="F")
        x, y, bw, bh = boxes[pid]
        m[y:y + bh, x:x + bw] = 1
        rle = mask_utils.encode(m)
        for cat_id in (1, 2):  # person and clothing masks of the same person
            mid += 1
            masks.append({"id": mid, "image_id": image_ids[fn], "category_id": cat_id, "facet_person_id": pid,
                          "segmentation": {"size": [h, w], "counts": rle["counts"].decode("ascii")},
                          "bbox": boxes[pid], "area": int(m.sum()), "iscrowd": 0})
    (ann_dir / "coco_masks.json").write_text(json.dumps({
        "images": coco["images"], "annotations": masks,
        "categories": [{"id": 1, "name": "person"}, {"id": 2, "name": "clothing"}, {"id": 3, "name": "hair"}]}))
    return root
