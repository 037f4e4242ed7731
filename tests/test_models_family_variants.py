"""Configurations of mlx-lm families that the transformers-built fixtures (tests/fixtures/hf/)
do not reach, made from them here: each converted by mlxq and by ``mlx_lm.convert`` must
give one folder (skipped without mlx-lm) — or, where mlx-lm's model computes something
else than transformers', the converted tensors must give transformers' logits once that
one difference is taken out of mlx-lm's model.
"""

from __future__ import annotations

import contextlib
import io
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

import mlxq
from mlxq import convert
from mlxq.testing import assert_checkpoints_equal

mlx_lm = pytest.importorskip("mlx_lm")

ROOT = Path(__file__).resolve().parent / "fixtures" / "hf"
FLAGS = {"plain": {}, "q": {"quantize": True}}


def variant(name: str, dst: Path, edit) -> Path:
    """The fixture ``name`` with ``edit(weights, config)`` applied (numpy arrays, a dict)."""
    src = ROOT / name
    w = {k: np.array(v) for k, v in mlxq.load_checkpoint(src).items()}
    cfg = json.loads((src / "config.json").read_text())
    edit(w, cfg)
    dst.mkdir(parents=True)
    for f in src.iterdir():
        if f.is_file() and f.suffix != ".safetensors" and f.name not in (
                "config.json", "model.safetensors.index.json"):
            shutil.copy(f, dst / f.name)
    mlxq.save_safetensors(dst / "model.safetensors", w, metadata={"format": "pt"})
    (dst / "config.json").write_text(json.dumps(cfg, indent=2))
    return dst


def assert_mlx_lm_folder(src: Path, tmp_path: Path, flags: str) -> Path:
    convert(src, tmp_path / "mlxq", quiet=True, **FLAGS[flags])
    with contextlib.redirect_stdout(io.StringIO()):
        mlx_lm.convert(str(src), str(tmp_path / "ref"), **FLAGS[flags])
    assert_checkpoints_equal(tmp_path / "mlxq", tmp_path / "ref", check_config=True,
                             check_index=False)
    assert (tmp_path / "mlxq" / "config.json").read_text() == \
        (tmp_path / "ref" / "config.json").read_text()
    return tmp_path / "mlxq"


def _dense_granite(w, cfg):
    # Granite 4.0's dense hybrids (granite-4.0-micro): no experts, the shared MLP only
    for k in [k for k in w if ".block_sparse_moe." in k]:
        del w[k]
    cfg["num_local_experts"] = 0


def _untied(w, cfg):
    cfg["tie_word_embeddings"] = False
    w["lm_head.weight"] = (w["backbone.embeddings.weight"].astype(np.float32) * 0.5).astype(
        w["backbone.embeddings.weight"].dtype)


def _recurrent_gemma_head(w, cfg):
    w["lm_head.weight"] = w["model.embed_tokens.weight"][::-1].copy()


def _jamba_tied(w, cfg):
    cfg["tie_word_embeddings"] = True


@pytest.mark.parametrize("flags", sorted(FLAGS))
@pytest.mark.parametrize("name,edit,has", [
    ("granitemoehybrid", _dense_granite, "model.layers.0.mlp.gate_proj.weight"),
    ("mamba", _untied, "lm_head.weight"),
    ("falcon_mamba", _untied, "lm_head.weight"),
    ("recurrent_gemma", _recurrent_gemma_head, "lm_head.weight"),
    ("jamba", _jamba_tied, "model.embed_tokens.weight"),
], ids=["granitemoehybrid-dense", "mamba-untied", "falcon_mamba-untied",
        "recurrent_gemma-with-lm_head", "jamba-tied"])
def test_a_variant_the_fixtures_miss_gives_mlx_lms_folder(name, edit, has, flags, tmp_path):
    out = assert_mlx_lm_folder(variant(name, tmp_path / "src", edit), tmp_path, flags)
    names = mlxq.load_checkpoint(out)
    assert has in names
    if edit is _jamba_tied:
        assert "lm_head.weight" not in names


def test_jamba_converts_to_transformers_logits_under_transformers_routing(tmp_path,
                                                                          monkeypatch):
    """mlx-lm's Jamba takes the softmax over the top-k router logits (renormalized weights);
    transformers takes the top-k of the softmax over all experts, unnormalized. With
    transformers' routing put into mlx-lm's model, mlxq's converted tensors give
    transformers' own logits — the only difference is the model's, not the conversion's."""
    import mlx.core as mx
    from mlx_lm.models import jamba
    from mlx_lm.utils import load_model

    def transformers_routing(self, x):
        probs = mx.softmax(self.router(x).astype(mx.float32), axis=-1)
        k = self.num_experts_per_tok
        inds = mx.argpartition(-probs, kth=k - 1, axis=-1)[..., :k]
        scores = mx.take_along_axis(probs, inds, axis=-1)
        return (self.switch_mlp(x, inds) * scores[..., None]).sum(axis=-2)

    monkeypatch.setattr(jamba.JambaSparseMoeBlock, "__call__", transformers_routing)
    convert(ROOT / "jamba", tmp_path / "out", dtype="float32", quiet=True)
    model, _ = load_model(tmp_path / "out")
    prompt = [1, 5, 9, 20, 33, 7, 64, 3]
    got = np.array(model(mx.array([prompt]))[0].astype(mx.float32))
    want = np.load(ROOT / "logits" / "jamba.npy").reshape(got.shape)
    assert np.abs(got - want).max() <= 1e-4 * np.abs(want).max()
    assert (got.argmax(-1) == want.argmax(-1)).all()
