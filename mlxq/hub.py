"""Checkpoints straight from the Hugging Face Hub, one source file at a time.

The Hub side of a converter that never holds the whole source checkpoint on disk:
:class:`HubSource` pins a repository to one commit, fetches the small files (config,
tokenizer, index, the same set ``mlx_lm.convert --hf-path`` downloads), reads every shard's
safetensors header with two ranged requests at most, and downloads and deletes shards one at a
time while keeping count of the bytes they hold. :func:`download_order` plans which shard to
fetch next so that outputs complete early and shards are deleted as soon as no pending output
needs them. Everything goes through the real ``huggingface_hub`` client (the ``hub``
extra, ``pip install 'mlxq[hub]'``): its endpoint (``HF_ENDPOINT``), token (``HF_TOKEN`` or ``huggingface-cli
login``), retries and resumable downloads.

Planning needs no network::

    >>> plan = download_order([{"a"}, {"a", "b"}, {"b"}], {"a": 10, "b": 20}, budget=None)
    >>> [(s.download, s.ready, s.delete) for s in plan.steps]
    [('a', (0,), ()), ('b', (1, 2), ('a', 'b'))]
    >>> plan.peak_bytes
    30
"""

from __future__ import annotations

import fnmatch
import logging
import os
import re
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType, ModuleType
from typing import Any, NoReturn, Union

from . import _core
from ._argnames import arg
from ._interrupt import check
from ._secrets import remember, scrub
from ._progress import human_bytes
from .errors import (
    DiskBudgetError,
    HubAccessError,
    HubError,
    HubErrorKind,
    HubFileNotFoundError,
    HubIntegrityError,
    HubNetworkError,
    HubRepoNotFoundError,
    HubRevisionNotFoundError,
    InvalidArgumentError,
    MissingDependencyError,
    install_hint,
    MlxqIOError,
    SafetensorsError,
)
from .io import TensorInfo

__all__ = [
    "MLX_LM_ALLOW_PATTERNS",
    "WEIGHT_PATTERN",
    "MODEL_CARD",
    "HubError",
    "HubErrorKind",
    "RemoteFile",
    "ShardHeader",
    "HubSource",
    "DownloadStep",
    "DownloadPlan",
    "download_order",
    "looks_like_repo_id",
    "is_small_file",
    "is_weight_file",
]

log = logging.getLogger(__name__)

PathLike = Union[str, "os.PathLike[str]"]

#: What ``mlx_lm.convert --hf-path`` downloads (``mlx_lm.utils.DEFAULT_ALLOW_PATTERNS``,
#: matched the way ``snapshot_download`` matches ``allow_patterns``: ``fnmatch``, where ``*``
#: also crosses ``/``).
MLX_LM_ALLOW_PATTERNS: tuple[str, ...] = (
    "*.json", "model*.safetensors", "*.py", "tokenizer.model", "*.tiktoken", "tiktoken.model",
    "*.txt", "*.jsonl", "*.jinja")
#: The weight files among them (mlx-lm then loads ``glob("model*.safetensors")`` of the
#: top folder).
WEIGHT_PATTERN = "model*.safetensors"
#: The model card, which ``mlx_lm.convert --hf-path`` also reads from the repository (its
#: ``create_model_card`` calls ``ModelCard.load(repo_id)``).
MODEL_CARD = "README.md"

# huggingface_hub.utils.validate_repo_id: one optional namespace, [A-Za-z0-9_.-]{1,96} each,
# not starting or ending with '-' or '.', no '--' or '..', not ending in '.git'.
_REPO_PART = r"(?![-.])[A-Za-z0-9_.\-]{1,96}(?<![-.])"
_REPO_ID = re.compile(rf"(?:{_REPO_PART}/)?{_REPO_PART}")

# First request of a header read: the 8-byte length and, for almost every checkpoint, the
# whole header (huggingface_hub's get_safetensors_metadata asks for 100 kB for the same reason).
_HEADER_PROBE = 100_000
_HEADER_LIMIT = 100_000_000  # the safetensors reference parser's limit
#: how many more times a ranged read cut inside its answer is tried (as http_backoff would)
_RANGE_RETRIES = 4


def looks_like_repo_id(s: str | os.PathLike) -> bool:
    """Whether ``s`` names a Hub repository rather than a local folder, decided as
    ``mlx_lm.convert`` decides it: a path that exists is local (mlx-lm's ``_download`` only
    goes to the Hub when ``Path(s).exists()`` is false), anything else is a repository id if
    ``huggingface_hub`` would accept it as one (``validate_repo_id``: ``name`` or
    ``namespace/name``, ASCII letters, digits, ``-``, ``_``, ``.``, at most 96 each, not
    starting or ending with ``-``/``.``, no ``--``/``..``, not ending in ``.git``).

    >>> looks_like_repo_id("mlx-community/Qwen3-0.6B"), looks_like_repo_id("gpt2")
    (True, True)
    >>> looks_like_repo_id("./models/qwen"), looks_like_repo_id("/tmp"), looks_like_repo_id("a/b/c")
    (False, False, False)
    """
    if not isinstance(s, str) or os.path.exists(s):
        return False
    return (_REPO_ID.fullmatch(s) is not None and "--" not in s and ".." not in s
            and not s.endswith(".git"))


def is_weight_file(path: str) -> bool:
    """A weight file mlx-lm loads: ``model*.safetensors`` in the top folder."""
    return "/" not in path and fnmatch.fnmatchcase(path, WEIGHT_PATTERN)


