"""A stand-in for the Hugging Face Hub, for tests: a threaded HTTP server on 127.0.0.1 that
serves repositories from local folders and speaks the part of the Hub's HTTP API that
``huggingface_hub`` uses to download them.

Endpoints (the paths and headers the real Hub answers with):

* ``GET /api/models/{repo}`` and ``GET /api/models/{repo}/revision/{rev}``: model info, with
  ``sha`` (the commit) and ``siblings`` (with sizes and LFS data under ``?blobs=true``).
* ``GET /api/models/{repo}/tree/{rev}[/{path}]?recursive=..``: the file tree, paginated with a
  ``Link: <..&cursor=..>; rel="next"`` header like the Hub (``page_size`` entries a page).
* ``POST /api/models/{repo}/paths-info/{rev}``: the tree entries of the given paths.
* ``HEAD``/``GET /{repo}/resolve/{rev}/{path}``: the file, with ``X-Repo-Commit``, ``ETag``
  (the git blob id, or the sha256 for LFS files), ``Content-Length``, ``Accept-Ranges`` and
  single ranges (``Range: bytes=a-b`` -> 206 with ``Content-Range``). LFS files (weights) are
  answered, as on the Hub, with a 302 to a "CDN" URL carrying ``X-Linked-Etag`` and
  ``X-Linked-Size``; the CDN is this same server reached as ``localhost`` instead of
  ``127.0.0.1``, a different origin, so the client treats it like the Hub's CDN (it stops its
  HEAD at the redirect and does not forward the token). ``lfs_redirect=False`` serves them
  directly instead.
* Errors carry the Hub's ``X-Error-Code``/``X-Error-Message`` headers, which is all
  ``huggingface_hub`` looks at (HEAD answers have no body): an unknown or hidden repo is 401
  ``RepoNotFound``, a gated repo's files 401 (403 with a token) ``GatedRepo``, a missing file
  404 ``EntryNotFound``, an unknown revision 404 ``RevisionNotFound``.

Faults, per server: :meth:`HubServer.drop_connection` (close the socket once a given byte of
a file has been reached, once or every time), :meth:`HubServer.missing` (404 for a file),
:meth:`HubServer.gate` and :meth:`HubServer.hide` (401 for a repo). Misbehaviours of a
server that cannot be trusted: :meth:`HubServer.ignore_ranges` (a ranged request answered
200 with the whole file), :meth:`HubServer.tamper` (a file served with other bytes than the
sha256 its listing announces), :meth:`HubServer.list_extra` (a listing naming paths no
repository can hold, ``../x.json`` or ``/etc/x.json``), :meth:`HubServer.echo_token` (error
answers that quote the request's ``Authorization`` header back). Every request is logged
(:attr:`HubServer.log`): kind, file, byte range, bytes sent, whether it was cut.

Pointing the client at it: see :func:`point_client_at`.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlsplit

__all__ = ["HubServer", "LoggedRequest", "RepoEntry", "point_client_at", "iter_files",
           "LOOPBACK_HOSTS"]

#: Hosts the tests may reach: the server itself (``127.0.0.1``) and its "CDN" (``localhost``).
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost"})

# Suffixes the Hub's default .gitattributes stores with Git LFS (a subset), and its size limit
# above which a file must be LFS.
_LFS_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".ckpt", ".gguf", ".h5", ".msgpack",
                 ".onnx", ".npy", ".npz", ".pkl", ".model", ".zip", ".tar", ".gz")
_LFS_MIN_SIZE = 10 << 20
_CHUNK = 1 << 16
_DATE = "2024-01-01T00:00:00.000Z"


def _git_blob_oid(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def _file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


@dataclass(frozen=True)
class RepoEntry:
    """One file of a commit: where its bytes live and what the Hub says about it."""

    path: str
    source: Path
    size: int
    oid: str  # git blob id (of the LFS pointer for LFS files)
    lfs_sha256: str | None = None
    pointer_size: int | None = None

    @property
    def etag(self) -> str:
        return self.lfs_sha256 or self.oid

    def tree_json(self) -> dict[str, Any]:
        d: dict[str, Any] = {"type": "file", "oid": self.oid, "size": self.size,
                             "path": self.path}
        if self.lfs_sha256 is not None:
            d["lfs"] = {"oid": self.lfs_sha256, "size": self.size,
                        "pointerSize": self.pointer_size}
        return d

    @classmethod
    def of(cls, path: str, source: Path) -> RepoEntry:
        size = source.stat().st_size
        if source.name.endswith(_LFS_SUFFIXES) or size >= _LFS_MIN_SIZE:
            sha = _file_sha256(source)
            pointer = (f"version https://git-lfs.github.com/spec/v1\noid sha256:{sha}\n"
                       f"size {size}\n").encode()
            return cls(path, source, size, _git_blob_oid(pointer), sha, len(pointer))
        return cls(path, source, size, _git_blob_oid(source.read_bytes()))


@dataclass
class _Commit:
    sha: str
    entries: dict[str, RepoEntry]

    def dirs(self) -> list[str]:
        out = set()
        for p in self.entries:
            parts = p.split("/")[:-1]
            out.update("/".join(parts[: i + 1]) for i in range(len(parts)))
        return sorted(out)


@dataclass
class _Repo:
    repo_id: str
    commits: dict[str, _Commit] = field(default_factory=dict)
    refs: dict[str, str] = field(default_factory=dict)
    gated_token: str | None = None  # gated: only this token may resolve files
    gated: bool = False
    hidden: bool = False

    def commit(self, rev: str) -> _Commit | None:
        sha = self.refs.get(rev, rev)
        return self.commits.get(sha)


@dataclass(frozen=True)
class LoggedRequest:
    """One request the server answered.

    ``kind`` is ``"model_info"``, ``"tree"``, ``"paths_info"``, ``"resolve"`` (the Hub URL of a
    file), ``"cdn"`` (the redirect target of an LFS file) or ``"other"``. ``range`` is the
    inclusive byte range of the file that the answer covered (``None`` for a HEAD or an error),
    ``bytes_sent`` the file bytes actually written, ``dropped`` whether the server cut the
    connection on purpose and ``aborted`` whether the client hung up first.
    """

    method: str
    kind: str
    url: str
    repo_id: str | None
    revision: str | None
    filename: str | None
    status: int
    range_header: str | None
    range: tuple[int, int] | None
    bytes_sent: int
    dropped: bool
    aborted: bool
    authorized: bool

    @property
    def is_content(self) -> bool:
        """A GET that sent bytes of a file (from the Hub URL or the CDN)."""
        return self.method == "GET" and self.kind in ("resolve", "cdn") and self.range is not None


@dataclass
class _Drop:
    after: int
    times: int | None  # None: every time


@dataclass
class Stall:
    """A download held at a byte offset: :attr:`reached` is set once the server has sent
    the bytes before it and waits; :meth:`release` lets it go on."""

    after: int
    reached: threading.Event = field(default_factory=threading.Event)
    go: threading.Event = field(default_factory=threading.Event)

    def release(self) -> None:
        self.go.set()


class HubServer:
    """The stand-in Hub. Use as a context manager (or :meth:`start`/:meth:`stop`).

    >>> import tempfile, pathlib, urllib.request, json
    >>> tmp = tempfile.TemporaryDirectory()
    >>> d = pathlib.Path(tmp.name); _ = (d / "config.json").write_text("{}")
    >>> with HubServer() as hub:
    ...     sha = hub.add_repo("org/tiny", d)
    ...     info = json.load(urllib.request.urlopen(hub.endpoint + "/api/models/org/tiny"))
    >>> info["sha"] == sha, [s["rfilename"] for s in info["siblings"]]
    (True, ['config.json'])
    >>> tmp.cleanup()
    """

    def __init__(self, *, lfs_redirect: bool = True, page_size: int = 1000):
        self.lfs_redirect = lfs_redirect
        self.page_size = page_size
        self._repos: dict[str, _Repo] = {}
        self._drops: dict[tuple[str, str], _Drop] = {}
        self._stalls: dict[tuple[str, str], Stall] = {}
        self._stopping = False
        self._missing: dict[tuple[str, str], bool] = {}  # -> still listed in the tree
        self._whole: set[tuple[str, str | None]] = set()  # ranges ignored (None: every file)
        self._tampered: dict[tuple[str, str], int] = {}  # -> offset of the flipped byte
        self._extra: dict[str, list[dict[str, Any]]] = {}  # repo -> raw tree entries
        self._echo: set[str] = set()  # repos whose errors quote the Authorization header
        self._log: list[dict[str, Any]] = []  # live records, updated while answering
        self._lock = threading.Lock()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ---- lifecycle -----------------------------------------------------------------------

    def start(self) -> HubServer:
        handler = type("_BoundHandler", (_Handler,), {"hub": self})
        self._httpd = _QuietServer(("127.0.0.1", 0), handler)
        self._thread = threading.Thread(target=self._httpd.serve_forever,
                                        kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping = True  # lets stalled answers go
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def __enter__(self) -> HubServer:
        return self.start()

    def __exit__(self, *_: Any) -> None:
        self.stop()

    @property
    def port(self) -> int:
        assert self._httpd is not None, "server not started"
        return self._httpd.server_address[1]

    @property
    def endpoint(self) -> str:
        """The value for ``HF_ENDPOINT``: ``http://127.0.0.1:PORT``."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def cdn(self) -> str:
        return f"http://localhost:{self.port}/_cdn"

    # ---- content -------------------------------------------------------------------------

    def add_repo(self, repo_id: str, folder: str | os.PathLike, *, revision: str = "main") -> str:
        """Publishes the files under ``folder`` as a new commit of ``repo_id`` (created if
        new) and points ``revision`` at it; returns the commit sha. Earlier commits stay
        reachable by their sha. The folder's files are read when requested: do not change
        them while the server runs."""
        folder = Path(folder)
        entries = {}
        for p in sorted(folder.rglob("*")):
            if p.is_file():
                rel = p.relative_to(folder).as_posix()
                if not rel.startswith(".cache/"):
                    entries[rel] = RepoEntry.of(rel, p)
        with self._lock:
            repo = self._repos.setdefault(repo_id, _Repo(repo_id))
            h = hashlib.sha1(f"{repo_id}\0{len(repo.commits)}".encode())
            for e in entries.values():
                h.update(f"{e.path}\0{e.oid}\0".encode())
            sha = h.hexdigest()
            repo.commits[sha] = _Commit(sha, entries)
            repo.refs[revision] = sha
        return sha

    def files(self, repo_id: str, revision: str = "main") -> dict[str, RepoEntry]:
        """The files of a commit, as served (missing files left out)."""
        commit = self._repos[repo_id].commit(revision)
        assert commit is not None
        return {p: e for p, e in commit.entries.items() if (repo_id, p) not in self._missing}

    # ---- faults --------------------------------------------------------------------------

    def drop_connection(self, repo_id: str, filename: str, *, after: int,
                        times: int | None = 1) -> None:
        """Close the connection once an answer for ``filename`` has sent the file's bytes up
        to offset ``after`` (an absolute offset in the file; an answer whose range starts
        past it is served in full). ``times`` answers are cut (``None``: all of them, so a
        download that resumes at ``after`` never gets further)."""
        self._drops[(repo_id, filename)] = _Drop(after, times)

    def stall(self, repo_id: str, filename: str, *, after: int) -> Stall:
        """Hold the first answer for ``filename`` that covers offset ``after`` once it has
        sent the bytes before it, until the returned :class:`Stall` is released (or the
        server stops): a download caught in the middle, for as long as a test needs."""
        st = Stall(after)
        self._stalls[(repo_id, filename)] = st
        return st

    def missing(self, repo_id: str, filename: str, *, listed: bool = False) -> None:
        """Answer 404 ``EntryNotFound`` for ``filename``. With ``listed`` the tree and the
        model info still list it (a listing that went stale); by default it is gone from
        them too (a file the index names but the repository does not have)."""
        self._missing[(repo_id, filename)] = listed

    def gate(self, repo_id: str, *, token: str | None = None) -> None:
        """Make ``repo_id`` gated: its info and tree stay public, its files answer 401
        ``GatedRepo`` (403 when a token other than ``token`` is sent)."""
        self._repos[repo_id].gated = True
        self._repos[repo_id].gated_token = token

    def hide(self, repo_id: str) -> None:
        """Make ``repo_id`` private: every request about it answers 401 ``RepoNotFound``,
        as the Hub does for a private repository when the caller is not authenticated."""
        self._repos[repo_id].hidden = True

    def ignore_ranges(self, repo_id: str, filename: str | None = None) -> None:
        """Answer ranged requests for ``filename`` (every file: None) with 200 and the whole
        file, as a proxy or CDN that ignores ``Range`` does."""
        self._whole.add((repo_id, filename))

    def tamper(self, repo_id: str, filename: str, *, offset: int = -1) -> None:
        """Serve ``filename`` with the byte at ``offset`` (negative: from the end) flipped,
        while the listing, ``ETag`` and ``X-Linked-Etag`` still announce the true sha256."""
        self._tampered[(repo_id, filename)] = offset

    def list_extra(self, repo_id: str, path: str, *, size: int = 10,
                   lfs: bool = False) -> None:
        """Add an entry for ``path`` (any string, ``../evil.json`` included) to the tree
        and the model info of ``repo_id``, with a well-formed id; its content is never
        served (404)."""
        oid = hashlib.sha1(path.encode()).hexdigest()
        entry: dict[str, Any] = {"type": "file", "oid": oid, "size": size, "path": path}
        if lfs:
            entry["lfs"] = {"oid": hashlib.sha256(path.encode()).hexdigest(), "size": size,
                            "pointerSize": 130}
        self._extra.setdefault(repo_id, []).append(entry)

    def echo_token(self, repo_id: str) -> None:
        """Error answers about ``repo_id`` quote the request's ``Authorization`` header in
        their message (``X-Error-Message``), as a careless server or proxy might."""
        self._echo.add(repo_id)

    # ---- log -----------------------------------------------------------------------------

    @property
    def log(self) -> list[LoggedRequest]:
        with self._lock:
            return [LoggedRequest(**r) for r in self._log]

    def clear_log(self) -> None:
        with self._lock:
            self._log.clear()

    def content_requests(self, filename: str | None = None) -> list[LoggedRequest]:
        """The GETs that sent file bytes (of ``filename``, or of any file)."""
        return [r for r in self.log
                if r.is_content and (filename is None or r.filename == filename)]

    def bytes_served(self, filename: str | None = None) -> int:
        return sum(r.bytes_sent for r in self.content_requests(filename))

    def _record(self, entry: dict[str, Any]) -> None:
        with self._lock:
            self._log.append(entry)

    def _take_stall(self, repo_id: str, filename: str, start: int, end: int) -> Stall | None:
        with self._lock:
            st = self._stalls.get((repo_id, filename))
            if st is None or not (start <= st.after <= end):
                return None
            del self._stalls[(repo_id, filename)]
            return st

    def _take_drop(self, repo_id: str, filename: str, start: int, end: int) -> int | None:
        """The offset at which to cut an answer covering [start, end], if a fault applies."""
        with self._lock:
            d = self._drops.get((repo_id, filename))
            if d is None or not (start <= d.after <= end) or d.times == 0:
                return None
            if d.times is not None:
                d.times -= 1
            return d.after


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients hanging up mid-answer is expected here (ranged reads, dropped connections).
        import sys

        if not isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    hub: HubServer
    protocol_version = "HTTP/1.1"  # keep-alive, as the client pools connections
    server_version = "hub-stand-in"

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    # ---- plumbing ------------------------------------------------------------------------

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_HEAD(self) -> None:
        self._dispatch("HEAD")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def _dispatch(self, method: str) -> None:
        self._method = method
        # The record is in the log before the answer starts and is updated before each step
        # of it (status, range, bytes, the cut), so a client that has seen something sees it
        # logged.
        self._log = dict(method=method, kind="other", url=self.path, repo_id=None,
                         revision=None, filename=None, status=0,
                         range_header=self.headers.get("Range"), range=None, bytes_sent=0,
                         dropped=False, aborted=False,
                         authorized=self.headers.get("Authorization") is not None)
        self.hub._record(self._log)
        body = b""
        if method == "POST":
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        try:
            self._route(method, body)
        except (ConnectionError, TimeoutError):
            self._log["aborted"] = True
            self.close_connection = True

    def _send(self, status: int, headers: dict[str, str], body: bytes = b"") -> None:
        self._log["status"] = status
        self.send_response(status)
        headers.setdefault("Content-Length", str(len(body)))
        for k, v in headers.items():
            self.send_header(k, v)
        self.end_headers()
        if self._method != "HEAD" and body:
            self.wfile.write(body)

    def _json(self, obj: Any, status: int = 200, headers: dict[str, str] | None = None) -> None:
        self._send(status, {"Content-Type": "application/json", **(headers or {})},
                   json.dumps(obj).encode())

    def _error(self, status: int, code: str, message: str,
               headers: dict[str, str] | None = None) -> None:
        if self._log.get("repo_id") in self.hub._echo:
            message += f" (you sent Authorization: {self.headers.get('Authorization')})"
        self._json({"error": message}, status,
                   {"X-Error-Code": code, "X-Error-Message": message, **(headers or {})})

    def _repo_not_found(self) -> None:
        self._error(401, "RepoNotFound", "Repository not found")

    # ---- routing -------------------------------------------------------------------------

    def _split_repo(self, parts: list[str], keywords: tuple[str, ...] | None
                    ) -> tuple[str, list[str]]:
        """Splits ``parts`` into a repo id (one or two segments, as on the Hub) and the rest,
        which starts with one of ``keywords`` (any segment if None) or is empty."""
        for n in (2, 1):
            if len(parts) >= n and "/".join(parts[:n]) in self.hub._repos:
                rest = parts[n:]
                if not rest or keywords is None or rest[0] in keywords:
                    return "/".join(parts[:n]), rest
        n = 2 if len(parts) >= 2 and (keywords is None or parts[1] not in keywords) else 1
        return "/".join(parts[:n]), parts[n:]

    def _route(self, method: str, body: bytes) -> None:
        url = urlsplit(self.path)
        parts = [unquote(p) for p in url.path.split("/")[1:]]
        query = parse_qs(url.query)
        if parts[:2] == ["api", "models"] and len(parts) > 2:
            repo_id, rest = self._split_repo(parts[2:], ("revision", "tree", "paths-info"))
            self._log["repo_id"] = repo_id
            if not rest and method == "GET":
                return self._model_info(repo_id, "main", query)
            if rest[:1] == ["revision"] and len(rest) >= 2 and method == "GET":
                return self._model_info(repo_id, "/".join(rest[1:]), query)
            if rest[:1] == ["tree"] and len(rest) >= 2 and method == "GET":
                return self._tree(repo_id, rest[1], "/".join(rest[2:]), query, url.path)
            if rest[:1] == ["paths-info"] and len(rest) >= 2 and method == "POST":
                return self._paths_info(repo_id, "/".join(rest[1:]), body)
        elif parts[:1] == ["_cdn"] and method in ("GET", "HEAD"):
            repo_id, rest = self._split_repo(parts[1:], None)
            if len(rest) >= 2:
                return self._cdn(repo_id, rest[0], "/".join(rest[1:]))
        elif method in ("GET", "HEAD") and "resolve" in parts[1:3]:
            repo_id, rest = self._split_repo(parts, ("resolve",))
            if rest[:1] == ["resolve"] and len(rest) >= 3:
                return self._resolve(repo_id, rest[1], "/".join(rest[2:]))
        self._error(404, "NotFound", f"Cannot {method} {url.path}")

    def _lookup(self, repo_id: str, revision: str, *, files: bool = False
                ) -> tuple[_Repo, _Commit] | None:
        """The repo and commit, or None once an error has been sent."""
        self._log["revision"] = revision
        repo = self.hub._repos.get(repo_id)
        if repo is None or repo.hidden:
            self._repo_not_found()
            return None
        commit = repo.commit(revision)
        if commit is None:
            self._error(404, "RevisionNotFound", f"Invalid rev id: {revision}")
            return None
        if files and repo.gated:
            auth = self.headers.get("Authorization")
            if auth is None:
                self._error(401, "GatedRepo", f"Access to model {repo_id} is restricted. You "
                            "must have access to it and be authenticated to access it. "
                            "Please log in.", {"X-Repo-Commit": commit.sha})
                return None
            if repo.gated_token is None or auth != f"Bearer {repo.gated_token}":
                self._error(403, "GatedRepo", f"Access to model {repo_id} is restricted and "
                            "you are not in the authorized list. Visit "
                            f"{self.hub.endpoint}/{repo_id} to ask for access.",
                            {"X-Repo-Commit": commit.sha})
                return None
        return repo, commit

    def _listed(self, repo_id: str, commit: _Commit) -> dict[str, RepoEntry]:
        return {p: e for p, e in commit.entries.items()
                if self.hub._missing.get((repo_id, p), True)}

    # ---- API -----------------------------------------------------------------------------

    def _model_info(self, repo_id: str, revision: str, query: dict[str, list[str]]) -> None:
        self._log["kind"] = "model_info"
        found = self._lookup(repo_id, revision)
        if found is None:
            return
        repo, commit = found
        blobs = query.get("blobs", ["false"])[0].lower() == "true"
        siblings = []
        for e in self._listed(repo_id, commit).values():
            s: dict[str, Any] = {"rfilename": e.path}
            if blobs:
                s.update(size=e.size, blobId=e.oid)
                if e.lfs_sha256:
                    s["lfs"] = {"sha256": e.lfs_sha256, "size": e.size,
                                "pointerSize": e.pointer_size}
            siblings.append(s)
        siblings += [{"rfilename": x["path"]} for x in self.hub._extra.get(repo_id, [])]
        ns = repo_id.split("/")[0] if "/" in repo_id else None
        self._json({"_id": commit.sha[:24], "id": repo_id, "modelId": repo_id, "author": ns,
                    "sha": commit.sha, "lastModified": _DATE, "createdAt": _DATE,
                    "private": False, "disabled": False,
                    "gated": "manual" if repo.gated else False,
                    "tags": [], "downloads": 0, "likes": 0, "library_name": "transformers",
                    "siblings": siblings,
                    "usedStorage": sum(e.size for e in commit.entries.values())})

    def _tree_entries(self, repo_id: str, commit: _Commit, path: str,
                      recursive: bool) -> list[dict[str, Any]] | None:
        files = self._listed(repo_id, commit)
        prefix = path.strip("/") + "/" if path.strip("/") else ""
        dirs = commit.dirs()
        if prefix and prefix[:-1] not in dirs:
            return None

        def under(p: str) -> bool:
            if not p.startswith(prefix) or p == prefix[:-1]:
                return False
            return recursive or "/" not in p[len(prefix):]

        out = [{"type": "directory", "path": d, "size": 0,
                "oid": hashlib.sha1(f"{commit.sha}\0{d}".encode()).hexdigest()}
               for d in dirs if under(d)]
        out += [e.tree_json() for p, e in files.items() if under(p)]
        if not prefix:  # extra (hostile) entries: listed as they are, at the top
            out += [dict(x) for x in self.hub._extra.get(repo_id, [])]
        return sorted(out, key=lambda d: d["path"])

    def _tree(self, repo_id: str, revision: str, path: str, query: dict[str, list[str]],
              url_path: str) -> None:
        self._log["kind"] = "tree"
        found = self._lookup(repo_id, revision)
        if found is None:
            return
        recursive = query.get("recursive", ["false"])[0].lower() == "true"
        entries = self._tree_entries(repo_id, found[1], path, recursive)
        if entries is None:
            return self._error(404, "EntryNotFound", f"{path} does not exist on \"{revision}\"")
        expand = query.get("expand", ["false"])[0].lower() == "true"
        size = min(self.hub.page_size, 50) if expand else self.hub.page_size
        start = int(query.get("cursor", ["0"])[0])
        headers = {}
        if start + size < len(entries):
            q = f"recursive={str(recursive).lower()}&expand={str(expand).lower()}"
            headers["Link"] = (f"<{self.hub.endpoint}{url_path}?{q}&cursor={start + size}>; "
                               'rel="next"')
        self._json(entries[start:start + size], headers=headers)

    def _paths_info(self, repo_id: str, revision: str, body: bytes) -> None:
        self._log["kind"] = "paths_info"
        found = self._lookup(repo_id, revision)
        if found is None:
            return
        wanted = parse_qs(body.decode()).get("paths", [])
        listing = {e["path"]: e for e in self._tree_entries(repo_id, found[1], "", True) or []}
        self._json([listing[p] for p in wanted if p in listing])

    # ---- files ---------------------------------------------------------------------------

    def _entry(self, repo_id: str, commit: _Commit, filename: str) -> RepoEntry | None:
        self._log["filename"] = filename
        e = commit.entries.get(filename)
        if e is None or (repo_id, filename) in self.hub._missing:
            self._error(404, "EntryNotFound", "Entry not found", {"X-Repo-Commit": commit.sha})
            return None
        return e

    def _resolve(self, repo_id: str, revision: str, filename: str) -> None:
        self._log["kind"] = "resolve"
        self._log["filename"] = filename
        self._log["repo_id"] = repo_id
        found = self._lookup(repo_id, revision, files=True)
        if found is None:
            return
        _, commit = found
        e = self._entry(repo_id, commit, filename)
        if e is None:
            return
        common = {"X-Repo-Commit": commit.sha, "Accept-Ranges": "bytes"}
        if e.lfs_sha256 is not None and self.hub.lfs_redirect:
            location = f"{self.hub.cdn}/{repo_id}/{commit.sha}/{quote(filename)}"
            self._send(302, {**common, "Location": location, "ETag": f'"{e.oid}"',
                             "X-Linked-Etag": f'"{e.lfs_sha256}"', "X-Linked-Size": str(e.size),
                             "Content-Type": "text/plain; charset=utf-8"},
                       f"Found. Redirecting to {location}".encode())
            return
        self._content(repo_id, e, {**common, "ETag": f'"{e.etag}"'})

    def _cdn(self, repo_id: str, sha: str, filename: str) -> None:
        self._log.update(kind="cdn", repo_id=repo_id, revision=sha, filename=filename)
        repo = self.hub._repos.get(repo_id)
        commit = repo.commits.get(sha) if repo is not None else None
        e = commit.entries.get(filename) if commit is not None else None
        if e is None:
            return self._send(403, {"Content-Type": "application/xml"}, b"<Error/>")
        self._content(repo_id, e, {"ETag": f'"{e.etag}"', "Accept-Ranges": "bytes"})

    def _content(self, repo_id: str, e: RepoEntry, headers: dict[str, str]) -> None:
        start, end = 0, e.size - 1
        status = 200
        rng = self.headers.get("Range")
        if (repo_id, e.path) in self.hub._whole or (repo_id, None) in self.hub._whole:
            rng = None  # a server that ignores ranges: 200, the whole file
        if rng is not None:
            parsed = _parse_range(rng, e.size)
            if parsed is None:
                return self._send(416, {"Content-Range": f"bytes */{e.size}"})
            start, end = parsed
            status = 206
            headers["Content-Range"] = f"bytes {start}-{end}/{e.size}"
        headers.update({"Content-Type": "application/octet-stream",
                        "Content-Length": str(end - start + 1)})
        if self._method == "GET":
            self._log["range"] = (start, end)
        self._log["status"] = status
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.end_headers()
        if self._method == "HEAD":
            return
        cut = self.hub._take_drop(repo_id, e.path, start, end) if e.size else None
        stall = self.hub._take_stall(repo_id, e.path, start, end) if e.size else None
        stop = end + 1 if cut is None else cut
        flip = self.hub._tampered.get((repo_id, e.path))
        if flip is not None and flip < 0:
            flip += e.size
        with open(e.source, "rb") as f:
            f.seek(start)
            pos = start
            while pos < stop:
                if stall is not None and pos >= stall.after:
                    self.wfile.flush()
                    stall.reached.set()
                    while not stall.go.wait(0.05) and not self.hub._stopping:
                        pass
                    stall = None
                limit = stop if stall is None else min(stop, max(stall.after, pos + 1))
                chunk = f.read(min(_CHUNK, limit - pos))
                if not chunk:
                    break
                if flip is not None and pos <= flip < pos + len(chunk):
                    b = bytearray(chunk)
                    b[flip - pos] ^= 0xFF
                    chunk = bytes(b)
                self._log["bytes_sent"] += len(chunk)
                self.wfile.write(chunk)
                pos += len(chunk)
        if cut is not None:
            self._log["dropped"] = True
            self.wfile.flush()
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def _parse_range(header: str, size: int) -> tuple[int, int] | None:
    """A single ``bytes=`` range as an inclusive (start, end), or None if unsatisfiable."""
    unit, _, spec = header.partition("=")
    if unit.strip().lower() != "bytes" or "," in spec:
        return None
    a, _, b = spec.strip().partition("-")
    try:
        if a == "":  # suffix: the last b bytes
            n = int(b)
            return (max(size - n, 0), size - 1) if n > 0 and size else None
        start = int(a)
        end = int(b) if b else size - 1
    except ValueError:
        return None
    if start >= size or end < start:
        return None
    return start, min(end, size - 1)


