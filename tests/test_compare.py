"""``audit compare``: matching, directions, paired vs unpaired bootstrap, the policy, outputs and bad input."""

from __future__ import annotations

import json
import warnings
import xml.etree.ElementTree as ET

import numpy as np
import pytest

from audit.cli import main
from audit.compare import compare_audits, load_policy
from audit.stats import ComparePolicy, compare_results, metric_direction
from compare_helpers import audit, population, predict, samples, write_audit

pytestmark = pytest.mark.filterwarnings("ignore::audit.stats.UndefinedMetricWarning")


@pytest.fixture(scope="module")
def base():
    pop = population(2000, seed=1)
    pred = predict(pop, error=0.12, seed=2)
    return pop, pred, audit(pop, pred)


def _row(comparison, *, metric, grouping="overall", group="all", cls="", item="metric", kind=""):
    rows = comparison.rows
    hit = rows[(rows["item"] == item) & (rows["metric"] == metric) & (rows["grouping"] == grouping)
               & (rows["group"] == group) & (rows["class"] == cls) & (rows["kind"] == kind)]
    assert len(hit) == 1, hit
    return hit.iloc[0]


def test_directions():
    assert [metric_direction(m) for m in ("error_rate", "fpr", "fnr", "fdr", "overall_error", "abstention_rate",
                                          "ece")] == ["lower"] * 7
    assert [metric_direction(m) for m in ("accuracy", "tpr", "ppv", "tnr", "npv", "roc_auc")] == ["higher"] * 6
    assert metric_direction("selection_rate") == ""
    assert metric_direction("miou", higher_is_better=["miou"]) == "higher"


def test_identical_audits_pass_with_zero_changes(base):
    pop, pred, result = base
    comparison = compare_results(result, result, baseline_samples=samples(pop, pred),
                                 candidate_samples=samples(pop, pred))
    assert comparison.passed and comparison.mode == "paired"
    matched = comparison.rows[comparison.rows["status"].isin(["ok", "small_n", "info"])]
    assert len(matched) == len(comparison.rows)
    assert np.allclose(matched["change"].dropna(), 0.0)


def test_planted_worsening_fails(base):
    pop, pred, result = base
    # darker skin: error 12% -> ~30%
    rng = np.random.default_rng(5)
    darker = (pop["groups"]["skin_type"] == "darker").to_numpy()
    flip = darker & (pred == pop["y"]) & (rng.random(len(pred)) < 0.2)
    worse = np.where(flip, 1 - pred, pred)
    candidate = audit(pop, worse)
    comparison = compare_results(result, candidate, baseline_samples=samples(pop, pred),
                                 candidate_samples=samples(pop, worse))
    assert not comparison.passed
    error = _row(comparison, metric="error_rate", grouping="skin_type", group="darker")
    assert error["status"] == "regression" and error["direction"] == "lower"
    assert error["change"] > 0.1 and error["change_lower"] > 0.08  # the interval excludes no change
    accuracy = _row(comparison, metric="accuracy", grouping="skin_type", group="darker")
    assert accuracy["status"] == "regression" and accuracy["change"] < -0.1  # a drop is the worsening here
    gap = _row(comparison, item="disparity", kind="between_groups", metric="error_rate", grouping="skin_type", group="")
    assert gap["status"] == "regression" and gap["worsening"] > 0.1
    # lighter skin did not change at all
    assert _row(comparison, metric="error_rate", grouping="skin_type", group="lighter")["status"] == "ok"
    assert "error rate (error_rate) skin_type=darker" in comparison.summary(limit=100)
    assert "  metric regressions (" in comparison.summary()  # named, even when the disparities fill the lines
    # the disparity regressions come first, then the metric regressions
    lines = comparison.summary(limit=100).splitlines()
    heads = [i for i, line in enumerate(lines) if line.startswith("  ") and not line.startswith("    ")]
    assert [lines[i].split(" (")[0].strip() for i in heads] == ["disparity regressions", "metric regressions"]
    assert all(line.strip().startswith("disparity ") for line in lines[heads[0] + 1:heads[1]])
    assert lines[1].startswith("  disparity regressions") and lines[2].startswith("    disparity ")


def test_improvement_is_not_a_regression(base):
    pop, pred, result = base
    better = np.where(pop["groups"]["skin_type"].to_numpy() == "darker", pop["y"], pred)  # darker: no errors
    comparison = compare_results(result, audit(pop, better), baseline_samples=samples(pop, pred),
                                 candidate_samples=samples(pop, better))
    assert _row(comparison, metric="error_rate", grouping="skin_type", group="darker")["status"] == "improved"
    assert _row(comparison, metric="accuracy", grouping="skin_type", group="darker")["status"] == "improved"
    # the lighter-vs-darker gap grows the other way round, which is a disparity regression
    gap = _row(comparison, item="disparity", kind="between_groups", metric="error_rate", grouping="skin_type", group="")
    assert gap["baseline"] < 0.02 < gap["candidate"]


