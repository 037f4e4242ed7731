"""Fuzz targets for the Python entry points that read untrusted bytes.

Each target takes arbitrary bytes and drives one parser the way ``mlxq convert`` does. The
only acceptable outcomes are a result or an :class:`mlxq.errors.MlxqError`: any other
exception (``KeyError``, ``TypeError``, ``RecursionError``, ...) is a bug, and so is a hang.

- ``reader``: the bytes are a ``.safetensors`` file, opened with the pread reader
  (``mlxq.io.SafetensorsReader``) and read tensor by tensor and row block by row block;
- ``config``: the bytes are ``config.json``: ``load_config``, quantization-block parsing
  and verification of stored layers against a fixed set of tensors, external-format
  detection;
- ``index``: the bytes are ``model.safetensors.index.json`` beside two real shards,
  opened with ``mlxq.shards.open_shards``;
- ``external``: the bytes are JSON given to ``mlxq.formats.external.detect``, whose format then
  groups a fixed list of tensor names;
- ``gguf``: the bytes are a ``.gguf`` file: its header parsed (``mlxq.formats.gguf``), every
  tensor's first row read and turned into MLX's arrays or floats, and the model's config,
  names and tokenizer worked out as ``mlxq convert model.gguf`` does;
- ``card``: the bytes are a Hub repository's ``README.md``, made into the output's model
  card (``hub_model_card``, which must return a card whatever the front matter holds);
- ``listing``: the bytes are a page of the Hub's tree listing (JSON), made into entries by
  ``huggingface_hub`` and checked by ``mlxq.hub`` (paths, sizes, ids).

Run under libFuzzer with atheris (``make fuzz``: ``python fuzz/py_fuzz.py TARGET ...``), and
over seeds plus hypothesis-generated inputs in the test suite (tests/test_fuzz_targets.py).
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Callable, Optional

import numpy as np

import mlxq
from mlxq.errors import MlxqError

# Where the targets write their inputs: made on first use (importing this module writes
# nothing) and removed when the process exits; the test suite points it at a folder of its
# own with use_work_dir.
_WORK: Optional[Path] = None
_TMP: Optional[tempfile.TemporaryDirectory] = None


def use_work_dir(path: os.PathLike | str) -> None:
    """Writes the targets' inputs under ``path`` from now on."""
    global _WORK
    _WORK = Path(path)


def _folder(name: str) -> Path:
    global _WORK, _TMP
    if _WORK is None:
        _TMP = tempfile.TemporaryDirectory(prefix="mlxq-fuzz-")  # removed at exit
        _WORK = Path(_TMP.name)
    d = _WORK / name
    d.mkdir(exist_ok=True)
    return d


