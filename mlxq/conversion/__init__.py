"""Convert a Hugging Face checkpoint folder into an MLX one, as ``mlx_lm.convert`` does,
tensor by tensor.

``mlx_lm.convert`` loads the whole model, casts, quantizes and saves it. :func:`convert`
produces the same folder (the same tensors bit for bit, the same ``config.json``, shard
names and index) without MLX and without holding the model. The concerns live apart:

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
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any, Callable, Optional, TextIO, Union

from .._progress import Progress, human_bytes, human_time
from ..errors import InvalidArgumentError, MlxqIOError, UnknownEnumValueError
from ..io import DEFAULT_MAX_SHARD_SIZE
from ..metrics import QuantError, _Sums
from ..staging import StagingDir
from .options import CONVERSION_DTYPES, QUANT_RECIPES, Options, QuantPredicate
from .write import MODEL_CARD, ShardWriters, copy_side_files, hub_model_card, parse_size

__all__ = ["CONVERSION_DTYPES", "QUANT_RECIPES", "ConvertResult", "LayerReport", "convert",
           "parse_size"]

PathLike = Union[str, "os.PathLike[str]"]

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
    allocation: Optional[Any] = None  # --target-bpw: conversion.quality.Allocation
    source_peak_bytes: Optional[int] = None  # from the Hub: most source bytes on disk at once

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
        if self.source_peak_bytes is not None:
            lines.append(f"  source shards on disk at most {human_bytes(self.source_peak_bytes)} "
                         "at once (downloaded, converted, deleted)")
        if self.allocation is not None:
            a = self.allocation
            lines.append(f"  --target-bpw {a.target:g}: {a.mix()}; {a.bits_per_weight:.3f} "
                         "bits per weight")
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


# ---- the conversion ----------------------------------------------------------------------

def convert(src: PathLike, dst: PathLike, *, quantize: bool = False,
            q_group_size: Optional[int] = None, q_bits: Optional[int] = None,
            q_mode: str = "affine", quant_predicate: Union[str, QuantPredicate, None] = None,
            dtype: Optional[str] = None, dequantize: bool = False,
            max_shard_size: Union[int, str] = DEFAULT_MAX_SHARD_SIZE, report: bool = False,
            quiet: bool = False, stream: TextIO | None = None,
            allow_requantize: bool = False,
            allow_unknown_architecture: bool = False, q_method: str = "mlx",
            imatrix: Optional[PathLike] = None, imatrix_arch: Optional[str] = None,
            target_bpw: Optional[float] = None, revision: Optional[str] = None,
            keep_source: bool = False, disk_budget: Union[int, str, None] = None,
            token: Any = None) -> ConvertResult:
    """Converts the Hugging Face (or MLX, AWQ, GPTQ, MXFP4) checkpoint folder ``src`` into
    an MLX checkpoint folder ``dst``, like ``mlx_lm.convert(src, dst, ...)``.

    Args mirror ``mlx_lm.convert``: ``quantize`` (``-q``), ``q_group_size``, ``q_bits``,
    ``q_mode``, ``quant_predicate`` (a recipe name, or a callable
    ``(path, weight_spec) -> bool | dict`` as mlx-lm's takes ``(path, module)``), ``dtype``,
    ``dequantize`` (``-d``); plus ``max_shard_size`` (bytes or ``"5GB"``), ``report``
    (collect per-layer quantization error against the source weights), ``quiet`` (no
    progress bar or warnings on ``stream``, stderr by default), ``allow_requantize`` (GPTQ
    layers with an act-order ``g_idx`` are dequantized and re-quantized to MLX affine
    instead of refused; the added error is in ``result.requantized``),
    ``allow_unknown_architecture`` (convert a ``model_type`` mlx-lm does not support with
    generic rules instead of refusing it); ``q_method`` (``"mse"``: each group's scale and
    bias chosen for the least error, docs/methods.md), ``imatrix`` (a llama.cpp importance
    matrix weighting each layer's columns; ``imatrix_arch`` its architecture name when the
    model_type does not give it) and ``target_bpw`` (bits per layer from 2/3/4/5/6/8 for at
    most this many bits per weight, the whole model counted as mlx-lm does).

    ``src`` may also be a Hugging Face Hub repository (``ORG/NAME``; a local folder that
    exists always wins, as in mlx-lm), at ``revision``: it is converted with bounded disk,
    each shard downloaded, converted and deleted (``keep_source``: kept, in
    huggingface_hub's cache; ``disk_budget``: the most source bytes held at once; ``token``:
    a Hub token, default huggingface_hub's). Needs ``pip install mlxq[hub]``.

    Raises:
        InvalidArgumentError: ``dst`` exists, ``src`` is not a folder, both ``quantize`` and
            ``dequantize``, a recipe with a non-affine mode.
        FormatError / SafetensorsError / ParseError: unreadable inputs (pickles are
            refused); MissingKeyError: no config.json or no weights.
        UnknownEnumValueError: a mode, recipe, dtype, model type or quant_method mlxq does
            not know.
        Errors of the kernels, with ``.layer`` set to the layer being quantized.
    """
    t0 = time.monotonic()
    src_p, dst_p = Path(os.fspath(src)), Path(os.fspath(dst))
    out = stream if stream is not None else sys.stderr
    if os.path.lexists(dst_p):
        raise InvalidArgumentError(
            f"cannot save to {dst_p}: it already exists. Delete it or choose a new path "
            "(mlxq never writes into an existing folder)")
    hub_repo = None
    if not os.path.lexists(src_p):
        from ..hub import looks_like_repo_id

        if not looks_like_repo_id(os.fspath(src)):
            raise InvalidArgumentError(f"{src_p}: does not exist (give a checkpoint folder "
                                       "with config.json and model*.safetensors, or a Hugging "
                                       "Face Hub repository ORG/NAME)")
        hub_repo = os.fspath(src)
    elif not src_p.is_dir():
        raise InvalidArgumentError(f"{src_p}: not a folder (give a checkpoint folder with "
                                   "config.json and model*.safetensors)")
    for parent in dst_p.parents:
        if os.path.lexists(parent):
            if not parent.is_dir():
                raise MlxqIOError(f"{parent}: not a folder, so {dst_p} cannot be created in it")
            break
    if hub_repo is None and dst_p.resolve().is_relative_to(src_p.resolve()):
        raise InvalidArgumentError(f"cannot save to {dst_p}: it is inside the source folder "
                                   f"{src_p}, which mlxq only reads")
    if quantize and dequantize:
        raise InvalidArgumentError("choose either quantize or dequantize, not both")
    if isinstance(quant_predicate, str) or quant_predicate is not None and not callable(
            quant_predicate):
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

    # the planner and executor load every model family: imported on use, so importing
    # this package (or mlxq.models, which builds on its graph) stays light
    from . import execute as _execute
    from .plan import make_plan
    from .source import SourceCheckpoint

    opts = Options(quantize=quantize, q_group_size=q_group_size, q_bits=q_bits, q_mode=q_mode,
                   quant_predicate=quant_predicate, dtype=dtype, dequantize=dequantize,
                   max_shard_size=shard, report=report, allow_requantize=allow_requantize,
                   allow_unknown_architecture=allow_unknown_architecture, q_method=q_method,
                   imatrix=os.fspath(imatrix) if imatrix is not None else None,
                   imatrix_arch=imatrix_arch, target_bpw=target_bpw)
    def planned(source: Any) -> Any:
        plan = make_plan(source, opts)
        for w in plan.warnings:
            warn(w)
        if plan.counts["kept"] and quantize:
            warn(f"{plan.counts['kept']} layers are already quantized and are kept as they "
                 "are (as mlx_lm.convert does); dequantize first (-d) to re-quantize them")
        return plan

    def write(plan: Any, source: Any, tmp: Path, run: Callable[[Any], None]) -> list:
        progress = Progress(len(plan.outputs), plan.total_size, stream=out, quiet=quiet)
        try:
            writers = ShardWriters(tmp, plan.shards)
            try:
                ex = _execute.Executor(plan, writers.put, progress.update, report=report)
                run(ex)
                writers.finish(plan.total_size, plan.total_parameters)
            except BaseException as e:
                writers.abort(type(e))
                raise
            (tmp / "config.json").write_text(plan.config_out, encoding="utf-8")
            copy_side_files(source.folder, tmp, warn)
            card = MODEL_CARD if hub_repo is None else hub_model_card(source.model_card(),
                                                                       hub_repo)
            (tmp / "README.md").write_text(card, encoding="utf-8")
        finally:
            progress.close()
        return ex.sums or []

    staging = StagingDir(dst_p)
    source_peak = None
    if hub_repo is None:
        with SourceCheckpoint(src_p) as source:
            plan = planned(source)
            with staging as tmp:
                for r in staging.removed:
                    warn(f"removed {r}, left by an earlier run that was killed")
                sums = write(plan, source, tmp, lambda ex: ex.run_all())
    else:
        from .hub_source import HubCheckpoint, run_scheduled

        budget = parse_size(disk_budget) if disk_budget is not None else None
        with staging as tmp:
            for r in staging.removed:
                warn(f"removed {r}, left by an earlier run that was killed")
            work = tmp / ".mlxq-source"
            source = HubCheckpoint(hub_repo, revision, work / "small", work / "shards",
                                   keep=keep_source, token=token)
            try:
                plan = planned(source)
                sums = write(plan, source, tmp,
                             lambda ex: run_scheduled(plan, source, ex.run_unit, budget))
            finally:
                source.close()
            source_peak = source.hub.peak_bytes_on_disk
            shutil.rmtree(work)

    reports = [LayerReport(p, gs, bits, mode, s.result()) for p, gs, bits, mode, s in sums]
    total = None
    if reports:
        acc = _Sums()
        for *_, s in sums:
            acc.merge(s)
        total = acc.result()
    return ConvertResult(
        dst=str(dst_p), tensors=len(plan.outputs), quantized_layers=plan.counts["quantize"],
        kept_quantized_layers=plan.counts["kept"] if not dequantize else 0,
        dequantized_layers=plan.counts["dequantize"],
        bits_per_weight=plan.total_size * 8 / max(plan.total_parameters, 1),
        bytes_read=plan.bytes_read, bytes_written=plan.total_size,
        seconds=time.monotonic() - t0, architecture=plan.family.module, report=reports,
        report_total=total, requantized=list(plan.requantized), allocation=plan.allocation,
        source_peak_bytes=source_peak)
