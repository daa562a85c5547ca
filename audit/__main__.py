"""``python -m audit`` (and ``torchrun ... -m audit run ...``) runs the ``audit`` command."""

import sys

from .cli import main

sys.exit(main())
