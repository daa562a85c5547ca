"""Benchmark (issue #19): `audit run --model` against a bare PyTorch inference loop, whole-process CPU.

For each task, a synthetic split (smooth random JPEG images, seeded) is written to a temporary directory
with its data card, and a torchvision network with random weights (weights=None, seeded, saved as a state
dict the model card names) is run over it twice, each as a fresh subprocess:

- ours: ``audit run --model M --data D --out O -q --device cpu --batch-size B`` (everything: cards, split,
  inference with the image statistics of the dataset section, the prediction cache, the statistics engine with
  its default 1,000 resamples, the gap analysis, results.json and index.html);
- reference: a bare PyTorch script over the same images: decode with PIL, the same transform, the same batch
  size, forward under ``torch.inference_mode``, the outputs turned into what they predict (softmax scores;
  boxes; per-pixel arg-max at the image size), and nothing else. The arg-max is ``max(0).indices``, as in the
  audit: torch's ``argmax(0)`` gives the same indices 5 to 15 times slower on the CPU (48 ms for one 2-class
  448 x 448 image), and a reference that used it would hide the audit's own overhead behind the difference.

Both run with the same thread count (``OMP_NUM_THREADS`` and ``torch.set_num_threads``; one by default, with
``OMP_WAIT_POLICY=PASSIVE``: on a machine shared with other work, idle OpenMP threads spinning for a busy core
made the CPU time of the same run vary by a factor of two). CPU is user + system
of the subprocess and its children (``getrusage(RUSAGE_CHILDREN)`` in a wrapper process), printed as
ours / reference. Target: <= 1.05 for every task.

The two sides of a comparison run at the same time, one core each, whenever the machine has a core per thread
for both (``2 * threads <= os.cpu_count()``; else one after the other): what this machine gives a process
changes over the minutes a run takes, and one after the other the same bare loop over the same 1,000 detection
scenes took 136.5 s of CPU in one run of this bench and 214.1 s in another, while side by side both processes
see the same machine. ``--repeat`` runs that many pairs; the pair with the median ratio is shown (the upper of
two), with every pair's ratio beside it.

The default split sizes are those of a real audit, at the small end: 2,000 portraits (the Pilot Parliaments
Benchmark of Gender Shades has 1,270; FairFace's validation split 10,954), 1,000 street scenes for detection
(COCO val2017 has 2,693 images with people, FACET 32k) and 1,000 segmented scenes (the validation splits of
Cityscapes, Pascal VOC 2012 and ADE20K have 500, 1,449 and 2,000; before this default was 400, below all but
the first). At a few dozen images the comparison mostly measures what is paid once per run; the second table
separates the two, and its last column says from which split size the target holds:

- per image: in one process, the audit's own inference function (``run_inference`` with the image statistics,
  ``run_detector``, ``run_segmenter`` writing its masks) against the bare loop around the same network object,
  alternating for ``--rounds`` rounds, the smallest CPU of each kept: no imports, no network building, and the
  same warm-up on both sides;
- once per run: ``audit run`` again on the same output directory (the prediction cache hits: everything but
  inference) against the reference with no images (imports, building the network, loading its weights). The
  difference is the audit's fixed cost: the statistics engine (1,000 resamples and permutations), the gap
  analysis, the dataset section, results.json and index.html with their charts, and the imports they need
  (pandas, scipy.stats, statsmodels, jinja2, jsonschema, pyarrow).

| task | images | network |
|---|---|---|
| classification | 256 x 256 JPEG, resized to 224 | resnet18 |
| detection | 640 x 480 JPEG (the network resizes to 320) | fasterrcnn_mobilenet_v3_large_320_fpn |
| semantic segmentation | 448 x 448 JPEG, PNG label masks | lraspp_mobilenet_v3_large |

    python bench/overhead.py [--classification 2000] [--detection 1000] [--segmentation 1000] [--threads 1]
                             [--tasks classification,detection,segmentation] [--repeat 3] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import signal
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import numpy as np

from _cards import write_classification_card  # bench/ is on sys.path when a bench runs

HERE = Path(__file__).resolve().parent

# --------------------------------------------------------------------------- references: bare PyTorch loops

REFERENCE = r'''
import json, sys
spec = json.load(open(sys.argv[1]))
import torch, torchvision
from PIL import Image
torch.set_num_threads(spec["threads"])
task, paths, batch = spec["task"], spec["paths"], spec["batch"]
kwargs = {"weights": None, "num_classes": spec["num_classes"]}
if task != "classification":
    kwargs["weights_backbone"] = None
net = torchvision.models.get_model(spec["architecture"], **kwargs)
net.load_state_dict(torch.load(spec["weights"], map_location="cpu", weights_only=True))
net.eval()
if task == "detection":
    from torchvision.transforms.functional import pil_to_tensor
    transform = lambda image: pil_to_tensor(image).float().div(255)
else:
    from torchvision import transforms as T
    transform = T.Compose([T.Resize(spec["resize"], antialias=True), T.ToTensor(),
                           T.Normalize(mean=spec["mean"], std=spec["std"])])
kept = 0
with torch.inference_mode():
    for start in range(0, len(paths), batch):
        images = []
        for path in paths[start:start + batch]:
            with Image.open(path) as image:
                images.append(image.convert("RGB"))
        tensors = [transform(image) for image in images]
        if task == "classification":
            scores = torch.softmax(net(torch.stack(tensors)).float(), dim=1).numpy()
            kept += scores.shape[0]
        elif task == "detection":
            for out in net(tensors):
                kept += len(out["boxes"].numpy())
        else:
            logits = net(torch.stack(tensors))["out"].float()
            for k, image in enumerate(images):
                resized = torch.nn.functional.interpolate(logits[k:k + 1], size=(image.height, image.width),
                                                          mode="bilinear", align_corners=False)
                kept += int(resized[0].max(0).indices.numpy().astype("uint8").size > 0)
print(kept, file=sys.stderr)
'''

# The per-image cost in one process: the audit's own inference function (what `audit run` calls, with the image
# statistics when it computes them) against the bare loop around the same network object, alternating, the
# smallest CPU of each kept. No imports, no network building, no warm-up in either number.
IN_PROCESS = r'''
import json, resource, sys, tempfile
spec = json.load(open(sys.argv[1]))
import numpy as np, pandas as pd, torch
from PIL import Image
torch.set_num_threads(spec["threads"])
task, paths, batch = spec["task"], spec["paths"][:spec["images"]], spec["batch"]
def cpu():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime
if task == "classification":
    from audit.core.card_loaders import load_model_card
    from audit.core.inference import run_inference
    from audit.core.models import build_model, build_transform
    card = load_model_card(spec["model_card"])
    net, transform = build_model(card).eval(), build_transform(card)
    frame = pd.DataFrame({"sample_id": [str(i) for i in range(len(paths))], "image_path": paths})
    def ours():
        run_inference(net, frame, transform=transform, classes=card.label_map, label_map=card.label_map,
                      batch_size=batch, progress=False, image_statistics=True)
    def bare():
        with torch.inference_mode():
            for s in range(0, len(paths), batch):
                images = []
                for path in paths[s:s + batch]:
                    with Image.open(path) as image:
                        images.append(image.convert("RGB"))
                torch.softmax(net(torch.stack([transform(i) for i in images])).float(), dim=1).numpy()
elif task == "detection":
    from torchvision.transforms.functional import pil_to_tensor
    from audit.tasks.detection.cards import load_detection_data_card
    from audit.tasks.detection.data import load_ground_truth
    from audit.tasks.detection.inference import build_detector, category_mapping, run_detector
    from audit.core.card_loaders import load_model_card
    card, data = load_model_card(spec["model_card"]), load_detection_data_card(spec["data_card"])
    net = build_detector(card).eval()
    gt = load_ground_truth(data.coco, masks=data.masks, need_masks=False, image_root=data.image_root)
    rows = gt.images.iloc[:len(paths)]
    paths = [str(p) for p in rows["path"]]
    mapping = category_mapping(card, gt, class_agnostic=data.class_agnostic, detection_classes=None)
    def ours():
        run_detector(net, gt, image_root=data.image_root, mapping=mapping, device=torch.device("cpu"),
                     batch_size=batch, progress=False, images=rows)
    def bare():
        with torch.inference_mode():
            for s in range(0, len(paths), batch):
                tensors = []
                for path in paths[s:s + batch]:
                    with Image.open(path) as image:
                        tensors.append(pil_to_tensor(image.convert("RGB")).float().div(255))
                for out in net(tensors):
                    out["boxes"].numpy()
else:
    from audit.core.card_loaders import load_model_card
    from audit.core.models import build_transform
    from audit.core.registry import load_any_data_card
    from audit.tasks.segmentation.data import load_segmentation_split
    from audit.tasks.segmentation.models import build_segmenter, segmentation_logits
    from audit.tasks.segmentation.pipeline import run_segmenter
    card, data = load_model_card(spec["model_card"]), load_any_data_card(spec["data_card"])
    net, transform = build_segmenter(card).eval(), build_transform(card)
    images = load_segmentation_split(data)[0].iloc[:len(paths)]
    paths = images["image_path"].tolist()
    target = tempfile.mkdtemp()
    def ours():
        run_segmenter(net, images, transform=transform, permutation=np.arange(len(card.label_map)),
                      out_dir=target, batch_size=batch, progress=False)
    def bare():
        with torch.inference_mode():
            for s in range(0, len(paths), batch):
                decoded = []
                for path in paths[s:s + batch]:
                    with Image.open(path) as image:
                        decoded.append(image.convert("RGB"))
                logits = segmentation_logits(net(torch.stack([transform(i) for i in decoded]))).float()
                for k, image in enumerate(decoded):
                    resized = torch.nn.functional.interpolate(logits[k:k + 1], size=(image.height, image.width),
                                                              mode="bilinear", align_corners=False)
                    resized[0].max(0).indices.numpy().astype("uint8")
best = {"ours": [], "bare": []}
for _ in range(spec["rounds"]):
    for name, f in (("bare", bare), ("ours", ours)):
        t = cpu(); f(); best[name].append(cpu() - t)
print(json.dumps({k: min(v) for k, v in best.items()} | {"images": len(paths)}))
'''

# --------------------------------------------------------------------------- synthetic splits


def _image(rng, width: int, height: int):
    """A smooth random colour field with some texture: a photo's JPEG size and decode cost, roughly."""
    from PIL import Image

    low = Image.fromarray(rng.integers(0, 256, (6, 8, 3), dtype=np.uint8)).resize((width, height), Image.BICUBIC)
    pixels = np.asarray(low, dtype=np.int16) + rng.integers(-12, 13, (height, width, 1), dtype=np.int16)
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))


