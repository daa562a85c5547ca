"""Dataset-bias audit of a data card's split: what ``audit data-card`` computes.

- **Composition**: counts and shares per attribute value and intersection, the
  LFW-style sentence, a chart, missing-attribute rates, and (when the card
  declares ``reference_population``) a chi-square goodness-of-fit test against
  it.
- **Co-occurrence**: label x group normalised PMI with a chi-square test of
  independence.
- **Image statistics per group** (Know Your Data's derived signals):
  brightness, contrast, sharpness and resolution, read with PIL.
- **Detection data** (COCO ground truth): person box size and distance from
  the image centre per group, as REVISE does.
- **Split comparison**: this split's composition against the split of the
  data card named by ``compare_to`` (e.g. train vs test).

The numbers come from the pure functions in :mod:`audit.stats`; this module
reads files and images, and formats one *section* (tables of strings, the
sentence and the chart) that is rendered both as Markdown into the data card
(:mod:`audit.card_update`) and as HTML into the report, so the two always agree.

Data card fields read here (validated when used, one-line
:class:`~audit.errors.CardError` naming the field)::

    reference_population:
      description: World population, UN 2022     # optional
      shares:                                     # grouping -> group -> weight (shares or counts)
        gender_presentation: {feminine: 0.5, masculine: 0.5}
        skin_type: {lighter: 0.6, darker: 0.4}
    compare_to: train.md                          # another data card (e.g. the training split)
"""

from __future__ import annotations

import base64
import io
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ._io import atomic_write_text
from .core.card_loaders import _MISSING, DataCard, _Validator
from .core.image_stats import DESCRIBE_IMAGE as _DESCRIBE_IMAGE
from .core.image_stats import IMAGE_STATISTICS, image_statistics  # noqa: F401 - re-exported: audit.dataset's API
from .errors import CardError, DataError, StatsInputError

__all__ = [
    "DatasetAudit",
    "IMAGE_STATISTICS",
    "SECTION",
    "audit_dataset",
    "dataset_options",
    "image_statistics",
    "render_dataset_html",
    "section_markdown",
    "write_data_card",
]

SECTION = "composition"
COMMAND = "audit data-card"


# ---------------------------------------------------------------------------
# Card options
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class DatasetOptions:
    """The dataset-audit fields of a data card."""

    reference: dict[str, dict[str, float]] = field(default_factory=dict)
    reference_description: str | None = None
    compare_to: Path | None = None


def dataset_options(card) -> DatasetOptions:
    """Validate ``reference_population`` and ``compare_to`` of a (classification or detection) data card."""
    data = card.front_matter
    v = _Validator(Path(card.path), data)
    names = [a.name for a in card.attributes]
    groupings = names + [" × ".join(c) for c in card.intersections]
    reference: dict[str, dict[str, float]] = {}
    description = None
    raw = v.mapping(data, "reference_population", required=False,
                    expected="a mapping with 'shares' (and optionally 'description')")
    if raw is not None:
        v.unknown_keys(raw, {"description", "shares"}, "reference_population.")
        description = v.string(raw, "description", "reference_population.", required=False)
        shares = v.mapping(raw, "shares", "reference_population.",
                           expected="a mapping of grouping name to a mapping of group to share")
        for grouping, weights in shares.items():
            where = f"reference_population.shares.{grouping}"
            if grouping not in groupings:
                raise v.fail(where, f"a declared attribute or intersection ({', '.join(groupings) or 'none'})", grouping)
            if not isinstance(weights, dict) or len(weights) < 2:
                raise v.fail(where, "a mapping of two or more groups to their share", weights)
            parsed = {}
            for group, w in weights.items():
                if isinstance(w, bool) or not isinstance(w, (int, float)) or not math.isfinite(w) or w <= 0:
                    raise v.fail(f"{where}.{group}", "a positive number (share or count)", w)
                parsed[str(group)] = float(w)
            reference[str(grouping)] = parsed
    compare_to = None
    other = data.get("compare_to", _MISSING)
    if other is not _MISSING and other is not None:
        if not isinstance(other, str) or not other.strip().endswith(".md"):
            raise v.fail("compare_to", "the path of another data card (.md)", other)
        compare_to = v.resolve(other)
        if compare_to.resolve() == Path(card.path).resolve():
            raise v.fail("compare_to", "another data card than this one", other)
    return DatasetOptions(reference, description, compare_to)


