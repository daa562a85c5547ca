"""Detection data: COCO ground truth, person attributes (inline, side table or FACET), COCO results.

Ground truth is a COCO JSON file (``images``, ``annotations`` with ``bbox``,
``area``, ``iscrowd`` and optionally ``segmentation`` as polygons or RLE,
``categories``). Masks may come in a second COCO file with the same
annotation ids (FACET ships ``coco_boxes.json`` and ``coco_masks.json``).

A person's attributes are looked up, in order, in

1. the annotation's own ``attributes`` object;
2. a side table (CSV or Parquet) keyed by annotation id, e.g. FACET's
   ``annotations.csv`` (key ``person_id``), read as it is;
3. image-level attributes: the image entry's ``attributes`` object or an
   image table keyed by image id or file name (e.g. lighting).

An attribute whose column is not in the table but whose *prefix* is (FACET's
one-hot and count columns ``gender_presentation_masc``, ``skin_tone_1`` ...
``skin_tone_10``, ``skin_tone_na``) is read as a vote distribution over the
suffixes (``na`` counts as no vote) and becomes a group as the data card's
``votes`` says:

``any``
    the person belongs to every level (or bin) that received a vote; groups
    overlap (FACET's reading of Monk Skin Tone).
``majority``
    the level with the most votes; a tie goes to the level nearest the
    expected value, then the lower one (for non-numeric levels a tie is
    ``unknown``).
``expected``
    the vote-weighted mean level, rounded half up, then binned (numeric
    levels only).

The people and their groups are read by :mod:`audit.tasks.detection.people`.

Every problem raises :class:`~audit.errors.DataError` (or
:class:`~audit.errors.PredictionError` for a results file) with one line
naming the file and the entry.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from ...core.tables import fingerprint_files, read_json  # noqa: F401 - fingerprint_files: its callers import it from here
from ...errors import DataError, PredictionError
from .cocoeval import Boxes

__all__ = [
    "GroundTruth",
    "load_ground_truth",
    "load_results",
    "results_boxes",
]

VOTE_MODES = ("any", "majority", "expected")
MAX_IMAGE_SIDE = 1_000_000  # pixels; masks are rasterised at this scale, so a bound keeps decoding finite


class GroundTruth:
    """COCO ground truth as arrays, plus the source dictionaries.

    Attributes
    ----------
    path : Path
    images : DataFrame
        ``image_id``, ``file_name``, ``height``, ``width`` (sorted by id).
    boxes : Boxes
        Every annotation (``ann_id``, ``iscrowd`` set; ``segmentation`` as
        compressed RLEs when masks are present).
    annotations : list of dict
        The raw annotation entries, in file order.
    categories : dict of int to str
    has_masks : bool
    """

    def __init__(self, path, images, boxes, annotations, categories, has_masks):
        self.path = path
        self.images = images
        self.boxes = boxes
        self.annotations = annotations
        self.categories = categories
        self.has_masks = has_masks


def to_rle(segm, h, w, where: str):
    from pycocotools import mask as mask_utils

    try:
        if isinstance(segm, list):  # polygons
            if not segm or not all(isinstance(p, list) and len(p) >= 6 and len(p) % 2 == 0 for p in segm):
                raise ValueError("expected polygons as lists of at least 3 x,y pairs")
            if not (_is_int(h) and _is_int(w)):
                raise ValueError("expected the image's integer height and width to rasterise polygons")
            for poly in segm:  # rasterising costs the outline's length: far-away vertices would take forever
                for k, v in enumerate(poly):
                    limit = w if k % 2 == 0 else h
                    if not _is_finite(v) or \
                            not -limit <= v <= 2 * limit:
                        raise DataError(f"{where}: field 'segmentation': expected polygon coordinates within the "
                                        f"image ({w} x {h}, with a margin of one image size), found {_clip(v)}")
            return mask_utils.merge(mask_utils.frPyObjects(segm, h, w))
        if isinstance(segm, dict) and "counts" in segm and "size" in segm:
            size = segm["size"]
            if not (isinstance(size, list) and len(size) == 2 and all(_is_int(x) for x in size)) or \
                    (_is_int(h) and _is_int(w) and list(size) != [h, w]):
                raise DataError(f"{where}: field 'segmentation.size': expected the image's [height, width] "
                                f"[{h}, {w}], found {_clip(size)}")
            if isinstance(segm["counts"], list):  # uncompressed RLE
                counts = segm["counts"]
                if not all(_is_int(c) and c >= 0 for c in counts) or sum(counts) != size[0] * size[1]:
                    raise DataError(f"{where}: field 'segmentation.counts': expected non-negative run lengths "
                                    f"summing to {size[0]} x {size[1]} = {size[0] * size[1]} pixels, found "
                                    f"{'a sum of ' + str(sum(counts)) if all(_is_int(c) for c in counts) else 'non-integers'}")
                return mask_utils.frPyObjects(segm, *size)
            if not isinstance(segm["counts"], (str, bytes)):
                raise ValueError(f"expected counts as a list or an RLE string, found {type(segm['counts']).__name__}")
            counts = segm["counts"].encode("ascii") if isinstance(segm["counts"], str) else segm["counts"]
            rle = {"size": list(size), "counts": counts}
            total = _rle_length(counts)
            if total != size[0] * size[1]:
                raise DataError(f"{where}: field 'segmentation.counts': expected run lengths covering {size[0]} x "
                                f"{size[1]} = {size[0] * size[1]} pixels, found {total}")
            return rle
    except DataError:
        raise
    except Exception as exc:  # noqa: BLE001
        raise DataError(f"{where}: field 'segmentation': cannot decode: {' '.join(str(exc).split())}") from None
    raise DataError(f"{where}: field 'segmentation': expected polygons or an RLE with 'counts' and 'size', "
                    f"found {type(segm).__name__}")


def _is_int(value) -> bool:
    """An int, not a bool, that fits the int64 arrays it goes into."""
    return isinstance(value, int) and not isinstance(value, bool) and -2 ** 63 <= value < 2 ** 63


def _is_finite(value) -> bool:
    """An int or float, not a bool, with a finite float value (an int beyond float range has none)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:
        return False


