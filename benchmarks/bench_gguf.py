"""GGUF -> MLX folder: mlxq's converter against MLX's own GGUF reader plus a Python
conversion loop, measured in the same run, each in a fresh process (time and peak RSS).

    python benchmarks/bench_gguf.py [--layers 8 --hidden 2048] [--type Q4_0] [--repeat 3]

The input is a llama-shaped GGUF written with the ``gguf`` package (random weights: only
the sizes matter), in llama.cpp's layout, norms F32 and the matrices in ``--type``:
Q4_0, Q4_1 or Q8_0 (kept as MLX's quantized triples), or Q4_K_M (llama.cpp's mix: Q6_K
for ``output`` and ``ffn_down``, Q4_K for the rest; MLX cannot hold these blocks, so both
sides write the model dequantized to float16).

  mlxq        ``mlxq.convert(model.gguf, out)``: the whole MLX folder (config, tokenizer
              from the GGUF's vocabulary, weights), a row block at a time, the output
              fsynced as mlxq always does
  mx.load     ``mx.load(model.gguf)`` (the whole file into memory, the same triples; K-quants
              dequantized to float16), then a Python loop renaming to Hugging Face names and
              undoing llama's Q/K row order, then ``mx.save_safetensors`` (not fsynced): the
              smallest hand-written converter on MLX, weights only

Rates are GGUF bytes per second; times start after the library imports both processes make
(mlx, mlxq and gguf; transformers with its GGUF tokenizer conversion, whose import scans every
transformers model package: their import times are printed too); peak memory is the
process's maximum resident set (``ru_maxrss``) minus that of a process that only imported
the same modules. Each side runs
``--repeat`` times, alternating, each run after ``os.sync()`` (so no run pays for the
writeback of the file or folder written before it); the best time and the largest peak are
reported. The ratio is the peer's time over mlxq's (above 1: mlxq is faster) and the peer's
extra memory over mlxq's.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

MAKE = """
import numpy as np, gguf, sys
from gguf import GGMLQuantizationType as Q
path, layers, hidden, kind = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
rng = np.random.default_rng(0)
w = gguf.GGUFWriter(path, "llama")
heads = hidden // 64
w.add_block_count(layers); w.add_context_length(2048); w.add_embedding_length(hidden)
w.add_feed_forward_length(hidden * 4); w.add_head_count(heads); w.add_head_count_kv(heads)
w.add_layer_norm_rms_eps(1e-5); w.add_rope_freq_base(10000.0)
vocab = 32000
w.add_tokenizer_model("gpt2"); w.add_tokenizer_pre("default")
w.add_token_list([f"t{i}" for i in range(vocab)]); w.add_token_scores([0.0] * vocab)
w.add_token_types([1] * vocab); w.add_bos_token_id(1); w.add_eos_token_id(2)
def kquant(rows, cols, qt):
    # random blocks with moderate f16 super-block scales (gguf has no K-quant quantizer)
    bs, ts = gguf.GGML_QUANT_SIZES[qt]
    raw = rng.integers(0, 256, size=(rows, cols // bs, ts), dtype=np.uint8)
    at = {Q.Q4_K: (0, 2), Q.Q6_K: (ts - 2,)}[qt]
    for a in at:
        raw[..., a:a + 2] = np.frombuffer(np.float16(0.001).tobytes(), np.uint8)
    return raw.reshape(rows, -1)
def mat(name, rows, cols):
    if kind == "Q4_K_M":
        qt = Q.Q6_K if name.startswith("output") or "ffn_down" in name else Q.Q4_K
        w.add_tensor(name, kquant(rows, cols, qt), raw_dtype=qt)
        return
    qt = Q[kind]
    x = rng.standard_normal((rows, cols), dtype=np.float32) * 0.02
    w.add_tensor(name, gguf.quants.quantize(x, qt), raw_dtype=qt)
mat("token_embd.weight", vocab, hidden)
w.add_tensor("output_norm.weight", np.ones(hidden, np.float32))
mat("output.weight", vocab, hidden)
for i in range(layers):
    for n in ("attn_q", "attn_k", "attn_v", "attn_output"):
        mat(f"blk.{i}.{n}.weight", hidden, hidden)
    mat(f"blk.{i}.ffn_gate.weight", hidden * 4, hidden)
    mat(f"blk.{i}.ffn_up.weight", hidden * 4, hidden)
    mat(f"blk.{i}.ffn_down.weight", hidden, hidden * 4)
    for n in ("attn_norm", "ffn_norm"):
        w.add_tensor(f"blk.{i}.{n}.weight", np.ones(hidden, np.float32))
w.write_header_to_file(); w.write_kv_data_to_file(); w.write_tensors_to_file(); w.close()
"""

PRELUDE = """
import resource, sys, time, json
T0 = time.perf_counter()
sys.path.insert(0, ROOT)
import mlxq, mlxq.conversion, mlx.core as mx, gguf  # (both read the name map from gguf)
T1 = time.perf_counter()
# imported in both and the baseline: mlxq builds the tokenizer with transformers' GGUF
# tokenizer conversion (importing it scans every transformers model package)
from transformers import PreTrainedTokenizerFast
import transformers.integrations.gguf.gguf_tokenizer_mapping
T2 = time.perf_counter()
"""

MLXQ = """
t = time.perf_counter()
mlxq.convert(SRC, DST, quiet=True)
t = time.perf_counter() - t
"""

PEER = """
import gguf, numpy as np
t = time.perf_counter()
arrays, meta = mx.load(SRC, return_metadata=True)
layers = int(np.array(meta["llama.block_count"]))
heads = int(np.array(meta["llama.attention.head_count"]))
tmap = gguf.get_tensor_name_map(gguf.MODEL_ARCH.LLAMA, layers)
names = {}
for i in range(layers):
    for hf in ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj",
               "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj", "input_layernorm",
               "post_attention_layernorm"):
        names[tmap.get_name(f"model.layers.{i}.{hf}")] = f"model.layers.{i}.{hf}"
names.update({"token_embd": "model.embed_tokens", "output_norm": "model.norm",
              "output": "lm_head"})
out = {}
for k, v in arrays.items():
    base, leaf = k.rsplit(".", 1)
    hf = names[base]
    if hf.endswith(("q_proj", "k_proj")):  # llama.cpp's row order undone
        r = v.shape[0]
        v = v.reshape(heads, r // heads // 2, 2, -1).swapaxes(1, 2).reshape(r, -1)
    out[f"{hf}.{leaf}"] = v
import os
os.makedirs(DST)
mx.save_safetensors(os.path.join(DST, "model.safetensors"), out, metadata={"format": "mlx"})
t = time.perf_counter() - t
"""

REPORT = """
print(json.dumps({"seconds": t, "rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}))
"""

BASE = """
t = 0.0
print(json.dumps({"import_mlx": T1 - T0, "import_transformers": T2 - T1}))
"""


def run(body: str, src: str, dst: str) -> dict:
    os.sync()  # the previous run's output (the peer's is not fsynced) is on disk first
    code = f"ROOT = {ROOT!r}\nSRC = {src!r}\nDST = {dst!r}\n" + PRELUDE + body + REPORT
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, env={**os.environ, "PYTHONPATH": ROOT})
    got: dict = {}
    for line in out.stdout.strip().splitlines():
        if line.startswith("{"):
            got.update(json.loads(line))
    return got


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--layers", type=int, default=8)
    ap.add_argument("--hidden", type=int, default=2048)
    ap.add_argument("--type", default="Q4_0", choices=["Q4_0", "Q4_1", "Q8_0", "Q4_K_M"])
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-gguf-") as tmp:
        src = os.path.join(tmp, "model.gguf")
        subprocess.run([sys.executable, "-c", MAKE, src, str(args.layers), str(args.hidden),
                        args.type], check=True)
        size = os.path.getsize(src)
        print(f"GGUF {args.type}: {args.layers} layers, hidden {args.hidden}, "
              f"{size / 2**20:.0f} MiB; best of {args.repeat}")
        b = run(BASE, src, os.path.join(tmp, "base"))
        base = b["rss"]
        best: dict[str, tuple[float, int]] = {}
        for i in range(max(args.repeat, 1)):
            for name, body in (("mlxq", MLXQ), ("mx.load", PEER)):
                dst = os.path.join(tmp, f"{name.replace('.', '_')}-{i}")
                r = run(body, src, dst)
                shutil.rmtree(dst)
                t, m = best.get(name, (float("inf"), 0))
                best[name] = (min(t, r["seconds"]), max(m, max(r["rss"] - base, 0)))
        for name, (t, extra) in best.items():
            print(f"  {name:<9} {size / t / 2**20:8.1f} MiB/s {t:7.2f} s"
                  f"   peak +{extra / 2**20:7.1f} MiB")
        (tm, mm), (tp, mp) = best["mlxq"], best["mx.load"]
        print(f"  mlxq vs mx.load + loop: {tp / tm:.2f}x the speed, "
              f"{mp / max(mm, 1):.2f}x less memory")
        print(f"  (library imports before the clock, in both: mlx, mlxq and gguf "
              f"{b['import_mlx']:.2f} s, transformers and its GGUF tokenizer conversion "
              f"{b['import_transformers']:.2f} s)")


if __name__ == "__main__":
    main()