def _weights(path: Path, architecture: str, num_classes: int, task: str) -> None:
    import torch
    import torchvision

    torch.manual_seed(0)
    kwargs = {"weights": None, "num_classes": num_classes}
    if task != "classification":
        kwargs["weights_backbone"] = None
    torch.save(torchvision.models.get_model(architecture, **kwargs).state_dict(), path)


GROUPS = {"skin": ["lighter", "darker"], "gender": ["female", "male"]}


def make_classification(root: Path, n: int) -> dict:
    import pandas as pd

    rng = np.random.default_rng(0)
    (root / "images").mkdir(parents=True)
    rows = []
    for i in range(n):
        name = f"images/{i:05d}.jpg"
        _image(rng, 256, 256).save(root / name, quality=90)
        rows.append({"id": f"s{i:05d}", "file": name, "label": ["cat", "dog"][i % 2],
                     "skin": GROUPS["skin"][int(rng.integers(2))], "gender": GROUPS["gender"][int(rng.integers(2))]})
    pd.DataFrame(rows).to_csv(root / "manifest.csv", index=False)
    write_classification_card(root, "Overhead bench, classification")
    _weights(root / "net.pth", "resnet18", 2, "classification")
    mean, std = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]
    (root / "model.md").write_text(textwrap.dedent(f"""\
        ---
        task: classification
        model: {{architecture: resnet18}}
        weights: {{path: net.pth}}
        num_classes: 2
        label_map: [cat, dog]
        preprocessing: {{resize: [224, 224], mean: {mean}, std: {std}}}
        ---
        # resnet18, random weights
        """))
    return {"data": root / "data.md", "model": root / "model.md", "batch": 32,
            "reference": {"task": "classification", "architecture": "resnet18", "num_classes": 2,
                          "weights": str(root / "net.pth"), "resize": [224, 224], "mean": mean, "std": std,
                          "paths": [str(root / r["file"]) for r in rows]},
            "what": "resnet18, 256x256 JPEG -> 224"}


