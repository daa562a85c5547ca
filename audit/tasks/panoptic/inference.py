"""A panoptic model's predictions, written as COCO panoptic files (a JSON and a PNG folder) and then audited as such.

The model card's entry point returns a module; its output per image is a
panoptic map (``panoptic_seg`` and ``segments_info``) or an instance and a
semantic output that :func:`audit.tasks.panoptic.merge.merge_panoptic` merges
with the card's ``merge`` thresholds. Model classes become data categories by
the card's ``class_map`` or, without one, by name; a segment of a class that
maps to none becomes void.

Images go through the model in chunks committed under the output directory
(:func:`audit.core.distributed.predict_in_chunks`: resumable and sharded over
``torchrun`` ranks); rank 0 then writes ``panoptic_predictions.json`` and
``panoptic_predictions/<image_id>.png`` with the model's and data's hashes in
``panoptic_predictions.meta.json``, reused by a later run when both match.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pandas as pd

from ..._io import atomic_write_bytes, atomic_write_text
from ..._paths import short_repr
from ...errors import CardError, DataError, ModelError

__all__ = ["CACHE_JSON", "category_mapping", "load_cached", "predict_panoptic"]

CACHE_JSON = "panoptic_predictions.json"
CACHE_META = "panoptic_predictions.meta.json"


def category_mapping(model_card, gt) -> dict[int, int]:
    """Model output index -> index into the split's categories (outputs that map to none left out)."""
    names = {name: i for i, name in enumerate(gt.names)}
    if model_card.class_map is not None:
        out = {}
        for index, target in model_card.class_map.items():
            if target not in names:
                raise CardError(f"{model_card.path}: field 'class_map': expected categories of {gt.path}, found "
                                f"'{target}'")
            out[index] = names[target]
        return out
    out = {i: names[n] for i, n in enumerate(model_card.label_map) if n in names}
    if not out:
        raise CardError(f"{model_card.path}: field 'label_map': expected class names that are categories of {gt.path}"
                        f" ({', '.join(gt.names[:10])}), found none (or give a class_map)")
    return out


def _panoptic_of(output, *, mapping, stuff_labels, merge, where: str, shape):
    """(id map, [(segment id, category index)]) of one image's model output."""
    from .merge import merge_panoptic

    def numpy(x):
        return x.detach().cpu().numpy() if hasattr(x, "detach") else np.asarray(x)

    if not isinstance(output, dict):
        raise ModelError(f"{where}: expected a dict per image (panoptic_seg and segments_info, or instances and "
                         f"sem_seg), found {type(output).__name__}")
    if "panoptic_seg" in output:
        id_map = numpy(output["panoptic_seg"]).astype(np.int64)
        infos = output.get("segments_info") or []
        segments = []
        for s in infos:
            if not isinstance(s, dict) or "id" not in s or "category_id" not in s:
                raise ModelError(f"{where}: expected segments_info entries with 'id' and 'category_id', found "
                                 f"{short_repr(s, 60)}")
            segments.append((int(s["id"]), int(s["category_id"])))
    elif "instances" in output and "sem_seg" in output:
        inst = output["instances"]
        id_map, merged = merge_panoptic(masks=numpy(inst["masks"]), labels=numpy(inst["labels"]),
                                        scores=numpy(inst["scores"]), semantic=numpy(output["sem_seg"]),
                                        stuff_labels=stuff_labels, **merge)
        segments = [(s["id"], s["category_id"]) for s in merged]
    else:
        raise ModelError(f"{where}: expected 'panoptic_seg' and 'segments_info', or 'instances' and 'sem_seg', found "
                         f"keys {sorted(output)[:8]}")
    if id_map.shape != tuple(shape):
        raise ModelError(f"{where}: expected a panoptic map of the image's size {tuple(shape)}, found {id_map.shape}")
    keep = [(sid, mapping[c]) for sid, c in segments if c in mapping]
    dropped = [sid for sid, c in segments if c not in mapping]
    if dropped:
        id_map = np.where(np.isin(id_map, dropped), 0, id_map)
    return id_map, keep