# ---------------------------------------------------------------------------
# The audit
# ---------------------------------------------------------------------------


@dataclass
class DatasetAudit:
    """Everything ``audit data-card`` computed for one split (tidy frames; see :meth:`section`)."""

    card: str
    name: str
    title: str
    kind: str  # "classification" or "detection"
    n: int
    unit: str  # "images" or "people"
    attributes: list[str]
    min_group_size: int
    composition: pd.DataFrame
    sentence: str
    missing: pd.DataFrame
    cooccurrence: pd.DataFrame
    cooccurrence_tests: pd.DataFrame
    reference: pd.DataFrame | None = None
    reference_tests: pd.DataFrame | None = None
    reference_description: str | None = None
    image_statistics: pd.DataFrame | None = None
    image_tests: pd.DataFrame | None = None
    boxes: pd.DataFrame | None = None
    box_tests: pd.DataFrame | None = None
    split: pd.DataFrame | None = None
    split_tests: pd.DataFrame | None = None
    compare_to: str | None = None
    chart_png: str = ""

    def to_dict(self) -> dict:
        """JSON-ready (NaN as None)."""
        from .stats._results import _plain, _records

        out = {}
        for key, value in self.__dict__.items():
            if isinstance(value, pd.DataFrame):
                out[key] = _records(value)
            else:
                out[key] = _plain(value)
        out["section"] = self.section()
        return out

    # -- presentation: one structure, rendered as Markdown and as HTML ------

    def section(self) -> dict:
        """Title, sentence, chart and tables of formatted strings, shared by the card and the report."""
        tables = []
        comp = self.composition
        rows = []
        for r in comp.itertuples(index=False):
            if r.grouping == "overall":
                continue
            small = 0 < r.n < self.min_group_size
            rows.append([r.grouping, r.group + (" (small)" if small else ""), str(r.n), _pct(r.share),
                         _pct(r.share_known)])
        tables.append(_table(
            "Composition", ["grouping", "group", "n", "share", "share of known"], rows,
            f"{self.n} {self.unit}. Share of known leaves out {self.unit} whose attribute is missing. "
            f"(small): fewer than min_group_size = {self.min_group_size}."))
        tables.append(_table(
            "Missing attribute values", ["attribute", "missing", "rate"],
            [[r.attribute, str(r.n_missing), _pct(r.rate)] for r in self.missing.itertuples(index=False)]))
        if self.reference is not None:
            desc = f" ({self.reference_description})" if self.reference_description else ""
            tables.append(_table(
                "Reference population" + desc,
                ["grouping", "group", "n", "observed share", "reference share", "difference"],
                [[r.grouping, r.group, str(r.n), _pct(r.observed_share), _pct(r.reference_share),
                  _pct(r.difference, signed=True)] for r in self.reference.itertuples(index=False)],
                "Shares among known values; difference = observed - reference."))
            tables.append(_tests_table("Goodness of fit to the reference population (Pearson chi-square)",
                                       self.reference_tests))
        co = self.cooccurrence
        for grouping, part in co.groupby("grouping", sort=False):
            groups = list(dict.fromkeys(part["group"]))
            rows = []
            for cls, crow in part.groupby("class", sort=False):
                vals = dict(zip(crow["group"], zip(crow["npmi"], crow["n"])))
                rows.append([cls] + [f"{_num(vals[g][0])} ({vals[g][1]})" for g in groups])
            tables.append(_table(f"Label × {grouping}: nPMI (n)", ["label"] + groups, rows,
                                 "Normalised PMI: -1 never together, 0 independent, 1 always together."))
        tables.append(_tests_table("Label × attribute independence (Pearson chi-square)", self.cooccurrence_tests,
                                   extra=("cramers_v", "Cramér's V")))
        if self.image_statistics is not None:
            st = self.image_statistics
            rows = []
            for (grouping, group), part in st.groupby(["grouping", "group"], sort=False):
                if grouping == "overall" and group != "all":
                    continue
                by = part.set_index("statistic")
                cells = [grouping, group, str(int(by.loc["brightness", "n"]))]
                for s in ("brightness", "contrast", "sharpness"):
                    cells.append(f"{_num(by.loc[s, 'mean'])} ± {_num(by.loc[s, 'std'])}")
                cells.append(f"{_int(by.loc['width', 'median'])}×{_int(by.loc['height', 'median'])}")
                rows.append(cells)
            tables.append(_table(
                "Image statistics per group",
                ["grouping", "group", "n", "brightness", "contrast", "sharpness", "median resolution"], rows,
                "Mean ± standard deviation. " + "; ".join(f"{k}: {_DESCRIBE_IMAGE[k]}" for k in
                                                          ("brightness", "contrast", "sharpness")) + "."))
            tables.append(_tests_table("Image statistics: differences between groups (Kruskal-Wallis)",
                                       self.image_tests, by_statistic=True))
        if self.boxes is not None:
            rows = []
            for (grouping, group), part in self.boxes.groupby(["grouping", "group"], sort=False):
                by = part.set_index("statistic")
                rows.append([grouping, group, str(int(by.loc["box_area_fraction", "n"]))] + [
                    f"{_num(by.loc[s, 'median'])} [{_num(by.loc[s, 'q25'])}, {_num(by.loc[s, 'q75'])}]"
                    for s in ("box_area_fraction", "centre_distance")])
            tables.append(_table(
                "Person boxes per group (REVISE)", ["grouping", "group", "people", "box area / image area",
                                                   "distance from centre"], rows,
                "Median [quartiles]. Distance from the box centre to the image centre over half the diagonal "
                "(0 centre, 1 corner)."))
            tables.append(_tests_table("Person boxes: differences between groups (Kruskal-Wallis)", self.box_tests,
                                       by_statistic=True))
        if self.split is not None:
            other = Path(self.compare_to).stem if self.compare_to else "other"
            rows = [[r[0], r[1], str(r[2]), _pct(r[3]), str(r[4]), _pct(r[5]), _pct(r[6], signed=True)]
                    for r in self.split.itertuples(index=False)]
            tables.append(_table(
                f"Split comparison: {self.name} vs {other}",
                ["grouping", "group", f"n {self.name}", f"share {self.name}", f"n {other}", f"share {other}",
                 "difference"], rows, f"Shares among known values; difference = {other} - {self.name}."))
            tables.append(_tests_table("Split composition: same shares in both splits (chi-square homogeneity)",
                                       self.split_tests))
        return {"title": f"Dataset audit: {self.title}", "sentence": self.sentence, "chart": self.chart_png,
                "tables": tables}