def _clip(value, limit: int = 60) -> str:
    from ..._paths import short_repr

    return short_repr(value, limit)


def _rle_length(counts: bytes) -> int:
    """Pixels a compressed COCO RLE string covers (pycocotools' ``rleFrString`` decoding, summed)."""
    cnts: list[int] = []
    i, n = 0, len(counts)
    while i < n:
        x, k, more = 0, 0, True
        while more:
            if i >= n:
                raise ValueError("truncated RLE counts")
            c = counts[i] - 48
            if c < 0 or c > 63:
                raise ValueError("a character outside the RLE alphabet in counts")
            x |= (c & 0x1F) << (5 * k)
            more = bool(c & 0x20)
            i += 1
            k += 1
            if not more and (c & 0x10):
                x |= -1 << (5 * k)
        if len(cnts) > 2:
            x += cnts[-2]
        if x < 0:
            raise ValueError("a negative run length in RLE counts")
        cnts.append(x)
    return sum(cnts)


def _number(value, where, name, *, minimum=None):
    if not _is_finite(value):
        raise DataError(f"{where}: field '{name}': expected a finite number, found {_clip(value)}")
    if minimum is not None and value < minimum:
        raise DataError(f"{where}: field '{name}': expected a number >= {minimum}, found {_clip(value)}")
    return float(value)


