"""What a checkpoint folder holds, from its headers alone (``mlxq inspect DIR``).

>>> import os, tempfile
>>> from mlxq.synthetic import make_checkpoint
>>> tmp = tempfile.TemporaryDirectory()
>>> d = make_checkpoint(os.path.join(tmp.name, "m"), layers=1, hidden=64,
...                     intermediate=128, vocab=64)
>>> info = inspect_checkpoint(d)
>>> info.tensors[0].name, info.tensors[0].dtype, info.quantized_layers
('lm_head.weight', 'BF16', 0)
>>> tmp.cleanup()
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections import Counter
from pathlib import Path
from typing import Any, NamedTuple, Optional, Union

from ._progress import human_bytes
from ._files import read_json
from ._sort import natural_key
from .errors import MlxqIOError
from .io import NUMPY_DTYPE_NAMES, SafetensorsReader
from .shards import open_shards
from .stored import stored_layers

__all__ = ["CheckpointInfo", "TensorRow", "inspect_checkpoint"]


class _HeaderSpec(NamedTuple):
    """A tensor as its header describes it, its dtype by numpy's name (``"bfloat16"``):
    all :func:`~mlxq.stored.stored_layers` needs, without loading ml_dtypes."""

    shape: tuple[int, ...]
    dtype: Optional[str]

    @property
    def size(self) -> int:
        return math.prod(self.shape)


@dataclasses.dataclass(frozen=True)
class TensorRow:
    name: str
    dtype: str
    shape: tuple[int, ...]
    nbytes: int
    file: str
    quantization: Optional[str]  # "affine 4-bit g64" on a layer's .weight, else None


@dataclasses.dataclass
class CheckpointInfo:
    path: str
    model_type: Optional[str]
    tensors: list[TensorRow]
    total_bytes: int
    total_parameters: int
    quantized_layers: int
    schemes: dict[str, int]  # "affine 4-bit g64" -> layers
    quant_method: Optional[str]  # an external format's quantization_config.quant_method

    @property
    def bits_per_weight(self) -> float:
        return self.total_bytes * 8 / max(self.total_parameters, 1)

    def table(self) -> str:
        w = max([len(t.name) for t in self.tensors] + [4])
        head = f"{'name':<{w}}  {'dtype':<7} {'shape':<20} {'size':>10}  quantization"
        rows = [head, "-" * len(head)]
        for t in self.tensors:
            rows.append(f"{t.name:<{w}}  {t.dtype:<7} {str(list(t.shape)):<20} "
                        f"{human_bytes(t.nbytes):>10}  {t.quantization or ''}".rstrip())
        return "\n".join(rows)

    def summary(self) -> str:
        lines = [f"{self.path}: {len(self.tensors)} tensors, {human_bytes(self.total_bytes)}, "
                 f"{self.total_parameters:,} parameters, {self.bits_per_weight:.3f} bits per "
                 f"weight" + (f", model_type {self.model_type}" if self.model_type else "")]
        if self.quant_method:
            lines.append(f"  quantized by another tool: quant_method {self.quant_method!r} "
                         "(mlxq convert turns it into MLX's layout)")
        if self.schemes:
            lines.append(f"  {self.quantized_layers} quantized layers: " + ", ".join(
                f"{n} x {s}" for s, n in sorted(self.schemes.items(), key=lambda kv: -kv[1])))
        else:
            lines.append("  no MLX-quantized layers")
        return "\n".join(lines)


def inspect_checkpoint(path: Union[str, "os.PathLike[str]"]) -> CheckpointInfo:
    """Tensors, dtypes, per-layer quantization and bits per weight of a checkpoint folder
    (or one ``.safetensors`` file), reading headers only."""
    p = Path(os.fspath(path))
    if not os.path.lexists(p):
        raise MlxqIOError(f"{p}: does not exist")
    config: Any = {}
    if p.is_dir():
        if os.path.lexists(p / "config.json"):
            config = read_json(p / "config.json", within=p)
        shards = open_shards(p, SafetensorsReader, pattern="*.safetensors")
    else:
        shards = None
    infos: dict[str, tuple] = {}
    readers = shards.handles if shards is not None else [SafetensorsReader(p)]
    try:
        for r in readers:
            for name, info in r.infos.items():
                infos[name] = (info, os.path.basename(r.path))
    finally:
        for r in readers:
            r.close()
    config = config if isinstance(config, dict) else {}
    block = config.get("quantization")
    qc = config.get("quantization_config")
    method = qc.get("quant_method") if isinstance(qc, dict) and block is None else None
    specs = {n: _HeaderSpec(info.shape, NUMPY_DTYPE_NAMES.get(info.dtype))
             for n, (info, _) in infos.items()}
    if block is None and (not p.is_dir() or method is not None):
        # a lone file (its quantization is in a config.json it does not have), or another
        # tool's format, whose layers mlxq convert reads with that format's rules
        layers: dict[str, Any] = {}
        unknown = set() if method else {n[: -len(".scales")] for n in specs
                                         if n.endswith(".scales")}
    else:
        arch = None

        def in_features(path: str) -> Optional[int]:
            # the model families are loaded only for a folder that has quantized layers
            nonlocal arch
            if arch is None:
                from .models import family_for

                arch = family_for(config, allow_unknown=True)
            return arch.in_features(path, config)

        layers = stored_layers(specs, block, in_features)
        unknown = set()
    rows, schemes = [], Counter()
    bits_of: dict[str, int] = {}
    for name in sorted(infos, key=natural_key):
        info, fname = infos[name]
        q = None
        layer = name[: -len(".weight")] if name.endswith(".weight") else None
        if layer in layers:
            q = layers[layer].describe()
            bits_of[layer] = layers[layer].bits
            schemes[q] += 1
        elif layer in unknown:
            q = "quantized (needs config.json)"
        rows.append(TensorRow(name, info.dtype, info.shape, info.nbytes, fname, q))
    # mlx-lm's get_total_parameters: a quantized layer counts its unpacked weight and bias
    params = 0
    for t in rows:
        n = math.prod(t.shape)
        layer, _, leaf = t.name.rpartition(".")
        if layer in bits_of:
            params += n * 32 // bits_of[layer] if leaf == "weight" else (
                n if leaf == "bias" else 0)
        else:
            params += n
    mt = config.get("model_type")
    return CheckpointInfo(
        path=str(p), model_type=mt if isinstance(mt, str) else None,
        tensors=rows, total_bytes=sum(t.nbytes for t in rows),
        total_parameters=params,
        quantized_layers=sum(schemes.values()), schemes=dict(schemes), quant_method=method)
