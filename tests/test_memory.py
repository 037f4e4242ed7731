"""Memory stays flat in model size for the models that need it most: a DeepSeek-V3-shaped
checkpoint (MLA, routed and shared experts) whose stacked expert tensors are each larger than
the address space the converter is allowed, in bf16 and as an FP8 release, converts; the
peak RSS stays within two of the largest source tensors plus 200 MB."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

import mlxq
from mlxq.synthetic import make_checkpoint

CHILD = textwrap.dedent("""
    import resource, sys, json
    limit = int(sys.argv[3])
    from mlxq.conversion import convert
    import mlxq.models  # every family imported before the limit: the interpreter's share
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    convert(sys.argv[1], sys.argv[2], quiet=True, **json.loads(sys.argv[4]))
    hwm = [l for l in open("/proc/self/status") if l.startswith("VmHWM")][0].split()[1]
    print(json.dumps({"hwm_kib": int(hwm)}))
""")

LIMIT = 300 << 20  # above the interpreter's own ~170 MB of address space, below one stacked tensor
HIDDEN, MOE, EXPERTS, VOCAB = 1024, 1024, 160, 8192


@pytest.fixture(scope="module")
def deepseek(tmp_path_factory):
    root = tmp_path_factory.mktemp("deepseek")
    kw = dict(family="deepseek_v3", layers=2, hidden=HIDDEN, intermediate=MOE, vocab=VOCAB,
              experts=EXPERTS, heads=8, shard_size=200 << 20)
    return {"bf16": make_checkpoint(root / "bf16", **kw),
            "fp8": make_checkpoint(root / "fp8", fp8=True, **kw)}


def run(src, dst, tmp_path, **flags):
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    # glibc reserves 64 MiB of address space per thread arena: an address-space limit
    # counts reservations, not memory, so share one arena as one would under ulimit -v
    env = dict(os.environ, MLXQ_NUM_THREADS="2", MALLOC_ARENA_MAX="1")
    r = subprocess.run([sys.executable, str(script), str(src), str(dst), str(LIMIT),
                        json.dumps(flags)], capture_output=True, text=True, env=env)
    assert r.returncode == 0, r.stderr[-3000:]
    return json.loads(r.stdout.strip().splitlines()[-1])["hwm_kib"] * 1024


@pytest.mark.parametrize("kind,flags", [("bf16", {"quantize": True}),
                                        ("fp8", {"quantize": True}),
                                        ("fp8", {"dtype": "bfloat16"})],
                         ids=["bf16-q", "fp8-q", "fp8-dequantized"])
def test_a_deepseek_v3_larger_than_its_address_space_converts(deepseek, tmp_path, kind, flags):
    src = deepseek[kind]
    stacked_bf16 = EXPERTS * MOE * HIDDEN * 2
    assert stacked_bf16 > LIMIT  # one output tensor alone would not fit, were it whole
    largest_source = VOCAB * HIDDEN * 2
    hwm = run(src, tmp_path / "out", tmp_path, **flags)
    assert hwm < 2 * largest_source + (200 << 20), hwm
    w = mlxq.load_checkpoint(tmp_path / "out")
    stacked = w["model.layers.1.mlp.switch_mlp.down_proj.weight"]
    assert stacked.shape[0] == EXPERTS
    assert stacked.nbytes * (4 if "quantize" in flags else 1) >= stacked_bf16 // 2
