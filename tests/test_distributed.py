"""Chunked, resumable and sharded inference: no duplicates, no drops, identical results."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from audit.core.distributed import CHUNK_DIR, DistContext, predict_in_chunks
from slice_helpers import make_model, make_split

TESTS = Path(__file__).parent
FAST = ["--n-boot", "20", "--n-perm", "20", "--batch-size", "4", "--chunk-size", "8"]


class _Rank(DistContext):
    """A rank of a simulated world whose barrier is a no-op (ranks run one after another)."""

    def barrier(self) -> None:
        pass


def test_every_sample_predicted_exactly_once_across_ranks(tmp_path):
    frame = pd.DataFrame({"sample_id": [f"s{i:02d}" for i in range(23)]})
    calls = []

    def predict(part):
        calls.append(part["sample_id"].tolist())
        return pd.DataFrame({"sample_id": part["sample_id"], "pred": range(len(part))})

    # 23 samples in chunks of 5 -> 5 chunks; 3 ranks own chunks {0, 3}, {1, 4}, {2}
    for rank in (1, 2, 0):  # rank 0 last: it merges after the others committed
        merged = predict_in_chunks(predict, frame, out_dir=tmp_path, key="k" * 64, chunk_size=5,
                                   context=_Rank(rank=rank, world_size=3))
        assert (merged is None) == (rank != 0)
    flat = [sid for part in calls for sid in part]
    assert sorted(flat) == frame["sample_id"].tolist()  # no duplicates, no drops
    # rank 1 computes chunks 1 and 4 (the 3-sample tail), rank 2 chunk 2, rank 0 chunks 0 and 3
    assert [len(part) for part in calls] == [5, 3, 5, 5, 5]
    assert merged["sample_id"].tolist() == frame["sample_id"].tolist()
    # a second single-process run finds every chunk committed and predicts nothing
    calls.clear()
    again = predict_in_chunks(predict, frame, out_dir=tmp_path, key="k" * 64, chunk_size=5)
    assert calls == [] and again.equals(merged)
    # another model/data key shares nothing
    predict_in_chunks(predict, frame, out_dir=tmp_path, key="j" * 64, chunk_size=5)
    assert len(calls) == 5


def _env(**extra):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")]),
           "SOURCE_DATE_EPOCH": "1700000000", "OMP_NUM_THREADS": "1", **extra}
    return env


def _audit_cmd(model, card, out):
    return [sys.executable, "-m", "audit", "run", "--model", str(model), "--data", str(card), "--out", str(out),
            *FAST]


@pytest.fixture()
def slow_project(tmp_path):
    split = make_split(tmp_path, n=64)
    card = make_model(tmp_path)
    text = card.read_text().replace("tiny_model:tiny_cnn", "slow_model:slow_tiny_cnn")
    card.write_text(text)
    return {**split, "model": card}


def test_sigkill_midway_then_resume_gives_identical_results(slow_project, tmp_path):
    reference = tmp_path / "reference"
    killed = tmp_path / "killed"
    subprocess.run(_audit_cmd(slow_project["model"], slow_project["card"], reference), env=_env(), check=True,
                   capture_output=True)
    process = subprocess.Popen(_audit_cmd(slow_project["model"], slow_project["card"], killed), env=_env(),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    chunks = []
    # 64 samples = 8 chunks of 8, 2 batches of 4 each, 0.3 s a batch: kill once 3 chunks are committed
    while time.monotonic() < deadline and len(chunks) < 3:
        chunks = list((killed / CHUNK_DIR).glob("*/chunk-*.parquet")) if (killed / CHUNK_DIR).exists() else []
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert process.returncode == -signal.SIGKILL
    committed = {p.name: p.stat().st_mtime_ns for p in chunks}
    assert 3 <= len(committed) < 8 and not (killed / "results.json").exists()
    resumed = subprocess.run(_audit_cmd(slow_project["model"], slow_project["card"], killed), env=_env(),
                             capture_output=True, text=True, check=True)
    assert f"resuming, {len(committed)} of 8 chunks already committed" in resumed.stdout + resumed.stderr
    assert (killed / "results.json").read_bytes() == (reference / "results.json").read_bytes()
    assert not (killed / CHUNK_DIR).exists()  # merged into predictions.parquet, then discarded


@pytest.mark.skipif(shutil.which("torchrun") is None, reason="torchrun is not on PATH")
def test_torchrun_two_gloo_ranks_match_a_single_process(tmp_path):
    project = make_split(tmp_path, n=40)
    model = make_model(tmp_path)
    single, sharded = tmp_path / "single", tmp_path / "sharded"
    subprocess.run(_audit_cmd(model, project["card"], single), env=_env(), check=True, capture_output=True)
    command = ["torchrun", "--standalone", "--nproc-per-node", "2", *_audit_cmd(model, project["card"], sharded)[1:]]
    done = subprocess.run(command, env=_env(AUDIT_DIST_BACKEND="gloo"), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert (sharded / "results.json").read_bytes() == (single / "results.json").read_bytes()
    a = pd.read_parquet(single / "predictions.parquet")
    b = pd.read_parquet(sharded / "predictions.parquet")
    pd.testing.assert_frame_equal(a, b)
