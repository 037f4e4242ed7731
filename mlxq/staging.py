"""An output folder that appears whole or not at all.

:class:`StagingDir` builds a destination folder ``DST`` in a hidden sibling,
``.DST.mlxq-<pid>-<random>.tmp``, and renames it into place only when complete:

- an error, Ctrl-C, SIGTERM or SIGHUP (the CLI turns both into exceptions) removes the
  sibling, and any parent folders this run created, so nothing is left behind;
- a run killed outright (SIGKILL, power loss) leaves its sibling. The sibling records its
  owner (pid, host, process start time), and the next run for the same ``DST`` removes
  every sibling whose owner process is gone, and says so (:attr:`StagingDir.removed`);
  siblings of a live process, or of another host, are left alone;
- the final rename never replaces anything: ``renameat2(RENAME_NOREPLACE)``, or where the
  file system lacks it, claiming ``DST`` with ``mkdir`` first and renaming over that empty
  folder. Of two runs racing to one ``DST``, the loser gets an
  :class:`~mlxq.errors.InvalidArgumentError` and its work is discarded — never a merged or
  half-replaced folder.

>>> import os, tempfile
>>> work = tempfile.TemporaryDirectory()
>>> d = work.name
>>> with StagingDir(os.path.join(d, "out")) as tmp:
...     _ = (tmp / "a.txt").write_text("hello")
>>> sorted(os.listdir(d)), os.listdir(os.path.join(d, "out"))
(['out'], ['a.txt'])
>>> work.cleanup()
"""

from __future__ import annotations

import errno
import json
import os
import secrets
import shutil
import socket
from pathlib import Path
from typing import Any, Optional, Union

from .errors import InvalidArgumentError, MlxqIOError

__all__ = ["StagingDir", "stale_siblings"]

PathLike = Union[str, "os.PathLike[str]"]
OWNER_FILE = ".mlxq-owner.json"


def _start_time(pid: int) -> Optional[int]:
    """The process's start time in clock ticks since boot (``/proc/<pid>/stat`` field 22),
    which tells a live owner from a later process that reused its pid."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read().decode("ascii", "replace")
        return int(stat.rpartition(")")[2].split()[19])
    except (OSError, ValueError, IndexError):
        return None


def _alive(pid: int, start: Optional[int]) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's live process
    now = _start_time(pid)
    return start is None or now is None or now == start


def _prefix(dst: Path) -> str:
    return f".{dst.name}.mlxq-"


def stale_siblings(dst: PathLike) -> tuple[list[Path], list[str]]:
    """The staging siblings of ``dst`` left by runs whose process is gone (safe to
    remove), and a note for each one left alone (live, or owned by another host)."""
    dst = Path(os.fspath(dst))
    stale, kept = [], []
    try:
        names = os.listdir(dst.parent)
    except OSError:
        return [], []
    host = socket.gethostname()
    for name in sorted(names):
        if not (name.startswith(_prefix(dst)) and name.endswith(".tmp")):
            continue
        path = dst.parent / name
        if path.is_symlink() or not path.is_dir():
            continue
        owner: dict[str, Any] = {}
        try:
            owner = json.loads((path / OWNER_FILE).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            pass
        try:
            pid = int(owner.get("pid") or name[len(_prefix(dst)):].split("-")[0])
        except (ValueError, AttributeError):
            continue
        if owner.get("host", host) != host:
            kept.append(f"{path} (owned by process {pid} on host {owner.get('host')})")
        elif _alive(pid, owner.get("start")):
            kept.append(f"{path} (process {pid} is still running)")
        else:
            stale.append(path)
    return stale, kept


def _rename_noreplace(src: Path, dst: Path) -> None:
    """Renames folder ``src`` to ``dst``, failing with FileExistsError if ``dst`` exists."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    fn = getattr(libc, "renameat2", None)
    if fn is not None:
        AT_FDCWD, RENAME_NOREPLACE = -100, 1
        if fn(AT_FDCWD, os.fsencode(src), AT_FDCWD, os.fsencode(dst), RENAME_NOREPLACE) == 0:
            return
        err = ctypes.get_errno()
        if err not in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP):
            raise OSError(err, os.strerror(err), os.fspath(dst))
    # No renameat2 here: claim dst with mkdir (atomic, fails if it exists), then rename
    # over the empty folder we own (rename may replace an empty directory).
    os.mkdir(dst)
    try:
        os.rename(src, dst)
    except BaseException:
        os.rmdir(dst)
        raise


