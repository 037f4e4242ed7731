"""Exceptions raised by mlxq.

Every exception mlxq raises on purpose is an :class:`MlxqError`. Each subclass also derives
from the builtin a caller would naturally catch, so ``except ValueError`` keeps working::

    >>> import mlxq, numpy as np
    >>> try:
    ...     mlxq.quantize(np.zeros((4, 48), np.float32))
    ... except ValueError as e:
    ...     print(type(e).__name__)
    DivisibilityError

Errors about one layer of a weight map carry ``.layer`` (the layer path, e.g.
``"model.layers.0.mlp.down_proj"``) and, when one tensor is at fault, ``.key`` (its full
name); their message begins with the layer path.

No message carries a token: each goes through :func:`mlxq._secrets.redact`.

Warnings (something was done, but perhaps not what was meant) are issued through
:mod:`warnings` with the category :class:`MlxqWarning`, so they can be filtered like any
other (``warnings.simplefilter("error", mlxq.MlxqWarning)``, ``pytest -W
error::mlxq.MlxqWarning``).
"""

from __future__ import annotations

import enum

from ._secrets import redact

__all__ = [
    "MlxqError",
    "InvalidArgumentError",
    "ArgumentTypeError",
    "MissingKeyError",
    "KeyCollisionError",
    "RankMismatchError",
    "ShapeMismatchError",
    "UnsupportedDtypeError",
    "OutOfRangeError",
    "DivisibilityError",
    "ArithmeticOverflowError",
    "InvariantViolationError",
    "UnknownEnumValueError",
    "ParseError",
    "FormatError",
    "UnsupportedFormatError",
    "SafetensorsError",
    "MlxqIOError",
    "OutsideSourceError",
    "SourceChangedError",
    "MlxqMemoryError",
    "MissingDependencyError",
    "HubError",
    "HubRepoNotFoundError",
    "HubRevisionNotFoundError",
    "HubAccessError",
    "HubFileNotFoundError",
    "HubNetworkError",
    "HubIntegrityError",
    "DiskBudgetError",
    "MlxqWarning",
]


class MlxqError(Exception):
    """Base class of every error mlxq raises on purpose.

    Args:
        message: what went wrong, naming the argument, layer or key at fault.
        layer: the layer path the error is about, if any; prefixed to the message.
        key: the full tensor name at fault, if any.
    """

    def __init__(self, message: str = "", *, layer: str | None = None, key: str | None = None):
        self.layer = layer
        self.key = key
        # a token never travels in a message (mlxq._secrets): whatever was quoted into it
        self.message = redact(f"{layer}: {message}" if layer is not None else message)
        super().__init__(self.message)

    def __str__(self) -> str:  # KeyError would otherwise repr() the message
        return self.message


class InvalidArgumentError(MlxqError, ValueError):
    """Arguments that are missing, superfluous or inconsistent with each other
    (e.g. biases passed to an fp mode, a global scale outside nvfp4)."""


class ArgumentTypeError(MlxqError, TypeError):
    """An argument has the wrong Python type (e.g. a float where an int is needed)."""


class MissingKeyError(MlxqError, KeyError):
    """A tensor or config key that must be present is absent."""


class KeyCollisionError(MlxqError, KeyError):
    """An output name would collide with an existing or reserved one."""


class RankMismatchError(MlxqError, ValueError):
    """An array has the wrong number of dimensions."""


class ShapeMismatchError(MlxqError, ValueError):
    """Array shapes are inconsistent with each other or with the format."""


class UnsupportedDtypeError(MlxqError, TypeError):
    """An array's dtype is not one this operation accepts."""


class OutOfRangeError(MlxqError, ValueError):
    """A numeric argument (bits, group size, thread count, ...) is outside its domain."""


class DivisibilityError(MlxqError, ValueError):
    """A dimension is not a multiple of the group size (or packing factor) it must be."""


class ArithmeticOverflowError(MlxqError, OverflowError):
    """A size computation would overflow."""


class InvariantViolationError(MlxqError, RuntimeError):
    """An internal consistency check failed; this is a bug in mlxq or corrupted input."""


class UnknownEnumValueError(MlxqError, ValueError):
    """A string names no known value (a quantization mode, a dtype name, ...)."""


class ParseError(MlxqError, ValueError):
    """A configuration could not be decoded."""


class FormatError(MlxqError, ValueError):
    """Bytes that do not follow the expected file format."""


class UnsupportedFormatError(FormatError):
    """A checkpoint uses a known variant of a source format that mlxq refuses, because it
    cannot be converted exactly (e.g. asymmetric compressed-tensors INT4); the message
    names the variant and gives the reason."""


class SafetensorsError(FormatError):
    """A safetensors file is malformed or cannot be written."""


