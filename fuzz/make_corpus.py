"""Regenerates the fuzz seed corpora:

- fuzz/corpus/st_header/: seed inputs for st_header_fuzz (C), also replayed by
  tests/test_io_validation.py. Names say what the parser must do: ok-* parse, bad-* fail.
  Files starting with 'F' are whole file images; the others are bare header JSON.
- fuzz/corpus/py_<target>/: seeds for the Python targets in fuzz/py_targets.py (reader,
  config, index, external, gguf, card, listing), replayed by tests/test_fuzz_targets.py.

    python3 fuzz/make_corpus.py
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

OUT = Path(__file__).resolve().parent / "corpus" / "st_header"


def image(header: str | bytes, data: bytes = b"", length: int | None = None) -> bytes:
    hb = header.encode() if isinstance(header, str) else header
    return b"F" + struct.pack("<Q", len(hb) if length is None else length) + hb + data


def e(dtype, shape, b, end, **extra):
    return {"dtype": dtype, "shape": shape, "data_offsets": [b, end], **extra}


def js(obj) -> str:
    return json.dumps(obj, separators=(",", ":"))


SEEDS: dict[str, bytes | str] = {
    # valid headers
    "ok-empty.json": "{}",
    "ok-padded.json": "{}      ",
    "ok-metadata.json": js({"__metadata__": {"format": "mlx", "k": "v\u00e9"}}),
    "ok-meta-null.json": '{"__metadata__":null}',
    "ok-one.json": js({"w": e("F32", [2, 3], 0, 24)}),
    "ok-mlx-quant.json": js({
        "__metadata__": {"format": "mlx"},
        "model.layers.0.mlp.down_proj.biases": e("BF16", [8, 2], 0, 32),
        "model.layers.0.mlp.down_proj.scales": e("BF16", [8, 2], 32, 64),
        "model.layers.0.mlp.down_proj.weight": e("U32", [8, 16], 64, 576),
    }),
    "ok-all-dtypes.json": js({
        "a": e("BOOL", [1], 0, 1), "b": e("F4", [2], 1, 2), "c": e("F6_E2M3", [4], 2, 5),
        "d": e("F8_E4M3", [2], 5, 7), "f": e("BF16", [1], 7, 9), "g": e("C64", [1], 9, 17),
        "h": e("U64", [], 17, 25), "i": e("F8_E8M0", [3], 25, 28),
    }),
    "ok-zero-size.json": js({"a": e("F32", [0, 4], 0, 0), "b": e("U8", [2], 0, 2),
                             "c": e("I64", [3, 0], 2, 2)}),
    "ok-extra-fields.json": js({"t": e("U8", [1], 0, 1, note=[1, {"x": None}], z=-1.5e3)}),
    "ok-escapes.json": '{"a\\"b\\\\c\\/\\n\\u00e9\\ud83d\\ude00":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}',
    "ok-unsorted.json": js({"z": e("U8", [1], 0, 1), "a": e("U8", [2], 1, 3)}),
    "ok-rank64.json": js({"t": e("U8", [1] * 64, 0, 1)}),
    # invalid headers
    "bad-empty.json": "",
    "bad-array.json": "[]",
    "bad-dup-name.json": '{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"a":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}}',
    "bad-dup-escaped.json": '{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"\\u0061":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}}',
    # found by the fuzzer: duplicate empty keys (the key buffer was still NULL: UB in the check)
    "bad-dup-empty-names.json": '{"":[0],"":[0,0]}',
    "bad-dup-meta.json": '{"__metadata__":{"k":"1","k":"2"}}',
    "bad-dup-field.json": '{"t":{"dtype":"U8","dtype":"U8","shape":[1],"data_offsets":[0,1]}}',
    "bad-nul-name.json": '{"a\\u0000b":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}',
    "bad-lone-surrogate.json": '{"a\\ud800":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}',
    "bad-not-utf8.json": b'{"\xc0\x80":1}',
    "bad-nan.json": '{"t":NaN}',
    "bad-single-quote.json": "{'t':1}",
    "bad-control.json": '{"t\x01":1}',
    "bad-trailing-comma.json": '{"t":1,}',
    "bad-trailing.json": "{} x",
    "bad-deep.json": '{"x":' + "[" * 200 + "]" * 200 + "}",
    "bad-meta-int.json": '{"__metadata__":{"a":1}}',
    "bad-entry-array.json": '{"t":["U8",[1],[0,1]]}',
    "bad-missing-shape.json": '{"t":{"dtype":"U8","data_offsets":[0,1]}}',
    "bad-dtype.json": js({"t": e("u8", [1], 0, 1)}),
    "bad-neg-dim.json": '{"t":{"dtype":"U8","shape":[-1],"data_offsets":[0,1]}}',
    "bad-float-dim.json": '{"t":{"dtype":"U8","shape":[1.0],"data_offsets":[0,1]}}',
    "bad-huge-dim.json": '{"t":{"dtype":"U8","shape":[18446744073709551616],"data_offsets":[0,1]}}',
    "bad-overflow.json": js({"t": e("I32", [2, 2**62, 2**62], 0, 16)}),
    "bad-offsets-3.json": '{"t":{"dtype":"U8","shape":[1],"data_offsets":[0,1,1]}}',
    "bad-gap.json": js({"a": e("U8", [1], 0, 1), "b": e("U8", [1], 2, 3)}),
    "bad-overlap.json": js({"a": e("U8", [2], 0, 2), "b": e("U8", [1], 1, 2)}),
    "bad-size.json": js({"t": e("F32", [2, 2], 0, 4)}),
    "bad-f4-odd.json": js({"t": e("F4", [3], 0, 2)}),
    "bad-reversed.json": js({"t": e("U8", [0], 4, 0)}),
    "bad-rank65.json": js({"t": e("U8", [1] * 65, 0, 1)}),
    # whole files
    "ok-file-one.st": image(js({"t": e("U8", [4], 0, 4)}), b"abcd"),
    "ok-file-padded.st": image(js({"__metadata__": {"format": "pt"}, "t": e("F16", [2], 0, 4)}) + "   ", b"\0\x3c\0\x40"),
    "ok-file-mlx-style.st": image('{"__metadata__":{"format":"mlx"},"a":{"data_offsets":[0,4],"dtype":"F32","shape":[]}}', b"\0\0\x80\x3f"),
    "bad-file-short.st": b"F\x05\0\0",
    "bad-file-huge-len.st": image("{}", length=2**64 - 1),
    "bad-file-len-past-end.st": image("{}", length=9),
    "bad-file-truncated-data.st": image(js({"t": e("U8", [4], 0, 4)}), b"abc"),
    "bad-file-trailing-data.st": image(js({"t": e("U8", [4], 0, 4)}), b"abcde"),
}


def st_file(header: dict, data: bytes) -> bytes:
    hb = js(header).encode()
    return struct.pack("<Q", len(hb)) + hb + data


LLAMA = {"model_type": "llama", "hidden_size": 64, "intermediate_size": 128,
         "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
         "torch_dtype": "bfloat16"}

def gguf_file(meta: dict, tensors: list[tuple[str, list[int], int, bytes]]) -> bytes:
    """A GGUF v3 file image: metadata (str, int as u32, float as f32, list of str) and
    tensors (name, ggml dims, ggml type, data), data aligned to 32."""
    def s(x: str) -> bytes:
        b = x.encode()
        return struct.pack("<Q", len(b)) + b
    out = b"GGUF" + struct.pack("<IQQ", 3, len(tensors), len(meta))
    for k, v in meta.items():
        out += s(k)
        if isinstance(v, str):
            out += struct.pack("<I", 8) + s(v)
        elif isinstance(v, float):
            out += struct.pack("<If", 6, v)
        elif isinstance(v, list):
            out += struct.pack("<IIQ", 9, 8, len(v)) + b"".join(s(x) for x in v)
        else:
            out += struct.pack("<II", 4, v)
    offset, blobs = 0, b""
    for name, dims, ttype, data in tensors:
        out += s(name) + struct.pack(f"<I{len(dims)}QIQ", len(dims), *dims, ttype, offset)
        pad = -len(data) % 32
        blobs += data + b"\0" * pad
        offset += len(data) + pad
    return out + b"\0" * (-len(out) % 32) + blobs


_GGUF_META = {"general.architecture": "llama", "llama.block_count": 1,
              "llama.embedding_length": 32, "llama.feed_forward_length": 32,
              "llama.attention.head_count": 2, "llama.attention.head_count_kv": 2,
              "llama.attention.layer_norm_rms_epsilon": 1e-5, "llama.rope.freq_base": 10000.0,
              "tokenizer.ggml.model": "gpt2", "tokenizer.ggml.tokens": ["a", "b"]}
_Q4_0_ROW = struct.pack("<e", 0.5) + bytes(range(16))  # one 32-element block
_GGUF_TENSORS = [("token_embd.weight", [32, 2], 2, _Q4_0_ROW * 2),
                 ("output_norm.weight", [32], 0, struct.pack("<32f", *range(32))),
                 ("blk.0.attn_q.weight", [32, 32], 8, (struct.pack("<e", 0.25) + bytes(32)) * 32),
                 ("blk.0.ffn_down.weight", [32, 32], 39, (b"\x7f" + bytes(16)) * 32)]

PY_SEEDS: dict[str, dict[str, bytes | str]] = {
    "reader": {
        "two-tensors.st": st_file({"__metadata__": {"format": "pt"},
                                   "a": e("BF16", [2, 4], 0, 16), "b": e("U32", [2, 2], 16, 32)},
                                  bytes(range(32))),
        "f4.st": st_file({"t": e("F4", [2, 4], 0, 4)}, b"\x12\x34\x56\x78"),
        "empty.st": st_file({}, b""),
        "scalar.st": st_file({"s": e("F32", [], 0, 4)}, b"\0\0\x80\x3f"),
    },
    "config": {
        "dense.json": js(LLAMA),
        "quantized.json": js({**LLAMA, "quantization": {"group_size": 64, "bits": 4, "mode": "affine",
                                                        "model.layers.0.mlp.gate": {"group_size": 32, "bits": 4, "mode": "mxfp4"},
                                                        "lm_head": False}}),
        "g128.json": js({**LLAMA, "quantization": {"group_size": 128, "bits": 4}}),
        "tagged-float.json": js({**LLAMA, "limit": {"__float__": "Infinity"}}),
        "awq.json": js({**LLAMA, "quantization_config": {"quant_method": "awq", "bits": 4,
                                                          "group_size": 128, "version": "gemm"}}),
        "moe.json": js({**LLAMA, "model_type": "mixtral", "num_local_experts": 4}),
    },
    "index": {
        "ok.json": js({"metadata": {"total_size": 5}, "weight_map": {
            "a": "model-00001-of-00002.safetensors", "b": "model-00002-of-00002.safetensors"}}),
        "missing.json": js({"weight_map": {"a": "model-00001-of-00002.safetensors"}}),
        "outside.json": js({"weight_map": {"a": "../x.safetensors"}}),
    },
    "external": {
        "awq.json": js({"quantization_config": {"quant_method": "awq", "bits": 4,
                                                "group_size": 128, "zero_point": True, "version": "gemm"}}),
        "gptq.json": js({"quantization_config": {"quant_method": "gptq", "bits": 4, "group_size": 128,
                                                 "desc_act": False, "sym": True, "checkpoint_format": "gptq"}}),
        "mxfp4.json": js({"quantization_config": {"quant_method": "mxfp4"}}),
        "nested.json": js({"text_config": {"quantization_config": {"quant_method": "gptq", "bits": 8}}}),
    },
    "gguf": {
        "llama.gguf": gguf_file(_GGUF_META, _GGUF_TENSORS),
        "no-tensors.gguf": gguf_file({"general.architecture": "qwen3"}, []),
        "aligned-64.gguf": gguf_file({"general.alignment": 64, **_GGUF_META}, _GGUF_TENSORS[:2]),
    },
    "card": {
        "ok.md": "---\nlicense: mit\ntags:\n- text\nbase_model: a/b\n---\n# Title\nbody\n",
        "no-front-matter.md": "# Just a title\n",
        "bad-yaml.md": "---\nlicense: [unclosed\n  bad: : :\n---\n# t\n",
        "list-front-matter.md": "---\n- a\n- b\n---\n",
        "tags-not-a-list.md": "---\ntags: 5\nlanguage: [1, {a: b}]\n---\n",
    },
    "listing": {
        "ok.json": js([{"type": "file", "oid": "a" * 40, "size": 10, "path": "config.json"},
                       {"type": "file", "oid": "b" * 40, "size": 99, "path": "model.safetensors",
                        "lfs": {"oid": "c" * 64, "size": 99, "pointerSize": 130}},
                       {"type": "directory", "oid": "d" * 40, "size": 0, "path": "sub"}]),
        "escape.json": js([{"type": "file", "oid": "a" * 40, "size": 1, "path": "../x.json"}]),
        "bad-oid.json": js([{"type": "file", "oid": "zz", "size": -1, "path": "a.json"}]),
    },
}


def main() -> None:
    for target, seeds in PY_SEEDS.items():
        d = OUT.parent / f"py_{target}"
        d.mkdir(parents=True, exist_ok=True)
        for name, content in seeds.items():
            (d / name).write_bytes(content.encode() if isinstance(content, str) else content)
    OUT.mkdir(parents=True, exist_ok=True)
    for name, content in SEEDS.items():
        data = content.encode() if isinstance(content, str) else content
        if not name.endswith(".st") and data[:1] == b"F":
            raise SystemExit(f"{name}: a JSON seed must not start with 'F'")
        (OUT / name).write_bytes(data)
    print(f"wrote {len(SEEDS)} seeds to {OUT}")


if __name__ == "__main__":
    main()
