"""Whether two quantized checkpoints differ only where MLX's CPU and GPU roundings disagree.

MLX quantizes with different arithmetic on its two devices (docs/formats.md), so the same
model converted by ``mlx_lm.convert`` on a Mac (GPU) and with ``mlx[cpu]`` (CPU), or by mlxq
with the other ``device``, differs in a small fraction of its groups. Those differences have
recognisable shapes, which this module looks for group by group in each quantized layer the
two folders hold with the same parameters, without the source weights:

affine (same scale and bias)
    codes one apart, where the GPU's ``round`` took the odd code above a tie and the CPU's
    ``rint`` the even one below; a NaN element coded n_bins (GPU) or 0 (CPU).
affine (same bias, other scale)
    the zero-point tie ``round(edge / scale)``: ``|bias / scale|`` one apart, the GPU's odd;
    an all-negative group, whose GPU range ends at 0 (its w_max starts at 0) and whose CPU
    range ends at the group's own maximum.
mxfp4 / nvfp4 (same scale byte)
    a negative value rounded to zero (GPU code 8, -0; CPU code 0) and the E2M1 ties 0.75,
    1.75, 3.5 (GPU: the larger magnitude, an even code; CPU: the smaller); nvfp4 also codes
    one step apart either way (the GPU multiplies by a rounded reciprocal of the scale where
    the CPU divides), which fit the devices but say nothing about which side is which.
mxfp4 / mxfp8 (other scale byte)
    an all-zero group: the CPU writes 127, the GPU 0; nvfp4: scale bytes one apart (the CPU
    rounds amax / 6 to the weights' dtype first).

A difference with none of these shapes is "unexplained". The verdict says which side each
folder matches when every difference is explained and the ones that tell the devices apart
agree.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any, Mapping, Optional

import numpy as np

__all__ = ["DeviceExplanation", "explain_device_differences"]



@dataclasses.dataclass
class DeviceExplanation:
    """What :func:`explain_device_differences` found over the differing quantized layers.

    Attributes:
        groups: differing groups examined.
        explained: of those, the ones with a CPU/GPU rounding shape.
        a_gpu / b_gpu: explained groups whose shape says A (resp. B) is the GPU side.
        layers: the layers examined (with at least one differing group).
        unexplained_tensors: differing tensors that are no quantized layer's (norms, ...)
            or whose layer could not be examined.
    """

    groups: int = 0
    explained: int = 0
    a_gpu: int = 0
    b_gpu: int = 0
    layers: list[str] = dataclasses.field(default_factory=list)
    unexplained_tensors: list[str] = dataclasses.field(default_factory=list)

    @property
    def only_rounding(self) -> bool:
        """Every difference is one where MLX's CPU and GPU roundings disagree."""
        return (self.groups > 0 and self.explained == self.groups
                and not self.unexplained_tensors)

    @property
    def sides(self) -> Optional[tuple[str, str]]:
        """``("gpu", "cpu")`` when A matches the GPU's rounding and B the CPU's, the reverse,
        or None when the evidence is missing or mixed."""
        if not self.only_rounding or (self.a_gpu and self.b_gpu):
            return None
        if self.a_gpu:
            return ("gpu", "cpu")
        if self.b_gpu:
            return ("cpu", "gpu")
        return None

    def describe(self, a: str = "A", b: str = "B") -> str:
        if not self.groups and not self.unexplained_tensors:
            return "no quantized layer differs"
        if not self.only_rounding:
            return (f"{self.explained} of {self.groups} differing quantized groups are "
                    "differences between MLX's CPU and GPU roundings; the rest are not "
                    "(not a device difference)")
        head = (f"the {self.groups} differing groups (in {len(self.layers)} layers) are all "
                "where MLX's CPU and GPU quantization round differently")
        if self.sides is None:
            return head + ": which side is which device cannot be told from them"
        da, db = self.sides
        name = {"gpu": "MLX's GPU (Metal) kernels, mlx_lm.convert on Apple silicon",
                "cpu": "MLX's CPU backend, mlx[cpu]"}
        return (f"{head}: {a} matches {name[da]} (device {da}); {b} matches {name[db]} "
                f"(device {db}). Convert with --device {db} (device='{db}') to match {b}.")


def _params(config_path: str) -> Any:
    from .config import parse_quantization

    if not os.path.isfile(config_path):
        return None
    try:
        return parse_quantization(config_path)
    except Exception:  # an unreadable config leaves the layers unexamined
        return None


