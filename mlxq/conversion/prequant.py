"""Pre-quantized sources of the largest releases, turned into what a family's ``sanitize``
expects, lazily (docs/source-formats.md):

- **FP8** (``quant_method: "fp8"``): E4M3 weights with a block ``weight_scale_inv``
  (DeepSeek-V3/R1, Kimi K2, MiniMax-M2, GLM-4.5-FP8, Qwen3 ``-FP8``) or a per-tensor /
  per-channel ``weight_scale``. mlx-lm dequantizes them only inside five families'
  ``sanitize`` (its ``dequant``); those ports do it themselves. For any other family mlxq
  dequantizes here, before sanitize, bit for bit as ``dequant`` would (block sizes other
  than 128 included), drops activation scales, and the output config loses the now-false
  FP8 ``quantization_config``.
- **BitNet** (``quant_method: "bitnet"``): packed ternary layers, kept as they are by the
  ``bitnet`` family, whose model holds them (``BitLinear``); refused for other families.
- **compressed-tensors** ``pack-quantized`` INT (Kimi-K2-Thinking) and
  ``mxfp4-pack-quantized``: kept as MLX affine / mxfp4 layers exactly as mlx-lm's remap
  (deepseek_v3 ``sanitize``) keeps them, for any family; the config gets
  ``_compressed_tensors_quantization``'s block. When ``-q`` asks explicitly for other
  parameters (``--q-bits 3``, ``--q-mode mxfp4``, ...) the packed layers are instead
  dequantized (compressed-tensors' own formula, one rounding) and quantized again like any
  dense layer, so the bits per weight are what was asked; ``float-quantized`` FP8 layers are
  dequantized.

Any tensor left in float8 without a scale, or float8 tensors in a checkpoint whose config
says nothing of FP8, are refused by name.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping, Optional

import numpy as np

from .._dtypes import bfloat16, float8_e4m3fn
from ..errors import FormatError, MlxqError, UnknownEnumValueError, UnsupportedFormatError
from . import graph
from .options import MODE_DEFAULTS, Options

__all__ = ["Prepared", "prepare"]

_FP8 = (np.dtype(float8_e4m3fn),)
_ACTIVATION_SCALES = (".input_scale", ".activation_scale", ".k_scale", ".v_scale")


@dataclasses.dataclass
class Prepared:
    weights: dict[str, graph.Tensor]
    config: dict[str, Any]
    kind: Optional[str] = None         # "fp8" | "compressed-tensors" | None
    requantized: int = 0               # packed layers dequantized to be quantized again
    fp8_weights: int = 0               # FP8 weights made dense (here or by the sanitize)
    notes: list[str] = dataclasses.field(default_factory=list)


def _qc(config: Mapping[str, Any]) -> Any:
    text = config.get("text_config")
    return config.get("quantization_config",
                      text.get("quantization_config") if isinstance(text, Mapping) else None)


def prepare(weights: Mapping[str, graph.Tensor], config: dict[str, Any], family: Any,
            opts: Options) -> Prepared:
    """The weights (and config) ``family.sanitize`` gets for this source."""
    qc = _qc(config)
    method = qc.get("quant_method") if isinstance(qc, Mapping) else None
    out = Prepared(dict(weights), dict(config))
    packed = _mx_packed(qc) if config.get("quantization") is None else None
    if packed is not None and "mxfp8" in getattr(family, "source_formats", ()):
        # load_model's mxfp4 / mxfp8 / ue8m0-32x32 FP8 branches: the family's sanitize puts
        # the weights in MLX's layout; the config gets the block they are read with
        out.kind = "mx"
        out.config["quantization"] = dict(packed)
        out.config["quantization_config"] = dict(packed)
    elif config.get("quantization") is None and method == "fp8":
        _fp8(out, qc, family)
    elif config.get("quantization") is None and method == "compressed-tensors":
        _compressed_tensors(out, qc, family, opts)
    elif (config.get("quantization") is None and method == "bitnet"
          and "bitnet" not in getattr(family, "source_formats", ())):
        # mlx-lm's load_model turns every other family's Linear layers into BitLinear
        # (bitnet_quantize); mlxq keeps packed ternary layers only where the model itself
        # is made of them
        raise UnsupportedFormatError(
            f"BitNet-packed layers (quant_method 'bitnet') in a {family.module} checkpoint: "
            "mlxq converts them only for model_type 'bitnet'")
    stray = sorted(n for n, t in out.weights.items() if t.dtype in _FP8)
    if stray and out.kind is None and "fp8" not in getattr(family, "source_formats", ()):
        raise FormatError(f"{stray[0]} is float8 (E4M3) but config.json's quantization_config "
                          "does not say how it was scaled (quant_method 'fp8' with "
                          "weight_block_size, or compressed-tensors)", key=stray[0])
    return out


def _mx_packed(qc: Any) -> Optional[dict[str, Any]]:
    """The block mlx-lm's ``load_model`` gives a config whose ``quantization_config`` is
    already MLX's microscaling layout: ``quant_method`` "mxfp4" / "mxfp8", or "fp8" with
    UE8M0 scales over 32x32 tiles (DeepSeek-V4.1), which is mxfp8; None otherwise."""
    if not isinstance(qc, Mapping):
        return None
    method = qc.get("quant_method")
    if method == "mxfp4":
        return {"group_size": 32, "bits": 4, "mode": "mxfp4"}
    if method == "mxfp8" or (method == "fp8" and qc.get("scale_fmt") == "ue8m0"
                             and isinstance(qc.get("weight_block_size"), (list, tuple))
                             and list(qc["weight_block_size"]) == [32, 32]):
        return {"group_size": 32, "bits": 8, "mode": "mxfp8"}
    return None


# ---- FP8 -----------------------------------------------------------------------------------

def _fp8(out: Prepared, qc: Mapping[str, Any], family: Any) -> None:
    from ..formats.fp8 import Fp8Config, dequantize_fp8_scaled

    cfg = Fp8Config.from_dict(qc)
    out.kind = "fp8"
    w = out.weights
    if cfg.scale_fmt == "ue8m0" and cfg.block_size == (32, 32):
        raise UnsupportedFormatError(
            "FP8 with ue8m0 scales over 32x32 blocks (which mlx-lm keeps packed as mxfp8) "
            "is not supported yet")
    formats = getattr(family, "source_formats", ())
    # "fp8": the family's sanitize dequantizes 128x128 block scales; "fp8-scaled": also
    # per-tensor / per-expert scales (mistral4's dequant), named X_scale_inv for any X
    handled = ("fp8" in formats and cfg.block_size == (128, 128)) or (
        "fp8-scaled" in formats and cfg.block_size is None)
    # X.weight_scale_inv (block scales) or, per tensor / channel, X.weight_scale (as
    # llm-compressor writes it) or X.weight_scale_inv (as transformers' FP8 writes it, e.g.
    # Ministral 3) scale X.weight
    suffix = "_scale_inv"
    if cfg.block_size is None and not any(n.endswith(".weight_scale_inv") for n in w):
        suffix = "_scale"
    scaled = sorted(n[: -len(suffix)] for n in w if n.endswith(".weight" + suffix))
    if handled and cfg.block_size is None and suffix == "_scale_inv":
        scaled = sorted(n[: -len(suffix)] for n in w if n.endswith(suffix))
    for n in scaled:
        if n not in w:
            raise FormatError(f"{n}{suffix} has no {n} beside it", key=n + suffix)
        if w[n].dtype not in _FP8 and w[n].dtype != np.dtype(np.uint8):
            raise FormatError(f"{n} is {w[n].dtype}, but it has an FP8 scale ({n}{suffix}); an "
                              "FP8 weight is float8_e4m3fn", key=n)
    have = set(scaled)
    out.fp8_weights = len(scaled)
    for n, t in w.items():
        if t.dtype in _FP8 and n not in have:
            raise FormatError(f"{n} is float8 (E4M3) but has no {n}{suffix} beside it to say "
                              "its scale", key=n)
    if handled:
        return  # the family's sanitize dequantizes them, as mlx-lm's does
    for n in scaled:
        sc = w.pop(n + suffix)
        try:
            if cfg.block_size is not None:
                w[n] = graph.fp8_block_dequant(w[n], sc, cfg.block_size, bfloat16)
            else:
                w[n] = _fp8_scaled(w[n], sc, dequantize_fp8_scaled)
        except MlxqError as e:
            raise FormatError(f"{n}: {e.message}", key=n) from None
    dropped = [n for n in w if n.endswith(_ACTIVATION_SCALES)]
    for n in dropped:
        del w[n]
    if dropped:
        out.notes.append(f"dropped {len(dropped)} FP8 activation scales ({dropped[0]}, ...): "
                         "MLX's weights do not use them")
    # the weights are dense now: the FP8 quantization_config no longer describes them
    out.config.pop("quantization_config", None)
    if isinstance(out.config.get("text_config"), Mapping):
        tc = dict(out.config["text_config"])
        tc.pop("quantization_config", None)
        out.config["text_config"] = tc


def _fp8_scaled(weight: graph.Tensor, scale: graph.Tensor, fn: Any) -> graph.Tensor:
    if weight.ndim != 2:
        raise FormatError(f"an FP8 weight with a per-tensor or per-channel scale is 2-D, got "
                          f"{list(weight.shape)}")
    if scale.size == 1:
        return graph.row_wise(lambda w, s: fn(w, s.reshape(()), bfloat16), [weight, scale],
                              weight.shape, bfloat16, whole=[False, True])
    if scale.size == weight.shape[0]:
        s2 = scale.reshape(weight.shape[0], 1)
        return graph.row_wise(lambda w, s: fn(w, s, bfloat16), [weight, s2], weight.shape,
                              bfloat16)
    raise FormatError(f"a per-tensor scale is one value and a per-channel one has "
                      f"{weight.shape[0]} (one per output row); got {list(scale.shape)}")


# ---- compressed-tensors --------------------------------------------------------------------

def _block(fmt: str) -> dict[str, Any]:
    """mlx-lm's ``_compressed_tensors_quantization``."""
    if fmt == "mxfp4-pack-quantized":
        return {"group_size": 32, "bits": 4, "mode": "mxfp4"}
    if fmt == "pack-quantized":
        return {"group_size": 32, "bits": 4, "mode": "affine"}
    raise UnsupportedFormatError(f"compressed-tensors format {fmt!r} is not one MLX holds "
                                 "packed; dequantize to bf16 before converting")