def is_small_file(path: str) -> bool:
    """A file ``mlx_lm.convert --hf-path`` downloads that is not a weight file (config,
    generation config, tokenizer files, the index, ``*.py``), or the model card."""
    if path == MODEL_CARD:
        return True
    if fnmatch.fnmatch(path, WEIGHT_PATTERN):
        return False
    return any(fnmatch.fnmatch(path, p) for p in MLX_LM_ALLOW_PATTERNS)


def _hub() -> ModuleType:
    try:
        import huggingface_hub
        from huggingface_hub import constants, errors, utils  # noqa: F401 (the submodules used)
    except ImportError:
        raise MissingDependencyError(
            "reading from the Hugging Face Hub needs huggingface_hub: "
            + install_hint("hub", "huggingface_hub")) from None
    return huggingface_hub


# ---- errors ------------------------------------------------------------------------------------

_NETWORK_MODULES = {"httpx", "httpx2", "httpcore", "requests", "urllib3", "aiohttp"}


def _unlink_size(p: Path) -> int:
    try:
        n = p.stat().st_size
        p.unlink()
        return n
    except FileNotFoundError:
        return 0


def _takes_tqdm_class(fn: Callable[..., Any]) -> bool:
    import inspect

    try:
        return "tqdm_class" in inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False


def _byte_counter(on_bytes: Callable[[int], None]) -> type:
    """A stand-in for the tqdm class ``hf_hub_download`` draws its bar with: it draws
    nothing and reports the bytes so far (``initial`` plus the updates, which go negative
    when a download starts over) to ``on_bytes``. Not a tqdm subclass, so the client hands
    it only the bar's arguments (``total``, ``initial``, ``desc``, ``unit``...)."""

    class ByteCounter:
        def __init__(self, *_: Any, initial: int = 0, **__: Any):
            self.n = int(initial or 0)
            on_bytes(self.n)

        def update(self, k: int | float | None = 1) -> None:
            self.n += int(k or 0)
            on_bytes(self.n)

        def __enter__(self) -> ByteCounter:
            return self

        def __exit__(self, *_: Any) -> None:
            pass

        def close(self) -> None:
            pass

    return ByteCounter


def _is_network_error(e: BaseException) -> bool:
    for cls in type(e).__mro__:
        if cls.__module__.split(".")[0] in _NETWORK_MODULES:
            # HTTP status errors are answers, not failures of the connection
            return "Status" not in cls.__name__
    return isinstance(e, (ConnectionError, TimeoutError))


def _map_error(e: BaseException, repo_id: str, filename: str | None, revision: str,
               action: str) -> BaseException:
    """The :class:`HubError` (or :class:`~mlxq.errors.MlxqIOError`) for an exception raised by
    ``huggingface_hub``; other exceptions come back unchanged."""
    _hub()
    import huggingface_hub.errors as err
    where = f"{repo_id}@{revision}" if revision else repo_id
    what = f"{where}: {filename}" if filename else where
    first = str(e).strip().splitlines()
    detail = next((line for line in reversed(first) if line.strip()), "") if first else ""
    status = getattr(getattr(e, "response", None), "status_code", None)

    if isinstance(e, err.GatedRepoError):
        return HubAccessError(
            f"{what}: cannot {action}: the repository is gated and this token has no access "
            f"({detail}). Accept its terms on the Hub, then log in (huggingface-cli login) or "
            "set HF_TOKEN.", repo_id=repo_id, filename=filename)
    if isinstance(e, err.RepositoryNotFoundError):
        return HubRepoNotFoundError(
            f"{repo_id}: repository not found (a private repository needs a token: "
            "huggingface-cli login or HF_TOKEN)", repo_id=repo_id, filename=filename)
    if isinstance(e, err.RevisionNotFoundError):
        return HubRevisionNotFoundError(
            f"{repo_id}: no revision {revision!r} (a branch, tag or commit)", repo_id=repo_id,
            filename=filename)
    if isinstance(e, (err.LocalEntryNotFoundError, err.OfflineModeIsEnabled)):
        # hf_hub_download could not reach the Hub and has no local copy
        cause = e.__cause__ or e.__context__
        why = f"{type(cause).__name__}: {cause}" if cause is not None else detail
        return HubNetworkError(f"{what}: cannot {action}: the Hub is unreachable ({why})",
                               repo_id=repo_id, filename=filename)
    if isinstance(e, err.EntryNotFoundError):
        return HubFileNotFoundError(f"{what}: the repository has no such file",
                                    repo_id=repo_id, filename=filename)
    if isinstance(e, err.HfHubHTTPError):
        if status in (401, 403):
            return HubAccessError(f"{what}: cannot {action}: access denied ({status}: {detail})",
                                  repo_id=repo_id, filename=filename)
        if status is not None and (status >= 500 or status in (408, 429)):
            return HubNetworkError(f"{what}: cannot {action}: the Hub answered {status} "
                                   f"({detail})", repo_id=repo_id, filename=filename)
        return HubError(f"{what}: cannot {action}: {status} {detail}", repo_id=repo_id,
                        filename=filename)
    if _is_network_error(e):
        return HubNetworkError(f"{what}: cannot {action}: {type(e).__name__}: {e}",
                               repo_id=repo_id, filename=filename)
    if isinstance(e, OSError) and e.errno is None and "Consistency check failed" in str(e):
        # http_get: the download ended early (the connection was cut without an error)
        return HubNetworkError(f"{what}: cannot {action}: the download was cut short ({detail})",
                               repo_id=repo_id, filename=filename)
    if isinstance(e, ValueError) and "too large to be downloaded" in str(e):
        # http_get refuses files over constants.MAX_HTTP_DOWNLOAD_SIZE without hf_xet
        return HubError(f"{what}: cannot {action}: {detail}", repo_id=repo_id,
                        filename=filename)
    if isinstance(e, OSError) and e.errno is not None and not isinstance(e, HubError):
        return MlxqIOError(f"{what}: cannot {action}: {e.strerror or e} "
                           f"({e.filename or 'local disk'})")
    return e


