"""Planning a conversion: the whole output, from headers alone, before any data is read.

The plan follows ``mlx_lm.convert`` step by step (each step names what it matches):

1. the family's ``sanitize`` (:mod:`mlxq.models`), run on lazy tensors, gives the model's
   parameters (another producer's format is transformed first, as ``load_model`` does);
2. layers already quantized (MLX layout) are found and verified (:mod:`mlxq.stored`);
3. the dtype: ``--dtype``, else ``torch_dtype``, else ``text_config.dtype``; only
   float16/bfloat16/float32 are applied, to every floating parameter the family's
   ``cast_predicate`` allows (``convert``'s ``set_dtype``), before quantizing;
4. ``-d``: every quantized layer dequantized (``dequantize_model``) and both config blocks
   removed; ``-q``: the generic quantize rule (:meth:`mlxq.models.base.Family.quantizable`,
   the global group size divides the last axis), then the recipe, a callable, or the
   model's ``quant_predicate``; dicts recorded verbatim per layer, in module order
   (``quantize_model``);
5. outputs in ``tree_flatten(model.parameters())`` order, cut into ``make_shards``' shards,
   with the index's ``total_size`` and ``total_parameters``, and ``save_config``'s text.

Each output belongs to a :class:`Unit`: a copy (a lazy tensor, cast), a quantization (one
dense lazy tensor -> weight, scales, biases) or a dequantization (a lazy ``dequantize``).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Mapping, Optional, Sequence

import numpy as np

from .._dtypes import bfloat16
from .._argnames import arg
from ..errors import (
    FormatError,
    InvalidArgumentError,
    KeyCollisionError,
    MlxqError,
    UnknownEnumValueError,
    UnsupportedFormatError,
)
from ..io import _count_parameters
from ..models import Family, family_for, supported_model_types
from ..models.base import check_config_counts, config_int, counts_bounded_by
from ..models.common import Weights
from ..stored import stored_layers
from ..tensorspec import TensorSpec
from . import graph
from .hfconfig import config_text
from .options import CONVERSION_DTYPES, MODE_DEFAULTS, Options
from .prequant import prepare
from .source import SourceCheckpoint, external_tensors

__all__ = ["CONVERSION_DTYPES", "MODE_DEFAULTS", "Options", "Plan", "Unit", "make_plan"]

_NP_DTYPE = {"float16": np.dtype(np.float16), "bfloat16": np.dtype(bfloat16),
             "float32": np.dtype(np.float32)}


@dataclasses.dataclass
class Unit:
    """One computation and the outputs it makes."""

    kind: str                                 # "copy" | "quantize" | "dequantize"
    outputs: list[tuple[str, TensorSpec]]
    tensor: graph.Tensor                      # copy/dequantize: the output; quantize: dense
    path: Optional[str] = None                # quantize: the layer
    group_size: int = 0
    bits: int = 0
    mode: str = "affine"
    method: str = "mlx"                       # quantize: "mlx", "mse" or "gptq"
    importance: Optional[np.ndarray] = None   # quantize: per input column ([E, C] stacked)
    hessian: Optional[Callable[[], Optional[np.ndarray]]] = None  # gptq: reads X^T X
    #: copy of several outputs (a stored layer's weight, scales, biases): each output's
    #: tensor, all with the same rows; ``tensor`` is the first
    parts: list[graph.Tensor] = dataclasses.field(default_factory=list)

    def tensors(self) -> list[graph.Tensor]:
        """The lazy tensors the unit evaluates."""
        return self.parts or [self.tensor]


@dataclasses.dataclass
class Plan:
    family: Family
    units: dict[str, Unit]
    outputs: list[tuple[str, TensorSpec, str]]   # (name, spec, unit key), in write order
    shards: list[list[tuple[str, TensorSpec, str]]]
    config_out: str
    total_size: int
    total_parameters: int
    bytes_read: int
    counts: dict[str, int]
    requantized: list
    warnings: list[str]
    allocation: Any = None                    # quality.Allocation for target_bpw


def _is_float(dt: np.dtype) -> bool:
    return dt.kind == "f" or dt == np.dtype(bfloat16)


def _layer_params(entry: Any, glob_gs: int, glob_bits: int, glob_mode: str
                  ) -> tuple[int, int, str]:
    """(group_size, bits, mode) of a predicate's answer as ``nn.quantize`` applies it: a
    dict goes to ``to_quantized`` verbatim, so no ``mode`` means affine (whatever the
    global mode) and missing or null fields take that mode's defaults."""
    if isinstance(entry, Mapping):
        mode = entry.get("mode") or "affine"
        if mode not in MODE_DEFAULTS:
            raise UnknownEnumValueError(f"a quant predicate asked for mode {mode!r}; expected "
                                        f"one of {', '.join(MODE_DEFAULTS)}", key="mode")
        dgs, dbits = MODE_DEFAULTS[mode]
        return int(entry.get("group_size") or dgs), int(entry.get("bits") or dbits), mode
    return glob_gs, glob_bits, glob_mode


