"""An oracle independent of mlx-lm's converter: each bf16 fixture converted by mlxq (to
float32), loaded by mlx-lm and run on a fixed prompt must give transformers' own logits
(tests/fixtures/hf/logits/, computed by transformers from the same saved weights). This is
the check for the layouts mlx-lm cannot convert itself (gpt_oss's bf16 experts, GPT-2 as
transformers saves it), and a second one for everything else."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("mlx_lm")

import mlxq.models  # noqa: E402
from mlxq import convert  # noqa: E402

ROOT = Path(__file__).resolve().parent / "fixtures" / "hf"
PROMPT = [1, 5, 9, 20, 33, 7, 64, 3]

# mlx-lm's model computes something else than transformers' for these (found by the fixture
# survey): not a conversion difference, the tensors are mlx-lm's own either way.
MLX_LM_DIFFERS = {
    "mamba2": "mlx-lm's gated RMSNorm ignores n_groups",
    "minicpm3": "mlx-lm's tied head skips the hidden_size/dim_model_base scaling and its "
                "SuScaledRoPE always uses long_factor",
    "ernie4_5_moe": "mlx-lm's router picks experts without moe_statics.e_score_correction_bias, "
                    "which transformers adds to the scores before top-k",
    "jamba": "mlx-lm renormalizes the top-k router weights, transformers does not",
    "gemma3n": "mlx-lm's Gemma 3n gives other logits than transformers' for the same weights, "
               "from the first position on",
    "llama4": "mlx-lm's Llama 4 takes its global attention mask from the fourth layer's "
              "cache: it runs models of 4 layers or more only (IndexError)",
    "llama4_text": "mlx-lm's llama4_text applies the QK norm before RoPE, in every layer, and "
                   "no attention temperature tuning; transformers' Llama 4 after RoPE, in "
                   "the RoPE layers (positions after the first differ)",
}


# mlx-lm's model runs only on the GPU (custom Metal kernels): nothing to compare on the CPU
NEEDS_METAL = {"muse_spark": "mlx-lm's muse_spark model calls Metal kernels (norm_add_norm, "
                             "expert_routing, ...)",
               "bitnet": "mlx-lm's BitLinear is a Metal kernel (bitlinear_matmul)"}


def cases():
    out = []
    for d in sorted(ROOT.iterdir()):
        cfg = d / "config.json"
        if not cfg.is_file() or not (ROOT / "logits" / f"{d.name}.npy").is_file():
            continue
        if json.loads(cfg.read_text())["model_type"] not in mlxq.models.supported_model_types():
            continue
        marks = [pytest.mark.xfail(reason=MLX_LM_DIFFERS[d.name], strict=True)] \
            if d.name in MLX_LM_DIFFERS else []
        if d.name in NEEDS_METAL:
            marks = [pytest.mark.skipif(not _metal(), reason=NEEDS_METAL[d.name])]
        out.append(pytest.param(d, id=d.name, marks=marks))
    return out


def _metal() -> bool:
    import mlx.core as mx

    return mx.metal.is_available()


@pytest.mark.parametrize("folder", cases())
def test_mlx_lm_runs_mlxq_output_to_transformers_logits(folder, tmp_path):
    import mlx.core as mx
    from mlx_lm.utils import load_model

    try:
        convert(folder, tmp_path / "out", dtype="float32", quiet=True)
    except mlxq.errors.MlxqError as e:
        pytest.skip(f"mlxq refuses this checkpoint as mlx-lm does: {e}")
    model, _ = load_model(tmp_path / "out")
    got = np.array(model(mx.array([PROMPT]))[0].astype(mx.float32))
    want = np.load(ROOT / "logits" / f"{folder.name}.npy").reshape(got.shape)
    scale = max(float(np.abs(want).max()), 1.0)
    # a conversion mistake moves logits by much more than mlx-lm and transformers differ by
    assert np.abs(got - want).max() <= 1e-2 * scale, np.abs(got - want).max()
    assert (got.argmax(-1) == want.argmax(-1)).all()
