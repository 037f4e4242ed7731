"""Docs that run as written: every ```python and ```sh block of README.md and docs/*.md is
run, page by page in order (tests/docs_runner.py), in a folder holding the example models
the pages name (small stand-ins: transformers-built fixtures, generated AWQ / GPTQ / MXFP4
folders, an importance matrix), the Hub repositories they name served by the stand-in Hub. A ```text block marked ``<!-- output of: COMMAND -->`` must
be what COMMAND prints there, and one marked ``<!-- output -->`` what the block before it
prints, timings aside. The few blocks that cannot run here are listed
in SKIP, each with the reason."""

from __future__ import annotations

import glob
import os
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest

import docs_runner

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PAGES = ["README.md"] + sorted(os.path.relpath(p, ROOT)
                               for p in glob.glob(os.path.join(ROOT, "docs", "*.md")))

#: (page, how the block begins) -> why it is not run
SKIP = {
    ("README.md", "make demo"):
        "installs packages (make deps) and runs this whole suite (make test)",
    ("docs/convert.md", "make demo"):
        "installs packages (make deps, pip install .) into the interpreter running the tests",
    ("docs/convert.md", "hf download"):
        "downloads a real model from the Hugging Face Hub: no network in the tests",
    ("docs/families.md", "python -m pytest"):
        "runs parts of this suite itself, for a <type> the reader fills in",
    ("docs/methods.md", "llama-imatrix"):
        "llama.cpp's own tool, not installed here (the page's Python reads an importance "
        "matrix in its format, written for the tests with the gguf package)",
    ("docs/gguf.md", "pip install"):
        "installs packages into the interpreter running the tests (gguf is installed)",
}
#: (page, how the block begins) -> the modules it needs; skipped, saying so, without them
#: (calibration runs the model through transformers and torch, optional dependencies)
NEEDS = {
    ("docs/methods.md", "mlxq convert ./Llama-3.2-1B ./Llama-3.2-1B-gptq"):
        ("torch", "transformers"),
    ("docs/methods.md", 'import mlxq\n\nmlxq.convert("Llama-3.2-1B", "Llama-3.2-1B-gptq-py"'):
        ("torch", "transformers"),
}
#: page -> the Hub repositories it converts from, served by the stand-in Hub
#: (tests/hub_server.py) as these fixtures
HUB_REPOS = {"docs/hub.md": {"Qwen/Qwen3-0.6B": "qwen3"}}
#: (page, how the block begins) -> the file the block shows (checked equal, not run: a
#: module of the package, with relative imports)
LISTINGS = {
    ("docs/families.md", '"""mlx-lm\'s ``models/qwen2_moe.py``'): "mlxq/models/qwen2_moe.py",
}


def _starts(block: docs_runner.Block, key: tuple[str, str]) -> bool:
    return block.page == key[0] and block.code.lstrip().startswith(key[1])


def page_blocks(page: str) -> list[docs_runner.Block]:
    with open(os.path.join(ROOT, page), encoding="utf-8") as f:
        return docs_runner.blocks(page, f.read())


# ---- the example folders --------------------------------------------------------------------

