"""mlx-lm's ``models/muse_spark.py`` (Muse Spark: a language model whose layers gate their
residuals, attend with fused q/k/v/gate projections (sliding with RoPE, or full without),
and route to experts that run at a compressed width between two projections; with the
vision tower when the config has one, the audio tower dropped).

Its ``Model.sanitize``, step by step (skipped for weights mlx_lm.convert already wrote,
recognised by their ``*_alpha`` tensors):

- ``model.audio_tower.*`` is dropped, and the vision tower, adapter and projection when the
  config has no ``vision_config``;
- each layer's fixed residual gates (``post_attention_residual_gate.gate``,
  ``post_feedforward_residual_gate.gate``) become the coefficients the model uses,
  ``add_{attn,ffn}_{alpha,beta}`` (``residual_gate_coefficients``: ``w = gate / 0.3``,
  ``beta = sigmoid(w)``, ``alpha = sqrt(max(sigmoid(-w) * (1 + beta), 1e-3))``, float32);
- the zero-centered norms become gains ``(1 + w)`` rounded to bfloat16 (``norm_gain``);
- the fused experts (``mlp.experts.gate_up_proj`` ``[E, 2 * inter, width]``,
  ``mlp.experts.down_proj``) become ``mlp.experts.{gate,up,down}_proj.weight`` (uint8 NVFP4
  bytes read as uint32, with their ``*_weight_scale`` as ``scales`` and ``*_weight_scale_2``
  times 6 x 448 as ``global_scale``; input scales dropped);
- ``self_attn.{q,k,v,gate}_proj`` are concatenated into ``qkvg_proj`` with the q and k rows
  of each head reordered for interleaved RoPE (``interleave_rope_rows``), and the vision
  blocks' ``attn.{q,k,v}_proj`` into ``qkv_proj`` the same way.

MLX's float32 ``sigmoid`` on the CPU is ``1 / (1 + exp(|x|))`` (or one minus it) with its
own polynomial ``exp``; :func:`mlx_sigmoid` computes exactly that, operation for operation,
so the coefficients are MLX's bits. Its ``quant_predicate`` quantizes only the experts of
the layers between the first and the last; its ``cast_predicate`` keeps the coefficients
in float32. The router ``mlp.gate`` (MoEGate) is a bare parameter.

>>> FAMILY.model_quant("model.language_model.layers.1.mlp.experts.up_proj",
...                    {"text_config": {"num_hidden_layers": 3}})
True
>>> [float(v) for v in mlx_sigmoid(np.array([0.0, -1.0], np.float32))]
[0.5, 0.2689414322376251]
"""

from __future__ import annotations

import re
from typing import Any, Mapping

import numpy as np

from ..conversion import graph
from ..errors import MissingKeyError, ParseError
from . import mx
from .base import Family, Order
from .common import Args, Weights

_F = np.float32

# Norm weights the checkpoint stores centered at zero; sanitize stores the gain.
_ZERO_CENTERED_NORMS = (
    "input_layernorm.weight",
    "pre_feedforward_layernorm.weight",
    "post_feedforward_layernorm.weight",
    "mlp.pre_expert_norm.weight",
    "mlp.experts.post_expert_norm.weight",
)
_UNUSED_QUANT_TENSORS = (
    "mlp.experts.gate_up_proj_input_scale",
    "mlp.experts.down_proj_input_scale",
)
_NVFP4_E2M1_MAX = 6.0
_NVFP4_E4M3_MAX = 448.0
_NVFP4_SCALE_2_TO_GLOBAL = _NVFP4_E2M1_MAX * _NVFP4_E4M3_MAX


# ---- MLX's float32 sigmoid, bit for bit ---------------------------------------------------

def _fma32(a: np.ndarray, b: np.ndarray, c: float) -> np.ndarray:
    """float32 ``fma(a, b, c)`` rounded once (``std::fma``): the product is exact in
    float64, the sum rounded to float64 and then to float32, with the one case where that
    double rounding can differ — a float64 sum exactly halfway between two float32 values —
    settled by the sign of the float64 sum's rounding error."""
    p = a.astype(np.float64) * b.astype(np.float64)
    cc = np.float64(np.float32(c))
    s = p + cc
    bb = s - p
    err = (p - (s - bb)) + (cc - bb)
    f = s.astype(np.float32)
    up = np.nextafter(f, _F(np.inf))
    dn = np.nextafter(f, _F(-np.inf))
    f64 = f.astype(np.float64)
    tie_up = (s == (f64 + up.astype(np.float64)) / 2) & (err > 0)
    tie_dn = (s == (f64 + dn.astype(np.float64)) / 2) & (err < 0)
    return np.where(tie_up, up, np.where(tie_dn, dn, f)).astype(np.float32)