# ---- pointing huggingface_hub at the server --------------------------------------------------

def _loopback_only(request: Any) -> None:
    host = request.url.host
    if host not in LOOPBACK_HOSTS:
        raise RuntimeError(f"a test tried to reach {request.url} (only the stand-in Hub on "
                           "127.0.0.1 may be contacted)")


@contextlib.contextmanager
def point_client_at(endpoint: str, home: str | os.PathLike) -> Iterator[None]:
    """Points ``huggingface_hub`` (imported already or not) at ``endpoint`` while the block
    runs, for this process and for subprocesses started in it.

    ``huggingface_hub.constants`` reads ``HF_ENDPOINT`` once, when it is imported, into
    ``ENDPOINT`` and into ``HUGGINGFACE_CO_URL_TEMPLATE`` (which ``hf_hub_url`` formats
    without looking at ``ENDPOINT`` again), so setting the variable after the import changes
    nothing in this process. This sets the variable (for subprocesses) and patches both
    constants (for this process; ``HfApi()``, ``hf_hub_download`` and ``snapshot_download``
    read them on every call) and the endpoint of the ``HfApi`` behind the module-level
    functions (``huggingface_hub.model_info`` etc.), which copied it when made. The same goes for the other settings patched here: telemetry
    off (with it on, building the request headers fetches an "agent harnesses" list from the
    endpoint), offline mode off, no implicit token (``HF_TOKEN`` unset, the token file under
    ``home``), caches under ``home``. Every request of the shared HTTP client is checked to go
    to a loopback host, and the client is closed on the way out.
    """
    import pytest
    from huggingface_hub import constants
    from huggingface_hub.utils import _http

    home = Path(home)
    env = {"HF_ENDPOINT": endpoint, "HF_HOME": str(home), "HF_HUB_DISABLE_TELEMETRY": "1",
           "HF_HUB_DISABLE_PROGRESS_BARS": "1", "HF_HUB_DISABLE_UPDATE_CHECK": "1",
           "HF_HUB_DISABLE_IMPLICIT_TOKEN": "1", "DO_NOT_TRACK": "1"}
    constant_values = {
        "ENDPOINT": endpoint,
        "HUGGINGFACE_CO_URL_TEMPLATE": endpoint + "/{repo_id}/resolve/{revision}/{filename}",
        "HF_HUB_OFFLINE": False,
        "HF_HUB_DISABLE_TELEMETRY": True,
        "HF_HUB_DISABLE_PROGRESS_BARS": True,
        "HF_HUB_DISABLE_IMPLICIT_TOKEN": True,
        "HF_HOME": str(home),
        "HF_HUB_CACHE": str(home / "hub"),
        "HF_TOKEN_PATH": str(home / "token"),
        "HF_STORED_TOKENS_PATH": str(home / "stored_tokens"),
    }

    def guarded_client() -> Any:
        client = _http.default_client_factory()
        hooks = client.event_hooks
        hooks["request"] = [*hooks.get("request", []), _loopback_only]
        client.event_hooks = hooks
        return client

    with pytest.MonkeyPatch.context() as mp:
        for k, v in env.items():
            mp.setenv(k, v)
        for k in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_TOKEN", "HUGGING_FACE_HUB_TOKEN",
                  "HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "HF_HUB_ENABLE_HF_TRANSFER",
                  "HF_HUB_ETAG_TIMEOUT", "HF_HUB_DOWNLOAD_TIMEOUT", "HUGGINGFACE_CO_STAGING",
                  "HF_XET_CACHE"):
            mp.delenv(k, raising=False)
        for name, value in constant_values.items():
            if hasattr(constants, name):
                mp.setattr(constants, name, value)
        # The module-level functions (huggingface_hub.model_info, get_safetensors_metadata,
        # ...) are methods of one HfApi made when huggingface_hub.hf_api is first imported,
        # which copied ENDPOINT then.
        from huggingface_hub import hf_api
        mp.setattr(hf_api.api, "endpoint", endpoint)
        _http.close_session()
        mp.setattr(_http, "_GLOBAL_CLIENT_FACTORY", guarded_client)
        try:
            yield
        finally:
            _http.close_session()


def iter_files(folder: str | os.PathLike) -> Iterator[Path]:
    """Every file under ``folder`` (for size accounting in tests)."""
    for root, _, names in os.walk(folder):
        for n in names:
            yield Path(root) / n


# mlx-lm's command line, for ``python -c MLX_LM_CLI TESTS_DIR ARGS...``: runs it in a
# subprocess that refuses every host but the stand-in's.
MLX_LM_CLI = """
import runpy, sys
sys.path.insert(0, sys.argv.pop(1))
from hub_server import _loopback_only
from huggingface_hub.utils import _http
def guarded():
    c = _http.default_client_factory()
    hooks = c.event_hooks
    hooks["request"] = [*hooks["request"], _loopback_only]
    c.event_hooks = hooks
    return c
_http.set_client_factory(guarded)
sys.argv = ["mlx_lm", *sys.argv[1:]]
runpy.run_module("mlx_lm", run_name="__main__")
"""