class MlxqIOError(MlxqError, OSError):
    """The operating system refused a file operation."""


class OutsideSourceError(MlxqIOError, PermissionError):
    """A file of a source folder is a symlink (or lies under one) that leads outside the
    folder, and outside the ``blobs/`` folder of the Hugging Face cache the folder belongs
    to. Refused before anything is read through it; the message names the link and where
    it leads."""


class SourceChangedError(MlxqIOError):
    """A source file changed while it was being read (its size, modification time or inode
    is not what it was when it was opened): the output would mix old and new bytes, so
    nothing is written."""


class MlxqMemoryError(MlxqError, MemoryError):
    """An allocation failed."""


class MissingDependencyError(MlxqError, ImportError):
    """An optional dependency that this operation needs is not installed; the message says
    which ``pip install`` brings it (:func:`install_hint`)."""


def install_hint(extra: str, package: str) -> str:
    """How to install an optional dependency, in commands that work wherever mlxq came
    from: the extra from a package index, the same from a checkout, or the plain package.

    >>> install_hint("hub", "huggingface_hub")
    "pip install 'mlxq[hub]' (from a checkout of mlxq: pip install '.[hub]'), or pip install huggingface_hub"
    """
    return (f"pip install 'mlxq[{extra}]' (from a checkout of mlxq: pip install "
            f"'.[{extra}]'), or pip install {package}")


class HubErrorKind(str, enum.Enum):
    """What went wrong talking to the Hugging Face Hub (:attr:`HubError.kind`)."""

    REPO_NOT_FOUND = "repo-not-found"
    REVISION_NOT_FOUND = "revision-not-found"
    ACCESS = "access"  # gated or private, and no token (or the wrong one)
    FILE_NOT_FOUND = "file-not-found"
    NETWORK = "network"  # connection refused or dropped, timeout, 5xx, truncated download
    INTEGRITY = "integrity"  # an answer that contradicts what the Hub announced
    HTTP = "http"  # any other answer the Hub refused the request with


class HubError(MlxqError, OSError):
    """A Hugging Face Hub request failed. The message names the repository (and the file,
    when one is at fault); ``.kind`` (:class:`HubErrorKind`), ``.repo_id`` and ``.filename``
    say the same for programs. Each kind has its own subclass, which also derives from the
    builtin a caller would catch (``FileNotFoundError``, ``PermissionError``,
    ``ConnectionError``)."""

    kind: HubErrorKind = HubErrorKind.HTTP

    def __init__(self, message: str, *, repo_id: str, filename: str | None = None):
        self.repo_id = repo_id
        self.filename = filename
        super().__init__(message, key=filename)


class HubRepoNotFoundError(HubError, FileNotFoundError):
    """No such repository (or a private one, which the Hub reports the same way)."""

    kind = HubErrorKind.REPO_NOT_FOUND


class HubRevisionNotFoundError(HubError, FileNotFoundError):
    """The repository has no such branch, tag or commit."""

    kind = HubErrorKind.REVISION_NOT_FOUND


class HubAccessError(HubError, PermissionError):
    """The repository is gated (or the token is not allowed to read it)."""

    kind = HubErrorKind.ACCESS


class HubFileNotFoundError(HubError, FileNotFoundError):
    """The repository does not have the file at the pinned commit."""

    kind = HubErrorKind.FILE_NOT_FOUND


class HubNetworkError(HubError, ConnectionError):
    """The connection failed, timed out or was cut, or the Hub is unavailable (5xx)."""

    kind = HubErrorKind.NETWORK


class HubIntegrityError(HubError, ValueError):
    """An answer of the Hub (or of what stands between it and mlxq) that cannot be trusted:
    a downloaded file whose sha256 (or git blob id) is not the one the listing announced, a
    listing naming a path outside the repository, a ranged request answered with something
    else than the range. Nothing downloaded with it is kept."""

    kind = HubErrorKind.INTEGRITY


class DiskBudgetError(MlxqError, ValueError):
    """A download schedule cannot keep the source files held at once within the disk
    budget. ``.required`` is a budget (bytes) that would be enough."""

    def __init__(self, message: str, *, required: int):
        self.required = required
        super().__init__(message)


class MlxqWarning(UserWarning):
    """Category of every warning mlxq issues: a request that did something other than
    what it may have meant (``quantize=True`` that quantized no layer, layers kept as they
    are, a side file not copied).

    >>> import warnings, mlxq
    >>> with warnings.catch_warnings(record=True) as seen:
    ...     warnings.simplefilter("always")
    ...     warnings.warn("an example", mlxq.MlxqWarning)
    >>> seen[0].category.__name__, str(seen[0].message)
    ('MlxqWarning', 'an example')
    """
