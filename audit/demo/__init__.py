"""``audit demo``: the planted-bias benchmark, three models trained by ``audit train``, four audits, one report.

:func:`run_demo`

1. draws the benchmark (:mod:`audit.benchmark`) into ``OUT/benchmark``:
   portraits for classification and scenes for detection and semantic
   segmentation, with a training split in which Monk 6-10 people are rare and
   more often underexposed, and a balanced test split;
2. gets the shared ResNet-18 trunk (:func:`audit.train.pretrain.pretrained_trunk`:
   a local file when given, else the project's own source-task pretraining,
   cached in ``OUT/models/source_trunk.pth``);
3. trains a classifier, a person detector and a semantic segmenter on the
   training splits exactly as ``audit train`` does, writing their model cards
   and weights into ``OUT/models/``;
4. audits each on its test split (``OUT/classification``, ``OUT/detection``,
   ``OUT/segmentation``, like ``audit run``);
5. audits panoptic segmentation on the scenes' panoptic ground truth
   (:mod:`audit.benchmark.panoptic`) with no fourth model: the detector's boxes
   and the segmenter's map merged (:mod:`audit.demo.panoptic_model`, card
   ``OUT/models/benchmark_panoptic.md``) into ``OUT/panoptic``, and renders one
   report of all four into ``OUT/index.html``.

``tasks`` (``audit demo --tasks classification,panoptic``) audits only those
and trains only the models they need (panoptic needs the detector and the
segmenter); the benchmark is drawn whole either way, so a task's figures do
not depend on which others ran.

Everything is seeded. ``OUT/demo.json`` records what was drawn and trained; a
second run with the same settings reuses the benchmark, the weights (of each
model already trained there) and the prediction caches.
"""

from __future__ import annotations

import copy
import json
import logging
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .._io import atomic_write_text

__all__ = ["AUDITS", "DEMO_TASKS", "DemoRun", "DemoTask", "run_demo"]

log = logging.getLogger("audit")

DEMO_VERSION = 3


@dataclass(frozen=True)
class DemoTask:
    """One model of the demo: what ``audit train`` gets, and which benchmark split it is audited on."""

    name: str  # output directory and report section
    task: str  # audit train --task
    data: str  # benchmark task of the data cards
    model_card: str  # file name in OUT/models
    strategy: str
    options: dict = field(default_factory=dict)


DEMO_TASKS = (
    # 32x32 is enough to tell the stickers apart and trains 4x faster than 64x64 (at 64x64 the classifier makes
    # almost no error, and no knob plants a gap); 16 epochs, as the sticker's contrast, the same for every tone (85 of
    # 255, never clipped: audit.benchmark._draw), takes longer to learn than version 3's clipped 130
    DemoTask("classification", "classification", "classification", "benchmark_classifier.md", "finetune",
             {"resize": (32, 32), "epochs": 16}),
    DemoTask("detection", "detection", "detection", "benchmark_detector.md", "finetune"),
    DemoTask("segmentation", "semantic_segmentation", "segmentation", "benchmark_segmenter.md", "finetune"),
)
# what the demo can audit (``tasks=``), in the report's order, and the models each needs
AUDITS = {"classification": ("classification",), "detection": ("detection",), "segmentation": ("segmentation",),
          "panoptic": ("detection", "segmentation")}


@dataclass
class DemoRun:
    """What :func:`run_demo` made: the report, each task's audit and the training summaries."""

    out_dir: Path
    report: Path
    audits: dict  # name -> AuditRun
    training: dict  # name -> training summary
    seconds: float

    @property
    def paths(self) -> dict:
        return {"results": self.out_dir / "demo.json", "html": self.report}


def _stamp(seed: int, knobs, backbone_weights) -> dict:
    from ..benchmark import GENERATOR_VERSION

    stamp = {"demo_version": DEMO_VERSION, "generator_version": GENERATOR_VERSION, "seed": seed,
             "knobs": asdict(knobs), "backbone_weights": None if backbone_weights is None else str(backbone_weights),
             "tasks": [asdict(t) for t in DEMO_TASKS]}
    return json.loads(json.dumps(stamp))  # as demo.json reads back (tuples become lists)


def _trained(out: Path, stamp: dict) -> dict:
    """The training summaries of an earlier run with the same stamp, of the models whose card and weights are
    still there (and the pretraining's, when any is)."""
    try:
        previous = json.loads((out / "demo.json").read_text())
    except (OSError, ValueError):
        return {}
    if {k: previous.get(k) for k in stamp} != stamp or not isinstance(previous.get("training"), dict):
        return {}
    models = out / "models"
    training = {t.name: previous["training"][t.name] for t in DEMO_TASKS if t.name in previous["training"]
                and (models / t.model_card).is_file() and (models / t.model_card).with_suffix(".pth").is_file()}
    if training and "pretraining" in previous["training"]:
        training["pretraining"] = previous["training"]["pretraining"]
    return training