def _requested(opts: Options) -> Optional[tuple[int, int, str]]:
    """The parameters ``-q`` asks for explicitly (None for a plain ``-q``, which keeps
    already-quantized layers as mlx-lm does)."""
    if not opts.quantize or (opts.q_bits is None and opts.q_group_size is None
                             and opts.q_mode == "affine"):
        return None
    gs, bits = MODE_DEFAULTS.get(opts.q_mode, (64, 4))
    return (opts.q_group_size or gs, opts.q_bits or bits, opts.q_mode)


def _compressed_tensors(out: Prepared, qc: Mapping[str, Any], family: Any,
                        opts: Options) -> None:
    from ..formats import compressed_tensors as ct
    from ..formats.fp8 import dequantize_fp8_scaled

    cfg = ct.parse_config(qc)
    cfg.validate()
    out.kind = "compressed-tensors"
    w = out.weights
    want = _requested(opts)
    packed = sorted(n[: -len(".weight_packed")] for n in w if n.endswith(".weight_packed"))
    kept_any = False
    handled = "compressed-tensors" in getattr(family, "source_formats", ())
    for p in packed:
        g = cfg.group_for(p)
        if g is None:
            raise FormatError(f"{p}.weight_packed is packed but no compressed-tensors config "
                              "group targets it (or ignore lists it)", layer=p)
        route = g.route
        # mxfp4-pack-quantized stores no weight_shape (compressed-tensors' MXFP4 compressor
        # registers only weight_packed and weight_scale): two E2M1 codes per byte give it
        leaves = (".weight_scale",) if route is ct.Route.MXFP4 else (".weight_scale",
                                                                     ".weight_shape")
        for leaf in leaves:
            if p + leaf not in w:
                raise FormatError(f"{p}.weight_packed has no {p}{leaf} beside it", layer=p)
        bits = g.weights.num_bits
        gs = g.weights.group_size if g.weights.strategy == "group" else None
        mode = "mxfp4" if route is ct.Route.MXFP4 else "affine"
        if p + ".weight_shape" in w:
            shape = tuple(int(v) for v in w[p + ".weight_shape"].numpy().reshape(-1))
        else:
            packed = w[p + ".weight_packed"]
            shape = tuple(packed.shape[:-1]) + (packed.shape[-1] * 2,)
        if len(shape) != 2:
            raise FormatError(f"{p}.weight_shape must be [out, in], got {list(shape)}", layer=p)
        requant = want is not None and want != (gs, bits, mode)
        if requant or route is not ct.Route.PACKED_INT and route is not ct.Route.MXFP4:
            w[p + ".weight"] = _ct_dense(w, p, shape, bits, route, ct)
            for leaf in (".weight_packed", ".weight_scale", ".weight_shape"):
                w.pop(p + leaf, None)
            out.requantized += 1
            continue
        kept_any = True
        if handled and route is ct.Route.PACKED_INT and bits == 4:
            continue  # the family's sanitize remaps it, as mlx-lm's does
        _ct_keep(w, p, shape, bits, route, ct)
    for n, t in list(w.items()):  # float-quantized FP8 layers (no packing)
        if n.endswith(".weight_scale") and n[: -len("_scale")] in w and \
                w[n[: -len("_scale")]].dtype in _FP8:
            base = n[: -len("_scale")]
            w[base] = _fp8_scaled(w[base], w.pop(n), dequantize_fp8_scaled)
    for n in [n for n in w if n.endswith(_ACTIVATION_SCALES)]:
        del w[n]
    if kept_any:
        out.config["quantization"] = _block(cfg.format if cfg.format in (
            "pack-quantized", "mxfp4-pack-quantized") else packed_format(cfg))
    if out.requantized and not kept_any:
        out.config.pop("quantization_config", None)
        if isinstance(out.config.get("text_config"), Mapping):  # Kimi K2.5 keeps it there
            tc = dict(out.config["text_config"])
            tc.pop("quantization_config", None)
            out.config["text_config"] = tc


