"""Model cards after an audit: quantitative analyses, Hugging Face ``model-index``, Model Card Toolkit JSON.

``audit run --update-model-card`` (or :func:`update_model_card`) takes the
``results.json`` document of an audit and

1. writes the card's **quantitative analyses**, unitary (one attribute) and
   intersectional, each figure with its interval and ``n``, plus the
   significant disparities, between ``<!-- audit:quantitative-analyses.DATA:start -->``
   and ``...:end -->`` markers (inserted at the end of the card's
   ``## Quantitative analyses`` section the first time; one block per data
   card, so audits on several splits live side by side). Nothing outside the
   markers changes, byte for byte.
2. writes the Hugging Face ``model-index`` into the front matter (between
   ``# audit:model-index:start`` / ``end`` comments): one result per
   (task, dataset) with the headline metrics overall and the primary metric
   for every group, each with ``args`` holding the interval and ``n``.
3. writes ``model_card.json`` into the output directory, shaped like the
   Model Card Toolkit schema:
   ``quantitative_analysis.performance_metrics[{type, value, slice,
   confidence_interval{lower_bound, upper_bound}}]`` for every headline
   metric and group (no ``slice`` for the whole population, as MCT means it).

The card section carries no timestamp, so running the same audit twice
leaves the card unchanged.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from ._io import atomic_write_text
from .card_update import insert_model_index, replace_section, update_card
from .errors import AuditError

__all__ = ["HEADLINE_METRICS", "mct_document", "model_index_entry", "quantitative_markdown", "update_model_card"]

HEADLINE_METRICS = ("accuracy", "error_rate", "abstention_rate", "roc_auc", "ece")
SEPARATOR = " × "
_HF_TASKS = {"classification": ("image-classification", "Image Classification"),
             "detection": ("object-detection", "Object Detection"),
             "instance_segmentation": ("image-segmentation", "Instance Segmentation"),
             "semantic_segmentation": ("image-segmentation", "Semantic Segmentation")}


def _metrics(document: dict) -> tuple[list[str], list[dict]]:
    rows = [r for r in document["results"]["metrics"] if r.get("class", "") == ""]
    present = {r["metric"] for r in rows}
    names = [m for m in HEADLINE_METRICS if m in present]
    if "abstention_rate" in names and all(not r["value"] for r in rows if r["metric"] == "abstention_rate"):
        names.remove("abstention_rate")  # the model never abstained: a column of zeros says nothing
    if not names:  # another task's engine: its own class-free metrics, in order of appearance
        names = list(dict.fromkeys(r["metric"] for r in rows))[:5]
    return names, [r for r in rows if r["metric"] in names]


def _slice(grouping: str, group: str) -> str:
    if grouping == "overall":
        return "overall"
    return ", ".join(f"{a} = {g}" for a, g in zip(grouping.split(SEPARATOR), group.split(SEPARATOR)))


def _fmt(x, digits=3) -> str:
    return "–" if x is None else f"{x:.{digits}f}"


def _cell(r) -> str:
    if r is None or r["value"] is None:
        return "–"
    return f"{_fmt(r['value'])} [{_fmt(r['lower'])}, {_fmt(r['upper'])}]"


def _md(text) -> str:
    return " ".join(str(text).split()).replace("|", "\\|").replace("<", "&lt;")


def quantitative_markdown(document: dict) -> str:
    """The quantitative analyses (unitary and intersectional, with intervals) as Markdown."""
    prov = document.get("provenance") or {}
    results = document["results"]
    data = prov.get("data") or {}
    settings = prov.get("settings") or {}
    names, rows = _metrics(document)
    interval = next((r.get("interval") for r in rows if r["metric"] == names[0]), "") if names else ""
    by_grouping: dict[str, dict[str, dict]] = {}
    for r in rows:
        by_grouping.setdefault(r["grouping"], {}).setdefault(r["group"], {})[r["metric"]] = r
    unitary = [g for g in by_grouping if SEPARATOR not in g]
    intersectional = [g for g in by_grouping if SEPARATOR in g]
    out = [
        f"### Quantitative analyses: {_md(data.get('title') or data.get('name') or 'evaluation data')}",
        "",
        _md(f"Computed by `audit run` (audit {prov.get('audit_version', '')}) on {data.get('n_samples', '?')} "
            f"samples of the data card `{data.get('card', '')}`. Each figure is the point estimate with its 95% "
            f"{interval} interval; n is the number of samples; (small) marks groups below min_group_size = "
            f"{settings.get('min_group_size', '')}."),
        "",
    ]

    def table(title, groupings):
        if not groupings:
            return
        out.extend([f"#### {title}", "", "| grouping | group | n | " + " | ".join(names) + " |",
                    "|" + "---|" * (3 + len(names))])
        for grouping in groupings:
            for group, cells in by_grouping[grouping].items():
                first = next(iter(cells.values()))
                small = " (small)" if first.get("small_group") else ""
                out.append(f"| {_md(grouping)} | {_md(group)}{small} | {first['n']} | "
                           + " | ".join(_cell(cells.get(m)) for m in names) + " |")
        out.append("")

    table("Unitary results", unitary)
    table("Intersectional results", intersectional)
    sig = [d for d in results.get("disparities", [])
           if d.get("significant") and d.get("kind") in ("between_groups", "to_reference") and d.get("class", "") == ""]
    correction = results.get("significance", {}).get("correction", "fdr_bh")
    out += ["#### Significant disparities", ""]
    if sig:
        out += [_md(f"Between groups (largest vs smallest) and against the reference group, significant after "
                    f"{correction} correction at alpha = {results.get('significance', {}).get('alpha', '')}."), "",
                "| grouping | metric | comparison | difference [95% CI] | ratio [95% CI] | adjusted p |",
                "|---|---|---|---|---|---|"]
        for d in sig:
            p = d.get(f"p_{correction}")
            out.append(
                f"| {_md(d['grouping'])} | {_md(d['metric'])} | {_md(d['group'])} vs {_md(d['other'])}"
                f"{' (reference)' if d.get('kind') == 'to_reference' else ''} | "
                f"{_fmt(d['difference'])} [{_fmt(d['difference_lower'])}, {_fmt(d['difference_upper'])}] | "
                f"{_fmt(d['ratio'])} [{_fmt(d['ratio_lower'])}, {_fmt(d['ratio_upper'])}] | "
                f"{'–' if p is None else f'{p:.2g}'} |")
        out.append("")
    else:
        out += ["No difference between groups or against a reference group is significant.", ""]
    return "\n".join(out) + "\n"


def _task(document: dict, model_front: dict | None) -> str:
    task = (model_front or {}).get("task") or document.get("results", {}).get("config", {}).get("task")
    return task if task in _HF_TASKS else "classification"


def model_index_entry(document: dict, *, task: str = "classification") -> dict:
    """One Hugging Face ``model-index`` result: task, dataset and metrics.

    Every headline metric for the whole population, and the primary metric
    (the first headline metric) for every group; ``args`` holds the group,
    the interval bounds, ``n`` and the interval method.
    """
    data = (document.get("provenance") or {}).get("data") or {}
    names, rows = _metrics(document)
    metrics = []
    for r in rows:
        if r["value"] is None or (r["grouping"] != "overall" and r["metric"] != names[0]):
            continue
        metrics.append({
            "type": r["metric"], "value": round(float(r["value"]), 4),
            "name": f"{r['metric']} ({_slice(r['grouping'], r['group'])})",
            "args": {"grouping": r["grouping"], "group": r["group"],
                     "lower": None if r["lower"] is None else round(float(r["lower"]), 4),
                     "upper": None if r["upper"] is None else round(float(r["upper"]), 4),
                     "n": int(r["n"]), "interval": r.get("interval")},
        })
    hf_type, hf_name = _HF_TASKS[task]
    name = str(data.get("name") or "data")
    return {"task": {"type": hf_type, "name": hf_name},
            "dataset": {"name": str(data.get("title") or name), "type": name, "split": name},
            "metrics": metrics}


def mct_document(document: dict, *, model_front: dict | None = None, model_name: str | None = None) -> dict:
    """A Model Card Toolkit-shaped JSON document with every headline metric for every group."""
    prov = document.get("provenance") or {}
    model = prov.get("model") or {}
    data = prov.get("data") or {}
    front = model_front or {}
    names, rows = _metrics(document)
    metrics = []
    for r in rows:
        if r["value"] is None:
            continue
        entry = {"type": r["metric"], "value": f"{r['value']:.6g}"}
        if r["grouping"] != "overall":
            entry["slice"] = _slice(r["grouping"], r["group"])
        if r["lower"] is not None and r["upper"] is not None:
            entry["confidence_interval"] = {"lower_bound": f"{r['lower']:.6g}", "upper_bound": f"{r['upper']:.6g}"}
        metrics.append(entry)
    details = {"name": str(model_name or model.get("title") or model.get("name") or "model")}
    if front.get("description"):
        details["overview"] = str(front["description"])
    if front.get("version"):
        details["version"] = {"name": str(front["version"])}
    if front.get("license"):
        details["licenses"] = [{"identifier": str(front["license"])}]
    return {
        "schema_version": "0.0.2",
        "model_details": details,
        "model_parameters": {"data": [{"name": str(data.get("title") or data.get("name") or ""),
                                       "link": str(data.get("card") or "")}]},
        "quantitative_analysis": {"performance_metrics": metrics},
    }


def _section_name(data_name: str) -> str:
    slug = re.sub(r"[^a-z0-9._-]+", "-", data_name.lower()).strip("-.") or "data"
    return f"quantitative-analyses.{slug}"


def update_model_card(model_card, document, *, out_dir=None) -> dict:
    """Write an audit's results into a model card (section + ``model-index``) and ``model_card.json``.

    Parameters
    ----------
    model_card : str or Path
        The model card to update (rewritten atomically).
    document : dict, str or Path
        The ``results.json`` document, or its path.
    out_dir : str or Path, optional
        Where to write ``model_card.json``.

    Returns
    -------
    dict of str to Path
    """
    from .core.card_loaders import read_front_matter

    if not isinstance(document, dict):
        try:
            document = json.loads(Path(document).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise AuditError(f"{document}: cannot read results: {' '.join(str(exc).split())}") from None
    path = Path(model_card)
    front, _ = read_front_matter(path)
    task = _task(document, front)
    data_name = str(((document.get("provenance") or {}).get("data") or {}).get("name") or "data")
    markdown = quantitative_markdown(document)
    entry = model_index_entry(document, task=task)
    entry["_model_name"] = front.get("model_name") or front.get("name") or path.stem

    def transform(text: str) -> str:
        text = replace_section(text, _section_name(data_name), markdown, command="audit run --update-model-card",
                               heading="Quantitative analyses", path=path)
        return insert_model_index(text, dict(entry), path=path)

    update_card(path, transform)
    paths = {"model_card": path}
    if out_dir is not None:
        mct = mct_document(document, model_front=front, model_name=entry["_model_name"])
        target = Path(out_dir) / "model_card.json"
        atomic_write_text(target, json.dumps(mct, indent=2, ensure_ascii=False) + "\n")
        paths["model_card_json"] = target
    return paths