def _table(title, columns, rows, note=""):
    return {"title": title, "columns": columns, "rows": rows, "note": note}


def _tests_table(title, tests, *, extra=None, by_statistic=False):
    columns = ["grouping"] + (["statistic"] if by_statistic else []) + \
        ["test statistic", "dof" if not by_statistic else "groups", "p", "p (BH)", "significant"]
    if extra:
        columns.append(extra[1])
    rows = []
    for r in tests.to_dict(orient="records"):
        if by_statistic and _bad(r["p_value"]):
            continue  # constant statistic (e.g. every image the same size): nothing was tested
        stat = r.get("statistic") if not by_statistic else r.get("h_statistic")
        cells = [r["grouping"]] + ([r["statistic"]] if by_statistic else [])
        cells += [_num(stat), str(r.get("dof") if not by_statistic else r.get("n_groups")), _p(r["p_value"]),
                  _p(r["p_adjusted"]), "yes" if r["significant"] else "no"]
        if extra:
            cells.append(_num(r[extra[0]]))
        rows.append(cells)
    note = "Benjamini-Hochberg adjusted over the tests of this table, alpha = 0.05."
    if "min_expected" in tests and (tests["min_expected"] < 5).any():
        note += " Some expected counts are below 5: the chi-square approximation is rough there."
    return _table(title, columns, rows, note)


def _bad(x) -> bool:
    return x is None or (isinstance(x, float) and not math.isfinite(x))


def _pct(x, signed=False) -> str:
    if _bad(x):
        return "–"
    return f"{100 * x:+.1f}%" if signed else f"{100 * x:.1f}%"


def _num(x) -> str:
    if _bad(x):
        return "–"
    x = float(x)
    if abs(x) < 1e-12:
        x = 0.0  # numerical noise (the sd of identical values) reads as zero
    if x != 0 and (abs(x) < 1e-3 or abs(x) >= 1e5):
        return f"{x:.2e}"
    return f"{x:.3f}" if abs(x) < 100 else f"{x:.1f}"


