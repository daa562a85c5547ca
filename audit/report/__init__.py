"""The HTML audit report: data first (:func:`build_report`), then templates (:func:`render_report`).

One self-contained, deterministic page per audit (or several audits, one per
task): inline CSS, charts as inline SVG drawn by a Jinja2 template with
autoescaping, thumbnails as base64 ``data:`` URIs, nothing fetched at view
time and no JavaScript. ``audit report OUT`` re-renders it from an output
directory (:func:`load_output`) without rerunning anything.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd

from ..errors import AuditError
from ._data import SHADE_LEGEND, Report, TaskInput, build_report, fmt

__all__ = [
    "COMMAND_FILE",
    "DATASET_FILE",
    "IMAGES_FILE",
    "PEOPLE_FILE",
    "Report",
    "TaskInput",
    "build_report",
    "image_paths_from_card",
    "image_root_from_card",
    "load_output",
    "render_document",
    "render_html",
    "render_report",
    "run_audit",
    "write_outputs",
    "write_report",
]


def __getattr__(name):
    # Lazy: writing an audit needs the pipeline driver (and through it torch); re-rendering a page does not.
    if name in ("run_audit", "write_outputs", "render_html"):
        from . import _write

        return getattr(_write, name)
    raise AttributeError(f"module 'audit.report' has no attribute {name!r}")

DATASET_FILE = "dataset_section.json"
COMMAND_FILE = "command.txt"
PEOPLE_FILE = "people.parquet"
IMAGES_FILE = "images.parquet"


def _environment():
    from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

    env = Environment(
        loader=PackageLoader("audit", "templates"),
        undefined=StrictUndefined,
        autoescape=select_autoescape(default=True, default_for_string=True),
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["fmt"] = fmt
    return env


def render_report(report: Report) -> str:
    """The page for a :class:`Report` (Jinja2, autoescaped; same report, same bytes)."""
    return _environment().get_template("report.html.j2").render(report=report, shade_legend=SHADE_LEGEND)


def render_document(document: dict, *, predictions=None, samples=None, dataset=None, image_paths=None,
                    thumbnails: bool = True, location: str | None = None, command: str | None = None,
                    people=None, images=None, image_root=None) -> str:
    """Render one ``results.json`` document (and what else is at hand) to the report's HTML."""
    task = TaskInput(document=document, predictions=predictions, samples=samples, image_paths=image_paths,
                     dataset=dataset, location=location, command=command, people=people, images=images,
                     image_root=None if image_root is None else str(image_root))
    return render_report(build_report(task, thumbnails=thumbnails))


def image_paths_from_card(card_path, *, split=None) -> dict | None:
    """``sample_id -> image path`` from a classification data card, or None when it cannot be read.

    ``split``: the card's split as :func:`audit.core.data.load_split` returns it (``sample_id`` and ``image_path``
    columns), when the caller has loaded it already.
    """
    if split is not None:
        return {str(s): str(p) for s, p in zip(split["sample_id"], split["image_path"]) if p and os.path.isfile(p)}
    if not card_path:
        return None
    try:
        from ..core.data import load_split
        from ..core.registry import load_any_data_card

        card = load_any_data_card(card_path)
        if getattr(card, "segmentation", None) is not None or hasattr(card, "coco"):
            return None
        frame = load_split(card, verify_images=False, require_images=False)
    except (AuditError, OSError, ValueError, KeyError):
        return None
    if "image_path" not in frame.columns:
        return None
    return {str(s): str(p) for s, p in zip(frame["sample_id"], frame["image_path"]) if p and os.path.isfile(p)}


def image_root_from_card(card_path) -> str | None:
    """The image directory of a detection or segmentation data card, or None when it cannot be read."""
    if not card_path:
        return None
    try:
        from ..core.registry import load_any_data_card

        root = getattr(load_any_data_card(card_path), "image_root", None)
    except (AuditError, OSError, ValueError, KeyError):
        return None
    return str(root) if root is not None and Path(root).is_dir() else None


def _cache_matches(out_dir: Path, document: dict) -> bool:
    """Whether ``predictions.parquet`` holds the predictions of the model ``results.json`` describes.

    The prediction cache is not part of the committed output set; a later run into the same directory that
    failed after caching other predictions must not lend them to this report.
    """
    if not (out_dir / "predictions.parquet").is_file():
        return False
    prov = document.get("provenance") or {}
    if not (out_dir / "predictions.json").is_file():
        return True  # a table put there by hand: nothing to check it against
    try:
        meta = json.loads((out_dir / "predictions.json").read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):  # a damaged or hostile cache file is a miss
        return False
    model = prov.get("model") or {}
    data = prov.get("data") or {}
    return isinstance(meta, dict) and meta.get("model_sha256") == model.get("sha256") and \
        meta.get("data_sha256") == data.get("sha256")


