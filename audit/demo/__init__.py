"""``audit demo``: a complete audit that runs offline in well under a minute.

:func:`generate` makes a synthetic, demographically annotated test split
(:mod:`audit.demo.synth`), trains a tiny CNN (:mod:`audit.demo.model`) on a
separate training split in which darker skin types are rare, saves its
weights as a state dict, and writes a data card and a model card next to
them. :func:`run_demo` then runs the same pipeline as ``audit run``.

Layout of the output directory::

    data/images/*.png      test images
    data/manifest.csv      sample_id, image, shape, skin_type, gender_presentation, age_group, lighting
    model/tiny_cnn.pth     trained weights (state dict)
    data_cards/demo.md     data card of the test split
    models/demo.md         model card of the tiny CNN
    demo.json              generator stamp (seed, version, training accuracy)
    results.json, index.html, predictions.parquet, predictions.json

Everything is seeded. A second run with the same seed finds ``demo.json``
and reuses the generated files, so the prediction cache is reused too.
"""

from __future__ import annotations

import io
import json
import logging
import time
from pathlib import Path

import numpy as np

from .._io import atomic_write_bytes, atomic_write_text, atomic_write_with

__all__ = ["GENERATOR_VERSION", "generate", "render_card", "run_demo"]

log = logging.getLogger("audit")

GENERATOR_VERSION = 2
N_TRAIN = 2400
N_TEST = 720
# Training skin-type mix: types IV-VI are 10% of the training data (uniform in the test split).
TRAIN_SKIN_P = (0.30, 0.30, 0.30, 0.04, 0.03, 0.03)
EPOCHS = 6


def render_card(kind: str, *, root: str = "..") -> str:
    """Render the demo's data card (``kind="data"``) or model card (``kind="model"``).

    ``root`` is the directory of the generated files relative to the card.
    """
    from jinja2 import Environment, PackageLoader

    env = Environment(loader=PackageLoader("audit", "templates"), autoescape=False, keep_trailing_newline=True)
    return env.get_template(f"demo_{kind}_card.md.j2").render(root=root.rstrip("/") or ".")


def _train(images: np.ndarray, labels: np.ndarray, *, seed: int):
    import torch

    from .model import tiny_cnn

    torch.manual_seed(seed)
    x = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float().div(255).sub(0.5).div(0.5)
    y = torch.from_numpy(np.array(labels, dtype=np.int64))
    model = tiny_cnn(num_classes=3)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    gen = torch.Generator().manual_seed(seed)
    model.train()
    for _ in range(EPOCHS):
        order = torch.randperm(len(x), generator=gen)
        for start in range(0, len(x), 64):
            idx = order[start : start + 64]
            opt.zero_grad()
            loss = torch.nn.functional.cross_entropy(model(x[idx]), y[idx])
            loss.backward()
            opt.step()
    model.eval()
    with torch.no_grad():
        accuracy = float((model(x).argmax(1) == y).float().mean())
    return model, accuracy


def generate(out_dir, *, seed: int = 0, force: bool = False) -> tuple[Path, Path]:
    """Generate the demo split, train the model, write both cards.

    Parameters
    ----------
    out_dir : str or Path
        Output directory.
    seed : int
        Seed of the generator and of training.
    force : bool
        Regenerate even if ``demo.json`` says the files are there.

    Returns
    -------
    (model_card, data_card) : tuple of Path
    """
    import torch
    from PIL import Image

    from . import synth

    out = Path(out_dir)
    stamp_path = out / "demo.json"
    model_card, data_card = out / "models" / "demo.md", out / "data_cards" / "demo.md"
    weights = out / "model" / "tiny_cnn.pth"
    manifest = out / "data" / "manifest.csv"
    if not force and stamp_path.is_file() and all(p.is_file() for p in (model_card, data_card, weights, manifest)):
        try:
            stamp = json.loads(stamp_path.read_text())
        except ValueError:
            stamp = {}
        if stamp.get("generator_version") == GENERATOR_VERSION and stamp.get("seed") == seed:
            log.info("demo: reusing generated split and model in %s (seed %d)", out, seed)
            for card, kind in ((data_card, "data"), (model_card, "model")):
                text = render_card(kind, root="..")
                if card.read_text(encoding="utf-8") != text:  # the package's card text changed
                    atomic_write_text(card, text)
            return model_card, data_card

    t0 = time.perf_counter()
    rng = np.random.default_rng(seed)
    train_attrs = synth.sample_attributes(N_TRAIN, rng, skin_p=TRAIN_SKIN_P)
    train_images = synth.render(train_attrs, rng)
    test_attrs = synth.sample_attributes(N_TEST, rng)
    test_images = synth.render(test_attrs, rng)
    log.info("demo: drew %d training and %d test images", N_TRAIN, N_TEST)

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny convolutions: one thread is faster and bitwise reproducible
    try:
        model, train_acc = _train(train_images, train_attrs["label"].to_numpy(), seed=seed)
    finally:
        torch.set_num_threads(threads)
    log.info("demo: trained tiny CNN for %d epochs (training accuracy %.3f)", EPOCHS, train_acc)

    image_dir = out / "data" / "images"
    image_dir.mkdir(parents=True, exist_ok=True)
    rows = []
    for i, (row, pixels) in enumerate(zip(test_attrs.itertuples(index=False), test_images)):
        sid = f"demo_{i:04d}"
        Image.fromarray(pixels).save(image_dir / f"{sid}.png", optimize=False, compress_level=1)
        rows.append(
            {
                "sample_id": sid,
                "image": f"images/{sid}.png",
                "shape": synth.CLASSES[int(row.label)],
                "skin_type": int(row.skin_type),
                "gender_presentation": row.gender_presentation,
                "age_group": row.age_group,
                "lighting": row.lighting,
            }
        )
    import pandas as pd

    atomic_write_with(manifest, lambda tmp: pd.DataFrame(rows).to_csv(tmp, index=False))
    weights.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()  # saving to a buffer keeps the archive's inner name, so the bytes are reproducible
    torch.save(model.state_dict(), buffer)
    atomic_write_bytes(weights, buffer.getvalue())
    atomic_write_text(data_card, render_card("data", root=".."))
    atomic_write_text(model_card, render_card("model", root=".."))
    stamp = {
        "generator_version": GENERATOR_VERSION,
        "seed": seed,
        "n_train": N_TRAIN,
        "n_test": N_TEST,
        "train_skin_p": list(TRAIN_SKIN_P),
        "epochs": EPOCHS,
        "train_accuracy": round(train_acc, 4),
        "seconds": round(time.perf_counter() - t0, 2),
    }
    atomic_write_text(stamp_path, json.dumps(stamp, indent=2) + "\n")
    log.info("demo: generated in %.1f s", stamp["seconds"])
    return model_card, data_card


def run_demo(*, out_dir="reports/demo", seed: int = 0, **options):
    """Generate (or reuse) the demo files in ``out_dir`` and audit them like ``audit run``.

    Parameters
    ----------
    out_dir : str or Path
        Output directory (default ``reports/demo``).
    seed : int
        Seed for generation, training, bootstrap and permutation tests.
    **options
        Passed to :func:`audit.pipeline.run_audit` (``n_boot``, ``batch_size``...).

    Returns
    -------
    AuditRun
    """
    from ..pipeline import run_audit

    model_card, data_card = generate(out_dir, seed=seed)
    return run_audit(model=model_card, data=data_card, out_dir=out_dir, seed=seed, **options)
