"""``python -m mlxq``: see :mod:`mlxq.cli`."""

import sys

from .cli import main

sys.exit(main())
