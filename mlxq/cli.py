"""The ``mlxq`` command line.

Subcommands:
    demo    quantize a generated matrix in every mode and print error and throughput
"""

from __future__ import annotations

import argparse
import sys
from typing import Sequence


def _demo(args: argparse.Namespace) -> int:
    from .demo import run_demo

    run_demo(rows=args.rows, cols=args.cols, out=sys.stdout)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mlxq",
        description="Produce and consume Apple MLX's quantized weight formats, bit-identical "
        "to MLX, on any machine.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    demo = sub.add_parser("demo", help="quantize a generated matrix in every mode")
    demo.add_argument("--rows", type=int, default=2048, help="matrix rows (default 2048)")
    demo.add_argument("--cols", type=int, default=4096, help="matrix columns (default 4096)")
    demo.set_defaults(func=_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)
