"""The benchmark's data cards: front matter built here, the datasheet text from a template."""

from __future__ import annotations

from pathlib import Path

import yaml

from .._io import atomic_write_text

__all__ = ["card_front_matter", "write_cards"]

MONK_BINS = {"lighter": [1, 2, 3, 4, 5], "darker": [6, 7, 8, 9, 10]}
PERSON_ATTRIBUTES = {
    "monk": {"column": "monk", "scale": "monk", "bins": MONK_BINS},
    "age_group": {"column": "age_group", "scale": "ordinal", "order": ["young", "middle", "older"]},
    "lighting": {"column": "lighting", "scale": "ordinal", "order": ["well_lit", "underexposed"]},
}
INTERSECTIONS = [["monk", "lighting"], ["monk", "age_group"]]
REFERENCE = {"monk": "lighter", "monk × lighting": "lighter × well_lit"}
MIN_GROUP_SIZE = 30
COVARIATES = ["lighting"]  # what may explain a gap: the acquisition knob plants it
TITLES = {"classification": "portraits (classification)", "detection": "scenes (detection and instance segmentation)",
          "segmentation": "scenes (semantic segmentation)"}


class _PlainDumper(yaml.SafeDumper):
    """Writes a repeated mapping out again instead of as a YAML anchor and alias."""

    def ignore_aliases(self, data):
        return True


def card_front_matter(task: str, split: str, *, root: str = "..") -> dict:
    """The front matter of ``benchmark_{task}_{split}.md``; ``root`` is the benchmark's directory seen from the card."""
    common = {"pretty_name": f"Planted-bias benchmark: {TITLES[task]}, {split} split", "license": "Apache-2.0"}
    if task == "classification":
        root = f"{root}/portraits/{split}"
        return {**common, "split": {"manifest": f"{root}/manifest.csv", "id_column": "sample_id",
                                    "image_column": "image"},
                "image_root": root, "label_column": "sticker", "classes": ["circle", "square", "triangle"],
                "attributes": PERSON_ATTRIBUTES, "intersections": INTERSECTIONS, "reference_groups": REFERENCE,
                "covariates": COVARIATES, "min_group_size": MIN_GROUP_SIZE}
    root = f"{root}/scenes/{split}"
    if task == "detection":
        return {**common, "task": "detection",
                "split": {"coco": f"{root}/instances.json", "masks": f"{root}/instances.json",
                          "attributes": f"{root}/people.csv", "annotation_id_column": "annotation_id"},
                "image_root": root, "class_agnostic": True, "detection_classes": ["person"],
                "attributes": PERSON_ATTRIBUTES, "intersections": INTERSECTIONS, "reference_groups": REFERENCE,
                "covariates": COVARIATES, "min_group_size": MIN_GROUP_SIZE}
    return {**common, "split": {"manifest": f"{root}/manifest.csv", "id_column": "sample_id", "image_column": "image"},
            "image_root": root, "classes": ["background", "person", "ball"],
            "attributes": {"lighting": PERSON_ATTRIBUTES["lighting"]},
            "covariates": COVARIATES, "min_group_size": MIN_GROUP_SIZE,
            "segmentation": {"mask_column": "mask", "ignore_index": 255, "person_class": "person",
                             "people": {"table": f"{root}/people.csv", "image_column": "image",
                                        "mask_column": "instances", "instance_column": "instance",
                                        "attributes": PERSON_ATTRIBUTES, "intersections": INTERSECTIONS,
                                        "reference_groups": REFERENCE}}}


def write_cards(paths, stamp: dict, *, card_dir=None, root: str = "..") -> None:
    """Write the six data cards of a drawn benchmark (``stamp`` is its ``benchmark.json``).

    By default into ``data_cards/`` of the benchmark; ``card_dir`` and ``root``
    (the benchmark's directory seen from ``card_dir``) write them elsewhere.
    """
    from jinja2 import Environment, PackageLoader

    env = Environment(loader=PackageLoader("audit", "templates"), autoescape=False, keep_trailing_newline=True,
                      trim_blocks=True, lstrip_blocks=True)
    template = env.get_template("benchmark_data_card.md.j2")
    for task in TITLES:
        for split in ("train", "test"):
            front = yaml.dump(card_front_matter(task, split, root=root), Dumper=_PlainDumper, sort_keys=False,
                              allow_unicode=True, default_flow_style=None)
            body = template.render(task=task, split=split, stamp=stamp, title=TITLES[task],
                                   summary=stamp.get("summary", {}))
            card = paths.card(task, split) if card_dir is None else Path(card_dir) / paths.card(task, split).name
            atomic_write_text(card, f"---\n{front}---\n{body}")
