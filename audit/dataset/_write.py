"""Rendering and writing the dataset section: Markdown into the data card, HTML and JSON into an output directory."""

from __future__ import annotations

import json
from pathlib import Path

from ._audit import audit_dataset
from ._section import DatasetAudit, chart_png

__all__ = ["COMMAND", "SECTION", "render_dataset_html", "section_markdown", "write_data_card"]

SECTION = "composition"
COMMAND = "audit data-card"


def _md_cell(text) -> str:
    return " ".join(str(text).split()).replace("|", "\\|").replace("<", "&lt;")


def section_markdown(section: dict) -> str:
    """The section as Markdown (what goes between the card's markers). No timestamps: rerunning is idempotent."""
    out = [f"### {_md_cell(section['title'])}", "", f"**{_md_cell(section['sentence'])}**", ""]
    if section["chart"]:
        out += [f"![Share of samples per group](data:image/png;base64,{chart_png(section['chart'])})", ""]
    for t in section["tables"]:
        out += [f"#### {_md_cell(t['title'])}", ""]
        if t["note"]:
            out += [_md_cell(t["note"]), ""]
        if not t["rows"]:
            out += ["(none)", ""]
            continue
        out.append("| " + " | ".join(_md_cell(c) for c in t["columns"]) + " |")
        out.append("|" + "|".join("---" for _ in t["columns"]) + "|")
        for row in t["rows"]:
            out.append("| " + " | ".join(_md_cell(c) for c in row) + " |")
        out.append("")
    return "\n".join(out) + "\n"


def _env():
    from jinja2 import Environment, PackageLoader, select_autoescape

    return Environment(loader=PackageLoader("audit", "templates"),
                       autoescape=select_autoescape(default=True, default_for_string=True),
                       trim_blocks=True, lstrip_blocks=True)


def render_dataset_html(section: dict) -> str:
    """A self-contained HTML page with the section (Jinja2, autoescaped; the chart is inline SVG)."""
    return _env().get_template("dataset.html.j2").render(section=section)


def write_data_card(card, *, out_dir=None, images: bool = True, write_card: bool = True) -> tuple[DatasetAudit, dict]:
    """What ``audit data-card`` does: audit the split, write the section into the card, optionally a report.

    The card's text outside the section markers stays byte-identical; every
    file is written atomically. ``out_dir`` gets ``dataset.json`` and
    ``dataset.html``.

    Returns
    -------
    (DatasetAudit, dict of written paths)
    """
    from ..card_update import replace_section, update_card

    result = audit_dataset(card, images=images)
    section = result.section()
    markdown = section_markdown(section)
    html = render_dataset_html(section) if out_dir is not None else None
    document = json.dumps(result.to_dict(), indent=2, allow_nan=False, ensure_ascii=False) + "\n" \
        if out_dir is not None else None
    paths = {}
    if out_dir is not None:
        from .._output import commit_files, output_lock, prepare_out_dir

        out = prepare_out_dir(out_dir)
        with output_lock(out):  # both files appear together or not at all
            commit_files(out, {"dataset.json": document.encode("utf-8"), "dataset.html": html.encode("utf-8")})
        paths.update(json=out / "dataset.json", html=out / "dataset.html")
    if write_card:
        update_card(result.card, lambda text: replace_section(text, SECTION, markdown, command=COMMAND,
                                                              heading="Composition", path=result.card))
        paths["card"] = Path(result.card)
    return result, paths
