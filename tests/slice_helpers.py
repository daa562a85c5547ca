"""Tiny generated splits, models and cards for the classification-slice tests."""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np
import pandas as pd

CLASSES = ("cat", "dog")


def write_images(directory: Path, ids, labels, *, size: int = 8, seed: int = 0) -> list[str]:
    """Write one small PNG per id; class 1 images are brighter. Returns relative names."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    directory.mkdir(parents=True, exist_ok=True)
    names = []
    for sid, label in zip(ids, labels):
        base = 70 + 110 * int(label)
        pixels = np.clip(rng.normal(base, 30, (size, size, 3)), 0, 255).astype(np.uint8)
        Image.fromarray(pixels).save(directory / f"{sid}.png")
        names.append(f"{sid}.png")
    return names


def make_split(root: Path, *, n: int = 48, seed: int = 0, card_extra: str = "") -> dict:
    """Write images, ``manifest.csv`` and ``data_cards/tiny.md`` under ``root``.

    Attributes: ``skin`` (Fitzpatrick as roman numerals), ``gender`` and ``age``.
    """
    rng = np.random.default_rng(seed)
    ids = [f"s{i:03d}" for i in range(n)]
    labels = rng.integers(0, 2, n)
    image_dir = root / "data" / "images"
    names = write_images(image_dir, ids, labels, seed=seed)
    roman = np.array(["I", "II", "III", "IV", "V", "VI"])
    manifest = pd.DataFrame(
        {
            "id": ids,
            "file": [f"images/{name}" for name in names],
            "species": [CLASSES[i] for i in labels],
            "skin": roman[rng.integers(0, 6, n)],
            "gender": rng.choice(["female", "male"], n),
            "age": rng.choice(["young", "old"], n),
        }
    )
    manifest_path = root / "data" / "manifest.csv"
    manifest.to_csv(manifest_path, index=False)
    card = root / "data_cards" / "tiny.md"
    card.parent.mkdir(parents=True, exist_ok=True)
    card.write_text(
        textwrap.dedent(
            """\
            ---
            split:
              manifest: ../data/manifest.csv
              id_column: id
              image_column: file
            image_root: ../data
            label_column: species
            classes: [cat, dog]
            attributes:
              skin_type:
                column: skin
                scale: fitzpatrick
              gender:
                column: gender
              age:
                column: age
                scale: ordinal
                order: [young, old]
            intersections:
              - [gender, skin_type]
            reference_groups:
              skin_type: lighter
            min_group_size: 10
            """
        )
        + card_extra
        + "---\n# Tiny split\n\n## Motivation\nTests.\n",
        encoding="utf-8",
    )
    return {"card": card, "manifest": manifest_path, "frame": manifest, "images": image_dir, "root": root}


def make_model(root: Path, *, seed: int = 0, name: str = "tiny", trust: bool = False, weights: str | None = None) -> Path:
    """Save a seeded ``tiny_model.tiny_cnn`` state dict and write ``models/NAME.md``."""
    import torch

    from tiny_model import tiny_cnn

    torch.manual_seed(seed)
    model_dir = root / "models"
    model_dir.mkdir(parents=True, exist_ok=True)
    if weights is None:
        weights = f"{name}.pth"
        torch.save(tiny_cnn(num_classes=2).state_dict(), model_dir / weights)
    card = model_dir / f"{name}.md"
    card.write_text(
        textwrap.dedent(
            f"""\
            ---
            task: classification
            model:
              entry_point: "tiny_model:tiny_cnn"
            weights:
              path: {weights}
            trust_checkpoint: {"true" if trust else "false"}
            num_classes: 2
            label_map: {{0: cat, 1: dog}}
            preprocessing:
              resize: [8, 8]
              mean: [0.5, 0.5, 0.5]
              std: [0.25, 0.25, 0.25]
            ---
            # Tiny model

            ## Model details
            Random tiny CNN for tests.
            """
        ),
        encoding="utf-8",
    )
    return card