def make_detection(root: Path, n: int) -> dict:
    rng = np.random.default_rng(1)
    root.mkdir(parents=True)
    images, anns = [], []
    for i in range(n):
        name = f"{i:05d}.jpg"
        _image(rng, 640, 480).save(root / name, quality=90)
        images.append({"id": i + 1, "file_name": name, "width": 640, "height": 480})
        for k in range(int(rng.integers(1, 4))):
            x, y = float(rng.integers(0, 400)), float(rng.integers(0, 200))
            anns.append({"id": len(anns) + 1, "image_id": i + 1, "category_id": 1, "bbox": [x, y, 120.0, 240.0],
                         "area": 120.0 * 240.0, "iscrowd": 0,
                         "attributes": {"skin": GROUPS["skin"][int(rng.integers(2))],
                                        "gender": GROUPS["gender"][int(rng.integers(2))]}})
    (root / "gt.json").write_text(json.dumps({"images": images, "annotations": anns,
                                              "categories": [{"id": 1, "name": "person"}]}))
    (root / "data.md").write_text(textwrap.dedent("""\
        ---
        pretty_name: Overhead bench, detection
        split: {coco: gt.json}
        attributes: {skin: {}, gender: {}}
        intersections: [[skin, gender]]
        ---
        # Overhead bench
        """))
    _weights(root / "net.pth", "fasterrcnn_mobilenet_v3_large_320_fpn", 2, "detection")
    (root / "model.md").write_text(textwrap.dedent("""\
        ---
        task: detection
        model: {architecture: fasterrcnn_mobilenet_v3_large_320_fpn}
        weights: {path: net.pth}
        num_classes: 2
        label_map: [__background__, person]
        ---
        # fasterrcnn_mobilenet_v3_large_320_fpn, random weights
        """))
    return {"data": root / "data.md", "model": root / "model.md", "batch": 4,
            "reference": {"task": "detection", "architecture": "fasterrcnn_mobilenet_v3_large_320_fpn",
                          "num_classes": 2, "weights": str(root / "net.pth"),
                          "paths": [str(root / im["file_name"]) for im in images]},
            "what": "fasterrcnn_mobilenet_v3_large_320_fpn, 640x480 JPEG"}


