"""The benchmark's scenes as COCO panoptic ground truth, and their panoptic data cards.

:func:`write_panoptic_ground_truth` turns a drawn scene split
(``scenes/{train,test}``: ``instances.json``, ``masks/*.png``,
``instances/*.png``, ``people.csv``, ``images.csv``) into::

    scenes/{split}/panoptic.json          images, annotations (segments_info), categories
    scenes/{split}/panoptic/*.png         segment ids as RGB (R + 256 G + 256² B)
    scenes/{split}/panoptic_people.csv    image_id, segment_id, monk, age_group: one row per person

People and balls are things, the background is stuff. Segment ids: person
``k`` (the instance mask's value) is ``k``; the balls are the connected
components of the semantic mask's ball pixels, ``10 + j`` (two balls that
touch become one segment: the scene keeps no ball instances); the background
is ``100``. :func:`write_panoptic_benchmark` does both splits and writes
``data_cards/benchmark_panoptic_{train,test}.md``; ``audit demo`` calls it after
:func:`audit.benchmark.write_benchmark`.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from .._io import atomic_write_text, atomic_write_with

__all__ = ["PANOPTIC_CATEGORIES", "panoptic_card_front_matter", "write_panoptic_benchmark",
           "write_panoptic_ground_truth"]

PANOPTIC_CATEGORIES = [{"id": 1, "name": "person", "isthing": 1, "supercategory": "person"},
                       {"id": 2, "name": "ball", "isthing": 1, "supercategory": "object"},
                       {"id": 3, "name": "background", "isthing": 0, "supercategory": "background"}]
BALL_BASE, BACKGROUND = 10, 100
SEMANTIC_PERSON, SEMANTIC_BALL = 1, 2


def _read(path: Path) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as image:
        return np.asarray(image)


def _panoptic_image(semantic: np.ndarray, instances: np.ndarray):
    """(id map, segments_info) of one scene."""
    from scipy import ndimage

    ids = np.zeros(semantic.shape, np.int64)
    segments = []
    for k in (int(v) for v in np.unique(instances) if v != 0):
        ids[instances == k] = k
        segments.append((k, 1))
    balls, n_balls = ndimage.label(semantic == SEMANTIC_BALL)
    for j in range(1, n_balls + 1):
        ids[balls == j] = BALL_BASE + j
        segments.append((BALL_BASE + j, 2))
    background = (ids == 0) & (semantic != SEMANTIC_PERSON)
    if background.any():
        ids[background] = BACKGROUND
        segments.append((BACKGROUND, 3))
    info = []
    for sid, cat in segments:
        ys, xs = np.nonzero(ids == sid)
        box = [int(xs.min()), int(ys.min()), int(xs.max() - xs.min() + 1), int(ys.max() - ys.min() + 1)]
        info.append({"id": sid, "category_id": cat, "iscrowd": 0, "area": int(ys.size), "bbox": box})
    return ids, info


def write_panoptic_ground_truth(scenes_dir) -> Path:
    """Write the panoptic ground truth of one drawn scene split (see the module docstring); returns the JSON path."""
    from PIL import Image

    out = Path(scenes_dir)
    coco = json.loads((out / "instances.json").read_text())
    people = pd.read_csv(out / "people.csv")
    (out / "panoptic").mkdir(exist_ok=True)
    annotations = []
    for image in coco["images"]:
        sid = Path(image["file_name"]).stem
        ids, info = _panoptic_image(_read(out / "masks" / f"{sid}.png"), _read(out / "instances" / f"{sid}.png"))
        rgb = np.stack([ids % 256, ids // 256 % 256, ids // 65536], -1).astype(np.uint8)
        atomic_write_with(out / "panoptic" / f"{sid}.png",
                          lambda tmp, rgb=rgb: Image.fromarray(rgb).save(tmp, format="PNG", compress_level=1))
        annotations.append({"image_id": image["id"], "file_name": f"{sid}.png", "segments_info": info})
    doc = {"images": coco["images"], "annotations": annotations, "categories": PANOPTIC_CATEGORIES}
    atomic_write_text(out / "panoptic.json", json.dumps(doc))
    image_ids = {Path(im["file_name"]).stem: im["id"] for im in coco["images"]}
    table = pd.DataFrame({"image_id": people["image"].map(image_ids).astype(int), "segment_id": people["instance"],
                          "monk": people["monk"], "age_group": people["age_group"]})
    atomic_write_with(out / "panoptic_people.csv", lambda tmp: table.to_csv(tmp, index=False))
    return out / "panoptic.json"


def panoptic_card_front_matter(split: str, *, root: str = "..") -> dict:
    """The front matter of ``benchmark_panoptic_{split}.md``; ``root`` is the benchmark's directory seen from it."""
    from .cards import INTERSECTIONS, MIN_GROUP_SIZE, PERSON_ATTRIBUTES, REFERENCE

    root = f"{root}/scenes/{split}"
    return {"pretty_name": f"Planted-bias benchmark: scenes (panoptic segmentation), {split} split",
            "license": "Apache-2.0", "task": "panoptic_segmentation",
            "split": {"panoptic": f"{root}/panoptic.json", "attributes": f"{root}/panoptic_people.csv",
                      "image_attributes": f"{root}/images.csv", "image_id_column": "image_id"},
            "image_root": root, "person_categories": ["person"],
            "attributes": PERSON_ATTRIBUTES, "intersections": INTERSECTIONS, "reference_groups": REFERENCE,
            "image_groups": {"attributes": {"lighting": PERSON_ATTRIBUTES["lighting"]},
                             "reference_groups": {"lighting": "well_lit"}},
            "min_group_size": MIN_GROUP_SIZE}


def write_panoptic_benchmark(paths, *, splits=("train", "test")) -> dict:
    """Panoptic ground truth and data cards for the scene splits of a drawn benchmark (a ``BenchmarkPaths``).

    ``splits`` are those to write (``audit demo`` audits the test split only). Returns ``{split: card path}``.
    """
    import yaml

    from .cards import _PlainDumper

    cards = {}
    for split in splits:
        write_panoptic_ground_truth(paths.root / "scenes" / split)
        front = yaml.dump(panoptic_card_front_matter(split), Dumper=_PlainDumper, sort_keys=False,
                          allow_unicode=True, default_flow_style=None)
        card = paths.root / "data_cards" / f"benchmark_panoptic_{split}.md"
        atomic_write_text(card, f"---\n{front}---\n# Planted-bias benchmark: panoptic scenes, {split} split\n\n"
                                "People and balls are things, the background is stuff (see "
                                "audit.benchmark.panoptic).\n")
        cards[split] = card
    return cards
