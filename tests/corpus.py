"""A corpus of malformed checkpoint folders, one builder per case, grouped by the rule each
breaks (see tests/test_reliability.py, which runs every case through ``mlxq convert``,
``mlxq inspect`` and ``mlxq compare``).

Every case starts from a small well-formed checkpoint (a 2-layer Llama in Hugging Face
layout, sharded with an index; the same in one file; the same quantized to MLX's 4-bit
affine layout; a small Mixtral) and breaks one thing. A case says what the tools must do:

- ``match``: a regular expression the one-line error must match — it names the culprit
  (the file, tensor, layer or config key);
- ``error``: the :mod:`mlxq.errors` class the Python API raises;
- ``ok=True`` instead for inputs that are unusual but valid: the conversion must succeed
  and ``mlx_lm.load`` must accept the result.

The quantized base is made with mlxq's own converter: these cases test how bad input is
refused, never a numeric result (the numbers are checked against MLX elsewhere).
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np

import mlxq
from mlxq import convert as _convert
from mlxq import errors
from mlxq.synthetic import make_checkpoint

SIZES = dict(layers=2, hidden=64, intermediate=128, vocab=64)
INDEX = "model.safetensors.index.json"
# the sharded base: small shards, so the index maps tensors to several files
SHARD = 20_000


@dataclasses.dataclass(frozen=True)
class Case:
    name: str                      # "<rule>/<what>"
    build: Callable[[Path, Path], Path]  # (bases folder, work folder) -> SRC
    match: str = ""                # regex for the error line (names the culprit)
    error: Optional[type] = None   # the API's exception class
    ok: bool = False               # valid input: converts and mlx_lm.load accepts it
    flags: tuple[tuple[str, ...], ...] = ((), ("-q",), ("-d",))

    @property
    def rule(self) -> str:
        return self.name.split("/")[0]


# ---- bases ----------------------------------------------------------------------------------

def make_bases(root: Path) -> Path:
    """The well-formed checkpoints every case starts from (built once per session)."""
    root.mkdir(parents=True, exist_ok=True)
    make_checkpoint(root / "sharded", shard_size=SHARD, **SIZES)
    make_checkpoint(root / "single", **SIZES)
    make_checkpoint(root / "moe", family="mixtral", experts=3, **SIZES)
    _convert(root / "single", root / "mlx4", quantize=True, quiet=True)
    _convert(root / "single", root / "mlx4g128", quantize=True, q_group_size=128,
                 quiet=True)
    return root


def copy(bases: Path, name: str, work: Path) -> Path:
    dst = work / "src"
    shutil.copytree(bases / name, dst, symlinks=True)
    return dst


def read_json(p: Path) -> Any:
    return json.loads(p.read_text())


def write_json(p: Path, obj: Any) -> None:
    p.write_text(json.dumps(obj, indent=2))


def edit_config(src: Path, fn: Callable[[dict], Any]) -> Path:
    cfg = read_json(src / "config.json")
    fn(cfg)
    write_json(src / "config.json", cfg)
    return src


def edit_block(src: Path, fn: Callable[[dict], Any]) -> Path:
    """Edits the quantization block (and keeps quantization_config equal to it)."""
    def f(cfg: dict) -> None:
        fn(cfg["quantization"])
        cfg["quantization_config"] = cfg["quantization"]
    return edit_config(src, f)


def edit_tensors(src: Path, fn: Callable[[dict], Any], file: str = "model.safetensors") -> Path:
    """Edits the tensors of one shard, keeping the folder's index (if any) in step, so the
    case breaks only what it means to break."""
    tensors = {k: np.array(v) for k, v in mlxq.load_safetensors(src / file).items()}
    before = set(tensors)
    fn(tensors)
    os.remove(src / file)
    mlxq.save_safetensors(src / file, tensors, metadata={"format": "mlx"})
    if (src / INDEX).exists():
        idx = index_of(src)
        for k in before - set(tensors):
            del idx["weight_map"][k]
        for k in set(tensors) - before:
            idx["weight_map"][k] = file
        write_json(src / INDEX, idx)
    return src


def index_of(src: Path) -> dict:
    return read_json(src / INDEX)


def shard_files(src: Path) -> list[str]:
    return sorted(f for f in os.listdir(src) if f.startswith("model-"))


# ---- index ----------------------------------------------------------------------------------

def _index_missing_shard(b: Path, w: Path) -> Path:
    src = copy(b, "sharded", w)
    os.remove(src / shard_files(src)[1])
    return src


def _index_tensor_elsewhere(b: Path, w: Path) -> Path:
    src = copy(b, "sharded", w)
    idx = index_of(src)
    files = shard_files(src)
    name = next(k for k, f in sorted(idx["weight_map"].items()) if f == files[0])
    idx["weight_map"][name] = files[1]
    write_json(src / INDEX, idx)
    return src


def _index_unlisted_tensor(b: Path, w: Path) -> Path:
    src = copy(b, "sharded", w)
    idx = index_of(src)
    del idx["weight_map"]["model.norm.weight"]
    write_json(src / INDEX, idx)
    return src


def _index_unlisted_shard(b: Path, w: Path) -> Path:
    src = copy(b, "sharded", w)
    mlxq.save_safetensors(src / "model-extra.safetensors",
                          {"model.extra.weight": np.zeros((2, 2), np.float32)})
    return src


def _index_lists_absent_tensor(b: Path, w: Path) -> Path:
    src = copy(b, "sharded", w)
    idx = index_of(src)
    idx["weight_map"]["model.layers.0.mlp.ghost.weight"] = shard_files(src)[0]
    write_json(src / INDEX, idx)
    return src


def _index_not_json(b: Path, w: Path) -> Path:
    src = copy(b, "sharded", w)
    (src / INDEX).write_text('{"weight_map": {')
    return src


def _index_no_weight_map(b: Path, w: Path) -> Path:
    src = copy(b, "sharded", w)
    write_json(src / INDEX, {"metadata": {}})
    return src


def _index_weight_map_not_object(b: Path, w: Path) -> Path:
    src = copy(b, "sharded", w)
    write_json(src / INDEX, {"weight_map": ["model-00001-of-00003.safetensors"]})
    return src


def _index_file_not_a_string(b: Path, w: Path) -> Path:
    src = copy(b, "sharded", w)
    idx = index_of(src)
    idx["weight_map"]["model.norm.weight"] = 3
    write_json(src / INDEX, idx)
    return src


def _index_outside_folder(b: Path, w: Path) -> Path:
    src = copy(b, "sharded", w)
    idx = index_of(src)
    idx["weight_map"]["model.norm.weight"] = "../elsewhere.safetensors"
    write_json(src / INDEX, idx)
    return src


def _index_deep(b: Path, w: Path) -> Path:
    src = copy(b, "sharded", w)
    (src / INDEX).write_text('{"weight_map": ' + "[" * 100_000 + "]" * 100_000 + "}")
    return src


def _index_shard_is_directory(b: Path, w: Path) -> Path:
    src = copy(b, "sharded", w)
    f = shard_files(src)[1]
    os.remove(src / f)
    os.mkdir(src / f)
    return src


def _duplicate_without_index(b: Path, w: Path) -> Path:
    src = copy(b, "single", w)
    mlxq.save_safetensors(src / "model-2.safetensors",
                          {"model.norm.weight": np.ones(64, mlxq.bfloat16)})
    return src


def _index_listed_shard_corrupt(b: Path, w: Path) -> Path:
    src = copy(b, "sharded", w)
    f = src / shard_files(src)[2]
    data = f.read_bytes()
    f.write_bytes(data[: len(data) // 2])
    return src


# ---- quantized layers -----------------------------------------------------------------------

Q = "model.layers.0.mlp.up_proj"  # a layer of the quantized base, [128, 64] dense


def _q_group_from_shapes(b: Path, w: Path) -> Path:
    # every layer stored at 4-bit g128 while the block says 4-bit g64: mlx_lm.load infers
    # each layer's group size from its shapes and reads them all correctly
    src = copy(b, "mlx4g128", w)
    return edit_block(src, lambda q: q.update(group_size=64))


def _q_packed_without_scales(b: Path, w: Path) -> Path:
    return edit_tensors(copy(b, "mlx4", w), lambda t: (t.pop(f"{Q}.scales"),
                                                      t.pop(f"{Q}.biases")))


def _q_affine_without_biases(b: Path, w: Path) -> Path:
    return edit_tensors(copy(b, "mlx4", w), lambda t: t.pop(f"{Q}.biases"))


def _q_wrong_packed_width(b: Path, w: Path) -> Path:
    def f(t: dict) -> None:
        t[f"{Q}.weight"] = t[f"{Q}.weight"][:, :7].copy()  # 7 words: not 4-bit of g64
    return edit_tensors(copy(b, "mlx4", w), f)


def _q_scales_rows_differ(b: Path, w: Path) -> Path:
    def f(t: dict) -> None:
        t[f"{Q}.scales"] = t[f"{Q}.scales"][:100].copy()
        t[f"{Q}.biases"] = t[f"{Q}.biases"][:100].copy()
    return edit_tensors(copy(b, "mlx4", w), f)


def _q_biases_shape_differs(b: Path, w: Path) -> Path:
    def f(t: dict) -> None:
        t[f"{Q}.biases"] = np.concatenate([t[f"{Q}.biases"]] * 2, axis=1)
    return edit_tensors(copy(b, "mlx4", w), f)


def _q_int32_weight(b: Path, w: Path) -> Path:
    return edit_tensors(copy(b, "mlx4", w),
                        lambda t: t.update({f"{Q}.weight": t[f"{Q}.weight"].view(np.int32)}))


def _q_float8_weight(b: Path, w: Path) -> Path:
    def f(t: dict) -> None:
        t[f"{Q}.weight"] = np.zeros((128, 64), mlxq._dtypes.float8_e4m3fn)
    return edit_tensors(copy(b, "mlx4", w), f)


def _q_scales_without_weight(b: Path, w: Path) -> Path:
    def f(t: dict) -> None:
        t["model.layers.0.mlp.nonexistent.scales"] = t[f"{Q}.scales"].copy()
    return edit_tensors(copy(b, "mlx4", w), f)


def _q_entry_contradicts(b: Path, w: Path) -> Path:
    return edit_block(copy(b, "mlx4", w),
                      lambda q: q.update({Q: {"group_size": 64, "bits": 8}}))


def _q_entry_false_but_quantized(b: Path, w: Path) -> Path:
    return edit_block(copy(b, "mlx4", w), lambda q: q.update({Q: False}))


def _q_entry_for_dense_layer(b: Path, w: Path) -> Path:
    src = copy(b, "single", w)

    def f(cfg: dict) -> None:
        cfg["quantization"] = {"group_size": 64, "bits": 4,
                               Q: {"group_size": 64, "bits": 4}}
    return edit_config(src, f)


def _q_uint8_scales_affine(b: Path, w: Path) -> Path:
    def f(t: dict) -> None:
        t[f"{Q}.scales"] = np.zeros(t[f"{Q}.scales"].shape, np.uint8)
        del t[f"{Q}.biases"]
    return edit_tensors(copy(b, "mlx4", w), f)


def _q_mxfp4_with_float_scales(b: Path, w: Path) -> Path:
    src = copy(b, "mlx4", w)
    return edit_block(src, lambda q: q.update(mode="mxfp4", group_size=32, bits=4))


def _q_without_block(b: Path, w: Path) -> Path:
    def f(cfg: dict) -> None:
        del cfg["quantization"], cfg["quantization_config"]
    return edit_config(copy(b, "mlx4", w), f)


def _q_ambiguous_bits(b: Path, w: Path) -> Path:
    # the layer is 8-bit g64 but nothing says so: the block's 4 bits read it as 4-bit g128
    # over an input twice as wide, which the checkpoint's other tensors contradict
    src = copy(b, "mlx4", w)
    dense = mlxq.load_checkpoint(b / "single")[f"{Q}.weight"]

    def f(t: dict) -> None:
        wq, s, bb = mlxq.quantize(np.array(dense), group_size=64, bits=8)
        t.update({f"{Q}.weight": wq, f"{Q}.scales": s, f"{Q}.biases": bb})
    return edit_tensors(src, f)


def _moe_missing_expert(b: Path, w: Path) -> Path:
    src = copy(b, "moe", w)
    return edit_tensors(src, lambda t: t.pop("model.layers.1.block_sparse_moe.experts.2.w2.weight"))


def _moe_more_experts_than_config(b: Path, w: Path) -> Path:
    return edit_config(copy(b, "moe", w), lambda c: c.update(num_local_experts=2))


def _unknown_parameter(b: Path, w: Path) -> Path:
    return edit_tensors(copy(b, "single", w),
                        lambda t: t.update({"model.layers.0.mlp.extra_proj.weight":
                                            np.zeros((64, 64), mlxq.bfloat16)}))


# ---- config values --------------------------------------------------------------------------

def _block(**kw: Any) -> Callable[[Path, Path], Path]:
    def build(b: Path, w: Path) -> Path:
        return edit_block(copy(b, "mlx4", w), lambda q: q.update(kw))
    return build


def _block_missing_bits(b: Path, w: Path) -> Path:
    return edit_block(copy(b, "mlx4", w), lambda q: q.pop("bits"))


def _block_not_object(b: Path, w: Path) -> Path:
    return edit_config(copy(b, "mlx4", w), lambda c: c.update(quantization=[4, 64],
                                                              quantization_config=[4, 64]))


def _entry_not_object(b: Path, w: Path) -> Path:
    return edit_block(copy(b, "mlx4", w), lambda q: q.update({Q: "8bit"}))


def _config_deep(b: Path, w: Path) -> Path:
    src = copy(b, "single", w)
    cfg = (src / "config.json").read_text().rstrip()[:-1]
    (src / "config.json").write_text(cfg + ', "deep": ' + "[" * 100_000 + "]" * 100_000 + "}")
    return src


def _config_deep_moderate(b: Path, w: Path) -> Path:
    # shallower than the parser's own limit but deeper than any real config: the decoder
    # of transformers' tagged floats must not overflow the stack either
    src = copy(b, "single", w)
    cfg = (src / "config.json").read_text().rstrip()[:-1]
    (src / "config.json").write_text(cfg + ', "deep": ' + '{"a": ' * 5000 + "1" + "}" * 5000
                                     + "}")
    return src


def _config_no_model_type(b: Path, w: Path) -> Path:
    return edit_config(copy(b, "single", w), lambda c: c.pop("model_type"))


def _config_model_type_not_string(b: Path, w: Path) -> Path:
    return edit_config(copy(b, "single", w), lambda c: c.update(model_type=["llama"]))


def _config_not_object(b: Path, w: Path) -> Path:
    src = copy(b, "single", w)
    (src / "config.json").write_text("[1, 2]")
    return src


def _config_not_utf8(b: Path, w: Path) -> Path:
    src = copy(b, "single", w)
    (src / "config.json").write_bytes(b'{"model_type": "\xff\xfe"}')
    return src


def _config_is_directory(b: Path, w: Path) -> Path:
    src = copy(b, "single", w)
    os.remove(src / "config.json")
    os.mkdir(src / "config.json")
    return src


def _config_missing(b: Path, w: Path) -> Path:
    src = copy(b, "single", w)
    os.remove(src / "config.json")
    return src


def _config_expert_count_not_int(b: Path, w: Path) -> Path:
    return edit_config(copy(b, "moe", w), lambda c: c.update(num_local_experts="three"))


def _config_unknown_quant_method(b: Path, w: Path) -> Path:
    return edit_config(copy(b, "single", w),
                       lambda c: c.update(quantization_config={"quant_method": "hqq"}))


def _config_quant_method_not_string(b: Path, w: Path) -> Path:
    return edit_config(copy(b, "single", w),
                       lambda c: c.update(quantization_config={"quant_method": ["awq"]}))


def _config_quantization_config_not_object(b: Path, w: Path) -> Path:
    return edit_config(copy(b, "single", w), lambda c: c.update(quantization_config="awq"))


def _config_torch_dtype_odd(b: Path, w: Path) -> Path:
    # mlx-lm applies only float16/bfloat16/float32; anything else leaves dtypes alone
    return edit_config(copy(b, "single", w), lambda c: c.update(torch_dtype="float64"))


def _config_layers_not_int(b: Path, w: Path) -> Path:
    return edit_config(copy(b, "single", w), lambda c: c.update(num_hidden_layers="2"))


def _config_count(base: str, path: tuple[str, ...], value: int = 10**9
                  ) -> Callable[[Path, Path], Path]:
    """A config count (at ``path``, nested configs included) far beyond the tensors."""
    def build(b: Path, w: Path) -> Path:
        def f(cfg: dict) -> None:
            for k in path[:-1]:
                cfg = cfg.setdefault(k, {})
            cfg[path[-1]] = value
        return edit_config(copy(b, base, w), f)
    return build


# ---- safetensors shards ---------------------------------------------------------------------

def _shard_truncated(b: Path, w: Path) -> Path:
    src = copy(b, "single", w)
    f = src / "model.safetensors"
    data = f.read_bytes()
    f.write_bytes(data[:-10])
    return src


def _shard_garbage(b: Path, w: Path) -> Path:
    src = copy(b, "single", w)
    (src / "model.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00not json at all!")
    return src


def _shard_empty(b: Path, w: Path) -> Path:
    src = copy(b, "single", w)
    (src / "model.safetensors").write_bytes(b"")
    return src


def _shard_broken_symlink(b: Path, w: Path) -> Path:
    src = copy(b, "single", w)
    os.symlink("nowhere.safetensors", src / "model-2.safetensors")  # inside SRC, dangling
    return src


def _no_weights(b: Path, w: Path) -> Path:
    src = copy(b, "single", w)
    os.remove(src / "model.safetensors")
    return src


def _pickles_only(b: Path, w: Path) -> Path:
    src = copy(b, "single", w)
    os.remove(src / "model.safetensors")
    (src / "pytorch_model.bin").write_bytes(b"\x80\x04pickle")
    return src


def _fifo_shard(b: Path, w: Path) -> Path:
    src = copy(b, "single", w)
    os.mkfifo(src / "model-2.safetensors")
    return src


def _fifo_config(b: Path, w: Path) -> Path:
    src = copy(b, "single", w)
    os.remove(src / "config.json")
    os.mkfifo(src / "config.json")
    return src


def _fifo_index(b: Path, w: Path) -> Path:
    src = copy(b, "sharded", w)
    os.remove(src / INDEX)
    os.mkfifo(src / INDEX)
    return src


# ---- symlinks: followed inside SRC only -----------------------------------------------------

#: what the links of the link/ cases point at, outside SRC: no byte of it may reach the output
#: or a message
SECRET = b"root:x:0:0:secret-token-hf_SECRETSECRETSECRETSECRETSECRET:/root:/bin/sh\n"


def _outside_file(w: Path, name: str = "outside.txt") -> Path:
    f = w / name
    f.write_bytes(SECRET)
    return f


def _link_shard_to_text(b: Path, w: Path) -> Path:
    src = copy(b, "single", w)
    os.remove(src / "model.safetensors")
    os.symlink(_outside_file(w), src / "model.safetensors")
    return src


def _link_shard_to_other_model(b: Path, w: Path) -> Path:
    # a shard borrowed from another model: valid weights, but not this folder's
    src = copy(b, "single", w)
    other = w / "other-model"
    shutil.copytree(b / "single", other)
    os.remove(src / "model.safetensors")
    os.symlink(other / "model.safetensors", src / "model.safetensors")
    return src


def _link_indexed_shard_outside(b: Path, w: Path) -> Path:
    src = copy(b, "sharded", w)
    f = shard_files(src)[1]
    shutil.move(src / f, w / f)
    os.symlink(w / f, src / f)
    return src


def _link_config_outside(b: Path, w: Path) -> Path:
    src = copy(b, "single", w)
    shutil.move(src / "config.json", w / "config.json")
    os.symlink(w / "config.json", src / "config.json")
    return src


def _link_config_to_text(b: Path, w: Path) -> Path:
    src = copy(b, "single", w)
    os.remove(src / "config.json")
    os.symlink(_outside_file(w), src / "config.json")
    return src


def _link_generation_config_outside(b: Path, w: Path) -> Path:
    src = copy(b, "single", w)
    write_json(w / "generation_config.json", {"eos_token_id": 12345})
    os.remove(src / "generation_config.json")
    os.symlink(w / "generation_config.json", src / "generation_config.json")
    return src


def _link_index_outside(b: Path, w: Path) -> Path:
    src = copy(b, "sharded", w)
    shutil.move(src / INDEX, w / INDEX)
    os.symlink(w / INDEX, src / INDEX)
    return src


def _link_index_folder_outside(b: Path, w: Path) -> Path:
    # the index names a folder, and the folder is a link out of SRC
    src = copy(b, "sharded", w)
    f = shard_files(src)[0]
    (w / "elsewhere").mkdir()
    shutil.move(src / f, w / "elsewhere" / f)
    os.symlink(w / "elsewhere", src / "sub")
    idx = index_of(src)
    idx["weight_map"] = {k: (f"sub/{v}" if v == f else v) for k, v in idx["weight_map"].items()}
    write_json(src / INDEX, idx)
    return src


def _link_dir_of_shard_outside(b: Path, w: Path) -> Path:
    # a link to a path inside SRC whose folder is itself a link out of SRC
    src = copy(b, "single", w)
    (w / "elsewhere").mkdir()
    shutil.move(src / "model.safetensors", w / "elsewhere" / "model.safetensors")
    os.symlink(w / "elsewhere", src / "weights")
    os.symlink("weights/model.safetensors", src / "model.safetensors")
    return src


def _link_side_file_outside(b: Path, w: Path) -> Path:
    src = copy(b, "single", w)
    os.remove(src / "tokenizer.json")
    target = w / "outside.json"
    target.write_bytes(b'{"added_tokens": "' + SECRET.strip() + b'"}')
    os.symlink(target, src / "tokenizer.json")
    return src


def _link_broken_outside(b: Path, w: Path) -> Path:
    src = copy(b, "single", w)
    os.symlink(w / "nowhere.safetensors", src / "model-2.safetensors")
    return src


def _link_inside_source(b: Path, w: Path) -> Path:
    # links that stay inside SRC, through a folder of it, are followed
    src = copy(b, "single", w)
    (src / "store").mkdir()
    shutil.move(src / "model.safetensors", src / "store" / "weights.bin.safetensors")
    os.symlink("store/weights.bin.safetensors", src / "model.safetensors")
    shutil.move(src / "tokenizer.json", src / "store" / "tok.json")
    os.symlink(src / "store" / "tok.json", src / "tokenizer.json")
    return src


# ---- side files -----------------------------------------------------------------------------

def _side_file_is_fifo(b: Path, w: Path) -> Path:
    src = copy(b, "single", w)
    os.mkfifo(src / "chat_template.jinja")
    return src


# ---- text where a safetensors file should be --------------------------------------------------

def _shard_is_text(b: Path, w: Path) -> Path:
    src = copy(b, "single", w)
    (src / "model.safetensors").write_bytes(SECRET)
    return src


def _shard_is_short_text(b: Path, w: Path) -> Path:
    # the first 8 bytes, read as a length, are small enough to look like one
    src = copy(b, "single", w)
    (src / "model.safetensors").write_bytes(b"\x30\x00\x00\x00\x00\x00\x00\x00" + SECRET)
    return src


# ---------------------------------------------------------------------------------------------

F = errors.FormatError
P = errors.ParseError
IA = errors.InvalidArgumentError
OS = errors.OutsideSourceError

CASES: list[Case] = [
    # the index is the source of truth
    Case("index/missing-shard", _index_missing_shard, r"model-00002-of-\d+\.safetensors.*missing|missing.*model-00002", F),
    Case("index/tensor-not-where-index-says", _index_tensor_elsewhere, r"model-0000\d-of-\d+\.safetensors.*'[\w.]+'", F),
    Case("index/tensor-index-does-not-know", _index_unlisted_tensor, r"model\.norm\.weight", F),
    Case("index/shard-index-does-not-know", _index_unlisted_shard, r"model-extra\.safetensors", F),
    Case("index/lists-a-tensor-no-shard-holds", _index_lists_absent_tensor, r"model\.layers\.0\.mlp\.ghost\.weight", F),
    Case("index/not-json", _index_not_json, r"model\.safetensors\.index\.json.*JSON", errors.SafetensorsError),
    Case("index/no-weight-map", _index_no_weight_map, r"model\.safetensors\.index\.json.*weight_map", F),
    Case("index/weight-map-not-an-object", _index_weight_map_not_object, r"model\.safetensors\.index\.json.*weight_map", F),
    Case("index/file-name-not-a-string", _index_file_not_a_string, r"model\.safetensors\.index\.json.*model\.norm\.weight", F),
    Case("index/file-outside-the-folder", _index_outside_folder, r"\.\./elsewhere\.safetensors", F),
    Case("index/absurdly-nested", _index_deep, r"model\.safetensors\.index\.json.*nested", errors.SafetensorsError),
    Case("index/shard-is-a-directory", _index_shard_is_directory, r"model-00002-of-\d+\.safetensors.*not a regular file", errors.MlxqIOError),
    Case("index/corrupt-shard", _index_listed_shard_corrupt, r"model-00003-of-\d+\.safetensors", F),
    Case("index/duplicate-tensor-without-index", _duplicate_without_index, r"model\.norm\.weight", errors.KeyCollisionError),
    # already-quantized layers are verified, never guessed
    Case("quantized/group-size-from-shapes", _q_group_from_shapes, ok=True, flags=((), ("-d",), ("-q",))),
    Case("quantized/packed-weight-without-scales", _q_packed_without_scales, rf"{Q}.*scales", F),
    Case("quantized/affine-without-biases", _q_affine_without_biases, rf"{Q}.*biases", F),
    Case("quantized/wrong-packed-width", _q_wrong_packed_width, rf"{Q}", F),
    Case("quantized/scales-rows-differ", _q_scales_rows_differ, rf"{Q}", F),
    Case("quantized/biases-shape-differs", _q_biases_shape_differs, rf"{Q}.*biases", F),
    Case("quantized/int32-weight", _q_int32_weight, rf"{Q}.*int32", F),
    Case("quantized/float8-weight", _q_float8_weight, rf"{Q}.*float8", F),
    Case("quantized/scales-without-weight", _q_scales_without_weight, r"model\.layers\.0\.mlp\.nonexistent", F),
    Case("quantized/entry-contradicts-tensors", _q_entry_contradicts, rf"{Q}.*8", F),
    Case("quantized/entry-false-but-quantized", _q_entry_false_but_quantized, rf"{Q}.*false", F),
    Case("quantized/entry-for-a-dense-layer", _q_entry_for_dense_layer, rf"{Q}.*scales", F),
    Case("quantized/uint8-scales-in-affine-mode", _q_uint8_scales_affine, rf"{Q}", F),
    Case("quantized/mxfp4-mode-with-float-scales", _q_mxfp4_with_float_scales, r"(lm_head|model\.\S+).*mxfp4", F),
    Case("quantized/tensors-without-a-block", _q_without_block, r"quantization", F),
    Case("quantized/more-than-one-reading", _q_ambiguous_bits, rf"{Q}.*input width", F),
    Case("quantized/moe-missing-expert", _moe_missing_expert, r"model\.layers\.1\.block_sparse_moe\.experts\.2\.w2", F),
    Case("quantized/moe-more-experts-than-config", _moe_more_experts_than_config, r"experts\.2|num_local_experts", F),
    Case("quantized/unknown-parameter", _unknown_parameter, r"model\.layers\.0\.mlp\.extra_proj", F),
    # bad config values
    Case("config/group-size-7", _block(bits=3, group_size=7), r"group_size.*7", IA),
    Case("config/bits-a-string", _block(bits="4"), r"bits", P),
    Case("config/group-size-0", _block(group_size=0), r"group_size.*0", IA),
    Case("config/bits-true", _block(bits=True), r"bits", P),
    Case("config/bits-16", _block(bits=16), r"bits.*16", IA),
    Case("config/bits-contradict-tensors", _block(bits=8), r"(lm_head|model\.\S+).*bits contradict", F),
    Case("config/unknown-mode", _block(mode="int4"), r"mode.*int4", errors.UnknownEnumValueError),
    Case("config/block-missing-bits", _block_missing_bits, r"bits", P),
    Case("config/quantization-not-an-object", _block_not_object, r"quantization.*object", P),
    Case("config/entry-not-an-object", _entry_not_object, rf"{Q}", P),
    Case("config/absurdly-nested", _config_deep, r"config\.json.*nested", P),
    Case("config/deeply-nested", _config_deep_moderate, r"config\.json.*nested", P),
    Case("config/no-model-type", _config_no_model_type, r"config\.json.*model_type", errors.MissingKeyError),
    Case("config/model-type-not-a-string", _config_model_type_not_string, r"config\.json.*model_type", P),
    Case("config/not-an-object", _config_not_object, r"config\.json.*object", P),
    Case("config/not-utf8", _config_not_utf8, r"config\.json", P),
    Case("config/is-a-directory", _config_is_directory, r"config\.json", errors.MlxqIOError),
    Case("config/missing", _config_missing, r"config\.json", errors.MissingKeyError),
    Case("config/expert-count-not-an-int", _config_expert_count_not_int, r"num_local_experts", P),
    Case("config/unknown-quant-method", _config_unknown_quant_method, r"quant_method.*hqq", errors.UnknownEnumValueError),
    Case("config/quant-method-not-a-string", _config_quant_method_not_string, r"quant_method", P),
    Case("config/quantization-config-not-an-object", _config_quantization_config_not_object, r"quantization_config", P),
    Case("config/torch-dtype-float64", _config_torch_dtype_odd, ok=True),
    # counts bound nothing until checked against the tensors: a 90 KB checkpoint cannot
    # make a family loop a billion times
    Case("config/layer-count-a-billion", _config_count("single", ("num_hidden_layers",)), r"'num_hidden_layers' is 1000000000, more than", F),
    Case("config/moe-layer-count-a-billion", _config_count("moe", ("num_hidden_layers",)), r"'num_hidden_layers' is 1000000000, more than", F),
    Case("config/expert-count-a-billion", _config_count("moe", ("num_local_experts",)), r"'num_local_experts' is 1000000000, more than", F),
    Case("config/head-count-a-billion", _config_count("single", ("num_key_value_heads",)), r"'num_key_value_heads' is 1000000000", F),
    Case("config/nested-layer-count", _config_count("single", ("text_config", "num_hidden_layers")), r"'text_config\.num_hidden_layers' is 1000000000", F),
    # head counts that the attention projections' rows contradict (mlx_lm.load's
    # load_weights would refuse the shapes: kv heads x head size, head size = hidden / heads)
    Case("config/kv-heads-not-the-projections", _config_count("sharded", ("num_key_value_heads",), 1), r"k_proj\.weight is \[32, 64\], but config\.json makes its output rows 16", F),
    Case("config/heads-not-the-projections", _config_count("single", ("num_attention_heads",), 2), r"k_proj\.weight is \[32, 64\], but config\.json makes its output rows 64", F),
    Case("config/kv-heads-not-the-stored-rows", _config_count("mlx4", ("num_key_value_heads",), 1), r"k_proj\.weight is \[32, 8\], but config\.json makes its output rows 16", F),
    Case("config/layer-count-a-string", _config_layers_not_int, r"num_hidden_layers", P,
         flags=(("-q", "--quant-predicate", "mixed_3_6"),)),
    # shards
    Case("shard/truncated", _shard_truncated, r"model\.safetensors.*truncated", errors.SafetensorsError),
    Case("shard/garbage-header", _shard_garbage, r"model\.safetensors", errors.SafetensorsError),
    Case("shard/empty-file", _shard_empty, r"model\.safetensors", errors.SafetensorsError),
    Case("shard/broken-symlink", _shard_broken_symlink, r"model-2\.safetensors", errors.MlxqIOError),
    Case("shard/text-file", _shard_is_text, r"model\.safetensors.*not a safetensors file", errors.SafetensorsError),
    Case("shard/text-file-small-length", _shard_is_short_text, r"model\.safetensors", errors.SafetensorsError),
    Case("shard/no-weights", _no_weights, r"model\*?\.safetensors", errors.MissingKeyError),
    Case("shard/pickles-only", _pickles_only, r"pytorch_model\.bin", F),
    Case("os/fifo-named-like-a-shard", _fifo_shard, r"model-2\.safetensors.*not a regular file", errors.MlxqIOError),
    Case("os/fifo-config", _fifo_config, r"config\.json.*not a regular file", errors.MlxqIOError),
    Case("os/fifo-index", _fifo_index, r"index\.json.*not a regular file", errors.MlxqIOError),
    # symlinks leaving SRC are refused, whatever file they stand for
    Case("link/shard-to-a-text-file", _link_shard_to_text, r"model\.safetensors is a symlink to \S*outside\.txt, outside", OS),
    Case("link/shard-of-another-model", _link_shard_to_other_model, r"model\.safetensors is a symlink to \S*other-model", OS),
    Case("link/indexed-shard-outside", _link_indexed_shard_outside, r"model-00002-of-\d+\.safetensors is a symlink", OS),
    Case("link/config-outside", _link_config_outside, r"config\.json is a symlink", OS),
    Case("link/config-to-a-text-file", _link_config_to_text, r"config\.json is a symlink", OS),
    Case("link/generation-config-outside", _link_generation_config_outside, r"generation_config\.json is a symlink", OS),
    Case("link/index-outside", _link_index_outside, r"index\.json is a symlink", OS),
    Case("link/folder-named-by-the-index", _link_index_folder_outside, r"sub/model-00001-of-\d+\.safetensors.*subfolder", F),
    Case("link/through-a-folder-link", _link_dir_of_shard_outside, r"model\.safetensors is a symlink to \S*elsewhere/model\.safetensors, outside", OS),
    Case("link/side-file-outside", _link_side_file_outside, r"tokenizer\.json is a symlink to \S*outside\.json, outside", OS),
    Case("link/broken-link-outside", _link_broken_outside, r"model-2\.safetensors is a symlink", OS),
    Case("link/inside-the-source", _link_inside_source, ok=True),
    # side files
    Case("side/fifo-side-file", _side_file_is_fifo, ok=True, flags=((),)),
]

BY_NAME = {c.name: c for c in CASES}
