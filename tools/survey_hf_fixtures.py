#!/usr/bin/env python3
"""Runs the real ``mlx_lm.convert`` on every fixture of tests/fixtures/hf and records what
happens (tests/fixtures/hf/SURVEY.md is written from its output).

Per fixture and flag set: convert, ``mlx_lm.load`` the result, generate 5 tokens greedily
from a fixed prompt. For the unflagged conversion, mlx-lm's float32 logits on the prompt are
also compared with transformers' (``--logits DIR`` from tools/gen_hf_fixtures.py), which
shows whether mlx-lm reads the fixture's config the way transformers does.

Needs mlx and mlx-lm (no torch)::

    python tools/survey_hf_fixtures.py --logits /tmp/logits --json /tmp/survey.json
    python tools/survey_hf_fixtures.py --render /tmp/survey.json > tests/fixtures/hf/SURVEY.md

Each fixture runs in its own subprocess (an abort inside MLX cannot end the survey);
converted folders go to a temporary directory and are deleted.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import re
import subprocess
import sys
import tempfile
import traceback
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
FIXTURES = REPO / "tests" / "fixtures" / "hf"
PROMPT = [1, 5, 9, 20, 33, 7, 64, 3]

FLAGS: dict[str, list[str]] = {
    "q": ["-q"],
    "q8g32": ["-q", "--q-bits", "8", "--q-group-size", "32"],
    "mxfp4": ["-q", "--q-mode", "mxfp4"],
    "mixed_3_6": ["-q", "--quant-predicate", "mixed_3_6"],
    "fp16": ["--dtype", "float16"],
    "none": [],
}


def _key(fixture: Path) -> str:
    """The fixture's name relative to tests/fixtures/hf (``fp8/qwen3`` for a variant)."""
    try:
        return str(fixture.resolve().relative_to(FIXTURES.resolve()))
    except ValueError:
        return fixture.name


def _short(exc: BaseException) -> str:
    msg = f"{type(exc).__name__}: {exc}".replace("\n", " ")
    return msg[:240]


def _to_f32(model) -> None:
    import mlx.core as mx
    from mlx.utils import tree_map

    model.update(tree_map(lambda a: a.astype(mx.float32)
                          if mx.issubdtype(a.dtype, mx.floating) else a, model.parameters()))


def run_one(fixture: Path, logits_dir: Path | None) -> dict:
    """Surveys one fixture in this process; returns {flagset: outcome}."""
    import mlx.core as mx
    import numpy as np
    from mlx_lm import convert, load
    from mlx_lm.generate import stream_generate
    from mlx_lm.convert import configure_parser

    res: dict = {}
    with tempfile.TemporaryDirectory() as tmp:
        for key, flags in FLAGS.items():
            out = Path(tmp) / key
            args = configure_parser().parse_args(
                ["--hf-path", str(fixture), "--mlx-path", str(out), *flags])
            kw = {k: v for k, v in vars(args).items() if v is not None}
            r: dict = {}
            buf = io.StringIO()
            try:
                with contextlib.redirect_stdout(buf):
                    convert(**kw)
            except BaseException as exc:  # noqa: BLE001 - recorded
                r["convert"] = _short(exc)
                res[key] = r
                continue
            r["convert"] = "ok"
            try:
                cfg = json.loads((out / "config.json").read_text())
                q = cfg.get("quantization")
                if q is not None:
                    n_q = sum(1 for v in q.values() if isinstance(v, dict))
                    r["quantization"] = {k: v for k, v in q.items() if not isinstance(v, dict)}
                    r["per_layer_entries"] = n_q
                model, tok = load(str(out))
                try:
                    toks = [int(t.token) for t in stream_generate(
                        model, tok, PROMPT, max_tokens=5)]
                except RuntimeError as exc:
                    # MLX's CPU gather_mm (unquantized MoE experts) takes float32 only:
                    # a limit of the CPU backend, not of the checkpoint; retry in float32
                    if "only supports float32" not in str(exc):
                        raise
                    _to_f32(model)
                    r["cpu_float32_cast"] = True
                    toks = [int(t.token) for t in stream_generate(
                        model, tok, PROMPT, max_tokens=5)]
                r["generate"] = toks
                if key == "none" and logits_dir is not None:
                    ref_path = logits_dir / f"{_key(fixture)}.npy"
                    if ref_path.exists():
                        ref = np.load(ref_path)
                        _to_f32(model)
                        got = np.array(model(mx.array([PROMPT]))[0].astype(mx.float32))
                        if got.shape != ref.shape:
                            r["logits"] = f"shape {got.shape} vs transformers {ref.shape}"
                        else:
                            err = float(np.max(np.abs(got - ref)))
                            scale = float(np.max(np.abs(ref)))
                            r["logits_rel_err"] = err / max(scale, 1e-30)
                            r["argmax_agree"] = int(np.sum(got.argmax(-1) == ref.argmax(-1)))
            except BaseException as exc:  # noqa: BLE001 - recorded
                r["load_generate"] = _short(exc)
                r["trace"] = traceback.format_exc()[-1500:]
            res[key] = r
    return res