def load_ground_truth(path: Path, *, masks: Path | None = None, need_masks: bool = False, image_root=None,
                      allow_outside: bool = False) -> GroundTruth:
    """Read and validate a COCO ground-truth file (and an optional masks file with the same annotation ids).

    With ``image_root``, every ``images[].file_name`` must stay inside it (see :class:`audit._paths.Root`)
    unless ``allow_outside``; ``images`` then has a ``path`` column with the joined paths.
    """
    path = Path(path)
    data = read_json(path, what="COCO JSON")
    if not isinstance(data, dict):
        raise DataError(f"{path}: expected a COCO object with images, annotations and categories, found "
                        f"{type(data).__name__}")
    for key in ("images", "annotations", "categories"):
        if not isinstance(data.get(key), list):
            raise DataError(f"{path}: field '{key}': expected a list, found {_clip(data.get(key, 'nothing'), 40)}")
    rows, seen = [], set()
    for i, im in enumerate(data["images"]):
        where = f"{path}: images[{i}]"
        if not isinstance(im, dict) or "id" not in im:
            raise DataError(f"{where}: expected an object with 'id', found {_clip(im)}")
        if not _is_int(im["id"]):
            raise DataError(f"{where}: field 'id': expected a 64-bit integer, found {_clip(im['id'])}")
        for key in ("height", "width"):
            if key in im and not (_is_int(im[key]) and 0 < im[key] <= MAX_IMAGE_SIDE):
                raise DataError(f"{where}: field '{key}': expected a positive integer (at most {MAX_IMAGE_SIDE:,}), "
                                f"found {_clip(im[key])}")
        if not isinstance(im.get("file_name", ""), str):
            raise DataError(f"{where}: field 'file_name': expected a string, found {_clip(im['file_name'])}")
        if im["id"] in seen:
            raise DataError(f"{where}: duplicate image id {im['id']!r}")
        seen.add(im["id"])
        rows.append({"image_id": im["id"], "file_name": str(im.get("file_name", "")),
                     "height": im.get("height"), "width": im.get("width"),
                     "attributes": im.get("attributes") if isinstance(im.get("attributes"), dict) else {}})
    images = pd.DataFrame(rows, columns=["image_id", "file_name", "height", "width", "attributes"])
    if image_root is not None:
        from ..._paths import Root

        images["path"] = Root(image_root, allow_outside=allow_outside).contain_all(
            images["file_name"].tolist(), where=lambda i: f"{path}: images[{i}]: field 'file_name'")
    categories = {}
    for i, c in enumerate(data["categories"]):
        if not isinstance(c, dict) or not _is_int(c.get("id")):
            raise DataError(f"{path}: categories[{i}]: expected an object with an integer 'id', found {_clip(c)}")
        categories[c["id"]] = str(c.get("name", c["id"]))
    mask_by_id = {}
    if masks is not None:
        mdata = read_json(Path(masks), what="COCO JSON")
        if not isinstance(mdata, dict) or not isinstance(mdata.get("annotations"), list):
            raise DataError(f"{masks}: expected a COCO object with an 'annotations' list")
        mask_by_id = {a.get("id"): a.get("segmentation") for a in mdata["annotations"]
                      if isinstance(a, dict) and _is_int(a.get("id"))}
    size = {r["image_id"]: (r["height"], r["width"]) for r in rows}
    anns = data["annotations"]
    n = len(anns)
    image = np.zeros(n, np.int64)
    cat = np.zeros(n, np.int64)
    bbox = np.zeros((n, 4))
    area = np.zeros(n)
    crowd = np.zeros(n, bool)
    ann_id = np.zeros(n, np.int64)
    segm = [] if (masks is not None or need_masks) else None
    ids = set()
    for i, a in enumerate(anns):
        where = f"{path}: annotations[{i}]"
        if not isinstance(a, dict):
            raise DataError(f"{where}: expected an object, found {_clip(a)}")
        for key in ("id", "image_id", "category_id", "bbox"):
            if key not in a:
                raise DataError(f"{where}: field '{key}': expected a value, found nothing")
        for key in ("id", "image_id", "category_id"):
            if not _is_int(a[key]):
                raise DataError(f"{where}: field '{key}': expected a 64-bit integer, found {_clip(a[key])}")
        if a["id"] in ids:
            raise DataError(f"{where}: duplicate annotation id {a['id']}")
        ids.add(a["id"])
        if a["image_id"] not in size:
            raise DataError(f"{where}: field 'image_id': expected an id listed in 'images', found {a['image_id']!r}")
        if a["category_id"] not in categories:
            raise DataError(f"{where}: field 'category_id': expected a category listed in 'categories', "
                            f"found {a['category_id']!r}")
        b = a["bbox"]
        if not isinstance(b, list) or len(b) != 4:
            raise DataError(f"{where}: field 'bbox': expected [x, y, width, height], found {_clip(b)}")
        bbox[i] = [_number(v, where, "bbox") for v in b]
        if bbox[i, 2] < 0 or bbox[i, 3] < 0:
            raise DataError(f"{where}: field 'bbox': expected a non-negative width and height, found {_clip(b)}")
        area[i] = _number(a["area"], where, "area", minimum=0) if "area" in a else bbox[i, 2] * bbox[i, 3]
        image[i], cat[i], ann_id[i] = a["image_id"], a["category_id"], a["id"]
        crowd[i] = bool(a.get("iscrowd", 0))
        if segm is not None:
            s = mask_by_id.get(a["id"], a.get("segmentation")) if masks is not None else a.get("segmentation")
            if s is None or s == []:
                raise DataError(f"{where}: field 'segmentation': expected a mask (polygons or RLE) for instance "
                                f"segmentation, found none{' in ' + str(masks) if masks else ''}")
            h, w = size[a["image_id"]]
            if not _is_int(h) or not _is_int(w):
                raise DataError(f"{path}: image {a['image_id']!r}: expected integer 'height' and 'width' to decode "
                                "polygon masks")
            segm.append(to_rle(s, h, w, where))
    if not isinstance(image, np.ndarray):  # pragma: no cover
        image = np.asarray(image)
    boxes = Boxes(image, cat, bbox, area, iscrowd=crowd, ann_id=ann_id, segmentation=segm)
    return GroundTruth(path, images.sort_values("image_id", kind="stable").reset_index(drop=True), boxes, anns,
                       categories, segm is not None)


