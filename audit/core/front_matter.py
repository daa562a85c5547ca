"""A card file's YAML front matter and Markdown body, read with the YAML's size bounded.

:func:`read_front_matter` splits a card into its front matter (a mapping) and its body;
:func:`safe_yaml_load` is the YAML loader it uses, with alias expansion and nesting bounded (also used for
the policy files of ``audit compare`` and the front matter ``audit card update`` keeps). What the front
matter's fields mean is checked by the card loaders with :mod:`audit.core.cards`' validator.
"""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from ..errors import CardError
from .cards import _one_line, _show

__all__ = ["MAX_YAML_NODES", "YamlTooLarge", "read_front_matter", "safe_yaml_load"]

_FRONT_MATTER = re.compile(r"\A\ufeff?---[ \t]*\r?\n(.*?)^---[ \t]*\r?$\n?", re.S | re.M)


def read_front_matter(path: str | Path) -> tuple[dict, str]:
    """Split a card file into its YAML front matter and Markdown body.

    Parameters
    ----------
    path : str or Path
        The card file.

    Returns
    -------
    front_matter : dict
    body : str

    Raises
    ------
    CardError
        The file is missing, has no front matter, or the YAML is invalid.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise CardError(f"{path}: card file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise CardError(f"{path}: cannot read card: {_one_line(exc)}") from None
    match = _FRONT_MATTER.match(text)
    if not match:
        raise CardError(
            f"{path}: expected YAML front matter between '---' lines at the top of the file, found none"
        )
    try:
        data = safe_yaml_load(match.group(1))
    except YamlTooLarge as exc:
        raise CardError(f"{path}: invalid YAML front matter: {exc}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 2})" if mark is not None else ""
        problem = getattr(exc, "problem", None) or _one_line(exc)
        raise CardError(f"{path}: invalid YAML front matter{where}: {problem}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise CardError(f"{path}: expected the front matter to be a mapping, found {_show(data)}")
    return data, text[match.end():]


MAX_YAML_NODES = 100_000  # nodes of the front matter with every alias expanded (a card has a few hundred)


class YamlTooLarge(ValueError):
    """YAML whose aliases expand to too many nodes (an alias bomb), or nested too deeply."""


def safe_yaml_load(text: str):
    """``yaml.safe_load`` with alias expansion and nesting bounded.

    Aliases are shared references when loaded, but anything that walks the
    value (validation, ``repr`` in a message, ``json.dumps``) expands them: ten
    levels of ten aliases are ten billion nodes. The composed node graph is
    measured with every alias expanded before anything is constructed.

    Raises
    ------
    YamlTooLarge
        More than :data:`MAX_YAML_NODES` nodes once expanded, a recursive alias, or nesting too deep.
    yaml.YAMLError
        Invalid YAML.
    """
    loader = yaml.SafeLoader(text)
    try:
        try:
            node = loader.get_single_node()
        except RecursionError:
            raise YamlTooLarge("nested too deeply to read") from None
        if node is None:
            return None
        sizes: dict[int, int] = {}

        def size(n) -> int:
            key = id(n)
            if key in sizes:
                if sizes[key] < 0:
                    raise YamlTooLarge("an alias refers to a node that contains it (a recursive structure)")
                return sizes[key]
            sizes[key] = -1
            total = 1
            if isinstance(n, yaml.SequenceNode):
                for child in n.value:
                    total += size(child)
                    if total > MAX_YAML_NODES:
                        break
            elif isinstance(n, yaml.MappingNode):
                for k, v in n.value:
                    total += size(k) + size(v)
                    if total > MAX_YAML_NODES:
                        break
            sizes[key] = total
            return total

        try:
            total = size(node)
        except RecursionError:
            raise YamlTooLarge("nested too deeply to read") from None
        if total > MAX_YAML_NODES:
            raise YamlTooLarge(f"expected at most {MAX_YAML_NODES:,} values with aliases expanded, found more "
                               "(an alias bomb?)")
        try:
            return loader.construct_document(node)
        except RecursionError:
            raise YamlTooLarge("nested too deeply to read") from None
    finally:
        loader.dispose()
