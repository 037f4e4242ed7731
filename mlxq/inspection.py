"""What a checkpoint folder holds, from its headers alone (``mlxq inspect DIR``).

>>> import os, tempfile
>>> from mlxq.synthetic import make_checkpoint
>>> d = make_checkpoint(os.path.join(tempfile.mkdtemp(), "m"), layers=1, hidden=64,
...                     intermediate=128, vocab=64)
>>> info = inspect_checkpoint(d)
>>> info.tensors[0].name, info.tensors[0].dtype, info.quantized_layers
('lm_head.weight', 'BF16', 0)
"""

from __future__ import annotations

import dataclasses
import glob
import json
import os
from collections import Counter
from pathlib import Path
from typing import Any, Optional, Union

import numpy as np

from ._progress import human_bytes
from .errors import MissingKeyError, ParseError
from .io import SafetensorsReader

__all__ = ["CheckpointInfo", "TensorRow", "inspect_checkpoint"]


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
                        f"{human_bytes(t.nbytes):>10}  {t.quantization or ''}")
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


def _scheme(path: str, block: dict[str, Any], w: tuple, s: tuple,
            has_biases: bool) -> tuple[str, int]:
    from .convert import _existing_params, _Spec

    gs, bits, mode = _existing_params(path, block, _Spec(w, np.dtype(np.uint32)),
                                      _Spec(s, np.dtype(np.uint8)), has_biases)
    return f"{mode} {bits}-bit g{gs}", bits


def inspect_checkpoint(path: Union[str, "os.PathLike[str]"]) -> CheckpointInfo:
    """Tensors, dtypes, per-layer quantization and bits per weight of a checkpoint folder
    (or one ``.safetensors`` file), reading headers only."""
    p = Path(os.fspath(path))
    if p.is_file():
        files, config = [str(p)], {}
    else:
        files = sorted(f for f in glob.glob(str(p / "*.safetensors"))
                       if not os.path.basename(f).startswith("."))
        if not files:
            raise MissingKeyError(f"{p}: no .safetensors files")
        config = {}
        if (p / "config.json").exists():
            try:
                config = json.loads((p / "config.json").read_text(encoding="utf-8"))
            except (json.JSONDecodeError, UnicodeDecodeError) as e:
                raise ParseError(f"{p / 'config.json'}: not valid JSON: {e}") from None
    infos: dict[str, tuple] = {}
    for f in files:
        with SafetensorsReader(f) as r:
            for name, info in r.infos.items():
                infos[name] = (info, os.path.basename(f))
    block = config.get("quantization") if isinstance(config, dict) else None
    block = block if isinstance(block, dict) else None
    rows, schemes = [], Counter()
    bits_of: dict[str, int] = {}
    from .architectures import natural_key

    for name in sorted(infos, key=natural_key):
        info, fname = infos[name]
        q = None
        layer = name[: -len(".weight")] if name.endswith(".weight") else None
        if layer and f"{layer}.scales" in infos:
            q, bits_of[layer] = _scheme(layer, block or {}, info.shape,
                                        infos[f"{layer}.scales"][0].shape,
                                        f"{layer}.biases" in infos)
            schemes[q] += 1
        rows.append(TensorRow(name, info.dtype, info.shape, info.nbytes, fname, q))
    # mlx-lm's get_total_parameters: a quantized layer counts its unpacked weight and bias
    params = 0
    for t in rows:
        n = int(np.prod(t.shape, dtype=np.int64))
        layer, _, leaf = t.name.rpartition(".")
        if layer in bits_of:
            params += n * 32 // bits_of[layer] if leaf == "weight" else (
                n if leaf == "bias" else 0)
        else:
            params += n
    qc = config.get("quantization_config") if isinstance(config, dict) else None
    method = qc.get("quant_method") if isinstance(qc, dict) and block is None else None
    return CheckpointInfo(
        path=str(p), model_type=config.get("model_type") if isinstance(config, dict) else None,
        tensors=rows, total_bytes=sum(t.nbytes for t in rows),
        total_parameters=params,
        quantized_layers=sum(schemes.values()), schemes=dict(schemes), quant_method=method)