def _tasks(tasks) -> tuple:
    """``tasks`` (names, or a comma list) in the report's order; all of :data:`AUDITS` when None."""
    if tasks is None:
        return tuple(AUDITS)
    names = [t.strip() for t in (tasks.split(",") if isinstance(tasks, str) else tasks)]
    unknown = [t for t in names if t not in AUDITS]
    if unknown or not names:
        raise ValueError(f"tasks: expected one or more of {', '.join(AUDITS)}, found "
                         f"{', '.join(unknown) if unknown else 'none'}")
    return tuple(t for t in AUDITS if t in names)


def run_demo(*, out_dir="reports/demo", seed: int = 0, knobs=None, backbone_weights=None, thumbnails: bool = True,
             command=None, tasks=None, **options) -> DemoRun:
    """Draw the benchmark, train three models, audit them (and the panoptic merge of two) into ``OUT/index.html``.

    Parameters
    ----------
    out_dir : str or Path
        Output directory (default ``reports/demo``).
    seed : int
        Seed of the benchmark, the training and the audits' bootstrap and permutation tests.
    knobs : audit.benchmark.Knobs, optional
        The planted bias (default: both knobs on; ``Knobs.off()`` plants none, ``Knobs.representation()`` and
        ``Knobs.acquisition()`` one cause each).
    backbone_weights : str or Path, optional
        Pretrained trunk weights (a local ``.pth`` or a torchvision enum name)
        instead of the project's own source-task pretraining.
    thumbnails : bool
        Embed thumbnails of the worst errors in the report.
    command : list of str, optional
        The command line, shown in the report.
    tasks : list of str or str, optional
        What to audit, of ``classification``, ``detection``, ``segmentation`` and ``panoptic`` (default: all);
        only the models these need are trained.
    **options
        Passed to :func:`audit.report.run_audit` (``n_boot``, ``n_perm``, ``batch_size``, ``covariates``...);
        the benchmark's cards declare ``covariates: [lighting]``, so each audit explains its gaps by lighting.

    Returns
    -------
    DemoRun
    """
    from ..benchmark import Knobs, write_benchmark
    from ..report import run_audit
    from ..report import write_report

    start = time.perf_counter()
    tasks = _tasks(tasks)
    needed = [t for t in DEMO_TASKS if any(t.name in AUDITS[a] for a in tasks)]
    out = Path(out_dir)
    knobs = Knobs() if knobs is None else knobs
    bench = write_benchmark(out / "benchmark", seed=seed, knobs=knobs)
    log.info("demo: benchmark ready in %s (%.1f s)", bench.root, time.perf_counter() - start)

    stamp = _stamp(seed, knobs, backbone_weights)
    training = _trained(out, stamp)
    missing = [t for t in needed if t.name not in training]
    if not missing:
        log.info("demo: reusing the trained models in %s", out / "models")
    else:
        training.update(_train_all(out, bench, missing, seed=seed, backbone_weights=backbone_weights))
        atomic_write_text(out / "demo.json", json.dumps({**stamp, "training": training}, indent=2) + "\n")

    audits = {}
    for t in DEMO_TASKS:
        if t.name in tasks:
            audits[t.name] = run_audit(model=out / "models" / t.model_card, data=bench.card(t.data, "test"),
                                       out_dir=out / t.name, seed=seed, thumbnails=thumbnails, command=command,
                                       **options)
    if "panoptic" in tasks:
        audits["panoptic"] = _panoptic_audit(out, bench, seed=seed, thumbnails=thumbnails, command=command,
                                             **options)
    report = write_report([out / name for name in tasks], out / "index.html", thumbnails=thumbnails)
    seconds = time.perf_counter() - start
    log.info("demo: wrote %s in %.1f s", report, seconds)
    return DemoRun(out_dir=out, report=report, audits=audits, training=training, seconds=seconds)


def _panoptic_audit(out: Path, bench, **options):
    """The panoptic audit of the test scenes by the detector and the segmenter merged (no model trained)."""
    from ..benchmark.panoptic import write_panoptic_benchmark
    from ..report import run_audit
    from .panoptic_model import write_card

    data = write_panoptic_benchmark(bench, splits=("test",))["test"]
    cards = {t.name: t.model_card for t in DEMO_TASKS}
    card = write_card(out / "models", detector=cards["detection"], segmenter=cards["segmentation"])
    return run_audit(model=card, data=data, out_dir=out / "panoptic", **options)


def _train_all(out: Path, bench, demo_tasks, *, seed: int, backbone_weights) -> dict:
    from ..train import get_trainer
    from ..train.pretrain import pretrained_trunk

    t0 = time.perf_counter()
    trunk, provenance = pretrained_trunk(weights=backbone_weights, cache=out / "models" / "source_trunk.pth",
                                         seed=seed)
    training = {"pretraining": {**provenance, "seconds": round(time.perf_counter() - t0, 2)}}
    for t in demo_tasks:
        t0 = time.perf_counter()
        summary = get_trainer(t.task)(bench.card(t.data, "train"), trunk=copy.deepcopy(trunk), provenance=provenance,
                                   out_card=out / "models" / t.model_card, strategy=t.strategy, seed=seed,
                                   **t.options)
        training[t.name] = {**summary, "seconds": round(time.perf_counter() - t0, 2)}
        log.info("demo: trained the %s in %.1f s", t.name, time.perf_counter() - t0)
    return training
