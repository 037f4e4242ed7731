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
                    ref_path = logits_dir / f"{fixture.name}.npy"
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
                out[fixture.name] = json.loads(line[-1][7:])
            else:
                out[fixture.name] = {"crash": f"exit {p.returncode}: {p.stderr[-400:]}"}
        except subprocess.TimeoutExpired:
            out[fixture.name] = {"crash": f"timeout after {timeout}s"}
        print(fixture.name, json.dumps(out[fixture.name])[:300], file=sys.stderr, flush=True)
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
    args = ap.parse_args()
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


if __name__ == "__main__":
    sys.exit(main())
