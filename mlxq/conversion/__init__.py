"""Convert a Hugging Face checkpoint folder into an MLX one, as ``mlx_lm.convert`` does,
tensor by tensor.

``mlx_lm.convert`` loads the whole model, casts, quantizes and saves it. :func:`convert`
produces the same folder (the same tensors bit for bit, the same ``config.json``, shard
names and index) without MLX and without holding the model. The concerns live apart:

- :mod:`.options`: what a conversion is asked to do;
- :mod:`.source`: the source folder (config, shards and the index rule, lazy tensors);
- :mod:`mlxq.models`: each family's ``sanitize`` and rules, over lazy tensors;
- :mod:`.graph`: the lazy tensors, evaluated in row blocks;
- :mod:`.plan`: the whole output worked out from headers (names, dtypes, shapes, order,
  shards, config) before any data is read;
- :mod:`.execute`: each output computed in row blocks;
- :mod:`.write`: shards written at their places on a background thread, the index,
  config and side files; :mod:`mlxq.staging`: the folder appears whole or not at all.

Peak memory is about two row blocks plus whatever a non-streaming operation needs (at most
about two source tensors), whatever the model size.

Warnings (a request that did nothing, layers kept as they are, a side file not copied) are
issued with :mod:`warnings` as :class:`~mlxq.errors.MlxqWarning`; what the conversion is
doing goes to the ``mlxq`` logger (:mod:`logging`, level INFO).

>>> import os, tempfile, mlxq
>>> from mlxq.synthetic import make_checkpoint
>>> tmp = tempfile.TemporaryDirectory()
>>> src = make_checkpoint(os.path.join(tmp.name, "hf"), layers=2, hidden=64,
...                       intermediate=128, vocab=64)
>>> result = convert(src, os.path.join(tmp.name, "mlx"), quantize=True, quiet=True)
>>> result.quantized_layers, round(result.bits_per_weight, 3)
(16, 4.545)
>>> mlxq.parse_quantization(os.path.join(tmp.name, "mlx", "config.json")).quantization
Quantization(group_size=64, bits=4, mode=<QuantMode.AFFINE: 'affine'>)
>>> tmp.cleanup()
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import shutil
import sys
import time
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator, Optional, TextIO, Union

from .._argnames import arg
from .._progress import human_bytes, human_time
from ..errors import ArgumentTypeError, InvalidArgumentError, MlxqError, MlxqIOError
from ..errors import MlxqWarning, OutOfRangeError
from ..errors import UnknownEnumValueError
from .options import CONVERSION_DTYPES, MODE_DEFAULTS, QUANT_RECIPES, Options, QuantPredicate

if TYPE_CHECKING:
    from ..metrics import QuantError

# Everything that touches arrays (numpy, ml_dtypes, the model families) is imported inside
# convert(): importing this package, as `mlxq --help` does for the choices above, stays
# light.

__all__ = ["CONVERSION_DTYPES", "QUANT_RECIPES", "ConvertResult", "LayerReport", "convert",
           "parse_size"]

PathLike = Union[str, "os.PathLike[str]"]

log = logging.getLogger(__name__)

#: What the external formats' layers become, for the summary.
_FORMAT_NAMES = {"awq": "AWQ", "gptq": "GPTQ", "mxfp4": "MXFP4",
                 "compressed-tensors": "compressed-tensors", "gguf": "GGUF"}


def _source_format(source: Any) -> Optional[str]:
    """The other producer's quantized format the source's layers come in, if any: AWQ,
    GPTQ or MXFP4 (mlxq.formats.external), or compressed-tensors' packed INT layers, which the
    converter keeps as MLX layers (mlxq.conversion.prequant)."""
    if getattr(source, "external", None) is not None:
        return source.external.name
    if getattr(source, "source_format", None) is not None:
        return source.source_format
    qc = source.quantization_config() if hasattr(source, "quantization_config") else None
    method = qc.get("quant_method") if isinstance(qc, dict) else None
    return "compressed-tensors" if method == "compressed-tensors" else None


def __getattr__(name: str) -> Any:
    if name == "parse_size":
        from .write import parse_size

        return parse_size
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _device_line(device: str) -> str:
    """Which of MLX's devices the conversion's arithmetic is, for the summary."""
    if device == "gpu":
        return ("device gpu: the arithmetic of MLX's GPU (Metal) kernels, what mlx_lm.convert "
                "writes on Apple silicon")
    return ("device cpu: the arithmetic of MLX's CPU backend, what mlx[cpu] writes (on Apple "
            "silicon mlx_lm.convert uses the GPU: --device gpu)")


def _count(n: int, noun: str) -> str:
    """``1 layer``, ``2 layers``."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


# ---- results -------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class LayerReport:
    """Quantization error of one layer against its source weight (``--report``)."""

    layer: str
    group_size: int
    bits: int
    mode: str
    error: "QuantError"


