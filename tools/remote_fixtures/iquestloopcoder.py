"""IQuest-Coder-V1 Loop (model_type ``iquestloopcoder``), as
IQuestLab/IQuest-Coder-V1-40B-Loop-Instruct ships it: llama names plus one
``LoopGateProjection`` per layer, ``model.gate_projections.N.weight`` ``[heads, head_dim]``
and ``.bias`` ``[heads]`` (the publisher's ``modeling_iquestloopcoder.py``,
``IQuestLoopCoderForCausalLM``), and an untied ``lm_head``. The config keys are the 40B-Loop
release's at tiny sizes (its ``auto_map`` left out)."""

from ._shapes import BF16, llama

CONFIG = {
    "architectures": ["IQuestLoopCoderForCausalLM"],
    "attention_bias": False,
    "attention_dropout": 0.0,
    "bos_token_id": 1,
    "eos_token_id": 2,
    "head_dim": 16,
    "hidden_act": "silu",
    "hidden_size": 64,
    "initializer_range": 0.02,
    "intermediate_size": 64,
    "loop_num": 2,
    "loop_window_size": 16,
    "max_position_embeddings": 256,
    "mlp_bias": False,
    "model_type": "iquestloopcoder",
    "num_attention_heads": 4,
    "num_hidden_layers": 2,
    "num_key_value_heads": 2,
    "rms_norm_eps": 1e-05,
    "rope_theta": 500000,
    "tie_word_embeddings": False,
    "torch_dtype": "bfloat16",
    "use_cache": True,
    "vocab_size": 128,
}


def tensors(config):
    t = llama(config)
    heads, hd = config["num_attention_heads"], config["head_dim"]
    for n in range(config["num_hidden_layers"]):
        t[f"model.gate_projections.{n}.weight"] = ((heads, hd), BF16)
        t[f"model.gate_projections.{n}.bias"] = ((heads,), BF16)
    return t