def _reraise(e: BaseException, repo_id: str, filename: str | None, revision: str,
             action: str) -> NoReturn:
    scrub(e)  # the client's exceptions may quote a token (a server echoing the request)
    mapped = _map_error(e, repo_id, filename, revision, action)
    if mapped is e:
        raise e
    raise mapped from e


# ---- what the Hub's answers may be --------------------------------------------------------------

_HEX = re.compile(r"[0-9a-f]+")


def _safe_repo_path(path: object) -> bool:
    """A path a repository can hold: relative, ``/``-separated, no empty, ``.`` or ``..``
    component, no backslash or NUL. A listing naming anything else is not the Hub's (a
    path like ``../x.json`` would be downloaded outside the folder it was meant for)."""
    if not isinstance(path, str) or not path or path.startswith("/"):
        return False
    if "\\" in path or "\0" in path:
        return False
    return all(part not in ("", ".", "..") for part in path.split("/"))


def _remote_file(entry: Any, repo_id: str, commit: str) -> RemoteFile:
    """A tree entry as a :class:`RemoteFile`, checked: a safe path, a size, an id of the
    form the Hub gives (64 hex digits of sha256 for LFS, 40 of a git blob id otherwise)."""
    where = f"{repo_id}@{commit[:12]}"
    path = getattr(entry, "path", None)
    if not _safe_repo_path(path):
        raise HubIntegrityError(f"{where}: the listing names {path!r:.200}, which is not a "
                                "path inside a repository (absolute, '..', or empty parts)",
                                repo_id=repo_id, filename=None)
    lfs = getattr(entry, "lfs", None)
    etag = lfs.sha256 if lfs is not None else getattr(entry, "blob_id", None)
    size = getattr(entry, "size", None)
    n = 64 if lfs is not None else 40
    if (not isinstance(etag, str) or len(etag) != n or not _HEX.fullmatch(etag)
            or isinstance(size, bool) or not isinstance(size, int) or size < 0):
        raise HubIntegrityError(f"{where}: the listing's entry for {path!r} has no valid "
                                f"{'sha256' if lfs is not None else 'git blob id'} or size",
                                repo_id=repo_id, filename=path)
    return RemoteFile(path, size, etag, lfs is not None)


def _files_of(entries: Iterable[Any], repo_id: str, commit: str) -> Mapping[str, RemoteFile]:
    """The files (not folders) of a tree listing, each checked by :func:`_remote_file`."""
    return MappingProxyType({f.path: _remote_file(f, repo_id, commit)
                             for f in entries if hasattr(f, "blob_id")})


def _content_range_start(value: str | None) -> int | None:
    """The first byte of a ``Content-Range: bytes a-b/n`` header (None if unreadable)."""
    m = re.fullmatch(r"\s*bytes\s+(\d+)-(\d+)/(\d+|\*)\s*", value or "")
    return int(m.group(1)) if m else None


def _take(r: Any, skip: int, want: int, where: str, repo_id: str, filename: str,
          exact: bool) -> bytes:
    """``want`` bytes of a streamed answer after its first ``skip``; at most ``want`` + one
    chunk is ever held. With ``exact`` (a 206), an answer longer than ``want`` is refused."""
    out = bytearray()
    pos = 0
    for chunk in r.iter_bytes():
        if pos + len(chunk) <= skip:
            pos += len(chunk)
            continue
        lo = max(skip - pos, 0)
        pos += len(chunk)
        out += chunk[lo:lo + want - len(out)]
        if exact and pos - skip > want:
            raise HubIntegrityError(f"{where}: asked for {want} bytes, the answer holds more",
                                    repo_id=repo_id, filename=filename)
        if len(out) >= want and not exact:
            break  # the rest of a whole-file answer is never read
    return bytes(out)


def _digest(path: Path, f: RemoteFile) -> str:
    """The file's sha256 (LFS) or git blob id (``sha1(b"blob N\\0" + content)``); each
    chunk is a safe point for a deferred signal (a 5 GB shard takes seconds)."""
    import hashlib

    h = hashlib.sha256() if f.lfs else hashlib.sha1(b"blob %d\0" % os.path.getsize(path))
    with open(path, "rb") as fh:
        while chunk := fh.read(8 << 20):
            h.update(chunk)
            check()
    return h.hexdigest()


# ---- the source --------------------------------------------------------------------------------

@dataclass(frozen=True)
class RemoteFile:
    """A file of the pinned commit, as the Hub's tree lists it.

    Attributes:
        path: the path in the repository (``/``-separated).
        size: its size in bytes (of the real file for LFS files, not of the pointer).
        etag: the LFS sha256 for LFS files, else the git blob id.
        lfs: whether the file is stored with LFS (weights are).
    """

    path: str
    size: int
    etag: str
    lfs: bool


@dataclass(frozen=True)
class ShardHeader:
    """What one shard's safetensors header says, read with ranged requests.

    Attributes:
        filename: the shard's path in the repository.
        size: the shard's size in bytes.
        data_start: where the data section starts (8 + the header's length).
        metadata: the header's ``__metadata__`` (empty if none).
        tensors: name -> :class:`mlxq.io.TensorInfo` (dtype, shape, offsets in the data
            section), validated like a local file's header.
    """

    filename: str
    size: int
    data_start: int
    metadata: Mapping[str, str]
    tensors: Mapping[str, TensorInfo]