@dataclasses.dataclass
class ConvertResult:
    """What :func:`convert` did."""

    dst: str
    tensors: int                 # tensors written
    quantized_layers: int        # layers quantized by this run from dense weights
    kept_quantized_layers: int   # MLX-quantized layers of the source, kept as they are
    dequantized_layers: int
    bits_per_weight: float       # mlx-lm's compute_bits_per_weight of the result
    bytes_read: int
    bytes_written: int
    seconds: float
    architecture: str
    report: list[LayerReport] = dataclasses.field(default_factory=list)
    report_total: Optional["QuantError"] = None
    requantized: list = dataclasses.field(default_factory=list)  # gptq.RequantizeReport
    #: layers of another producer's format (AWQ, GPTQ, MXFP4) rewritten into MLX's layout
    #: without changing their values; act-order GPTQ layers are in ``requantized`` instead
    repacked_layers: int = 0
    #: the other producer's format of the source (``"awq"``, ``"gptq"``, ``"mxfp4"``)
    source_format: Optional[str] = None
    #: whether quantizing was asked for (``quantize=True``, ``-q``)
    quantize: bool = False
    allocation: Optional[Any] = None  # target_bpw: conversion.quality.Allocation
    source_peak_bytes: Optional[int] = None  # from the Hub: most source bytes on disk at once
    #: FP8 weights of the source made dense (mlx-lm dequantizes them with or without -d)
    fp8_dequantized: int = 0
    #: from a GGUF file: what became of each of its tensors
    #: (:class:`mlxq.conversion.gguf_source.GgufTensorReport`)
    gguf_tensors: list = dataclasses.field(default_factory=list)
    #: whose quantization arithmetic: "gpu" (MLX's Metal kernels) or "cpu" (its CPU backend)
    device: str = "gpu"

    def summary(self) -> str:
        """What was written, how fast, and what happened to the layers.

        The throughput is by bytes written, the figure the progress bar counts."""
        rate = self.bytes_written / self.seconds if self.seconds > 0 else 0.0
        lines = [
            f"wrote {self.dst}: {_count(self.tensors, 'tensor')} in "
            f"{human_time(self.seconds)} ({self.seconds:.2f} s, {human_bytes(rate)}/s written)",
            f"  size {human_bytes(self.bytes_read)} read -> {human_bytes(self.bytes_written)} "
            f"written, {self.bits_per_weight:.3f} bits per weight",
        ]
        fmt = _FORMAT_NAMES.get(self.source_format or "", self.source_format)
        parts = []
        if self.quantize or self.quantized_layers:
            parts.append(f"{_count(self.quantized_layers, 'layer')} quantized")
        if self.repacked_layers:
            parts.append(f"{_count(self.repacked_layers, 'layer')} repacked ({fmt} -> MLX, "
                         "values unchanged)")
        if self.requantized:
            why = "from GGUF blocks MLX cannot hold" if self.source_format == "gguf" else \
                "act-order GPTQ"
            parts.append(f"{_count(len(self.requantized), 'layer')} re-quantized ({why})")
        if self.kept_quantized_layers:
            parts.append(f"{_count(self.kept_quantized_layers, 'already quantized layer')} "
                         "kept")
        if self.dequantized_layers:
            parts.append(f"{_count(self.dequantized_layers, 'layer')} dequantized")
        if self.fp8_dequantized:
            parts.append(f"{_count(self.fp8_dequantized, 'FP8 weight')} dequantized")
        if parts:
            lines.append("  " + ", ".join(parts))
        lines.extend(_gguf_lines(self.gguf_tensors))
        if self.quantized_layers or self.dequantized_layers or self.requantized:
            lines.append("  " + _device_line(self.device))
        if self.source_peak_bytes is not None:
            lines.append(f"  source shards on disk at most {human_bytes(self.source_peak_bytes)} "
                         "at once (downloaded, converted, deleted)")
        if self.allocation is not None:
            a = self.allocation
            lines.append(f"  {arg('target_bpw', a.target)}: {a.mix()}; "
                         f"{a.bits_per_weight:.3f} bits per weight")
        for r in self.requantized:
            why = f"{r.source_type} -> MLX" if hasattr(r, "source_type") else "act-order GPTQ"
            lines.append(f"  re-quantized ({why}) {r.layer}: {r.error}")
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


# ---- checks of the arguments -----------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class GgufRequantized:
    """A GGUF tensor of a block type MLX cannot hold (or asked to be quantized differently),
    dequantized and quantized again: the error it added against the GGUF's values."""

    layer: str
    source_type: str      # the ggml type (``"Q4_K"``)
    error: "QuantError"


def _gguf_lines(tensors: list) -> list[str]:
    """The summary's account of a GGUF source's tensors, by what became of them."""
    if not tensors:
        return []
    lines = []
    for action, text in (("kept", "kept bit-exact (MLX's quantized layout)"),
                         ("dequantized", "dequantized (no exact MLX layout)"),
                         ("dense", "plain floats")):
        types = {}
        for t in tensors:
            if t.action == action:
                types[t.type] = types.get(t.type, 0) + 1
        if types:
            mix = ", ".join(f"{k} {v}" for k, v in sorted(types.items()))
            lines.append(f"  GGUF tensors {text}: {sum(types.values())} ({mix})")
    return lines


def _check_source(src: Path, raw: Any) -> Optional[str]:
    """The Hub repository ``src`` names (None: a local folder or GGUF file, checked)."""
    if not os.path.lexists(src):
        from ..hub import looks_like_repo_id

        if not looks_like_repo_id(os.fspath(raw)):
            raise InvalidArgumentError(f"{src}: does not exist (give a checkpoint folder "
                                       "with config.json and model*.safetensors, or a Hugging "
                                       "Face Hub repository ORG/NAME)")
        return os.fspath(raw)
    if not src.is_dir():
        from ..formats.gguf import detect

        if src.name.endswith(".gguf") or detect(src):
            return None  # a GGUF file (read and checked by mlxq.formats.gguf)
        raise InvalidArgumentError(f"{src}: not a folder (give a checkpoint folder with "
                                   "config.json and model*.safetensors, or a GGUF file)")
    return None


