"""CelebA (Liu et al., ICCV 2015): ``list_attr_celeba.txt``, ``list_eval_partition.txt`` and ``img_align_celeba/``.

Both text files are parsed by torchvision's own CelebA parser
(``torchvision.datasets.CelebA._load_csv``), not by a second one. The
``CelebA(root, split=..., download=False)`` constructor itself is not used:
it insists on five annotation files with the MD5 sums torchvision records
(identity, boxes and landmarks too) under ``root/celeba/``, where an audit needs
two. The importer compares the two files it reads with those MD5 sums and
says whether they match.

The label is ``Blond_Hair`` (the attribute whose correlation with gender
Sagawa et al., ICLR 2020, made the standard worst-group benchmark); the
manifest also keeps all 40 attributes as 0/1 columns, so another label is a
two-line edit of the card (``label_column`` and ``classes``).
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from ..errors import DataError
from ._common import ImportResult, DataLocation, counts_markdown, group_counts, write_card, write_csv

VARIABLE = "CELEBA_ROOT"
SPLITS = ("train", "valid", "test", "all")
DEFAULT_SPLIT = "test"
PARTITION = {"train": 0, "valid": 1, "test": 2}
LABEL = "Blond_Hair"
IMAGES = "img_align_celeba"
FILES = ("list_attr_celeba.txt", "list_eval_partition.txt")


def card_name(split: str) -> str:
    return f"celeba_{split}"


def _reader(root: Path):
    """A torchvision CelebA object used only for its parser, reading from ``root`` itself."""
    from torchvision.datasets import CelebA

    reader = CelebA.__new__(CelebA)  # no __init__: it would demand all five files and their MD5 sums
    reader.root = str(root)
    reader.base_folder = ""
    return reader


def _load(reader, name: str, header: int | None):
    path = Path(reader.root) / name
    if not path.is_file():
        raise DataError(f"{path}: file not found (CelebA publishes {' and '.join(FILES)} beside {IMAGES}/)")
    try:
        return reader._load_csv(name, header=header)
    except (ValueError, IndexError, RuntimeError) as exc:
        raise DataError(f"{path}: cannot parse as torchvision's CelebA reader expects (space-separated, "
                        f"{'a count line, a header line, then ' if header else ''}one file name and integers per "
                        f"line): {' '.join(str(exc).split())[:160]}") from None


def _md5_notes(root: Path) -> list[str]:
    from torchvision.datasets import CelebA
    from torchvision.datasets.utils import check_integrity

    recorded = {name: md5 for _, md5, name in CelebA.file_list}
    notes = []
    for name in FILES:
        ok = check_integrity(str(root / name), recorded[name])
        notes.append(f"{name}: MD5 {'matches' if ok else 'differs from'} the published file's "
                     f"(torchvision's record {recorded[name]})")
    return notes


def front_matter(root: DataLocation, split: str, command: str, manifest: str | None = None) -> dict:
    return {
        "pretty_name": f"CelebA, {split} partition ({LABEL} classification by gender and age)",
        "license": "other",
        "task_categories": ["image-classification"],
        "source_datasets": ["CelebA (Liu, Luo, Wang & Tang, ICCV 2015)"],
        "imported_from": {"source": "celeba", "split": split, "root": root.text, "command": command},
        "split": {"manifest": manifest or f"{card_name(split)}.csv", "id_column": "image_id",
                  "image_column": "image"},
        "image_root": root.card(),
        "label_column": "label",
        "classes": [f"not_{LABEL}", LABEL],
        "attributes": {
            "gender": {"column": "gender", "order": ["female", "male"]},
            "age": {"column": "age", "order": ["young", "not_young"]},
        },
        "intersections": [["gender", "age"]],
        "reference_groups": {"gender": "female"},
        "min_group_size": 50,
    }


def run(root: DataLocation, out: Path, split: str, command: str) -> ImportResult:
    reader = _reader(root.path)
    attr = _load(reader, "list_attr_celeba.txt", header=1)
    parts = _load(reader, "list_eval_partition.txt", header=None)
    attr_path, parts_path = root.path / FILES[0], root.path / FILES[1]
    names = [n for n in attr.header if n]  # the published header line ends in a space
    if len(names) != 40 or attr.data.shape[1] != 40:
        raise DataError(f"{attr_path}: expected 40 attribute names on line 2 and 40 values per image, found "
                        f"{len(names)} names and {attr.data.shape[1]} values")
    if list(attr.index) != list(parts.index):
        i = next((k for k, (a, b) in enumerate(zip(attr.index, parts.index)) if a != b),
                 min(len(attr.index), len(parts.index)))
        found = parts.index[i] if i < len(parts.index) else "the end of the file"
        raise DataError(f"{parts_path}: line {i + 1}: expected the image of {attr_path.name} line {i + 3} "
                        f"({attr.index[i] if i < len(attr.index) else 'none'}), found {found}")
    values = attr.data.numpy()
    bad = ~((values == 1) | (values == -1))
    if bad.any():
        r, c = (int(x[0]) for x in bad.nonzero())
        raise DataError(f"{attr_path}: line {r + 3} ({attr.index[r]}): field '{names[c]}': expected 1 or -1, "
                        f"found {int(values[r, c])}")
    partition = parts.data.numpy().reshape(-1)
    if not set(partition.tolist()) <= {0, 1, 2}:
        r = int(next(i for i, p in enumerate(partition) if p not in (0, 1, 2)))
        raise DataError(f"{parts_path}: line {r + 1} ({parts.index[r]}): expected partition 0 (train), 1 (valid) "
                        f"or 2 (test), found {int(partition[r])}")
    keep = [i for i, p in enumerate(partition) if split == "all" or p == PARTITION[split]]
    if not keep:
        raise DataError(f"{parts_path}: expected images in the {split} partition, found none")
    frame = pd.DataFrame((values[keep] + 1) // 2, columns=names)  # torchvision's {-1, 1} -> {0, 1}
    ids = [attr.index[i] for i in keep]
    images = [f"{IMAGES}/{name}" for name in ids]
    missing = [k for k, img in enumerate(images) if not os.path.isfile(root.path / img)]
    if missing:
        k = missing[0]
        raise DataError(f"{attr_path}: line {keep[k] + 3} ({ids[k]}): image file not found: {root.path / images[k]} "
                        f"({len(missing):,} of {len(images):,} images of the {split} partition missing)")
    manifest = pd.DataFrame({
        "image_id": ids, "image": images,
        "label": [LABEL if v else f"not_{LABEL}" for v in frame[LABEL]],
        "gender": ["male" if v else "female" for v in frame["Male"]],
        "age": ["young" if v else "not_young" for v in frame["Young"]],
        "partition": [int(partition[i]) for i in keep],
    })
    manifest = pd.concat([manifest, frame], axis=1)
    side = out.with_name(f"{out.stem}.csv")
    write_csv(side, manifest)
    front = front_matter(root, split, command, side.name)
    write_card(out, front, body(split, None))
    n, counts = group_counts(out)
    notes = _md5_notes(root.path)
    write_card(out, front, body(split, counts_markdown(n, "images", counts) + "".join(f"\n- {x}." for x in notes)))
    return ImportResult(card=out, files=[out, side], counts=counts, notes=notes, n_samples=n, unit="images")


def body(split: str, summary: str | None) -> str:
    this_copy = summary or (f"Not imported on this machine yet: `audit import celeba '${{{VARIABLE}}}' --out "
                            f"data_cards/celeba_{split}.md --split {split}` reads both label files with torchvision's "
                            f"parser, writes `celeba_{split}.csv` (the manifest this card reads) beside this card "
                            "and writes the group counts here.")
    return f"""