def _int(x) -> str:
    return "–" if _bad(x) else f"{float(x):.0f}"


def _p(x) -> str:
    if _bad(x):
        return "–"
    return f"{x:.1e}" if x < 1e-3 else f"{x:.3f}"


def _chart(comp: pd.DataFrame, attributes: list[str], reference: dict | None) -> str:
    """Horizontal bars of each group's share of all samples, one colour per attribute; base64 PNG.

    Deterministic: the Agg backend, fixed size and dpi, no timestamp in the PNG metadata.
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    rows = [r for r in comp.itertuples(index=False) if r.grouping in attributes]
    if not rows:
        return ""
    fig = Figure(figsize=(6.0, 0.6 + 0.28 * len(rows)), dpi=80)
    ax = fig.add_subplot()
    palette = ["#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1", "#9c755f"]
    colour = {a: palette[i % len(palette)] for i, a in enumerate(attributes)}
    y = np.arange(len(rows))[::-1]
    ax.barh(y, [100 * r.share for r in rows], color=[colour[r.grouping] for r in rows], height=0.7)
    for yi, r in zip(y, rows):
        ax.text(100 * r.share + 0.8, yi, f"{100 * r.share:.1f}%", va="center", fontsize=7)
        ref = (reference or {}).get(r.grouping)
        if ref and r.group in ref:
            share = ref[r.group] / sum(ref.values())
            ax.plot([100 * share] * 2, [yi - 0.4, yi + 0.4], color="black", linewidth=1.5)
    ax.set_yticks(y, [f"{r.grouping}: {r.group}" for r in rows], fontsize=7)
    ax.set_xlim(0, 110)
    ax.set_xlabel("share of samples (%)" + ("; black tick: reference population" if reference else ""), fontsize=7)
    ax.tick_params(axis="x", labelsize=7)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", metadata={"Software": None})
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _attributes(card):
    from .stats import Attribute

    return [Attribute(name=a.name, column=a.name, scale=a.scale, bins=a.bins, order=a.order,
                      multi=getattr(a, "votes", None) == "any") for a in card.attributes]


def _as_card_error(card, field_name: str, exc: Exception) -> CardError:
    return CardError(f"{card.path}: field '{field_name}': {' '.join(str(exc).split())}")


def audit_dataset(card, *, images: bool = True, verify_images: bool = False, frame: pd.DataFrame | None = None,
                  correction: str = "fdr_bh", alpha: float = 0.05, counts=None) -> DatasetAudit:
    """Run the dataset-bias audit of a data card's split.

    Parameters
    ----------
    card : str, Path, DataCard or DetectionDataCard
    images : bool, default True
        Compute image statistics (reads every image once).
    verify_images : bool, default False
        Passed to :func:`audit.core.data.load_split`.
    frame : DataFrame, optional
        The split as :func:`audit.core.data.load_split` returns it, if already loaded.
    counts : SplitCounts, optional
        Instead of ``frame``, the split as per-cell counts
        (:class:`audit.tasks.classification.stream.SplitCounts`: ``cells``, ``label``, ``count``, and per
        sample ``rows`` and ``samples`` up to its detail limit). Composition and co-occurrence come from the
        counts; image statistics need the per-sample image paths.

    Returns
    -------
    DatasetAudit
    """
    from . import stats

    if not isinstance(card, DataCard) and not hasattr(card, "coco"):
        card = _load_any_card(card)
    options = dataset_options(card)
    attributes = _attributes(card)
    intersections = [tuple(c) for c in card.intersections]
    title = str(card.front_matter.get("pretty_name") or card.front_matter.get("name") or card.name)

    box_summary = box_tests = None
    weights = None
    if hasattr(card, "coco"):
        kind, unit = "detection", "people"
        groups, labels, classes, boxes = _detection_people(card)
    elif counts is not None:  # one row per cell, weighted by its count
        kind, unit = "classification", "images"
        groups, labels, classes = counts.cells.reset_index(drop=True), counts.label, list(card.classes)
        weights = counts.count
    else:
        from .core.data import load_split

        kind, unit = "classification", "images"
        if frame is None:
            frame = load_split(card, verify_images=verify_images)
        groups = frame[[a.name for a in card.attributes]].reset_index(drop=True)
        labels, classes = frame["label"].to_numpy(dtype=np.int64), list(card.classes)

    comp = stats.composition(groups, attributes, intersections, weights=weights)
    names = [a.name for a in attributes]
    reference = reference_tests = None
    if options.reference:
        try:
            reference, reference_tests = stats.reference_fit(comp, options.reference, correction=correction,
                                                             alpha=alpha)
        except StatsInputError as exc:
            raise _as_card_error(card, "reference_population.shares", exc) from None
    co, co_tests = stats.cooccurrence(labels, classes, groups, attributes, intersections, correction=correction,
                                      alpha=alpha, weights=weights)
    image_summary = image_tests = None
    if images and kind == "classification" and (counts is None or counts.samples is not None):
        if counts is None:
            paths, per_image, source = frame["image_path"], groups, str(frame.attrs.get("source", card.path))
        else:  # the per-sample image paths, kept up to the counts' detail limit
            paths, per_image = counts.samples["image_path"], groups.iloc[counts.rows].reset_index(drop=True)
            source = counts.source
        image_summary, image_tests = stats.summarise_by_group(image_statistics(paths.tolist(), source=source),
                                                              per_image, attributes, intersections,
                                                              correction=correction, alpha=alpha)
    if kind == "detection":
        geometry = stats.box_geometry(boxes)
        box_summary, box_tests = stats.summarise_by_group(
            geometry, groups, attributes, intersections, statistics=["box_area_fraction", "centre_distance"],
            correction=correction, alpha=alpha)
    split = split_tests = None
    if options.compare_to is not None:
        other = _load_any_card(options.compare_to, field_name="compare_to", referrer=card)
        other_groups = _groups_of(other, names, card)
        split, split_tests = stats.compare_composition(
            groups, other_groups, attributes, intersections, names=(card.name, other.name), correction=correction,
            alpha=alpha)
        split.columns = ["grouping", "group", "n_this", "share_this", "n_other", "share_other", "difference"]
    return DatasetAudit(
        card=str(card.path), name=card.name, title=title, kind=kind,
        n=len(groups) if weights is None else int(np.sum(weights)), unit=unit, attributes=names,
        min_group_size=card.min_group_size, composition=comp, sentence=stats.composition_sentence(comp, names),
        missing=stats.missing_rates(groups, attributes, weights=weights), cooccurrence=co, cooccurrence_tests=co_tests,
        reference=reference, reference_tests=reference_tests, reference_description=options.reference_description,
        image_statistics=image_summary, image_tests=image_tests, boxes=box_summary, box_tests=box_tests,
        split=split, split_tests=split_tests,
        compare_to=str(options.compare_to) if options.compare_to else None,
        chart_png=_chart(comp, names, options.reference),
    )


def _load_any_card(path, *, field_name=None, referrer=None):
    from .core.registry import load_any_data_card

    path = Path(path)
    if field_name and not path.is_file():
        raise CardError(f"{referrer.path}: field '{field_name}': expected an existing data card, found {str(path)!r}")
    return load_any_data_card(path)


def _groups_of(other, names: list[str], card) -> pd.DataFrame:
    """The other split's attribute table, under this card's attribute names."""
    missing = [n for n in names if n not in [a.name for a in other.attributes]]
    if missing:
        raise CardError(f"{card.path}: field 'compare_to': expected {other.path} to declare the attributes "
                        f"{', '.join(names)}, found no {', '.join(missing)}")
    if hasattr(other, "coco"):
        groups = _detection_people(other)[0]
    else:
        from .core.data import load_split

        groups = load_split(other, verify_images=False)
    return groups[names].reset_index(drop=True)


def _detection_people(card):
    """People (non-crowd ground truth) of a detection data card: attributes, category labels, boxes."""
    from .tasks.detection.data import load_ground_truth
    from .tasks.detection.people import card_people

    gt = load_ground_truth(card.coco, image_root=card.image_root, allow_outside=card.allow_paths_outside_root)
    people, groups = card_people(card, gt)
    cat_ids = sorted(gt.categories)
    classes = [str(gt.categories[c]) for c in cat_ids]
    labels = np.searchsorted(np.asarray(cat_ids), gt.boxes.category[people])
    size = gt.images.set_index("image_id")[["width", "height"]].reindex(gt.boxes.image[people])
    unsized = size["width"].isna() | size["height"].isna()
    if unsized.any():
        image_id = size.index[unsized.to_numpy()][0]
        raise DataError(f"{card.coco}: image {image_id!r}: field 'height' / 'width': expected the image size "
                        "(positive integers) for the person-box statistics, found none")
    bbox = np.asarray(gt.boxes.bbox, dtype=float)[people]
    boxes = pd.DataFrame({"x1": bbox[:, 0], "y1": bbox[:, 1], "x2": bbox[:, 0] + bbox[:, 2],
                          "y2": bbox[:, 1] + bbox[:, 3], "image_width": size["width"].to_numpy(dtype=float),
                          "image_height": size["height"].to_numpy(dtype=float)})
    return groups.reset_index(drop=True), labels, classes, boxes


# ---------------------------------------------------------------------------
# Rendering and writing
# ---------------------------------------------------------------------------


def _md_cell(text) -> str:
    return " ".join(str(text).split()).replace("|", "\\|").replace("<", "&lt;")


def section_markdown(section: dict) -> str:
    """The section as Markdown (what goes between the card's markers). No timestamps: rerunning is idempotent."""
    out = [f"### {_md_cell(section['title'])}", "", f"**{_md_cell(section['sentence'])}**", ""]
    if section["chart"]:
        out += [f"![Share of samples per group](data:image/png;base64,{section['chart']})", ""]
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
    """A self-contained HTML page with the section (Jinja2, autoescaped; the chart is a data: URI)."""
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
    from .card_update import replace_section, update_card

    result = audit_dataset(card, images=images)
    section = result.section()
    markdown = section_markdown(section)
    html = render_dataset_html(section) if out_dir is not None else None
    document = json.dumps(result.to_dict(), indent=2, allow_nan=False, ensure_ascii=False) + "\n" \
        if out_dir is not None else None
    paths = {}
    if out_dir is not None:
        from ._output import commit_files, output_lock, prepare_out_dir

        out = prepare_out_dir(out_dir)
        with output_lock(out):  # both files appear together or not at all
            commit_files(out, {"dataset.json": document.encode("utf-8"), "dataset.html": html.encode("utf-8")})
        paths.update(json=out / "dataset.json", html=out / "dataset.html")
    if write_card:
        update_card(result.card, lambda text: replace_section(text, SECTION, markdown, command=COMMAND,
                                                              heading="Composition", path=result.card))
        paths["card"] = Path(result.card)
    return result, paths


def report_section(data, *, images: bool = True, split=None) -> dict | None:
    """The dataset section for ``audit run``'s ``index.html`` (classification and COCO detection splits), else None.

    Image statistics are left out when some image file is absent (an audit of
    predictions made elsewhere does not need the images). ``split`` is the
    classification split the audit loaded (a :func:`audit.core.data.load_split`
    frame, or per-cell counts: see :func:`audit_dataset`), so it is not loaded
    again.
    """
    import os

    from .core.data import load_split

    if hasattr(data, "coco"):  # a COCO detection card: composition, co-occurrence and person boxes
        return audit_dataset(data).section()
    card = data if isinstance(data, DataCard) else _load_any_card(data)
    if hasattr(card, "coco"):
        return audit_dataset(card).section()
    if not isinstance(card, DataCard):
        return None  # a task whose card this audit does not read (panoptic): no dataset section yet
    if getattr(card, "segmentation", None) is not None:
        return None
    if split is not None and hasattr(split, "cells"):  # per-cell counts
        detail = split.samples
        images = images and detail is not None and all(p and os.path.isfile(p) for p in detail["image_path"])
        return audit_dataset(card, images=images, counts=split).section()
    frame = split if split is not None else load_split(
        card, verify_images=False, **({"require_images": False} if _accepts_require_images() else {}))
    if "label" not in frame.columns:
        return None
    images = images and all(os.path.isfile(p) for p in frame["image_path"])
    return audit_dataset(card, images=images, frame=frame).section()


def _accepts_require_images() -> bool:
    import inspect

    from .core.data import load_split

    return "require_images" in inspect.signature(load_split).parameters
