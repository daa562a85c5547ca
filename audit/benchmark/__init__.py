"""The planted-bias benchmark: synthetic people with a known disparity, for all three tasks.

:func:`write_benchmark` draws, from one seed, a training and a balanced test
split for each task and writes them with their data cards::

    portraits/{train,test}/images/*.png, manifest.csv     classification: the sticker's shape
    scenes/{train,test}/images/*.png                      detection, instance and semantic segmentation
    scenes/{train,test}/instances.json                    COCO: person boxes and RLE masks
    scenes/{train,test}/people.csv, images.csv            per-person and per-image attributes
    scenes/{train,test}/masks/*.png, instances/*.png      semantic label masks, person instance ids
    data_cards/benchmark_{classification,detection,segmentation}_{train,test}.md

Every person has a Monk Skin Tone (1-10, drawn in the published palette's
colours) and an age group; every image has its lighting (``well_lit`` or
``underexposed``). Two knobs (:class:`Knobs`) plant the bias:

``train_darker_share``
    Representation: the share of Monk 6-10 people in the training splits
    (0.5 is balanced; 0.165 mirrors LFW's 83.5% white).
``underexposure_darker``
    Acquisition: the extra probability that a picture of a Monk 6-10 person
    in the audited (test) split is underexposed (a portrait keeps 45% of the
    light, a scene 30%, with amplified sensor noise: :func:`_draw.expose`), on
    top of ``underexposure_base`` for everyone.

Acquisition is how the audited pictures were taken. In the training splits
underexposure does not depend on tone: every picture is underexposed with
the probability a tone-dependent rule would give on average over the split's
tones (``underexposure_base + underexposure_darker * train_darker_share``),
so each lighting stratum of the training data has the tones in the split's
proportions. Were darker people more often underexposed in training as well,
well-lit darker people would be rare there (about 400 against 900 of 2,000
portraits with the acquisition knob alone), and the small models, which are
data-hungry, would err more on them even in good light: acquisition would
plant a representation gap within each lighting stratum, and lighting would
not explain the whole gap (generator version 3 did this; measured in
``bench/explain.out``).

Test splits always have every Monk tone equally often, and every split has
every age group equally often (no knob is about age). With both knobs off
(:meth:`Knobs.off`) the tones differ only in the face's colour and the ages only in a portrait's hair (how
near that comes to no gap for the demo's small models: :mod:`audit.benchmark._draw`); :meth:`Knobs.representation` and
:meth:`Knobs.acquisition` turn one knob on alone, to see which cause the audit's "What explains the gaps"
attributes a gap to.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from .._io import atomic_write_text, atomic_write_with
from . import _draw

__all__ = ["BenchmarkPaths", "Knobs", "write_benchmark"]

GENERATOR_VERSION = 5
SEGMENTATION_CLASSES = ("background", "person", "ball")
LIGHTING = ("well_lit", "underexposed")


@dataclass(frozen=True)
class Knobs:
    """The planted bias (see the module docstring). The defaults turn both knobs on.

    Attributes
    ----------
    train_darker_share : float
        Representation: the share of Monk 6-10 people in the training splits (test splits: 0.5).
    underexposure_base : float
        The probability that a test picture of Monk 1-5 people is underexposed.
    underexposure_darker : float
        Acquisition: the extra probability for a test picture of Monk 6-10 people (a scene's: times its share
        of them). In training splits every picture is underexposed with ``underexposure_base +
        underexposure_darker * train_darker_share``, whoever it shows (:meth:`train_underexposure`).
    """

    train_darker_share: float = 0.165
    underexposure_base: float = 0.1
    underexposure_darker: float = 0.5

    def train_underexposure(self) -> float:
        """The probability that a training picture is underexposed, the same for every tone: the test rule's
        average over the training split's tones."""
        return self.underexposure_base + self.underexposure_darker * self.train_darker_share

    @classmethod
    def off(cls) -> "Knobs":
        """Balanced training data and no underexposure: no attribute changes how hard an image is."""
        return cls(train_darker_share=0.5, underexposure_base=0.0, underexposure_darker=0.0)

    @classmethod
    def representation(cls) -> "Knobs":
        """Only the representation knob: few Monk 6-10 people in training; every tone equally often underexposed
        (``underexposure_base``) in every split, so lighting makes pictures harder but explains no gap between
        tones."""
        return cls(underexposure_darker=0.0)

    @classmethod
    def acquisition(cls) -> "Knobs":
        """Only the acquisition knob: balanced training data, in which every tone is underexposed equally often
        (0.35); in the test split Monk 6-10 people are underexposed more often (0.6 against 0.1), so the gap
        between tones there is lighting's."""
        return cls(train_darker_share=0.5)

    @classmethod
    def named(cls, name: str) -> "Knobs":
        """The knobs ``audit demo --knobs`` names: ``on`` (both), ``off``, ``representation``, ``acquisition``."""
        return {"on": cls, "off": cls.off, "representation": cls.representation,
                "acquisition": cls.acquisition}[name]()

    def __post_init__(self):
        for name in ("train_darker_share", "underexposure_base", "underexposure_darker"):
            value = getattr(self, name)
            if not 0 <= value <= 1:
                raise ValueError(f"{name}: expected a probability in [0, 1], found {value}")
        if self.underexposure_base + self.underexposure_darker > 1:
            raise ValueError("underexposure_base + underexposure_darker: expected at most 1, found "
                             f"{self.underexposure_base + self.underexposure_darker}")


