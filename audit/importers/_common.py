"""What every importer shares: the root (``${VAR}`` or a path), writing cards and side files, group counts.

An importer reads a public data set in its published layout, untouched, and
writes a data card (plus any side file the card needs, beside the card). The
card's paths into the data set start with the root as given: ``${FACET_ROOT}``
when the root was given as that variable (or equals its value), so the card
works on every machine that sets the variable; an absolute path otherwise.
"""

from __future__ import annotations

import csv
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import yaml

from ..errors import DataError

__all__ = ["ImportResult", "DataLocation", "counts_markdown", "group_counts", "image_size", "parse_root", "render_card",
           "write_card", "write_csv", "write_text"]

_VARIABLE = re.compile(r"\A\$(?:\{([A-Za-z_][A-Za-z0-9_]*)\}|([A-Za-z_][A-Za-z0-9_]*))(?P<rest>(?:[/\\].*)?)\Z")


@dataclass(frozen=True)
class DataLocation:
    """A data set root: ``text`` as the card writes it and ``path`` where it is on this machine."""

    text: str
    path: Path

    def card(self, *parts: str) -> str:
        """A path inside the root as the card writes it (``${VAR}/a/b`` or ``/abs/a/b``)."""
        return "/".join([self.text.rstrip("/"), *[p.strip("/") for p in parts if p]])

    @property
    def variable(self) -> str | None:
        match = _VARIABLE.match(self.text)
        return (match.group(1) or match.group(2)) if match else None


@dataclass
class ImportResult:
    """What an import wrote and found (printed by ``audit import``)."""

    card: Path
    files: list[Path] = field(default_factory=list)
    counts: dict[str, dict[str, int]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    n_samples: int = 0
    unit: str = "samples"


def parse_root(root: str | os.PathLike, variable: str) -> DataLocation:
    """The root as given on the command line: ``${VAR}`` (or ``$VAR``) stays a variable in the card.

    A plain path equal to the source's conventional variable's value (e.g.
    ``$FAIRFACE_ROOT``) is also written as the variable. Raises DataError
    when the variable is not set or the root is not a directory.
    """
    text = str(root)
    match = _VARIABLE.match(text)
    if match:
        name = match.group(1) or match.group(2)
        value = os.environ.get(name)
        if value is None or not value.strip():
            raise DataError(f"ROOT {text}: expected the environment variable {name} to be set to the data set's "
                            f"root directory, found it not set (export {name}=/path/to/the/data/set)")
        rest = match.group("rest").replace("\\", "/")
        path = Path(os.path.expanduser(value)) / rest.lstrip("/")
        card_text = "${" + name + "}" + rest.rstrip("/")
    else:
        path = Path(text).expanduser()
        card_text = None
        value = os.environ.get(variable)
        if value and os.path.isdir(value) and path.is_dir() and os.path.samefile(value, path):
            card_text = "${" + variable + "}"
    if not path.is_dir():
        raise DataError(f"ROOT {text}: expected the data set's root directory, found "
                        f"{'no such file or directory' if not path.exists() else 'a file'} at {path}")
    return DataLocation(text=card_text or os.path.abspath(path), path=Path(os.path.abspath(path)))


def image_size(path: Path) -> tuple[int, int]:
    """``(width, height)`` from the image header (Pillow reads no pixels). Raises DataError."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            return int(image.width), int(image.height)
    except FileNotFoundError:
        raise DataError(f"{path}: image file not found") from None
    except UnidentifiedImageError:
        raise DataError(f"{path}: cannot read image: not a recognised image format") from None
    except OSError as exc:
        raise DataError(f"{path}: cannot read image: {' '.join(str(exc).split())}") from None


def render_card(front_matter: dict, body: str) -> str:
    """A card's text: YAML front matter between ``---`` lines, then the Markdown body."""
    text = yaml.safe_dump(front_matter, sort_keys=False, allow_unicode=True, width=100, default_flow_style=None)
    return f"---\n{text}---\n{body.lstrip()}"


def write_card(path: Path, front_matter: dict, body: str) -> Path:
    """Write a card atomically (a temporary file renamed into place)."""
    return write_text(path, render_card(front_matter, body))


def write_csv(path: Path, frame: pd.DataFrame) -> Path:
    """Write a side table as CSV (UTF-8, ``\\n`` line ends), atomically."""
    return write_text(path, frame.to_csv(index=False, lineterminator="\n", quoting=csv.QUOTE_MINIMAL))


def write_text(path: Path, text: str) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8", newline="")
    os.replace(tmp, path)
    return path


def group_counts(card_path: Path) -> tuple[int, dict[str, dict[str, int]]]:
    """Load a written card with the suite's own loaders and count each attribute's groups (and the labels).

    Returns the number of samples (people for detection cards) and, per
    attribute (plus ``label`` for classification), group -> count in
    display order, as :func:`audit.stats.composition` counts them: a person
    of a ``votes: any`` attribute counts in every group one of their votes
    falls in.
    """
    from ..tasks.detection.cards import is_detection_data_card
    from ..stats import Attribute, composition

    if is_detection_data_card(card_path):
        from ..tasks.detection.cards import load_detection_data_card
        from ..tasks.detection.data import load_ground_truth
        from ..tasks.detection.people import card_people

        card = load_detection_data_card(card_path)
        masks = card.front_matter.get("task") == "instance_segmentation"
        gt = load_ground_truth(card.coco, masks=card.masks, need_masks=masks)
        people, table = card_people(card, gt)
        attributes = [Attribute(name=a.name, column=a.name, scale=a.scale, bins=a.bins, order=a.order,
                                multi=a.votes == "any") for a in card.attributes]
        counts: dict[str, dict[str, int]] = {}
        n = int(people.size)
    else:
        from ..core.data import load_split
        from ..core.registry import load_any_data_card

        card = load_any_data_card(card_path)
        if card.segmentation is not None and card.segmentation.people is not None:  # count the people
            from ..tasks.segmentation.data import load_segmentation_split

            images, table = load_segmentation_split(card)
            attributes = [a.engine_attribute(column=a.name) for a in card.segmentation.people.attributes]
            counts = {}
            n = len(images)
        else:
            table = load_split(card, verify_images=False, require_images=False)
            attributes = [a.engine_attribute(column=a.name) for a in card.attributes]
            labels = pd.Categorical([card.classes[i] for i in table["label"]], categories=card.classes)
            counts = {"label": {str(c): int(k) for c, k in pd.Series(labels).value_counts(sort=False).items()}}
            n = len(table)
    comp = composition(table, attributes)
    for a in attributes:
        rows = comp[comp["grouping"] == a.name]
        counts[a.name] = {str(g): int(k) for g, k in zip(rows["group"], rows["n"])}
    return n, counts


def counts_markdown(n: int, unit: str, counts: dict[str, dict[str, int]]) -> str:
    """The group counts as Markdown lines for the card's "This copy" section."""
    lines = [f"- {n:,} {unit}."]
    for name, groups in counts.items():
        lines.append(f"- `{name}`: " + ", ".join(f"{g} {c:,}" for g, c in groups.items()) + ".")
    return "\n".join(lines)