class StagingDir:
    """``with StagingDir(dst) as tmp:`` — write the folder's files into ``tmp``; on a
    normal exit it becomes ``dst`` (synced), on an exception it is removed. ``dst`` must
    not exist. :attr:`removed` lists stale siblings removed when entering, :attr:`kept`
    notes on those left alone."""

    def __init__(self, dst: PathLike):
        self.dst = Path(os.fspath(dst))
        self.tmp: Optional[Path] = None
        self.removed: list[Path] = []
        self.kept: list[str] = []
        self._made_parents: list[Path] = []

    def _check_free(self) -> None:
        if os.path.lexists(self.dst):
            raise InvalidArgumentError(
                f"cannot save to {self.dst}: it already exists. Delete it or choose a new path "
                "(mlxq never writes into an existing folder)")

    def __enter__(self) -> Path:
        self._check_free()
        parent = self.dst.parent
        missing = []
        p = parent
        while not os.path.lexists(p):
            missing.append(p)
            p = p.parent
        try:
            for m in reversed(missing):
                os.mkdir(m)
                self._made_parents.append(m)
            stale, self.kept = stale_siblings(self.dst)
            for s in stale:
                shutil.rmtree(s, ignore_errors=True)
                if not os.path.lexists(s):
                    self.removed.append(s)
            tmp = parent / f"{_prefix(self.dst)}{os.getpid()}-{secrets.token_hex(4)}.tmp"
            os.mkdir(tmp)
            self.tmp = tmp
            owner = {"pid": os.getpid(), "host": socket.gethostname(),
                     "start": _start_time(os.getpid())}
            (tmp / OWNER_FILE).write_text(json.dumps(owner), encoding="utf-8")
        except OSError as e:
            self._discard()
            raise MlxqIOError(f"{e.filename or self.dst.parent}: cannot create the output "
                              f"folder there: {e.strerror}") from None
        except BaseException:
            self._discard()
            raise
        return tmp

    def _discard(self) -> None:
        if self.tmp is not None:
            shutil.rmtree(self.tmp, ignore_errors=True)
            self.tmp = None
        for m in reversed(self._made_parents):
            try:
                os.rmdir(m)
            except OSError:
                break

    def commit(self) -> None:
        """Syncs the staged folder and renames it to ``dst`` without replacing anything."""
        from .io import _fsync_dir

        from ._interrupt import check

        assert self.tmp is not None
        check()  # the last point where a signal still means "nothing was written"
        (self.tmp / OWNER_FILE).unlink()
        for f in self.tmp.iterdir():
            if f.suffix != ".safetensors":  # shards are synced by their writer
                fd = os.open(f, os.O_RDONLY | os.O_CLOEXEC)
                try:
                    os.fsync(fd)
                finally:
                    os.close(fd)
        _fsync_dir(self.tmp)
        try:
            _rename_noreplace(self.tmp, self.dst)
        except FileExistsError:
            raise InvalidArgumentError(f"cannot save to {self.dst}: it appeared while "
                                       "converting (another run?); this result was discarded"
                                       ) from None
        except OSError as e:
            if e.errno in (errno.EEXIST, errno.ENOTEMPTY):
                raise InvalidArgumentError(f"cannot save to {self.dst}: it appeared while "
                                           "converting (another run?); this result was "
                                           "discarded") from None
            raise MlxqIOError(f"{self.dst}: cannot rename the finished folder into place: "
                              f"{e.strerror}") from None
        self.tmp = None
        self._made_parents = []
        _fsync_dir(self.dst.parent)

    def __exit__(self, exc_type: Any, *_: Any) -> None:
        if exc_type is None:
            try:
                self.commit()
            except BaseException:
                self._discard()
                raise
        else:
            self._discard()