def make_segmentation(root: Path, n: int) -> dict:
    import pandas as pd
    from PIL import Image

    rng = np.random.default_rng(2)
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    rows = []
    for i in range(n):
        sid = f"s{i:05d}"
        _image(rng, 448, 448).save(root / "images" / f"{sid}.jpg", quality=90)
        mask = np.zeros((448, 448), dtype=np.uint8)
        top, left = rng.integers(0, 200, 2)
        mask[top:top + 240, left:left + 120] = 1
        Image.fromarray(mask).save(root / "masks" / f"{sid}.png")
        rows.append({"id": sid, "file": f"images/{sid}.jpg", "mask": f"masks/{sid}.png",
                     "lighting": ["dim", "bright"][int(rng.integers(2))]})
    pd.DataFrame(rows).to_csv(root / "manifest.csv", index=False)
    (root / "data.md").write_text(textwrap.dedent("""\
        ---
        pretty_name: Overhead bench, semantic segmentation
        split: {manifest: manifest.csv, id_column: id, image_column: file}
        image_root: .
        classes: [background, person]
        attributes:
          lighting: {column: lighting}
        segmentation: {mask_column: mask, person_class: person}
        ---
        # Overhead bench
        """))
    _weights(root / "net.pth", "lraspp_mobilenet_v3_large", 2, "segmentation")
    mean, std = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]
    (root / "model.md").write_text(textwrap.dedent(f"""\
        ---
        task: semantic_segmentation
        model: {{architecture: lraspp_mobilenet_v3_large}}
        weights: {{path: net.pth}}
        num_classes: 2
        label_map: [background, person]
        preprocessing: {{resize: [448, 448], mean: {mean}, std: {std}}}
        ---
        # lraspp_mobilenet_v3_large, random weights
        """))
    return {"data": root / "data.md", "model": root / "model.md", "batch": 8,
            "reference": {"task": "segmentation", "architecture": "lraspp_mobilenet_v3_large", "num_classes": 2,
                          "weights": str(root / "net.pth"), "resize": [448, 448], "mean": mean, "std": std,
                          "paths": [str(root / r["file"]) for r in rows]},
            "what": "lraspp_mobilenet_v3_large, 448x448 JPEG"}