def predict_panoptic(net, gt, model_card, *, image_root, allow_outside, device, batch_size, out_dir, key,
                     chunk_size, context):
    """Run ``net`` over the split's images; returns the predictions JSON path on rank 0, None on other ranks."""
    import torch
    from PIL import Image

    from ..._paths import Root
    from ...core.distributed import discard_chunks, predict_in_chunks

    if (gt.images["file_name"] == "").any():
        raise DataError(f"{gt.path}: field 'images': expected every annotated image listed with its file_name to run "
                        "a model, found some missing")
    paths = Root(image_root, allow_outside=allow_outside).contain_all(
        gt.images["file_name"].tolist(), where=lambda i: f"{gt.path}: images (image id "
                                                         f"{gt.images['image_id'].iloc[i]}): field 'file_name'")
    mapping = category_mapping(model_card, gt)
    stuff = [m for m, c in mapping.items() if not gt.isthing[c]]
    merge = dict(model_card.front_matter.get("merge") or {})
    where = f"{model_card.path}: model.entry_point '{model_card.model.entry_point}'"
    frame = pd.DataFrame({"sample_id": gt.images["image_id"].astype(str)})

    def predict(part):
        rows = []
        index = part.index.to_numpy()
        for start in range(0, len(index), batch_size):
            batch = index[start:start + batch_size]
            tensors, shapes = [], []
            for i in batch:
                try:
                    with Image.open(paths[i]) as im:
                        array = np.asarray(im.convert("RGB"))
                except (OSError, ValueError) as exc:
                    raise DataError(f"{gt.path}: image id {gt.images['image_id'].iloc[i]}: cannot read image "
                                    f"{paths[i]}: {' '.join(str(exc).split())}") from None
                shapes.append(array.shape[:2])
                tensors.append(torch.from_numpy(array.copy()).permute(2, 0, 1).float().div(255).to(device))
            with torch.inference_mode():
                outputs = net(tensors)
            if len(outputs) != len(batch):
                raise ModelError(f"{where}: expected one output per image ({len(batch)}), found {len(outputs)}")
            for i, output, shape in zip(batch, outputs, shapes):
                id_map, segments = _panoptic_of(output, mapping=mapping, stuff_labels=stuff, merge=merge,
                                                where=where, shape=shape)
                rows.append({"sample_id": frame["sample_id"].iloc[i], "png": _png_bytes(id_map),
                             "segments": json.dumps(segments)})
        return pd.DataFrame(rows, columns=["sample_id", "png", "segments"])

    merged = predict_in_chunks(predict, frame, out_dir=out_dir, key=key, chunk_size=chunk_size, context=context)
    if merged is None:
        return None
    path = _write_cache(out_dir, gt, merged, key=key, device=str(device))
    discard_chunks(out_dir)
    return path


def _png_bytes(id_map: np.ndarray) -> bytes:
    from PIL import Image

    id_map = np.asarray(id_map, dtype=np.int64)
    rgb = np.stack([id_map % 256, id_map // 256 % 256, id_map // 65536 % 256], -1).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


def _write_cache(out_dir, gt, merged: pd.DataFrame, *, key: str, device: str) -> Path:
    out = Path(out_dir)
    folder = out / CACHE_JSON.removesuffix(".json")
    folder.mkdir(parents=True, exist_ok=True)
    annotations = []
    for image_id, png, segments in zip(gt.images["image_id"], merged["png"], merged["segments"]):
        name = f"{int(image_id)}.png"
        atomic_write_bytes(folder / name, png)
        annotations.append({"image_id": int(image_id), "file_name": name,
                            "segments_info": [{"id": sid, "category_id": int(gt.category_ids[c])}
                                              for sid, c in json.loads(segments)]})
    atomic_write_text(out / CACHE_JSON, json.dumps({"annotations": annotations}))
    atomic_write_text(out / CACHE_META, json.dumps({"key": key, "device": device}))
    return out / CACHE_JSON


def load_cached(out_dir, key: str) -> tuple[Path, str] | None:
    """The cached predictions JSON and the device that made them, when the model and data hashes match."""
    out = Path(out_dir)
    try:
        meta = json.loads((out / CACHE_META).read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):
        return None
    if not isinstance(meta, dict) or meta.get("key") != key or not (out / CACHE_JSON).is_file():
        return None
    return out / CACHE_JSON, str(meta.get("device", "unknown"))
