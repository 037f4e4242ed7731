"""Executing a plan: each unit's output computed in row blocks and handed to the writer.

A copy unit streams its lazy tensor block by block (a stored layer's weight, scales and
biases together, a row block of each in turn); a quantization unit evaluates its dense
tensor block by block and quantizes each block (groups never cross rows, so the result is
the whole tensor's, bit for bit); a dequantization unit is a copy of a lazy
``dequantize``. Blocks are about :data:`BLOCK_BYTES` of input, so neither the source nor the
result of any tensor is ever whole in memory when its operations stream (see
:mod:`mlxq.conversion.graph`).
"""

from __future__ import annotations

from collections import Counter
from typing import Any, Callable, Iterator, Optional

import numpy as np

from .._interrupt import check
from ..errors import MlxqError
from ..metrics import _error_sums, _Sums
from ..calibration.gptq import gptq_factor, gptq_quantize
from ..quant import quantize
from . import graph
from .plan import Plan, Unit
from .quality import importance_rows

__all__ = ["BLOCK_BYTES", "execute"]

#: Input bytes per row block.
BLOCK_BYTES = 16 << 20


def blocks_of(t: graph.Tensor, block_bytes: int, importance: Optional[np.ndarray] = None
              ) -> Iterator[tuple[int, int]]:
    """Row blocks of about ``block_bytes``; with a per-expert importance (``[E, C]``) no
    block crosses an expert, so each block has one importance vector."""
    step = max(1, block_bytes // max(t.ncols * t.dtype.itemsize, 1))
    per = t.nrows
    if importance is not None and importance.ndim == 2 and t.ndim >= 3:
        per = t.nrows // t.shape[0]
        step = min(step, per)
    for e0 in range(0, t.nrows, per):
        for r0 in range(e0, e0 + per, step):
            yield r0, min(e0 + per, r0 + step)


def _copy(u: Unit, put: Callable[[str, np.ndarray], None], block_bytes: int) -> None:
    if u.parts:  # several outputs of the same rows: a block of each in turn
        n = u.parts[0].nrows
        step = max(1, block_bytes // max(sum(t.ncols * t.dtype.itemsize for t in u.parts), 1))
        for r0 in range(0, n, step):
            check()
            for (name, _), t in zip(u.outputs, u.parts):
                put(name, t.rows(r0, min(n, r0 + step)))
        return
    name = u.outputs[0][0]
    for r0, r1 in blocks_of(u.tensor, block_bytes):
        check()
        put(name, u.tensor.rows(r0, r1))


class _Factors:
    """The GPTQ factors of one conversion, by their Hessian's key: layers reading one input
    (q/k/v, gate/up) share one Hessian, factored once and dropped when the last unit using
    it is done. Output order keeps a layer's units together (k, o, q, v: two factors alive
    at most), and the Executor holds this, so nothing outlives the conversion."""

    def __init__(self, plan: Plan) -> None:
        self._held: dict[Any, tuple[Any, Any]] = {}  # key -> (owner, factor)
        self._users: Counter = Counter(u.hessian.key for u in plan.units.values()
                                       if _gptq(u))

    def of(self, u: Unit) -> Any:
        key = u.hessian.key
        hit = self._held.get(key)
        if hit is not None and hit[0] is u.hessian.owner:
            return hit[1]
        f = gptq_factor(u.hessian(), act_order=True)  # bench_ppl: act-order closes more
        if self._users[key] > 1:
            self._held[key] = (u.hessian.owner, f)
        return f

    def done(self, u: Unit) -> None:
        self._users[u.hessian.key] -= 1
        if self._users[u.hessian.key] <= 0:
            self._held.pop(u.hessian.key, None)


def _gptq(u: Unit) -> bool:
    """Whether the unit is GPTQ with a Hessian (plan._gptq_units gives one, with its key)."""
    return u.kind == "quantize" and u.method == "gptq" and u.hessian is not None


def _quantize(u: Unit, put: Callable[[str, np.ndarray], None], block_bytes: int,
              report: Optional[list], device: Optional[str], factors: _Factors) -> None:
    dense = u.tensor
    source, _ = graph.split_cast(dense)  # the report measures against the source weights
    sums = _Sums()
    names = [n for n, _ in u.outputs]
    try:
        gptq = _gptq(u)
        factor = factors.of(u) if gptq else None
        for r0, r1 in blocks_of(dense, block_bytes, u.importance):
            check()
            rows = source.rows(r0, r1)
            w = graph.cast_rows(rows, dense.dtype)
            imp = importance_rows(u.importance, dense.shape, r0, r1)
            if factor is not None:  # GPTQ's rows are independent: row blocks are exact
                parts = gptq_quantize(w, None, u.group_size, u.bits, factor=factor)
            else:
                method = "mlx" if u.method == "gptq" else u.method  # (plan maps these)
                parts = quantize(w, group_size=u.group_size, bits=u.bits, mode=u.mode,
                                 method=method, importance=imp if method == "mse" else None,
                                 device=device)
            if report is not None:
                sums.merge(_error_sums(rows, parts[0], parts[1],
                                       parts[2] if u.mode == "affine" else None,
                                       u.group_size, u.bits, u.mode, None, device))
            for n, p in zip(names, parts):
                put(n, p)
            del rows, w, parts
        if gptq:
            factors.done(u)
    except MlxqError as e:
        if e.layer is None:
            raise type(e)(e.message, layer=u.path, key=e.key) from None
        raise
    if report is not None:
        report.append((u.path, u.group_size, u.bits, u.mode, sums))


class Executor:
    """Runs a plan's units, each once: :meth:`run_unit` for one (a scheduler that fetches
    sources first calls it as they arrive), :meth:`run_all` for all in output order. Each
    output's blocks go to ``put(name, block)`` in order; ``progress(tensors, bytes)`` after
    each unit; :attr:`sums` collects the per-layer error sums (``report``). ``device``:
    whose quantization (:func:`mlxq.quantize`'s; None: the default device)."""

    def __init__(self, plan: Plan, put: Callable[[str, np.ndarray], None],
                 progress: Callable[[int, int], None], *, report: bool = False,
                 block_bytes: Optional[int] = None, device: Optional[str] = None):
        self.plan, self.put, self.progress = plan, put, progress
        self.device = device
        self.block = block_bytes or BLOCK_BYTES
        self.sums: Optional[list] = [] if report else None
        self.done: set[str] = set()
        self.items = self.nbytes = 0
        self._spec = {n: s for n, s, _ in plan.outputs}
        self._factors = _Factors(plan)

    def run_unit(self, key: str) -> None:
        if key in self.done:
            return
        self.done.add(key)
        u = self.plan.units[key]
        if u.kind == "quantize":
            _quantize(u, self.put, self.block, self.sums, self.device, self._factors)
        else:
            _copy(u, self.put, self.block)
        self.items += len(u.outputs)
        self.nbytes += sum(self._spec[n].nbytes for n, _ in u.outputs)
        self.progress(self.items, self.nbytes)

    def run_all(self) -> None:
        for _, _, key in self.plan.outputs:
            self.run_unit(key)


def execute(plan: Plan, put: Callable[[str, np.ndarray], None],
            progress: Callable[[int, int], None], *, report: bool = False,
            block_bytes: Optional[int] = None, device: Optional[str] = None) -> list:
    """Computes every unit in output order (see :class:`Executor`); returns the per-layer
    error sums (``report``): ``[(path, group_size, bits, mode, sums)]``."""
    ex = Executor(plan, put, progress, report=report, block_bytes=block_bytes, device=device)
    ex.run_all()
    return ex.sums or []
