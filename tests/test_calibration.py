"""Calibration and GPTQ (mlxq.calibration, ``q_method="gptq"``, ``--calibrate``).

- GPTQ in C against a plain numpy GPTQ written here from the paper's algorithm (column by
  column, the upper Cholesky factor of the damped inverse Hessian, error spread over the
  later columns), with MLX's group parameters and dequantization spelled out in numpy;
- the statistics of the layer-by-layer forward against a plain transformers forward of the
  whole model with hooks on every nn.Linear (needs torch: skipped cleanly without it);
- the arguments of convert() and the command line, and typed errors for bad input.
"""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
import tempfile
import weakref
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest

import mlxq
from mlxq.calibration import gptq_quantize, load_statistics
from mlxq.errors import (
    FormatError,
    InvalidArgumentError,
    MlxqIOError,
    OutOfRangeError,
    RankMismatchError,
    ShapeMismatchError,
    UnknownEnumValueError,
    UnsupportedDtypeError,
)

ROOT = Path(__file__).resolve().parent / "fixtures" / "hf"
LLAMA = ROOT / "llama"
GEMMA = ROOT / "gemma3_text"
bfloat16 = mlxq.bfloat16


# torch keeps a compile cache in TMPDIR: under pytest's folders instead (conftest.py)
pytestmark = pytest.mark.usefixtures("torch_cache_in_pytests_folders")


# ---- a numpy GPTQ from the paper ---------------------------------------------------------

def _rT(v, dt):
    return np.asarray(v, np.float32).astype(dt).astype(np.float64)


def _mlx_params(v, bits):
    """MLX's affine scale and bias (mlx/backend/cpu/quantized.cpp's quantize): the larger-
    magnitude edge is the bias, the scale (max - min) / (2^bits - 1) re-derived from it."""
    v = v.astype(np.float32)
    nb = np.float32(2 ** bits - 1)
    mn, mx = v.min(-1), v.max(-1)
    mask = np.abs(mn) > np.abs(mx)
    scale = np.maximum((mx - mn) / nb, np.float32(1e-7)).astype(np.float32)
    scale = np.where(mask, scale, -scale)
    edge = np.where(mask, mn, mx)
    q0 = np.rint(edge / scale)
    scale = np.where(q0 != 0, edge / np.where(q0 != 0, q0, 1), scale).astype(np.float32)
    bias = np.where(q0 != 0, edge, 0).astype(np.float32)
    return scale, bias


def _nearest(x, s, b, nb, dt):
    """The code whose MLX dequantization T(T(q*s)+b) is nearest to x."""
    deq = lambda q: _rT(_rT(q * s, dt) + b, dt)  # noqa: E731
    q = np.clip(np.rint(((x - b) / s).astype(np.float32)), 0, nb)
    d = deq(q)
    for qq in (np.clip(q - 1, 0, nb), np.clip(q + 1, 0, nb)):
        dd = deq(qq)
        m = np.abs(dd - x) < np.abs(d - x)
        q, d = np.where(m, qq, q), np.where(m, dd, d)
    return q, d


