"""What is known of a tensor before its data is read: shape and dtype, from a header.

>>> import numpy as np
>>> TensorSpec((4, 8), np.dtype(np.float32)).nbytes
128
"""

from __future__ import annotations

import dataclasses
from typing import Optional

import numpy as np

__all__ = ["TensorSpec"]


@dataclasses.dataclass(frozen=True)
class TensorSpec:
    """A tensor's shape and numpy dtype (``None`` for the safetensors dtypes numpy cannot
    hold element for element, such as the sub-byte F4)."""

    shape: tuple[int, ...]
    dtype: Optional[np.dtype]

    @property
    def nbytes(self) -> int:
        if self.dtype is None:
            raise TypeError("a sub-byte dtype has no numpy itemsize")
        return int(np.prod(self.shape, dtype=np.int64)) * self.dtype.itemsize

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))
