"""The bad-input catalogue: every kind of malformed input gets one exact line, exit code 2, and no output.

Each case builds a small valid project, breaks one thing, runs the ``audit`` CLI
and checks that stderr is exactly one line (the expected message, with the
case's paths filled in), that the exit code is 2 and that neither
``results.json`` nor ``index.html`` (nor a temporary file) was left behind.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from audit.cli import main
from detection_helpers import make_facet_split, write_facet_card
from slice_helpers import make_model, make_split

FAST = ["--n-boot", "10", "--n-perm", "10", "-q"]


def _classification(tmp):
    split = make_split(tmp, n=24)
    return {**split, "model": make_model(tmp), "out": tmp / "out"}


def _run_args(p, *, model=True, predictions=None, data=None):
    args = ["run", "--data", str(data or p["card"]), "--out", str(p["out"]), *FAST]
    if model:
        args += ["--model", str(p["model"])]
    if predictions is not None:
        args += ["--predictions", str(predictions)]
    return args


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, (path, old)
    path.write_text(text.replace(old, new, 1))


def _manifest(p, fn):
    frame = pd.read_csv(p["manifest"])
    fn(frame)
    frame.to_csv(p["manifest"], index=False)


# --- data cards ------------------------------------------------------------------------------------------

def data_card_bad_yaml(tmp):
    p = _classification(tmp)
    _edit(p["card"], "classes: [cat, dog]", "classes: [cat, dog")
    return _run_args(p), p["out"], {"card": p["card"]}


def data_card_no_front_matter(tmp):
    p = _classification(tmp)
    p["card"].write_text("# Just prose\n\nNo front matter here.\n")
    return _run_args(p), p["out"], {"card": p["card"]}


def data_card_unknown_field(tmp):
    p = _classification(tmp)
    _edit(p["card"], "min_group_size: 10", "min_group_size: 10\nlabel_colum: species")
    return _run_args(p), p["out"], {"card": p["card"]}


def data_card_covariate_not_a_list(tmp):
    p = _classification(tmp)
    _edit(p["card"], "min_group_size: 10", "min_group_size: 10\ncovariates: {lighting: 4}")
    return _run_args(p), p["out"], {"card": p["card"]}


def data_card_covariate_not_in_the_data(tmp):
    p = _classification(tmp)
    _edit(p["card"], "min_group_size: 10", "min_group_size: 10\ncovariates: [age, exposure]")
    return _run_args(p), p["out"], {"card": p["card"]}


def cli_covariates_repeated(tmp):
    p = _classification(tmp)
    return [*_run_args(p), "--covariates", "age,brightness,age"], p["out"], {}


def data_card_wrong_type(tmp):
    p = _classification(tmp)
    _edit(p["card"], "label_column: species", "label_column: 3")
    return _run_args(p), p["out"], {"card": p["card"]}


def data_card_unknown_scale(tmp):
    p = _classification(tmp)
    _edit(p["card"], "scale: fitzpatrick", "scale: fitzpatrik")
    return _run_args(p), p["out"], {"card": p["card"]}


def data_card_bin_out_of_scale(tmp):
    p = _classification(tmp)
    _edit(p["card"], "scale: fitzpatrick", "scale: fitzpatrick\n    bins: {lighter: [1, 2, 3], darker: [4, 5, 7]}")
    return _run_args(p), p["out"], {"card": p["card"]}


def data_card_intersection_unknown_attribute(tmp):
    p = _classification(tmp)
    _edit(p["card"], "- [gender, skin_type]", "- [gender, skin_tone]")
    return _run_args(p), p["out"], {"card": p["card"]}


def data_card_reference_unknown_grouping(tmp):
    p = _classification(tmp)
    _edit(p["card"], "skin_type: lighter", "skin: lighter")
    return _run_args(p), p["out"], {"card": p["card"]}


# --- manifests -------------------------------------------------------------------------------------------

def manifest_missing(tmp):
    p = _classification(tmp)
    p["manifest"].unlink()
    return _run_args(p), p["out"], {"manifest": p["manifest"]}


def manifest_lacks_column(tmp):
    p = _classification(tmp)
    _manifest(p, lambda f: f.pop("gender"))
    return _run_args(p), p["out"], {"manifest": p["manifest"], "card": p["card"]}


def manifest_duplicate_id(tmp):
    p = _classification(tmp)
    _manifest(p, lambda f: f.__setitem__("id", f["id"].where(f.index != 5, "s002")))
    return _run_args(p), p["out"], {"manifest": p["manifest"]}


def manifest_unknown_label(tmp):
    p = _classification(tmp)
    _manifest(p, lambda f: f.__setitem__("species", f["species"].where(f.index != 3, "horse")))
    return _run_args(p), p["out"], {"manifest": p["manifest"]}


def manifest_path_escapes_root(tmp):
    p = _classification(tmp)
    _manifest(p, lambda f: f.__setitem__("file", f["file"].where(f.index != 1, "../../etc/passwd")))
    return _run_args(p), p["out"], {"manifest": p["manifest"], "root": tmp / "data"}


def manifest_bad_attribute_value(tmp):
    p = _classification(tmp)
    _manifest(p, lambda f: f.__setitem__("skin", f["skin"].where(f.index != 4, "VII")))
    return _run_args(p), p["out"], {"manifest": p["manifest"]}


# --- images ----------------------------------------------------------------------------------------------

def image_missing(tmp):
    p = _classification(tmp)
    (p["images"] / "s007.png").unlink()
    return _run_args(p), p["out"], {"manifest": p["manifest"], "image": p["images"] / "s007.png"}


def image_unreadable(tmp):
    p = _classification(tmp)
    (p["images"] / "s004.png").write_bytes(b"this is not a png")
    return _run_args(p), p["out"], {"manifest": p["manifest"], "image": p["images"] / "s004.png"}


# --- model cards and checkpoints --------------------------------------------------------------------------

def model_unknown_architecture(tmp):
    p = _classification(tmp)
    _edit(p["model"], 'entry_point: "tiny_model:tiny_cnn"', "architecture: resnet999")
    return _run_args(p), p["out"], {"model": p["model"]}


def model_entry_point_missing(tmp):
    p = _classification(tmp)
    _edit(p["model"], "tiny_model:tiny_cnn", "audit.demo.nowhere:tiny_cnn")
    return _run_args(p), p["out"], {"model": p["model"]}


def model_weights_missing(tmp):
    p = _classification(tmp)
    (tmp / "models" / "tiny.pth").unlink()
    return _run_args(p), p["out"], {"model": p["model"], "weights": tmp / "models" / "tiny.pth"}


def model_checkpoint_not_a_state_dict(tmp):
    p = _classification(tmp)
    torch.save([1, 2, 3], tmp / "models" / "tiny.pth")
    return _run_args(p), p["out"], {"weights": tmp / "models" / "tiny.pth"}


def model_label_map_mismatch(tmp):
    p = _classification(tmp)
    _edit(p["model"], "label_map: {0: cat, 1: dog}", "label_map: {0: cat, 1: wolf}")
    return _run_args(p), p["out"], {"model": p["model"]}


# --- prediction files ------------------------------------------------------------------------------------

def _predictions(tmp, p, frame_fn, name="preds.csv"):
    ids = pd.read_csv(p["manifest"])["id"]
    frame = pd.DataFrame({"sample_id": ids, "score_cat": 0.3, "score_dog": 0.7})
    frame = frame_fn(frame)
    path = tmp / name
    frame.to_csv(path, index=False)
    return path


def predictions_ids_do_not_match(tmp):
    p = _classification(tmp)
    path = _predictions(tmp, p, lambda f: f.assign(sample_id=f["sample_id"].where(f.index != 0, "zzz")))
    return _run_args(p, model=False, predictions=path), p["out"], {"preds": path}


def predictions_missing_score_column(tmp):
    p = _classification(tmp)
    path = _predictions(tmp, p, lambda f: f.drop(columns=["score_dog"]))
    return _run_args(p, model=False, predictions=path), p["out"], {"preds": path}


def predictions_unknown_label(tmp):
    p = _classification(tmp)
    path = _predictions(tmp, p, lambda f: f[["sample_id"]].assign(pred=["cat"] * 5 + ["cow"] + ["dog"] * (len(f) - 6)))
    return _run_args(p, model=False, predictions=path), p["out"], {"preds": path}


def predictions_scores_not_numbers(tmp):
    p = _classification(tmp)
    path = _predictions(tmp, p, lambda f: f.assign(score_dog=["high"] * len(f)))
    return _run_args(p, model=False, predictions=path), p["out"], {"preds": path}


def predictions_file_missing(tmp):
    p = _classification(tmp)
    return _run_args(p, model=False, predictions=tmp / "nope.csv"), p["out"], {"preds": tmp / "nope.csv"}


# --- COCO JSON and FACET CSV -----------------------------------------------------------------------------

def _facet(tmp):
    root = make_facet_split(tmp / "facet", n_images=6)
    return root, write_facet_card(root)


def coco_not_json(tmp):
    root, card = _facet(tmp)
    (root / "coco_boxes.json").write_text("{not json")
    return (["run", "--data", str(card), "--predictions", str(root / "detections.json"), "--out", str(tmp / "out"),
             *FAST], tmp / "out", {"coco": root / "coco_boxes.json"})


def coco_annotation_unknown_image(tmp):
    root, card = _facet(tmp)
    coco = json.loads((root / "coco_boxes.json").read_text())
    coco["annotations"][2]["image_id"] = 777
    (root / "coco_boxes.json").write_text(json.dumps(coco))
    return (["run", "--data", str(card), "--predictions", str(root / "detections.json"), "--out", str(tmp / "out"),
             *FAST], tmp / "out", {"coco": root / "coco_boxes.json"})


def coco_results_bad_box(tmp):
    root, card = _facet(tmp)
    results = json.loads((root / "detections.json").read_text())
    results[1]["bbox"] = [1, 2, 3]
    (root / "detections.json").write_text(json.dumps(results))
    return (["run", "--data", str(card), "--predictions", str(root / "detections.json"), "--out", str(tmp / "out"),
             *FAST], tmp / "out", {"results": root / "detections.json"})


def facet_csv_missing_column(tmp):
    root, card = _facet(tmp)
    table = pd.read_csv(root / "annotations.csv")
    table.drop(columns=["skin_tone_7"]).to_csv(root / "annotations.csv", index=False)
    return (["run", "--data", str(card), "--predictions", str(root / "detections.json"), "--out", str(tmp / "out"),
             *FAST], tmp / "out", {"csv": root / "annotations.csv"})


def facet_csv_duplicate_person(tmp):
    root, card = _facet(tmp)
    table = pd.read_csv(root / "annotations.csv")
    table.loc[4, "person_id"] = table.loc[2, "person_id"]
    table.to_csv(root / "annotations.csv", index=False)
    return (["run", "--data", str(card), "--predictions", str(root / "detections.json"), "--out", str(tmp / "out"),
             *FAST], tmp / "out", {"csv": root / "annotations.csv"})


# --- segmentation masks ----------------------------------------------------------------------------------

def _segmentation(tmp):
    from test_segmentation_e2e import make_split as make_segmentation_split

    return make_segmentation_split(tmp)


def _segmentation_args(tmp, seg):
    return ["run", "--data", str(seg["card"]), "--predictions", str(seg["pred"]), "--out", str(tmp / "out"), *FAST]


def mask_label_missing(tmp):
    seg = _segmentation(tmp)
    (seg["data"] / "masks" / "img03.png").unlink()
    return _segmentation_args(tmp, seg), tmp / "out", {"mask": seg["data"] / "masks" / "img03.png",
                                                      "manifest": seg["data"] / "manifest.csv"}


def mask_label_value_not_a_class(tmp):
    from PIL import Image

    seg = _segmentation(tmp)
    path = seg["data"] / "masks" / "img02.png"
    label = np.array(Image.open(path))
    label[5, 5] = 9
    Image.fromarray(label).save(path)
    return _segmentation_args(tmp, seg), tmp / "out", {"mask": path, "manifest": seg["data"] / "manifest.csv"}


def mask_prediction_wrong_size(tmp):
    from PIL import Image

    seg = _segmentation(tmp)
    path = seg["pred"] / "img01.png"
    Image.fromarray(np.zeros((7, 9), dtype=np.uint8)).save(path)
    return _segmentation_args(tmp, seg), tmp / "out", {"pred": path, "pred_dir": seg["pred"]}


# --- compare policies ------------------------------------------------------------------------------------

def _audit_dir(tmp):
    p = _classification(tmp)
    assert main(_run_args(p)) == 0
    return p["out"]


def policy_unknown_key(tmp):
    audit_dir = _audit_dir(tmp / "a")
    policy = tmp / "policy.yaml"
    policy.write_text("max_drops: 0.1\n")
    return (["compare", str(audit_dir), str(audit_dir), "--policy", str(policy), "--out", str(tmp / "cmp")],
            tmp / "cmp", {"policy": policy})


def policy_negative_drop(tmp):
    audit_dir = _audit_dir(tmp / "a")
    policy = tmp / "policy.yaml"
    policy.write_text("max_drop:\n  accuracy: -0.5\n")
    return (["compare", str(audit_dir), str(audit_dir), "--policy", str(policy), "--out", str(tmp / "cmp")],
            tmp / "cmp", {"policy": policy})


# --- paths that leave the image root (issue 15: one containment check for every task) ------------------

def _secret(tmp):
    from PIL import Image

    secret = tmp / "secret.png"
    Image.fromarray(np.full((48, 64, 3), 200, dtype=np.uint8)).save(secret)
    return secret


def manifest_path_absolute(tmp):
    p = _classification(tmp)
    secret = _secret(tmp)
    _manifest(p, lambda f: f.__setitem__("file", f["file"].where(f.index != 2, str(secret))))
    return _run_args(p), p["out"], {"manifest": p["manifest"], "root": tmp / "data", "secret": secret}


def manifest_symlink_escapes_root(tmp):
    p = _classification(tmp)
    secret = _secret(tmp)
    (p["images"] / "s003.png").unlink()
    (p["images"] / "s003.png").symlink_to(secret)
    return _run_args(p), p["out"], {"manifest": p["manifest"], "root": tmp / "data"}


def imagefolder_symlink_escapes_root(tmp):
    from slice_helpers import write_images

    secret = _secret(tmp)
    folder = tmp / "folder"
    for cls in ("cat", "dog"):
        write_images(folder / cls, [f"{cls}{i}" for i in range(3)], [0 if cls == "cat" else 1] * 3)
    (folder / "dog" / "dog9.png").symlink_to(secret)
    ids = [f"cat/cat{i}.png" for i in range(3)] + [f"dog/dog{i}.png" for i in range(3)] + ["dog/dog9.png"]
    pd.DataFrame({"id": ids, "gender": ["female", "male"] * 3 + ["male"]}).to_csv(tmp / "attrs.csv", index=False)
    card = tmp / "folder.md"
    card.write_text(textwrap.dedent("""\
        ---
        split:
          imagefolder: folder
          attributes: attrs.csv
          id_column: id
        classes: [cat, dog]
        attributes:
          gender: {column: gender}
        min_group_size: 2
        ---
        """))
    p = {"card": card, "model": make_model(tmp), "out": tmp / "out"}
    return _run_args(p), p["out"], {"folder": folder}


def _coco_edit(tmp, fn, *, command="run"):
    root, card = _facet(tmp)
    coco = json.loads((root / "coco_boxes.json").read_text())
    fn(coco)
    (root / "coco_boxes.json").write_text(json.dumps(coco))
    if command == "data-card":
        args = ["data-card", str(card), "--out", str(tmp / "out"), "--no-write"]
    else:
        args = ["run", "--data", str(card), "--predictions", str(root / "detections.json"), "--out",
                str(tmp / "out"), *FAST]
    return args, tmp / "out", {"coco": root / "coco_boxes.json", "root": root}


def coco_file_name_escapes_root(tmp):
    return _coco_edit(tmp, lambda c: c["images"][1].__setitem__("file_name", "../../secret.png"))


def coco_file_name_absolute(tmp):
    return _coco_edit(tmp, lambda c: c["images"][0].__setitem__("file_name", "/etc/passwd"))


def coco_file_name_escapes_root_data_card(tmp):
    return _coco_edit(tmp, lambda c: c["images"][1].__setitem__("file_name", "../../secret.png"),
                      command="data-card")


def _segmentation_manifest(tmp, column, row, value):
    seg = _segmentation(tmp)
    manifest = seg["data"] / "manifest.csv"
    frame = pd.read_csv(manifest)
    frame.loc[row, column] = value
    frame.to_csv(manifest, index=False)
    return _segmentation_args(tmp, seg), tmp / "out", {"manifest": manifest, "root": seg["data"]}


def segmentation_image_escapes_root(tmp):
    return _segmentation_manifest(tmp, "file", 1, "../../secret.png")


def segmentation_label_mask_absolute(tmp):
    return _segmentation_manifest(tmp, "mask", 2, "/etc/hostname")


def segmentation_person_mask_escapes_root(tmp):
    seg = _segmentation(tmp)
    table = seg["data"] / "people.csv"
    frame = pd.read_csv(table)
    frame.loc[3, "mask"] = "../people/../../x.png"
    frame.to_csv(table, index=False)
    return _segmentation_args(tmp, seg), tmp / "out", {"people": table, "root": seg["data"]}


# --- strict input (issue 15) -------------------------------------------------------------------------------

def predictions_scores_are_logits(tmp):
    p = _classification(tmp)
    path = _predictions(tmp, p, lambda f: f.assign(score_cat=-1.25, score_dog=2.5))
    return _run_args(p, model=False, predictions=path), p["out"], {"preds": path}


def predictions_scores_do_not_sum_to_one(tmp):
    p = _classification(tmp)
    path = _predictions(tmp, p, lambda f: f.assign(score_cat=f["score_cat"].where(f.index != 4, 0.8)))
    return _run_args(p, model=False, predictions=path), p["out"], {"preds": path}


def predictions_score_infinite(tmp):
    p = _classification(tmp)
    path = _predictions(tmp, p, lambda f: f.assign(score_dog=f["score_dog"].where(f.index != 6, float("inf"))))
    return _run_args(p, model=False, predictions=path), p["out"], {"preds": path}


def manifest_header_only(tmp):
    p = _classification(tmp)
    _manifest(p, lambda f: f.drop(index=f.index, inplace=True))
    return _run_args(p), p["out"], {"manifest": p["manifest"]}


def segmentation_manifest_header_only(tmp):
    seg = _segmentation(tmp)
    manifest = seg["data"] / "manifest.csv"
    pd.read_csv(manifest).head(0).to_csv(manifest, index=False)
    return _segmentation_args(tmp, seg), tmp / "out", {"manifest": manifest}


def _masks_edit(tmp, fn):
    root = make_facet_split(tmp / "facet", n_images=6)
    card = write_facet_card(root, extra="task: instance_segmentation\n")
    masks = json.loads((root / "coco_masks.json").read_text())
    fn(masks)
    (root / "coco_masks.json").write_text(json.dumps(masks))
    args = ["run", "--data", str(card), "--predictions", str(root / "detections.json"), "--out", str(tmp / "out"),
            *FAST]
    return args, tmp / "out", {"coco": root / "coco_boxes.json", "masks": root / "coco_masks.json"}


def coco_rle_size_differs_from_image(tmp):
    from detection_helpers import square_rle

    args, out, paths = _masks_edit(tmp, lambda m: m["annotations"][0].__setitem__(
        "segmentation", square_rle(24, 32, 1, 1, 5, 5)))
    return args, out, paths


def coco_rle_counts_overrun(tmp):
    args, out, paths = _masks_edit(tmp, lambda m: m["annotations"][0].__setitem__(
        "segmentation", {"size": [48, 64], "counts": [3000, 100, 200]}))
    return args, out, paths


def coco_results_negative_box(tmp):
    root, card = _facet(tmp)
    results = json.loads((root / "detections.json").read_text())
    results[2]["bbox"] = [5, 5, -3, 10]
    (root / "detections.json").write_text(json.dumps(results))
    return (["run", "--data", str(card), "--predictions", str(root / "detections.json"), "--out", str(tmp / "out"),
             *FAST], tmp / "out", {"results": root / "detections.json"})


def coco_image_id_unhashable(tmp):
    return _coco_edit(tmp, lambda c: c["images"][0].__setitem__("id", [1, 2]))


def coco_annotation_image_id_unhashable(tmp):
    return _coco_edit(tmp, lambda c: c["annotations"][1].__setitem__("image_id", {"a": 1}))


def coco_category_id_string(tmp):
    return _coco_edit(tmp, lambda c: c["annotations"][0].__setitem__("category_id", "1"))


def coco_results_category_id_string(tmp):
    root, card = _facet(tmp)
    results = json.loads((root / "detections.json").read_text())
    results[0]["category_id"] = "person"
    (root / "detections.json").write_text(json.dumps(results))
    return (["run", "--data", str(card), "--predictions", str(root / "detections.json"), "--out", str(tmp / "out"),
             *FAST], tmp / "out", {"results": root / "detections.json"})


def coco_deeply_nested(tmp):
    root, card = _facet(tmp)
    (root / "coco_boxes.json").write_text("[" * 100_000 + "]" * 100_000)
    return (["run", "--data", str(card), "--predictions", str(root / "detections.json"), "--out", str(tmp / "out"),
             *FAST], tmp / "out", {"coco": root / "coco_boxes.json"})


def coco_image_without_size(tmp):
    return _coco_edit(tmp, lambda c: c["images"][2].__setitem__("height", None))


def person_instance_absent_from_mask(tmp):
    seg = _segmentation(tmp)
    table = seg["data"] / "people.csv"
    frame = pd.read_csv(table)
    frame["instance"] = 255
    frame.loc[2, "instance"] = 7
    frame.to_csv(table, index=False)
    _edit(seg["card"], "    mask_column: mask\n    attributes:",
          "    mask_column: mask\n    instance_column: instance\n    attributes:")
    return _segmentation_args(tmp, seg), tmp / "out", {"people": table, "mask": seg["data"] / "people" / "img02_p0.png"}


def predicted_mask_cell_empty(tmp):
    seg = _segmentation(tmp)
    manifest = tmp / "pred.csv"
    ids = [f"img{i:02d}" for i in range(16)]
    pd.DataFrame({"sample_id": ids, "mask": [f"data/pred/{i}.png" if i != "img05" else "" for i in ids]}).to_csv(
        manifest, index=False)
    args = ["run", "--data", str(seg["card"]), "--predictions", str(manifest), "--out", str(tmp / "out"), *FAST]
    return args, tmp / "out", {"preds": manifest}


def data_card_one_class(tmp):
    p = _classification(tmp)
    _edit(p["card"], "classes: [cat, dog]", "classes: [cat]")
    return _run_args(p), p["out"], {"card": p["card"]}


def data_card_reference_unknown_group(tmp):
    p = _classification(tmp)
    _edit(p["card"], "skin_type: lighter", "skin_type: purple")
    return _run_args(p), p["out"], {"card": p["card"]}


def data_card_yaml_alias_bomb(tmp):
    p = _classification(tmp)
    bomb = "".join(f"x{i}: &x{i} [{', '.join([f'*x{i - 1}'] * 9)}]\n" for i in range(1, 10))
    _edit(p["card"], "min_group_size: 10", "min_group_size: 10\nx0: &x0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n"
          + bomb.rstrip("\n"))
    return _run_args(p), p["out"], {"card": p["card"]}


def data_card_alias_bomb_in_checked_field(tmp):
    p = _classification(tmp)
    text = p["card"].read_text()
    bomb = "x0: &x0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n" + "".join(
        f"x{i}: &x{i} [{', '.join([f'*x{i - 1}'] * 9)}]\n" for i in range(1, 8))
    p["card"].write_text(text.replace("---\n", "---\n" + bomb, 1).replace("label_column: species", "label_column: *x7"))
    return _run_args(p), p["out"], {"card": p["card"]}


# --- command line and output directory --------------------------------------------------------------------

def out_is_a_file(tmp):
    p = _classification(tmp)
    p["out"].write_text("not a directory\n")
    return _run_args(p), tmp / "nothing", {"out": p["out"]}


def out_below_a_file(tmp):
    p = _classification(tmp)
    (tmp / "afile").write_text("x")
    p["out"] = tmp / "afile" / "out"
    return _run_args(p), tmp / "nothing", {"out": p["out"]}


def seed_negative(tmp):
    p = _classification(tmp)
    return _run_args(p) + ["--seed", "-1"], p["out"], {}


def n_boot_huge(tmp):
    p = _classification(tmp)
    return _run_args(p) + ["--n-boot", "1000000000"], p["out"], {}


def report_tampered_results(tmp):
    out = _audit_dir(tmp / "a")
    doc = json.loads((out / "results.json").read_text())
    doc["results"]["metrics"][0]["value"] = "a lot"
    (out / "results.json").write_text(json.dumps(doc))
    return ["report", str(out)], out, {"results": out / "results.json"}


def report_results_not_an_audit(tmp):
    out = tmp / "fake"
    out.mkdir()
    (out / "results.json").write_text(json.dumps({"results": {"metrics": 3}}))
    return ["report", str(out)], out, {"results": out / "results.json"}


def train_empty_split(tmp):
    p = _classification(tmp)
    _manifest(p, lambda f: f.drop(index=f.index, inplace=True))
    return (["train", "--task", "classification", "--data", str(p["card"]), "--out", str(tmp / "models" / "new.md")],
            tmp / "models", {"manifest": p["manifest"]})


def segmentation_sample_id_is_a_path(tmp):
    return _segmentation_manifest(tmp, "id", 3, "../../evil")


def compare_results_deeply_nested(tmp):
    audit_dir = _audit_dir(tmp / "a")
    bad = tmp / "bad"
    bad.mkdir()
    (bad / "results.json").write_text("[" * 100_000 + "]" * 100_000)
    return (["compare", str(audit_dir), str(bad), "--out", str(tmp / "cmp")], tmp / "cmp",
            {"results": bad / "results.json"})


def report_incomplete_commit(tmp):
    out = _audit_dir(tmp / "a")
    (out / ".commit").mkdir()
    return ["report", str(out)], out, {"out": out}


def coco_polygon_far_outside_the_image(tmp):
    args, out, paths = _masks_edit(tmp, lambda m: m["annotations"][1].__setitem__(
        "segmentation", [[1e300, 2, 3, 4, 5, 6]]))
    return args, out, paths


CASES = {
    # data cards
    "data_card_bad_yaml": (data_card_bad_yaml,
                           "{card}: invalid YAML front matter (line 9): expected ',' or ']', but got ':'"),
    "data_card_no_front_matter": (data_card_no_front_matter,
                                  "{card}: expected YAML front matter between '---' lines at the top of the file, "
                                  "found none"),
    "data_card_covariate_not_a_list": (data_card_covariate_not_a_list,
                                       "{card}: field 'covariates': expected a non-empty list of covariate names "
                                       "(or mappings with name, column, quantiles), found a mapping with keys "
                                       "lighting"),
    "data_card_covariate_not_in_the_data": (data_card_covariate_not_in_the_data,
                                            "{card}: field 'covariates[1]': expected a column of the data or one of "
                                            "brightness, contrast, sharpness, resolution, found 'exposure'"),
    "cli_covariates_repeated": (cli_covariates_repeated,
                                "--covariates: expected a covariate name not listed before, found 'age'"),
    "data_card_unknown_field": (data_card_unknown_field,
                                "{card}: field 'label_colum': expected one of the known fields "
                                "(allow_paths_outside_root, annotations_creators, attributes, classes, compare_to, "
                                "correction, covariates, description, disparity_metrics, image_root, imported_from, "
                                "intersections, interval, label_column, language, license, min_group_size, name, "
                                "pos_label, pretty_name, reference_groups, reference_population, segmentation, "
                                "size_categories, source_datasets, split, tags, task_categories, version), found an "
                                "unknown field"),
    "data_card_wrong_type": (data_card_wrong_type, "{card}: field 'label_column': expected a string, found 3"),
    "data_card_unknown_scale": (data_card_unknown_scale,
                                "{card}: field 'attributes.skin_type.scale': expected one of nominal, ordinal, "
                                "fitzpatrick, monk, found 'fitzpatrik'"),
    "data_card_bin_out_of_scale": (data_card_bin_out_of_scale,
                                   "{card}: field 'attributes.skin_type.bins.darker[2]': expected a fitzpatrick "
                                   "value 1..6 or I..VI, found 7"),
    "data_card_intersection_unknown_attribute": (data_card_intersection_unknown_attribute,
                                                 "{card}: field 'intersections[0][1]': expected a declared attribute "
                                                 "(skin_type, gender, age), found 'skin_tone'"),
    "data_card_reference_unknown_grouping": (data_card_reference_unknown_grouping,
                                             "{card}: field 'reference_groups.skin': expected a grouping name "
                                             "(overall, skin_type, gender, age, gender × skin_type), found 'skin'"),
    # manifests
    "manifest_missing": (manifest_missing, "{manifest}: file not found"),
    "manifest_lacks_column": (manifest_lacks_column,
                              "{manifest}: missing column 'gender' declared by {card} field "
                              "'attributes.gender.column'; found columns: id, file, species, skin, age"),
    "manifest_duplicate_id": (manifest_duplicate_id,
                              "{manifest}: row 6 (id 's002'): duplicate sample id (first seen in row 3)"),
    "manifest_unknown_label": (manifest_unknown_label,
                               "{manifest}: row 4 (id 's003'): field 'species': unknown label 'horse'; "
                               "expected one of: cat, dog"),
    "manifest_path_escapes_root": (manifest_path_escapes_root,
                                   "{manifest}: row 2 (id 's001'): field 'file': image path '../../etc/passwd' is "
                                   "outside the image root {root}; set 'allow_paths_outside_root: true' in the data "
                                   "card to allow it"),
    "manifest_bad_attribute_value": (manifest_bad_attribute_value,
                                     "{manifest}: row 5 (id 's004'): field 'skin': expected a fitzpatrick value in "
                                     "1..6, found 'VII'"),
    # images
    "image_missing": (image_missing, "{manifest}: row 8 (id 's007'): image file not found: {image}"),
    "image_unreadable": (image_unreadable,
                         "{manifest}: row 5 (id 's004'): cannot read image {image}: not a recognised image format"),
    # model cards and checkpoints
    "model_unknown_architecture": (model_unknown_architecture,
                                   "{model}: field 'model.architecture': expected a torchvision model name "
                                   "(see torchvision.models.list_models()), found 'resnet999'"),
    "model_entry_point_missing": (model_entry_point_missing,
                                  "{model}: field 'model.entry_point': cannot import 'audit.demo.nowhere': "
                                  "No module named 'audit.demo.nowhere'"),
    "model_weights_missing": (model_weights_missing, "{model}: file not found: {weights}"),
    "model_checkpoint_not_a_state_dict": (model_checkpoint_not_a_state_dict,
                                          "{weights}: expected a state dict (parameter name -> tensor), found list"),
    "model_label_map_mismatch": (model_label_map_mismatch,
                                 "{model}: field 'label_map': expected the data card's classes (cat, dog), "
                                 "found ['cat', 'wolf']"),
    # prediction files
    "predictions_ids_do_not_match": (predictions_ids_do_not_match,
                                     "{preds}: sample ids do not match the split: 1 split ids missing ('s000'); "
                                     "1 ids not in the split ('zzz')"),
    "predictions_missing_score_column": (predictions_missing_score_column,
                                         "{preds}: expected a score column for every class, missing: score_dog"),
    "predictions_unknown_label": (predictions_unknown_label,
                                  "{preds}: sample 's005': field 'pred': expected a class name (cat, dog) or index "
                                  "0..1, found 'cow'"),
    "predictions_scores_not_numbers": (predictions_scores_not_numbers,
                                       "{preds}: score columns must be numbers: Unable to parse string 'high' at "
                                       "position 0"),
    "predictions_file_missing": (predictions_file_missing, "{preds}: predictions file not found"),
    # COCO JSON and FACET CSV
    "coco_not_json": (coco_not_json,
                      "{coco}: invalid JSON at line 1 column 2: Expecting property name enclosed in double quotes"),
    "coco_annotation_unknown_image": (coco_annotation_unknown_image,
                                      "{coco}: annotations[2]: field 'image_id': expected an id listed in 'images', "
                                      "found 777"),
    "coco_results_bad_box": (coco_results_bad_box,
                             "{results}: detection [1]: field 'bbox': expected [x, y, width, height], found [1, 2, 3]"),
    "facet_csv_missing_column": (facet_csv_missing_column,
                                 "{csv}: columns skin_tone_*: expected one vote column per monk level (skin_tone_1 .. "
                                 "skin_tone_10), found missing skin_tone_7"),
    "facet_csv_duplicate_person": (facet_csv_duplicate_person,
                                   "{csv}: column 'person_id': duplicate annotation id 3"),
    # segmentation masks
    "mask_label_missing": (mask_label_missing, "{manifest}: row 4 (id 'img03'): label mask file not found: {mask}"),
    "mask_label_value_not_a_class": (mask_label_value_not_a_class,
                                     "{mask}: label mask of sample 'img02': expected label values in 0..2 or "
                                     "ignore_index 255, found 9"),
    "mask_prediction_wrong_size": (mask_prediction_wrong_size,
                                   "{pred}: expected a predicted mask of the label mask's size (16, 16) "
                                   "(width, height) for sample 'img01', found (9, 7)"),
    # compare policies
    "policy_unknown_key": (policy_unknown_key,
                           "policy '{policy}': unknown key 'max_drops', expected one of max_drop, "
                           "max_disparity_growth, min_n, significant_only, alpha, correction, confidence, n_boot, "
                           "seed, metrics, disparity_kinds, higher_is_better, lower_is_better"),
    "policy_negative_drop": (policy_negative_drop,
                             "policy '{policy}': max_drop['accuracy']: expected a finite number >= 0, found -0.5"),
    # paths leaving the image root, every task
    "manifest_path_absolute": (manifest_path_absolute,
                               "{manifest}: row 3 (id 's002'): field 'file': image path '{secret}' is outside the "
                               "image root {root}; set 'allow_paths_outside_root: true' in the data card to allow it"),
    "manifest_symlink_escapes_root": (manifest_symlink_escapes_root,
                                      "{manifest}: row 4 (id 's003'): field 'file': image path 'images/s003.png' is "
                                      "outside the image root {root}; set 'allow_paths_outside_root: true' in the data "
                                      "card to allow it"),
    "imagefolder_symlink_escapes_root": (imagefolder_symlink_escapes_root,
                                         "{folder}: image 'dog/dog9.png': image path 'dog/dog9.png' is outside the "
                                         "image root {folder}; set 'allow_paths_outside_root: true' in the data card "
                                         "to allow it"),
    "coco_file_name_escapes_root": (coco_file_name_escapes_root,
                                    "{coco}: images[1]: field 'file_name': image path '../../secret.png' is outside "
                                    "the image root {root}; set 'allow_paths_outside_root: true' in the data card to "
                                    "allow it"),
    "coco_file_name_absolute": (coco_file_name_absolute,
                                "{coco}: images[0]: field 'file_name': image path '/etc/passwd' is outside the image "
                                "root {root}; set 'allow_paths_outside_root: true' in the data card to allow it"),
    "coco_file_name_escapes_root_data_card": (coco_file_name_escapes_root_data_card,
                                              "{coco}: images[1]: field 'file_name': image path '../../secret.png' is "
                                              "outside the image root {root}; set 'allow_paths_outside_root: true' in "
                                              "the data card to allow it"),
    "segmentation_image_escapes_root": (segmentation_image_escapes_root,
                                        "{manifest}: row 2 (id 'img01'): field 'file': image path '../../secret.png' "
                                        "is outside the image root {root}; set 'allow_paths_outside_root: true' in "
                                        "the data card to allow it"),
    "segmentation_label_mask_absolute": (segmentation_label_mask_absolute,
                                         "{manifest}: row 3 (id 'img02'): field 'mask': label mask path "
                                         "'/etc/hostname' is outside the image root {root}; set "
                                         "'allow_paths_outside_root: true' in the data card to allow it"),
    "segmentation_person_mask_escapes_root": (segmentation_person_mask_escapes_root,
                                              "{people}: row 4: field 'mask': person mask path "
                                              "'../people/../../x.png' is outside the image root {root}; set "
                                              "'allow_paths_outside_root: true' in the data card to allow it"),
    # strict input
    "predictions_scores_are_logits": (predictions_scores_are_logits,
                                      "{preds}: sample 's000': field 'score_cat': expected a probability in 0..1, "
                                      "found -1.25; apply a softmax to logits first"),
    "predictions_scores_do_not_sum_to_one": (predictions_scores_do_not_sum_to_one,
                                             "{preds}: sample 's004': expected class scores summing to 1 "
                                             "(probabilities), found a sum of 1.5; apply a softmax to logits first"),
    "predictions_score_infinite": (predictions_score_infinite,
                                   "{preds}: sample 's006': field 'score_dog': expected a probability in 0..1, found "
                                   "inf; apply a softmax to logits first"),
    "manifest_header_only": (manifest_header_only,
                             "{manifest}: expected at least one sample (a row below the header), found none"),
    "segmentation_manifest_header_only": (segmentation_manifest_header_only,
                                          "{manifest}: expected at least one sample (a row below the header), found "
                                          "none"),
    "coco_rle_size_differs_from_image": (coco_rle_size_differs_from_image,
                                         "{coco}: annotations[0]: field 'segmentation.size': expected the image's "
                                         "[height, width] [48, 64], found [24, 32]"),
    "coco_rle_counts_overrun": (coco_rle_counts_overrun,
                                "{coco}: annotations[0]: field 'segmentation.counts': expected non-negative run "
                                "lengths summing to 48 x 64 = 3072 pixels, found a sum of 3300"),
    "coco_results_negative_box": (coco_results_negative_box,
                                  "{results}: detection [2]: field 'bbox': expected a non-negative width and height, "
                                  "found [5, 5, -3, 10]"),
    # tracebacks turned into one line
    "coco_image_id_unhashable": (coco_image_id_unhashable,
                                 "{coco}: images[0]: field 'id': expected a 64-bit integer, found [1, 2]"),
    "coco_annotation_image_id_unhashable": (coco_annotation_image_id_unhashable,
                                            "{coco}: annotations[1]: field 'image_id': expected a 64-bit integer, found "
                                            "{{'a': 1}}"),
    "coco_category_id_string": (coco_category_id_string,
                                "{coco}: annotations[0]: field 'category_id': expected a 64-bit integer, found '1'"),
    "coco_results_category_id_string": (coco_results_category_id_string,
                                        "{results}: detection [0]: field 'category_id': expected a 64-bit integer, found "
                                        "'person'"),
    "coco_deeply_nested": (coco_deeply_nested,
                           "{coco}: expected COCO JSON, found values nested too deeply to read"),
    "coco_image_without_size": (coco_image_without_size,
                                "{coco}: images[2]: field 'height': expected a positive integer (at most 1,000,000), "
                                "found None"),
    "person_instance_absent_from_mask": (person_instance_absent_from_mask,
                                         "{people}: row 3: field 'instance': expected instance id 7 in the person mask "
                                         "{mask}, found values 0, 255"),
    "predicted_mask_cell_empty": (predicted_mask_cell_empty,
                                  "{preds}: row 6 (id 'img05'): field 'mask': expected a path, found an empty value"),
    "data_card_one_class": (data_card_one_class, "{card}: field 'classes': expected at least 2 classes, found ['cat']"),
    "data_card_reference_unknown_group": (data_card_reference_unknown_group,
                                          "{card}: reference_groups['skin_type']: expected one of ['lighter', "
                                          "'darker'], found 'purple'"),
    "data_card_yaml_alias_bomb": (data_card_yaml_alias_bomb,
                                  "{card}: invalid YAML front matter: expected at most 100,000 values with aliases "
                                  "expanded, found more (an alias bomb?)"),
    "data_card_alias_bomb_in_checked_field": (data_card_alias_bomb_in_checked_field,
                                              "{card}: invalid YAML front matter: expected at most 100,000 values "
                                              "with aliases expanded, found more (an alias bomb?)"),
    "out_is_a_file": (out_is_a_file, "{out}: expected a directory for the output, found a file"),
    "out_below_a_file": (out_below_a_file, "{out}: expected a directory for the output, found a file on the way"),
    "seed_negative": (seed_negative, "audit run: argument --seed: expected an integer >= 0, found -1"),
    "n_boot_huge": (n_boot_huge, "audit run: argument --n-boot: expected an integer <= 100,000, found 1,000,000,000"),
    "report_tampered_results": (report_tampered_results,
                                "report: '{results}' is not an audit results.json: at results/metrics/0/value: "
                                "'a lot' is not of type 'number', 'null'"),
    "report_results_not_an_audit": (report_results_not_an_audit,
                                    "report: '{results}' is not an audit results.json: at top level: 'schema_version' "
                                    "is a required property"),
    "train_empty_split": (train_empty_split,
                          "{manifest}: expected at least one sample (a row below the header), found none"),
    "segmentation_sample_id_is_a_path": (segmentation_sample_id_is_a_path,
                                         "{manifest}: row 4 (id '../../evil'): field 'id': expected a sample id "
                                         "usable as a file name (no '/', '\\', '.' or '..'), found one that is not"),
    "compare_results_deeply_nested": (compare_results_deeply_nested,
                                      "candidate: '{results}' is not an audit results.json: values nested too deeply"),
    "report_incomplete_commit": (report_incomplete_commit,
                                 "{out}: the output is incomplete (an audit was interrupted while writing it); run "
                                 "the audit again to finish it"),
    "coco_polygon_far_outside_the_image": (coco_polygon_far_outside_the_image,
                                           "{coco}: annotations[1]: field 'segmentation': expected polygon "
                                           "coordinates within the image (64 x 48, with a margin of one image size), "
                                           "found 1e+300"),
}


def _snapshot(out: Path) -> dict:
    """Every file under ``out`` with its bytes (an empty dict when ``out`` is missing or a file)."""
    if not out.is_dir():
        return {}
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("name", sorted(CASES))
def test_bad_input(name, tmp_path, capsys):
    build, expected = CASES[name]
    args, out, paths = build(tmp_path)
    before = _snapshot(out)
    capsys.readouterr()
    try:
        code = main(args)
    except SystemExit as exc:  # argparse: a usage error
        code = exc.code
    captured = capsys.readouterr()
    lines = captured.err.splitlines()
    assert code == 2, captured.err
    assert lines == ["error: " + expected.format(**paths)]
    # the output directory holds exactly what it held before (no results, no temporary or staging files)
    after = {k: v for k, v in _snapshot(out).items() if k != ".audit.lock"}
    assert after == {k: v for k, v in before.items() if k != ".audit.lock"}


# --- panoptic segmentation (issue #20): a separate block, run by its own test below ------------------------------

def _panoptic(tmp, edit=None, *, preds=False):
    """The tiny panoptic split of tests/panoptic_helpers.py, with ``edit(doc)`` applied to its ground truth (or, with
    ``preds``, its predictions) JSON; the CLI arguments of an audit of its predictions."""
    from panoptic_helpers import write_dataset

    p = write_dataset(tmp, n_images=6)
    target = p["preds"] if preds else p["gt"]
    if edit is not None:
        doc = json.loads(target.read_text())
        edit(doc, p)
        target.write_text(json.dumps(doc))
    args = ["run", "--data", str(p["card"]), "--predictions", str(p["preds"]), "--out", str(p["out"]), *FAST]
    return args, p


def panoptic_png_id_not_in_segments_info(tmp):
    found = {}

    def drop_stuff(doc, p):
        infos = doc["annotations"][2]["segments_info"]
        gone = next(s for s in infos if s["id"] >= 1000)  # a stuff segment (no person row refers to it)
        infos.remove(gone)
        found.update(sid=gone["id"], rgb=f"{gone['id'] % 256}, {gone['id'] // 256 % 256}, {gone['id'] // 65536}")

    args, p = _panoptic(tmp, drop_stuff)
    return args, p["out"], {"gt": p["gt"], "png": p["gt_dir"] / "0003.png", **found}


def panoptic_duplicate_segment(tmp):
    def repeat(doc, p):
        infos = doc["annotations"][1]["segments_info"]
        infos.append(dict(infos[0]))

    args, p = _panoptic(tmp, repeat)
    infos = json.loads(p["gt"].read_text())["annotations"][1]["segments_info"]
    return args, p["out"], {"gt": p["gt"], "j": len(infos) - 1, "sid": infos[0]["id"]}


def panoptic_prediction_duplicate_segment(tmp):
    def repeat(doc, p):
        infos = doc["annotations"][0]["segments_info"]
        infos.insert(2, dict(infos[1]))

    args, p = _panoptic(tmp, repeat, preds=True)
    sid = json.loads(p["preds"].read_text())["annotations"][0]["segments_info"][1]["id"]
    return args, p["out"], {"preds": p["preds"], "sid": sid}


def panoptic_prediction_png_wrong_size(tmp):
    from panoptic_helpers import save_png

    args, p = _panoptic(tmp)
    save_png(p["preds_dir"] / "0003.png", np.zeros((10, 20), np.int64))
    return args, p["out"], {"png": p["preds_dir"] / "0003.png"}


def panoptic_png_wrong_size(tmp):
    from panoptic_helpers import save_png

    args, p = _panoptic(tmp)
    save_png(p["gt_dir"] / "0002.png", np.zeros((10, 20), np.int64))
    return args, p["out"], {"png": p["gt_dir"] / "0002.png"}


def panoptic_unknown_category(tmp):
    args, p = _panoptic(tmp, lambda doc, p: doc["annotations"][0]["segments_info"][1].__setitem__("category_id", 99))
    return args, p["out"], {"gt": p["gt"]}


def panoptic_prediction_unknown_category(tmp):
    args, p = _panoptic(tmp, lambda doc, p: doc["annotations"][4]["segments_info"][0].__setitem__("category_id", 77),
                        preds=True)
    return args, p["out"], {"preds": p["preds"]}


def panoptic_file_name_escapes_root(tmp):
    args, p = _panoptic(tmp, lambda doc, p: doc["annotations"][1].__setitem__("file_name", "../../secret.png"))
    return args, p["out"], {"gt": p["gt"], "root": p["gt_dir"]}


def panoptic_prediction_file_name_absolute(tmp):
    args, p = _panoptic(tmp, lambda doc, p: doc["annotations"][3].__setitem__("file_name", "/etc/hostname"),
                        preds=True)
    return args, p["out"], {"preds": p["preds"], "root": p["preds_dir"]}


def panoptic_side_table_unknown_segment(tmp):
    args, p = _panoptic(tmp)
    table = pd.read_csv(p["people"])
    table.loc[1, "segment_id"] = 999
    table.to_csv(p["people"], index=False)
    return args, p["out"], {"people": p["people"], "gt": p["gt"], "image": int(table.loc[1, "image_id"])}


PANOPTIC_CASES = {
    "panoptic_png_id_not_in_segments_info": (
        panoptic_png_id_not_in_segments_info,
        "{gt}: annotations[2] (image id 3): field 'segments_info': expected every segment id of {png} listed, found "
        "id {sid} (RGB {rgb}) in the PNG but not listed"),
    "panoptic_duplicate_segment": (
        panoptic_duplicate_segment,
        "{gt}: annotations[1].segments_info[{j}] (image id 2): field 'id': expected a segment id not listed before in "
        "this image, found {sid} again (segments_info[0])"),
    "panoptic_prediction_duplicate_segment": (
        panoptic_prediction_duplicate_segment,
        "{preds}: annotations[0].segments_info[2] (image id 1): field 'id': expected a segment id not listed before "
        "in this image, found {sid} again (segments_info[1])"),
    "panoptic_prediction_png_wrong_size": (
        panoptic_prediction_png_wrong_size,
        "{png}: expected a predicted panoptic PNG of the ground truth's size (48, 40) (width, height) for image id 3, "
        "found (20, 10)"),
    "panoptic_png_wrong_size": (
        panoptic_png_wrong_size,
        "{png}: expected a panoptic PNG of the image's size (48, 40) (width, height) for image id 2, found (20, 10)"),
    "panoptic_unknown_category": (
        panoptic_unknown_category,
        "{gt}: annotations[0].segments_info[1] (image id 1): field 'category_id': expected a category listed in "
        "'categories' of {gt}, found 99"),
    "panoptic_prediction_unknown_category": (
        panoptic_prediction_unknown_category,
        "{preds}: annotations[4].segments_info[0] (image id 5): field 'category_id': expected a category listed in "
        "'categories' of the ground truth, found 77"),
    "panoptic_file_name_escapes_root": (
        panoptic_file_name_escapes_root,
        "{gt}: annotations[1]: field 'file_name': panoptic PNG path '../../secret.png' is outside the image root "
        "{root}; set 'allow_paths_outside_root: true' in the data card to allow it"),
    "panoptic_prediction_file_name_absolute": (
        panoptic_prediction_file_name_absolute,
        "{preds}: annotations[3]: field 'file_name': panoptic PNG path '/etc/hostname' is outside the image root "
        "{root}; set 'allow_paths_outside_root: true' in the data card to allow it"),
    "panoptic_side_table_unknown_segment": (
        panoptic_side_table_unknown_segment,
        "{people}: row 3: columns 'image_id', 'segment_id': expected a non-crowd person segment of {gt}, found image "
        "{image}, segment 999"),
}


@pytest.mark.parametrize("name", sorted(PANOPTIC_CASES))
def test_bad_panoptic_input(name, tmp_path, capsys):
    build, expected = PANOPTIC_CASES[name]
    args, out, paths = build(tmp_path)
    before = _snapshot(out)
    capsys.readouterr()
    code = main(args)
    captured = capsys.readouterr()
    assert code == 2, captured.err
    assert captured.err.splitlines() == ["error: " + expected.format(**paths)]
    after = {k: v for k, v in _snapshot(out).items() if k != ".audit.lock"}
    assert after == {k: v for k, v in before.items() if k != ".audit.lock"}
