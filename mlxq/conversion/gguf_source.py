"""A llama.cpp GGUF file (or split set) as a conversion source (docs/gguf.md).

:class:`GgufCheckpoint` looks like a :class:`~mlxq.conversion.source.SourceCheckpoint` to the
planner: a ``config.json`` dict (built from the GGUF metadata), and every tensor under the
Hugging Face name mlx-lm's family expects, lazy, read a row block at a time. On the way it
undoes what llama.cpp's ``convert_hf_to_gguf.py`` did to the Hugging Face checkpoint:

- **names**: the ``gguf`` package's own tensor-name map (``gguf.TensorNameMap``, the table
  llama.cpp converts with) is applied to every module path of mlx-lm's model for the family
  and inverted, so each GGUF name goes back to the one Hugging Face name llama.cpp would
  have made it from; stacked experts (``ffn_*_exps``, llama.cpp's merged
  ``mlp.experts.<proj>``) are mlx-lm's ``switch_mlp.<proj>``;
- **llama's Q/K rows**: llama.cpp reorders the rows of ``q_proj``/``k_proj`` (weights and
  biases) of llama-style attention for its interleaved rotary embedding; the reverse
  reorder is a permutation of whole rows, so quantized blocks move untouched;
- **Gemma's norms**: llama.cpp stores ``1 + w`` for every ``*norm.weight`` of gemma2/gemma3
  (its RMSNorm multiplies by the weight itself); ``w`` is restored (in float32);
- **llama.cpp-only tensors**: ``rope_freqs`` (llama 3's rope factors) and phi3's
  ``rope_factors_long``/``_short`` become the config's ``rope_scaling``, not tensors;
- **DeepSeek's MLA**: llama.cpp splits ``kv_b_proj`` into ``k_b`` (transposed) and ``v_b``:
  exactly deepseek_v3's ``embed_q`` and ``unembed_out`` (kept as they are); deepseek_v2,
  whose mlx-lm model keeps ``kv_b_proj``, gets it back, dequantized.

Each tensor of a type with an exact MLX layout (Q4_0, Q4_1, Q8_0, MXFP4:
:mod:`mlxq.formats.gguf`) becomes MLX's quantized triple and gets its own entry in the
``quantization`` block; the rest are dequantized (the ``gguf`` package's reference
arithmetic, in C for the common types) to the model's float dtype, and ``-q`` quantizes them
as any dense layer. With ``-q`` and explicit parameters (``--q-bits``, ``--q-group-size``,
``--q-mode``) that differ from a tensor's own, the user's choice wins: that tensor is
dequantized and quantized again. Rows in file order are read and converted by C threads in
one pass (src/gguf_read.c); llama's permuted rows are read whole heads at a time and gathered
by the same C conversion. The tokenizer is built while the tensors convert.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
from collections import Counter
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Optional

import numpy as np

from .._dtypes import bfloat16
from ..errors import FormatError, MissingDependencyError, ParseError, UnsupportedFormatError
from ..formats import gguf as fmt
from . import graph

__all__ = ["ARCHITECTURES", "GgufCheckpoint", "GgufTensorReport"]

log = logging.getLogger("mlxq")

#: llama.cpp's ``general.architecture`` -> mlx-lm's ``model_type`` (deepseek2 is
#: deepseek_v3 when the file has DeepSeek-V3's expert-bias routing, else deepseek_v2)
ARCHITECTURES: dict[str, str] = {
    "llama": "llama", "qwen2": "qwen2", "qwen3": "qwen3", "qwen3moe": "qwen3_moe",
    "gemma2": "gemma2", "gemma3": "gemma3_text", "phi3": "phi3", "deepseek2": "deepseek_v2",
    "gpt-oss": "gpt_oss",
}

#: the Hugging Face class each model_type's config names
_HF_CLASS = {"llama": "LlamaForCausalLM", "qwen2": "Qwen2ForCausalLM",
             "qwen3": "Qwen3ForCausalLM", "qwen3_moe": "Qwen3MoeForCausalLM",
             "gemma2": "Gemma2ForCausalLM", "gemma3_text": "Gemma3ForCausalLM",
             "phi3": "Phi3ForCausalLM", "deepseek_v2": "DeepseekV2ForCausalLM",
             "deepseek_v3": "DeepseekV3ForCausalLM", "gpt_oss": "GptOssForCausalLM"}

# llama.cpp permutes the Q/K rows of these architectures (convert_hf_to_gguf.py's
# LlamaModel.permute: its rope is GPT-J style, Hugging Face's llama rotates halves)
_PERMUTED = ("llama",)
# llama.cpp stores 1 + w for every norm weight of these (Gemma's RMSNorm scales by 1 + w)
_NORM_SHIFTED = ("gemma2", "gemma3")
_CONFIG_TENSORS = ("rope_freqs.weight", "rope_factors_long.weight", "rope_factors_short.weight")


def _f32(v: Any) -> float:
    """A float32 metadata value as the decimal its writer most likely had (1e-06, not
    9.999999974752427e-07)."""
    return float(str(np.float32(v)))


def _token_id(v: Any, vocab: int) -> bool:
    """Whether a ``tokenizer.ggml.*_token_id`` value names a token of the vocabulary."""
    return isinstance(v, int) and not isinstance(v, bool) and 0 <= v < vocab


_F32_MAX = float(np.finfo(np.float32).max)

#: llama.cpp's ``rope.scaling.type`` values (gguf's RopeScalingType)
_ROPE_SCALINGS = ("none", "linear", "yarn", "longrope")


# ---- tensors ---------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class _Info:
    shape: tuple[int, ...]
    nbytes: int


class _Parts:
    """The reader behind the lazy tensors of a GGUF file: each GGUF tensor is seen as up to
    three virtual tensors (``NAME#weight``/``#scales``/``#biases`` for an exact type, kept
    quantized; ``NAME#dense`` for its float values), each read a row block at a time with
    one ``pread`` and converted in C (:mod:`mlxq.formats.gguf`). A tensor of llama's
    permuted Q/K rows is read whole heads at a time and its rows put back in Hugging Face's
    order (:func:`hf_rows`) by the same C pass: quantized blocks move as they are. The last
    block's conversion is kept: the planner copies a kept triple's three parts a row block
    of each in turn, so each block of the file is read and converted once."""

    def __init__(self, gf: fmt.GgufFile):
        self.gf, self.path = gf, str(gf.path)
        #: called before each block is read (the tokenizer's build reports a failure there)
        self.check: Callable[[], None] = lambda: None
        self._infos: dict[str, tuple[_Info, np.dtype]] = {}
        self._heads: dict[str, int] = {}
        self._last: Optional[tuple[tuple[str, int, int], Any]] = None

    def add(self, name: str, part: str, heads: Optional[int] = None,
            dtype: Optional[np.dtype] = None) -> str:
        """The key of a part of GGUF tensor ``name``; ``dtype``: a block type's dense values
        in that float dtype (float32 otherwise)."""
        t = self.gf.tensors[name]
        lead = t.shape[:-1]
        if part == "dense":
            dt = fmt.plain_dtype(t.type) or np.dtype(dtype or np.float32)
            shape = t.shape
        else:
            bits, gs, mode = fmt.EXACT[t.type]
            if part == "weight":
                dt, shape = np.dtype(np.uint32), lead + (t.ncols * bits // 32,)
            else:
                dt = np.dtype(np.uint8) if mode == "mxfp4" else np.dtype(np.float16)
                shape = lead + (t.ncols // gs,)
        if heads is not None:
            if len(t.shape) != 2 and not (len(t.shape) == 1 and part == "dense"):
                raise FormatError(f"{t.path}: {name} is {list(t.shape)}; llama's Q/K "
                                  "projections are matrices or bias vectors", key=name)
            rows = t.ncols if len(t.shape) == 1 else t.nrows
            if rows % (2 * heads):
                raise FormatError(f"{t.path}: {name} has {rows} rows, which do not split "
                                  f"into {heads} heads of even size", key=name)
            self._heads[name] = heads
        key = f"{name}#{part}"
        self._infos[key] = (_Info(shape, t.nbytes), dt)
        return key

    def info(self, key: str) -> _Info:
        return self._infos[key][0]

    def dtype(self, key: str) -> np.dtype:
        return self._infos[key][1]

    def _converted(self, name: str, r0: int, r1: int, dense: bool) -> Any:
        """Rows ``r0:r1`` (Hugging Face's order) of GGUF tensor ``name``: its float values
        (a 1-tuple) or MLX's quantized arrays."""
        k = (name + ("#dense" if dense else ""), r0, r1)
        if self._last is not None and self._last[0] == k:
            return self._last[1]
        self._last = None  # (released before the next block is read)
        self.check()
        t = self.gf.tensors[name]
        heads = self._heads.get(name)
        order = None
        plain = fmt.plain_dtype(t.type)
        made = self._infos[k[0]][1] if dense else None
        if heads is None and len(t.shape) > 1 and plain is None and (
                not dense or fmt.c_dequantizes(t.ggml_type)):
            # rows in file order, a block type converted in C: read and converted there
            got = (self.gf.read_dequantized(name, r0, r1, dtype=made),) if dense else \
                self.gf.read_to_mlx(name, r0, r1)
            self._last = (k, got)
            return got
        # block types are converted into new arrays: their bytes can go to a reused buffer
        scratch = plain is None
        if len(t.shape) == 1:  # a vector: one row of ncols values
            raw = self.gf.read_raw(name, 0, 1, scratch)
        elif heads is None:
            raw = self.gf.read_raw(name, r0, r1, scratch)
        else:  # whole heads, the rows picked from them in Hugging Face's order
            d = t.nrows // heads
            h0, h1 = r0 // d, -(-r1 // d)
            raw = self.gf.read_raw(name, h0 * d, h1 * d, scratch)
            order = hf_rows(t.nrows, heads)[r0:r1] - h0 * d
        try:
            if dense:
                dt = fmt.plain_dtype(t.type)
                if dt is not None:
                    vals = raw.view(dt) if order is None else raw.view(dt)[order]
                else:
                    vals = fmt.dequantize_rows(raw, t, order, dtype=made)
                got: Any = (vals,)
            else:
                got = fmt.to_mlx(raw, t.type, order)
        except FormatError as e:
            raise FormatError(f"{t.path}: tensor {name!r}: {e.message}", key=name) from None
        self._last = (k, got)
        return got

    def rows(self, key: str, r0: int, r1: int) -> np.ndarray:
        """Rows ``r0:r1`` of virtual tensor ``key``, a new array (graph.Source's reader)."""
        name, _, part = key.partition("#")
        t = self.gf.tensors[name]
        which = 0 if part == "dense" else ("weight", "scales", "biases").index(part)
        if len(t.shape) == 1 and name in self._heads:  # a permuted bias: its values are rows
            vec = self._converted(name, 0, 1, True)[0].reshape(-1)
            return vec[hf_rows(t.ncols, self._heads[name])].reshape(1, -1)
        got = self._converted(name, r0, r1, part == "dense")[which]
        return np.ascontiguousarray(got.reshape(r1 - r0, -1).view(self.dtype(key)))

    def read_rows(self, key: str, start: int, out: np.ndarray) -> np.ndarray:
        out[...] = self.rows(key, start, start + out.shape[0])
        return out


def hf_rows(rows: int, heads: int) -> np.ndarray:
    """For each Hugging Face row of llama's q/k projection, its GGUF row: the inverse of
    llama.cpp's ``LlamaModel.permute`` (``reshape(heads, 2, d/2).swapaxes(1, 2)``), under
    which GGUF row ``h*d + 2i + j`` holds Hugging Face row ``h*d + j*d/2 + i``.

    >>> hf_rows(8, 1).tolist()
    [0, 2, 4, 6, 1, 3, 5, 7]
    """
    d = rows // heads
    g = np.arange(rows).reshape(heads, d // 2, 2)      # GGUF rows by (head, i, j)
    return g.swapaxes(1, 2).reshape(rows)              # in HF order (head, j, i)


@dataclasses.dataclass(frozen=True)
class GgufTensorReport:
    """What became of one GGUF tensor: ``kept`` (its blocks are MLX's quantized triple, bit
    for bit), ``dense`` (plain floats) or ``dequantized`` (a block type MLX cannot hold, or
    one the user asked to quantize differently)."""

    gguf_name: str
    name: str          # the Hugging Face parameter name
    type: str          # the ggml type
    action: str


# ---- the source ------------------------------------------------------------------------------

class GgufCheckpoint:
    """A GGUF model opened as a conversion source (see the module docstring).

    ``requested``: the quantization parameters ``-q`` asks for explicitly (``(group_size,
    bits, mode)``), if any; tensors of another exact type are dequantized for them.
    ``dense_in_dtype``: dequantized tensors the model casts are made in its float dtype
    directly (rounded as the cast would round them: the same bytes, one pass less), rather
    than float32 (what ``-q`` quantizes and measures its error against)."""

    external = None
    source_format = "gguf"

    def __init__(self, path: Path, requested: Optional[tuple[int, int, str]] = None,
                 dtype: Optional[str] = None, dense_in_dtype: bool = False):
        self.gf = fmt.GgufFile(path)
        try:
            self._open(Path(path), requested, dtype, dense_in_dtype)
        except BaseException:
            self.gf.close()
            raise

    def _open(self, path: Path, requested: Optional[tuple[int, int, str]],
              dtype: Optional[str], dense_in_dtype: bool) -> None:
        from ..models import family_for

        self.path = path
        self.folder = path.parent
        meta = self.gf.metadata
        arch = meta.get("general.architecture")
        if not isinstance(arch, str) or arch not in ARCHITECTURES:
            raise UnsupportedFormatError(
                f"{path}: llama.cpp architecture {arch!r} is not one mlxq converts from GGUF; "
                f"supported: {', '.join(ARCHITECTURES)}", key="general.architecture")
        self.arch = arch
        tensors = self.gf.tensors
        self.config = _config(arch, meta, self.gf, path)
        self.float_dtype = _float_dtype(tensors, dtype)
        self.config["torch_dtype"] = {np.dtype(np.float16): "float16",
                                      np.dtype(bfloat16): "bfloat16",
                                      np.dtype(np.float32): "float32"}[self.float_dtype]
        family = family_for(self.config)
        self.family = family
        names = _name_map(arch, family, self.config)
        parts = _Parts(self.gf)
        self.tensors: dict[str, graph.Tensor] = {}
        self.reports: list[GgufTensorReport] = []
        block: dict[str, Any] = {}
        heads = self.config["num_attention_heads"]
        kv_heads = self.config.get("num_key_value_heads", heads)
        skip, dense_only = _deepseek_mla(tensors, family) if arch == "deepseek2" else ((), ())
        for gname, t in tensors.items():
            if gname in _CONFIG_TENSORS or gname in skip:
                continue  # read into the config's rope_scaling; a redundant MLA form
            base, dot, leaf = gname.rpartition(".")
            hf = names.get(base)
            if hf is None or leaf not in ("weight", "bias"):
                raise FormatError(
                    f"{path}: tensor {gname!r} has no counterpart in mlx-lm's "
                    f"{family.module} model (llama.cpp architecture {arch!r})", key=gname)
            permuted = None
            if arch in _PERMUTED and base.endswith((".attn_q", ".attn_k")):
                permuted = heads if base.endswith(".attn_q") else kv_heads
            # kept quantized where mlx-lm's model quantizes that layer (a router it keeps
            # dense, such as deepseek's mlp.gate, is dequantized)
            keep = (fmt.exact_in_mlx(t) and leaf == "weight" and gname not in dense_only
                    and family.quantizable(hf, t.shape, np.float16))
            if keep and requested is not None:
                bits, gs, mode = fmt.EXACT[t.type]
                keep = requested == (gs, bits, mode)  # the user's choice wins
            out: dict[str, graph.Tensor]
            if keep:
                bits, gs, mode = fmt.EXACT[t.type]
                ks = ["weight", "scales"] + (["biases"] if mode == "affine" else [])
                out = {f"{hf}.{k}": graph.Source(parts, parts.add(gname, k, permuted))
                       for k in ks}
                entry = {"group_size": gs, "bits": bits}
                if mode != "affine":
                    entry["mode"] = mode
                block[hf] = entry
                action = "kept"
            else:
                made = self.float_dtype if dense_in_dtype and \
                    family.casts(_hf_name(f"{hf}.{leaf}")) else None
                dense = graph.Source(parts, parts.add(gname, "dense", permuted, made))
                out = {f"{hf}.{leaf}": dense}
                action = "dense" if fmt.plain_dtype(t.type) is not None else "dequantized"
            for k, v in out.items():
                if arch in _NORM_SHIFTED and gname.endswith("norm.weight"):
                    v = v.astype(np.float32) - 1.0
                self.tensors[_hf_name(k)] = v
            self.reports.append(GgufTensorReport(gname, _hf_name(f"{hf}.{leaf}"), t.type,
                                                 action))
        if arch == "deepseek2":
            _deepseek_attention(self.tensors, self.config, family)
        # transformers is imported here, on this thread (its lazy modules are not safe to
        # import from two); the build itself, Python and Rust work, runs beside the tensors'
        # conversion (C, without the GIL) and a failure stops the conversion at its next
        # block, before anything is committed
        tf = _transformers_tokenizer()
        check_tokenizer_metadata(meta, path)
        self._tokenizer = _Background(build_tokenizer, meta, tf)
        parts.check = self._tokenizer.raise_failure
        if block:
            order = family.order_for(self.config)
            block = dict(sorted(block.items(), key=lambda kv: order.key(kv[0] + ".weight")))
            kinds = Counter((e["group_size"], e["bits"], e.get("mode", "affine"))
                            for e in block.values())
            (gs, bits, mode), _ = kinds.most_common(1)[0]
            glob: dict[str, Any] = {"group_size": gs, "bits": bits}
            if mode != "affine":
                glob["mode"] = mode
            self.config["quantization"] = {**glob, **block}

    # the SourceCheckpoint interface the planner and convert() use
    def quantization_config(self) -> Any:
        return None

    @property
    def files(self) -> list[Path]:
        return list(self.gf.files)

    @property
    def bytes_read(self) -> int:
        """The bytes read from the GGUF file(s) so far: their headers and the tensor data
        read (a kept tensor's three parts come from one read of its blocks)."""
        return self.gf.bytes_read

    def model_card(self) -> Optional[Path]:
        return None

    def write_side_files(self, dst: Path) -> list[str]:
        """The tokenizer files and chat template (from ``tokenizer.ggml.*``) and
        ``generation_config.json``."""
        before = set(os.listdir(dst))
        self.tokenizer.save_pretrained(str(dst))
        written = sorted(set(os.listdir(dst)) - before)
        gen = {k: self.config[k] for k in ("bos_token_id", "eos_token_id")
               if k in self.config}
        (dst / "generation_config.json").write_text(json.dumps(gen, indent=2) + "\n",
                                                    encoding="utf-8")
        return written + ["generation_config.json"]

    @property
    def tokenizer(self) -> Any:
        """The tokenizer (transformers' ``PreTrainedTokenizerFast``) of ``tokenizer.ggml.*``;
        waits for its build."""
        return self._tokenizer.result()

    def close(self) -> None:
        self.gf.close()  # (a tokenizer still being built finishes on its own)

    def __enter__(self) -> "GgufCheckpoint":
        return self

    def __exit__(self, *_: Any) -> None:
        self.close()


def _float_dtype(tensors: Mapping[str, fmt.GgufTensor], dtype: Optional[str]) -> np.dtype:
    """The model's float dtype: ``--dtype`` if given; else bfloat16 or float16 when the
    file's weight matrices are stored so; else float16 when any is quantized (the dtype of
    ggml's block scales, which the kept triples keep); else float32."""
    if dtype in ("float16", "bfloat16", "float32"):
        return np.dtype({"float16": np.float16, "bfloat16": bfloat16,
                         "float32": np.float32}[dtype])
    types = Counter(t.type for t in tensors.values() if len(t.shape) >= 2)
    if types.get("BF16", 0) > types.get("F16", 0):
        return np.dtype(bfloat16)
    if types.get("F16") or any(k not in ("F32", "F64") for k in types):
        return np.dtype(np.float16)
    return np.dtype(np.float32)


# ---- names -----------------------------------------------------------------------------------

def _module_paths(tree: tuple, prefix: str, n_layers: int) -> Iterable[str]:
    for name, children, is_list in tree:
        path = f"{prefix}{name}"
        if is_list:
            for i in range(n_layers):
                if children:
                    yield from _module_paths(children, f"{path}.{i}.", n_layers)
        elif children:
            yield from _module_paths(children, path + ".", n_layers)
        else:
            yield path


def _name_map(arch: str, family: Any, config: Mapping[str, Any]) -> dict[str, str]:
    """GGUF base name (``blk.0.attn_q``) -> Hugging Face module path, by mapping every
    module path of mlx-lm's model with gguf's ``TensorNameMap`` (as llama.cpp's converter
    maps them) and inverting. mlx-lm's stacked experts ``switch_mlp.<proj>`` are looked up
    as llama.cpp's merged ``experts.<proj>``; deepseek_v3's ``embed_q``/``unembed_out``
    as the ``k_b_proj``/``v_b_proj`` llama.cpp splits ``kv_b_proj`` into."""
    g = fmt._gguf()
    enum = {v: k for k, v in g.MODEL_ARCH_NAMES.items()}[arch]
    n = int(config["num_hidden_layers"])
    tmap = g.get_tensor_name_map(enum, n)
    order = family.order_for(config)
    out: dict[str, str] = {}
    for path in _module_paths(order._parsed, "", n):
        probe = path.replace(".switch_mlp.", ".experts.")
        probe = probe.replace(".embed_q", ".k_b_proj").replace(".unembed_out", ".v_b_proj")
        if probe.endswith(".weight"):  # a parameter the order lists (gate(weight ...))
            probe, path = probe[: -len(".weight")], path[: -len(".weight")]
        elif probe.endswith(".e_score_correction_bias"):
            probe = path = probe[: -len("_bias")]
        gname = tmap.get_name(probe)
        if gname is not None:
            out.setdefault(gname, path)
    if arch == "deepseek2":  # both MLA forms, whichever the model holds (_deepseek_mla)
        for i in range(n):
            p = f"model.layers.{i}.self_attn"
            for hf, mlx in (("k_b_proj", "embed_q"), ("v_b_proj", "unembed_out"),
                            ("kv_b_proj", "kv_b_proj")):
                gname = tmap.get_name(f"{p}.{hf}")
                if gname is not None:
                    out.setdefault(gname, f"{p}.{mlx}")
    return out


# ---- config.json -----------------------------------------------------------------------------

def _config(arch: str, meta: Mapping[str, Any], gf: fmt.GgufFile, path: Path
            ) -> dict[str, Any]:
    """mlx-lm's config.json for the model, from llama.cpp's metadata (``<arch>.*`` keys)."""
    tensors = gf.tensors

    def get(key: str, default: Any = None, kind: type = int) -> Any:
        v = meta.get(f"{arch}.{key}", default)
        if v is None:
            if default is None:
                raise FormatError(f"{path}: metadata {arch}.{key} is missing; llama.cpp writes "
                                  f"it for every {arch} model", key=f"{arch}.{key}")
            return default
        ok = (isinstance(v, (int, float)) and not isinstance(v, bool)) if kind is float else \
            isinstance(v, kind) and (kind is bool or not isinstance(v, bool))
        if ok and kind is float and not abs(v) <= _F32_MAX:
            ok = False  # NaN, or beyond float32 (as llama.cpp reads it)
        if not ok or (kind is int and v < 0):
            want = {int: "a non-negative integer", str: "a string",
                    float: "a finite float32"}.get(kind, kind.__name__)
            raise ParseError(f"{path}: metadata {arch}.{key} is {v!r:.60}, not {want}",
                             key=f"{arch}.{key}")
        return _f32(v) if kind is float else v

    model_type = ARCHITECTURES[arch]
    if arch == "deepseek2" and (meta.get(f"{arch}.expert_gating_func") == 2 or any(
            n.endswith(".exp_probs_b.bias") for n in tensors)):
        model_type = "deepseek_v3"
    emb = tensors.get("token_embd.weight")
    if emb is None or len(emb.shape) != 2:
        raise FormatError(f"{path}: no 2-D token_embd.weight (the token embeddings)",
                          key="token_embd.weight")
    hidden = get("embedding_length")
    if emb.shape[1] != hidden:
        raise FormatError(f"{path}: token_embd.weight is {list(emb.shape)} but "
                          f"{arch}.embedding_length is {hidden}", key="token_embd.weight")
    heads = get("attention.head_count")
    if heads == 0:
        raise FormatError(f"{path}: {arch}.attention.head_count is 0",
                          key=f"{arch}.attention.head_count")
    layers = get("block_count")
    present = {int(n.split(".")[1]) for n in tensors if n.startswith("blk.")
               and n.split(".")[1].isdigit()}
    # every block the count promises has tensors (a count with none behind it would have the
    # name map walk that many layers)
    if len(present) != layers or present and max(present) >= layers:  # not 0..layers-1
        held = (f"tensors of blocks {min(present)}..{max(present)} ({len(present)} blocks)"
                if present else "no block tensors")
        raise FormatError(f"{path}: {arch}.block_count is {layers} but the file has {held}",
                          key=f"{arch}.block_count")
    c: dict[str, Any] = {
        "architectures": [_HF_CLASS[model_type]],
        "model_type": model_type,
        "hidden_size": hidden,
        "num_hidden_layers": layers,
        "intermediate_size": get("feed_forward_length", 0),
        "num_attention_heads": heads,
        "num_key_value_heads": get("attention.head_count_kv", heads),
        "max_position_embeddings": get("context_length", 2048),
        "rms_norm_eps": get("attention.layer_norm_rms_epsilon", 1e-6, float),
        "rope_theta": get("rope.freq_base", 10000.0, float),
        "vocab_size": emb.shape[0],
        "tie_word_embeddings": "output.weight" not in tensors,
    }
    key_len = meta.get(f"{arch}.attention.key_length")
    if key_len is not None and arch != "deepseek2":
        c["head_dim"] = get("attention.key_length")
    for k, hf in (("tokenizer.ggml.bos_token_id", "bos_token_id"),
                  ("tokenizer.ggml.eos_token_id", "eos_token_id"),
                  ("tokenizer.ggml.padding_token_id", "pad_token_id")):
        if _token_id(meta.get(k), c["vocab_size"]):
            c[hf] = meta[k]
    scaling = get("rope.scaling.type", "none", str)
    if scaling not in _ROPE_SCALINGS:
        raise UnsupportedFormatError(f"{path}: {arch}.rope.scaling.type is {scaling!r:.60}, "
                                     f"not one of llama.cpp's {', '.join(_ROPE_SCALINGS)}",
                                     key=f"{arch}.rope.scaling.type")
    if scaling != "none":
        factor = get("rope.scaling.factor", 1.0, float)
        rs: dict[str, Any] = {"type": scaling, "factor": factor}
        orig = meta.get(f"{arch}.rope.scaling.original_context_length")
        if orig is not None:
            rs["original_max_position_embeddings"] = get("rope.scaling.original_context_length")
        for beta in ("beta_fast", "beta_slow"):  # yarn's, when the converter wrote them
            if f"{arch}.rope.scaling.yarn_{beta}" in meta:
                rs[beta] = get(f"rope.scaling.yarn_{beta}", kind=float)
        c["rope_scaling"] = rs
    if "rope_freqs.weight" in tensors:
        c["rope_scaling"] = _llama3_rope(_read_floats(gf, "rope_freqs.weight"), c, get, path)
    extra = _ARCH_CONFIG.get(arch)
    if extra is not None:
        extra(c, get, meta, gf, path)
    _check_config(c, arch, tensors, path)
    return c


def _check_config(c: Mapping[str, Any], arch: str, tensors: Mapping[str, Any],
                  path: Path) -> None:
    """Refuses a config made from metadata that mlx-lm's model cannot load or run: the
    attention projections' rows must be the head counts times the head size (load_weights
    checks each shape), the key/value heads must divide the query heads, the norm epsilon
    must be positive, the experts per token 1..the experts, a sliding-window pattern at
    least 1 (the rotary dimensions are checked where they are read)."""
    def bad(key: str, why: str) -> FormatError:
        return FormatError(f"{path}: {arch}.{key} {why}", key=f"{arch}.{key}")

    if not c["rms_norm_eps"] > 0:
        raise bad("attention.layer_norm_rms_epsilon", f"is {c['rms_norm_eps']}, not positive "
                  "(mlx-lm's RMSNorm refuses it)")
    heads, kv = c["num_attention_heads"], c["num_key_value_heads"]
    if kv == 0 or heads % kv:
        raise bad("attention.head_count_kv", f"is {kv}, which does not divide the "
                  f"{heads} query heads")
    if arch != "deepseek2":  # MLA's projections have their own widths (checked by shape)
        head_dim = c.get("head_dim") or c["hidden_size"] // heads
        want = {"attn_q": (heads * head_dim, "attention.head_count"),
                "attn_k": (kv * head_dim, "attention.head_count_kv"),
                "attn_v": (kv * head_dim, "attention.head_count_kv"),
                "attn_qkv": ((heads + 2 * kv) * head_dim, "attention.head_count_kv")}
        for name, t in tensors.items():
            parts = name.split(".")
            if len(parts) == 4 and parts[0] == "blk" and parts[3] == "weight" and \
                    parts[2] in want and len(t.shape) == 2:
                rows, key = want[parts[2]]
                if t.shape[0] != rows:
                    raise bad(key, f"and the head size {head_dim} make {name} {rows} rows, "
                              f"but it has {t.shape[0]}")
    experts = c.get("num_experts") or c.get("n_routed_experts") or c.get("num_local_experts")
    if experts is not None and not 1 <= c.get("num_experts_per_tok", 1) <= experts:
        raise bad("expert_used_count", f"is {c.get('num_experts_per_tok')}, not 1..{experts} "
                  "(the experts)")
    if c.get("sliding_window_pattern", 1) < 1:
        raise bad("attention.sliding_window_pattern", "is 0: every layer would divide by it")


def _read_floats(gf: fmt.GgufFile, name: str) -> np.ndarray:
    """A small float tensor's values (the rope factor vectors)."""
    t = gf.tensors[name]
    if t.type != "F32" or len(t.shape) != 1:
        raise FormatError(f"{t.path}: {t.name} is {t.type} {list(t.shape)}, not a float32 "
                          "vector", key=t.name)
    return gf.read_raw(name, 0, 1).view("<f4").reshape(-1)


def _llama3_rope(got: np.ndarray, c: Mapping[str, Any], get: Any, path: Path
                 ) -> dict[str, Any]:
    """Llama 3's rope_scaling from the per-frequency factors llama.cpp computed from it
    (``rope_freqs``; LlamaModel.generate_extra_tensors): ``factor`` is the largest factor;
    ``low_freq_factor``, ``high_freq_factor`` and ``original_max_position_embeddings`` are
    Meta's published values, checked by recomputing every factor."""
    head_dim = c.get("head_dim", c["hidden_size"] // c["num_attention_heads"])
    dim = get("rope.dimension_count", head_dim)
    if not 0 < dim <= 2 * len(got):  # one factor per pair of rotated dimensions
        raise FormatError(f"{path}: rope.dimension_count {dim} does not fit rope_freqs.weight's "
                          f"{len(got)} factors", key="rope_freqs.weight")
    base = c["rope_theta"]
    factor = float(got.max())
    for low, high, orig in ((1.0, 4.0, 8192),):
        freqs = 1.0 / (base ** (np.arange(0, dim, 2, dtype=np.float32) / dim))
        low_wl, high_wl = orig / low, orig / high
        want = []
        for f in freqs.tolist():
            wl = 2 * np.pi / f
            if wl < high_wl:
                want.append(1.0)
            elif wl > low_wl:
                want.append(factor)
            else:
                s = (orig / wl - low) / (high - low)
                want.append(1 / ((1 - s) / factor + s))
        if len(want) == len(got) and np.allclose(np.float32(want), got, rtol=1e-5, atol=0):
            return {"factor": _f32(factor), "low_freq_factor": low, "high_freq_factor": high,
                    "original_max_position_embeddings": orig, "rope_type": "llama3"}
    raise UnsupportedFormatError(f"{path}: rope_freqs.weight holds rope factors that are not "
                                 "Llama 3's (factor, 1, 4, 8192): mlxq cannot say which "
                                 "rope_scaling made them", key="rope_freqs.weight")


def _qwen3moe(c: dict, get: Any, meta: Mapping[str, Any], gf: fmt.GgufFile,
              path: Path) -> None:
    c["num_experts"] = get("expert_count")
    c["num_experts_per_tok"] = get("expert_used_count")
    c["moe_intermediate_size"] = get("expert_feed_forward_length")
    c["decoder_sparse_step"] = 1
    c["mlp_only_layers"] = []
    c["norm_topk_prob"] = bool(meta.get("qwen3moe.expert_weights_norm", True))


def _gemma(c: dict, get: Any, meta: Mapping[str, Any], gf: fmt.GgufFile,
           path: Path) -> None:
    arch = "gemma2" if c["model_type"] == "gemma2" else "gemma3"
    head_dim = c.setdefault("head_dim", c["hidden_size"] // c["num_attention_heads"])
    # llama.cpp's attention scale: 1/sqrt(hidden/heads) for the 27B models (46 layers in
    # Gemma 2, 62 in Gemma 3), 1/sqrt(head_dim) otherwise: query_pre_attn_scalar
    big = c["num_hidden_layers"] == (46 if arch == "gemma2" else 62)
    c["query_pre_attn_scalar"] = c["hidden_size"] // c["num_attention_heads"] if big else head_dim
    c["sliding_window"] = get("attention.sliding_window", 4096)
    c["hidden_activation"] = "gelu_pytorch_tanh"
    if arch == "gemma2":
        c["attn_logit_softcapping"] = get("attn_logit_softcapping", 50.0, float)
        c["final_logit_softcapping"] = get("final_logit_softcapping", 30.0, float)
    else:
        # llama.cpp's gemma3: every 6th layer global, local layers at rope base 10000
        c["sliding_window_pattern"] = get("attention.sliding_window_pattern", 6)
        c["rope_local_base_freq"] = 10000.0
        if "rope_scaling" in c:
            c["rope_scaling"] = {"rope_type": c["rope_scaling"]["type"],
                                 "factor": c["rope_scaling"]["factor"]}


def _phi3(c: dict, get: Any, meta: Mapping[str, Any], gf: fmt.GgufFile,
          path: Path) -> None:
    head_dim = c.pop("head_dim", None) or c["hidden_size"] // c["num_attention_heads"]
    rot = get("rope.dimension_count", head_dim)
    if not 0 < rot <= head_dim or rot % 2:  # mlx's rope refuses odd dims
        raise FormatError(f"{path}: phi3.rope.dimension_count is {rot}, not an even number "
                          f"in 1..{head_dim} (the head size)", key="phi3.rope.dimension_count")
    if rot != head_dim:
        c["partial_rotary_factor"] = rot / head_dim
    if "phi3.rope.scaling.original_context_length" in meta:
        c["original_max_position_embeddings"] = get("rope.scaling.original_context_length")
    sw = get("attention.sliding_window", 0)
    if sw > 0:
        c["sliding_window"] = sw
    if "rope_factors_long.weight" in gf.tensors:
        short = "rope_factors_short.weight"
        c["rope_scaling"] = {
            "type": "longrope",
            "long_factor": [_f32(v) for v in _read_floats(gf, "rope_factors_long.weight")],
            "short_factor": [_f32(v) for v in _read_floats(
                gf, short if short in gf.tensors else "rope_factors_long.weight")],
        }
    c.pop("rope_scaling", None) if c.get("rope_scaling", {}).get("type") == "none" else None


def _deepseek2(c: dict, get: Any, meta: Mapping[str, Any], gf: fmt.GgufFile,
               path: Path) -> None:
    rope = get("rope.dimension_count")
    key_len = get("attention.key_length_mla", 0) or get("attention.key_length")
    if rope % 2 or rope > key_len:  # mlx's rope refuses odd dims; the rest is the nope part
        raise FormatError(f"{path}: deepseek2.rope.dimension_count is {rope}, not an even "
                          f"number up to the key length {key_len}",
                          key="deepseek2.rope.dimension_count")
    c["kv_lora_rank"] = get("attention.kv_lora_rank")
    q_lora = get("attention.q_lora_rank", 0)
    c["q_lora_rank"] = q_lora or None
    c["qk_rope_head_dim"] = rope
    c["qk_nope_head_dim"] = key_len - rope
    c["v_head_dim"] = get("attention.value_length_mla", 0) or get("attention.value_length")
    c["n_routed_experts"] = get("expert_count")
    c["n_shared_experts"] = get("expert_shared_count", 0)
    c["num_experts_per_tok"] = get("expert_used_count")
    c["moe_intermediate_size"] = get("expert_feed_forward_length")
    c["first_k_dense_replace"] = get("leading_dense_block_count", 0)
    c["moe_layer_freq"] = 1
    c["routed_scaling_factor"] = get("expert_weights_scale", 1.0, float)
    c["norm_topk_prob"] = bool(meta.get("deepseek2.expert_weights_norm", False))
    c["n_group"] = get("expert_group_count", 1)
    c["topk_group"] = get("expert_group_used_count", 1)
    if c["model_type"] == "deepseek_v3":
        c["topk_method"], c["scoring_func"] = "noaux_tc", "sigmoid"
    else:  # DeepSeek-V2 limits the experts to the best groups when it has groups
        grouped = c["n_group"] > 1 and c["topk_group"] < c["n_group"]
        c["topk_method"] = "group_limited_greedy" if grouped else "greedy"
        c["scoring_func"] = "softmax"
    c["num_key_value_heads"] = c["num_attention_heads"]  # MLA decompressed: one per head
    rs = c.get("rope_scaling")
    if rs is not None and rs["type"] == "yarn":
        # llama.cpp keeps 0.1 * mscale_all_dim and assumes mscale equal to it (DeepSeek's
        # configs have them equal); beta_fast/beta_slow are its defaults, DeepSeek's values
        mult = get("rope.scaling.yarn_log_multiplier", 0.0, float)
        m = float(f"{mult / 0.1:.6g}") if mult else 0.0  # (the decimal it was written from)
        rs.update({"beta_fast": 32, "beta_slow": 1, "mscale": m or 1.0, "mscale_all_dim": m})


def _gpt_oss(c: dict, get: Any, meta: Mapping[str, Any], gf: fmt.GgufFile,
             path: Path) -> None:
    c["num_local_experts"] = get("expert_count")
    c["num_experts_per_tok"] = get("expert_used_count")
    c["intermediate_size"] = get("expert_feed_forward_length")
    c["sliding_window"] = get("attention.sliding_window")
    # llama.cpp's gpt-oss: sliding-window attention in every other layer, from the first
    c["layer_types"] = ["sliding_attention" if i % 2 == 0 else "full_attention"
                        for i in range(c["num_hidden_layers"])]
    rs = c.get("rope_scaling")
    if rs is not None:
        rs["rope_type"] = rs.pop("type")


_ARCH_CONFIG = {"qwen3moe": _qwen3moe, "gemma2": _gemma, "gemma3": _gemma, "phi3": _phi3,
                "deepseek2": _deepseek2, "gpt-oss": _gpt_oss}


def _deepseek_mla(tensors: Mapping[str, fmt.GgufTensor], family: Any
                  ) -> tuple[set[str], set[str]]:
    """Which of a deepseek2 file's MLA tensors to read: llama.cpp writes ``kv_b_proj``
    split into ``attn_k_b`` and ``attn_v_b`` (its DeepseekV2Model.modify_tensors), older
    converters wrote it whole (``attn_kv_b``), some both. deepseek_v3's mlx-lm model holds
    the split form (``embed_q``/``unembed_out``), deepseek_v2's the whole one: the form the
    model holds is read when present, the other one skipped. Returns (skipped, read dense):
    deepseek_v2 rebuilds ``kv_b_proj`` from the split halves, dense (the key half is
    transposed: its blocks run along the other axis)."""
    skip: set[str] = set()
    dense: set[str] = set()
    layers = {n.split(".")[1] for n in tensors if n.startswith("blk.")}
    for i in layers:
        split = [f"blk.{i}.attn_k_b.weight", f"blk.{i}.attn_v_b.weight"]
        whole = f"blk.{i}.attn_kv_b.weight"
        has_split = all(n in tensors for n in split)
        if family.module == "deepseek_v2":
            if whole in tensors:
                skip.update(split)
            elif has_split:
                dense.update(split)
        elif has_split:
            skip.add(whole)
    return skip, dense


def _deepseek_attention(w: dict[str, graph.Tensor], c: Mapping[str, Any], family: Any
                        ) -> None:
    """deepseek_v2's mlx-lm model keeps ``kv_b_proj``: rebuilt from llama.cpp's ``k_b``
    (``[heads, kv_lora_rank, qk_nope]``, the key rows of each head transposed) and ``v_b``
    (``[heads, v_head_dim, kv_lora_rank]``): per head, the key rows then the value rows,
    as Hugging Face's ``kv_b_proj`` holds them (the inverse of DeepseekV2Model's split)."""
    if family.module != "deepseek_v2":
        return
    heads = c["num_attention_heads"]
    for i in range(c["num_hidden_layers"]):
        p = f"model.layers.{i}.self_attn"
        kb, vb = f"{p}.embed_q.weight", f"{p}.unembed_out.weight"
        if kb not in w or vb not in w:
            continue
        k = w.pop(kb).reshape(heads, c["kv_lora_rank"], c["qk_nope_head_dim"]).swapaxes(1, 2)
        v = w.pop(vb).reshape(heads, c["v_head_dim"], c["kv_lora_rank"])
        dt = _dtypes_promoted(k.dtype, v.dtype)
        w[f"{p}.kv_b_proj.weight"] = graph.concatenate([k.astype(dt), v.astype(dt)],
                                                       axis=1).reshape(
            heads * (c["qk_nope_head_dim"] + c["v_head_dim"]), c["kv_lora_rank"])


def _dtypes_promoted(a: np.dtype, b: np.dtype) -> np.dtype:
    """The common dtype of the two halves (float32 when they differ)."""
    return a if a == b else np.dtype(np.float32)


#: Hugging Face parameters llama.cpp renames to fit its ``<tensor>.<weight|bias>`` names
#: (DeepseekV2Model.modify_tensors, GptOssModel.filter_tensors): its name -> theirs
_LLAMA_CPP_RENAMES = {".e_score_correction.bias": ".e_score_correction_bias",
                      ".self_attn.sinks.weight": ".self_attn.sinks"}


def _hf_name(name: str) -> str:
    """The Hugging Face name of a parameter llama.cpp renamed (:data:`_LLAMA_CPP_RENAMES`)."""
    for theirs, hf in _LLAMA_CPP_RENAMES.items():
        if name.endswith(theirs):
            return name[: -len(theirs)] + hf
    return name


# ---- the tokenizer ---------------------------------------------------------------------------

def _transformers_tokenizer() -> tuple[Any, Any, Any]:
    """transformers' ``PreTrainedTokenizerFast``, ``GGUF_TOKENIZER_MAPPING`` and
    ``convert_gguf_tokenizer`` (needs transformers 5, installed with mlx-lm; not torch)."""
    try:
        from transformers import PreTrainedTokenizerFast
        from transformers.integrations.gguf.gguf_tokenizer_mapping import (
            GGUF_TOKENIZER_MAPPING,
            convert_gguf_tokenizer,
        )
    except ImportError:
        raise MissingDependencyError(
            "writing the tokenizer of a GGUF model needs transformers 5 (its GGUF tokenizer "
            "conversion; it comes with mlx-lm): pip install 'transformers>=5'") from None
    return PreTrainedTokenizerFast, GGUF_TOKENIZER_MAPPING, convert_gguf_tokenizer


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


#: the type llama.cpp writes for each ``tokenizer.*`` key transformers reads (gguf-py's
#: GGUFWriter.add_tokenizer_model, add_token_list, ..., add_chat_template): a key of
#: another type is refused before transformers sees it
_TOKENIZER_TYPES: dict[str, tuple[str, Callable[[Any], bool]]] = {
    "tokenizer.ggml.model": ("a string", lambda v: isinstance(v, str)),
    "tokenizer.ggml.pre": ("a string", lambda v: isinstance(v, str)),
    "tokenizer.ggml.tokens": ("an array of strings", lambda v: isinstance(v, list) and all(
        isinstance(x, str) for x in v)),
    "tokenizer.ggml.scores": ("an array of numbers", lambda v: isinstance(v, list) and all(
        isinstance(x, (int, float)) and not isinstance(x, bool) for x in v)),
    "tokenizer.ggml.token_type": ("an array of integers", lambda v: isinstance(v, list) and all(
        _is_int(x) for x in v)),
    "tokenizer.ggml.merges": ("an array of strings", lambda v: isinstance(v, list) and all(
        isinstance(x, str) for x in v)),
    "tokenizer.ggml.precompiled_charsmap": ("an array of bytes", lambda v: isinstance(
        v, list) and all(_is_int(x) and 0 <= x < 256 for x in v)),
    "tokenizer.ggml.add_space_prefix": ("a bool", lambda v: isinstance(v, bool)),
    "tokenizer.ggml.add_bos_token": ("a bool", lambda v: isinstance(v, bool)),
    "tokenizer.ggml.add_eos_token": ("a bool", lambda v: isinstance(v, bool)),
    "tokenizer.chat_template": ("a string", lambda v: isinstance(v, str)),
}


def check_tokenizer_metadata(meta: Mapping[str, Any], path: Path) -> None:
    """Refuses ``tokenizer.*`` metadata transformers would misread: a key of a type llama.cpp
    never writes, per-token arrays (scores, token types) of another length than the token
    list, special token ids outside it."""
    if "tokenizer.ggml.tokens" not in meta:
        raise FormatError(f"{path}: no tokenizer.ggml.tokens: no tokenizer to write",
                          key="tokenizer.ggml.tokens")
    for key, (want, ok) in _TOKENIZER_TYPES.items():
        if key in meta and not ok(meta[key]):
            raise ParseError(f"{path}: metadata {key} is not {want}", key=key)
    n = len(meta["tokenizer.ggml.tokens"])
    for key in ("tokenizer.ggml.scores", "tokenizer.ggml.token_type"):
        if key in meta and len(meta[key]) != n:
            raise FormatError(f"{path}: metadata {key} has {len(meta[key])} entries for "
                              f"{n} tokens", key=key)
    for key in ("bos_token_id", "eos_token_id", "unknown_token_id", "padding_token_id"):
        v = meta.get(f"tokenizer.ggml.{key}")
        if v is not None and not _token_id(v, n):
            raise FormatError(f"{path}: metadata tokenizer.ggml.{key} is {v!r:.40}, not the "
                              f"index of one of the {n} tokens", key=f"tokenizer.ggml.{key}")


def build_tokenizer(meta: Mapping[str, Any], tf: Optional[tuple[Any, Any, Any]] = None) -> Any:
    """The tokenizer (transformers' ``PreTrainedTokenizerFast``, with the chat template) of
    the vocabulary in ``tokenizer.ggml.*``, built by transformers' own GGUF tokenizer
    conversion (``convert_gguf_tokenizer``); ``tf``: :func:`_transformers_tokenizer`'s
    answer, imported already (else imported here). ``meta`` has passed
    :func:`check_tokenizer_metadata`."""
    fast, mapping, convert = tf or _transformers_tokenizer()
    grouped = {group: {name: meta[f"tokenizer.{key}"] for key, name in renames.items()
                       if f"tokenizer.{key}" in meta}
               for group, renames in mapping.items()}
    tok, cfg = grouped["tokenizer"], grouped["tokenizer_config"]
    if tok.get("tokenizer_type") == "llama":
        cfg.setdefault("add_bos_token", True)  # llama.cpp's default for sentencepiece
    tokens = tok["tokens"]
    for name, key in (("bos_token", "bos_token_id"), ("eos_token", "eos_token_id"),
                      ("unk_token", "unknown_token_id"), ("pad_token", "padding_token_id")):
        i = meta.get(f"tokenizer.ggml.{key}")
        if i is not None:
            cfg[name] = tokens[i]
    # transformers' conversion and the tokenizers library parse what the file holds (merges,
    # the charsmap, the chat template): any failure of theirs is this file's fault
    try:
        backend, extra = convert(meta["general.architecture"], tok)
        return fast(tokenizer_object=backend, **cfg, **extra)
    except Exception as e:  # noqa: BLE001 - third-party parsers of untrusted values
        raise UnsupportedFormatError(f"transformers cannot build a tokenizer from this GGUF's "
                                     f"tokenizer.ggml.* ({type(e).__name__}: {e!s:.200})",
                                     key="tokenizer.ggml.model") from None


class _Background:
    """``fn(*args)`` on a thread of its own: :meth:`result` waits for its value (or raises
    its error); :meth:`raise_failure` raises the error at once if it has failed already."""

    def __init__(self, fn: Any, *args: Any):
        import threading

        self._value: Any = None
        self._error: Optional[BaseException] = None

        def run() -> None:
            try:
                self._value = fn(*args)
            except BaseException as e:  # handed to the caller
                self._error = e

        self._thread = threading.Thread(target=run, name="mlxq-gguf-tokenizer", daemon=True)
        self._thread.start()

    def raise_failure(self) -> None:
        if self._error is not None:
            raise self._error

    def result(self) -> Any:
        self._thread.join()
        self.raise_failure()
        return self._value