class HubSource:
    """One repository of the Hub, pinned to one commit, read file by file.

    Creating it resolves ``revision`` (default: the main branch) to a commit sha once and
    lists the files of that commit; every later request names the sha, so a push to the
    repository while a conversion runs changes nothing.

    Args:
        repo_id: ``namespace/name``.
        revision: a branch, tag or commit sha; ``None`` for the default branch.
        staging_dir: the folder :meth:`download` puts files in (created). Files appear under
            their repository paths; ``huggingface_hub`` keeps its bookkeeping (and, while a
            download runs, the partial file) under ``staging_dir/.cache/huggingface``.
            Partial files left by a killed run are removed when a source opens the folder.
        token: a Hub token; ``None`` uses ``huggingface_hub``'s (``HF_TOKEN`` or the saved
            login), ``False`` sends none.
        endpoint: the Hub's URL; ``None`` uses ``huggingface_hub``'s, which is ``HF_ENDPOINT``
            as it was when ``huggingface_hub`` was first imported (default
            ``https://huggingface.co``).
        retries: how many more times :meth:`download` calls the client after a network
            failure (each call starts the file again: the client resumes only within a call).

    Raises:
        HubRepoNotFoundError, HubRevisionNotFoundError, HubAccessError, HubNetworkError:
            the repository cannot be listed; the message names it.
        MissingDependencyError: ``huggingface_hub`` is not installed.

    Attributes:
        commit: the commit sha every request is pinned to.
        files: path -> :class:`RemoteFile`, every file of that commit.

    The loop of a bounded-disk conversion (it needs the network, so it is not run here)::

        src = HubSource("mlx-community/some-model", staging_dir=work / "shards")
        src.fetch_small_files(work / "small")
        headers = src.safetensors_headers()        # name -> ShardHeader
        plan = download_order(needs, {f: h.size for f, h in headers.items()}, budget)
        for step in plan.steps:
            src.download(step.download)
            ...                                    # compute and write step.ready
            for f in step.delete:
                src.delete(f)
        print(src.peak_bytes_on_disk)
    """

    def __init__(self, repo_id: str, revision: str | None = None, *, staging_dir: PathLike,
                 token: str | bool | None = None, endpoint: str | None = None,
                 retries: int = 2, cache: bool = False):
        hf = _hub()
        #: download into huggingface_hub's cache (and keep), as ``snapshot_download`` and
        #: ``mlx_lm.convert --hf-path`` do, instead of the staging folder
        self.cache = cache
        self.repo_id = repo_id
        self.retries = retries
        self.revision = revision
        self.token = token
        # the token, given or the client's own, is never repeated in a message
        remember(token if isinstance(token, str) else
                 (hf.get_token() if token is None else None))
        self.staging_dir = Path(staging_dir)
        self._api = hf.HfApi(endpoint=endpoint, token=token)
        self.endpoint: str = self._api.endpoint
        rev = revision or "main"
        try:
            info = self._api.model_info(repo_id, revision=revision)
            if not info.sha:
                raise HubError(f"{repo_id}: the Hub did not say which commit {rev!r} is",
                               repo_id=repo_id)
            self.commit: str = info.sha
            entries = list(self._api.list_repo_tree(repo_id, revision=self.commit,
                                                    recursive=True))
        except Exception as e:
            if _map_error(e, repo_id, None, rev, "list") is e and isinstance(
                    e, (KeyError, TypeError, ValueError, AttributeError)):
                # the client could not make entries of the answer: not a Hub listing
                scrub(e)
                raise HubIntegrityError(f"{repo_id}@{rev}: the repository's listing cannot be "
                                        f"read ({type(e).__name__})", repo_id=repo_id) from e
            _reraise(e, repo_id, None, rev, "list the repository")
        self.files: Mapping[str, RemoteFile] = _files_of(entries, repo_id, self.commit)
        self._lock = threading.Lock()
        self._held: dict[str, int] = {}
        self._peak = 0
        self.small_bytes = 0
        self.staging_dir.mkdir(parents=True, exist_ok=True)
        self.remove_partial_downloads()

    def __repr__(self) -> str:
        return (f"HubSource({self.repo_id!r}, commit={self.commit[:12]!r}, "
                f"{len(self.weight_files)} weight files)")

    # ---- what there is -------------------------------------------------------------------

    @property
    def weight_files(self) -> list[str]:
        """The shards (``model*.safetensors`` of the top folder), sorted."""
        return sorted(p for p in self.files if is_weight_file(p))

    @property
    def small_files(self) -> list[str]:
        """Every non-weight file ``mlx_lm.convert --hf-path`` would download, plus the
        model card if there is one, sorted."""
        return sorted(p for p in self.files if is_small_file(p))

    def _file(self, filename: str) -> RemoteFile:
        f = self.files.get(filename)
        if f is None:
            raise HubFileNotFoundError(
                f"{self.repo_id}@{self.commit[:12]}: {filename}: the repository has no such "
                "file", repo_id=self.repo_id, filename=filename)
        return f

    # ---- downloads -----------------------------------------------------------------------

    def _hf_download(self, filename: str, local_dir: Path, force: bool = False,
                     on_bytes: Callable[[int], None] | None = None) -> Path:
        hf = _hub()
        extra: dict[str, Any] = {}
        if on_bytes is not None and _takes_tqdm_class(hf.hf_hub_download):
            extra["tqdm_class"] = _byte_counter(on_bytes)
        try:
            return Path(hf.hf_hub_download(
                self.repo_id, filename, revision=self.commit,
                local_dir=None if self.cache else local_dir,
                token=self.token, endpoint=self.endpoint, force_download=force, **extra))
        except Exception as e:
            _reraise(e, self.repo_id, filename, self.commit[:12], "download")

    def fetch_small_files(self, dst_dir: PathLike) -> dict[str, Path]:
        """Downloads :attr:`small_files` into ``dst_dir`` (under their repository paths;
        ``huggingface_hub`` adds ``dst_dir/.cache/huggingface``, so do not point this at the
        output folder). Returns path in repository -> local path. Counted in
        :attr:`small_bytes`, not in :attr:`bytes_on_disk`."""
        dst = Path(dst_dir)
        out = {}
        for name in self.small_files:
            out[name] = self._verified(name, self._hf_download(name, dst))
        self.small_bytes = sum(self.files[n].size for n in out)
        return out

    def _verified(self, filename: str, path: Path) -> Path:
        """``path`` (the download of ``filename``) if its content is what the listing
        announced: the LFS sha256 for LFS files, the git blob id for the others. Otherwise
        the file is removed (from the staging folder, or the cache blob and its link) and a
        :class:`~mlxq.errors.HubIntegrityError` says so."""
        f = self._file(filename)
        got = _digest(path, f)
        if got == f.etag:
            return path
        self._discard(filename, path)
        what = "sha256" if f.lfs else "git blob id"
        raise HubIntegrityError(
            f"{self.repo_id}@{self.commit[:12]}: {filename}: the downloaded file's {what} is "
            f"{got}, not the {f.etag} the Hub announced (tampered with or damaged on the "
            "way); it was deleted and nothing made from it is kept", repo_id=self.repo_id,
            filename=filename)

    def _discard(self, filename: str, path: Path) -> None:
        if self.cache:  # the blob the cache's snapshot links to, then the link
            for p in (Path(os.path.realpath(path)), path):
                try:
                    p.unlink()
                except FileNotFoundError:
                    pass
                except OSError as e:
                    raise MlxqIOError(f"{p}: cannot delete: {e.strerror}") from None
        else:
            self.delete(filename)

    def download(self, filename: str, *,
                 on_bytes: Callable[[int], None] | None = None) -> Path:
        """Downloads one file of the pinned commit into :attr:`staging_dir` and returns its
        path. The client's own download: it writes a temporary file and renames it into
        place, returns at once if a previous run left the complete file and, from
        ``huggingface_hub`` 2.x, resumes within the call when the connection is cut (from its
        last complete 10 MiB chunk, up to five times in a row without progress); after a
        network failure the whole call is repeated up to ``retries`` times. The file counts
        in :attr:`bytes_on_disk` (at its full size) from the moment its download starts
        until :meth:`delete`. ``on_bytes(done)`` hears how many bytes of the file the
        current attempt has, in place of the client's progress bar (not called by a client
        whose ``hf_hub_download`` takes no ``tqdm_class``).

        The file's content is then checked against the listing: its sha256 (LFS files, the
        ``X-Linked-Etag`` the Hub also sends) or git blob id; a file that does not match is
        deleted and refused.

        Raises:
            HubFileNotFoundError: no such file at the commit.
            HubAccessError: a gated repository without an accepted token.
            HubNetworkError: the connection failed and retries did not help.
            HubIntegrityError: the file's content is not what the listing announced.
        """
        f = self._file(filename)
        with self._lock:
            fresh = filename not in self._held
            self._held[filename] = f.size
            self._peak = max(self._peak, sum(self._held.values()))
        try:
            for attempt in range(self.retries + 1):
                try:
                    path = self._hf_download(filename, self.staging_dir, on_bytes=on_bytes)
                    break
                except HubNetworkError as e:
                    if attempt == self.retries:
                        raise
                    log.warning("%s; trying again (%d of %d)", e, attempt + 1, self.retries)
            if path.stat().st_size != f.size:  # a stale or damaged copy in the staging folder
                log.info("%s: %s has %d bytes, not %d: downloading it again", self.repo_id,
                         filename, path.stat().st_size, f.size)
                path = self._hf_download(filename, self.staging_dir, force=True,
                                         on_bytes=on_bytes)
            # huggingface_hub checks the size, not the content: the sha256 the listing
            # announced is checked before a byte of the file is used
            path = self._verified(filename, path)
        except BaseException:
            if fresh:
                with self._lock:
                    self._held.pop(filename, None)
            raise
        return path

    def delete(self, filename: str) -> None:
        """Removes a downloaded file (and the client's bookkeeping for it) from the staging
        folder; it stops counting in :attr:`bytes_on_disk`. Deleting a file that is not
        there does nothing."""
        if self.cache:  # the cache is the local copy asked for: kept
            with self._lock:
                self._held.pop(filename, None)
            return
        rel = Path(*filename.split("/"))
        meta = self.staging_dir / ".cache" / "huggingface" / "download" / rel
        for p in (self.staging_dir / rel, meta.with_name(meta.name + ".metadata"),
                  meta.with_name(meta.name + ".lock")):
            try:
                p.unlink()
            except FileNotFoundError:
                pass
            except OSError as e:
                raise MlxqIOError(f"{p}: cannot delete: {e.strerror}") from None
        with self._lock:
            self._held.pop(filename, None)

    def remove_partial_downloads(self) -> int:
        """Deletes the partial files (``*.incomplete``) that a killed download left in the
        staging folder (the client never resumes them: each attempt writes a new one) and
        returns how many bytes that freed. With :attr:`cache`, the same for this
        repository's blobs in huggingface_hub's cache, but only those whose download lock
        (the client's ``.locks/<repo>/<etag>.lock``, held while it downloads) is free: a
        download running in another process keeps its file."""
        freed = 0
        root = self.staging_dir / ".cache" / "huggingface" / "download"
        if root.is_dir():
            for p in root.rglob("*.incomplete"):
                freed += _unlink_size(p)
        if self.cache:
            freed += self._remove_orphans_in_cache()
        if freed:
            log.info("%s: removed %d bytes of partial downloads", self.repo_id, freed)
        return freed

    def _remove_orphans_in_cache(self) -> int:
        _hub()
        from filelock import FileLock, Timeout  # huggingface_hub's own dependency
        from huggingface_hub import constants
        from huggingface_hub.file_download import repo_folder_name

        folder = repo_folder_name(repo_id=self.repo_id, repo_type="model")
        cache = Path(constants.HF_HUB_CACHE)
        blobs = cache / folder / "blobs"
        if not blobs.is_dir():
            return 0
        freed = 0
        by_etag: dict[str, list[Path]] = {}
        for p in blobs.glob("*.incomplete"):
            by_etag.setdefault(p.name.split(".", 1)[0], []).append(p)
        for etag, parts in by_etag.items():
            lock = FileLock(str(cache / ".locks" / folder / f"{etag}.lock"))
            try:
                lock.acquire(timeout=0)
            except (Timeout, OSError):
                continue  # downloading elsewhere now (or no lock to take): left alone
            try:
                for p in parts:
                    freed += _unlink_size(p)
            finally:
                lock.release()
        return freed

    @property
    def bytes_on_disk(self) -> int:
        """Bytes of the files :meth:`download` holds now (counting a running download at its
        full size, so this never undercounts the staging folder)."""
        with self._lock:
            return sum(self._held.values())

    @property
    def peak_bytes_on_disk(self) -> int:
        """The most :attr:`bytes_on_disk` has been."""
        with self._lock:
            return self._peak

    @property
    def held(self) -> list[str]:
        """The files :meth:`download` holds now, sorted."""
        with self._lock:
            return sorted(self._held)

    # ---- headers -------------------------------------------------------------------------

    def _read_range(self, filename: str, start: int, end: int) -> bytes:
        """Bytes [start, end] of a file of the pinned commit, with one ranged GET (retried
        by the client on connection errors and 5xx). The answer is streamed and never read
        past what was asked: a server that ignores the range (200 and the whole file) costs
        the bytes up to ``end``, not the file; a 206 for another range, or longer than
        asked, is refused."""
        hf = _hub()
        url = hf.hf_hub_url(self.repo_id, filename, revision=self.commit, endpoint=self.endpoint)
        headers = hf.utils.build_hf_headers(token=self.token)
        headers["Range"] = f"bytes={start}-{end}"
        where = f"{self.repo_id}@{self.commit[:12]}: {filename}"
        want = end - start + 1
        # the client retries what fails before the answer starts; a connection cut inside
        # the body is retried here (the stream's own retry cannot resume a read in progress)
        for attempt in range(_RANGE_RETRIES + 1):
            try:
                data = self._stream_range(url, headers, start, end, where, filename)
                break
            except HubError:
                raise
            except Exception as e:
                if attempt < _RANGE_RETRIES and _is_network_error(e):
                    log.info("%s: %s; reading it again", where, e)
                    time.sleep(min(2 ** attempt, 8))
                    continue
                _reraise(e, self.repo_id, filename, self.commit[:12],
                         "read the safetensors header")
        if len(data) != want:
            raise HubNetworkError(
                f"{where}: asked for bytes {start}-{end}, got {len(data)} bytes",
                repo_id=self.repo_id, filename=filename)
        return data

    def _stream_range(self, url: str, headers: Mapping[str, str], start: int, end: int,
                      where: str, filename: str) -> bytes:
        hf = _hub()
        with hf.utils.http_stream_backoff("GET", url, headers=dict(headers),
                                          timeout=hf.constants.HF_HUB_DOWNLOAD_TIMEOUT,
                                          retry_on_exceptions=()) as r:
            hf.utils.hf_raise_for_status(r)
            if r.status_code == 206:
                got = _content_range_start(r.headers.get("Content-Range"))
                if got != start:
                    raise HubIntegrityError(
                        f"{where}: asked for bytes {start}-{end}, the answer is another range "
                        f"({r.headers.get('Content-Range')!r:.80})", repo_id=self.repo_id,
                        filename=filename)
                skip = 0
            elif r.status_code == 200:  # the range was ignored: the whole file comes
                skip = start
            else:
                raise HubIntegrityError(f"{where}: a ranged request was answered with status "
                                        f"{r.status_code}", repo_id=self.repo_id,
                                        filename=filename)
            return _take(r, skip, end - start + 1, where, self.repo_id, filename,
                         exact=r.status_code == 206)

    def read_header(self, filename: str) -> ShardHeader:
        """The safetensors header of one file, read with ranged requests (the first 100 kB,
        then the rest of the header if it is longer) and validated like a local file's."""
        f = self._file(filename)
        where = f"{self.repo_id}@{self.commit[:12]}: {filename}"
        if f.size < 8:
            raise SafetensorsError(f"{where}: file is {f.size} bytes, shorter than the 8-byte "
                                   "header length")
        first = self._read_range(filename, 0, min(f.size, _HEADER_PROBE) - 1)
        n = int.from_bytes(first[:8], "little")
        # the length is the file's first 8 bytes: not quoted (it may be no safetensors file)
        if n > _HEADER_LIMIT:
            raise SafetensorsError(f"{where}: not a safetensors file (the header length in "
                                   "its first 8 bytes is over the 100 MB limit)")
        if 8 + n > f.size:
            raise SafetensorsError(f"{where}: file is truncated inside the header, or not a "
                                   f"safetensors file (it has {f.size} bytes, fewer than its "
                                   "first 8 say the header has)")
        header = first[8:8 + n]
        if len(header) < n:
            header += self._read_range(filename, len(first), 8 + n - 1)
        try:
            infos, meta, data_start, data_size = _core.st_validate(header, True)
        except SafetensorsError as e:
            raise SafetensorsError(f"{where}: {e}", key=getattr(e, "key", None)) from None
        if data_start + data_size != f.size:
            what = "truncated" if data_start + data_size > f.size else "longer than its tensors"
            raise SafetensorsError(f"{where}: file is {what} (header describes "
                                   f"{data_start + data_size} bytes, file has {f.size})")
        return ShardHeader(filename, f.size, data_start, MappingProxyType(dict(meta or {})),
                           MappingProxyType({name: TensorInfo(dt, tuple(shape), (b, e))
                                             for name, dt, shape, b, e in infos}))

    def safetensors_headers(self, filenames: Iterable[str] | None = None, *,
                            max_workers: int = 8) -> dict[str, ShardHeader]:
        """:meth:`read_header` of every shard (default :attr:`weight_files`), ``max_workers``
        at a time, in the order given."""
        names = list(self.weight_files if filenames is None else filenames)
        for n in names:
            self._file(n)
        if not names:
            return {}
        with ThreadPoolExecutor(max_workers=max(1, min(max_workers, len(names)))) as pool:
            return dict(zip(names, pool.map(self.read_header, names), strict=True))


