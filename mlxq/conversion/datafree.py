"""Data-free importance: each linear layer's input second moments, estimated from the
model's own weights.

``--q-method mse`` weighs each input column of a layer by how large that input is
(``E[x_k^2]``, what a calibration run or a llama.cpp importance matrix measures). Without
calibration data this module estimates it by pushing the residual stream's per-dimension
energy through the decoder layers, with every matrix read once, in row blocks:

- the stream starts as the embedding's per-column mean square (times the embedding scale
  a model multiplies by, Gemma's ``sqrt(hidden_size)``);
- a layer reading the stream through an RMSNorm sees ``g_k^2 m_k / mean(m)`` (g the norm's
  gain, ``1 + weight`` where mlx-lm's model adds one);
- a linear map ``y = W x`` of independent inputs has ``E[y_i^2] = sum_k W_ik^2 E[x_k^2]``;
  attention passes each value head's energy to the query heads sharing it (its weights sum
  to one); a gated MLP's hidden unit has ``E[act(g)^2] E[u^2]`` with ``g`` Gaussian of the
  estimated variance;
- each block's output is added to the stream (after its post-norm, where the model has one).

The tied embedding, which mlx-lm also uses as the output head, gets the final norm's input
estimate (the head's). This is an approximation (it ignores correlations between inputs and
treats attention as averaging), judged by perplexity: benchmarks/bench_ppl.py.

It covers the decoder layer mlx-lm's llama-style models share (``input_layernorm``,
``self_attn.{q,k,v,o}_proj`` or a fused ``qkv_proj``, ``post_attention_layernorm``,
``mlp.{gate,up,down}_proj`` or a fused ``gate_up_proj``, Gemma's pre/post feed-forward norms,
OLMo 2's post-norms, ``switch_mlp`` experts (under ``mlp`` or Mixtral's ``block_sparse_moe``)
and shared experts). A layer it cannot place
gets no estimate; the planner keeps MLX's own quantization there.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import re
from typing import Any, Callable, Mapping, Optional

import numpy as np

from .._interrupt import check

__all__ = ["Estimate", "estimate_importance"]

log = logging.getLogger("mlxq")

#: mlx-lm modules whose RMSNorm scales by ``1 + weight`` (Gemma's convention; the weights
#: stored are the offsets). Others store the gain itself (Qwen3-Next's and Qwen3.5's
#: sanitize adds the one while converting).
NORM_PLUS_ONE = frozenset({"gemma", "gemma2", "gemma3", "gemma3_text", "gear", "minimax_m3_vl",
                           "muse_glimmer", "muse_spark", "recurrent_gemma"})
#: mlx-lm modules that multiply the token embeddings by ``sqrt(hidden_size)``
EMBED_SCALED = frozenset({"gemma", "gemma2", "gemma3", "gemma3_text", "gemma3n", "gemma4",
                          "gemma4_text", "gemma4_unified", "gear", "recurrent_gemma"})

_BLOCK = 16 << 20
_LAYER = re.compile(r"^(.*?)layers\.(\d+)\.$")


@dataclasses.dataclass
class Estimate:
    """Layer path -> estimated ``E[x^2]`` per input column (float32; ``[E, C]`` for
    stacked experts), and the decoder layers the estimate walked through."""

    importance: dict[str, np.ndarray]
    layers: int


def _activation(config: Mapping[str, Any]) -> Optional[Callable[[np.ndarray], np.ndarray]]:
    name = str(config.get("hidden_act") or config.get("hidden_activation") or "silu").lower()
    if name in ("silu", "swish"):
        return lambda x: x * 0.5 * (1.0 + np.tanh(0.5 * x))  # x * sigmoid(x), no overflow
    if name in ("gelu_pytorch_tanh", "gelu_new", "gelu_fast"):
        return lambda x: 0.5 * x * (1.0 + np.tanh(0.7978845608028654 * (x + 0.044715 * x ** 3)))
    if name == "gelu":
        from math import erf

        verf = np.vectorize(erf)
        return lambda x: 0.5 * x * (1.0 + verf(x / math.sqrt(2.0)))
    if name == "relu":
        return lambda x: np.maximum(x, 0.0)
    if name in ("relu2", "relu_squared"):
        return lambda x: np.maximum(x, 0.0) ** 2
    return None


class _Act2:
    """``E[act(x)^2]`` for ``x ~ N(0, v)``, tabulated over log v and interpolated."""

    def __init__(self, act: Callable[[np.ndarray], np.ndarray]):
        z = np.linspace(-10.0, 10.0, 2001)
        phi = np.exp(-z * z / 2) / math.sqrt(2 * math.pi) * (z[1] - z[0])
        self.logv = np.linspace(math.log(1e-12), math.log(1e12), 1200)
        sd = np.exp(self.logv / 2)
        y = act(sd[:, None] * z[None])
        self.table = np.log(np.maximum((y * y * phi).sum(1), 1e-300))

    def __call__(self, v: np.ndarray) -> np.ndarray:
        lv = np.log(np.clip(v, 1e-12, 1e12))
        return np.exp(np.interp(lv, self.logv, self.table))


class _Mismatch(Exception):
    """A matrix whose width is not its estimated input's: that part is left out."""