@contextlib.contextmanager
def _not_a_local_folder_either(src: Path) -> Iterator[None]:
    """A source that is not a local folder was taken for a Hub repository id (as mlx-lm
    takes it); when the Hub cannot be reached, does not have it, or cannot be asked
    (huggingface_hub missing), the error says both readings failed, since ``smal`` for a
    folder ``small`` reads as either, and suggests a folder with a close name."""
    from ..errors import HubNetworkError, HubRepoNotFoundError, MissingDependencyError

    try:
        yield
    except (HubRepoNotFoundError, HubNetworkError, MissingDependencyError) as e:
        import difflib

        parent = src.parent if str(src.parent) else Path(".")
        try:
            names = [n for n in os.listdir(parent) if (parent / n).is_dir()]
        except OSError:
            names = []
        close = difflib.get_close_matches(src.name, names, n=1, cutoff=0.75)
        shown = os.path.join(os.fspath(src.parent), close[0]) if close and str(
            src.parent) not in ("", ".") else (close[0] if close else None)
        hint = f" (did you mean the folder {shown}?)" if shown else ""
        msg = (f"{src}: no local folder of that name exists{hint}, and as a Hugging Face Hub "
               f"repository id it could not be read: {e.message}")
        if isinstance(e, MissingDependencyError):
            raise MissingDependencyError(msg) from None
        raise type(e)(msg, repo_id=e.repo_id, filename=e.filename) from None


def _check_destination(src: Path, dst: Path, hub: bool = False) -> None:
    if os.path.lexists(dst):
        raise InvalidArgumentError(
            f"cannot save to {dst}: it already exists. Delete it or choose a new path "
            "(mlxq never writes into an existing folder)")
    for parent in dst.parents:
        if os.path.lexists(parent):
            if not parent.is_dir():
                raise MlxqIOError(f"{parent}: not a folder, so {dst} cannot be created in it")
            break
    if not hub and dst.resolve().is_relative_to(src.resolve()):
        raise InvalidArgumentError(f"cannot save to {dst}: it is inside the source folder "
                                   f"{src}, which mlxq only reads")


#: The types convert()'s arguments take, by kind (checked before anything else, so that a
#: wrong type is named at the door rather than failing deep inside planning).
_FLAG_ARGS = ("quantize", "dequantize", "report", "quiet", "allow_requantize",
              "allow_unknown_architecture", "keep_source", "trust_remote_code")
_INT_ARGS = ("q_group_size", "q_bits")
_STR_ARGS = ("q_mode", "q_method", "calibration_device")
_OPTIONAL_STR_ARGS = ("dtype", "imatrix_arch", "revision", "upload_repo")
_PATH_ARGS = ("hf_path", "mlx_path", "imatrix", "calibrate", "save_imatrix")
_OPTIONAL_PATH_ARGS = ("imatrix", "calibrate", "save_imatrix")
_SIZE_ARGS = ("max_shard_size", "disk_budget")


def _check_types(values: dict[str, Any]) -> dict[str, Any]:
    """Each argument of :func:`convert` of the type it takes, or ArgumentTypeError naming
    it (``q_bits='4'`` to a Python caller, as ``--q-bits`` would be refused on the command
    line). Integers of other integral types (``numpy.int64``) come back as ``int``."""
    import numbers

    def refuse(name: str, expected: str) -> None:
        v = values[name]
        raise ArgumentTypeError(f"{arg(name, v)}: expected {expected}, got "
                                f"{type(v).__name__}", key=name)

    def is_int(v: Any) -> bool:
        return isinstance(v, numbers.Integral) and not isinstance(v, bool)

    out = dict(values)
    for name in _FLAG_ARGS:
        v = values[name]
        if not isinstance(v, bool) and type(v).__name__ != "bool_":  # numpy's bool too
            refuse(name, "True or False")
        out[name] = bool(v)
    for name in _INT_ARGS:
        v = values[name]
        if v is not None:
            if not is_int(v):
                refuse(name, "an int or None")
            out[name] = int(v)
    for name in _STR_ARGS:
        if not isinstance(values[name], str):
            refuse(name, "a str")
    for name in _OPTIONAL_STR_ARGS:
        if values[name] is not None and not isinstance(values[name], str):
            refuse(name, "a str or None")
    for name in _PATH_ARGS:
        v = values[name]
        if (v is not None or name not in _OPTIONAL_PATH_ARGS) and not isinstance(
                v, (str, os.PathLike)):
            refuse(name, "a path (str or os.PathLike)")
    for name in _SIZE_ARGS:
        v = values[name]
        if v is not None and not is_int(v) and not isinstance(v, str):
            refuse(name, "a number of bytes or a size such as '5GB'")
    v = values["target_bpw"]
    if v is not None and (not isinstance(v, numbers.Real) or isinstance(v, bool)):
        refuse("target_bpw", "a number of bits per weight or None")
    v = values["token"]
    if v is not None and not isinstance(v, (str, bool)):
        refuse("token", "a Hub token (str), True, False or None")
    v = values["stream"]
    if v is not None and not callable(getattr(v, "write", None)):
        refuse("stream", "a text stream with a write() method or None")
    return out