# ---- planning ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class DownloadStep:
    """One step of a :class:`DownloadPlan`.

    Attributes:
        download: the shard to download.
        ready: the outputs (indices into ``outputs_needs``, in write order) whose sources are
            all on disk once it is: compute and write them now.
        delete: the shards no pending output needs once ``ready`` are written: delete them.
        held_bytes: the shard bytes on disk during the step (before deleting).
    """

    download: str
    ready: tuple[int, ...]
    delete: tuple[str, ...]
    held_bytes: int


@dataclass(frozen=True)
class DownloadPlan:
    """A schedule from :func:`download_order`.

    Attributes:
        steps: the downloads, in order.
        ready_at_start: outputs that need no shard (computable before any download).
        peak_bytes: the most shard bytes on disk at once (the largest ``held_bytes``).
        budget: the budget it was planned for (``None``: unbounded).
        unused: shards no output needs (never downloaded).
    """

    steps: tuple[DownloadStep, ...]
    ready_at_start: tuple[int, ...]
    peak_bytes: int
    budget: int | None
    unused: tuple[str, ...]


def _check_plan_args(outputs_needs: Sequence[Iterable[str]], shard_sizes: Mapping[str, int],
                     budget: int | None) -> list[frozenset[str]]:
    if budget is not None and (isinstance(budget, bool) or not isinstance(budget, int)
                               or budget <= 0):
        raise InvalidArgumentError(f"budget: expected a positive number of bytes or None, "
                                   f"got {budget!r}")
    for name, size in shard_sizes.items():
        if isinstance(size, bool) or not isinstance(size, int) or size < 0:
            raise InvalidArgumentError(f"shard_sizes[{name!r}]: expected a size in bytes, got "
                                       f"{size!r}")
    needs = []
    for i, n in enumerate(outputs_needs):
        if isinstance(n, str):
            raise InvalidArgumentError(f"outputs_needs[{i}]: expected a set of file names, got "
                                       f"the string {n!r}")
        s = frozenset(n)
        unknown = sorted(x for x in s if x not in shard_sizes)
        if unknown:
            raise InvalidArgumentError(f"outputs_needs[{i}]: {unknown[0]!r} is not in "
                                       "shard_sizes")
        needs.append(s)
    return needs


