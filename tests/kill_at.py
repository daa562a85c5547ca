"""Run ``audit`` and SIGKILL this very process at one phase: ``python kill_at.py PHASE audit-args...``.

Phases (the classification pipeline, the same mechanism in every task):

``chunking``
    after the second prediction chunk is committed;
``merge``
    after the merged predictions are cached in ``predictions.parquet``, before the chunks are discarded;
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
    import audit.distributed
    import audit.inference
    import audit.stats

    if phase == "chunking":
        real = audit.distributed.atomic_write_with
        count = [0]

        def write(target, writer):
            real(target, writer)
            count[0] += 1
            if count[0] == 2:
                _die()

        audit.distributed.atomic_write_with = write
    elif phase == "merge":
        real_save = audit.inference.save_cache

        def save(*a, **k):
            real_save(*a, **k)
            _die()

        audit.inference.save_cache = save
    elif phase == "statistics":
        real_stats = audit.stats.audit_classification

        def stats(*a, **k):
            _die()
            return real_stats(*a, **k)

        audit.stats.audit_classification = stats
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