MAKERS = {"classification": make_classification, "detection": make_detection, "segmentation": make_segmentation}

# --------------------------------------------------------------------------- measuring


WRAPPER = ("import resource, subprocess, sys, json, time; t = time.perf_counter(); "
           "p = subprocess.run(sys.argv[1:]); "
           "u = resource.getrusage(resource.RUSAGE_CHILDREN); "
           "print(json.dumps({'rc': p.returncode, 'cpu': u.ru_utime + u.ru_stime, "
           "'wall': time.perf_counter() - t, 'rss': u.ru_maxrss / 1024}))")


def measure(*commands: list[str], env: dict) -> list[dict]:
    """CPU seconds (user + system, children included) and wall seconds of each command in a fresh process.

    The commands run at the same time, each in its own wrapper process, so that whatever else the machine does
    in those minutes hits all of them alike."""
    running = [subprocess.Popen([sys.executable, "-c", WRAPPER, *command], stdout=subprocess.PIPE, text=True,
                                env=env, start_new_session=True) for command in commands]
    try:
        results = []
        for command, process in zip(commands, running):
            out, _ = process.communicate()
            if process.returncode:
                raise SystemExit(f"the measuring wrapper failed (exit {process.returncode})")
            result = json.loads(out.strip().splitlines()[-1])
            if result["rc"]:
                raise SystemExit(f"failed (exit {result['rc']}): {' '.join(map(str, command))}")
            results.append(result)
        return results
    finally:  # one failed: the others (wrapper and command, a session each) are stopped, not left running
        for process in running:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


