"""Reading the small files of a checkpoint folder safely: regular files only, bounded JSON.

Every file mlxq reads from a folder it was given is untrusted. Two hazards are handled here,
once, for every reader (config.json, the index, generation_config.json, the safetensors
shards' headers, side files):

- a FIFO, socket or device named like a checkpoint file would block ``open`` (a FIFO waits
  for a writer) or stream forever: files are opened non-blocking and refused unless they
  are regular files, as the C safetensors reader does;
- JSON nested deeper than any real config makes Python's parser raise ``RecursionError``,
  and recursive walks over the result (transformers' tagged floats) overflow the stack:
  the depth is bounded and an excess is a :class:`~mlxq.errors.ParseError`.

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

from .errors import MlxqIOError, ParseError

PathLike = Union[str, "os.PathLike[str]"]

#: Deepest nesting accepted in a JSON file (real configs nest fewer than ten levels).
MAX_JSON_DEPTH = 100

_KIND = {stat.S_IFDIR: "a directory", stat.S_IFIFO: "a FIFO", stat.S_IFSOCK: "a socket",
         stat.S_IFCHR: "a character device", stat.S_IFBLK: "a block device"}


def open_regular(path: PathLike) -> int:
    """A read-only descriptor of ``path``, which must be a regular file (symlinks are
    followed). Raises MlxqIOError naming the path: cannot open (with the OS's reason), or
    not a regular file (and what it is instead)."""
    p = os.fspath(path)
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
    return fd


def is_regular(path: PathLike) -> bool:
    """Whether ``path`` is a regular file (following symlinks), without opening it."""
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except OSError:
        return False


def read_bytes(path: PathLike) -> bytes:
    """The whole content of the regular file ``path`` (see :func:`open_regular`)."""
    fd = open_regular(path)
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


def read_json(path: PathLike) -> Any:
    """The JSON value in the regular file ``path``; errors name the path (MlxqIOError for
    the file, ParseError for its content)."""
    return loads(read_bytes(path), os.fspath(path))
