"""Helpers for the safetensors tests: raw file images built by hand."""

from __future__ import annotations

import json
import struct
from typing import Any


def st_bytes(header: str | bytes | dict[str, Any], data: bytes = b"", length: int | None = None) -> bytes:
    """A file image: 8-byte little-endian length, header bytes, data. ``header`` may be a
    dict (dumped compactly), a str (UTF-8 encoded) or raw bytes; ``length`` overrides the
    prefix."""
    if isinstance(header, dict):
        header = json.dumps(header, separators=(",", ":"))
    hb = header.encode("utf-8") if isinstance(header, str) else header
    return struct.pack("<Q", len(hb) if length is None else length) + hb + data


def entry(dtype: str, shape: list[int], begin: int, end: int) -> dict[str, Any]:
    return {"dtype": dtype, "shape": shape, "data_offsets": [begin, end]}