def _check_options(opts: Options) -> None:
    qp = opts.quant_predicate
    if opts.q_mode not in MODE_DEFAULTS:
        raise UnknownEnumValueError(f"{arg('q_mode', opts.q_mode)} is not a quantization mode; "
                                    f"expected one of {', '.join(MODE_DEFAULTS)}", key="q_mode")
    if opts.quantize and opts.dequantize:
        raise InvalidArgumentError(f"choose either {arg('quantize')} or {arg('dequantize')}, "
                                   "not both")
    if isinstance(qp, str) or qp is not None and not callable(qp):
        if qp not in QUANT_RECIPES:
            raise UnknownEnumValueError(f"{arg('quant_predicate', qp)} is not a recipe; "
                                        f"expected one of {', '.join(QUANT_RECIPES)}, or a "
                                        "callable (path, tensor spec) -> bool | dict")
        if opts.q_mode != "affine":
            raise InvalidArgumentError(f"{arg('quant_predicate', qp)}: the mixed recipes only "
                                       f"support 'affine' quantization, not "
                                       f"{arg('q_mode', opts.q_mode)}")
    if qp is not None and not opts.quantize:
        raise InvalidArgumentError(f"{arg('quant_predicate', qp)} needs {arg('quantize')}")
    if opts.quantize:
        # mx.quantize takes only some group sizes and bits per mode, whatever the model: a
        # group size it cannot take is refused before anything is read (mlx-lm would fail
        # at the first layer, or, where no width divides by it, write a 16-bit model that
        # claims to be quantized)
        _refuse_global_params(opts, *_global_params(opts),
                              check_bits=opts.target_bpw is None)
    _check_calibration(opts)


def _check_calibration(opts: Options) -> None:
    """The calibration arguments, before any model runs."""
    if opts.q_method not in ("mlx", "mse", "gptq"):
        raise UnknownEnumValueError(f"{arg('q_method', opts.q_method)} is not a quantization "
                                    "method; expected 'mlx', 'mse' or 'gptq'", key="q_method")
    if opts.calibration_device not in ("cpu", "cuda"):
        raise UnknownEnumValueError(f"{arg('calibration_device', opts.calibration_device)} is "
                                    "not a calibration device; expected 'cpu' or 'cuda'")
    n = opts.calibration_tokens
    if isinstance(n, bool) or not isinstance(n, int) or n < 2:
        raise OutOfRangeError(f"{arg('calibration_tokens', n)} must be a whole number >= 2")
    if opts.save_imatrix is not None and opts.calibrate is None:
        raise InvalidArgumentError(f"{arg('save_imatrix', opts.save_imatrix)} saves what "
                                   f"{arg('calibrate', 'TEXT_FILE')} collects: give both")
    if opts.calibrate is not None and opts.imatrix is not None:
        raise InvalidArgumentError(f"give {arg('calibrate', opts.calibrate)} or "
                                   f"{arg('imatrix', opts.imatrix)}, not both")
    if opts.save_imatrix is not None and os.path.lexists(opts.save_imatrix):
        raise InvalidArgumentError(f"{arg('save_imatrix', opts.save_imatrix)} exists; mlxq "
                                   "does not overwrite it")
    if opts.q_method == "gptq":
        if opts.q_mode != "affine":
            raise InvalidArgumentError(f"{arg('q_method', 'gptq')} quantizes into the affine "
                                       f"format, not {arg('q_mode', opts.q_mode)}",
                                       key="q_mode")
        if opts.quantize and opts.calibrate is None and opts.imatrix is None:
            raise InvalidArgumentError(f"{arg('q_method', 'gptq')} needs each layer's input "
                                       f"Hessian: give {arg('calibrate', 'TEXT_FILE')} (or "
                                       f"{arg('imatrix', 'STATS')}, a file "
                                       f"{arg('save_imatrix', 'FILE')} wrote)", key="q_method")
    if opts.calibrate is not None:
        from ..calibration.collect import read_text

        read_text(opts.calibrate)  # a missing or binary file fails before anything runs


def _flags_without_effect(opts: Options, quantize_given_mode: bool) -> list[str]:
    """Quantization parameters given without ``quantize``: they change nothing."""
    if opts.quantize:
        return []
    given = [arg(name, value) for name, value in (("q_bits", opts.q_bits),
                                                  ("q_group_size", opts.q_group_size))
             if value is not None]
    if quantize_given_mode:
        given.append(arg("q_mode", opts.q_mode))
    if not given:
        return []
    return [f"{' and '.join(given)} {'has' if len(given) == 1 else 'have'} no effect without "
            f"{arg('quantize')}: no layer is quantized"]


def _global_params(opts: Options) -> tuple[int, int, str]:
    gs, bits = MODE_DEFAULTS[opts.q_mode]
    return opts.q_group_size or gs, opts.q_bits or bits, opts.q_mode


def _check_global_params(plan: Any, opts: Options) -> None:
    """The global group size and bits, where a layer is quantized with them, must be ones
    MLX's ``quantize`` takes in that mode; the error names the argument that set them (not
    the first layer the kernel would have refused)."""
    gs, bits, mode = _global_params(opts)
    if any(u.kind == "quantize" and (u.group_size, u.bits, u.mode) == (gs, bits, mode)
           for u in plan.units.values()):
        _refuse_global_params(opts, gs, bits, mode)


def _refuse_global_params(opts: Options, gs: int, bits: int, mode: str, *,
                          check_bits: bool = True) -> None:
    """OutOfRangeError naming the argument (or the mode whose default it is) unless MLX's
    ``quantize`` takes ``(gs, bits)`` in ``mode``; ``check_bits=False`` checks the group
    size only (``target_bpw`` chooses the bits)."""
    from ..quant import check_params

    if not check_bits:
        bits = MODE_DEFAULTS[mode][1]
    try:
        check_params(mode, gs, bits)
    except MlxqError as e:
        msg = e.message
        if msg.startswith("group_size="):
            name, value = "q_group_size", gs
        elif msg.startswith("bits="):
            name, value = "q_bits", bits
        else:  # pragma: no cover - check_params names one of the two
            raise
        if getattr(opts, name) is None:  # the mode's default: the mode is what was chosen
            what = f"{arg('q_mode', mode)} (its default {name[2:]} {value})"
        else:
            what = arg(name, value)
        rest = msg.split(" is not supported", 1)[1] if " is not supported" in msg else ""
        raise type(e)(f"{what} is not supported{rest}", key=name) from None


