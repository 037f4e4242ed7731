"""The data-free importance ``q_method="mse"`` weighs layers with (mlxq.conversion.datafree),
checked against what it estimates: each linear layer's mean squared input per column,
measured here by running the checkpoint with transformers on random tokens (forward
pre-hooks on every ``nn.Linear``). The checkpoints are the transformers-built fixtures, with
their norm gains (all one when transformers initialises them) replaced by random gains, so
that the columns differ as a trained model's do."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

import mlxq
from mlxq.conversion.datafree import estimate_importance
from mlxq.conversion.source import SourceCheckpoint
from mlxq.models import family_for

ROOT = Path(__file__).resolve().parent / "fixtures" / "hf"


# torch keeps a compile cache in TMPDIR: under pytest's folders instead (conftest.py)
pytestmark = pytest.mark.usefixtures("torch_cache_in_pytests_folders")


def with_random_gains(name: str, dst: Path, seed: int) -> Path:
    """A copy of fixture ``name`` whose RMSNorm gains are random, in [0.2, 3]."""
    st = pytest.importorskip("safetensors.numpy")

    shutil.copytree(ROOT / name, dst)
    cfg = json.loads((dst / "config.json").read_text())
    plus_one = cfg["model_type"].startswith("gemma")
    rng = np.random.default_rng(seed)
    for f in dst.glob("*.safetensors"):
        w = {k: np.asarray(v) for k, v in st.load_file(str(f)).items()}
        for k, v in w.items():
            if k.endswith("layernorm.weight") or k == "model.norm.weight":
                g = rng.uniform(0.2, 3.0, v.shape)
                w[k] = (g - 1.0 if plus_one else g).astype(np.float32).astype(v.dtype)
        st.save_file({k: np.ascontiguousarray(v) for k, v in w.items()}, str(f),
                     metadata={"format": "pt"})
    return dst


def measured(folder: Path, seed: int) -> dict[str, np.ndarray]:
    """Mean square of each linear layer's input columns over random token sequences."""
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    model = transformers.AutoModelForCausalLM.from_pretrained(
        folder, dtype=torch.float32).eval()
    sums: dict[str, list] = {}

    def hook(name):
        def fn(_m, inputs):
            x = inputs[0].detach().reshape(-1, inputs[0].shape[-1]).double()
            acc = sums.setdefault(name, [0.0, 0])
            acc[0] = acc[0] + (x * x).sum(0)
            acc[1] += x.shape[0]
        return fn

    for n, m in model.named_modules():
        if isinstance(m, torch.nn.Linear):
            m.register_forward_pre_hook(hook(n))
    vocab = model.config.get_text_config().vocab_size
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for _ in range(8):
            model(input_ids=torch.randint(0, vocab, (1, 64), generator=g), use_cache=False)
    return {n: (s / c).numpy() for n, (s, c) in sums.items()}


def estimated(folder: Path) -> dict[str, np.ndarray]:
    with SourceCheckpoint(folder) as src:
        cfg = dict(src.config)
        wanted = {n[: -len(".weight")]: t.shape for n, t in src.tensors.items()
                  if n.endswith(".weight") and t.ndim == 2}
        return estimate_importance(src.tensors, cfg, family_for(cfg).module,
                                   wanted).importance


def _norm(v: np.ndarray) -> np.ndarray:
    return v / v.mean()


@pytest.mark.parametrize("name", ["llama", "gemma3_text", "olmo2", "phi3"])
def test_estimates_follow_the_measured_input_sizes(name, tmp_path):
    folder = with_random_gains(name, tmp_path / name, seed=1)
    meas = measured(folder, seed=2)
    est = estimated(folder)
    layers = [n for n in meas if n in est]
    # every attention and MLP projection of every decoder layer is estimated
    assert len([n for n in meas if ".layers." in n]) == len([n for n in layers if ".layers." in n])
    # the layers reading the residual stream (through a norm, where the model has one)
    # follow its estimated energy closely; the inputs of o_proj and down_proj vary little
    # across columns in a model with random weights, and the estimate stays within a
    # factor of the measurement there
    for n in layers:
        e, m = _norm(est[n]), _norm(meas[n])
        leaf = n.rsplit(".", 1)[-1]
        if leaf in ("o_proj", "down_proj"):
            assert np.median(np.abs(np.log(e / m))) < np.log(2.0), n
        else:
            r = np.corrcoef(np.log(e), np.log(m))[0, 1]
            assert r > 0.6, (n, r)
    # the layers reading a norm of the embeddings directly: the estimate is the gain squared
    # times the embedding's column energy, which random tokens sample
    first = [n for n in layers if ".layers.0." in n and n.rsplit(".", 1)[-1] in
             ("q_proj", "k_proj", "v_proj", "qkv_proj")]
    for n in first:
        rel = np.abs(_norm(est[n]) / _norm(meas[n]) - 1)
        assert np.median(rel) < 0.1, (n, np.median(rel))


def test_ignoring_the_gains_would_fail_the_check(tmp_path):
    """The check above can fail: the measured sizes follow the gains, so a flat estimate
    correlates with them far less."""
    folder = with_random_gains("llama", tmp_path / "llama", seed=1)
    meas = measured(folder, seed=2)
    n = "model.layers.1.self_attn.q_proj"
    cfg = json.loads((folder / "config.json").read_text())
    with SourceCheckpoint(folder) as src:
        emb = src.tensors["model.embed_tokens.weight"].numpy().astype(np.float64)
    flat = (emb ** 2).mean(0)
    assert cfg["hidden_size"] == flat.shape[0]
    r = np.corrcoef(np.log(_norm(flat)), np.log(_norm(meas[n])))[0, 1]
    assert r < 0.5, r


