"""What explains the gaps, wired in (issue #21): the covariates field and --covariates, the units each task
fills, the analysis run once per audit, results.json's explanations block and the report's section.

The engine itself (stratified, adjusted and sliced analyses) is tested in tests/test_stats_stratified.py and
tests/test_stats_slices.py; the planted causes of the benchmark in tests/test_explain_benchmark.py.
"""

from __future__ import annotations

import json
import warnings

import jsonschema
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from markupsafe import escape
from slice_helpers import make_split

import audit.core.explain as explain_module
from audit.cli import main
from audit.core.covariates import MAX_COVARIATES, Covariate, covariate_table, parse_covariates
from audit.core.explain import explain_gaps
from audit.core.registry import load_any_data_card
from audit.core.units import Outcome, unit_frame
from audit.errors import AuditError, CardError
from audit.pipeline import load_results_schema
from audit.report import write_report
from audit.report._explain import _gap
from audit.stats import UndefinedMetricWarning, explanation_sentence

# --- the card field and the command line ------------------------------------------------------------------------


@pytest.mark.parametrize(("extra", "message"), [
    ("covariates: lighting\n",
     "field 'covariates': expected a non-empty list of covariate names (or mappings with name, column, quantiles), "
     "found 'lighting'"),
    ("covariates: []\n",
     "field 'covariates': expected a non-empty list of covariate names (or mappings with name, column, quantiles), "
     "found []"),
    ("covariates: [a, b, c, d, e]\n",
     "field 'covariates': expected at most 4 covariates (strata are their combinations), found ['a', 'b', 'c', 'd', "
     "'e']"),
    ("covariates: [age, 3]\n",
     "field 'covariates[1]': expected a covariate name (string) or a mapping with name, column, quantiles, found 3"),
    ("covariates: [age, age]\n", "field 'covariates[1]': expected a covariate name not listed before, found 'age'"),
    ("covariates: ['']\n", "field 'covariates[0]': expected a covariate name (a non-empty string), found ''"),
    ("covariates: [{column: x}]\n",
     "field 'covariates[0].name': expected a covariate name (a non-empty string), found null"),
    ("covariates: [{name: light, bins: 3}]\n",
     "field 'covariates[0].bins': expected one of the known fields (name, column, quantiles), found 'bins'"),
    ("covariates: [{name: light, quantiles: 1}]\n",
     "field 'covariates[0].quantiles': expected an integer from 2 to 10, found 1"),
    ("covariates: [{name: light, quantiles: true}]\n",
     "field 'covariates[0].quantiles': expected an integer from 2 to 10, found true"),
    ("covariates: [{name: light, column: 4}]\n",
     "field 'covariates[0].column': expected a column name (a non-empty string), found 4"),
])
def test_bad_covariates_in_the_card(tmp_path, extra, message):
    split = make_split(tmp_path, n=8, card_extra=extra)
    with pytest.raises(CardError) as info:
        load_any_data_card(split["card"])
    assert str(info.value) == f"{split['card']}: {message}"


def test_the_card_field_is_parsed_into_the_options(tmp_path):
    split = make_split(tmp_path, n=8, card_extra="covariates: [age, {name: light, column: file, quantiles: 3}]\n")
    card = load_any_data_card(split["card"])
    assert card.options["covariates"] == (Covariate("age", "age"), Covariate("light", "file", 3))


names = st.text(alphabet="abcdefghijklmnopqrstuvwxyz_", min_size=1, max_size=12)


@settings(max_examples=60, deadline=None)
@given(st.lists(names, min_size=1, max_size=MAX_COVARIATES, unique=True))
def test_distinct_names_round_trip(given_names):
    parsed = parse_covariates(list(given_names), fail=lambda *a: AssertionError(a))
    assert [c.name for c in parsed] == given_names and [c.column for c in parsed] == given_names
    assert all(c.quantiles is None for c in parsed)