def test_noise_passes_paired_and_unpaired(base):
    pop, pred, result = base
    # the same model quality, predictions redrawn: a retrain that changed nothing systematic
    noisy = predict(pop, error=0.12, seed=99)
    paired = compare_results(result, audit(pop, noisy), baseline_samples=samples(pop, pred),
                             candidate_samples=samples(pop, noisy))
    assert paired.mode == "paired" and paired.passed, paired.summary()
    assert paired.counts()["within_noise"] > 0  # it did move beyond the tolerance somewhere, by chance
    # a fresh sample of the same population
    other = population(2000, seed=7, start=5000)
    other_pred = predict(other, error=0.12, seed=8)
    unpaired = compare_results(result, audit(other, other_pred), baseline_samples=samples(pop, pred),
                               candidate_samples=samples(other, other_pred))
    assert unpaired.mode == "unpaired" and unpaired.passed, unpaired.summary()
    assert "different samples (2000 ids only in the baseline, 2000 only in the candidate)" == unpaired.reason


def test_paired_detects_a_small_consistent_change_that_unpaired_misses(base):
    pop, pred, result = base
    # 2% of the correct predictions become wrong: overall error 12% -> ~13.8%
    rng = np.random.default_rng(11)
    flip = (pred == pop["y"]) & (rng.random(len(pred)) < 0.02)
    worse = np.where(flip, 1 - pred, pred)
    candidate = audit(pop, worse)
    policy = ComparePolicy(max_drop=0.005)
    kwargs = dict(policy=policy, baseline_samples=samples(pop, pred), candidate_samples=samples(pop, worse))
    paired = compare_results(result, candidate, **kwargs)
    unpaired = compare_results(result, candidate, paired=False, **kwargs)
    reported = compare_results(result, candidate, policy=policy)
    assert (paired.mode, unpaired.mode, reported.mode) == ("paired", "unpaired", "unpaired (reported intervals)")
    assert unpaired.reason == "pairing switched off"
    p_row = _row(paired, metric="error_rate")
    u_row = _row(unpaired, metric="error_rate")
    r_row = _row(reported, metric="error_rate")
    assert p_row["change"] == u_row["change"] == r_row["change"] > 0.01
    assert p_row["method"] == "paired bootstrap" and u_row["method"] == "unpaired bootstrap"
    assert p_row["status"] == "regression"
    assert u_row["status"] == "within_noise" and r_row["status"] == "within_noise"
    # the paired interval is much narrower: the unchanged samples cancel
    assert (p_row["change_upper"] - p_row["change_lower"]) < 0.5 * (u_row["change_upper"] - u_row["change_lower"])
    assert p_row["change_lower"] > 0 > u_row["change_lower"]
    assert not paired.passed and unpaired.passed and reported.passed


def test_policy_limits_min_n_and_significance(base):
    pop, pred, result = base
    noisy = predict(pop, error=0.12, seed=99)
    candidate = audit(pop, noisy)
    kwargs = dict(baseline_samples=samples(pop, pred), candidate_samples=samples(pop, noisy))
    strict = compare_results(result, candidate, policy=ComparePolicy(significant_only=False), **kwargs)
    assert not strict.passed  # any worsening beyond 0.01 fails when significance is not required
    assert set(strict.regressions["status"]) == {"regression"}
    loose = compare_results(result, candidate, policy=ComparePolicy(significant_only=False, max_drop=0.2,
                                                                    max_disparity_growth=0.2), **kwargs)
    assert loose.passed
    per_metric = ComparePolicy(significant_only=False, max_drop={"default": 0.2, "error_rate": 0.0},
                               max_disparity_growth=1.0)
    only_error = compare_results(result, candidate, policy=per_metric, **kwargs)
    assert set(only_error.regressions["metric"]) == {"error_rate"}
    small = compare_results(result, candidate, policy=ComparePolicy(min_n=10_000, significant_only=False), **kwargs)
    assert small.passed and (small.rows["status"] == "small_n").any()
    assert not (small.rows["status"] == "regression").any()