def survey(names: list[str], logits_dir: Path | None, timeout: int) -> dict:
    out = {}
    for name in names:
        fixture = FIXTURES / name if not Path(name).is_dir() else Path(name)
        cmd = [sys.executable, __file__, "--one", str(fixture)]
        if logits_dir is not None:
            cmd += ["--logits", str(logits_dir)]
        try:
            p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                               env={**os.environ, "TOKENIZERS_PARALLELISM": "false"})
            line = [ln for ln in p.stdout.splitlines() if ln.startswith("RESULT ")]
            if p.returncode == 0 and line:
                out[_key(fixture)] = json.loads(line[-1][7:])
            else:
                out[_key(fixture)] = {"crash": f"exit {p.returncode}: {p.stderr[-400:]}"}
        except subprocess.TimeoutExpired:
            out[_key(fixture)] = {"crash": f"timeout after {timeout}s"}
        print(fixture.name, json.dumps(out[_key(fixture)])[:300], file=sys.stderr, flush=True)
    return out


def _fixture_dirs() -> list[str]:
    found = []
    for cfg in sorted(FIXTURES.rglob("config.json")):
        found.append(str(cfg.parent.relative_to(FIXTURES)))
    return found


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("names", nargs="*")
    ap.add_argument("--one")
    ap.add_argument("--logits", type=Path)
    ap.add_argument("--json", type=Path)
    ap.add_argument("--timeout", type=int, default=600)
    ap.add_argument("--render", type=Path, help="print SURVEY.md from a --json file")
    args = ap.parse_args()
    if args.render:
        sys.stdout.write(render(json.loads(args.render.read_text())))
        return 0
    if args.one:
        res = run_one(Path(args.one), args.logits)
        print("RESULT " + json.dumps(res))
        return 0
    names = args.names or _fixture_dirs()
    res = survey(names, args.logits, args.timeout)
    if args.json:
        old = json.loads(args.json.read_text()) if args.json.exists() else {}
        old.update(res)
        args.json.write_text(json.dumps(old, indent=1, sort_keys=True))
    return 0



# --- SURVEY.md ------------------------------------------------------------------------------

_SANITIZE_FEATURES = [
    (r"inv_freq", "drops rotary inv_freq buffers"),
    (r"weight_scale_inv", "dequantizes FP8 block weights (weight_scale_inv)"),
    (r"weight_packed", "unpacks compressed-tensors weight_packed/weight_scale into MLX affine"),
    (r"switch_mlp", "stacks per-expert weights into switch_mlp"),
    (r"gate_up", "splits/handles fused gate_up_proj"),
    (r"lm_head", "touches lm_head (tied embeddings / renames)"),
    (r"num_nextn_predict_layers|mtp", "drops multi-token-prediction layers"),
    (r"conv1d|conv\.weight", "re-lays conv1d weights"),
    (r"moveaxis|swapaxes", "moves/swaps axes"),
    (r"transpose", "transposes weights"),
    (r"e_score_correction_bias", "handles e_score_correction_bias"),
    (r"vision|visual|language_model", "strips vision/multimodal prefixes"),
]