def _part(fn: Callable[..., Optional[np.ndarray]], *args: Any) -> Optional[np.ndarray]:
    try:
        return fn(*args)
    except _Mismatch:
        return None


def _sq_matvec(t: Any, s: np.ndarray, first: int = 0, stop: Optional[int] = None
               ) -> np.ndarray:
    """``(W * W) @ s`` over rows ``first:stop`` of the ``[rows, cols]`` view of ``t``, read
    in row blocks."""
    if t.ncols != s.shape[0]:
        raise _Mismatch
    stop = t.nrows if stop is None else stop
    out = np.empty(stop - first, np.float64)
    step = max(1, _BLOCK // max(t.ncols * 8, 1))
    for r0 in range(first, stop, step):
        check()
        r1 = min(stop, r0 + step)
        w = t.rows(r0, r1).astype(np.float64)
        out[r0 - first:r1 - first] = (w * w) @ s
    return out


def _col_mean_sq(t: Any) -> np.ndarray:
    """The mean over rows of each column's square."""
    acc = np.zeros(t.ncols, np.float64)
    step = max(1, _BLOCK // max(t.ncols * 8, 1))
    for r0 in range(0, t.nrows, step):
        check()
        w = t.rows(r0, min(t.nrows, r0 + step)).astype(np.float64)
        acc += (w * w).sum(0)
    return acc / max(t.nrows, 1)


def _normed(m: np.ndarray, gain: Optional[np.ndarray]) -> np.ndarray:
    """What a layer reading the stream through an RMSNorm with this gain sees."""
    s = m / max(float(m.mean()), 1e-30)
    return s if gain is None else s * gain * gain


def estimate_importance(weights: Mapping[str, Any], config: Mapping[str, Any], module: str,
                        wanted: Mapping[str, tuple]) -> Estimate:
    """Estimated input second moments for the layers in ``wanted`` (path -> weight shape)
    that sit in a decoder layer this module recognises; ``weights`` maps the converted
    checkpoint's tensor names to lazy tensors (``shape``, ``nrows``, ``ncols``,
    ``rows(r0, r1)``), ``config`` is the text model's configuration and ``module`` the
    mlx-lm module whose conventions apply (:data:`NORM_PLUS_ONE`, :data:`EMBED_SCALED`)."""
    # weights holding inf or NaN spread them silently; their layers get no estimate
    with np.errstate(all="ignore"):
        return _estimate(weights, config, module, wanted)


def _estimate(weights: Mapping[str, Any], config: Mapping[str, Any], module: str,
              wanted: Mapping[str, tuple]) -> Estimate:
    prefixes: dict[str, list[int]] = {}
    for name in weights:
        head, sep, rest = name.partition("layers.")
        if not sep:
            continue
        num = rest.split(".", 1)[0]
        if num.isdigit():
            prefixes.setdefault(head, []).append(int(num))
    # the decoder stack: the prefix whose embed_tokens is there (a vision tower has its own
    # "layers.N." names, without token embeddings)
    base = next((p for p in sorted(prefixes, key=len) if p + "embed_tokens.weight" in weights),
                None)
    if base is None:
        return Estimate({}, 0)
    plus_one = module in NORM_PLUS_ONE
    act = _activation(config)
    act2 = _Act2(act if act is not None else _activation({}))  # type: ignore[arg-type]

    def gain(name: str) -> Optional[np.ndarray]:
        t = weights.get(name)
        if t is None or t.ndim != 1:
            return None
        g = t.rows(0, t.nrows).reshape(-1).astype(np.float64)
        if g.shape[0] != emb.ncols:  # not a norm over the hidden size
            return None
        return 1.0 + g if plus_one else g

    def get(name: str) -> Any:
        """A float matrix (a layer kept quantized from the source has packed codes)."""
        t = weights.get(name)
        return t if t is not None and _is_float(t) else None

    emb = weights[base + "embed_tokens.weight"]
    if not _is_float(emb) or emb.ndim != 2 or emb.nrows == 0 or emb.ncols == 0:
        return Estimate({}, 0)
    m = _col_mean_sq(emb)
    if module in EMBED_SCALED:  # h * sqrt(hidden_size), the embedding's width
        m = m * float(emb.ncols)
    hidden = m.shape[0]
    out: dict[str, np.ndarray] = {}
    n_heads = _count(config.get("num_attention_heads"))
    head_dim = _count(config.get("head_dim")) or (hidden // n_heads if n_heads else 0)
    walked = 0
    for i in sorted(set(prefixes[base])):
        L = f"{base}layers.{i}."
        check()
        # --- attention
        s = _normed(m, gain(L + "input_layernorm.weight"))
        y = _part(_attention, L + "self_attn.", weights, get, s, head_dim,
                  _count(config.get("num_key_value_heads")) or n_heads, out)
        if y is not None:
            post = L + "post_attention_layernorm.weight"
            if L + "post_feedforward_layernorm.weight" in weights and post in weights:
                y = _normed(y, gain(post))  # a post-norm (Gemma 2/3, OLMo 2)
            if y.shape == m.shape:
                m = m + y
        # --- MLP
        pre = (L + "pre_feedforward_layernorm.weight"
               if L + "post_feedforward_layernorm.weight" in weights
               else L + "post_attention_layernorm.weight")
        s = _normed(m, gain(pre))
        # mlx-lm's name for the MLP: "mlp", Mixtral's "block_sparse_moe"
        mlp = next((L + n for n in ("mlp.", "block_sparse_moe.")
                    if any(k.startswith(L + n) for k in weights)), L + "mlp.")
        y = _part(_mlp, mlp, weights, get, s, act2, act is not None, out)
        if y is not None:
            if L + "post_feedforward_layernorm.weight" in weights:
                y = _normed(y, gain(L + "post_feedforward_layernorm.weight"))
            if y.shape == m.shape:
                m = m + y
        walked += 1
    # the head (and the tied embedding mlx-lm quantizes as the head)
    s = _normed(m, gain(base + "norm.weight"))
    head = base[: -len("model.")] + "lm_head" if base.endswith("model.") else base + "lm_head"
    heads = [p for p in (head, "lm_head") if p + ".weight" in weights]
    for p in heads:
        out[p] = s
    if not heads:  # tied: mlx-lm's model computes the logits with embed_tokens.as_linear
        out[base + "embed_tokens"] = s
    res = {}
    for p, imp in out.items():
        shape = wanted.get(p)
        if shape is None:
            continue
        if imp.ndim == 1 and imp.shape[0] != shape[-1]:
            continue
        if imp.ndim == 2 and (len(shape) != 3 or imp.shape != (shape[0], shape[-1])):
            continue
        mean = float(imp.mean())
        if not (np.isfinite(imp).all() and mean > 0 and (imp >= 0).all()):
            continue  # weights holding inf or NaN: nothing to estimate from
        res[p] = (imp / mean).astype(np.float32)
    log.info("data-free importance: %d of %d layers estimated through %d decoder layers",
             len(res), len(wanted), walked)
    return Estimate(res, walked)


def _count(v: Any) -> int:
    """A positive int from the config, else 0 (the estimate then leaves that part out;
    the config's numbers were checked where the conversion relies on them)."""
    return v if isinstance(v, int) and not isinstance(v, bool) and v > 0 else 0


def _is_float(t: Any) -> bool:
    return t.dtype.kind == "f" or str(t.dtype) == "bfloat16"


def _attention(a: str, weights: Mapping[str, Any], get: Callable[[str], Any], s: np.ndarray,
               head_dim: int, kv_heads: int, out: dict) -> Optional[np.ndarray]:
    """Fills ``out`` for the attention under ``a``; returns its output energy."""
    for x in ("q_proj", "k_proj", "v_proj", "qkv_proj"):
        if a + x + ".weight" in weights:
            out[a + x] = s
    v, qkv, o = (get(a + n + ".weight") for n in ("v_proj", "qkv_proj", "o_proj"))
    if o is None or o.ndim != 2 or not head_dim or o.ncols % head_dim:
        return None
    if v is not None and v.ndim == 2:
        vv = _sq_matvec(v, s)
    elif qkv is not None and qkv.ndim == 2 and kv_heads and qkv.nrows > kv_heads * head_dim:
        # fused q, k, v rows (Phi-3): v's are the last kv_heads * head_dim
        vv = _sq_matvec(qkv, s)[-kv_heads * head_dim:]
    else:
        return None
    kv, h = vv.shape[0] // head_dim, o.ncols // head_dim
    if vv.shape[0] % head_dim or kv == 0 or h % kv:
        return None
    # each value head feeds h / kv query heads; attention averages positions
    oin = np.repeat(vv.reshape(kv, head_dim), h // kv, axis=0).reshape(-1)
    out[a + "o_proj"] = oin
    return _sq_matvec(o, oin)


def _mlp(p: str, weights: Mapping[str, Any], get: Callable[[str], Any], s: np.ndarray,
         act2: _Act2, act_known: bool, out: dict) -> Optional[np.ndarray]:
    """Fills ``out`` for the MLP (or experts) under ``p``; returns its output energy."""
    total: Optional[np.ndarray] = None

    def dense(q: str) -> Optional[np.ndarray]:
        g, u, d = (get(q + n + ".weight") for n in ("gate_proj", "up_proj", "down_proj"))
        gu = get(q + "gate_up_proj.weight")
        for n in ("gate_proj", "up_proj", "gate_up_proj"):
            if q + n + ".weight" in weights:
                out[q + n] = s
        if d is None or not act_known:
            return None
        if gu is not None and gu.ndim == 2:
            both = _sq_matvec(gu, s)
            half = both.shape[0] // 2
            hid = act2(both[:half]) * both[half:]
        elif g is not None and u is not None and g.ndim == 2 and u.ndim == 2:
            hid = act2(_sq_matvec(g, s)) * _sq_matvec(u, s)
        elif g is None and u is not None and u.ndim == 2:
            hid = act2(_sq_matvec(u, s))
        else:
            return None
        if d.ndim != 2 or d.ncols != hid.shape[0]:
            return None
        out[q + "down_proj"] = hid
        return _sq_matvec(d, hid)

    def experts(q: str) -> Optional[np.ndarray]:
        g, u, d = (get(q + n + ".weight") for n in ("gate_proj", "up_proj", "down_proj"))
        for n in ("gate_proj", "up_proj"):
            if q + n + ".weight" in weights:
                out[q + n] = s
        if g is None or u is None or d is None or not act_known or \
                not (g.ndim == u.ndim == d.ndim == 3):
            return None
        e = g.shape[0]
        gv = _sq_matvec(g, s).reshape(e, -1)
        uv = _sq_matvec(u, s).reshape(e, -1)
        hid = act2(gv) * uv
        if d.shape[0] != e or d.shape[-1] != hid.shape[1]:
            return None
        out[q + "down_proj"] = hid
        per = d.nrows // e
        # one expert at a time, each with its own input: the routed mix, as an average
        return sum(_sq_matvec(d, hid[k], k * per, (k + 1) * per) for k in range(e)) / e

    for q, fn in ((p, dense), (p + "switch_mlp.", experts), (p + "shared_expert.", dense),
                  (p + "shared_experts.", dense)):
        y = fn(q)
        if y is not None:
            total = y if total is None else total + y
    if p + "gate.weight" in weights:  # the router reads the MLP's input
        out[p + "gate"] = s
    return total
