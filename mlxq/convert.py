"""Convert a Hugging Face checkpoint folder into an MLX one, as ``mlx_lm.convert`` does,
tensor by tensor.

``mlx_lm.convert`` loads the whole model, casts, quantizes and saves it. :func:`convert`
produces the same folder (the same tensors bit for bit, the same ``config.json`` content,
shard names and index) without MLX and without holding the model: it first *plans* the
output from the headers alone (every output tensor's name, dtype and shape, in mlx-lm's
parameter order, cut into mlx-lm's shards), then makes each tensor from its sources, writes
it at its place in its shard (:class:`mlxq.io.SafetensorsWriter`) and drops it. Peak memory
is about twice the largest tensor, whatever the model size.

The rules followed, by step (each names the mlx-lm behaviour it matches):

- inputs: only ``model*.safetensors`` are read (``load_model``'s glob); ``config.json`` is
  read with transformers' tagged non-finite floats decoded, and ``generation_config.json``'s
  ``eos_token_id`` copied into it (``load_config``);
- sanitize: the architecture's ``Model.sanitize`` (:mod:`mlxq.architectures`): rotary
  buffers and a tied ``lm_head`` dropped, MoE experts stacked into ``[experts, out, in]``;
- dtype: ``--dtype``, else the config's ``torch_dtype``, else ``text_config.dtype``; only
  float16/bfloat16/float32 are applied, to every floating tensor (``convert``'s
  ``set_dtype``), before quantizing;
- quantize: layers mlx-lm would build as Linear/Embedding/SwitchLinear
  (:func:`mlxq.linear_like`) whose last axis divides by the global group size
  (``quantize_model``'s ``wrapped_predicate``), then the recipe or the model's own
  ``quant_predicate``; layers already quantized are kept and the new ones recorded per layer
  (mlx-lm's "fine grained" config);
- dequantize: every quantized layer back to dense, ``quantization`` blocks removed;
- output: mlx-lm's ``make_shards`` (5 GiB by default), ``{"format": "mlx"}`` metadata,
  the index with ``total_size``/``total_parameters``, ``save_config``'s config.json, the
  tokenizer files, ``*.py`` and ``generation_config.json``.

The destination is built in a hidden sibling folder and renamed into place only when
complete: an error or Ctrl-C leaves no destination folder, and the source is only read.

>>> import os, tempfile, mlxq
>>> from mlxq.synthetic import make_checkpoint
>>> d = tempfile.mkdtemp()
>>> src = make_checkpoint(os.path.join(d, "hf"), layers=2, hidden=64, intermediate=128,
...                       vocab=64)
>>> result = convert(src, os.path.join(d, "mlx"), quantize=True, quiet=True)
>>> result.quantized_layers, round(result.bits_per_weight, 3)
(16, 4.545)
>>> mlxq.parse_quantization(os.path.join(d, "mlx", "config.json")).quantization
Quantization(group_size=64, bits=4, mode=<QuantMode.AFFINE: 'affine'>)
"""

from __future__ import annotations

import dataclasses
import glob
import json
import math
import os
import sys
import time
import warnings
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Optional, Sequence, TextIO, Union

import numpy as np

from . import architectures
from ._dtypes import bfloat16
from ._progress import Progress, human_bytes, human_time
from .errors import (
    FormatError,
    InvalidArgumentError,
    InvariantViolationError,
    KeyCollisionError,
    MissingKeyError,
    MlxqError,
    MlxqIOError,
    ParseError,
    UnknownEnumValueError,
)
from .io import DEFAULT_MAX_SHARD_SIZE, INDEX_FILE, SafetensorsReader, SafetensorsWriter
from .io import _count_parameters, shard_file_names
from ._files import is_regular, read_bytes, read_json
from .staging import StagingDir
from .shards import INDEX_FILE as _INDEX, MODEL_PATTERN, open_shards
from .stored import stored_layers
from .tensorspec import TensorSpec as _Spec
from .metrics import QuantError, _error_sums, _Sums
from .predicates import linear_like
from .quant import astype, dequantize, quantize

__all__ = ["ConvertResult", "LayerReport", "convert", "CONVERSION_DTYPES", "QUANT_RECIPES"]

PathLike = Union[str, "os.PathLike[str]"]

#: ``--dtype`` choices (mlx-lm's ``MODEL_CONVERSION_DTYPES``).
CONVERSION_DTYPES = ("float16", "bfloat16", "float32")
#: ``--quant-predicate`` choices (mlx-lm's ``QUANT_RECIPES``).
QUANT_RECIPES = ("mixed_2_6", "mixed_3_4", "mixed_3_6", "mixed_4_6")
#: Per-mode defaults of ``quantize_model`` (``defaults_for_mode``).
_MODE_DEFAULTS = {"affine": (64, 4), "mxfp4": (32, 4), "nvfp4": (16, 4), "mxfp8": (32, 8)}

_NP_DTYPE = {"float16": np.dtype(np.float16), "bfloat16": np.dtype(bfloat16),
             "float32": np.dtype(np.float32)}

# Tokenizer files carried over. mlx-lm re-saves the tokenizer with transformers'
# save_pretrained; the files it reads back are these, copied byte for byte here.
_TOKENIZER_PATTERNS = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
                       "added_tokens.json", "tokenizer.model", "*.tiktoken", "tiktoken.model",
                       "vocab.json", "vocab.txt", "merges.txt", "chat_template.jinja",
                       "chat_template.json")
_COPY_PATTERNS = ("*.py", "generation_config.json")
_PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl")

# transformers tags non-finite floats in config.json ({"__float__": "NaN"}); mlx-lm's
# load_config decodes them and save_config encodes them again.
_FLOAT_TAG = "__float__"
_FLOAT_TAGS = {"Infinity": math.inf, "-Infinity": -math.inf, "NaN": math.nan}


# ---- results -------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class LayerReport:
    """Quantization error of one layer against its source weight (``--report``)."""

    layer: str
    group_size: int
    bits: int
    mode: str
    error: QuantError


