"""The pytest plugin, run in a throwaway pytest session with ``pytester``."""

from __future__ import annotations

import shutil
import warnings

import numpy as np
import pytest

from compare_helpers import population, predict, write_audit

pytest_plugins = ["pytester"]

# other installed plugins only slow the nested sessions down
QUIET = ("-p", "no:hypothesispytest", "-p", "no:benchmark", "-p", "no:cacheprovider")


@pytest.fixture(scope="module")
def audit_dirs(tmp_path_factory):
    root = tmp_path_factory.mktemp("plugin_audits")
    pop = population(1500, seed=1)
    pred = predict(pop, error=0.12, seed=2)
    rng = np.random.default_rng(5)
    darker = (pop["groups"]["skin_type"] == "darker").to_numpy()
    worse = np.where(darker & (pred == pop["y"]) & (rng.random(len(pred)) < 0.2), 1 - pred, pred)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return {"good": write_audit(root / "good", pop, pred), "worse": write_audit(root / "worse", pop, worse)}


TEST_FILE = """
import shutil

def test_fairness_does_not_regress(audit_regression):
    audit_regression.check({candidate!r}, "baselines/model", max_drop=0.02, n_boot=300)
"""


def test_plugin_is_registered_by_entry_point(pytester):
    result = pytester.runpytest("--help", *QUIET)
    result.stdout.fnmatch_lines(["*--audit-update-baseline*"])
    pytester.makepyfile("def test_fixture(audit_regression):\n    assert audit_regression.update is False\n")
    pytester.runpytest(*QUIET).assert_outcomes(passed=1)


def test_baseline_missing_update_then_compare(pytester, audit_dirs):
    candidate = pytester.path / "candidate"
    shutil.copytree(audit_dirs["good"], candidate)
    pytester.makepyfile(test_gate=TEST_FILE.format(candidate=str(candidate)))

    # no stored baseline: the test fails and says how to create one
    result = pytester.runpytest(*QUIET)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([
        f"*no stored audit baseline at {pytester.path / 'baselines' / 'model'}; "
        "run pytest --audit-update-baseline to create it from this candidate*"
    ])

    # --audit-update-baseline stores it
    result = pytester.runpytest("--audit-update-baseline", *QUIET)
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*updated audit baseline*baselines*model*"])
    stored = pytester.path / "baselines" / "model"
    assert (stored / "results.json").is_file() and (stored / "samples.parquet").is_file()

    # the same audit passes
    pytester.runpytest(*QUIET).assert_outcomes(passed=1)

    # a planted worsening fails, naming the metric and group, paired on the same samples
    shutil.rmtree(candidate)
    shutil.copytree(audit_dirs["worse"], candidate)
    result = pytester.runpytest(*QUIET)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([
        "*audit compare: FAIL (paired: both audits scored the same 1500 samples)*",
        "*skin_type=darker*",
    ])

    # accepting the new audit: update the baseline, and it passes again
    pytester.runpytest("--audit-update-baseline", *QUIET).assert_outcomes(passed=1)
    pytester.runpytest(*QUIET).assert_outcomes(passed=1)


def test_in_memory_results_and_assert_helper(pytester):
    pytester.makepyfile(
        """
        import sys
        sys.path.insert(0, {tests!r})
        import warnings
        import numpy as np
        import pytest
        from audit.compare import assert_no_regression
        from compare_helpers import audit, population, predict

        warnings.simplefilter("ignore")
        POP = population(800, seed=1)

        def test_grouped_metrics(audit_regression):
            result = audit(POP, predict(POP, seed=2), n_boot=50)
            audit_regression.check(result, "baselines/engine", n_boot=200)

        def test_assert_helper():
            good = audit(POP, predict(POP, seed=2), n_boot=50)
            bad = audit(POP, predict(POP, error=0.4, seed=2), n_boot=50)
            assert_no_regression(good, good)
            with pytest.raises(AssertionError, match="unpaired .reported intervals."):
                assert_no_regression(bad, good)
        """.format(tests=str(__import__("pathlib").Path(__file__).parent))
    )
    pytester.runpytest("--audit-update-baseline", *QUIET).assert_outcomes(passed=2)
    pytester.runpytest(*QUIET).assert_outcomes(passed=2)
