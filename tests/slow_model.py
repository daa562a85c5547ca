"""A deliberately slow classifier for the resume test: it sleeps in every forward pass.

With ``AUDIT_TEST_HOLD`` set to a file path, every forward pass after the first ``AUDIT_TEST_HOLD_AFTER``
(default 2: one chunk of 8 samples in batches of 4) waits until that file exists, at most 10 minutes: a test
then decides when the run may go on, whatever the machine's load.
"""

import os
import time
from pathlib import Path

from tiny_model import TinyCNN


class SlowTinyCNN(TinyCNN):
    calls = 0

    def forward(self, x):
        time.sleep(0.3)
        hold = os.environ.get("AUDIT_TEST_HOLD")
        SlowTinyCNN.calls += 1
        if hold and SlowTinyCNN.calls > int(os.environ.get("AUDIT_TEST_HOLD_AFTER", "2")):
            deadline = time.monotonic() + 600
            while not Path(hold).exists() and time.monotonic() < deadline:
                time.sleep(0.05)
        return super().forward(x)


def slow_tiny_cnn(num_classes: int = 2) -> SlowTinyCNN:
    return SlowTinyCNN(num_classes=num_classes)
