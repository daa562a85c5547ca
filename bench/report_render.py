"""Render a three-task report (classification + detection + semantic segmentation) and time it.

The three audits are synthetic and built once, untimed (audit.report._examples: a binary classifier on
2,000 samples with 2 attributes and their intersection, thumbnails of the worst errors for 2,000 images of
64x64 pixels; a person detector on 600 images of 640x480 pixels, with crops of the worst-missed people; a
semantic segmenter on 1,000 images with 5 classes). Timed: building the report's data from the three
results.json documents (threshold sweeps, calibration, charts, thumbnails and crops) and rendering the page;
then the size of the file.

    python bench/report_render.py
"""

from __future__ import annotations

import json
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np


def main() -> None:
    from audit.report import TaskInput, build_report, render_report
    from audit.report._examples import classification_example, detection_example, segmentation_example
    from PIL import Image

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cls, preds, samples = classification_example(n=2000, n_boot=200)
        det, people = detection_example(n_images=600, n_boot=200, people=True)
        seg = segmentation_example(n_images=1000, n_boot=200)
    docs = [json.loads(json.dumps(d)) for d in (cls, det, seg)]  # as read back from results.json
    tmp = Path(tempfile.mkdtemp(prefix="report-bench-"))
    rng = np.random.default_rng(0)
    images = {}
    for sid in preds["sample_id"]:
        p = tmp / f"{sid}.png"
        Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(p)
        images[sid] = str(p)
    det_root = tmp / "det"
    det_root.mkdir()
    for name in sorted(set(people["file_name"])):  # smooth 640x480 images: small files, real decoding work
        y, x = np.mgrid[0:480, 0:640]
        pixels = np.stack([x * 255 // 639, y * 255 // 479, np.full_like(x, int(name[:4]) % 256)], -1)
        Image.fromarray(pixels.astype(np.uint8)).save(det_root / name)
    inputs = [TaskInput(docs[0], preds, samples, images),
              TaskInput(docs[1], people=people, image_root=str(det_root)), TaskInput(docs[2])]
    render_report(build_report(inputs))  # warm-up: template compilation, imports
    times = []
    for _ in range(3):
        t0 = time.perf_counter()
        html = render_report(build_report(inputs))
        times.append(time.perf_counter() - t0)
    out = tmp / "index.html"
    out.write_text(html, encoding="utf-8")
    size = out.stat().st_size
    n_metrics = sum(len(d["results"]["metrics"]) for d in docs)
    n_disp = sum(len(d["results"]["disparities"]) for d in docs)
    print(f"tasks=3 (classification 2,000 samples, detection {docs[1]['provenance']['data']['n_samples']:,} people, "
          f"segmentation 1,000 images)  metric values={n_metrics:,}  disparities={n_disp:,}  "
          f"thumbnails={html.count('data:image/png;base64,')}\n")
    print("| what | value | target |")
    print("|---|---:|---:|")
    print(f"| build report data + render HTML (best of 3) | {min(times):.2f} s | ≤ 2 s |")
    print(f"| file size | {size / 1e6:.2f} MB ({size:,} bytes) | ≤ 3 MB |")


if __name__ == "__main__":
    main()
