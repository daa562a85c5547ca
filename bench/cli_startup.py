"""Benchmark (issue #19): `audit --help` and `audit report DIR` as whole processes, wall and CPU.

A finished classification audit is made first, untimed: ``audit run --predictions`` on a synthetic split of
2,000 samples (64 x 64 PNG images, 2 attributes and their intersection, class scores; the report has its
threshold sweep, calibration, worst-error thumbnails and the dataset section). Then each command runs
``--repeat`` times as a fresh subprocess; the median wall and CPU (user + system, children included, from
``getrusage(RUSAGE_CHILDREN)`` in a wrapper process) are printed with the range. A last run of each checks
whether torch was imported (``sys.modules`` at exit).

Targets: ``audit report DIR`` <= 1.5 s without importing torch; ``audit --help`` <= 0.3 s.

    python bench/cli_startup.py [--samples 2000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from _cards import write_classification_card  # bench/ is on sys.path when a bench runs

WRAPPER = ("import resource, subprocess, sys, json, time; t = time.perf_counter(); "
           "p = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL); "
           "u = resource.getrusage(resource.RUSAGE_CHILDREN); "
           "print(json.dumps({'rc': p.returncode, 'cpu': u.ru_utime + u.ru_stime, "
           "'wall': time.perf_counter() - t}))")

TORCH_CHECK = ("import sys; sys.argv = ['audit'] + sys.argv[1:]; from audit.cli import main\n"
               "try:\n    main(sys.argv[1:])\nexcept SystemExit:\n    pass\n"
               "print('TORCH', 'torch' in sys.modules, file=sys.stderr)")


def make_audit(root: Path, n: int) -> Path:
    import pandas as pd
    from PIL import Image

    rng = np.random.default_rng(0)
    (root / "images").mkdir(parents=True)
    label = rng.integers(0, 2, n)
    skin = rng.choice(["lighter", "darker"], n)
    gender = rng.choice(["female", "male"], n)
    p_dog = np.clip(np.where(label == 1, 0.7, 0.3) + rng.normal(0, 0.25, n) * np.where(skin == "darker", 1.4, 1),
                    0.01, 0.99)
    rows = []
    for i in range(n):
        name = f"images/{i:05d}.png"
        Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(root / name)
        rows.append({"id": f"s{i:05d}", "file": name, "label": ["cat", "dog"][label[i]], "skin": skin[i],
                     "gender": gender[i]})
    pd.DataFrame(rows).to_csv(root / "manifest.csv", index=False)
    # ids under 'sample_id' (the card's id column, 'id', would do as well: audit report records which one)
    pd.DataFrame({"sample_id": [r["id"] for r in rows], "score_cat": 1 - p_dog, "score_dog": p_dog}).to_csv(
        root / "predictions.csv", index=False)
    write_classification_card(root, "CLI startup bench")
    out = root / "out"
    subprocess.run([sys.executable, "-m", "audit", "run", "--predictions", str(root / "predictions.csv"), "--data",
                    str(root / "data.md"), "--out", str(out), "-q"], check=True, stderr=subprocess.DEVNULL)
    return out


def measure(command: list[str]) -> dict:
    done = subprocess.run([sys.executable, "-c", WRAPPER, *command], stdout=subprocess.PIPE, text=True, check=True)
    result = json.loads(done.stdout.strip().splitlines()[-1])
    if result["rc"]:
        raise SystemExit(f"failed (exit {result['rc']}): {' '.join(command)}")
    return result


def imports_torch(args: list[str]) -> bool:
    done = subprocess.run([sys.executable, "-c", TORCH_CHECK, *args], stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, text=True)
    return "TORCH True" in done.stderr


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args(argv)
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        out = make_audit(Path(tmp), args.samples)
        commands = {"audit --help": ["--help"], "audit report DIR": ["report", str(out), "-q"]}
        rows = []
        for name, cli in commands.items():
            runs = [measure([sys.executable, "-m", "audit", *cli]) for _ in range(args.repeat)]
            rows.append((name, runs, imports_torch(cli)))
    print(f"finished classification audit: {args.samples:,} samples (audit run --predictions, thumbnails on); "
          f"{args.repeat} runs each, median (min-max); load average {load_before:.1f} at the start, "
          f"{os.getloadavg()[0]:.1f} at the end")
    print()
    print("| command | wall s | CPU s | imports torch | target |")
    print("|---|---:|---:|---|---|")
    targets = {"audit --help": 0.3, "audit report DIR": 1.5}
    for name, runs, torch in rows:
        wall = [r["wall"] for r in runs]
        cpu = [r["cpu"] for r in runs]
        met = statistics.median(wall) <= targets[name] and not torch
        print(f"| `{name}` | {statistics.median(wall):.2f} ({min(wall):.2f}-{max(wall):.2f}) | "
              f"{statistics.median(cpu):.2f} ({min(cpu):.2f}-{max(cpu):.2f}) | {'yes' if torch else 'no'} | "
              f"<= {targets[name]} s: {'met' if met else 'NOT met'} |")


if __name__ == "__main__":
    main()