def reader(data: bytes) -> None:
    from mlxq.io import SafetensorsReader

    path = _folder("reader") / "model.safetensors"
    path.write_bytes(data)
    try:
        with SafetensorsReader(path) as r:
            for name in r.names:
                info = r.info(name)
                try:
                    arr = r.read(name)
                except MlxqError:
                    continue  # a sub-byte dtype: refused by name
                if arr.ndim >= 2 and arr.shape[0] > 1:
                    cols = info.shape[-1]
                    rows = arr.size // max(cols, 1)
                    r.read_rows(name, rows // 2, np.empty((rows - rows // 2, cols), arr.dtype))
    except MlxqError:
        pass


# A small quantized layer and its neighbours, as headers describe them (no data needed).
_SPECS = None


def _specs():
    global _SPECS
    if _SPECS is None:
        from mlxq.tensorspec import TensorSpec as T

        u32, bf = np.dtype(np.uint32), np.dtype(mlxq.bfloat16)
        _SPECS = {
            "model.embed_tokens.weight": T((64, 8), u32), "model.embed_tokens.scales": T((64, 1), bf),
            "model.embed_tokens.biases": T((64, 1), bf),
            "model.layers.0.mlp.up_proj.weight": T((128, 16), u32),
            "model.layers.0.mlp.up_proj.scales": T((128, 1), bf),
            "model.layers.0.mlp.up_proj.biases": T((128, 1), bf),
            "model.layers.0.mlp.gate.weight": T((4, 64), np.dtype(np.uint8)),
            "model.layers.0.mlp.gate.scales": T((4, 2), np.dtype(np.uint8)),
            "model.norm.weight": T((64,), bf), "lm_head.weight": T((64, 64), bf),
        }
    return _SPECS


def config(data: bytes) -> None:
    from mlxq.formats import external
    from mlxq.conversion.hfconfig import load_config
    from mlxq.models import family_for
    from mlxq.models.base import check_config_counts
    from mlxq.stored import stored_layers

    d = _folder("config")
    (d / "config.json").write_bytes(data)
    try:
        cfg = load_config(d)
        fam = family_for(cfg, allow_unknown=True)
        check_config_counts(cfg, _specs())
        stored_layers(_specs(), cfg.get("quantization"), lambda p: fam.in_features(p, cfg))
        mlxq.parse_quantization(cfg)
        external.detect(cfg)
        fam.check_parameters(list(_specs()), cfg)
    except MlxqError:
        pass


def index(data: bytes) -> None:
    from mlxq.io import SafetensorsReader
    from mlxq.shards import INDEX_FILE, open_shards

    d = _folder("index")
    for name, tensors in (("model-00001-of-00002.safetensors", {"a": np.zeros(2, np.int8)}),
                          ("model-00002-of-00002.safetensors", {"b": np.ones(3, np.int8)})):
        if not (d / name).exists():
            mlxq.save_safetensors(d / name, tensors)
    (d / INDEX_FILE).write_bytes(data)
    try:
        with open_shards(d, SafetensorsReader) as s:
            for name, r in s.where.items():
                r.read(name)
    except MlxqError:
        pass


_NAMES = ["model.layers.0.self_attn.q_proj.qweight", "model.layers.0.self_attn.q_proj.qzeros",
          "model.layers.0.self_attn.q_proj.scales", "model.layers.0.self_attn.q_proj.g_idx",
          "model.layers.0.mlp.experts.gate_up_proj_blocks",
          "model.layers.0.mlp.experts.gate_up_proj_scales", "model.norm.weight"]


def external(data: bytes) -> None:
    from mlxq.formats import external as ext

    try:
        try:
            cfg = json.loads(data.decode("utf-8"))
        except (ValueError, RecursionError):
            return  # not JSON: load_config's business (the config target)
        if not isinstance(cfg, dict):
            return
        fmt = ext.detect(cfg)
        if fmt is not None:
            fmt.group_keys(_NAMES)
            fmt.output_dtype({n: np.dtype(np.float16) for n in _NAMES})
            fmt.quantization()
    except MlxqError:
        pass


def gguf(data: bytes) -> None:
    from mlxq.conversion.gguf_source import GgufCheckpoint
    from mlxq.formats import gguf as fmt

    path = _folder("gguf") / "model.gguf"
    path.write_bytes(data)
    try:
        with fmt.GgufFile(path) as f:
            for t in f.tensors.values():
                raw = f.read_raw(t.name, 0, min(t.nrows, 1))
                if fmt.exact_in_mlx(t, raw):
                    fmt.to_mlx(raw, t.type)
                fmt.dequantize_rows(raw, t)
        with GgufCheckpoint(path) as src:
            for t in src.tensors.values():
                t.rows(0, min(t.nrows, 1))
    except MlxqError:
        pass


def card(data: bytes) -> None:
    try:
        from mlxq.conversion.write import hub_model_card
        import huggingface_hub  # noqa: F401 - the card parser
    except ImportError:  # pragma: no cover - mlxq[hub] not installed
        return
    path = _folder("card") / "README.md"
    path.write_bytes(data)
    try:
        text = hub_model_card(path, "org/name", lambda _: None)
    except MlxqError:
        return
    assert isinstance(text, str) and "base_model: org/name" in text


def listing(data: bytes) -> None:
    try:
        from huggingface_hub.hf_api import RepoFile, RepoFolder
    except ImportError:  # pragma: no cover - mlxq[hub] not installed
        return
    from mlxq.hub import _files_of

    try:
        page = json.loads(data.decode("utf-8"))
        entries = [RepoFile(**e) if e.get("type") == "file" else RepoFolder(**e) for e in page]
    except Exception:
        return  # the client's own parse failed: HubSource reports that as HubIntegrityError
    try:
        _files_of(entries, "org/name", "0" * 40)
    except MlxqError:
        pass


TARGETS: dict[str, Callable[[bytes], None]] = {
    "reader": reader, "config": config, "index": index, "external": external, "gguf": gguf,
    "card": card, "listing": listing}

CORPUS = Path(__file__).resolve().parent / "corpus"


def seeds(target: str) -> list[bytes]:
    """The committed seed inputs of a target (fuzz/corpus/py_<target>/)."""
    d = CORPUS / f"py_{target}"
    return [p.read_bytes() for p in sorted(d.iterdir())] if d.is_dir() else []


if __name__ == "__main__":  # pragma: no cover - a quick replay: python fuzz/py_targets.py
    for t, fn in TARGETS.items():
        for s in seeds(t):
            fn(s)
        print(t, "ok", len(seeds(t)), "seeds", file=os.sys.stderr)
