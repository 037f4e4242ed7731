"""The source checkpoint: its config, its shards (the index is the truth), and every tensor
as a lazy :class:`~mlxq.conversion.graph.Source` — or, for another producer's quantized
format (AutoAWQ, GPTQ, gpt-oss MXFP4), the tensors that format's transform makes.

Nothing is read here beyond headers and small JSON files.
"""

from __future__ import annotations

import glob
import os
import warnings
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence

import numpy as np

from ..errors import FormatError, MissingKeyError
from ..io import SafetensorsReader
from ..shards import INDEX_FILE, MODEL_PATTERN, open_shards
from . import graph
from .hfconfig import load_config

__all__ = ["SourceCheckpoint"]

_PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl")

#: quant_method -> the tensor name endings only that format's quantized layers have
_FORMAT_TENSORS: dict[str, tuple[str, ...]] = {
    "awq": (".qweight",),
    "gptq": (".qweight",),
    "mxfp4": ("_blocks",),
    "compressed-tensors": (".weight_packed", ".weight_scale"),
}


def _refuse_other_weights(src: Path) -> None:
    names = sorted(os.listdir(src))
    pickles = [n for n in names if n.endswith(_PICKLE_SUFFIXES)]
    if pickles:
        raise FormatError(
            f"{src}: weights are in pickle files ({', '.join(pickles[:3])}); mlxq refuses "
            "them because unpickling runs arbitrary code. Convert them to safetensors first "
            "(e.g. transformers' save_pretrained(..., safe_serialization=True))")
    other = [n for n in names if n.endswith(".safetensors")]
    if other:
        raise FormatError(
            f"{src}: no model*.safetensors ({', '.join(other[:3])} found); mlx-lm reads only "
            "files named model*.safetensors, so mlxq does too. Rename them")
    raise MissingKeyError(f"{src}: no model*.safetensors files", key=MODEL_PATTERN)


class SourceCheckpoint:
    """A Hugging Face (or MLX, AWQ, GPTQ, MXFP4) checkpoint folder, opened for reading.

    Attributes:
        folder: the folder.
        config: ``config.json`` as mlx-lm's ``load_config`` reads it.
        tensors: every checkpoint tensor by name, lazy.
        external: the other producer's format (:mod:`mlxq.formats.external`), or None.
    """

    def __init__(self, folder: Path):
        self.folder = folder
        self.config: dict[str, Any] = load_config(folder)
        if not os.path.lexists(folder / INDEX_FILE) and not glob.glob(str(folder / MODEL_PATTERN)):
            _refuse_other_weights(folder)
        self._shards = open_shards(folder, lambda p: SafetensorsReader(p, within=folder))
        try:
            self.tensors: dict[str, graph.Tensor] = {
                name: graph.Source(r, name) for name, r in self._shards.where.items()}
            self.notes: list[str] = []
            self.external = self._detect_external()
        except BaseException:
            self.close()
            raise

    @property
    def files(self) -> list[Path]:
        return list(self._shards.files)

    def file_of(self, name: str) -> Path:
        return self._shards.file_of[name]

    def nbytes(self, name: str) -> int:
        return self._shards.where[name].info(name).nbytes

    def quantization_config(self) -> Any:
        """A truthy ``quantization_config`` (top level, else ``text_config``'s), which
        mlx-lm's ``load_model`` reads when there is no ``quantization`` block."""
        text = self.config.get("text_config")
        return self.config.get("quantization_config",
                               text.get("quantization_config") if isinstance(text, Mapping)
                               else None)

    def check_unchanged(self) -> None:
        """Raises :class:`~mlxq.errors.SourceChangedError` if a shard was modified or
        replaced since it was opened (call it after the last read)."""
        for h in self._shards.handles:
            h.check_unchanged()

    def _drop_false_claim(self) -> None:
        """A ``quantization_config`` naming another producer's format (AWQ, GPTQ, MXFP4,
        compressed-tensors) on a checkpoint that holds no tensor of that format is false:
        its tensors are dense. mlx-lm would carry the claim into the output's config (as a
        ``quantization`` block no layer has); mlxq converts the tensors as the dense ones
        they are, drops the claim, and says so (``notes``, warned by ``convert``), so no
        written config contradicts its weights."""
        qc = self.quantization_config()
        if self.config.get("quantization") is not None or not isinstance(qc, Mapping):
            return
        method = qc.get("quant_method")
        marks = _FORMAT_TENSORS.get(method) if isinstance(method, str) else None
        if marks is None or any(n.endswith(marks) for n in self.tensors):
            return
        self.config.pop("quantization_config", None)
        text = self.config.get("text_config")
        if isinstance(text, Mapping) and "quantization_config" in text:
            self.config["text_config"] = {k: v for k, v in text.items()
                                          if k != "quantization_config"}
        self.notes.append(
            f"config.json's quantization_config says {method!r}, but no tensor is in that "
            f"format (none ends in {' or '.join(marks)}): converted as the dense checkpoint "
            "it is, and the claim is left out of the output's config.json")

    def _detect_external(self) -> Any:
        self._drop_false_claim()
        qc = self.quantization_config()
        if self.config.get("quantization") is not None or not qc:
            return None
        if isinstance(qc, Mapping) and qc.get("quant_method") in ("fp8", "compressed-tensors",
                                                                  "bitnet", "mxfp8"):
            # undone lazily before sanitize, or (bitnet) kept as the family's model holds
            # it (mlxq.conversion.prequant)
            return None
        from ..formats import external

        return external.detect(dict(self.config))

    def close(self) -> None:
        self._shards.close()

    def __enter__(self) -> "SourceCheckpoint":
        return self

    def __exit__(self, *_: Any) -> None:
        self.close()