@dataclasses.dataclass
class ConvertResult:
    """What :func:`convert` did."""

    dst: str
    tensors: int                 # tensors written
    quantized_layers: int        # layers quantized by this run
    kept_quantized_layers: int   # layers that were already quantized and kept
    dequantized_layers: int
    bits_per_weight: float       # mlx-lm's compute_bits_per_weight of the result
    bytes_read: int
    bytes_written: int
    seconds: float
    architecture: str
    report: list[LayerReport] = dataclasses.field(default_factory=list)
    report_total: Optional[QuantError] = None
    requantized: list = dataclasses.field(default_factory=list)  # gptq.RequantizeReport

    def summary(self) -> str:
        rate = self.bytes_read / self.seconds if self.seconds > 0 else 0.0
        lines = [
            f"wrote {self.dst}: {self.tensors} tensors in {human_time(self.seconds)} "
            f"({self.seconds:.2f} s, {human_bytes(rate)}/s read)",
            f"  size {human_bytes(self.bytes_read)} -> {human_bytes(self.bytes_written)}, "
            f"{self.bits_per_weight:.3f} bits per weight",
        ]
        parts = []
        if self.quantized_layers:
            parts.append(f"{self.quantized_layers} layers quantized")
        if self.kept_quantized_layers:
            parts.append(f"{self.kept_quantized_layers} already quantized layers kept")
        if self.dequantized_layers:
            parts.append(f"{self.dequantized_layers} layers dequantized")
        if parts:
            lines.append("  " + ", ".join(parts))
        for r in self.requantized:
            lines.append(f"  re-quantized (act-order GPTQ) {r.layer}: {r.error}")
        return "\n".join(lines)

    def report_table(self) -> str:
        if not self.report:
            return "no layer was quantized from dense weights in this run: nothing to report"
        w = max(len(r.layer) for r in self.report)
        head = f"{'layer':<{w}}  {'mode':>6} {'bits':>4} {'group':>5}  {'rmse':>10} " \
               f"{'max abs':>10} {'SNR dB':>7}"
        rows = [head, "-" * len(head)]
        for r in self.report:
            e = r.error
            rows.append(f"{r.layer:<{w}}  {r.mode:>6} {r.bits:>4} {r.group_size:>5}  "
                        f"{e.rmse:>10.4g} {e.max_abs:>10.4g} {e.snr_db:>7.2f}")
        if self.report_total is not None:
            t = self.report_total
            rows.append("-" * len(head))
            rows.append(f"{'all layers':<{w}}  {'':>6} {'':>4} {'':>5}  {t.rmse:>10.4g} "
                        f"{t.max_abs:>10.4g} {t.snr_db:>7.2f}")
        return "\n".join(rows)


# ---- config ---------------------------------------------------------------------------------

