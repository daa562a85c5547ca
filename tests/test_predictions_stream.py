"""Predictions made elsewhere, streamed in record batches and counted per cell (audit/tasks/classification/stream.py).

The streamed audit must be the row-by-row audit, number for number: the same results (point estimates,
intervals, p-values), the same per-sample tables and dataset section, and for bad input the same one-line
message. A directory of Parquet files reads as the single file, and a CSV file as the Parquet file.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pandas as pd
import pytest

from audit.core.registry import get_task
from audit.errors import AuditError
from audit.pipeline import evaluate
from audit.report import run_audit
from audit.tasks.classification import stream

CARD = """\
---
split:
  manifest: {manifest}
  id_column: id
{image}label_column: label
classes: [cat, dog, fish]
attributes:
  skin_type: {{column: skin, scale: fitzpatrick}}
  gender: {{column: gender}}
  age: {{column: age, scale: ordinal, order: [young, middle, older]}}
intersections:
  - [gender, skin_type]
  - [gender, skin_type, age]
reference_groups:
  skin_type: lighter
min_group_size: 30
---
# A seeded split for the streaming tests
"""
CLASSES = ["cat", "dog", "fish"]
FAST = {"n_boot": 200, "n_perm": 200, "seed": 7}


def make_split(root, *, n=20_000, seed=0, manifest="manifest.csv", image_column=False):
    """A manifest (missing values in two attributes, Fitzpatrick as numbers and roman numerals) and its card."""
    rng = np.random.default_rng(seed)
    ids = np.char.add("id", np.char.zfill(rng.permutation(n).astype(str), 6))
    skin = rng.choice(np.array(["1", "2", "3", "4", "5", "6", "IV", "II", ""], dtype=object), n)
    frame = pd.DataFrame({
        "id": ids,
        "label": np.array(CLASSES, dtype=object)[rng.integers(0, 3, n)],
        "skin": skin,
        "gender": rng.choice(np.array(["female", "male", ""], dtype=object), n, p=[0.48, 0.48, 0.04]),
        "age": rng.choice(np.array(["young", "middle", "older"], dtype=object), n),
    })
    if image_column:
        frame.insert(1, "file", [f"images/{i}.png" for i in ids])
    path = root / manifest
    if manifest.endswith(".csv"):
        frame.to_csv(path, index=False)
    else:
        frame.replace("", None).to_parquet(path, index=False)
    card = root / "card.md"
    card.write_text(CARD.format(manifest=manifest, image="  image_column: file\n" if image_column else ""))
    return card, frame


def make_predictions(root, frame, *, seed=1, scores=True, name="predictions.parquet"):
    """Class scores (softmax of a planted signal) or labels, in another row order than the manifest."""
    rng = np.random.default_rng(seed)
    truth = frame["label"].map({c: i for i, c in enumerate(CLASSES)}).to_numpy()
    logits = rng.normal(0, 1, (len(frame), 3))
    logits[np.arange(len(frame)), truth] += 1.2  # no planted disparity: few tests to refine, a fast test
    probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    table = pd.DataFrame({"sample_id": frame["id"]})
    if scores:
        for k, c in enumerate(CLASSES):
            table[f"score_{c}"] = probs[:, k]
    else:
        table["pred"] = np.array(CLASSES, dtype=object)[probs.argmax(1)]
    table = table.iloc[rng.permutation(len(table))].reset_index(drop=True)
    path = root / name
    if name.endswith(".csv"):
        table.to_csv(path, index=False)
    else:
        table.to_parquet(path, index=False)
    return path, table


@pytest.fixture
def row_by_row(monkeypatch):
    """Make the streaming reader decline, so that the pipeline reads the files row by row (the reference)."""
    def decline(*args, **kwargs):
        raise stream.NotStreamable("the test asks for the row-by-row path")

    return lambda: monkeypatch.setattr(stream, "read_split", decline)


def _evaluate(card, predictions):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return evaluate(data=card, predictions=predictions, **FAST)


def _assert_same_audit(one, two):
    for name in ("metrics", "disparities", "groups", "reliability"):
        pd.testing.assert_frame_equal(getattr(one.result, name), getattr(two.result, name), check_exact=False,
                                      rtol=1e-12, atol=1e-12)
    assert one.result.config == two.result.config


@pytest.mark.parametrize("scores", [True, False], ids=["scores", "labels"])
def test_streamed_audit_equals_row_by_row(tmp_path, row_by_row, scores):
    """20,000 seeded samples: the counts path gives the row path's numbers, intervals and p-values, and the
    same per-sample tables and dataset section."""
    from audit.dataset import report_section

    card, frame = make_split(tmp_path)
    predictions, _ = make_predictions(tmp_path, frame, scores=scores)
    streamed = _evaluate(card, predictions)
    assert isinstance(streamed.split, stream.SplitCounts)
    assert len(streamed.split.cells) < 1_000  # 20,000 samples, a few hundred cells
    row_by_row()
    rows = _evaluate(card, predictions)
    assert isinstance(rows.split, pd.DataFrame)

    _assert_same_audit(streamed, rows)
    metrics = streamed.result.metrics
    assert metrics["lower"].notna().any() and streamed.result.disparities["p_value"].notna().any()
    assert (metrics["metric"] == "roc_auc").any() == scores
    assert streamed.provenance == {**rows.provenance, "created": streamed.provenance["created"]}
    pd.testing.assert_frame_equal(streamed.samples, rows.samples)
    pd.testing.assert_frame_equal(streamed.predictions, rows.predictions)
    assert report_section(card, split=streamed.split) == report_section(card, split=rows.split) == \
        report_section(card)


def test_parquet_directory_and_csv_read_as_the_file(tmp_path):
    """A directory of Parquet files (a dataset, in any row order) and a CSV file audit as the Parquet file."""
    card, frame = make_split(tmp_path, n=6_000)
    predictions, table = make_predictions(tmp_path, frame)
    parts = tmp_path / "parts"
    parts.mkdir()
    shuffled = table.sample(frac=1, random_state=3)
    for i, start in enumerate(range(0, len(shuffled), 2_500)):
        shuffled.iloc[start:start + 2_500].to_parquet(parts / f"part-{i}.parquet", index=False)
    as_csv, _ = make_predictions(tmp_path, frame, name="predictions.csv")
    one, directory, csv = (_evaluate(card, p) for p in (predictions, parts, as_csv))
    for other in (directory, csv):
        _assert_same_audit(one, other)
        pd.testing.assert_frame_equal(one.samples, other.samples)
        pd.testing.assert_frame_equal(one.predictions, other.predictions)
    assert directory.provenance["predictions"]["sha256"] == stream.predictions_sha256(parts)


def test_parquet_manifest_and_csv_manifest_agree(tmp_path):
    csv_dir, parquet_dir = tmp_path / "csv", tmp_path / "parquet"
    csv_dir.mkdir()
    parquet_dir.mkdir()
    card_csv, frame = make_split(csv_dir, n=3_000)
    card_parquet, _ = make_split(parquet_dir, n=3_000, manifest="manifest.parquet")
    predictions, _ = make_predictions(tmp_path, frame)
    _assert_same_audit(_evaluate(card_csv, predictions), _evaluate(card_parquet, predictions))


def test_above_the_detail_limit(tmp_path, monkeypatch):
    """Past the per-sample limit the results are the same; samples.parquet and the report's per-sample
    sections are left out, and the dataset section still comes from the counts."""
    card, frame = make_split(tmp_path, n=3_000)
    predictions, _ = make_predictions(tmp_path, frame)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        full = run_audit(data=card, predictions=predictions, out_dir=tmp_path / "full", **FAST)
        monkeypatch.setattr(stream, "SAMPLE_DETAIL_LIMIT", 1_000)
        counted = run_audit(data=card, predictions=predictions, out_dir=tmp_path / "counted", **FAST)
    assert counted.split.samples is None and counted.samples is None
    _assert_same_audit(full, counted)
    assert (tmp_path / "full" / "samples.parquet").is_file()
    assert not (tmp_path / "counted" / "samples.parquet").exists()
    one, two = (json.loads((tmp_path / d / "results.json").read_text()) for d in ("full", "counted"))
    assert {k: v for k, v in one.items() if k != "provenance"} == {k: v for k, v in two.items() if k != "provenance"}
    assert (tmp_path / "full" / "dataset_section.json").read_text() == \
        (tmp_path / "counted" / "dataset_section.json").read_text()
    assert "Not available: the worst errors need" in (tmp_path / "counted" / "index.html").read_text()


def test_predictions_audit_imports_no_torch(tmp_path):
    """`audit run --predictions` never loads torch (half a gigabyte of resident memory, seconds of CPU)."""
    card, frame = make_split(tmp_path, n=500)
    predictions, _ = make_predictions(tmp_path, frame)
    code = textwrap.dedent(f"""
        import sys
        from audit.cli import main
        code = main(["run", "--predictions", {str(predictions)!r}, "--data", {str(card)!r}, "--out",
                     {str(tmp_path / "out")!r}, "--n-boot", "20", "--n-perm", "20", "-q"])
        print(code, sorted(m for m in sys.modules if m == "torch" or m.startswith("torch.")))
    """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["0", "[]"], done.stderr


# --- bad input: the streaming readers say what the row-by-row loaders say --------------------------------


def _row_message(card, predictions):
    from audit.core.data import load_split
    from audit.core.inference import load_predictions_file

    try:
        frame = load_split(card, verify_images=False, require_images=False)
        if predictions is not None:
            load_predictions_file(predictions, sample_ids=frame["sample_id"].tolist(), classes=card.classes,
                                  id_column=card.split.id_column)
    except AuditError as exc:
        return type(exc).__name__, str(exc)
    return None


def _stream_message(card, predictions):
    try:
        manifest = stream.read_split(card)
        if predictions is not None:
            stream.read_predictions(predictions, manifest, classes=list(card.classes), id_column=card.split.id_column)
    except AuditError as exc:
        return type(exc).__name__, str(exc)
    return None


def _edit(frame, column, rows, value):
    frame = frame.copy()
    frame[column] = frame[column].astype(object)
    frame.loc[rows, column] = value
    return frame


def _manifest_case(edit, *, parquet=False, image_column=False):
    def build(root):
        manifest = "manifest.parquet" if parquet else "manifest.csv"
        card, frame = make_split(root, n=300, manifest=manifest, image_column=image_column)
        frame = edit(frame)
        if parquet:
            frame.to_parquet(root / manifest, index=False)
        else:
            frame.to_csv(root / manifest, index=False)
        return card, None
    return build


def _predictions_case(edit, *, name="predictions.csv", scores=True, manifest="manifest.csv"):
    def build(root):
        card, frame = make_split(root, n=300, manifest=manifest)
        path, table = make_predictions(root, frame, name=name, scores=scores)
        table = edit(table)
        if name.endswith(".csv"):
            table.to_csv(path, index=False)
        else:
            table.to_parquet(path, index=False)
        return card, path
    return build


def _sums_then_logit(t):
    t = _edit(t, "score_cat", [3], 0.9)  # a row summing to more than 1 ...
    return _edit(t, "score_dog", [200], -2.0)  # ... and, later in the file, a logit: the value is named first


BAD_INPUT = {
    # the manifest
    "manifest_blank_id": _manifest_case(lambda f: _edit(f, "id", [7], " ")),
    "manifest_duplicate_id": _manifest_case(lambda f: _edit(f, "id", [250], f["id"][40])),
    "manifest_duplicate_before_blank": _manifest_case(
        lambda f: _edit(_edit(f, "id", [20], f["id"][3]), "id", [60], "")),
    "manifest_blank_before_duplicate": _manifest_case(
        lambda f: _edit(_edit(f, "id", [90], f["id"][3]), "id", [60], "")),
    "manifest_unknown_label": _manifest_case(lambda f: _edit(f, "label", [11], "cow")),
    "manifest_empty_label": _manifest_case(lambda f: _edit(f, "label", [12], None)),
    "manifest_empty_label_parquet": _manifest_case(lambda f: _edit(f, "label", [12], None), parquet=True),
    "manifest_integer_labels_with_a_gap_parquet": _manifest_case(
        lambda f: _edit(f.assign(label=np.arange(len(f)) % 3), "label", [50], None), parquet=True),
    "manifest_bad_skin_type": _manifest_case(lambda f: _edit(f, "skin", [140], "VII")),
    "manifest_bad_skin_type_parquet": _manifest_case(lambda f: _edit(f, "skin", [140], "7"), parquet=True),
    "manifest_empty_image_path": _manifest_case(lambda f: _edit(f, "file", [30], ""), image_column=True),
    "manifest_image_outside_root": _manifest_case(lambda f: _edit(f, "file", [31], "../../etc/passwd"),
                                                  image_column=True),
    "manifest_label_before_image": _manifest_case(
        lambda f: _edit(_edit(f, "file", [31], "../x.png"), "label", [200], "cow"), image_column=True),
    "manifest_header_only": _manifest_case(lambda f: f.iloc[:0]),
    "manifest_missing_column": _manifest_case(lambda f: f.drop(columns="age")),
    # the predictions file
    "predictions_missing_id_column": _predictions_case(lambda t: t.rename(columns={"sample_id": "name"})),
    "predictions_blank_id": _predictions_case(lambda t: _edit(t, "sample_id", [8], "NA")),
    "predictions_duplicate_id": _predictions_case(lambda t: _edit(t, "sample_id", [100], t["sample_id"][9])),
    "predictions_duplicate_unknown_id": _predictions_case(
        lambda t: _edit(t, "sample_id", [100, 170], "stranger")),
    "predictions_ids_do_not_match": _predictions_case(
        lambda t: _edit(t, "sample_id", list(range(10, 17)), [f"zz{i}" for i in range(7)])),
    "predictions_missing_rows": _predictions_case(lambda t: t.iloc[:-8]),
    "predictions_missing_score_column": _predictions_case(lambda t: t.drop(columns="score_fish")),
    "predictions_neither_scores_nor_labels": _predictions_case(lambda t: t[["sample_id"]]),
    "predictions_scores_not_numbers": _predictions_case(lambda t: _edit(t, "score_dog", [5, 80], "high")),
    "predictions_scores_not_numbers_parquet": _predictions_case(  # a text column in a Parquet file
        lambda t: _edit(t.assign(score_dog=t["score_dog"].astype(str)), "score_dog", [5], "high"),
        name="predictions.parquet"),
    "predictions_logits": _predictions_case(lambda t: _edit(t, "score_cat", [15, 16], -1.5)),
    "predictions_partial_scores": _predictions_case(lambda t: _edit(t, "score_fish", [21], None)),
    "predictions_scores_do_not_sum_to_one": _predictions_case(lambda t: _edit(t, "score_cat", [33], 0.99)),
    "predictions_sum_before_logit": _predictions_case(_sums_then_logit),
    "predictions_infinite_score": _predictions_case(lambda t: _edit(t, "score_dog", [44], float("inf")),
                                                    name="predictions.parquet"),
    "predictions_unknown_label": _predictions_case(lambda t: _edit(t, "pred", [70, 71], "cow"), scores=False),
    "predictions_label_out_of_range": _predictions_case(
        lambda t: _edit(t.assign(pred=np.arange(len(t)) % 3), "pred", [72], 7), scores=False),
    "predictions_label_out_of_range_with_a_gap": _predictions_case(
        lambda t: _edit(_edit(t.assign(pred=np.arange(len(t)) % 3), "pred", [72], 7), "pred", [3], None),
        scores=False),
    "predictions_label_out_of_range_parquet": _predictions_case(
        lambda t: _edit(t.assign(pred=np.arange(len(t)) % 3), "pred", [72], 9), scores=False,
        name="predictions.parquet"),
    "predictions_file_missing": lambda root: (make_split(root, n=50)[0], root / "nope.parquet"),
}


@pytest.mark.parametrize("name", sorted(BAD_INPUT))
def test_bad_input_same_message_as_row_by_row(tmp_path, name):
    card, predictions = BAD_INPUT[name](tmp_path)
    card = get_task("classification").load_data_card(card)
    expected = _row_message(card, predictions)
    assert expected is not None, "the case must be bad input"
    assert _stream_message(card, predictions) == expected


def test_a_file_pyarrow_cannot_read_is_read_row_by_row(tmp_path):
    """A ragged CSV row (pandas fills it, pyarrow refuses it) falls back to the row-by-row path."""
    card, frame = make_split(tmp_path, n=400)
    predictions, _ = make_predictions(tmp_path, frame, name="predictions.csv", scores=False)
    lines = predictions.read_text().splitlines()
    lines[5] = lines[5].split(",")[0]  # a row with only its id: pandas reads an empty (abstaining) label
    predictions.write_text("\n".join(lines) + "\n")
    with pytest.raises(stream.NotStreamable):
        stream.read_predictions(predictions, stream.read_split(get_task("classification").load_data_card(card)), classes=CLASSES,
                                id_column="id")
    run = _evaluate(card, predictions)
    assert isinstance(run.split, pd.DataFrame) and (run.predictions["pred"] == -1).sum() == 1


def test_images_on_disk_dataset_section_and_thumbnails(tmp_path):
    """With the images on disk, the streamed run's dataset section has the image statistics and the report's
    worst errors their thumbnails, as the row-by-row run's."""
    from slice_helpers import CLASSES as TINY_CLASSES
    from slice_helpers import make_split as make_tiny_split

    from audit.dataset import report_section
    from audit.report import image_paths_from_card

    split = make_tiny_split(tmp_path, n=60)
    rng = np.random.default_rng(0)
    p = rng.uniform(0, 1, len(split["frame"]))
    predictions = tmp_path / "preds.csv"
    pd.DataFrame({"sample_id": split["frame"]["id"], f"score_{TINY_CLASSES[0]}": 1 - p,
                  f"score_{TINY_CLASSES[1]}": p}).to_csv(predictions, index=False)
    run = _evaluate(split["card"], predictions)
    assert isinstance(run.split, stream.SplitCounts)
    section = report_section(split["card"], split=run.split)
    assert section == report_section(split["card"]) and "Image statistics" in json.dumps(section)
    assert image_paths_from_card(split["card"], split=run.split.samples) == image_paths_from_card(split["card"])


