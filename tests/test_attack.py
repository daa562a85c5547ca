"""Issue 15: the README's promises under attack.

- resume is byte-identical after SIGKILL at every phase, and a plain rerun into a finished directory changes
  nothing (results.json does not depend on cache state or the output directory);
- the output set appears whole or not at all: a full disk (a file size limit) leaves the previous output intact;
- two runs into one directory: the second says in one line that another audit is writing there;
- a changed weights file behind an entry point reruns the model;
- thumbnails never embed an image outside the image root;
- ``audit compare --max-drop-metric`` keeps the documented default for the other metrics.
"""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pandas as pd
import pytest

from audit.cli import main
from slice_helpers import make_model, make_split

TESTS = Path(__file__).parent
FAST = ["--n-boot", "10", "--n-perm", "10", "--batch-size", "4", "--chunk-size", "8", "-q"]


def _env(**extra):
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")]),
            "SOURCE_DATE_EPOCH": "1700000000", "OMP_NUM_THREADS": "1", **extra}


def _args(project, out):
    return ["run", "--model", str(project["model"]), "--data", str(project["card"]), "--out", str(out), *FAST]


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    root = tmp_path_factory.mktemp("project")
    split = make_split(root, n=24)
    return {**split, "model": make_model(root), "root": root}


@pytest.fixture(scope="module")
def reference(project):
    out = project["root"] / "reference"
    done = subprocess.run([sys.executable, "-m", "audit", *_args(project, out)], env=_env(), capture_output=True,
                          text=True)
    assert done.returncode == 0, done.stderr
    return out


def _files(out: Path) -> dict:
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("phase", ["chunking", "merge", "statistics", "report"])
def test_sigkill_at_each_phase_then_resume_is_byte_identical(phase, project, reference, tmp_path):
    out = tmp_path / "out"
    killed = subprocess.run([sys.executable, str(TESTS / "kill_at.py"), phase, *_args(project, out)], env=_env(),
                            capture_output=True, text=True)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    if phase in ("chunking", "merge", "statistics"):
        assert not (out / "results.json").exists()  # nothing of the output set before the commit
    resumed = subprocess.run([sys.executable, "-m", "audit", *_args(project, out)], env=_env(), capture_output=True,
                             text=True)
    assert resumed.returncode == 0, resumed.stderr
    assert (out / "results.json").read_bytes() == (reference / "results.json").read_bytes()
    assert not (out / ".commit").exists() and not list(out.glob(".staging-*"))
    assert not (out / "predictions.chunks").exists()
    # and a plain rerun into the finished directory (the cache is reused) writes the same bytes again
    again = subprocess.run([sys.executable, "-m", "audit", *_args(project, out)], env=_env(), capture_output=True,
                           text=True)
    assert again.returncode == 0, again.stderr
    assert (out / "results.json").read_bytes() == (reference / "results.json").read_bytes()


def _detection_project(root: Path) -> dict:
    import torch

    from audit.train.detection import person_fasterrcnn
    from detection_helpers import make_facet_split, write_facet_card

    facet = make_facet_split(root / "facet", n_images=5, with_images=True)
    torch.manual_seed(0)
    torch.save(person_fasterrcnn(num_classes=3).state_dict(), root / "det.pth")
    model = root / "det.md"
    model.write_text("---\ntask: detection\nmodel:\n  entry_point: \"audit.train.detection:person_fasterrcnn\"\n"
                     "weights:\n  path: det.pth\nnum_classes: 3\nlabel_map: [__background__, doctor, guitarist]\n---\n")
    return {"card": write_facet_card(facet), "model": model}


def _segmentation_project(root: Path) -> dict:
    from test_segmentation_e2e import make_model_card, make_split as make_segmentation_split

    return {"card": make_segmentation_split(root, n=6)["card"], "model": make_model_card(root)}