def _decode_floats(obj: Any) -> Any:
    if isinstance(obj, dict):
        if set(obj) == {_FLOAT_TAG} and obj[_FLOAT_TAG] in _FLOAT_TAGS:
            return _FLOAT_TAGS[obj[_FLOAT_TAG]]
        return {k: _decode_floats(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_decode_floats(v) for v in obj]
    return obj


def _encode_floats(obj: Any) -> Any:
    if isinstance(obj, float) and not math.isfinite(obj):
        return {_FLOAT_TAG: "NaN" if math.isnan(obj) else ("Infinity" if obj > 0 else "-Infinity")}
    if isinstance(obj, dict):
        return {k: _encode_floats(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_encode_floats(v) for v in obj]
    return obj


def load_config(src: Path) -> dict[str, Any]:
    """``config.json`` as mlx-lm's ``load_config`` reads it (tagged floats decoded,
    ``generation_config.json``'s ``eos_token_id`` copied in when truthy), checked for what
    the conversion needs: an object with a string ``model_type`` (mlx-lm picks the
    architecture by it, and fails later with a ``KeyError`` without it)."""
    path = src / "config.json"
    if not os.path.lexists(path):
        raise MissingKeyError(f"{src}: no config.json; a Hugging Face checkpoint folder has "
                              "one next to its weights", key="config.json")
    config = _decode_floats(read_json(path))
    if not isinstance(config, dict):
        raise ParseError(f"{path}: expected a JSON object, got {type(config).__name__}")
    mt = config.get("model_type")
    if mt is None:
        raise MissingKeyError(f"{path}: no 'model_type'; mlx-lm picks the architecture by it "
                              "(e.g. \"llama\")", key="model_type")
    if not isinstance(mt, str):
        raise ParseError(f"{path}: 'model_type' must be a string, got {mt!r:.60}",
                         key="model_type")
    gen = src / "generation_config.json"
    if is_regular(gen):
        try:
            gc = read_json(gen)
        except ParseError:
            gc = {}  # mlx-lm ignores an unreadable generation config too
        if isinstance(gc, dict) and (eos := gc.get("eos_token_id", False)):
            config["eos_token_id"] = eos
    return config


def config_text(config: Mapping[str, Any]) -> str:
    """mlx-lm's ``save_config`` output for ``config`` (already cleaned of popped keys)."""
    config = dict(config)
    config.pop("_name_or_path", None)
    config.pop("vision_config", None)
    if "quantization" in config:
        config["quantization_config"] = config["quantization"]
    config = dict(sorted(config.items()))
    return json.dumps(_encode_floats(config), indent=4)


def parse_size(text: Union[str, int]) -> int:
    """A shard size: bytes, or with a unit (``5GB``, ``500MB``, ``2GiB``, ``1.5G``). Decimal
    units as mlx-lm's ``_parse_size`` (G = 10**9); binary ones with ``i``.

    >>> parse_size("5GiB"), parse_size("2GB"), parse_size(1024)
    (5368709120, 2000000000, 1024)
    """
    if isinstance(text, int):
        n = text
    else:
        units = {"": 1, "K": 10**3, "KB": 10**3, "M": 10**6, "MB": 10**6, "G": 10**9,
                 "GB": 10**9, "T": 10**12, "TB": 10**12, "KIB": 1 << 10, "MIB": 1 << 20,
                 "GIB": 1 << 30, "TIB": 1 << 40}
        s = str(text).strip()
        i = 0
        while i < len(s) and (s[i].isdigit() or s[i] == "."):
            i += 1
        unit = s[i:].strip().upper()
        try:
            value = float(s[:i])
        except ValueError:
            value = -1
        if unit not in units or value < 0:
            raise InvalidArgumentError(
                f"cannot read size {text!r}; give bytes or a number with a unit such as "
                "5GB, 500MB or 2GiB")
        n = int(value * units[unit])
    if n <= 0:
        raise InvalidArgumentError(f"the shard size must be positive, got {text!r}")
    return n


# ---- sources --------------------------------------------------------------------------------

class _Sources:
    """Every input tensor, by name, read on demand with pread (never mapped)."""

    def __init__(self, src: Path):
        if not os.path.lexists(src / _INDEX) and not glob.glob(str(src / MODEL_PATTERN)):
            _refuse_other_weights(src)
        self._scratch: np.ndarray | None = None
        self._shards = open_shards(src, SafetensorsReader)
        self.readers: list[SafetensorsReader] = self._shards.handles
        self.where: dict[str, SafetensorsReader] = self._shards.where

    def spec(self, name: str) -> _Spec:
        r = self.where[name]
        return _Spec(r.info(name).shape, r.dtype(name))

    def read(self, name: str, out: np.ndarray | None = None) -> np.ndarray:
        return self.where[name].read(name, out)

    def read_scratch(self, name: str) -> np.ndarray:
        """The tensor read into a buffer reused from call to call: valid only until the
        next call. A fresh buffer costs a page fault per 4 KiB on first touch, which made
        reading the dominant cost of a conversion; one reused buffer (as large as the
        largest tensor, inside the memory bound) is faulted in once."""
        r = self.where[name]
        info = r.info(name)
        if self._scratch is None or self._scratch.nbytes < info.nbytes:
            self._scratch = None
            self._scratch = np.empty(info.nbytes, np.uint8)
        view = self._scratch[: info.nbytes].view(r.dtype(name)).reshape(info.shape)
        return r.read(name, view)

    def nbytes(self, name: str) -> int:
        return self.where[name].info(name).nbytes

    def close(self) -> None:
        self._shards.close()


def _refuse_other_weights(src: Path) -> None:
    names = sorted(os.listdir(src))
    pickles = [n for n in names if n.endswith(_PICKLE_SUFFIXES)]
    if pickles:
        raise FormatError(
            f"{src}: weights are in pickle files ({', '.join(pickles[:3])}); mlxq refuses "
            "them because unpickling runs arbitrary code. Convert them to safetensors first "
            "(e.g. transformers' save_pretrained(..., safe_serialization=True))")
    other = [n for n in names if n.endswith(".safetensors")]
    if other:
        raise FormatError(
            f"{src}: no model*.safetensors ({', '.join(other[:3])} found); mlx-lm reads only "
            "files named model*.safetensors, so mlxq does too. Rename them")
    raise MissingKeyError(f"{src}: no model*.safetensors files")


# ---- the plan -------------------------------------------------------------------------------

@dataclasses.dataclass
class _Base:
    """A tensor after sanitize (and any external-format transform), before cast."""

    spec: _Spec
    load: Callable[[], np.ndarray]
    src_bytes: int
    # like load, but the result may live in a reused buffer: use it before the next read
    load_transient: Optional[Callable[[], np.ndarray]] = None
    # rows [start, start + len(out)) of the tensor as 2-D, into out; None when the source
    # can only be read whole (an external format's transform)
    read_rows: Optional[Callable[[int, np.ndarray], np.ndarray]] = None

    def transient(self) -> np.ndarray:
        return (self.load_transient or self.load)()


@dataclasses.dataclass
class _Unit:
    """One computation and the output tensors it makes (a quantized layer makes 2-3)."""

    outputs: list[tuple[str, _Spec]]
    compute: Callable[[], dict[str, np.ndarray]]
    kind: str  # copy | quantize | dequantize


class _Parts:
    """A tensor's bytes as consecutive blocks (arrays, any shape), made on demand."""

    def __init__(self, blocks: Iterable[np.ndarray]):
        self.blocks = blocks


def _is_float(dt: np.dtype) -> bool:
    return dt.kind == "f" or dt == np.dtype(bfloat16)


def _cast(arr: np.ndarray, target: np.dtype | None) -> np.ndarray:
    if target is None or not _is_float(arr.dtype) or arr.dtype == target:
        return arr
    return astype(arr, target)


def _quant_shapes(shape: tuple[int, ...], gs: int, bits: int, mode: str,
                  dt: np.dtype) -> list[tuple[str, _Spec]]:
    lead, cols = shape[:-1], shape[-1]
    sdt = dt if mode == "affine" else np.dtype(np.uint8)
    out = [("weight", _Spec(lead + (cols * bits // 32,), np.dtype(np.uint32))),
           ("scales", _Spec(lead + (cols // gs,), sdt))]
    if mode == "affine":
        out.append(("biases", _Spec(lead + (cols // gs,), sdt)))
    return out


def _layer_params(entry: Any, glob_gs: int, glob_bits: int, glob_mode: str
                  ) -> tuple[int, int, str]:
    """(group_size, bits, mode) of a per-layer entry as nn.quantize applies it: the dict
    goes to ``to_quantized`` verbatim, so no ``mode`` means affine (whatever the global
    mode) and missing or null fields fall back to that mode's defaults."""
    if isinstance(entry, Mapping):
        mode = entry.get("mode") or "affine"
        dgs, dbits = _MODE_DEFAULTS.get(mode, (glob_gs, glob_bits))
        return int(entry.get("group_size") or dgs), int(entry.get("bits") or dbits), mode
    return glob_gs, glob_bits, glob_mode


class _Plan:
    def __init__(self, src: Path, dst: Path, *, quantize: bool, q_group_size: Optional[int],
                 q_bits: Optional[int], q_mode: str, quant_predicate: Optional[str],
                 dtype: Optional[str], dequantize: bool, max_shard_size: int,
                 report: bool, warn: Callable[[str], None], allow_requantize: bool = False):
        self.src, self.dst = src, dst
        self.report = report
        self.allow_requantize = allow_requantize
        self.requantized: list = []  # GPTQ act-order layers re-quantized (RequantizeReport)
        self.config = load_config(src)
        self.sources = _Sources(src)
        try:
            self._build(quantize, q_group_size, q_bits, q_mode, quant_predicate, dtype,
                        dequantize, max_shard_size, warn)
        except BaseException:
            self.sources.close()
            raise

    # -- building ------------------------------------------------------------------------

    def _build(self, quantize_: bool, q_group_size: Optional[int], q_bits: Optional[int],
               q_mode: str, quant_predicate: Optional[str], dtype: Optional[str],
               dequantize_: bool, max_shard_size: int, warn: Callable[[str], None]) -> None:
        config = self.config
        src = self.sources
        self.arch = architectures.architecture_for(config)
        if not self.arch.exact:
            warn(f"model_type {config.get('model_type')!r} is not one mlxq knows "
                 f"({', '.join(architectures.known_model_types())}): no sanitize step, "
                 "natural-sort parameter order and the linear_like rule for what to "
                 "quantize; the result may differ from mlx_lm.convert's")

        base: dict[str, _Base] = {}
        block = config.get("quantization")
        text = config.get("text_config")
        qc = config.get("quantization_config",
                        text.get("quantization_config") if isinstance(text, Mapping) else None)
        # mlx-lm's load_model reads a truthy quantization_config when there is no
        # quantization block: anything there is another tool's format or an error
        if block is None and qc:
            self._external(qc, base, warn)
            block = config.get("quantization")
        else:
            names = list(src.where)
            plan = self.arch.sanitize(names, config)
            for out, name in plan.copy.items():
                base[out] = _Base(src.spec(name), (lambda n=name: src.read(n)), src.nbytes(name),
                                  (lambda n=name: src.read_scratch(n)),
                                  (lambda r0, o, n=name: src.where[n].read_rows(n, r0, o)))
            for out, names_ in plan.stack.items():
                first = src.spec(names_[0])
                for n in names_[1:]:
                    if src.spec(n) != first:
                        raise FormatError(f"{out}: experts differ in shape or dtype "
                                          f"({names_[0]} {list(first.shape)} {first.dtype}, "
                                          f"{n} {list(src.spec(n).shape)} {src.spec(n).dtype})",
                                          key=out)
                spec = _Spec((len(names_),) + first.shape, first.dtype)
                base[out] = _Base(spec, (lambda ns=names_, sp=spec: self._stack(ns, sp)),
                                  sum(src.nbytes(n) for n in names_),
                                  read_rows=(lambda r0, o, ns=names_, sp=first:
                                             self._stack_rows(ns, sp, r0, o)))
        if block is not None and not isinstance(block, Mapping):
            raise ParseError(f"config.json: 'quantization' must be an object, got {block!r}")

        # dtype: mlx-lm's convert: --dtype, else torch_dtype, else text_config.dtype
        if dtype is not None and dtype not in CONVERSION_DTYPES:
            raise UnknownEnumValueError(f"dtype {dtype!r}; expected one of "
                                        f"{', '.join(CONVERSION_DTYPES)}")
        if dtype is None:
            dtype = config.get("torch_dtype")
        if dtype is None and isinstance(config.get("text_config"), Mapping):
            dtype = config["text_config"].get("dtype")
        self.dtype_name = dtype if dtype in CONVERSION_DTYPES else None
        self.cast_to = _NP_DTYPE.get(self.dtype_name) if self.dtype_name else None

        def cast_spec(s: _Spec) -> _Spec:
            if self.cast_to is not None and _is_float(s.dtype):
                return _Spec(s.shape, self.cast_to)
            return s

        # which layers are quantized already (MLX layout: P.weight + P.scales), verified
        stored = stored_layers({n: b.spec for n, b in base.items()}, block,
                               lambda path: self.arch.in_features(path, config))
        block = dict(block) if block is not None else None
        units: dict[str, _Unit] = {}
        owner: dict[str, str] = {}  # base name consumed by a layer unit
        self.counts = {"quantize": 0, "kept": 0, "dequantize": 0}

        if dequantize_:
            for path in sorted(stored):
                w, s = base[path + ".weight"], base[path + ".scales"]
                b = base.get(path + ".biases")
                gs, bits, mode = stored[path].group_size, stored[path].bits, stored[path].mode
                sdt = cast_spec(s.spec).dtype
                out_dt = sdt if mode == "affine" else np.dtype(bfloat16)
                cols = w.spec.shape[-1] * 32 // bits
                gkey = path + ".global_scale"
                g = base.get(gkey)
                if g is not None:
                    out_dt = np.dtype(np.float32)
                spec = _Spec(w.spec.shape[:-1] + (cols,), out_dt)
                units[path + ".weight"] = _Unit(
                    [(path + ".weight", spec)],
                    (lambda w=w, s=s, b=b, g=g, gs=gs, bits=bits, mode=mode, path=path: {
                        path + ".weight": self._dequant(w, s, b, g, gs, bits, mode)}),
                    "dequantize")
                for k in (".weight", ".scales", ".biases", ".global_scale"):
                    if path + k in base:
                        owner[path + k] = path + ".weight"
                self.counts["dequantize"] += 1
            config.pop("quantization", None)
            config.pop("quantization_config", None)
        else:
            self.counts["kept"] = len(stored)

        if quantize_:
            if q_mode not in _MODE_DEFAULTS:
                raise UnknownEnumValueError(f"q_mode {q_mode!r}; expected one of "
                                            f"{', '.join(_MODE_DEFAULTS)}")
            gs, bits = _MODE_DEFAULTS[q_mode]
            gs, bits = q_group_size or gs, q_bits or bits
            params = {"group_size": gs, "bits": bits, "mode": q_mode}
            fine_grained = block is not None and not dequantize_
            if not fine_grained:
                block = dict(params)
            # in mlx-lm's module order: nn.quantize records per-layer entries as it walks
            # the model, and json.dump keeps that order inside the block
            candidates = {n: base[n] for n in sorted(base, key=self.arch.order_key)
                          if n.endswith(".weight") and n[: -len(".weight")] not in stored}
            if quant_predicate is not None:
                from .recipes import layer_layout, recipe
                rec = recipe(quant_predicate)
                location, layers = layer_layout({n: b.spec for n, b in base.items()})
                num_layers = int(config.get("num_hidden_layers") or layers or 0)
            for n, b in candidates.items():
                path = n[: -len(".weight")]
                spec = cast_spec(b.spec)
                if not linear_like(path, spec):
                    continue
                if spec.shape[-1] % gs != 0:
                    continue
                if quant_predicate is not None:
                    # the predicate records q_group_size as given (None when not), like
                    # mlx-lm's mixed_quant_predicate_builder
                    rb = rec.bits_for(path, num_layers=num_layers, layer_location=location)
                    entry: Any = {"group_size": q_group_size, "bits": rb, "mode": "affine"}
                else:
                    entry = self.arch.model_quant_override(path) or True
                if isinstance(entry, Mapping):
                    block[path] = dict(entry)
                elif fine_grained:
                    block[path] = dict(params)
                lgs, lbits, lmode = _layer_params(entry, gs, bits, q_mode)
                if spec.shape[-1] % lgs != 0:
                    raise InvalidArgumentError(
                        f"{path}: last axis {spec.shape[-1]} is not divisible by the layer's "
                        f"group size {lgs}", layer=path)
                outs = [(f"{path}.{leaf}", s)
                        for leaf, s in _quant_shapes(spec.shape, lgs, lbits, lmode, spec.dtype)]
                units[n] = _Unit(outs, (lambda b=b, path=path, g=lgs, k=lbits, m=lmode:
                                        self._quant(path, b, g, k, m)), "quantize")
                owner[n] = n
                self.counts["quantize"] += 1
            config["quantization"] = block

        # everything else is copied (cast when floating)
        for n, b in base.items():
            if n in owner:
                continue
            units[n] = _Unit([(n, cast_spec(b.spec))],
                             (lambda n=n, b=b: {n: self._copy(b)}), "copy")
            owner[n] = n

        # output order: mlx-lm's tree_flatten(model.parameters())
        outputs = [(name, spec, key) for key, u in units.items() for name, spec in u.outputs]
        outputs.sort(key=lambda t: self.arch.order_key(t[0]))
        names = [o[0] for o in outputs]
        self.arch.check_parameters(names, config)
        if len(set(names)) != len(names):
            dup = next(n for n in names if names.count(n) > 1)
            raise KeyCollisionError(f"two output tensors would be named {dup!r}", key=dup)
        self.units = units
        self.outputs = outputs
        self.base = base

        # shards: mlx-lm's make_shards
        shards: list[list[tuple[str, _Spec, str]]] = []
        size = 0
        for o in outputs:
            nb = o[1].nbytes
            if not shards or size + nb > max_shard_size:
                shards.append([])
                size = 0
            shards[-1].append(o)
            size += nb
        self.shards = shards
        self.total_size = sum(o[1].nbytes for o in outputs)
        qblock = config.get("quantization")
        self.total_parameters = _count_parameters(
            {n: int(np.prod(s.shape, dtype=np.int64)) for n, s, _ in outputs}, qblock)
        self.bytes_read = sum(b.src_bytes for b in base.values())
        self.config_out = config_text(config)

    def _external(self, qc: Mapping[str, Any], base: dict[str, _Base],
                  warn: Callable[[str], None]) -> Any:
        from . import external

        fmt = external.detect(dict(self.config))
        if fmt is None:  # pragma: no cover - the caller saw a quantization_config
            raise InvariantViolationError("quantization_config vanished")
        src = self.sources
        groups = fmt.group_keys(list(src.where))
        out_dtype = fmt.output_dtype({n: src.spec(n).dtype for n in src.where})
        # mlx-lm's load_model: AWQ/GPTQ get {"group_size", "bits"} (its
        # _transform_awq_weights' block, no mode); mxfp4 {"group_size", "bits", "mode"}
        block: dict[str, Any] = dict(fmt.quantization().to_dict())
        if fmt.name in ("awq", "gptq") and block.get("mode") == "affine":
            block.pop("mode")
        reserved = {"group_size", "bits", "mode", "quant_method", "linear_class",
                    "quantization_mode"}
        transformed: dict[str, tuple[int, _Spec]] = {}
        # A first pass runs each group's transform once to learn its outputs (names, dtypes,
        # shapes); the write pass runs it again. Groups are one layer each, so this costs
        # a second transform, never memory.
        for gi, group in enumerate(groups):
            out, plq = self._run_group(fmt, group, out_dtype, record=True)
            for name, arr in out.items():
                transformed[name] = (gi, _Spec(tuple(arr.shape), arr.dtype))
            if plq is not None:
                for k, v in plq.to_dict().items():
                    if k not in reserved:
                        block[k] = v  # a layer the transform gave its own parameters
            del out
        self.config["quantization"] = block
        cache: dict[str, Any] = {}

        def load(name: str, gi: int) -> np.ndarray:
            if cache.get("gi") != gi:
                cache.clear()
                cache["gi"] = gi
                cache["out"], _ = self._run_group(fmt, groups[gi], out_dtype)
            return cache["out"][name]

        plan = self.arch.sanitize(list(transformed), self.config)
        for out, name in plan.copy.items():
            gi, spec = transformed[name]
            base[out] = _Base(spec, (lambda n=name, g=gi: load(n, g)),
                              sum(src.nbytes(k) for k in groups[gi]) if len(groups[gi]) == 1
                              or name.endswith(".weight") else 0)
        for out, names_ in plan.stack.items():
            first = transformed[names_[0]][1]
            spec = _Spec((len(names_),) + first.shape, first.dtype)

            def stacked(ns=names_, sp=spec) -> np.ndarray:
                arr = np.empty(sp.shape, sp.dtype)
                for i, n in enumerate(ns):
                    arr[i] = load(n, transformed[n][0])
                return arr
            base[out] = _Base(spec, stacked, 0)
        return fmt

    def _run_group(self, fmt: Any, group: Sequence[str], out_dtype: Any,
                   record: bool = False) -> tuple[dict, Any]:
        arrays = {n: self.sources.read(n) for n in group}
        with warnings.catch_warnings():
            # the requantize warning is reported once, in the summary, not per pass
            warnings.simplefilter("ignore", RuntimeWarning)
            return fmt.transform(arrays, out_dtype=out_dtype,
                                 allow_requantize=self.allow_requantize,
                                 report=self.requantized if record else None)

    # -- computing ---------------------------------------------------------------------------

    def _stack(self, names: Sequence[str], spec: _Spec) -> np.ndarray:
        arr = np.empty(spec.shape, spec.dtype)
        for i, n in enumerate(names):
            self.sources.read(n, out=arr[i])
        return arr

    # Quantization works row by row (groups never cross rows), so a large weight is read
    # and quantized in blocks of about this many bytes, into whole output arrays: the
    # result is identical and the source is never in memory at once.
    BLOCK_BYTES = 16 << 20

    def _quant(self, path: str, b: _Base, gs: int, bits: int, mode: str) -> dict[str, np.ndarray]:
        shape = b.spec.shape
        cols = shape[-1]
        rows = int(np.prod(shape[:-1], dtype=np.int64))
        step = max(1, self.BLOCK_BYTES // max(cols * b.spec.dtype.itemsize, 1))
        sums = _Sums()
        try:
            if b.read_rows is None or rows <= step:
                src = b.transient()
                parts = self._quant_block(src, gs, bits, mode, sums)
            else:
                outs = [np.empty((rows, s.shape[-1]), s.dtype) for _, s in
                        _quant_shapes(shape, gs, bits, mode, self.cast_to
                                      if self.cast_to is not None and _is_float(b.spec.dtype)
                                      else b.spec.dtype)]
                buf = np.empty((step, cols), b.spec.dtype)
                for r0 in range(0, rows, step):
                    n = min(step, rows - r0)
                    block = b.read_rows(r0, buf[:n])
                    for o, p in zip(outs, self._quant_block(block, gs, bits, mode, sums)):
                        o[r0:r0 + n] = p
                del buf
                parts = [o.reshape(shape[:-1] + o.shape[-1:]) for o in outs]
        except MlxqError as e:
            if e.layer is None:
                raise type(e)(str(e), layer=path) from None
            raise
        out = {f"{path}.weight": parts[0], f"{path}.scales": parts[1]}
        if mode == "affine":
            out[f"{path}.biases"] = parts[2]
        if self.report:
            self.layer_errors.append((path, gs, bits, mode, sums))
        return out

    def _copy(self, b: _Base) -> "np.ndarray | _Parts":
        """A tensor copied (cast when floating), in row blocks when it is large: the parts
        go to the writer one by one, so neither the source nor the result is ever whole."""
        shape = b.spec.shape
        cols = shape[-1] if shape else 1
        rows = int(np.prod(shape[:-1], dtype=np.int64)) if shape else 1
        step = max(1, self.BLOCK_BYTES // max(cols * b.spec.dtype.itemsize, 1))
        if b.read_rows is None or len(shape) < 2 or rows <= step:
            return _cast(b.load(), self.cast_to)

        def parts():
            for r0 in range(0, rows, step):
                n = min(step, rows - r0)
                yield _cast(b.read_rows(r0, np.empty((n, cols), b.spec.dtype)), self.cast_to)
        return _Parts(parts())

    def _quant_block(self, src: np.ndarray, gs: int, bits: int, mode: str,
                     sums: _Sums) -> tuple[np.ndarray, ...]:
        w = _cast(src, self.cast_to)
        parts = quantize(w, group_size=gs, bits=bits, mode=mode)
        if self.report:
            sums.merge(_error_sums(src, parts[0], parts[1], parts[2] if mode == "affine"
                                   else None, gs, bits, mode, None))
        return parts

    def _stack_rows(self, names: Sequence[str], spec: _Spec, start: int,
                    out: np.ndarray) -> np.ndarray:
        """Rows of the stacked [experts, out, in] tensor as 2-D, from the experts' files."""
        per = int(np.prod(spec.shape[:-1], dtype=np.int64))
        done = 0
        while done < out.shape[0]:
            r = start + done
            e, local = divmod(r, per)
            n = min(per - local, out.shape[0] - done)
            self.sources.where[names[e]].read_rows(names[e], local, out[done:done + n])
            done += n
        return out

    def _dequant(self, w: _Base, s: _Base, b: _Base | None, g: _Base | None, gs: int,
                 bits: int, mode: str) -> np.ndarray:
        scales = _cast(s.load(), self.cast_to)
        biases = _cast(b.load(), self.cast_to) if b is not None else None
        gscale = None
        if g is not None:
            gscale = float(np.asarray(g.load(), np.float32).reshape(-1)[0])
        return dequantize(w.load(), scales, biases, group_size=gs, bits=bits, mode=mode,
                          global_scale=gscale)

    layer_errors: list

    def execute(self, tmp: Path, progress: Progress) -> tuple[int, int]:
        """Writes every shard into ``tmp``; returns (tensors, bytes) written.

        Reading and computing happen here; writing (pwrite into the page cache, then the
        shard's fsync at commit) happens on a second thread, so the two overlap. Arrays
        handed to it are never reused (copy units read into fresh buffers), and the bytes
        in flight are bounded so the overlap cannot grow memory past the bound."""
        self.layer_errors = []
        remaining: dict[str, int] = {k: len(u.outputs) for k, u in self.units.items()}
        cache: dict[str, dict[str, np.ndarray]] = {}
        files = shard_file_names(len(self.shards))
        done_items = done_bytes = 0
        weight_map: dict[str, str] = {}
        # a whole tensor larger than this waits for the queue to drain, then goes alone
        with _BackgroundWriter(64 << 20) as bg:
            for shard, fname in zip(self.shards, files):
                specs = [(n, s.dtype, s.shape) for n, s, _ in shard]
                writer = SafetensorsWriter(tmp / fname, specs, {"format": "mlx"})
                bg.own(writer)
                for name, spec, key in shard:
                    if key not in cache:
                        cache[key] = self.units[key].compute()
                    arr = cache[key].pop(name)
                    if isinstance(arr, _Parts):
                        offset = 0
                        for block in arr.blocks:
                            bg.put(writer, name, block, offset)
                            offset += block.nbytes
                            del block
                    else:
                        bg.put(writer, name, arr)
                    del arr
                    remaining[key] -= 1
                    if remaining[key] == 0:
                        del cache[key]
                    weight_map[name] = fname
                    done_items += 1
                    done_bytes += spec.nbytes
                    progress.update(done_items, done_bytes)
                bg.commit(writer)
        index = {"metadata": {"total_size": self.total_size,
                              "total_parameters": self.total_parameters},
                 "weight_map": {k: weight_map[k] for k in sorted(weight_map)}}
        (tmp / INDEX_FILE).write_text(json.dumps(index, indent=4), encoding="utf-8")
        (tmp / "config.json").write_text(self.config_out, encoding="utf-8")
        return done_items, done_bytes


class _Stopped(Exception):
    """The producer failed: the writer thread skips what is still queued."""


class _BackgroundWriter:
    """One thread that runs SafetensorsWriter.put/commit calls in submission order. The
    producer blocks while more than ``limit`` bytes wait; the first error is raised in the
    producer at its next call (or on exit), and on any error every writer it owns is
    aborted (their temporary files removed)."""

    def __init__(self, limit: int):
        import queue
        import threading

        self._q: "queue.Queue[Any]" = queue.Queue()
        self._limit = limit
        self._pending = 0
        self._cv = threading.Condition()
        self._error: BaseException | None = None
        self._writers: list[SafetensorsWriter] = []
        self._thread = threading.Thread(target=self._run, name="mlxq-writer", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            job = self._q.get()
            if job is None:
                return
            op, writer, name, arr, offset = job
            try:
                if self._error is None:
                    if op == "put":
                        if offset is None:
                            writer.put(name, arr)
                        else:
                            writer.put_part(name, offset, arr)
                    else:
                        writer.commit()
            except BaseException as e:  # handed to the producer
                self._error = e
            finally:
                with self._cv:
                    self._pending -= arr.nbytes if arr is not None else 0
                    self._cv.notify_all()
                del arr, job

    def _check(self) -> None:
        if self._error is not None:
            raise self._error

    def own(self, writer: SafetensorsWriter) -> None:
        self._writers.append(writer)

    def put(self, writer: SafetensorsWriter, name: str, arr: np.ndarray,
            offset: Optional[int] = None) -> None:
        with self._cv:
            while self._pending and self._pending + arr.nbytes > self._limit \
                    and self._error is None:
                self._cv.wait()
            self._check()
            self._pending += arr.nbytes
        self._q.put(("put", writer, name, arr, offset))

    def commit(self, writer: SafetensorsWriter) -> None:
        self._check()
        self._q.put(("commit", writer, None, None, None))

    def __enter__(self) -> "_BackgroundWriter":
        return self

    def __exit__(self, exc_type: Any, *_: Any) -> None:
        if exc_type is not None and self._error is None:
            self._error = _Stopped()  # later jobs are skipped
        self._q.put(None)
        self._thread.join()
        if exc_type is not None or self._error is not None:
            for w in self._writers:
                w.abort()
        if exc_type is None:
            self._check()


def _inside(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def _side_file_roots(src: Path) -> list[str]:
    """Where a side file's symlink may lead: inside SRC, or, when SRC is a Hugging Face
    cache snapshot (``.../models--ORG--NAME/snapshots/REV``), that repo's ``blobs`` folder,
    where the cache keeps the files its snapshot links to."""
    real = os.path.realpath(src)
    roots = [real]
    if os.path.basename(os.path.dirname(real)) == "snapshots":
        roots.append(os.path.join(os.path.dirname(os.path.dirname(real)), "blobs"))
    return roots


def _copy_side_files(src: Path, tmp: Path, warn: Callable[[str], None]) -> list[str]:
    """Copies the tokenizer files, ``*.py`` and ``generation_config.json`` (mlx-lm's set).
    A symlink leading outside SRC is not followed (its target could be any file on this
    machine, such as ``/etc/hostname``, which would then travel with the model), nor is
    anything that is not a regular file; both are skipped with a warning."""
    copied = []
    roots = _side_file_roots(src)
    for pattern in _TOKENIZER_PATTERNS + _COPY_PATTERNS:
        for f in sorted(glob.glob(str(src / pattern))):
            name = os.path.basename(f)
            if name in ("config.json",) or (tmp / name).exists():
                continue
            if os.path.islink(f):
                target = os.path.realpath(f)
                if not any(_inside(target, r) for r in roots):
                    warn(f"{f} is a symlink to {target}, outside {src}: not copied (mlxq "
                         "copies only files inside the source folder)")
                    continue
            try:
                data = read_bytes(f)
            except MlxqIOError as e:
                if "not a regular file" not in str(e):
                    raise
                warn(f"{e}: not copied")
                continue
            (tmp / name).write_bytes(data)
            copied.append(name)
    return copied


# mlx-lm's create_model_card for a local source: huggingface_hub's template card with
# library_name mlx, the text-generation pipeline tag and the mlx tag, and an empty body.
_MODEL_CARD = """---
language: en
library_name: mlx
pipeline_tag: text-generation
tags:
- mlx
---
"""


def convert(src: PathLike, dst: PathLike, *, quantize: bool = False,
            q_group_size: Optional[int] = None, q_bits: Optional[int] = None,
            q_mode: str = "affine", quant_predicate: Optional[str] = None,
            dtype: Optional[str] = None, dequantize: bool = False,
            max_shard_size: Union[int, str] = DEFAULT_MAX_SHARD_SIZE, report: bool = False,
            quiet: bool = False, stream: TextIO | None = None,
            allow_requantize: bool = False) -> ConvertResult:
    """Converts the Hugging Face (or MLX, AWQ, GPTQ, MXFP4) checkpoint folder ``src`` into
    an MLX checkpoint folder ``dst``, like ``mlx_lm.convert(src, dst, ...)``.

    Args mirror ``mlx_lm.convert``: ``quantize`` (``-q``), ``q_group_size``, ``q_bits``,
    ``q_mode``, ``quant_predicate`` (a recipe name), ``dtype``, ``dequantize`` (``-d``);
    plus ``max_shard_size`` (bytes or ``"5GB"``), ``report`` (collect per-layer
    quantization error against the source weights), ``quiet`` (no progress bar or
    warnings on ``stream``, stderr by default), ``allow_requantize`` (GPTQ layers with an
    act-order ``g_idx`` are dequantized and re-quantized to MLX affine instead of refused;
    the added error is in ``result.requantized``).

    Raises:
        InvalidArgumentError: ``dst`` exists, ``src`` is not a folder, both ``quantize`` and
            ``dequantize``, a recipe with a non-affine mode.
        FormatError / SafetensorsError / ParseError: unreadable inputs (pickles are
            refused); MissingKeyError: no config.json or no weights.
        UnknownEnumValueError: a mode, recipe, dtype or quant_method mlxq does not know.
        Errors of the kernels, with ``.layer`` set to the layer being quantized.
    """
    t0 = time.monotonic()
    src_p, dst_p = Path(os.fspath(src)), Path(os.fspath(dst))
    out = stream if stream is not None else sys.stderr
    if os.path.lexists(dst_p):
        raise InvalidArgumentError(
            f"cannot save to {dst_p}: it already exists. Delete it or choose a new path "
            "(mlxq never writes into an existing folder)")
    if not os.path.lexists(src_p):
        raise InvalidArgumentError(f"{src_p}: does not exist (give a checkpoint folder with "
                                   "config.json and model*.safetensors)")
    if not src_p.is_dir():
        raise InvalidArgumentError(f"{src_p}: not a folder (give a checkpoint folder with "
                                   "config.json and model*.safetensors)")
    for parent in dst_p.parents:
        if os.path.lexists(parent):
            if not parent.is_dir():
                raise MlxqIOError(f"{parent}: not a folder, so {dst_p} cannot be created in it")
            break
    if dst_p.resolve().is_relative_to(src_p.resolve()):
        raise InvalidArgumentError(f"cannot save to {dst_p}: it is inside the source folder "
                                   f"{src_p}, which mlxq only reads")
    if quantize and dequantize:
        raise InvalidArgumentError("choose either quantize or dequantize, not both")
    if quant_predicate is not None:
        if quant_predicate not in QUANT_RECIPES:
            raise UnknownEnumValueError(f"quant_predicate {quant_predicate!r}; expected one of "
                                        f"{', '.join(QUANT_RECIPES)}")
        if q_mode != "affine":
            raise InvalidArgumentError("quant predicates (mixed recipes) only support "
                                       "'affine' quantization")
        if not quantize:
            raise InvalidArgumentError("a quant predicate needs quantize=True (-q)")
    shard = parse_size(max_shard_size)

    def warn(msg: str) -> None:
        if not quiet:
            print(f"warning: {msg}", file=out)

    plan = _Plan(src_p, dst_p, quantize=quantize, q_group_size=q_group_size, q_bits=q_bits,
                 q_mode=q_mode, quant_predicate=quant_predicate, dtype=dtype,
                 dequantize=dequantize, max_shard_size=shard, report=report, warn=warn,
                 allow_requantize=allow_requantize)
    try:
        if not quiet and plan.counts["kept"] and quantize:
            warn(f"{plan.counts['kept']} layers are already quantized and are kept as they "
                 "are (as mlx_lm.convert does); dequantize first (-d) to re-quantize them")
        staging = StagingDir(dst_p)
        with staging as tmp:
            for r in staging.removed:
                warn(f"removed {r}, left by an earlier run that was killed")
            progress = Progress(len(plan.outputs), plan.total_size, stream=out, quiet=quiet)
            try:
                tensors, written = plan.execute(tmp, progress)
                _copy_side_files(src_p, tmp, warn)
                (tmp / "README.md").write_text(_MODEL_CARD, encoding="utf-8")
            finally:
                progress.close()
    finally:
        plan.sources.close()

    reports = [LayerReport(p, gs, bits, mode, sums.result())
               for p, gs, bits, mode, sums in plan.layer_errors]
    total = None
    if reports:
        acc = _Sums()
        for *_, sums in plan.layer_errors:
            acc.merge(sums)
        total = acc.result()
    return ConvertResult(
        dst=str(dst_p), tensors=tensors, quantized_layers=plan.counts["quantize"],
        kept_quantized_layers=plan.counts["kept"] if not dequantize else 0,
        dequantized_layers=plan.counts["dequantize"],
        bits_per_weight=plan.total_size * 8 / max(plan.total_parameters, 1),
        bytes_read=plan.bytes_read, bytes_written=written, seconds=time.monotonic() - t0,
        architecture=plan.arch.name, report=reports, report_total=total,
        requantized=list(plan.requantized))