def _dense_widths(plan: Any) -> list[int]:
    """The last-axis widths of the floating weight matrices the plan copies."""
    def floating(dt: Any) -> bool:
        return dt is not None and (dt.kind == "f" or dt.name == "bfloat16")
    return sorted({u.tensor.shape[-1] for n, u in plan.units.items()
                   if u.kind == "copy" and n.endswith(".weight")
                   and len(u.tensor.shape) >= 2 and floating(u.tensor.dtype)})


def _nothing_quantized_reason(widths: list[int], opts: Options) -> str:
    gs = _global_params(opts)[0]
    if not widths:
        return "the model has no dense weight matrix to quantize"
    if all(w % gs for w in widths):
        shown = ", ".join(map(str, widths[:6])) + (", ..." if len(widths) > 6 else "")
        what = arg("q_group_size", gs) if opts.q_group_size else f"the group size {gs}"
        return f"{what} divides the last axis of no weight matrix (widths {shown})"
    if opts.quant_predicate is not None:
        return f"{arg('quant_predicate', opts.quant_predicate)} declined every layer"
    return "no layer is one mlx-lm quantizes"


def _size(name: str, value: Union[int, str]) -> int:
    from .write import parse_size

    try:
        return parse_size(value)
    except InvalidArgumentError as e:
        raise InvalidArgumentError(f"{arg(name, value)}: {e.message}", key=name) from None


@contextlib.contextmanager
def _calibrated(src: Path, opts: Options, out: TextIO, quiet: bool) -> Iterator[Options]:
    """``opts`` with the calibration statistics for ``opts.calibrate`` (saved to
    ``opts.save_imatrix``), or ``opts`` as it is without calibration. Their Hessians' spill
    folder (in the temporary folder) is removed on leaving, however the conversion ends."""
    if opts.calibrate is None or not opts.quantize:
        yield opts
        return
    from ..calibration.collect import collect_statistics, read_text
    from ..calibration.stats import save_statistics

    text = read_text(opts.calibrate)
    stats, report = collect_statistics(src, text, device=opts.calibration_device,
                                       max_tokens=opts.calibration_tokens)
    with stats:
        stats.text = os.path.basename(opts.calibrate)
        log.info("%s", report)
        if not quiet:
            print(report, file=out)
        if opts.save_imatrix is not None:
            save_statistics(stats, opts.save_imatrix)
            log.info("wrote %s", opts.save_imatrix)
        yield dataclasses.replace(opts, statistics=stats)


def _warn(msg: str) -> None:
    # stacklevel 4 (here, convert, its threads wrapper): the warning points at the code
    # that called convert()
    warnings.warn(msg, MlxqWarning, stacklevel=4)


# ---- the conversion ----------------------------------------------------------------------

def _threads_for_the_call(fn: Callable[..., ConvertResult]) -> Callable[..., ConvertResult]:
    """``convert(..., threads=n)``: the kernels use ``n`` threads for this call only (as
    :func:`mlxq.set_num_threads` would, restored afterwards, also on error)."""
    import functools

    @functools.wraps(fn)
    def call(*args: Any, **kw: Any) -> ConvertResult:
        n = kw.get("threads")
        if n is None:
            return fn(*args, **kw)
        import numbers

        from .._threads import get_num_threads, set_num_threads

        if isinstance(n, bool) or not isinstance(n, numbers.Integral):
            raise ArgumentTypeError(f"{arg('threads', n)}: expected an int (at least 1) or "
                                    f"None, got {type(n).__name__}", key="threads")
        if n < 1:
            raise OutOfRangeError(f"{arg('threads', n)} must be at least 1", key="threads")
        saved = get_num_threads()
        set_num_threads(int(n))
        try:
            return fn(*args, **kw)
        finally:
            set_num_threads(saved)
    return call