@pytest.fixture(scope="module")
def task_projects(tmp_path_factory):
    """A detection and a segmentation project (deterministic weights) and a finished reference run of each."""
    projects = {}
    for task, make in (("detection", _detection_project), ("segmentation", _segmentation_project)):
        root = tmp_path_factory.mktemp(task)
        project = make(root)
        reference = root / "reference"
        done = subprocess.run([sys.executable, "-m", "audit", *_args(project, reference), "--chunk-size", "2",
                               "--device", "cpu"], env=_env(), capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        projects[task] = {**project, "reference": reference}
    return projects


@pytest.mark.parametrize("phase", ["merge", "statistics", "report"])
@pytest.mark.parametrize("task", ["detection", "segmentation"])
def test_other_tasks_resume_byte_identical_after_sigkill(task, phase, task_projects, tmp_path):
    project = task_projects[task]
    out = tmp_path / "out"
    args = [*_args(project, out), "--chunk-size", "2", "--device", "cpu"]
    killed = subprocess.run([sys.executable, str(TESTS / "kill_at.py"), phase, *args], env=_env(),
                            capture_output=True, text=True)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    for _ in range(2):  # the resume, then a plain rerun into the finished directory
        done = subprocess.run([sys.executable, "-m", "audit", *args], env=_env(), capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        assert (out / "results.json").read_bytes() == (project["reference"] / "results.json").read_bytes()
        assert not (out / "predictions.chunks").exists() and not (out / ".commit").exists()


def test_results_do_not_carry_the_output_directory(project, reference):
    assert str(reference) not in (reference / "results.json").read_text()


def _limit_file_size(limit):
    def apply():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # past the limit a write raises EFBIG instead of killing
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return apply


def test_full_disk_leaves_the_previous_output_untouched(project, reference, tmp_path):
    out = tmp_path / "out"
    assert subprocess.run([sys.executable, "-m", "audit", *_args(project, out)], env=_env(),
                          capture_output=True).returncode == 0
    before = _files(out)
    # another audit into the same directory (other settings, the cached predictions reused) on a "full disk":
    # every output file is larger than 16 KiB
    args = _args(project, out) + ["--seed", "7"]
    done = subprocess.run([sys.executable, "-m", "audit", *args], env=_env(), capture_output=True, text=True,
                          preexec_fn=_limit_file_size(16 * 1024))
    assert done.returncode == 2, done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "cannot write: file too large" in lines[0], lines
    assert "the previous output, if any, is unchanged" in lines[0]
    assert _files(out) == before  # byte for byte, and nothing added


@pytest.mark.parametrize("task", ["detection", "segmentation"])
def test_full_disk_leaves_the_previous_output_untouched_other_tasks(task, task_projects, tmp_path):
    import shutil

    project = task_projects[task]
    out = tmp_path / "out"
    shutil.copytree(project["reference"], out)  # a finished audit, with its prediction cache
    before = _files(out)
    args = [*_args(project, out), "--chunk-size", "2", "--device", "cpu", "--seed", "7"]
    done = subprocess.run([sys.executable, "-m", "audit", *args], env=_env(), capture_output=True, text=True,
                          preexec_fn=_limit_file_size(16 * 1024))
    assert done.returncode == 2, done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and "cannot write: file too large" in lines[0], lines
    assert _files(out) == before


def test_second_concurrent_run_is_refused_in_one_line(tmp_path):
    split = make_split(tmp_path, n=32)
    card = make_model(tmp_path)
    card.write_text(card.read_text().replace("tiny_model:tiny_cnn", "slow_model:slow_tiny_cnn"))
    project = {**split, "model": card}
    out = tmp_path / "out"
    release = tmp_path / "release"  # the first run's model waits for this file after its first batch
    first = subprocess.Popen([sys.executable, "-m", "audit", *_args(project, out)],
                             env=_env(AUDIT_TEST_HOLD=str(release)), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True)
    try:
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline and not list(out.glob("predictions.chunks/*/chunk-*.parquet")):
            assert first.poll() is None, first.communicate()[1]
            time.sleep(0.05)
        assert first.poll() is None, "the first run finished before the second could start"
        second = subprocess.run([sys.executable, "-m", "audit", *_args(project, out)], env=_env(),
                                capture_output=True, text=True)
        assert second.returncode == 2
        assert second.stderr.splitlines() == [
            f"error: {out}: another audit is writing there (it holds {out / '.audit.lock'}); wait for it to finish "
            "or choose another --out"]
    finally:
        release.touch()
        stdout, stderr = first.communicate(timeout=900)
    assert first.returncode == 0, stderr  # the first run was not disturbed
    assert (out / "results.json").is_file() and not (out / "predictions.chunks").exists()


def test_changed_weights_behind_an_entry_point_rerun_the_model(tmp_path, monkeypatch, capsys):
    import torch

    from tiny_model import tiny_cnn

    package = tmp_path / "site" / "third_party_net"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text(textwrap.dedent("""\
        from pathlib import Path

        import torch

        from tiny_model import tiny_cnn


        def build(num_classes=2):
            model = tiny_cnn(num_classes=num_classes)
            model.load_state_dict(torch.load(Path(__file__).with_name("weights.pt"), weights_only=True))
            return model
        """))
    torch.manual_seed(0)
    torch.save(tiny_cnn(num_classes=2).state_dict(), package / "weights.pt")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    split = make_split(tmp_path, n=16)
    card = make_model(tmp_path)
    text = card.read_text().replace("tiny_model:tiny_cnn", "third_party_net:build")
    card.write_text(text.replace("weights:\n  path: tiny.pth\n", ""))
    args = ["run", "--model", str(card), "--data", str(split["card"]), "--out", str(tmp_path / "out"),
            "--n-boot", "10", "--n-perm", "10"]
    assert main(args) == 0
    assert main(args) == 0
    assert "predictions: reusing cache" in capsys.readouterr().out
    first = pd.read_parquet(tmp_path / "out" / "predictions.parquet")
    torch.manual_seed(1)  # the third-party package's weights change; its version and the card do not
    torch.save(tiny_cnn(num_classes=2).state_dict(), package / "weights.pt")
    assert main(args) == 0
    output = capsys.readouterr().out
    assert "predictions: reusing cache" not in output and "predictions: running" in output
    second = pd.read_parquet(tmp_path / "out" / "predictions.parquet")
    assert not first["score_dog"].equals(second["score_dog"])


def test_thumbnails_never_embed_an_image_outside_the_root(tmp_path):
    from detection_helpers import make_facet_split, write_facet_card

    root = make_facet_split(tmp_path / "facet", n_images=20, with_images=True)
    card = write_facet_card(root)
    out = tmp_path / "out"
    assert main(["run", "--data", str(card), "--predictions", str(root / "detections.json"), "--out", str(out),
                 "--no-data-audit", "--n-boot", "10", "-q"]) == 0
    assert "data:image/png;base64" in (out / "index.html").read_text()  # the control: crops are embedded
    people = pd.read_parquet(out / "people.parquet")
    people["file_name"] = "../../secret.png"  # a tampered per-person table
    people.to_parquet(out / "people.parquet", index=False)
    assert main(["report", str(out), "-q"]) == 0
    assert "data:image/png;base64" not in (out / "index.html").read_text()


def test_compare_max_drop_keeps_the_documented_default_for_other_metrics(project, reference, tmp_path):
    from audit.compare import load_policy

    assert load_policy(max_drop={"accuracy": 0.005}).max_drop == {"accuracy": 0.005, "default": 0.01}
    assert load_policy(max_disparity_growth={"tpr": 0.1}).max_disparity_growth == {"tpr": 0.1, "default": 0.02}
    assert main(["compare", str(reference), str(reference), "--max-drop-metric", "accuracy=0.005",
                 "--out", str(tmp_path / "cmp")]) == 0
    html = (tmp_path / "cmp" / "comparison.html").read_text()
    assert ", </dd>" not in html and ",</dd>" not in html  # no dangling comma after the last row count
    policy = json.loads((tmp_path / "cmp" / "comparison.json").read_text())["policy"]
    assert policy["max_drop"] == {"accuracy": 0.005, "default": 0.01}


def test_ctrl_c_prints_one_line_exits_130_and_resumes(tmp_path):
    split = make_split(tmp_path, n=32)
    card = make_model(tmp_path)
    card.write_text(card.read_text().replace("tiny_model:tiny_cnn", "slow_model:slow_tiny_cnn"))
    project = {**split, "model": card}
    out = tmp_path / "out"
    run = subprocess.Popen([sys.executable, "-m", "audit", *_args(project, out)], env=_env(),
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not list(out.glob("predictions.chunks/*/chunk-*.parquet")):
        time.sleep(0.05)
    run.send_signal(signal.SIGINT)
    _, stderr = run.communicate(timeout=120)
    assert run.returncode == 130
    assert stderr.splitlines() == ["error: interrupted; committed work is kept, run the same command again to resume"]
    assert not (out / "results.json").exists()
    resumed = subprocess.run([sys.executable, "-m", "audit", *_args(project, out)], env=_env(), capture_output=True,
                             text=True)
    assert resumed.returncode == 0, resumed.stderr
    assert (out / "results.json").is_file() and not (out / "predictions.chunks").exists()


def test_compressed_rle_whose_counts_overrun_the_image_is_refused():
    import numpy as np
    from pycocotools import mask as mask_utils

    from audit.tasks.detection.data import to_rle
    from audit.errors import DataError

    big = mask_utils.encode(np.asfortranarray(np.ones((10, 10), dtype=np.uint8)))
    ok = mask_utils.encode(np.asfortranarray(np.ones((7, 9), dtype=np.uint8)))
    assert to_rle({"size": [7, 9], "counts": ok["counts"].decode()}, 7, 9, "gt.json: annotations[0]")["size"] == [7, 9]
    with pytest.raises(DataError) as caught:
        to_rle({"size": [7, 9], "counts": big["counts"].decode()}, 7, 9, "gt.json: annotations[0]")
    assert str(caught.value) == ("gt.json: annotations[0]: field 'segmentation.counts': expected run lengths covering "
                                 "7 x 9 = 63 pixels, found 100")


def test_read_only_output_directory_is_one_line(tmp_path, monkeypatch, capsys):
    project = make_split(tmp_path, n=8)
    model = make_model(tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda p, mode: False if Path(p) == out else real_access(p, mode))
    assert main(["run", "--model", str(model), "--data", str(project["card"]), "--out", str(out), "-q"]) == 2
    assert capsys.readouterr().err.splitlines() == [
        f"error: {out}: cannot write: permission denied or read-only file system"]
    assert list(out.iterdir()) == []


def test_root_containment_rules(tmp_path):
    from audit._paths import Root
    from audit.errors import DataError

    root = tmp_path / "root"
    (root / "sub").mkdir(parents=True)
    (root / "sub" / "a.png").write_bytes(b"x")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "b.png").write_bytes(b"x")
    (root / "linkdir").symlink_to(outside)  # a directory on the way that leaves the root
    (root / "inner").symlink_to(root / "sub")  # a symlink that stays inside is fine
    alias = tmp_path / "alias"
    alias.symlink_to(root)  # the root itself reached through a symlink
    guard = Root(root)
    assert guard.check(["sub/a.png", "inner/a.png", "sub/../sub/a.png"], where=str) == [
        str(root / "sub/a.png"), str(root / "inner/a.png"), str(root / "sub/../sub/a.png")]
    for name in ("linkdir/b.png", "../outside/b.png", str(outside / "b.png"), "sub/../../outside/b.png"):
        with pytest.raises(DataError, match="is outside the image root"):
            guard.check([name], where=lambda i: "f: row 1")
    assert Root(alias).check(["sub/a.png"], where=str) == [str(alias / "sub/a.png")]
    assert Root(root, allow_outside=True).check(["../outside/b.png"], where=str) == [
        str(root / "../outside/b.png")]


def test_one_containment_check():
    """Every named path goes through audit._paths.Root: no module has its own containment check."""
    import audit

    package = Path(audit.__file__).parent
    own = [str(p.relative_to(package)) for p in package.rglob("*.py")
           if p.name not in ("_paths.py", "_output.py")
           and any(s in p.read_text(encoding="utf-8") for s in ("is_relative_to(", "realpath(", "def _inside("))]
    assert own == []
    users = sorted(str(p.relative_to(package)) for p in package.rglob("*.py") if "Root(" in p.read_text(encoding="utf-8")
                   and p.name != "_paths.py")
    assert users == ["core/data.py", "core/thumbnails.py", "tasks/classification/stream.py", "tasks/detection/data.py",
                     "tasks/panoptic/data.py", "tasks/panoptic/inference.py", "tasks/segmentation/data.py"]
