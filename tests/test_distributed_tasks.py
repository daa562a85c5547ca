"""Detection and segmentation predictions go through the same committed chunks: resumable and shardable.

Ranks are simulated one after another in this process (their barrier is a
no-op), which exercises the same code paths as ``torchrun`` without spawning
process groups; ``tests/test_distributed.py`` runs real gloo ranks.
"""

from __future__ import annotations

import json
import types

import pandas as pd
import pytest
import torch

from audit.core.distributed import CHUNK_DIR, DistContext
from audit.errors import PredictionError
from audit.report import run_audit
from audit.tasks.detection.pipeline import _detect_in_chunks
from detection_helpers import make_facet_split, write_facet_card
from test_detection import TORCHVISION_CARD
from test_segmentation_e2e import make_model_card, make_split as make_segmentation_split

OPTIONS = {"n_boot": 20, "seed": 0, "batch_size": 2, "chunk_size": 2, "device": "cpu", "progress": False}


class _Rank(DistContext):
    def barrier(self) -> None:
        pass


def _results(out):
    document = json.loads((out / "results.json").read_text())
    return document["results"]


def _chunked(detect, image_ids, out):
    """``_detect_in_chunks`` over images ``image_ids`` in chunks of 2, one rank, committing under ``out``."""
    gt = types.SimpleNamespace(images=pd.DataFrame({"image_id": image_ids}))
    return _detect_in_chunks(detect, gt, out_dir=out, key="k" * 64, chunk_size=2, context=_Rank(rank=0, world_size=1))


def _run(data, model, out, **extra):
    torch.manual_seed(0)  # the untrained detector's weights come from the global RNG
    return run_audit(data=data, model=model, out_dir=out, **{**OPTIONS, **extra})


def test_detection_rank_shards_then_resume_equal_single_process(tmp_path):
    root = make_facet_split(tmp_path / "facet", n_images=5, with_images=True)
    card = write_facet_card(root)
    model = tmp_path / "det.md"
    model.write_text(TORCHVISION_CARD)
    single = _run(card, model, tmp_path / "single")
    # 5 images in chunks of 2 -> 3 chunks; rank 1 of 2 commits chunk 1 only and leaves the audit to rank 0
    sharded = tmp_path / "sharded"
    assert _run(card, model, sharded, context=_Rank(rank=1, world_size=2)) is None
    assert len(list((sharded / CHUNK_DIR).glob("*/chunk-*.parquet"))) == 1
    assert not (sharded / "results.json").exists()
    # a single process then resumes: it computes the two missing chunks and merges all three
    resumed = _run(card, model, sharded)
    assert resumed.provenance["predictions"]["source"] == "model"
    # detections.json is the chunks' own text joined (two computed here, one read back): json.dumps of the list
    text = (sharded / "detections.json").read_text()
    assert text == (tmp_path / "single" / "detections.json").read_text()
    assert text == json.dumps(json.loads(text)) + "\n" and len(json.loads(text)) > 5
    assert _results(sharded)["metrics"] == _results(tmp_path / "single")["metrics"]
    assert not (sharded / CHUNK_DIR).exists() and single is not None


def test_segmentation_rank_shards_then_resume_equal_single_process(tmp_path):
    seg = make_segmentation_split(tmp_path, n=6)
    model = make_model_card(tmp_path)
    _run(seg["card"], model, tmp_path / "single")
    # 6 images in chunks of 2 -> 3 chunks, one per rank; ranks 1 and 2 commit theirs, then rank 0 merges
    for rank in (1, 2):
        assert _run(seg["card"], model, tmp_path / "ranks", context=_Rank(rank=rank, world_size=3)) is None
    assert len(list((tmp_path / "ranks" / CHUNK_DIR).glob("*/chunk-*.parquet"))) == 2
    merged = _run(seg["card"], model, tmp_path / "ranks", context=_Rank(rank=0, world_size=3))
    assert merged is not None
    assert _results(tmp_path / "ranks")["metrics"] == _results(tmp_path / "single")["metrics"]


def test_detections_of_chunks_computed_and_read_back_join_into_json_dumps_of_the_list(tmp_path):
    # images 1..5 with 0, 2, 0, 1, 3 detections, chunks of 2; a first run commits every chunk, then a second run
    # computes nothing and reads all back: both give the same detections and json.dumps of them, byte for byte
    counts = {1: 0, 2: 2, 3: 0, 4: 1, 5: 3}
    calls = []

    def detect(*, images, statistics):
        calls.append(images["image_id"].tolist())
        return [{"image_id": i, "category_id": 1, "bbox": [k + 0.5, 2.0, 3.25, 4.0], "score": 0.125 * (k + 1)}
                for i in images["image_id"].tolist() for k in range(counts[i])]

    computed, text = _chunked(detect, list(counts), tmp_path)
    assert calls == [[1, 2], [3, 4], [5]]
    read_back, text_again = _chunked(detect, list(counts), tmp_path)
    assert len(calls) == 3  # nothing computed the second time
    assert computed == read_back == detect(images=pd.DataFrame({"image_id": list(counts)}), statistics=None)
    assert text == text_again == json.dumps(computed)


def test_damaged_committed_detections_are_a_one_line_error_naming_the_chunks(tmp_path):
    # a committed chunk with the right images whose detections are not a JSON list: PredictionError, no traceback
    def detect(*, images, statistics):
        return [{"image_id": i, "category_id": 1, "bbox": [0.0, 0.0, 1.0, 1.0], "score": 0.5}
                for i in images["image_id"].tolist()]

    _chunked(detect, [1, 2, 3], tmp_path)
    chunk = sorted((tmp_path / CHUNK_DIR).glob("*/chunk-*.parquet"))[1]
    for damaged in ('{"image_id": 3}', "[{", None):
        table = pd.read_parquet(chunk)
        table["detections"] = [damaged]
        table.to_parquet(chunk, index=False)
        with pytest.raises(PredictionError) as caught:
            _chunked(detect, [1, 2, 3], tmp_path)
        assert str(caught.value) == (f"{tmp_path / CHUNK_DIR}: detections of image 3: expected the JSON text of a "
                                     f"list, found {str(damaged)!r}; remove that directory to recompute them")