@dataclass(frozen=True)
class BenchmarkPaths:
    """The data cards :func:`write_benchmark` wrote, by task and split."""

    root: Path

    def card(self, task: str, split: str) -> Path:
        """``task`` is ``classification``, ``detection`` or ``segmentation``; ``split`` ``train`` or ``test``."""
        return self.root / "data_cards" / f"benchmark_{task}_{split}.md"


def _monk_probabilities(darker_share: float) -> np.ndarray:
    return np.r_[np.full(5, (1 - darker_share) / 5), np.full(5, darker_share / 5)]


def _balanced_tones(n: int, rng: np.random.Generator) -> np.ndarray:
    """Every Monk tone ``n // 10`` times (the rest uniformly), shuffled."""
    tones = np.r_[np.repeat(np.arange(1, 11), n // 10), rng.choice(np.arange(1, 11), n % 10, replace=False)]
    return rng.permutation(tones)


def _underexposed(darker_fraction, knobs: Knobs, rng: np.random.Generator, *, train: bool):
    """Which pictures are underexposed, given the share of Monk 6-10 people in each (see the module docstring:
    in training splits it does not depend on the share)."""
    darker_fraction = np.asarray(darker_fraction, float)
    if train:
        p = np.full(darker_fraction.shape, knobs.train_underexposure())
    else:
        p = knobs.underexposure_base + knobs.underexposure_darker * darker_fraction
    return rng.random(np.shape(p)) < p


def _balanced_ages(n: int, rng: np.random.Generator) -> np.ndarray:
    """Every age group ``n // 3`` times (the rest uniformly), shuffled: no split has fewer people of one age."""
    groups = np.asarray(_draw.AGE_GROUPS)
    ages = np.r_[np.repeat(groups, n // 3), rng.choice(groups, n % 3, replace=False)]
    return rng.permutation(ages)


def _save_png(path: Path, array: np.ndarray) -> None:
    from PIL import Image

    Image.fromarray(array).save(path, optimize=False, compress_level=1)


def _write_portraits(out: Path, n: int, *, train: bool, knobs: Knobs, rng: np.random.Generator) -> dict:
    (out / "images").mkdir(parents=True, exist_ok=True)
    monk = rng.choice(np.arange(1, 11), n, p=_monk_probabilities(knobs.train_darker_share)) if train \
        else _balanced_tones(n, rng)
    age = _balanced_ages(n, rng)
    shape = rng.choice(_draw.SHAPES, n)
    under = _underexposed(monk >= 6, knobs, rng, train=train)
    rows = []
    for i in range(n):
        sid = f"p{i:05d}"
        pixels = _draw.expose(_draw.draw_portrait(int(monk[i]), age[i], shape[i], rng), bool(under[i]), rng)
        _save_png(out / "images" / f"{sid}.png", pixels)
        rows.append({"sample_id": sid, "image": f"images/{sid}.png", "sticker": shape[i], "monk": int(monk[i]),
                     "age_group": age[i], "lighting": LIGHTING[int(under[i])]})
    table = pd.DataFrame(rows)
    atomic_write_with(out / "manifest.csv", lambda tmp: table.to_csv(tmp, index=False))
    return {"images": n, "darker_share": round(float(np.mean(monk >= 6)), 4),
            "underexposed": round(float(np.mean(under)), 4)}


def _write_scenes(out: Path, n: int, *, train: bool, knobs: Knobs, rng: np.random.Generator) -> dict:
    from pycocotools import mask as mask_utils

    for sub in ("images", "masks", "instances"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    counts = rng.integers(1, 4, n)
    n_people = int(counts.sum())
    monk = rng.choice(np.arange(1, 11), n_people, p=_monk_probabilities(knobs.train_darker_share)) if train \
        else _balanced_tones(n_people, rng)
    age = _balanced_ages(n_people, rng)
    starts = np.r_[0, np.cumsum(counts)[:-1]]
    under = _underexposed([np.mean(monk[s:s + c] >= 6) for s, c in zip(starts, counts)], knobs, rng, train=train)
    images, annotations, people, image_rows = [], [], [], []
    for i in range(n):
        sid = f"s{i:05d}"
        members = range(starts[i], starts[i] + counts[i])
        image, instances, balls, boxes = _draw.draw_scene(
            [{"monk": int(monk[j])} for j in members], int(rng.integers(0, 3)), rng)
        _save_png(out / "images" / f"{sid}.png", _draw.expose(image, bool(under[i]), rng,
                                                                  light=_draw.SCENE_UNDEREXPOSED_LIGHT,
                                                                  noise=_draw.SCENE_UNDEREXPOSED_NOISE))
        semantic = np.where(instances > 0, 1, np.where(balls, 2, 0)).astype(np.uint8)
        _save_png(out / "masks" / f"{sid}.png", semantic)
        _save_png(out / "instances" / f"{sid}.png", instances.astype(np.uint8))
        images.append({"id": i + 1, "file_name": f"images/{sid}.png", "height": _draw.SIZE, "width": _draw.SIZE})
        image_rows.append({"image_id": i + 1, "sample_id": sid, "lighting": LIGHTING[int(under[i])]})
        for k, j in enumerate(members):
            rle = mask_utils.encode(np.asfortranarray((instances == k + 1).astype(np.uint8)))
            annotations.append({"id": int(j) + 1, "image_id": i + 1, "category_id": 1, "bbox": boxes[k],
                                "area": float(mask_utils.area(rle)), "iscrowd": 0,
                                "segmentation": {"size": rle["size"], "counts": rle["counts"].decode("ascii")}})
            people.append({"annotation_id": int(j) + 1, "image": sid, "instances": f"instances/{sid}.png",
                           "instance": k + 1, "monk": int(monk[j]),
                           "age_group": age[j], "lighting": LIGHTING[int(under[i])]})
    coco = {"images": images, "annotations": annotations, "categories": [{"id": 1, "name": "person"}]}
    atomic_write_text(out / "instances.json", json.dumps(coco))
    for name, rows in (("people.csv", people), ("images.csv", image_rows)):
        table = pd.DataFrame(rows)
        atomic_write_with(out / name, lambda tmp, t=table: t.to_csv(tmp, index=False))
    manifest = pd.DataFrame({"sample_id": [r["sample_id"] for r in image_rows],
                             "image": [f"images/{r['sample_id']}.png" for r in image_rows],
                             "mask": [f"masks/{r['sample_id']}.png" for r in image_rows],
                             "instances": [f"instances/{r['sample_id']}.png" for r in image_rows],
                             "lighting": [r["lighting"] for r in image_rows]})
    atomic_write_with(out / "manifest.csv", lambda tmp: manifest.to_csv(tmp, index=False))
    return {"images": n, "people": n_people, "darker_share": round(float(np.mean(monk >= 6)), 4),
            "underexposed_people": round(float(np.mean(np.repeat(under, counts))), 4)}


def write_benchmark(out_dir, *, seed: int = 0, knobs: Knobs | None = None, n_portraits: tuple[int, int] = (2000, 1000),
                    n_scenes: tuple[int, int] = (800, 400), force: bool = False) -> BenchmarkPaths:
    """Draw the benchmark into ``out_dir`` and write its six data cards.

    Parameters
    ----------
    out_dir : str or Path
        Output directory.
    seed : int
        Seed of everything drawn.
    knobs : Knobs, optional
        The planted bias (default: :class:`Knobs` with both knobs on).
    n_portraits, n_scenes : (int, int)
        Images in the training and test splits of the classification and the scene splits.
    force : bool
        Redraw even when ``benchmark.json`` shows the same parameters were already drawn there.

    Returns
    -------
    BenchmarkPaths
    """
    from .cards import write_cards

    knobs = Knobs() if knobs is None else knobs
    out = Path(out_dir)
    stamp = {"generator_version": GENERATOR_VERSION, "seed": seed, "knobs": asdict(knobs),
             "n_portraits": list(n_portraits), "n_scenes": list(n_scenes)}
    stamp_path = out / "benchmark.json"
    paths = BenchmarkPaths(out)
    if not force and stamp_path.is_file():
        try:
            previous = json.loads(stamp_path.read_text())
        except ValueError:
            previous = {}
        if {k: previous.get(k) for k in stamp} == stamp:
            write_cards(paths, previous)  # cheap, and picks up a changed card template
            return paths
    rng = np.random.default_rng(seed)
    summary = {}
    for split, n_p, n_s in (("train", n_portraits[0], n_scenes[0]), ("test", n_portraits[1], n_scenes[1])):
        summary[f"portraits_{split}"] = _write_portraits(out / "portraits" / split, n_p, train=split == "train",
                                                          knobs=knobs, rng=rng)
        summary[f"scenes_{split}"] = _write_scenes(out / "scenes" / split, n_s, train=split == "train", knobs=knobs,
                                                   rng=rng)
    stamp["summary"] = summary
    write_cards(paths, stamp)
    atomic_write_text(stamp_path, json.dumps(stamp, indent=2) + "\n")
    return paths
