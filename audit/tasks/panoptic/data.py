"""COCO panoptic files: the ground truth or predictions JSON, and the PNGs whose RGB encodes segment ids.

The format (cocodataset.org "Panoptic Segmentation" data format; panopticapi's
``README`` and ``evaluation.py``): a JSON file with

* ``annotations[]``: ``image_id``, ``file_name`` (a PNG in the segmentations
  folder) and ``segments_info[]`` (``id``, ``category_id``, ``iscrowd``,
  ``bbox``, ``area``);
* ``categories[]``: ``id``, ``name``, ``isthing`` (1 thing, 0 stuff);
* ``images[]``: ``id``, ``file_name`` (the photograph), ``height``, ``width``.

A PNG pixel's segment id is ``R + 256 G + 256² B``; id 0 is void (unlabelled).
Segment ids are unique within an image only.

Every problem is one line naming the file, the entry and the field
(:class:`~audit.errors.DataError` for the ground truth,
:class:`~audit.errors.PredictionError` for predictions). Each file path an
annotation names goes through :class:`audit._paths.Root`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..._paths import Root, short_repr
from ...core.tables import read_json
from ...errors import DataError, PredictionError
from .matching import Segments, compact_ids, rgb_to_id

__all__ = ["Annotation", "PanopticSet", "load_panoptic", "read_ids"]

MAX_PIXELS = 100_000_000  # one panoptic PNG; a bound keeps a decompression bomb out


def _clip(value, limit: int = 60) -> str:
    return short_repr(value, limit)


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


@dataclass(frozen=True)
class Annotation:
    """One image of a panoptic JSON: its PNG and its segments (category as an index into the category list)."""

    index: int  # position in annotations[]
    image_id: int
    png: str  # joined to the segmentations folder
    segments: Segments
    area: np.ndarray  # the JSON's area per segment, -1 where not given
    attributes: list  # each segment's ``attributes`` object ({} when none)


@dataclass(frozen=True)
class PanopticSet:
    """A panoptic JSON with its PNG folder.

    Attributes
    ----------
    path : Path
    folder : Path
    annotations : list of Annotation
        In file order.
    category_ids : ndarray of int64
        COCO category ids, sorted; a segment's ``category`` indexes this.
    names : list of str
    isthing : ndarray of bool
    images : DataFrame
        ``image_id``, ``file_name`` (the photograph, or ''), ``height``, ``width`` (NaN when unknown),
        ``attributes`` ({}), one row per annotation in annotation order.
    """

    path: Path
    folder: Path
    annotations: list
    category_ids: np.ndarray
    names: list
    isthing: np.ndarray
    images: pd.DataFrame

    def by_image(self) -> dict:
        return {a.image_id: a for a in self.annotations}


def _categories(path: Path, raw, error) -> tuple[np.ndarray, list, np.ndarray]:
    if not isinstance(raw, list) or not raw:
        raise error(f"{path}: field 'categories': expected a non-empty list, found {_clip(raw, 40)}")
    rows = {}
    for i, c in enumerate(raw):
        where = f"{path}: categories[{i}]"
        if not isinstance(c, dict) or not _is_int(c.get("id")):
            raise error(f"{where}: expected an object with an integer 'id', found {_clip(c)}")
        if c["id"] in rows:
            raise error(f"{where}: field 'id': expected a category id not listed before, found {c['id']} again")
        if c.get("isthing") not in (0, 1) or isinstance(c.get("isthing"), bool):
            raise error(f"{where}: field 'isthing': expected 0 (stuff) or 1 (thing), found {_clip(c.get('isthing'))}")
        rows[c["id"]] = (str(c.get("name", c["id"])), bool(c["isthing"]))
    ids = np.array(sorted(rows), dtype=np.int64)
    return ids, [rows[i][0] for i in ids], np.array([rows[i][1] for i in ids], dtype=bool)


def load_panoptic(path, folder, *, categories: tuple | None = None, allow_outside: bool = False,
                  prediction: bool = False) -> PanopticSet:
    """Read and validate a panoptic JSON (the PNGs are read later, one image at a time, by :func:`read_ids`).

    Parameters
    ----------
    path : str or Path
        The JSON.
    folder : str or Path
        The PNG folder; every ``file_name`` must stay inside it (unless ``allow_outside``).
    categories : (ids, names, isthing), optional
        The ground truth's categories: predictions are checked against them (their own ``categories`` ignored).
    prediction : bool
        Predictions: PredictionError instead of DataError, ``iscrowd`` ignored.
    """
    path, folder = Path(path), Path(folder)
    error = PredictionError if prediction else DataError
    data = read_json(path, error=error, what="COCO panoptic JSON")
    if not isinstance(data, dict):
        raise error(f"{path}: expected a COCO panoptic object with annotations{'' if prediction else ' and categories'}"
                    f", found {type(data).__name__}")
    if not isinstance(data.get("annotations"), list):
        found = _clip(data.get("annotations", "nothing"), 40)
        raise error(f"{path}: field 'annotations': expected a list, found {found}")
    cat_ids, names, isthing = categories if categories is not None else _categories(path, data.get("categories"), error)
    images = {}
    listed = [] if prediction else data.get("images", [])
    if not isinstance(listed, list):
        raise error(f"{path}: field 'images': expected a list, found {_clip(listed, 40)}")
    for i, im in enumerate(listed):
        where = f"{path}: images[{i}]"
        if not isinstance(im, dict) or not _is_int(im.get("id")):
            found = _clip(im.get("id") if isinstance(im, dict) else im)
            raise error(f"{where}: field 'id': expected an integer, found {found}")
        for key in ("height", "width"):
            if key in im and not (_is_int(im[key]) and 0 < im[key] <= 1_000_000):
                raise error(f"{where}: field '{key}': expected a positive integer (at most 1,000,000), "
                            f"found {_clip(im[key])}")
        if im["id"] in images:
            raise error(f"{where}: field 'id': expected an image id not listed before, found {im['id']} again")
        images[im["id"]] = im
    root = Root(folder, allow_outside=allow_outside)
    annotations, seen, rows = [], {}, []
    for i, a in enumerate(data["annotations"]):
        where = f"{path}: annotations[{i}]"
        if not isinstance(a, dict):
            raise error(f"{where}: expected an object with image_id, file_name, segments_info, found {_clip(a)}")
        if not _is_int(a.get("image_id")):
            raise error(f"{where}: field 'image_id': expected an integer, found {_clip(a.get('image_id'))}")
        image_id = a["image_id"]
        if image_id in seen:
            raise error(f"{where}: field 'image_id': expected one annotation per image, found image id {image_id} "
                        f"again (annotations[{seen[image_id]}])")
        seen[image_id] = i
        if images and image_id not in images:
            raise error(f"{where}: field 'image_id': expected an id listed in 'images', found {image_id}")
        name = a.get("file_name")
        if not isinstance(name, str) or not name:
            raise error(f"{where}: field 'file_name': expected a PNG file name, found {_clip(name)}")
        try:
            png = root.check_one(name, where=f"{where}: field 'file_name'", what="panoptic PNG")
        except DataError as exc:
            raise error(str(exc)) from None
        infos = a.get("segments_info")
        if not isinstance(infos, list):
            raise error(f"{where}: field 'segments_info': expected a list, found {_clip(infos)}")
        n = len(infos)
        ids, cats, crowd, area = np.zeros(n, np.int64), np.zeros(n, np.int64), np.zeros(n, bool), np.full(n, -1)
        attrs, first = [], {}
        for j, s in enumerate(infos):
            at = f"{where}.segments_info[{j}] (image id {image_id})"
            if not isinstance(s, dict):
                raise error(f"{at}: expected an object with id and category_id, found {_clip(s)}")
            sid, cat = s.get("id"), s.get("category_id")
            if not _is_int(sid) or not 0 < sid < 256 ** 3:
                raise error(f"{at}: field 'id': expected an integer in 1..16777215, found {_clip(sid)}")
            if sid in first:
                raise error(f"{at}: field 'id': expected a segment id not listed before in this image, found {sid} "
                            f"again (segments_info[{first[sid]}])")
            first[sid] = j
            k = np.searchsorted(cat_ids, cat) if _is_int(cat) else len(cat_ids)
            if k >= len(cat_ids) or cat_ids[k] != cat:
                raise error(f"{at}: field 'category_id': expected a category listed in 'categories' of "
                            f"{path if categories is None else 'the ground truth'}, found {_clip(cat)}")
            ids[j], cats[j] = sid, k
            if not prediction:
                flag = s.get("iscrowd", 0)
                if flag not in (0, 1) or isinstance(flag, bool):
                    raise error(f"{at}: field 'iscrowd': expected 0 or 1, found {_clip(flag)}")
                crowd[j] = bool(flag)
                if "area" in s:
                    if not _is_int(s["area"]) or s["area"] < 0:
                        raise error(f"{at}: field 'area': expected a pixel count, found {_clip(s['area'])}")
                    area[j] = s["area"]
            attrs.append(s.get("attributes") if isinstance(s.get("attributes"), dict) else {})
        annotations.append(Annotation(index=i, image_id=image_id, png=png, segments=Segments(ids, cats, crowd),
                                      area=area, attributes=attrs))
        im = images.get(image_id, {})
        rows.append({"image_id": image_id, "file_name": str(im.get("file_name", "")),
                     "height": im.get("height", np.nan), "width": im.get("width", np.nan),
                     "attributes": im.get("attributes") if isinstance(im.get("attributes"), dict) else {}})
    if not annotations and not prediction:
        raise error(f"{path}: field 'annotations': expected at least one annotated image, found none")
    frame = pd.DataFrame(rows, columns=["image_id", "file_name", "height", "width", "attributes"])
    return PanopticSet(path=path, folder=folder, annotations=annotations, category_ids=cat_ids, names=names,
                       isthing=isthing, images=frame)


def read_png_ids(path, *, error=DataError, what: str = "panoptic PNG") -> np.ndarray:
    """The segment ids of a panoptic PNG (RGB, ``R + 256 G + 256² B``), or one line naming the file."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            if image.mode != "RGB":
                raise error(f"{path}: expected an RGB {what} (segment id = R + 256 G + 256² B), found mode "
                            f"{image.mode}")
            if image.width * image.height > MAX_PIXELS:
                raise error(f"{path}: expected a {what} of at most {MAX_PIXELS:,} pixels, found "
                            f"{image.width} x {image.height}")
            return rgb_to_id(np.asarray(image))
    except FileNotFoundError:
        raise error(f"{path}: {what} file not found") from None
    except UnidentifiedImageError:
        raise error(f"{path}: cannot read {what}: not a recognised image format") from None
    except (DataError, PredictionError):
        raise
    except Exception as exc:  # noqa: BLE001 - PIL raises many types for bad files
        raise error(f"{path}: cannot read {what}: {' '.join(str(exc).split()) or type(exc).__name__}") from None


