"""Collecting each linear layer's input statistics: the model's own forward pass, through
transformers + torch, one decoder layer in memory at a time.

How (the way llm-compressor and GPTQModel onload layers sequentially):

1. the model is built by transformers from its config with every parameter on torch's
   ``meta`` device (no memory); buffers (rotary tables) are real;
2. the parameters outside the decoder layers (embedding, final norm, head) are read from
   the checkpoint; each decoder layer is replaced by a recorder, and the model's base
   forward runs once per calibration sequence: the recorders keep each layer's keyword
   arguments (position embeddings, masks: transformers computes them per layer type) and
   the first layer's input;
3. per decoder layer: its parameters are read from the checkpoint, it runs on every
   sequence (hooks on each ``nn.Linear`` add up the input's squares per column and
   X^T X), its outputs become the next layer's inputs, and it goes back to ``meta``;
4. the final norm's output gives the head's statistics (the head itself never runs).

Memory: one decoder layer's weights, the hidden states of the calibration tokens, the
per-column sums, and one layer's statistics (one C x C Hessian per distinct input, float64
while its layer runs); whatever the number of layers. As each layer finishes, its Hessians
go in float32 to a spill file on disk (:class:`_HessianSpill`) and are read back one at a
time when asked for: a 70B model's Hessians are hundreds of GB, more than its weights.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import tempfile
import time
import weakref
from pathlib import Path
from typing import Any, Callable, Iterator, Optional, Union

import numpy as np

from .._interrupt import check
from ..errors import (
    FormatError,
    InvalidArgumentError,
    MissingDependencyError,
    MissingKeyError,
    MlxqError,
    MlxqIOError,
    OutOfRangeError,
    UnknownEnumValueError,
)
from ..io import SafetensorsReader, SafetensorsWriter
from .stats import LayerStatistics, Statistics

__all__ = ["CalibrationReport", "collect_statistics", "read_text"]

log = logging.getLogger("mlxq")

_INSTALL = 'pip install "mlxq[calibrate]"'


def _torch() -> Any:
    try:
        import torch
        import transformers  # noqa: F401
    except ImportError as e:
        raise MissingDependencyError(f"calibration runs the model through transformers and "
                                     f"torch, which are not installed ({e}); {_INSTALL}") from None
    return torch


def read_text(path: Union[str, os.PathLike]) -> str:
    """The calibration text of a file (UTF-8); typed errors for what cannot be one."""
    p = Path(os.fspath(path))
    if not p.is_file():
        raise InvalidArgumentError(f"calibration text {p} is not a file")
    try:
        data = p.read_bytes()
    except OSError as e:
        raise MlxqIOError(f"calibration text {p}: {e.strerror or e}") from None
    if b"\x00" in data[:65536]:
        raise FormatError(f"calibration text {p} is binary (it holds NUL bytes), not text")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise FormatError(f"calibration text {p} is not UTF-8 (byte {e.start})") from None
    if not text.strip():
        raise InvalidArgumentError(f"calibration text {p} is empty")
    return text


class CalibrationReport:
    """What a calibration cost: tokens, seconds, tokens/s, peak resident memory."""

    def __init__(self, tokens: int, seconds: float, device: str, peak_rss: int):
        self.tokens, self.seconds, self.device, self.peak_rss = tokens, seconds, device, peak_rss

    @property
    def tokens_per_second(self) -> float:
        return self.tokens / self.seconds if self.seconds > 0 else float("inf")

    def __str__(self) -> str:
        return (f"calibration: {self.tokens} tokens in {self.seconds:.1f} s on {self.device} "
                f"({self.tokens_per_second:.0f} tokens/s), peak RSS {self.peak_rss >> 20} MB")


def _peak_rss() -> int:
    try:
        import resource

        return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024
    except Exception:  # pragma: no cover - not on Linux
        return 0


@contextlib.contextmanager
def _params_on_meta(torch: Any) -> Iterator[None]:
    """Every nn.Parameter created inside goes to the meta device; buffers stay real."""
    nn = torch.nn
    orig = nn.Module.register_parameter

    def register(self: Any, name: str, param: Any) -> None:
        orig(self, name, param)
        if param is not None:
            p = self._parameters[name]
            self._parameters[name] = nn.Parameter(p.to("meta"), requires_grad=False)

    nn.Module.register_parameter = register
    try:
        yield
    finally:
        nn.Module.register_parameter = orig


def _decoder_layers(model: Any, n_layers: int) -> tuple[str, Any]:
    """(dotted name, ModuleList) of the decoder layers: the ModuleList of n_layers."""
    torch = _torch()
    best = None
    for name, mod in model.named_modules():
        if isinstance(mod, torch.nn.ModuleList) and len(mod) == n_layers:
            if best is None or len(name) < len(best[0]):
                best = (name, mod)
    if best is None:
        raise UnknownEnumValueError(f"calibration found no list of {n_layers} decoder layers in "
                                    f"{type(model).__name__}")
    return best


class _Stop(Exception):
    pass


class _Recorder:
    """Stands in for decoder layer i: keeps its keyword arguments, passes the hidden
    states through (or stops the forward at the last layer)."""

    def __init__(self, index: int, store: list, last: bool):
        self.index, self.store, self.last = index, store, last

    def __call__(self, hidden: Any, *args: Any, **kwargs: Any) -> Any:
        if self.index == 0:
            self.store.append({"hidden": hidden, "args": args, "kwargs": {}})
        self.store[-1]["kwargs"][self.index] = (args, kwargs)
        if self.last:
            raise _Stop
        return hidden


def _set_tensor(module: Any, dotted: str, value: Any, torch: Any) -> None:
    *parents, leaf = dotted.split(".")
    for p in parents:
        module = getattr(module, p)
    if leaf in module._parameters:
        module._parameters[leaf] = torch.nn.Parameter(value, requires_grad=False)
    else:
        module._buffers[leaf] = value


def collect_statistics(model_dir: Union[str, os.PathLike], text: str, *,
                       device: str = "cpu", seq_len: int = 512, max_tokens: int = 16384,
                       hessian: bool = True, progress: Optional[Callable[[str], None]] = None,
                       spill_dir: Union[str, os.PathLike, None] = None
                       ) -> tuple[Statistics, CalibrationReport]:
    """Runs the Hugging Face checkpoint folder ``model_dir`` forward on ``text`` (its own
    tokenizer, sequences of ``seq_len`` tokens, at most ``max_tokens`` in all) and returns
    every linear layer's input statistics, by layer path, with what it cost.

    ``device``: ``"cpu"`` (default) or ``"cuda"`` (a CUDA GPU torch sees; the layers and
    activations go there, statistics come back). ``hessian``: also collect X^T X (GPTQ
    needs it; importance alone does not). ``progress``: called with a line of text after
    the recording pass and after each layer (default: ``logging``).

    Memory does not grow with the number of layers: each layer's Hessians are written to
    disk when the layer finishes, in a new folder ``mlxq-hessians-*`` under ``spill_dir``
    (default: the temporary folder, ``TMPDIR``), and read back one at a time by
    :meth:`Statistics.hessian`. That folder takes the sum of the Hessians, C * C * 4 bytes
    per distinct input of width C (q/k/v share one; a Llama-3 70B layer has three
    8192-wide inputs and one 28672-wide: 4.1 GB a layer, 327 GB for its 80), and is
    removed by :meth:`Statistics.close` (or ``with stats:``), when the statistics are
    garbage-collected, at exit, and when this function raises. Without ``hessian`` nothing
    is written.

    Raises MissingDependencyError without transformers and torch; InvalidArgumentError for
    text shorter than two tokens or a CUDA device torch does not have; OutOfRangeError for
    bad sizes; MissingKeyError when the checkpoint lacks a parameter the model needs;
    MlxqIOError naming the folder when the Hessians cannot be written there (a full disk).
    """
    torch = _torch()
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    for name, v in (("seq_len", seq_len), ("max_tokens", max_tokens)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 2:
            raise OutOfRangeError(f"{name}={v!r} must be an int >= 2")
    if device not in ("cpu", "cuda"):
        raise UnknownEnumValueError(f"calibration device {device!r}; expected 'cpu' or 'cuda'")
    if device == "cuda" and not torch.cuda.is_available():
        raise InvalidArgumentError("calibration device 'cuda' was asked for, but torch sees "
                                   "no CUDA GPU (torch.cuda.is_available() is False)")
    say = progress or (lambda s: log.info("%s", s))
    t0 = time.monotonic()
    folder = Path(os.fspath(model_dir))
    config = AutoConfig.from_pretrained(folder)
    tok = AutoTokenizer.from_pretrained(folder)
    ids = tok(text).input_ids
    ids = list(ids[:max_tokens])
    seqs = [ids[i:i + seq_len] for i in range(0, len(ids), seq_len)]
    seqs = [s for s in seqs if len(s) >= 2]
    if not seqs:
        raise InvalidArgumentError(f"the calibration text gives {len(ids)} token(s); at least "
                                   "2 are needed")
    n_tokens = sum(len(s) for s in seqs)

    from ..conversion.source import SourceCheckpoint

    src = SourceCheckpoint(folder)
    spill: Optional[_HessianSpill] = None
    try:
        spill = _HessianSpill(spill_dir) if hessian else None

        def tensor(name: str) -> Any:
            t = src.tensors.get(name)
            if t is None:
                raise MissingKeyError(f"{folder}: the checkpoint has no {name}, which the "
                                      "calibration forward needs", key=name)
            a = np.asarray(t.rows(0, t.nrows)).reshape(t.shape)
            return torch.from_numpy(a.astype(np.float32)).to(device)

        with _params_on_meta(torch):
            model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
        model.eval()
        n_layers = int(getattr(config.get_text_config(), "num_hidden_layers", 0) or 0)
        lname, layers = _decoder_layers(model, n_layers)
        names_in_layers = f"{lname}."
        tied = bool(getattr(config.get_text_config(), "tie_word_embeddings", False) or
                    getattr(config, "tie_word_embeddings", False))
        out_emb = model.get_output_embeddings()
        for name, p in list(model.named_parameters(remove_duplicate=False)):
            if name.startswith(names_in_layers):
                continue
            if name not in src.tensors and out_emb is not None and tied and \
                    p is out_emb.weight:
                continue  # tied to the input embedding, set below
            _set_tensor(model, name, tensor(name), torch)
        if tied and out_emb is not None:
            out_emb.weight = model.get_input_embeddings().weight
        for name, b in list(model.named_buffers()):
            if b.device.type != device and not name.startswith(names_in_layers):
                _set_tensor(model, name, b.to(device), torch)

        # 2. record each layer's arguments
        store: list = []
        real = list(layers)
        for i in range(n_layers):
            layers[i] = _recorder_module(_Recorder(i, store, i == n_layers - 1), real[i], torch)
        base = model.get_decoder() if hasattr(model, "get_decoder") else model
        with torch.no_grad():
            for s in seqs:
                try:
                    base(input_ids=torch.tensor([s], device=device), use_cache=False)
                except _Stop:
                    pass
        say(f"calibration: {n_tokens} tokens in {len(seqs)} sequences, {n_layers} layers")

        # 3. layer by layer
        layers_stats: dict[str, LayerStatistics] = {}
        hessians: dict[str, Callable[[], np.ndarray]] = {}  # key -> loader from the spill
        hidden = [rec["hidden"] for rec in store]
        for i in range(n_layers):
            layer = real[i]
            prefix = f"{lname}.{i}."
            for name, p in list(layer.named_parameters()):
                _set_tensor(layer, name, tensor(prefix + name), torch)
            for name, b in list(layer.named_buffers()):
                if b.device.type != device:
                    _set_tensor(layer, name, b.to(device), torch)
            acc = _Accumulator(torch, hessian)
            handles = [m.register_forward_pre_hook(acc.hook(prefix + n))
                       for n, m in layer.named_modules() if isinstance(m, torch.nn.Linear)]
            with torch.no_grad():
                for k, rec in enumerate(store):
                    args, kwargs = rec["kwargs"][i]
                    acc.new_pass()
                    out = layer(hidden[k], *args, **kwargs)
                    hidden[k] = out[0] if isinstance(out, (tuple, list)) else out
            for h in handles:
                h.remove()
            acc.finish(layers_stats, hessians, spill)
            del acc
            layer.to("meta")
            _give_back_freed_memory()
            say(f"calibration: layer {i + 1}/{n_layers}")
            check()  # a safe point: a Ctrl-C the CLI deferred stops here, spill removed

        # 4. the head, from the final norm
        head = model.get_output_embeddings()
        norm = getattr(base, "norm", None)
        if head is not None and norm is not None:
            head_name = next((n for n, m in model.named_modules() if m is head), None)
            acc = _Accumulator(torch, hessian)
            with torch.no_grad():
                for hs in hidden:
                    acc.new_pass()
                    acc.add(head_name, norm(hs))
            acc.finish(layers_stats, hessians, spill)
            if tied:
                emb = model.get_input_embeddings()
                emb_name = next((n for n, m in model.named_modules() if m is emb), None)
                if emb_name is not None and head_name in layers_stats:
                    # mlx-lm quantizes the tied embedding, which serves as the head
                    layers_stats[emb_name] = layers_stats[head_name]
    except BaseException:
        if spill is not None:
            spill.close()
        raise
    finally:
        src.close()
    report = CalibrationReport(n_tokens, time.monotonic() - t0, device, _peak_rss())
    return Statistics(layers_stats, hessians, n_tokens,
                      close=spill.close if spill is not None else None), report


def _give_back_freed_memory() -> None:
    """Returns the heap glibc's malloc keeps after a layer's tensors are freed to the
    system (``malloc_trim``; elsewhere a no-op). Without it the resident set grows layer
    by layer though no more memory is in use: the next layer's allocations do not fit the
    holes the last one left (SmolLM2-135M: +20 MB a layer; with it, flat)."""
    global _trim
    if _trim is None:
        import ctypes

        try:
            _trim = getattr(ctypes.CDLL(None), "malloc_trim", False)
        except (OSError, TypeError):  # pragma: no cover - no C library to open by None
            _trim = False
    if _trim:
        _trim(0)


_trim: Any = None  # libc's malloc_trim, or False where there is none


def _recorder_module(rec: _Recorder, real: Any, torch: Any) -> Any:
    """A torch module running ``rec`` in place of the decoder layer ``real``; attributes
    the model reads off its layers while looping (an attention type, say) come from
    ``real``."""

    class Recorder(torch.nn.Module):
        def forward(self, hidden: Any, *args: Any, **kwargs: Any) -> Any:
            return rec(hidden, *args, **kwargs)

        def __getattr__(self, name: str) -> Any:
            try:
                return super().__getattr__(name)
            except AttributeError:
                return getattr(self.__dict__["_real"], name)

    m = Recorder()
    m.__dict__["_real"] = real  # not registered: its parameters stay out of the model
    return m


class _Accumulator:
    """Per layer path: sum of squares per input column (float64), count, and X^T X
    (float64) shared by layers fed the same tensor in one pass."""

    def __init__(self, torch: Any, hessian: bool):
        self.torch, self.want_h = torch, hessian
        self.sum2: dict[str, Any] = {}
        self.count: dict[str, int] = {}
        self.hkey: dict[str, str] = {}
        self.h: dict[str, Any] = {}
        self.seen: dict[tuple, str] = {}

    def new_pass(self) -> None:
        self.seen = {}

    def hook(self, path: str) -> Callable:
        def fn(_mod: Any, inputs: tuple) -> None:
            self.add(path, inputs[0])
        return fn

    def add(self, path: str, x: Any) -> None:
        torch = self.torch
        # the same tensor object (q/k/v's shared input); the entry keeps x alive for the
        # pass, so its id cannot be reused by a later tensor
        ident = id(x)
        hit = self.seen.get(ident)
        if hit is not None and hit[3] is not x:  # pragma: no cover - kept alive, cannot be
            hit = None
        if hit is None:
            # per pass in float32 (a few thousand rows), summed across passes in float64
            x2 = x.detach().reshape(-1, x.shape[-1]).to(torch.float32)
            s = (x2 * x2).sum(0).to(torch.float64)
            key = self.hkey.get(path, path)
            if self.want_h:
                g = (x2.T @ x2).to(torch.float64)
                self.h[key] = self.h[key] + g if key in self.h else g
            hit = self.seen[ident] = (key, s, x2.shape[0], x)
        key, s, rows, _ = hit
        self.sum2[path] = self.sum2[path] + s if path in self.sum2 else s
        self.count[path] = self.count.get(path, 0) + rows
        if self.want_h:
            self.hkey.setdefault(path, key)

    def finish(self, layers: dict, hessians: dict, spill: Optional[_HessianSpill]) -> None:
        """Adds the statistics to ``layers`` and the Hessians' loaders to ``hessians``; the
        Hessians themselves go to ``spill`` and leave memory (as do the pass's inputs)."""
        for path, s in self.sum2.items():
            key = self.hkey.get(path) if self.want_h else None
            layers[path] = LayerStatistics(s.cpu().numpy(), self.count[path], key)
        self.seen = {}
        if self.h and spill is not None:
            hessians.update(spill.write(self.h, self.torch))


class _HessianSpill:
    """The Hessians of finished layers on disk: one safetensors file per layer (float32,
    named by Hessian key) in a folder of its own, read back one tensor at a time with
    ``pread`` into a fresh array (no mapping: the caller's drop frees it). The folder is
    removed by :meth:`close`, when this object is garbage-collected, or at exit."""

    def __init__(self, parent: Union[str, os.PathLike, None]):
        where = os.fspath(parent) if parent is not None else tempfile.gettempdir()
        try:
            self.dir = tempfile.mkdtemp(prefix="mlxq-hessians-", dir=where)
        except OSError as e:
            raise MlxqIOError(f"calibration: cannot make a folder for the Hessians in "
                              f"{where}: {e.strerror or e}") from None
        self._remove = weakref.finalize(self, shutil.rmtree, self.dir, ignore_errors=True)
        self.files = 0
        self.nbytes = 0  # written so far: what the disk holds

    def write(self, h: dict[str, Any], torch: Any) -> dict[str, Callable[[], np.ndarray]]:
        """Writes the float64 sums ``h`` (key -> [C, C] tensor) as float32 and empties
        ``h`` as it goes (one float32 copy at a time); returns key -> loader."""
        path = os.path.join(self.dir, f"layer-{self.files:05d}.safetensors")
        self.files += 1
        specs = [(k, np.float32, tuple(t.shape)) for k, t in h.items()]
        size = sum(4 * int(np.prod(shape)) for _, _, shape in specs)
        try:
            with SafetensorsWriter(path, specs) as w:
                for k, _, _ in specs:
                    # the float32 rounding the in-memory statistics had: the same bytes
                    w.put(k, h.pop(k).to(torch.float32).cpu().numpy())
        except (MlxqError, OSError) as e:
            self.close()
            why = e.message if isinstance(e, MlxqError) else (e.strerror or str(e))
            raise MlxqIOError(
                f"calibration: cannot write the Hessians to {self.dir} ({why}); they need "
                f"{self.nbytes + size} bytes there so far (C * C * 4 per distinct input of "
                "width C): point TMPDIR at a folder with room (spill_dir= from Python)"
            ) from None
        self.nbytes += size
        return {k: self._loader(path, k) for k, _, _ in specs}

    def _loader(self, path: str, key: str) -> Callable[[], np.ndarray]:
        def load() -> np.ndarray:
            if not self._remove.alive:
                raise InvalidArgumentError(f"the Hessian {key!r} was removed with its "
                                           "statistics (Statistics.close()); save_statistics "
                                           "keeps them", key=key)
            with SafetensorsReader(path) as r:
                return r.read(key)
        return load

    def close(self) -> None:
        """Removes the folder (again: a no-op)."""
        self._remove()
