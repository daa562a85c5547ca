"""Image statistics computed in the inference pass equal those of decoding the files again, and a model run's
dataset section and covariates use them without decoding the images a second time."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

import audit.core.image_stats
import audit.dataset._audit
from audit.core.distributed import CHUNK_DIR
from audit.core.image_stats import (IMAGE_COLUMNS, IMAGE_STATISTICS, grey_statistics, image_statistics,
                                    split_image_columns)
from audit.core.images import ImageDataset
from audit.dataset import report_section
from audit.pipeline import evaluate
from audit.report import run_audit
from slice_helpers import make_model, make_split


def _images(tmp_path) -> list[str]:
    """One image of each mode and format PIL reads differently: RGB, L, RGBA, P, I;16, JPEG, tiny."""
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (37, 53, 3), dtype=np.uint8)
    out = []
    for name, image in [
        ("rgb.png", Image.fromarray(rgb)),
        ("grey.png", Image.fromarray(rgb[..., 0])),
        ("rgba.png", Image.fromarray(np.dstack([rgb, rgb[..., :1]]))),
        ("palette.png", Image.fromarray(rgb).quantize(16)),
        ("deep.png", Image.fromarray(rgb[..., 0].astype(np.int32) * 257).convert("I;16")),
        ("photo.jpg", Image.fromarray(rgb)),
        ("tiny.png", Image.fromarray(rgb[:2, :2])),
    ]:
        path = tmp_path / name
        image.save(path)
        out.append(str(path))
    return out


def test_dataset_statistics_equal_decode_again(tmp_path):
    paths = _images(tmp_path)
    dataset = ImageDataset(paths, lambda image: np.asarray(image.resize((8, 8))), statistics=True)
    items = [dataset[i] for i in range(len(paths))]
    assert all(error == "" for _, _, error, _ in items)
    in_pass = pd.DataFrame([stats for *_, stats in items], columns=list(IMAGE_STATISTICS))
    again = image_statistics(paths)
    assert in_pass.drop(columns=["width", "height"]).equals(again.drop(columns=["width", "height"]))
    assert in_pass[["width", "height"]].astype(np.int64).equals(again[["width", "height"]])
    # the plain dataset is unchanged: three items, no statistics
    assert len(ImageDataset(paths, lambda image: 0)[0]) == 3


@settings(max_examples=60, deadline=None)
@given(h=st.integers(1, 40), w=st.integers(1, 40), seed=st.integers(0, 2**32 - 1),
       levels=st.sampled_from([(0, 256), (0, 1), (254, 256), (100, 102)]))
def test_grey_statistics_match_float64_formulas(h, w, seed, levels):
    """The integer sums give numpy's float64 mean, std and Laplacian variance (up to rounding), on any shape,
    constant images and two-level ones included."""
    grey = np.random.default_rng(seed).integers(*levels, (h, w), dtype=np.uint8)
    brightness, contrast, sharpness, width, height, megapixels = grey_statistics(grey)
    g = grey.astype(np.float64)
    assert brightness == pytest.approx(g.mean() / 255, rel=1e-12, abs=1e-15)
    assert contrast == pytest.approx(g.std() / 255, rel=1e-9, abs=1e-12)
    if h >= 3 and w >= 3:
        lap = g[:-2, 1:-1] + g[2:, 1:-1] + g[1:-1, :-2] + g[1:-1, 2:] - 4 * g[1:-1, 1:-1]
        assert sharpness == pytest.approx(lap.var(), rel=1e-9, abs=1e-9)
    else:
        assert np.isnan(sharpness)
    assert (width, height, megapixels) == (w, h, w * h / 1e6)


def test_grey_statistics_by_hand_and_refuses_other_depths():
    # 3 x 3 of 0 with a 255 in the middle: mean 255/9 -> brightness 1/9; variance 255^2 * (1/9 - 1/81)
    # -> std 255 * sqrt(8) / 9 -> contrast sqrt(8)/9; one Laplacian value, -1020: variance 0
    grey = np.zeros((3, 3), dtype=np.uint8)
    grey[1, 1] = 255
    assert grey_statistics(grey) == pytest.approx((1 / 9, 8 ** 0.5 / 9, 0.0, 3, 3, 9e-6))
    with pytest.raises(TypeError, match="expected 8-bit luminance"):
        grey_statistics(grey.astype(np.float64))


def test_split_image_columns():
    table = pd.DataFrame({"sample_id": ["a"], "pred": [0], **{c: [1.0] for c in IMAGE_COLUMNS}})
    rest, stats = split_image_columns(table)
    assert list(rest.columns) == ["sample_id", "pred"] and list(stats.columns) == list(IMAGE_STATISTICS)
    assert split_image_columns(rest)[1] is None


def _run(split, model, out, **options):
    return run_audit(data=split["card"], model=model, out_dir=out, n_boot=20, n_perm=20, progress=False,
                     batch_size=4, chunk_size=5, **options)


def test_classification_run_uses_in_pass_statistics(tmp_path, monkeypatch):
    split = make_split(tmp_path, n=12, card_extra="covariates: [brightness, sharpness]\n")
    model = make_model(tmp_path)
    expected = report_section(split["card"])  # the dataset section decoding every image again

    def no_decode(*args, **kwargs):
        raise AssertionError("image statistics decoded the images a second time")

    monkeypatch.setattr(audit.dataset._audit, "image_statistics", no_decode)
    monkeypatch.setattr(audit.core.image_stats, "image_statistics", no_decode)  # covariates read it from here
    run = _run(split, model, tmp_path / "out")
    assert run.image_statistics is not None and len(run.image_statistics) == 12
    assert not any(c in run.predictions.columns for c in IMAGE_COLUMNS)
    section = json.loads((tmp_path / "out" / "dataset_section.json").read_text())
    assert section == json.loads(json.dumps(expected)) and "Image statistics per group" in json.dumps(section)
    assert run.units.covariates == ["brightness", "sharpness"]
    monkeypatch.undo()

    # the same covariates as the run that decodes again (predictions made elsewhere)
    preds = tmp_path / "preds.csv"
    run.predictions[["sample_id", "pred"]].to_csv(preds, index=False)
    from_file = run_audit(data=split["card"], predictions=preds, out_dir=tmp_path / "file", n_boot=20, n_perm=20,
                          progress=False)
    assert run.units.table.filter(like="covariate:").equals(from_file.units.table.filter(like="covariate:"))

    # the cache keeps them (version 2) ...
    cached = pd.read_parquet(tmp_path / "out" / "predictions.parquet")
    assert all(c in cached.columns for c in IMAGE_COLUMNS)
    assert json.loads((tmp_path / "out" / "predictions.json").read_text())["cache_version"] == 2
    again = _run(split, model, tmp_path / "out")
    assert again.image_statistics.equals(run.image_statistics)


def test_stale_cache_and_chunks_are_not_misread(tmp_path):
    split = make_split(tmp_path, n=12)
    model = make_model(tmp_path)
    first = _run(split, model, tmp_path / "out")
    # a cache of version 1 (no image statistics) is a miss, not a table without them
    meta_path = tmp_path / "out" / "predictions.json"
    meta = json.loads(meta_path.read_text())
    table = pd.read_parquet(tmp_path / "out" / "predictions.parquet")
    table.drop(columns=list(IMAGE_COLUMNS)).to_parquet(tmp_path / "out" / "predictions.parquet", index=False)
    meta_path.write_text(json.dumps({**meta, "cache_version": 1}))
    second = _run(split, model, tmp_path / "out")
    assert second.image_statistics.equals(first.image_statistics)

    # committed chunks of an older version (no image statistics) are recomputed, not merged
    out = tmp_path / "resume"
    _run(split, model, out, use_cache=False)
    (out / "predictions.json").unlink()
    (out / "predictions.parquet").unlink()
    # re-create chunks as an older version committed them: every chunk without the image columns
    from audit.core.distributed import predict_in_chunks

    key = first.provenance["model"]["sha256"] + first.provenance["data"]["sha256"]
    frame = first.split
    predict_in_chunks(lambda part: first.predictions.set_index("sample_id").loc[part["sample_id"]].reset_index()
                      [["sample_id", "score_cat", "score_dog", "pred"]], frame, out_dir=out, key=key, chunk_size=5)
    assert len(list((out / CHUNK_DIR).glob("*/chunk-*.parquet"))) == 3
    resumed = _run(split, model, out)
    assert resumed.image_statistics is not None and resumed.image_statistics.equals(first.image_statistics)
    assert resumed.result.to_frame().equals(first.result.to_frame())


@pytest.mark.parametrize("bad", [False])
def test_decode_error_still_names_the_sample(tmp_path, bad):
    from audit.core.inference import run_inference
    from audit.core.card_loaders import load_model_card
    from audit.core.data import load_split
    from audit.core.models import build_model, build_transform
    from audit.core.registry import load_any_data_card
    from audit.errors import DataError

    split = make_split(tmp_path, n=6)
    card = load_model_card(make_model(tmp_path))
    (split["images"] / "s002.png").write_bytes(b"garbage")
    frame = load_split(load_any_data_card(split["card"]), verify_images=False)
    with pytest.raises(DataError, match="image 's002': cannot read image"):
        run_inference(build_model(card), frame, transform=build_transform(card), classes=["cat", "dog"],
                      label_map=["cat", "dog"], batch_size=4, progress=False, image_statistics=True)


# ---------------------------------------------------------------- detection and segmentation: the image covariates


def _no_decode(monkeypatch):
    def no_decode(*args, **kwargs):
        raise AssertionError("image statistics decoded the images a second time")

    monkeypatch.setattr(audit.core.image_stats, "image_statistics", no_decode)


def _covariates(run) -> pd.DataFrame:
    return run.units.table.filter(like="covariate:").reset_index(drop=True)


@pytest.mark.parametrize("chunk_size", [2, None], ids=["chunks", "no-out-dir"])
def test_detection_image_covariates_from_the_inference_pass(tmp_path, monkeypatch, chunk_size):
    """Several people per image: each person gets their own image's statistics, computed once while detecting;
    the same bins as the run that decodes the images again (predictions made elsewhere); the cache keeps them."""
    import torch
    from detection_helpers import make_facet_split, write_facet_card
    from test_detection import TORCHVISION_CARD

    root = make_facet_split(tmp_path / "facet", n_images=6, with_images=True)
    card = write_facet_card(root, extra="covariates: [brightness, {name: sharpness, quantiles: 2}]\n")
    model = tmp_path / "det.md"
    model.write_text(TORCHVISION_CARD)
    out = tmp_path / "out" if chunk_size else None
    _no_decode(monkeypatch)
    torch.manual_seed(0)
    options = dict(n_boot=20, n_perm=20, progress=False, batch_size=2) | ({"chunk_size": chunk_size} if out else {})
    run = (run_audit if out else evaluate)(data=card, model=model, out_dir=out, **options)
    covariates = _covariates(run)
    assert list(covariates.columns) == ["covariate:brightness", "covariate:sharpness"]
    monkeypatch.undo()
    # predictions made elsewhere: the covariates decode the images (the reference)
    preds = tmp_path / "detections.json"
    preds.write_text(json.dumps([]))
    reference = run_audit(data=card, predictions=preds, out_dir=tmp_path / "file", n_boot=20, n_perm=20,
                          progress=False)
    assert covariates.equals(_covariates(reference))
    assert covariates["covariate:sharpness"].nunique() == 2  # images differ: the bins are not degenerate
    if out is not None:  # a cache hit reads them from detections.meta.json, without decoding
        meta = json.loads((out / "detections.meta.json").read_text())
        assert len(meta["image_statistics"]) == 6
        _no_decode(monkeypatch)
        again = run_audit(data=card, model=model, out_dir=out, **options)
        assert _covariates(again).equals(covariates)


def test_segmentation_image_covariates_from_the_inference_pass(tmp_path, monkeypatch):
    from test_segmentation_e2e import make_model_card
    from test_segmentation_e2e import make_split as make_segmentation_split

    split = make_segmentation_split(tmp_path, n=8, card_extra="covariates: [contrast, lighting]\n")
    model = make_model_card(tmp_path)
    out = tmp_path / "out"
    _no_decode(monkeypatch)
    run = run_audit(data=split["card"], model=model, out_dir=out, n_boot=20, batch_size=4, chunk_size=3,
                    progress=False)
    covariates = _covariates(run)
    assert list(covariates.columns) == ["covariate:contrast", "covariate:lighting"] and len(covariates) == 8
    again = run_audit(data=split["card"], model=model, out_dir=out, n_boot=20, progress=False)  # the cache
    assert _covariates(again).equals(covariates)
    monkeypatch.undo()
    reference = run_audit(data=split["card"], predictions=split["pred"], out_dir=tmp_path / "file", n_boot=20,
                          progress=False)
    assert covariates.equals(_covariates(reference))


def test_an_older_cache_without_statistics_decodes_again(tmp_path):
    """A cache written before the statistics were kept (or a damaged entry) is still right: decoded again."""
    from test_segmentation_e2e import make_model_card
    from test_segmentation_e2e import make_split as make_segmentation_split

    split = make_segmentation_split(tmp_path, n=6, card_extra="covariates: [brightness]\n")
    model = make_model_card(tmp_path)
    out = tmp_path / "out"
    first = run_audit(data=split["card"], model=model, out_dir=out, n_boot=20, progress=False)
    metas = [p for p in out.glob("*.json") if "image_statistics" in p.read_text()]  # the masks' meta file
    assert len(metas) == 1
    meta = json.loads(metas[0].read_text())
    meta["image_statistics"] = {"img00": ["dark", 1, 2, 3, 4, 5]}  # damaged, and the other images missing
    metas[0].write_text(json.dumps(meta))
    again = run_audit(data=split["card"], model=model, out_dir=out, n_boot=20, progress=False)
    assert again.provenance["predictions"]["source"] == "model"
    assert _covariates(again).equals(_covariates(first))


@pytest.mark.parametrize("saved", [
    None, [], "x", {"1": "row"}, {"1": [0.5, 0.1, 2.0, 8, 6]}, {"1": [0.5, 0.1, 2.0, 8, 6, True]},
    {"1": [0.5, "0.1", 2.0, 8, 6, 4.8e-5]}, {"2": [0.5, 0.1, 2.0, 8, 6, 4.8e-5]},
], ids=["none", "list", "text", "row-text", "short", "bool", "string", "other-key"])
def test_statistics_table_refuses_what_a_cache_should_not_hold(saved):
    from audit.core.image_stats import statistics_table

    assert statistics_table(saved, [1]) is None


def test_statistics_table_keys_as_strings_and_nan():
    from audit.core.image_stats import statistics_table

    table = statistics_table({"7": [0.5, 0.1, None, 1, 2, 2e-6], 9: (0.2, 0.0, 0.0, 3, 3, 9e-6)}, [9, 7])
    assert list(table.index) == [9, 7] and list(table.columns) == list(IMAGE_STATISTICS)
    assert np.isnan(table.loc[7, "sharpness"]) and table.loc[9, "width"] == 3 and table["width"].dtype == np.int64
