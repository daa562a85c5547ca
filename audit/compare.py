"""``audit compare``'s file side: load two audits and a policy, write JSON, JUnit XML and HTML.

The comparison itself (matching, changes, intervals, paired and unpaired
bootstrap, the policy) is the pure :func:`audit.stats.compare_results`. This
module reads what it needs from audit output directories:

``results.json``
    The metrics and disparities (validated against the shipped schema).
``samples.parquet``
    Per-sample statistics written by ``audit run`` (``sample_id``, ``label``,
    ``pred`` and one ``group:<attribute>`` column per attribute). When both
    audits have it and their sample ids are equal, changes are tested with a
    paired bootstrap; otherwise unpaired.

and writes ``comparison.json``, ``comparison.xml`` (JUnit) and ``comparison.html``.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd

from ._io import atomic_write_bytes, atomic_write_text
from .errors import CompareError, StatsInputError
from .stats import ComparePolicy, Comparison, SampleStats, compare_results
from .stats._compare_outcome import describe_row, regression_order, row_label

__all__ = [
    "GROUP_PREFIX",
    "LoadedAudit",
    "SAMPLES_FILE",
    "assert_no_regression",
    "compare_audits",
    "junit_xml",
    "load_audit",
    "load_policy",
    "render_comparison_html",
    "samples_table",
    "store_baseline",
    "write_comparison",
    "write_samples",
]

RESULTS_FILE = "results.json"
SAMPLES_FILE = "samples.parquet"
GROUP_PREFIX = "group:"
OUTPUT_FILES = {"json": "comparison.json", "junit": "comparison.xml", "html": "comparison.html"}


# ---------------------------------------------------------------------------------------------------------
# Per-sample statistics of an audit
# ---------------------------------------------------------------------------------------------------------


def samples_table(sample_ids, labels, preds, groups: pd.DataFrame, attributes, intersections) -> pd.DataFrame:
    """``samples.parquet``'s table: ids, labels, predictions and each sample's binned group per attribute."""
    from .stats import build_groups

    _, binned = build_groups(groups.reset_index(drop=True), attributes, intersections)
    table = pd.DataFrame({
        "sample_id": np.asarray(sample_ids).astype(str),
        "label": np.asarray(labels, dtype=np.int64),
        "pred": np.asarray(preds, dtype=np.int64),
    })
    for name, values in binned.items():
        table[GROUP_PREFIX + name] = np.asarray(values.astype(str), dtype=object)
    return table


def write_samples(samples: pd.DataFrame, out_dir) -> Path:
    """Write ``samples.parquet`` into ``out_dir`` atomically; returns its path."""
    import io

    buffer = io.BytesIO()
    samples.to_parquet(buffer, index=False)
    path = Path(out_dir) / SAMPLES_FILE
    atomic_write_bytes(path, buffer.getvalue())
    return path


# ---------------------------------------------------------------------------------------------------------
# Loading
# ---------------------------------------------------------------------------------------------------------


@dataclass
class LoadedAudit:
    """One side of a comparison: its ``results.json`` document and, if present, per-sample statistics."""

    source: str
    document: dict
    samples: SampleStats | None = None

    @property
    def results(self) -> dict:
        return self.document["results"]

    def describe(self) -> dict:
        prov = self.document.get("provenance") or {}
        model = prov.get("model") or {}
        data = prov.get("data") or {}
        return {
            "source": self.source,
            "created": prov.get("created"),
            "model": model.get("title") or model.get("name"),
            "model_sha256": model.get("sha256"),
            "data": data.get("title") or data.get("name"),
            "data_sha256": data.get("sha256"),
            "n_samples": data.get("n_samples"),
            "per_sample_statistics": self.samples is not None,
        }


def _schema() -> dict:
    return json.loads(resources.files("audit").joinpath("schemas/results.schema.json").read_text(encoding="utf-8"))


_ROW_KEYS = {
    "metrics": ("grouping", "group", "metric", "class", "value", "lower", "upper", "n"),
    "disparities": ("grouping", "metric", "class", "kind", "group", "other", "difference"),
    "groups": ("grouping", "group", "n"),
}


def check_document(document, path: Path, *, role: str) -> None:
    """Schema-validate the structure (on the first rows of each table; full validation of thousands of rows
    takes seconds), then check that every row has the keys a comparison reads."""
    import jsonschema

    head = document
    if isinstance(document, dict) and isinstance(document.get("results"), dict):
        results = {k: (v[:3] if isinstance(v, list) else v) for k, v in document["results"].items()}
        head = {**document, "results": results}
    error = jsonschema.exceptions.best_match(jsonschema.Draft202012Validator(_schema()).iter_errors(head))
    if error is None:
        for table, keys in _ROW_KEYS.items():
            for i, row in enumerate(document["results"][table]):
                missing = [k for k in keys if not isinstance(row, dict) or k not in row]
                if missing:
                    raise CompareError(
                        f"{role}: '{path}' is not an audit results.json: at results/{table}/{i}: "
                        f"'{missing[0]}' is a required property"
                    )
        return
    where = "/".join(str(p) for p in error.absolute_path) or "top level"
    raise CompareError(f"{role}: '{path}' is not an audit results.json: at {where}: {error.message}")


def load_audit(path, *, role: str = "audit") -> LoadedAudit:
    """Load an audit output directory or a ``results.json`` file (and ``samples.parquet`` beside it).

    Raises
    ------
    CompareError
        The path is missing, not JSON, not an audit ``results.json``, or its
        ``samples.parquet`` is malformed. The message names ``role`` and the file.
    """
    import jsonschema

    path = Path(path)
    if path.is_dir():
        results_path = path / RESULTS_FILE
        if not results_path.is_file():
            raise CompareError(f"{role}: expected {RESULTS_FILE} in directory '{path}', found none")
    elif path.is_file():
        results_path = path
    else:
        raise CompareError(f"{role}: expected an audit output directory or a {RESULTS_FILE} file, found no such path '{path}'")
    try:
        document = json.loads(results_path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise CompareError(f"{role}: '{results_path}' is not valid JSON (not UTF-8 text)") from None
    except json.JSONDecodeError as exc:
        raise CompareError(
            f"{role}: '{results_path}' is not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})"
        ) from None
    except RecursionError:
        raise CompareError(f"{role}: '{results_path}' is not an audit results.json: values nested too deeply") from None
    from ._output import check_complete

    check_complete(results_path.parent)
    check_document(document, results_path, role=role)
    samples = None
    samples_path = results_path.parent / SAMPLES_FILE
    if samples_path.is_file():
        samples = _read_samples(samples_path, classes=document["results"]["config"]["classes"], role=role)
    return LoadedAudit(source=str(results_path), document=document, samples=samples)


def _read_samples(path: Path, *, classes, role: str) -> SampleStats:
    try:
        table = pd.read_parquet(path)
    except Exception as exc:  # noqa: BLE001 - pyarrow raises many types for a corrupt file
        raise CompareError(f"{role}: '{path}' is not a readable Parquet file ({type(exc).__name__})") from None
    missing = [c for c in ("sample_id", "label", "pred") if c not in table.columns]
    if missing:
        raise CompareError(f"{role}: '{path}': expected columns sample_id, label and pred, found no '{missing[0]}'")
    attributes = [c for c in table.columns if str(c).startswith(GROUP_PREFIX)]
    groups = table[attributes].rename(columns=lambda c: c[len(GROUP_PREFIX):])
    try:
        return SampleStats(table["sample_id"].to_numpy(), table["label"].to_numpy(), table["pred"].to_numpy(),
                           groups, list(classes))
    except (StatsInputError, ValueError, TypeError) as exc:
        raise CompareError(f"{role}: '{path}': {exc}") from None


def load_policy(path=None, **overrides) -> ComparePolicy:
    """A policy from a YAML file (if given), then keyword overrides (``None`` values are ignored).

    ``max_drop`` overrides merge into the file's per-metric table.
    """
    import yaml

    mapping: dict = {}
    source = "policy"
    if path is not None:
        source = f"policy '{path}'"
        try:
            text = Path(path).read_text(encoding="utf-8")
        except FileNotFoundError:
            raise CompareError(f"{source}: expected a YAML policy file, found no such file") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise CompareError(f"{source}: cannot be read ({type(exc).__name__})") from None
        from .core.front_matter import YamlTooLarge, safe_yaml_load

        try:
            mapping = safe_yaml_load(text)
        except YamlTooLarge as exc:
            raise CompareError(f"{source}: is not a usable YAML policy: {exc}") from None
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
            raise CompareError(f"{source}: is not valid YAML{where}") from None
        if mapping is None:
            mapping = {}
        if not isinstance(mapping, dict):
            raise CompareError(f"{source}: expected a mapping of policy keys, found {type(mapping).__name__}")
        mapping = dict(mapping)
    for key, value in overrides.items():
        if value is None:
            continue
        if key in ("max_drop", "max_disparity_growth") and isinstance(value, dict):
            current = mapping.get(key, {})
            current = {"default": current} if isinstance(current, (int, float)) else dict(current or {})
            current.update(value)
            mapping[key] = current
        else:
            mapping[key] = value
    try:
        return ComparePolicy.from_mapping(mapping, source=source)
    except StatsInputError as exc:
        raise CompareError(str(exc)) from None


# ---------------------------------------------------------------------------------------------------------
# Comparing
# ---------------------------------------------------------------------------------------------------------


def _as_audit(value, *, role: str, samples=None) -> LoadedAudit:
    """A path, an :class:`~audit.pipeline.AuditRun`, a ``GroupedMetrics``, a results document or a LoadedAudit."""
    if isinstance(value, LoadedAudit):
        return value
    if isinstance(value, (str, Path)):
        return load_audit(value, role=role)
    if hasattr(value, "result") and hasattr(value, "provenance"):  # AuditRun
        document = {"schema_version": 1, "provenance": value.provenance, "results": value.result.to_dict()}
        table = samples if samples is not None else getattr(value, "samples", None)
        return LoadedAudit(source=f"{role} (in memory)", document=document, samples=_samples_from(table, document))
    if hasattr(value, "to_dict"):  # GroupedMetrics
        document = {"schema_version": 1, "provenance": {}, "results": value.to_dict()}
        return LoadedAudit(source=f"{role} (in memory)", document=document, samples=_samples_from(samples, document))
    if isinstance(value, dict):
        document = value if "results" in value else {"schema_version": 1, "provenance": {}, "results": value}
        return LoadedAudit(source=f"{role} (in memory)", document=document, samples=_samples_from(samples, document))
    raise CompareError(
        f"{role}: expected a path, an AuditRun, a GroupedMetrics or a results dict, found {type(value).__name__}"
    )


def _samples_from(table, document) -> SampleStats | None:
    if table is None or isinstance(table, SampleStats):
        return table
    attributes = [c for c in table.columns if str(c).startswith(GROUP_PREFIX)]
    return SampleStats(table["sample_id"].to_numpy(), table["label"].to_numpy(), table["pred"].to_numpy(),
                       table[attributes].rename(columns=lambda c: c[len(GROUP_PREFIX):]),
                       list(document["results"]["config"]["classes"]))


def compare_audits(baseline, candidate, *, policy: ComparePolicy | None = None, paired: bool | None = None,
                   baseline_samples=None, candidate_samples=None) -> Comparison:
    """Compare two audits (paths, ``AuditRun``s, ``GroupedMetrics`` or results documents).

    Raises
    ------
    CompareError
        Bad input: unreadable audits, nothing in common, samples that do not
        reproduce the results.
    """
    base = _as_audit(baseline, role="baseline", samples=baseline_samples)
    cand = _as_audit(candidate, role="candidate", samples=candidate_samples)
    try:
        comparison = compare_results(base.results, cand.results, policy=policy, baseline_samples=base.samples,
                                     candidate_samples=cand.samples, paired=paired)
    except StatsInputError as exc:
        raise CompareError(str(exc)) from None
    comparison.sources = {"baseline": base.describe(), "candidate": cand.describe()}
    return comparison


def assert_no_regression(candidate, baseline, *, policy: ComparePolicy | None = None, paired: bool | None = None,
                         **policy_options) -> Comparison:
    """Compare and raise ``AssertionError`` with a readable summary if ``candidate`` regressed."""
    if policy is None:
        policy = load_policy(**policy_options)
    comparison = compare_audits(baseline, candidate, policy=policy, paired=paired)
    if not comparison.passed:
        raise AssertionError(comparison.summary())
    return comparison


def store_baseline(candidate, directory, *, samples=None) -> Path:
    """Write ``candidate`` as a stored baseline: ``results.json`` (and ``samples.parquet`` when known)."""
    audit = _as_audit(candidate, role="candidate", samples=samples)
    directory = Path(directory)
    text = json.dumps(audit.document, indent=2, allow_nan=False, ensure_ascii=False) + "\n"
    atomic_write_text(directory / RESULTS_FILE, text)
    samples_path = directory / SAMPLES_FILE
    if audit.samples is not None:
        s = audit.samples
        table = pd.DataFrame({"sample_id": s.sample_id, "label": s.y_true, "pred": s.y_pred})
        for column in s.groups.columns:
            table[GROUP_PREFIX + column] = s.groups[column].to_numpy(dtype=object)
        write_samples(table, directory)
    elif samples_path.exists():
        samples_path.unlink()  # a stale samples file would not match the new results
    return directory


# ---------------------------------------------------------------------------------------------------------
# Outputs
# ---------------------------------------------------------------------------------------------------------


def _json_ready(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _json_ready(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_ready(v) for v in value]
    return value


def comparison_document(comparison: Comparison) -> dict:
    return _json_ready(comparison.to_dict())


def junit_xml(comparison: Comparison) -> str:
    """JUnit XML: one test case per gated row; regressions are failures, rows below min_n are skipped."""
    import xml.etree.ElementTree as ET

    rows = comparison.rows
    gated = regression_order(rows[rows["status"].isin(["regression", "within_noise", "ok", "improved", "small_n"])])
    failures = int((gated["status"] == "regression").sum())
    skipped = int((gated["status"] == "small_n").sum())
    suites = ET.Element("testsuites", name="audit compare", tests=str(len(gated)), failures=str(failures))
    suite = ET.SubElement(suites, "testsuite", name=f"audit compare ({comparison.mode})", tests=str(len(gated)),
                          failures=str(failures), errors="0", skipped=str(skipped))
    props = ET.SubElement(suite, "properties")
    for name, value in (("mode", comparison.mode), ("method", comparison.method), ("reason", comparison.reason),
                        ("baseline", comparison.sources.get("baseline", {}).get("source", "")),
                        ("candidate", comparison.sources.get("candidate", {}).get("source", ""))):
        ET.SubElement(props, "property", name=name, value=str(value))
    for _, r in gated.iterrows():
        case = ET.SubElement(suite, "testcase", classname=f"audit.compare.{r['item']}.{r['grouping']}",
                             name=row_label(r))
        if r["status"] == "regression":
            failure = ET.SubElement(case, "failure", message=f"regression: {row_label(r)}", type="regression")
            failure.text = describe_row(r)
        elif r["status"] == "small_n":
            ET.SubElement(case, "skipped", message=f"n below min_n={comparison.policy.min_n}")
        else:
            ET.SubElement(case, "system-out").text = f"{r['status']}: {describe_row(r)}"
    ET.indent(suites)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(suites, encoding="unicode") + "\n"


def render_comparison_html(comparison: Comparison) -> str:
    """The comparison as a self-contained HTML page (Jinja2, autoescaped; nothing passes through ``|safe``)."""
    from jinja2 import Environment, PackageLoader, select_autoescape

    from .core.run import _fmt

    env = Environment(
        loader=PackageLoader("audit", "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["fmt"] = lambda v, digits=3: _fmt(None if isinstance(v, float) and not math.isfinite(v) else v, digits)
    document = comparison_document(comparison)
    order = {"regression": 0, "within_noise": 1, "improved": 2, "ok": 3, "small_n": 4, "undefined": 5, "info": 6,
             "only_baseline": 7, "only_candidate": 8}
    # disparity regressions first (the reason the gate exists), then metric regressions, then the rest
    rows = sorted(document["rows"], key=lambda r: (order.get(r["status"], 9), r["item"] != "disparity", r["grouping"]))
    headline = [r for r in rows if r["status"] in ("regression", "within_noise", "improved")]
    return env.get_template("comparison.html.j2").render(cmp=document, rows=rows, headline=headline)


def write_comparison(comparison: Comparison, out_dir) -> dict:
    """Write ``comparison.json``, ``comparison.xml`` (JUnit) and ``comparison.html`` atomically."""
    out_dir = Path(out_dir)
    text = json.dumps(comparison_document(comparison), indent=2, allow_nan=False, ensure_ascii=False) + "\n"
    xml = junit_xml(comparison)
    html = render_comparison_html(comparison)
    from ._output import commit_files, output_lock, prepare_out_dir

    paths = {kind: out_dir / name for kind, name in OUTPUT_FILES.items()}
    prepare_out_dir(out_dir)
    with output_lock(out_dir):  # the three files appear together or not at all
        commit_files(out_dir, {OUTPUT_FILES["json"]: text.encode("utf-8"), OUTPUT_FILES["junit"]: xml.encode("utf-8"),
                               OUTPUT_FILES["html"]: html.encode("utf-8")})
    return paths