def _unpack(wq: np.ndarray, bits: int) -> np.ndarray:
    """[rows, words] uint32 -> [rows, words * 32 / bits] codes (MLX's LSB-first stream):
    code k is read from the 16-bit window at byte (k * bits) // 8 (bits <= 8)."""
    rows, words = wq.shape
    b = np.ascontiguousarray(wq).view(np.uint8).reshape(rows, words * 4).astype(np.uint16)
    b = np.concatenate([b, np.zeros((rows, 1), np.uint16)], axis=1)
    off = np.arange(words * 32 // bits) * bits
    window = b[:, off // 8] | (b[:, off // 8 + 1] << 8)
    return ((window >> (off % 8).astype(np.uint16)) & ((1 << bits) - 1)).astype(np.int64)


# (CPU code, GPU code) pairs of E2M1 codes the two devices give the same value: the ties
# 0.75, 1.75, 3.5 of either sign (CPU: the smaller magnitude, GPU: the larger) and a
# negative value rounded to zero (CPU +0, GPU -0)
_TIE = np.zeros((16, 16), bool)
for _c, _g in ((1, 2), (3, 4), (5, 6), (9, 10), (11, 12), (13, 14), (0, 8)):
    _TIE[_c, _g] = True


def _affine_votes(ca, cb, sa, sb, ba, bb, same_s, same_b, n):
    """Per differing group: explained?, A is the GPU side?, B is?"""
    d = ca != cb
    hi_a = (ca == cb + 1) & (ca % 2 == 1)  # A rounded the tie up to the odd code (GPU)
    hi_b = (cb == ca + 1) & (cb % 2 == 1)
    nan_a = (ca == n) & (cb == 0)          # a NaN element: GPU n_bins, CPU 0
    nan_b = (cb == n) & (ca == 0)
    codes_ok = np.all(~d | hi_a | hi_b | nan_a | nan_b, axis=1)
    va = np.any(d & (hi_a | nan_a), axis=1)
    vb = np.any(d & (hi_b | nan_b), axis=1)
    ok = same_s & same_b & codes_ok
    with np.errstate(all="ignore"):
        fin = np.isfinite(sa) & np.isfinite(sb) & np.isfinite(ba) & (sa != 0) & (sb != 0)
        # an all-negative group: the GPU's range ends at 0 (w_max from 0), the CPU's below
        top_a, top_b = ba + n * sa, bb + n * sb
        neg_a = (np.abs(top_a) <= 0.5 * np.abs(sa)) & (top_b < -0.5 * np.abs(sb)) & (ba < 0)
        neg_b = (np.abs(top_b) <= 0.5 * np.abs(sb)) & (top_a < -0.5 * np.abs(sa)) & (bb < 0)
        # the zero-point tie: |q0| = |bias / scale| one apart, the GPU's the odd one
        ma, mb = np.abs(ba / sa), np.abs(bb / sb)
        ia, ib = np.round(ma), np.round(mb)
        # (the stored scale is rounded to the weights' dtype: bfloat16 moves |q0| by up to
        # |q0| * 2^-9)
        tie = (np.abs(ma - ia) <= 0.25 + ma * 2.0**-8) & (np.abs(mb - ib) <= 0.25 + mb * 2.0**-8)
        tie_a = tie & (ia == ib + 1) & (ia % 2 == 1)
        tie_b = tie & (ib == ia + 1) & (ib % 2 == 1)
        other_s = same_b & ~same_s & fin
        # the eps tie: q0 = round(+-0.5) is 1 on the GPU (bias = edge), rint gives 0
        eps_a = (bb == 0) & (ba != 0) & np.isfinite(sa) & (np.round(np.abs(ba / sa)) == 1)
        eps_b = (ba == 0) & (bb != 0) & np.isfinite(sb) & (np.round(np.abs(bb / sb)) == 1)
    ga = np.where(ok, va, np.where(other_s, neg_a | tie_a, ~same_b & eps_a))
    gb = np.where(ok, vb, np.where(other_s, neg_b | tie_b, ~same_b & eps_b))
    explained = np.where(ok, ~(va & vb), ga ^ gb)
    return explained, ga & explained, gb & explained


def _fp_votes(ca, cb, ba, bb, mode):
    d = ca != cb
    same = ba == bb
    if mode == "mxfp8":  # one E4M3 step: a rounding of the weights' dtype, no direction
        codes_ok = np.all(~d | (np.abs(ca - cb) == 1), axis=1)
        va = vb = np.zeros(len(ca), bool)
    else:
        pair_a, pair_b = _TIE[cb, ca], _TIE[ca, cb]  # A's code is the GPU's / B's is
        step = np.zeros_like(d)
        if mode == "nvfp4":  # one magnitude step either way: the reciprocal's rounding
            step = ((ca & 8) == (cb & 8)) & (np.abs((ca & 7) - (cb & 7)) == 1)
        codes_ok = np.all(~d | pair_a | pair_b | step, axis=1)
        va = np.any(d & pair_a & ~step, axis=1)
        vb = np.any(d & pair_b & ~step, axis=1)
    ok = same & codes_ok & ~(va & vb)
    zero = np.all((ca & 7) == 0, axis=1) & np.all((cb & 7) == 0, axis=1)
    if mode == "nvfp4":  # scale bytes one apart: the CPU rounds amax / 6 to the dtype first
        other = ~same & (np.abs(ba.astype(np.int64) - bb) == 1) & ((ba ^ bb) < 0x80)
        za = zb = np.zeros(len(ca), bool)
    else:  # an all-zero group: the CPU writes 127, the GPU 0
        za = ~same & zero & (ba == 0) & (bb == 127)
        zb = ~same & zero & (bb == 0) & (ba == 127)
        other = za | zb
    explained = ok | other
    return explained, (same & va) | za, (same & vb) | zb


def explain_device_differences(a: Mapping[str, np.ndarray], b: Mapping[str, np.ndarray],
                               differing: list[str], config_a: Optional[str],
                               config_b: Optional[str]) -> DeviceExplanation:
    """Examines the differing tensors of two checkpoints (name -> array maps) whose
    ``config.json`` paths are given. ``differing``: the names that differ (same dtype and
    shape on both sides)."""
    out = DeviceExplanation()
    qa, qb = _params(config_a) if config_a else None, _params(config_b) if config_b else None
    layers: dict[str, list[str]] = {}
    for name in differing:
        path, _, suffix = name.rpartition(".")
        if suffix in ("weight", "scales", "biases") and f"{path}.scales" in a:
            layers.setdefault(path, []).append(name)
        else:
            out.unexplained_tensors.append(name)
    for path, names in layers.items():
        cfg_a = qa.quantization_for(path) if qa is not None else None
        cfg_b = qb.quantization_for(path) if qb is not None else None
        if cfg_a is None or cfg_a != cfg_b or f"{path}.weight" not in a:
            out.unexplained_tensors += names
            continue
        gs, bits, mode = cfg_a.group_size, cfg_a.bits, cfg_a.mode.value
        wa, wb = np.asarray(a[f"{path}.weight"]), np.asarray(b[f"{path}.weight"])
        sa, sb = np.asarray(a[f"{path}.scales"]), np.asarray(b[f"{path}.scales"])
        if wa.dtype != np.uint32 or wa.shape != wb.shape or sa.shape != sb.shape:
            out.unexplained_tensors += names
            continue
        s_view = np.uint8 if sa.itemsize == 1 else np.uint16 if sa.itemsize == 2 else np.uint32
        s_bits_a, s_bits_b = sa.reshape(-1).view(s_view), sb.reshape(-1).view(s_view)
        if mode == "affine":
            ba, bb = np.asarray(a[f"{path}.biases"]), np.asarray(b[f"{path}.biases"])
            b_bits_a, b_bits_b = ba.reshape(-1).view(s_view), bb.reshape(-1).view(s_view)
        w2a, w2b = wa.reshape(-1, wa.shape[-1]), wb.reshape(-1, wb.shape[-1])
        per_row = w2a.shape[1] * 32 // bits // gs  # groups per row
        step = max(1, (1 << 20) // max(w2a.shape[1] * 32 // bits, 1))  # ~1M codes a block
        found = False
        for r0 in range(0, w2a.shape[0], step):
            r1 = min(r0 + step, w2a.shape[0])
            ca = _unpack(w2a[r0:r1], bits).reshape(-1, gs)
            cb = _unpack(w2b[r0:r1], bits).reshape(-1, gs)
            g = slice(r0 * per_row, r1 * per_row)
            if mode == "affine":
                same_s = s_bits_a[g] == s_bits_b[g]
                same_b = b_bits_a[g] == b_bits_b[g]
                idx = np.flatnonzero(np.any(ca != cb, axis=1) | ~same_s | ~same_b)
                if not idx.size:
                    continue
                f = lambda x: x.reshape(-1)[g].astype(np.float64)[idx]  # noqa: E731
                exp, va, vb = _affine_votes(ca[idx], cb[idx], f(sa), f(sb), f(ba), f(bb),
                                            same_s[idx], same_b[idx], (1 << bits) - 1)
            else:
                idx = np.flatnonzero(np.any(ca != cb, axis=1) | (s_bits_a[g] != s_bits_b[g]))
                if not idx.size:
                    continue
                exp, va, vb = _fp_votes(ca[idx], cb[idx], s_bits_a[g][idx].astype(np.int64),
                                        s_bits_b[g][idx].astype(np.int64), mode)
            found = True
            out.groups += int(idx.size)
            out.explained += int(exp.sum())
            out.a_gpu += int(va.sum())
            out.b_gpu += int(vb.sum())
        if found:
            out.layers.append(path)
    return out
