"""pytest plugin: assert that an audit did not regress against a stored baseline.

Registered through the ``pytest11`` entry point, so installing ``audit`` makes
it available in every test suite::

    def test_no_fairness_regression(audit_regression):
        run = run_audit(model="models/X.md", data="data_cards/Y.md", out_dir=tmp_dir)   # or a path
        audit_regression.check(run, "baselines/X", max_drop=0.02)

``check`` compares the candidate (an audit output directory, a
``results.json``, an ``AuditRun`` or a ``GroupedMetrics``) with the baseline
directory (relative paths are relative to the test file) under a policy
(:func:`audit.compare.load_policy`'s keywords, or ``policy=`` a YAML file or a
``ComparePolicy``), and fails the test with the regressions listed.

``pytest --audit-update-baseline`` stores the candidate as the new baseline
instead (``results.json`` and, when known, ``samples.parquet``). A missing
baseline fails the test and says how to create it.
"""

from __future__ import annotations

from pathlib import Path

import pytest

__all__ = ["AuditRegression"]

OPTION = "--audit-update-baseline"


def pytest_addoption(parser):
    group = parser.getgroup("audit", "fairness audit regression gates")
    group.addoption(
        OPTION, action="store_true", default=False, dest="audit_update_baseline",
        help="store each audit checked with the audit_regression fixture as its new baseline instead of comparing",
    )


def pytest_configure(config):
    config.addinivalue_line("markers", "audit_regression: a test that compares an audit with a stored baseline")
    config._audit_updated_baselines = []


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    updated = getattr(config, "_audit_updated_baselines", [])
    if updated:
        terminalreporter.section("audit baselines")
        for path in updated:
            terminalreporter.write_line(f"updated audit baseline {path}")


class AuditRegression:
    """What the ``audit_regression`` fixture returns."""

    def __init__(self, *, update: bool, base_dir: Path, config=None):
        self.update = update
        self.base_dir = Path(base_dir)
        self._config = config
        self.comparisons = []

    def baseline_path(self, baseline) -> Path:
        path = Path(baseline)
        return path if path.is_absolute() else self.base_dir / path

    def check(self, candidate, baseline, *, policy=None, paired=None, candidate_samples=None, out=None,
              **policy_options):
        """Compare ``candidate`` with the stored ``baseline``; fail the test on a regression.

        Returns the :class:`~audit.stats.Comparison` (``None`` when the baseline was updated).
        """
        from .compare import compare_audits, load_policy, store_baseline, write_comparison
        from .stats import ComparePolicy

        path = self.baseline_path(baseline)
        if self.update:
            store_baseline(candidate, path, samples=candidate_samples)
            if self._config is not None:
                self._config._audit_updated_baselines.append(str(path))
            return None
        if not (path / "results.json").is_file() and not path.is_file():
            pytest.fail(
                f"no stored audit baseline at {path}; run pytest {OPTION} to create it from this candidate",
                pytrace=False,
            )
        if not isinstance(policy, ComparePolicy):
            policy = load_policy(policy, **policy_options)
        elif policy_options:
            raise TypeError("pass either a ComparePolicy or policy keywords, not both")
        comparison = compare_audits(path, candidate, policy=policy, paired=paired,
                                    candidate_samples=candidate_samples)
        self.comparisons.append(comparison)
        if out is not None:
            write_comparison(comparison, out)
        if not comparison.passed:
            pytest.fail(comparison.summary(), pytrace=False)
        return comparison


@pytest.fixture
def audit_regression(request) -> AuditRegression:
    """Compare audits with stored baselines (``check``); ``--audit-update-baseline`` rewrites them."""
    return AuditRegression(
        update=bool(request.config.getoption("audit_update_baseline")),
        base_dir=Path(request.path).parent,
        config=request.config,
    )
