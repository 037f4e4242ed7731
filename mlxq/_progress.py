"""A one-line progress bar for long commands: shown only on a terminal, redrawn at most a
few times a second, erased when done (the caller prints its own summary)."""

from __future__ import annotations

import sys
import time
from typing import Callable, TextIO


def human_bytes(n: float) -> str:
    """``1536`` -> ``'1.5 KiB'``; binary units, as ``du -h`` and mlx-lm's 5 GiB shards."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")


def human_time(s: float) -> str:
    s = int(round(s))
    h, rem = divmod(s, 3600)
    m, sec = divmod(rem, 60)
    return f"{h}:{m:02d}:{sec:02d}" if h else f"{m}:{sec:02d}"


#: No ETA before this much of the work is done and this many seconds have passed: the first
#: tensors pay for starting up (threads, first reads), so an early estimate is wild.
ETA_MIN_FRACTION = 0.05
ETA_MIN_SECONDS = 1.0


class Progress:
    """``update(done_items, done_bytes)``; silent unless ``stream`` is a terminal and not
    ``quiet``. Rate and ETA are by bytes (the bytes written, the figure the converter's
    summary reports), the part of the work that scales; the ETA shows ``--:--`` until
    :data:`ETA_MIN_FRACTION` of the bytes and :data:`ETA_MIN_SECONDS` have passed.
    :meth:`set_status` adds a note at the end (what a conversion from the Hub is
    downloading).

    >>> import io
    >>> t = [0.0]
    >>> p = Progress(4, 1000, stream=io.StringIO(), min_interval=0, clock=lambda: t[0])
    >>> p.line(1, 10)
    '[                        ] 1/4 tensors  10 B/1000 B  ETA --:--'
    >>> t[0] = 2.0
    >>> p.line(2, 500)
    '[############            ] 2/4 tensors  500 B/1000 B  250 B/s  ETA 0:02'
    """

    def __init__(self, total_items: int, total_bytes: int, *, label: str = "",
                 stream: TextIO | None = None, quiet: bool = False, min_interval: float = 0.2,
                 clock: Callable[[], float] = time.monotonic):
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = not quiet and bool(getattr(self.stream, "isatty", lambda: False)())
        self.total_items, self.total_bytes = total_items, max(total_bytes, 1)
        self.label = label
        self._clock = clock
        self.start = clock()
        self._last = 0.0
        self._interval = min_interval
        self._width = 0
        self.status = ""
        self._items = self._bytes = 0

    def line(self, items: int, nbytes: int) -> str:
        """The bar's text after ``items`` tensors and ``nbytes`` bytes."""
        frac = min(nbytes / self.total_bytes, 1.0)
        bar = "#" * int(frac * 24)
        elapsed = self._clock() - self.start
        line = (f"{self.label}[{bar:<24}] {items}/{self.total_items} tensors  "
                f"{human_bytes(nbytes)}/{human_bytes(self.total_bytes)}")
        if frac < ETA_MIN_FRACTION or elapsed < ETA_MIN_SECONDS:
            line += "  ETA --:--"
        else:
            rate = nbytes / elapsed
            eta = (self.total_bytes - nbytes) / rate
            line += f"  {human_bytes(rate)}/s  ETA {human_time(eta)}"
        return f"{line}  {self.status}" if self.status else line

    def set_status(self, text: str, *, force: bool = False) -> None:
        """Shows ``text`` after the figures from now on (redrawn at the usual pace, at once
        with ``force``)."""
        self.status = text
        self.update(self._items, self._bytes, force=force)

    def update(self, items: int, nbytes: int, *, force: bool = False) -> None:
        if not self.enabled:
            return
        self._items, self._bytes = items, nbytes
        now = self._clock()
        if not force and now - self._last < self._interval:
            return
        self._last = now
        line = self.line(items, nbytes)
        self._width = max(self._width, len(line))
        self.stream.write("\r" + line.ljust(self._width))
        self.stream.flush()

    def close(self) -> None:
        if self.enabled and self._width:
            self.stream.write("\r" + " " * self._width + "\r")
            self.stream.flush()
