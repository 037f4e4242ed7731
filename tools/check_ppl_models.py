"""Checks benchmarks/ppl_models.py's Hugging Face folders against transformers' own reading
of the same GGUF files (``from_pretrained(..., gguf_file=...)``, which dequantizes and
undoes llama.cpp's changes itself): every tensor equal after the bfloat16 cast, and the
same logits on a sentence.

    python tools/check_ppl_models.py [--models ...]  # transformers needs accelerate for GGUF
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "benchmarks"))
from ppl_models import MODELS, model_folder  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", default=",".join(m.name for m in MODELS))
    a = ap.parse_args()
    import torch
    from transformers import AutoModelForCausalLM

    bad = 0
    for src in MODELS:
        if src.name not in a.models.split(","):
            continue
        gguf_path = src.locate()
        if gguf_path is None:
            print(f"{src.name}: not installed; skipped")
            continue
        folder = model_folder(src)
        ours = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()
        theirs = AutoModelForCausalLM.from_pretrained(
            os.path.dirname(gguf_path), gguf_file=os.path.basename(gguf_path),
            dtype=torch.float32).eval()
        sd_o, sd_t = ours.state_dict(), theirs.state_dict()
        worst = 0.0
        for k, v in sd_o.items():
            t = sd_t[k].to(torch.bfloat16).float()
            d = float((v - t).abs().max())
            worst = max(worst, d)
            if d > 0:
                print(f"  {k}: differs by {d:g}")
                bad += 1
        x = torch.tensor([[1, 2, 3, 4, 5, 6, 7, 8]])
        with torch.no_grad():
            for k, v in sd_t.items():  # theirs, rounded to bfloat16 as our folder is
                v.copy_(v.to(torch.bfloat16).float())
            lo = ours(x).logits
            lt = theirs(x).logits
        print(f"{src.name}: {len(sd_o)} tensors, largest difference {worst:g}; logits differ "
              f"by at most {float((lo - lt).abs().max()):.3g}")
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
