"""``audit train``: fine-tune a torchvision trunk (ResNet-18 by default) with a new head on a split; write a model card."""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

__all__ = ["add_train_parser", "run_train"]

log = logging.getLogger("audit")

_DESCRIPTION = """\
Transfer learning onto a torchvision trunk (--backbone: ResNet-18 by default, resnet34/50/101/152,
mobilenet_v3_large/small; --trunk: cut at stride 8, ResNet conv1..layer2, by default, or full,
every convolutional stage) with a new task head,
then a model card (front matter `audit run` reads, and the training data and procedure) and its
weights (<NAME>.pth, a state dict) beside it.

Strategy: freeze everything but the head for a small dataset (`--strategy head`: fast, cannot
overfit the trunk); fine-tune deeper for a bigger one (`--strategy finetune`, the default:
the trunk's last stage, layer2 of a ResNet, is trained too; `full` trains every layer).

Pretrained weights: --backbone-weights names a local .pth file (a full-network or trunk state dict,
read with weights_only=True) or a torchvision enum of the backbone (ResNet18_Weights.IMAGENET1K_V1,
ResNet50_Weights.IMAGENET1K_V2, MobileNet_V3_Large_Weights.IMAGENET1K_V2...; read from the torch hub
cache, $TORCH_HOME/hub/checkpoints, or downloaded when a network is there). Without it the trunk is
pretrained on a synthetic source task the project draws itself (seconds, deterministic from --seed)
and cached in --pretrain-cache, so the other tasks reuse it."""


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, found {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, found {value}")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, found {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, found {value}")
    return value


def add_train_parser(sub) -> argparse.ArgumentParser:
    """Add the ``train`` subcommand to the ``audit`` parser's subparsers."""
    from .train import TRAINERS

    p = sub.add_parser("train", help="train a model on a data card's split by transfer learning; write its model card",
                       description=_DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--task", required=True, choices=list(TRAINERS), help="what the model does")
    p.add_argument("--data", required=True, metavar="CARD", help="data card of the training split")
    p.add_argument("--out", required=True, metavar="CARD", help="model card to write (models/NAME.md)")
    p.add_argument("--strategy", choices=("head", "finetune", "full"), default="finetune",
                   help="head: freeze the trunk (small dataset); finetune: also train layer2 (bigger dataset; "
                        "default); full: train everything")
    p.add_argument("--epochs", type=_positive, metavar="N", help="default depends on task and strategy")
    p.add_argument("--batch-size", type=_positive, metavar="N", help="default depends on task and strategy")
    p.add_argument("--lr", type=_positive_float, metavar="X", help="peak learning rate (default per strategy)")
    p.add_argument("--resize", type=_positive, nargs=2, metavar=("H", "W"),
                   help="classification: train and evaluate at H x W (default: the images' size)")
    p.add_argument("--seed", type=int, default=0, help="seed of initialisation, shuffling and source pretraining")
    from .train import BACKBONE_NETWORKS

    p.add_argument("--backbone", choices=list(BACKBONE_NETWORKS), default="resnet18",
                   help="torchvision network whose trunk is transferred (default resnet18)")
    p.add_argument("--trunk", choices=("stride8", "full"), default="stride8",
                   help="stride8: the stages to stride 8 (default; ResNet conv1..layer2, fast on small images); "
                        "full: every convolutional stage (ResNet conv1..layer4), the usual ImageNet recipe")
    p.add_argument("--backbone-weights", metavar="PATH_OR_ENUM",
                   help="local .pth file or torchvision weights enum of the backbone, e.g. "
                        "ResNet50_Weights.IMAGENET1K_V2 (default: synthetic source pretraining)")
    p.add_argument("--pretrain-cache", metavar="PATH",
                   help="where the source-pretrained trunk is cached (default: pretrained_trunk_seed<S>.pth "
                        "beside --out)")
    p.add_argument("--threads", type=_positive, metavar="N", help="torch CPU threads (default: torch's choice)")
    p.add_argument("-q", "--quiet", action="store_true", help="print only warnings and errors")
    return p


def run_train(args) -> int:
    """Run ``audit train``; returns 0. Bad input raises :class:`~audit.errors.AuditError`."""
    import torch

    from .train import get_trainer
    from .train.pretrain import pretrained_trunk

    trainer = get_trainer(args.task)  # fails fast for a task whose trainer is missing
    extra = {}
    if args.resize:
        import inspect

        if "resize" not in inspect.signature(trainer).parameters:
            from .errors import AuditError

            raise AuditError(f"audit train: --resize: expected only with --task classification, found --task {args.task}")
        extra["resize"] = tuple(args.resize)
    out = Path(args.out)
    if out.suffix.lower() != ".md":
        from .errors import AuditError

        raise AuditError(f"audit train: --out: expected a model card path ending in .md, found '{args.out}'")
    _check_data(args.task, args.data)  # bad data stops here, before minutes of trunk pretraining
    if args.threads:
        torch.set_num_threads(args.threads)
    from .train.backbone import backbone_key

    backbone = backbone_key(getattr(args, "backbone", "resnet18"), getattr(args, "trunk", "stride8"))
    suffix = "" if backbone == "resnet18" else f"_{backbone}"
    cache = args.pretrain_cache or out.parent / f"pretrained_trunk{suffix}_seed{args.seed}.pth"
    trunk, provenance = pretrained_trunk(weights=args.backbone_weights, cache=cache, seed=args.seed,
                                         backbone=backbone)
    summary = trainer(args.data, trunk=trunk, provenance=provenance, out_card=out, strategy=args.strategy,
                      epochs=args.epochs, seed=args.seed, batch_size=args.batch_size, lr=args.lr, **extra)
    log.info("%s", json.dumps(summary))
    return 0


def _check_data(task: str, data) -> None:
    """Load and check the training split the data card describes, as the trainer will (raises AuditError)."""
    from .errors import CardError

    if task in ("detection", "instance_segmentation"):
        from .tasks.detection.cards import load_detection_data_card
        from .tasks.detection.data import load_ground_truth

        card = load_detection_data_card(data)
        gt = load_ground_truth(card.coco, masks=card.masks, need_masks=task == "instance_segmentation",
                               image_root=card.image_root, allow_outside=card.allow_paths_outside_root)
        if not (~gt.boxes.iscrowd.astype(bool)).any():  # the trainer's own check, the same message
            raise CardError(f"{card.path}: expected a training split with people (non-crowd annotations), "
                            "found none")
        return
    from .core.registry import load_any_data_card

    card = load_any_data_card(data)
    if task == "semantic_segmentation":
        from .tasks.segmentation.data import load_segmentation_split

        if card.segmentation is None:  # the trainer's own check, the same message
            raise CardError(f"{card.path}: expected a segmentation data card (with a 'segmentation' block), "
                            "found none (use --task classification)")
        load_segmentation_split(card)
    else:
        if card.segmentation is not None:  # the trainer's own check, the same message
            raise CardError(f"{card.path}: expected a classification data card, found a 'segmentation' block "
                            "(use --task semantic_segmentation)")
        from .core.data import load_split

        load_split(card, verify_images=False)