def _quant_specs(path: str, spec: TensorSpec, gs: int, bits: int, mode: str
                 ) -> list[tuple[str, TensorSpec]]:
    lead, cols = spec.shape[:-1], spec.shape[-1]
    sdt = spec.dtype if mode == "affine" else np.dtype(np.uint8)
    out = [(f"{path}.weight", TensorSpec(lead + (cols * bits // 32,), np.dtype(np.uint32))),
           (f"{path}.scales", TensorSpec(lead + (cols // gs,), sdt))]
    if mode == "affine":
        out.append((f"{path}.biases", TensorSpec(lead + (cols // gs,), sdt)))
    return out


def _sanitize(family: Family, weights: Mapping[str, graph.Tensor],
              config: Mapping[str, Any]) -> dict[str, graph.Tensor]:
    try:
        # config counts the port loops over must fit these tensors (mlxq.models.common)
        with counts_bounded_by(weights):
            out = family.sanitize(Weights(weights), config)
    except MlxqError:
        raise
    except KeyError as e:  # a port that indexes a plain dict: still name the tensor
        raise FormatError(f"{e.args[0]} is missing: mlx-lm's {family.module} sanitize needs "
                          "it", key=str(e.args[0])) from None
    for name, t in out.items():
        if not isinstance(t, graph.Tensor):  # pragma: no cover - a port's bug
            raise FormatError(f"{family.module} sanitize produced {name!r} as "
                              f"{type(t).__name__}, not a tensor")
    return dict(out)


def make_plan(src: SourceCheckpoint, opts: Options) -> Plan:
    """The plan for converting ``src`` (see the module docstring)."""
    config = dict(src.config)
    warnings: list[str] = []
    family = family_for(config, allow_unknown=opts.allow_unknown_architecture)
    if family.generic:
        warnings.append(
            f"model_type {config.get('model_type')!r} is not one mlx-lm supports "
            f"(mlxq knows {len(supported_model_types())} types): converting with generic "
            "rules (no sanitize step, natural-sort parameter order, the generic rule for "
            "what to quantize); mlx_lm.load cannot load such a model anyway")
    # counts of layers, experts, heads bound nothing until checked against the tensors
    check_config_counts(config, src.tensors)
    requantized: list = []
    fp8_weights = 0
    if src.external is not None:
        weights, ext_block = external_tensors(src, opts.allow_requantize, requantized)
        config["quantization"] = ext_block
    else:
        prepared = prepare(src.tensors, config, family, opts)
        weights, config = prepared.weights, prepared.config
        fp8_weights = prepared.fp8_weights
        warnings.extend(prepared.notes)
    # load_model: ModelArgs.from_dict may write into the config it is given (text_config
    # defaults of multimodal containers), and convert saves that dict
    config = family.config_as_loaded(config)
    block = config.get("quantization")
    base = _sanitize(family, weights, config)
    # a tensor mlx-lm's model has no parameter for, named as the checkpoint has it (before
    # quantization adds its scales)
    family.check_parameters(base, config)

    # dtype: mlx-lm's convert: --dtype, else torch_dtype, else text_config.dtype
    dtype = opts.dtype
    if dtype is not None and dtype not in CONVERSION_DTYPES:
        raise UnknownEnumValueError(f"dtype {dtype!r}; expected one of "
                                    f"{', '.join(CONVERSION_DTYPES)}", key="dtype")
    if dtype is None:
        dtype = config.get("torch_dtype")
    if dtype is None and isinstance(config.get("text_config"), Mapping):
        dtype = config["text_config"].get("dtype")
    cast_to = _NP_DTYPE.get(dtype) if isinstance(dtype, str) else None

    def cast(name: str, t: graph.Tensor) -> graph.Tensor:
        if cast_to is not None and _is_float(t.dtype) and family.casts(name):
            return t.astype(cast_to)
        return t

    stored = stored_layers({n: t.spec for n, t in base.items()}, block,
                           lambda path: family.in_features(path, config))
    _check_widths(family, config, base, stored)
    block = dict(block) if block is not None else None
    units: dict[str, Unit] = {}
    owner: set[str] = set()
    # fp8: FP8 weights of the source made dense, as mlx-lm's sanitize (or its load) does
    # whatever the flags
    counts = {"quantize": 0, "kept": 0, "dequantize": 0, "fp8": fp8_weights}

    if opts.dequantize and family.no_dequantize and stored:
        raise InvalidArgumentError(f"dequantize: {family.no_dequantize}", key="dequantize")
    if opts.dequantize:
        for path, layer in stored.items():
            w, s = base[path + ".weight"], cast(path + ".scales", base[path + ".scales"])
            b = base.get(path + ".biases")
            b = cast(path + ".biases", b) if b is not None else None
            g = base.get(path + ".global_scale")
            dense = graph.dequantize(w, s, b, layer.group_size, layer.bits, layer.mode,
                                     global_scale=g)
            units[path + ".weight"] = Unit("dequantize", [(path + ".weight", dense.spec)], dense)
            owner.update(k for k in (path + ".weight", path + ".scales", path + ".biases",
                                     path + ".global_scale") if k in base)
            counts["dequantize"] += 1
        config.pop("quantization", None)
        config.pop("quantization_config", None)
    else:
        counts["kept"] = len(stored)
        for path in stored:
            # a stored layer's parts are copied together, a row block of each in turn, so a
            # source that makes all three from one block (a GGUF's) reads each block once
            names = [path + k for k in (".weight", ".scales", ".biases") if path + k in base]
            parts = [cast(n, base[n]) for n in names]
            if len(parts) > 1 and len({t.nrows for t in parts}) == 1:
                units[names[0]] = Unit("copy", [(n, t.spec) for n, t in zip(names, parts)],
                                       parts[0], parts=parts)
                owner.update(names)

    if opts.quantize:
        q_mode = opts.q_mode
        if q_mode not in MODE_DEFAULTS:
            raise UnknownEnumValueError(f"q_mode {q_mode!r}; expected one of "
                                        f"{', '.join(MODE_DEFAULTS)}", key="q_mode")
        gs, bits = MODE_DEFAULTS[q_mode]
        gs, bits = opts.q_group_size or gs, opts.q_bits or bits
        params = {"group_size": gs, "bits": bits, "mode": q_mode}
        fine_grained = block is not None and not opts.dequantize
        if not fine_grained:
            block = dict(params)
        predicate = _predicate(opts, family, config, base, params)
        # in mlx-lm's module order: nn.quantize records per-layer entries as it walks the
        # model, and json.dump keeps that order inside the block
        for n in sorted(base, key=family.order_for(config).key):
            if not n.endswith(".weight") or n[: -len(".weight")] in stored:
                continue
            path = n[: -len(".weight")]
            dense = cast(n, base[n])
            if not family.quantizable(path, dense.shape, dense.dtype):
                continue
            if dense.shape[-1] % gs != 0:  # wrapped_predicate: the *global* group size
                continue
            entry = predicate(path, dense.spec)
            if not entry:
                continue
            why = family.unquantizable_reason(path)
            if why is not None:
                raise UnsupportedFormatError(f"cannot be quantized: {why}", layer=path)
            if isinstance(entry, Mapping):
                block[path] = dict(entry)
            elif fine_grained:
                block[path] = dict(params)
            lgs, lbits, lmode = _layer_params(entry, gs, bits, q_mode)
            if dense.shape[-1] % lgs != 0:
                raise InvalidArgumentError(
                    f"last axis {dense.shape[-1]} is not divisible by the layer's group size "
                    f"{lgs}", layer=path)
            units[n] = Unit("quantize", _quant_specs(path, dense.spec, lgs, lbits, lmode),
                            dense, path, lgs, lbits, lmode)
            owner.add(n)
            counts["quantize"] += 1
        config["quantization"] = block

    for n, t in base.items():  # everything else is copied (cast when floating)
        if n not in owner:
            ct = cast(n, t)
            units[n] = Unit("copy", [(n, ct.spec)], ct)

    allocation = _quality(opts, config, units, block, family, warnings,
                          _dense_view(base, stored), getattr(src, "remote", False))

    outputs = [(name, spec, key) for key, u in units.items() for name, spec in u.outputs]
    order = family.order_for(config)
    outputs.sort(key=lambda o: order.key(o[0]))
    names = [o[0] for o in outputs]
    if len(set(names)) != len(names):
        seen: set[str] = set()
        dup = next(n for n in names if n in seen or seen.add(n))  # type: ignore[func-returns-value]
        raise KeyCollisionError(f"two output tensors would be named {dup!r}", key=dup)
    family.check_parameters(names, config)

    shards = make_shards(outputs, opts.max_shard_size)
    total_size = sum(o[1].nbytes for o in outputs)
    total_parameters = _count_parameters({n: s.size for n, s, _ in outputs},
                                         config.get("quantization"))
    used = set()
    for u in units.values():
        for t in u.tensors():
            used.update(t.sources())
    bytes_read = sum(s.nbytes for s in used)
    # save: "Models with a vision tower need vision_config to load it again"
    keep_vision = any(n.startswith("model.vision_tower.") for n in names)
    return Plan(family, units, outputs, shards, config_text(config, keep_vision), total_size,
                total_parameters, bytes_read, counts, requantized, warnings, allocation)


def _dense_view(base: Mapping[str, graph.Tensor], stored: Mapping[str, Any]
                ) -> dict[str, graph.Tensor]:
    """The sanitized tensors with each layer kept quantized from the source seen as its
    dequantized weight (lazily: the data-free estimate reads what it needs)."""
    view = {n: t for n, t in base.items()}
    for path, layer in stored.items():
        w, s = base.get(path + ".weight"), base.get(path + ".scales")
        if w is None or s is None:
            continue
        view[path + ".weight"] = graph.dequantize(
            w, s, base.get(path + ".biases"), layer.group_size, layer.bits, layer.mode,
            global_scale=base.get(path + ".global_scale"))
    return view


def _quality(opts: Options, config: Mapping[str, Any], units: dict[str, Unit],
             block: Optional[dict], family: Family, warnings: list[str],
             weights: Mapping[str, graph.Tensor], remote: bool = False) -> Any:
    """``q_method``, ``imatrix`` and ``target_bpw`` (mlxq.conversion.quality) on the
    quantize units; returns the bits allocation, if any. ``weights``: the sanitized
    tensors (the data-free estimate reads them); ``remote``: the source's shards are not
    on disk yet, so nothing can be read while planning."""
    if opts.q_method not in ("mlx", "mse", "gptq"):
        raise UnknownEnumValueError(f"q_method {opts.q_method!r}; expected 'mlx', 'mse' or "
                                    "'gptq'", key="q_method")
    if not opts.quantize:
        for name, given in ((arg("q_method", "mse"), opts.q_method != "mlx"),
                            (arg("imatrix", opts.imatrix), opts.imatrix is not None),
                            (arg("target_bpw", opts.target_bpw),
                             opts.target_bpw is not None),
                            (arg("calibrate", opts.calibrate), opts.calibrate is not None)):
            if given:
                raise InvalidArgumentError(f"{name} chooses how layers are quantized: it "
                                           f"needs {arg('quantize')}")
        return None
    if opts.target_bpw is not None and (opts.q_bits is not None or
                                        opts.quant_predicate is not None):
        other = arg("q_bits", opts.q_bits) if opts.q_bits is not None else \
            arg("quant_predicate", opts.quant_predicate)
        raise InvalidArgumentError(f"{arg('target_bpw', opts.target_bpw)} chooses the bits of "
                                   f"each layer: give it without {other}")
    if opts.target_bpw is not None and opts.q_mode != "affine":
        raise InvalidArgumentError(f"{arg('target_bpw', opts.target_bpw)} chooses affine bits "
                                   f"per layer; {arg('q_mode', opts.q_mode)} has one width",
                                   key="q_mode")
    from .quality import allocate, importance_for

    q = [u for u in units.values() if u.kind == "quantize"]
    datafree = (opts.q_method == "mse" and opts.statistics is None and opts.imatrix is None
                and q)
    if remote and (opts.target_bpw is not None or datafree):
        what = (arg("target_bpw", opts.target_bpw) if opts.target_bpw is not None
                else f"{arg('q_method', 'mse')} without {arg('imatrix', 'STATS')}")
        raise InvalidArgumentError(
            f"{what} reads every weight before the conversion starts, and a Hub source's "
            "shards are downloaded while converting: download the repository first (for "
            "example `hf download REPO --local-dir DIR`) and convert the folder",
            key="target_bpw" if opts.target_bpw is not None else "q_method")
    for u in q:
        u.method = opts.q_method
    stats = opts.statistics
    if stats is None and opts.imatrix is not None:
        from ..calibration.stats import is_statistics_file, load_statistics

        if is_statistics_file(opts.imatrix):
            stats = load_statistics(opts.imatrix)
    if opts.q_method == "gptq":
        _gptq_units(q, stats, opts, warnings)
    if stats is not None:
        for u in q:
            s = stats.get(u.path)
            if s is not None and u.tensor.ndim == 2 and s.in_sum2.shape[0] == u.tensor.shape[-1]:
                u.importance = s.importance
        # an untied embedding's input is a token id: no column statistics to miss
        missing = [u.path for u in q if u.importance is None
                   and not _is_embedding(u.path)]
        if missing:
            warnings.append(f"the calibration statistics cover {len(q) - len(missing)} of "
                            f"{len(q)} quantized layers (not {missing[0]}, ...): the others "
                            "weigh every column alike")
    elif opts.imatrix is not None:
        imps = importance_for(opts.imatrix, config, {u.path: u.tensor.shape for u in q},
                              opts.imatrix_arch)
        for u in q:
            u.importance = imps.get(u.path)
        missing = [u.path for u in q if u.importance is None]
        if missing:
            warnings.append(f"the importance matrix covers {len(q) - len(missing)} of {len(q)} "
                            f"quantized layers (not {missing[0]}, ...): the others weigh every "
                            "column alike")
        if opts.q_method == "mlx" and opts.target_bpw is None:
            warnings.append(f"{arg('imatrix', opts.imatrix)} has no effect with "
                            f"{arg('q_method', 'mlx')} (MLX's choice looks at no importance); "
                            f"use {arg('q_method', 'mse')} or {arg('target_bpw', 4.5)}")
    elif datafree:
        _estimate(q, config, family, weights, warnings)
    if opts.target_bpw is None:
        return None
    from .execute import BLOCK_BYTES

    # layers the model's own predicate pinned (a router at 8 bits) keep their bits
    free = [u for u in q if u.mode == "affine" and not (block and isinstance(
        block.get(u.path), Mapping) and u.path in _pinned(family, config, u.path))]
    fixed = [u for u in units.values() if u not in free]
    fixed_bytes = sum(s.nbytes for u in fixed for _, s in u.outputs)
    fixed_params = _count_parameters({n: s.size for u in fixed for n, s in u.outputs},
                                     block if any(u.kind == "quantize" for u in fixed) else None)
    alloc = allocate(free, fixed_bytes, fixed_params, opts.target_bpw,
                     "mse" if opts.q_method == "gptq" else opts.q_method, BLOCK_BYTES)
    order = family.order_for(config)
    for u in sorted(free, key=lambda u: order.key(u.path + ".weight")):
        u.bits = alloc.bits[u.path]
        u.outputs = _quant_specs(u.path, u.tensor.spec, u.group_size, u.bits, u.mode)
        block[u.path] = {"group_size": u.group_size, "bits": u.bits, "mode": "affine"}
    return alloc


def _estimate(q: Sequence[Unit], config: Mapping[str, Any], family: Family,
              weights: Mapping[str, graph.Tensor], warnings: list[str]) -> None:
    """``q_method="mse"`` without statistics: each layer weighted by the input sizes
    :mod:`mlxq.conversion.datafree` estimates from the weights; a layer it cannot estimate
    keeps MLX's own quantization (weighing every column alike moves each group's largest
    weights off the grid, which raises perplexity: benchmarks/bench_ppl.py)."""
    from .datafree import estimate_importance

    text = dict(config)
    if isinstance(config.get("text_config"), Mapping):
        text.update(config["text_config"])
    est = estimate_importance(weights, text, family.module,
                              {u.path: u.tensor.shape for u in q})
    missing = []
    for u in q:
        u.importance = est.importance.get(u.path)
        if u.importance is None:
            u.method = "mlx"
            # an untied embedding's input is a token id: no input to estimate
            if not _is_embedding(u.path):
                missing.append(u.path)
    if missing:
        warnings.append(f"{arg('q_method', 'mse')}: {len(missing)} of {len(q)} quantized layers "
                        f"(e.g. {missing[0]}) are not in a decoder layer mlxq can estimate the "
                        "inputs of, and keep MLX's own quantization; calibration statistics "
                        f"({arg('calibrate', 'TEXT_FILE')} or {arg('imatrix', 'FILE')}) cover "
                        "every layer")


#: GPTQ is not applied to embeddings: a tied embedding's rows are looked up as well as
#: multiplied, and GPTQ's error feedback only serves the multiplication
_EMBEDDING_SUFFIXES = ("embed_tokens", "wte", "word_embeddings", "embeddings")


def _is_embedding(path: str) -> bool:
    return path.rsplit(".", 1)[-1] in _EMBEDDING_SUFFIXES


class _HessianOf:
    """Reads a layer's Hessian when called; ``key`` names the input it belongs to (layers
    sharing it share a factorisation), ``owner`` the statistics it comes from."""

    def __init__(self, stats: Any, path: str):
        self.owner, self.path = stats, path
        self.key = stats[path].hessian_key

    def __call__(self) -> Optional[np.ndarray]:
        return self.owner.hessian(self.path)


def _gptq_units(q: Sequence[Unit], stats: Any, opts: Options, warnings: list[str]) -> None:
    """Each quantize unit with a Hessian gets GPTQ (act-order); embeddings get "mse" (with
    GPTQ's layers, the lower perplexity in benchmarks/bench_ppl.py); the rest (layers the
    statistics miss, stacked experts, fp modes) MLX's own choice."""
    if stats is None:
        raise InvalidArgumentError(f"{arg('q_method', 'gptq')} needs each layer's input "
                                   f"Hessian: give {arg('calibrate', 'TEXT_FILE')} or "
                                   f"{arg('imatrix', 'STATS')} with a statistics file saved by "
                                   f"{arg('save_imatrix', 'FILE')}", key="q_method")
    fallback = []
    for u in q:
        s = stats.get(u.path)
        ok = (s is not None and s.hessian_key is not None and u.mode == "affine"
              and u.tensor.ndim == 2 and s.in_sum2.shape[0] == u.tensor.shape[-1]
              and not _is_embedding(u.path))
        if ok:
            u.hessian = _HessianOf(stats, u.path)
        else:
            embedding = _is_embedding(u.path)
            u.method = "mse" if embedding and u.mode == "affine" else "mlx"
            if not embedding:
                fallback.append(u.path)
    if fallback:
        warnings.append(f"{arg('q_method', 'gptq')}: {len(fallback)} of {len(q)} layers have no "
                        f"Hessian to use (layers the statistics miss, stacked experts; e.g. "
                        f"{fallback[0]}) and get MLX's own quantization")


def _pinned(family: Family, config: Mapping[str, Any], path: str) -> set[str]:
    answer = family.model_quant(path, config)
    return {path} if isinstance(answer, Mapping) else set()


def _check_widths(family: Family, config: Mapping[str, Any],
                  base: Mapping[str, graph.Tensor], stored: Mapping[str, Any]) -> None:
    """A weight whose input width (dense) or output rows (dense or stored quantized) are
    not the ones the config gives mlx-lm's module (where the family knows them) is refused:
    ``load_weights`` would reject the shape."""
    for n, t in base.items():
        if not n.endswith(".weight") or t.ndim < 2:
            continue
        path = n[: -len(".weight")]
        rows = family.out_features(path, config)
        if rows is not None and t.shape[-2] != rows:
            raise FormatError(f"{n} is {list(t.shape)}, but config.json makes its output "
                              f"rows {rows}: mlx_lm.load would refuse the shape", key=n)
        if path in stored:
            continue
        want = family.in_features(path, config)
        if want is not None and t.shape[-1] != want:
            raise FormatError(f"{n} is {list(t.shape)}, but config.json makes its input "
                              f"width {want}: mlx_lm.load would refuse the shape", key=n)


def _predicate(opts: Options, family: Family, config: Mapping[str, Any],
               base: Mapping[str, graph.Tensor], params: Mapping[str, Any]
               ) -> Callable[[str, TensorSpec], Any]:
    """``quantize_model``'s ``quant_predicate``: the argument (a recipe, or a callable),
    else the model's own."""
    qp = opts.quant_predicate
    if isinstance(qp, str):
        from ..recipes import layer_layout, recipe

        rec = recipe(qp)
        location, layers = layer_layout({n: t.spec for n, t in base.items()})
        num_layers = config_int(config, "num_hidden_layers", 0) or layers or 0

        def mixed(path: str, spec: TensorSpec) -> dict:
            # mlx-lm's mixed_quant_predicate_builder records q_group_size as given (None
            # when not given)
            return {"group_size": opts.q_group_size,
                    "bits": rec.bits_for(path, num_layers=num_layers, layer_location=location),
                    "mode": "affine"}
        return mixed
    if callable(qp):
        def call(path: str, spec: TensorSpec) -> Any:
            answer = qp(path, spec)
            if not isinstance(answer, (bool, Mapping)) and answer is not None:
                raise InvalidArgumentError(
                    f"quant_predicate returned {type(answer).__name__}; it must return a "
                    "bool or a dict of quantization parameters", layer=path)
            return answer
        return call

    def model(path: str, spec: TensorSpec) -> Any:
        answer = family.model_quant(path, config)
        return True if answer is None else answer
    return model


def make_shards(outputs: Sequence[tuple[str, TensorSpec, str]], max_shard_size: int
                ) -> list[list[tuple[str, TensorSpec, str]]]:
    """mlx-lm's ``make_shards``: a new shard starts before the tensor that would push the
    current one past ``max_shard_size`` bytes."""
    shards: list[list[tuple[str, TensorSpec, str]]] = []
    size = 0
    for o in outputs:
        nb = o[1].nbytes
        if not shards or size + nb > max_shard_size:
            shards.append([])
            size = 0
        shards[-1].append(o)
        size += nb
    return shards

