"""The ``mlxq`` command line (also ``python -m mlxq``).

Subcommands:
    convert   a Hugging Face checkpoint folder into an MLX one, like mlx_lm.convert
    inspect   tensors, dtypes, per-layer quantization and bits per weight of a folder
    compare   two checkpoints tensor by tensor; exit 0 only when they match
    demo      generate a small model and convert it (the README's main job)
    bench     quantize a generated matrix in every mode and print error and throughput

Exit status: 0 on success, 1 when the command fails (one line says what and where) or,
for compare, when the checkpoints differ; 2 for a usage error (compare: also unreadable
inputs); 130 when interrupted (Ctrl-C), 143 on SIGTERM, 129 on SIGHUP (each after removing
what the command had started to write); 141 when standard output is closed early
(``mlxq inspect DIR | head``), quietly.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import signal
import sys
import textwrap
import warnings
from typing import Iterator, Sequence

from ._interrupt import Signalled, deferred, immediate
from ._secrets import redact, remember, scrub
from .errors import MlxqError, MlxqWarning

_CONVERT_HELP = textwrap.dedent("""\
    Convert a Hugging Face checkpoint folder into an MLX checkpoint folder that
    mlx_lm.load reads unchanged: the same tensors, config.json, shards and index
    mlx_lm.convert writes, made one tensor at a time, so a model larger than memory
    converts. SRC may be a dense Hugging Face folder (model*.safetensors), an MLX
    quantized folder, or an AutoAWQ / GPTQ / MXFP4 folder. DST must not exist; it is
    built in a hidden sibling folder and appears only when complete.

    SRC and DST may also be given as mlx_lm.convert spells them: --hf-path (or
    --model) and --mlx-path (default: mlx_model). SRC may be a Hugging Face Hub
    repository, ORG/NAME, read one shard at a time (a local folder of that name wins).

    examples:
      mlxq convert ./Llama-3.2-1B ./Llama-3.2-1B-4bit -q
      mlxq convert --hf-path ./Qwen3-0.6B --mlx-path ./Qwen3-0.6B-mixed -q --quant-predicate mixed_3_6
      mlxq convert ./model ./model-mxfp4 -q --q-mode mxfp4 --report
      mlxq convert ./model-4bit ./model-bf16 -d --dtype bfloat16
    """)

#: How each convert() argument is spelled on the command line, where it is not "--" + the
#: name with "-" for "_" (messages name what the user typed: see mlxq._argnames).
_CONVERT_FLAGS = {"quantize": "-q", "dequantize": "-d", "hf_path": "SRC", "mlx_path": "DST"}


def _threads(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number, got {text!r}") from None
    if n < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {n}")
    return n


def _paths(args: argparse.Namespace, parser: argparse.ArgumentParser) -> tuple[str, str]:
    """SRC and DST from the positional form (``SRC DST``) or mlx_lm.convert's flags
    (``--hf-path SRC --mlx-path DST``), which may be mixed: ``--hf-path SRC DST``."""
    positional = [p for p in (args.src, args.dst) if p is not None]
    if args.hf_path is not None:
        if len(positional) > 1 or positional and args.mlx_path is not None:
            parser.error("SRC is given twice: as --hf-path and as the first argument")
        src = args.hf_path
        dst = args.mlx_path if args.mlx_path is not None else (
            positional[0] if positional else "mlx_model")
        return src, dst
    if not positional:
        parser.error("the source folder is required: mlxq convert SRC DST (or --hf-path SRC)")
    if len(positional) == 2 and args.mlx_path is not None:
        parser.error("DST is given twice: as --mlx-path and as the second argument")
    dst = positional[1] if len(positional) == 2 else (
        args.mlx_path if args.mlx_path is not None else "mlx_model")
    return positional[0], dst


def _convert(args: argparse.Namespace) -> int:
    from ._argnames import command_line
    from .conversion import convert

    src, dst = _paths(args, args.parser)
    with command_line(_CONVERT_FLAGS):
        result = convert(
            src, dst, quantize=args.quantize, q_group_size=args.q_group_size,
            q_bits=args.q_bits, q_mode=args.q_mode, quant_predicate=args.quant_predicate,
            dtype=args.dtype, dequantize=args.dequantize, max_shard_size=args.max_shard_size,
            report=args.report, quiet=args.quiet, allow_requantize=args.allow_requantize,
            allow_unknown_architecture=args.allow_unknown_architecture,
            q_method=args.q_method, imatrix=args.imatrix, imatrix_arch=args.imatrix_arch,
            target_bpw=args.target_bpw, calibrate=args.calibrate,
            save_imatrix=args.save_imatrix, calibration_device=args.calibration_device,
            calibration_tokens=args.calibration_tokens, revision=args.revision,
            keep_source=args.keep_source, disk_budget=args.disk_budget, token=args.token,
            upload_repo=args.upload_repo, trust_remote_code=args.trust_remote_code,
            threads=args.threads, device=args.device)
        if args.report:
            print(result.report_table())
        if not args.quiet:
            print(result.summary())
    return 0


def _inspect(args: argparse.Namespace) -> int:
    from .inspection import inspect_checkpoint

    info = inspect_checkpoint(args.path)
    if not args.summary:
        print(info.table())
    print(info.summary())
    return 0


def _compare(args: argparse.Namespace) -> int:
    import json

    from .testing import compare_checkpoints

    tol = args.rtol is not None or args.atol is not None or args.max_ulp is not None
    try:
        result = compare_checkpoints(args.a, args.b, exact=not tol, rtol=args.rtol,
                                     atol=args.atol, max_ulp=args.max_ulp,
                                     check_config=args.config, check_index=args.index)
    except (MlxqError, OSError) as e:  # unreadable input: a usage-level error
        print(f"mlxq compare: error: {e}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(result.to_dict(), indent=2))
    else:
        if not args.quiet:
            table = result.table(all_rows=args.all)
            if table:
                print(table)
        print(result.summary())
    return 0 if result.matches else 1


def _demo(args: argparse.Namespace) -> int:
    from .demo import run_convert_demo

    run_convert_demo(args.dir, out=sys.stdout)
    return 0


def _bench(args: argparse.Namespace) -> int:
    from .demo import run_bench

    run_bench(rows=args.rows, cols=args.cols, out=sys.stdout)
    return 0


class _Parser(argparse.ArgumentParser):
    """argparse's parser whose usage errors show no token (an invalid value echoed back,
    ``argument --q-bits: invalid int value: 'hf_...'``); subcommands' parsers are of the
    same class."""

    def error(self, message: str):  # type: ignore[override]
        super().error(redact(message))


def _unrecognized(extra: Sequence[str]) -> str:
    """The unrecognized arguments for a usage error, without the values that follow an
    unknown option: that option may well have been a mistyped ``--token`` (``--tokn
    hf_...``), and its value a secret."""
    shown, hidden = [], 0
    after_option = False
    for a in extra:
        if a.startswith("-") and len(a) > 1:
            name, eq, _ = a.partition("=")
            shown.append(f"{name}=…" if eq else name)
            hidden += bool(eq)
            after_option = not eq
        elif after_option:
            shown.append("…")
            hidden += 1
            after_option = False
        else:
            shown.append(redact(a))
    note = " (values after an unknown option are not shown)" if hidden else ""
    return f"unrecognized arguments: {' '.join(shown)}{note}"


def build_parser() -> argparse.ArgumentParser:
    """The ``mlxq`` argument parser; ``parser.commands`` maps each command to its own."""
    # the light module of the converter's choices: `mlxq --help` loads no numpy
    from .conversion.options import CONVERSION_DTYPES, MODE_DEFAULTS, QUANT_RECIPES

    parser = _Parser(
        prog="mlxq",
        description="Produce and consume Apple MLX's quantized weight formats, bit-identical "
        "to MLX, on any machine. 'mlxq COMMAND --help' explains each command.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    c = sub.add_parser("convert", help="convert a Hugging Face folder into an MLX one",
                       description=_CONVERT_HELP,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    c.add_argument("src", metavar="SRC", nargs="?",
                   help="source checkpoint folder (read only)")
    c.add_argument("dst", metavar="DST", nargs="?",
                   help="destination folder (must not exist; default: mlx_model)")
    m = c.add_argument_group("mlx_lm.convert's spellings")
    m.add_argument("--hf-path", "--model", metavar="SRC", default=None,
                   help="the source folder, as mlx_lm.convert names it")
    m.add_argument("--mlx-path", metavar="DST", default=None,
                   help="the destination folder, as mlx_lm.convert names it (default: "
                   "mlx_model)")
    m.add_argument("--trust-remote-code", action="store_true",
                   help="accepted for mlx_lm.convert's command lines; no effect: mlxq runs "
                   "no model code (it reads tensors and JSON only)")
    m.add_argument("--upload-repo", metavar="ORG/NAME", default=None,
                   help="refused: mlxq does not upload (the message gives the `hf upload` "
                   "command that does)")
    q = c.add_argument_group("quantization (as mlx_lm.convert)")
    q.add_argument("-q", "--quantize", action="store_true", help="quantize the model")
    q.add_argument("--q-bits", type=int, default=None,
                   help="bits per weight (default: 4; 8 for mxfp8)")
    q.add_argument("--q-group-size", type=int, default=None,
                   help="group size (default: 64 affine, 32 mxfp4/mxfp8, 16 nvfp4)")
    q.add_argument("--q-mode", default="affine", choices=list(MODE_DEFAULTS),
                   help="quantization mode (default: affine)")
    q.add_argument("--quant-predicate", choices=QUANT_RECIPES, default=None,
                   help="mixed-bit recipe: more bits for v_proj/down_proj in some layers "
                   "and for lm_head (affine only)")
    q.add_argument("-d", "--dequantize", action="store_true",
                   help="dequantize a quantized model back to dense weights")
    q.add_argument("--dtype", choices=CONVERSION_DTYPES, default=None,
                   help="dtype of the floating tensors (default: config.json's torch_dtype)")
    q.add_argument("--allow-requantize", action="store_true",
                   help="GPTQ with act-order (a real g_idx): dequantize and re-quantize those "
                   "layers to MLX affine instead of refusing (adds error; reported)")
    q.add_argument("--device", choices=("gpu", "cpu"), default=None,
                   help="whose quantization arithmetic: gpu, MLX's Metal kernels (what "
                   "mlx_lm.convert writes on Apple silicon), or cpu, MLX's CPU backend (what "
                   "mlx[cpu] writes on Linux); default: MLXQ_DEVICE, else gpu")
    q.add_argument("--allow-unknown-architecture", action="store_true",
                   help="convert a model_type mlx-lm does not support with generic rules "
                   "(no sanitize step) instead of refusing it")
    e = c.add_argument_group("beyond mlx_lm.convert: better quantization (docs/methods.md)")
    e.add_argument("--q-method", choices=("mlx", "mse", "gptq"), default="mlx",
                   help="mlx: mx.quantize's choice, bit-identical to mlx_lm.convert "
                   "(default); mse: each group's scale and bias chosen for the least error, each "
                   "input column weighted by its size (estimated from the weights, no data "
                   "needed; or --imatrix); "
                   "gptq: GPTQ with each layer's input Hessian (needs --calibrate)")
    e.add_argument("--imatrix", metavar="FILE", default=None,
                   help="a llama.cpp importance matrix (.gguf or .dat), or statistics saved "
                   "by --save-imatrix, weighting each layer's columns (with --q-method mse, "
                   "gptq or --target-bpw)")
    e.add_argument("--calibrate", metavar="TEXT_FILE", default=None,
                   help="run the source model (transformers + torch: pip install "
                   "'mlxq[calibrate]') on this UTF-8 text to collect each layer's input "
                   "statistics")
    e.add_argument("--save-imatrix", metavar="FILE", default=None,
                   help="write the statistics --calibrate collected (a safetensors file "
                   "--imatrix reads)")
    e.add_argument("--calibration-device", choices=("cpu", "cuda"), default="cpu",
                   help="where the calibration forward runs (default: cpu)")
    e.add_argument("--calibration-tokens", type=_threads, metavar="N", default=16384,
                   help="at most this many tokens of the calibration text (default: 16384)")
    e.add_argument("--imatrix-arch", metavar="ARCH", default=None,
                   help="the importance matrix's llama.cpp architecture, when the model_type "
                   "does not give it")
    e.add_argument("--target-bpw", type=float, metavar="BPW", default=None,
                   help="bits per layer (2/3/4/5/6/8) chosen for at most this many bits per "
                   "weight over the whole model")
    h = c.add_argument_group("a Hugging Face Hub source, SRC = ORG/NAME (docs/hub.md)")
    h.add_argument("--revision", default=None,
                   help="a branch, tag or commit (default: the main branch)")
    h.add_argument("--keep-source", action="store_true",
                   help="download into huggingface_hub's cache and keep the files (default: "
                   "each shard deleted once converted)")
    h.add_argument("--token", "--hf-token", metavar="TOKEN", default=None,
                   help="a Hugging Face token (default: huggingface_hub's, HF_TOKEN or the "
                   "saved login; prefer those: a command line is visible to other users). "
                   "Never printed")
    h.add_argument("--disk-budget", metavar="SIZE", default=None,
                   help="most source-shard bytes on disk at once, e.g. 20GB (default: what "
                   "the plan holds, usually the two largest shards)")
    o = c.add_argument_group("output and reporting")
    o.add_argument("--max-shard-size", default="5GiB",
                   help="largest shard, e.g. 5GiB (mlx-lm's), 2GB, 500MB (default: 5GiB)")
    o.add_argument("--threads", type=_threads, default=None,
                   help="kernel threads, at least 1 (default: MLXQ_NUM_THREADS or all cores)")
    o.add_argument("--report", action="store_true",
                   help="print each quantized layer's error against the source weights "
                   "(RMSE, max abs error, SNR in dB)")
    o.add_argument("--quiet", action="store_true", help="no progress bar, warnings or summary")
    c.set_defaults(func=_convert, parser=c)

    i = sub.add_parser("inspect", help="list a checkpoint's tensors and quantization",
                       description="Tensors, dtypes, shapes, per-layer quantization and bits "
                       "per weight of a checkpoint folder or .safetensors file, from the "
                       "headers alone (nothing is loaded).")
    i.add_argument("path", metavar="PATH", help="checkpoint folder or .safetensors file")
    i.add_argument("--summary", action="store_true", help="only the summary lines")
    i.set_defaults(func=_inspect)

    cmp_ = sub.add_parser(
        "compare", help="compare two checkpoints tensor by tensor",
        description="Compares two checkpoint folders (or two .safetensors files) tensor by "
        "tensor, one pair at a time from memory-mapped files, and prints each tensor that "
        "differs (count of differing elements, max abs / rel / ULP difference, first "
        "differing index and both values), tensors present on one side only, and a "
        "summary. Exact by default: every element's bit pattern (bfloat16 and fp8 too). "
        "Two folders' config.json files are compared too (--no-config skips them). "
        "Exit status 0 when they match, 1 when they differ, 2 when an input is unreadable.")
    cmp_.add_argument("a", metavar="A", help="checkpoint folder or .safetensors file")
    cmp_.add_argument("b", metavar="B", help="checkpoint folder or .safetensors file")
    cmp_.add_argument("--rtol", type=float, default=None,
                      help="relative tolerance (|a-b| <= atol + rtol*|b|); implies numeric")
    cmp_.add_argument("--atol", type=float, default=None, help="absolute tolerance")
    cmp_.add_argument("--max-ulp", type=int, default=None,
                      help="largest distance in units in the last place that still matches")
    cmp_.add_argument("--config", action=argparse.BooleanOptionalAction, default=True,
                      help="compare the folders' config.json (parsed: key order ignored; "
                      "default: yes, as compare_checkpoints)")
    cmp_.add_argument("--index", action="store_true",
                      help="also compare model.safetensors.index.json (shard assignment)")
    cmp_.add_argument("--all", action="store_true", help="list identical tensors too")
    cmp_.add_argument("--quiet", action="store_true", help="only the summary")
    cmp_.add_argument("--json", action="store_true", help="a JSON report instead of text")
    cmp_.set_defaults(func=_compare)

    d = sub.add_parser("demo", help="generate a small model and convert it",
                       description="Generates a small random Llama-shaped checkpoint in "
                       "Hugging Face layout and converts it to 4-bit MLX, printing the "
                       "summary and the per-layer error report.")
    d.add_argument("--dir", default=None,
                   help="work folder, kept afterwards with both models in it (default: a "
                   "temporary folder, removed afterwards)")
    d.set_defaults(func=_demo)

    b = sub.add_parser("bench", help="quantize a generated matrix in every mode",
                       description="Quantizes and dequantizes one generated bfloat16 matrix "
                       "in every mode and prints bits per weight, error and throughput.")
    b.add_argument("--rows", type=int, default=2048, help="matrix rows (default 2048)")
    b.add_argument("--cols", type=int, default=4096, help="matrix columns (default 4096)")
    b.set_defaults(func=_bench)
    parser.commands = {"convert": c, "inspect": i, "compare": cmp_, "demo": d,  # type: ignore[attr-defined]
                       "bench": b}
    return parser


def _warning_printer(cmd: str):
    """``warnings.showwarning`` for a command: each warning one line on stderr, in the
    command's name (mlxq's own without a category, any other with its category's name)."""
    def show(message, category, filename, lineno, file=None, line=None) -> None:
        text = redact(" ".join(str(message).split()))
        if not issubclass(category, MlxqWarning):
            text = f"{category.__name__}: {text}"
        try:
            print(f"{cmd}: warning: {text}", file=sys.stderr)
        except (OSError, ValueError):  # stderr closed: nothing to tell anyone
            pass
    return show