@settings(max_examples=60, deadline=None)
@given(st.lists(names, min_size=1, max_size=MAX_COVARIATES - 1, unique=True), st.data())
def test_a_repeated_name_is_named_at_its_second_place(given_names, data):
    repeated = data.draw(st.sampled_from(given_names))
    position = data.draw(st.integers(given_names.index(repeated) + 1, len(given_names)))
    value = [*given_names[:position], repeated, *given_names[position:]]
    with pytest.raises(AuditError) as info:
        parse_covariates(value, fail=lambda where, expected, found: AuditError(f"{where}: {expected}: {found!r}"))
    assert str(info.value) == f"[{position}]: a covariate name not listed before: {repeated!r}"


def _split(tmp_path, card_extra="", n=240, seed=0):
    """A tiny classification split whose predictions err more on old people (and so on whoever is often old)."""
    split = make_split(tmp_path, n=n, seed=seed, card_extra=card_extra)
    table = split["frame"]
    rng = np.random.default_rng(seed)
    wrong = rng.random(len(table)) < np.where(table["age"] == "old", 0.45, 0.05)
    flipped = np.where(table["species"] == "cat", "dog", "cat")
    preds = tmp_path / "preds.csv"
    pd.DataFrame({"sample_id": table["id"], "pred": np.where(wrong, flipped, table["species"])}).to_csv(preds,
                                                                                                      index=False)
    return split, preds


def _run(split, preds, out, *extra):
    return main(["run", "--data", str(split["card"]), "--predictions", str(preds), "--out", str(out),
                 "--n-boot", "100", "--n-perm", "20", "--no-data-audit", "-q", *extra])


@pytest.mark.parametrize(("flag", "message"), [
    ("age,age", "--covariates: expected a covariate name not listed before, found 'age'"),
    ("a,b,c,d,e", "--covariates: expected at most 4 covariates (strata are their combinations), found "
                  "['a', 'b', 'c', 'd', 'e']"),
])
def test_bad_covariates_on_the_command_line(tmp_path, capsys, flag, message):
    split, preds = _split(tmp_path, n=20)
    assert _run(split, preds, tmp_path / "o", "--covariates", flag) == 2
    assert capsys.readouterr().err.strip() == f"error: {message}"
    assert not (tmp_path / "o" / "results.json").exists()


def test_a_covariate_the_data_lacks_fails_before_anything_is_written(tmp_path, capsys):
    split, preds = _split(tmp_path, n=20)
    assert _run(split, preds, tmp_path / "o", "--covariates", "age,camera") == 2
    assert capsys.readouterr().err.strip() == (
        f"error: {split['card']}: field 'covariates[1]': expected a column of the data or one of brightness, "
        "contrast, sharpness, resolution, found 'camera'")
    assert not (tmp_path / "o" / "results.json").exists()


# --- end to end: audit run writes the analysis, the report shows it ------------------------------------------