def test_unmatched_rows_are_reported_not_failed(base):
    pop, pred, result = base
    scores = np.column_stack([1 - pred * 0.8 - 0.1, pred * 0.8 + 0.1])
    with_scores = audit(pop, pred, scores=scores)
    comparison = compare_results(result, with_scores)
    only = comparison.rows[comparison.rows["status"] == "only_candidate"]
    assert set(only["metric"]) == {"roc_auc", "ece"}
    assert comparison.passed


def test_samples_that_do_not_match_the_results_are_rejected(base):
    pop, pred, result = base
    other = predict(pop, error=0.3, seed=3)
    with pytest.raises(ValueError) as info:
        compare_results(result, result, baseline_samples=samples(pop, other), candidate_samples=samples(pop, pred))
    assert str(info.value) == (
        "accuracy gender=female: the per-sample statistics give 0.685516 (baseline) and 0.87004 (candidate), "
        "the results report 0.87004 and 0.87004; expected the samples of the same audits"
    )


def test_nothing_in_common_is_an_error(base):
    _, _, result = base
    other = result.to_dict()
    for row in other["metrics"]:
        row["metric"] = "x_" + row["metric"]
    other["disparities"] = []
    with pytest.raises(ValueError) as info:
        compare_results(result, other)
    assert str(info.value) == (
        "expected the two audits to share at least one metric of one group, found none in common"
    )


def test_paired_required_but_samples_differ(base):
    pop, pred, result = base
    half = {"ids": pop["ids"][:1000], "y": pop["y"][:1000], "groups": pop["groups"].iloc[:1000]}
    with pytest.raises(ValueError) as info:
        compare_results(result, audit(half, pred[:1000]), baseline_samples=samples(pop, pred),
                        candidate_samples=samples(half, pred[:1000]), paired=True)
    assert str(info.value) == (
        "paired comparison: expected the same sample ids, found 1000 only in the baseline and 0 only in the candidate"
    )


# --- the CLI and its outputs ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def audits(tmp_path_factory, base):
    pop, pred, _ = base
    root = tmp_path_factory.mktemp("audits")
    rng = np.random.default_rng(5)
    darker = (pop["groups"]["skin_type"] == "darker").to_numpy()
    worse = np.where(darker & (pred == pop["y"]) & (rng.random(len(pred)) < 0.2), 1 - pred, pred)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return {
            "base": write_audit(root / "base", pop, pred),
            "same": write_audit(root / "same", pop, pred),
            "worse": write_audit(root / "worse", pop, worse),
            "worse_no_samples": write_audit(root / "worse_no_samples", pop, worse, with_samples=False),
            "root": root,
        }


def test_cli_exit_codes_and_outputs(audits, capsys):
    out = audits["root"] / "cmp_fail"
    assert main(["compare", str(audits["base"]), str(audits["worse"]), "--out", str(out), "--n-boot", "300"]) == 1
    text = capsys.readouterr().out
    assert text.startswith("audit compare: FAIL (paired: both audits scored the same 2000 samples);")
    document = json.loads((out / "comparison.json").read_text())
    assert document["passed"] is False and document["mode"] == "paired"
    assert document["policy"]["n_boot"] == 300
    regressions = [r for r in document["rows"] if r["status"] == "regression"]
    assert regressions and all(r["change_lower"] is not None for r in regressions)
    suite = ET.parse(out / "comparison.xml").getroot().find("testsuite")
    assert int(suite.get("failures")) == len(regressions) == len(suite.findall("testcase/failure"))
    # JUnit: failures first, disparities before metrics
    cases = suite.findall("testcase")
    kinds = [("disparity" if c.get("classname").startswith("audit.compare.disparity") else "metric",
              c.find("failure") is not None) for c in cases]
    failing = [k for k, failed in kinds if failed]
    assert kinds[:len(failing)] == [(k, True) for k in failing] and failing == sorted(failing)
    assert "disparity" in failing and "metric" in failing
    assert text.splitlines()[1].startswith("  disparity regressions")
    assert suite.find("properties/property[@name='mode']").get("value") == "paired"
    html = (out / "comparison.html").read_text()
    assert "FAIL" in html and "paired" in html and "error_rate" in html

    # default output directory: CANDIDATE/compare; a results.json path works as well as a directory
    assert main(["compare", str(audits["base"] / "results.json"), str(audits["same"]), "-q"]) == 0
    assert capsys.readouterr().out.startswith("audit compare: PASS (paired")
    assert (audits["same"] / "compare" / "comparison.xml").is_file()

    assert main(["compare", str(audits["base"]), str(audits["worse_no_samples"]), "-q", "--out", str(out)]) == 1
    assert "(unpaired (reported intervals): no per-sample statistics for the candidate)" in capsys.readouterr().out


