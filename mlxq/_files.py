"""Reading the files of a checkpoint folder safely: inside the folder, regular files only,
bounded JSON, unchanged while read.

Every file mlxq reads from a folder it was given is untrusted. The hazards are handled here,
once, for every reader (config.json, the index, generation_config.json, the safetensors
shards, the folders the index names, side files):

- a symlink can lead anywhere on the machine (``model.safetensors -> /etc/shadow``, a
  shard borrowed from another model, a folder of the index pointing elsewhere): one rule,
  :func:`confine`, follows a link only when it resolves inside the source folder or, for a
  folder inside a Hugging Face cache snapshot (``.../models--ORG--NAME/snapshots/REV``, as
  ``snapshot_download`` lays it out), into that repository's ``blobs/`` folder; any other is
  an :class:`~mlxq.errors.OutsideSourceError` naming the link, raised before anything is
  read through it;

- a FIFO, socket or device named like a checkpoint file would block ``open`` (a FIFO waits
  for a writer) or stream forever: files are opened non-blocking and refused unless they
  are regular files, as the C safetensors reader does;
- JSON nested deeper than any real config makes Python's parser raise ``RecursionError``,
  and recursive walks over the result (transformers' tagged floats) overflow the stack:
  the depth is bounded and an excess is a :class:`~mlxq.errors.ParseError`;
- a file rewritten while it is read would mix old and new bytes: :class:`Identity` records
  what :func:`os.fstat` says at open and :meth:`Identity.check` compares it after the reads.

Messages name files, never quote their bytes: a file that fails to parse as what it claims
to be may be anything (a link target, a text file), and its content stays out of errors.

>>> import json, os, tempfile
>>> tmp = tempfile.TemporaryDirectory()
>>> p = os.path.join(tmp.name, "config.json")
>>> _ = open(p, "w").write('{"model_type": "llama"}')
>>> read_json(p)
{'model_type': 'llama'}
>>> tmp.cleanup()
"""

from __future__ import annotations

import json
import os
import stat
from typing import Any, Union

from .errors import MlxqIOError, OutsideSourceError, ParseError, SourceChangedError

PathLike = Union[str, "os.PathLike[str]"]

#: Deepest nesting accepted in a JSON file (real configs nest fewer than ten levels).
MAX_JSON_DEPTH = 100

_KIND = {stat.S_IFDIR: "a directory", stat.S_IFIFO: "a FIFO", stat.S_IFSOCK: "a socket",
         stat.S_IFCHR: "a character device", stat.S_IFBLK: "a block device"}


