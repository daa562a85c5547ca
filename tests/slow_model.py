"""A deliberately slow classifier for the resume test: it sleeps in every forward pass."""

import time

from audit.demo.model import TinyCNN


class SlowTinyCNN(TinyCNN):
    def forward(self, x):
        time.sleep(0.3)
        return super().forward(x)


def slow_tiny_cnn(num_classes: int = 2) -> SlowTinyCNN:
    return SlowTinyCNN(num_classes=num_classes)
