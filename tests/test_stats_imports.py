"""``import audit.stats`` loads numpy and pandas, not scipy.stats or statsmodels (issue #19).

scipy.stats alone took about half of ``import audit.stats``; the functions that
need it import it themselves (``# lazy (see audit.stats)``).
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import audit


def _modules_after(code: str) -> list[str]:
    """Modules loaded by a fresh interpreter after ``code``, importing the ``audit`` these tests import."""
    script = f"import json, sys\n{code}\nprint(json.dumps(sorted(sys.modules)))"
    env = {**os.environ, "PYTHONPATH": str(Path(audit.__file__).resolve().parents[1])}
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, env=env)
    return json.loads(out.stdout)


def _heavy(modules: list[str]) -> list[str]:
    return [m for m in modules
            if m.split(".")[0] == "statsmodels" or m == "scipy.stats" or m.startswith("scipy.stats.")]


def test_import_audit_stats_loads_no_scipy_stats_or_statsmodels():
    loaded = _modules_after("import audit.stats")
    assert "audit.stats._engine" in loaded
    assert _heavy(loaded) == []


def test_the_lazy_imports_load_on_first_use():
    code = ("from audit.stats import adjust_p_values, proportion_interval\n"
            "assert proportion_interval([3], [10], method='wilson')[0][0] > 0\n"
            "adjust_p_values([0.01, 0.5], method='holm', alpha=0.05)")
    loaded = _modules_after(code)
    assert "scipy.stats" in loaded and "statsmodels.stats.multitest" in loaded