def _os_error_line(e: OSError) -> str:
    if e.filename is not None:
        return f"{e.filename}: {e.strerror or e}"
    return e.strerror or str(e)


def _quiet_stdout() -> None:
    """After a closed pipe, point stdout at /dev/null so the interpreter's final flush
    does not fail (and print) a second time."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass


class _RedactingFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


@contextlib.contextmanager
def _command_logging(cmd: str, *, quiet: bool) -> Iterator[None]:
    """mlxq's own log warnings (a download tried again) as ``mlxq COMMAND: ...`` lines;
    huggingface_hub's (its retries, multi-line with URLs) only with ``MLXQ_DEBUG``: what
    they report ends in mlxq's one-line error if it does not recover."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_RedactingFormatter(f"{cmd}: %(message)s"))
    handler.setLevel(logging.WARNING)
    ours, theirs = logging.getLogger("mlxq"), logging.getLogger("huggingface_hub")
    level = theirs.level
    # huggingface_hub sets its logger's level when it is imported (later, if at all), from
    # HF_HUB_VERBOSITY; a verbosity the user set wins
    env = "HF_HUB_VERBOSITY"
    hush = not os.environ.get("MLXQ_DEBUG") and env not in os.environ
    if not quiet:
        ours.addHandler(handler)
    if hush:
        os.environ[env] = "error"
        theirs.setLevel(logging.ERROR)
    try:
        yield
    finally:
        ours.removeHandler(handler)
        if hush:
            os.environ.pop(env, None)
            theirs.setLevel(level)