@pytest.mark.parametrize("streamed", [True, False], ids=["streamed", "row-by-row"])
def test_report_rereads_a_predictions_file_keyed_by_the_cards_id_column(tmp_path, streamed, request):
    """``audit report DIR`` reads the predictions file again for the threshold sweep; a file keyed by the card's
    ``split.id_column`` (here ``id``, not ``sample_id``) is read under that name (it raised a KeyError before)."""
    from audit.cli import main

    if not streamed:
        request.getfixturevalue("row_by_row")
    card, frame = make_split(tmp_path, n=600)
    predictions, table = make_predictions(tmp_path, frame, name="predictions.csv")
    table.rename(columns={"sample_id": "id"}).to_csv(predictions, index=False)
    out = tmp_path / "out"
    assert main(["run", "--data", str(card), "--predictions", str(predictions), "--out", str(out), "--n-boot", "50",
                 "--n-perm", "50", "--no-thumbnails", "-q"]) == 0
    document = json.loads((out / "results.json").read_text())
    assert document["provenance"]["predictions"]["id_column"] == "id"
    assert main(["report", str(out), "-o", str(tmp_path / "again.html"), "-q"]) == 0
    html = (tmp_path / "again.html").read_text()
    assert "Not available: the threshold sweep needs" not in html
    assert 'id="sweep-' in html  # the threshold sweep charts, drawn from the scores of the file read again