def load_output(path, *, images: bool = True) -> TaskInput:
    """An audit output directory (or its ``results.json``) as the report's input.

    Reads ``results.json`` and, when present beside it, ``predictions.parquet``, ``samples.parquet``,
    ``people.parquet`` (or ``images.parquet``) and the dataset section ``dataset_section.json``; image paths
    for thumbnails come from the data card named in the provenance when it can still be read.
    """
    path = Path(path)
    results = path / "results.json" if path.is_dir() else path
    if not results.is_file():
        raise AuditError(f"{path}: expected an audit output directory or a results.json file, found nothing there")
    from .._output import check_complete
    from ..compare import check_document

    check_complete(results.parent)
    try:
        document = json.loads(results.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise AuditError(f"{results}: expected a results.json document, found unreadable JSON ({exc})") from None
    except RecursionError:
        raise AuditError(f"{results}: expected a results.json document, found values nested too deeply") from None
    if not isinstance(document, dict) or "results" not in document:
        raise AuditError(f"{results}: field 'results': expected the audit results, found none")
    check_document(document, results, role="report")  # the schema audit compare checks: a tampered file stops here
    out_dir = results.parent
    predictions = samples = dataset = None
    try:
        if _cache_matches(out_dir, document) and (out_dir / "samples.parquet").is_file():
            predictions = pd.read_parquet(out_dir / "predictions.parquet")
            samples = pd.read_parquet(out_dir / "samples.parquet")
        elif (out_dir / "samples.parquet").is_file():  # predictions made elsewhere: read the file named in the provenance
            info = (document.get("provenance") or {}).get("predictions") or {}
            source, id_column = Path(str(info.get("file") or "")), str(info.get("id_column") or "sample_id")
            if source.suffix.lower() in (".csv", ".parquet", ".pq") and source.is_file():
                predictions = (pd.read_csv(source, dtype={id_column: str, "sample_id": str})
                               if source.suffix.lower() == ".csv" else pd.read_parquet(source))
                if "sample_id" not in predictions.columns and id_column in predictions.columns:
                    predictions = predictions.rename(columns={id_column: "sample_id"})  # the card's id column
                samples = pd.read_parquet(out_dir / "samples.parquet")
                if "sample_id" not in predictions.columns:  # not the file the audit read: no per-sample sections
                    predictions = samples = None
    except (OSError, ValueError) as exc:
        raise AuditError(f"{out_dir}: expected readable predictions.parquet and samples.parquet, found {exc}") from None
    tables = {}
    for file, what in ((PEOPLE_FILE, "per-person"), (IMAGES_FILE, "per-image")):
        if (out_dir / file).is_file():
            try:
                tables[file] = pd.read_parquet(out_dir / file)
            except (OSError, ValueError) as exc:
                raise AuditError(f"{out_dir / file}: expected the {what} table, found {exc}") from None
    people, images_table = tables.get(PEOPLE_FILE), tables.get(IMAGES_FILE)
    if (out_dir / DATASET_FILE).is_file():
        try:
            dataset = json.loads((out_dir / DATASET_FILE).read_text(encoding="utf-8"))
        except (OSError, ValueError, RecursionError) as exc:
            raise AuditError(f"{out_dir / DATASET_FILE}: expected the dataset section as JSON, found "
                             f"{type(exc).__name__}") from None
        if not isinstance(dataset, dict):
            raise AuditError(f"{out_dir / DATASET_FILE}: expected the dataset section as a JSON object, found "
                             f"{type(dataset).__name__}")
    command = None
    if (out_dir / COMMAND_FILE).is_file():
        command = (out_dir / COMMAND_FILE).read_text(encoding="utf-8", errors="replace").strip()[:10_000] or None
    card = ((document.get("provenance") or {}).get("data") or {}).get("card")
    paths = image_paths_from_card(card) if images and predictions is not None else None
    root = image_root_from_card(card) if images and tables else None
    return TaskInput(document=document, predictions=predictions, samples=samples, image_paths=paths,
                     dataset=dataset, location=str(out_dir), command=command, people=people, images=images_table,
                     image_root=root)


def write_report(sources, out_html, *, thumbnails: bool = True) -> Path:
    """Render one or more audit outputs (directories or ``results.json`` files) into ``out_html``."""
    from .._io import atomic_write_text

    inputs = [load_output(s, images=thumbnails) for s in sources]
    html = render_report(build_report(inputs, thumbnails=thumbnails))
    out_html = Path(out_html)
    atomic_write_text(out_html, html)
    return out_html