def median_pair(pairs: list[tuple[dict, dict]]) -> tuple[dict, dict]:
    """The ``(reference, ours)`` run pair whose CPU ratio is the median (the upper one of an even number: the
    conservative side)."""
    return sorted(pairs, key=lambda p: p[1]["cpu"] / p[0]["cpu"])[len(pairs) // 2]


def break_even(n: int, f: dict, target: float = 1.05) -> str:
    """The split size from which ours / reference <= ``target``, from this run's costs as lines in the size.

    Each side's CPU is a fixed part (``cached`` for ours: everything but inference; ``startup`` for the
    reference: imports and the network) plus ``n`` times a per-image part (the rest of its whole run)."""
    fixed_ours, fixed_ref = f["cached"]["cpu"], f["startup"]["cpu"]
    per_ours, per_ref = (f["ours"]["cpu"] - fixed_ours) / n, (f["reference"]["cpu"] - fixed_ref) / n
    if per_ours >= target * per_ref:
        return "never"
    return str(max(0, math.ceil((fixed_ours - target * fixed_ref) / (target * per_ref - per_ours))))


def audit_command(case: dict, out: Path, threads: int) -> list[str]:
    return [sys.executable, "-m", "audit", "run", "--model", str(case["model"]), "--data", str(case["data"]),
            "--out", str(out), "-q", "--device", "cpu", "--batch-size", str(case["batch"])]


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--classification", type=int, default=2000, help="images")
    parser.add_argument("--detection", type=int, default=1000, help="images")
    parser.add_argument("--segmentation", type=int, default=1000, help="images")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--tasks", default="classification,detection,segmentation")
    parser.add_argument("--repeat", type=int, default=3, help="run pairs; the median ratio is kept")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds of the in-process comparison")
    args = parser.parse_args(argv)
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads), "MKL_NUM_THREADS": str(args.threads),
           "OMP_WAIT_POLICY": "PASSIVE"}
    together = 2 * args.threads <= (os.cpu_count() or 1)

    def pair(reference: list[str], ours: list[str]) -> tuple[dict, dict]:
        if together:
            return tuple(measure(reference, ours, env=env))
        return measure(reference, env=env)[0], measure(ours, env=env)[0]

    load_before = os.getloadavg()[0]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for task in [t for t in args.tasks.split(",") if t]:
            n = getattr(args, task)
            case = MAKERS[task](Path(tmp) / task, n)
            common = {**case["reference"], "batch": case["batch"], "threads": args.threads}
            spec = Path(tmp) / f"{task}.json"
            spec.write_text(json.dumps(common))
            empty = Path(tmp) / f"{task}-empty.json"
            empty.write_text(json.dumps({**common, "paths": []}))
            inner = Path(tmp) / f"{task}-inner.json"
            inner.write_text(json.dumps({**common, "model_card": str(case["model"]), "data_card": str(case["data"]),
                                         "images": max(4 * case["batch"], 48), "rounds": args.rounds}))
            pairs, fixed = [], []
            for r in range(args.repeat):
                out = Path(tmp) / f"{task}-out-{r}"
                pairs.append(pair([sys.executable, "-c", REFERENCE, str(spec)],
                                  audit_command(case, out, args.threads) + ["--no-cache"]))
                fixed.append(pair([sys.executable, "-c", REFERENCE, str(empty)], audit_command(case, out, args.threads)))
            (reference, ours), (startup, cached) = median_pair(pairs), median_pair(fixed)
            best = {"reference": reference, "ours": ours, "startup": startup, "cached": cached,
                    "ratios": [o["cpu"] / r["cpu"] for r, o in pairs]}
            done = subprocess.run([sys.executable, "-c", IN_PROCESS, str(inner)], stdout=subprocess.PIPE, text=True,
                                  env=env, check=True)
            best["in_process"] = json.loads(done.stdout.strip().splitlines()[-1])
            rows.append((task, n, case["what"], case["batch"], best))
    print(f"threads={args.threads}  repeat={args.repeat} ({'each pair run at the same time, ' if together else ''}"
          f"the pair with the median ratio shown)  load average at the start {load_before:.1f}, at the end "
          f"{os.getloadavg()[0]:.1f}")
    print()
    print("| task | images | network | batch | ours CPU s | reference CPU s | ours / reference | every pair | "
          "ours wall s | reference wall s |")
    print("|---|---:|---|---:|---:|---:|---:|---|---:|---:|")
    for task, n, what, batch, f in rows:
        print(f"| {task} | {n} | {what} | {batch} | {f['ours']['cpu']:.1f} | {f['reference']['cpu']:.1f} | "
              f"**{f['ours']['cpu'] / f['reference']['cpu']:.3f}** | {', '.join(f'{r:.3f}' for r in f['ratios'])} | "
              f"{f['ours']['wall']:.1f} | {f['reference']['wall']:.1f} |")
    print()
    print("What is paid per image (in one process: the audit's inference function against the bare loop around "
          "the same network, alternating, smallest of the rounds) and once per run (CPU s):")
    print()
    print("| task | images | ms per image: ours | ms per image: reference | per image ours / reference | "
          "reference with no images | cached `audit run` | audit's fixed cost | images from which <= 1.05 |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for task, n, what, batch, f in rows:
        inner = f["in_process"]
        print(f"| {task} | {inner['images']} | {1000 * inner['ours'] / inner['images']:.1f} | "
              f"{1000 * inner['bare'] / inner['images']:.1f} | **{inner['ours'] / inner['bare']:.3f}** | "
              f"{f['startup']['cpu']:.1f} | {f['cached']['cpu']:.1f} | {f['cached']['cpu'] - f['startup']['cpu']:.1f} | "
              f"{break_even(n, f)} |")
    print()
    print("(The last column puts each side's CPU as a fixed part plus the split size times a per-image part, both "
          "from this run's whole processes, and solves for ours / reference = 1.05.)")
    print()
    worst = max(f["ours"]["cpu"] / f["reference"]["cpu"] for *_, f in rows)
    print(f"target: ours / reference <= 1.05 for every task: {'met' if worst <= 1.05 else 'NOT met'} "
          f"(largest {worst:.3f})")
    print("command: python bench/overhead.py " + " ".join(argv if argv is not None else sys.argv[1:]))


if __name__ == "__main__":
    main()
