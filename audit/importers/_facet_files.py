"""FACET's published files, read and checked: ``annotations.csv``, the COCO files, the images and the votes.

Used by :mod:`audit.importers.facet`, which writes the cards (its docstring describes the layout under ROOT).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd

from ..errors import DataError

REQUIRED = ["person_id", "filename", "class1", "class2"]
VOTES = {  # column prefix -> levels (``<prefix>_na`` counts as no vote)
    "gender_presentation": ["masc", "fem", "non_binary"],
    "skin_tone": list(range(1, 11)),
    "age_presentation": ["young", "middle", "older"],
    "lighting": ["underexposed", "dimly_lit", "well_lit", "overexposed"],
}
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")


def _find(root: Path, name: str) -> Path:
    for candidate in (root / "annotations" / name, root / name):
        if candidate.is_file():
            return candidate
    raise DataError(f"{root}: expected FACET's {name} in annotations/ (or the root), found no such file")


def _read_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}: invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}") from None
    if not isinstance(data, dict) or not all(isinstance(data.get(k), list) for k in ("images", "annotations")):
        raise DataError(f"{path}: expected a COCO object with 'images' and 'annotations' lists, found "
                        f"{type(data).__name__}")
    return data


def read_annotations(path: Path) -> pd.DataFrame:
    """Read ``annotations.csv`` and check the columns the cards use."""
    try:
        table = pd.read_csv(path, keep_default_na=True)
    except Exception as exc:  # noqa: BLE001
        raise DataError(f"{path}: cannot read table: {' '.join(str(exc).split())[:200]}") from None
    wanted = REQUIRED + [f"{p}_{lv}" for p, levels in VOTES.items() for lv in levels]
    missing = [c for c in wanted if c not in table.columns]
    if missing:
        raise DataError(f"{path}: expected FACET's columns ({', '.join(REQUIRED)}, gender_presentation_*, "
                        f"skin_tone_1..10, age_presentation_*, lighting_*), found them without "
                        f"{', '.join(missing[:6])}{' ...' if len(missing) > 6 else ''}")
    for column in [c for c in wanted if c not in REQUIRED]:
        values = pd.to_numeric(table[column], errors="coerce")
        bad = values.isna() | (values < 0)
        if bad.any():
            i = int(bad.to_numpy().argmax())
            raise DataError(f"{path}: row {i + 1} (person_id {table['person_id'].iat[i]}): field '{column}': "
                            f"expected a vote count (0 or more), found {table[column].iat[i]!r}")
    dup = table["person_id"].duplicated()
    if dup.any():
        i = int(dup.to_numpy().argmax())
        raise DataError(f"{path}: row {i + 1}: field 'person_id': duplicate person id {table['person_id'].iat[i]}")
    return table


def _image_index(root: Path) -> dict[str, str]:
    """Image file name -> path relative to the root (the first found), the annotations folder skipped."""
    index: dict[str, str] = {}
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d != "annotations")
        for f in sorted(files):
            if f.lower().endswith(IMAGE_SUFFIXES):
                index.setdefault(f, (Path(folder) / f).relative_to(root).as_posix())
    return index


def _locate(root: Path, names: list[str], where: Path) -> tuple[str | None, dict[str, str]]:
    """Where each image is: (the one folder that holds them all, or None) and name -> path relative to the root."""
    index = _image_index(root)
    missing = [n for n in names if Path(n).name not in index]
    if missing:
        raise DataError(f"{where}: image file '{missing[0]}' not found under {root} ({len(missing):,} of "
                        f"{len(names):,} images missing)")
    rel = {n: index[Path(n).name] for n in names}
    folders = {str(Path(p).parent) for p in rel.values()}
    single = folders.pop() if len(folders) == 1 and all(Path(n).name == n for n in names) else None
    return single, rel


def _votes_to_values(table: pd.DataFrame) -> pd.DataFrame:
    from ..tasks.detection.people import vote_groups

    out = {}
    for prefix, levels in VOTES.items():
        counts = table[[f"{prefix}_{lv}" for lv in levels]].astype(float).copy()
        counts.columns = levels
        out[prefix] = vote_groups(counts.reset_index(drop=True), "majority")
    return pd.DataFrame(out)
