"""mlx-lm's ``models/afm7.py`` (Apple Foundation Model, on-device): a fused ``qkv_proj``
(``FusedLinear``), per-head ``q_norm``/``k_norm``, scalar ``quant_key_scale`` and
``quant_value_scale`` parameters, then ``num_kv_reuse_layers`` blocks that attend with the
last block's keys and values (``kv_reuse_layers``, with a plain ``q_proj``). The output head
is the embedding (``as_linear``). No ``sanitize``.

mlx-lm cannot quantize this model: ``nn.quantize`` calls ``to_quantized(group_size, bits,
mode)`` and ``FusedLinear.to_quantized`` takes no ``mode`` (a TypeError), for ``-q`` with
any mode or recipe; mlxq refuses the same conversions (:attr:`Family.unquantizable`), so
only ``--dtype`` conversions are written."""

from __future__ import annotations

from .base import Family, Order

MLP = "mlp(gate_proj down_proj up_proj)"
NORMS = "input_layernorm post_attention_layernorm"


FAMILY = Family(
    "afm7", ("afm7",),
    order=Order(
        "model(embedding "
        "layers*(self_attn(qkv_proj out_proj q_norm k_norm quant_key_scale quant_value_scale) "
        f"{MLP} {NORMS}) "
        f"kv_reuse_layers*(self_attn(q_proj out_proj q_norm) {MLP} {NORMS}) "
        "output_norm)"),
    unquantizable={r"\.self_attn\.qkv_proj$": (
        "mlx-lm's FusedLinear.to_quantized takes no mode argument, so nn.quantize fails "
        "on it (TypeError): mlx_lm.convert cannot quantize afm7 models, nor mlx_lm.load "
        "load quantized ones")})