class _Schedule:
    """The state of a schedule being built: what is on disk, what is pending."""

    def __init__(self, groups: Mapping[frozenset[str], list[int]], sizes: Mapping[str, int],
                 order: Mapping[str, int]):
        self.sizes, self.order = sizes, order
        self.pending = dict(groups)  # source set -> its outputs, for sets not yet computed
        self.missing = {g: len(g) for g in groups}  # sources of each set not on disk yet
        self.users: dict[str, list[frozenset[str]]] = {}
        for g in groups:
            for x in g:
                self.users.setdefault(x, []).append(g)
        self.held: dict[str, int] = {}
        self.steps: list[DownloadStep] = []

    def live(self, s: str) -> list[frozenset[str]]:
        return [g for g in self.users[s] if g in self.pending]

    def outcome(self, s: str) -> tuple[list[frozenset[str]], list[str]]:
        """The source sets that downloading ``s`` completes, and the shards it frees."""
        done = [g for g in self.live(s) if self.missing[g] == 1]
        freed = [t for t in (*self.held, s) if all(g in done for g in self.live(t))]
        return done, freed

    def download(self, s: str) -> None:
        done, freed = self.outcome(s)
        self.held[s] = self.sizes[s]
        for g in self.users[s]:
            self.missing[g] -= 1
        during = sum(self.held.values())
        ready = sorted(i for g in done for i in self.pending.pop(g))
        for t in freed:
            del self.held[t]
        self.steps.append(DownloadStep(s, tuple(ready),
                                       tuple(sorted(freed, key=self.order.__getitem__)), during))

    def candidates(self) -> set[str]:
        return {x for g in self.pending for x in g if x not in self.held}

    def greedy_key(self, s: str) -> tuple:
        _, freed = self.outcome(s)
        first = min(self.pending[g][0] for g in self.live(s))
        if freed:  # 1. lets something be deleted
            return (0, self.sizes[s] - sum(self.sizes[t] for t in freed), first, self.order[s])
        live = self.live(s)
        tied = len({x for g in live for x in g} - self.held.keys() - {s})
        # 2. on the way to freeing a held shard: what is still to fetch after s
        near = []
        for h in self.held:
            rest = {x for g in self.live(h) for x in g} - self.held.keys()
            if s in rest:
                near.append(sum(self.sizes[x] for x in rest) - self.sizes[s])
        if near:
            return (1, min(near), tied, first, self.order[s])
        return (2, tied, first, self.order[s])  # 3. a new run: enter it at an end


