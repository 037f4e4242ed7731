"""Quantized checkpoints from other producers: detection and a uniform conversion interface.

A Hugging Face ``config.json`` names its producer in ``quantization_config.quant_method``.
:func:`detect` turns that into an :class:`ExternalFormat` that a (streaming) converter can
drive without knowing the format:

1. ``fmt.group_keys(names)`` partitions every tensor name of the checkpoint into groups that
   must be converted together (one layer's packed tensors; single names otherwise);
2. ``fmt.output_dtype(dtypes)`` decides, from the header dtypes alone, the dtype of the
   generated scales/biases, so every group gets the same one;
3. ``fmt.transform(group_tensors, out_dtype=...)`` converts one group (or a whole map: same
   result) and returns the MLX tensors and a :class:`~mlxq.PerLayerQuantization`;
4. ``fmt.quantization()`` gives the global MLX parameters for the ``"quantization"`` block;
   per-layer entries returned by ``transform`` are merged on top of it.

>>> fmt = detect({"quantization_config": {"quant_method": "awq", "bits": 4,
...                                       "group_size": 128, "version": "gemm"}})
>>> fmt.name, fmt.quantization()
('awq', Quantization(group_size=128, bits=4, mode=<QuantMode.AFFINE: 'affine'>))
>>> fmt.group_keys(["m.l.qweight", "m.l.qzeros", "m.l.scales", "m.norm.weight"])
[['m.l.qweight', 'm.l.qzeros', 'm.l.scales'], ['m.norm.weight']]
>>> detect({"hidden_size": 8}) is None
True
"""

from __future__ import annotations

import abc
from typing import Any, Iterable, Mapping, Optional

import numpy as np

from .awq import AwqLoadConfig, awq_output_dtype, transform_awq_weights
from ..config import PerLayerQuantization, Quantization
from ..errors import ArgumentTypeError, ParseError, UnknownEnumValueError
from .gptq import GptqConfig, gptq_output_dtype, transform_gptq_weights
from .mxfp4_checkpoint import MXFP4_QUANTIZATION, transform_mxfp4_weights

__all__ = ["ExternalFormat", "AwqFormat", "GptqFormat", "Mxfp4Format", "detect"]

SUPPORTED_METHODS = ("awq", "gptq", "mxfp4")


class ExternalFormat(abc.ABC):
    """A producer's quantized checkpoint layout that converts to MLX's."""

    #: ``quant_method`` as written in ``config.json``.
    name: str = ""
    # Group anchor suffix, and the suffixes that belong to the anchor's group.
    _anchor: str = ""
    _members: tuple[str, ...] = ()

    def group_keys(self, names: Iterable[str]) -> list[list[str]]:
        """Partitions ``names`` (every tensor of the checkpoint) into groups to transform
        together, in order of first appearance. A layer's group holds its packed tensors and
        any stale tensor it would collide with (so ``transform`` can refuse the collision)."""
        names = list(names)
        present = set(names)
        anchors = {n[: -len(self._anchor)] for n in names if n.endswith(self._anchor)}
        owner: dict[str, str] = {}
        for p in anchors:
            for s in self._members:
                if p + s in present:
                    owner.setdefault(p + s, p)
        groups: dict[str, list[str]] = {}
        for n in names:
            key = owner.get(n, "\0" + n)  # "\0" cannot start a layer prefix we made
            groups.setdefault(key, []).append(n)
        return list(groups.values())

    @abc.abstractmethod
    def output_dtype(self, header_dtypes: Mapping[str, Any]) -> Optional[np.dtype]:
        """The dtype of the generated scales/biases for the whole checkpoint (name -> dtype
        of every tensor), or None when the format generates no floating tensors."""

    @abc.abstractmethod
    def transform(
        self,
        weights: Mapping[str, np.ndarray],
        *,
        out_dtype: Any = None,
        allow_requantize: bool = False,
        report: Optional[list] = None,
    ) -> tuple[dict[str, np.ndarray], PerLayerQuantization]:
        """Converts one group (or a whole map). Pass ``out_dtype=self.output_dtype(...)``
        computed over the whole checkpoint so all groups agree. Inputs are never modified."""

    @abc.abstractmethod
    def quantization(self) -> Quantization:
        """The global MLX quantization parameters of the converted checkpoint."""


