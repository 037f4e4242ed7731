"""Thread count of mlxq's kernels."""

from __future__ import annotations

import numbers

from . import _core
from .errors import ArgumentTypeError, OutOfRangeError


def set_num_threads(n: int | None) -> int:
    """Sets how many threads the kernels use and returns the count now in effect.

    ``None`` (or 0) returns to the default: ``MLXQ_NUM_THREADS`` from the environment when
    set, else the number of CPUs this process may use.

    >>> import mlxq
    >>> old = mlxq.get_num_threads()
    >>> mlxq.set_num_threads(1)
    1
    >>> _ = mlxq.set_num_threads(None)
    """
    if n is None:
        n = 0
    if isinstance(n, bool) or not isinstance(n, numbers.Integral):
        raise ArgumentTypeError(f"n must be an int or None, got {type(n).__name__}")
    if n < 0:
        raise OutOfRangeError(f"n={n} must be >= 1 (or 0/None for the default)")
    return _core.set_num_threads(int(n))


def get_num_threads() -> int:
    """The number of threads the next kernel call will use."""
    return _core.get_num_threads()