@_threads_for_the_call
def convert(hf_path: PathLike, mlx_path: PathLike = "mlx_model", *, quantize: bool = False,
            q_group_size: Optional[int] = None, q_bits: Optional[int] = None,
            q_mode: str = "affine", quant_predicate: Union[str, QuantPredicate, None] = None,
            dtype: Optional[str] = None, dequantize: bool = False,
            max_shard_size: Union[int, str, None] = None, report: bool = False,
            quiet: bool = False, stream: TextIO | None = None,
            allow_requantize: bool = False, allow_unknown_architecture: bool = False,
            q_method: str = "mlx", imatrix: Optional[PathLike] = None,
            imatrix_arch: Optional[str] = None, target_bpw: Optional[float] = None,
            calibrate: Optional[PathLike] = None, save_imatrix: Optional[PathLike] = None,
            calibration_device: str = "cpu", calibration_tokens: int = 16384,
            revision: Optional[str] = None, keep_source: bool = False,
            disk_budget: Union[int, str, None] = None, token: Any = None,
            upload_repo: Optional[str] = None,
            trust_remote_code: bool = False, threads: Optional[int] = None,
            device: Optional[str] = None) -> ConvertResult:
    """Converts the Hugging Face (or MLX, AWQ, GPTQ, MXFP4) checkpoint folder ``hf_path``
    into an MLX checkpoint folder ``mlx_path``, like ``mlx_lm.convert(hf_path, mlx_path,
    ...)``.

    Args mirror ``mlx_lm.convert``: ``quantize`` (``-q``), ``q_group_size``, ``q_bits``,
    ``q_mode``, ``quant_predicate`` (a recipe name, or a callable
    ``(path, tensor_spec) -> bool | dict`` as mlx-lm's takes ``(path, module)``; the spec
    has the dense weight's ``shape`` and ``dtype``), ``dtype``, ``dequantize`` (``-d``),
    ``revision`` (of a Hub repository); ``trust_remote_code`` is accepted and has no effect
    (mlxq runs no model code); ``upload_repo`` is refused (mlxq does not upload; the message
    says how to). mlxq's own: ``max_shard_size`` (bytes or ``"5GB"``; default mlx-lm's
    5 GiB), ``report`` (collect per-layer quantization error against the source weights),
    ``quiet`` (no progress bar on ``stream``, stderr by default), ``allow_requantize`` (GPTQ
    layers with an act-order ``g_idx`` are dequantized and re-quantized to MLX affine
    instead of refused; the added error is in ``result.requantized``),
    ``allow_unknown_architecture`` (convert a ``model_type`` mlx-lm does not support with
    generic rules instead of refusing it); ``q_method`` (``"mse"``: each group's scale and
    bias chosen for the least error, each input column weighted by its size as estimated
    from the weights, or by ``imatrix``; docs/methods.md), ``imatrix`` (a llama.cpp importance
    matrix weighting each layer's columns; ``imatrix_arch`` its architecture name when the
    model_type does not give it, or a statistics file ``save_imatrix`` wrote) and
    ``target_bpw`` (bits per layer from 2/3/4/5/6/8 for at most this many bits per weight,
    the whole model counted as mlx-lm does); ``threads`` (kernel threads for this call
    only, as :func:`mlxq.set_num_threads`; default: the current setting,
    ``MLXQ_NUM_THREADS`` or all cores); ``device`` (``"gpu"``: the arithmetic of MLX's GPU
    kernels, what mlx_lm.convert writes on Apple silicon, its default device there;
    ``"cpu"``: MLX's CPU backend, what ``mlx[cpu]`` writes on Linux; default
    :func:`mlxq.default_device`, i.e. ``MLXQ_DEVICE`` or ``"gpu"``): every quantization and
    dequantization of the conversion, the families' sanitize steps and the quality search
    included. Calibration (the ``calibrate`` extra: ``pip install 'mlxq[calibrate]'``, from
    a checkout ``pip install '.[calibrate]'``): ``calibrate`` (a UTF-8 text file the source
    model runs forward on, through transformers and torch, one decoder layer at a time, to
    collect each linear layer's input statistics; needs a local source folder; at most
    ``calibration_tokens`` tokens, in sequences of 512), ``save_imatrix`` (write those
    statistics, for ``imatrix`` in later conversions), ``calibration_device`` (``"cpu"`` or
    ``"cuda"``); ``q_method="gptq"`` quantizes each layer with GPTQ from its input Hessian
    (:mod:`mlxq.calibration`) and needs ``calibrate`` or such a statistics file.

    ``hf_path`` may also be a Hugging Face Hub repository (``ORG/NAME``; a local folder
    that exists always wins, as in mlx-lm), at ``revision``: it is converted with bounded
    disk, each shard downloaded, converted and deleted (``keep_source``: kept, in
    huggingface_hub's cache; ``disk_budget``: the most source bytes held at once; ``token``:
    a Hub token, default huggingface_hub's). Needs huggingface_hub (the ``hub`` extra).

    Warnings are :class:`~mlxq.errors.MlxqWarning` (filter them with :mod:`warnings`):
    quantization arguments without ``quantize``, ``quantize`` that quantized no layer,
    ``dequantize`` with nothing to dequantize, a ``revision`` for a local folder,
    already-quantized layers kept, side files not copied, a staging folder left by a killed
    run and removed.

    Raises:
        InvalidArgumentError: ``mlx_path`` exists, ``hf_path`` is neither a folder nor a Hub
            repository id, both ``quantize`` and ``dequantize``, a recipe with a non-affine
            mode, ``upload_repo``.
        OutOfRangeError: a group size or bits MLX does not take in that mode (naming the
            argument when the global parameters are at fault, else the layer).
        FormatError / SafetensorsError / ParseError: unreadable inputs (pickles are
            refused); MissingKeyError: no config.json or no weights.
        UnknownEnumValueError: a mode, recipe, dtype, model type or quant_method mlxq does
            not know.
        HubError (and its subclasses): a Hub repository that cannot be read.
        Errors of the kernels, with ``.layer`` set to the layer being quantized.
    """
    a = _check_types(dict(
        hf_path=hf_path, mlx_path=mlx_path, quantize=quantize, q_group_size=q_group_size,
        q_bits=q_bits, q_mode=q_mode, dtype=dtype, dequantize=dequantize,
        max_shard_size=max_shard_size, report=report, quiet=quiet, stream=stream,
        allow_requantize=allow_requantize, allow_unknown_architecture=allow_unknown_architecture,
        q_method=q_method, imatrix=imatrix, imatrix_arch=imatrix_arch, target_bpw=target_bpw,
        revision=revision, keep_source=keep_source, disk_budget=disk_budget, token=token,
        upload_repo=upload_repo, trust_remote_code=trust_remote_code, calibrate=calibrate,
        save_imatrix=save_imatrix, calibration_device=calibration_device))
    quantize, dequantize, report, quiet = a["quantize"], a["dequantize"], a["report"], a["quiet"]
    q_group_size, q_bits, keep_source = a["q_group_size"], a["q_bits"], a["keep_source"]
    allow_requantize = a["allow_requantize"]
    allow_unknown_architecture = a["allow_unknown_architecture"]
    from .._device import resolve as resolve_device, using_device

    src_p, dst_p = Path(os.fspath(hf_path)), Path(os.fspath(mlx_path))
    out = stream if stream is not None else sys.stderr
    try:
        dev = resolve_device(device)
    except UnknownEnumValueError as e:
        raise UnknownEnumValueError(f"{arg('device', device)} is not a device; "
                                    + e.message.split("; ", 1)[1], key="device") from None
    if upload_repo is not None:
        raise InvalidArgumentError(
            f"{arg('upload_repo', upload_repo)}: mlxq does not upload. Convert without it, "
            f"then upload the folder with `hf upload {upload_repo} {dst_p}` (huggingface_hub's "
            "command line; `huggingface-cli upload` before huggingface_hub 1.0)")
    if os.path.lexists(dst_p):  # first, as mlx_lm.convert checks it first
        _check_destination(src_p, dst_p)
    hub_repo = _check_source(src_p, hf_path)
    _check_destination(src_p, dst_p, hub=hub_repo is not None)
    shard = _size("max_shard_size", max_shard_size if max_shard_size is not None else 5 << 30)
    opts = Options(quantize=quantize, q_group_size=q_group_size, q_bits=q_bits, q_mode=q_mode,
                   quant_predicate=quant_predicate, dtype=dtype, dequantize=dequantize,
                   max_shard_size=shard, report=report, allow_requantize=allow_requantize,
                   allow_unknown_architecture=allow_unknown_architecture, q_method=q_method,
                   imatrix=os.fspath(imatrix) if imatrix is not None else None,
                   imatrix_arch=imatrix_arch, target_bpw=target_bpw, device=dev.value,
                   calibrate=os.fspath(calibrate) if calibrate is not None else None,
                   save_imatrix=os.fspath(save_imatrix) if save_imatrix is not None else None,
                   calibration_device=calibration_device,
                   calibration_tokens=calibration_tokens)
    _check_options(opts)
    for w in _flags_without_effect(opts, q_mode != "affine"):
        _warn(w)
    if revision is not None and hub_repo is None:
        _warn(f"{arg('revision', revision)} has no effect: {src_p} is a local folder (a "
              "revision picks a commit of a Hugging Face Hub repository)")
    budget = _size("disk_budget", disk_budget) if disk_budget is not None else None
    if calibrate is not None and quantize and hub_repo is not None:
        raise InvalidArgumentError(f"{arg('calibrate', calibrate)} runs the model from a "
                                   f"local folder; download {hub_repo} first")

    # the planner and executor load every model family (and numpy, ml_dtypes): imported
    # on use, so importing this package stays light
    from ..metrics import _Sums
    from ..staging import StagingDir
    from .._progress import Progress
    from . import execute as _execute
    from .plan import make_plan
    from .source import SourceCheckpoint
    from .._interrupt import anywhere
    from .write import MODEL_CARD, ShardWriters, SideFiles, hub_model_card

    t0 = time.monotonic()  # the conversion's time, not the first import's
    fmt: Optional[str] = None
    stored = 0

    def planned(source: Any) -> Any:
        nonlocal fmt, stored
        # the graph's quantize / dequantize nodes (sanitize steps) and the quality search
        # take the device in effect while the plan is made
        with using_device(dev):
            plan = make_plan(source, opts)
        fmt = _source_format(source)
        for w in (*getattr(source, "notes", ()), *plan.warnings):
            _warn(w)
        if quantize:
            _check_global_params(plan, opts)
        stored = plan.counts["kept"] if not dequantize else 0
        if stored and quantize and fmt != "gguf":  # (a GGUF's kept tensors: in the summary)
            if fmt is None:
                _warn(f"{_count(stored, 'layer')} {'is' if stored == 1 else 'are'} already "
                      "quantized and kept as they are (as mlx_lm.convert does); dequantize "
                      f"first ({arg('dequantize')}) to re-quantize them")
            else:
                again = (f" (explicit parameters, such as {arg('q_bits', 4)}, quantize them "
                         "again)" if fmt == "compressed-tensors" else "")
                _warn(f"{_count(stored, 'layer')} of the {_FORMAT_NAMES.get(fmt, fmt)} "
                      "checkpoint keep their own quantization (repacked into MLX's layout, "
                      f"as mlx_lm.convert does); {arg('quantize')} quantizes the rest{again}")
        widths = _dense_widths(plan) if quantize and not plan.counts["quantize"] else []
        if quantize and not plan.counts["quantize"] and (widths or not stored):
            # (a model whose every layer is quantized already has had its warning above)
            _warn(f"{arg('quantize')} quantized no layer: "
                  f"{_nothing_quantized_reason(widths, opts)}")
        if dequantize and not plan.counts["dequantize"]:
            if plan.counts["fp8"]:
                n = plan.counts["fp8"]
                _warn(f"{arg('dequantize')} had nothing to do: the {_count(n, 'FP8 weight')} "
                      f"of {hub_repo or src_p} {'is' if n == 1 else 'are'} dequantized with "
                      f"or without it (as mlx_lm.convert does), and it has no MLX-quantized "
                      "layers")
            else:
                _warn(f"{arg('dequantize')} had nothing to do: {hub_repo or src_p} has no "
                      "quantized layers")
        log.info("converting %s (%s, %d tensors, %s) into %s", hub_repo or src_p,
                 plan.family.module, len(plan.outputs), human_bytes(plan.total_size), dst_p)
        return plan

    def write(plan: Any, source: Any, tmp: Path, run: Callable[[Any, Progress], None],
              side: Any, card: str) -> list:
        progress = Progress(len(plan.outputs), plan.total_size, stream=out, quiet=quiet)
        try:
            writers = ShardWriters(tmp, plan.shards)
            try:
                ex = _execute.Executor(plan, writers.put, progress.update,
                                       report=report or gguf_quantize, device=dev.value)
                with using_device(dev):  # lazy steps (external formats' repacking) too
                    run(ex, progress)
                # every source byte has been read: a shard rewritten meanwhile fails here,
                # before anything is committed (every source kind that reads files has it)
                unchanged = getattr(source, "check_unchanged", None)
                if unchanged is not None:
                    unchanged()
                # the bar ends on the figure the summary reports (updates are throttled)
                progress.update(len(plan.outputs), plan.total_size, force=True)
                writers.finish(plan.total_size, plan.total_parameters)
            except BaseException as e:
                writers.abort(type(e))
                raise
        finally:
            progress.close()  # before any warning below, which would break the bar
        (tmp / "config.json").write_text(plan.config_out, encoding="utf-8")
        if hasattr(source, "write_side_files"):  # a GGUF: its tokenizer, from its metadata
            source.write_side_files(tmp)
        else:
            side.copy(tmp)
        (tmp / "README.md").write_text(card, encoding="utf-8")
        return ex.sums or []

    # Planning reads headers and JSON and runs the family's sanitize over lazy tensors: no
    # lock is held, so a signal stops it at once (anywhere()); writing stops at safe points.
    staging = StagingDir(dst_p)
    source_peak = None
    gguf = hub_repo is None and not src_p.is_dir()
    gguf_quantize = gguf and quantize
    if gguf:
        from .gguf_source import GgufCheckpoint
        from .prequant import _requested

        with anywhere():
            opened: Any = GgufCheckpoint(src_p, _requested(opts), opts.dtype,
                                         dense_in_dtype=not quantize)
    elif hub_repo is None:
        with anywhere():
            opened = SourceCheckpoint(src_p)
    if hub_repo is None:
        # the calibration (if any) runs here so that its spilled Hessians are removed
        # however the conversion ends; planned() reads the opts with its statistics
        with opened as source, _calibrated(src_p, opts, out, quiet) as opts:
            if opts.statistics is not None:
                t0 = time.monotonic()  # the calibration reported its own time
            with anywhere():
                # a GGUF writes its own side files (its tokenizer, from its metadata)
                side = (contextlib.nullcontext() if hasattr(source, "write_side_files")
                        else SideFiles(source.folder, _warn_side_file))
            with side:
                with anywhere():
                    plan = planned(source)
                with staging as tmp:
                    for r in staging.removed:
                        _warn(f"removed {r}, left by an earlier run that was killed")
                    sums = write(plan, source, tmp, lambda ex, _: ex.run_all(), side,
                                 MODEL_CARD)
    else:
        from .hub_source import HubCheckpoint, run_scheduled

        with staging as tmp:
            for r in staging.removed:
                _warn(f"removed {r}, left by an earlier run that was killed")
            work = tmp / ".mlxq-source"
            with anywhere(), _not_a_local_folder_either(src_p):
                source = HubCheckpoint(hub_repo, revision, work / "small", work / "shards",
                                       keep=keep_source, token=token)
            try:
                with anywhere():
                    side = SideFiles(source.folder, _warn_side_file)
                with side:
                    with anywhere(), _not_a_local_folder_either(src_p):
                        plan = planned(source)
                        # the card is read before the shards are fetched: a card that
                        # cannot be parsed is a warning now, not a failure after the
                        # whole download
                        card = hub_model_card(source.model_card(), hub_repo, _warn_card)
                    sums = write(plan, source, tmp,
                                 lambda ex, bar: run_scheduled(plan, source, ex.run_unit,
                                                               budget, bar.set_status),
                                 side, card)
            finally:
                source.close()
            source_peak = source.hub.peak_bytes_on_disk
            shutil.rmtree(work)

    reports = [LayerReport(p, gs, bits, mode, s.result()) for p, gs, bits, mode, s in sums]
    requantized = list(plan.requantized)
    gguf_tensors: list = []
    if gguf:
        gguf_tensors = list(source.reports)
        from_blocks = {r.name[: -len(".weight")]: r.type for r in gguf_tensors
                       if r.action == "dequantized" and r.name.endswith(".weight")}
        requantized = [GgufRequantized(r.layer, from_blocks[r.layer], r.error)
                       for r in reports if r.layer in from_blocks]
        if not report:
            reports, sums = [], []
    total = None
    if reports:
        acc = _Sums()
        for *_, s in sums:
            acc.merge(s)
        total = acc.result()
    repacked = max(stored - (0 if gguf else len(requantized)), 0) if fmt is not None else 0
    result = ConvertResult(
        dst=str(dst_p), tensors=len(plan.outputs), quantized_layers=plan.counts["quantize"],
        kept_quantized_layers=stored if fmt is None else 0,
        dequantized_layers=plan.counts["dequantize"], fp8_dequantized=plan.counts["fp8"],
        bits_per_weight=plan.total_size * 8 / max(plan.total_parameters, 1),
        bytes_read=source.bytes_read if gguf else plan.bytes_read,
        bytes_written=plan.total_size,
        seconds=time.monotonic() - t0, architecture=plan.family.module, report=reports,
        report_total=total, requantized=requantized, repacked_layers=repacked,
        source_format=fmt, quantize=quantize, allocation=plan.allocation,
        source_peak_bytes=source_peak, gguf_tensors=gguf_tensors, device=dev.value)
    log.info("wrote %s: %d tensors in %.2f s", dst_p, result.tensors, result.seconds)
    return result


def _warn_side_file(msg: str) -> None:
    # called from SideFiles inside convert() (inside its threads wrapper): stacklevel 5
    # reaches convert's caller
    warnings.warn(msg, MlxqWarning, stacklevel=5)


def _warn_card(msg: str) -> None:
    # called from hub_model_card inside convert() (inside its threads wrapper): stacklevel
    # 5 reaches convert's caller
    warnings.warn(msg, MlxqWarning, stacklevel=5)