def _inside(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def source_roots(folder: PathLike) -> tuple[str, ...]:
    """Where the files of ``folder`` may really be: inside it (resolved), and, when it lies
    in a Hugging Face cache snapshot (``.../models--ORG--NAME/snapshots/REV[/SUB]``), the
    repository's ``blobs`` folder, which the snapshot's links point into."""
    real = os.path.realpath(folder)
    roots = [real]
    anc = real
    while True:
        parent = os.path.dirname(anc)
        if parent == anc:
            break
        if os.path.basename(parent) == "snapshots":
            roots.append(os.path.join(os.path.dirname(parent), "blobs"))
            break
        anc = parent
    return tuple(roots)


def confine(path: PathLike, folder: PathLike) -> str:
    """``path`` (a file of the source ``folder``) resolved, when every symlink on the way
    leads inside :func:`source_roots` of ``folder``. Otherwise an
    :class:`~mlxq.errors.OutsideSourceError` naming the link: nothing is read through it.
    A missing file resolves to itself (the caller reports it).

    >>> import os, tempfile
    >>> d = tempfile.TemporaryDirectory()
    >>> os.symlink("/etc/hostname", os.path.join(d.name, "config.json"))
    >>> confine(os.path.join(d.name, "config.json"), d.name)
    Traceback (most recent call last):
    ...
    mlxq.errors.OutsideSourceError: ...config.json is a symlink to /etc/hostname, outside ... (mlxq reads only files inside the source folder, or in its Hugging Face cache's blobs/; copy the file in instead)
    >>> d.cleanup()
    """
    p = os.fspath(path)
    real = os.path.realpath(p)
    roots = source_roots(folder)
    if any(_inside(real, r) for r in roots):
        return real
    # name the link at fault: the first component under FOLDER that resolves outside
    link, target = p, real
    base = os.path.abspath(folder)
    rel = os.path.relpath(os.path.abspath(p), base)
    cur = base
    for part in rel.split(os.sep):
        cur = os.path.join(cur, part)
        if os.path.islink(cur) and not any(_inside(os.path.realpath(cur), r) for r in roots):
            link, target = cur, os.path.realpath(cur)
            break
    raise OutsideSourceError(
        f"{link} is a symlink to {target}, outside {os.fspath(folder)} (mlxq reads only "
        "files inside the source folder, or in its Hugging Face cache's blobs/; copy the "
        "file in instead)")


def open_regular(path: PathLike, within: PathLike | None = None) -> int:
    """A read-only descriptor of ``path``, which must be a regular file (symlinks are
    followed; with ``within``, a source folder, only as :func:`confine` allows). Raises
    MlxqIOError naming the path: cannot open (with the OS's reason), or not a regular file
    (and what it is instead); OutsideSourceError for a link leaving ``within``."""
    p = os.fspath(path)
    if within is not None:
        confine(p, within)
    try:
        fd = os.open(p, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK)
    except OSError as e:
        raise MlxqIOError(f"{p}: cannot open: {e.strerror}") from None
    try:
        mode = os.fstat(fd).st_mode
    except OSError as e:  # pragma: no cover - fstat of an open descriptor
        os.close(fd)
        raise MlxqIOError(f"{p}: cannot stat: {e.strerror}") from None
    if not stat.S_ISREG(mode):
        os.close(fd)
        kind = _KIND.get(stat.S_IFMT(mode), "not a file")
        raise MlxqIOError(f"{p}: not a regular file ({kind})")
    if within is not None:
        # what was opened, not what the name meant a moment ago (a link swapped in between)
        try:
            opened = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            opened = None
        if opened is not None and opened.startswith("/") and not any(
                _inside(opened, r) for r in source_roots(within)):
            os.close(fd)
            raise OutsideSourceError(f"{p}: opened {opened}, outside {os.fspath(within)} (a "
                                     "symlink appeared while it was being opened)")
    return fd


def is_regular(path: PathLike) -> bool:
    """Whether ``path`` is a regular file (following symlinks), without opening it."""
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except OSError:
        return False


class Identity:
    """What identifies the content of an open file: device, inode, size, modification and
    change times. A file rewritten in place (same size, new bytes) changes its times; one
    replaced by another under its name changes the inode the name leads to.

    >>> import os, tempfile
    >>> d = tempfile.TemporaryDirectory()
    >>> p = os.path.join(d.name, "f")
    >>> _ = open(p, "w").write("a")
    >>> fd = os.open(p, os.O_RDONLY)
    >>> ident = Identity.of(fd, p)
    >>> ident.check(fd)
    >>> os.close(fd); d.cleanup()
    """

    __slots__ = ("path", "dev", "ino", "size", "mtime", "ctime")

    def __init__(self, path: str, st: os.stat_result):
        self.path = path
        self.dev, self.ino, self.size = st.st_dev, st.st_ino, st.st_size
        self.mtime, self.ctime = st.st_mtime_ns, st.st_ctime_ns

    @classmethod
    def of(cls, fd: int, path: PathLike) -> "Identity":
        return cls(os.fspath(path), os.fstat(fd))

    def check(self, fd: int) -> None:
        """Raises :class:`~mlxq.errors.SourceChangedError` if the open file (``fd``) or
        the file its name leads to now is not the one recorded."""
        try:
            now = os.fstat(fd)
        except OSError as e:  # pragma: no cover - fstat of an open descriptor
            raise MlxqIOError(f"{self.path}: cannot stat: {e.strerror}") from None
        what = None
        if (now.st_size, now.st_mtime_ns, now.st_ctime_ns) != (self.size, self.mtime,
                                                               self.ctime):
            what = "it was modified"
        else:
            try:
                named = os.stat(self.path)
            except OSError:
                what = "it was removed"
            else:
                if (named.st_dev, named.st_ino) != (self.dev, self.ino):
                    what = "another file replaced it"
        if what is not None:
            raise SourceChangedError(f"{self.path}: changed while it was being read ({what}); "
                                     "nothing was written. Convert again once it is stable")


def read_bytes(path: PathLike, within: PathLike | None = None) -> bytes:
    """The whole content of the regular file ``path`` (see :func:`open_regular`)."""
    fd = open_regular(path, within)
    try:
        chunks = []
        while True:
            try:
                b = os.read(fd, 1 << 20)
            except OSError as e:
                raise MlxqIOError(f"{os.fspath(path)}: cannot read: {e.strerror}") from None
            if not b:
                return b"".join(chunks)
            chunks.append(b)
    finally:
        os.close(fd)


def _depth(obj: Any) -> int:
    """Nesting depth of a parsed JSON value, iteratively (a recursive walk could itself
    overflow the stack on the input it is checking)."""
    deepest, stack = 0, [(obj, 1)]
    while stack:
        o, d = stack.pop()
        if isinstance(o, dict):
            deepest = max(deepest, d)
            stack.extend((v, d + 1) for v in o.values())
        elif isinstance(o, list):
            deepest = max(deepest, d)
            stack.extend((v, d + 1) for v in o)
    return deepest


def loads(text: Union[str, bytes], what: str) -> Any:
    """``json.loads`` with every failure a ParseError naming ``what``: invalid UTF-8 or
    JSON, and nesting deeper than :data:`MAX_JSON_DEPTH`."""
    try:
        if isinstance(text, bytes):
            text = text.decode("utf-8")
        obj = json.loads(text)
    except UnicodeDecodeError as e:
        raise ParseError(f"{what}: not valid UTF-8: {e.reason} at byte {e.start}") from None
    except RecursionError:
        raise ParseError(f"{what}: JSON nested too deeply (more than {MAX_JSON_DEPTH} "
                         "levels)") from None
    except ValueError as e:
        raise ParseError(f"{what}: not valid JSON: {e}") from None
    if _depth(obj) > MAX_JSON_DEPTH:
        raise ParseError(f"{what}: JSON nested too deeply (more than {MAX_JSON_DEPTH} levels)")
    return obj


def read_json(path: PathLike, within: PathLike | None = None) -> Any:
    """The JSON value in the regular file ``path``; errors name the path (MlxqIOError for
    the file, ParseError for its content; OutsideSourceError for a symlink leaving the
    source folder ``within``)."""
    return loads(read_bytes(path, within), os.fspath(path))