def test_audit_run_explains_a_gap_with_a_covariate(tmp_path):
    # errors follow age alone; the card declares it: the skin-type gap (if any) is taken apart by age
    split, preds = _split(tmp_path, card_extra="covariates: [age]\n")
    out = tmp_path / "out"
    assert _run(split, preds, out) == 0
    document = json.loads((out / "results.json").read_text())
    jsonschema.validate(document, load_results_schema())
    block = document["explanations"]
    assert block["covariates"] == ["age"] and block["unit"] == "samples" and block["regression"] == "glm"
    by_attribute = {c["attribute"]: c for c in block["comparisons"]}
    assert set(by_attribute) == {"skin_type", "gender"}  # age is the covariate; gender has two groups
    skin = by_attribute["skin_type"]
    assert (skin["metric"], skin["outcome"], skin["verb"]) == ("error_rate", "error", "misclassified")
    assert (skin["group"], skin["reference"], skin["covariates"]) == ("darker", "lighter", ["age"])
    assert {s["stratum"] for s in skin["strata"]} == {"age=young", "age=old"}
    gap = skin["gap"]
    n = len(split["frame"])
    assert gap["n_group"] + gap["n_reference"] == n and gap["regression_model"] == "glm"
    assert gap["mh_gap_lower"] <= 0 <= gap["mh_gap_upper"]  # age is the only cause
    assert [s["metric"] for s in block["slices"]] == ["error_rate"]
    assert block["slices"][0]["features"] == ["skin_type", "gender", "age"]
    # the report shows the sentence, made from results.json alone
    sentence = explanation_sentence(_gap(gap), group_name="samples in skin_type group 'darker'",
                                    reference_name="samples in skin_type group 'lighter'", covariate_name="age",
                                    outcome_verb="misclassified")
    html = (out / "index.html").read_text(encoding="utf-8")
    section = html.split('<section id="explain">')[1].split("</section>")[0]
    assert str(escape(sentence)) in section and "After accounting for age, samples in skin_type group" in sentence
    assert '<a href="#explain">What explains the gaps</a>' in html
    assert section.count('<div class="scroll" tabindex="0" role="region"') >= 2  # wide tables scroll on a phone
    # re-rendering from the output directory gives the same section
    again = write_report([out], tmp_path / "again.html").read_text(encoding="utf-8")
    assert again.split('<section id="explain">')[1].split("</section>")[0] == section


def test_command_line_covariates_override_the_card(tmp_path):
    split, preds = _split(tmp_path, card_extra="covariates: [age]\n", n=120)
    assert _run(split, preds, tmp_path / "out", "--covariates", "gender,brightness") == 0
    block = json.loads((tmp_path / "out" / "results.json").read_text())["explanations"]
    assert block["covariates"] == ["gender", "brightness"]
    assert {c["attribute"] for c in block["comparisons"]} == {"skin_type", "gender", "age"}
    skin = next(c for c in block["comparisons"] if c["attribute"] == "skin_type")
    assert skin["covariates"] == ["gender", "brightness"]
    assert any(s["stratum"].startswith("gender=female × brightness=") for s in skin["strata"])


def test_without_covariates_the_block_says_so(tmp_path):
    split, preds = _split(tmp_path, n=40)
    assert _run(split, preds, tmp_path / "out") == 0
    document = json.loads((tmp_path / "out" / "results.json").read_text())
    assert document["explanations"]["comparisons"] == [] and "No covariates were declared" in \
        document["explanations"]["notes"][0]
    html = (tmp_path / "out" / "index.html").read_text(encoding="utf-8")
    assert "No covariates were declared, so no gap is taken apart" in html


# --- the covariates' values ---------------------------------------------------------------------------------------

def test_covariate_values_columns_derived_and_image_statistics(tmp_path):
    split = make_split(tmp_path, n=24)
    frame = split["frame"]
    paths = [str(split["root"] / "data" / f) for f in frame["file"]]
    columns = frame.assign(exposure=np.linspace(0, 1, len(frame)).round(3), flash=["yes", None] * 12)
    table, notes = covariate_table(
        [Covariate("exposure", "exposure"), Covariate("flash", "flash"), Covariate("box_size", "box_size", 3),
         Covariate("brightness", "brightness")],
        n=len(frame), columns=columns, derived={"box_size": np.arange(24.0)}, image_paths=paths)
    assert list(table.columns) == ["covariate:exposure", "covariate:flash", "covariate:box_size",
                                   "covariate:brightness"]
    assert table["covariate:exposure"].nunique() == 4 and "cut into 4 quantile bins" in notes[0]
    assert sorted(table["covariate:flash"].unique()) == ["unknown", "yes"]
    assert table["covariate:box_size"].value_counts().tolist() == [8, 8, 8]
    assert table["covariate:brightness"].nunique() >= 2  # class 1 images are brighter
    with pytest.raises(CardError, match=r"^c\.md: field 'covariates\[0\]\.quantiles': expected a numeric column to "
                                        r"cut into quantile bins, found non-numeric values in 'gender'$"):
        covariate_table([Covariate("g", "gender", 3)], n=len(frame), columns=frame, card_path="c.md")
    with pytest.warns(UndefinedMetricWarning, match="covariate sharpness: left out"):
        table, notes = covariate_table([Covariate("sharpness", "sharpness")], n=len(frame), columns=frame,
                                       image_paths=[""] * len(frame))
    assert table.empty and notes == [
        "covariate sharpness: left out, as some images are not at hand (an audit of predictions made elsewhere)"]


