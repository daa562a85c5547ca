"""``Root.contain_all`` (issue #19): the bulk containment check gives exactly what ``Root.check`` gives.

Same joined paths, same refusals, same first offending row and message, on
random trees with symlinks that stay inside and that escape, ``..``,
absolute names, ``~``, ``.``, empty components and NUL characters.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

from audit._paths import Root
from audit.errors import DataError

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

SETTINGS = settings(max_examples=150, derandomize=True, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

PARTS = ["a", "b", "c", "x.png", "y.png"]


def _outcome(call):
    try:
        return "ok", call()
    except DataError as exc:
        return "error", str(exc)


def _both(root: Root, names: list[str]):
    """``check`` and ``contain_all`` on fresh roots (no shared cache), with the row named in the message."""
    where = lambda i: f"table.csv: row {i + 1}"  # noqa: E731
    per_row = _outcome(lambda: Root(root.root, allow_outside=root.allow_outside).check(names, where=where))
    bulk = _outcome(lambda: Root(root.root, allow_outside=root.allow_outside).contain_all(names, where=where))
    return per_row, bulk


# --- a random tree: directories, files and symlinks under root/, with targets inside and outside -------------

SLOTS = ["a", "b", "c", "x.png", "y.png", "a/b", "a/c", "a/x.png", "a/y.png", "b/x.png", "c/x.png", "c/y.png",
         "a/b/x.png", "a/b/y.png"]
TARGETS = ["root", "root/a", "root/a/b", "root/c/x.png", "outside", "outside/x.png", "outside/sub", "top", "missing",
           "../a", "..", "x.png", "b", "loop"]
# None: absent; "dir", "file"; anything else: a symlink to that target. Top-level slots are mostly directories.
top_slot = st.sampled_from(["dir"] * 6 + [None, "file"] + TARGETS)
slot = st.sampled_from([None, "dir", "file"] + TARGETS)


def _build(base: Path, kinds) -> Path:
    """root/ with each slot absent, a directory, a file or a symlink; outside/ beside it."""
    root, outside = base / "root", base / "outside"
    (outside / "sub").mkdir(parents=True)
    (outside / "x.png").write_bytes(b"x")
    root.mkdir()
    for relative, kind in zip(SLOTS, kinds):  # parents come before children in SLOTS
        path = root / relative
        parent = path.parent
        if kind is None or not parent.is_dir() or any(p.is_symlink() for p in [parent, *parent.parents]):
            continue  # only into real directories of the tree, never through a link
        if kind == "dir":
            path.mkdir()
        elif kind == "file":
            path.write_bytes(b"x")
        elif kind == "loop":
            path.symlink_to(path.name)  # a link to itself
        elif kind in ("../a", "..", "x.png", "b"):
            path.symlink_to(kind)  # relative: resolved from the link's directory
        else:
            path.symlink_to(base / kind)  # "top" is base/top, beside root/: outside, and missing
    return root


# plain names (no "..", not absolute) leave the root only through a symlink: mostly names of the tree's slots
plain = st.one_of(st.sampled_from(SLOTS + [s + "/x.png" for s in SLOTS]),
                  st.lists(st.sampled_from(PARTS), min_size=1, max_size=3).map("/".join))
name = st.one_of(
    plain, plain, plain,
    st.lists(st.sampled_from(PARTS + ["..", ".", "", "~"]), min_size=1, max_size=4).map("/".join),
    st.lists(st.sampled_from(PARTS + [".."]), min_size=1, max_size=3).map(lambda p: "/" + "/".join(p)),
    st.sampled_from(["", ".", "..", "/", "~", "~/x.png", "a/", "a//x.png", "./a/x.png", "a/x.png\0", "\0"]),
)
absolute = st.sampled_from(["ROOT/a/x.png", "ROOT/../outside/x.png", "OUTSIDE/x.png", "BASE/root/c", "ROOT"])


def _compare_on_tree(kinds, names, root_choice, allow_outside):
    base = Path(tempfile.mkdtemp())
    try:
        root = _build(base, kinds)
        (base / "alias").symlink_to(root)  # the root itself reached through a symlink
        names = [n.replace("ROOT", str(root)).replace("OUTSIDE", str(base / "outside")).replace("BASE", str(base))
                 for n in names]
        per_row, bulk = _both(Root(base / root_choice, allow_outside=allow_outside), names)
        assert bulk == per_row
    finally:
        shutil.rmtree(base)


@SETTINGS
@given(kinds=st.tuples(*[top_slot if "/" not in s else slot for s in SLOTS]),
       names=st.lists(st.one_of(name, absolute), min_size=1, max_size=12),
       root_choice=st.sampled_from(["root", "alias", "root/a", "outside"]), allow_outside=st.booleans())
def test_bulk_equals_per_row_on_random_trees(kinds, names, root_choice, allow_outside):
    _compare_on_tree(kinds, names, root_choice, allow_outside)


@SETTINGS
@given(kinds=st.tuples(*[top_slot if "/" not in s else slot for s in SLOTS]),
       names=st.lists(plain, min_size=1, max_size=12), root_choice=st.sampled_from(["root", "alias", "root/a"]))
def test_bulk_equals_per_row_on_names_that_leave_only_through_symlinks(kinds, names, root_choice):
    _compare_on_tree(kinds, names, root_choice, False)


# --- by hand ----------------------------------------------------------------------------------------------------


@pytest.fixture
def tree(tmp_path):
    root = tmp_path / "root"
    (root / "sub").mkdir(parents=True)
    (root / "sub" / "a.png").write_bytes(b"x")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "b.png").write_bytes(b"x")
    (root / "linkdir").symlink_to(outside)  # a directory on the way that leaves the root
    (root / "inner").symlink_to(root / "sub")  # a symlink that stays inside is fine
    (root / "sub" / "evil.png").symlink_to(outside / "b.png")  # the file itself leaves
    (root / "sub" / "good.png").symlink_to(root / "sub" / "a.png")
    return root, outside


def test_bulk_accepts_what_check_accepts(tree):
    root, _ = tree
    names = ["sub/a.png", "inner/a.png", "sub/../sub/a.png", "sub/good.png", "sub/missing.png", str(root / "sub/a.png")]
    assert Root(root).contain_all(names, where=str) == Root(root).check(names, where=str) == [
        str(root / "sub/a.png"), str(root / "inner/a.png"), str(root / "sub/../sub/a.png"), str(root / "sub/good.png"),
        str(root / "sub/missing.png"), str(root / "sub/a.png")]


@pytest.mark.parametrize("bad", ["linkdir/b.png", "../outside/b.png", "OUTSIDE/b.png", "sub/../../outside/b.png",
                                 "sub/evil.png", "inner/evil.png"])
def test_bulk_names_the_first_offending_row(tree, bad):
    root, outside = tree
    bad = bad.replace("OUTSIDE", str(outside))
    names = ["sub/a.png"] * 3 + [bad] + ["sub/a.png", "linkdir/b.png", "x\0y"]
    where = lambda i: f"manifest.csv: row {i + 2} (id 'img{i}'): field 'path'"  # noqa: E731
    with pytest.raises(DataError) as bulk:
        Root(root).contain_all(names, where=where)
    with pytest.raises(DataError) as per_row:
        Root(root).check(names, where=where)
    assert str(bulk.value) == str(per_row.value) == (
        f"manifest.csv: row 5 (id 'img3'): field 'path': image path {bad!r} is outside the image root {root}; "
        "set 'allow_paths_outside_root: true' in the data card to allow it")


def test_bulk_nul_before_an_outside_row_is_reported_first(tree):
    root, _ = tree
    names = ["sub/a.png", "a\0b", "linkdir/b.png"]
    with pytest.raises(DataError, match=r"^row 2: expected a label mask path, found one with a NUL character$"):
        Root(root).contain_all(names, where=lambda i: f"row {i + 1}", what="label mask")
    assert Root(root, allow_outside=True).contain_all(["linkdir/b.png", "../x"], where=str) == [
        str(root / "linkdir/b.png"), str(root / "../x")]


def test_a_long_directory_listing_falls_back_to_lstat(tree):
    # 2,001 entries and 2 names, more than 4 x 2 + 256: the directory is not listed, each name's own lstat decides
    root, outside = tree
    big = root / "big"
    big.mkdir()
    for i in range(2000):
        (big / f"f{i:04d}.png").write_bytes(b"")
    (big / "zz_evil.png").symlink_to(outside / "b.png")
    with pytest.raises(DataError, match="'big/zz_evil.png' is outside"):
        Root(root).contain_all(["big/f0001.png", "big/zz_evil.png"], where=str)
    assert Root(root).contain_all(["big/f1999.png"], where=str) == [str(big / "f1999.png")]


def test_a_directory_that_cannot_be_listed_falls_back_to_lstat(tree, monkeypatch):
    root, _ = tree

    def refuse(path):
        raise PermissionError(13, "Permission denied", path)

    monkeypatch.setattr(os, "scandir", refuse)
    with pytest.raises(DataError, match="'sub/evil.png' is outside"):
        Root(root).contain_all(["sub/a.png", "sub/evil.png"], where=str)
    assert Root(root).contain_all(["sub/a.png", "sub/good.png"], where=str) == [
        str(root / "sub/a.png"), str(root / "sub/good.png")]