def mlx_exp(x: np.ndarray) -> np.ndarray:
    """MLX's CPU ``simd::exp`` of float32 ``x``: ``2^(x log2 e)`` as a power of two for the
    integer part times a degree-6 polynomial (fma steps) for the fraction; NaN kept, inf
    above 88, 0 below -88."""
    x_init = np.asarray(x, np.float32)
    with np.errstate(all="ignore"):
        xx = x_init * _F(1.442695)
        ipart = np.floor(xx + _F(0.5))
        fpart = xx - ipart
        y = np.full(x_init.shape, _F(1.535336188319500e-4))
        for c in (1.339887440266574e-3, 9.618437357674640e-3, 5.550332471162809e-2,
                  2.402264791363012e-1, 6.931472028550421e-1, 1.000000000000000):
            y = _fma32(y, fpart, c)
        ip = np.where(np.isfinite(ipart), ipart, 0).astype(np.int64)
        two = ((ip + 127) << 23).astype(np.uint32).view(np.float32)
        out = np.where(np.isnan(x_init), x_init, two * y)
        out = np.where(x_init > _F(88.0), _F(np.inf), out)
        return np.where(x_init < _F(-88.0), _F(0.0), out).astype(np.float32)


def mlx_sigmoid(x: np.ndarray) -> np.ndarray:
    """MLX's CPU ``Sigmoid`` of float32 ``x``: ``y = 1 / (1 + exp(|x|))``, ``y`` for
    negative ``x``, ``1 - y`` otherwise."""
    x = np.asarray(x, np.float32)
    with np.errstate(all="ignore"):
        y = _F(1.0) / (_F(1.0) + mlx_exp(np.abs(x)))
        return np.where(x < _F(0.0), y, _F(1.0) - y).astype(np.float32)


def _gate_coefficient(which: int, temperature: float = 0.3, eps: float = 1e-3):
    def fn(gate: np.ndarray) -> np.ndarray:
        w = graph.cast_rows(gate, np.dtype(np.float32)) / _F(temperature)
        beta = mlx_sigmoid(w)
        if which:
            return beta
        with np.errstate(invalid="ignore"):
            return np.sqrt(np.maximum(mlx_sigmoid(-w) * (_F(1.0) + beta), _F(eps)))
    return fn


def residual_gate_coefficients(gate):
    """The weights of the stream and of the branch for a gate: ``(alpha, beta)``, float32."""
    return (graph.row_wise(_gate_coefficient(0), [gate], gate.shape, np.float32),
            graph.row_wise(_gate_coefficient(1), [gate], gate.shape, np.float32))


def norm_gain(weight):
    return (1.0 + weight.astype(mx.float32)).astype(mx.bfloat16)