def load_results(path: Path, gt: GroundTruth, *, need_masks: bool = False) -> Boxes:
    """Read a COCO results JSON (a list of ``image_id``, ``category_id``, ``bbox`` and/or ``segmentation``, ``score``).

    Areas follow ``COCO.loadRes``: ``w * h`` when the first result has a
    box, else the mask area.
    """
    path = Path(path)
    return results_boxes(read_json(path, error=PredictionError, what="COCO JSON"), gt, source=path,
                         need_masks=need_masks)


def results_boxes(data, gt: GroundTruth, *, source, need_masks: bool = False) -> Boxes:
    """COCO results as :func:`load_results` reads them from a file, from the parsed list ``data``: a detector's
    own output is used as it is, not written and read back. ``source`` names the list in errors."""
    if not isinstance(data, list):
        raise PredictionError(f"{source}: expected a list of detections (COCO results format), found "
                              f"{type(data).__name__}")
    bulk = None if need_masks else _boxes_in_bulk(data, gt)
    return bulk if bulk is not None else _boxes_one_by_one(data, gt, source=source, need_masks=need_masks)


def _boxes_in_bulk(data: list, gt: GroundTruth) -> Boxes | None:
    """:func:`_boxes_one_by_one` of box-only results, each check made once over all of them (a tenth of the
    time); ``None`` when one of them has a mask or might fail a check, for the loop to name the first fault."""
    if not data or not all(type(d) is dict for d in data) or any(d.get("segmentation") for d in data):
        return None
    try:
        image, cat, score, bbox = ([d[key] for d in data] for key in ("image_id", "category_id", "score", "bbox"))
    except KeyError:
        return None
    number = (int, float)  # exactly: no bool, which the loop rejects
    if not (all(type(v) is int for v in image) and all(type(v) is int for v in cat)
            and all(type(v) in number for v in score)
            and all(type(b) is list and len(b) == 4 for b in bbox) and all(type(v) in number for b in bbox for v in b)):
        return None
    try:
        image, cat = np.asarray(image, dtype=np.int64), np.asarray(cat, dtype=np.int64)
        score, bbox = np.asarray(score, dtype=float), np.asarray(bbox, dtype=float).reshape(-1, 4)
    except OverflowError:  # an integer beyond int64 or float
        return None
    if not (np.isfinite(score).all() and np.isfinite(bbox).all() and (bbox[:, 2:] >= 0).all()
            and np.isin(image, gt.images["image_id"].to_numpy()).all()):
        return None
    return Boxes(image, cat, bbox, bbox[:, 2] * bbox[:, 3], score=score)


