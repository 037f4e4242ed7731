"""Sorting tensor names as people read them: ``layers.2`` before ``layers.10``.

>>> sorted(["l.10.w", "l.2.w"], key=natural_key)
['l.2.w', 'l.10.w']
"""

from __future__ import annotations

import re

_NUM_RE = re.compile(r"(\d+)")


def natural_key(name: str) -> tuple:
    """Sort key treating digit runs as numbers."""
    return tuple(int(t) if t.isdigit() else t for t in _NUM_RE.split(name))