# --- the analysis on a task's units -------------------------------------------------------------------------------

class _Result:
    """The two tables of a GroupedMetrics that explain_gaps reads."""

    def __init__(self, disparities, groupings=("overall", "tone", "age")):
        self.disparities = pd.DataFrame(disparities, columns=["grouping", "metric", "kind", "group", "other"])
        self.groups = pd.DataFrame({"grouping": list(groupings)})


def _people(seed=0, n_images=500):
    """People in images; misses follow lighting only, and 'dark' people are more often in dim light."""
    rng = np.random.default_rng(seed)
    image = np.repeat(np.arange(n_images), rng.integers(1, 4, n_images))
    dim = (rng.random(n_images) < 0.4)[image]
    tone = np.where(rng.random(image.size) < np.where(dim, 0.7, 0.3), "dark", "light")
    missed = rng.random(image.size) < np.where(dim, 0.2, 0.04)
    age = rng.choice(["young", "middle", "old"], image.size)
    return pd.DataFrame({"group:tone": tone, "group:age": age, "image": image, "missed": missed,
                         "covariate:lighting": np.where(dim, "dim", "ok")})


MISS = Outcome(metric="recall@0.50", column="missed", verb="missed")


def _units(people, **kwargs):
    return unit_frame(outcomes={MISS: people["missed"].to_numpy()}, groups=people,
                      covariates=people[["covariate:lighting"]], image=people["image"].to_numpy(), unit="people",
                      **kwargs)


def test_people_in_images_get_a_gee_and_clustered_slices():
    people = _people()
    result = _Result([("tone", "recall@0.50", "to_reference", "dark", "light")])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        block = explain_gaps(_units(people), result, covariates=["lighting"], seed=1, n_boot=200)
    assert block["cluster"] == "image" and block["regression"] == "gee with image clusters (robust)"
    (tone,) = block["comparisons"]  # age: three groups and no reference
    assert (tone["attribute"], tone["group"], tone["reference"]) == ("tone", "dark", "light")
    assert tone["gap"]["regression_model"] == "gee" and tone["gap"]["raw_p"] < 0.05
    assert tone["gap"]["mh_gap_lower"] <= 0 <= tone["gap"]["mh_gap_upper"]
    assert tone["gap"]["share_lower"] <= 1 <= tone["gap"]["share_upper"]
    assert any("age: no reference group and more than two groups" in n for n in block["notes"])
    assert block["slices"][0]["config"]["split"] == "images"


def test_above_the_gee_limit_a_cluster_robust_glm(monkeypatch):
    monkeypatch.setattr(explain_module, "GEE_MAX_UNITS", 100)
    result = _Result([("tone", "recall@0.50", "to_reference", "dark", "light")])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        block = explain_gaps(_units(_people()), result, covariates=["lighting"], n_boot=0)
    assert block["regression"] == "glm with image clusters (robust)"
    assert block["comparisons"][0]["gap"]["regression_model"] == "glm"