def packed_format(cfg: Any) -> str:
    for g in cfg.groups:
        if g.format in ("pack-quantized", "mxfp4-pack-quantized"):
            return g.format
    return cfg.format


def _ct_keep(w: dict, p: str, shape: tuple, bits: int, route: Any, ct: Any) -> None:
    packed, scale = w.pop(p + ".weight_packed"), w.pop(p + ".weight_scale")
    w.pop(p + ".weight_shape", None)
    if route is ct.Route.MXFP4:
        # the packed bytes read as little-endian uint32: a quarter as many columns
        w[p + ".weight"] = graph.row_wise(lambda a, s: ct.to_mlx_mxfp4(a, s)[0],
                                          [packed, scale],
                                          packed.shape[:-1] + (packed.shape[-1] // 4,),
                                          np.uint32)
        w[p + ".scales"] = graph.row_wise(lambda a, s: ct.to_mlx_mxfp4(a, s)[1],
                                          [packed, scale], scale.shape, np.uint8)
        return
    # mlx-lm's remap: the words viewed as uint32, scales as they are, biases -8 * scales
    probe = ct.to_mlx_affine(np.zeros((1, packed.shape[1]), np.int32),
                             np.zeros((1, scale.shape[1]), scale.dtype), (1, shape[1]),
                             num_bits=bits)
    cols = probe.scales.shape[1]

    def part(i: int):
        return lambda a, s: tuple(ct.to_mlx_affine(a, s, (a.shape[0], shape[1]),
                                                   num_bits=bits))[i]
    w[p + ".weight"] = packed.view(np.uint32)
    w[p + ".scales"] = graph.row_wise(part(1), [packed, scale], (shape[0], cols), scale.dtype)
    w[p + ".biases"] = graph.row_wise(part(2), [packed, scale], (shape[0], cols), scale.dtype)


def _ct_dense(w: dict, p: str, shape: tuple, bits: int, route: Any, ct: Any) -> graph.Tensor:
    packed, scale = w[p + ".weight_packed"], w[p + ".weight_scale"]
    if route is ct.Route.MXFP4:
        from ..quant import dequantize

        def fn(a, s):
            wq, sc = ct.to_mlx_mxfp4(a, s)
            return dequantize(wq, sc, mode="mxfp4", dtype=bfloat16)
        return graph.row_wise(fn, [packed, scale], shape, bfloat16)
    if route is not ct.Route.PACKED_INT:
        raise UnknownEnumValueError(f"compressed-tensors route {route} has no dense form",
                                    layer=p)
    # compressed-tensors' own formula, (code - 2^(bits-1)) * scale rounded once: the values
    # the producer quantized from, the best start for quantizing again
    return graph.row_wise(
        lambda a, s: ct.dequantize_pack_quantized(a, s, (a.shape[0], shape[1]),
                                                  num_bits=bits, formula="compressed-tensors"),
        [packed, scale], shape, scale.dtype)
