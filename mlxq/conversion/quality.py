"""Lower error than MLX in MLX's own format (docs/methods.md), in the converter:

- ``q_method="mse"``: each quantized layer's groups get the scale and bias that minimise
  the (importance-weighted) squared error of the weights as MLX dequantizes them
  (:func:`mlxq.quantize` ``method="mse"``), MLX's own choice among the candidates;
- ``imatrix``: a llama.cpp importance matrix (legacy ``.dat`` or GGUF) whose tensor names
  the ``gguf`` package maps to the model's layers; each layer's mean squared activations
  weight its columns (stacked experts get their per-expert rows);
- ``target_bpw``: bits per layer, from 2/3/4/5/6/8, minimising the total weighted error
  while the whole model's bits per weight (mlx-lm's ``compute_bits_per_weight``: every
  tensor's bytes over the parameters) stay within the target; recorded as per-layer
  entries, which ``mlx_lm.load`` reads unchanged.

Measuring the options reads each quantized layer once more, in row blocks, before anything
is written (memory stays bounded); that pass is the price of ``target_bpw``.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from typing import Any, Mapping, Optional, Sequence

import numpy as np

from .._argnames import arg
from ..errors import InvalidArgumentError, OutOfRangeError, UnknownEnumValueError

__all__ = ["Allocation", "allocate", "gguf_arch", "importance_for", "importance_rows"]

#: model_type -> llama.cpp architecture name where the two are not spelled alike
_GGUF_ARCH = {
    "mistral": "llama", "iquestcoder": "llama", "phi": "phi2", "cohere": "command-r",
    "deepseek_v2": "deepseek2", "deepseek_v3": "deepseek2", "kimi_k2": "deepseek2",
    "gemma3_text": "gemma3", "gpt_neox": "gptneox", "hunyuan_v1_dense": "hunyuan-dense",
    "minimax_m2": "minimax-m2", "granitemoehybrid": "granitehybrid",
}


def gguf_arch(config: Mapping[str, Any]) -> str:
    """llama.cpp's architecture name for a config (a GGUF model's
    ``general.architecture``): the table above, else ``model_type`` as the ``gguf`` package
    spells it (underscores dropped or turned into dashes)."""
    mt = str(config.get("model_type"))
    if mt in _GGUF_ARCH:
        return _GGUF_ARCH[mt]
    try:
        import gguf

        names = set(gguf.MODEL_ARCH_NAMES.values())
    except ImportError:
        return mt
    for cand in (mt, mt.replace("_", ""), mt.replace("_", "-")):
        if cand in names:
            return cand
    return mt


def importance_for(path: str, config: Mapping[str, Any], layers: Mapping[str, tuple],
                   arch: Optional[str] = None, n_blocks: Optional[int] = None
                   ) -> dict[str, np.ndarray]:
    """The importance of every layer in ``layers`` (path -> weight shape) that the
    importance matrix at ``path`` covers."""
    from ..imatrix import load_importance

    blocks = n_blocks if n_blocks is not None else int(config.get("num_hidden_layers") or 0)
    imap = load_importance(path, arch or gguf_arch(config), blocks, layers)
    return dict(imap.layers)


def importance_rows(imp: Optional[np.ndarray], shape: tuple, r0: int, r1: int
                    ) -> Optional[np.ndarray]:
    """The importance for rows ``r0:r1`` of a weight of ``shape`` seen as a matrix: the
    vector itself for a dense layer; for stacked experts (``imp`` ``[E, C]``) the rows of
    one expert (the executor's blocks never cross experts then)."""
    if imp is None or imp.ndim == 1:
        return imp
    per = int(np.prod(shape[1:-1], dtype=np.int64)) if len(shape) > 2 else 1
    e = r0 // per
    if (r1 - 1) // per != e:  # pragma: no cover - the executor aligns blocks to experts
        raise InvalidArgumentError("a row block crosses experts")
    return imp[e]


@dataclasses.dataclass(frozen=True)
class Allocation:
    """What ``target_bpw`` chose: bits per layer path, and the whole model's bits per
    weight with them."""

    bits: dict[str, int]
    bits_per_weight: float
    target: float

    def mix(self) -> str:
        """``"2-bit x 4, 4-bit x 12"``."""
        c = Counter(self.bits.values())
        return ", ".join(f"{b}-bit x {n}" for b, n in sorted(c.items()))


def _layer_options(u: Any, bits: Sequence[int], block_bytes: int, method: str
                   ) -> tuple[int, dict[int, tuple[float, float]]]:
    """(weights, {bits: (bits per weight, size-weighted relative error)}) of a quantize unit,
    measured block by block from its dense tensor."""
    from ..quant import dequantize, quantize
    from .execute import blocks_of

    dense = u.tensor
    # a layer the data-free estimate could not place keeps MLX's choice (plan._estimate)
    if method == "mse" and u.method == "mlx":
        method = "mlx"
    err = {b: 0.0 for b in bits}
    nbytes = {b: 0 for b in bits}
    sig = 0.0
    for r0, r1 in blocks_of(dense, block_bytes, u.importance):
        w = dense.rows(r0, r1)
        imp = importance_rows(u.importance, dense.shape, r0, r1)
        x = w.astype(np.float64)
        sig += float((x * x if imp is None else x * x * imp).sum())
        for b in bits:
            q = quantize(w, u.group_size, b, method=method,
                         importance=imp if method == "mse" else None)
            d = dequantize(*q, u.group_size, b).astype(np.float64) - x
            se = d * d if imp is None else d * d * imp
            err[b] += float(se.sum())
            nbytes[b] += sum(a.nbytes for a in q)
    n = dense.size
    # the layer's output noise-to-signal ratio (weighted error over the weighted energy of
    # the weights, both as the inputs weigh them) times its size: raw errors do not compare
    # across layers, whose weights and inputs differ in scale; by perplexity
    # (benchmarks/bench_ppl.py) this allocation beats uniform bits at the same size, the
    # raw error does not
    err = {b: e * n / max(sig, 1e-300) for b, e in err.items()}
    return n, {b: (8.0 * nbytes[b] / n, err[b]) for b in bits}


def allocate(units: Sequence[Any], fixed_bytes: int, fixed_params: int, target_bpw: float,
             method: str, block_bytes: int, bits: Sequence[int] = (2, 3, 4, 5, 6, 8)
             ) -> Allocation:
    """Bits for each quantize unit so the whole model's bits per weight (quantized layers
    plus ``fixed_bytes`` of tensors that stay as they are, holding ``fixed_params``
    parameters) is at most ``target_bpw`` with the least total error."""
    from ..bitalloc import LayerCost, allocate_bits

    if not isinstance(target_bpw, (int, float)) or isinstance(target_bpw, bool) or \
            not target_bpw > 0:
        raise OutOfRangeError(f"{arg('target_bpw', target_bpw)} must be a positive number",
                              key="target_bpw")
    costs = []
    for u in units:
        if u.mode != "affine":
            raise UnknownEnumValueError(f"{arg('target_bpw', target_bpw)} chooses affine bits "
                                        f"per layer; it does not apply to mode {u.mode!r}",
                                        key="q_mode")
        n, options = _layer_options(u, bits, block_bytes, method)
        costs.append(LayerCost(u.path, n, options))
    n_q = sum(c.n_weights for c in costs)
    # whole model: (8 * fixed_bytes + sum(n_i * bpw_i)) / (fixed_params + n_q) <= target
    budget = target_bpw * (fixed_params + n_q) - 8.0 * fixed_bytes
    cheapest = sum(c.n_weights * min(o[0] for o in c.options.values()) for c in costs)
    if n_q == 0 or budget < cheapest:
        least = (8.0 * fixed_bytes + cheapest) / max(fixed_params + n_q, 1)
        raise OutOfRangeError(
            f"{arg('target_bpw', target_bpw)} is below what the model can reach: every layer at "
            f"{min(bits)} bits, with the tensors that are not quantized as they are, gives "
            f"{least:.3f} bits per weight", key="target_bpw")
    chosen = allocate_bits(costs, target_bpw=budget / n_q)
    total = 8.0 * fixed_bytes + sum(c.n_weights * c.options[chosen.bits[c.name]][0]
                                    for c in costs)
    return Allocation(dict(chosen.bits), total / (fixed_params + n_q), float(target_bpw))

