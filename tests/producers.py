"""Synthetic checkpoints in other producers' formats, built the way each producer builds them.

Each builder follows the producer's own packing code (read from its source; re-expressed in
numpy, not copied) and returns the integer codes, scales and zeros it packed, so tests can
compute independent references with the producer's dequantization formula:

- AutoAWQ ``WQLinear_GEMM.from_linear`` (awq/modules/linear/gemm.py): qweight int32
  ``[in, out/8]``, column ``8c + order_map[s]`` in nibble ``s``, order_map [0,2,4,6,1,3,5,7];
  qzeros the same along groups; dequant ``(q - z) * s`` (awq/utils/packing_utils.py
  ``dequantize_gemm``).
- AutoGPTQ ``QuantLinear.pack`` (auto_gptq/nn_modules/qlinear/qlinear_cuda_old.py): qweight
  ``[in*bits/32, out]``, codes LSB-first along the input axis (3-bit: 10 codes, then one
  split over two words, ...); ``zeros -= 1`` then packed along the output axis (v1);
  GPTQModel's gptq_v2 stores the zeros themselves. Dequant
  ``scales[g_idx] * (q - zeros[g_idx])`` (GPTQModel ``dequantize_weight``), v1 zeros + 1.
- gpt-oss MXFP4 (transformers ``convert_moe_packed_tensors``): blocks uint8
  ``[..., out, in/32, 16]`` low nibble first, scales uint8 E8M0 (bias 127).

Also MLX-layout unpackers written from docs/formats.md, independent of mlxq's C code.
"""

from __future__ import annotations

import json
import os

import numpy as np

import mlxq
from mlxq.synthetic import make_checkpoint

AWQ_ORDER = [0, 2, 4, 6, 1, 3, 5, 7]

FP4_LUT = np.array([+0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0,
                    -0.0, -0.5, -1.0, -1.5, -2.0, -3.0, -4.0, -6.0], np.float32)


