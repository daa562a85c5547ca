"""Run ``audit`` and SIGKILL this very process at one phase: ``python kill_at.py PHASE audit-args...``.

Phases (every task; the mechanisms are shared):

``chunking``
    after the second prediction chunk is committed;
``merge``
    after the merged predictions are cached (``predictions.parquet``, ``detections.json``, the predicted
    masks' meta), before the chunks are discarded;
``statistics``
    when the statistics engine starts;
``report``
    in the middle of the output commit: the staged set is renamed to ``.commit``, no file moved yet.
"""

from __future__ import annotations

import os
import signal
import sys


def _die():
    sys.stdout.flush()
    os.kill(os.getpid(), signal.SIGKILL)


def main() -> int:
    phase, args = sys.argv[1], sys.argv[2:]
    import audit._io
    import audit._output
    import audit.core.distributed
    import audit.core.inference
    import audit.stats

    if phase == "chunking":
        real = audit.core.distributed.atomic_write_with
        count = [0]

        def write(target, writer):
            real(target, writer)
            count[0] += 1
            if count[0] == 2:
                _die()

        audit.core.distributed.atomic_write_with = write
    elif phase == "merge":  # every task: the merged predictions are cached, the chunks not yet discarded
        import audit.tasks.detection.pipeline
        import audit.pipeline
        import audit.tasks.segmentation.pipeline

        import audit.tasks.classification.pipeline

        for module in (audit.tasks.classification.pipeline, audit.tasks.detection.pipeline, audit.tasks.segmentation.pipeline):
            module.discard_chunks = lambda out_dir: _die()
    elif phase == "statistics":  # every task: the engine starts
        import audit.tasks.detection.pipeline

        def die(*a, **k):
            _die()

        audit.stats.audit_classification = die
        audit.stats.audit_segmentation = die
        audit.tasks.detection.pipeline.audit_detections_with_matches = die
    elif phase == "report":
        def move(commit, out):
            _die()

        audit._output._move_into_place = move
    else:
        raise SystemExit(f"unknown phase {phase}")
    from audit.cli import main as audit_main

    return audit_main(args)


if __name__ == "__main__":
    sys.exit(main())
