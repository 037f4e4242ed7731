"""Fused expert tensors stored ``[experts, in, out]`` (Qwen3-VL-MoE, Llama 4, gpt-oss's bf16
layout), converted into MLX's ``[experts, out, in]`` switch layers: mlxq (one expert at a
time) vs mlx_lm.convert, wall time and peak RSS, each in its own child process.

The checkpoint is generated here in Qwen3-VL-MoE's release layout (the language model's
fused ``gate_up_proj`` / ``down_proj`` under ``model.language_model``; no vision tower),
with numpy and the ``safetensors`` package, about 0.6 GB with the defaults. Usage:

    python benchmarks/bench_experts.py [--layers 2] [--experts 64] [--hidden 1024]
                                       [--moe 768] [--flags "-q"]
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_convert import du, run  # noqa: E402


def make(dst: str, layers: int, experts: int, hidden: int, moe: int, vocab: int) -> None:
    import ml_dtypes
    from safetensors.numpy import save_file

    rng = np.random.default_rng(0)

    def bf16(*shape: int) -> np.ndarray:
        return (rng.standard_normal(shape, np.float32) * 0.02).astype(ml_dtypes.bfloat16)

    heads, kv, hd = hidden // 128, max(hidden // 512, 1), 128
    w = {"model.language_model.embed_tokens.weight": bf16(vocab, hidden),
         "model.language_model.norm.weight": bf16(hidden), "lm_head.weight": bf16(vocab, hidden)}
    for l in range(layers):
        p = f"model.language_model.layers.{l}"
        w.update({f"{p}.input_layernorm.weight": bf16(hidden),
                  f"{p}.post_attention_layernorm.weight": bf16(hidden),
                  f"{p}.self_attn.q_proj.weight": bf16(heads * hd, hidden),
                  f"{p}.self_attn.k_proj.weight": bf16(kv * hd, hidden),
                  f"{p}.self_attn.v_proj.weight": bf16(kv * hd, hidden),
                  f"{p}.self_attn.o_proj.weight": bf16(hidden, heads * hd),
                  f"{p}.self_attn.q_norm.weight": bf16(hd),
                  f"{p}.self_attn.k_norm.weight": bf16(hd),
                  f"{p}.mlp.gate.weight": bf16(experts, hidden),
                  f"{p}.mlp.experts.gate_up_proj": bf16(experts, hidden, 2 * moe),
                  f"{p}.mlp.experts.down_proj": bf16(experts, moe, hidden)})
    os.makedirs(dst)
    save_file(w, os.path.join(dst, "model.safetensors"), metadata={"format": "pt"})
    text = {"model_type": "qwen3_vl_moe_text", "hidden_size": hidden, "num_hidden_layers": layers,
            "intermediate_size": 4 * hidden, "num_attention_heads": heads,
            "num_key_value_heads": kv, "head_dim": hd, "num_experts": experts,
            "num_experts_per_tok": 8, "decoder_sparse_step": 1, "mlp_only_layers": [],
            "moe_intermediate_size": moe, "rms_norm_eps": 1e-6, "vocab_size": vocab,
            "rope_theta": 5000000.0, "tie_word_embeddings": False,
            "max_position_embeddings": 4096, "norm_topk_prob": True}
    cfg = {"model_type": "qwen3_vl_moe", "architectures": ["Qwen3VLMoeForConditionalGeneration"],
           "torch_dtype": "bfloat16", "tie_word_embeddings": False, "text_config": text}
    with open(os.path.join(dst, "config.json"), "w") as f:
        json.dump(cfg, f)
    tok = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures",
                       "hf", "qwen3_vl_moe")
    for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        shutil.copy(os.path.join(tok, name), dst)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--experts", type=int, default=64)
    ap.add_argument("--hidden", type=int, default=1024)
    ap.add_argument("--moe", type=int, default=768)
    ap.add_argument("--vocab", type=int, default=128)
    ap.add_argument("--flags", default="-q")
    ap.add_argument("--make", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.make:  # the generating child
        make(args.make, args.layers, args.experts, args.hidden, args.moe, args.vocab)
        return
    root = tempfile.mkdtemp(prefix="mlxq-bench-experts-")
    try:
        src = os.path.join(root, "hf")
        # in a child: a child's ru_maxrss starts at its parent's RSS when it forks
        subprocess.run([sys.executable, os.path.abspath(__file__), "--make", src,
                        "--layers", str(args.layers), "--experts", str(args.experts),
                        "--hidden", str(args.hidden), "--moe", str(args.moe),
                        "--vocab", str(args.vocab)], check=True)
        size = du(src)
        expert = args.hidden * 2 * args.moe * 2
        print(f"checkpoint {size / 1e9:.2f} GB: {args.layers} layers of {args.experts} fused "
              f"experts ({args.experts * expert / 1e6:.0f} MB each gate_up_proj, "
              f"{expert / 1e6:.1f} MB per expert); flags {args.flags!r}")
        flags = shlex.split(args.flags)
        results = {}
        for name, cmd in (("mlxq", [sys.executable, "-m", "mlxq", "convert", src, "{dst}",
                                    "--quiet"] + flags),
                          ("mlx_lm", [sys.executable, "-m", "mlx_lm", "convert", "--hf-path",
                                      src, "--mlx-path", "{dst}"] + flags)):
            dst = os.path.join(root, f"out-{name}")
            wall, rss, rc = run([c.replace("{dst}", dst) for c in cmd])
            if rc != 0:
                print(f"{name}: failed (exit {rc})")
                continue
            results[name] = (wall, rss)
            print(f"{name:>7}: {wall:6.2f} s  peak RSS {rss / 1e6:7.1f} MB  "
                  f"{size / wall / 1e9:5.2f} GB/s read")
        if len(results) == 2:
            (tq, rq), (tm, rm) = results["mlxq"], results["mlx_lm"]
            print(f"mlxq vs mlx_lm.convert: {tm / tq:.1f}x the speed, {rq / rm:.1%} of its peak "
                  f"RSS")
            same = subprocess.run([sys.executable, "-c",
                                   "import sys, mlxq.testing as t; "
                                   "t.assert_checkpoints_equal(sys.argv[1], sys.argv[2])",
                                   os.path.join(root, "out-mlxq"),
                                   os.path.join(root, "out-mlx_lm")],
                                  capture_output=True, text=True)
            print("outputs identical:", same.returncode == 0,
                  same.stderr[-500:] if same.returncode else "")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
