#!/usr/bin/env python3
"""Writes the tiny checkpoints of model types that only their publishers' remote code
defines (tests/fixtures/hf/<name>/), from the descriptions in ``tools/remote_fixtures/``.

transformers cannot build these models, so each description states the real release's
tensor names, shapes and dtypes and its config.json keys, and says where they come from (see
tools/remote_fixtures/__init__.py). This tool only fills and writes them, with numpy and
the ``safetensors`` package (no mlxq, no torch)::

    python tools/gen_remote_fixtures.py               # all, into tests/fixtures/hf
    python tools/gen_remote_fixtures.py internlm2     # some
    python tools/gen_remote_fixtures.py --out DIR

Output is deterministic: the noise is seeded by the fixture's name, JSON is sorted.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib
import json
import pkgutil
import shutil
import sys
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tools"))

import remote_fixtures  # noqa: E402
from gen_hf_fixtures import DEFAULT_OUT, _tokenizer_files, _write_json  # noqa: E402

# Norm-like parameters start near one (as their initialisation does), everything else
# near zero.
_NORM_HINTS = ("norm", "ln_", "layernorm", "_ln", "rmsnorm")


def available() -> list[str]:
    """The fixture names described in tools/remote_fixtures/."""
    return sorted(m.name for m in pkgutil.iter_modules(remote_fixtures.__path__)
                  if not m.name.startswith("_"))


def _module(name: str) -> Any:
    return importlib.import_module(f"remote_fixtures.{name}")


def fill(name: str, shape: tuple[int, ...], dtype: str, rng: np.random.Generator) -> np.ndarray:
    """N(0, 0.02) noise of ``shape`` in ``dtype`` (N(1, 0.02) for norm weights); integer
    tensors get small non-negative values; FP8 releases' ``float8_e4m3fn`` weights get codes
    of N(0, 64) values and their ``float8_e8m0fnu`` scales powers of two."""
    import ml_dtypes

    if dtype.startswith(("int", "uint")):
        return np.asarray(rng.integers(0, 4, size=shape).astype(dtype))
    if dtype == "float8_e8m0fnu":  # power-of-two block scales, 2^-10 .. 2^-4
        return np.exp2(rng.integers(-10, -3, size=shape)).astype(ml_dtypes.float8_e8m0fnu)
    if dtype == "float8_e4m3fn":  # E4M3 codes of N(0, 64) values, saturated at +-448
        x = rng.standard_normal(shape, dtype=np.float32) * np.float32(64.0)
        return np.clip(x, -448, 448).astype(ml_dtypes.float8_e4m3fn)
    x = rng.standard_normal(shape, dtype=np.float32) * np.float32(0.02)
    if name.endswith(".weight") and any(h in name.lower() for h in _NORM_HINTS) and len(shape) == 1:
        x += np.float32(1.0)
    np_dtype = {"bfloat16": ml_dtypes.bfloat16, "float16": np.float16,
                "float32": np.float32}.get(dtype)
    if np_dtype is None:
        raise ValueError(f"{name}: unsupported dtype {dtype!r}")
    return np.asarray(x.astype(np_dtype))  # a 0-d shape gives a numpy scalar otherwise


def make(name: str, out: Path) -> Path:
    from safetensors.numpy import save_file

    mod = _module(name)
    config = json.loads(json.dumps(mod.CONFIG))  # a deep copy, JSON-clean
    specs = mod.tensors(config)
    seed = int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "little")
    rng = np.random.default_rng(seed)
    own = getattr(mod, "fill", None)  # a description may fill some tensors itself
    arrays = {}
    for k, (shape, dtype) in sorted(specs.items()):
        a = own(k, tuple(shape), dtype, rng) if own is not None else None
        arrays[k] = fill(k, tuple(shape), dtype, rng) if a is None else a
    d = out / name
    if d.exists():
        shutil.rmtree(d)
    d.mkdir(parents=True)
    save_file(arrays, str(d / "model.safetensors"), metadata={"format": "pt"})
    _write_json(d / "config.json", config)
    _write_json(d / "generation_config.json",
                {"bos_token_id": 1, "eos_token_id": 2, "do_sample": False})
    for fname, content in _tokenizer_files().items():
        _write_json(d / fname, content)
    return d


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("names", nargs="*", help="fixtures to write (default: all)")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = ap.parse_args(argv)
    for n in args.names or available():
        d = make(n, args.out)
        size = sum(f.stat().st_size for f in d.iterdir())
        print(f"{n:24s} {size / 1024:8.1f} KB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
