"""Fixtures for the detection tests: tiny COCO/FACET-format splits written by the tests themselves."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

# FACET annotations.csv column names, as published (Gustafson et al., 2023)
GENDER = ["masc", "fem", "non_binary", "na"]
AGE = ["young", "middle", "older", "na"]
HAIR_COLOR = ["black", "blonde", "brown", "red", "colored", "grey", "na"]
HAIRTYPE = ["coily", "dreadlocks", "bald", "straight", "curly", "wavy", "na"]
HAS = ["facial_hair", "tattoo", "cap", "mask", "headscarf", "eyeglasses"]
VISIBLE = ["torso", "face", "minimal"]
LIGHTING = ["underexposed", "dimly_lit", "well_lit", "overexposed", "na"]
FACET_COLUMNS = (
    ["filename", "person_id", "class1", "class2", "bounding_box"]
    + [f"gender_presentation_{g}" for g in GENDER]
    + [f"skin_tone_{i}" for i in range(1, 11)] + ["skin_tone_na"]
    + [f"age_presentation_{a}" for a in AGE]
    + [f"hair_color_{h}" for h in HAIR_COLOR]
    + [f"hairtype_{h}" for h in HAIRTYPE]
    + [f"has_{h}" for h in HAS] + [f"visible_{v}" for v in VISIBLE]
    + [f"lighting_{x}" for x in LIGHTING]
)


def square_rle(h, w, x, y, bw, bh):
    """Compressed RLE of an axis-aligned rectangle mask."""
    from pycocotools import mask as mask_utils

    m = np.zeros((h, w), dtype=np.uint8, order="F")
    m[int(y):int(y + bh), int(x):int(x + bw)] = 1
    rle = mask_utils.encode(np.asfortranarray(m))
    return {"size": [h, w], "counts": rle["counts"].decode("ascii")}


def make_facet_split(root: Path, *, n_images: int = 40, seed: int = 0, dark_miss: float = 0.6,
                     light_miss: float = 0.1, with_images: bool = False):
    """A FACET-format split: coco_boxes.json, coco_masks.json, annotations.csv and COCO results.

    Two or three people per 64x48 image. Darker-skinned people (Monk votes in
    8-10) are missed by the "detector" with probability ``dark_miss``,
    lighter ones with ``light_miss``; found people get a box shifted by one
    pixel and a mask equal to their own.
    """
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    h, w = 48, 64
    images, anns, masks, rows, results = [], [], [], [], []
    pid = 1
    for i in range(n_images):
        name = f"img_{i:03d}.png"
        images.append({"id": i + 1, "file_name": name, "height": h, "width": w})
        if with_images:
            from PIL import Image

            Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8)).save(root / name)
        for k in range(int(rng.integers(2, 4))):
            x, y, bw, bh = 2 + 20 * k, 4.0, 16.0, 30.0
            dark = rng.random() < 0.5
            # three annotators, each picks two adjacent tones
            tones = np.zeros(11, int)
            for _ in range(3):
                t = int(rng.integers(8, 10)) if dark else int(rng.integers(1, 3))
                tones[t] += 1
                tones[t + 1] += 1
            gender = GENDER[int(rng.integers(0, 2))]
            lighting = LIGHTING[int(rng.integers(0, 4))]
            anns.append({"id": pid, "image_id": i + 1, "category_id": 1 + k % 2, "bbox": [x, y, bw, bh],
                         "area": bw * bh, "iscrowd": 0})
            masks.append({"id": pid, "image_id": i + 1, "category_id": 1 + k % 2,
                          "segmentation": square_rle(h, w, x, y, bw, bh), "area": bw * bh, "iscrowd": 0})
            row = {c: 0 for c in FACET_COLUMNS}
            row.update({"filename": name, "person_id": pid, "class1": ["doctor", "guitarist"][k % 2], "class2": "",
                        "bounding_box": json.dumps({"x": x, "y": y, "width": bw, "height": bh})})
            row[f"gender_presentation_{gender}"] = 1
            for t in range(1, 11):
                row[f"skin_tone_{t}"] = int(tones[t])
            row[f"age_presentation_{AGE[int(rng.integers(0, 3))]}"] = 1
            row[f"lighting_{lighting}"] = 1
            row["hair_color_black"] = 1
            row["hairtype_straight"] = 1
            row["visible_face"] = 1
            rows.append(row)
            if rng.random() >= (dark_miss if dark else light_miss):
                results.append({"image_id": i + 1, "category_id": 1, "bbox": [x + 1, y, bw, bh],
                                "score": round(float(rng.uniform(0.3, 1.0)), 3),
                                "segmentation": square_rle(h, w, x + 1, y, bw, bh)})
            pid += 1
        # one false positive on the background per image
        results.append({"image_id": i + 1, "category_id": 1, "bbox": [50.0, 30.0, 10.0, 10.0],
                        "score": round(float(rng.uniform(0.0, 0.5)), 3), "segmentation": square_rle(h, w, 50, 30, 10, 10)})
    cats = [{"id": 1, "name": "doctor"}, {"id": 2, "name": "guitarist"}]
    (root / "coco_boxes.json").write_text(json.dumps({"images": images, "annotations": anns, "categories": cats}))
    (root / "coco_masks.json").write_text(json.dumps({"images": images, "annotations": masks, "categories": cats}))
    pd.DataFrame(rows, columns=FACET_COLUMNS).to_csv(root / "annotations.csv", index=False)
    (root / "detections.json").write_text(json.dumps(results))
    return root


def write_facet_card(root: Path, *, votes: str = "any", extra: str = "") -> Path:
    card = root / "facet.md"
    card.write_text(f"""---
pretty_name: FACET-format fixture
split:
  coco: coco_boxes.json
  masks: coco_masks.json
  attributes: annotations.csv
  annotation_id_column: person_id
class_agnostic: true
min_group_size: 20
attributes:
  skin_tone:
    scale: monk
    votes: {votes}
    bins: {{lighter: [1, 2, 3, 4, 5], darker: [6, 7, 8, 9, 10]}}
  gender_presentation: {{}}
  lighting: {{}}
intersections:
  - [gender_presentation, skin_tone]
reference_groups:
  skin_tone: lighter
{extra}---
# FACET-format fixture

Made by the tests.
""")
    return card