def test_mse_lowers_the_output_error_the_measured_inputs_give(tmp_path):
    """Each layer's expected squared output error under the measured inputs,
    sum_k E[x_k^2] * sum_i (W_ik - What_ik)^2, summed over layers: lower with
    ``q_method="mse"`` (the estimate) than with MLX's own quantization."""
    folder = with_random_gains("llama", tmp_path / "src", seed=3)
    meas = measured(folder, seed=4)
    src = mlxq.load_checkpoint(folder)
    totals = {}
    for method in ("mlx", "mse"):
        out = tmp_path / method
        mlxq.convert(folder, out, quantize=True, q_bits=3, quiet=True, q_method=method)
        q = mlxq.load_checkpoint(out)
        cfg = json.loads((out / "config.json").read_text())["quantization"]
        total = 0.0
        for layer, x2 in meas.items():
            if layer + ".scales" not in q:
                continue
            hat = mlxq.dequantize(q[layer + ".weight"], q[layer + ".scales"],
                                  q[layer + ".biases"], group_size=cfg["group_size"],
                                  bits=cfg["bits"], device="cpu").astype(np.float64)
            d = hat - src[layer + ".weight"].astype(np.float64)
            total += float(((d * d).sum(0) * x2).sum())
        totals[method] = total
    assert totals["mse"] < 0.9 * totals["mlx"], totals


@pytest.mark.parametrize("bad", [{"head_dim": "16"}, {"head_dim": 7}, {"num_attention_heads": 0},
                                 {"num_key_value_heads": -2}, {"hidden_act": ["silu"]},
                                 {"hidden_act": "no-such-activation"}])
def test_config_numbers_the_estimate_cannot_use_leave_parts_out_not_crash(bad):
    """The estimate reads head counts and the activation from config.json: values it cannot
    use leave those parts unestimated (MLX's choice there), never an error."""
    with SourceCheckpoint(ROOT / "llama") as src:
        cfg = dict(src.config, **bad)
        wanted = {n[: -len(".weight")]: t.shape for n, t in src.tensors.items()
                  if n.endswith(".weight") and t.ndim == 2}
        imp = estimate_importance(src.tensors, cfg, "llama", wanted).importance
    assert "model.layers.0.self_attn.q_proj" in imp
    assert all(np.isfinite(v).all() and (v >= 0).all() for v in imp.values())
    good = estimated(ROOT / "llama")
    assert set(imp) <= set(good)


def test_weights_holding_nan_or_inf_get_no_estimate_where_they_reach(tmp_path):
    """A non-finite weight makes the energies it feeds non-finite: those layers get no
    importance (MLX's choice), the others theirs, and nothing raises."""
    with SourceCheckpoint(ROOT / "llama") as src:
        cfg = dict(src.config)
        w = dict(src.tensors)
        wanted = {n[: -len(".weight")]: t.shape for n, t in w.items()
                  if n.endswith(".weight") and t.ndim == 2}
        bad = w["model.layers.1.mlp.down_proj.weight"].numpy().astype(np.float32)
        bad[0, 0] = np.inf

        class Dense:
            def __init__(self, a):
                self.a, self.shape, self.ndim, self.dtype = a, a.shape, a.ndim, a.dtype
                self.nrows, self.ncols = a.shape[0], a.shape[-1]

            def rows(self, r0, r1):
                return self.a.reshape(self.nrows, self.ncols)[r0:r1]

        w["model.layers.1.mlp.down_proj.weight"] = Dense(bad)
        imp = estimate_importance(w, cfg, "llama", wanted).importance
    assert "model.layers.1.mlp.down_proj" in imp   # its input is finite
    assert "lm_head" not in imp                    # the stream after it is not
    assert "model.layers.0.self_attn.q_proj" in imp


@pytest.mark.parametrize("name", ["qwen3_moe", "mixtral", "gemma3", "phi3"])
def test_mse_estimates_every_layer_of_these_families_and_mlx_lm_loads_them(name, tmp_path):
    """Experts (switch_mlp under "mlp" or Mixtral's "block_sparse_moe"), routers, a
    multimodal container's language model: every quantized layer gets an estimate (no
    warning that some keep MLX's choice), and the folder loads strictly."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error", mlxq.MlxqWarning)
        mlxq.convert(ROOT / name, tmp_path / "out", quantize=True, q_method="mse", quiet=True)
    utils = pytest.importorskip("mlx_lm.utils")
    utils.load_model(tmp_path / "out")


def test_a_layer_it_cannot_place_keeps_mlxs_choice_and_the_warning_says_so(tmp_path):
    """DeepSeek-V3's low-rank attention (q_a_proj, ...) is not a shape the estimate knows:
    those layers are MLX's own quantization, byte for byte, and a warning names one."""
    with pytest.warns(mlxq.MlxqWarning, match=r"q_method='mse': \d+ of \d+ quantized layers "
                      r"\(e\.g\. model\.layers\.0\.self_attn\.q_a_proj\)"):
        mlxq.convert(ROOT / "deepseek_v3", tmp_path / "mse", quantize=True, q_method="mse",
                     quiet=True)
    mlxq.convert(ROOT / "deepseek_v3", tmp_path / "mlx", quantize=True, quiet=True)
    a, b = mlxq.load_checkpoint(tmp_path / "mse"), mlxq.load_checkpoint(tmp_path / "mlx")
    for k in ("weight", "scales", "biases"):
        n = f"model.layers.0.self_attn.q_a_proj.{k}"
        assert np.array_equal(np.asarray(a[n]).view(np.uint8), np.asarray(b[n]).view(np.uint8))
