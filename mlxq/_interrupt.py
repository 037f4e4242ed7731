"""Ctrl-C, SIGTERM and SIGHUP delivered at safe points.

Python raises ``KeyboardInterrupt`` wherever the main thread happens to be, which can be
between a lock's acquisition and the ``try`` that releases it: the converter's background
writer would then wait forever. Inside :func:`deferred` (the CLI's commands run there) the
three signals only record themselves; :func:`check`, called where stopping is safe (between
row blocks, while waiting for the writer), raises ``KeyboardInterrupt`` for SIGINT and
:class:`Signalled` for the others, so the usual ``finally`` blocks clean up.

Work that holds no lock another thread waits on — planning a conversion: reading headers
and JSON, running a family's ``sanitize`` over lazy tensors — runs inside :func:`anywhere`
(within :func:`deferred`): there a signal raises at once, wherever the main thread is, so
no loop, however long a hostile config makes it, outlives a SIGTERM by more than an
instant.

>>> with deferred():
...     check()  # nothing pending: returns
...     with anywhere():
...         pass  # a signal here raises at once
"""

from __future__ import annotations

import contextlib
import signal
import threading
from typing import Iterator, Optional

__all__ = ["Signalled", "anywhere", "check", "deferred", "immediate"]

_pending: Optional[int] = None
_now = False  # inside anywhere(): the recording handler raises instead


class Signalled(BaseException):
    """SIGTERM or SIGHUP, raised at a safe point so cleanup runs as for Ctrl-C."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum


def _record(signum: int, _frame: object) -> None:
    global _pending
    if _now:
        _raise(signum, _frame)
    if _pending is None:
        _pending = signum


def check() -> None:
    """Raises for a signal recorded since :func:`deferred` started (once)."""
    global _pending
    signum, _pending = _pending, None
    if signum is None:
        return
    if signum == signal.SIGINT:
        raise KeyboardInterrupt
    raise Signalled(signum)


def _raise(signum: int, _frame: object) -> None:
    if signum == signal.SIGINT:
        raise KeyboardInterrupt
    raise Signalled(signum)


@contextlib.contextmanager
def _handlers(handler) -> Iterator[None]:
    global _pending
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {s: signal.signal(s, handler)
                for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    _pending = None
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)
        _pending = None


def deferred():
    """Records SIGINT, SIGTERM and SIGHUP instead of raising at once, for work that calls
    :func:`check` at its safe points (main thread only; elsewhere a no-op). A signal that
    arrives after the last check is dropped: the work finished."""
    return _handlers(_record)


@contextlib.contextmanager
def anywhere() -> Iterator[None]:
    """Inside :func:`deferred`, a block where signals raise at once (a signal recorded
    before it raises on entry): for code that leaves no lock held when interrupted. Outside
    :func:`deferred` (or off the main thread) it changes nothing."""
    global _now
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    before = _now
    _now = True
    try:
        check()
        yield
    finally:
        _now = before


def immediate():
    """SIGTERM and SIGHUP raise :class:`Signalled` at once (and SIGINT KeyboardInterrupt),
    for commands with no background threads to leave locked."""
    return _handlers(_raise)
