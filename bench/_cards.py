"""Shared by bench/cli_startup.py and bench/overhead.py: the data card of their small classification split."""

from __future__ import annotations

import textwrap
from pathlib import Path


def write_classification_card(root: Path, title: str) -> Path:
    """``root/data.md`` for ``root/manifest.csv`` (columns id, file, label, skin, gender; classes cat and dog,
    images under ``root``), attributes skin and gender and their intersection."""
    path = root / "data.md"
    path.write_text(textwrap.dedent(f"""\
        ---
        pretty_name: {title}
        split: {{manifest: manifest.csv, id_column: id, image_column: file}}
        image_root: .
        label_column: label
        classes: [cat, dog]
        attributes:
          skin: {{column: skin}}
          gender: {{column: gender}}
        intersections: [[skin, gender]]
        ---
        # {title}
        """))
    return path
