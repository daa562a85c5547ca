"""Write the model card that ``audit train`` leaves next to its weights."""

from __future__ import annotations

from pathlib import Path

import yaml

from .._io import atomic_write_text

__all__ = ["write_model_card"]


def write_model_card(path, *, front_matter: dict, body: str) -> Path:
    """Write a model card: YAML front matter (keys in the given order), then the Markdown ``body``.

    Written atomically, so a reader never sees half a card.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    header = yaml.safe_dump(front_matter, sort_keys=False, allow_unicode=True, default_flow_style=None)
    atomic_write_text(path, f"---\n{header}---\n{body.rstrip()}\n")
    return path