def main(argv: Sequence[str] | None = None) -> int:
    """Runs one command; returns the exit status (see the module docstring). Every failure
    is one line on stderr, ``mlxq COMMAND: error: ...``, never a traceback: mlxq's own
    errors, the operating system's (``PATH: reason``), and, as a last resort, an internal
    error (set ``MLXQ_DEBUG=1`` to see its traceback). SIGTERM and SIGHUP clean up like
    Ctrl-C and exit with 128 + the signal number; a closed stdout (``| head``) ends the
    command quietly. Warnings are one line each, ``mlxq COMMAND: warning: ...`` (none with
    ``--quiet``)."""
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    remember(getattr(args, "token", None))  # never printed, whatever fails later
    if extra:  # with the command's own usage, not the top-level one
        parser.commands[args.command].error(_unrecognized(extra))
    cmd = f"mlxq {args.command}"
    try:
        # convert stops only at safe points (its writer thread holds locks); the other
        # commands may stop anywhere
        with deferred() if args.command == "convert" else immediate(), \
                warnings.catch_warnings():
            if getattr(args, "quiet", False):
                warnings.simplefilter("ignore")
            else:
                warnings.simplefilter("always", MlxqWarning)
                warnings.showwarning = _warning_printer(cmd)
            with _command_logging(cmd, quiet=getattr(args, "quiet", False)):
                return args.func(args)
    except MlxqError as e:
        print(f"{cmd}: error: {redact(str(e))}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        _quiet_stdout()
        return 141  # as a shell reports a command ended by SIGPIPE
    except OSError as e:
        print(f"{cmd}: error: {redact(_os_error_line(e))}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"{cmd}: interrupted; nothing was written", file=sys.stderr)
        return 130
    except Signalled as e:
        name = signal.Signals(e.signum).name
        print(f"{cmd}: stopped by {name}; nothing was written", file=sys.stderr)
        return 128 + e.signum
    except RecursionError:
        print(f"{cmd}: error: input nested too deeply to process", file=sys.stderr)
        return 1
    except Exception as e:  # a bug: still one line, with a way to see more
        if os.environ.get("MLXQ_DEBUG"):
            scrub(e)
            raise
        print(f"{cmd}: internal error: {type(e).__name__}: {redact(str(e))} (this is a bug "
              "in mlxq; MLXQ_DEBUG=1 shows the traceback)", file=sys.stderr)
        return 1
