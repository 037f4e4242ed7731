"""Which of MLX's devices quantization reproduces: its GPU kernels or its CPU backend.

MLX computes ``mx.quantize`` / ``mx.dequantize`` with different arithmetic on its two
devices (rounding of ties, the start of a group's maximum, clamps, fp4 ties and zero signs,
where float contractions happen: docs/formats.md), so the same weights give different bits.
``mlx_lm.convert`` quantizes on MLX's default device, the GPU on Apple silicon, where
published MLX checkpoints are made; ``mlx[cpu]`` on Linux quantizes on the CPU.

The device used when a call names none, in order: the innermost :func:`using_device`
block, then :func:`set_default_device`, then the environment variable ``MLXQ_DEVICE``
(``cpu`` or ``gpu``), then ``"gpu"``.

>>> import mlxq
>>> with mlxq.using_device("cpu"):
...     str(mlxq.default_device())
'cpu'
"""

from __future__ import annotations

import contextlib
import contextvars
import enum
import os
from typing import Iterator, Optional, Union

from .errors import UnknownEnumValueError

__all__ = ["Device", "default_device", "set_default_device", "using_device", "ENV_VAR"]

#: The environment variable that sets the default device (like ``MLXQ_NUM_THREADS``).
ENV_VAR = "MLXQ_DEVICE"


class Device(str, enum.Enum):
    """MLX's devices, as ``mx.gpu`` / ``mx.cpu`` name them. Members equal their strings.

    >>> Device("gpu") is Device.GPU, Device.CPU == "cpu"
    (True, True)
    """

    GPU = "gpu"
    CPU = "cpu"

    def __str__(self) -> str:
        return self.value

    @property
    def code(self) -> int:
        """The C core's ``mlxq_device`` value."""
        return 1 if self is Device.GPU else 0

    @property
    def backend(self) -> str:
        """How the documentation names the arithmetic: ``"MLX's GPU (Metal) kernels"``."""
        return "MLX's GPU (Metal) kernels" if self is Device.GPU else "MLX's CPU backend"

    @classmethod
    def parse(cls, device: Union[str, "Device"], name: str = "device") -> "Device":
        """``Device(device)``, raising UnknownEnumValueError naming ``name``."""
        if isinstance(device, cls):
            return device
        try:
            return cls(device.lower() if isinstance(device, str) else device)
        except ValueError:
            raise UnknownEnumValueError(
                f"{name}={device!r} is not a device; expected 'gpu' (MLX's Metal kernels, "
                f"what mlx_lm.convert writes on Apple silicon) or 'cpu' (MLX's CPU backend)"
            ) from None


_scoped: contextvars.ContextVar[Optional[Device]] = contextvars.ContextVar(
    "mlxq_device", default=None)
_process_default: Optional[Device] = None


def _from_env() -> Device:
    value = os.environ.get(ENV_VAR, "").strip()
    return Device.parse(value, ENV_VAR) if value else Device.GPU


def default_device() -> Device:
    """The device a quantization uses when it names none (see the module docstring).

    >>> str(default_device()) in ("gpu", "cpu")
    True
    """
    scoped = _scoped.get()
    if scoped is not None:
        return scoped
    if _process_default is not None:
        return _process_default
    return _from_env()


def set_default_device(device: Union[str, Device, None]) -> Device:
    """Sets the process's default device (None: back to ``MLXQ_DEVICE`` / ``"gpu"``) and
    returns the default now in effect, as ``mx.set_default_device`` sets MLX's.

    >>> old = set_default_device("cpu"); str(default_device())
    'cpu'
    >>> _ = set_default_device(None)
    """
    global _process_default
    _process_default = None if device is None else Device.parse(device)
    return default_device()


@contextlib.contextmanager
def using_device(device: Union[str, Device, None]) -> Iterator[Device]:
    """Within the block, quantizations that name no device use ``device`` (None: leave
    the default alone), as ``with mx.stream(mx.cpu):`` does for MLX."""
    if device is None:
        yield default_device()
        return
    token = _scoped.set(Device.parse(device))
    try:
        yield _scoped.get()  # type: ignore[misc]
    finally:
        _scoped.reset(token)


def resolve(device: Union[str, Device, None]) -> Device:
    """``device`` parsed, or the default when None."""
    return default_device() if device is None else Device.parse(device)
