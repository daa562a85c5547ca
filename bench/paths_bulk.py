"""Benchmark: containment of a manifest's image paths, the whole column at once against name by name.

- ours: ``Root.contain_all`` (names grouped by directory; each directory
  resolved once and listed once for symlinks).
- reference: ``Root.check``, the per-row check (a ``normpath``, a join and an
  ``lstat`` per name, ``realpath`` cached per directory).

Both run on the same names under a fresh ``Root`` each time (no shared cache),
alternating, ``--repeats`` times; the table gives the median and the range.
Both must return the same paths. Making the tree is not timed.

Layouts: files spread over directories with no symlink, and the same with one
symlink (pointing inside the root) in every tenth directory: its names then
take the per-row path.

    python bench/paths_bulk.py [--rows 200000] [--per-dir 1000] [--repeats 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

from audit._paths import Root


def make_tree(base: Path, rows: int, per_dir: int) -> list[str]:
    names = []
    for d in range((rows + per_dir - 1) // per_dir):
        directory = base / f"d{d:04d}"
        directory.mkdir(parents=True)
        for f in range(min(per_dir, rows - d * per_dir)):
            name = f"d{d:04d}/img{f:06d}.jpg"
            (base / name).touch()
            names.append(name)
    return names


def add_links(base: Path, names: list[str], every: int) -> list[str]:
    """One symlink to a file inside the root in every ``every``-th directory; its name replaces a row."""
    directories = sorted({n.split("/")[0] for n in names})
    out = list(names)
    for directory in directories[::every]:
        link = f"{directory}/latest.jpg"
        os.symlink(base / names[0], base / link)
        out[names.index(f"{directory}/img000000.jpg")] = link
    return out


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def compare(root: Path, names: list[str], repeats: int):
    where = lambda i: f"manifest.csv: row {i + 1}"  # noqa: E731
    ours = Root(root).contain_all(names, where=where)
    reference = Root(root).check(names, where=where)
    assert ours == reference, "contain_all and check disagree"
    t_ours, t_ref = [], []
    for _ in range(repeats):
        t_ours.append(timed(lambda: Root(root).contain_all(names, where=where)))
        t_ref.append(timed(lambda: Root(root).check(names, where=where)))
    return t_ours, t_ref


def spread(times: list[float]) -> str:
    return f"{statistics.median(times):.3f} s ({min(times):.3f}-{max(times):.3f})"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--per-dir", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    load_at_start = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "images"
        names = make_tree(root, args.rows, args.per_dir)
        results = [("no symlink", compare(root, names, args.repeats))]
        linked = add_links(root, names, every=10)
        results.append(("a symlink in every 10th directory", compare(root, linked, args.repeats)))
    print(f"machine: {os.cpu_count()} cores, load average {load_at_start:.1f} at the start, "
          f"{os.getloadavg()[0]:.1f} at the end (other work shares the cores)")
    print(f"rows={args.rows:,}  directories={(args.rows + args.per_dir - 1) // args.per_dir}  "
          f"repeats={args.repeats} (median, min-max)")
    print()
    print("| layout | ours (Root.contain_all) | reference (Root.check, per row) | ratio ours / reference |")
    print("|---|---:|---:|---:|")
    for layout, (t_ours, t_ref) in results:
        ratio = statistics.median(t_ours) / statistics.median(t_ref)
        print(f"| {layout} | {spread(t_ours)} | {spread(t_ref)} | {ratio:.2f}x |")
    print()
    print("same joined paths from both: yes (checked before timing)")


if __name__ == "__main__":
    main()