# Data card: CelebA, {split} partition

Read in its published layout from `${{{VARIABLE}}}`: `list_attr_celeba.txt`,
`list_eval_partition.txt` and the aligned images in `img_align_celeba/`,
parsed by `torchvision.datasets.CelebA`'s own reader. `audit import` writes
the selected partition to `celeba_{split}.csv` beside this card: the label
(`{LABEL}`), `gender` (from `Male`), `age` (from `Young`) and all 40
attributes as 0/1. Sources: [CelebA] Z. Liu, P. Luo, X. Wang and X. Tang,
"Deep Learning Face Attributes in the Wild", ICCV 2015; [CelebA-site]
mmlab.ie.cuhk.edu.hk/projects/CelebA.html; [GDRO] S. Sagawa et al.,
"Distributionally Robust Neural Networks", ICLR 2020.

## This copy

{this_copy}

## Motivation

Built to learn and benchmark face attribute prediction in the wild [CelebA].

## Composition

- 202,599 face images of 10,177 celebrities, each with 40 binary attributes
  and 5 landmarks [CelebA-site].
- Partitions (`list_eval_partition.txt`): 0 train (162,770 images), 1 valid
  (19,867), 2 test (19,962), with no identity in two partitions
  [CelebA-site].
- No race or skin-tone label: audits by demographic group are limited to the
  `Male` and `Young` attributes, both binary and both perceived.

## Collection process

Celebrity images from the web (the CelebFaces collection), aligned and cropped
to the face [CelebA].

## Labelling protocol

The 40 binary attributes were labelled by human annotators, one value per
attribute and image [CelebA; CelebA-site]; attributes such as `Attractive` or
`Young` are subjective judgements, and no agreement figures are published.

## Licence

For non-commercial research and educational purposes only; the images are
not owned by the data set's authors [CelebA-site].

## Known biases and limits

- Celebrities: young, made-up, well-lit, frontal faces; not a sample of any
  population.
- Strong label correlations: most `{LABEL}` images are of people labelled
  female, so a classifier can lean on gender; its errors concentrate on blond
  men, the smallest group [GDRO].
- Gender is binary (`Male`) and age is one bit (`Young`).

## Uses

Evaluation of attribute classifiers by gender and age, and of worst-group
accuracy (`{LABEL}` by `gender`).
"""
