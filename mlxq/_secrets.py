"""Tokens kept out of everything mlxq says: messages, warnings, logs, exception chains.

A Hugging Face token reaches mlxq from ``--token``, ``convert(token=...)``, ``HF_TOKEN`` or
the saved login, and can come back in what mlxq reports: a mistyped option echoed by a usage
error (``--tokn hf_...``), a server's error message that quotes the request, an exception
of the HTTP client. :func:`redact` replaces every secret it knows of (:func:`remember`) and
anything shaped like a token (``hf_`` followed by 20 or more letters and digits, as user
access tokens are; the value of an ``Authorization: Bearer`` header) with ``***``; every
:class:`~mlxq.errors.MlxqError` message goes through it, and so does every line the command
line prints. :func:`scrub` does the same to the arguments of an exception and of the
exceptions it was raised from.

>>> remember("s3cr3t-value")
>>> redact("token s3cr3t-value or hf_abcdefghijklmnopqrstuvwxyz012345, Bearer xyz")
'token *** or hf_***, Bearer ***'
"""

from __future__ import annotations

import re
import threading

__all__ = ["redact", "remember", "scrub"]

_TOKEN = re.compile(r"\bhf_[A-Za-z0-9]{20,}")
_BEARER = re.compile(r"(\bBearer\s+)[^\s,;'\")]+", re.IGNORECASE)
_lock = threading.Lock()
_known: set[str] = set()


def remember(secret: object) -> None:
    """Adds ``secret`` (a token given to mlxq) to what :func:`redact` hides. Strings
    shorter than 8 characters are ignored: hiding them would garble ordinary text (and no
    real token is that short)."""
    if isinstance(secret, str) and len(secret.strip()) >= 8:
        with _lock:
            _known.add(secret.strip())


def redact(text: str) -> str:
    """``text`` with every known secret and every token-shaped value replaced."""
    if not isinstance(text, str):
        return text
    with _lock:
        known = sorted(_known, key=len, reverse=True)
    for s in known:
        if s in text:
            text = text.replace(s, "***")
    text = _BEARER.sub(r"\1***", text)
    return _TOKEN.sub("hf_***", text)


def scrub(exc: BaseException | None) -> None:
    """Redacts the string arguments (and ``server_message``) of ``exc`` and of every
    exception in its ``__cause__`` / ``__context__`` chain, in place: a traceback printed
    later (``MLXQ_DEBUG=1``) or a caller's ``str(e.__cause__)`` shows no token."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        try:
            exc.args = tuple(redact(a) if isinstance(a, str) else a for a in exc.args)
        except (AttributeError, TypeError):  # pragma: no cover - an exotic exception
            pass
        msg = getattr(exc, "server_message", None)
        if isinstance(msg, str):
            try:
                exc.server_message = redact(msg)  # type: ignore[attr-defined]
            except AttributeError:  # pragma: no cover - a read-only property
                pass
        exc = exc.__cause__ or exc.__context__
