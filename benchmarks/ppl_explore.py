"""Experiments: data-free quantizers judged by perplexity (prototypes in numpy).

    python benchmarks/ppl_explore.py --model SmolLM2-135M --bits 3 --group 64 \\
        --candidates rtn,mse,hqq

Each candidate turns every weight mlx-lm would quantize into the values MLX dequantizes
(scales and biases rounded to the weights' bfloat16), the model runs them (bench_ppl's
Evaluator), and the perplexity is printed beside MLX's round-to-nearest.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, os.path.dirname(__file__))
import mlxq  # noqa: E402
from bench_ppl import Evaluator  # noqa: E402
from ppl_models import MODELS, model_folder, text_halves  # noqa: E402
from ml_dtypes import bfloat16  # noqa: E402


def bf(x):
    return np.asarray(x, np.float32).astype(bfloat16).astype(np.float32)


def deq_affine(w, scale, bias, bits, gs):
    """MLX's affine triple for float scale/bias per group: scale, bias rounded to bf16,
    codes nearest in (w - b) / s, values T(T(q*s)+b)."""
    n = 2 ** bits - 1
    r, c = w.shape
    g = w.reshape(r, c // gs, gs)
    s = bf(scale)[..., None]
    b = bf(bias)[..., None]
    with np.errstate(divide="ignore", invalid="ignore"):
        q = np.where(s != 0, np.rint((g - b) / np.where(s != 0, s, 1)), 0)
    q = np.clip(q, 0, n)
    return bf(bf(q * s) + b).reshape(r, c)


def rtn(w, bits, gs):
    q = mlxq.quantize(w.astype(bfloat16), gs, bits, device="cpu")
    return mlxq.dequantize(*q, gs, bits, device="cpu").astype(np.float32)


def mse(w, bits, gs, imp=None):
    q = mlxq.quantize(w.astype(bfloat16), gs, bits, method="mse",
                      importance=None if imp is None else imp.astype(np.float32), device="cpu")
    return mlxq.dequantize(*q, gs, bits, device="cpu").astype(np.float32)


def hqq(w, bits, gs, p=0.7, beta=10.0, kappa=1.01, iters=20, imp=None, early=True):
    """Half-quadratic zero-point optimisation (HQQ), scale from min/max kept."""
    n = 2 ** bits - 1
    r, c = w.shape
    g = w.reshape(r, c // gs, gs).astype(np.float32)
    lo, hi = g.min(-1), g.max(-1)
    s = (hi - lo) / n
    s = np.where(s == 0, 1.0, s)
    inv = 1.0 / s
    z = -lo * inv  # W_q = round(W*inv + z)
    best = np.inf
    wi = None if imp is None else imp.reshape(c // gs, gs)[None]
    zbest = z.copy()
    for _ in range(iters):
        wq = np.clip(np.rint(g * inv[..., None] + z[..., None]), 0, n)
        wr = (wq - z[..., None]) * s[..., None]
        e = g - wr
        ae = np.abs(e)
        we = np.sign(e) * np.maximum(ae - (1.0 / beta) * np.power(ae + 1e-8, p - 1), 0)
        if wi is None:
            z = np.mean(wq - (g - we) * inv[..., None], axis=-1)
        else:
            z = np.sum(wi * (wq - (g - we) * inv[..., None]), -1) / np.maximum(
                np.sum(wi + 0 * g, -1), 1e-30)
        beta *= kappa
        err = float(ae.mean())
        if early:
            if err < best:
                best = err
                zbest = z.copy()
            else:
                break
        else:
            zbest = z
    bias = -zbest * s
    return deq_affine(w, s, bias, bits, gs)


class Ctx:
    def __init__(self, folder):
        self.w = {k: np.asarray(v, np.float32) for k, v in mlxq.load_checkpoint(folder).items()}
        with open(os.path.join(folder, "config.json")) as f:
            self.cfg = json.load(f)
        self.stats = None
        self._prop = None

    def prop(self):
        if self._prop is None:
            self._prop = propagate(self.w, self.cfg)
        return self._prop

    def norm_gain(self, path):
        """The RMSNorm gain multiplying this layer's input, or None."""
        parts = path.split(".")
        leaf = parts[-1]
        base = ".".join(parts[:-2])
        gemma = self.cfg["model_type"].startswith("gemma")
        if leaf in ("q_proj", "k_proj", "v_proj"):
            g = self.w[base + ".input_layernorm.weight"]
        elif leaf in ("gate_proj", "up_proj"):
            g = self.w[base + (".pre_feedforward_layernorm.weight" if gemma
                               else ".post_attention_layernorm.weight")]
        elif leaf == "embed_tokens" or path == "lm_head":
            g = self.w["model.norm.weight"]
        else:
            return None
        return (1.0 + g) if gemma else g