def asym_params(w: np.ndarray, group: int, bits: int, scale_dtype) -> tuple:
    """Per-group (over the input axis) min/max scales and zeros, GPTQ/AWQ style.
    w is [out, in]; returns codes [in, out] (int64), scales [G, out], zeros [G, out]."""
    out_f, in_f = w.shape
    maxq = (1 << bits) - 1
    g = w.reshape(out_f, in_f // group, group)
    lo = np.minimum(g.min(-1), 0)
    hi = np.maximum(g.max(-1), 0)
    s = ((hi - lo) / maxq).astype(scale_dtype)
    s = np.where(s.astype(np.float32) == 0, np.asarray(1, scale_dtype), s)
    sf = s.astype(np.float64)
    z = np.clip(np.round(-lo / sf), 0, maxq).astype(np.int64)
    q = np.clip(np.round(g / sf[..., None]) + z[..., None], 0, maxq).astype(np.int64)
    return q.reshape(out_f, in_f).T.copy(), s.T.copy(), z.T.copy()


# ---- AutoAWQ --------------------------------------------------------------------------------

def awq_pack(codes: np.ndarray) -> np.ndarray:
    """codes [rows, cols] (0..15) -> int32 [rows, cols/8] with AutoAWQ's order_map."""
    rows, cols = codes.shape
    packed = np.zeros((rows, cols // 8), np.uint32)
    for col in range(cols // 8):
        for i in range(8):
            packed[:, col] |= codes[:, col * 8 + AWQ_ORDER[i]].astype(np.uint32) << (4 * i)
    return packed.view(np.int32)


def awq_checkpoint(rng, out_f: int, in_f: int, group: int, scale_dtype=np.float16):
    """(qweight, scales, qzeros, codes [in, out], zeros [G, out])."""
    w = rng.standard_normal((out_f, in_f)).astype(np.float32)
    q, s, z = asym_params(w, group, 4, scale_dtype)
    return awq_pack(q), s, awq_pack(z), q, z


def awq_dequant(codes: np.ndarray, scales: np.ndarray, zeros: np.ndarray, group: int):
    """AutoAWQ's dequantize_gemm in float64: [in, out]."""
    s = np.repeat(scales.astype(np.float64), group, axis=0)
    z = np.repeat(zeros.astype(np.float64), group, axis=0)
    return (codes - z) * s


# ---- GPTQ -------------------------------------------------------------------------------------

def stream_pack(codes: np.ndarray, bits: int, axis: int) -> np.ndarray:
    """LSB-first bit stream of codes along `axis` into 32-bit words (GPTQ's pack, written as
    AutoGPTQ's 3-bit loop does it: a continuous stream, codes split across words)."""
    c = np.moveaxis(codes.astype(np.uint64), axis, 0)
    n = c.shape[0]
    words = np.zeros((n * bits // 32,) + c.shape[1:], np.uint64)
    for j in range(n):
        bit = j * bits
        w, sh = divmod(bit, 32)
        v = c[j] & ((1 << bits) - 1)
        words[w] |= (v << sh) & 0xFFFFFFFF
        if sh + bits > 32:
            words[w + 1] |= v >> (32 - sh)
    return np.moveaxis(words.astype(np.uint32), 0, axis).view(np.int32)


def stream_unpack(words: np.ndarray, bits: int, n: int) -> np.ndarray:
    """Inverse of stream_pack along the last axis: [..., words] -> [..., n] codes."""
    w = words.view(np.uint32).astype(np.uint64)
    out = np.zeros(w.shape[:-1] + (n,), np.int64)
    for j in range(n):
        bit = j * bits
        k, sh = divmod(bit, 32)
        v = w[..., k] >> sh
        if sh + bits > 32:
            v |= w[..., k + 1] << (32 - sh)
        out[..., j] = (v & ((1 << bits) - 1)).astype(np.int64)
    return out


def gptq_checkpoint(rng, out_f: int, in_f: int, group: int, bits: int, *, v2: bool = False,
                    scale_dtype=np.float16, act_order: bool = False):
    """A GPTQ layer: dict of tensors plus (codes [in, out], scales [G, out], zeros [G, out],
    g_idx [in]). group -1 is one group over the whole input."""
    g = in_f if group == -1 else group
    w = rng.standard_normal((out_f, in_f)).astype(np.float32)
    groups = -(-in_f // g)
    if act_order:
        g_idx = np.arange(in_f) // g
        g_idx = g_idx[rng.permutation(in_f)].astype(np.int32)
    else:
        g_idx = (np.arange(in_f) // g).astype(np.int32)
    maxq = (1 << bits) - 1
    scales = np.zeros((groups, out_f), scale_dtype)
    zeros = np.zeros((groups, out_f), np.int64)
    for k in range(groups):
        cols = w[:, g_idx == k]
        lo = np.minimum(cols.min(1), 0)
        hi = np.maximum(cols.max(1), 0)
        s = ((hi - lo) / maxq).astype(scale_dtype)
        scales[k] = s
        zeros[k] = np.clip(np.round(-lo / s.astype(np.float64)), 1, maxq)  # v1 cannot store 0
    sf = scales.astype(np.float64)[g_idx]  # [in, out]
    codes = np.clip(np.round(w.T / sf) + zeros[g_idx], 0, maxq).astype(np.int64)
    stored = zeros - (0 if v2 else 1)
    tensors = {
        "qweight": stream_pack(codes, bits, axis=0),
        "qzeros": stream_pack(stored, bits, axis=1),
        "scales": scales,
        "g_idx": g_idx,
    }
    return tensors, codes, scales, zeros, g_idx


def gptq_dequant(codes, scales, zeros, g_idx):
    """GPTQModel's dequantize_weight in float64: [in, out]."""
    return scales.astype(np.float64)[g_idx] * (codes - zeros[g_idx])


# ---- MLX layout (docs/formats.md) -----------------------------------------------------------

def mlx_unpack(wq: np.ndarray, bits: int, n: int) -> np.ndarray:
    """MLX affine codes [out, n] from wq [out, n*bits/32]: the same LSB-first stream."""
    return stream_unpack(wq, bits, n)


# ---- gpt-oss MXFP4 ----------------------------------------------------------------------------

def mxfp4_checkpoint(rng, lead: tuple, out_f: int, in_f: int):
    blocks = rng.integers(0, 256, size=lead + (out_f, in_f // 32, 16), dtype=np.uint8)
    scales = rng.integers(100, 150, size=lead + (out_f, in_f // 32), dtype=np.uint8)
    return blocks, scales


def mxfp4_dequant(blocks: np.ndarray, scales: np.ndarray) -> np.ndarray:
    """transformers' convert_moe_packed_tensors (without its final transpose): [..., out, in]."""
    lo = FP4_LUT[blocks & 0x0F]
    hi = FP4_LUT[blocks >> 4]
    vals = np.stack([lo, hi], axis=-1).reshape(blocks.shape[:-1] + (32,))
    vals = vals * np.ldexp(np.float32(1), scales.astype(np.int32) - 127)[..., None]
    return vals.reshape(blocks.shape[:-2] + (-1,)).astype(np.float32)


# ---- whole checkpoint folders ---------------------------------------------------------------
# A dense float16 folder (mlxq.synthetic) whose projection weights are rewritten in a
# producer's format, with that producer's quantization_config.

FOLDER_SIZES = dict(layers=2, hidden=128, intermediate=256, vocab=128)
PROJ = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


def _rewrite(src: str, transform, quantization_config: dict) -> dict:
    """Replaces every projection weight of a dense float16 folder by `transform(w)`'s
    tensors; returns what each layer packed, for references."""
    w = mlxq.load_checkpoint(src)
    out, packed = {}, {}
    for k, v in w.items():
        layer = k[: -len(".weight")]
        if k.endswith(".weight") and layer.rsplit(".", 1)[-1] in PROJ:
            tensors, info = transform(np.asarray(v, np.float32))
            out.update({f"{layer}.{n}": t for n, t in tensors.items()})
            packed[layer] = info
        else:
            out[k] = np.array(v)
    del w
    os.remove(os.path.join(src, "model.safetensors"))
    mlxq.save_safetensors(os.path.join(src, "model.safetensors"), out,
                          metadata={"format": "pt"})
    cfg = json.load(open(os.path.join(src, "config.json")))
    cfg["quantization_config"] = quantization_config
    json.dump(cfg, open(os.path.join(src, "config.json"), "w"))
    return packed


def awq_folder(path, group=64) -> tuple[str, dict]:
    src = make_checkpoint(path, dtype="float16", **FOLDER_SIZES)

    def pack(w):
        q, s, z = asym_params(w, group, 4, np.float16)
        return {"qweight": awq_pack(q), "scales": s, "qzeros": awq_pack(z)}, (q, s, z)
    packed = _rewrite(src, pack, {"quant_method": "awq", "bits": 4, "group_size": group,
                                  "version": "gemm", "zero_point": True})
    return src, packed


def gptq_folder(path, bits=4, group=64, act_order=False, v2=False) -> tuple[str, dict]:
    src = make_checkpoint(path, dtype="float16", **FOLDER_SIZES)
    rng = np.random.default_rng(1)

    def pack(w):
        out_f, in_f = w.shape
        q, s, z = asym_params(w, group, bits, np.float16)
        g_idx = (np.arange(in_f) // group).astype(np.int32)
        if act_order:  # a real act-order permutation of the group assignment (the codes
            g_idx = g_idx[rng.permutation(in_f)]  # then mean other weights: only the
            # refusal and the re-quantization path are tested with it)
        z = np.maximum(z, 0 if v2 else 1)  # v1 stores z - 1: it cannot hold a zero of 0
        stored = z - (0 if v2 else 1)
        return ({"qweight": stream_pack(q, bits, axis=0),
                 "qzeros": stream_pack(stored, bits, axis=1), "scales": s,
                 "g_idx": g_idx}, (q, s, z, g_idx))
    qc = {"quant_method": "gptq", "bits": bits, "group_size": group, "sym": False,
          "desc_act": act_order}
    if v2:
        qc["checkpoint_format"] = "gptq_v2"
    return src, _rewrite(src, pack, qc)