def read_ids(ann: Annotation, source: PanopticSet, *, size=None, prediction: bool = False, id_map=None):
    """One image's compacted segment map (0 void, ``k + 1`` segment ``k``), checked against its ``segments_info``.

    Parameters
    ----------
    ann : Annotation
    source : PanopticSet
        The file ``ann`` comes from (for messages).
    size : (height, width), optional
        The size the map must have (the image's, or the ground truth's for a prediction).
    id_map : ndarray, optional
        The segment ids already in memory (a model's output); else the PNG is read.

    Returns
    -------
    index : ndarray of int64, shape (H * W,)
    shape : (int, int)
    counts : ndarray of int64
        Pixels of each segment.
    """
    error = PredictionError if prediction else DataError
    ids = read_png_ids(ann.png, error=error, what="predicted panoptic PNG" if prediction else "panoptic PNG") \
        if id_map is None else np.asarray(id_map)
    where = f"{source.path}: annotations[{ann.index}]"
    if size is not None and tuple(ids.shape) != tuple(size):
        what = "the ground truth's" if prediction else "the image's"
        raise error(f"{ann.png}: expected a {'predicted ' if prediction else ''}panoptic PNG of {what} size "
                    f"({size[1]}, {size[0]}) (width, height) for image id {ann.image_id}, found "
                    f"({ids.shape[1]}, {ids.shape[0]})")
    index, unknown = compact_ids(ids, ann.segments.ids)
    if unknown.size:
        u = int(unknown[0])
        raise error(f"{where} (image id {ann.image_id}): field 'segments_info': expected every segment id of "
                    f"{ann.png} listed, found id {u} (RGB {u % 256}, {u // 256 % 256}, {u // 65536}) in the PNG but "
                    "not listed")
    counts = np.bincount(index, minlength=len(ann.segments) + 1)[1:]
    for j in np.flatnonzero(counts == 0):
        raise error(f"{where}.segments_info[{j}] (image id {ann.image_id}): field 'id': expected a segment id "
                    f"present in {ann.png}, found {int(ann.segments.ids[j])}, which has no pixel there")
    for j in np.flatnonzero((ann.area >= 0) & (ann.area != counts)):
        raise error(f"{where}.segments_info[{j}] (image id {ann.image_id}): field 'area': expected the segment's "
                    f"pixel count in {ann.png}, {int(counts[j])}, found {int(ann.area[j])}")
    return index, ids.shape, counts