def _boxes_one_by_one(data: list, gt: GroundTruth, *, source, need_masks: bool) -> Boxes:
    """:func:`results_boxes`, checking each result in turn: the first fault is named with its index."""
    from pycocotools import mask as mask_utils

    known = set(gt.images["image_id"].tolist())
    size = dict(zip(gt.images["image_id"], zip(gt.images["height"], gt.images["width"])))
    n = len(data)
    image, cat, score, area = np.zeros(n, np.int64), np.zeros(n, np.int64), np.zeros(n), np.zeros(n)
    bbox = np.zeros((n, 4))
    segm = [] if need_masks else None
    box_area = bool(data) and isinstance(data[0], dict) and bool(data[0].get("bbox"))
    for i, d in enumerate(data):
        where = f"{source}: detection [{i}]"
        if not isinstance(d, dict):
            raise PredictionError(f"{where}: expected an object, found {_clip(d)}")
        for key in ("image_id", "category_id", "score"):
            if key not in d:
                raise PredictionError(f"{where}: field '{key}': expected a value, found nothing")
        for key in ("image_id", "category_id"):
            if not _is_int(d[key]):
                raise PredictionError(f"{where}: field '{key}': expected a 64-bit integer, found {_clip(d[key])}")
        if d["image_id"] not in known:
            raise PredictionError(f"{where}: field 'image_id': expected an image of {gt.path}, found {d['image_id']!r}")
        s = d["score"]
        if not _is_finite(s):
            raise PredictionError(f"{where}: field 'score': expected a finite number, found {_clip(s)}")
        image[i], cat[i], score[i] = d["image_id"], d["category_id"], s
        rle = None
        if d.get("segmentation"):
            h, w = size[d["image_id"]]
            try:
                rle = to_rle(d["segmentation"], h, w, where)
            except DataError as exc:
                raise PredictionError(str(exc)) from None
        elif need_masks:
            raise PredictionError(f"{where}: field 'segmentation': expected a mask for instance segmentation, "
                                  "found none")
        b = d.get("bbox")
        if b:
            if not isinstance(b, list) or len(b) != 4 or not all(_is_finite(v) for v in b):
                raise PredictionError(f"{where}: field 'bbox': expected [x, y, width, height], found {_clip(b)}")
            if b[2] < 0 or b[3] < 0:
                raise PredictionError(f"{where}: field 'bbox': expected a non-negative width and height, found "
                                      f"{_clip(b)}")
            bbox[i] = b
        elif rle is not None:
            bbox[i] = mask_utils.toBbox(rle)
        else:
            raise PredictionError(f"{where}: expected 'bbox' or 'segmentation', found neither")
        area[i] = bbox[i, 2] * bbox[i, 3] if box_area else float(mask_utils.area(rle))
        if segm is not None:
            segm.append(rle)
    return Boxes(image, cat, bbox, area, score=score, segmentation=segm)
