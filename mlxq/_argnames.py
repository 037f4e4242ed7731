"""How a message names an argument the user gave: ``q_bits=7`` to a Python caller of
:func:`mlxq.convert`, ``--q-bits 7`` to someone typing ``mlxq convert``.

The library writes ``f"{arg('q_bits', 7)} is not ..."``; the command line runs its command
inside :func:`command_line`, which maps each API argument to its flag, so the same error
speaks in the terms the user typed.

>>> arg("allow_requantize"), arg("q_bits", 7)
('allow_requantize=True', 'q_bits=7')
>>> with command_line({"quantize": "-q"}):
...     arg("allow_requantize"), arg("q_bits", 7), arg("quantize")
('--allow-requantize', '--q-bits 7', '-q')
"""

from __future__ import annotations

import contextlib
import contextvars
from typing import Any, Iterator, Mapping, Optional

__all__ = ["arg", "command_line", "on_command_line"]

_FLAGS: contextvars.ContextVar[Optional[Mapping[str, str]]] = contextvars.ContextVar(
    "mlxq_command_line_flags", default=None)


def arg(name: str, value: Any = True) -> str:
    """``name=value`` (Python), or the flag for ``name`` followed by ``value`` inside
    :func:`command_line` (a ``True`` value is the bare flag; a flag that is a metavar such
    as ``SRC`` stands for its value)."""
    flags = _FLAGS.get()
    if flags is None:
        return f"{name}={value!r}"
    flag = flags.get(name, "--" + name.replace("_", "-"))
    if value is True or not flag.startswith("-"):
        return flag
    return f"{flag} {value}"


def on_command_line() -> bool:
    """Whether the current code runs for an ``mlxq`` command (inside :func:`command_line`)."""
    return _FLAGS.get() is not None


@contextlib.contextmanager
def command_line(flags: Mapping[str, str]) -> Iterator[None]:
    """Within the block, :func:`arg` spells arguments as flags: ``flags`` maps the API
    names whose flag is not ``--`` + the name with ``-`` for ``_`` (``quantize`` -> ``-q``)."""
    token = _FLAGS.set(dict(flags))
    try:
        yield
    finally:
        _FLAGS.reset(token)
