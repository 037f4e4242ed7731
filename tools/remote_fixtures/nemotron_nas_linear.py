"""Llama-Nemotron blocks replaced by a single Linear (model_type ``nemotron-nas``; fixture
``nemotron_nas_linear``), as nvidia/Llama-3_1-Nemotron-51B-Instruct has them: a block whose
attention (or MLP) is ``replace_with_linear`` holds ``self_attn.linear_attn`` (or
``mlp.linear_mlp``), a ``hidden x hidden`` Linear, with the norm before it — the names of the
publisher's ``modeling_decilm.py`` (``DeciLMLinearAttention``, ``DeciLMLinearMLP``), which
NVIDIA's TensorRT-LLM port loads under the same names. mlx-lm's model names that module
``linear``, so ``mlx_lm.convert`` refuses such checkpoints. The rest as ``nemotron_nas``."""

from .nemotron_nas import CONFIG as _SUPER
from .nemotron_nas import tensors  # noqa: F401 - the same layout rules

_ATTN = {"n_heads_in_group": None, "no_op": False, "num_sink_tokens": None,
         "replace_with_linear": True, "sparsify": None, "unshifted_sink": False,
         "use_prefill_window_in_sink_attention": False, "window_length": None}
_FFN = {"ffn_mult": None, "no_op": False, "replace_with_linear": True, "sparsify": None}

CONFIG = {**_SUPER, "block_configs": [
    {"attention": _ATTN, "ffn": _SUPER["block_configs"][1]["ffn"]},
    {"attention": _SUPER["block_configs"][0]["attention"], "ffn": _FFN},
]}