def _greedy(groups, sizes, order, budget) -> _Schedule | None:
    sched = _Schedule(groups, sizes, order)
    while sched.pending:
        now = sum(sched.held.values())
        fits = [s for s in sched.candidates() if budget is None or now + sizes[s] <= budget]
        if not fits:
            return None
        sched.download(min(fits, key=sched.greedy_key))
    return sched


def _in_order(groups, sizes, order, names: Sequence[str]) -> _Schedule:
    sched = _Schedule(groups, sizes, order)
    for s in names:
        if s in sched.users:
            sched.download(s)
    return sched


def _bytes(n: int) -> str:
    return f"{n} bytes" if n < 1024 else f"{human_bytes(n)} ({n} bytes)"


def _peak(sched: _Schedule) -> int:
    return max((st.held_bytes for st in sched.steps), default=0)


def download_order(outputs_needs: Sequence[Iterable[str]], shard_sizes: Mapping[str, int],
                   budget: int | None = None, *,
                   output_names: Sequence[str] | None = None) -> DownloadPlan:
    """Plans the downloads of a conversion that keeps few source shards on disk.

    ``outputs_needs[i]`` is the set of source files output ``i`` is computed from (outputs in
    write order); ``shard_sizes`` gives every file's size, in the files' order (the order of
    the checkpoint's shards). The plan downloads each needed shard once; after each download,
    every output whose sources are all on disk is ready, and every shard that no output still
    pending needs is deleted. Of three schedules, the one holding the fewest bytes at once
    (within the budget) is returned: the shards in order, in reverse order, and a greedy one
    that picks, among the shards that fit the budget,

    1. a shard that lets something be deleted (it completes every pending output of a shard
       on disk, or all of its own), the one that leaves the fewest bytes on disk first;
    2. else a shard on the way to freeing a shard on disk, the one after which the fewest
       bytes remain to be fetched for that first;
    3. else (starting afresh) the shard tied by pending outputs to the fewest other shards
       not yet downloaded, so a run of shards joined by outputs that span two of them is
       entered at an end, not in the middle;
    4. ties go to the shard the earliest pending output needs, then to the files' order.

    When outputs need one shard or two adjacent ones, the plan holds at most two shards at
    once; it never holds more than downloading the shards in order would.

    A budget is never overrun. If a single output needs more than ``budget`` bytes of shards
    at once, or no schedule fits, :class:`~mlxq.errors.DiskBudgetError` says so before
    anything is downloaded, naming the output (by ``output_names[i]`` if given) and the
    bytes (``.required``: a budget for which this planner succeeds).

    >>> plan = download_order([{"s1"}, {"s1", "s2"}, {"s2"}, {"s3"}],
    ...                       {"s1": 4, "s2": 4, "s3": 4})
    >>> [(s.download, s.ready, s.delete, s.held_bytes) for s in plan.steps]
    [('s1', (0,), (), 4), ('s2', (1, 2), ('s1', 's2'), 8), ('s3', (3,), ('s3',), 4)]
    >>> download_order([{"a", "b"}], {"a": 4, "b": 4}, budget=6)
    Traceback (most recent call last):
    ...
    mlxq.errors.DiskBudgetError: output 0 needs 8 bytes of source files on disk at once (a, b), more than the disk budget of 6 bytes; disk_budget=8 is enough
    """
    needs = _check_plan_args(outputs_needs, shard_sizes, budget)
    order = {name: k for k, name in enumerate(shard_sizes)}
    names = list(shard_sizes)

    # Outputs with the same sources behave alike: plan over the distinct source sets.
    groups: dict[frozenset[str], list[int]] = {}
    ready_at_start = []
    for i, s in enumerate(needs):
        if s:
            groups.setdefault(s, []).append(i)
        else:
            ready_at_start.append(i)

    def best(limit: int | None) -> _Schedule | None:
        found = [_in_order(groups, shard_sizes, order, names),
                 _in_order(groups, shard_sizes, order, names[::-1]),
                 _greedy(groups, shard_sizes, order, limit)]
        found = [f for f in found if f is not None and (limit is None or _peak(f) <= limit)]
        return min(found, key=_peak, default=None)  # ties: the first found

    sched = best(budget)
    if sched is None:
        assert budget is not None
        free = best(None)
        assert free is not None
        required = _peak(free)
        worst = max(groups, key=lambda g: (sum(shard_sizes[x] for x in g), -groups[g][0]))
        need = sum(shard_sizes[x] for x in worst)
        if need > budget:
            names_ = ", ".join(sorted(worst, key=order.__getitem__))
            first = groups[worst][0]
            what = (output_names[first] if output_names is not None else f"output {first}")
            raise DiskBudgetError(
                f"{what} needs {_bytes(need)} of source files on disk at once ({names_}), "
                f"more than the disk budget of {_bytes(budget)}; "
                f"{arg('disk_budget', required)} is enough", required=required)
        raise DiskBudgetError(
            f"no download order found that keeps the source files within the disk budget of "
            f"{_bytes(budget)} (every output fits alone, the largest needing {_bytes(need)}, "
            f"but outputs that share shards keep them on disk together); "
            f"{arg('disk_budget', required)} is enough", required=required)
    used = {x for g in groups for x in g}
    return DownloadPlan(tuple(sched.steps), tuple(ready_at_start), _peak(sched), budget,
                        tuple(x for x in shard_sizes if x not in used))