def test_cli_policy_file_and_flags(audits, tmp_path, capsys):
    policy = tmp_path / "policy.yaml"
    policy.write_text("max_drop:\n  default: 0.5\nmax_disparity_growth: 0.5\nmin_n: 40\n")
    args = ["compare", str(audits["base"]), str(audits["worse"]), "--out", str(tmp_path / "o"), "-q"]
    assert main(args + ["--policy", str(policy)]) == 0
    assert main(args + ["--policy", str(policy), "--max-drop-metric", "error_rate=0.05"]) == 1
    document = json.loads((tmp_path / "o" / "comparison.json").read_text())
    assert document["policy"]["max_drop"] == {"default": 0.5, "error_rate": 0.05}
    assert document["policy"]["min_n"] == 40
    assert {r["metric"] for r in document["rows"] if r["status"] == "regression"} == {"error_rate"}
    capsys.readouterr()


def test_html_escapes_group_labels(tmp_path):
    from audit.compare import render_comparison_html

    pop = population(300, seed=4)
    pop["groups"]["gender"] = np.where(np.arange(300) % 2, "<script>alert(1)</script>", "female")
    pred = predict(pop, seed=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = audit(pop, pred, n_boot=50)
    html = render_comparison_html(compare_audits(result, result, policy=ComparePolicy(n_boot=50)))
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


@pytest.mark.parametrize(
    "make, expected",
    [
        (lambda root: root / "nope", "error: baseline: expected an audit output directory or a results.json file, "
                                     "found no such path '{root}/nope'"),
        (lambda root: root, "error: baseline: expected results.json in directory '{root}', found none"),
        (lambda root: _write(root / "bad.json", "{oops"),
         "error: baseline: '{root}/bad.json' is not valid JSON (line 1, column 2: Expecting property name enclosed "
         "in double quotes)"),
        (lambda root: _write(root / "other.json", '{"schema_version": 1, "provenance": {}}'),
         "error: baseline: '{root}/other.json' is not an audit results.json: at top level: 'results' is a "
         "required property"),
    ],
)
def test_bad_audit_paths(tmp_path, audits, capsys, make, expected):
    path = make(tmp_path)
    assert main(["compare", str(path), str(audits["same"]), "--out", str(tmp_path / "o")]) == 2
    captured = capsys.readouterr()
    assert captured.err == expected.format(root=tmp_path) + "\n"
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize(
    "text, expected",
    [
        ("max_drops: 0.1\n", "unknown key 'max_drops', expected one of max_drop, max_disparity_growth, min_n, "
                             "significant_only, alpha, correction, confidence, n_boot, seed, metrics, "
                             "disparity_kinds, higher_is_better, lower_is_better"),
        ("max_drop:\n  accuracy: lots\n", "max_drop['accuracy']: expected a finite number >= 0, found 'lots'"),
        ("min_n: -1\n", "min_n: expected an integer >= 0, found -1"),
        ("significant_only: maybe\n", "significant_only: expected true or false, found 'maybe'"),
        ("alpha: 2\n", "alpha: expected a number in (0, 1), found 2"),
        ("disparity_kinds: [between]\n", "disparity_kinds: expected names among ['between_groups', 'to_overall', "
                                         "'to_overall_max', 'to_reference'], found 'between'"),
        ("- 1\n- 2\n", "expected a mapping of policy keys, found list"),
        ("a: [\n", "is not valid YAML (line 2, column 1)"),
    ],
)
def test_bad_policy_files(tmp_path, audits, capsys, text, expected):
    policy = _write(tmp_path / "p.yaml", text)
    args = ["compare", str(audits["base"]), str(audits["same"]), "--policy", str(policy), "--out", str(tmp_path / "o")]
    assert main(args) == 2
    assert capsys.readouterr().err == f"error: policy '{policy}': {expected}\n"


def test_missing_policy_file(tmp_path):
    from audit.errors import CompareError

    with pytest.raises(CompareError) as info:
        load_policy(tmp_path / "none.yaml")
    assert str(info.value) == f"policy '{tmp_path / 'none.yaml'}': expected a YAML policy file, found no such file"


def test_bad_flag_value(audits, capsys):
    with pytest.raises(SystemExit) as info:
        main(["compare", str(audits["base"]), str(audits["same"]), "--max-drop-metric", "accuracy"])
    assert info.value.code == 2
    assert "argument --max-drop-metric: expected METRIC=NUMBER, found 'accuracy'" in capsys.readouterr().err


def _write(path, text):
    path.write_text(text)
    return path