def interleave_rope_rows(w, head_dim: int):
    """Hugging Face orders the q and k rows of a head for RoPE pairs (i, i + head_dim / 2).
    The model pairs neighbor rows (2i, 2i + 1)."""
    shape = w.shape
    w = w.reshape(-1, 2, head_dim // 2, *shape[1:])
    return mx.swapaxes(w, 1, 2).reshape(shape)


# ---- the port -------------------------------------------------------------------------------

def _sub(config: Mapping[str, Any], key: str, required: bool) -> Any:
    sub = config.get(key)
    if sub is None and required:
        raise MissingKeyError(f"config.json has no {key!r}, which mlx-lm's muse_spark model "
                              "needs", key=key)
    if sub is not None and not isinstance(sub, Mapping):
        raise ParseError(f"config.json: {key!r} must be an object", key=key)
    return sub


def sanitize(weights: Weights, config) -> Weights:
    text = Args(_sub(config, "text_config", True), head_dim=None)
    vision_cfg = _sub(config, "vision_config", False)
    # Muse Spark's audio tower is not supported.
    drop_prefixes: tuple = ("model.audio_tower.",)
    if not vision_cfg:
        drop_prefixes += ("model.vision_tower.", "model.vision_adapter.",
                          "model.vision_projection.")
    # The gates are fixed, so compute their weights once.
    gates = {"post_attention_residual_gate.gate": "add_attn",
             "post_feedforward_residual_gate.gate": "add_ffn"}
    layer_re = re.compile(r"^(model\.language_model\.layers\.\d+\.)(.+)$")
    # Weights from mlx_lm.convert already store the gate weights and the norm gains.
    converted = any(k.endswith("_alpha") for k in weights)

    sanitized = Weights()
    for k, v in weights.items():
        if k.startswith(drop_prefixes):
            continue
        m = layer_re.match(k)
        if m is None or converted:
            sanitized[k] = v
            continue

        prefix, suffix = m.groups()
        experts = prefix + "mlp.experts."
        if suffix in gates:
            alpha, beta = residual_gate_coefficients(v)
            sanitized[prefix + gates[suffix] + "_alpha"] = alpha
            sanitized[prefix + gates[suffix] + "_beta"] = beta
        elif suffix in _ZERO_CENTERED_NORMS:
            sanitized[k] = norm_gain(v)
        elif suffix == "mlp.experts.gate_up_proj":
            gate_proj, up_proj = mx.split(v, 2, axis=1)
            if v.dtype == mx.uint8:
                # In mlx quantized weights are packed into uint32
                gate_proj = gate_proj.view(mx.uint32)
                up_proj = up_proj.view(mx.uint32)
            sanitized[experts + "gate_proj.weight"] = gate_proj
            sanitized[experts + "up_proj.weight"] = up_proj
        elif suffix == "mlp.experts.gate_up_proj_weight_scale":
            # One e4m3 block scale per 16 inputs (MLX loads E4M3 as its bytes)
            gate_scales, up_scales = mx.split(_bytes(v), 2, axis=1)
            sanitized[experts + "gate_proj.scales"] = gate_scales
            sanitized[experts + "up_proj.scales"] = up_scales
        elif suffix == "mlp.experts.gate_up_proj_weight_scale_2":
            # Column 0 is the gate half, column 1 the up half.
            gate_gs, up_gs = v[:, 0], v[:, 1]
            sanitized[experts + "gate_proj.global_scale"] = gate_gs * _NVFP4_SCALE_2_TO_GLOBAL
            sanitized[experts + "up_proj.global_scale"] = up_gs * _NVFP4_SCALE_2_TO_GLOBAL
        elif suffix == "mlp.experts.down_proj":
            sanitized[experts + "down_proj.weight"] = (
                v.view(mx.uint32) if v.dtype == mx.uint8 else v)
        elif suffix == "mlp.experts.down_proj_weight_scale":
            sanitized[experts + "down_proj.scales"] = _bytes(v)
        elif suffix == "mlp.experts.down_proj_weight_scale_2":
            sanitized[experts + "down_proj.global_scale"] = v * _NVFP4_SCALE_2_TO_GLOBAL
        elif suffix in _UNUSED_QUANT_TENSORS:
            # we don't quantize activations
            continue
        else:
            sanitized[k] = v

    # The model runs q, k, v and the output gate as one matmul.
    head_dim = text.head_dim
    projections = ("q_proj", "k_proj", "v_proj", "gate_proj")
    for k in [k for k in sanitized if k.endswith("self_attn.q_proj.weight")]:
        attn = k[: -len("q_proj.weight")]
        for param in ("weight", "scales", "biases"):
            keys = [f"{attn}{p}.{param}" for p in projections]
            if all(key in sanitized for key in keys):
                q, k_, v, g = (sanitized.pop(key) for key in keys)
                q = interleave_rope_rows(q, head_dim)
                k_ = interleave_rope_rows(k_, head_dim)
                sanitized[f"{attn}qkvg_proj.{param}"] = mx.concatenate([q, k_, v, g])

    vision_q = [k for k in sanitized
                if k.startswith("model.vision_tower.") and k.endswith(".attn.q_proj.weight")]
    if vision_q:
        vision = Args(vision_cfg, hidden_size=1536, num_attention_heads=16)
        vision_head_dim = vision.hidden_size // vision.num_attention_heads
        for k in vision_q:
            attn = k[: -len("q_proj.weight")]
            for param in ("weight", "bias"):
                keys = [f"{attn}{p}_proj.{param}" for p in "qkv"]
                q, k_, v = (sanitized.pop(key) for key in keys)
                q = interleave_rope_rows(q, vision_head_dim)
                k_ = interleave_rope_rows(k_, vision_head_dim)
                sanitized[f"{attn}qkv_proj.{param}"] = mx.concatenate([q, k_, v])
    return sanitized


def _bytes(v):
    """An E4M3 scale as MLX holds it: its bytes (uint8)."""
    return v.view(mx.uint8) if v.dtype.name == "float8_e4m3fn" else v


_EXPERTS_RE = re.compile(
    r"^model\.language_model\.layers\.(\d+)\.mlp\.experts\.(gate|up|down)_proj$")


def quant_predicate(path: str, config) -> bool | dict:
    """Quantize only MoE layers except the first one and the last one."""
    text = config.get("text_config") or {}
    n = Args(text, num_hidden_layers=0).num_hidden_layers
    m = _EXPERTS_RE.match(path)
    return m is not None and int(m.group(1)) not in {0, n - 1}


def cast_predicate(k: str) -> bool:
    """Keep the gate weights in fp32 when the model is converted."""
    return not k.endswith(("_alpha", "_beta"))


LAYER = ("input_layernorm self_attn(qkvg_proj o_proj) pre_feedforward_layernorm "
         "mlp(gate(weight e_score_correction_bias) pre_expert_proj pre_expert_norm "
         "experts(gate_proj up_proj down_proj post_expert_norm) post_expert_proj) "
         "post_feedforward_layernorm add_attn_alpha add_attn_beta add_ffn_alpha add_ffn_beta")
VISION = ("vision_tower(patch_embedder(patch_embedding position_embedding_table) ln_pre "
          "layers*(norm1 attn(qkv_proj proj) norm2 mlp(fc1 fc2)) ln_post) "
          "vision_adapter(fc1 fc2) vision_projection")


def _order(config) -> Order:
    vision = f" {VISION}" if config.get("vision_config") else ""
    return Order(f"model(language_model(embed_tokens layers*({LAYER}) norm){vision}) lm_head")


FAMILY = Family(
    "muse_spark", ("muse_spark",), sanitize, _order,
    quant_predicate=quant_predicate, cast_predicate=cast_predicate,
    not_quantized=(r"\.mlp\.gate$",))