def _imatrix(path: str, weights: dict) -> None:
    """An importance matrix in llama-imatrix's GGUF layout for the llama stand-in."""
    gguf = pytest.importorskip("gguf")
    w = gguf.GGUFWriter(path, "imatrix")
    w.add_string("general.type", "imatrix")
    rng = np.random.default_rng(0)
    for name, arr in weights.items():
        if name.startswith("model.layers.") and name.endswith("_proj.weight"):
            block, rest = name[len("model.layers."):].split(".", 1)
            gg = _GGUF_NAMES.get(rest[: -len(".weight")])
            if gg is None:
                continue
            cols = arr.shape[-1]
            w.add_tensor(f"blk.{block}.{gg}.weight.in_sum2",
                         rng.uniform(0.5, 2, (1, cols)).astype(np.float32))
            w.add_tensor(f"blk.{block}.{gg}.weight.counts", np.full((1, 1), 4, np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


_GGUF_NAMES = {"self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k",
               "self_attn.v_proj": "attn_v", "self_attn.o_proj": "attn_output",
               "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up", "mlp.down_proj": "ffn_down"}


@pytest.fixture(scope="session")
def examples(tmp_path_factory) -> str:
    """The folders and files the pages name, made once."""
    import mlxq
    from producers import awq_folder, gptq_folder, mxfp4_checkpoint

    d = tmp_path_factory.mktemp("doc-examples")
    fixtures = os.path.join(ROOT, "tests", "fixtures", "hf")
    shutil.copytree(os.path.join(fixtures, "llama"), d / "Llama-3.2-1B")
    shutil.copytree(os.path.join(fixtures, "qwen3"), d / "Qwen3-0.6B")
    awq_folder(d / "Llama-3.2-1B-AWQ")
    gptq_folder(d / "Llama-3.2-1B-GPTQ")
    oss = d / "gpt-oss-20b"
    oss.mkdir()
    blocks, scales = mxfp4_checkpoint(np.random.default_rng(0), (2,), 64, 128)
    mlxq.save_safetensors(oss / "model.safetensors", {
        "model.layers.0.mlp.experts.down_proj_blocks": blocks,
        "model.layers.0.mlp.experts.down_proj_scales": scales})
    (oss / "config.json").write_text('{"model_type": "gpt_oss", "quantization_config": '
                                     '{"quant_method": "mxfp4"}}')
    _imatrix(str(d / "imatrix.gguf"), mlxq.load_checkpoint(d / "Llama-3.2-1B"))
    _gguf_files(d)
    from pydoc_data.topics import topics  # English prose that ships with Python

    (d / "calibration.txt").write_text("\n\n".join(topics[k] for k in sorted(topics)[:40]),
                                       encoding="utf-8")
    return str(d)


def _gguf_files(d) -> None:
    """docs/gguf.md's GGUF files: the llama fixture in llama.cpp's layout (Q4_0, Q8_0, and a
    Q4_K_M mix of a copy whose MLP rows hold whole K-quant super-blocks)."""
    pytest.importorskip("gguf")
    import gguf_producer as gp
    from gguf import GGMLQuantizationType as Q

    src = os.path.join(ROOT, "tests", "fixtures", "hf", "llama")
    gp.hf_to_gguf("llama", d / "model-Q4_0.gguf", gp.everything(Q.Q4_0), src=src)
    gp.hf_to_gguf("llama", d / "model-Q8_0.gguf", gp.everything(Q.Q8_0), src=src)
    wide = d / "llama-wide"
    gp.widen_mlp(src, wide)
    gp.hf_to_gguf("llama", d / "model-Q4_K_M.gguf", gp.q4_k_m, src=wide)
    shutil.rmtree(wide)


@pytest.fixture
def workdir(examples, tmp_path) -> str:
    """A copy of the example folders, with `mlxq` and `python` on PATH."""
    work = tmp_path / "work"
    shutil.copytree(examples, work)
    bin_ = tmp_path / "bin"
    bin_.mkdir()
    (bin_ / "mlxq").write_text(f'#!/bin/sh\nexec "{sys.executable}" -m mlxq "$@"\n')
    (bin_ / "mlxq").chmod(0o755)
    os.symlink(sys.executable, bin_ / "python")
    return str(work)


def _env(workdir: str) -> dict:
    bin_ = os.path.join(os.path.dirname(workdir), "bin")
    env = dict(os.environ, PATH=bin_ + os.pathsep + os.environ["PATH"],
               # torch (calibration) keeps a compile cache in TMPDIR unless told: under
               # pytest's folder
               TORCHINDUCTOR_CACHE_DIR=os.path.join(os.path.dirname(workdir), "torchinductor"))
    # the pages run as a reader runs them: mlxq's own default device (the suite sets
    # MLXQ_DEVICE=cpu for its comparisons with mlx[cpu], see conftest.py)
    env.pop("MLXQ_DEVICE", None)
    return env


# ---- the tests ------------------------------------------------------------------------------

def test_the_skip_and_listing_entries_each_name_one_block():
    everything = [b for p in PAGES for b in page_blocks(p)]
    for key in list(SKIP) + list(LISTINGS) + list(NEEDS):
        found = [b for b in everything if b.lang in docs_runner.LANGS and _starts(b, key)]
        assert len(found) == 1, (key, [b.where for b in found])


def test_pages_use_only_runnable_or_shown_languages():
    """A block is run (python, sh) or shown (text, json, ...): no unlabelled fences, and no
    other spelling of a shell (bash, console) that would escape the runner."""
    for p in PAGES:
        for b in page_blocks(p):
            assert b.lang and b.lang not in ("bash", "shell", "console", "py"), b.where


@pytest.mark.parametrize("page", PAGES)
def test_every_snippet_of_the_page_runs(page, workdir, request):
    if page in HUB_REPOS:  # huggingface_hub pointed at it, here and in subprocesses
        hub = request.getfixturevalue("hub")
        for repo, fixture in HUB_REPOS[page].items():
            hub.add_repo(repo, os.path.join(ROOT, "tests", "fixtures", "hf", fixture))
    blocks = page_blocks(page)
    import importlib.util

    missing = [k for k, mods in NEEDS.items()
               if any(importlib.util.find_spec(m) is None for m in mods)]
    skip = [b.line for b in blocks
            if any(_starts(b, k) for k in list(SKIP) + list(LISTINGS) + missing)]
    r = subprocess.run([sys.executable, docs_runner.__file__, os.path.join(ROOT, page),
                        "--skip", *map(str, skip)], cwd=workdir, env=_env(workdir),
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, (r.stderr[-4000:] or r.stdout[-4000:])


@pytest.mark.parametrize("key", sorted(LISTINGS))
def test_a_listed_module_is_the_packages_own(key):
    block = next(b for b in page_blocks(key[0]) if _starts(b, key))
    import mlxq

    # the package under test's own file (the source tree's, or the installed wheel's)
    where = os.path.dirname(os.path.dirname(os.path.abspath(mlxq.__file__)))
    with open(os.path.join(where, LISTINGS[key]), encoding="utf-8") as f:
        source = f.read()

    def body(text: str) -> str:  # the code after the module docstring
        return text.split('"""', 2)[2].strip()
    assert body(block.code) == body(source)


def _outputs() -> list[tuple[str, str, str, int]]:
    found = []
    for p in PAGES:
        for b in page_blocks(p):
            m = re.search(r"<!-- output of: (.+?) -->\s*$", b.before)
            if m:
                found.append((p, m.group(1), b.code, b.line))
    return found


def test_pages_show_command_outputs():
    assert any(p == "docs/convert.md" for p, *_ in _outputs())
    assert any(docs_runner.shown_outputs(page_blocks(p)) for p in PAGES)


@pytest.mark.parametrize("page,command,shown,line", _outputs(),
                         ids=lambda v: str(v)[:40] if isinstance(v, str) else str(v))
def test_a_shown_output_is_what_the_command_prints(page, command, shown, line, workdir):
    r = subprocess.run(["bash", "-euo", "pipefail", "-c", command], cwd=workdir,
                       env=_env(workdir), capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    assert docs_runner.normalize(r.stdout) == docs_runner.normalize(shown), \
        f"{page}:{line} shows another output than `{command}` prints:\n{r.stdout}"
