"""Thumbnails for the report's worst errors: whole images and crops around a person, as PNG ``data:`` URIs.

Every image a table names is read only inside the data card's image root (:func:`under_root`, the one
containment check of :mod:`audit._paths`); a thumbnail is best effort, so a file that cannot be read gives None.
"""

from __future__ import annotations

import base64
import io
import math
import os

__all__ = ["DETECTION", "OUTLINE", "THUMB", "crop_thumbnail", "thumb_note", "thumbnail", "under_root"]

THUMB = 96


OUTLINE = (230, 97, 1)  # the person's box on a crop: orange, visible on most photographs


DETECTION = (0, 114, 178)  # the best-matching detection's box: Okabe-Ito blue


def under_root(root, name) -> str | None:
    """``name`` joined to the image root, or None when it leaves the root (``..``, absolute, symlink): a
    people/images table names a file, and the report embeds only images inside the data card's image root."""
    from .._paths import Root

    guard = Root(root)
    path = guard.join(str(name))
    # a regular file only: opening a FIFO or a device would block or read forever
    return path if guard.inside(path) and os.path.isfile(path) else None


def thumbnail(path) -> str | None:
    from PIL import Image

    if path is None:
        return None
    try:
        with Image.open(path) as im:
            im = im.convert("RGB")
            im.thumbnail((THUMB, THUMB))
            buf = io.BytesIO()
            im.save(buf, format="PNG", optimize=False)
    except Exception:  # noqa: BLE001 - a thumbnail is best effort (PIL raises DecompressionBombError and others)
        return None
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def crop_thumbnail(path, box, detection=None) -> str | None:
    """A crop around ``box`` (x, y, w, h in pixels) with a quarter of its size (at least 4 px) as margin, at most
    :data:`THUMB` pixels a side, the box outlined in orange; with ``detection`` (x, y, w, h, finite) the crop
    also covers that box and outlines it in blue. A PNG ``data:`` URI (same inputs, same bytes)."""
    from PIL import Image, ImageDraw

    if path is None:
        return None
    x, y, w, h = (float(v) for v in box)
    if not all(math.isfinite(v) for v in (x, y, w, h)) or w <= 0 or h <= 0:
        return None
    det = None
    if detection is not None:
        det = tuple(float(v) for v in detection)
        if not all(math.isfinite(v) for v in det) or det[2] <= 0 or det[3] <= 0:
            det = None
    # the region both boxes occupy
    ux0, uy0, ux1, uy1 = x, y, x + w, y + h
    if det is not None:
        ux0, uy0 = min(ux0, det[0]), min(uy0, det[1])
        ux1, uy1 = max(ux1, det[0] + det[2]), max(uy1, det[1] + det[3])
    try:
        with Image.open(path) as im:
            mx, my = max(0.25 * (ux1 - ux0), 4.0), max(0.25 * (uy1 - uy0), 4.0)
            x0, y0 = max(math.floor(ux0 - mx), 0), max(math.floor(uy0 - my), 0)
            x1, y1 = min(math.ceil(ux1 + mx), im.width), min(math.ceil(uy1 + my), im.height)
            if x1 <= x0 or y1 <= y0:
                return None
            crop = im.crop((x0, y0, x1, y1)).convert("RGB")
            crop.thumbnail((THUMB, THUMB))
            sx, sy = crop.width / (x1 - x0), crop.height / (y1 - y0)
            draw = ImageDraw.Draw(crop)

            def outline(bx, by, bw, bh, colour):
                draw.rectangle([min(max(round((bx - x0) * sx), 0), crop.width - 1),
                                min(max(round((by - y0) * sy), 0), crop.height - 1),
                                min(max(round((bx + bw - x0) * sx) - 1, 0), crop.width - 1),
                                min(max(round((by + bh - y0) * sy) - 1, 0), crop.height - 1)], outline=colour)

            if det is not None:
                outline(*det, DETECTION)
            outline(x, y, w, h, OUTLINE)
            buf = io.BytesIO()
            crop.save(buf, format="PNG", optimize=False)
    except Exception:  # noqa: BLE001 - a thumbnail is best effort (PIL raises DecompressionBombError and others)
        return None
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def thumb_note(thumbnails: bool, root, what: str) -> str:
    if not thumbnails:
        return "Thumbnails left out (--no-thumbnails): only the ids are listed."
    if not root:
        return "Images not available (the data card's image directory could not be found): only the ids are listed."
    return f"{what} at most {THUMB}×{THUMB} pixels, embedded in this file. Leave them out with --no-thumbnails."