class AwqFormat(ExternalFormat):
    """AutoAWQ GEMM checkpoints (:mod:`mlxq.formats.awq`)."""

    name = "awq"
    _anchor = ".qweight"
    _members = (".qweight", ".qzeros", ".scales", ".g_idx", ".weight", ".biases")

    def __init__(self, config: AwqLoadConfig):
        self.config = config
        config.validate()

    def __repr__(self) -> str:
        return f"AwqFormat({self.config!r})"

    def output_dtype(self, header_dtypes: Mapping[str, Any]) -> Optional[np.dtype]:
        return awq_output_dtype(header_dtypes)

    def transform(self, weights, *, out_dtype=None, allow_requantize=False, report=None):
        # AWQ groups are always contiguous: nothing ever needs re-quantizing.
        return transform_awq_weights(weights, self.config, out_dtype=out_dtype)

    def quantization(self) -> Quantization:
        return self.config.quantization()


class GptqFormat(ExternalFormat):
    """GPTQ checkpoints, v1 and v2 (:mod:`mlxq.formats.gptq`)."""

    name = "gptq"
    _anchor = ".qweight"
    _members = (".qweight", ".qzeros", ".scales", ".g_idx", ".weight", ".biases")

    def __init__(self, config: GptqConfig):
        self.config = config
        config.validate()

    def __repr__(self) -> str:
        return f"GptqFormat({self.config!r})"

    def output_dtype(self, header_dtypes: Mapping[str, Any]) -> Optional[np.dtype]:
        return gptq_output_dtype(header_dtypes)

    def transform(self, weights, *, out_dtype=None, allow_requantize=False, report=None):
        return transform_gptq_weights(weights, self.config, out_dtype=out_dtype,
                                      allow_requantize=allow_requantize, report=report)

    def quantization(self) -> Quantization:
        return self.config.quantization()


class Mxfp4Format(ExternalFormat):
    """gpt-oss style MXFP4 checkpoints (:mod:`mlxq.formats.mxfp4_checkpoint`)."""

    name = "mxfp4"
    _anchor = "_blocks"
    _members = ("_blocks", "_scales", ".weight", ".scales")

    def __repr__(self) -> str:
        return "Mxfp4Format()"

    def output_dtype(self, header_dtypes: Mapping[str, Any]) -> Optional[np.dtype]:
        return None

    def transform(self, weights, *, out_dtype=None, allow_requantize=False, report=None):
        return transform_mxfp4_weights(weights)

    def quantization(self) -> Quantization:
        return MXFP4_QUANTIZATION


def detect(config: Mapping[str, Any]) -> Optional[ExternalFormat]:
    """The format of a Hugging Face ``config.json`` dict's ``quantization_config`` (also
    looked for under ``text_config``, as mlx-lm does), or None when there is none.

    Raises:
        UnknownEnumValueError: a ``quant_method`` mlxq cannot convert (bitsandbytes, fp8,
            compressed-tensors, ...) or a missing one.
        (and whatever the format's config rejects: e.g. AWQ version "gemv").

    >>> detect({"quantization_config": {"quant_method": "bitsandbytes"}})
    Traceback (most recent call last):
    ...
    mlxq.errors.UnknownEnumValueError: quant_method='bitsandbytes' is not supported; mlxq converts awq, gptq and mxfp4 checkpoints
    """
    if not isinstance(config, Mapping):
        raise ArgumentTypeError(f"config must be a mapping, got {type(config).__name__}")
    qc = config.get("quantization_config")
    if qc is None:
        text = config.get("text_config")
        qc = text.get("quantization_config") if isinstance(text, Mapping) else None
    if qc is None:
        return None
    if not isinstance(qc, Mapping):
        raise ParseError(f"config.json: quantization_config must be an object, got "
                         f"{type(qc).__name__} {qc!r:.60}", key="quantization_config")
    method = qc.get("quant_method")
    if method is not None and not isinstance(method, str):
        raise ParseError(f"config.json: quantization_config.quant_method must be a string, "
                         f"got {method!r:.60}", key="quant_method")
    method = method.lower() if isinstance(method, str) else method
    if method == "awq":
        return AwqFormat(AwqLoadConfig.from_dict(qc))
    if method == "gptq":
        return GptqFormat(GptqConfig.from_dict(qc))
    if method == "mxfp4":
        return Mxfp4Format()
    raise UnknownEnumValueError(
        f"quant_method={method!r} is not supported; mlxq converts "
        f"{', '.join(SUPPORTED_METHODS[:-1])} and {SUPPORTED_METHODS[-1]} checkpoints"
    )