_Z = np.linspace(-12, 12, 4001)
_PHI = np.exp(-_Z * _Z / 2) / np.sqrt(2 * np.pi)


def _act2(v, act):
    """E[act(x)^2] for x ~ N(0, v)."""
    x = np.sqrt(v)[:, None] * _Z[None]
    if act == "silu":
        y = x / (1 + np.exp(-x))
    else:  # gelu tanh
        y = 0.5 * x * (1 + np.tanh(0.7978845608 * (x + 0.044715 * x ** 3)))
    return (y * y * _PHI).sum(1) * (_Z[1] - _Z[0])


def propagate(W, cfg):
    """Data-free second moments: each layer's input E[x_k^2] estimated from the weights,
    the residual stream's per-dimension energy carried through the layers (diagonal)."""
    f = lambda n: W[n].astype(np.float64)  # noqa: E731
    gemma = cfg["model_type"].startswith("gemma")
    gain = (lambda n: 1.0 + f(n)) if gemma else f
    act = "gelu" if gemma else "silu"
    imp = {}
    m = (f("model.embed_tokens.weight") ** 2).mean(0)
    if gemma:
        m = m * cfg["hidden_size"]
    H, KV = cfg["num_attention_heads"], cfg["num_key_value_heads"]
    hd = cfg.get("head_dim") or cfg["hidden_size"] // H
    for l in range(cfg["num_hidden_layers"]):
        b = f"model.layers.{l}."
        g = gain(b + "input_layernorm.weight")
        s = g * g * m / m.mean()
        for x in "qkv":
            imp[b + f"self_attn.{x}_proj"] = s
        vv = (f(b + "self_attn.v_proj.weight") ** 2) @ s
        oin = np.repeat(vv.reshape(KV, hd), H // KV, axis=0).reshape(-1)
        imp[b + "self_attn.o_proj"] = oin
        out = (f(b + "self_attn.o_proj.weight") ** 2) @ oin
        if gemma:
            g = gain(b + "post_attention_layernorm.weight")
            out = g * g * out / out.mean()
        m = m + out
        g = gain(b + ("pre_feedforward_layernorm.weight" if gemma
                      else "post_attention_layernorm.weight"))
        s = g * g * m / m.mean()
        imp[b + "mlp.gate_proj"] = s
        imp[b + "mlp.up_proj"] = s
        gv = (f(b + "mlp.gate_proj.weight") ** 2) @ s
        uv = (f(b + "mlp.up_proj.weight") ** 2) @ s
        a = _act2(gv, act) * uv
        imp[b + "mlp.down_proj"] = a
        out = (f(b + "mlp.down_proj.weight") ** 2) @ a
        if gemma:
            g = gain(b + "post_feedforward_layernorm.weight")
            out = g * g * out / out.mean()
        m = m + out
    g = gain("model.norm.weight")
    imp["model.embed_tokens"] = g * g * m / m.mean()
    return imp


def quant_paths(ctx, gs):
    out = []
    for k, v in ctx.w.items():
        if k.endswith(".weight") and v.ndim == 2 and v.shape[-1] % gs == 0:
            out.append(k[: -len(".weight")])
    return out


def candidate(name, ctx, bits, gs):
    """name -> {weight name: dequantized float32}"""
    paths = quant_paths(ctx, gs)
    out = {}
    for p in paths:
        w = ctx.w[p + ".weight"]
        out[p + ".weight"] = one(name, p, w, ctx, bits, gs)
    return out


def one(name, p, w, ctx, bits, gs):
    leaf = p.rsplit(".", 1)[-1]
    emb = leaf == "embed_tokens" or p == "lm_head"
    opts = name.split("+")
    base = opts[0]
    mods = set(opts[1:])
    if "embrtn" in mods and emb:
        return rtn(w, bits, gs)
    only = [m[5:] for m in mods if m.startswith("only:")]
    if only and leaf not in only[0].split("/"):
        return rtn(w, bits, gs)
    imp = None
    if "gain" in mods:
        gv = ctx.norm_gain(p)
        if gv is not None and not emb:
            imp = gv.astype(np.float64) ** 2
    if "gainabs" in mods:
        gv = ctx.norm_gain(p)
        if gv is not None and not emb:
            imp = np.abs(gv.astype(np.float64))
    if "real" in mods and ctx.stats is not None and p in ctx.stats:
        imp = ctx.stats[p].importance.astype(np.float64)
    for m in mods:
        if m.startswith("realtop") and ctx.stats is not None and p in ctx.stats:
            r = ctx.stats[p].importance.astype(np.float64)
            r = r / np.median(r)
            k = int(m[7:])
            imp = np.ones_like(r)
            top = np.argsort(r)[::-1][:k]
            imp[top] = np.maximum(r[top], 1)
        if m.startswith("realclip") and ctx.stats is not None and p in ctx.stats:
            r = ctx.stats[p].importance.astype(np.float64)
            r = r / np.median(r)
            imp = np.minimum(r, float(m[8:]))
    for m in mods:
        if m.startswith("prop"):
            e = ctx.prop().get(p)
            if e is not None:
                pw = float(m[4:] or 1)
                imp = (e / np.median(e)) ** pw
    if "nodown" in mods and leaf in ("down_proj", "o_proj"):
        imp = None
    if imp is not None:
        imp = imp / imp.mean()
    if base == "rtn":
        return rtn(w, bits, gs)
    if base == "mse":
        return mse(w, bits, gs, imp)
    if base == "hqq":
        return hqq(w, bits, gs, imp=imp)
    if base.startswith("hqqp"):
        return hqq(w, bits, gs, p=float(base[4:]), imp=imp)
    if base == "hqqnoes":
        return hqq(w, bits, gs, imp=imp, early=False)
    raise SystemExit(f"unknown candidate {name}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="SmolLM2-135M")
    ap.add_argument("--bits", default="3")
    ap.add_argument("--group", type=int, default=64)
    ap.add_argument("--candidates", default="rtn")
    ap.add_argument("--eval-tokens", type=int, default=2048)
    ap.add_argument("--stats", default=None, help="calibration statistics file (for +real)")
    a = ap.parse_args()
    import torch
    import warnings

    warnings.simplefilter("ignore")
    torch.set_num_threads(os.cpu_count() or 1)
    src = [m for m in MODELS if m.name == a.model][0]
    hf = model_folder(src)
    _, ev_text = text_halves()
    ev = Evaluator(hf, ev_text, a.eval_tokens)
    ctx = Ctx(hf)
    if a.stats:
        ctx.stats = mlxq.calibration.load_statistics(a.stats)
    t = time.monotonic()
    base = ev.ppl()
    print(f"{a.model}: {ev.tokens} tokens, bf16 {base:.3f} ({time.monotonic() - t:.0f} s)",
          flush=True)
    for bits in [int(b) for b in a.bits.split(",")]:
        ref = None
        for c in a.candidates.split(","):
            t = time.monotonic()
            d = candidate(c, ctx, bits, a.group)
            tq = time.monotonic() - t
            ppl = ev.ppl(d)
            if c == "rtn":
                ref = ppl
            gap = "" if ref is None else f" closed {100 * (ref - ppl) / (ref - base):+.0f}%"
            print(f"  {bits}b g{a.group} {c:<28} ppl {ppl:10.3f}{gap}  (quant {tq:.0f} s, "
                  f"eval {time.monotonic() - t - tq:.0f} s)", flush=True)


if __name__ == "__main__":
    import mlxq.calibration  # noqa: F401

    main()