def ref_gptq(w, h, gs, bits, damp=0.01, act_order=False):
    """Codes, scales and biases of GPTQ (Frantar et al. 2022, Algorithm 1, without the lazy
    batches), groups in MLX's plain layout."""
    dt = w.dtype
    W = w.astype(np.float64).copy()
    H = h.astype(np.float64).copy()
    R, C = W.shape
    nb = 2 ** bits - 1
    dead = np.diag(H) == 0
    H[dead, dead] = 1
    W[:, dead] = 0
    perm = np.argsort(-np.diag(H), kind="stable") if act_order else np.arange(C)
    S = np.zeros((R, C // gs))
    B = np.zeros_like(S)
    if act_order:  # static groups, from the original weights
        for g in range(C // gs):
            s, b = _mlx_params(W[:, g * gs:(g + 1) * gs], bits)
            S[:, g], B[:, g] = _rT(s, dt), _rT(b, dt)
    H = H[perm][:, perm]
    H += damp * np.mean(np.diag(H)) * np.eye(C)
    U = np.linalg.cholesky(np.linalg.inv(H)).T
    Wp = W[:, perm].copy()
    Q = np.zeros((R, C))
    for i in range(C):
        c = perm[i]
        g = c // gs
        if not act_order and c % gs == 0:
            s, b = _mlx_params(Wp[:, i:i + gs], bits)
            S[:, g], B[:, g] = _rT(s, dt), _rT(b, dt)
        q, d = _nearest(Wp[:, i], S[:, g], B[:, g], nb, dt)
        Q[:, c] = q
        err = (Wp[:, i] - d) / U[i, i]
        Wp[:, i + 1:] -= np.outer(err, U[i, i + 1:])
    return Q, S, B


def unpack(wq, bits, cols):
    b = np.unpackbits(wq.view(np.uint8), axis=-1, bitorder="little")
    b = b.reshape(wq.shape[0], cols, bits)
    return (b * (1 << np.arange(bits))).sum(-1)


def problem(seed, rows=24, cols=256, dt=np.float32):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((512, cols)) * np.exp(rng.standard_normal(cols))
    x[:, 5] = 0  # a dead input
    h = (x.T @ x).astype(np.float32)
    return rng.standard_normal((rows, cols)).astype(dt), h


@pytest.mark.parametrize("dt", [np.float32, bfloat16, np.float16], ids=["f32", "bf16", "f16"])
@pytest.mark.parametrize("act_order", [False, True])
@pytest.mark.parametrize("bits,gs", [(3, 32), (4, 64), (2, 128)])
def test_gptq_matches_the_papers_algorithm(dt, act_order, bits, gs):
    w, h = problem(bits * 10 + gs, dt=dt)
    Q, S, B = ref_gptq(w, h, gs, bits, act_order=act_order)
    wq, s, b = gptq_quantize(w, h, gs, bits, act_order=act_order)
    assert wq.dtype == np.uint32 and s.dtype == w.dtype and b.dtype == w.dtype
    q = unpack(wq, bits, w.shape[1])
    # the factorisations differ (LAPACK's inverse here, a triangular inverse in C): a code
    # may flip where a value sits on a rounding boundary, nowhere else
    assert (q == Q).mean() > 0.995
    assert np.mean(s.astype(np.float64) == S) > 0.99
    hd = h.astype(np.float64)
    ref_deq = _rT(_rT(Q * np.repeat(S, gs, 1), dt) + np.repeat(B, gs, 1), dt)
    deq = mlxq.dequantize(wq, s, b, gs, bits).astype(np.float64)
    wd = w.astype(np.float64)
    wd[:, 5] = 0
    out_err = lambda d: float(np.einsum("ij,jk,ik->", wd - d, hd, wd - d))  # noqa: E731
    assert out_err(deq) == pytest.approx(out_err(ref_deq), rel=1e-3)


def test_gptq_lowers_the_output_error_below_mlxs():
    w, h = problem(7)
    hd = h.astype(np.float64)
    err = lambda d: float(np.einsum("ij,jk,ik->", w - d, hd, w - d))  # noqa: E731
    for bits in (2, 3, 4):
        rtn = mlxq.dequantize(*mlxq.quantize(w, 64, bits), 64, bits)
        g = mlxq.dequantize(*gptq_quantize(w, h, 64, bits), 64, bits)
        assert err(g) < (0.97 if bits == 2 else 0.9) * err(rtn)


def test_gptq_is_the_same_for_any_thread_count_and_row_split():
    w, h = problem(3, rows=70)
    a = gptq_quantize(w, h, 32, 3)
    old = mlxq.get_num_threads()
    try:
        mlxq.set_num_threads(1)
        b = gptq_quantize(w, h, 32, 3)
    finally:
        mlxq.set_num_threads(old)
    c = [gptq_quantize(w[r0:r0 + 7], h, 32, 3) for r0 in range(0, 70, 7)]
    for i in range(3):
        assert np.array_equal(a[i], b[i])
        assert np.array_equal(a[i], np.concatenate([x[i] for x in c]))


def test_gptq_refuses_bad_input_by_name():
    w, h = problem(1, rows=4, cols=64)
    with pytest.raises(ShapeMismatchError, match="hessian must have shape"):
        gptq_quantize(w, h[:32, :32], 32, 4)
    bad = h.copy()
    bad[0, 1] += 1
    with pytest.raises(OutOfRangeError, match="not symmetric"):
        gptq_quantize(w, bad, 32, 4)
    bad = h.copy()
    bad[3, 3] = np.nan
    with pytest.raises(OutOfRangeError, match="finite"):
        gptq_quantize(w, bad, 32, 4)
    bad = h.copy()
    bad[2, 2] = -1
    with pytest.raises(OutOfRangeError, match="negative"):
        gptq_quantize(w, bad, 32, 4)
    with pytest.raises(UnsupportedDtypeError, match="hessian"):
        gptq_quantize(w, h.astype(np.int32), 32, 4)
    with pytest.raises(OutOfRangeError, match="damp"):
        gptq_quantize(w, h, 32, 4, damp=0)
    with pytest.raises(RankMismatchError, match="2-D"):
        gptq_quantize(w[None], h, 32, 4)
    with pytest.raises(OutOfRangeError):
        gptq_quantize(w, h, 32, 7)
    # not positive definite whatever the dampening: an indefinite "Hessian"
    ind = np.diag(np.ones(64, np.float32))
    ind[0, 1] = ind[1, 0] = 50
    with pytest.raises(OutOfRangeError, match="positive definite"):
        gptq_quantize(w, ind, 32, 4)


# ---- statistics of the layer-by-layer forward ------------------------------------------

TEXT = ("The quick brown fox jumps over the lazy dog. " * 3 +
        "Pack my box with five dozen liquor jugs; how vexingly quick daft zebras jump! ") * 4


def _forward_linear_inputs(folder: Path, text: str, seq_len: int, max_tokens: int,
                           seen: Callable[[str, Any], None]) -> None:
    """One ordinary transformers forward of the whole model (float32, no layer-by-layer
    machinery) over ``text`` cut into sequences of ``seq_len``: ``seen(name, x)`` with each
    nn.Linear's input, sequence by sequence."""
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    model = transformers.AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)
    tok = transformers.AutoTokenizer.from_pretrained(folder)
    ids = tok(text).input_ids[:max_tokens]
    seqs = [ids[i:i + seq_len] for i in range(0, len(ids), seq_len)]
    seqs = [s for s in seqs if len(s) >= 2]
    hooks = [m.register_forward_pre_hook(lambda mod, inp, n=n: seen(n, inp[0].detach()))
             for n, m in model.named_modules() if isinstance(m, torch.nn.Linear)]
    with torch.no_grad():
        for s in seqs:
            model(torch.tensor([s]))
    for hk in hooks:
        hk.remove()


def plain_forward_stats(folder: Path, text: str, seq_len: int, max_tokens: int):
    """Per nn.Linear: the sum of squares per input column and X^T X, from one ordinary
    transformers forward of the whole model."""
    torch = pytest.importorskip("torch")
    xs: dict[str, list] = {}
    _forward_linear_inputs(folder, text, seq_len, max_tokens, lambda n, x: xs.setdefault(
        n, []).append(x.reshape(-1, x.shape[-1]).double()))
    out = {}
    for n, parts in xs.items():
        x = torch.cat(parts).numpy()
        out[n] = ((x * x).sum(0), x.shape[0], x.T @ x)
    return out


def torch_hessians(folder: Path, text: str, seq_len: int, max_tokens: int) -> dict:
    """Per nn.Linear: X^T X as the statistics define it, from one ordinary transformers
    forward of the whole model: per sequence the float32 product of the layer's inputs,
    summed over sequences in float64, stored in float32 (an in-memory computation, with
    torch only, to hold the spilled bytes against)."""
    sums: dict = {}

    def add(name, x):
        x = x.reshape(-1, x.shape[-1]).float()
        g = (x.T @ x).double()
        sums[name] = sums[name] + g if name in sums else g

    _forward_linear_inputs(folder, text, seq_len, max_tokens, add)
    return {n: h.float().numpy() for n, h in sums.items()}


@pytest.mark.parametrize("folder", [LLAMA, GEMMA], ids=["llama", "gemma3_text"])
def test_statistics_equal_a_plain_forward(folder):
    ref = plain_forward_stats(folder, TEXT, seq_len=16, max_tokens=40)
    from mlxq.calibration import collect_statistics

    stats, report = collect_statistics(folder, TEXT, seq_len=16, max_tokens=40)
    assert report.tokens == 40 and report.tokens_per_second > 0
    for name, (s2, n, h) in ref.items():
        got = stats[name]
        assert got.count == n, name
        np.testing.assert_allclose(got.in_sum2, s2, rtol=2e-4, atol=1e-6, err_msg=name)
        np.testing.assert_allclose(stats.hessian(name), h, rtol=2e-3,
                                   atol=2e-4 * np.abs(h).max(), err_msg=name)
    # q/k/v see one input: one Hessian between them
    assert stats["model.layers.0.self_attn.q_proj"].hessian_key == \
        stats["model.layers.0.self_attn.k_proj"].hessian_key


def test_statistics_file_round_trip_and_malformed(tmp_path):
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    from mlxq.calibration import collect_statistics, save_statistics

    ref = torch_hessians(LLAMA, TEXT, seq_len=16, max_tokens=32)
    stats, _ = collect_statistics(LLAMA, TEXT, seq_len=16, max_tokens=32, hessian=True)
    # save_statistics streams: each Hessian it reads is gone before it reads the next
    loaded: list = []

    def tracked(load):
        def read():
            gc.collect()
            assert all(r() is None for r in loaded), "two Hessians in memory at once"
            a = load()
            loaded.append(weakref.ref(a))
            return a
        return read

    stats._hessians = {k: tracked(v) for k, v in stats._hessians.items()}
    p = tmp_path / "s.safetensors"
    save_statistics(stats, p)
    assert len(loaded) == len(stats.hessian_keys())
    back = load_statistics(p)
    # loaded on demand, one at a time, as the conversion asks for them
    assert all(callable(v) for v in back._hessians.values())
    assert set(back) == set(stats)
    for k in stats:
        np.testing.assert_array_equal(back[k].in_sum2, stats[k].in_sum2)
        assert back[k].count == stats[k].count
        if stats[k].hessian_key is not None:
            np.testing.assert_array_equal(back.hessian(k), stats.hessian(k))
            assert back.hessian(k).tobytes() == ref[k].tobytes(), k
    stats.close()
    other = tmp_path / "o.safetensors"
    mlxq.save_safetensors(other, {"a": np.zeros(3, np.float32)})
    with pytest.raises(FormatError, match="not an mlxq calibration"):
        load_statistics(other)
    bad = tmp_path / "b.safetensors"
    mlxq.save_safetensors(bad, {"x.in_sum2": -np.ones(4), "x.count": np.array([3], np.int64)},
                          metadata={"format": "mlxq-calibration", "hessians": "{}"})
    with pytest.raises(FormatError, match="malformed"):
        load_statistics(bad)


# ---- each layer's Hessians spilled to disk as the layer finishes --------------------------

@pytest.fixture
def temp_folder(tmp_path, monkeypatch):
    """The temporary folder (``tempfile``'s, TMPDIR's) of this test alone: what is left in
    it is what the test's calibration left."""
    d = tmp_path / "temp"
    d.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(d))
    return d


@pytest.mark.parametrize("folder", [LLAMA, GEMMA], ids=["llama", "gemma3_text"])
def test_spilled_hessians_are_the_bytes_of_an_in_memory_sum(folder, temp_folder):
    ref = torch_hessians(folder, TEXT, seq_len=16, max_tokens=40)
    from mlxq.calibration import collect_statistics

    stats, _ = collect_statistics(folder, TEXT, seq_len=16, max_tokens=40)
    (spill,) = os.listdir(temp_folder)
    assert spill.startswith("mlxq-hessians-")
    # a file per decoder layer and one for the head; in memory, loaders only
    n_layers = json.loads((folder / "config.json").read_text())["num_hidden_layers"]
    assert len(os.listdir(temp_folder / spill)) == n_layers + 1
    assert stats.hessian_keys() and all(callable(v) for v in stats._hessians.values())
    for name, h in ref.items():
        got = stats.hessian(name)
        assert got.dtype == np.float32 and got.tobytes() == h.tobytes(), name
    with stats:
        pass
    assert os.listdir(temp_folder) == []
    with pytest.raises(InvalidArgumentError, match="removed with its statistics"):
        stats.hessian("model.layers.0.mlp.down_proj")


def test_the_spill_folder_goes_with_the_statistics(temp_folder):
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    from mlxq.calibration import collect_statistics

    stats, _ = collect_statistics(LLAMA, TEXT, seq_len=16, max_tokens=32)
    assert os.listdir(temp_folder)
    del stats
    gc.collect()
    assert os.listdir(temp_folder) == []
    # without Hessians nothing is written
    stats, _ = collect_statistics(LLAMA, TEXT, seq_len=16, max_tokens=32, hessian=False)
    assert os.listdir(temp_folder) == [] and stats.hessian_keys() == []
    assert stats.hessian("model.layers.0.mlp.down_proj") is None


def test_no_earlier_layers_hessians_stay_in_memory(temp_folder, monkeypatch):
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    from mlxq.calibration import collect, collect_statistics

    # weak references to every accumulator and every Hessian array (the float64 sums, the
    # float32 copies written out): after each layer, none may be alive
    accs: list = []
    arrays: list = []
    init, finish, put = (collect._Accumulator.__init__, collect._Accumulator.finish,
                         collect.SafetensorsWriter.put)

    def counting_init(self, *a):
        init(self, *a)
        accs.append(weakref.ref(self))

    def counting_finish(self, *a):
        arrays.extend(weakref.ref(h) for h in self.h.values())
        finish(self, *a)
        assert self.h == {} and self.seen == {}

    def counting_put(self, name, array):
        arrays.append(weakref.ref(array))
        put(self, name, array)

    monkeypatch.setattr(collect._Accumulator, "__init__", counting_init)
    monkeypatch.setattr(collect._Accumulator, "finish", counting_finish)
    monkeypatch.setattr(collect.SafetensorsWriter, "put", counting_put)
    after: list = []

    def progress(line):
        gc.collect()
        after.append((line, sum(r() is not None for r in accs),
                      sum(r() is not None for r in arrays), len(arrays)))

    with collect_statistics(LLAMA, TEXT, seq_len=16, max_tokens=40, progress=progress)[0]:
        pass
    layers = [a for a in after if ": layer " in a[0]]
    assert [a[0] for a in layers] == ["calibration: layer 1/2", "calibration: layer 2/2"]
    # layer 0: q/k/v share one input, o, gate/up share one, down: 4 sums, 4 copies
    assert layers[0][3] == 8 and layers[1][3] == 16
    assert all(live_accs == 0 and live_arrays == 0 for _, live_accs, live_arrays, _ in layers)
    assert os.listdir(temp_folder) == []


def test_nothing_is_left_after_an_interruption(temp_folder):
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    import signal

    from mlxq._interrupt import deferred
    from mlxq.calibration import collect_statistics

    def stop(line):
        if line.endswith("layer 1/2"):
            assert os.listdir(temp_folder)  # layer 0's Hessians are on disk
            raise KeyboardInterrupt

    # removed on the way out, not when the traceback (which the caller holds) goes
    with pytest.raises(KeyboardInterrupt) as caught:
        collect_statistics(LLAMA, TEXT, seq_len=16, max_tokens=32, progress=stop)
    assert os.listdir(temp_folder) == [] and caught.tb is not None
    # the command line defers Ctrl-C to safe points: calibration has one after each layer
    lines = []

    def ctrl_c(line):
        lines.append(line)
        if line.endswith("layer 1/2"):
            os.kill(os.getpid(), signal.SIGINT)

    with deferred(), pytest.raises(KeyboardInterrupt) as caught:
        collect_statistics(LLAMA, TEXT, seq_len=16, max_tokens=32, progress=ctrl_c)
    assert lines[-1].endswith("layer 1/2")
    assert os.listdir(temp_folder) == []


def test_a_full_disk_is_a_typed_error_naming_the_folder(tmp_path):
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    spill = tmp_path / "spill"
    spill.mkdir()
    # the file size limit makes write() fail (EFBIG) as a full disk does (ENOSPC): in a
    # process of its own, torch imported first
    code = f"""
import resource, signal, sys
import torch, transformers
from mlxq.calibration import collect_statistics
from mlxq.errors import MlxqIOError
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, (8192, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))
try:
    collect_statistics({str(LLAMA)!r}, {TEXT!r}, seq_len=16, max_tokens=32,
                       spill_dir={str(spill)!r})
except MlxqIOError as e:
    print(e)
    sys.exit(3)
"""
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 3, r.stderr
    assert "cannot write the Hessians to " + str(spill) in r.stdout
    assert "File too large" in r.stdout and "TMPDIR" in r.stdout
    assert os.listdir(spill) == []
    from mlxq.calibration import collect_statistics

    with pytest.raises(MlxqIOError, match="cannot make a folder for the Hessians in .*nowhere"):
        collect_statistics(LLAMA, TEXT, seq_len=16, max_tokens=32, spill_dir=spill / "nowhere")


# ---- convert() and the command line ----------------------------------------------------

def test_convert_refuses_bad_calibration_arguments(tmp_path):
    out = tmp_path / "o"
    with pytest.raises(InvalidArgumentError, match="Hessian"):
        mlxq.convert(LLAMA, out, quantize=True, q_method="gptq", quiet=True)
    with pytest.raises(InvalidArgumentError, match="save_imatrix"):
        mlxq.convert(LLAMA, out, quantize=True, save_imatrix=tmp_path / "s", quiet=True)
    with pytest.raises(UnknownEnumValueError, match="calibration_device"):
        mlxq.convert(LLAMA, out, quantize=True, calibrate=tmp_path / "t",
                     calibration_device="tpu", quiet=True)
    with pytest.raises(UnknownEnumValueError, match="q_method"):
        mlxq.convert(LLAMA, out, quantize=True, q_method="awq", quiet=True)
    with pytest.raises(InvalidArgumentError, match="not a file"):
        mlxq.convert(LLAMA, out, quantize=True, calibrate=tmp_path / "missing.txt", quiet=True)
    binary = tmp_path / "b.txt"
    binary.write_bytes(b"abc\x00\x01")
    with pytest.raises(FormatError, match="binary"):
        mlxq.convert(LLAMA, out, quantize=True, calibrate=binary, quiet=True)
    latin = tmp_path / "l.txt"
    latin.write_bytes("caf\xe9".encode("latin-1"))
    with pytest.raises(FormatError, match="UTF-8"):
        mlxq.convert(LLAMA, out, quantize=True, calibrate=latin, quiet=True)
    empty = tmp_path / "e.txt"
    empty.write_text("  \n")
    with pytest.raises(InvalidArgumentError, match="empty"):
        mlxq.convert(LLAMA, out, quantize=True, calibrate=empty, quiet=True)
    good = tmp_path / "g.txt"
    good.write_text(TEXT)
    with pytest.raises(OutOfRangeError, match="calibration_tokens"):
        mlxq.convert(LLAMA, out, quantize=True, calibrate=good, calibration_tokens=1,
                     quiet=True)
    with pytest.raises(InvalidArgumentError, match="q_mode"):
        mlxq.convert(LLAMA, out, quantize=True, q_method="gptq", q_mode="mxfp4",
                     calibrate=good, quiet=True)
    with pytest.raises(InvalidArgumentError, match="quantize"):
        mlxq.convert(LLAMA, out, calibrate=good, quiet=True)
    assert not out.exists()


def test_cli_speaks_in_flags(tmp_path):
    r = subprocess.run([sys.executable, "-m", "mlxq", "convert", str(LLAMA),
                        str(tmp_path / "o"), "-q", "--q-method", "gptq"],
                       capture_output=True, text=True)
    assert r.returncode != 0
    assert "--calibrate TEXT_FILE" in r.stderr and "Traceback" not in r.stderr
    r = subprocess.run([sys.executable, "-m", "mlxq", "convert", "--help"],
                       capture_output=True, text=True)
    for flag in ("--calibrate", "--save-imatrix", "--calibration-device",
                 "--calibration-tokens", "gptq"):
        assert flag in r.stdout


def test_gptq_conversion_end_to_end_and_reuse(tmp_path):
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    text = tmp_path / "cal.txt"
    text.write_text(TEXT)
    stats = tmp_path / "stats.safetensors"
    a = mlxq.convert(LLAMA, tmp_path / "a", quantize=True, q_bits=3, q_method="gptq",
                     calibrate=text, save_imatrix=stats, calibration_tokens=64, quiet=True)
    assert a.summary()
    # the saved statistics give the same folder without running the model again
    mlxq.convert(LLAMA, tmp_path / "b", quantize=True, q_bits=3, q_method="gptq",
                 imatrix=stats, quiet=True)
    wa, wb = mlxq.load_checkpoint(tmp_path / "a"), mlxq.load_checkpoint(tmp_path / "b")
    assert wa.keys() == wb.keys()
    for k in wa:
        assert np.array_equal(wa[k].view(np.uint8), wb[k].view(np.uint8)), k
    # plain MLX layout: the same config as an mlx conversion, and mlx-lm loads it strictly
    mlxq.convert(LLAMA, tmp_path / "m", quantize=True, q_bits=3, quiet=True)
    assert json.loads((tmp_path / "a" / "config.json").read_text()) == \
        json.loads((tmp_path / "m" / "config.json").read_text())
    wm = mlxq.load_checkpoint(tmp_path / "m")
    assert not np.array_equal(wa["model.layers.0.mlp.down_proj.weight"],
                              wm["model.layers.0.mlp.down_proj.weight"])
    utils = pytest.importorskip("mlx_lm.utils")
    utils.load_model(tmp_path / "a")


def test_gptq_conversion_is_gptq_of_the_in_memory_hessians(tmp_path, temp_folder,
                                                            monkeypatch):
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    from mlxq.conversion import execute

    text = tmp_path / "cal.txt"
    text.write_text(TEXT)
    factored = []
    real_factor = execute.gptq_factor

    def counting(h, **kw):
        factored.append(h.shape)
        return real_factor(h, **kw)

    monkeypatch.setattr(execute, "gptq_factor", counting)
    mlxq.convert(LLAMA, tmp_path / "g", quantize=True, q_bits=3, q_method="gptq",
                 calibrate=text, calibration_tokens=64, quiet=True)
    assert os.listdir(temp_folder) == []
    # every linear layer (the untied head included) is GPTQ of the Hessian a plain torch
    # forward gives (convert: sequences of 512 tokens), of the source's bfloat16 weights
    ref = torch_hessians(LLAMA, TEXT, seq_len=512, max_tokens=64)
    model = transformers.AutoModelForCausalLM.from_pretrained(LLAMA, dtype=torch.bfloat16)
    out = mlxq.load_checkpoint(tmp_path / "g")
    for name, h in ref.items():
        w = model.get_parameter(name + ".weight").detach().view(torch.int16).numpy()
        want = gptq_quantize(w.view(bfloat16), h, 64, 3, act_order=True)
        for suffix, a in zip(("weight", "scales", "biases"), want):
            assert out[f"{name}.{suffix}"].tobytes() == a.tobytes(), (name, suffix)
    # layers reading one input (q/k/v, gate/up) share one Hessian, factored once
    inputs = {n.replace("k_proj", "q_proj").replace("v_proj", "q_proj")
              .replace("up_proj", "gate_proj") for n in ref}
    assert len(factored) == len(inputs) < len(ref)

    # an error mid-conversion (the spill folder in use) leaves nothing behind
    def boom(*_a, **_k):
        assert os.listdir(temp_folder)
        raise KeyboardInterrupt

    monkeypatch.setattr(execute, "gptq_factor", boom)
    with pytest.raises(KeyboardInterrupt) as caught:
        mlxq.convert(LLAMA, tmp_path / "h", quantize=True, q_bits=3, q_method="gptq",
                     calibrate=text, calibration_tokens=64, quiet=True)
    assert os.listdir(temp_folder) == [] and not (tmp_path / "h").exists()
    assert caught.tb is not None  # (the traceback, holding the statistics, is still alive)