def test_what_is_left_out_and_why():
    people = _people(n_images=200)
    people["group:votes"] = [["a", "b"]] * len(people)
    result = _Result([("tone", "recall@0.50", "to_reference", "dark", "light")])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        block = explain_gaps(_units(people), result, covariates=["lighting"], n_boot=0)
    assert any(n.startswith("votes: a unit may be in several groups") for n in block["notes"])
    assert "votes" not in block["slices"][0]["features"]
    # a metric the audit does not compare between groups is not explained
    block = explain_gaps(_units(people), _Result([]), covariates=["lighting"], n_boot=0)
    assert block["comparisons"] == [] and block["slices"] == []
    assert explain_gaps(None, result, covariates=["lighting"])["notes"] == [
        "This audit has no 0/1 outcome per unit (an error or a miss of a sample or a person) to take apart."]


def test_an_attribute_that_is_also_the_covariate_is_not_stratified_by_itself():
    people = _people(n_images=200)
    people["group:lighting"] = people["covariate:lighting"]
    result = _Result([("tone", "recall@0.50", "to_reference", "dark", "light")])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        block = explain_gaps(_units(people), result, covariates=["lighting"], n_boot=0)
    assert [c["attribute"] for c in block["comparisons"]] == ["tone"]
    assert block["slices"][0]["features"] == ["tone", "age", "lighting"]


def test_detection_people_explained_with_votes_box_size_and_image_statistics(tmp_path):
    # FACET-format: lighting comes as vote columns (lighting_*), read as the majority vote like an attribute
    from detection_helpers import make_facet_split, write_facet_card

    root = make_facet_split(tmp_path / "facet", n_images=60, with_images=True)
    card = write_facet_card(root, votes="majority", extra="covariates: [lighting, box_size, brightness]\n")
    out = tmp_path / "out"
    assert main(["run", "--data", str(card), "--predictions", str(root / "detections.json"), "--out", str(out),
                 "--n-boot", "100", "--n-perm", "20", "--no-data-audit", "-q"]) == 0
    document = json.loads((out / "results.json").read_text())
    jsonschema.validate(document, load_results_schema())
    block = document["explanations"]
    assert (block["unit"], block["cluster"], block["regression"]) == ("people", "image",
                                                                     "gee with image clusters (robust)")
    skin = [c for c in block["comparisons"] if c["attribute"] == "skin_tone"]
    assert [(c["metric"], c["verb"], c["group"], c["reference"]) for c in skin] == [
        ("recall@0.50", "missed", "darker", "lighter")]
    assert skin[0]["covariates"] == ["lighting", "box_size", "brightness"]
    assert skin[0]["gap"]["raw_gap"] > 0.3  # the fixture's detector misses 60% of darker people, 10% of lighter
    assert any(n.startswith("lighting: no reference group") for n in block["notes"])
    assert block["slices"][0]["config"]["split"] == "images"
    html = (out / "index.html").read_text(encoding="utf-8")
    assert "people in skin_tone group &#39;darker&#39; are still missed" in html


def test_segmentation_people_take_covariates_from_the_manifest(tmp_path, capsys):
    # every person is found at IoU 0.50 (darker ones at exactly 0.50): nothing to explain, and it says so
    from test_segmentation_e2e import make_split as segmentation_split

    split = segmentation_split(tmp_path, card_extra="covariates: [lighting, brightness]\n")
    out = tmp_path / "out"
    assert main(["run", "--data", str(split["card"]), "--predictions", str(split["pred"]), "--out", str(out),
                 "--n-boot", "50", "-q"]) == 0
    err = capsys.readouterr().err  # the undefined figures are warned about, one line each
    assert "regression: every outcome is 0, so the logistic model has no finite fit" in err
    assert "the raw gap is 0, so there is no share to explain" in err
    document = json.loads((out / "results.json").read_text())
    jsonschema.validate(document, load_results_schema())
    block = document["explanations"]
    (skin,) = block["comparisons"]
    assert (skin["metric"], skin["attribute"], skin["covariates"]) == ("person_recall@0.50", "skin_type",
                                                                       ["lighting", "brightness"])
    assert skin["gap"]["raw_gap"] == 0 and skin["gap"]["share_explained"] is None  # NaN in the engine, null here
    assert any("lighting=dim" in s["stratum"] for s in skin["strata"])