class _GroupNode:
    """One group of an external format's tensors, transformed together (whole: the
    transforms work on a layer at a time); the last group's result is kept for the
    outputs that share it."""

    def __init__(self, fmt: Any, tensors: Mapping[str, graph.Tensor], group: Sequence[str],
                 out_dtype: Any, allow_requantize: bool):
        self.fmt, self.tensors, self.group = fmt, tensors, list(group)
        self.out_dtype, self.allow_requantize = out_dtype, allow_requantize
        self._cache: Optional[dict[str, np.ndarray]] = None

    def run(self, report: Optional[list] = None) -> tuple[dict[str, np.ndarray], Any]:
        arrays = {n: self.tensors[n].numpy() for n in self.group}
        with warnings.catch_warnings():
            # the requantize warning is reported once, in the summary, not per pass
            warnings.simplefilter("ignore", RuntimeWarning)
            return self.fmt.transform(arrays, out_dtype=self.out_dtype,
                                      allow_requantize=self.allow_requantize, report=report)

    def get(self, name: str) -> np.ndarray:
        if self._cache is None or name not in self._cache:
            self._cache, _ = self.run()
        return self._cache[name]


class _GroupOutput(graph.Tensor):
    """A tensor an external format's transform makes (evaluated with its group)."""

    __slots__ = ("node", "name", "_inputs")

    def __init__(self, node: _GroupNode, name: str, shape: tuple, dtype: Any):
        super().__init__(shape, dtype)
        self.node, self.name = node, name
        self._inputs = tuple(node.tensors[n] for n in node.group)

    def inputs(self) -> tuple[graph.Tensor, ...]:
        return self._inputs

    @property
    def streams(self) -> bool:
        return False

    def _whole(self) -> np.ndarray:
        return self.node.get(self.name)

    def _rows(self, r0: int, r1: int) -> np.ndarray:
        return np.ascontiguousarray(self._whole().reshape(self.nrows, self.ncols)[r0:r1])


def external_tensors(src: SourceCheckpoint, allow_requantize: bool,
                     requantized: list) -> tuple[dict[str, graph.Tensor], dict[str, Any]]:
    """The MLX tensors another producer's checkpoint converts to (lazy), and the
    ``quantization`` block mlx-lm's ``load_model`` gives it: AWQ/GPTQ get
    ``{"group_size", "bits"}`` (``_transform_awq_weights``' block, no mode), MXFP4
    ``{"group_size", "bits", "mode"}``, plus any layer the transform gave its own
    parameters. A first pass runs each group's transform once to learn its outputs'
    names, dtypes and shapes (groups are one layer each: this costs a second transform,
    never memory)."""
    fmt = src.external
    names = list(src.tensors)
    groups = fmt.group_keys(names)
    out_dtype = fmt.output_dtype({n: src.tensors[n].dtype for n in names})
    block: dict[str, Any] = dict(fmt.quantization().to_dict())
    if fmt.name in ("awq", "gptq") and block.get("mode") == "affine":
        block.pop("mode")
    reserved = {"group_size", "bits", "mode", "quant_method", "linear_class",
                "quantization_mode"}
    out: dict[str, graph.Tensor] = {}
    for group in groups:
        node = _GroupNode(fmt, src.tensors, group, out_dtype, allow_requantize)
        arrays, plq = node.run(report=requantized)
        for name, arr in arrays.items():
            out[name] = _GroupOutput(node, name, tuple(arr.shape), arr.dtype)
        if plq is not None:
            for k, v in plq.to_dict().items():
                if k not in reserved:
                    block[k] = v
        del arrays
    return out, block