# What the failures and logit differences mean, found by reading mlx-lm's modules against the
# fixtures (kept here so that a re-render keeps them; re-check after an mlx-lm upgrade).
NOTES: dict[str, str] = {
    "bailing_hybrid": "mlx-lm cannot: transformers 5.24's BailingHybrid (KDA linear attention "
        "`attention.A_log/b_proj/f_proj` + MLA) is not the architecture mlx-lm's bailing_hybrid "
        "implements (`g_proj`/`g_norm`/`dense` linear attention).",
    "bitnet": "mlx-lm cannot: it loads only the packed ternary release (a `weight_scale` per "
        "Linear); transformers saves BitNet's unpacked bf16 weights.",
    "gpt2": "mlx-lm cannot: its sanitize expects openai-community/gpt2's base-model names "
        "(`h.0.attn.c_attn.weight`, `wte.weight`); transformers saves GPT2LMHeadModel with the "
        "`transformer.` prefix, which mlx-lm turns into `model.transformer.h...`.",
    "gpt_oss": "mlx-lm cannot: transformers saves the Hub bf16 layout (`experts.gate_up_proj` "
        "[E, hidden, 2*inter] interleaved, `experts.down_proj`, `*_bias`); mlx-lm's sanitize "
        "only rewrites the MXFP4 `_blocks`/`_scales` layout and leaves `experts.gate_proj` "
        "without `.weight`.",
    "kimi_linear": "mlx-lm cannot: it expects the dense first layer under `mlp.*`; "
        "transformers 5.24 names it `block_sparse_moe.*`.",
    "llama4_text": "mlx-lm cannot: its llama4_text module is a dense model with an `output` "
        "head; transformers' Llama-4 text MoE (`feed_forward.experts.gate_up_proj`, `router`, "
        "`lm_head`) is rejected.",
    "longcat_flash": "mlx-lm cannot: transformers saves weights for the zero (identity) "
        "experts (`mlp.experts.4/5`), which mlx-lm's module has no parameters for.",
    "minimax": "mlx-lm cannot: type `minimax` is MiniMax-Text-01 (lightning attention) in "
        "transformers, but mlx-lm's `minimax` module is MiniMax-M2's architecture (Hub type "
        "`minimax_m2` is remapped to it).",
    "nanochat": "mlx-lm cannot: its nanochat module reads karpathy/nanochat's layout "
        "(`transformer.h.N.attn.c_q`); transformers' NanoChat writes `model.layers.N.self_attn"
        ".q_proj` and `mlp.fc1`.",
    "olmo": "mlx-lm cannot: its olmo module is for the original (non-transformers) OLMo format "
        "and exits at import without the `ai2-olmo` package.",
    "gear": "mlx-lm cannot: transformers 5.25's AutoTokenizer validates the config of a model "
        "type it does not know and rejects Gear's `conv_mixer` layer_types, before any weight.",
    "fp8/qwen3": "mlx-lm cannot: its qwen3 module does not dequantize FP8 (`weight_scale_inv` "
        "are 'parameters not in model'); deepseek_v3 and minimax (M2) do, in sanitize.",
    "compressed_tensors/deepseek_v3": "mlx-lm's deepseek_v3 sanitize turns `weight_packed` "
        "into MLX affine 4-bit g32 (scale = weight_scale, bias = -8*scale) and load keeps the "
        "checkpoint's quantization: every flag set's output says affine 4b g32, -q only adds "
        "per-layer entries for the layers it quantizes itself.",
    "mamba2": "logits differ: mlx-lm's gated RMSNorm normalizes over the whole inner width, "
        "transformers per group of inner/n_groups (the fixture has n_groups=2; "
        "Mamba-Codestral has 8). Conversion is unaffected.",
    "ernie4_5_moe": "logits differ: mlx-lm selects experts without the "
        "`moe_statics.e_score_correction_bias` that transformers adds before top-k.",
    "minicpm3": "logits differ by about 2x = hidden_size/dim_model_base, not exactly "
        "constant; argmax agrees everywhere. Not investigated further.",
    "jamba": "logits differ (6/8 argmax); not investigated.",
}
MIXED_NOTE = ("`mixed_3_6` fails with 'Model does not have expected keys for mixed quant.' "
              "for every model without `v_proj` and `down_proj` layers: mlx-lm's mixed "
              "predicates look for those names.")


def _method_src(cls, name: str) -> str | None:
    import inspect

    owner = next((c for c in cls.__mro__ if name in c.__dict__), None)
    if owner is None or owner.__module__.startswith("mlx."):
        return None
    attr = owner.__dict__[name]
    fn = attr.fget if isinstance(attr, property) else attr
    try:
        return inspect.getsource(fn)
    except (OSError, TypeError):
        return None


def module_facts(model_type: str) -> dict:
    """mlx-lm's module for a Hub model_type and one-line summaries of its hooks."""
    import importlib

    from mlx_lm.utils import MODEL_REMAPPING

    mod_name = MODEL_REMAPPING.get(model_type, model_type)
    facts: dict = {"module": f"mlx_lm.models.{mod_name}"}
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            mod = importlib.import_module(f"mlx_lm.models.{mod_name}")
    except BaseException as exc:  # noqa: BLE001 - e.g. olmo exits when ai2-olmo is missing
        facts["import_error"] = _short(exc)
        return facts
    cls = mod.Model
    src = _method_src(cls, "sanitize")
    if src is not None:
        feats = [label for pat, label in _SANITIZE_FEATURES if re.search(pat, src)]
        facts["sanitize"] = "; ".join(feats) if feats else "renames/filters keys"
    for hook in ("quant_predicate", "cast_predicate"):
        hs = _method_src(cls, hook)
        if hs is not None:
            body = [ln.strip() for ln in hs.splitlines()[1:]
                    if ln.strip() and not ln.strip().startswith(("def ", "return predicate",
                                                                  "#", '"""'))]
            facts[hook] = " ".join(body)[:200]
    return facts


