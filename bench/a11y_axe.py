"""Accessibility run with axe-core on a three-task report (classification, detection, segmentation).

Given a path (``python bench/a11y_axe.py reports/demo/index.html``, the page ``audit demo`` writes), checks
that page; otherwise renders the report from synthetic audits (audit.report._examples). Opens it in the system Chromium through
chromedriver with the axe CLI (npm ``@axe-core/cli``), WCAG 2.0/2.1/2.2 A and AA rules plus best practices,
and prints every violation. Exit 1 when a ``color-contrast`` or ``target-size`` violation is found (the
issue's two Lighthouse failures), 0 otherwise; skipped with the reason when the tools are missing.

Setup (once; the chromedriver npm package downloads from the internet at install time, so skip that and
use Debian's):

    apt-get install -y chromium chromium-driver
    cd bench && CHROMEDRIVER_SKIP_DOWNLOAD=true npm install --no-save @axe-core/cli

    python bench/a11y_axe.py            # or AXE=/path/to/axe python bench/a11y_axe.py
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path

GATED = ("color-contrast", "target-size")
HERE = Path(__file__).resolve().parent


def _axe() -> str | None:
    for candidate in (os.environ.get("AXE"), str(HERE / "node_modules" / ".bin" / "axe"), shutil.which("axe")):
        if candidate and Path(candidate).is_file():
            return candidate
    return None


def _synthetic_report() -> str:
    from audit.report import TaskInput, build_report, render_report
    from audit.report._examples import classification_example, detection_example, segmentation_example

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cls, preds, samples = classification_example(n=600, n_boot=50)
        det = detection_example(n_images=120, n_boot=20)
        seg = segmentation_example(n_images=120, n_boot=20)
    return render_report(build_report([TaskInput(cls, preds, samples), TaskInput(det), TaskInput(seg)],
                                      thumbnails=False))


def main() -> int:
    axe, driver = _axe(), shutil.which("chromedriver")
    if axe is None or driver is None:
        missing = "the axe CLI (npm @axe-core/cli)" if axe is None else "chromedriver (apt chromium-driver)"
        print(f"skipped: {missing} is not installed; see the setup in this script's docstring")
        return 0
    tmp = Path(tempfile.mkdtemp(prefix="axe-"))
    if len(sys.argv) > 1:
        page, what = Path(sys.argv[1]).resolve(), sys.argv[1]
    else:
        page, what = tmp / "index.html", "a synthetic three-task report"
        page.write_text(_synthetic_report(), encoding="utf-8")
    proc = subprocess.run([axe, page.as_uri(), "--chromedriver-path", driver,
                           "--chrome-options=headless=new,no-sandbox,disable-gpu",
                           "--tags", "wcag2a,wcag2aa,wcag21a,wcag21aa,wcag22aa,best-practice",
                           "--dir", str(tmp), "--save", "axe.json"], capture_output=True, text=True, timeout=600)
    out = tmp / "axe.json"
    if not out.is_file():
        print("axe did not run:", (proc.stdout + proc.stderr)[-2000:])
        return 1
    result = json.loads(out.read_text(encoding="utf-8"))
    result = result[0] if isinstance(result, list) else result
    print(f"axe-core {result.get('testEngine', {}).get('version', '?')} on {what} "
          f"({page.stat().st_size:,} bytes): {len(result['passes'])} rules pass, "
          f"{len(result['violations'])} rules violated, {len(result['incomplete'])} need review")
    for v in result["violations"]:
        print(f"  violation {v['id']} ({v['impact']}): {len(v['nodes'])} element(s): {v['help']}")
    for v in result["incomplete"]:
        print(f"  needs review {v['id']}: {len(v['nodes'])} element(s): {v['help']}")
    for rule in GATED:
        state = ("violated" if any(v["id"] == rule for v in result["violations"]) else
                 "passes" if any(p["id"] == rule for p in result["passes"]) else "not applicable / needs review")
        print(f"  {rule}: {state}")
    return 1 if any(v["id"] in GATED for v in result["violations"]) else 0


if __name__ == "__main__":
    sys.exit(main())
