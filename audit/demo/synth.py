"""Synthetic, demographically annotated "face" images for the demo.

Each 32x32 RGB image is a face-like ellipse on a random background. The
face's tone is set by a Fitzpatrick-like ``skin_type`` (1 lightest .. 6
darkest) and scaled by ``lighting``; ``gender_presentation`` changes the hair
outline and ``age_group`` its colour. The class is a dark mark on the face:
a circle, a square or a triangle. Because the mark is dark, it has less
contrast on darker tones and in dim light, which is the capture bias the
demo's audit should find (the training split also under-represents darker
skin types).

Everything is drawn with numpy from a seeded :class:`numpy.random.Generator`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["CLASSES", "SKIN_TONES", "render", "sample_attributes"]

CLASSES = ("circle", "square", "triangle")
# Approximate RGB tones for Fitzpatrick I..VI.
SKIN_TONES = np.array(
    [[245, 222, 200], [232, 196, 165], [205, 160, 120], [160, 112, 78], [115, 76, 52], [78, 52, 38]], dtype=np.float32
)
GENDER = ("feminine", "masculine")
AGE = ("young", "middle", "older")
LIGHTING = {"dim": 0.6, "normal": 1.0, "bright": 1.2}
SIZE = 32

_yy, _xx = np.mgrid[0:SIZE, 0:SIZE].astype(np.float32)


def sample_attributes(n: int, rng: np.random.Generator, *, skin_p=None) -> pd.DataFrame:
    """Draw ``n`` samples' class and attributes (skin types with probabilities ``skin_p``)."""
    skin_p = np.full(6, 1 / 6) if skin_p is None else np.asarray(skin_p, dtype=float) / np.sum(skin_p)
    return pd.DataFrame(
        {
            "label": rng.integers(0, len(CLASSES), n),
            "skin_type": rng.choice(np.arange(1, 7), n, p=skin_p),
            "gender_presentation": rng.choice(GENDER, n),
            "age_group": rng.choice(AGE, n, p=[0.4, 0.4, 0.2]),
            "lighting": rng.choice(list(LIGHTING), n, p=[0.3, 0.5, 0.2]),
        }
    )


def _mark(label: int, cy: float, cx: float, r: float) -> np.ndarray:
    if label == 0:  # circle
        return (_yy - cy) ** 2 + (_xx - cx) ** 2 <= r**2
    if label == 1:  # square
        return (np.abs(_yy - cy) <= r * 0.85) & (np.abs(_xx - cx) <= r * 0.85)
    # triangle pointing up
    top, bottom = cy - r, cy + r
    inside_y = (_yy >= top) & (_yy <= bottom)
    half_width = (_yy - top) / (2 * r) * r * 1.1
    return inside_y & (np.abs(_xx - cx) <= half_width)


def render(attrs: pd.DataFrame, rng: np.random.Generator) -> np.ndarray:
    """Draw one uint8 image ``(SIZE, SIZE, 3)`` per row of ``attrs``."""
    n = len(attrs)
    out = np.empty((n, SIZE, SIZE, 3), dtype=np.uint8)
    for i, row in enumerate(attrs.itertuples(index=False)):
        light = LIGHTING[row.lighting]
        img = np.empty((SIZE, SIZE, 3), dtype=np.float32)
        img[:] = rng.uniform(60, 200, 3)  # background
        cy, cx = 16 + rng.uniform(-1.5, 1.5), 16 + rng.uniform(-1.5, 1.5)
        hair = {"young": (60, 40, 25), "middle": (90, 70, 50), "older": (185, 185, 185)}[row.age_group]
        hair_r = 14.5 if row.gender_presentation == "feminine" else 12.0
        head = ((_yy - cy + 1) / hair_r) ** 2 + ((_xx - cx) / (hair_r * 0.85)) ** 2 <= 1
        img[head] = hair
        face = ((_yy - cy) / 11.0) ** 2 + ((_xx - cx) / 8.5) ** 2 <= 1
        tone = SKIN_TONES[row.skin_type - 1] * rng.uniform(0.93, 1.07)
        img[face] = tone
        mark = _mark(int(row.label), cy + rng.uniform(-1, 1), cx + rng.uniform(-1, 1), rng.uniform(3.6, 4.6))
        img[mark & face] = (45, 32, 28)
        img *= light
        img += rng.normal(0, 9, img.shape)
        out[i] = np.clip(img, 0, 255).astype(np.uint8)
    return out