def _cell(r: dict) -> str:
    if r.get("convert") != "ok":
        return "convert fails"
    if "load_generate" in r:
        return "load/generate fails"
    out = "ok"
    q = r.get("quantization")
    if q:
        out += f" ({q.get('mode', 'affine')} {q.get('bits')}b g{q.get('group_size')}"
        out += f", {r['per_layer_entries']} per-layer)" if r.get("per_layer_entries") else ")"
    if r.get("cpu_float32_cast"):
        out += " f32*"
    return out


def render(results: dict) -> str:
    lines = [
        "# mlx-lm 0.32 on the transformers-built fixtures",
        "",
        "Written by `tools/survey_hf_fixtures.py --render` from a run of the real",
        "`mlx_lm.convert` (mlx-lm " + _version("mlx_lm") + ", mlx " + _version("mlx")
        + ") over every folder of tests/fixtures/hf. Per flag set: convert, `mlx_lm.load` the",
        "output, generate 5 tokens greedily from a fixed prompt.",
        "",
        "Flag sets: **q** `-q`; **q8g32** `-q --q-bits 8 --q-group-size 32`; **mxfp4**",
        "`-q --q-mode mxfp4`; **mixed** `-q --quant-predicate mixed_3_6`; **fp16**",
        "`--dtype float16`; **none** no flags.",
        "",
        "A cell says `ok` when conversion, load and 5-token generation all worked, with the",
        "top-level `quantization` of the output config; `f32*` means the unquantized MoE model",
        "had to be cast to float32 before generating, because MLX's CPU `gather_mm` only takes",
        "float32 (a limit of the CPU backend, not of mlx-lm's conversion). **logits** compares",
        "mlx-lm's float32 logits on the prompt (unflagged conversion) with transformers' for the",
        "same bf16 weights: max |diff| / max |logit| and how many of the 8 positions agree on",
        "the argmax. A large value means mlx-lm computes a different function than",
        "transformers for that config (noted below), not that conversion is wrong.",
        "",
        "| fixture | mlx-lm module | q | q8g32 | mxfp4 | mixed | fp16 | none | logits |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    failures: dict[str, set[str]] = {}
    facts_by_module: dict[str, dict] = {}
    for name in sorted(results):
        r = results[name]
        cfg = json.loads((FIXTURES / name / "config.json").read_text())
        facts = module_facts(cfg["model_type"])
        facts_by_module.setdefault(facts["module"], facts)
        if "crash" in r:
            lines.append(f"| {name} | {facts['module'][14:]} | crash: {r['crash'][:80]} "
                         "| | | | | | |")
            continue
        cells = [_cell(r.get(k, {})) for k in FLAGS]
        for k in FLAGS:
            x = r.get(k, {})
            if x.get("convert") != "ok":
                failures.setdefault(name, set()).add(f"convert ({k}): {x.get('convert')}")
            elif "load_generate" in x:
                failures.setdefault(name, set()).add(f"load ({k}): {x['load_generate']}")
        n = r.get("none", {})
        lg = (f"{n['logits_rel_err']:.1e}, {n['argmax_agree']}/8" if "logits_rel_err" in n
              else n.get("logits", "-"))
        lines.append(f"| {name} | {facts['module'][14:]} | " + " | ".join(cells)
                     + f" | {lg} |")
    lines += ["", "## Findings", "", f"- {MIXED_NOTE}"]
    lines += [f"- **{k}**: {v}" for k, v in sorted(NOTES.items()) if k in results]
    lines += ["", "## Failure messages", ""]
    for name in sorted(failures):
        msgs = sorted(failures[name])
        # identical messages for several flag sets are listed once
        uniq: dict[str, list[str]] = {}
        for m in msgs:
            flag, text = m.split(": ", 1)
            uniq.setdefault(text, []).append(flag)
        for text, flags in uniq.items():
            lines.append(f"- **{name}** {', '.join(flags)}: `{text[:300]}`")
    lines += ["", "## mlx-lm modules: hooks the converter must reproduce", "",
              "Auto-extracted from the installed mlx-lm: `sanitize` as the kinds of rewriting",
              "its source contains, `quant_predicate`/`cast_predicate` as their condensed body.",
              ""]
    for mod in sorted(facts_by_module):
        f = facts_by_module[mod]
        parts = [f"- `{mod}`"]
        if "import_error" in f:
            parts.append(f"import fails: `{f['import_error']}`")
        for hook in ("sanitize", "quant_predicate", "cast_predicate"):
            if hook in f:
                parts.append(f"{hook}: `{f[hook]}`" if hook != "sanitize"
                             else f"sanitize: {f[hook]}")
        if len(parts) == 1:
            parts.append("no sanitize/quant_predicate/cast_predicate")
        lines.append(" — ".join(parts))
    return "\n".join(lines) + "\n"


def _version(pkg: str) -> str:
    from importlib.metadata import version

    try:
        return version(pkg)
    except Exception:  # noqa: BLE001
        return "?"


if __name__ == "__main__":
    sys.exit(main())
